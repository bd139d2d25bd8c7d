"""Distillation / training inputs for Topic A, generated batch by batch from seeded generators.

Nothing the size of N × 60,000 × 784 is ever materialised: a fixed noise set is defined by its
seeds, chunk c of model-stacked noise always comes from `default_rng([seed, stream, c])`, so each
model sees the same images every epoch (in a per-epoch shuffled chunk order). `fresh` noise seeds
chunks by epoch too. `shared` noise is one (B, 784) batch used by every model (one GEMM in layer 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

NOISE_KINDS = ("uniform", "gaussian")
STREAM_IDS = {"uniform": 11, "gaussian": 12}


def _epoch_order(n: int, seed: int, epoch: int, stream: int) -> np.ndarray:
    return np.random.default_rng([seed, stream, 7919, epoch]).permutation(n)


@dataclass
class NoiseSource:
    """Uniform or Gaussian noise images.

    signed=True: uniform on [−1, 1] (Gaussian: mean 0, std 1/√3, the same mean and variance);
    signed=False: uniform on [0, 1) (Gaussian: mean 1/2, std 1/√12).
    regime 'fixed': `n_images` distinct images per model reused every epoch; 'fresh': new every batch.
    """

    kind: str
    n_models: int
    seed: int
    signed: bool = True
    regime: str = "fixed"
    shared: bool = False
    n_images: int = 60_000  # distinct images per model (fixed regime)
    n_per_epoch: int = 60_000
    batch_size: int = 1024
    d_in: int = 784

    def __post_init__(self):
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise kind {self.kind!r}")
        if self.regime not in ("fixed", "fresh"):
            raise ValueError(f"unknown noise regime {self.regime!r}")
        self._pool: Tensor | None = None

    def describe(self) -> dict:
        return {"kind": self.kind, "signed": self.signed, "regime": self.regime, "shared": self.shared,
                "n_images": self.n_images if self.regime == "fixed" else None, "n_per_epoch": self.n_per_epoch}

    def _gen(self, rng: np.random.Generator, b: int) -> Tensor:
        shape = (b, self.d_in) if self.shared else (self.n_models, b, self.d_in)
        if self.kind == "uniform":
            x = torch.from_numpy(rng.random(shape, dtype=np.float32))
            return x.mul_(2.0).sub_(1.0) if self.signed else x
        x = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
        mean, std = (0.0, 3 ** -0.5) if self.signed else (0.5, 12 ** -0.5)
        return x.mul_(std).add_(mean)

    def _chunk(self, c: int, epoch: int | None) -> Tensor:
        key = [self.seed, STREAM_IDS[self.kind], int(self.shared), c] + ([] if epoch is None else [epoch, 1])
        size = min(self.batch_size, self.n_per_epoch - c * self.batch_size)
        return self._gen(np.random.default_rng(key), size)

    def n_batches(self) -> int:
        return -(-self.n_per_epoch // self.batch_size)

    def batches(self, epoch: int) -> Iterator[Tensor]:
        nb = self.n_batches()
        if self.regime == "fresh":
            for c in range(nb):
                yield self._chunk(c, epoch)
        elif self.n_images >= self.n_per_epoch:
            for c in _epoch_order(nb, self.seed, epoch, STREAM_IDS[self.kind]):
                yield self._chunk(int(c), None)
        else:
            # A small pool (e.g. 1k or 10k images per model), materialised once, sampled per epoch.
            if self._pool is None:
                n_chunks = -(-self.n_images // self.batch_size)
                parts = [self._chunk(c, None) for c in range(n_chunks)]
                self._pool = torch.cat(parts, dim=-2)[..., : self.n_images, :]
            order = np.concatenate([_epoch_order(self.n_images, self.seed, epoch * 1000 + r, 5)
                                    for r in range(-(-self.n_per_epoch // self.n_images))])[: self.n_per_epoch]
            for i in range(0, self.n_per_epoch, self.batch_size):
                idx = torch.from_numpy(order[i:i + self.batch_size])
                yield self._pool[..., idx, :]


@dataclass
class ImageSource:
    """A fixed image set (e.g. MNIST train, pixel-shuffled MNIST, Fashion-MNIST) shared by all models,
    reshuffled every epoch. x: (M, 784) float inputs already normalised. With `n_per_epoch` > M the
    epoch is several reshuffled passes (equal optimiser steps for a small image set)."""

    name: str
    x: Tensor
    seed: int
    batch_size: int = 1024
    n_per_epoch: int = 0  # 0: one pass over x

    def __post_init__(self):
        if self.n_per_epoch <= 0:
            self.n_per_epoch = self.x.shape[0]

    def describe(self) -> dict:
        return {"kind": self.name, "n_images": int(self.x.shape[0]), "shared": True, "n_per_epoch": self.n_per_epoch}

    def n_batches(self) -> int:
        return -(-self.n_per_epoch // self.batch_size)

    def batches(self, epoch: int) -> Iterator[Tensor]:
        m = self.x.shape[0]
        passes = -(-self.n_per_epoch // m)
        order = np.concatenate([_epoch_order(m, self.seed, epoch * 1000 + r if r else epoch, 3)
                                for r in range(passes)])[: self.n_per_epoch]
        order = torch.from_numpy(order).to(self.x.device)
        for i in range(0, self.n_per_epoch, self.batch_size):
            yield self.x[order[i:i + self.batch_size]]


def pixel_permutation(seed: int, d: int = 784) -> Tensor:
    """The fixed pixel permutation for 'pixel-shuffled MNIST'."""
    return torch.from_numpy(np.random.default_rng([seed, 4242]).permutation(d))
