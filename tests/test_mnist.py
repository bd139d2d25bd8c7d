"""MNIST loading: restricted unpickling, IDX roots, the real split sizes and label counts."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from subliminal.cli import UserError
from subliminal.topic_a.mnist import MNIST_TEST_LABEL_COUNTS, load_idx_root, read_idx, restricted_loads


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_other_globals():
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(pickle.dumps({"a": io.BytesIO()}, protocol=2))


def test_restricted_unpickler_loads_plain_arrays():
    data = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    x, y = restricted_loads(pickle.dumps(data, protocol=2))
    np.testing.assert_array_equal(x, data[0])
    np.testing.assert_array_equal(y, data[1])


def _write_idx(path, arr: np.ndarray, gz: bool):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    (gzip.open(path.with_name(path.name + ".gz"), "wb") if gz else open(path, "wb")).write(raw)


def _tiny_root(tmp_path, gz=False):
    d = tmp_path / "MNIST" / "raw"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tx, ty = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    ex, ey = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
    for name, a in (("train-images-idx3-ubyte", tx), ("train-labels-idx1-ubyte", ty),
                    ("t10k-images-idx3-ubyte", ex), ("t10k-labels-idx1-ubyte", ey)):
        _write_idx(d / name, a, gz)
    return tx, ty, ex, ey


@pytest.mark.parametrize("gz", [False, True])
def test_idx_root_loading(tmp_path, gz):
    tx, ty, ex, ey = _tiny_root(tmp_path, gz)
    data = load_idx_root(tmp_path)
    assert data.train_x.dtype == torch.uint8 and data.train_y.dtype == torch.int64
    np.testing.assert_array_equal(data.train_x.numpy(), tx)
    np.testing.assert_array_equal(data.test_y.numpy(), ey)
    x = data.float_inputs("test")
    assert x.shape == (5, 784) and x.min() >= -1 and x.max() <= 1


def test_truncated_idx_and_empty_root_are_clear_errors(tmp_path):
    _tiny_root(tmp_path)
    p = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(UserError, match="truncated or corrupt"):
        read_idx(p)
    with pytest.raises(UserError, match="no MNIST IDX files"):
        load_idx_root(tmp_path / "nowhere")


def test_real_mnist_split_sizes_and_label_counts(mnist):
    assert mnist.train_x.shape == (60_000, 28, 28) and mnist.test_x.shape == (10_000, 28, 28)
    assert torch.bincount(mnist.test_y).tolist() == list(MNIST_TEST_LABEL_COUNTS)
    assert torch.bincount(mnist.train_y).sum() == 60_000
    assert mnist.train_x.max() == 255 and mnist.train_x.min() == 0
