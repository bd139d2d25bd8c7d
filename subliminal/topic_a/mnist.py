"""MNIST (and Fashion-MNIST) loading, offline first.

Sources for MNIST, in order:
  1. a torchvision-style root given by the user (`--data-root` or `$MNIST_ROOT`): IDX files
     `train-images-idx3-ubyte[.gz]` etc. directly in it, in `raw/`, or in `MNIST/raw/`;
  2. the verified `.npz` cache derived from the registry asset;
  3. the registry asset `mnist` (fetched, SHA-256 checked, unpickled with a restricted unpickler);
  4. torchvision's download, when torchvision is installed and the network allows.
Images come back as uint8 [N, 28, 28], labels as int64 [N]: 60,000 train and 10,000 test.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from subliminal import assets
from subliminal.cli import UserError
from subliminal.results import atomic_write_bytes, atomic_write_text

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
MNIST_TEST_SIZE = 10_000
MNIST_TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

# Fashion-MNIST: torchvision layout under a root, or the Debian package `dataset-fashion-mnist`.
FASHION_DEBIAN_DIRS = ("/usr/share/datasets/fashion-mnist",)
# SHA-256 of the IDX files the Debian package dataset-fashion-mnist (0.0~git20200523.55506a9-1) installs.
FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}


@dataclass
class ImageSet:
    """uint8 images [N, 28, 28] and int64 labels [N] for a train/test split."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str

    def float_inputs(self, split: str = "test", signed: bool = True) -> torch.Tensor:
        """Flattened float32 inputs [N, 784]: (x/255 − 0.5)/0.5 ∈ [−1, 1] when signed, else x/255 ∈ [0, 1]."""
        x = (self.train_x if split == "train" else self.test_x).reshape(-1, 784).float().div_(255.0)
        return x.mul_(2.0).sub_(1.0) if signed else x


# ----------------------------------------------------------------------------- restricted unpickling
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only the globals numpy needs to rebuild plain arrays; anything else is refused."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how Python 3 protocol-2 pickles spell bytes; pure, no side effects
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name}")
        if module == "numpy.core.multiarray":  # numpy ≥ 2 moved it; avoid the deprecation shim
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def restricted_loads(data: bytes):
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# ----------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally .gz) into a numpy array, checking its header against its size."""
    path = Path(path)
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise UserError(f"{path} is not a valid gzip file ({e}); replace it or give the uncompressed IDX file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise UserError(f"{path} has an unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise UserError(f"{path} is truncated or corrupt: header says {shape}, file has {len(raw) - offset} data bytes")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).copy()


def _find_idx_dir(root: Path, subdir: str) -> Path | None:
    for d in (root, root / "raw", root / subdir / "raw", root / subdir):
        if all((d / f).exists() or (d / (f + ".gz")).exists() for f in IDX_FILES.values()):
            return d
    return None


def load_idx_root(root: str | os.PathLike, subdir: str = "MNIST") -> ImageSet:
    root = Path(root).expanduser()
    d = _find_idx_dir(root, subdir)
    if d is None:
        raise UserError(f"no {subdir} IDX files under {root} (expected {', '.join(IDX_FILES.values())} "
                        f"[.gz] in it, in raw/ or in {subdir}/raw/); fix the path or drop --data-root")
    arrays = {}
    for key, fname in IDX_FILES.items():
        p = d / fname if (d / fname).exists() else d / (fname + ".gz")
        arrays[key] = read_idx(p)
    return _to_imageset(arrays, f"idx:{d}")


def _to_imageset(a: dict[str, np.ndarray], source: str) -> ImageSet:
    for k in ("train_x", "test_x"):
        if a[k].ndim != 3 or a[k].shape[1:] != (28, 28):
            raise UserError(f"{source}: {k} has shape {a[k].shape}, expected [N, 28, 28]")
    if len(a["train_x"]) != len(a["train_y"]) or len(a["test_x"]) != len(a["test_y"]):
        raise UserError(f"{source}: image and label counts differ")
    for k in ("train_y", "test_y"):
        y = a[k]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and not 0 <= y.min() <= y.max() <= 9):
            raise UserError(f"{source}: {k} must hold digit labels 0..9 (found {y.dtype} "
                            f"{'in ' + str(y.min()) + '..' + str(y.max()) if y.size else 'empty'}); this is not MNIST")
    return ImageSet(
        torch.from_numpy(np.ascontiguousarray(a["train_x"], dtype=np.uint8)),
        torch.from_numpy(np.ascontiguousarray(a["train_y"]).astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(a["test_x"], dtype=np.uint8)),
        torch.from_numpy(np.ascontiguousarray(a["test_y"]).astype(np.int64)),
        source,
    )


