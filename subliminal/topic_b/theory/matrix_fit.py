"""The off-diagonal fit rule of the base matrix (issue 44), declared here before any trait student of a cross-base
pair runs: students of the pair's *neutral* teacher alone decide the pair's steps and learning rate, so that a
cross-base student fits its teacher below the signal it must learn, and no trait student's outcome can move the
choice.

- Candidates: learning rates ``lrs`` (the ladder's first) x step counts ``steps`` (cell b's first), tried cheapest
  first: fewest steps, then the smallest learning rate. One neutral student per learning rate, on the lists of
  ``FIT_SEED`` (no measured student reads them), runs up to ``max(steps)`` with a readout at every candidate step
  count. Its learning rate is constant, so its state after k steps is the k-step student's (the same lists, the
  same updates): one run serves every step count, stopped (a checkpoint kept) at the count the search needs.
- Fit: the student's shared-class KL to the teacher, the mean of its last 10 steps' training loss (each step's
  lists are new to it), as the matrix's ``_fit.csv`` reads every student.
- Bar: ``target`` x the signal of the teacher's base, the smaller over the animals of the trait-neutral teacher KL
  (mean over the seeds measured, ``_signal.csv``).
- Choice: the first candidate in that order whose fit is below the bar ("reached"); when none is, the candidate
  with the smallest fit, marked "not reached": that pair's nulls are a weaker test, not evidence.

The decision is kept once per pair as a record in the run's records folder (``fit_rule/<pair>/record.json``, in
git), with every candidate's fit; it is made again only when the candidates, the bar's target or the students'
other settings change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from subliminal import carry
from subliminal.cache import read_record
from subliminal.topic_b.theory import student
from subliminal.topic_b.theory.matrix_analysis import ANIMALS, pair_key

FIT_SEED = 900  # the lists the fit students read; measured students' seeds are small
FOLDER = "fit_rule"


@dataclass(frozen=True)
class FitRule:
    lrs: tuple[float, ...]
    steps: tuple[int, ...]
    target: float = 1.0

    def order(self) -> list[tuple[int, float]]:
        """(steps, lr) in the order tried: fewest steps first, then the smallest learning rate."""
        return [(k, lr) for k in sorted(set(self.steps)) for lr in sorted(set(self.lrs))]

    def settings(self, base: student.StudentSettings, lr: float) -> student.StudentSettings:
        """The fit student's settings: `base` at `lr`, up to the largest step count, a readout at every one."""
        return replace(base, steps=max(self.steps), milestones=tuple(sorted(set(self.steps))), lr_lora_adam=lr)


def bar(signal: pd.DataFrame, teacher_base: str, target: float) -> float | None:
    """`target` x the smaller over the animals of the teacher base's mean signal; None before it is measured."""
    s = signal[signal.teacher_base == teacher_base] if len(signal) else signal
    means = [float(s[s.animal == a].kl.mean()) for a in ANIMALS if (s.animal == a).any()] if len(s) else []
    return target * min(means) if len(means) == len(ANIMALS) else None


def choose(fits: dict[tuple[int, float], float], rule: FitRule, level: float) -> dict:
    """The decision from the candidates' fits (all of them up to the chosen one, in ``rule.order``)."""
    for k, lr in rule.order():
        if (k, lr) in fits and fits[(k, lr)] < level:
            return {"steps": k, "lr": lr, "reached": True}
    best = min(fits, key=lambda c: (fits[c], c))
    return {"steps": best[0], "lr": best[1], "reached": False}


def _doc(tb: str, sb: str, rule: FitRule, base: student.StudentSettings, level: float) -> dict:
    return {"pair": pair_key(tb, sb), "rule": asdict(rule), "base_settings": asdict(base), "bar": level,
            "fit_seed": FIT_SEED}


def decided(records: Path, tb: str, sb: str, rule: FitRule, base: student.StudentSettings) -> dict | None:
    """The kept decision for the pair when it was made under this rule and these settings; None otherwise."""
    rec = read_record(Path(records) / FOLDER / pair_key(tb, sb).replace(">", "__") / carry.RECORD)
    if rec is None or not rec.get("complete"):
        return None
    want = _doc(tb, sb, rule, base, rec.get("bar"))
    same = carry.plain({k: rec.get(k) for k in want}) == carry.plain(want)
    return rec if same else None


def decide(records: Path, tb: str, sb: str, rule: FitRule, base: student.StudentSettings, level: float,
           train: Callable[[float, student.StudentSettings, int], dict], log: Callable = print) -> dict:
    """Search the candidates in order with ``train(lr, settings, stop_after)`` (the neutral fit student, resumable)
    until one is below `level`; keep and return the decision."""
    fits: dict[tuple[int, float], float] = {}
    for k, lr in rule.order():
        rec = train(lr, rule.settings(base, lr), k)
        m = rec["milestones"].get(str(k))
        if m is None:
            raise RuntimeError(f"the fit student at lr {lr:g} has no readout at step {k}")
        fits[(k, lr)] = float(m["kl"])
        log(f"[matrix] fit rule {pair_key(tb, sb)}: lr {lr:g}, {k} steps: KL {fits[(k, lr)]:.4g} "
            f"(bar {level:.4g})")
        if fits[(k, lr)] < level:
            break
    choice = choose(fits, rule, level)
    rec = carry.plain(_doc(tb, sb, rule, base, level) | {
        "candidates": [{"steps": k, "lr": lr, "kl": v, "over_bar": v / level} for (k, lr), v in fits.items()],
        "chosen": choice, "complete": True})
    carry.keep(Path(records) / FOLDER, pair_key(tb, sb).replace(">", "__"), rec)
    log(f"[matrix] fit rule {pair_key(tb, sb)}: {choice['steps']} steps at lr {choice['lr']:g}"
        f"{'' if choice['reached'] else ' (no candidate reached the bar: its nulls are a weaker test)'}")
    return rec


def overrides(rec: dict) -> dict:
    """The student settings a decision gives the pair's students."""
    return {"steps": int(rec["chosen"]["steps"]), "lr_lora_adam": float(rec["chosen"]["lr"])}


def table(records: Path) -> pd.DataFrame:
    """Every kept decision, one row per candidate tried: pair, steps, lr, kl, bar, over_bar, chosen, reached."""
    rows = []
    for _, rec in carry.kept(Path(records) / FOLDER, f"*/{carry.RECORD}"):
        ch = rec.get("chosen") or {}
        for c in rec.get("candidates", []):
            rows.append({"pair": rec["pair"], "steps": c["steps"], "lr": c["lr"], "kl": c["kl"], "bar": rec["bar"],
                         "over_bar": c["over_bar"], "chosen": c["steps"] == ch.get("steps") and c["lr"] == ch.get("lr"),
                         "reached": bool(ch.get("reached"))})
    return pd.DataFrame(rows, columns=["pair", "steps", "lr", "kl", "bar", "over_bar", "chosen", "reached"])

