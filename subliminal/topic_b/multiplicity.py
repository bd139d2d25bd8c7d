"""Honest multiplicity for step 2's per-animal tests: exact best-of-k p-values, a mean-of-top-k null,
and Benjamini-Hochberg counts within a model and over all models.

Best-of-k, exactly: if k of N values are drawn at random without replacement, and r of the N values
are >= the observed statistic, P(max of the draw >= observed) = 1 - C(N - r, k) / C(N, k). This is
what the Monte Carlo null of ``entanglement.best_of_n_null`` estimates; its smallest possible
p-value is k / N, not 1 / (draws + 1).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

ALPHA = 0.05


def best_of_k_exact_p(values, observed: float, k: int) -> float:
    """P(max of k values drawn without replacement from `values` >= observed), exact."""
    v = np.asarray(values, dtype=float)
    n = v.size
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of values ({n})")
    r = int((v >= observed).sum())
    return 1.0 - math.comb(n - r, k) / math.comb(n, k)  # exact integers, one correctly rounded division


@functools.lru_cache(maxsize=4)
def subset_index(n: int, k: int, draws: int, seed: int = 0) -> np.ndarray:
    """(draws, k) indices: `draws` random k-subsets of range(n), each without replacement (read-only,
    cached: every animal of a model uses the same draws)."""
    rng = np.random.default_rng(seed)
    idx = np.argpartition(rng.random((draws, n)), k - 1, axis=1)[:, :k]
    idx.flags.writeable = False
    return idx


def top_k_mean_p(values, observed: float, idx: np.ndarray) -> tuple[float, float]:
    """(95th percentile of the null, p-value) for the mean of k values, the null being the means of
    the random subsets `idx` (from ``subset_index``); p = (1 + #null >= observed) / (1 + draws)."""
    null = np.asarray(values, dtype=float)[idx].mean(axis=1)
    return float(np.quantile(null, 0.95)), float((1 + (null >= observed).sum()) / (1 + len(null)))


def bh_qvalues(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q); NaN stays NaN and is not counted as a test."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adj
    q[ok] = out
    return q


# name -> (p column, sign column or None, sign): the step-2 per-animal tests that are counted
TESTS: dict[str, tuple[str, str | None, int]] = {
    "best_of_n_max_monte_carlo": ("null_p_value", None, 0),
    "best_of_n_max_exact": ("null_p_exact", None, 0),
    "top_n_mean": ("top_n_mean_p_value", None, 0),
    "ttest_positive": ("ttest_p", "ttest_t", 1),
    "ttest_negative": ("ttest_p", "ttest_t", -1),
    "pearson_positive": ("pearson_p", "pearson_r", 1),
    "pearson_negative": ("pearson_p", "pearson_r", -1),
}
WITHIN_Q = {"null_p_exact": "null_p_exact_q", "top_n_mean_p_value": "top_n_mean_q",
            "ttest_p": "ttest_q", "pearson_p": "pearson_q"}

ADDED_COLUMNS = ("null_p_exact", "top_n_mean_ratio", "top_n_mean_null_p95", "top_n_mean_p_value", *WITHIN_Q.values())


def add_within_model_q(summary: pd.DataFrame) -> pd.DataFrame:
    """BH q-values over the animals of one model, for each p column present (new columns)."""
    out = summary.copy()
    for p, q in WITHIN_Q.items():
        if p in out.columns:
            out[q] = bh_qvalues(out[p].to_numpy())
    return out


def _hits(p: np.ndarray, sign: np.ndarray | None, want: int, alpha: float = ALPHA) -> np.ndarray:
    ok = p < alpha
    return ok & (np.sign(sign) == want) if sign is not None else ok


def count(df: pd.DataFrame, test: str, bh: bool = False, alpha: float = ALPHA) -> float:
    """Animals in df passing `test` (a TESTS key) at alpha, raw or after BH over df's rows; NaN when
    df has no such p-values."""
    pcol, scol, want = TESTS[test]
    if pcol not in df.columns or df[pcol].isna().all():
        return float("nan")
    p = df[pcol].to_numpy(float)
    return int(_hits(bh_qvalues(p) if bh else p, df[scol].to_numpy(float) if scol else None, want, alpha).sum())


def multiplicity_table(step2: pd.DataFrame, finder: str = "logit", alpha: float = ALPHA) -> pd.DataFrame:
    """Per model (and 'all models') x test: animals with p < alpha, uncorrected, after BH within the
    model and after BH over all models' animals together. Sign tests count two-sided p < alpha with
    the given sign, BH over the two-sided p-values."""
    rows = []
    models = list(dict.fromkeys(step2["model"]))
    for test, (pcol, scol, want) in TESTS.items():
        if pcol not in step2.columns:
            continue
        p_all = step2[pcol].to_numpy(float)
        s_all = step2[scol].to_numpy(float) if scol else None
        q_all = bh_qvalues(p_all)
        counts = {"raw": _hits(p_all, s_all, want, alpha), "all": _hits(q_all, s_all, want, alpha)}
        within = np.zeros(len(step2), bool)
        for m in models:
            sel = (step2["model"] == m).to_numpy()
            within[sel] = _hits(bh_qvalues(p_all[sel]), s_all[sel] if scol else None, want, alpha)
        for m in [*models, "all models"]:
            sel = np.ones(len(step2), bool) if m == "all models" else (step2["model"] == m).to_numpy()
            rows.append({"model": m, "finder": finder, "test": test, "p_column": pcol,
                         "animals": int(sel.sum()), "n_tests_all_models": int((~np.isnan(p_all)).sum()),
                         "p_lt_alpha": int(counts["raw"][sel].sum()),
                         "bh_within_model": int(within[sel].sum()),
                         "bh_all_models": int(counts["all"][sel].sum()),
                         "expected_false_uncorrected": float(alpha / (2 if scol else 1) * sel.sum()),
                         "alpha": alpha})
    return pd.DataFrame(rows)
