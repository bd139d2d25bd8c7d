"""Ctrl-C before ``cli.cli_main`` runs (while a script imports torch, transformers, pandas: the first
seconds) gives the same one line as Ctrl-C during the work, not a traceback. Standard library only, so it
can be the first thing a script does:

    from subliminal.interrupt import quiet_ctrl_c

    quiet_ctrl_c(__name__)  # only when run as a script: importing it (tests) changes nothing
"""

from __future__ import annotations

import os
import signal
import sys

MESSAGE = "interrupted: finished parts are saved; rerun the same command to continue"


def _exit(signum, frame) -> None:
    # Nothing is written before cli_main runs, so there is nothing to clean up: leave at once. Unwinding a
    # half-done import instead (SystemExit) lets the interpreter's shutdown touch half-initialised modules
    # (numpy) and print their errors.
    print(MESSAGE, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def quiet_ctrl_c(module_name: str = "__main__") -> None:
    """Until ``cli_main`` takes over, Ctrl-C prints `MESSAGE` and exits 130 (when `module_name` is __main__)."""
    if module_name == "__main__":
        signal.signal(signal.SIGINT, _exit)


def restore_ctrl_c() -> None:
    """Ctrl-C raises KeyboardInterrupt again (``cli_main``'s handler says the one line and cleans up)."""
    if signal.getsignal(signal.SIGINT) is _exit:
        signal.signal(signal.SIGINT, signal.default_int_handler)
