"""The typed configuration of ``topic_b_transfer_theory.py`` (parsed by ``cli.parse_config``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from subliminal.assets import cache_home
from subliminal.cli import UserError
from subliminal.topic_b.models import DEFAULT_MODEL
from subliminal.topic_b.theory.cells import CELL_KEYS
from subliminal.topic_b.theory.student import StudentSettings
from subliminal.topic_b.theory.teachers import TeacherSettings


@dataclass(frozen=True)
class TheoryConfig:
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "base model = teachers = students"})
    cells: tuple[str, ...] = field(default=CELL_KEYS, metadata={
        "help": f"cells of the ladder, run in this order ({', '.join(CELL_KEYS)}): a = full KL (positive control), "
                "b = number-token KL (subliminal), then b's adapter cross-init, full fine-tuning, SGD, noisy base, b on "
                "the neutral weight teacher's own number lists (b-neutral-inputs), and c = SFT on each teacher's own "
                "number lists, matched in prompts and length (the paper's recipe)"})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "student seeds (their contexts; never the adapter draw)"})
    steps: int = field(default=60, metadata={"help": "optimiser steps per student"})
    batch: int = field(default=8, metadata={"help": "contexts (random 10-number lists) per step"})
    milestones: tuple[int, ...] = field(default=(10, 30, 60), metadata={"help": "steps after which students are read"})
    lr_lora_adam: float = field(default=StudentSettings.lr_lora_adam, metadata={"help": "learning rate: LoRA, Adam (a, b, ...)"})
    lr_lora_sgd: float = field(default=StudentSettings.lr_lora_sgd, metadata={"help": "learning rate: LoRA, SGD (b-sgd)"})
    lr_full_adam: float = field(default=StudentSettings.lr_full_adam, metadata={"help": "learning rate: every weight, Adam (b-full)"})
    lr_full_sgd: float = field(default=StudentSettings.lr_full_sgd, metadata={"help": "learning rate: every weight, SGD"})
    noise_scale: float = field(default=StudentSettings.noise_scale, metadata={
        "help": "b-noisy: the noise on every base weight, as a fraction of that tensor's std"})
    cross_seed: int = field(default=StudentSettings.cross_seed, metadata={
        "help": "b-xinit: the other adapter draw is this seed + the student seed"})
    teacher_examples: int = field(default=300, metadata={"help": "training answers per teacher"})
    teacher_epochs: int = field(default=2, metadata={"help": "teacher training epochs"})
    out: str = field(default="plots_b", metadata={"help": "output directory"})
    cache: str = field(default="", metadata={"help": "cache directory (default: $SUBLIMINAL_CACHE/transfer_theory)"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})
    outputs_only: bool = field(default=False, metadata={
        "help": "rebuild every output from the students on record (the records beside --out and in the cache) "
                "without loading a model or training: the base preference and the teachers' fingerprints are read "
                "from the records folder and the previous run JSON (e.g. after a change to the analysis)"})

    @classmethod
    def quick(cls) -> TheoryConfig:
        return cls(cells=("a", "b"), seeds=(0, 1), steps=4, batch=4, milestones=(2, 4), teacher_examples=24,
                   teacher_epochs=1, out=os.path.join("out", "theory_quick"))

    def validate(self) -> None:
        bad = [c for c in self.cells if c not in CELL_KEYS]
        if bad or not self.cells or len(set(self.cells)) != len(self.cells):
            raise UserError(f"--cells: distinct names from {', '.join(CELL_KEYS)} (got {', '.join(self.cells) or 'none'})")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0 or max(self.seeds) >= 2**31:
            raise UserError("--seeds: distinct integers in 0..2147483647")
        for name, v, hi in (("--steps", self.steps, 100_000), ("--batch", self.batch, 4096),
                            ("--teacher-examples", self.teacher_examples, 100_000), ("--teacher-epochs", self.teacher_epochs, 100),
                            ("--threads", self.threads, 256)):
            if not 1 <= v <= hi:
                raise UserError(f"{name} must be in 1..{hi}")
        if not self.milestones or min(self.milestones) < 1 or max(self.milestones) > self.steps:
            raise UserError("--milestones must be steps in 1..--steps")
        for name in ("lr_lora_adam", "lr_lora_sgd", "lr_full_adam", "lr_full_sgd"):
            if not 0 < getattr(self, name) <= 10:
                raise UserError(f"--{name.replace('_', '-')} must be in (0, 10]")
        if not 0 <= self.noise_scale <= 10:
            raise UserError("--noise-scale must be in [0, 10] (a fraction of each weight tensor's std)")
        if not 0 <= self.cross_seed < 2**31 - 2**20:
            raise UserError("--cross-seed must be in 0..2146435071")

    def cache_root(self) -> Path:
        return Path(self.cache) if self.cache else cache_home() / "transfer_theory"

    def student_settings(self) -> StudentSettings:
        return StudentSettings(steps=self.steps, batch=self.batch, micro_batch=min(8, self.batch),
                               milestones=tuple(sorted(set(self.milestones))), lr_lora_adam=self.lr_lora_adam,
                               lr_lora_sgd=self.lr_lora_sgd, lr_full_adam=self.lr_full_adam,
                               lr_full_sgd=self.lr_full_sgd, noise_scale=self.noise_scale, cross_seed=self.cross_seed)

    def teacher_settings(self) -> TeacherSettings:
        t = TeacherSettings()
        return replace(t, n_examples=self.teacher_examples, epochs=self.teacher_epochs,
                       train=replace(t.train, epochs=self.teacher_epochs))
