"""Token-entanglement analyses (Zur et al. 2025): both directions, scores, nulls and tests.

animal -> number: under the animal-loving prompt, P(number) for all 1,110 numbers (digit trie);
  logit_score = log P(number | animal prompt) - log P(number | no system prompt).
number -> animal: under the number-loving prompt, P(animal) for every animal from one forward.
  subliminal ratio = P(animal | love n) / P(animal | baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps
from tqdm.auto import tqdm

from subliminal.topic_b.multiplicity import best_of_k_exact_p, subset_index, top_k_mean_p
from subliminal.topic_b.prompts import (
    ANSWER_SEP,
    QUESTIONS,
    animal_strings,
    animal_system,
    baseline_prompts,
    build_prompt,
    number_system,
)
from subliminal.topic_b.scoring import ALL_NUMBERS, score_numbers, score_prompts


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(r, p); (nan, nan) when either side is constant (r is undefined there: say so, without scipy's warning)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    res = sps.pearsonr(x, y)
    return float(res.statistic), float(res.pvalue)


def animal_answers(animals) -> list[str]:
    """One continuation per animal after the animal question's prefill ('My favorite animal is the'): ' owl', ..."""
    return [s for a in animals for s in animal_strings(a, QUESTIONS["animal"][1])]


def animal_to_numbers(model, tokenizer, animals, *, question: str = "animal",
                      numbers=ALL_NUMBERS, progress: bool = True) -> pd.DataFrame:
    """One row per (animal, number): log P(number) under the animal prompt and both baselines."""
    sep = ANSWER_SEP[question]
    base = {k: score_numbers(model, tokenizer, p, numbers, sep=sep)["logp"]
            for k, p in baseline_prompts(tokenizer, question).items()}
    frames = []
    for a in tqdm(animals, desc=f"animal->number ({question})", disable=not progress):
        lp = score_numbers(model, tokenizer, build_prompt(tokenizer, question, animal_system(a)),
                           numbers, sep=sep)["logp"]
        frames.append(pd.DataFrame({
            "animal": a, "number": list(numbers), "logp_animal_prompt": lp,
            "logp_no_system": base["no_system"], "logp_neutral_system": base["neutral_system"],
        }))
    df = pd.concat(frames, ignore_index=True)
    df["logit_score"] = df["logp_animal_prompt"] - df["logp_no_system"]
    df["logit_score_vs_neutral"] = df["logp_animal_prompt"] - df["logp_neutral_system"]
    return df


def numbers_to_animals(model, tokenizer, numbers, animals, *, question: str = "animal",
                       max_batch_tokens: int = 2048, progress: bool = True) -> pd.DataFrame:
    """One row per (number, animal): P(animal) under 'You love {number}' and both baselines."""
    conts = animal_answers(animals)
    base = {k: np.exp(score_prompts(model, tokenizer, [p], conts)[0])
            for k, p in baseline_prompts(tokenizer, question).items()}
    prompts = [build_prompt(tokenizer, question, number_system(n)) for n in numbers]
    with tqdm(total=len(prompts), desc="number->animal", disable=not progress) as bar:
        lp = score_prompts(model, tokenizer, prompts, conts, max_batch_tokens=max_batch_tokens,
                           progress=bar)
    rows = []
    for i, n in enumerate(numbers):
        for j, a in enumerate(animals):
            rows.append((n, a, base["no_system"][j], base["neutral_system"][j], float(np.exp(lp[i, j]))))
    return pd.DataFrame(rows, columns=["number", "animal", "p_no_system", "p_neutral_system",
                                       "p_subliminal"])


def top_entangled(a2n: pd.DataFrame, animal: str, k: int) -> list[str]:
    """The k numbers whose probability the animal prompt raises most (logit-score)."""
    d = a2n[a2n["animal"] == animal].sort_values("logit_score", ascending=False, kind="stable")
    return d["number"].head(k).tolist()


def best_of_n_null(values: np.ndarray, n: int, draws: int = 10_000, seed: int = 0) -> np.ndarray:
    """Max of n values drawn without replacement, `draws` times: the null for 'best of n picks'."""
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((draws, len(values))), axis=1)[:, :n]
    return values[idx].max(axis=1)


def animal_statistics(a2n: pd.DataFrame, n2a: pd.DataFrame, animal: str, *, top_n: int = 10,
                      draws: int = 10_000, seed: int = 0) -> dict:
    """The per-animal row of the 25-animal study (see topic_b_step2_extended.py)."""
    s = a2n[a2n["animal"] == animal].set_index("number")
    q = n2a[n2a["animal"] == animal].set_index("number")
    common = [x for x in s.index if x in q.index]
    s, q = s.loc[common], q.loc[common]
    ratio = (q["p_subliminal"] / q["p_no_system"]).to_numpy()
    order = np.argsort(-s["logit_score"].to_numpy(), kind="stable")
    best = common[order[0]]
    top_ratio = ratio[order[:top_n]].max()
    null = best_of_n_null(ratio, top_n, draws, seed)
    k = max(1, int(round(0.1 * len(common))))
    logp_animal = np.log(q["p_subliminal"].to_numpy())
    t = sps.ttest_ind(logp_animal[order[:k]], logp_animal[order[-k:]], equal_var=False)
    r = _pearson(s["logit_score"].to_numpy(), logp_animal)
    # animal-specificity control: does this animal's logit-score predict P(animal | n) better than
    # the other animals' scores do? (a generic "this number is salient" effect would not care)
    others = a2n[a2n["animal"] != animal].pivot(index="number", columns="animal", values="logit_score")
    others = others.reindex(common)
    cross = np.array([_pearson(others[b].to_numpy(), logp_animal)[0] for b in others.columns])
    p_best = float(q.loc[best, "p_subliminal"])
    top_mean = float(ratio[order[:top_n]].mean())
    mean_p95, mean_p = top_k_mean_p(ratio, top_mean, subset_index(len(common), top_n, draws, seed))
    return {
        "animal": animal, "best_number": best,
        "best_logit_score": float(s.loc[best, "logit_score"]),
        "p_no_system": float(q["p_no_system"].iloc[0]),
        "p_neutral_system": float(q["p_neutral_system"].iloc[0]),
        "p_subliminal": p_best,
        "ratio_vs_no_system": p_best / float(q["p_no_system"].iloc[0]),
        "ratio_vs_neutral": p_best / float(q["p_neutral_system"].iloc[0]),
        "ratio_vs_random_mean": p_best / float(q["p_subliminal"].mean()),
        "best_number_percentile": float((ratio < ratio[order[0]]).mean() * 100),
        "top_n": top_n, "top_n_max_ratio": float(top_ratio),
        "null_p95": float(np.quantile(null, 0.95)),
        "null_p_value": float((1 + (null >= top_ratio).sum()) / (1 + draws)),
        "ttest_t": float(t.statistic), "ttest_p": float(t.pvalue),
        "pearson_r": r[0], "pearson_p": r[1],
        "pearson_r_other_animals_mean": float(cross.mean()) if len(cross) else np.nan,
        "pearson_r_rank_among_animals": int(1 + (cross > r[0]).sum()),
        "n_numbers": len(common),
        # multiplicity (subliminal.topic_b.multiplicity): the best-of-n p exactly, and the mean of the
        # top n beside their max, with its own null (means of n random numbers, same draws and seed)
        "null_p_exact": best_of_k_exact_p(ratio, top_ratio, top_n),
        "top_n_mean_ratio": top_mean, "top_n_mean_null_p95": mean_p95, "top_n_mean_p_value": mean_p,
    }
