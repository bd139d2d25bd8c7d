"""Statistics: means with t-based 95% confidence intervals and paired tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values: Sequence[float] | np.ndarray, conf: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-based two-sided confidence interval. With n < 2 the interval is the mean itself."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if n < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + conf / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return m, m - half, m + half


def summarize(df: pd.DataFrame, by: Sequence[str], value: str = "accuracy", conf: float = 0.95) -> pd.DataFrame:
    """One row per group: the group keys, n, mean, ci95_low, ci95_high (t-based, over rows = models)."""
    rows = []
    for keys, g in df.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        m, lo, hi = mean_ci(g[value].to_numpy(), conf)
        rows.append({**dict(zip(by, keys)), "n": int(g[value].notna().sum()), "mean": m, "ci95_low": lo, "ci95_high": hi})
    return pd.DataFrame(rows)


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired t-test and Wilcoxon signed-rank test of a vs b (same models, same order)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    t = stats.ttest_rel(a, b)
    d = a - b
    try:
        w = stats.wilcoxon(a, b) if np.any(d != 0) else None
    except ValueError:
        w = None
    m, lo, hi = mean_ci(d)
    return {
        "n": int(a.size), "mean_diff": m, "diff_ci95_low": lo, "diff_ci95_high": hi,
        "t": float(t.statistic), "t_p": float(t.pvalue),
        "wilcoxon_p": float(w.pvalue) if w is not None else float("nan"),
    }


SUMMARY_STATS = ("n", "mean", "ci95_low", "ci95_high")


def _se_from_ci(n, lo, hi) -> np.ndarray:
    """Standard error of a mean back from its t-based 95% CI (as `summarize` writes it)."""
    n = np.asarray(n, float)
    return (np.asarray(hi, float) - np.asarray(lo, float)) / 2 / stats.t.ppf(0.975, np.maximum(n - 1, 1))


def compare_summaries(full: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Two `summarize` tables of the same experiment, joined on their key columns (rows in only one are
    dropped): both means and CIs, diff = other − full, z = diff / combined standard error (independent
    samples of models; z = ±inf when both CIs are points and the means differ)."""
    keys = [c for c in full.columns if c not in SUMMARY_STATS and c in other.columns]
    m = full.merge(other, on=keys, suffixes=("_full", "_fast"))
    se = np.hypot(_se_from_ci(m.n_full, m.ci95_low_full, m.ci95_high_full),
                  _se_from_ci(m.n_fast, m.ci95_low_fast, m.ci95_high_fast))
    m["diff"] = m["mean_fast"] - m["mean_full"]
    with np.errstate(divide="ignore", invalid="ignore"):
        m["z"] = np.where(se > 0, m["diff"] / se, np.where(m["diff"] == 0, 0.0, np.sign(m["diff"]) * np.inf))
    m.insert(0, "row", m[keys].astype(str).agg(", ".join, axis=1) if keys else "")
    return m[["row", *[f"{s}_{w}" for w in ("full", "fast") for s in SUMMARY_STATS], "diff", "z"]]


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    adj = np.empty_like(p)
    adj[order] = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    return adj
