"""The ladder under the theorem's conditions (``topic_b_transfer_theory.py``), read from plots_b only.

``tables(root)``: ``b_theory`` (the families of tests declared before the data, the power plan, then per cell and
animal at the last milestone: the effect of the animal's teacher on the animal's share among 25 animals vs the
neutral teacher with its CI and MDE at the verdict's own Holm level, specificity, log P vs the base model, and the
cosine of the student's update with its teacher's against the neutral teacher's student's; then the effect over
milestones, the cosine contrast layer by layer and each rung against cell b).
``verdicts(root)``: one record per claim, in the words of ``subliminal.verdicts``. The primary cells (a, b) and the
shared-init rungs bear on the theorem's claim: transfer that is specific = reproduced, transfer that is not =
partly, none detected = inconclusive (the MDE at the row's level in the evidence), reverse = contradicts, fewer
than 3 seeds = untestable here. Another adapter draw on the teacher's base tests whether the adapter draw is
needed, not Topic A's control claim, whose record waits for rungs that vary the base.
CSVs carry cell keys (``cells.CELLS``); labels are only for display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting import verify
from subliminal.reporting.render import read_csv_checked, read_json_checked, row, table
from subliminal.reporting.theory_tests import _x, families, level_pct, power_plan
from subliminal.topic_b.arms import Init, Loss
from subliminal.topic_b.theory.cells import BY_KEY, REFERENCE, label
from subliminal.verdicts import record

STEM = "topic_b_transfer_theory"
SCRIPT = "topic_b_transfer_theory.py"
CLAIM = ("theorem: a student that starts from the teacher's initialisation and imitates its outputs on numbers "
         "takes on the teacher's animal")
DRAW_CLAIM = ("ours: the teacher's adapter draw is not needed: a student on the teacher's base with another LoRA "
              "draw takes on the teacher's animal too")
CONTROL = ("Topic A's pattern, as in the paper's §6: a student without the teacher's initialisation, in an LLM "
           "its pretrained base, takes on the teacher's animal far less than cell b's student")
REF = REFERENCE.key  # the subliminal cell, every rung's reference
DRAW = "b-xinit"  # another adapter draw on the teacher's base: tests the draw, not the base
BASE_RUNGS = {c.key for c in BY_KEY.values() if c.init == Init.noisy_base}  # the rungs that vary the base itself
SFT = {c.key for c in BY_KEY.values() if c.loss == Loss.sft}  # trained on text, not to the teacher: their loss is no KL


def _detail(key: str) -> str:
    """A cell's label without parentheses, for a claim's parenthesised detail."""
    return label(key).replace(" (", ", ").replace(")", "")


def prerun_mde(meta: dict) -> str:
    """The MDE stated before the ladder ran (the run's JSON: ``theory.analysis.prerun_mde``)."""
    m = meta.get("mde_stated_before_the_runs") or {}
    if not m:
        return ""
    return ("_Minimum detectable effect stated before the runs (80% power, " + f"{m['n_seeds']} seeds), from the "
            "seed-to-seed spread of the logits route's students (same base model, number-token KL, LoRA, Adam): P(animal) "
            + ", ".join(f"{a} ×{v:.3g}" for a, v in m["ratio"].items()) + " against the neutral arm; the issue's aim is "
            "≤ ×1.3._")


REQUIRED = {"_summary": ("cell", "step", "animal", "measure", "mean", "ci95_low", "ci95_high"),
            "_verdicts": ("cell", "animal", "step", "verdict", "family", "share_mean", "n_seeds", "p", "p_holm", "level",
                          "ci_low", "ci_high", "mde_level"),
            "_rungs": ("cell", "animal", "n_seeds", "mean", "p_holm", "level", "ci_low", "ci_high", "reading", "keep")}


def _load(root: Path):
    """The ladder's CSVs and run JSON, each verified against the hash recorded when it was written (and the
    student records against the run JSON that summarised them): an edited, truncated or missing file is a one-line
    error naming it (``reporting.verify``), as is a CSV without the columns the report reads."""
    p = Path(root) / "plots_b"
    files = {k: p / f"{STEM}{k}.csv" for k in ("_summary", "_verdicts", "_cosine_contrasts", "_cosine_layers",
                                                "_sampling_power", "_fit", "_rungs")}
    if not files["_summary"].exists() or files["_summary"].stat().st_size < 2:
        return None
    verify.verify_outputs(p, [f.name for f in files.values()] + [f"{STEM}.json"])
    meta = read_json_checked(p / f"{STEM}.json") if (p / f"{STEM}.json").exists() else {}
    if meta:
        verify.verify_records(p / f"{STEM}_records", meta)
    read = {k: (read_csv_checked(f, REQUIRED.get(k, ())) if f.exists() and f.stat().st_size > 1 else pd.DataFrame())
            for k, f in files.items()}
    return read, meta


def _p(r) -> str:
    """The verdict test's p-value, raw and Holm-adjusted inside its family."""
    p, ph = getattr(r, "p", np.nan), getattr(r, "p_holm", np.nan)
    return "—" if not np.isfinite(p) else f"{p:.2g} ({ph:.2g})" if np.isfinite(ph) else f"{p:.2g}"


def _ci(r) -> str:
    """A summary row's ratio with its 95% CI (descriptive measures, no verdict beside them)."""
    if r is None or not np.isfinite(r["ci95_low"]):
        return "—" if r is None else f"{_x(r['mean'])} (1 seed)"
    return f"{_x(r['mean'])} [{np.exp(r['ci95_low']):.3g}, {np.exp(r['ci95_high']):.3g}]"


def at_level(r, mean: str = "mean") -> str:
    """A verdict row's ratio with the CI at the level its verdict uses (the row's Holm level, labelled); below 3
    seeds, the 95% CI, labelled, and no verdict."""
    m = getattr(r, mean)
    if np.isfinite(getattr(r, "level", np.nan)):
        return f"{_x(m)} [{np.exp(r.ci_low):.3g}, {np.exp(r.ci_high):.3g}] ({level_pct(r.level)} CI)"
    lo = getattr(r, "ci95_low", getattr(r, "share_ci95_low", np.nan))
    hi = getattr(r, "ci95_high", getattr(r, "share_ci95_high", np.nan))
    return f"{_x(m)} [{np.exp(lo):.3g}, {np.exp(hi):.3g}] (95% CI)" if np.isfinite(lo) else f"{_x(m)} (1 seed)"


def word(r, col: str = "verdict") -> str:
    """The verdict (or reading) word, with the seed count where there are too few."""
    w = getattr(r, col)
    return f"{w} (n = {int(r.n_seeds)})" if w == "too few seeds" else w


def _mde(r) -> str:
    """The MDE at the row's Holm level (80% power), labelled with that level."""
    return f"{_x(r.mde_level)} at {level_pct(r.level)}" if np.isfinite(getattr(r, "mde_level", np.nan)) else "—"


def _cos(cos: pd.DataFrame, cell: str, animal: str, step: int, vs: str = "neutral student") -> str:
    """The update-cosine contrast (the teacher's own student minus the `vs` student, same teacher) [95% CI]."""
    g = cos[(cos.cell == cell) & (cos.teacher == animal) & (cos.step == step) & (cos.vs == vs)] if len(cos) else cos
    if not len(g):
        return "—"
    r = g.iloc[0]
    if not np.isfinite(r.ci95_low):
        return f"{r['mean']:+.3f} (1 seed)"
    return f"{r['mean']:+.3f} [{r.ci95_low:+.3f}, {r.ci95_high:+.3f}]"


def _layers(lay: pd.DataFrame, cell: str, animal: str, step: int) -> list[str] | None:
    """Per layer, at the last milestone: the contrast's mean over the first, middle and last third of the layers,
    and how many layers have it above 0 after Holm over the layers."""
    g = lay[(lay.cell == cell) & (lay.teacher == animal) & (lay.step == step) & (lay.vs == "neutral student")] \
        if len(lay) else lay
    if not len(g):
        return None
    g = g.sort_values("layer")
    thirds = np.array_split(g["mean"].to_numpy(float), 3)
    ok = np.isfinite(g.p_holm_layers.to_numpy(float))
    above = int(((g.p_holm_layers < 0.05) & (g["mean"] > 0)).sum())
    return [label(cell), animal, *[f"{t.mean():+.3f}" if len(t) else "—" for t in thirds],
            f"{above} of {len(g)}" if ok.any() else "— (1 seed)"]


def _sampling_rows(samp: pd.DataFrame) -> list[list[str]]:
    def n(v: float) -> str:
        return "never (no difference)" if not np.isfinite(v) else f"{v:,.0f}" if v < 1e6 else f"{v:.2g}"
    return [[label(r.cell), r.animal, f"{r.p_own:.3g}", f"{r.p_neutral:.3g}", f"×{r.ratio:.3g}", n(r.samples_per_arm)]
            for r in samp.itertuples()]


def _retrained(meta: dict) -> str:
    """Where the run's teachers were retrained on another machine: by how much they differ from the first ones."""
    vs = {t: r["vs_first_teacher"] for t, r in (meta.get("teachers") or {}).items() if r.get("vs_first_teacher")}
    d = [x["d_final_loss"] for x in vs.values() if x.get("d_final_loss") is not None]
    if not d:
        return ""
    first = {x.get("first_cpu") or "an unrecorded CPU" for x in vs.values()}
    return (f"_The teachers are not committed; the last run retrained them ({meta.get('cpu') or 'CPU not recorded'}) "
            f"from the same data and seed. Their final training loss differs from that of the teachers the first "
            f"students trained under ({', '.join(sorted(first))}) by at most {max(d):.1g} (float sums in another order "
            "on another CPU kind), so students of different sessions trained under teachers equal to that "
            "precision, not bit for bit._")


def rung(rungs: pd.DataFrame, cell: str, animal: str):
    """The rung's row of ``_rungs.csv`` (cell x animal against cell b), or None."""
    g = rungs[(rungs.cell == cell) & (rungs.animal == animal)] if len(rungs) else rungs
    return None if not len(g) else next(g.itertuples())


def _keep(r) -> str:
    if not np.isfinite(getattr(r, "keep", np.nan)):
        return "—"
    lvl = level_pct(r.level) if np.isfinite(getattr(r, "level", np.nan)) else "95%"
    return f"{r.keep:.0%}" + (f" [{r.keep_ci_low:.0%}, {r.keep_ci_high:.0%}] ({lvl})" if np.isfinite(r.keep_ci_low)
                              else " (1 seed)" if r.n_seeds < 2 else " (CI unbounded)")


def vs_b(r) -> str:
    """A rung's difference from cell b: ratio [CI at its level] reading."""
    return f"{at_level(r)} {word(r, 'reading')}"


def _rung_rows(rungs: pd.DataFrame) -> list[list[str]]:
    return [[label(r.cell), r.animal, r.n_seeds, at_level(r), _keep(r), _mde(r), _p(r), word(r, "reading")]
            for r in rungs.itertuples()]


def b_theory(root: Path) -> str:
    got = _load(root)
    if got is None:
        return f"_Not run yet: `OMP_WAIT_POLICY=PASSIVE python {SCRIPT}`._"
    (s, v, cos, lay, samp, fit, rungs), meta = (got[0][k] for k in (
        "_summary", "_verdicts", "_cosine_contrasts", "_cosine_layers", "_sampling_power", "_fit", "_rungs")), got[1]
    pre = prerun_mde(meta)
    rows = []
    for r in v.itertuples():
        last = s[(s.cell == r.cell) & (s.animal == r.animal) & (s.step == r.step)]
        rows.append([label(r.cell), r.animal, r.family, r.n_seeds, at_level(r, "share_mean"), _mde(r), _p(r),
                     word(r) + (f", specific: {r.specific}" if r.verdict == "transfer" and isinstance(r.specific, str)
                                and r.specific else ""),
                     _ci(row(last, measure="share_own_vs_other")), _ci(row(last, measure="dlogp_vs_base")),
                     _ci(row(last, measure="neutral_dlogp_vs_base")), _cos(cos, r.cell, r.animal, r.step)])
    head = ["cell", "animal", "family", "seeds", "share of the animal: own teacher / neutral teacher [CI at the "
            "verdict's level]", "MDE (80% power, same level)", "p (Holm in its family)", "verdict",
            "own teacher / other animal's teacher [95% CI]", "P(animal) vs base: own teacher [95% CI]",
            "P(animal) vs base: neutral teacher [95% CI]",
            "update cosine with the animal's teacher: its student − the neutral teacher's student [95% CI]"]
    done, planned = meta.get("students_done"), meta.get("students_planned")
    state = ("complete" if meta.get("complete") else f"partial: {done} of {planned} students") if meta else ""
    layer_rows = [x for r in v.itertuples() if (x := _layers(lay, r.cell, r.animal, r.step))]
    curve = []
    sv = s[s.measure == "share_vs_neutral"]
    for (cell, animal), g in sv.groupby(["cell", "animal"], sort=False):
        curve.append([label(cell), animal,
                      ", ".join(f"{int(x.step)}: {_x(x['mean'])}" for _, x in g.sort_values("step").iterrows())])
    tps = [t for t in (meta.get("tokens_per_s") or {}).values() if t]
    mins = [m for m in (meta.get("minutes_per_student") or {}).values() if m]
    cost = (f"; {np.median(mins):.1f} min per student (wall, training and readouts), so "
            f"{np.median(mins) * 3 / 60:.2f} h per seed of a cell of three teachers" if mins else "")
    plan = power_plan(root, v, float(np.median(mins)) if mins else None)
    return "\n".join([
        f"_Run: {state}; students of {meta.get('student_settings', {}).get('steps', '?')} steps × "
        f"{meta.get('student_settings', {}).get('batch', '?')} number lists; training "
        f"{np.median(tps):.0f} tokens/s (median over students){cost}._" if tps else f"_Run: {state}._", "",
        families(), "",
        *([plan, ""] if plan else []),
        *([pre, ""] if pre else []),
        *([retrained, ""] if (retrained := _retrained(meta)) else []),
        table(rows, head), "",
        "The share effect over training (steps: own teacher / neutral teacher):", "",
        table(curve, ["cell", "animal", "by milestone"]), "",
        *(["Where in the network (last milestone): the update-cosine contrast above, layer by layer (mean over seeds), "
           "averaged over the first, middle and last third of the layers, and the layers where it is above 0 after "
           "Holm over the layers:", "",
           table(layer_rows, ["cell", "animal", "first third", "middle third", "last third", "layers above 0 (Holm)"]),
           ""] if layer_rows else []),
        *(["What each rung changes (the family **rungs**): its share effect (own teacher / neutral teacher) divided by "
           "cell b's, paired by seed, each at its last milestone. A rung without transfer beside a b with transfer is "
           "not yet evidence that the rung's condition matters; this ratio, tested, is. The share of b's effect (log "
           "share) the rung keeps is descriptive (Fieller's CI at the same level):", "",
           table(_rung_rows(rungs), ["cell", "animal", "seeds", "share effect: rung / cell b [CI at the reading's "
                                     "level]", "of cell b's effect the rung keeps", "MDE (80% power, same level)",
                                     "p (Holm over the rungs)", "reading"]),
           ""] if len(rungs) else []),
        *(["How far the students went (last milestone, mean over seeds): the training loss (KL to the teacher over the "
           "last 10 steps; cell c: the cross-entropy of the teacher's text), the norm of the update and its cosine with "
           "the own teacher's. A rung whose students fit the teacher far less than cell b's students of the same "
           "teachers is a weaker test than b, whatever its verdict:", "",
           table([[label(r.cell), r.teacher, r.n_seeds, f"{r.loss:.3g}", f"{r.update_norm:.3g}", f"{r.cosine_own:.3f}"]
                  for r in fit.itertuples()], ["cell", "teacher", "seeds", "loss", "update norm", "cosine with own teacher"]),
           ""] if len(fit) else []),
        *(["The paper's readout is the sampled frequency of answers naming the animal; the exact P(animal) above is, to "
           "the answer's first word, its expectation. Mean P(animal) over questions and seeds at the last milestone, and "
           "the samples per arm a 5% two-proportion test would need to see the difference with 80% power (a ratio of mean "
           "probabilities weighs the questions where the animal is likeliest, the share and log P effects above are means "
           "of per-question log ratios, so the two can differ):", "",
           table(_sampling_rows(samp), ["cell", "animal", "P(animal): own teacher", "P(animal): neutral teacher",
                                        "ratio of means", "samples per arm (80% power)"]), ""] if len(samp) else []),
        "_Ratios are exp of mean differences in log share (or log P) over the 26 questions, per seed; CIs over seeds "
        "(t, n − 1 df). Cosines: the student's merged LoRA update (or W − W0) against the teacher's, all adapted "
        "matrices together; the contrast pairs it by seed with the neutral teacher's student read against the same "
        "teacher, so the part every student of these similar teachers shares cancels._"])


def verdicts(root: Path) -> list[dict]:
    got = _load(root)
    if got is None:
        return []
    (v, rungs, cos, fit), meta = (got[0][k] for k in ("_verdicts", "_rungs", "_cosine_contrasts", "_fit")), got[1]
    model = (meta.get("config") or {}).get("model", "smollm2-135m-instruct")
    partial = "" if meta.get("complete", False) else " (partial run)"
    out = []
    for r in v.itertuples():
        if r.cell in BASE_RUNGS:
            continue  # read in the record of Topic A's control claim below
        ev = (f"share {at_level(r, 'share_mean')} vs the neutral weight teacher, {r.n_seeds} seed"
              f"{'s' if r.n_seeds != 1 else ''}, step {r.step}, family {r.family}"
              + (f", Holm p = {r.p_holm:.2g}" if np.isfinite(r.p_holm) else ""))
        w, ev = _word(r, ev)
        d = rung(rungs, r.cell, r.animal)
        if d is not None:
            ev += f"; against cell b: {vs_b(d)}" + (f", keeps {_keep(d)} of b's effect" if r.cell == DRAW else "")
        if w != "untestable here":
            ev += ("; the theorem's own quantity, update cosine with the teacher's minus the neutral teacher's "
                   f"student's: {_cos(cos, r.cell, r.animal, r.step)}" + _fit_note(fit, r.cell, r.animal))
        claim = f"{DRAW_CLAIM} ({r.animal})" if r.cell == DRAW else f"{CLAIM} ({_detail(r.cell)}) ({r.animal})"
        out.append(record("B", SCRIPT, claim, w, ev + partial, model))
    out.append(record("B", SCRIPT, CONTROL, "untestable here", _control_evidence(v, rungs) + partial, model))
    return out


def _control_evidence(v: pd.DataFrame, rungs: pd.DataFrame) -> str:
    """Topic A's control claim waits for rungs that vary the base (another base model, a dose of base noise):
    another adapter draw keeps the teacher's whole base, so it does not test it."""
    parts = []
    for r in v[v.cell.isin(BASE_RUNGS)].itertuples():
        d = rung(rungs, r.cell, r.animal)
        parts.append(f"{label(r.cell)}, {r.animal}: share {at_level(r, 'share_mean')} {word(r)}"
                     + (f"; against cell b: {vs_b(d)}" if d is not None else ""))
    return ("it needs students on another base or on a perturbed copy of the teacher's (issue 44); another adapter "
            "draw keeps the teacher's whole base, so it does not test it. The only base-level rung so far: "
            + ("; ".join(parts) if parts else "none run"))


def _fit_note(fit: pd.DataFrame, cell: str, animal: str) -> str:
    """Where a cell's students fit their teachers far less than cell b's students of the same teachers (the
    animal's and the neutral one; training loss over 3x b's), say so: its verdict is then a weaker test than b's."""
    if not len(fit) or cell not in set(fit.cell) or cell in SFT:
        return ""
    teachers = ("neutral", animal)
    mine = fit[(fit.cell == cell) & fit.teacher.isin(teachers)]
    ref = fit[(fit.cell == REF) & fit.teacher.isin(set(mine.teacher))]
    if not len(mine) or not len(ref):
        return ""
    ratio = mine.loss.mean() / ref.loss.mean()
    return (f"; its students fit the teacher far less than cell b's students of the same teachers (loss ×{ratio:.3g} "
            "of theirs): a weaker test" if ratio > 3 else "")


def _word(r, ev: str) -> tuple[str, str]:
    """A row's claim verdict from its test (``verdicts`` CSV)."""
    if r.verdict == "too few seeds":
        return "untestable here", ev + f"; too few seeds (n = {r.n_seeds}): no verdict below 3"
    if r.verdict == "transfer":
        return ("reproduced", ev) if r.specific == "yes" else \
            ("partly", ev + "; not specific to the animal (the other animal's teacher moves it as much)")
    if r.verdict == "reverse":
        return "contradicts", ev
    return "inconclusive", ev + f"; rules out ≥ ×{np.exp(r.ci_high):.3g}, MDE {_mde(r)}"


def state(root: Path) -> str:
    """The run's state in words, for the README map."""
    got = _load(root)
    if got is None:
        return "not run yet"
    meta = got[1]
    return ("complete" if meta.get("complete") else
            f"partial run, {meta.get('students_done')} of {meta.get('students_planned')} students")


def tables(root: Path) -> dict[str, str]:
    return {"b_theory": b_theory(Path(root))}
