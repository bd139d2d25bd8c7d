"""Topic A statistics, once: summaries and tests as pure functions of the tidy per-model CSVs.

`run_and_write` calls `analyse` when a script finishes; `python -m subliminal.topic_a.analysis` redoes
the same from the committed tidy CSVs without training, so every number the report shows can be
recomputed from plots_a/*.csv. The reporting layer only reads what this writes.

    python -m subliminal.topic_a.analysis            # rewrite plots_a/*_summary.csv and *_tests.csv
    python -m subliminal.topic_a.analysis --check    # only say whether they match

Accuracies are float32 counts / 10,000 in memory and 6-digit text in the CSV; reading them back as
float32 recovers the in-memory values exactly, so summaries and paired tests come out bit-for-bit.
The mechanism measures (CKA, cosines) lose digits in the CSV: where recomputing gives the committed
rows only to within that rounding, the committed rows are kept verbatim and the new rows appended.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from subliminal.common import UserError
from subliminal.results import atomic_write_text
from subliminal.stats import mean_ci, paired_test, summarize

FLOAT_FORMAT = "%.6g"
PAIRS = [("student_aux", "cross_aux"), ("student_all", "cross_all")]
# one-knob sweeps whose transfer is tested for a monotone trend in the knob
TREND_KNOB = {"topic_a_mech_aux_width": "n_aux", "topic_a_mech_hidden_width": "hidden"}
NORM_COLUMNS = ("readout_norm", "teacher_ghost_norm")
EPOCH_MEASURES = ("accuracy", "cka_h2", "cos_h2")


def _specs() -> dict[str, tuple[list[str], Callable[[pd.DataFrame, dict], pd.DataFrame]]]:
    """Every Topic A script's summary keys and tests, as its run_and_write call sets them."""
    from subliminal.topic_a import mech_runs, noise_regime
    from subliminal.topic_a.experiments import paired_tests

    def pt(by):
        return lambda df, cfg: paired_tests(df, PAIRS, by)

    def sweep(ref):
        return lambda df, cfg: mech_runs.sweep_tests(df, ref(cfg))

    return {
        "topic_a": (["condition"], pt([])),
        "topic_a_exp1": (["condition", "distill_epochs"], pt(["distill_epochs"])),
        "topic_a_exp2": (["condition", "teacher_epochs"], pt(["teacher_epochs"])),
        "topic_a_exp3": (["source", "condition"], pt(["source"])),
        "topic_a_maximize": (["condition", "distill_epochs"], pt(["distill_epochs"])),
        "topic_a_noise_regime": (["part", "setting", "condition", "distill_epochs"],
                                 lambda df, cfg: noise_regime.tests_vs_reference(df)),
        "topic_a_mech_convergence": (["condition", "distill_epochs"], lambda df, cfg: mech_runs.convergence_tests(df)),
        "topic_a_mech_probe": (["condition", "features"], lambda df, cfg: mech_runs.probe_tests(df)),
        "topic_a_mech_aux_width": (["setting", "n_aux", "condition"], sweep(lambda c: f"m={c.get('n_aux', 3)}")),
        "topic_a_mech_hidden_width": (["setting", "hidden", "condition"], sweep(lambda c: f"H={c.get('hidden', 256)}")),
        "topic_a_mech_init": (["setting", "student_init_noise", "init", "signed_inputs", "condition"], sweep(lambda c: "σ=0")),
        "topic_a_mech_optim": (["setting", "lr", "weight_decay", "teacher_weight_decay", "condition"], sweep(lambda c: None)),
    }


def load_tidy(path: Path) -> pd.DataFrame:
    """A tidy per-model CSV with accuracies back at their in-memory float32 values."""
    df = pd.read_csv(path)
    if "accuracy" not in df or "condition" not in df:
        raise UserError(f"{path} is not a tidy Topic A result (no accuracy/condition column): rerun its script")
    df["accuracy"] = df["accuracy"].astype("float32").astype("float64")
    return df


# ---------------------------------------------------------------------- extra statistics (appended rows/columns)
def noise_regime_params(df: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame, cfg: dict):
    """Each setting's parameters as columns of the summary and (for setting a) the tests, plus `contrast`."""
    from subliminal.topic_a.noise_regime import PARAMS, setting_table

    p = setting_table(int(cfg.get("n_distill", 60_000)), cfg.get("pool_sizes", (1_000, 10_000, 60_000)),
                      cfg.get("mnist_sizes", (1_000, 10_000, 60_000))).set_index("setting")
    summary = summary.join(p, on="setting")
    if len(tests):
        tests = tests.join(p, on="a")
        b = p.reindex(tests.b).reset_index(drop=True)
        a = tests.reset_index(drop=True)
        same_pool = (a.regime == b.regime) & (a.pool == b.pool)
        tests["contrast"] = np.where((a.source == "mnist") & (b.source == "noise") & same_pool, "mnist_vs_noise",
                                     np.where(a.shared.fillna(False).astype(bool) & ~b.shared.fillna(False).astype(bool) & same_pool, "shared_vs_per_model",
                                              "vs_reference"))
        tests = tests[[c for c in tests.columns if c not in PARAMS and c != "contrast"] + ["contrast", *PARAMS]]
    return summary, tests


