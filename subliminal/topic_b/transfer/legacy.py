"""The legacy fp32 archive folder of a transfer run (``archive.py``): ``MANIFEST.json`` ({path: SHA-256}) and
the files as they were written (``plots_b/topic_b_transfer_cache`` as git history holds it, or any folder)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from subliminal.results import atomic_write_bytes, atomic_write_text
from subliminal.topic_b.transfer import compact

MANIFEST = "MANIFEST.json"


class Legacy:
    """The fp32 archive folder (``MANIFEST.json``: {path: SHA-256}); files stored as they were written."""

    def __init__(self, path: str | Path, log=print):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
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


def _read(p: Path) -> bytes | None:
    try:
        return p.read_bytes()
    except OSError:
        return None


def read_manifest(archive: Path) -> dict[str, str]:
    p = archive / MANIFEST
    if not p.exists():
        return {}
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return {}
    if not isinstance(m, dict):
        return {}
    return {k: v for k, v in m.items() if isinstance(k, str) and isinstance(v, str) and compact.safe_rel(k)}
