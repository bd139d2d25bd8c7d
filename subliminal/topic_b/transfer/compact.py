"""The compact archive of a transfer run: what a run needs to continue elsewhere, in about half the bytes.

A compact archive is a folder or a ``.tar`` (kept outside git, e.g. ``~/.cache/subliminal/``) that holds the
same artefacts as the legacy fp32 folder (``archive.py``), each stored in one of two encodings:

- ``fp16``: a LoRA adapter (``adapter_model.safetensors``) with every fp32 tensor rounded to float16. Adapter
  values are small (the largest |value| in the 41 adapters of the first run is 0.054, far below fp16's 65504),
  so fp16's 10 mantissa bits beat bfloat16's 7: worst per-tensor relative error 3e-4 against 1.9e-3, largest
  absolute error 1.5e-5 against 1.2e-4. A tensor that would overflow fp16 is stored in bfloat16 instead.
  Restoring upcasts to fp32 (what the code and PEFT load), a safetensors file like the one training wrote.
- ``gzip``: every other file (shards, settings, records, evaluation tables, teacher distributions), exact.

Its manifest ``COMPACT.json`` (``FORMAT``) gives, per artefact (path relative to the cache): ``sha256`` and
``size`` of the original file as sealed when it was written (for an adapter: the fp32 file), the ``stored``
name with its ``stored_sha256`` and ``stored_size``, and for fp16 adapters ``restored_sha256``, the hash of
the upcast fp32 file. A copy of the manifest is committed with the results
(``plots_b/topic_b_transfer_artifacts.json``), so anyone can check an archive or an adapter they rebuild or
fetch against it. Reading never unpickles: safetensors, gzip and JSON only; tar members are read, never
extracted, and only the names the manifest lists, relative and without '..'.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from subliminal.cli import UserError
from subliminal.results import atomic_write_bytes, atomic_write_text

FORMAT = "subliminal-transfer-compact/1"
COMPACT = "COMPACT.json"
ADAPTER = "adapter_model.safetensors"
DEFAULT_NAME = "topic_b_transfer_archive.tar"  # beside the transfer cache: the run's default archive (--archive auto)
_FP16_MAX = 65504.0


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_compact(path: str | Path) -> bool:
    """A ``.tar`` path or a folder holding ``COMPACT.json``."""
    path = Path(path)
    return path.suffix == ".tar" or (path / COMPACT).is_file()


def check_source(path: str | Path, legacy_manifest: str, flag: str) -> None:
    """Refuse (one-line UserError, naming `flag`) an archive path to read from that is missing, not a readable
    ``.tar``, or a folder with neither ``COMPACT.json`` nor `legacy_manifest`."""
    path = Path(path).expanduser()
    hint = f"give {flag} a compact archive (.tar, or a folder with {COMPACT}) or a legacy folder ({legacy_manifest})"
    if not path.exists():
        raise UserError(f"no archive at {path}; {hint}, or build one: python -m subliminal.topic_b.transfer.archive "
                        "rebuild")
    if path.is_file():
        if path.suffix != ".tar":
            raise UserError(f"{path} is a file but not a .tar archive; {hint}")
        try:
            with tarfile.open(path, "r:") as t:
                t.getmembers()
        except (OSError, tarfile.TarError) as e:
            raise UserError(f"{path} is not a readable tar archive ({e}); {hint}") from None
    elif not ((path / COMPACT).is_file() or (path / legacy_manifest).is_file()):
        raise UserError(f"{path} holds no archive manifest ({COMPACT} or {legacy_manifest}); {hint}")


def safe_rel(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


# --- encodings -------------------------------------------------------------------------------------------

def encoding_of(rel: str) -> str:
    return "fp16" if PurePosixPath(rel).name == ADAPTER else "gzip"


def stored_name(rel: str) -> str:
    return rel[: -len(".safetensors")] + ".f16.safetensors" if encoding_of(rel) == "fp16" else rel + ".gz"


def _metadata(data: bytes) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors file, read from its JSON header."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8: 8 + n]).get("__metadata__")


def to16(data: bytes) -> bytes:
    """An fp32 safetensors file with its float32 tensors in float16 (bfloat16 where fp16 would overflow)."""
    import torch
    from safetensors.torch import load, save

    def half(t):
        if t.dtype != torch.float32:
            return t
        finite = t[t.isfinite()]
        big = finite.numel() > 0 and float(finite.abs().max()) > _FP16_MAX
        return t.to(torch.bfloat16 if big else torch.float16)

    return save({k: half(v) for k, v in load(data).items()}, metadata=_metadata(data))


def to32(data: bytes) -> bytes:
    """The fp32 safetensors file of a 16-bit one (``to16``'s inverse up to its rounding)."""
    import torch
    from safetensors.torch import load, save

    up = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in load(data).items()}
    return save(up, metadata=_metadata(data))


