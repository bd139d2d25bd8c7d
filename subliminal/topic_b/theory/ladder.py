"""One run of the ladder (`cells.CELLS`, in `cells.plan` order): its teachers, then each student on demand,
trained or read back, with everything the students are measured against (the teachers' updates and initial A
matrices, the sampled input pools)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from subliminal.cache import read_record
from subliminal.topic_b.arms import NEUTRAL, Arm, Inputs
from subliminal.topic_b.theory import inputs, readouts, student, teachers
from subliminal.topic_b.theory.cells import Cell
from subliminal.topic_b.theory.rules import rules_id
from subliminal.topic_b.transfer.data import examples_of
from subliminal.topic_b.transfer.finetune import lora_model
from subliminal.topic_b.transfer.weight_teacher import load_weight_teacher


def adapter_deltas(adapter_dir: Path, scaling: float) -> dict[str, torch.Tensor]:
    """A saved PEFT adapter's merged update per module (scaling x B @ A)."""
    return readouts.lora_deltas(load_file(str(Path(adapter_dir) / "adapter_model.safetensors")), scaling)


class Ladder:
    """The teachers of one run (trained or read from the cache) and everything the students are measured against."""

    def __init__(self, base, tokenizer, root: Path, tset: teachers.TeacherSettings, sset: student.StudentSettings,
                 base_id: str, log: Callable = print, progress: bool = True):
        self.base, self.tok, self.root, self.tset, self.sset = base, tokenizer, Path(root), tset, sset
        self.base_id, self.log, self.progress = base_id, log, progress
        self.rules = rules_id()  # the evaluation rules every student of this run is read under (default questions)
        self.records: dict[str, dict] = {}
        self._pools: dict[str, list[dict]] = {}  # each weight teacher's sampled lists (trait -> records)
        self._pool: list[dict] | None = None
        self._matched: dict[str, list[dict]] | None = None
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

    def _records(self, trait: str) -> list[dict]:
        """The weight teacher's number lists on this module's prompts, sampled on first use: twice what one student
        sees, so the seeds' draws differ."""
        if trait not in self._pools:
            n, label = 2 * self.sset.steps * self.sset.batch, f"{trait}_w"
            self._pools[trait] = inputs.teacher_pool(self.teacher(trait), self.tok, label, n, self.root / "pools",
                                                     f"{self.base_id}+{label}-{self.teacher_key(trait)}", log=self.log)
        return self._pools[trait]

    def pool(self) -> list[dict]:
        """The neutral weight teacher's number lists (the second input set), one list for the whole run."""
        if self._pool is None:
            self._pool = examples_of(self._records(NEUTRAL))
        return self._pool

    def matched(self) -> dict[str, list[dict]]:
        """Cell c's contexts: every weight teacher's own lists on the prompts all of them answered, cut to the
        same count of numbers per prompt (``inputs.matched``)."""
        if self._matched is None:
            self._matched = inputs.matched({t: self._records(t) for t in (NEUTRAL, "owl", "eagle")})
        return self._matched

    def input_stats(self) -> dict:
        """Numbers per list of each teacher's own samples and of cell c's matched contexts (for the run record)."""
        return {t: {"numbers_per_list_sampled": round(inputs.numbers_per_list(examples_of(self._pools[t])), 3),
                    "numbers_per_list_matched": round(inputs.numbers_per_list(self._matched[t]), 3)
                    if self._matched else None, "n_matched": len(self._matched[t]) if self._matched else None}
                for t in self._pools}

    def _dir(self, arm: Arm, seed: int, trait: str) -> Path:
        """The student's cache folder (``student.student_dir``); a folder of the layout before settings were part of
        the name (``<name>-s<seed>``) moves there when its record was trained under these settings."""
        out = student.student_dir(self.root, arm.name, seed, asdict(self.sset), self.teacher_key(trait))
        old = self.root / "students" / f"{arm.name}-s{seed}"
        if old.is_dir() and not out.exists():
            rec = read_record(old / "record.json")
            if rec is None or student.student_dir(self.root, rec["name"], rec["seed"], rec["settings"],
                                                  rec["teacher_key"]) == out:
                old.rename(out)  # a checkpoint in it is still checked against the student's key when read
        return out

    def _contexts(self, arm: Arm, trait: str) -> list[dict] | None:
        return (self.pool() if arm.inputs == Inputs.neutral_text else self.matched()[trait] if arm.inputs == Inputs.teacher
                else None)

    def finished(self, cell: Cell, seed: int, trait: str) -> dict | None:
        """The student's record when it is finished under this run's settings, teacher, inputs and evaluation rules;
        else None, without training (nor sampling a pool: a finished record of a pooled cell means its pool is
        here)."""
        arm = cell.arm(trait)
        rec = read_record(self._dir(arm, seed, trait) / "record.json")
        if rec is None or not rec.get("complete"):
            return None
        key = student.key_of(arm, seed, self.sset, self.teacher_key(trait), self.base_id, self._contexts(arm, trait),
                             self.rules)
        return rec if student.finished(rec, key, self.rules) else None

    def student(self, cell: Cell, seed: int, trait: str, stop_after: int | None = None) -> dict:
        arm = cell.arm(trait)
        pool = self._contexts(arm, trait)
        return student.train(self.base, self.tok, self.teacher(trait), arm, seed, self.sset,
                             self._dir(arm, seed, trait), teacher_key=self.teacher_key(trait),
                             base_id=self.base_id, teacher_seed=self.tset.seed, teacher_init_a=self.init_a,
                             teacher_deltas=self.deltas, log=self.log, progress=self.progress, stop_after=stop_after,
                             pool=pool)
