"""A verified tensor cache: safetensors files (no pickle) with a JSON sidecar holding their SHA-256.

A cache entry is used only when its sidecar exists, names the same key, and the file's hash matches;
anything else is treated as absent (and reported), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor

from subliminal.assets import sha256_file
from subliminal.results import atomic_write_text


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_tensors(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    atomic_write_text(path.with_suffix(".json"), json.dumps({**meta, "sha256": digest}, indent=1, default=str))


def load_tensors(path: Path, expect_meta: dict[str, Any] | None = None) -> tuple[dict[str, Tensor], dict] | None:
    side = path.with_suffix(".json")
    if not (path.exists() and side.exists()):
        return None
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError:
        print(f"[cache] unreadable sidecar {side}; ignoring the entry", file=sys.stderr)
        return None
    if expect_meta and any(meta.get(k) != v for k, v in expect_meta.items()):
        print(f"[cache] {path} belongs to another config; ignoring it", file=sys.stderr)
        return None
    if sha256_file(path) != meta.get("sha256"):
        print(f"[cache] {path} fails its checksum; recomputing", file=sys.stderr)
        return None
    return load_file(str(path)), meta
