"""How a transfer run travels to another machine: the repository's one scheme (``subliminal/carry.py``).

Every finished unit of the run is one sealed record (``carry.keep``), kept as it finishes in
``<out>/topic_b_transfer_records/<unit>/record.json`` and committed with the outputs; every variant of the run
(routes, teachers, defence, models) shares the one folder, as it shares the one cache. ``<unit>`` is the unit's
path in the cache:

- ``data/<model>/<teacher>-<key>``: a teacher's data folder, every verified file of it as text (``settings.json``,
  the shards, the defence's ``neutral_min_logp.json``). The sampled numbers are records, not recomputed: sampling
  on another machine need not draw the same tokens, and the students' keys hold their data's hash, so a
  finished student is found again and an unfinished one continues on exactly the same data;
- ``eval/<key>``: an evaluation table (``eval_cache.py``): its CSV text and wall time;
- ``students/<name>``, ``trait_teachers/<name>``: a finished LoRA fine-tune: its ``train.json``, its adapter
  config, the logits route's ``kl_start``, and the file name and SHA-256 of its final adapter, kept in 16 bits
  beside it in the cache, outside git (``adapter_fp16.safetensors``: ``carry.keep_tensors``).

``restore`` (at the start of every run) writes each verified record back into the cache in the cache's own
format (sealed files, ``sealed.py``), where the run looks, never over a verified file there: the run then skips
what is finished. A fine-tune's adapter comes back (upcast to fp32) only when its kept file is in the cache and
matches the record's SHA-256 (``carry.read_kept``; copy the ``adapter_fp16.safetensors`` files along to carry
them); a student whose evaluation is on record needs none, one that must be evaluated again without it is
retrained. An edited record, or a kept adapter that fails its SHA-256, is named in one line and never used.
The logits route's teacher distributions (``teacher_logits/``) are artefacts: cache only, recomputed when missing.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from safetensors.torch import load_file, save

from subliminal import carry
from subliminal.cache import read_record
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.finetune import ADAPTER_FILES
from subliminal.topic_b.transfer.plan import root

STEM = "topic_b_transfer"  # the records folder: <out>/topic_b_transfer_records, for every variant of the run
KEPT = "adapter_fp16.safetensors"  # a finished fine-tune's final adapter in 16 bits, beside its train.json
TRAINED = ("students", "trait_teachers")


def quiet(msg: str) -> None:
    """A log that says nothing (a check whose failure is not news)."""


def records(cfg: TransferConfig) -> Path:
    """The run's records folder, ``<out>/topic_b_transfer_records``."""
    return carry.records_dir(cfg.out, STEM)


def unit_of(cfg: TransferConfig, path: Path) -> str:
    """The unit's slot: its path in the cache."""
    return Path(path).relative_to(root(cfg)).as_posix()


def _text(path: Path) -> str | None:
    """The text of a sealed cache file that matches its seal; None otherwise (it is recomputed, not recorded)."""
    raw = sealed.read_sealed(path, quiet)
    try:
        return raw.decode() if raw is not None else None
    except UnicodeDecodeError:
        return None


def keep_data(cfg: TransferConfig, folder: Path | str) -> None:
    """Keep a teacher's data folder (every verified file in it, as text) as its unit's record."""
    folder = Path(folder)
    files = {p.name: _text(p) for p in sorted(folder.iterdir()) if p.is_file() and not sealed.is_seal(p)
             and not p.name.startswith(".")} if folder.is_dir() else {}
    files = {k: v for k, v in files.items() if v is not None}
    if files:
        carry.keep(records(cfg), unit_of(cfg, folder), {"unit": unit_of(cfg, folder), "files": files})


def keep_eval(cfg: TransferConfig, key: str, table: bytes, seconds: float | None) -> None:
    """Keep an evaluation table (its CSV as written to the cache) and its wall time."""
    slot = f"eval/{key}"
    carry.keep(records(cfg), slot, {"unit": slot, "csv": table.decode(), "seconds": seconds})


def _adapter_ok(adapter: Path) -> bool:
    return all((adapter / f).is_file() for f in ADAPTER_FILES) and sealed.verify_tree(adapter, quiet)


