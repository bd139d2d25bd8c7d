"""The command line of every script: one-line user errors (`UserError`, `os_error_message`) and the
dataclass-driven parser and entry point (`parse_config`, `cli_main`). Devices and seeding: `subliminal.devices`."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from subliminal.interrupt import MESSAGE, restore_ctrl_c

T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix (bad flag, missing data, unknown model). Printed as one line."""


def _arg_type(tp: Any) -> tuple[Any, dict[str, Any]]:
    """Map a dataclass field annotation to argparse (type, extra kwargs)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _arg_type(non_none[0])
    if origin in (tuple, list, Sequence):
        inner = args[0] if args else str
        return inner, {"nargs": "+"}
    if origin is typing.Literal:
        return type(args[0]), {"choices": list(args)}
    return tp, {}


def parse_config(config_cls: type[T], argv: Sequence[str] | None = None, description: str | None = None) -> T:
    """Build an argparse parser from a dataclass and return a config instance.

    Field `foo_bar` becomes `--foo-bar`; bools become `--foo-bar/--no-foo-bar`; tuple/list fields take
    several values; `field(metadata={"help": ...})` gives the help text. A config class may define
    `quick()` (a classmethod returning the quick config) which `--quick` selects before other flags
    are applied, and `validate()` which raises UserError.
    """
    hints = typing.get_type_hints(config_cls)
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    has_quick = hasattr(config_cls, "quick")
    if has_quick:
        parser.add_argument("--quick", action="store_true", help="small configuration that finishes in about a minute")
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        tp = hints[f.name]
        if tp is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} (default: {default})")
            continue
        typ, extra = _arg_type(tp)
        if typ in (typing.Any,):
            typ = str
        parser.add_argument(flag, dest=f.name, type=typ, default=None, help=f"{help_text} (default: {default})", **extra)
    ns = parser.parse_args(argv)
    base = config_cls.quick() if has_quick and ns.quick else config_cls()
    updates = {}
    for f in dataclasses.fields(config_cls):
        v = getattr(ns, f.name)
        if v is not None:
            tp = hints[f.name]
            if typing.get_origin(tp) is tuple or tp is tuple:
                v = tuple(v)
            updates[f.name] = v
    cfg = dataclasses.replace(base, **updates)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def os_error_message(e: OSError) -> str:
    """One line for a failed read or write: what happened to which file, and what to do."""
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    what = e.strerror or f"{type(e).__name__}: {e}"
    if e.errno == errno.ENOSPC:
        return f"disk full{where}; free some space and rerun (finished parts are kept)"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{what}{where}; use a writable --out (or cache folder) or fix its permissions"
    if e.errno == errno.ENOENT:
        return f"{what}{where}; check the path"
    return f"{what}{where}"


def cli_main(main_fn: Callable[[T], Any], config_cls: type[T], argv: Sequence[str] | None = None) -> None:
    """Parse the config, run `main_fn(cfg)`, and turn a UserError (bad flag, bad or missing data, an
    unreadable model file) or an OSError (disk full, read-only, permission) into one line on stderr
    and exit 2."""
    restore_ctrl_c()  # a script's import-time Ctrl-C handler (interrupt.quiet_ctrl_c) hands over to the one below
    doc = sys.modules.get(getattr(main_fn, "__module__", ""), None)
    description = (doc.__doc__ or "").strip() if doc is not None and doc.__doc__ else None
    try:
        cfg = parse_config(config_cls, argv, description=description)
        main_fn(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(MESSAGE, file=sys.stderr)
        sys.exit(130)

