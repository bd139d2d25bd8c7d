"""The SHA-256 manifest of an output folder: what ``results.OutputSet`` wrote there, so a reader can tell a
result file from an edited, truncated or swapped one (``reporting.verify``).

One manifest per folder, ``<out>/sha256.json`` (``NAME``), updated by every OutputSet committed into the
folder and moved in with the files it lists (all or nothing)::

    {"format": "subliminal-outputs-sha256/1",
     "about": "...",
     "files": {
     "topic_b_transfer_theory.csv": {"by": "python topic_b_transfer_theory.py", "sha256": "…", "size": 1234},
     ...
     }
    }

Keys are paths relative to the folder (posix, no '..'); ``by`` is the command that wrote the file (what to rerun).
Files written into the folder any other way have no entry: a reader calls them unverified, not wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path, PurePosixPath

NAME = "sha256.json"
FORMAT = "subliminal-outputs-sha256/1"
ABOUT = ("SHA-256 and size of every file results.OutputSet wrote into this folder, recorded as it wrote them, and "
         "the command that wrote it; the report checks a result against it before reading it "
         "(subliminal/checksums.py, subliminal/reporting/verify.py)")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def safe_rel(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def writer() -> str:
    """The command this process runs, as a user would rerun it: ``python -m pkg.mod`` or ``python script.py``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return f"python -m {spec.name.removesuffix('.__main__')}"
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return f"python {Path(argv0).name}" if argv0 else "python"


class ManifestError(ValueError):
    """A manifest that exists but cannot be read (not JSON, another format)."""


def read(folder: str | os.PathLike) -> dict[str, dict] | None:
    """{relative path: {"sha256", "size", "by"}} of `folder`'s manifest; None when it has none; ManifestError
    (one line) when it has one that cannot be read."""
    p = Path(folder) / NAME
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ManifestError(f"{p} cannot be read ({e.strerror or e})") from None
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{p} is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("files"), dict):
        raise ManifestError(f"{p} is not a {FORMAT} manifest")
    return {k: v for k, v in m["files"].items()
            if safe_rel(k) and isinstance(v, dict) and isinstance(v.get("sha256"), str)}


def text(files: dict[str, dict]) -> str:
    """The manifest as JSON, one file a line, sorted (small diffs when a run rewrites a few files)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(files.items())]
    return (f'{{"format": {json.dumps(FORMAT)},\n "about": {json.dumps(ABOUT)},\n "files": {{\n'
            + ",\n".join(lines) + "\n }\n}\n")


def entry(path: Path, by: str) -> dict:
    return {"sha256": sha256_file(path), "size": path.stat().st_size, "by": by}
