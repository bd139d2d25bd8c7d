"""The base matrix's outputs as the report reads them (``load``: the CSVs and the run JSON, verified) and the
formatting of one value or one cell (ratios, words, fit, counts); the tables and verdict records are in
``base_matrix``. Reads only; computes no statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting import verify
from subliminal.reporting.render import read_csv_checked, read_json_checked
from subliminal.reporting.theory_tests import level_pct
from subliminal.topic_b.theory.matrix_analysis import (
    ANIMALS,
    DEFAULT_BASES,
    DEFAULT_SCALES,
    DOSE_ANIMALS,
    SHORT,
    declared,
    noise_of,
    split,
)

STEM = "topic_b_base_matrix"
SCRIPT = "topic_b_base_matrix.py"
PAGE = "docs/topic_b_base_matrix.md"
FIGURE = f"{STEM}_dose.png"
TRAITS = ("neutral", *ANIMALS)  # the teachers of every pair (matrix.TRAITS, without importing the model code)
TEACHER_CLAIM = "ours: a weight teacher of the ladder's recipe carries its trait, its share of its animal above the " \
                "neutral teacher's"
CLAIM = ("theorem: a student that starts from the teacher's initialisation and imitates its outputs on numbers "
         "takes on the teacher's animal")  # the ladder's claim (reporting.theory.CLAIM), here with the shared-class KL
CONTROL = ("Topic A's pattern in an LLM, as in the paper's §6: without the teacher's initialisation the student "
           "takes on the animal far less")
DOSE_CLAIM = ("Topic A's init-noise sweep in an LLM (`topic_a_mech_init`): a student whose base is the teacher's plus "
              "noise takes on the animal less than one on the teacher's own base, while the noisy base still works")
FAMILY_TEXT = {
    "base matrix": "each pair's share effect: the trait teacher's student against the neutral teacher's student of "
                   "the same pair and seed",
    "base contrasts": "each off-diagonal pair's share effect divided by the diagonal's of the same student base, paired "
                      "by seed (the two students start from the same weights and read the same lists; only the "
                      "teacher's base differs)",
    "base-noise dose": "each noise scale's share effect, the student's base being the teacher's plus Gaussian noise at "
                       "that fraction of every weight tensor's std",
    "dose contrasts": "each noise scale's share effect divided by the noiseless diagonal's, paired by seed",
}
REQUIRED = {
    "_teachers": ("base", "animal", "share_teacher", "share_neutral", "ratio", "ci_low", "ci_high", "level", "verdict"),
    "_effects": ("pair", "animal", "family", "verdict", "n_seeds", "ratio", "ratio_low", "ratio_high", "level",
                 "p_holm", "mde_level"),
    "_contrasts": ("pair", "versus", "animal", "family", "n_seeds", "ratio", "ratio_low", "ratio_high", "level",
                   "p_holm", "mde_level", "keep", "keep_ci_low", "keep_ci_high", "reading"),
    "_fit": ("pair", "teacher", "n_seeds", "kl_to_teacher", "kl_min", "kl_max", "signal_kl", "fit_over_signal", "fits"),
    "_signal": ("teacher_base", "animal", "seed", "kl"),
    "_fit_rule": ("pair", "steps", "lr", "kl", "bar", "over_bar", "chosen", "reached"),
    "_dose": ("pair", "animal", "family", "noise_scale", "n_seeds", "ratio", "ratio_low", "ratio_high", "level",
              "base_state", "d_nats_answers"),
    "_capability": ("base", "seed", "noise_scale", "nats_answers", "nats_number_lists", "p_any_animal",
                    "d_nats_answers", "base_state"),
}


@dataclass
class Matrix:
    """What the run wrote: each CSV (empty where not written yet) and the run JSON ({} where not written)."""

    csv: dict[str, pd.DataFrame]
    meta: dict = field(default_factory=dict)
    figure: bool = False

    def __getitem__(self, k: str) -> pd.DataFrame:
        return self.csv[k]

    @property
    def config(self) -> dict:
        return self.meta.get("config") or {}

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(self.config.get("bases") or DEFAULT_BASES)

    def families(self) -> tuple[dict[str, list[tuple[str, str]]], set[str]]:
        """The families of tests: the run JSON's ("families") where it has them, else the code's declaration
        (``matrix_analysis.declared`` for the run's bases, scales and dose animals); and the names of those that
        only the code declares (not in the run on record)."""
        cfg = self.config
        code = declared(self.bases, tuple(cfg.get("noise_scales") or DEFAULT_SCALES),
                        tuple(cfg.get("dose_animals") or DOSE_ANIMALS))
        code = {k: list(v) for k, v in code.items()}
        run = {k: [tuple(m) for m in v] for k, v in (self.meta.get("families") or {}).items()}
        return (run | {k: v for k, v in code.items() if k not in run}), (set(code) - set(run) if run else set())


def _read(path: Path, key: str) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size < 2:
        return pd.DataFrame(columns=list(REQUIRED[key]))
    return read_csv_checked(path, REQUIRED[key])


def load(root: Path) -> Matrix | None:
    """The run's outputs, verified (``reporting.verify``); None when it has written nothing yet."""
    p = Path(root) / "plots_b"
    files = {k: p / f"{STEM}{k}.csv" for k in REQUIRED}
    j = p / f"{STEM}.json"
    if not j.exists() and not any(f.exists() for f in files.values()):
        return None
    verify.verify_outputs(p, [f.name for f in files.values()] + [j.name, FIGURE])
    meta = read_json_checked(j) if j.exists() else {}
    if meta:
        verify.verify_records(p / f"{STEM}_records", meta, pattern="*/*/record.json")
    return Matrix({k: _read(f, k) for k, f in files.items()}, meta, (p / FIGURE).exists())


# --- formatting: values as the CSVs hold them -------------------------------------------------------------------

def _fin(v) -> bool:
    try:
        return bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False


def short(base: str) -> str:
    return SHORT.get(base, base)


def label(key: str) -> str:
    """'SmolLM2 teacher → Gemma student'; a dose cell: 'SmolLM2 teacher → noisy SmolLM2 student (noise 0.1)'."""
    tb, sb = split(key)
    x = noise_of(key)
    return f"{short(tb)} teacher → noisy {short(sb)} student (noise {x:g})" if x else \
        f"{short(tb)} teacher → {short(sb)} student"


def ratio(r, level: bool = True) -> str:
    """A row's share ratio [CI] as the analysis wrote it (ratio, ratio_low, ratio_high), with the CI's level: the
    row's Holm level, or 95% where it has none (fewer than 3 seeds)."""
    x = f"×{r.ratio:.3g}"
    if not _fin(r.ratio_low):
        return f"{x} (1 seed)"
    lvl = f" ({level_pct(r.level) if _fin(r.level) else '95%'} CI)" if level else ""
    return f"{x} [{r.ratio_low:.3g}, {r.ratio_high:.3g}]{lvl}"


def teacher_ratio(r, level: bool = True) -> str:
    """A teacher check row's ratio [CI] (``_teachers.csv`` holds the CI as ratios: ci_low, ci_high) at its level."""
    lvl = f" ({level_pct(r.level)} CI)" if level and _fin(r.level) else ""
    return f"×{r.ratio:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]{lvl}" if _fin(r.ci_low) else f"×{r.ratio:.3g}"


def word(r, col: str = "verdict") -> str:
    """The test's word, with the seed count where there are too few."""
    w = getattr(r, col)
    return f"{w} (n = {int(r.n_seeds)})" if w == "too few seeds" else str(w)


def _mde(r) -> str:
    return f"×{np.exp(r.mde_level):.3g} at {level_pct(r.level)}" if _fin(r.mde_level) and _fin(r.level) else "—"


def _keep(r) -> str:
    """The share of the diagonal's effect (log share) the row keeps, with Fieller's CI at its level (descriptive)."""
    if not _fin(r.keep):
        return "—"
    lvl = level_pct(r.level) if _fin(r.level) else "95%"
    return f"{r.keep:.0%}" + (f" [{r.keep_ci_low:.0%}, {r.keep_ci_high:.0%}] ({lvl})" if _fin(r.keep_ci_low)
                              else " (1 seed)" if r.n_seeds < 2 else " (CI unbounded)")


def _rows(df: pd.DataFrame, **match) -> pd.DataFrame:
    m = df
    for k, v in match.items():
        m = m[m[k] == v] if len(m) else m
    return m


def _one(df: pd.DataFrame, **match):
    m = _rows(df, **match)
    return next(m.itertuples()) if len(m) else None


def _counts(d: Matrix, key: str) -> tuple[int, int]:
    """(students done, students planned) of a pair or dose cell, from the run JSON's lists."""
    planned = sum(1 for x in d.meta.get("planned") or [] if x.startswith(key + ":"))
    done = sum(1 for x in d.meta.get("minutes_per_student") or {} if x.startswith(key + ":"))
    return done, planned


def _absent(d: Matrix, key: str) -> str:
    done, planned = _counts(d, key)
    if not done:
        return "not run yet" + (f" (0 of {planned} students)" if planned else "")
    return f"no comparison yet ({done} of {planned} students)" if planned else f"no comparison yet ({done} students)"


def _fit_parts(d: Matrix, key: str, animals=ANIMALS) -> str:
    """'0.41 (owl), 0.38 (eagle)': the students' KL to their teacher / the signal, from ``_fit.csv``."""
    parts = []
    for a in animals:
        f = _one(d["_fit"], pair=key, teacher=a)
        if f is not None:
            parts.append(f"{f.fit_over_signal:.2g} ({a})" if _fit_ok(f) else f"{f.kl_to_teacher:.2g} ({a}, no signal yet)")
    return ", ".join(parts)


def _fit(d: Matrix, key: str, animals=ANIMALS) -> str:
    """'KL to teacher / signal = 0.41 (owl), 0.38 (eagle)', or '' where no student of the pair is on record."""
    parts = _fit_parts(d, key, animals)
    return f"KL to teacher / signal = {parts}" if parts else ""


def _fit_ok(f) -> bool:
    return _fin(f.fit_over_signal)


def _seeds(rows) -> str:
    ns = sorted({int(r.n_seeds) for r in rows})
    return f"{ns[0]} seed{'s' if ns[0] != 1 else ''}" if len(ns) == 1 else \
        ", ".join(f"{r.animal} {int(r.n_seeds)}" for r in rows) + " seeds"


def cell(d: Matrix, key: str) -> str:
    """A matrix cell: 'owl ×r [lo, hi] (CI) verdict; eagle … (n seeds); KL to teacher / signal = …'."""
    rows = [r for a in ANIMALS if (r := _one(d["_effects"], pair=key, animal=a)) is not None]
    if not rows:
        return _absent(d, key)
    text = "; ".join(f"{r.animal} {ratio(r)} {word(r)}" for r in rows) + f" ({_seeds(rows)})"
    fit = _fit(d, key)
    return text + (f"; {fit}" if fit else "")


def _state(d: Matrix, short: bool = False) -> str:
    """The run's state: complete, partial (students done of planned) or teachers only (with the default plan)."""
    m = d.meta
    if not m:
        return "no run JSON yet"
    done, planned = m.get("students_done", 0), m.get("students_planned", 0)
    if m.get("complete"):
        return f"complete, {done} students"
    if not planned:
        n, how = _default_plan(d)
        return f"teachers only so far, 0 of {n} students" if short else \
            f"teachers only so far (`--teachers-only`); {n} students planned by the default command ({how})"
    return f"partial run, {done} of {planned} students"


def _default_plan(d: Matrix) -> tuple[int, str]:
    """The students the default command plans (every pair x seed x 3 teachers, and every dose scale x seed x (neutral
    + the dose animals)), and how that count is made."""
    fam, _ = d.families()
    seeds = len(d.config.get("seeds") or (0, 1, 2))
    pairs = {p for p, _ in fam.get("base matrix", ())}
    dose = {p for p, _ in fam.get("base-noise dose", ())}
    dose_teachers = 1 + len({a for _, a in fam.get("base-noise dose", ())})
    n = len(pairs) * seeds * len(TRAITS) + len(dose) * seeds * dose_teachers
    return n, (f"{len(pairs)} pairs × {seeds} seeds × {len(TRAITS)} teachers"
               + (f", and the dose: {len(dose)} scales × {seeds} seeds × {dose_teachers} teachers" if dose else ""))


# --- the tables ---------------------------------------------------------------------------------------------------

def teacher_rows(d: Matrix) -> list[list[str]]:
    return [[short(r.base), r.animal, f"{r.share_teacher:.4g}", f"{r.share_neutral:.4g}", teacher_ratio(r), r.verdict]
            for r in d["_teachers"].itertuples()]


def teacher_line(d: Matrix) -> str:
    t = d["_teachers"]
    if not len(t):
        return "Teacher check: not run yet (`python topic_b_base_matrix.py --teachers-only`)."
    by = {}
    for r in t.itertuples():
        by.setdefault(short(r.base), []).append(f"{r.animal} {teacher_ratio(r, level=False)}")
    words = list(dict.fromkeys(t.verdict))
    head = f"every trait teacher {words[0]}" if len(words) == 1 else "not every trait teacher carries its trait"
    detail = "; ".join(f"{b} {', '.join(v)}" for b, v in by.items())
    if len(words) > 1:
        detail = "; ".join(f"{short(r.base)} {r.animal} {r.verdict}" for r in t.itertuples())
    return (f"Teacher check: {head} (its share of its animal / the neutral teacher's, CI over the questions at its "
            f"Holm level): {detail}.")
