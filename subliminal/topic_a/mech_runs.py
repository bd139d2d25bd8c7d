"""The bodies of the topic_a_mech_* scripts (issue 4): convergence, probes, and one-knob sweeps, with their tests
and the extra rows the report reads.

Each body returns a tidy DataFrame (one row per condition × model × setting) for `experiments.run_and_write`.
Sweeps are lists of named `TopicAConfig` overrides: each setting is its own config, so teachers and
students get their own cache keys, and a setting equal to the baseline reuses the baseline's cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from subliminal.stats import mean_ci, paired_test
from subliminal.topic_a.distill import distill, students_at
from subliminal.topic_a.engine import ParallelMLP
from subliminal.topic_a.experiments import run_and_write
from subliminal.topic_a.mechanisms import readout_norm_ratio, similarity, update_alignment
from subliminal.topic_a.probes import probe_accuracy
from subliminal.topic_a.records import measured
from subliminal.topic_a.spec import Experiment, Plot, Report, Sweep
from subliminal.topic_a.store import fingerprint
from subliminal.topic_a.train import TopicA, accuracy_rows, lazy_teacher, student_init, teacher_accuracy

MEASURES = ("cka_h1", "cka_h2", "cos_h1", "cos_h2", "update_cos_w1", "update_cos_w2")
NORM_COLUMNS = ("readout_norm", "teacher_ghost_norm")
EPOCH_MEASURES = ("accuracy", "cka_h2", "cos_h2")


# ---------------------------------------------------------------------- representation convergence
def convergence(A: TopicA, milestones: Sequence[int], memo: dict, n_eval: int = 10_000,
                conditions: Sequence[str] = ("student_aux", "cross_aux")) -> pd.DataFrame:
    """Teacher-vs-student similarity and accuracy at each milestone; `memo` keeps finished milestones. The measures
    are kept records (`records.measured`): only a student whose are missing is loaded (or trained) and measured."""
    c = A.cfg
    te, src = c.teacher_epochs, A.source("uniform")
    t = lazy_teacher(A, te)
    x = A.x_test[:n_eval]
    on = {"teacher": A.store.teacher_key(), "teacher_epochs": te, "eval": fingerprint(x)}  # what every measure shares
    for m in sorted(set(milestones)):
        if m in memo:
            continue

        def measure(labels: list[str], m: int = m) -> dict[str, dict]:
            conds = [cond for cond in conditions if f"{cond}-e{m}" in labels]
            students = students_at(A, te, conds, m, src, t)
            got = {}
            for cond, s in students.items():
                got[f"{cond}-e{m}"] = similarity(t(), s, x)
                if m > 0:
                    got[f"{cond}-e{m}"].update(update_alignment(A.reference(), t(), student_init(A, cond), s))
            return got

        units = {f"{cond}-e{m}": {**on, "student": A.store.student_key(te, cond, src.describe()), "distill_epochs": m}
                 for cond in conditions}
        values = measured(A, "convergence", units, measure)
        acc = distill(A, te, conditions, [m], src, t)  # the students' accuracies (their records: trains none kept)
        parts = []
        for cond in conditions:
            df = acc[acc.condition == cond].reset_index(drop=True)
            got = values[f"{cond}-e{m}"]
            for k in MEASURES:
                df[k] = np.asarray(got[k], dtype=np.float32) if k in got else np.full(len(df), np.nan)
            parts.append(df)
        memo[m] = pd.concat(parts, ignore_index=True)
    return pd.concat([memo[m] for m in sorted(set(milestones))], ignore_index=True)


def convergence_tests(df: pd.DataFrame) -> pd.DataFrame:
    """Per condition × milestone × measure: mean [95% CI], and its correlation with accuracy across models;
    plus the paired difference student_aux − cross_aux of each measure."""
    rows = []
    for (cond, m), g in df.groupby(["condition", "distill_epochs"], sort=False):
        for k in MEASURES:
            v = g[k].to_numpy(float)
            mean, lo, hi = mean_ci(v)
            r = rho = r_p = rho_p = float("nan")
            ok = ~np.isnan(v)
            if ok.sum() >= 3 and np.ptp(v[ok]) > 0 and np.ptp(g.accuracy.to_numpy()[ok]) > 0:
                r, r_p = stats.pearsonr(v[ok], g.accuracy.to_numpy()[ok])
                rho, rho_p = stats.spearmanr(v[ok], g.accuracy.to_numpy()[ok])
            rows.append({"kind": "measure", "condition": cond, "distill_epochs": m, "measure": k, "n": int(ok.sum()),
                         "mean": mean, "ci95_low": lo, "ci95_high": hi, "pearson_r_vs_accuracy": float(r),
                         "pearson_p": float(r_p), "spearman_rho_vs_accuracy": float(rho), "spearman_p": float(rho_p)})
    conds = set(df.condition)
    if {"student_aux", "cross_aux"} <= conds:
        for m, g in df.groupby("distill_epochs"):
            a, b = g[g.condition == "student_aux"].sort_values("model"), g[g.condition == "cross_aux"].sort_values("model")
            for k in ("accuracy", *MEASURES):
                if len(a) == len(b) and len(a) > 1 and a[k].notna().all() and b[k].notna().all():
                    t = paired_test(a[k], b[k])
                    rows.append({"kind": "paired", "condition": "student_aux − cross_aux", "distill_epochs": m,
                                 "measure": k, "n": t["n"], "mean": t["mean_diff"], "ci95_low": t["diff_ci95_low"],
                                 "ci95_high": t["diff_ci95_high"], "t_p": t["t_p"], "wilcoxon_p": t["wilcoxon_p"]})
    return pd.DataFrame(rows)


def convergence_epochs(df: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame, cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extras: rows `paired_epochs`, each condition's change of accuracy / CKA h2 / cosine h2 from the first milestone."""
    first = df.distill_epochs.min()
    rows = []
    for cond, g in df.groupby("condition", sort=False):
        a0 = g[g.distill_epochs == first].sort_values("model")
        for m in sorted(set(g.distill_epochs) - {first}):
            a = g[g.distill_epochs == m].sort_values("model")
            for k in EPOCH_MEASURES:
                if len(a) > 1 and len(a) == len(a0) and a[k].notna().all() and a0[k].notna().all():
                    t = paired_test(a[k], a0[k])
                    rows.append({"kind": "paired_epochs", "condition": cond, "distill_epochs": m, "measure": k, "n": t["n"],
                                 "mean": t["mean_diff"], "ci95_low": t["diff_ci95_low"], "ci95_high": t["diff_ci95_high"],
                                 "t_p": t["t_p"], "wilcoxon_p": t["wilcoxon_p"], "from_epochs": first})
    return summary, pd.concat([tests, pd.DataFrame(rows)], ignore_index=True)


