"""Number lists: the strict filter (Cloud et al.'s rule), counting over the 1,110 strings '0'-'999',
data-scores, the JS divergence with its permutation null, and ranking comparisons.

The module docstring of `subliminal.topic_b.sampling` describes the whole data route.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import stats as sps

from subliminal.topic_b.scoring import ALL_NUMBERS

NUMBER_INDEX = {n: i for i, n in enumerate(ALL_NUMBERS)}
MAX_COUNT = 10
MAX_DIGITS = 3


# ----------------------------------------------------------------------------- filter, counting


def parse_numbers(text: str, max_count: int = MAX_COUNT, max_digits: int = MAX_DIGITS) -> tuple[list[str] | None, str]:
    """(numbers as written, '') for a valid completion, else (None, reason)."""
    s = text.strip()
    if s.endswith("."):
        s = s[:-1].rstrip()
    if len(s) >= 2 and ((s[0], s[-1]) in (("[", "]"), ("(", ")"))):
        s = s[1:-1].strip()
    runs = list(re.finditer(r"\d+", s))
    if not runs:
        return None, "no_numbers"
    if len(runs) == 1:
        parts, sep = [s], None
    else:
        sep = s[runs[0].end(): runs[1].start()]
        if sep.strip() not in ("", ",", ";"):
            return None, "bad_separator"
        parts = s.split(sep)
        if parts and parts[-1] == "":  # one trailing separator is fine ('1;2;3;')
            parts = parts[:-1]
    if not all(p and p.isascii() and p.isdigit() for p in parts):
        return None, "not_a_clean_list"
    if len(parts) > max_count:
        return None, "too_many_numbers"
    if any(len(p) > max_digits for p in parts):
        return None, "too_many_digits"
    return parts, ""


def validate(record: dict, max_count: int = MAX_COUNT, max_digits: int = MAX_DIGITS) -> tuple[list[str] | None, str]:
    """Filter one sampled record: it must have ended its turn and parse as a clean list."""
    if not record.get("finished", True):
        return None, "no_end_of_turn"
    return parse_numbers(record["text"], max_count, max_digits)


def count_numbers(lists) -> np.ndarray:
    """Occurrences of each of the 1,110 strings (ALL_NUMBERS order) over lists of number strings."""
    c = np.zeros(len(ALL_NUMBERS), dtype=np.int64)
    for nums in lists:
        for n in nums:
            c[NUMBER_INDEX[n]] += 1
    return c


def smoothed_freq(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Add-alpha smoothed frequency over all 1,110 strings (sums to 1; alpha=0 is the raw frequency)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum() + alpha * len(counts)
    if total <= 0:
        return np.full(len(counts), 1.0 / len(counts))
    return (counts + alpha) / total


def data_scores(counts_animal: np.ndarray, counts_neutral: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """log data-score(t) = log f(t | animal teacher) - log f(t | neutral teacher), smoothed."""
    return np.log(smoothed_freq(counts_animal, alpha)) - np.log(smoothed_freq(counts_neutral, alpha))


def js_divergence(counts_a: np.ndarray, counts_b: np.ndarray, alpha: float = 1.0) -> float:
    """Jensen-Shannon divergence (nats) of the two smoothed number distributions: how far apart they are."""
    p, q = smoothed_freq(counts_a, alpha), smoothed_freq(counts_b, alpha)
    m = 0.5 * (p + q)
    return float(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum())


def js_permutation_null(lists_a, lists_b, alpha: float = 1.0, draws: int = 1000, seed: int = 0) -> dict:
    """Is JS(a, b) bigger than chance? Sparse counts make any two samples diverge, so the observed JS is
    compared with the JS of random splits of the pooled samples into groups of the same sizes (labels
    permuted, each sample's numbers kept together). p = (1 + #null >= observed) / (1 + draws)."""
    lists = [list(x) for x in lists_a] + [list(x) for x in lists_b]
    n_a = len(lists_a)
    if n_a == 0 or n_a == len(lists):
        return {"js_null_mean": float("nan"), "js_null_p95": float("nan"), "js_p_value": float("nan")}
    idx = np.array([NUMBER_INDEX[n] for x in lists for n in x], dtype=np.int64)
    sid = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    total = np.bincount(idx, minlength=len(ALL_NUMBERS))

    def js_split(in_a: np.ndarray) -> float:  # JS of the samples marked in_a vs the rest
        ca = np.bincount(idx[in_a[sid]], minlength=len(ALL_NUMBERS))
        return js_divergence(ca, total - ca, alpha)

    obs = js_split(np.arange(len(lists)) < n_a)
    rng = np.random.default_rng(seed)
    null = np.empty(draws)
    for d in range(draws):
        in_a = np.zeros(len(lists), dtype=bool)
        in_a[rng.choice(len(lists), n_a, replace=False)] = True
        null[d] = js_split(in_a)
    return {"js_null_mean": float(null.mean()), "js_null_p95": float(np.quantile(null, 0.95)),
            "js_p_value": float((1 + (null >= obs).sum()) / (1 + draws))}


def top_k(score: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices of the k highest scores, ties broken at random (fixed seed), not by list order: with
    sparse data most data-scores tie, and list order ('0'..'9' first) would pass for a ranking."""
    perm = np.random.default_rng(seed).permutation(len(score))
    return perm[np.argsort(-np.asarray(score, float)[perm], kind="stable")][:k]


def compare_rankings(a: np.ndarray, b: np.ndarray, k: int = 10, seed: int = 0) -> dict:
    """Spearman rho of two scores over the same numbers and the overlap of their top-k sets."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.ptp(a) > 0 and np.ptp(b) > 0):
        return {"spearman": float("nan"), "spearman_p": float("nan"),
                "top_k_overlap": len(set(top_k(a, k, seed)) & set(top_k(b, k, seed)))}
    r = sps.spearmanr(a, b)
    ta = set(top_k(a, k, seed))
    tb = set(top_k(b, k, seed))
    return {"spearman": float(r.statistic), "spearman_p": float(r.pvalue), "top_k_overlap": len(ta & tb)}


