"""Is number -> animal entanglement animal-specific? A test that uses all numbers and all animals.

Over the K x K matrix C[a, b] = corr over the numbers n of (log P(animal a | 'You love n'),
logit-score of animal b at n), each animal's own score (the diagonal) should predict its own
probability better than the other animals' scores do. Statistics: the mean own correlation and the
mean rank of the own score among the K (1 = best). Null: random permutations of the animal labels of
the scores, which keep every number's digit structure and every animal's score profile.

``generic_removed`` subtracts each number's mean over animals on both sides first: a number that
raises every animal (or that every animal prompt raises) no longer counts.

Effect in probability units: T_b = animal b's top-k numbers by its score; M[a, b] = mean over T_b
of log P(a | n). The effect is the mean over animals of M[a, a] - mean_{b != a} M[a, b], reported as
a ratio exp(.) (own top-k vs the other animals' top-k; geometric means of P(animal)), with the same
label-permutation p-value and a 95% interval by inverting the permutation test under a constant
shift of the own entries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from subliminal.cli import UserError

VARIANTS = ("raw", "generic_removed")
MIN_ANIMALS = 3
SPEC_CSV, NUMBERS_CSV = "topic_b_specificity.csv", "topic_b_specificity_numbers.csv"
TARGETS = (("owl", "087"), ("eagle", "747"))  # the seed's pairs (Llama-3.2-1B)


def matrices(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(S, L, numbers, animals): logit-score and log P(animal | 'You love n'), numbers x animals."""
    animals = list(dict.fromkeys(pairs["animal"]))
    numbers = list(dict.fromkeys(pairs["number"]))
    s = pairs.pivot(index="number", columns="animal", values="logit_score").reindex(index=numbers, columns=animals)
    p = pairs.pivot(index="number", columns="animal", values="p_subliminal").reindex(index=numbers, columns=animals)
    if s.isna().any().any() or p.isna().any().any() or (p.to_numpy() <= 0).any():
        raise UserError("the pairs table is incomplete (every animal needs every number, with P > 0); "
                        "rerun topic_b_step2_extended.py for this model")
    if len(animals) < MIN_ANIMALS:
        raise UserError(f"the specificity test needs at least {MIN_ANIMALS} animals, got {len(animals)}")
    return s.to_numpy(float), np.log(p.to_numpy(float)), numbers, animals


def corr_matrix(S: np.ndarray, L: np.ndarray) -> np.ndarray:
    """C[a, b] = Pearson correlation over rows of L[:, a] and S[:, b]."""
    zs = (S - S.mean(0)) / S.std(0)
    zl = (L - L.mean(0)) / L.std(0)
    return zl.T @ zs / S.shape[0]


def permutations(k: int, n_perm: int, seed: int) -> np.ndarray:
    """(n_perm, k) random permutations of range(k), seeded."""
    return np.argsort(np.random.default_rng(seed).random((n_perm, k)), axis=1)


def _upper_p(null: np.ndarray, obs: float) -> float:
    return float((1 + (null >= obs - 1e-12).sum()) / (1 + len(null)))


def shift_ci(d_obs: float, d_perm: np.ndarray, fixed: np.ndarray, k: int, alpha: float = 0.05):
    """Interval of shifts delta of the own entries that the permutation test does not reject at alpha
    (two-sided). Removing delta from the own entries changes the statistic of a permutation with f
    fixed points by -delta (f - 1) / (k - 1); a permutation counts as 'at least as large' for
    delta >= (d_obs - d_perm) (k - 1) / (k - f)."""
    moving = fixed < k
    n_same = int((~moving).sum())  # identities: always tied with the observed value
    thr = np.sort((d_obs - d_perm[moving]) * (k - 1) / (k - fixed[moving]))
    need = int(np.floor(alpha / 2 * (1 + len(d_perm)) - 1 - n_same)) + 1
    if need <= 0:
        return -np.inf, np.inf
    if need > len(thr):
        return np.nan, np.nan
    return float(thr[need - 1]), float(thr[::-1][need - 1])