# ---------------------------------------------------------------------- probes
def probe_table(A: TopicA, feature_sets: Sequence[str], n_probe_train: int, l2: float, max_iter: int,
                student_conditions: Sequence[str] = ("student_aux", "cross_aux")) -> pd.DataFrame:
    """Per model: the argmax of its own (random or trained) digit readout, and probes on its frozen features. Each
    (model, features) is a kept record (`records.measured`): only a model with one missing is loaded and measured."""
    c = A.cfg
    te, de, src = c.teacher_epochs, c.distill_epochs, A.source("uniform")
    t = lazy_teacher(A, te)
    x_tr, y_tr = A.x_train[:n_probe_train], A.y_train[:n_probe_train]
    train, test, tk = fingerprint(x_tr, y_tr), fingerprint(A.x_test, A.y_test), A.store.teacher_key()
    who = {"reference": {"model": "reference", "init": tk}, "teacher": {"model": "teacher", "teacher": tk, "teacher_epochs": te},
           **{cond: {"model": cond, "student": A.store.student_key(te, cond, src.describe()), "distill_epochs": de}
              for cond in student_conditions}}
    units = {}
    for cond, model in who.items():
        units[f"{cond}-readout_argmax"] = {**model, "features": "readout_argmax", "test": test}
        for fs in feature_sets:
            units[f"{cond}-{fs}"] = {**model, "features": fs, "n_probe_train": n_probe_train, "l2": l2,
                                     "max_iter": max_iter, "train": train, "test": test}

    def measure(labels: list[str]) -> dict[str, dict]:
        need = {label.rsplit("-", 1)[0] for label in labels}
        students = students_at(A, te, [s for s in student_conditions if s in need], de, src, t)
        models = {"reference": A.reference, "teacher": t, **{cond: (lambda s=s: s) for cond, s in students.items()}}
        got = {}
        for label in labels:
            cond, fs = label.rsplit("-", 1)
            model = models[cond]()
            got[label] = {"accuracy": model.accuracy(A.x_test, A.y_test) if fs == "readout_argmax" else
                          probe_accuracy(model, fs, x_tr, y_tr, A.x_test, A.y_test, l2=l2, max_iter=max_iter)}
        return got

    values = measured(A, "probe", units, measure)
    distill(A, te, student_conditions, [de], src, t)  # the students' records (trains none kept)
    parts = []
    for cond in who:
        d = de if cond in student_conditions else 0
        e = 0 if cond == "reference" else te
        for fs in ("readout_argmax", *(f"probe_{f}" for f in feature_sets)):
            acc = values[f"{cond}-{fs.removeprefix('probe_')}"]["accuracy"]
            df = pd.DataFrame(accuracy_rows(cond, acc, teacher_epochs=e, distill_epochs=d))
            df.insert(1, "features", fs)
            parts.append(df)
    return pd.concat(parts, ignore_index=True)


