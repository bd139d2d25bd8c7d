"""How a run travels to another machine: one scheme for every room (Topic A's sweeps, the ladder, the base matrix,
the transfer run).

- **Records in git.** Every finished unit of a run (a student, a teacher's samples, an evaluation) is one sealed
  record (``cache.write_record``: JSON that carries the SHA-256 of its own body) in the run's records folder beside
  its outputs, ``<out>/<stem>_records/<slot>/record.json``, committed with the results. Records are small: numbers
  a report reads, never weights.
- **Artefacts outside git.** What is big (adapters, checkpoints, weights) stays in the cache, each file vouched
  for by the SHA-256 its record holds (``keep_tensors`` / ``read_kept``). A finished LoRA student's final adapter is
  kept in 16 bits, so a committed student can be scored or probed again without retraining it.
- **Continuing elsewhere.** ``restore`` puts every verified record back where its run reads it (a ``place``
  function of the record), never over one that is further along; the run then skips what is finished and
  retrains the rest (teachers retrain deterministically from their seeds). An edited or corrupt record is named
  in one line and ignored, never used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from subliminal.cache import read_record, read_tensors, write_record, write_tensors

RECORD = "record.json"


def plain(x):
    """A value as a record stores it (tuples as lists, other objects as their str): what records compare by."""
    return json.loads(json.dumps(x, default=str))


def records_dir(out: Path | str, stem: str) -> Path:
    """The records folder of the run whose outputs are ``<out>/<stem>*``."""
    return Path(out) / f"{stem}_records"


def keep(records: Path, slot: str, body: dict) -> Path:
    """Keep a unit's record at ``<records>/<slot>/record.json`` (unless the same body is there already)."""
    dest = Path(records) / slot / RECORD
    if read_record(dest) != body:
        write_record(dest, body)
    return dest


def kept(records: Path, pattern: str = f"**/{RECORD}") -> Iterator[tuple[Path, dict]]:
    """(file, body) of every verified record under `records` whose path matches `pattern` (any depth by default),
    in path order."""
    root = Path(records)
    for f in sorted(root.glob(pattern)) if root.is_dir() else []:
        body = read_record(f)
        if body is not None:
            yield f, body


def further(new: dict, old: dict | None) -> bool:
    """Whether record `new` goes over `old` (the one in the cache): there is none; or `new` holds every milestone
    `old` holds and is finished if `old` is; or, for records without milestones, `new` is finished and `old` not."""
    if old is None:
        return True
    mine, theirs = set(new.get("milestones") or {}), set(old.get("milestones") or {})
    if mine or theirs:
        return theirs <= mine and (bool(new.get("complete")) or not old.get("complete"))
    return bool(new.get("complete")) and not old.get("complete")


def restore(records: Path, place: Callable[[Path, dict], Path | None],
            advance: Callable[[dict, dict | None], bool] = further, pattern: str = f"**/{RECORD}") -> int:
    """Put every verified record under `records` (matching `pattern`) at ``place(file, body)`` (a path in the
    cache; None: not this run's) where ``advance(body, record there)`` holds; returns how many were written."""
    n = 0
    for f, body in kept(records, pattern):
        dest = place(f, body)
        if dest is None:
            continue
        there = read_record(dest)
        if there != body and advance(body, there):
            write_record(dest, body)
            n += 1
    return n


def keep_tensors(path: Path, tensors: dict[str, torch.Tensor], dtype: torch.dtype = torch.float16) -> dict:
    """Write `tensors` (in `dtype`) to `path` outside git; returns the entry a record keeps for it: file name,
    SHA-256 and dtype (``read_kept`` verifies against it)."""
    digest = write_tensors(Path(path), {k: v.detach().to(dtype) for k, v in tensors.items()})
    return {"file": Path(path).name, "sha256": digest, "dtype": str(dtype).removeprefix("torch.")}


def read_kept(folder: Path, entry: dict | None) -> dict[str, torch.Tensor] | None:
    """The tensors a record's `entry` (``keep_tensors``) vouches for, from `folder`; None when the file is
    missing or does not match (one line), so the caller recomputes them."""
    entry = entry or {}
    if not entry.get("file"):
        return None
    return read_tensors(Path(folder) / entry["file"], entry.get("sha256"))
