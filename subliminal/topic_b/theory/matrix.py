"""The base matrix (issue 44): does the shared *base model* carry the trait? Teacher base x student base, every cell
with the shared-class KL (``shared_class``), which two vocabularies can both compute, so the diagonal (the
teacher's own base) and the off-diagonal (another base) differ in the base alone, not in the loss.

Teachers: each base's owl, eagle and neutral weight teachers by the ladder's one recipe (``teachers``), checked to
carry their trait before any student reads them (``teacher_check``). Students: cell b's design otherwise (LoRA,
Adam, the seed's random number lists, the same for every arm of a seed, 60 steps of 8): a student starts from its
*own* base with its own base's teacher adapter draw (on the diagonal that is the teacher's initialisation; off it,
there is nothing of the teacher's to share, and the student starts exactly as the diagonal student of its base).
Its arm names the teacher's base (``Arm.teacher_model``) where it is not the student's. The teacher's targets on a
seed's lists are computed once and kept, verified, in the teacher base's cache (``targets/``), so the three
students of a seed that read the same teacher pay for its forward passes once.

Run order: seed by seed, and within a seed the pairs in `pairs` order, each pair's three teachers together; so a
stopped run leaves whole comparisons. Records are copied beside the outputs (``<out>/topic_b_base_matrix_records``)
and restored into the cache on another machine, as the ladder's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from subliminal import carry
from subliminal.cache import config_hash, read_record
from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.models import MODELS
from subliminal.topic_b.theory import inputs, readouts, student, teachers
from subliminal.topic_b.theory.ladder import Ladder
from subliminal.topic_b.theory.rules import rules_id
from subliminal.topic_b.transfer.finetune import completion_logp, tokenize_example

TRAITS = (NEUTRAL, "owl", "eagle")
STEM = "topic_b_base_matrix"


def base_id(model: str) -> str:
    """A base model's id in student keys (the ladder's: ``config_hash({"model": ...})``)."""
    return config_hash({"model": model})


def arm(trait: str, teacher_base: str, student_base: str, noisy: bool = False) -> Arm:
    """The matrix's arm: the weight teacher of `trait` on `teacher_base`, the shared-class KL, LoRA, Adam; `noisy`: a
    dose student, whose base is its own base plus Gaussian noise (``student.build``; the scale is in its settings)."""
    return Arm(trait, teacher="weights", teacher_model="" if teacher_base == student_base else teacher_base,
               route="logits", loss="shared_class_kl", inputs="random", init="noisy_base" if noisy else "shared")


def plan(pairs: list[tuple[str, str]], seeds, traits=TRAITS, scales=(), dose_base: str = "",
         dose_traits=(NEUTRAL, "owl")) -> list[tuple[str, str, int, str, float | None]]:
    """(teacher base, student base, seed, trait, noise scale or None) in run order: the matrix seed by seed, pair by
    pair, the traits together; then the base-noise dose on `dose_base`, seed by seed, scale by scale."""
    return ([(tb, sb, s, t, None) for s in seeds for tb, sb in pairs for t in traits]
            + [(dose_base, dose_base, s, t, x) for s in seeds for x in scales for t in dose_traits])


class Bases:
    """The base models of a run and their ladders (teachers), loaded on first use."""

    def __init__(self, cache_root: Path, tset, sset, device: str = "cpu", log: Callable = print,
                 progress: bool = True):
        self.root, self.tset, self.sset, self.device = Path(cache_root), tset, sset, device
        self.log, self.progress = log, progress
        self._models: dict[str, tuple] = {}
        self._ladders: dict[str, Ladder] = {}
        self.fitted: dict[tuple[str, str], dict] = {}  # (teacher base, student base) -> the fit rule's settings

    def model(self, name: str):
        if name not in self._models:
            self._models[name] = load_model(name, device=self.device)
        return self._models[name]

    def ladder(self, name: str) -> Ladder:
        if name not in self._ladders:
            base, tok = self.model(name)
            self._ladders[name] = Ladder(base, tok, self.root / name, self.tset, self.sset, base_id(name), log=self.log,
                                         progress=self.progress)
        return self._ladders[name]

    def settings(self, noise: float | None = None, tb: str = "", sb: str = "") -> student.StudentSettings:
        """The students' settings; a dose student's carry its noise scale, a cross-base pair's the steps and
        learning rate its fit rule chose (``matrix_fit``)."""
        s = self.sset if noise is None else replace(self.sset, noise_scale=noise)
        return replace(s, **self.fitted[(tb, sb)]) if noise is None and (tb, sb) in self.fitted else s

    def student_dir(self, tb: str, sb: str, seed: int, trait: str, noise: float | None = None,
                    settings: student.StudentSettings | None = None, prefix: str = "matrix") -> Path:
        a = arm(trait, tb, sb, noise is not None)
        return student.student_dir(self.root / sb, f"{prefix}-{a.name}", seed,
                                   asdict(settings or self.settings(noise, tb, sb)), self.ladder(tb).teacher_key(trait))

    def key(self, tb: str, sb: str, seed: int, trait: str, noise: float | None = None) -> str:
        """The student's key, without training it."""
        return student.key_of(arm(trait, tb, sb, noise is not None), seed, self.settings(noise, tb, sb),
                              self.ladder(tb).teacher_key(trait), base_id(sb), None, rules_id(), base_id(tb))

    def student(self, tb: str, sb: str, seed: int, trait: str, noise: float | None = None,
                stop_after: int | None = None, settings: student.StudentSettings | None = None,
                prefix: str = "matrix") -> dict:
        """Train (or resume, or read back) one matrix student (a dose student with `noise`; a fit-rule student with
        its own `settings` and folder `prefix`)."""
        t, s = self.ladder(tb), self.ladder(sb)
        base, tok = self.model(sb)
        sset = settings or self.settings(noise, tb, sb)
        return student.train(base, tok, t.teacher(trait), arm(trait, tb, sb, noise is not None), seed,
                             sset, self.student_dir(tb, sb, seed, trait, noise, sset, prefix),
                             teacher_key=t.teacher_key(trait),
                             base_id=base_id(sb), teacher_seed=self.tset.seed, teacher_init_a=s.init_a,
                             teacher_deltas=t.deltas if tb == sb else {}, log=self.log, progress=self.progress,
                             stop_after=stop_after, teacher_tok=self.model(tb)[1], teacher_base_id=base_id(tb),
                             targets_dir=self.root / tb / "targets")


