"""Where and how reproducibly the work runs: device choice (`get_device`, `fast_bf16`), seeding
(`seed_everything`), free memory (`available_memory`) and whether a process still lives (`pid_alive`)."""

from __future__ import annotations

import os
import random
import re

import numpy as np
import torch

from subliminal.cli import UserError


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator seeded with `seed` for explicit use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(name: str = "auto") -> torch.device:
    """'auto' → cuda when available else cpu; 'cpu'; 'cuda' or 'cuda:N' (an error unless that GPU exists).
    Anything else ('cudafoo', 'cuda:x', 'tpu') is a one-line UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m is None:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu or auto")
    n = torch.cuda.device_count()
    if m.group(1) is not None and int(m.group(1)) >= n:
        raise UserError(f"--device {name}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}; pick one of them")
    return torch.device(name)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine): how a temporary folder named after its writer's PID
    tells a run still going from one that was killed."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's process
    except (OSError, OverflowError, ValueError):
        return False
    return True


def available_memory() -> int | None:
    """Bytes of memory available now (MemAvailable: free + reclaimable cache, /proc/meminfo); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls are native on `device`: any CUDA GPU here, or a CPU with AVX512-BF16/AMX (oneDNN)."""
    if device.type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
