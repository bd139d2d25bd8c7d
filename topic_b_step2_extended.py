"""Topic B, step 2 (Zur et al. 2025, Sec. 4 "subliminal prompting", extended to 25 animals).

Is entanglement widespread or cherry-picked? For each of 25 animals: the number the animal prompt
raises most (logit-score over all 1,110 numbers), its subliminal ratio P(animal | "You love N") /
P(animal | no system prompt), and where the best of the top-n numbers falls in a permutation null
(best of n random numbers, 10,000 draws, 95th percentile); plus the paper's two tests over all
1,110 numbers: Welch t-test of log P(animal | number) for the top 10% vs bottom 10% by logit-score,
and Pearson r of logit-score with log P(animal | number).

    python topic_b_step2_extended.py                      # SmolLM2-135M-Instruct, ~8 min on 2 cores
    python topic_b_step2_extended.py --model qwen2.5-coder-0.5b-instruct
    python topic_b_step2_extended.py --quick               # 4 animals x 110 numbers, into plots_b/quick
    python topic_b_step2_extended.py --from-pairs          # statistics only, from the saved pairs CSV
    python -m subliminal.topic_b.plots                            # redraw all Topic B figures from the CSVs

Writes plots_b/topic_b_step2_extended.csv (one row per model x animal), topic_b_step2_pairs.csv
(one row per model x number x animal), a PNG and a provenance JSON.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from subliminal.common import cli_main, seed_everything
from subliminal.topic_b.entanglement import animal_statistics, animal_to_numbers, numbers_to_animals
from subliminal.topic_b.plots import plot_step2
from subliminal.topic_b.prompts import ANIMALS
from subliminal.topic_b.scoring import ALL_NUMBERS
from topic_b_utils import QUICK_OUT, LMConfig, finish, load, out_dir, upsert_csv


@dataclass
class Config(LMConfig):
    n_animals: int = field(default=25, metadata={"help": "first n of the fixed 25-animal list"})
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits (3: all 1,110)"})
    top_n: int = field(default=10, metadata={"help": "entangled numbers per animal for the best-of-n null"})
    null_draws: int = field(default=10_000, metadata={"help": "permutation-null draws"})
    seed: int = field(default=0, metadata={"help": "seed of the permutation null"})
    from_pairs: bool = field(default=False, metadata={"help": "recompute the statistics from the saved "
                                                       "topic_b_step2_pairs.csv (no model run)"})

    @classmethod
    def quick(cls) -> Config:
        return cls(out=QUICK_OUT, n_animals=4, max_digits=2, top_n=5, null_draws=2000)


def main(cfg: Config) -> pd.DataFrame:
    t0 = time.time()
    seed_everything(cfg.seed)
    animals = [a for a, _ in ANIMALS[: cfg.n_animals]]
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    if cfg.from_pairs:
        name = cfg.model
        saved = pd.read_csv(out_dir(cfg) / "topic_b_step2_pairs.csv", dtype={"number": str})
        saved = saved[(saved["model"] == name) & saved["animal"].isin(animals) & saved["number"].isin(numbers)]
        a2n = saved[["animal", "number", "logit_score"]]
        n2a = saved[["number", "animal", "p_no_system", "p_neutral_system", "p_subliminal"]]
        t_a2n = t_n2a = float("nan")
    else:
        model, tok, name = load(cfg)
        a2n = animal_to_numbers(model, tok, animals, numbers=numbers)
        t_a2n = time.time() - t0
        n2a = numbers_to_animals(model, tok, numbers, animals)
        t_n2a = time.time() - t0 - t_a2n
    rows = [animal_statistics(a2n, n2a, a, top_n=cfg.top_n, draws=cfg.null_draws, seed=cfg.seed)
            for a in animals]
    summary = pd.DataFrame(rows)
    summary.insert(0, "model", name)
    summary["significant"] = summary["null_p_value"] < 0.05
    d = out_dir(cfg)
    upsert_csv(summary, d / "topic_b_step2_extended.csv")
    if not cfg.from_pairs:
        pairs = n2a.merge(a2n[["animal", "number", "logit_score", "logp_animal_prompt"]], on=["animal", "number"])
        pairs.insert(0, "model", name)
        upsert_csv(pairs, d / "topic_b_step2_pairs.csv")
    plot_step2(summary, d / f"topic_b_step2_extended__{name.replace('/', '_')}.png", name)
    extra = {"seconds_animal_to_number": round(t_a2n, 1), "seconds_number_to_animal": round(t_n2a, 1),
             "n_animals": len(animals), "n_numbers": len(numbers),
             "n_significant": int(summary["significant"].sum()),
             "n_ratio_gt_2": int((summary["ratio_vs_no_system"] > 2).sum()),
             "n_ratio_vs_random_gt_2": int((summary["ratio_vs_random_mean"] > 2).sum()),
             "n_ttest_p_lt_0.05_positive": int(((summary["ttest_p"] < 0.05) & (summary["ttest_t"] > 0)).sum()),
             "n_pearson_p_lt_0.05_positive": int(((summary["pearson_p"] < 0.05) & (summary["pearson_r"] > 0)).sum())}
    if cfg.from_pairs:  # keep the full run's provenance (its wall time); record the re-analysis
        finish(cfg, "topic_b_step2_reanalysis", name, t0, extra)
    else:
        finish(cfg, "topic_b_step2_extended", name, t0, extra)
    print(summary[["animal", "best_number", "ratio_vs_no_system", "ratio_vs_random_mean", "top_n_max_ratio",
                   "null_p95", "null_p_value", "ttest_p", "pearson_r", "pearson_r_rank_among_animals"]].to_string(index=False))
    print({k: v for k, v in extra.items()})
    return summary


if __name__ == "__main__":
    cli_main(main, Config)
