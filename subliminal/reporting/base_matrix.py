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
theorem's claim (the ladder's claim with the shared-class KL); Topic A's control claim, from the base contrasts
(off-diagonal minus diagonal: nothing of the teacher's initialisation shared); and Topic A's init-noise sweep, from
the dose contrasts at the scales whose noisy base still works (the analysis's ``base_state``). With no contrast at 3
seeds a claim is 'untestable here', "not yet tested (n seeds so far)".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting.base_matrix_read import (  # noqa: F401 (read through this module by the report and tests)
    CLAIM,
    CONTROL,
    DOSE_CLAIM,
    FAMILY_TEXT,
    FIGURE,
    PAGE,
    REQUIRED,
    SCRIPT,
    STEM,
    TEACHER_CLAIM,
    TRAITS,
    Matrix,
    _absent,
    _counts,
    _default_plan,
    _fin,
    _fit,
    _fit_ok,
    _fit_parts,
    _keep,
    _mde,
    _one,
    _read,
    _rows,
    _seeds,
    _state,
    cell,
    label,
    load,
    ratio,
    short,
    teacher_line,
    teacher_ratio,
    teacher_rows,
    word,
)
from subliminal.reporting.render import table
from subliminal.topic_b.theory.analysis import MIN_SEEDS
from subliminal.topic_b.theory.matrix_analysis import ANIMALS, DEGRADED, WORKS, WORKS_WITHIN, noise_of, pair_key, split
from subliminal.verdicts import record


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
    r = d["_fit_rule"]
    if len(r):
        out += ["", "The fit rule (`_fit_rule.csv`, `theory/matrix_fit.py`): each cross-base pair's steps and learning "
                "rate, decided on its neutral teacher's students alone before any trait student ran: the cheapest "
                "candidate whose KL to the teacher is below the bar (the signal of the teacher's base, the smaller "
                "animal's); none below: the best, and that pair's nulls are a weaker test:", "",
                table([[label(x.pair), int(x.steps), f"{x.lr:.3g}", f"{x.kl:.3g}", f"{x.bar:.3g}",
                        f"{x.over_bar:.3g}", ("chosen" + ("" if _true(x.reached) else " (bar not reached)"))
                        if _true(x.chosen) else ""] for x in r.itertuples()],
                      ["pair", "steps", "lr", "KL to teacher", "bar", "KL / bar", "decision"])]
    return "\n".join(out).strip() or "_Not run yet: no student on record (`_fit.csv`, `_signal.csv`)._"


def _true(v) -> bool:
    return str(v).strip().lower() in ("true", "1")


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
                     *capability(0.0), "the clean base", _fit_parts(d, diag, (a,)) or "—"])
        for key, animal in members:
            if animal != a:
                continue
            e = _one(dose, pair=key, animal=a, family="base-noise dose")
            c = _one(dose, pair=key, animal=a, family="dose contrasts")
            rows.append([f"{noise_of(key):g}", a, f"{ratio(e)} {word(e)}" if e is not None else _absent(d, key),
                         f"{ratio(c)} {word(c, 'reading')}, keeps {_keep(c)}" if c is not None else "—",
                         *capability(noise_of(key)), _state_text(e if e is not None else c, short=True),
                         _fit_parts(d, key, (a,)) or "—"])
    return rows


DOSE_HEAD = ["noise (× each tensor's std)", "animal", "share effect: trait teacher's student / neutral's [CI] verdict",
             "against the diagonal, paired by seed [CI] reading", "held-out nats/token, teachers' answers (per seed)",
             "nats/token, number lists (per seed)", "P(any of 25 animals) (per seed)",
             "noisy base (worst draw's nats/token on the answers − the clean base's)", "KL to teacher / signal"]


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
        f"'no transfer' is told apart from 'no model': a noisy base *works* when every seed's draw reads the "
        f"teachers' answers within {WORKS_WITHIN:g} nats/token of the clean base, else it is *degraded* (the "
        "tolerance is fixed in `matrix_analysis.WORKS_WITHIN`; it was set after seed 0's readouts at 0.01 to 0.1 had "
        "been read, before seeds 1 and 2; the noisy-base column says how far each scale lies from it):", "",
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


def _tested(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df.n_seeds >= MIN_SEEDS) & (df.reading != "too few seeds")] if len(df) else df


def _untested(rows: pd.DataFrame, parts: list[str], tail: str = "") -> tuple[str, str, str]:
    n = int(max([0, *rows.n_seeds.tolist()]))
    basis = f"not yet tested ({n} seed{'s' if n != 1 else ''} so far)"
    return "untestable here", (f"{basis}; no verdict below {MIN_SEEDS} seeds"
                               + (": " + "; ".join(parts) if parts else "") + tail), basis


