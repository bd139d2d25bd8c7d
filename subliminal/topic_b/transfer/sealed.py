"""Sealed cache files: every file the transfer experiment reads back carries the SHA-256 it was written with.

A sealed file ``x`` has a seal ``x.sha256`` beside it: a self-hashed record (``cache.write_record``) holding
the file's name and the SHA-256 of the bytes written (``{"file": "x", "sha256": ...}``). The file is written
first and its seal second, so a file killed before its seal reads as unsealed, never as verified. A reader
gets the bytes only when they match the seal (``read_sealed``); a missing seal, an edited file or an edited
seal is one line and ``None``, and the caller recomputes. What a run keeps on record (``carried.py``) is read
from verified files only, and what it restores is written back sealed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from subliminal.assets import sha256_file
from subliminal.cache import read_record, write_record
from subliminal.cli import UserError
from subliminal.results import atomic_write_bytes

SUFFIX = ".sha256"


def check_writable(root: Path) -> None:
    """A one-line UserError before any work when the cache folder cannot be created or written (read-only,
    no permission), instead of a failed write after hours of sampling or training."""
    import tempfile

    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-", suffix=".tmp"):
            pass
    except OSError as e:
        raise UserError(f"cache folder {root} is not writable ({e.strerror or e}); give --cache (or "
                        "$SUBLIMINAL_CACHE) a folder you can write") from None


def seal_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + SUFFIX)


def is_seal(path: Path) -> bool:
    return Path(path).name.endswith(SUFFIX)


def seal(path: Path, digest: str | None = None) -> str:
    """Write the seal of `path`: `digest` (the hash of the bytes just written) or, for files written by a
    library (``save_pretrained``), the hash of the file as it is now. Returns the digest."""
    path = Path(path)
    digest = digest or sha256_file(path)
    write_record(seal_path(path), {"file": path.name, "sha256": digest})
    return digest


def write_sealed(path: Path, data: bytes) -> str:
    """Atomically write `data` to `path`, then its seal; returns the SHA-256."""
    path = Path(path)
    digest = hashlib.sha256(data).hexdigest()
    seal_path(path).unlink(missing_ok=True)  # a kill between the two writes leaves the file unsealed, not mis-sealed
    atomic_write_bytes(path, data)
    return seal(path, digest)


def recorded(path: Path) -> str | None:
    """The SHA-256 the seal of `path` records; None when there is no valid seal for this file name
    (``read_record`` says one line when the seal itself is edited or unreadable)."""
    path = Path(path)
    body = read_record(seal_path(path))
    if body is None or body.get("file") != path.name or not isinstance(body.get("sha256"), str):
        return None
    return body["sha256"]


def read_sealed(path: Path, log=print) -> bytes | None:
    """The bytes of `path` when they match its seal; None for a missing file (silently) and for an unsealed,
    edited or unreadable one (one line: it is recomputed)."""
    path = Path(path)
    if not path.exists():
        return None
    digest = recorded(path)
    if digest is None:
        log(f"[cache] {path} has no valid checksum record (written by an older version or interrupted); "
            "recomputing it")
        return None
    try:
        data = path.read_bytes()
    except OSError as e:
        log(f"[cache] {path} cannot be read ({e.strerror or e}); recomputing it")
        return None
    if hashlib.sha256(data).hexdigest() != digest:
        log(f"[cache] {path} does not match the checksum written with it (edited or corrupt); recomputing it")
        return None
    return data


def verify(path: Path, log=print) -> bool:
    """Whether `path` exists and matches its seal (hashed from disk: for large files such as adapters)."""
    path = Path(path)
    if not path.is_file():
        log(f"[cache] {path} is missing; recomputing it")
        return False
    digest = recorded(path)
    if digest is None:
        log(f"[cache] {path} has no valid checksum record; recomputing it")
        return False
    try:
        ok = sha256_file(path) == digest
    except OSError:
        ok = False
    if not ok:
        log(f"[cache] {path} does not match the checksum written with it (edited or corrupt); recomputing it")
    return ok


def seal_tree(folder: Path) -> dict[str, str]:
    """Seal every file under `folder` (just written by a library); returns {relative path: SHA-256}."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): seal(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not is_seal(p)}


def verify_tree(folder: Path, log=print) -> bool:
    """Whether `folder` holds at least one file and every file in it matches its seal."""
    files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file() and not is_seal(p)] if Path(folder).is_dir() else []
    if not files:
        log(f"[cache] {folder} is missing or empty; recomputing it")
        return False
    return all(verify(p, log) for p in files)
