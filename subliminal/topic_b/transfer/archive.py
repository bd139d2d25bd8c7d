"""A portable copy of the run's finished artefacts, so a run continues on another machine or session.

``sync(cache, archive)`` copies what is finished from the transfer cache (teacher shards and their
settings, students and trait teachers that have a ``train.json``: adapter + record, evaluation tables,
the logits route's teacher distributions) into `archive` and records the SHA-256 of every file there, as
recorded in its seal when it was written (``sealed.py``). A file that does not match its seal is not copied
(nor the rest of its student). Checkpoints of unfinished students are not copied, nor the seals themselves.
``restore(archive, cache)`` copies back what the cache lacks, unit by unit (a student or trait-teacher
folder is one unit, restored only when every file in it matches the manifest and its ``train.json`` comes
last; any other file is its own unit). A file that does not match the manifest is refused with a
one-line message and the unit is recomputed instead; a restored file is sealed with the hash of its bytes.
Nothing here unpickles: adapters are safetensors.

Two formats (``open_archive``): the compact one (``compact.py``: a ``.tar`` or a folder with
``COMPACT.json``; fp16 adapters, everything else gzipped; kept outside git, ``pack`` builds one) and the
legacy fp32 folder (``MANIFEST.json``: {path: SHA-256}, files as written; ``plots_b/topic_b_transfer_cache``
as git history holds it, and any other path). ``convert`` copies one into the other; ``rebuild`` packs the
committed run's folder from git history; ``plots_b/topic_b_transfer_artifacts.json`` is the committed copy of the
compact manifest (``--record``) that every archive is verified against.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from subliminal.assets import sha256_file
from subliminal.cli import UserError
from subliminal.results import atomic_write_bytes, atomic_write_text
from subliminal.topic_b.transfer import compact, sealed

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


class _Legacy:
    """The fp32 archive folder (``MANIFEST.json``: {path: SHA-256}); files stored as they were written."""

    def __init__(self, path: str | Path, log=print):
        self.path = Path(path)
        self.manifest = _read_manifest(self.path)
        self.changed = False
        self.manifest_path = str(self.path / MANIFEST)

    def where(self, rel: str) -> str:
        return str(self.path / rel)

    def names(self) -> list[str]:
        return sorted(self.manifest)

    def hashes(self, rel: str) -> set[str]:
        return {self.manifest[rel]} if rel in self.manifest else set()

    def has(self, rel: str, digest: str) -> bool:
        return self.manifest.get(rel) == digest and (self.path / rel).is_file()

    def put(self, rel: str, data: bytes, digest: str) -> None:
        atomic_write_bytes(self.path / rel, data)
        self.manifest[rel] = digest
        self.changed = True

    def get(self, rel: str) -> bytes | None:
        data = _read(self.path / rel)
        return data if data is not None and hashlib.sha256(data).hexdigest() == self.manifest.get(rel) else None

    def commit(self) -> None:
        if self.changed or not (self.path / MANIFEST).exists():
            atomic_write_text(self.path / MANIFEST, json.dumps(dict(sorted(self.manifest.items())), indent=0) + "\n")
            self.changed = False


def open_archive(path: str | Path, log=print):
    """The archive at `path`: compact (a ``.tar``, or a folder with ``COMPACT.json``: ``compact.py``) or the
    legacy fp32 folder (anything else, e.g. ``plots_b/topic_b_transfer_cache`` from git history)."""
    return compact.Compact(path, log) if compact.is_compact(path) else _Legacy(path, log)


def sync(cache: str | Path, archive: str | Path, log=print) -> int:
    """Copy finished artefacts not yet in `archive` (or recomputed since) and rewrite its manifest; returns the
    number of files copied. Only files that match the checksum written with them are copied, a folder unit
    (a student) only when all of its files do, and the manifest gets the hashes recorded when they were
    written, never a hash of whatever is on disk now."""
    cache = Path(cache)
    arc = archive if hasattr(archive, "put") else open_archive(archive, log)
    units: dict[Path, list[Path]] = {}
    for rel in _finished(cache):
        units.setdefault(_unit(rel), []).append(rel)
    copied = 0
    for unit, files in units.items():
        seals = _seals(cache, files, log)
        if seals is None:
            continue
        todo = [r for r in files if not arc.has(r.as_posix(), seals[r])]
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
                arc.put(rel.as_posix(), data[rel], seals[rel])
                copied += 1
    arc.commit()
    return copied


def convert(source: str | Path, dest: str | Path, log=print, only: str | None = None) -> int:
    """Copy every verified unit of one archive (those under `only`, a unit path, when given) into another
    (e.g. the legacy fp32 folder into a compact ``.tar``), with the hashes the source's manifest records;
    returns the number of files copied."""
    src = open_archive(source, log)
    dst = dest if hasattr(dest, "put") else open_archive(dest, log)
    copied = 0
    for unit, files in _units(src.names()).items():
        if only and unit != Path(only):
            continue
        got = {f: src.get(f) for f in files}
        bad = [f for f in files if got[f] is None]
        if bad:
            log(f"[archive] {src.where(bad[0])} is missing or does not match {src.manifest_path}; {unit} not copied")
            continue
        for f in sorted(files, key=lambda f: Path(f).name == "train.json"):
            digest = _original(src, f)
            if not dst.has(f, digest):
                dst.put(f, got[f], digest)
                copied += 1
    dst.commit()
    return copied


def _original(arc, rel: str) -> str:
    """The hash `rel` was written with (for a compact fp16 adapter: the fp32 original's, not the upcast's)."""
    return arc.files[rel]["sha256"] if hasattr(arc, "files") else arc.manifest[rel]


def _units(names) -> dict[Path, list[str]]:
    units: dict[Path, list[str]] = {}
    for rel in names:
        units.setdefault(_unit(Path(rel)), []).append(rel)
    return units


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
    """Copy verified units the cache lacks from `archive` (legacy or compact) into `cache`, each file with a
    seal of the bytes restored (a compact adapter upcast to fp32); returns the number of files restored. Files
    the cache has already without a seal (written before seals existed) get one when they match the
    manifest (``_adopt``)."""
    cache = Path(cache)
    arc = open_archive(archive, log)
    restored = 0
    for unit, files in sorted(_units(arc.names()).items()):
        have = (cache / unit / "train.json").exists() if unit.parts[0] in _FOLDER_UNITS else (cache / unit).exists()
        if have:
            _adopt(cache, files, arc)
            continue
        data = {f: arc.get(f) for f in files}
        bad = [f for f in files if data[f] is None]
        if bad:
            log(f"[archive] {arc.where(bad[0])} is missing or does not match {arc.manifest_path}; not restored, "
                f"{unit} will be recomputed")
            continue
        for f in sorted(files, key=lambda f: Path(f).name == "train.json"):  # the record that marks it done last
            sealed.write_sealed(cache / f, data[f])
            restored += 1
    return restored


def _adopt(cache: Path, files: list[str], arc) -> None:
    """Seal the unsealed files of a unit the cache has when their content is what the manifest vouches for
    (a cache from before seals); anything else stays unsealed and is recomputed when it is needed."""
    for f in files:
        p = cache / f
        if p.is_file() and not sealed.seal_path(p).exists():
            try:
                digest = sha256_file(p)
            except OSError:
                continue
            if digest in arc.hashes(f):
                sealed.seal(p, digest)


def _read_manifest(archive: Path) -> dict[str, str]:
    p = archive / MANIFEST
    if not p.exists():
        return {}
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in m.items() if isinstance(k, str) and isinstance(v, str) and compact.safe_rel(k)}


RECORD = "plots_b/topic_b_transfer_artifacts.json"  # the committed copy of the compact manifest
LEGACY = "plots_b/topic_b_transfer_cache"  # the fp32 folder the committed run wrote; git history holds it
LEGACY_COMMIT = "cc4d048"  # the last commit that changed it (every later one up to its removal has the same tree)


def rebuild(dest: str | Path, commit: str = LEGACY_COMMIT, repo: str | Path = ".", log=print) -> int:
    """The compact archive of the committed run, rebuilt from the fp32 folder git history holds: ``git archive``
    streams `LEGACY` at `commit` (the work tree is not touched) into a temporary folder, and every unit that
    matches that folder's manifest is packed into `dest`; returns the number of files packed. Check the result
    against the committed record with ``verify``."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", commit, LEGACY],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise UserError(f"rebuild needs git ({e}); or pack from a folder: archive pack --from DIR") from None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as t:
                for m in t:  # regular files under LEGACY only, by a safe relative name: nothing else is written
                    if m.isfile() and m.name.startswith(LEGACY + "/") and compact.safe_rel(m.name):
                        out = Path(tmp) / m.name
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_bytes(t.extractfile(m).read())
        except tarfile.TarError:
            pass  # git failed (nothing on stdout): its message follows
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise UserError(f"git archive {commit} {LEGACY} in {repo} failed ({err.splitlines()[-1] if err else 'no message'});"
                            " run rebuild inside a full clone of the repository (not a --depth clone)")
        return convert(Path(tmp) / LEGACY, dest, log)