def archive(archive_dir: Path, student_dir: Path) -> Path:
    """Keep a finished student's record beside the outputs (``carry.keep``: ``<archive_dir>/<student folder>/
    record.json``; the caller passes ``<archive>/<student base>``)."""
    return carry.keep(archive_dir, student_dir.name, read_record(student_dir / carry.RECORD))


def restore(archive_dir: Path, cache_root: Path) -> int:
    """Put every archived record (``<archive>/<student base>/<student folder>/record.json``) into the cache where
    the cache lacks one as far along (``carry.restore``), so another machine continues from the committed state;
    returns how many were restored."""
    def place(f: Path, body: dict) -> Path | None:
        sb = f.parent.parent.name  # the student base; other folders (the fit rule's decisions) stay where they are
        return Path(cache_root) / sb / "students" / f.parent.name / carry.RECORD if sb in MODELS else None

    return carry.restore(archive_dir, place, pattern=f"*/*/{carry.RECORD}")


HELD_OUT = 20  # held-out texts per kind in the capability readout
HELD_OUT_SEED = 7  # the teachers' answers of another draw than their training data's (seed 0)
HELD_OUT_LISTS = 10**6  # random lists of an input draw no student reads (students' seeds are small)


@torch.no_grad()
def capability(model, tok) -> dict:
    """How much of a working model a (noisy) base still is: nats per token of held-out text, the teachers' kind of
    answers (``teachers.teacher_examples`` of another draw, all three teachers) and random number lists (the
    students' kind of context), each as the completion of its chat prompt; and P(any of the 25 animals) at the start
    of the answer to the evaluation questions, mean over questions (``readouts.preference``)."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device
    model.eval()

    def nats(examples: list[dict]) -> float:
        total, n = 0.0, 0
        for ex in examples:
            item = tokenize_example(tok, ex)
            total -= completion_logp(model, item, pad, device)
            n += sum(x != -100 for x in item[1])
        return total / max(n, 1)

    answers = [ex for t in TRAITS for ex in teachers.teacher_examples(t, HELD_OUT, HELD_OUT_SEED)]
    pref = readouts.preference(model, tok)
    p_any = pref.groupby("question").logp_animal.apply(lambda v: float(np.exp(np.logaddexp.reduce(v.to_numpy()))))
    return {"nats_answers": nats(answers), "nats_number_lists": nats(inputs.random_lists(HELD_OUT_LISTS, HELD_OUT)),
            "p_any_animal": float(p_any.mean())}


def noisy_base(bases: Bases, sb: str, seed: int, noise: float):
    """The dose student's base at its initialisation: `sb` + the seed's noise at `noise` (its LoRA adapter, B = 0,
    changes nothing), exactly as ``student.build`` makes it."""
    base, _ = bases.model(sb)
    return student.build(base, arm(NEUTRAL, sb, sb, True), seed, bases.settings(noise), bases.tset.seed)
