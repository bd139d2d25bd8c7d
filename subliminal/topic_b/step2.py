"""Topic B step 2 (Zur et al. 2025, Sec. 4, extended to 25 animals): its config and its run, for the script
``topic_b_step2_extended.py`` and for ``topic_b_across_models.py`` (which runs it for a model it lacks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from subliminal.cli import UserError
from subliminal.devices import seed_everything
from subliminal.results import OutputSet, prepare_out
from subliminal.topic_b.entanglement import animal_statistics, animal_to_numbers, numbers_to_animals
from subliminal.topic_b.multiplicity import ADDED_COLUMNS, add_within_model_q
from subliminal.topic_b.plots import plot_step2
from subliminal.topic_b.prompts import ANIMALS
from subliminal.topic_b.scoring import ALL_NUMBERS
from subliminal.topic_b.script_setup import (
    MAX_DRAWS,
    MAX_SEED,
    QUICK_OUT,
    LMConfig,
    check_range,
    load,
    write_provenance,
)
from subliminal.topic_b.specificity import NUMBERS_CSV, SPEC_CSV
from subliminal.topic_b.specificity import outputs as specificity_outputs
from subliminal.topic_b.tables import check_upsertable, read_table, set_columns, slug, upsert

STEP2_CSV, PAIRS_CSV = "topic_b_step2_extended.csv", "topic_b_step2_pairs.csv"


@dataclass
class Step2Config(LMConfig):
    n_animals: int = field(default=25, metadata={"help": "first n of the fixed 25-animal list"})
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits (3: all 1,110)"})
    top_n: int = field(default=10, metadata={"help": "entangled numbers per animal for the best-of-n null"})
    null_draws: int = field(default=10_000, metadata={"help": "permutation-null draws (also of the specificity test)"})
    seed: int = field(default=0, metadata={"help": "seed of the permutation nulls"})
    from_pairs: bool = field(default=False, metadata={"help": "recompute the added statistics from the saved "
                                                       "topic_b_step2_pairs.csv (no model run)"})

    @classmethod
    def quick(cls) -> Step2Config:
        return cls(out=QUICK_OUT, n_animals=4, max_digits=2, top_n=5, null_draws=2000)

    def validate(self) -> None:
        super().validate()
        check_range(self.n_animals, 1, len(ANIMALS), "--n-animals")
        check_range(self.max_digits, 1, 3, "--max-digits")
        check_range(self.top_n, 1, sum(len(n) <= self.max_digits for n in ALL_NUMBERS), "--top-n")
        check_range(self.null_draws, 1, MAX_DRAWS, "--null-draws")
        check_range(self.seed, 0, MAX_SEED, "--seed")


def saved_pairs(cfg: Step2Config, animals, numbers) -> pd.DataFrame:
    path = prepare_out(cfg.out) / PAIRS_CSV
    if not path.exists():
        raise UserError(f"no saved pairs at {path}; run step 2 without --from-pairs first")
    saved = read_table(path, required=("model", "animal", "number", "logit_score", "p_subliminal"))
    pairs = saved[(saved["model"] == cfg.model) & saved["animal"].isin(animals) & saved["number"].isin(numbers)]
    if len(pairs) != len(animals) * len(numbers):
        raise UserError(f"{path} holds {len(pairs)} of the {len(animals) * len(numbers)} pairs of {cfg.model} for "
                        "these flags; give the flags of the saved run or rerun it without --from-pairs")
    return pairs


def run_step2(cfg: Step2Config) -> pd.DataFrame:
    """Step 2 end to end (or its statistics from the saved pairs): writes the CSVs, figure and provenance."""
    t0 = time.time()
    prepare_out(cfg.out)
    check_upsertable(cfg.out, (STEP2_CSV, PAIRS_CSV, SPEC_CSV, NUMBERS_CSV))
    seed_everything(cfg.seed)
    animals = [a for a, _ in ANIMALS[: cfg.n_animals]]
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    if cfg.from_pairs:
        name, pairs = cfg.model, saved_pairs(cfg, animals, numbers)
        a2n = pairs[["animal", "number", "logit_score"]]
        n2a = pairs[["number", "animal", "p_no_system", "p_neutral_system", "p_subliminal"]]
        t_a2n = t_n2a = float("nan")
    else:
        model, tok, name = load(cfg, animals)
        a2n = animal_to_numbers(model, tok, animals, numbers=numbers)
        t_a2n = time.time() - t0
        n2a = numbers_to_animals(model, tok, numbers, animals)
        t_n2a = time.time() - t0 - t_a2n
        pairs = n2a.merge(a2n[["animal", "number", "logit_score", "logp_animal_prompt"]], on=["animal", "number"])
        pairs.insert(0, "model", name)
    rows = [animal_statistics(a2n, n2a, a, top_n=cfg.top_n, draws=cfg.null_draws, seed=cfg.seed)
            for a in animals]
    summary = pd.DataFrame(rows)
    summary.insert(0, "model", name)
    summary["significant"] = summary["null_p_value"] < 0.05
    summary = add_within_model_q(summary)
    summary = summary[[c for c in summary.columns if c not in ADDED_COLUMNS] + list(ADDED_COLUMNS)]  # added last
    spec = specificity_outputs(pairs, name, top_k=cfg.top_n, n_perm=cfg.null_draws, seed=cfg.seed)
    with OutputSet(cfg.out) as o:
        # from the saved pairs (6 significant digits) only the added columns are recomputed; the full
        # run's columns and figure stay as that run wrote them
        kept = cfg.from_pairs and set_columns(summary, o.final(STEP2_CSV), ["model", "animal"],
                                                   list(ADDED_COLUMNS), write_to=o.path(STEP2_CSV))
        if not kept:
            upsert(summary, o.final(STEP2_CSV), write_to=o.path(STEP2_CSV))
            plot_step2(summary, o.path(f"topic_b_step2_extended__{slug(name)}.png"), name)
        if not cfg.from_pairs:
            upsert(pairs, o.final(PAIRS_CSV), write_to=o.path(PAIRS_CSV))
        for f, df in spec.items():
            upsert(df, o.final(f), write_to=o.path(f))
        verdicts = spec.get(SPEC_CSV, pd.DataFrame(columns=["variant", "verdict"]))
        extra = {"seconds_animal_to_number": round(t_a2n, 1), "seconds_number_to_animal": round(t_n2a, 1),
                 "n_animals": len(animals), "n_numbers": len(numbers),
                 "n_significant": int(summary["significant"].sum()),
                 "n_ratio_gt_2": int((summary["ratio_vs_no_system"] > 2).sum()),
                 "n_ratio_vs_random_gt_2": int((summary["ratio_vs_random_mean"] > 2).sum()),
                 "n_ttest_p_lt_0.05_positive": int(((summary["ttest_p"] < 0.05) & (summary["ttest_t"] > 0)).sum()),
                 "n_pearson_p_lt_0.05_positive": int(((summary["pearson_p"] < 0.05) & (summary["pearson_r"] > 0)).sum()),
                 "n_exact_p_lt_0.05": int((summary["null_p_exact"] < 0.05).sum()),
                 "n_exact_q_lt_0.05": int((summary["null_p_exact_q"] < 0.05).sum()),
                 "specificity": dict(zip(verdicts["variant"], verdicts["verdict"]))}
        # --from-pairs keeps the full run's provenance (its wall time) and records the re-analysis
        write_provenance(o, cfg, "topic_b_step2_reanalysis" if cfg.from_pairs else "topic_b_step2_extended",
                         name, t0, extra)
    print(summary[["animal", "best_number", "ratio_vs_no_system", "ratio_vs_random_mean", "top_n_max_ratio",
                   "null_p95", "null_p_value", "null_p_exact", "ttest_p", "pearson_r",
                   "pearson_r_rank_among_animals"]].to_string(index=False))
    print(extra)
    return summary
