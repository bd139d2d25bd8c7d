"""Tables and verdicts for the mechanism scripts (issue 4), read from plots_a/topic_a_mech_*_{summary,tests}.csv.

Every number comes from the analysis' files (`subliminal.topic_a.analysis`); nothing is recomputed here. Which
experiments get a section, under which marker, with which renderer, and the docs' script table and run commands all
come from their declarations (`subliminal.topic_a.registry`, group 'mechanism', in declaration order): a new
one-knob sweep gets the generic `sweep` section (its table, and the verdict on its declared `Trend` if any) with
no code here; a section whose prose is its own is a renderer registered by name in `SECTIONS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.cli import UserError
from subliminal.reporting.mech_knobs import init, optim
from subliminal.reporting.render import ci, diff, load_plots_a, not_run, num, paras, row, sign, table
from subliminal.reporting.sweeps import reference_setting, sweep_table
from subliminal.reporting.topic_a import cfg_line
from subliminal.topic_a.registry import EXPERIMENTS
from subliminal.topic_a.spec import Experiment
from subliminal.verdicts import record

MEASURE_COLS = ("cka_h1", "cka_h2", "cos_h1", "cos_h2", "update_cos_w1")


# ---------------------------------------------------------------------- convergence
def convergence(plots: Path, exp: Experiment) -> tuple[str, list[dict]]:
    got = load_plots_a(plots, exp.name)
    if got is None:
        return not_run(exp.name), []
    s, t, meta = got
    rows = []
    for r in s.itertuples():
        ms = [num(*[x[k] for k in ("mean", "ci95_low", "ci95_high")]) if (x := row(
            t, kind="measure", condition=r.condition, distill_epochs=r.distill_epochs, measure=k)) is not None else "—"
            for k in MEASURE_COLS]
        rows.append([r.condition, r.distill_epochs, r.n, ci(r._asdict()), *ms])
    first, last = s.distill_epochs.min(), s.distill_epochs.max()
    notes = []

    def ep(cond, k):
        return row(t, kind="paired_epochs", condition=cond, distill_epochs=last, measure=k)

    def gap(k):
        return row(t, kind="paired", distill_epochs=last, measure=k)

    for k in ("cka_h2", "cos_h2"):
        moved, g, cross = ep("student_aux", k), gap(k), ep("cross_aux", k)
        if moved is None or g is None:
            continue
        verb = {1: "rises", -1: "falls", 0: "does not change detectably"}[sign(moved)]
        notes.append(f"{k}: the same-init student's {verb} from epoch {first} to {last} ({diff(moved, 'num')}); "
                     f"the cross-model student's changes by {diff(cross, 'num') if cross is not None else '—'}; "
                     f"student − cross at epoch {last}: {diff(g, 'num')}.")
    corr = [(k, x) for k in ("cka_h2", "cos_h2", "update_cos_w1")
            if (x := row(t, kind="measure", condition="student_aux", distill_epochs=last, measure=k)) is not None
            and not pd.isna(x["pearson_r_vs_accuracy"])]
    n = int(row(s, condition="student_aux", distill_epochs=last)["n"]) if corr else 0
    if corr:
        notes.append(f"Across the {n} same-init students at epoch {last}, correlation with accuracy: " + ", ".join(
            f"{k} r = {x['pearson_r_vs_accuracy']:+.2f} (p = {x['pearson_p']:.2g})" for k, x in corr) + ".")
    moved, gain = ep("student_aux", "cos_h2"), gap("accuracy")
    recs, lead = [], ""
    if moved is not None and gain is not None:
        v = "reproduced" if sign(moved) > 0 and sign(gain) > 0 else "contradicts" if sign(gain) > 0 else "untestable here"
        lead = {"reproduced": "**Consistent with the seed's mechanism 1**: distillation moves the same-init student's hidden "
                              "layer towards the teacher's while its accuracy rises above the cross-model control.",
                "contradicts": "**Contradicts the seed's mechanism 1 as stated**: the student's accuracy rises above the "
                               "cross-model control without a measurable move of its layer-2 representation towards the teacher's.",
                "untestable here": "No transfer above the cross-model control in this run, so it cannot test mechanism 1."}[v]
        recs.append(record("A", exp.script, "seed mechanism 1: with a shared init, distillation makes the "
                           "student's representation converge to the teacher's", v,
                           f"student cosine h2 epoch {first} → {last}: {diff(moved, 'num')}; accuracy student − cross: {diff(gain)}"))
    head = ["condition", "distill ep", "n", "accuracy", "CKA h1", "CKA h2", "cosine h1", "cosine h2", "update cosine w1"]
    ms = ", ".join(str(m) for m in sorted(s.distill_epochs.unique()))
    return "\n".join([table(rows, head), "", lead, "", *paras(notes), "", cfg_line(meta), "",
                      f"_Milestones measured: {ms}._"]), recs


# ---------------------------------------------------------------------- probes
FEATURE_ORDER = ("readout_argmax", "probe_readout", "probe_h1", "probe_h2", "probe_aux")


def probe(plots: Path, exp: Experiment) -> tuple[str, list[dict]]:
    got = load_plots_a(plots, exp.name)
    if got is None:
        return not_run(exp.name), []
    s, t, meta = got
    feats = [f for f in FEATURE_ORDER if f in set(s.features)]
    rows = [[c, int(g.n.max()), *[ci(row(g, features=f)) for f in feats]] for c, g in s.groupby("condition", sort=False)]
    notes, recs = [], []
    hidden = row(t, condition="student_aux", a="probe_h2", b="readout_argmax")
    if hidden is not None:
        notes.append(f"A probe on the aux-only student's layer 2 reads {diff(hidden)} more digits than its own random "
                     "readout: " + ("the readout, not the representation, limits the student's accuracy." if sign(hidden) > 0
                                    else "the readout shows what the representation holds."))
    added = row(t, features="probe_h2", a="student_aux", b="reference")
    ref_arg = row(t, features="readout_argmax", a="student_aux", b="reference")
    if added is not None and ref_arg is not None:
        small = abs(added["mean_diff"]) < 0.5 * abs(ref_arg["mean_diff"]) and sign(ref_arg) > 0
        notes.append(f"Against the untrained reference (random features): layer-2 probe {diff(added)}; own readout "
                     f"{diff(ref_arg)}. " + (
                         "Distillation adds little linearly decodable digit information to what random features already "
                         "hold, yet the same random readout goes from chance to above chance: what transfers is the "
                         "alignment of the representation with the teacher's (and so with the shared readout), which "
                         "**contradicts the seed's mechanism 3 as an explanation by itself** (Johnson-Lindenstrauss "
                         "applies to the reference too, whose random readout sits at chance)." if small else
                         "Distillation adds digit information to the representation on top of random features."))
        recs.append(record("A", exp.script, "seed mechanism 3: a random readout of digit-structured features "
                           "(Johnson-Lindenstrauss) explains the transfer", "contradicts" if small else "reproduced",
                           f"student − reference: layer-2 probe {diff(added, p=False)}, own readout {diff(ref_arg, p=False)}"))
    ghost = row(t, features="probe_aux", a="teacher", b="reference")
    if ghost is not None:
        m = row(s, condition="teacher", features="probe_aux")
        ok = sign(ghost) > 0
        notes.append(f"The teacher's {meta.get('config', {}).get('n_aux', 3)} ghost logits on real digits support a probe "
                     f"at {ci(m)} (chance 10%), {diff(ghost)} over the reference's: "
                     + ("**consistent with the seed's mechanism 2** (ghost logits carry digit information)." if ok
                        else "no evidence for the seed's mechanism 2."))
        recs.append(record("A", exp.script, "seed mechanism 2: the teacher's ghost logits carry digit information",
                           "reproduced" if ok else "contradicts", f"probe on ghost logits {ci(m)}; teacher − reference {diff(ghost, p=False)}"))
    return "\n".join([table(rows, ["model", "n", *feats]), "", *paras(notes), "", cfg_line(meta)]), recs


# ---------------------------------------------------------------------- one-knob sweeps
def sweep(plots: Path, exp: Experiment) -> tuple[str, list[dict]]:
    """Any declared one-knob sweep: its table against the reference setting, and with a declared `Trend` (the width
    sweeps) the verdict on its claim from the transfer's rank trend in the knob."""
    got = load_plots_a(plots, exp.name)
    if got is None:
        return not_run(exp.name), []
    s, t, meta = got
    tab, means = sweep_table(s, t, list(exp.sweep.knobs), reference_setting(exp, s, meta))
    if exp.sweep.trend is None:
        return "\n".join([tab, "", cfg_line(meta)]), []
    x, claim = exp.sweep.trend.knob, exp.sweep.trend.claim
    tr = row(t, kind="trend", measure=x)
    if tr is None:
        return "\n".join([tab, "", "Too few settings for a trend.", "", cfg_line(meta)]), []
    rho, p = tr["rho"], tr["rho_p"]
    said = "the " + claim.replace(": ", " that ", 1)  # 'peer report: X' -> 'the peer report that X'

    trend = f"Spearman ρ of the transfer (student − cross) against {x} over the {int(tr['n'])} settings = {rho:+.2f} (p = {p:.2g})"
    if p < 0.05:
        v = "reproduced" if rho * exp.sweep.trend.sign > 0 else "contradicts"
        text = f"{trend}: **{'consistent with' if v == 'reproduced' else 'contradicts'} {said}**."
    elif abs(rho) > 0.5 and rho * exp.sweep.trend.sign > 0:
        v, text = "partly", f"{trend}: the rank trend **points the way of {said}, but is not significant** over {int(tr['n'])} settings."
    elif abs(rho) > 0.5:
        v, text = "inconclusive", f"{trend}: the rank trend **runs against {said}, but is not significant** over {int(tr['n'])} settings."
    else:
        v, text = "inconclusive", f"{trend}: **no clear monotone trend** with {exp.sweep.trend.label}, so no support for {said}."
    m = means.sort_values(x).reset_index(drop=True)
    k = int(m.transfer.idxmax()) if m.transfer.notna().any() else 0
    if 0 < k < len(m) - 1:
        tail = m.transfer.iloc[k:].to_numpy()
        shape = "falls at every step" if np.all(np.diff(tail) < 0) else "does not fall monotonically"
        text += (f" The transfer peaks inside the range, at {x} = {m[x].iloc[k]:g} ({m.transfer.iloc[k]:+.1%}), and above it "
                 f"{shape} ({', '.join(f'{a:g}: {b:+.1%}' for a, b in zip(m[x].iloc[k:], tail))}).")
    rec = record("A", exp.script, claim, v, f"Spearman ρ = {rho:+.2f} (p = {p:.2g}) over {int(tr['n'])} settings")
    return "\n".join([tab, "", text, "", cfg_line(meta)]), [rec]


