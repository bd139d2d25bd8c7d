"""A portable copy of the run's finished artefacts, so a run continues on another machine or session.

``sync(cache, archive)`` copies what is finished from the transfer cache (teacher shards and their
settings, students and trait teachers that have a ``train.json``: adapter + record, evaluation tables,
the logits route's teacher distributions)
into `archive` (e.g. ``plots_b/topic_b_transfer_cache``, committed with the results) and writes
``MANIFEST.json`` there: the SHA-256 of every file. Checkpoints of unfinished students are not copied.
``restore(archive, cache)`` copies back what the cache lacks, unit by unit (a student or trait-teacher
folder is one unit, restored only when every file in it matches the manifest and its ``train.json`` comes
last; any other file is its own unit). A file that does not match the manifest is refused with a
one-line message and the unit is recomputed instead. Nothing here unpickles: adapters are safetensors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from subliminal.assets import sha256_file
from subliminal.results import atomic_write_bytes, atomic_write_text

MANIFEST = "MANIFEST.json"
_FOLDER_UNITS = ("students", "trait_teachers")  # <kind>/<name>/...: done when <name>/train.json exists


def _finished(cache: Path) -> list[Path]:
    """Relative paths of the finished artefacts in `cache`."""
    out = [p for p in cache.glob("data/*/*/*") if p.suffix in (".json", ".jsonl") and p.is_file()]
    out += [p for p in cache.glob("eval/*") if p.suffix in (".csv", ".json") and p.is_file()]
    out += [p for p in cache.glob("teacher_logits/*") if p.suffix in (".safetensors", ".json") and p.is_file()]
    for kind in _FOLDER_UNITS:
        for done in cache.glob(f"{kind}/*/train.json"):
            out += [p for p in done.parent.rglob("*") if p.is_file() and "checkpoint" not in p.name]
    return sorted(p.relative_to(cache) for p in out)


def _unit(rel: Path) -> Path:
    return Path(*rel.parts[:2]) if rel.parts[0] in _FOLDER_UNITS else rel


def sync(cache: str | Path, archive: str | Path) -> int:
    """Copy finished artefacts not yet in `archive` (or changed) and rewrite its manifest; returns the number of files copied."""
    cache, archive = Path(cache), Path(archive)
    manifest = _read_manifest(archive)
    copied = 0
    for rel in _finished(cache):
        if str(rel) in manifest and _unchanged(cache / rel, archive / rel):
            continue  # copied before and untouched since: skip the hash
        digest = sha256_file(cache / rel)
        if manifest.get(str(rel)) == digest and (archive / rel).exists():
            continue
        atomic_write_bytes(archive / rel, (cache / rel).read_bytes())
        manifest[str(rel)] = digest
        copied += 1
    if copied or not (archive / MANIFEST).exists():
        atomic_write_text(archive / MANIFEST, json.dumps(dict(sorted(manifest.items())), indent=0) + "\n")
    return copied


def _unchanged(src: Path, dst: Path) -> bool:
    """`dst` exists with `src`'s size and was written after `src` last changed (a copy ``sync`` made)."""
    try:
        s, d = src.stat(), dst.stat()
    except OSError:
        return False
    return s.st_size == d.st_size and s.st_mtime_ns <= d.st_mtime_ns


def restore(archive: str | Path, cache: str | Path, log=print) -> int:
    """Copy verified units the cache lacks from `archive` into `cache`; returns the number of files restored."""
    archive, cache = Path(archive), Path(cache)
    manifest = _read_manifest(archive)
    units: dict[Path, list[Path]] = {}
    for rel in map(Path, manifest):
        units.setdefault(_unit(rel), []).append(rel)
    restored = 0
    for unit, files in sorted(units.items()):
        have = (cache / unit / "train.json").exists() if unit.parts[0] in _FOLDER_UNITS else (cache / unit).exists()
        if have:
            continue
        bad = [f for f in files if not (archive / f).is_file() or sha256_file(archive / f) != manifest[str(f)]]
        if bad:
            log(f"[archive] {archive / bad[0]} is missing or does not match {archive / MANIFEST}; not restored, "
                f"{unit} will be recomputed")
            continue
        for f in sorted(files, key=lambda f: f.name == "train.json"):  # the record that marks it done goes last
            (cache / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(archive / f, cache / f)
            restored += 1
    return restored


def _read_manifest(archive: Path) -> dict[str, str]:
    p = archive / MANIFEST
    if not p.exists():
        return {}
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in m.items() if isinstance(k, str) and isinstance(v, str)}


def main(argv: list[str] | None = None) -> None:
    """``python -m subliminal.topic_b.transfer.archive sync|restore [--archive DIR] [--cache DIR]``."""
    import argparse

    from subliminal.assets import cache_dir

    p = argparse.ArgumentParser(description="copy a transfer run's finished artefacts to or from a portable archive")
    p.add_argument("action", choices=["sync", "restore"])
    p.add_argument("--archive", default="plots_b/topic_b_transfer_cache")
    p.add_argument("--cache", default=str(cache_dir() / "transfer"))
    a = p.parse_args(argv)
    n = sync(a.cache, a.archive) if a.action == "sync" else restore(a.archive, a.cache)
    print(f"{a.action}: {n} files")


if __name__ == "__main__":
    main()