def _from_readings(readings: set) -> str:
    """The claim's word from its contrasts' readings: every one smaller = reproduced, some = partly, none smaller and
    some larger = contradicts, none significant = inconclusive."""
    smaller, larger = "smaller than the diagonal" in readings, "larger than the diagonal" in readings
    return ("reproduced" if readings == {"smaller than the diagonal"} else "partly" if smaller else
            "contradicts" if larger else "inconclusive")


def control(d: Matrix) -> tuple[str, str, str]:
    """Topic A's control claim from the base contrasts (another base: nothing of the teacher's initialisation
    shared): (verdict, evidence, the verdict's basis in a few words)."""
    base_c = _rows(d["_contrasts"], family="base contrasts")
    parts = [_contrast_text(r) for r in base_c.itertuples()]
    off = [f"{label(r.pair)}, {r.animal}: {ratio(r)} {word(r)}" for r in d["_effects"].itertuples()
           if split(r.pair)[0] != split(r.pair)[1] and r.family == "base matrix"]
    weak = [f"{label(r.pair)} ({r.teacher})" for r in d["_fit"].itertuples()
            if split(r.pair)[0] != split(r.pair)[1] and r.teacher in ANIMALS and _fit_ok(r)
            and r.fits != "below the signal"]
    tail = ("; off-diagonal effects vs the neutral teacher's student: " + "; ".join(off) if off else "") + \
        ("; students whose fit is not below the signal (a weaker test): " + ", ".join(weak) if weak else "")
    tb = _tested(base_c)
    if not len(tb):
        return _untested(base_c, parts, tail)
    w = _from_readings(set(tb.reading))
    return w, "from the base contrasts (off-diagonal − diagonal): " + "; ".join(parts) + tail, "from the base contrasts"


def _state_text(r, short: bool = False) -> str:
    """A dose row's noisy-base state and its worst draw's distance from the clean base, as the analysis wrote them:
    for the verdict's evidence, or (`short`) for the dose table's cell."""
    st = getattr(r, "base_state", None) if r is not None else None
    if st not in (WORKS, DEGRADED):
        return "—" if short else "no capability readout"
    return f"{st} ({r.d_nats_answers:+.3g})" if short else \
        f"{st}, {r.d_nats_answers:+.3g} nats/token on the teachers' answers (the worst draw)"


def dose_control(d: Matrix) -> tuple[str, str, str]:
    """Topic A's init-noise sweep from the dose contrasts, read only at the scales whose noisy base still works
    (``matrix_analysis.WORKS_WITHIN``); a degraded base's contrast is listed, not counted: there a smaller effect
    may be no model rather than no transfer. (verdict, evidence, basis)."""
    dc = _rows(d["_dose"], family="dose contrasts")
    parts = [f"{_contrast_text(r)} ({_state_text(r)})" for r in dc.itertuples()]
    tested = _tested(dc)
    if not len(tested):
        return _untested(dc, parts)
    works = tested[tested.base_state == WORKS]
    if not len(works):
        basis = "only degraded bases tested"
        return "untestable here", f"{basis}; no tested scale whose noisy base still works: " + "; ".join(parts), basis
    w = _from_readings(set(works.reading))
    scales = ", ".join(f"{x:g}" for x in dict.fromkeys(works.noise_scale.astype(float)))
    basis = f"from the dose contrasts where the noisy base works (noise {scales})"
    return w, f"{basis}: " + "; ".join(parts), basis


def records(d: Matrix) -> list[dict]:
    partial = "" if d.meta.get("complete") else " (partial run)"
    w, ev, _ = control(d)
    wd, evd, _ = dose_control(d)
    return [*_teacher_records(d), *_diagonal_records(d, partial), record("B", SCRIPT, CONTROL, w, ev + partial, ""),
            record("B", SCRIPT, DOSE_CLAIM, wd, evd + partial, d.bases[0])]


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
    wd, _, basis_d = dose_control(d)
    return "\n".join([
        f"**Base matrix** (issue 44, `{SCRIPT}`; {_state(d, short=True)}): does the shared base model carry the "
        "trait? Teacher base × student base, shared-class KL, cell b otherwise; the trait teacher's students / the "
        "neutral teacher's, ×share ratio [CI at its verdict's level] verdict, and the students' fit:", "",
        matrix_table(d), "",
        f"{teacher_line(d)} Topic A's control claim: **{w}**, {basis}; its init-noise sweep on {short(d.bases[0])}: "
        f"**{wd}**, {basis_d}. [Full tables, the dose, the tests]({PAGE})."])


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