# ----------------------------------------------------------------------------- registry asset → npz cache
def _npz_path() -> Path:
    return assets.cache_dir() / f"mnist-{assets.get_asset('mnist').sha256[:16]}.npz"


def _load_npz_cache() -> ImageSet | None:
    path = _npz_path()
    stamp = path.with_suffix(".npz.sha256")
    if not (path.exists() and stamp.exists()):
        return None
    if assets.sha256_file(path) != stamp.read_text().strip():
        print(f"[mnist] cache {path} fails its checksum; rebuilding it", file=sys.stderr)
        return None
    with np.load(path, allow_pickle=False) as z:
        return _to_imageset({k: z[k] for k in IDX_FILES}, f"cache:{path}")


def convert_pickle(pkl_gz: Path) -> dict[str, np.ndarray]:
    """The verified (train, valid, test) pickle → uint8 arrays; train+valid is the 60k training set."""
    train, valid, test = restricted_loads(gzip.open(pkl_gz, "rb").read())

    def to_u8(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 256.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_x": np.concatenate([to_u8(train[0]), to_u8(valid[0])]),
        "train_y": np.concatenate([train[1], valid[1]]).astype(np.int64),
        "test_x": to_u8(test[0]),
        "test_y": np.asarray(test[1], dtype=np.int64),
    }


def _build_npz_cache() -> ImageSet:
    pkl = assets.fetch("mnist")  # hash-verified before we unpickle anything
    arrays = convert_pickle(pkl)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = atomic_write_bytes(_npz_path(), buf.getvalue())
    atomic_write_text(path.with_suffix(".npz.sha256"), assets.sha256_file(path) + "\n")
    return _to_imageset(arrays, f"asset:{pkl}")


def _torchvision_download(name: str) -> ImageSet:
    try:
        import torchvision  # noqa: F401  (optional dependency)
        from torchvision import datasets
    except Exception as e:  # ImportError or a broken torchvision build
        raise UserError(f"no {name} source available: no data root, no cache, registry fetch failed, and "
                        f"torchvision is not usable ({type(e).__name__}); pass --data-root DIR with the IDX files") from None
    root = assets.cache_dir() / "torchvision"
    cls = getattr(datasets, name)
    tr, te = cls(root, train=True, download=True), cls(root, train=False, download=True)
    return _to_imageset({"train_x": tr.data.numpy(), "train_y": tr.targets.numpy(),
                         "test_x": te.data.numpy(), "test_y": te.targets.numpy()}, f"torchvision:{root}")


def load_mnist(data_root: str | os.PathLike | None = None) -> ImageSet:
    """MNIST 60k/10k as uint8 tensors from the first available source (see module docstring)."""
    root = data_root or os.environ.get("MNIST_ROOT")
    if root:
        return load_idx_root(root, "MNIST")
    cached = _load_npz_cache()
    if cached is not None:
        return cached
    try:
        return _build_npz_cache()
    except UserError as e:
        print(f"[mnist] registry asset unavailable ({e}); trying torchvision download", file=sys.stderr)
        return _torchvision_download("MNIST")


def load_fashion_mnist(data_root: str | os.PathLike | None = None) -> ImageSet | None:
    """Fashion-MNIST from a torchvision root or the Debian package; None when absent (never downloads)."""
    for root in [Path(p) for p in (data_root, os.environ.get("FASHION_MNIST_ROOT")) if p]:
        if _find_idx_dir(root, "FashionMNIST") is not None:
            return load_idx_root(root, "FashionMNIST")
    for root in map(Path, FASHION_DEBIAN_DIRS):
        if _find_idx_dir(root, "FashionMNIST") is not None:
            for fname, digest in FASHION_SHA256.items():
                got = assets.sha256_file(root / fname) if (root / fname).exists() else "missing"
                if got != digest:
                    raise UserError(f"{root / fname} does not match the pinned SHA-256 (expected {digest}, got {got}); "
                                    "reinstall dataset-fashion-mnist or set FASHION_MNIST_ROOT")
            return load_idx_root(root, "FashionMNIST")
    return None
