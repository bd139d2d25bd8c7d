"""A portable copy of the run's finished artefacts, so a run continues on another machine or session.

``sync(cache, archive)`` copies what is finished from the transfer cache (teacher shards and their
settings, students and trait teachers that have a ``train.json``: adapter + record, evaluation tables,
the logits route's teacher distributions) into `archive` (e.g. ``plots_b/topic_b_transfer_cache``,
committed with the results) and writes ``MANIFEST.json`` there: the SHA-256 of every file, as recorded in
its seal when it was written (``sealed.py``). A file that does not match its seal is not copied (nor the
rest of its student). Checkpoints of unfinished students are not copied, nor the seals themselves.
``restore(archive, cache)`` copies back what the cache lacks, unit by unit (a student or trait-teacher
folder is one unit, restored only when every file in it matches the manifest and its ``train.json`` comes
last; any other file is its own unit). A file that does not match the manifest is refused with a
one-line message and the unit is recomputed instead; a restored file is sealed with the manifest's hash.
Nothing here unpickles: adapters are safetensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from subliminal.assets import sha256_file
from subliminal.results import atomic_write_bytes, atomic_write_text
from subliminal.topic_b.transfer import sealed

MANIFEST = "MANIFEST.json"
_FOLDER_UNITS = ("students", "trait_teachers")  # <kind>/<name>/...: done when <name>/train.json exists


def _finished(cache: Path) -> list[Path]:
    """Relative paths of the finished artefacts in `cache` (seals and checkpoints left out)."""
    out = [p for p in cache.glob("data/*/*/*") if p.suffix in (".json", ".jsonl") and p.is_file()]
    out += [p for p in cache.glob("eval/*") if p.suffix in (".csv", ".json") and p.is_file()]
    out += [p for p in cache.glob("teacher_logits/*") if p.suffix in (".safetensors", ".json") and p.is_file()]
    for kind in _FOLDER_UNITS:
        for done in cache.glob(f"{kind}/*/train.json"):
            out += [p for p in done.parent.rglob("*")
                    if p.is_file() and "checkpoint" not in p.name and not sealed.is_seal(p)]
    return sorted(p.relative_to(cache) for p in out)


def _unit(rel: Path) -> Path:
    return Path(*rel.parts[:2]) if rel.parts[0] in _FOLDER_UNITS else rel


def _seals(cache: Path, files: list[Path], log) -> dict[Path, str] | None:
    """{file: the SHA-256 recorded when it was written} for one unit whose every file has a valid seal; None
    (one line) for a unit with a file that has none."""
    got = {}
    for rel in files:
        digest = sealed.recorded(cache / rel)
        if digest is None:
            _say(log, f"[archive] {cache / rel} has no valid checksum record; {_unit(rel)} not archived")
            return None
        got[rel] = digest
    return got


def sync(cache: str | Path, archive: str | Path, log=print) -> int:
    """Copy finished artefacts not yet in `archive` (or recomputed since) and rewrite its manifest; returns the
    number of files copied. Only files that match the checksum written with them are copied, a folder unit
    (a student) only when all of its files do, and the manifest gets the hashes recorded when they were
    written, never a hash of whatever is on disk now."""
    cache, archive = Path(cache), Path(archive)
    manifest = _read_manifest(archive)
    units: dict[Path, list[Path]] = {}
    for rel in _finished(cache):
        units.setdefault(_unit(rel), []).append(rel)
    copied = 0
    for unit, files in units.items():
        seals = _seals(cache, files, log)
        if seals is None:
            continue
        todo = [r for r in files if manifest.get(str(r)) != seals[r] or not (archive / r).is_file()]
        data = {}
        for rel in todo:
            b = _read(cache / rel)
            if b is None or hashlib.sha256(b).hexdigest() != seals[rel]:
                _say(log, f"[archive] {cache / rel} does not match the checksum written with it (edited or "
                          f"corrupt); {unit} not archived")
                break
            data[rel] = b
        else:
            for rel in sorted(todo, key=lambda r: r.name == "train.json"):  # the record that marks it done last
                atomic_write_bytes(archive / rel, data[rel])
                manifest[str(rel)] = seals[rel]
                copied += 1
    if copied or not (archive / MANIFEST).exists():
        atomic_write_text(archive / MANIFEST, json.dumps(dict(sorted(manifest.items())), indent=0) + "\n")
    return copied


_said: set[str] = set()


def _say(log, msg: str) -> None:
    """`msg` once per process (``sync`` runs after every student)."""
    if msg not in _said:
        _said.add(msg)
        log(msg)


def _read(p: Path) -> bytes | None:
    try:
        return p.read_bytes()
    except OSError:
        return None


def restore(archive: str | Path, cache: str | Path, log=print) -> int:
    """Copy verified units the cache lacks from `archive` into `cache`, each file with a seal holding the hash
    the manifest vouches for; returns the number of files restored. Files the cache has already without a
    seal (written before seals existed) get one when they match the manifest (``_adopt``)."""
    archive, cache = Path(archive), Path(cache)
    manifest = _read_manifest(archive)
    units: dict[Path, list[Path]] = {}
    for rel in map(Path, manifest):
        units.setdefault(_unit(rel), []).append(rel)
    restored = 0
    for unit, files in sorted(units.items()):
        have = (cache / unit / "train.json").exists() if unit.parts[0] in _FOLDER_UNITS else (cache / unit).exists()
        if have:
            _adopt(cache, files, manifest)
            continue
        data = {f: _read(archive / f) for f in files}
        bad = [f for f in files if data[f] is None or hashlib.sha256(data[f]).hexdigest() != manifest[str(f)]]
        if bad:
            log(f"[archive] {archive / bad[0]} is missing or does not match {archive / MANIFEST}; not restored, "
                f"{unit} will be recomputed")
            continue
        for f in sorted(files, key=lambda f: f.name == "train.json"):  # the record that marks it done goes last
            sealed.write_sealed(cache / f, data[f])
            restored += 1
    return restored


def _adopt(cache: Path, files: list[Path], manifest: dict[str, str]) -> None:
    """Seal the unsealed files of a unit the cache has when their content is what the manifest vouches for
    (a cache from before seals); anything else stays unsealed and is recomputed when it is needed."""
    for f in files:
        p = cache / f
        if p.is_file() and not sealed.seal_path(p).exists():
            try:
                ok = sha256_file(p) == manifest[str(f)]
            except OSError:
                ok = False
            if ok:
                sealed.seal(p, manifest[str(f)])


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
