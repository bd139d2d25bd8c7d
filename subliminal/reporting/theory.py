"""The ladder under the theorem's conditions (``topic_b_transfer_theory.py``), read from plots_b only.

``tables(root)``: ``b_theory`` (per cell and animal at the last milestone: the effect of the animal's teacher on
the animal's share among 25 animals vs the neutral teacher, its MDE, specificity, log P vs the base model, and the
cosine of the student's update with its teacher's against the neutral teacher's student's; then the effect over
milestones, and the cosine contrast layer by layer).
``verdicts(root)``: one record per cell and animal, in the words of ``subliminal.verdicts``. Cells with the
teacher's initialisation, on the theorem's claim: transfer that is specific = reproduced, transfer that is not =
partly, none detected = inconclusive (the MDE in the evidence), reverse = contradicts, fewer than 2 seeds =
untestable here. Cross-init rungs, on Topic A's control claim (``_control``): from the share of cell b's effect
they keep.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting.render import row, table
from subliminal.topic_b.theory.cells import CELLS, REFERENCE
from subliminal.verdicts import record

STEM = "topic_b_transfer_theory"
SCRIPT = "topic_b_transfer_theory.py"
CLAIM = ("theorem: a student that starts from the teacher's initialisation and imitates its outputs on numbers "
         "takes on the teacher's animal")
CONTROL = ("Topic A's pattern, as in the paper's §6: a student without the teacher's initialisation takes on the "
           "teacher's animal far less than cell b's student, if at all")  # no parentheses: the glance splits on them
REF = REFERENCE.label  # the subliminal cell, every rung's reference
CROSS_INIT = {c.label for c in CELLS if c.init != "shared"}  # the rungs that test the control claim instead
SFT = {c.label for c in CELLS if c.loss == "sft"}  # trained on text, not to the teacher: their loss is no KL
WORD = {"transfer": "transfer", "none detected": "none detected", "reverse": "reverse", "too few seeds": "no verdict yet"}


def _detail(label: str) -> str:
    """A cell's label without parentheses, for a claim's parenthesised detail."""
    return label.replace(" (", ", ").replace(")", "")


def prerun_mde(meta: dict) -> str:
    """The MDE stated before the ladder ran (the run's JSON: ``theory.analysis.prerun_mde``)."""
    m = meta.get("mde_stated_before_the_runs") or {}
    if not m:
        return ""
    return ("_Minimum detectable effect stated before the runs (80% power, " + f"{m['n_seeds']} seeds), from the "
            "seed-to-seed spread of the logits route's students (same base model, number-token KL, LoRA, Adam): P(animal) "
            + ", ".join(f"{a} ×{v:.3g}" for a, v in m["ratio"].items()) + " against the neutral arm; the issue's aim is "
            "≤ ×1.3._")


def _load(root: Path):
    p = Path(root) / "plots_b"
    files = {k: p / f"{STEM}{k}.csv" for k in ("_summary", "_verdicts", "_cosine_contrasts", "_cosine_layers",
                                                "_sampling_power", "_fit", "_rungs")}
    if not files["_summary"].exists() or files["_summary"].stat().st_size < 2:
        return None
    meta = json.loads((p / f"{STEM}.json").read_text()) if (p / f"{STEM}.json").exists() else {}
    read = {k: (pd.read_csv(f) if f.exists() and f.stat().st_size > 1 else pd.DataFrame()) for k, f in files.items()}
    return read, meta


def _p(r) -> str:
    """The verdict test's p-value, raw and Holm-adjusted over the ladder's cells and animals."""
    p, ph = getattr(r, "p", np.nan), getattr(r, "p_holm", np.nan)
    return "—" if not np.isfinite(p) else f"{p:.2g} ({ph:.2g})" if np.isfinite(ph) else f"{p:.2g}"


def _x(v: float) -> str:
    return "—" if not np.isfinite(v) else f"×{np.exp(v):.3g}"


def _ci(r) -> str:
    if r is None or not np.isfinite(r["ci95_low"]):
        return "—" if r is None else f"{_x(r['mean'])} (1 seed)"
    return f"{_x(r['mean'])} [{np.exp(r['ci95_low']):.3g}, {np.exp(r['ci95_high']):.3g}]"


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
    return [cell, animal, *[f"{t.mean():+.3f}" if len(t) else "—" for t in thirds],
            f"{above} of {len(g)}" if ok.any() else "— (1 seed)"]


def _sampling_rows(samp: pd.DataFrame) -> list[list[str]]:
    def n(v: float) -> str:
        return "never (no difference)" if not np.isfinite(v) else f"{v:,.0f}" if v < 1e6 else f"{v:.2g}"
    return [[r.cell, r.animal, f"{r.p_own:.3g}", f"{r.p_neutral:.3g}", f"×{r.ratio:.3g}", n(r.samples_per_arm)]
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


def _rung(rungs: pd.DataFrame, cell: str, animal: str):
    """The rung's row of ``_rungs.csv`` where 2+ seeds test it, else None."""
    g = rungs[(rungs.cell == cell) & (rungs.animal == animal)] if len(rungs) else rungs
    return None if not len(g) or g.iloc[0].reading == "too few seeds" else g.iloc[0]


def _vs_b(rungs: pd.DataFrame, cell: str, animal: str) -> str:
    """The glance's note on a rung's difference from cell b, where 2+ seeds test it."""
    r = _rung(rungs, cell, animal)
    if r is None:
        return ""
    return f"; against b: {_ci(r)}, {r.reading}" + (f", keeps {_keep(r)} of b's effect" if cell in CROSS_INIT else "")


def _keep(r) -> str:
    if not np.isfinite(getattr(r, "keep", np.nan)):
        return "—"
    return f"{r.keep:.0%}" + (f" [{r.keep_ci95_low:.0%}, {r.keep_ci95_high:.0%}]" if np.isfinite(r.keep_ci95_low)
                              else " (1 seed)" if r.n_seeds < 2 else " (CI unbounded)")


def _rung_rows(rungs: pd.DataFrame) -> list[list[str]]:
    return [[r.cell, r.animal, r.n_seeds, _ci(r._asdict()), _keep(r), _x(r.mde) if np.isfinite(r.mde) else "—", _p(r),
             "no test yet (1 seed)" if r.reading == "too few seeds" else r.reading] for r in rungs.itertuples()]


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
        rows.append([r.cell, r.animal, r.n_seeds, _ci(row(last, measure="share_vs_neutral")),
                     _x(r.mde) if np.isfinite(r.mde) else "—", _ci(row(last, measure="share_own_vs_other")),
                     _ci(row(last, measure="dlogp_vs_base")), _ci(row(last, measure="neutral_dlogp_vs_base")),
                     _cos(cos, r.cell, r.animal, r.step), _p(r), WORD.get(r.verdict, r.verdict) + (
                         f", specific: {r.specific}" if isinstance(r.specific, str) and r.specific else "")])
    head = ["cell", "animal", "seeds", "share of the animal: own teacher / neutral teacher [95% CI]",
            "MDE (80% power)", "own teacher / other animal's teacher", "P(animal) vs base: own teacher",
            "P(animal) vs base: neutral teacher",
            "update cosine with the animal's teacher: its student − the neutral teacher's student [95% CI]",
            "p (Holm over the ladder)", "verdict"]
    done, planned = meta.get("students_done"), meta.get("students_planned")
    state = ("complete" if meta.get("complete") else f"partial: {done} of {planned} students") if meta else ""
    layer_rows = [x for r in v.itertuples() if (x := _layers(lay, r.cell, r.animal, r.step))]
    curve = []
    sv = s[s.measure == "share_vs_neutral"]
    for (cell, animal), g in sv.groupby(["cell", "animal"], sort=False):
        curve.append([cell, animal, ", ".join(f"{int(x.step)}: {_x(x['mean'])}" for _, x in g.sort_values("step").iterrows())])
    tps = [t for t in (meta.get("tokens_per_s") or {}).values() if t]
    mins = [m for m in (meta.get("minutes_per_student") or {}).values() if m]
    cost = (f"; {np.median(mins):.1f} min per student (wall, training and readouts), so "
            f"{np.median(mins) * 3 * len((meta.get('config') or {}).get('seeds', [0, 1, 2])) / 60:.1f} h per cell of three "
            "teachers" if mins else "")
    return "\n".join([
        f"_Run: {state}; students of {meta.get('student_settings', {}).get('steps', '?')} steps × "
        f"{meta.get('student_settings', {}).get('batch', '?')} number lists; training "
        f"{np.median(tps):.0f} tokens/s (median over students){cost}._" if tps else f"_Run: {state}._", "",
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
        *(["What each rung changes: its share effect (own teacher / neutral teacher) divided by cell b's, paired by "
           "seed, each at its last milestone. A rung without transfer beside a b with transfer is not yet evidence "
           "that the rung's condition matters; this ratio, tested, is (Holm over the rungs and animals):", "",
           table(_rung_rows(rungs), ["cell", "animal", "seeds", "share effect: rung / cell b [95% CI]",
                                     "of cell b's effect (log share) the rung keeps [Fieller 95% CI]",
                                     "MDE (80% power)", "p (Holm over the rungs)", "reading"]),
           ""] if len(rungs) else []),
        *(["How far the students went (last milestone, mean over seeds): the training loss (KL to the teacher over the "
           "last 10 steps; cell c: the cross-entropy of the teacher's text), the norm of the update and its cosine with "
           "the own teacher's. A rung whose students fit the teacher far less than cell b's is a weaker test than b, "
           "whatever its verdict:", "",
           table([[r.cell, r.teacher, r.n_seeds, f"{r.loss:.3g}", f"{r.update_norm:.3g}", f"{r.cosine_own:.3f}"]
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
        "(t); the MDE is the smallest ratio a 5% test over these seeds finds with 80% power; the verdict's test is Holm-"
        "adjusted over every cell and animal of the ladder. Cosines: the student's merged LoRA update (or W − W0) "
        "against the teacher's, all adapted matrices together; the contrast pairs it by seed with the neutral teacher's "
        "student read against the same teacher, so the part every student of these similar teachers shares cancels._"])


def verdicts(root: Path) -> list[dict]:
    got = _load(root)
    if got is None:
        return []
    (s, v, rungs, cos, fit), meta = (got[0][k] for k in ("_summary", "_verdicts", "_rungs", "_cosine_contrasts",
                                                          "_fit")), got[1]
    model = (meta.get("config") or {}).get("model", "smollm2-135m-instruct")
    out = []
    for r in v.itertuples():
        last = s[(s.cell == r.cell) & (s.animal == r.animal) & (s.step == r.step)]
        sv = row(last, measure="share_vs_neutral")
        ev = f"share {_ci(sv)} vs the neutral weight teacher, {r.n_seeds} seed{'s' if r.n_seeds != 1 else ''}, step {r.step}" + (
            f", Holm p = {r.p_holm:.2g}" if np.isfinite(getattr(r, "p_holm", np.nan)) else "")
        if r.cell in CROSS_INIT:
            word, ev = _control(r, ev, rungs)
            claim = f"{CONTROL} ({_detail(r.cell)}) ({r.animal})"
        else:
            word, ev = _word(r, ev, sv)
            claim = f"{CLAIM} ({_detail(r.cell)}) ({r.animal})"
        if word != "untestable here":
            ev += f"; the theorem's own quantity, update cosine with the teacher's minus the neutral teacher's " \
                  f"student's: {_cos(cos, r.cell, r.animal, r.step)}" + _fit_note(fit, r.cell)
        if not meta.get("complete", False):
            ev += " (partial run)"
        out.append(record("B", SCRIPT, claim, word, ev, model))
    return out


def _fit_note(fit: pd.DataFrame, cell: str) -> str:
    """Where a cell's students fit their teachers far less than cell b's (training loss over 3x b's), say so: its
    verdict is then a weaker test than b's."""
    if not len(fit) or cell not in set(fit.cell) or not (fit.cell == REF).any():
        return ""
    ratio = fit[fit.cell == cell].loss.mean() / fit[fit.cell == REF].loss.mean()
    return (f"; its students fit the teacher far less than cell b's (loss ×{ratio:.2g} of b's): a weaker test"
            if ratio > 3 and cell not in SFT else "")


def _control(r, ev: str, rungs: pd.DataFrame) -> tuple[str, str]:
    """A cross-init rung's verdict on `CONTROL`, from the share of cell b's effect it keeps (``_rungs.csv``).
    'Far less' means less than half: reproduced when the 95% CI of (rung − b/2), paired by seed, is below 0;
    contradicts when it is above 0 (the student takes on at least half as much as with the teacher's
    initialisation); else inconclusive."""
    d = _rung(rungs, r.cell, r.animal)
    if r.verdict == "too few seeds" or d is None:
        return "untestable here", ev + "; no verdict before 2 seeds"
    ci = (f"[{d.keep_ci95_low:.0%}, {d.keep_ci95_high:.0%}]" if np.isfinite(d.keep_ci95_low)
          else "(CI unbounded: cell b's effect is not significant at these seeds)")
    ev += f"; keeps {d.keep:.0%} {ci} of cell b's effect (log share, paired by seed, Fieller's CI)"
    if d.keeps_half_high < 0:
        return "reproduced", ev
    if d.keeps_half_low > 0:
        return "contradicts", ev
    return "inconclusive", ev


def _word(r, ev: str, sv) -> tuple[str, str]:
    """A shared-init cell's verdict on `CLAIM`."""
    if r.verdict == "too few seeds":
        return "untestable here", ev + "; no verdict before 2 seeds"
    if r.verdict == "transfer":
        return ("reproduced", ev) if r.specific == "yes" else \
            ("partly", ev + "; not specific to the animal (the other animal's teacher moves it as much)")
    if r.verdict == "reverse":
        return "contradicts", ev
    return "inconclusive", ev + f"; rules out ≥ {_x(sv['ci95_high'])}, MDE {_x(r.mde)}"


def glance(root: Path) -> str:
    """README: one line per cell of the ladder at its last milestone (share effect per animal with the verdict)."""
    got = _load(root)
    if got is None:
        return f"- Under the theorem's conditions (`{SCRIPT}`): not run yet."
    (s, v, rungs), meta = (got[0]["_summary"], got[0]["_verdicts"], got[0]["_rungs"]), got[1]
    done, planned = meta.get("students_done"), meta.get("students_planned")
    state = "complete" if meta.get("complete") else f"partial run, {done} of {planned} students"
    lines = [f"- **Under the theorem's conditions** (SmolLM2-135M-Instruct, weight teachers owl / eagle / neutral, "
             f"students from the teacher's exact init on inputs matched across arms; {state}): the animal's share "
             "among 25 animals, own teacher's student / neutral teacher's student [95% CI over seeds]:"]
    for cell, g in v.groupby("cell", sort=False):
        parts = []
        for r in g.itertuples():
            last = s[(s.cell == r.cell) & (s.animal == r.animal) & (s.step == r.step)]
            word = WORD.get(r.verdict, r.verdict)
            if r.verdict == "none detected" and (r.share_ci95_low > 0 or r.share_ci95_high < 0):
                word += f" after Holm over the ladder: p = {r.p:.2g}, Holm p = {r.p_holm:.2g}"
            mde = f", MDE {_x(r.mde)}" if r.verdict == "none detected" and np.isfinite(r.mde) else ""
            parts.append(f"{r.animal} {_ci(row(last, measure='share_vs_neutral'))} ({word}{mde}, {r.n_seeds} "
                         f"seed{'s' if r.n_seeds != 1 else ''}{_vs_b(rungs, r.cell, r.animal)})"
                         + (f" — Topic A's control claim: {w}" if r.cell in CROSS_INIT
                            and (w := _control(r, "", rungs)[0]) != "untestable here" else ""))
        lines.append(f"  - {cell}: " + "; ".join(parts))
    lines.append("  ([details](docs/topic_b_transfer.md#under-the-theorems-conditions))")
    return "\n".join(lines)


def tables(root: Path) -> dict[str, str]:
    return {"b_theory": b_theory(Path(root)), "b_theory_glance": glance(Path(root))}