def convergence_epochs(df: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame, cfg: dict):
    """Rows `paired_epochs`: each condition's change of accuracy / CKA h2 / cosine h2 from the first milestone."""
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


def sweep_extras(name: str):
    """Sweeps: `kind` for every row; mean [95% CI] of the readout norms per setting (`measure` rows); for
    width sweeps, the Spearman trend of the transfer (student − cross) in the knob (`trend` row)."""

    def f(df: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame, cfg: dict):
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
        knob = TREND_KNOB.get(name)
        t = tests[(tests.a == "student_aux") & (tests.b == "cross_aux")]
        if knob and knob in df and len(t) >= 3:
            x = df.drop_duplicates("setting").set_index("setting")[knob].reindex(t.setting)
            rho, p = sps.spearmanr(x.to_numpy(float), t.mean_diff.to_numpy(float))
            rows.append({"setting": "", "n": len(t), "kind": "trend", "measure": knob, "rho": float(rho), "rho_p": float(p)})
        return summary, pd.concat([tests, pd.DataFrame(rows)], ignore_index=True)

    return f


EXTRAS = {"topic_a_noise_regime": noise_regime_params, "topic_a_mech_convergence": convergence_epochs,
          **{n: sweep_extras(n) for n in ("topic_a_mech_aux_width", "topic_a_mech_hidden_width", "topic_a_mech_init",
                                          "topic_a_mech_optim")}}


def analyse(name: str, df: pd.DataFrame, by, tests_fn: Callable[[pd.DataFrame], pd.DataFrame],
            cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary (mean, 95% CI per group of `by`) and the tests of one script's tidy result, with the
    extra rows/columns that the report reads for that script."""
    summary, tests = summarize(df, by), tests_fn(df)
    if name in EXTRAS and len(df):
        summary, tests = EXTRAS[name](df, summary, tests, cfg)
    return summary, tests


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def merge_committed(old: str, new: pd.DataFrame) -> tuple[str, str]:
    """The text to write and how it relates to `old`: 'same', 'extends' (old rows bit-for-bit, rows/columns
    added), 'kept' (old rows reproduced only to within the tidy CSV's rounding: kept verbatim, new rows
    appended) or 'differs' (nothing written)."""
    text = _csv(new)
    if text == old or not old.strip():
        return text, "same"
    old_df = pd.read_csv(pd.io.common.StringIO(old))
    cols = list(old_df.columns)
    if not set(cols) <= set(new.columns) or len(new) < len(old_df):
        return old, "differs"
    head = new[cols].iloc[: len(old_df)]
    if _csv(head) == old:
        return text, "extends"
    a, b = head.reset_index(drop=True), old_df
    for c in cols:
        if pd.api.types.is_numeric_dtype(b[c]):
            if not np.allclose(pd.to_numeric(a[c]), b[c], rtol=2e-4, atol=1e-5, equal_nan=True):
                return old, "differs"
        elif not (a[c].fillna("").astype(str) == b[c].fillna("").astype(str)).all():
            return old, "differs"
    extra_cols = [c for c in new.columns if c not in cols]
    if new[extra_cols].iloc[: len(old_df)].notna().any().any():
        return old, "differs"
    lines = _csv(new).splitlines()
    kept = [lines[0]] + [ln + "," * len(extra_cols) for ln in old.splitlines()[1:]] + lines[1 + len(old_df):]
    return "\n".join(kept) + "\n", "kept"


def rewrite(plots: Path, check: bool = False) -> dict[str, str]:
    """Recompute every script's summary and tests in `plots` from its tidy CSV; write them unless `check`."""
    if not any((plots / f"{name}.csv").exists() for name in _specs()):
        raise UserError(f"no Topic A tidy CSV (topic_a*.csv) in {plots}: pass --plots DIR with a script's --out directory")
    status = {}
    for name, (by, tests_fn) in _specs().items():
        tidy = plots / f"{name}.csv"
        if not tidy.exists():
            continue
        meta = plots / f"{name}.json"
        cfg = json.loads(meta.read_text()).get("config", {}) if meta.exists() else {}
        df = load_tidy(tidy)
        if name == "topic_a_noise_regime":
            df.attrs["n_distill"] = int(cfg.get("n_distill", 60_000))
        summary, tests = analyse(name, df, by, lambda d, f=tests_fn, c=cfg: f(d, c), cfg)
        for kind, new in (("summary", summary), ("tests", tests)):
            path = plots / f"{name}_{kind}.csv"
            old = path.read_text() if path.exists() else ""
            text, how = merge_committed(old, new)
            status[f"{name}_{kind}"] = how if text != old or how == "differs" else "same"
            if not check and how != "differs" and text != old:
                atomic_write_text(path, text)
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m subliminal.topic_a.analysis", description=__doc__.splitlines()[0])
    p.add_argument("--plots", default="plots_a", help="directory of the tidy CSVs (default plots_a)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change or differs")
    a = p.parse_args(argv)
    try:
        status = rewrite(Path(a.plots), a.check)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, v in status.items():
        print(f"{k}: {v}")
    bad = [k for k, v in status.items() if v == "differs" or (a.check and v != "same")]
    if bad:
        print(f"{'out of date or different' if a.check else 'not reproduced (left as they are)'}: {', '.join(bad)}",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
