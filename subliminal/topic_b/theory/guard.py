"""The ladder's checks before any model loads: every folder it writes is writable (``check_paths``), one run at a
time per cache (``CacheLock``), and the files it reads from ``--out`` beside its own are readable
(``prerun_mde``: the logits route's summary). Each failure is one line: a ``UserError``, or a logged skip.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from subliminal.cli import UserError
from subliminal.results import prepare_out, read_csv_checked

PRERUN = "topic_b_transfer_logits_summary.csv"
PRERUN_COLUMNS = ("arm", "animal", "n_seeds", "ratio_to_neutral_ci_low", "ratio_to_neutral_ci_high")


def _writable(folder: Path, flag: str) -> None:
    """Create `folder` and write a temp file in it; a one-line UserError naming `flag` when that fails."""
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", suffix=".tmp"):
            pass
    except OSError as e:
        raise UserError(f"{folder} cannot be written ({e.strerror or e}); give {flag} a folder you can write, "
                        "or fix its permissions") from None


def check_paths(out: Path, archive: Path, root: Path | None) -> None:
    """Before any model loads: ``--out``, its records folder and the model's cache folder `root` (None: not
    written, ``--outputs-only``) can be created and written, and so can the folders already in them that a run
    writes into (students, teachers, pools)."""
    prepare_out(out)
    _writable(Path(archive), "--out")
    if root is not None:
        _writable(Path(root), "--cache")
    inner = [p for p in Path(archive).iterdir() if p.is_dir()]
    if root is not None:
        inner += [Path(root) / d for d in ("students", "teachers", "pools") if (Path(root) / d).is_dir()]
        inner += [p for d in ("students", "teachers") if (Path(root) / d).is_dir() for p in (Path(root) / d).iterdir()
                  if p.is_dir()]
    bad = [p for p in inner if not os.access(p, os.W_OK | os.X_OK)]
    if bad:
        raise UserError(f"{len(bad)} folder(s) the run writes into cannot be written ({', '.join(map(str, bad[:3]))}"
                        f"{', ...' if len(bad) > 3 else ''}); fix their permissions or give --out / --cache others")


class CacheLock:
    """One run at a time on a model's cache folder: an exclusive, non-blocking ``flock`` on ``<folder>/.lock``,
    held until the run ends (the kernel drops it when the process dies, so a killed run never leaves it held).
    A second run is refused with one line naming the first run's pid, written into the file."""

    def __init__(self, folder: Path, log: Callable = print):
        self.path, self.log, self.fd = Path(folder) / ".lock", log, None

    def __enter__(self) -> CacheLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"another run (pid {other}) is using the cache {self.path.parent}; wait for it to end "
                            "or give this run another --cache") from None
        except OSError as e:  # a filesystem without locks: say so, run unguarded
            self.log(f"[theory] cannot lock {self.path} ({e.strerror or e}): a second run on this cache would not "
                     "be refused")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> bool:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
        return False


def prerun_mde(out: Path, previous: dict, log: Callable = print) -> dict:
    """The MDE stated before the ladder ran (``analysis.prerun_mde``) from ``<out>/topic_b_transfer_logits_summary.csv``;
    {} without that file. A malformed one is one line: the previous run JSON's statement (`previous`) is kept,
    else the statement is left out."""
    from subliminal.topic_b.theory import analysis

    p = Path(out) / PRERUN
    if not p.exists():
        return {}
    try:
        return analysis.prerun_mde(read_csv_checked(p, required=PRERUN_COLUMNS))
    except (UserError, KeyError, ValueError, TypeError, AttributeError) as e:
        log(f"[theory] {p} is not the logits route's summary ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
            + ("the MDE stated before the runs is kept from the previous run JSON" if previous else
               "the MDE stated before the runs is left out") + ": restore it from git or rerun topic_b_transfer.py")
        return previous