# ---------------------------------------------------------------------- the sections, by the name a Report gives
SECTIONS = {"sweep": sweep, "convergence": convergence, "probe": probe, "init": init, "optim": optim}
READ_SWEEP = {"sweep", "init", "optim"}  # the sections that read the experiment's declared Sweep


def declared() -> list[Experiment]:
    """The mechanism experiments, in the order the registry declares them (the docs' and the verdicts' order)."""
    return [e for e in EXPERIMENTS.values() if e.group == "mechanism"]


def _section(exp: Experiment, plots: Path) -> tuple[str, list[dict]]:
    render = SECTIONS.get(exp.report.section)
    if render is None:
        raise UserError(f"{exp.name} declares report section {exp.report.section!r}, which subliminal.reporting.mechanisms "
                        f"does not know; choose from {', '.join(SECTIONS)}")
    if exp.report.section in READ_SWEEP and exp.sweep is None:
        raise UserError(f"{exp.name}: report section {exp.report.section!r} reads a one-knob sweep, and it declares no Sweep")
    return render(plots, exp)


def _all(plots: Path) -> dict[str, tuple[str, list[dict]]]:
    """Every mechanism section from the results in `plots` (a folder of topic_a_mech_* outputs), by marker."""
    return {e.report.marker: _section(e, Path(plots)) for e in declared()}


def script_table() -> str:
    """The docs' table of the mechanism scripts: what each asks and how, as declared."""
    return table([[f"`{e.script}`", e.report.question, e.report.how] for e in declared()], ["script", "question", "how"])


def commands() -> str:
    """The docs' block of commands that run every mechanism script at its committed size."""
    return "\n".join(["```bash", *(f"python {e.script}" for e in declared()), "```"])


def tables(root: Path) -> dict[str, str]:
    return {"a_mech_scripts": script_table(), "a_mech_commands": commands(),
            **{k: text for k, (text, _) in _all(Path(root) / "plots_a").items()}}


def verdicts(root: Path) -> list[dict]:
    return [r for _, recs in _all(Path(root) / "plots_a").values() for r in recs]


def verdicts_for(plots_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """(claim, verdict) per mechanism script for the results in any directory of topic_a_mech_* outputs
    (bench/bench_mech_set.py compares a fast run's records with the committed ones)."""
    recs = [r for _, recs in _all(plots_dir).values() for r in recs]
    out: dict[str, list[tuple[str, str]]] = {}
    for r in recs:
        out.setdefault(r["script"].removeprefix("topic_a_mech_").removesuffix(".py"), []).append((r["claim"], r["verdict"]))
    return out
