"""README tables of the Topic B extensions (data-frequency finder, defence, across models).

``tables(root)`` returns section name -> markdown for ``<!-- report:b_data_frequency -->`` and
``<!-- report:b_across_models -->``, built only from ``root/plots_b/*.csv``.
"""

from __future__ import annotations

from pathlib import Path

from subliminal.reporting.render import read_b
from subliminal.reporting.render import table as _md

DATA_CMD = "python topic_b_data_frequency.py"
ACROSS_CMD = "python topic_b_across_models.py"


def data_frequency(root: Path) -> str:
    s = read_b(root, "topic_b_data_frequency.csv")
    if s is None:
        return f"not run yet: `{DATA_CMD}`"
    cols = ["model", "animal", "threshold", "n_valid_animal", "n_kept_animal", "n_kept_neutral", "js_divergence",
            "js_null_p95", "js_p_value", "spearman_data_vs_logit", "top_overlap_data_logit", "spearman_data_vs_cosine",
            "logit_best_number", "logit_best_log_data_score", "best_number", "ratio_vs_no_system",
            "ratio_vs_random_mean", "null_p_value", "ttest_t", "ttest_p", "pearson_r", "pearson_p"]
    s = s.sort_values(["model", "animal", "threshold"], kind="stable")
    return ("Threshold 0 = no defence. `js_divergence`: Jensen-Shannon divergence (nats) of the animal- and "
            "neutral-teacher number distributions (smoothed); `js_null_p95` / `js_p_value`: the same divergence "
            "for random splits of the pooled samples into groups of the same sizes (`--js-draws` label permutations, "
            "1,000 by default): "
            "does the animal teacher write different numbers at all; `best_number`: top number by data-score, its "
            "subliminal ratio P(animal | 'You love N') / P(animal | no system) and step 2's statistics with the "
            "data-score as finder; `logit_best_log_data_score`: log data-score of the logit finder's best number.\n\n"
            + _md(s[[c for c in cols if c in s.columns]]))


def across_models(root: Path) -> str:
    s = read_b(root, "topic_b_across_models.csv")
    if s is None:
        return f"not run yet: `{ACROSS_CMD}`"
    return ("Per model and finder, over the animals: `beats_null_p95` = best of the finder's top-10 numbers beats "
            "the 95th percentile of best-of-10 random numbers; t-test top vs bottom 10% and Pearson over all "
            "numbers, p < 0.05 by sign; medians of the best number's ratio vs no system and vs the mean over all "
            "numbers (the random-number null); `single_token_numbers` = fraction of the 1,110 numbers that are "
            "one token.\n\n" + _md(s))


def tables(root: Path) -> dict[str, str]:
    root = Path(root)
    return {"b_data_frequency": data_frequency(root), "b_across_models": across_models(root)}

