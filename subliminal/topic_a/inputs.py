"""Distillation / training inputs for Topic A, generated batch by batch from seeded generators.

A fixed noise set is defined by its seeds: chunk c of model-stacked noise always comes from
`default_rng([seed, stream, c])`, so each model sees the same images every epoch (in a per-epoch
shuffled chunk order), on every device. `fresh` noise seeds chunks by epoch too. `shared` noise is one
(B, 784) batch used by every model (one GEMM in layer 1).

Drawing a chunk is a quarter of a CPU distillation step and, on a GPU, the whole step (the draw is on
the CPU). So the chunks of a fixed set are kept once drawn — on the training device, bit-identical to
a fresh draw — when the whole set fits the memory budget (`pool_budget`: 40% of the available memory,
half of a GPU's free memory, or $SUBLIMINAL_NOISE_POOL_GB); otherwise each chunk is drawn again when
used, as before. Either way the numbers are the same. Fresh noise is always drawn on the CPU, so it is
the same on every device too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from subliminal.devices import available_memory

NOISE_KINDS = ("uniform", "gaussian")
STREAM_IDS = {"uniform": 11, "gaussian": 12}


def _epoch_order(n: int, seed: int, epoch: int, stream: int) -> np.ndarray:
    return np.random.default_rng([seed, stream, 7919, epoch]).permutation(n)


def pool_budget(device: torch.device | str) -> int:
    """Bytes a kept noise set may take on `device`: $SUBLIMINAL_NOISE_POOL_GB when set (0 = never keep),
    else half of a GPU's free memory, or 40% of the CPU's available memory (0 where that is unknown)."""
    env = os.environ.get("SUBLIMINAL_NOISE_POOL_GB")
    if env:
        try:
            return max(0, int(float(env) * 2**30))
        except ValueError:
            return 0
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return int((available_memory() or 0) * 0.4) if device.type == "cpu" else 0


# The one kept noise set of this process: (identity, {chunk index: tensor on its device}). One at a time,
# so a sweep over several noise sources never holds more than one set.
_KEPT: tuple[tuple, dict[int, Tensor]] | None = None


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
    device: str = "cpu"  # where batches are yielded (not part of describe(): the numbers are the same anywhere)
    keep: bool | None = None  # keep drawn chunks (None: when the whole set fits `pool_budget`)

    def __post_init__(self):
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise kind {self.kind!r}")
        if self.regime not in ("fixed", "fresh"):
            raise ValueError(f"unknown noise regime {self.regime!r}")
        self.device = str(torch.device(self.device))
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

    def set_bytes(self) -> int:
        """Bytes of the whole fixed set (every chunk of an epoch) as float32."""
        return (1 if self.shared else self.n_models) * self.n_per_epoch * self.d_in * 4

    def _to_device(self, x: Tensor) -> Tensor:
        if self.device == "cpu":
            return x
        return x.pin_memory().to(self.device, non_blocking=True) if self.device.startswith("cuda") else x.to(self.device)

    def _kept_chunks(self) -> dict[int, Tensor] | None:
        """The store of this set's drawn chunks (shared by every source with the same identity), or None when
        the set is not kept."""
        global _KEPT
        if self.keep is False:
            return None
        ident = (self.kind, self.n_models, self.seed, self.signed, self.shared, self.n_per_epoch, self.batch_size,
                 self.d_in, self.device)
        if _KEPT is not None and _KEPT[0] == ident:
            return _KEPT[1]
        _KEPT = None  # free the previous set before measuring the room for this one
        if not (self.keep or self.set_bytes() <= pool_budget(self.device)):
            return None
        _KEPT = (ident, {})
        return _KEPT[1]

    def batches(self, epoch: int) -> Iterator[Tensor]:
        nb = self.n_batches()
        if self.regime == "fresh":
            for c in range(nb):
                yield self._to_device(self._chunk(c, epoch))
        elif self.n_images >= self.n_per_epoch:
            kept = self._kept_chunks()
            for c in _epoch_order(nb, self.seed, epoch, STREAM_IDS[self.kind]):
                c = int(c)
                if kept is None:
                    yield self._to_device(self._chunk(c, None))
                    continue
                if c not in kept:
                    kept[c] = self._to_device(self._chunk(c, None))
                yield kept[c]
        else:
            # A small pool (e.g. 1k or 10k images per model), materialised once on the device, sampled per epoch.
            if self._pool is None:
                n_chunks = -(-self.n_images // self.batch_size)
                parts = [self._chunk(c, None) for c in range(n_chunks)]
                self._pool = self._to_device(torch.cat(parts, dim=-2)[..., : self.n_images, :].contiguous())
            order = np.concatenate([_epoch_order(self.n_images, self.seed, epoch * 1000 + r, 5)
                                    for r in range(-(-self.n_per_epoch // self.n_images))])[: self.n_per_epoch]
            order = torch.from_numpy(order).to(self._pool.device)
            for i in range(0, self.n_per_epoch, self.batch_size):
                yield self._pool[..., order[i:i + self.batch_size], :]


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


def release_kept() -> None:
    """Drop the kept noise set (its memory returns at once)."""
    global _KEPT
    _KEPT = None
