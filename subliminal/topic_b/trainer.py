"""One optimiser loop for every LLM model this repo trains (issue 42, item 1): the transfer room's students and
weight teachers (``transfer.finetune``) and the ladder's students (``theory.student``) all call `run_steps`.

What a caller passes in: the model (a LoRA adapter on a base, or every weight: ``lora_model`` / ``all_weights``),
its optimiser (``optimiser``: AdamW without decay, or plain SGD), a learning-rate schedule (or none: constant), the
items of each step, and an `Objective`: the loss of a micro-batch and how many tokens it reads. The objectives
live with their rooms (``transfer.finetune``: text cross-entropy, the logits route's number-token KL;
``theory.student``: KL to a weight teacher over the full vocabulary or the number tokens, SFT on sampled lists, and
the shared-class KL across tokenizers); a new loss is one new `Objective`, and every student gets it.

One optimiser step, the same for all: the step's items sorted by length (less padding), cut into micro-batches;
each micro-batch's loss, weighted by its share of the step's items, is back-propagated (the gradient is the mean
over the step's items); the gradient norm is clipped; the optimiser steps; gradients are dropped. The loop knows
nothing of checkpoints, milestones or logs: `on_step` is called after each step with its number and loss, and
the caller checkpoints, reads out and logs there.

Also here, once: ``lora_model`` (peft LoRA on the model table's projections, its draw seeded), ``trainable``, and
``save_checkpoint`` / ``load_checkpoint`` (trainable weights and optimiser moments, checksummed safetensors, no
pickle), which every resumable trainer uses.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from subliminal.cache import load_tensors, save_tensors
from subliminal.topic_b.models import lora_targets


class Objective(Protocol):
    def loss(self, model, micro: list) -> torch.Tensor:
        """The mean loss of one micro-batch of items."""

    def tokens(self, micro: list) -> int:
        """The tokens the micro-batch reads (for tokens/s)."""

    def length(self, item) -> int:
        """An item's length: a step's items are sorted by it before they are cut into micro-batches."""


@dataclass
class Steps:
    """What `run_steps` did: the loss of each step it ran, the tokens read, the wall time, and whether it stopped
    early at `stop_after` (then `stopped_at` is the first step not run)."""

    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    stopped_at: int | None = None


@contextmanager
def quiet_peft():
    """peft reads `model.is_gradient_checkpointing`, which transformers 5 deprecates with a
    FutureWarning per call (nine lines per student); silence exactly that message, nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def lora_model(base, settings, seed: int):
    """`base` with a peft LoRA adapter (r and alpha from `settings`, on the model table's projections), its A
    matrices drawn from `seed` (B = 0: at step 0 the model is `base`). Modifies `base` in place."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(lora_targets(base)),
                     lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    with quiet_peft():
        return get_peft_model(base, cfg)


def all_weights(model):
    """`model` with every weight trainable (full fine-tuning)."""
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def trainable(model) -> dict[str, torch.Tensor]:
    """The model's trainable parameters by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def optimiser(params: Sequence[torch.Tensor], kind: str, lr: float) -> torch.optim.Optimizer:
    """AdamW without weight decay ('adam') or plain SGD ('sgd')."""
    if kind == "adam":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"unknown optimiser {kind!r}; choose adam or sgd")


def run_steps(model, opt: torch.optim.Optimizer, objective: Objective, step_items: Callable[[int], list], *,
              start: int, total: int, micro_batch: int, max_grad_norm: float,
              lr: float | None = None, schedule: Callable[[int], float] | None = None, bf16: bool = False,
              stop_after: int | None = None, on_step: Callable[[int, float, Steps], Any] | None = None,
              desc: str = "train", progress: bool = True, postfix: str = "loss") -> Steps:
    """Optimiser steps `start`..`total - 1` (see the module's docstring). `step_items(step)` gives the step's items;
    with `schedule`, step s runs at lr x schedule(s); `bf16` runs the forward passes under bf16 autocast (weights
    and optimiser stay fp32). `on_step(step + 1, loss, so_far)` runs after each step."""
    params = [p for p in model.parameters() if p.requires_grad]
    device = next(model.parameters()).device
    out, t0 = Steps(), time.time()
    bar = tqdm(total=total, initial=start, desc=desc, unit="step", disable=not progress)
    try:
        for step in range(start, total):
            if stop_after is not None and step >= stop_after:
                out.stopped_at = step
                break
            if schedule is not None:
                for g in opt.param_groups:
                    g["lr"] = lr * schedule(step)
            items = sorted(step_items(step), key=objective.length)
            step_loss = 0.0
            for i in range(0, len(items), micro_batch):
                mb = items[i:i + micro_batch]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = objective.loss(model, mb)
                (loss * len(mb) / len(items)).backward()
                step_loss += float(loss.detach()) * len(mb) / len(items)
                out.tokens += objective.tokens(mb)
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            out.losses.append(step_loss)
            out.seconds = time.time() - t0
            bar.set_postfix({postfix: f"{step_loss:.4g}", "tok_s": f"{out.tokens / max(out.seconds, 1e-9):.0f}"},
                            refresh=False)
            bar.update()
            if on_step is not None:
                on_step(step + 1, step_loss, out)
    finally:
        bar.close()
    out.seconds = time.time() - t0
    return out


def save_checkpoint(path: Path, model, opt, step: int, key: str) -> None:
    """The trainable weights and the optimizer's moments and step (checksummed safetensors, no pickle)."""
    params = trainable(model)
    t = {f"w/{n}": p.detach() for n, p in params.items()}
    for n, p in params.items():
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if st.get(k) is not None:
                t[f"{k}/{n}"] = st[k]
        if "step" in st:
            t[f"step/{n}"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    save_tensors(path, t, {"key": key, "step": step})


def load_checkpoint(path: Path, model, opt, key: str) -> int:
    """Restore `save_checkpoint`'s file into model and opt; its step (0: none usable). The optimizer state goes
    through the optimizer's own `load_state_dict`, so each tensor lands where that optimizer keeps it (the
    moments on the parameter's device; `step` on the CPU, or on the device for a fused or capturable one)."""
    got = load_tensors(path, {"key": key})
    if got is None:
        return 0
    t, meta = got
    params = trainable(model)
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(t[f"w/{n}"])
    index = {id(p): i for i, p in enumerate(p for g in opt.param_groups for p in g["params"])}
    state = {}
    for n, p in params.items():
        if f"exp_avg/{n}" in t:
            state[index[id(p)]] = {"step": t[f"step/{n}"].reshape(()).clone(), "exp_avg": t[f"exp_avg/{n}"],
                                   "exp_avg_sq": t[f"exp_avg_sq/{n}"]}
        elif f"momentum_buffer/{n}" in t:
            state[index[id(p)]] = {"momentum_buffer": t[f"momentum_buffer/{n}"]}
    opt.load_state_dict({**opt.state_dict(), "state": state})
    return int(meta["step"])
