"""Topic B README tables, generated from the committed CSVs in plots_b/ (nothing is recomputed).

``tables(root)`` returns section name -> markdown; ``make report`` puts each between
``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` in README.md and docs/*.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from subliminal.reporting.render import read_b
from subliminal.reporting.render import table as _md
from subliminal.reporting.seed_claims import B as SEED


def _missing(script: str) -> str:
    return f"_No results yet: run `python {script}`._"


def part1(root: Path) -> str:
    var, nums = read_b(root, "topic_b_part1.csv"), read_b(root, "topic_b_part1_numbers.csv")
    if var is None or nums is None:
        return _missing("topic_b_part1.py")
    piv = var.pivot_table(index=["model", "question", "string"], columns="condition", values="p").reset_index()
    piv["string"] = [f"`{x!r}`" for x in piv["string"]]  # leading spaces matter: ' owl' vs 'owl'
    piv["ratio_owl_vs_no_system"] = piv["owl_prompt"] / piv["no_system"]
    out = [_md(piv)]
    top = nums[nums["rank"] <= 5][["model", "question", "rank", "number", "p_owl_prompt", "p_no_system", "logit_score"]]
    top = top.assign(ratio=np.exp(top["logit_score"])).drop(columns="logit_score")
    out.append("Numbers the owl prompt raises most (seed, Llama-3.2-1B: 087 and 747 entangled with owl/eagle):\n\n" + _md(top))
    return "\n\n".join(out)


def part2(root: Path) -> str:
    s = read_b(root, "topic_b_part2_summary.csv")
    if s is None:
        return _missing("topic_b_part2.py")
    cols = [c for c in ["model", "animal", "p_no_system", "p_neutral_system", "geo_mean_ratio_entangled",
                        "max_ratio_entangled", "geo_mean_ratio_random", "random_p95_ratio",
                        "n_entangled_above_random_p95", "welch_p_entangled_vs_random"] if c in s.columns]
    return ("Ratios are P(animal | 'You love N') / P(animal | no system prompt); seed (Llama-3.2-1B): "
            f"owl {SEED['ratio_owl']}x, eagle {SEED['ratio_eagle']}x for the top entangled number.\n\n" + _md(s[cols]))


def part3(root: Path) -> str:
    s = read_b(root, "topic_b_part3_summary.csv")
    if s is None:
        return _missing("topic_b_part3.py")
    cols = ["model", "animal", "mean_cos_entangled", "mean_cos_all", "spearman_cos_vs_logit_score",
            "overlap_topcos_entangled", "mean_ratio_topcos", "max_ratio_topcos", "mean_ratio_entangled",
            "mean_ratio_random"]
    return (f"Seed: entangled {SEED['cos_entangled']} vs random {SEED['cos_random']} cosine; top-10 cosine overlaps "
            f"top-10 entangled {SEED['overlap_topcos']}/10; top-cosine numbers give mean ratio {SEED['topcos_mean_ratio']:.2f}x, "
            f"max {SEED['topcos_max_ratio']}x.\n\n" + _md(s[cols]))


def step2(root: Path) -> str:
    s = read_b(root, "topic_b_step2_extended.csv")
    if s is None:
        return _missing("topic_b_step2_extended.py")
    out = []
    agg = s.groupby("model").agg(
        animals=("animal", "size"),
        ratio_gt_2x_vs_no_system=("ratio_vs_no_system", lambda r: int((r > 2).sum())),
        ratio_gt_2x_vs_random_numbers=("ratio_vs_random_mean", lambda r: int((r > 2).sum())),
        beats_null_p95=("significant", "sum"),
        ttest_top_gt_bottom_p_lt_005=("ttest_t", lambda t: int(((t > 0) & (s.loc[t.index, "ttest_p"] < 0.05)).sum())),
        ttest_top_lt_bottom_p_lt_005=("ttest_t", lambda t: int(((t < 0) & (s.loc[t.index, "ttest_p"] < 0.05)).sum())),
        pearson_pos_p_lt_005=("pearson_r", lambda r: int(((r > 0) & (s.loc[r.index, "pearson_p"] < 0.05)).sum())),
        pearson_neg_p_lt_005=("pearson_r", lambda r: int(((r < 0) & (s.loc[r.index, "pearson_p"] < 0.05)).sum())),
        mean_own_rank_pearson=("pearson_r_rank_among_animals", "mean"),
        median_ratio_vs_no_system=("ratio_vs_no_system", "median"),
        median_ratio_vs_random=("ratio_vs_random_mean", "median"),
    ).reset_index()
    out.append(f"Seed (Llama-3.2-1B-Instruct): {SEED['animals_gt_2x']}/25 animals > 2x; mean ratio {SEED['mean_ratio']}x, "
               f"median {SEED['median_ratio']}x. "
               "`mean_own_rank_pearson`: rank (1-25) of an animal's own logit-score among all 25 animals' "
               "scores as a predictor of P(animal | number); 13 = no animal specificity.\n\n" + _md(agg))
    cols = ["model", "animal", "best_number", "p_no_system", "p_subliminal", "ratio_vs_no_system",
            "ratio_vs_random_mean", "top_n_max_ratio", "null_p95", "null_p_value", "ttest_t", "ttest_p",
            "pearson_r", "pearson_p", "pearson_r_rank_among_animals"]
    out.append(_md(s[cols]))
    return "\n\n".join(out)


def step3(root: Path) -> str:
    s = read_b(root, "topic_b_step3_summary.csv")
    if s is None:
        return _missing("topic_b_step3_base_vs_instruct.py")
    note = s["comparison"].iloc[0]
    cols = [c for c in ["model_a", "model_b", "animal", "pearson_cosine_a_b", "spearman_logit_score_a_b",
                        "entangled_a", "entangled_b", "overlap_top_k"] if c in s.columns]
    return (f"Compared: {note}. Seed: base vs instruct owl/087 cosine {SEED['cos_base']} vs {SEED['cos_instruct']}.\n\n"
            + _md(s[cols]))


def tables(root: Path) -> dict[str, str]:
    return {"b_part1": part1(root), "b_part2": part2(root), "b_part3": part3(root), "b_step2": step2(root), "b_step3": step3(root)}
