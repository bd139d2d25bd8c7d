"""The typed configuration of ``topic_b_transfer.py`` (one dataclass, parsed by ``cli.parse_config``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from subliminal.assets import cache_dir
from subliminal.cli import UserError
from subliminal.devices import available_memory, get_device
from subliminal.topic_b.models import DEFAULT_MODEL
from subliminal.topic_b.prompts import PLURAL
from subliminal.topic_b.script_setup import check_range

MAX_SEED = 2**32 - 1  # numpy's and torch's seed range; student seeds also seed the data order
# (flag, field, least, most): sizes beyond the most would run for months or not fit in memory
LIMITS = (("--n-samples", "n_samples", 1, 1_000_000), ("--epochs", "epochs", 1, 1000),
          ("--eval-samples", "eval_samples", 1, 100_000), ("--batch-size", "batch_size", 1, 100_000),
          ("--max-new-tokens", "max_new_tokens", 1, 4096), ("--neutral-draws", "neutral_draws", 1, 100),
          ("--threads", "threads", 1, 4096))
# Memory per sequence sampled at once, an upper bound over the offline models (Qwen2.5-0.5B's 152k-token
# vocabulary in fp32 logits, SmolLM2-135M's 46 KB of keys and values per token): teacher sampling holds
# --batch-size sequences, the evaluation --eval-samples answers of 8 tokens.
LOGITS_BYTES_PER_ROW = 151_936 * 4 * 2
KV_BYTES_PER_TOKEN = 30 * 2 * 3 * 64 * 4
PROMPT_TOKENS = 200


def sampling_bytes(rows: int, new_tokens: int) -> int:
    return rows * (LOGITS_BYTES_PER_ROW + (PROMPT_TOKENS + new_tokens) * KV_BYTES_PER_TOKEN)


def check_memory(batch_size: int, eval_samples: int, max_new_tokens: int) -> None:
    """One line before any work when a batch cannot fit in this machine's memory."""
    avail = available_memory()
    if avail is None:
        return
    for flag, need in (("--batch-size", sampling_bytes(batch_size, max_new_tokens)),
                       ("--eval-samples", sampling_bytes(eval_samples, 8))):
        if need > avail:
            raise UserError(f"{flag} needs about {need / 2**30:.1f} GiB of memory for one batch and "
                            f"{avail / 2**30:.1f} GiB is free; give a smaller {flag}")


