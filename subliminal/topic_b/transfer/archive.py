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
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from subliminal.assets import sha256_file
from subliminal.cli import UserError
from subliminal.results import atomic_write_text
from subliminal.topic_b.transfer import compact, sealed
from subliminal.topic_b.transfer.legacy import MANIFEST
from subliminal.topic_b.transfer.legacy import Legacy as _Legacy

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

    A missing or unreadable archive, cache, record or file is one line (``error: ...``) and exit 2.
    """
    from subliminal.cli import os_error_message

    try:
        return _main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
    except OSError as e:
        print(f"error: {os_error_message(e)}", file=sys.stderr)
    return 2


_CACHE_PARTS = ("data", "eval", "teacher_logits", *_FOLDER_UNITS)  # what a transfer cache holds


def _source(path: str, flag: str):
    """The archive at `path` to read from, refused (one line) when missing, unreadable or listing nothing."""
    compact.check_source(path, MANIFEST, flag)
    said: list[str] = []
    arc = open_archive(Path(path).expanduser(), said.append)
    if not arc.names():
        raise UserError(f"{path} lists no files" + (f" ({said[0]})" if said else " (its manifest is empty or not "
                        "valid JSON)") + f"; give {flag} an archive that sync, pack or rebuild wrote")
    return arc


def _cache(path: str, flag: str, must_exist: bool) -> Path:
    """A transfer cache folder: refused (one line) when it is a file, or, to read from, missing or not a cache."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UserError(f"{p} is a file, not a transfer cache folder; give {flag} the cache folder")
    if must_exist and not any((p / d).is_dir() for d in _CACHE_PARTS):
        raise UserError(f"{p} is not a transfer cache (no {', '.join(_CACHE_PARTS)} folder"
                        f"{'' if p.exists() else '; it does not exist'}); give {flag} the run's cache folder")
    return p


def _dest(path: str, flag: str) -> str:
    """An archive path to write: refused (one line) when it is a file but not a readable .tar (never overwritten)."""
    p = Path(path).expanduser()
    if p.is_file():
        compact.check_source(p, MANIFEST, flag)
    return str(p)


def _main(argv: list[str] | None) -> int:
    import argparse

    from subliminal.assets import cache_dir

    compact_default = str(cache_dir() / compact.DEFAULT_NAME)
    cache_default = str(cache_dir() / "transfer")
    p = argparse.ArgumentParser(prog="python -m subliminal.topic_b.transfer.archive",
                                description="copy a transfer run's finished artefacts to or from a portable archive")
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
        print(f"sync: {sync(_cache(a.cache, '--cache', True), _dest(a.archive, '--archive'))} files")
    elif a.action in ("restore", "unpack"):
        src, flag = (a.archive, "--archive") if a.action == "restore" else (a.src or compact_default, "--from")
        cache = _cache(a.cache, "--cache", False) if a.action == "restore" else _cache(a.dest or cache_default, "--to", False)
        print(f"{a.action}: {restore(_source(src, flag).path, cache)} files")
    elif a.action == "pack":
        src = a.src or cache_default
        if not Path(src).exists():
            raise UserError(f"{src} does not exist; give --from an archive or a transfer cache folder (the committed "
                            "run's fp32 folder is in git history: use rebuild)")
        is_archive = Path(src).is_file() or (Path(src) / MANIFEST).is_file() or compact.is_compact(src)
        dest = compact.Compact(_dest(a.dest or compact_default, "--to"))
        if is_archive:
            names = _source(src, "--from").names()
            if a.only and Path(a.only) not in {_unit(Path(n)) for n in names}:
                raise UserError(f"{src} holds no unit {a.only}; --only takes a unit of it, e.g. students/<name>")
        n = convert(src, dest, only=a.only) if is_archive else sync(_cache(src, "--from", True), dest)
        if a.record:
            atomic_write_text(a.record, compact.manifest_text(dest.files))
        print(f"pack: {n} files into {dest.path} ({len(dest.files)} in all)" + (f"; record {a.record}" if a.record else ""))
    elif a.action == "rebuild":
        dest = _dest(a.dest or compact_default, "--to")
        print(f"rebuild: {rebuild(dest, a.commit)} files from {a.commit}:{LEGACY} into {dest}")
        return 0 if compact.verify(dest, a.record or RECORD) else 1
    elif a.action == "verify":
        path = a.paths[0] if a.paths else compact_default
        compact.check_source(path, MANIFEST, "verify")
        if not compact.is_compact(path):
            raise UserError(f"{path} is a legacy fp32 folder; verify checks compact archives: pack it first "
                            "(archive pack --from it --to X.tar) and verify X.tar")
        return 0 if compact.verify(path, a.record or RECORD) else 1
    else:
        return _check(a.paths, a.record or RECORD)
    return 0


def _check(paths: list[str], record: str) -> int:
    """``check FILE...``: which artefact of `record` each file is; 1 when one matches none."""
    if not paths:
        raise UserError("check needs the files to look up: archive check FILE... [--record FILE]")
    files, found = compact.read_record(record), 0
    if not files:
        raise UserError(f"{record} is missing or not a {compact.FORMAT} manifest; give --record the committed "
                        f"record ({RECORD})")
    for f in paths:
        try:
            data = Path(f).read_bytes()
        except OSError as e:
            raise UserError(f"{f} cannot be read ({e.strerror or e}); give check the files to look up") from None
        got = compact.which(data, files)
        found += bool(got)
        print(f"{f}: {'; '.join(got) if got else 'matches no artefact of ' + record}")
    return 0 if found == len(paths) else 1


if __name__ == "__main__":
    raise SystemExit(main())
