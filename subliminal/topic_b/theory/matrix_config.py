"""The typed configuration of ``topic_b_base_matrix.py`` (parsed by ``cli.parse_config``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from subliminal.assets import cache_home
from subliminal.cli import UserError
from subliminal.topic_b.models import MODELS
from subliminal.topic_b.theory.matrix_analysis import ANIMALS, DEFAULT_BASES, DEFAULT_SCALES, DOSE_ANIMALS
from subliminal.topic_b.theory.student import StudentSettings
from subliminal.topic_b.theory.teachers import TeacherSettings


@dataclass(frozen=True)
class MatrixConfig:
    bases: tuple[str, ...] = field(default=DEFAULT_BASES, metadata={
        "help": "the base models of the matrix (teacher base x student base over these; the first is the default "
                "model of the ladder)"})
    pairs: tuple[str, ...] = field(default=(), metadata={
        "help": "run only these pairs, each '<teacher base>><student base>' (default: all, the diagonal first)"})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "student seeds (their random number lists)"})
    noise_scales: tuple[float, ...] = field(default=DEFAULT_SCALES, metadata={
        "help": "the base-noise dose on the first base: the student's base = the teacher's + Gaussian noise at each "
                "of these fractions of every weight tensor's std (none: no dose)"})
    dose: bool = field(default=True, metadata={"help": "run the base-noise dose after the matrix (--no-dose: the matrix only)"})
    dose_animals: tuple[str, ...] = field(default=DOSE_ANIMALS, metadata={
        "help": "the trait teachers of the dose (with the neutral one): owl, eagle"})
    steps: int = field(default=60, metadata={"help": "optimiser steps per student (cell b's)"})
    batch: int = field(default=8, metadata={"help": "contexts (random 10-number lists) per step"})
    milestones: tuple[int, ...] = field(default=(10, 30, 60), metadata={"help": "steps after which students are read"})
    lr: float = field(default=StudentSettings.lr_lora_adam, metadata={"help": "learning rate (LoRA, Adam)"})
    fit_lrs: tuple[float, ...] = field(default=(StudentSettings.lr_lora_adam, 4 * StudentSettings.lr_lora_adam),
                                       metadata={"help": "the off-diagonal fit rule's learning rates (matrix_fit)"})
    fit_steps: tuple[int, ...] = field(default=(60, 120, 240), metadata={
        "help": "the off-diagonal fit rule's step counts: a cross-base pair gets the cheapest (steps, lr) whose "
                "neutral-teacher student fits below the signal, decided before its trait students"})
    fit_target: float = field(default=1.0, metadata={
        "help": "the fit rule's bar as a fraction of the signal (the trait-neutral teacher KL)"})
    teacher_examples: int = field(default=300, metadata={"help": "training answers per teacher"})
    teacher_epochs: int = field(default=2, metadata={"help": "teacher training epochs"})
    teachers_only: bool = field(default=False, metadata={
        "help": "train (or read) every base's teachers and write the teacher check only"})
    out: str = field(default="plots_b", metadata={"help": "output directory"})
    cache: str = field(default="", metadata={"help": "cache directory (default: $SUBLIMINAL_CACHE/transfer_theory)"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})

    @classmethod
    def quick(cls) -> MatrixConfig:
        return cls(seeds=(0,), noise_scales=(0.1,), steps=2, batch=2, milestones=(2,), teacher_examples=12, teacher_epochs=1,
                   fit_steps=(2, 4), out=os.path.join("out", "base_matrix_quick"))

    def validate(self) -> None:
        unknown = [b for b in self.bases if b not in MODELS]
        if unknown or not self.bases or len(set(self.bases)) != len(self.bases):
            raise UserError(f"--bases: distinct names from the model table ({', '.join(MODELS)}); got "
                            f"{', '.join(self.bases) or 'none'}")
        for p in self.pairs:
            parts = p.split(">")
            if len(parts) != 2 or any(x not in self.bases for x in parts):
                raise UserError(f"--pairs: '<teacher base>><student base>' with both in --bases, not {p!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0 or max(self.seeds) >= 2**31:
            raise UserError("--seeds: distinct integers in 0..2147483647")
        for name, v, hi in (("--steps", self.steps, 100_000), ("--batch", self.batch, 4096),
                            ("--teacher-examples", self.teacher_examples, 100_000),
                            ("--teacher-epochs", self.teacher_epochs, 100), ("--threads", self.threads, 256)):
            if not 1 <= v <= hi:
                raise UserError(f"{name} must be in 1..{hi}")
        if not self.milestones or min(self.milestones) < 1 or max(self.milestones) > self.steps:
            raise UserError("--milestones must be steps in 1..--steps")
        if not 0 < self.lr <= 10:
            raise UserError("--lr must be in (0, 10]")
        if len(set(self.noise_scales)) != len(self.noise_scales) or any(not 0 < x <= 10 for x in self.noise_scales):
            raise UserError("--noise-scales: distinct fractions in (0, 10] of each weight tensor's std")
        if (not self.fit_lrs or any(not 0 < x <= 10 for x in self.fit_lrs) or not self.fit_steps
                or any(not 1 <= k <= 100_000 for k in self.fit_steps) or not 0 < self.fit_target <= 100):
            raise UserError("--fit-lrs in (0, 10], --fit-steps in 1..100000, --fit-target in (0, 100]")
        if not self.dose_animals or any(a not in ANIMALS for a in self.dose_animals):
            raise UserError(f"--dose-animals: some of {', '.join(ANIMALS)}")

    def pair_list(self) -> list[tuple[str, str]]:
        """The pairs to run, the diagonal first (``--pairs`` in its order when given)."""
        if self.pairs:
            return [tuple(p.split(">")) for p in self.pairs]  # type: ignore[misc]
        return [(b, b) for b in self.bases] + [(t, s) for t in self.bases for s in self.bases if t != s]

    def scales(self) -> tuple[float, ...]:
        """The dose's noise scales this command runs (none with --no-dose)."""
        return self.noise_scales if self.dose else ()

    def families(self) -> dict:
        """The families of tests this run declares (``matrix_analysis.declared``)."""
        from subliminal.topic_b.theory.matrix_analysis import declared

        return declared(self.bases, self.noise_scales, self.dose_animals)

    def cache_root(self) -> Path:
        return Path(self.cache) if self.cache else cache_home() / "transfer_theory"

    def student_settings(self) -> StudentSettings:
        return StudentSettings(steps=self.steps, batch=self.batch, micro_batch=min(8, self.batch),
                               milestones=tuple(sorted(set(self.milestones))), lr_lora_adam=self.lr)

    def fit_rule(self):
        from subliminal.topic_b.theory.matrix_fit import FitRule

        return FitRule(lrs=self.fit_lrs, steps=self.fit_steps, target=self.fit_target)

    def teacher_settings(self) -> TeacherSettings:
        t = TeacherSettings()
        return replace(t, n_examples=self.teacher_examples, epochs=self.teacher_epochs,
                       train=replace(t.train, epochs=self.teacher_epochs))
