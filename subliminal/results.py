"""Result I/O: atomic writes (temp file + rename), tidy CSVs, and a JSON of config + provenance."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)
_PACKAGES = ("torch", "numpy", "pandas", "scipy", "transformers", "gguf", "accelerate", "matplotlib")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so that a reader sees either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give results the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(df: pd.DataFrame, path: str | os.PathLike, float_format: str = "%.6g") -> Path:
    return atomic_write_text(path, df.to_csv(index=False, float_format=float_format, lineterminator="\n"))


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    v = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in _PACKAGES:
        try:
            v[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return v


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def write_run_json(path: str | os.PathLike, config: Any, seed: int | None, wall_seconds: float,
                   extra: dict[str, Any] | None = None) -> Path:
    """The provenance file beside every result: config, seed, versions, git commit, wall time."""
    import torch

    doc = {
        "config": to_jsonable(config),
        "seed": seed,
        "wall_seconds": round(float(wall_seconds), 2),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        # other work on the machine slows a run: the 1-minute load average when it finished
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        "device_note": "cuda" if torch.cuda.is_available() else "cpu",
    }
    if extra:
        doc.update(to_jsonable(extra))
    return atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")


def write_bench_json(script: str | os.PathLike, out: dict[str, Any], loadavg_at_start: float) -> Path:
    """A benchmark's result beside its script (``bench/x.py`` → ``bench/x.json``) with the machine's state,
    so README's speed table is generated, not typed."""
    record = {**out, "loadavg_1min_at_start": loadavg_at_start, "versions": versions(),
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return atomic_write_text(Path(script).with_suffix(".json"), json.dumps(record, indent=1) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())
