"""What the ladder reads off a student: its animal preference (exact, over the 25 animals) and the theorem's own
quantity, the cosine between the student's weight update and the teacher's.

- `preference`: log P(answer starts with the animal) for every animal of ``prompts.ANIMALS`` on every evaluation
  question (``evaluate.evaluate_model``, exact, no sampling), and the animal's share among the animals,
  log [P(animal) / sum over the 25 animals of P(a)]: a teacher that makes the student name animals more readily
  in general moves every P(a), not the share.
- `lora_deltas` / `full_deltas`: the update of each adapted weight matrix (LoRA: scaling x B @ A, merged; full
  fine-tuning: W - W0), keyed by module; `cosines`: per module and over all of them (flattened together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from subliminal.topic_b.models import lora_targets
from subliminal.topic_b.prompts import ANIMALS
from subliminal.topic_b.transfer.evaluate import evaluate_model

ALL_ANIMALS = tuple(a for a, _ in ANIMALS)


def preference(model, tokenizer, questions=None) -> pd.DataFrame:
    """One row per (question, animal): logp_animal and share (log of its share among the 25 animals)."""
    df = evaluate_model(model, tokenizer, list(ALL_ANIMALS), n_samples=0, questions=questions, progress=False)
    total = df.groupby("question", sort=False).logp_animal.transform(lambda v: np.logaddexp.reduce(v.to_numpy()))
    return df.assign(share=df.logp_animal - total)[["question", "animal", "logp_animal", "share"]]


def _module_name(name: str) -> str:
    """'base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight' -> 'model.layers.3.self_attn.q_proj'."""
    name = name.split(".lora_")[0].removeprefix("base_model.model.")
    return name.removesuffix(".weight")


@torch.no_grad()
def lora_deltas(named: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """Each module's merged update scaling x B @ A from LoRA tensors named like peft's (lora_A / lora_B)."""
    a = {_module_name(n): t for n, t in named.items() if ".lora_A." in n}
    b = {_module_name(n): t for n, t in named.items() if ".lora_B." in n}
    return {m: (scaling * b[m].float() @ a[m].float()) for m in sorted(a) if m in b}


@torch.no_grad()
def full_deltas(model, base_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each adapted module's update W - W0 for a fully fine-tuned student (the LoRA target projections)."""
    out, targets = {}, lora_targets(model)
    for n, p in model.named_parameters():
        if n.endswith(".weight") and n.split(".")[-2] in targets:
            out[n.removesuffix(".weight")] = (p.detach().float() - base_state[n].float())
    return out


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Cosine of two tensors taken as flat vectors (float64); NaN when either is zero."""
    x, y = x.double().flatten(), y.double().flatten()
    nx, ny = float(x.norm()), float(y.norm())
    return float(x @ y / (nx * ny)) if nx > 0 and ny > 0 else float("nan")


@torch.no_grad()
def cosines(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> dict[str, float]:
    """Cosine of the two updates per module present in both, and 'all' over those modules together."""
    common = [m for m in teacher if m in student]
    out = {m: cosine(student[m], teacher[m]) for m in common}
    if common:
        out["all"] = cosine(torch.cat([student[m].flatten() for m in common]), torch.cat([teacher[m].flatten() for m in common]))
    return out


def by_layer(cos: dict[str, float]) -> dict[str, float]:
    """Mean per-module cosine of each layer ('layers.3': mean over its projections)."""
    groups: dict[str, list[float]] = {}
    for m, v in cos.items():
        if ".layers." in m:
            groups.setdefault("layers." + m.split(".layers.")[1].split(".")[0], []).append(v)
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in groups.items()}