def kept_body(cfg: TransferConfig, unit_dir: Path) -> dict | None:
    """The verified record of a fine-tune (student or trait teacher) in the records folder; None without one."""
    return read_record(records(cfg) / unit_of(cfg, unit_dir) / carry.RECORD)


def keep_trained(cfg: TransferConfig, unit_dir: Path, extra: dict | None = None) -> None:
    """Keep a finished fine-tune whose ``train.json`` verifies: its record, with its final adapter in 16 bits beside
    it in the cache (``carry.keep_tensors``), written from the fp32 adapter when that verifies; a record's kept
    adapter that still matches, or that this cache lacks, stays as it is. `extra`: numbers beside it (kl_start)."""
    unit_dir = Path(unit_dir)
    text = _text(unit_dir / "train.json")
    if text is None:
        return
    train, slot = json.loads(text), unit_of(cfg, unit_dir)
    old = kept_body(cfg, unit_dir) or {}
    old = old if old.get("train") == train else {}
    adapter = unit_dir / "adapter"
    if old.get("adapter") and carry.read_kept(unit_dir, old["adapter"]) is not None:
        entry, config = old["adapter"], old.get("adapter_config")
    elif _adapter_ok(adapter):
        entry = carry.keep_tensors(unit_dir / KEPT, load_file(str(adapter / ADAPTER_FILES[1])))
        config = (adapter / ADAPTER_FILES[0]).read_text()
    else:
        entry, config = old.get("adapter"), old.get("adapter_config")
    body = {**old, "unit": slot, "train": train, "adapter_config": config, "adapter": entry, **(extra or {}),
            "complete": True}
    carry.keep(records(cfg), slot, body)


def _put(path: Path, data: bytes, log=print) -> int:
    """Write `data` to the cache file `path` (sealed) unless a verified file is there (one line when an unverified
    one is: it is replaced, never used); 1 when written."""
    if sealed.read_sealed(path, quiet) is not None:
        return 0
    if path.exists():
        log(f"[cache] {path} does not match the checksum written with it (edited or corrupt); written again from "
            "its record")
    sealed.write_sealed(path, data)
    return 1


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def _restore_trained(unit_dir: Path, body: dict, log) -> int:
    """A fine-tune's adapter (from its kept 16-bit file, upcast, when it matches the record) and ``train.json``
    (last: it marks the unit done)."""
    n, adapter = 0, unit_dir / "adapter"
    have = all((adapter / f).is_file() and sealed.recorded(adapter / f) for f in ADAPTER_FILES)
    if not have and isinstance(body.get("adapter_config"), str):
        tensors = carry.read_kept(unit_dir, body.get("adapter"))
        if tensors is not None:
            n += _put(adapter / ADAPTER_FILES[0], body["adapter_config"].encode(), log)
            up = {k: v.float() for k, v in tensors.items()}
            n += _put(adapter / ADAPTER_FILES[1], save(up, metadata={"format": "pt"}), log)
    return n + _put(unit_dir / "train.json", (json.dumps(body["train"], indent=1) + "\n").encode(), log)


def restore(cfg: TransferConfig, log=print) -> int:
    """Write every verified record of the records folder back into the cache (``restore`` above); returns the
    number of files written."""
    base, cache, n = records(cfg), root(cfg), 0
    for f, body in carry.kept(base):
        slot = f.parent.relative_to(base).as_posix()
        if body.get("unit") != slot or not _safe(slot):
            continue
        kind = slot.split("/")[0]
        if kind == "data" and isinstance(body.get("files"), dict):
            n += sum(_put(cache / slot / name, text.encode(), log) for name, text in sorted(body["files"].items())
                     if isinstance(text, str) and _safe(name) and "/" not in name)
        elif kind == "eval" and isinstance(body.get("csv"), str):
            n += _put((cache / slot).with_suffix(".csv"), body["csv"].encode(), log)
            if body.get("seconds") is not None:
                side = (json.dumps({"seconds": body["seconds"]}) + "\n").encode()
                n += _put((cache / slot).with_suffix(".json"), side, log)
        elif kind in TRAINED and isinstance(body.get("train"), dict):
            n += _restore_trained(cache / slot, body, log)
    if n:
        log(f"[records] {n} files restored into {cache} from {base}")
    return n
