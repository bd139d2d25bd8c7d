"""What a transfer run records (typed), and the working state of a run that carries it.

`RunRecord` holds arms as `Arm` values and students as (arm, seed); `to_json` spells them the transfer room's
way (``'owl'``, ``'neutral/s0'``) and writes exactly the keys, in the order, that the committed
``plots_b/topic_b_transfer*.json`` files have: the keys every run has, then ``trait_teachers`` (--teacher
weights), ``defence`` (--defence), ``n_train_per_arm`` (once the arms are matched) and ``not_trained`` (once
outputs are written), each only once it is known.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from subliminal.topic_b.arms import Arm
from subliminal.topic_b.transfer.arm import label
from subliminal.topic_b.transfer.config import TransferConfig

Student = tuple[Arm, int]  # (arm, seed)


def student_key(student: Student) -> str:
    """A student's name in the JSON: 'owl/s0'."""
    arm, seed = student
    return f"{label(arm)}/s{seed}"


def _by_label(d: dict[Arm, Any]) -> dict[str, Any]:
    return {label(arm): v for arm, v in d.items()}


@dataclass
class RunRecord:
    eval_animals: list[str]
    bf16_autocast: bool
    neutral_draws_planned: int  # what reporting's verdicts wait for
    native_bf16: bool
    teachers: dict[Arm, dict] = field(default_factory=dict)  # per arm: its data's stats, data_hash, shard_dir
    students: dict[Student, dict] = field(default_factory=dict)  # per student: its training record
    eval_seconds: dict[str, float | None] = field(default_factory=dict)  # per evaluation cache key
    planned: list[Student] = field(default_factory=list)  # every student of the run, in training order
    trait_teachers: dict[Arm, dict] = field(default_factory=dict)  # --teacher weights: each teacher's record
    defence: dict[Arm, dict] | None = None  # --defence: per arm, what the defence kept (with the index lists)
    n_train_per_arm: int | None = None
    not_trained: list[Student] | None = None  # the planned students without a record at the last write

    def to_json(self, public: bool = True) -> dict[str, Any]:
        """The run's keys of the JSON. `public`: the defence's per-record index lists stay out (they go into
        the kept table)."""
        doc: dict[str, Any] = {
            "teachers": _by_label(self.teachers), "students": {student_key(s): r for s, r in self.students.items()},
            "eval_seconds": dict(self.eval_seconds), "planned": [student_key(s) for s in self.planned],
            "eval_animals": list(self.eval_animals), "bf16_autocast": self.bf16_autocast,
            "neutral_draws_planned": self.neutral_draws_planned, "native_bf16": self.native_bf16}
        if self.trait_teachers:
            doc["trait_teachers"] = _by_label(self.trait_teachers)
        if self.defence is not None:
            doc["defence"] = {label(a): {k: v for k, v in st.items() if not (public and k.endswith("_index"))}
                              for a, st in self.defence.items()}
        if self.n_train_per_arm is not None:
            doc["n_train_per_arm"] = self.n_train_per_arm
        if self.not_trained is not None:
            doc["not_trained"] = [student_key(s) for s in self.not_trained]
        return doc


@dataclass
class Session:
    """One run's working state: its config, device, base model and tokenizer, the record, the log, the start
    time, the evaluation rows so far and the order of the students already in the outputs."""

    cfg: TransferConfig
    device: Any
    base: Any
    tok: Any
    record: RunRecord
    log: Any = print
    t0: float = field(default_factory=time.time)
    rows: list[pd.DataFrame] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)  # the students' order in the outputs' JSON at the start