def main(argv: list[str] | None = None) -> int:
    """``python -m subliminal.topic_b.transfer.archive ACTION``:

    - ``sync|restore [--archive A] [--cache DIR]``: cache to archive or back (compact, the default
      ``~/.cache/subliminal/topic_b_transfer_archive.tar`` outside git, or a legacy folder);
    - ``rebuild [--to DEST] [--commit C]``: the committed run's compact archive from the fp32 folder git
      history holds (the work tree is not touched), verified against the committed record; then
      ``python topic_b_transfer.py ...`` continues the committed run instead of retraining it;
    - ``pack [--from SRC] [--to DEST] [--record FILE]``: a compact archive (``compact.py``; default as above)
      from an archive or a cache (default: the transfer cache); ``--record`` writes its manifest there too;
    - ``unpack [--from A] [--to DIR]``: restore into the cache (verified, adapters upcast to fp32);
    - ``verify [A] [--record FILE]``: every stored file against the manifest, and the archive against the
      committed record;
    - ``check FILE...``: which artefact of the record a file (rebuilt or fetched) is, by its SHA-256.
    """
    import argparse

    from subliminal.assets import cache_dir

    compact_default = str(cache_dir() / compact.DEFAULT_NAME)
    cache_default = str(cache_dir() / "transfer")
    p = argparse.ArgumentParser(description="copy a transfer run's finished artefacts to or from a portable archive")
    p.add_argument("action", choices=["sync", "restore", "pack", "unpack", "verify", "check", "rebuild"])
    p.add_argument("paths", nargs="*", help="verify: the archive; check: the files")
    p.add_argument("--archive", default=compact_default)
    p.add_argument("--cache", default=cache_default)
    p.add_argument("--from", dest="src", default=None)
    p.add_argument("--to", dest="dest", default=None)
    p.add_argument("--record", default=None)
    p.add_argument("--only", default=None, help="pack: one unit of the source (e.g. students/<name>)")
    p.add_argument("--commit", default=LEGACY_COMMIT, help=f"rebuild: the commit whose {LEGACY} to pack")
    a = p.parse_args(argv)
    if a.action == "sync":
        print(f"sync: {sync(a.cache, a.archive)} files")
    elif a.action == "restore":
        print(f"restore: {restore(a.archive, a.cache)} files")
    elif a.action == "pack":
        src, dest = a.src or cache_default, compact.Compact(a.dest or compact_default)
        if not Path(src).exists():
            p.error(f"{src} does not exist; give --from an archive or a transfer cache folder (the committed run's "
                    "fp32 folder is in git history: use rebuild)")
        is_archive = (Path(src) / MANIFEST).is_file() or compact.is_compact(src)
        n = convert(src, dest, only=a.only) if is_archive else sync(src, dest)
        if a.record:
            atomic_write_text(a.record, compact.manifest_text(dest.files))
        print(f"pack: {n} files into {dest.path} ({len(dest.files)} in all)" + (f"; record {a.record}" if a.record else ""))
    elif a.action == "rebuild":
        dest = a.dest or compact_default
        print(f"rebuild: {rebuild(dest, a.commit)} files from {a.commit}:{LEGACY} into {dest}")
        return 0 if compact.verify(dest, a.record or RECORD) else 1
    elif a.action == "unpack":
        print(f"unpack: {restore(a.src or compact_default, a.dest or cache_default)} files")
    elif a.action == "verify":
        return 0 if compact.verify(a.paths[0] if a.paths else compact_default, a.record or RECORD) else 1
    else:
        files, found = compact.read_record(a.record or RECORD), 0
        for f in a.paths:
            got = compact.which(Path(f).read_bytes(), files)
            found += bool(got)
            print(f"{f}: {'; '.join(got) if got else 'matches no artefact of ' + (a.record or RECORD)}")
        return 0 if found == len(a.paths) else 1
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UserError as e:
        sys.exit(f"error: {e}")