def encode(rel: str, data: bytes) -> bytes:
    return to16(data) if encoding_of(rel) == "fp16" else gzip.compress(data, compresslevel=9, mtime=0)


def decode(encoding: str, stored: bytes) -> bytes:
    if encoding == "fp16":
        return to32(stored)
    if encoding == "gzip":
        return gzip.decompress(stored)
    raise ValueError(f"unknown encoding {encoding!r}")


# --- where the stored files live: a folder or a .tar --------------------------------------------------

class _Folder:
    def __init__(self, path: Path):
        self.path = path

    def read(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except OSError:
            return None

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def commit(self, pending: dict[str, bytes], manifest: str, keep: set[str]) -> None:
        for name, b in pending.items():
            atomic_write_bytes(self.path / name, b)
        atomic_write_text(self.path / COMPACT, manifest)  # last: a kill before it leaves unlisted files only


class _Tar:
    """A tar with plain members (its files are compressed already); rewritten atomically on commit."""

    def __init__(self, path: Path, log=print):
        self.path, self.log = path, log
        self._members: dict[str, tarfile.TarInfo] | None = None
        self._tar: tarfile.TarFile | None = None

    def _open(self) -> dict[str, tarfile.TarInfo]:
        if self._members is None:
            self._members = {}
            if self.path.is_file():
                try:
                    self._tar = tarfile.open(self.path, "r:")
                    self._members = {m.name: m for m in self._tar.getmembers() if m.isreg()}
                except (OSError, tarfile.TarError) as e:
                    self.log(f"[archive] {self.path} is not a readable tar ({e}); treated as empty")
                    self._tar = None
        return self._members

    def read(self, name: str) -> bytes | None:
        m = self._open().get(name)
        if m is None or self._tar is None:
            return None
        try:
            return self._tar.extractfile(m).read()
        except (OSError, tarfile.TarError):
            return None

    def has(self, name: str) -> bool:
        return name in self._open()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        self._tar, self._members = None, None

    def commit(self, pending: dict[str, bytes], manifest: str, keep: set[str]) -> None:
        self._open()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:", format=tarfile.PAX_FORMAT) as out:
                _add(out, COMPACT, manifest.encode())
                for name in sorted(keep):
                    if name in pending:
                        _add(out, name, pending[name])
                    elif self._members and name in self._members:
                        _add(out, name, self._tar.extractfile(self._members[name]).read())
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            self.close()
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)  # the same bytes give the same tar: no times, owners or modes of this machine
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    out.addfile(info, io.BytesIO(data))


# --- the archive ---------------------------------------------------------------------------------------

class Compact:
    """A compact archive at `path` (``.tar`` or folder), the same interface as ``legacy.Legacy``."""

    def __init__(self, path: str | Path, log=print):
        self.path = Path(path)
        self.store = _Tar(self.path, log) if self.path.suffix == ".tar" else _Folder(self.path)
        self.log = log
        self.files = self._read_manifest()
        self.pending: dict[str, bytes] = {}
        self.changed = False

    @property
    def manifest_path(self) -> str:
        return f"{self.path}:{COMPACT}" if isinstance(self.store, _Tar) else str(self.path / COMPACT)

    def where(self, rel: str) -> str:
        e = self.files.get(rel)
        name = e["stored"] if e else stored_name(rel)
        return f"{self.path}:{name}" if isinstance(self.store, _Tar) else str(self.path / name)

    def _read_manifest(self) -> dict[str, dict]:
        raw = self.store.read(COMPACT)
        if raw is None:
            return {}
        try:
            m = json.loads(raw)
        except ValueError:
            self.log(f"[archive] {self.manifest_path} is not valid JSON; the archive is treated as empty")
            return {}
        return entries(m)

    def names(self) -> list[str]:
        return sorted(self.files)

    def hashes(self, rel: str) -> set[str]:
        """The hashes a cache file may have and be this artefact: the original, or its upcast copy."""
        e = self.files.get(rel) or {}
        return {h for h in (e.get("sha256"), e.get("restored_sha256")) if h}

    def has(self, rel: str, digest: str) -> bool:
        e = self.files.get(rel)
        return e is not None and digest in self.hashes(rel) and (e["stored"] in self.pending
                                                                  or self.store.has(e["stored"]))

    def put(self, rel: str, data: bytes, digest: str) -> None:
        """Store `data` (the file whose recorded SHA-256 is `digest`) in its encoding."""
        enc = encoding_of(rel)
        stored = encode(rel, data)
        e = self.files.get(rel)
        if e and e["stored_sha256"] == sha(stored) and self.store.has(e["stored"]):
            return  # an upcast copy of what is stored already: keep the original's hash
        e = {"sha256": digest, "size": len(data), "encoding": enc, "stored": stored_name(rel),
             "stored_sha256": sha(stored), "stored_size": len(stored)}
        if enc == "fp16":
            e["restored_sha256"] = sha(decode(enc, stored))
        self.files[rel], self.pending[e["stored"]] = e, stored
        self.changed = True

    def get(self, rel: str) -> bytes | None:
        """The restored bytes of `rel` when its stored file matches the manifest (and, gzip, the original's
        hash); None otherwise."""
        e = self.files.get(rel)
        stored = self.store.read(e["stored"]) if e else None
        if stored is None or sha(stored) != e["stored_sha256"]:
            return None
        try:
            data = decode(e["encoding"], stored)
        except (ValueError, OSError, EOFError, struct.error):
            return None
        if e["encoding"] == "gzip" and sha(data) != e["sha256"]:
            return None
        return data

    def commit(self) -> None:
        if self.changed or not self.store.has(COMPACT):
            keep = {e["stored"] for e in self.files.values()}
            self.store.commit(self.pending, manifest_text(self.files), keep)
            self.pending, self.changed = {}, False
            if isinstance(self.store, _Tar):
                self.store.close()