def variant_stats(S: np.ndarray, L: np.ndarray, *, top_k: int = 10, n_perm: int = 10_000, seed: int = 0) -> dict:
    """The specificity statistics of one (S, L) pair; see the module docstring."""
    n, k = S.shape
    C = corr_matrix(S, L)
    R = 1 + (C[:, None, :] > C[:, :, None]).sum(-1)  # R[a, b]: rank of column b within row a
    perm = permutations(k, n_perm, seed)
    rows = np.arange(k)
    own_r, own_rank = float(np.diag(C).mean()), float(np.diag(R).mean())
    null_r, null_rank = C[rows, perm].mean(1), R[rows, perm].mean(1)
    top = np.argsort(-S, axis=0, kind="stable")[:top_k]  # (top_k, k): each animal's top numbers
    M = L[top].mean(0).T  # M[a, b] = mean over T_b of L[:, a]
    rowsum = M.sum(1)

    def effect(p):  # mean over a of M[a, p(a)] - mean of the row's other entries
        return (M[rows, p] * k / (k - 1) - rowsum / (k - 1)).mean(-1)

    d_obs, d_perm = float(effect(rows)), effect(perm)
    lo, hi = shift_ci(d_obs, d_perm, (perm == rows).sum(1), k)
    return {
        "n_numbers": n, "n_animals": k, "n_perm": n_perm, "seed": seed,
        "mean_own_r": own_r, "mean_other_r": float((C.sum() - np.trace(C)) / (k * (k - 1))),
        "null_r_p95": float(np.quantile(null_r, 0.95)), "p_own_r": _upper_p(null_r, own_r),
        "mean_own_rank": own_rank, "null_rank_p05": float(np.quantile(null_rank, 0.05)),
        "p_own_rank": _upper_p(-null_rank, -own_rank), "animals_own_rank_1": int((np.diag(R) == 1).sum()),
        "top_k": top_k, "effect_ratio": float(np.exp(d_obs)), "effect_ci95_low": float(np.exp(lo)),
        "effect_ci95_high": float(np.exp(hi)), "p_effect": _upper_p(d_perm, d_obs),
    }


def verdict(r: dict, alpha: float = 0.05) -> str:
    """One phrase from the p-value and the effect size together."""
    pct = 100 * (r["effect_ratio"] - 1)
    if r["p_own_r"] >= alpha:
        if not np.isfinite(r["effect_ci95_high"]):
            return "not detected (too few animals to bound the effect)"
        return f"not detected (effect at most {100 * (r['effect_ci95_high'] - 1):+.0f}% at 95%)"
    if not r["effect_ci95_low"] > 1:
        return "specific in correlation; no detectable effect on P(animal)"
    size = "tiny" if pct < 10 else "small" if pct < 100 else "large"
    return f"specific but {size} ({pct:+.1f}% P(animal))" if size != "large" else f"specific and large ({pct:+.0f}%)"


def specificity_rows(pairs: pd.DataFrame, model: str, *, top_k: int = 10, n_perm: int = 10_000,
                     seed: int = 0) -> pd.DataFrame:
    """One row per variant for one model's pairs (columns animal, number, logit_score, p_subliminal)."""
    S, L, _, _ = matrices(pairs)
    out = []
    for v in VARIANTS:
        s, lg = (S, L) if v == "raw" else (S - S.mean(1, keepdims=True), L - L.mean(1, keepdims=True))
        r = variant_stats(s, lg, top_k=top_k, n_perm=n_perm, seed=seed)
        out.append({"model": model, "variant": v, **r, "verdict": verdict(r)})
    return pd.DataFrame(out)


def number_ranks(pairs: pd.DataFrame, model: str, targets=TARGETS) -> pd.DataFrame:
    """For each (animal, number): its rank among all numbers by logit-score and by P(animal | n)
    (1 = highest), and the animal's top number by each."""
    out = []
    for animal, number in targets:
        d = pairs[pairs["animal"] == animal].set_index("number")
        if number not in d.index:
            continue
        s, p = d["logit_score"], d["p_subliminal"]
        out.append({"model": model, "animal": animal, "number": number, "n_numbers": len(d),
                    "logit_score": float(s[number]), "rank_by_logit_score": int(1 + (s > s[number]).sum()),
                    "p_animal_given_number": float(p[number]),
                    "rank_by_p_animal": int(1 + (p > p[number]).sum()),
                    "top_number_by_logit_score": str(s.idxmax()), "top_number_by_p_animal": str(p.idxmax())})
    return pd.DataFrame(out)


def outputs(pairs: pd.DataFrame, model: str, *, top_k: int, n_perm: int, seed: int) -> dict[str, pd.DataFrame]:
    """The model's rows of topic_b_specificity.csv (absent with fewer than MIN_ANIMALS animals) and of
    topic_b_specificity_numbers.csv (absent when 087/747 are not among the numbers), by file name."""
    out = {}
    if pairs["animal"].nunique() >= MIN_ANIMALS:
        out[SPEC_CSV] = specificity_rows(pairs, model, top_k=top_k, n_perm=n_perm, seed=seed)
    ranks = number_ranks(pairs, model)
    if len(ranks):
        out[NUMBERS_CSV] = ranks
    return out
