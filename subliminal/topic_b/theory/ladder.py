"""The ladder of cells, in run order, and one run of it: teachers, then students cell by cell, seed by seed.

A cell is everything of an `Arm` but its trait (loss, parametrisation, optimiser, initialisation, inputs); each
cell runs the owl, eagle and neutral teachers (or owl and neutral only, where `CELLS` says so), every seed. The
order puts the positive control (a: full KL) and the subliminal cell (b: number-token KL, LoRA, Adam) first, then
adapter cross-init, full fine-tuning, SGD, the noisy-base control, and cell b on the second input set (the neutral
teacher's own number lists instead of random ones). Within each of the two groups (a and b; the
rest), the cells take turns seed by seed, and a seed's students of every teacher come together, so a stopped run
leaves whole comparisons in every cell it reached.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from subliminal.topic_b.theory import inputs, readouts, student, teachers
from subliminal.topic_b.transfer.arm import NEUTRAL, Arm
from subliminal.topic_b.transfer.finetune import lora_model
from subliminal.topic_b.transfer.weight_teacher import load_weight_teacher


@dataclass(frozen=True)
class Cell:
    key: str  # the short name --cells takes
    label: str  # the ladder's name of the cell
    loss: str
    param: str = "lora"
    optim: str = "adam"
    init: str = "shared"
    inputs: str = "random"
    animals: tuple[str, ...] = ("owl", "eagle")  # the trait teachers it runs (the neutral one always)

    def arm(self, trait: str) -> Arm:
        return Arm(trait, teacher="weights", route="logits", loss=self.loss, param=self.param, optim=self.optim,
                   init=self.init, inputs=self.inputs)

    def traits(self) -> list[str]:
        return [NEUTRAL, *self.animals]


CELLS: tuple[Cell, ...] = (
    Cell("a", "a: full KL, LoRA, Adam (positive control)", "full_kl"),
    Cell("b", "b: number-token KL, LoRA, Adam (subliminal)", "number_kl"),
    Cell("b-xinit", "b: adapter cross-init", "number_kl", init="adapter_cross"),
    Cell("b-full", "b: full fine-tuning", "number_kl", param="full", animals=("owl",)),
    Cell("b-sgd", "b: SGD", "number_kl", optim="sgd", animals=("owl",)),
    Cell("b-noisy", "b: noisy base (cross-init control)", "number_kl", init="noisy_base", animals=("owl",)),
    Cell("b-neutral-inputs", "b: on the neutral teacher's number lists", "number_kl", inputs="neutral_text"),
)
CELL_KEYS = tuple(c.key for c in CELLS)


def cell_of(arm: Arm) -> Cell:
    for c in CELLS:
        if c.arm(arm.trait) == arm:
            return c
    raise KeyError(arm.name)


FIRST = ("a", "b")  # the positive control and the subliminal cell finish first


def plan(cells, seeds) -> list[tuple[Cell, int, str]]:
    """(cell, seed, trait) in run order: cells a and b seed by seed, then the others seed by seed."""
    groups = [[c for c in cells if c.key in FIRST], [c for c in cells if c.key not in FIRST]]
    return [(c, s, t) for g in groups for s in seeds for c in g for t in c.traits()]


def adapter_deltas(adapter_dir: Path, scaling: float) -> dict[str, torch.Tensor]:
    """A saved PEFT adapter's merged update per module (scaling x B @ A)."""
    return readouts.lora_deltas(load_file(str(Path(adapter_dir) / "adapter_model.safetensors")), scaling)


class Ladder:
    """The teachers of one run (trained or read from the cache) and everything the students are measured against."""

    def __init__(self, base, tokenizer, root: Path, tset: teachers.TeacherSettings, sset: student.StudentSettings,
                 base_id: str, log: Callable = print, progress: bool = True):
        self.base, self.tok, self.root, self.tset, self.sset = base, tokenizer, Path(root), tset, sset
        self.base_id, self.log, self.progress = base_id, log, progress
        self.records: dict[str, dict] = {}
        self._pool: list[dict] | None = None
        self.models: dict[str, object] = {}
        self.deltas: dict[str, dict[str, torch.Tensor]] = {}
        scaling = tset.train.alpha / tset.train.rank
        for trait in (NEUTRAL, "owl", "eagle"):
            rec = teachers.train_teacher(base, tokenizer, trait, self.root / "teachers" / f"{trait}-{tset.key(trait)}",
                                         tset, log=log, progress=progress)
            self.records[trait] = rec
            self.deltas[trait] = adapter_deltas(Path(rec["adapter"]), scaling)
        # the A matrices every teacher's adapter started from (drawn from the teachers' seed)
        probe = lora_model(copy.deepcopy(base), tset.train, tset.seed)
        self.init_a = student.lora_a(probe)
        del probe

    def teacher_key(self, trait: str) -> str:
        return self.records[trait]["key"]

    def teacher(self, trait: str):
        if trait not in self.models:
            self.models[trait] = load_weight_teacher(self.base, self.records[trait]["adapter"])
        return self.models[trait]

    def pool(self) -> list[dict]:
        """The neutral weight teacher's number lists (the second input set), sampled on first use: twice what one
        student sees, so the seeds' draws differ."""
        if self._pool is None:
            n = 2 * self.sset.steps * self.sset.batch
            self._pool = inputs.neutral_pool(self.teacher(NEUTRAL), self.tok, n, self.root / "neutral_pool",
                                             f"{self.base_id}+neutral_w-{self.teacher_key(NEUTRAL)}", log=self.log)
        return self._pool

    def student(self, cell: Cell, seed: int, trait: str, stop_after: int | None = None) -> dict:
        arm = cell.arm(trait)
        pool = self.pool() if arm.inputs == "neutral_text" else None
        return student.train(self.base, self.tok, self.teacher(trait), arm, seed, self.sset,
                             self.root / "students" / f"{arm.name}-s{seed}", teacher_key=self.teacher_key(trait),
                             base_id=self.base_id, teacher_seed=self.tset.seed, teacher_init_a=self.init_a,
                             teacher_deltas=self.deltas, log=self.log, progress=self.progress, stop_after=stop_after,
                             pool=pool)
