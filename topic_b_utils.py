"""Shared helpers of the topic_b_*.py scripts: model loading, output paths, result files.

Not a script. The analyses live in ``subliminal/`` (scoring, prompts, entanglement, geometry);
this module only does the script plumbing that every Topic B script repeats.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from subliminal.common import get_device
from subliminal.results import write_csv, write_run_json
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.prompts import PAPER_ANIMALS

QUICK_OUT = "plots_b/quick"  # --quick never overwrites the committed full-size results


@dataclass
class LMConfig:
    """The flags every single-model Topic B script shares."""

    model: str = field(default="smollm2-135m-instruct", metadata={"help": "asset name, HF id, dir or .gguf"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu or cuda"})
    out: str = field(default="plots_b", metadata={"help": "output directory"})


@dataclass
class AnimalSweepConfig(LMConfig):
    """Flags of the per-animal analyses (parts 2 and 3): which animals, how many top and random numbers."""

    animals: tuple[str, ...] = field(default=PAPER_ANIMALS, metadata={"help": "animals (singular)"})
    top_k: int = field(default=10, metadata={"help": "top entangled numbers per animal"})
    n_random: int = field(default=100, metadata={"help": "random numbers (drawn from the 1,110) for the reference"})
    seed: int = field(default=0, metadata={"help": "seed of the random-number draw"})


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def load(cfg):
    """(model, tokenizer, model_name) for cfg.model on cfg.device (fp32)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    device = get_device(cfg.device)
    model, tok = load_model(cfg.model, device=str(device))
    return model, tok, cfg.model


def out_dir(cfg) -> Path:
    d = Path(cfg.out)
    d.mkdir(parents=True, exist_ok=True)
    return d


def upsert_csv(df: pd.DataFrame, path: Path, key: str = "model") -> pd.DataFrame:
    """Replace this model's rows in a shared CSV (one file holds every model's results)."""
    if path.exists():
        old = pd.read_csv(path, dtype={"number": str, "best_number": str})
        old = old[~old[key].isin(df[key].unique())]
        df = pd.concat([old, df], ignore_index=True)
    write_csv(df, path)
    return df


def finish(cfg, stem: str, model_name: str, t0: float, extra: dict | None = None) -> Path:
    """Provenance JSON beside the CSV: config, seed, versions, commit, wall time."""
    path = out_dir(cfg) / f"{stem}__{slug(model_name)}.json"
    write_run_json(path, cfg, getattr(cfg, "seed", None), time.time() - t0, extra)
    return path
