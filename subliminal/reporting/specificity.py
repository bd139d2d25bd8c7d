"""Topic B specificity, multiplicity and the 087/747 ranks: README tables and verdict records, read from
plots_b/topic_b_specificity.csv, topic_b_specificity_numbers.csv and topic_b_multiplicity.csv only
(statistics are computed by topic_b_step2_extended.py / topic_b_across_models.py, never here).

``tables(root)`` -> {"b_specificity", "b_multiplicity", "b_087_747"}: markdown.
``verdicts(root)`` -> records (``subliminal.verdicts.record``), one per claim and model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from subliminal.reporting.render import table
from subliminal.verdicts import record

ROOT = Path(__file__).resolve().parents[2]
TOPIC, ALPHA = "B", 0.05
STEP2, ACROSS = "topic_b_step2_extended.py", "topic_b_across_models.py"
CMD = "python topic_b_across_models.py --from-csv"
LLAMA = "meta-llama/Llama-3.2-1B-Instruct"
_STR = {"number": str, "top_number_by_logit_score": str, "top_number_by_p_animal": str}


def _read(root: Path, name: str) -> pd.DataFrame | None:
    p = Path(root) / "plots_b" / name
    return pd.read_csv(p, dtype=_STR) if p.exists() else None


def _missing(name: str) -> str:
    return f"_Not run yet: `{CMD}` writes plots_b/{name} (from step 2's CSVs, no model needed)._"


def specificity_table(root: Path) -> str:
    s = _read(root, "topic_b_specificity.csv")
    if s is None:
        return _missing("topic_b_specificity.csv")
    cols = ["model", "variant", "mean_own_r", "mean_other_r", "null_r_p95", "p_own_r", "mean_own_rank", "null_rank_p05",
            "p_own_rank", "animals_own_rank_1", "effect_ratio", "effect_ci95_low", "effect_ci95_high", "p_effect",
            "verdict"]
    return ("Over the 25 × 25 matrix corr(log P(animal a | 'You love n'), logit-score of animal b) across all 1,110 "
            "numbers: `mean_own_r` = mean of the diagonal (each animal's own score), `mean_other_r` = mean off the "
            "diagonal, `mean_own_rank` = mean rank (1-25) of the own score in its row. Null: "
            f"{int(s['n_perm'].iloc[0]):,} random permutations of the animal labels (they keep every number's digit "
            "structure); `null_r_p95` / `null_rank_p05` are its 95th / 5th percentiles. `generic_removed`: each "
            "number's mean over animals subtracted on both sides first. Effect in probability units: P(animal) after "
            "the animal's own top-10 numbers vs after the other animals' top-10 numbers (ratio of geometric means, "
            "averaged over animals; 95% interval by inverting the permutation test).\n\n" + table(s[cols]))


def multiplicity_table(root: Path) -> str:
    m = _read(root, "topic_b_multiplicity.csv")
    if m is None:
        return _missing("topic_b_multiplicity.csv")
    cols = ["model", "finder", "test", "animals", "p_lt_alpha", "bh_within_model", "bh_all_models",
            "expected_false_uncorrected"]
    m = m[[c for c in cols if c in m.columns]]
    return ("Animals with p < 0.05, per finder of a model's best numbers (`logit`: the logit-score of step 2; "
            "`unembedding_cosine`: the cosine of number and animal unembeddings; `data_frequency`: how often the "
            "animal teacher writes the number): uncorrected, after Benjamini-Hochberg over the model's 25 "
            "animals, and after BH over all models' animals together (within a finder). A test a finder's CSV "
            "has no p-values for is left out. `best_of_n_max_exact`: the best-of-10 null in "
            "closed form, 1 − C(N − r, 10) / C(N, 10) with r of the N = 1,110 ratios at least the observed one (its "
            "smallest possible p is 10/1,110 ≈ 0.009); `top_n_mean`: the mean of the top 10 instead of their max, "
            "against means of 10 random numbers. The t-test and Pearson p-values treat the 1,110 numbers as "
            "independent, which they are not (shared digits); counts in both directions well above "
            "`expected_false_uncorrected` show they are not calibrated, and BH does not fix that. The calibrated "
            "test of animal-specific entanglement is the label-permutation test above.\n\n" + table(m))


def numbers_table(root: Path) -> str:
    r = _read(root, "topic_b_specificity_numbers.csv")
    if r is None:
        return _missing("topic_b_specificity_numbers.csv")
    return ("The seed's pairs (Llama-3.2-1B: owl ↔ 087, eagle ↔ 747) on our models: rank (1 = highest) among the "
            "1,110 numbers by the animal prompt's logit-score and by P(animal | 'You love n'), and the animal's top "
            "number by each.\n\n" + table(r))


def tables(root: Path | str = ROOT) -> dict[str, str]:
    root = Path(root)
    return {"b_specificity": specificity_table(root), "b_multiplicity": multiplicity_table(root),
            "b_087_747": numbers_table(root)}


def _effect(r) -> str:
    return (f"{r.variant}: own r {r.mean_own_r:.3g} vs others {r.mean_other_r:.3g} (null p95 {r.null_r_p95:.3g}), "
            f"p = {r.p_own_r:.2g}; own rank {r.mean_own_rank:.3g}/{r.n_animals}; top-{r.top_k} effect "
            f"×{r.effect_ratio:.3f} [{r.effect_ci95_low:.3f}, {r.effect_ci95_high:.3f}] → {r.verdict}")


def _specificity(root: Path) -> list[dict]:
    s = _read(root, "topic_b_specificity.csv")
    if s is None:
        return []
    m = _logit(_read(root, "topic_b_multiplicity.csv"))
    seen = set() if m is None else set(m[(m.test == "best_of_n_max_exact") & (m.bh_within_model > 0)].model)
    out = []
    for model, g in s.groupby("model", sort=False):
        hits = int((g.p_own_r < ALPHA).sum())
        verdict = "reproduced" if hits == len(g) else "partly" if hits else "contradicts"
        evidence = "; ".join(_effect(r) for r in g.itertuples())
        out.append(record(TOPIC, STEP2, "ours: number → animal entanglement is animal-specific (each animal's own "
                          "logit-score predicts its own P(animal | 'You love n') better than the other animals' "
                          "scores; label-permutation test over all numbers)", verdict, evidence, model))
        raw = g[g.variant == "raw"].iloc[0] if (g.variant == "raw").any() else g.iloc[0]
        # size, as the seed means it: an animal's own entangled numbers raise its probability at least 2x
        big = int((g.effect_ci95_low >= 2).sum())
        out.append(record(TOPIC, STEP2, "seed-sized specific effect: an animal's own top-10 numbers raise P(animal) "
                          "≥ 2× over the other animals' top-10 (lower CI bound)",
                          "reproduced" if big == len(g) else "partly" if big else "contradicts",
                          "; ".join(f"{r.variant}: ×{r.effect_ratio:.3f} [{r.effect_ci95_low:.3f}, "
                                    f"{r.effect_ci95_high:.3f}]" for r in g.itertuples()), model))
        if model in seen:  # the best-of-10 null itself finds animals here: the earlier reading never said "none"
            continue
        out.append(record(TOPIC, ACROSS, "this repo's earlier reading: no entanglement beyond chance (best-of-10 null)",
                          "contradicts" if raw.p_own_r < ALPHA else "reproduced",
                          f"the best-of-10 null cannot see it; over all numbers: {_effect(raw)}", model))
    return out


def _logit(m):
    """The logit-score finder's rows (the verdicts are about step 2 itself); older CSVs hold only those."""
    return m if m is None or "finder" not in m.columns else m[m.finder == "logit"]