def entries(m) -> dict[str, dict]:
    """The well-formed, safe entries of a manifest (``COMPACT.json`` or the committed record)."""
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("files"), dict):
        return {}
    need = ("sha256", "encoding", "stored", "stored_sha256")
    return {k: v for k, v in m["files"].items() if safe_rel(k) and isinstance(v, dict)
            and all(isinstance(v.get(f), str) for f in need) and safe_rel(v["stored"])}


def manifest_text(files: dict[str, dict]) -> str:
    """The manifest as JSON, one artefact a line (small diffs when a run adds students)."""
    about = ("transfer-run artefacts: sha256/size = the original file as sealed when written (fp32 for "
             "adapters); stored = its compact copy (fp16 adapters, gzip otherwise); restored_sha256 = the fp32 "
             "file restored from an fp16 adapter (subliminal/topic_b/transfer/compact.py)")
    lines = [f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(files.items())]
    return (f'{{"format": {json.dumps(FORMAT)},\n "about": {json.dumps(about)},\n "files": {{\n'
            + ",\n".join(lines) + "\n }\n}\n")


# --- checking an archive or a file against a manifest -----------------------------------------------------

def read_record(path: str | Path) -> dict[str, dict]:
    """The entries of a committed record (``plots_b/topic_b_transfer_artifacts.json``); {} when unreadable."""
    try:
        return entries(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return {}


def verify(path: str | Path, record: str | Path | None = None, log=print) -> bool:
    """Whether every file of the compact archive at `path` matches its manifest (stored hash; restored
    bytes: gzip the original's hash, fp16 the upcast's) and, with `record`, whether the archive holds every
    artefact of that record with the same hashes. One line per problem and a summary line."""
    arc = Compact(path, log)
    if not arc.files:
        log(f"[verify] {arc.manifest_path} is missing or lists nothing")
        return False
    bad = 0
    for rel in arc.names():
        e = arc.files[rel]
        data = arc.get(rel)
        if data is None or sha(data) != e.get("restored_sha256", e["sha256"]):
            log(f"[verify] {arc.where(rel)} is missing or does not match {arc.manifest_path}")
            bad += 1
    rec = read_record(record) if record else {}
    if record and not rec:
        log(f"[verify] {record} is missing or not a {FORMAT} manifest")
        bad += 1
    for rel, r in rec.items():
        e = arc.files.get(rel)
        if e is None or (e["sha256"], e["stored_sha256"]) != (r["sha256"], r["stored_sha256"]):
            log(f"[verify] {rel}: {'absent from' if e is None else 'differs from'} the archive at {path} "
                f"(record {record})")
            bad += 1
    log(f"[verify] {path}: {len(arc.files)} files, {bad} problems" + (f"; checked against {record}" if rec else ""))
    return bad == 0


def which(data: bytes, files: dict[str, dict]) -> list[str]:
    """What a file (rebuilt or fetched) is according to a manifest: '<path> (<form>)' for every artefact whose
    original, stored or restored hash it has; [] when none."""
    h = sha(data)
    forms = (("sha256", "original"), ("stored_sha256", "stored"), ("restored_sha256", "restored fp32"))
    return [f"{rel} ({name})" for rel, e in sorted(files.items()) for key, name in forms if e.get(key) == h]
