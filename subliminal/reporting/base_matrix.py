"""The base matrix (issue 44, ``topic_b_base_matrix.py``), read from plots_b only: teacher base x student base with
the shared-class KL, and the base-noise dose on the first base.

Reads ``plots_b/topic_b_base_matrix{_teachers,_effects,_contrasts,_fit,_signal,_dose,_capability}.csv`` and
``.json``, each verified against the hash recorded when it was written (``reporting.verify``), and the students'
records against the run JSON that lists them. It computes no statistic: every ratio, CI, level, verdict, keep and
fit is the analysis's (``subliminal.topic_b.theory.matrix_analysis``, ``teacher_check``), printed as written; a
file not written yet is 'not run yet', a row below 3 seeds says 'too few seeds (n = k)' with its 95% CI.

``tables(root)``: ``b_matrix_glance`` (README: the matrix and the teacher check, a few lines) and, for
``docs/topic_b_base_matrix.md``, ``b_matrix_state``, ``b_matrix_families``, ``b_matrix_teachers``, ``b_matrix``,
``b_matrix_contrasts``, ``b_matrix_fit``, ``b_matrix_dose`` and ``b_matrix_verdicts``.
``verdicts(root)``: per base and animal, whether its teacher carries its trait; per diagonal pair and animal, the
theorem's claim (the ladder's claim with the shared-class KL); and Topic A's control claim, from the base contrasts
(off-diagonal minus diagonal: nothing of the teacher's initialisation shared) or, while none of those has 3
seeds, from the dose contrasts (the teacher's base perturbed, so at most 'partly'); with no contrast at 3 seeds it
is 'untestable here', "not yet tested (n seeds so far)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting import verify
from subliminal.reporting.render import read_csv_checked, read_json_checked, table
from subliminal.reporting.theory_tests import level_pct
from subliminal.topic_b.theory.analysis import MIN_SEEDS
from subliminal.topic_b.theory.matrix_analysis import (
    ANIMALS,
    DEFAULT_BASES,
    DEFAULT_SCALES,
    DOSE_ANIMALS,
    SHORT,
    declared,
    noise_of,
    pair_key,
    split,
)
from subliminal.verdicts import record

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
    "_dose": ("pair", "animal", "family", "noise_scale", "n_seeds", "ratio", "ratio_low", "ratio_high", "level"),
    "_capability": ("base", "seed", "noise_scale", "nats_answers", "nats_number_lists", "p_any_animal"),
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


def matrix_table(d: Matrix) -> str:
    bases = d.bases
    rows = [[f"{short(tb)} teacher", *[cell(d, pair_key(tb, sb)) for sb in bases]] for tb in bases]
    return table(rows, ["teacher base ↓ / student base →", *[f"{short(sb)} student" for sb in bases]])


def contrast_rows(df: pd.DataFrame) -> list[list[str]]:
    return [[label(r.pair), label(r.versus), r.animal, int(r.n_seeds), ratio(r), _keep(r), _mde(r),
             word(r, "reading")] for r in df.itertuples()]


CONTRAST_HEAD = ["pair", "versus (the diagonal)", "animal", "seeds", "share effect: pair / diagonal [CI at the "
                 "reading's level]", "of the diagonal's effect kept", "MDE (80% power, same level)", "reading"]


def b_matrix_contrasts(d: Matrix) -> str:
    c = d["_contrasts"]
    if not len(c):
        return "_Not run yet: no off-diagonal pair with its diagonal on record (`_contrasts.csv`)._"
    return table(contrast_rows(c), CONTRAST_HEAD)


def b_matrix_fit(d: Matrix) -> str:
    f, s = d["_fit"], d["_signal"]
    out = []
    if len(s):
        rows = []
        for (tb, a), g in s.groupby(["teacher_base", "animal"], sort=False):
            g = g.sort_values("seed")
            rows.append([short(tb), a, ", ".join(f"{k:.3g} (seed {int(x)})" for x, k in zip(g.seed, g.kl))])
        out += ["The signal, per teacher base, animal and seed (`_signal.csv`): KL between the trait teacher's and "
                "the neutral teacher's shared-class distributions on the seed's number lists:", "",
                table(rows, ["teacher base", "animal", "KL(trait teacher ‖ neutral teacher)"]), ""]
    if len(f):
        out += ["The students' fit (`_fit.csv`): final KL to their teacher (mean of the last 10 steps; mean and range "
                "over seeds) against the signal of the teacher's base:", "",
                table([[label(r.pair), r.teacher, int(r.n_seeds), f"{r.kl_to_teacher:.3g} [{r.kl_min:.3g}, "
                        f"{r.kl_max:.3g}]", f"{r.signal_kl:.3g}" if _fin(r.signal_kl) else "—",
                        f"{r.fit_over_signal:.3g}" if _fit_ok(r) else "—", r.fits if _fit_ok(r) else "no signal yet"]
                       for r in f.itertuples()],
                      ["pair", "teacher", "seeds", "KL to teacher [min, max]", "signal KL", "KL / signal", "fit"])]
    return "\n".join(out).strip() or "_Not run yet: no student on record (`_fit.csv`, `_signal.csv`)._"


def dose_rows(d: Matrix) -> list[list[str]]:
    fam, _ = d.families()
    members = list(fam.get("base-noise dose", ()))
    dose, cap = d["_dose"], d["_capability"]
    if not members:
        return []
    base = split(members[0][0])[1]
    diag = pair_key(base, base)

    def capability(x: float) -> list[str]:
        g = cap[(cap.base == base) & np.isclose(cap.noise_scale.astype(float), x)].sort_values("seed") \
            if len(cap) else cap
        if not len(g):
            return ["—", "—", "—"]
        return [", ".join(f"{v:.3g}" for v in g[c]) for c in ("nats_answers", "nats_number_lists", "p_any_animal")]

    rows = []
    for a in dict.fromkeys(a for _, a in members):
        r0 = _one(d["_effects"], pair=diag, animal=a)
        rows.append(["0 (the diagonal)", a, f"{ratio(r0)} {word(r0)}" if r0 is not None else _absent(d, diag), "—",
                     *capability(0.0), _fit_parts(d, diag, (a,)) or "—"])
        for key, animal in members:
            if animal != a:
                continue
            e = _one(dose, pair=key, animal=a, family="base-noise dose")
            c = _one(dose, pair=key, animal=a, family="dose contrasts")
            rows.append([f"{noise_of(key):g}", a, f"{ratio(e)} {word(e)}" if e is not None else _absent(d, key),
                         f"{ratio(c)} {word(c, 'reading')}, keeps {_keep(c)}" if c is not None else "—",
                         *capability(noise_of(key)),
                         _fit_parts(d, key, (a,)) or "—"])
    return rows


DOSE_HEAD = ["noise (× each tensor's std)", "animal", "share effect: trait teacher's student / neutral's [CI] verdict",
             "against the diagonal, paired by seed [CI] reading", "held-out nats/token, teachers' answers (per seed)",
             "nats/token, number lists (per seed)", "P(any of 25 animals) (per seed)", "KL to teacher / signal"]


def b_matrix_dose(d: Matrix) -> str:
    rows = dose_rows(d)
    if not rows:
        return "_No dose declared._"
    base = short(split(d.families()[0]["base-noise dose"][0][0])[1])
    fig = (f"![The dose: share effect against base noise, the noisy base's capability, and Topic A's init-noise "
           f"sweep](../plots_b/{FIGURE})") if d.figure else \
        f"_The figure (`plots_b/{FIGURE}`) is written with the first students._"
    return "\n".join([
        f"The base-noise dose on {base}: the student's base is the teacher's plus Gaussian noise at each fraction of "
        "every weight tensor's std (its own draw per seed), the teacher unchanged; the capability columns say how much "
        "of a working model the noisy base still is (the noiseless base: its one readout, listed once), so that "
        "'no transfer' is told apart from 'no model':", "",
        table(rows, DOSE_HEAD), "", fig])


def families_text(d: Matrix) -> str:
    fam, code_only = d.families()
    src = "the run JSON's `families`" if d.meta.get("families") else \
        "`subliminal/topic_b/theory/matrix_analysis.py: declared()`"
    lines = [f"Tests declared before the data ({src}), each family Holm-corrected inside itself at 5% with its size "
             "fixed by the declaration (a declared test without 3 seeds counts as p = 1), so no row of one family "
             "moves another's verdict:", ""]
    for name, members in fam.items():
        what = FAMILY_TEXT.get(name, "")
        note = " — declared in code (`matrix_analysis.declared()`), not yet in the run on record" \
            if name in code_only else ""
        lines.append(f"- **{name}** ({len(members)} tests{note}): {what}{': ' if what else ''}"
                     + ", ".join(f"{label(k)} × {a}" for k, a in members) + ";")
    lines[-1] = lines[-1].removesuffix(";") + "."
    lines += ["", "Every CI beside a verdict is at the level its Holm step uses, so 'the CI excludes ×1' and "
              "'significant after Holm' agree; the MDE beside it is at that level too (80% power). No verdict rests on "
              "fewer than 3 seeds: such rows say **too few seeds** and show their 95% CI. The teacher check is one "
              "more family, every base × animal checked by one command, its CI over the evaluation questions (the "
              "teacher is one fixed model)."]
    return "\n".join(lines)


# --- verdict records ----------------------------------------------------------------------------------------------

def _teacher_records(d: Matrix) -> list[dict]:
    out = []
    t = d["_teachers"]
    m = len(t)
    for r in t.itertuples():
        ev = (f"share of {r.animal}: {r.share_teacher:.4g} vs the neutral teacher's {r.share_neutral:.4g}, "
              f"{teacher_ratio(r)} {r.verdict}, Holm over {m} base × animal checks")
        w = "reproduced" if r.verdict == "carries its trait" else "contradicts" if _fin(r.ci_high) and r.ci_high < 1 \
            else "inconclusive"
        if w == "inconclusive":
            ev += f"; rules out ≥ ×{r.ci_high:.3g}"
        out.append(record("B", SCRIPT, f"{TEACHER_CLAIM} ({r.animal})", w, ev, r.base))
    return out


def _theorem_word(r) -> tuple[str, str]:
    ev = f"share {ratio(r)} {word(r)} vs the neutral teacher's student, {int(r.n_seeds)} seeds, family {r.family}"
    if r.verdict == "too few seeds":
        return "untestable here", ev + "; no verdict below 3 seeds"
    if r.verdict == "transfer":
        return "reproduced", ev
    if r.verdict == "reverse":
        return "contradicts", ev
    return "inconclusive", ev + f"; rules out ≥ ×{r.ratio_high:.3g}, MDE {_mde(r)}"


def _diagonal_records(d: Matrix, partial: str) -> list[dict]:
    out = []
    for b in d.bases:
        key = pair_key(b, b)
        for a in ANIMALS:
            r = _one(d["_effects"], pair=key, animal=a)
            if r is None:
                w, ev = "untestable here", f"{_absent(d, key)}: no student pair of this base on record"
            else:
                w, ev = _theorem_word(r)
                fit = _fit(d, key, (a,))
                ev += f"; {fit}" if fit else ""
            out.append(record("B", SCRIPT, f"{CLAIM} (shared-class KL, base matrix diagonal) ({a})", w, ev + partial, b))
    return out


def _contrast_text(r) -> str:
    return f"{label(r.pair)}, {r.animal}: {ratio(r)} {word(r, 'reading')}, keeps {_keep(r)} of the diagonal's effect"


def control(d: Matrix) -> tuple[str, str, str]:
    """Topic A's control claim from the contrasts: (verdict, evidence, the verdict's basis in a few words)."""
    c, dose = d["_contrasts"], d["_dose"]
    base_c = _rows(c, family="base contrasts")
    dc = _rows(dose, family="dose contrasts")

    def tested(df: pd.DataFrame) -> pd.DataFrame:
        return df[(df.n_seeds >= MIN_SEEDS) & (df.reading != "too few seeds")] if len(df) else df

    parts = [_contrast_text(r) for r in base_c.itertuples()] + [_contrast_text(r) for r in dc.itertuples()]
    off = [f"{label(r.pair)}, {r.animal}: {ratio(r)} {word(r)}" for r in d["_effects"].itertuples()
           if split(r.pair)[0] != split(r.pair)[1] and r.family == "base matrix"]
    weak = [f"{label(r.pair)} ({r.teacher})" for r in d["_fit"].itertuples()
            if split(r.pair)[0] != split(r.pair)[1] and r.teacher in ANIMALS and _fit_ok(r)
            and r.fits != "below the signal"]
    tail = ("; off-diagonal effects vs the neutral teacher's student: " + "; ".join(off) if off else "") + \
        ("; students whose fit is not below the signal (a weaker test): " + ", ".join(weak) if weak else "")
    tb, td = tested(base_c), tested(dc)
    if not len(tb) and not len(td):
        n = int(max([0, *base_c.n_seeds.tolist(), *dc.n_seeds.tolist()]))
        basis = f"not yet tested ({n} seed{'s' if n != 1 else ''} so far)"
        return "untestable here", (f"{basis}; no verdict below {MIN_SEEDS} seeds"
                                   + (": " + "; ".join(parts) if parts else "") + tail), basis
    readings = set((tb if len(tb) else td).reading)
    smaller, larger = "smaller than the diagonal" in readings, "larger than the diagonal" in readings
    w = ("reproduced" if readings == {"smaller than the diagonal"} else "partly" if smaller else
         "contradicts" if larger else "inconclusive")
    if len(tb):
        basis = "from the base contrasts"
        src = "the base contrasts (off-diagonal − diagonal)"
    else:
        basis = "from the dose contrasts only"
        src = "the dose contrasts only (the teacher's base perturbed, not another base: at most partly)"
        w = "partly" if w == "reproduced" else w
    return w, f"from {src}: " + "; ".join(parts) + tail, basis


def records(d: Matrix) -> list[dict]:
    partial = "" if d.meta.get("complete") else " (partial run)"
    w, ev, _ = control(d)
    return [*_teacher_records(d), *_diagonal_records(d, partial), record("B", SCRIPT, CONTROL, w, ev + partial, "")]


def verdicts(root: Path) -> list[dict]:
    d = load(Path(root))
    return [] if d is None else records(d)


def verdict_table(d: Matrix) -> str:
    return table([[r["model"] or "all", r["claim"], f"**{r['verdict']}**", r["evidence"]] for r in records(d)],
                 ["model", "claim", "verdict", "evidence"])


# --- the README block and the page --------------------------------------------------------------------------------

NOT_RUN = f"_Not run yet: `python {SCRIPT} --teachers-only`, then `OMP_WAIT_POLICY=PASSIVE python {SCRIPT}`._"


def glance(d: Matrix | None) -> str:
    """README's block: the state, the matrix, the teacher check and Topic A's control claim (a few lines)."""
    if d is None:
        return f"**Base matrix** (issue 44): {NOT_RUN.strip('_')}"
    w, _, basis = control(d)
    return "\n".join([
        f"**Base matrix** (issue 44, `{SCRIPT}`; {_state(d, short=True)}): does the shared base model carry the "
        "trait? Teacher base × student base, shared-class KL, cell b otherwise; the trait teacher's students / the "
        "neutral teacher's, ×share ratio [CI at its verdict's level] verdict, and the students' fit:", "",
        matrix_table(d), "",
        f"{teacher_line(d)} Topic A's control claim: **{w}**, {basis}. [Full tables, the dose, the tests]({PAGE})."])


def tables(root: Path) -> dict[str, str]:
    d = load(Path(root))
    names = ("b_matrix_state", "b_matrix_families", "b_matrix_teachers", "b_matrix", "b_matrix_contrasts",
             "b_matrix_fit", "b_matrix_dose", "b_matrix_verdicts")
    if d is None:
        return {k: NOT_RUN for k in names} | {"b_matrix_glance": glance(None)}
    teachers = table(teacher_rows(d), ["base", "animal", "share of its animal: trait teacher",
                                       "the neutral teacher's", "trait teacher / neutral [CI at its Holm level]",
                                       "verdict"]) if len(d["_teachers"]) else \
        f"_Not run yet: `python {SCRIPT} --teachers-only`._"
    return {"b_matrix_glance": glance(d), "b_matrix_state": f"_Run: {_state(d)}._", "b_matrix_families": families_text(d),
            "b_matrix_teachers": teachers, "b_matrix": matrix_table(d), "b_matrix_contrasts": b_matrix_contrasts(d),
            "b_matrix_fit": b_matrix_fit(d), "b_matrix_dose": b_matrix_dose(d), "b_matrix_verdicts": verdict_table(d)}
