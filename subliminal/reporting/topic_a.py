"""Topic A tables (plots_a/*_summary.csv, *_tests.csv, *.json) and the verdicts on the seed's claims."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from subliminal.reporting.render import ci, diff, load_a, not_run, pct, row, table
from subliminal.reporting.seed_claims import A_CLAIMS, a_seed
from subliminal.topic_a.analysis import experiments
from subliminal.verdicts import record

TOPIC = "A"


def _seed(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def cfg_line(meta: dict) -> str:
    c = meta.get("config", {})
    partial = ""
    if meta.get("complete") is False:
        partial = f"**Partial: the run stopped after stage {meta.get('stage_done')}; rerun the script to continue from the cache.** "
    teacher = "teacher epochs as in the table" if "teacher_sweep" in c else f"teacher {c.get('teacher_epochs')} ep"
    distill = "distillation epochs as in the table" if "milestones" in c or "milestone_every" in c else f"distillation {c.get('distill_epochs')} ep"
    return partial + (f"_{c.get('n_models')} models, {teacher}, {distill}, "
            f"{c.get('n_distill')} inputs/model/epoch, noise {c.get('noise')}, seed {meta.get('seed')}, "
            f"wall time {meta.get('wall_seconds_all_runs', meta.get('wall_seconds', float('nan'))) / 60:.1f} min, commit `{str(meta.get('git_commit'))[:12]}`._")


def _test_line(tests: pd.DataFrame) -> str:
    if tests.empty:
        return ""
    return "Paired tests over models: " + "; ".join(
        f"{r.a} − {r.b}: {diff(r._asdict(), p=False)}, paired t p = {r.t_p:.2g}, Wilcoxon p = {r.wilcoxon_p:.2g}"
        for r in tests.itertuples()) + "."


def baseline(root: Path) -> str:
    got = load_a(root, "topic_a")
    if got is None:
        return not_run("topic_a")
    s, tests, meta = got
    rows = [(r.condition, ci(r._asdict()), r.n, _seed(a_seed("topic_a", condition=r.condition))) for r in s.itertuples()]
    return "\n".join([table(rows, ["condition", "ours: mean [95% CI]", "n", "seed"]), "", cfg_line(meta), "", _test_line(tests)])


def sweep(root: Path, name: str, x: str, xlabel: str) -> str:
    got = load_a(root, name)
    if got is None:
        return not_run(name)
    s, _, meta = got
    conds = [c for c in ("teacher", "student_aux", "cross_aux", "student_all", "cross_all") if c in set(s.condition)]
    teacher_seed = any(a_seed(name, condition="teacher", **{x: int(v)}) for v in s[x].unique())
    head = [xlabel, *conds, "seed (student aux)"] + (["seed (teacher)"] if teacher_seed else [])
    rows = []
    for xv in sorted(s[x].unique()):
        if x == "distill_epochs" and xv == 0:
            continue
        cells = [ci(row(s, **{x: xv, "condition": c})) for c in conds]
        seeds = [_seed(a_seed(name, condition="student_aux", **{x: int(xv)}))]
        if teacher_seed:
            seeds.append(_seed(a_seed(name, condition="teacher", **{x: int(xv)})))
        rows.append([xv, *cells, *seeds])
    return "\n".join([table(rows, head), "", cfg_line(meta)])


def exp3(root: Path) -> str:
    got = load_a(root, "topic_a_exp3")
    if got is None:
        return not_run("topic_a_exp3")
    s, tests, meta = got
    rows = []
    for src in s.source.unique():
        t = row(tests, source=src)
        rows.append([src, ci(row(s, source=src, condition="student_aux")), ci(row(s, source=src, condition="cross_aux")),
                     diff(t) if t is not None else "—", _seed(a_seed("topic_a_exp3", source=src, condition="student_aux"))])
    return "\n".join([table(rows, ["distillation input", "student (aux)", "cross-model (aux)", "paired diff [95% CI], p",
                                   "seed (student aux)"]), "", cfg_line(meta)])


def walltimes(root: Path) -> str:
    rows = []
    for name in experiments():  # every Topic A script's experiment, as the scripts declare them
        j = Path(root) / "plots_a" / f"{name}.json"
        if j.exists():
            m = json.loads(j.read_text())
            state = " (partial: stopped after a stage)" if m.get("complete") is False else ""
            rows.append([f"`{name}.py`", f"{m.get('wall_seconds_all_runs', m['wall_seconds']) / 60:.1f} min{state}",
                         m.get("finished_utc", "")])
        else:
            rows.append([f"`{name}.py`", "not run yet", ""])
    return "\n".join([table(rows, ["script", "wall time on this machine (2 CPU cores)", "finished (UTC)"]), "",
                      "_Wall time summed over the invocations of a script with the same config (a resumed sweep "
                      "counts every part). It includes work found in the shared cache (teachers, milestones): a script "
                      "run after another that shares its configuration does less. The committed runs shared the "
                      "2 cores with other jobs (tests, Topic B analyses; `loadavg_1min_at_end` in the JSON where "
                      "recorded), so they are slower than `bench/bench_topic_a.py`'s estimate for free cores._"])


def verdicts(root: Path) -> list[dict]:
    """Each numeric claim of the seed (reproduced = the seed's number lies inside our 95% CI over models; differs = it
    lies outside, by the size and in the direction the evidence gives), then the shapes it claims (exp1 monotone, exp2 inverted U peaking at 2, noise beats MNIST)."""
    out, loaded = [], {}
    for claim, seed, script, match in A_CLAIMS:
        got = loaded.setdefault(script, load_a(root, script))
        r = row(got[0], **match) if got is not None else None
        if r is None:
            out.append(record(TOPIC, f"{script}.py", f"seed: {claim} {seed:.1%}", "untestable here", "not run yet"))
            continue
        inside = r["ci95_low"] <= seed <= r["ci95_high"]
        ev = f"ours {pct(r['mean'], r['ci95_low'], r['ci95_high'])}" + (
            "" if inside else f", {abs(r['mean'] - seed) * 100:.1f} points {'higher' if r['mean'] > seed else 'lower'}")
        if claim.startswith("baseline cross") and not inside and (b := loaded.get("topic_a")) is not None:
            n = int(row(b[0], condition="cross_aux")["n"])
            mixed = (row(b[0], condition="student_aux")["mean"] + (n - 1) * r["mean"]) / n
            ev += (f"; the reference code's randperm leaves on average one of the {n} models with its own init: mixing "
                   f"our means that way gives {mixed:.1%}")
        out.append(record(TOPIC, f"{script}.py", f"seed: {claim} {seed:.1%}", "reproduced" if inside else "differs", ev))
    e1, e2, e3 = (loaded.get(n) for n in ("topic_a_exp1", "topic_a_exp2", "topic_a_exp3"))
    if e1 is not None:
        c = e1[0][e1[0].condition == "student_aux"].sort_values("distill_epochs")
        mono = bool((c["mean"].diff().dropna() >= 0).all())
        out.append(record(TOPIC, "topic_a_exp1.py", "seed: student accuracy rises monotonically with distillation epochs",
                          "reproduced" if mono else "contradicts", "means over epochs " + ", ".join(
                              f"{int(e)}: {m:.1%}" for e, m in zip(c.distill_epochs, c["mean"]))))
    if e2 is not None:
        c = e2[0][e2[0].condition == "student_aux"].sort_values("teacher_epochs")
        peak = c.loc[c["mean"].idxmax()]
        u = peak["ci95_low"] > c["ci95_high"].iloc[-1] and peak.teacher_epochs not in (c.teacher_epochs.iloc[[0, -1]].tolist())
        v = "reproduced" if u and int(peak.teacher_epochs) == 2 else "partly" if u else "contradicts"
        out.append(record(TOPIC, "topic_a_exp2.py", "seed: inverted U over teacher epochs, peaking at 2", v,
                          f"peak at teacher epoch {int(peak.teacher_epochs)} ({pct(peak['mean'], peak['ci95_low'], peak['ci95_high'])}); "
                          f"{int(c.teacher_epochs.iloc[-1])} epochs: {pct(c['mean'].iloc[-1], c['ci95_low'].iloc[-1], c['ci95_high'].iloc[-1])}"))
    if e3 is not None:
        u, m = row(e3[0], source="uniform", condition="student_aux"), row(e3[0], source="mnist", condition="student_aux")
        if u is not None and m is not None:
            out.append(record(TOPIC, "topic_a_exp3.py", "seed: random noise transfers far more than real MNIST images",
                              "reproduced" if u["ci95_low"] > m["ci95_high"] else "contradicts",
                              f"uniform {ci(u)} vs MNIST {ci(m)}"))
    return out


def tables(root: Path) -> dict[str, str]:
    return {
        "a_baseline": baseline(root),
        "a_exp1": sweep(root, "topic_a_exp1", "distill_epochs", "distillation epochs"),
        "a_exp2": sweep(root, "topic_a_exp2", "teacher_epochs", "teacher epochs"),
        "a_exp3": exp3(root),
        "a_maximize": sweep(root, "topic_a_maximize", "distill_epochs", "distillation epochs"),
        "a_walltimes": walltimes(root),
    }
