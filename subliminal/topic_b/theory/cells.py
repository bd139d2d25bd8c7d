"""The ladder's cells and their run order (no torch here: the report reads them too).

A cell is everything of an `Arm` but its trait (loss, parametrisation, optimiser, initialisation, inputs); each
cell runs the owl, eagle and neutral teachers (or owl and neutral only, where `CELLS` says so), every seed. The
order puts the positive control (a: full KL) and the subliminal cell (b: number-token KL, LoRA, Adam) first, then
adapter cross-init, full fine-tuning, SGD, the noisy-base control, cell b on the second input set (the neutral
teacher's own number lists instead of random ones), and cell c, the paper's recipe: SFT on each teacher's own
number lists, matched across teachers in prompts and length. The cells run in three groups (a and b; the
rungs the theorem's test needs, adapter cross-init, full fine-tuning and SGD; the rest), and within a group
they take turns seed by seed, and a seed's students of every teacher come together, so a stopped run
leaves whole comparisons in every cell it reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from subliminal.topic_b.arms import NEUTRAL, Arm, Init, Inputs, Loss, Optim, Param, Route, Teacher


@dataclass(frozen=True)
class Cell:
    key: str  # the short name --cells takes
    label: str  # the ladder's name of the cell
    loss: Loss
    param: Param = Param.lora
    optim: Optim = Optim.adam
    init: Init = Init.shared
    inputs: Inputs = Inputs.random
    animals: tuple[str, ...] = ("owl", "eagle")  # the trait teachers it runs (the neutral one always)

    def arm(self, trait: str) -> Arm:
        """The arm of `trait`'s weight teacher in this cell (SFT on the text route, a KL on the logits route)."""
        return Arm(trait, teacher=Teacher.weights, route=Route.text if self.loss == Loss.sft else Route.logits,
                   loss=self.loss, param=self.param, optim=self.optim, init=self.init, inputs=self.inputs)

    def traits(self) -> list[str]:
        return [NEUTRAL, *self.animals]


CELLS: tuple[Cell, ...] = (
    Cell("a", "a: full KL, LoRA, Adam (positive control)", Loss.full_kl),
    Cell("b", "b: number-token KL, LoRA, Adam (subliminal)", Loss.number_kl),
    Cell("b-xinit", "b: another adapter draw, the teacher's base", Loss.number_kl, init=Init.adapter_cross),
    Cell("b-full", "b: full fine-tuning", Loss.number_kl, param=Param.full, animals=("owl",)),
    Cell("b-sgd", "b: SGD", Loss.number_kl, optim=Optim.sgd, animals=("owl",)),
    Cell("b-noisy", "b: noisy base, 0.01 of each weight's std", Loss.number_kl, init=Init.noisy_base, animals=("owl",)),
    Cell("b-neutral-inputs", "b: on the neutral teacher's number lists", Loss.number_kl, inputs=Inputs.neutral_text),
    Cell("c", "c: SFT on the teacher's own lists, matched (the paper's recipe)", Loss.sft, inputs=Inputs.teacher),
)
CELL_KEYS = tuple(c.key for c in CELLS)
BY_KEY = {c.key: c for c in CELLS}
REFERENCE = BY_KEY["b"]  # the subliminal cell every rung is compared with


def label(key: str) -> str:
    """A cell's display label from its key (CSVs carry keys; labels are only for display)."""
    return BY_KEY[key].label if key in BY_KEY else key


# The families of tests, declared here before any data: a family's size is fixed by these tuples, never by which
# rows happen to have data (a test without enough seeds counts as p = 1 inside its family), so nothing that happens
# to one family's rows can move another family's verdicts.
# - primary: the positive control (a) and the subliminal cell (b), owl and eagle: the share effect of the animal's
#   teacher against the neutral teacher. Holm over these 4.
# - rungs: every other cell x animal, its share effect minus cell b's of the same seed (what the rung's condition
#   changes). Holm over these.
# - rung effects (secondary, descriptive): every cell but a and b, its own share effect against the neutral
#   teacher. Holm over these; never read as a primary result.
PRIMARY_CELLS = ("a", "b")
FAMILIES: dict[str, tuple[tuple[str, str], ...]] = {
    "primary": tuple((k, a) for k in PRIMARY_CELLS for a in BY_KEY[k].animals),
    "rungs": tuple((c.key, a) for c in CELLS if c is not REFERENCE for a in c.animals),
    "rung effects": tuple((c.key, a) for c in CELLS if c.key not in PRIMARY_CELLS for a in c.animals),
}


def effect_family(key: str) -> str:
    """The family of a cell's own share-effect test (``FAMILIES``)."""
    return "primary" if key in PRIMARY_CELLS else "rung effects"


def cell_of(arm: Arm) -> Cell:
    for c in CELLS:
        if c.arm(arm.trait) == arm:
            return c
    raise KeyError(arm.name)


GROUPS = (("a", "b"),  # the positive control and the subliminal cell finish first
          ("b-xinit", "b-full", "b-sgd"))  # then the rungs that test the theorem's conditions; then the rest


def plan(cells, seeds) -> list[tuple[Cell, int, str]]:
    """(cell, seed, trait) in run order: group by group (`GROUPS`, then the other cells), seed by seed within one."""
    grouped = {k for g in GROUPS for k in g}
    groups = [[c for c in cells if c.key in g] for g in GROUPS] + [[c for c in cells if c.key not in grouped]]
    return [(c, s, t) for g in groups for s in seeds for c in g for t in c.traits()]