@dataclass(frozen=True)
class TransferConfig:
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "base model = teachers = students"})
    animals: tuple[str, ...] = field(default=("owl", "eagle"), metadata={
        "help": "animal teachers, in run order (owl first; eagle was chosen before any result)"})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "student seeds (LoRA init, data order)"})
    n_samples: int = field(default=768, metadata={"help": "valid teacher samples per arm (paper: 10,000)"})
    epochs: int = field(default=3, metadata={"help": "fine-tuning epochs"})
    seed: int = field(default=0, metadata={"help": "prompt set and teacher sampling seed"})
    batch_size: int = field(default=64, metadata={"help": "teacher sampling batch (one shard)"})
    max_new_tokens: int = field(default=64, metadata={"help": "teacher sampling limit (grammar needs <= 58)"})
    eval_samples: int = field(default=50, metadata={"help": "sampled answers per question and model (T=1)"})
    stage: Literal["all", "data", "train", "eval"] = field(default="all", metadata={
        "help": "data: teacher samples only; train: data + students, no evaluation; eval: base model + the "
                "students already trained (no new training); all: everything, in order"})
    route: Literal["text", "logits"] = field(default="text", metadata={
        "help": "text: train on sampled teacher text; logits: distil the teacher's number-token "
                "distributions on the neutral teacher's sequences (outputs topic_b_transfer_logits*)"})
    teacher: Literal["prompt", "weights"] = field(default="prompt", metadata={
        "help": "prompt: the animal teacher is the base model with the paper's system prompt; weights: the base "
                "model LoRA-fine-tuned to name the animal (transfer/weight_teacher.py), sampled with no system "
                "prompt (outputs topic_b_transfer_weights*; text route only)"})
    defence: float = field(default=0.0, metadata={
        "help": "threshold defence (stretch): train on the samples whose every number token has neutral "
                "probability >= this (e.g. 0.01; 0 = off), applied to every arm alike, arms matched again "
                "(outputs topic_b_transfer[_weights]_defence*; text route, no cross arm)"})
    neutral_draws: int = field(default=2, metadata={
        "help": "independent draws of the neutral teacher's data (same prompts, other sampling seeds; arms "
                "neutral, neutral_2, ...): the control for what one draw of teacher data does by itself, so the "
                "animal arm's CI includes draw-to-draw variation (text route; 1 = off)"})
    cross_model: str = field(default="", metadata={
        "help": "teacher model of the 'cross' arm (e.g. qwen2.5-coder-0.5b-instruct); empty: no cross arm"})
    out: str = field(default="plots_b", metadata={"help": "output directory"})
    cache: str = field(default="", metadata={"help": "cache directory (default: $SUBLIMINAL_CACHE/transfer)"})
    precision: Literal["fp32", "bf16"] = field(default="fp32", metadata={
        "help": "fp32, or bf16: bf16 autocast around the students' forward passes (weights, optimizer and the "
                "logits route's teacher stay fp32), ~1.6x faster where bf16 is native (AVX512-BF16/AMX, GPUs), "
                "far slower where it is not. A bf16 student has its own cache key and the run its own outputs "
                "(topic_b_transfer*_bf16*), so one table never mixes precisions; the committed runs are fp32"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})

    @classmethod
    def quick(cls) -> TransferConfig:
        from subliminal.topic_b.script_setup import QUICK_OUT

        return cls(animals=("owl",), seeds=(0, 1), n_samples=12, epochs=1, eval_samples=2, batch_size=12,
                   out=QUICK_OUT)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    @property
    def cache_root(self) -> Path:
        """The run's cache folder (``--cache``, default ``$SUBLIMINAL_CACHE/transfer``)."""
        return Path(self.cache) if self.cache else cache_dir() / "transfer"

    def validate(self) -> None:
        if not self.animals:
            raise UserError("--animals needs at least one animal (owl first)")
        bad = [a for a in self.animals if a not in PLURAL]
        if bad:
            raise UserError(f"unknown animal(s) {bad}; choose from the 25 in subliminal/topic_b/prompts.py")
        if len(set(self.animals)) != len(self.animals):
            raise UserError("--animals lists an animal twice; give each once (owl first)")
        if not self.seeds:
            raise UserError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError("--seeds lists a seed twice; give each once (a seed twice would count its students twice)")
        for s in self.seeds:
            check_range(s, 0, MAX_SEED, "--seeds")
        check_range(self.seed, 0, MAX_SEED, "--seed")
        for flag, value, lo, hi in LIMITS:
            check_range(getattr(self, value), lo, hi, flag)
        check_memory(self.batch_size, self.eval_samples, self.max_new_tokens)
        if self.teacher == "weights" and self.route != "text":
            raise UserError("--teacher weights works with --route text only (the logits route distils the "
                            "base model's own logits under a system prompt)")
        if self.teacher == "weights" and self.cross_model:
            raise UserError("--teacher weights has no cross arm yet: drop --cross-model (the cross arm's teacher "
                            "is system-prompted)")
        if self.defence and (self.route != "text" or self.cross_model or not 0 < self.defence < 1):
            raise UserError("--defence takes a probability in (0, 1) and works with --route text and no "
                            "--cross-model (the cross arm's tokens are another model's)")
        if self.neutral_draws < 1:
            raise UserError("--neutral-draws must be >= 1 (1: the neutral teacher's data is drawn once)")
        if self.max_new_tokens < 58:
            raise UserError("--max-new-tokens must be >= 58 so the grammar can always finish a list")
        get_device(self.device)  # last: the names, once every other flag is known to be good
        from subliminal.topic_b.lm import check_spec

        check_spec(self.model, "--model")
        if self.cross_model:
            check_spec(self.cross_model, "--cross-model")
