"""What a transfer run will do, before it does anything: its arms (typed `Arm`s on the run's route), their
order, the students it plans, and where their caches live.

The owl set comes first: the neutral teacher, the first animal's teacher and the further neutral draws (the
arms' training order), then the cross model's animal and neutral teachers (``--cross-model``; text route only).
Students are planned seed-major over the owl set (neutral s0, owl s0, neutral_2 s0, ..., neutral s1, ...), then
each further animal's students, seed by seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from subliminal.cache import config_hash
from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.transfer.arm import label, on_route, student_prefix
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.finetune import TrainSettings, settings_id
from subliminal.topic_b.transfer.record import Student


def root(cfg: TransferConfig) -> Path:
    """The run's cache folder."""
    return cfg.cache_root


def run_arm(cfg: TransferConfig, trait: str, **fields) -> Arm:
    """An arm of this run: `trait` with `fields`, on the run's route."""
    return on_route(Arm(trait, **fields), cfg.route)


def neutral_draws(cfg: TransferConfig) -> list[Arm]:
    """The arms of the neutral teacher's data draws: 'neutral', 'neutral_2', ... (--neutral-draws; the logits
    route has one: every arm distils on the neutral sequences)."""
    return [run_arm(cfg, NEUTRAL, draw=k) for k in range(cfg.neutral_draws if cfg.route == "text" else 1)]


def trained(cfg: TransferConfig, arm: Arm) -> bool:
    """Whether any student of `arm` has finished (any seed, this route)."""
    return any((root(cfg) / "students").glob(f"{student_prefix(arm)}{label(arm)}-s*/train.json"))


def neutral_teachers(cfg: TransferConfig) -> list[Arm]:
    """The neutral draws to sample now: all of them; under --stage eval only those with a trained student
    (evaluation samples nothing new for an untrained arm)."""
    return [n for n in neutral_draws(cfg) if n.draw == 0 or cfg.stage != "eval" or trained(cfg, n)]


def animal_arm(cfg: TransferConfig, animal: str) -> Arm:
    """The arm of an animal's teacher: the prompted base model ('owl') or the weight teacher ('owl_w')."""
    return run_arm(cfg, animal, teacher=cfg.teacher)


def student_dir(cfg: TransferConfig, student: Student, data_hash: str, settings: TrainSettings) -> Path:
    """Where the student of (arm, seed) lives: keyed by the arm's data hash, the settings and the seed."""
    arm, seed = student
    h = config_hash([cfg.model, data_hash, settings_id(settings), seed])
    return root(cfg) / "students" / f"{student_prefix(arm)}{label(arm)}-s{seed}-{h}"


@dataclass(frozen=True)
class Plan:
    animal: Arm  # the first animal's teacher
    neutral_now: tuple[Arm, ...]  # the neutral draws sampled now (``neutral_teachers``); the first is the reference
    cross: tuple[Arm, ...]  # the cross model's animal and neutral teachers (--cross-model)
    draws: tuple[Arm, ...]  # every neutral draw (planned even where --stage eval samples none)
    others: tuple[Arm, ...]  # the further animals' teachers, in run order
    seeds: tuple[int, ...]
    settings: TrainSettings
    text_route: bool

    @property
    def neutral(self) -> Arm:
        """The reference arm: the first draw of the neutral teacher."""
        return self.neutral_now[0]

    @property
    def sampled(self) -> tuple[Arm, ...]:
        """The owl set's teachers sampled on the base model, in training order: neutral, the animal, the
        further neutral draws."""
        return (*self.neutral_now[:1], self.animal, *self.neutral_now[1:])

    @property
    def owl_set(self) -> tuple[Arm, ...]:
        """The owl set's arms that get students (a cross teacher's logits are another model's: text only)."""
        return self.sampled + (self.cross if self.text_route else ())

    @property
    def planned(self) -> list[Student]:
        """Every student of the run, in training order (untrained neutral draws too: --stage eval lists them)."""
        first = [*self.owl_set, *(n for n in self.draws if n not in self.owl_set)]
        return [(a, s) for s in self.seeds for a in first] + [(a, s) for a in self.others for s in self.seeds]


def make_plan(cfg: TransferConfig) -> Plan:
    cross = tuple(run_arm(cfg, t, teacher_model=cfg.cross_model) for t in (cfg.animals[0], NEUTRAL)
                  if cfg.cross_model)
    return Plan(animal=animal_arm(cfg, cfg.animals[0]), neutral_now=tuple(neutral_teachers(cfg)), cross=cross,
                draws=tuple(neutral_draws(cfg)), others=tuple(animal_arm(cfg, a) for a in cfg.animals[1:]),
                seeds=tuple(cfg.seeds), settings=TrainSettings(epochs=cfg.epochs, bf16=cfg.bf16),
                text_route=cfg.route == "text")
