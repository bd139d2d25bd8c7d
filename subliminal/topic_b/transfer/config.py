"""The typed configuration of ``topic_b_transfer.py`` (one dataclass, parsed by ``common.parse_config``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from subliminal.common import UserError
from subliminal.topic_b.prompts import PLURAL


@dataclass(frozen=True)
class TransferConfig:
    model: str = field(default="smollm2-135m-instruct", metadata={"help": "base model = teachers = students"})
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
    archive: str = field(default="auto", metadata={
        "help": "folder for a portable, checksummed copy of the finished artefacts (shards, adapters, "
                "evaluations; transfer/archive.py): restored into the cache at start, updated after every "
                "student, so a run continues on another machine; auto: <out>/topic_b_transfer_cache "
                "(committed with the results); empty: none"})
    cache: str = field(default="", metadata={"help": "cache directory (default: $SUBLIMINAL_CACHE/transfer)"})
    precision: Literal["fp32", "bf16"] = field(default="fp32", metadata={
        "help": "fp32, or bf16: bf16 autocast around the students' forward passes (weights, optimizer and the "
                "logits route's teacher stay fp32), ~1.6x faster where bf16 is native (AVX512-BF16/AMX, GPUs), "
                "far slower where it is not. A bf16 student has its own cache key and the run its own outputs "
                "(topic_b_transfer*_bf16*), so one table never mixes precisions; the committed runs are fp32"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})

    @classmethod
    def quick(cls) -> TransferConfig:
        from subliminal.topic_b.runs import QUICK_OUT

        return cls(animals=("owl",), seeds=(0, 1), n_samples=12, epochs=1, eval_samples=2, batch_size=12,
                   out=QUICK_OUT)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    @property
    def archive_dir(self) -> str:
        return f"{self.out}/topic_b_transfer_cache" if self.archive == "auto" else self.archive

    def validate(self) -> None:
        if not self.animals:
            raise UserError("--animals needs at least one animal (owl first)")
        bad = [a for a in self.animals if a not in PLURAL]
        if bad:
            raise UserError(f"unknown animal(s) {bad}; choose from the 25 in subliminal/topic_b/prompts.py")
        if len(self.seeds) < 1 or self.n_samples < 1 or self.epochs < 1 or self.eval_samples < 1:
            raise UserError("--seeds, --n-samples, --epochs and --eval-samples must be positive")
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
