"""A verified cache: safetensors files (no pickle) and JSON records that carry their own SHA-256.

A record is `{"body": ..., "sha256": <hash of the body>}`; a tensor file is trusted only through the
hash a verified record holds for it: its sidecar (`save_tensors` / `load_tensors`) or a record of the
caller's (`write_tensors` / `read_tensors`). Anything missing is absent; anything unreadable, edited or not
matching is treated as absent too, with one line saying so, and is never used. Failed writes (a full
disk) raise `CacheWriteError`, one line, not a library traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from subliminal.assets import sha256_file
from subliminal.cli import UserError
from subliminal.results import atomic_write_text


class CacheWriteError(UserError, OSError):
    """The cache could not be written (e.g. the disk is full): one line, with what to do."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _write_failed(path: Path, e: Exception) -> CacheWriteError:
    return CacheWriteError(f"cannot write the cache file {path} ({e}); free disk space or point --cache-dir elsewhere")


def write_record(path: Path, body: dict[str, Any]) -> None:
    """Atomically write `body` with its hash."""
    try:
        atomic_write_text(path, json.dumps({"body": body, "sha256": _body_hash(body)}, indent=1, default=str))
    except OSError as e:
        raise _write_failed(path, e) from None


def read_record(path: Path) -> dict[str, Any] | None:
    """The body of a record whose hash matches; None (and one line) for anything else but a missing file."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        ok = isinstance(doc, dict) and isinstance(doc.get("body"), dict) and doc.get("sha256") == _body_hash(doc["body"])
    except (OSError, ValueError) as e:
        log(f"[cache] unreadable record {path} ({type(e).__name__}); recomputing it")
        return None
    if not ok:
        log(f"[cache] {path} does not match its checksum (edited or corrupt); recomputing it")
        return None
    return doc["body"]


def write_tensors(path: Path, tensors: dict[str, Tensor]) -> str:
    """Atomically write a safetensors file; returns its SHA-256 for the record that vouches for it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:
        tmp.unlink(missing_ok=True)
        raise _write_failed(path, e) from None
    return digest


def read_tensors(path: Path, sha256: str | None) -> dict[str, Tensor] | None:
    """The tensors of `path` when its hash is `sha256`; None (and one line when the file exists) otherwise."""
    if sha256 is None or not path.exists():
        return None
    try:
        if sha256_file(path) == sha256:
            return load_file(str(path))
    except (OSError, SafetensorError) as e:
        log(f"[cache] unreadable {path} ({type(e).__name__}); recomputing it")
        return None
    log(f"[cache] {path} fails its checksum; recomputing it")
    return None


def save_tensors(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Tensors with a sidecar record (`path` with .json): `meta` and the tensors' SHA-256."""
    digest = write_tensors(path, tensors)
    write_record(path.with_suffix(".json"), {**meta, "sha256": digest})


def load_tensors(path: Path, expect_meta: dict[str, Any] | None = None) -> tuple[dict[str, Tensor], dict] | None:
    """(tensors, meta) written by `save_tensors` when the sidecar verifies, names `expect_meta` and vouches
    for the file; None otherwise (one line unless the entry is simply missing)."""
    if not path.exists():
        return None
    meta = read_record(path.with_suffix(".json"))
    if meta is None:
        return None
    if expect_meta and any(meta.get(k) != v for k, v in expect_meta.items()):
        log(f"[cache] {path} belongs to another configuration; recomputing it")
        return None
    tensors = read_tensors(path, meta.get("sha256"))
    return None if tensors is None else (tensors, meta)