def _multiplicity(root: Path) -> list[dict]:
    m = _logit(_read(root, "topic_b_multiplicity.csv"))
    if m is None:
        return []
    out = []
    for model, g in m[m.model != "all models"].groupby("model", sort=False):
        t = g.set_index("test")
        if "best_of_n_max_exact" in t.index:
            e, mc = t.loc["best_of_n_max_exact"], t.loc["best_of_n_max_monte_carlo"]
            raw, bh = int(e.p_lt_alpha), int(e.bh_within_model)
            verdict = "reproduced" if bh == raw else "partly" if bh else "contradicts"
            tm = t.loc["top_n_mean"] if "top_n_mean" in t.index else None
            mean = ("" if tm is None else f"; mean of the top 10 vs its null: {int(tm.p_lt_alpha)} uncorrected, "
                    f"{int(tm.bh_within_model)} after BH within the model, {int(tm.bh_all_models)} over all models")
            out.append(record(TOPIC, ACROSS, "step 2: the count of animals beating the best-of-10 null survives "
                              "multiple-testing correction", verdict,
                              f"p < 0.05 for {int(mc.p_lt_alpha)}/{int(e.animals)} (Monte Carlo), {raw} (exact); after "
                              f"BH within the model {bh}, over all models {int(e.bh_all_models)}{mean}", model))
        if {"ttest_positive", "ttest_negative"} <= set(t.index):
            pos, neg = t.loc["ttest_positive"], t.loc["ttest_negative"]
            exp = float(pos.expected_false_uncorrected)
            both = int(pos.p_lt_alpha) > exp and int(neg.p_lt_alpha) > exp
            out.append(record(TOPIC, ACROSS, "step 2: per-animal t-test sign counts (top vs bottom 10%) measure entanglement",
                              "partly" if both else "reproduced",
                              f"{int(pos.p_lt_alpha)} positive and {int(neg.p_lt_alpha)} negative at p < 0.05 (about "
                              f"{exp:.2g} each expected if calibrated); after BH {int(pos.bh_within_model)} / "
                              f"{int(neg.bh_within_model)}: the p-values treat the numbers as independent", model))
    return out


def _pairs(root: Path) -> list[dict]:
    r = _read(root, "topic_b_specificity_numbers.csv")
    out = []
    for model, g in ([] if r is None else r.groupby("model", sort=False)):
        ranks = list(g.rank_by_logit_score) + list(g.rank_by_p_animal)
        top = sum(x <= 10 for x in ranks)
        verdict = "reproduced" if top == len(ranks) else "partly" if top else "contradicts"
        ev = "; ".join(f"{x.animal}/{x.number}: rank {x.rank_by_logit_score} by logit-score, {x.rank_by_p_animal} by "
                       f"P({x.animal} | n) of {x.n_numbers}" for x in g.itertuples())
        out.append(record(TOPIC, STEP2, "seed: 087 is owl's entangled number and 747 eagle's", verdict, ev, model))
    out.append(record(TOPIC, STEP2, "seed: 087 is owl's entangled number and 747 eagle's", "untestable here",
                      "needs the Llama-3.2-1B weights (not on the package registry); the single-token-number path "
                      "is tested offline on a tiny random Llama with the real Llama-3 tokenizer", LLAMA))
    return out


def verdicts(root: Path | str = ROOT) -> list[dict]:
    root = Path(root)
    return _specificity(root) + _multiplicity(root) + _pairs(root)


if __name__ == "__main__":
    for k, v in tables().items():
        print(f"## {k}\n\n{v}\n")
    for v in verdicts():
        print(v)