def probe_tests(df: pd.DataFrame) -> pd.DataFrame:
    """Paired tests over models: between conditions on the same features, and each probe vs the model's own argmax."""
    rows = []
    for fs, g in df.groupby("features", sort=False):
        for a, b in (("student_aux", "cross_aux"), ("student_aux", "reference"), ("teacher", "reference"),
                     ("teacher", "student_aux")):
            ga, gb = g[g.condition == a].sort_values("model"), g[g.condition == b].sort_values("model")
            if len(ga) and len(ga) == len(gb):
                rows.append({"features": fs, "condition": "", "a": a, "b": b, **paired_test(ga.accuracy, gb.accuracy)})
    for cond, g in df.groupby("condition", sort=False):
        base = g[g.features == "readout_argmax"].sort_values("model")
        for fs, h in g.groupby("features", sort=False):
            if fs != "readout_argmax":
                rows.append({"features": "", "condition": cond, "a": fs, "b": "readout_argmax",
                             **paired_test(h.sort_values("model").accuracy, base.accuracy)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- one-knob sweeps
# overrides that change the teacher: a students_only sweep trains that setting its own teachers
TEACHER_OVERRIDES = ("teacher_weight_decay",)


def setting_sweep(A: TopicA, settings: dict[str, dict], memo: dict, conditions: Sequence[str] = ("student_aux", "cross_aux"),
                  students_only: bool = False, readout_norms: bool = False) -> pd.DataFrame:
    """Teacher and student accuracy for each named setting (a dict of TopicAConfig overrides).

    students_only: the overrides are the students' optimiser settings; every setting distils A's teacher,
    except a setting with a TEACHER_OVERRIDES key, which trains its own.
    """
    c = A.cfg
    base_teacher = None
    for name, overrides in settings.items():
        if name in memo:
            continue
        B = TopicA(dataclasses.replace(c, **overrides), A.mnist, A.progress, A.work, A.records)
        if students_only and not any(overrides.get(k) for k in TEACHER_OVERRIDES):
            # A's teacher (trained with A's lr), named in the students' key
            base_teacher = base_teacher if base_teacher is not None else lazy_teacher(A, c.teacher_epochs)
            t, t_key, owner = base_teacher, A.store.teacher_key(), A
        else:
            t, t_key, owner = lazy_teacher(B, c.teacher_epochs), None, B
        t_acc = teacher_accuracy(owner, c.teacher_epochs, t)
        df = pd.concat([pd.DataFrame(accuracy_rows("teacher", t_acc, teacher_epochs=c.teacher_epochs, distill_epochs=0)),
                        distill(B, c.teacher_epochs, conditions, [c.distill_epochs], "uniform", t, teacher_key=t_key)],
                       ignore_index=True)
        if readout_norms:
            _readout_norms(B, df, conditions, t, t_key)
        df.insert(0, "setting", name)
        for i, (k, v) in enumerate(overrides.items()):
            df.insert(1 + i, k, v)
        memo[name] = df
    return pd.concat([memo[n] for n in settings], ignore_index=True)


def _readout_norms(B: TopicA, df: pd.DataFrame, conditions: Sequence[str], t: Callable[[], ParallelMLP],
                   t_key: str | None) -> None:
    """Columns `readout_norm` (each student's digit readout relative to its init) and `teacher_ghost_norm` (what the
    students distil: the teacher's ghost readout, relative to the shared init) of setting `B`'s rows `df`, as kept
    records (`records.measured`): only a model whose norm is missing is loaded (or trained)."""
    c = B.cfg
    te, de, src = c.teacher_epochs, c.distill_epochs, B.source("uniform")

    def students(labels: list[str]) -> dict[str, dict]:
        finals = students_at(B, te, labels, de, src, t, teacher_key=t_key)
        return {cond: {"readout_norm": readout_norm_ratio(s, student_init(B, cond))} for cond, s in finals.items()}

    norms = measured(B, "readout_norm", {cond: {"student": B.store.student_key(te, cond, src.describe(), t_key),
                                                "distill_epochs": de} for cond in conditions}, students)
    ghost = measured(B, "readout_norm", {"teacher": {"teacher": t_key or B.store.teacher_key(), "teacher_epochs": te}},
                     lambda labels: {"teacher": {"teacher_ghost_norm": readout_norm_ratio(t(), B.reference(), "aux")}})
    df["readout_norm"] = np.nan
    for cond in conditions:
        df.loc[df.condition == cond, "readout_norm"] = np.asarray(norms[cond]["readout_norm"], dtype=np.float32)
    df["teacher_ghost_norm"] = np.nan
    df.loc[df.condition == "teacher", "teacher_ghost_norm"] = np.asarray(ghost["teacher"]["teacher_ghost_norm"], dtype=np.float32)


def sweep_experiment(name: str, config: type, sweep: Sweep, report: Report, tiny_args: Sequence[str] = ()) -> Experiment:
    """The Experiment of a one-knob sweep: summary by setting × `sweep.knobs` × condition, `sweep_tests` against the
    reference setting (`sweep.reference(cfg)`: its name, or None for the first), `sweep_extras` (with a rank trend in
    the knob of `sweep.trend`, for width sweeps); `report` and `tiny_args` as `Experiment` takes them."""
    return Experiment(name, config, by=("setting", *sweep.knobs, "condition"),
                      tests=lambda df, cfg: sweep_tests(df, sweep.reference(cfg)),
                      extras=sweep_extras(sweep.trend.knob if sweep.trend else None), group="mechanism",
                      sweep=sweep, report=report, tiny_args=tuple(tiny_args))


def run_sweep(exp: Experiment, cfg, sweep: dict[str, dict], *, plot: Plot, extra: dict | None = None, **sweep_kw) -> pd.DataFrame:
    """A topic_a_mech_* one-knob sweep end to end: each setting in order, outputs rewritten after each
    (a stopped run leaves honest partial results), paired tests against the reference setting; `plot` draws its figure."""
    names = list(sweep)
    memo: dict = {}
    return run_and_write(exp, cfg, lambda A, st: setting_sweep(A, {n: sweep[n] for n in st}, memo, **sweep_kw), plot=plot,
                         stages=[names[:k] for k in range(1, len(names) + 1)], extra=extra)


def sweep_tests(df: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per setting, student_aux − cross_aux; and each setting's student_aux − the reference setting's (same
    models; default: the first setting)."""
    rows = []
    names = list(dict.fromkeys(df.setting))
    reference = reference if reference in names else names[0]
    s = df[df.condition == "student_aux"]
    ref = s[s.setting == reference].sort_values("model").accuracy
    for name in names:
        g = df[df.setting == name]
        a, b = g[g.condition == "student_aux"].sort_values("model"), g[g.condition == "cross_aux"].sort_values("model")
        if len(a) and len(a) == len(b):
            rows.append({"setting": name, "a": "student_aux", "b": "cross_aux", **paired_test(a.accuracy, b.accuracy)})
        if name != reference and len(a) and len(a) == len(ref):
            rows.append({"setting": name, "a": "student_aux", "b": f"student_aux at {reference}", **paired_test(a.accuracy, ref)})
    return pd.DataFrame(rows)


def sweep_extras(trend_knob: str | None = None):
    """Extras of a sweep: `kind` for every row; mean [95% CI] of the readout norms per setting (`measure` rows); with
    `trend_knob` (width sweeps), the Spearman trend of the transfer (student − cross) in the knob (`trend` row)."""

    def f(df: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame, cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
        tests = tests.assign(kind="paired")
        rows = []
        for setting, g in df.groupby("setting", sort=False):
            for col in NORM_COLUMNS:
                if col not in g:
                    continue
                for cond, h in g.groupby("condition", sort=False):
                    if h[col].notna().any():
                        m, lo, hi = mean_ci(h[col].to_numpy(float))
                        rows.append({"setting": setting, "n": int(h[col].notna().sum()), "kind": "measure", "measure": col,
                                     "condition": cond, "mean": m, "ci95_low": lo, "ci95_high": hi})
        t = tests[(tests.a == "student_aux") & (tests.b == "cross_aux")]
        if trend_knob and trend_knob in df and len(t) >= 3:
            x = df.drop_duplicates("setting").set_index("setting")[trend_knob].reindex(t.setting)
            rho, p = stats.spearmanr(x.to_numpy(float), t.mean_diff.to_numpy(float))
            rows.append({"setting": "", "n": len(t), "kind": "trend", "measure": trend_knob, "rho": float(rho), "rho_p": float(p)})
        return summary, pd.concat([tests, pd.DataFrame(rows)], ignore_index=True)

    return f
