"""What the report reads is what the scripts wrote: result files against the SHA-256 recorded when they were
written, and a run's records against the summary they produced.

- ``verify_outputs(folder, names)``: each named file of an output folder against the folder's manifest
  (``<folder>/sha256.json``, written by ``results.OutputSet``: ``subliminal.checksums``). A file whose bytes
  differ from its entry (edited, truncated, replaced) or that is missing though recorded is a ``UserError``
  of one line naming it and the command to rerun. Files the manifest does not list (written before manifests
  existed, or not through an OutputSet) are returned, and noted for ``unverified_warning``: the report warns,
  it does not fail, on results without a manifest.
- ``verify_records(records_dir, run_json)``: the ladder's run JSON lists ``"records": {"<dir>/record.json":
  "<sha256>"}`` (paths relative to `records_dir`); every listed record must exist with that hash, and every
  ``*/record.json`` in `records_dir` (``*/*/record.json`` for the base matrix, whose records sit under their
  student base: `pattern`) must be listed (a record the outputs were not built from). The first bad one is a
  ``UserError`` naming it. A run JSON without ``records`` (written before they were listed) is noted
  as unverified.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from subliminal import checksums
from subliminal.cli import UserError

_unverified: dict[str, None] = {}  # files read without a recorded hash, in the order met (for one warning)


def verify_outputs(folder: str | os.PathLike, names) -> list[Path]:
    """Check the files `names` (relative to `folder`) against `folder`'s manifest; raise a one-line UserError
    for the first that does not match or is missing though recorded; return (and note) the files that exist
    but have no recorded hash. A name that neither exists nor is recorded is skipped (a script not run yet)."""
    folder = Path(folder)
    try:
        files = checksums.read(folder)
    except checksums.ManifestError as e:
        raise UserError(f"{e}: the hashes of the results in {folder} cannot be checked; restore it "
                        f"(git checkout {folder / checksums.NAME}) or rerun the scripts that write {folder}") from None
    unverified = []
    for name in names:
        rel = Path(name).as_posix()
        p = folder / rel
        e = (files or {}).get(rel)
        if e is None:
            if p.exists():
                unverified.append(p)
                _unverified.setdefault(str(p))
            continue
        rerun = f"restore it (git checkout {p}) or rerun `{e.get('by') or 'the script that writes it'}`"
        if not p.is_file():
            raise UserError(f"{p} is missing, though {folder / checksums.NAME} records it; {rerun}")
        try:
            size, digest = p.stat().st_size, checksums.sha256_file(p)
        except OSError as err:
            raise UserError(f"{p} cannot be read ({err.strerror or err}); {rerun}") from None
        if digest != e["sha256"]:
            how = _how(size, e.get("size"))
            raise UserError(f"{p} does not match the SHA-256 recorded when it was written ({how}; "
                            f"{folder / checksums.NAME}); {rerun}")
    return unverified


def _how(size: int, recorded) -> str:
    if not isinstance(recorded, int):
        return "edited or replaced"
    if size < recorded:
        return f"truncated: {size} of {recorded} bytes"
    return "edited" if size == recorded else f"edited: {size} bytes, {recorded} recorded"


def verify_records(records_dir: str | os.PathLike, run_json, pattern: str = "*/record.json") -> int:
    """Check the records a run JSON (a path, or the parsed dict) lists against the files in `records_dir`:
    each listed one exists with its recorded SHA-256, and no record there (`pattern`) is unlisted. Raises a
    one-line UserError naming the first bad file; returns the number checked (0 for a run JSON that lists
    no records: noted as unverified)."""
    records_dir = Path(records_dir)
    source = run_json if not isinstance(run_json, dict) else None
    if source is not None:
        try:
            run_json = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{source} cannot be read ({type(e).__name__}: {e}); restore it "
                            f"(git checkout {source}) or rerun the script that writes it") from None
    where = source or "the run JSON"
    listed = run_json.get("records") if isinstance(run_json, dict) else None
    if listed is None:
        _unverified.setdefault(f"{records_dir} (the run JSON lists no record hashes)")
        return 0
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise UserError(f"{where}: its \"records\" is not a map of record path to SHA-256; rerun the ladder")
    fix = f"restore it (git checkout {records_dir}) or rerun the ladder, which rebuilds its outputs from its records"
    rels = {}
    for k, digest in listed.items():
        rel = k.removeprefix(records_dir.name + "/") if not (records_dir / k).exists() else k
        if not checksums.safe_rel(rel):
            raise UserError(f"{where}: record path {k!r} is not inside {records_dir}; rerun the ladder")
        rels[rel] = digest
    for rel, digest in sorted(rels.items()):
        p = records_dir / rel
        if not p.is_file():
            raise UserError(f"{p} is missing, though {where} lists it; {fix}")
        try:
            got = checksums.sha256_file(p)
        except OSError as e:
            raise UserError(f"{p} cannot be read ({e.strerror or e}); {fix}") from None
        if got != digest:
            raise UserError(f"{p} does not match the SHA-256 that {where} records (edited or truncated); {fix}")
    for p in sorted(records_dir.glob(pattern)):
        if p.relative_to(records_dir).as_posix() not in rels:
            raise UserError(f"{p} is not among the records {where} lists (added after the outputs were written); "
                            "rerun the ladder to rebuild its outputs from every record, or remove it")
    return len(rels)


def unverified_warning(clear: bool = True) -> str | None:
    """One line naming the files read so far without a recorded hash (None when there are none)."""
    if not _unverified:
        return None
    names = list(_unverified)
    if clear:
        _unverified.clear()
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return (f"warning: {len(names)} result file(s) read without a recorded SHA-256 (written before hashes were "
            f"recorded): {shown}; rerun their scripts to record one")
