"""Topic B verdicts, one record per claim and model, from plots_b/*.csv only (so a new model gets its own
records and no sentence can go stale). Specificity, multiplicity and the 087/747 ranks are
`subliminal.reporting.specificity`'s records.

Rules (documented here once): a count over animals is "reproduced" when every animal (or the seed's
share) shows the effect, "partly" when some do, "contradicts" when none does; p-values use 0.05.
"""

from __future__ import annotations

from pathlib import Path

from subliminal.reporting.render import read_b
from subliminal.reporting.seed_claims import B as SEED
from subliminal.verdicts import record

TOPIC = "B"
ALPHA = 0.05


def _share(k: int, n: int, all_at: float = 1.0) -> str:
    return "reproduced" if n and k >= all_at * n else "partly" if k else "contradicts"


def _part1(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_part1.csv")
    if d is None:
        return []
    out = []
    for model, g in d[d.string == " owl"].groupby("model", sort=False):
        piv = g.pivot_table(index="question", columns="condition", values="p")
        ratio = piv["owl_prompt"] / piv["no_system"]
        out.append(record(TOPIC, "topic_b_part1.py", "seed: an owl-loving system prompt raises P(owl)",
                          _share(int((ratio > 1).sum()), len(ratio)),
                          "P(' owl') owl prompt / no system: " + ", ".join(f"{q} ×{r:.3g}" for q, r in ratio.items()), model))
    return out


def _part2(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_part2_summary.csv")
    if d is None:
        return []
    out = []
    for model, g in d.groupby("model", sort=False):
        k = int(((g.welch_p_entangled_vs_random < ALPHA) & (g.geo_mean_ratio_entangled > g.geo_mean_ratio_random)).sum())
        out.append(record(TOPIC, "topic_b_part2.py", "seed: 'You love N' with an entangled N raises P(animal) more than "
                          "with a random N", _share(k, len(g)), f"entangled > random (Welch p < {ALPHA}) for {k} of {len(g)} "
                          "animals; geometric-mean ratios entangled vs random: " + ", ".join(
                              f"{r.animal} {r.geo_mean_ratio_entangled:.3g}× vs {r.geo_mean_ratio_random:.3g}×" for r in g.itertuples()),
                          model))
    return out


def _step2(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_step2_extended.csv")
    if d is None:
        return []
    out, script = [], "topic_b_step2_extended.py"
    for model, g in d.groupby("model", sort=False):
        n = len(g)
        gt2, gt2r = int((g.ratio_vs_no_system > 2).sum()), int((g.ratio_vs_random_mean > 2).sum())
        out.append(record(TOPIC, script, f"seed: {SEED['animals_gt_2x']}/25 animals' best number raises P(animal) > 2×",
                          "reproduced" if gt2 >= SEED["animals_gt_2x"] / 25 * n else "partly" if gt2r else "contradicts",
                          f"{gt2}/{n} > 2× vs no system prompt, {gt2r}/{n} > 2× vs the mean over all numbers", model))
        top = g.loc[g.ratio_vs_no_system.idxmax()]
        out.append(record(TOPIC, script, f"seed: ratios of 200×+ (owl {SEED['ratio_owl']}×, eagle {SEED['ratio_eagle']}×)",
                          "reproduced" if top.ratio_vs_no_system >= 100 else "contradicts",
                          f"largest best-number ratio {top.ratio_vs_no_system:.3g}× ({top.animal}); median "
                          f"{g.ratio_vs_no_system.median():.3g}×", model))
        beats = int(g.significant.sum())
        out.append(record(TOPIC, script, "entangled numbers beat random ones: the best of the top-10 beats the best-of-10 "
                          "random-number null (p < 0.05)", "reproduced" if beats >= n / 2 else "partly" if beats > 0.1 * n
                          else "contradicts", f"{beats}/{n} animals beat the null (about {0.05 * n:.1f} expected by chance)", model))
    return out


def _part3(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_part3_summary.csv")
    if d is None:
        return []
    out = []
    for model, g in d.groupby("model", sort=False):
        closer = int((g.mean_cos_entangled > g.mean_cos_all).sum())
        overlap = int((g.overlap_topcos_entangled > 0).sum())
        v = "reproduced" if closer == len(g) and overlap else "partly" if closer or overlap else "contradicts"
        out.append(record(TOPIC, "topic_b_part3.py", f"seed: the unembedding cosine partly predicts entanglement (entangled "
                          f"{SEED['cos_entangled']} vs random {SEED['cos_random']})", v,
                          f"entangled numbers closer than average for {closer}/{len(g)} animals; top-10 cosine overlaps top-10 "
                          f"entangled for {overlap}/{len(g)}", model))
        like = int((g.mean_ratio_topcos <= 1.5 * g.mean_ratio_random).sum())
        out.append(record(TOPIC, "topic_b_part3.py", "seed: top-cosine numbers do not raise P(animal) beyond other numbers",
                          _share(like, len(g)), "mean ratio top-cosine vs random numbers: " + ", ".join(
                              f"{r.animal} {r.mean_ratio_topcos:.3g}× vs {r.mean_ratio_random:.3g}×" for r in g.itertuples()), model))
    return out


def _step3(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_step3_summary.csv")
    if d is None:
        return []
    r = d.iloc[0]
    claim = f"seed: base and instruct checkpoints share the geometry (owl/087 cosine {SEED['cos_base']} vs {SEED['cos_instruct']})"
    if not bool(r.shared_tokenizer):
        return [record(TOPIC, "topic_b_step3_base_vs_instruct.py", claim, "untestable here",
                       f"no base/instruct pair offline; compared {r.model_a} vs {r.model_b} (string level only)")]
    al = d[d.animal == "ALL"]
    c = float(al.pearson_cosine_a_b.iloc[0]) if len(al) else float("nan")
    return [record(TOPIC, "topic_b_step3_base_vs_instruct.py", claim, "reproduced" if c > 0.9 else "contradicts",
                   f"Pearson of the animal–number cosines across the two checkpoints {c:.3g}")]


def _data(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_data_frequency.csv")
    if d is None:
        return []
    out, script = [], "topic_b_data_frequency.py"
    for model, g in d.groupby("model", sort=False):
        g0 = g[g.threshold == 0]
        n = len(g0)
        differ = g0[g0.js_p_value < ALPHA]
        out.append(record(TOPIC, script, "an animal-loving teacher writes different numbers than a neutral one (JS divergence "
                          "vs label permutations)", _share(len(differ), n),
                          ", ".join(f"{r.animal} p = {r.js_p_value:.2g}" for r in g0.itertuples()), model))
        tracks = g0[(g0.ttest_t > 0) & (g0.ttest_p < ALPHA)]
        out.append(record(TOPIC, script, "Zur et al.: numbers the animal teacher writes more often raise P(animal | "
                          "'You love N') (the data route finds entangled numbers)", _share(len(tracks), n),
                          "top vs bottom 10% by data-score: " + ", ".join(
                              f"{r.animal} t = {r.ttest_t:.2g}, p = {r.ttest_p:.2g}" for r in g0.itertuples()), model))
        ths = sorted(set(g.threshold) - {0})
        if ths:
            top = g[g.threshold == ths[-1]]
            left = int((top.js_p_value < ALPHA).sum())
            v = "reproduced" if not left else "partly" if left < len(differ) else "contradicts"
            kept = ", ".join(f"{t:g}: {g[g.threshold == t].n_kept_animal.sum() / max(g0.n_kept_animal.sum(), 1):.0%}" for t in ths)
            out.append(record(TOPIC, script, "owls README: threshold sampling removes the data signal",
                              v, f"JS p < {ALPHA} for {len(differ)}/{n} animals without the defence, {left}/{n} at threshold "
                              f"{ths[-1]:g}; animal-teacher samples kept per threshold {kept}", model))
    return out


def _across(root: Path) -> list[dict]:
    d = read_b(root, "topic_b_across_models.csv")
    if d is None:
        return []
    out = []
    for model, g in d.groupby("model", sort=False):
        single = float(g.single_token_numbers.iloc[0])
        out.append(record(TOPIC, "topic_b_across_models.py", "Zur et al.: entanglement is a property of single-token numbers",
                          "untestable here" if single < 0.1 else "partly",
                          f"{single:.3g} of the 1,110 numbers are single tokens ({round(single * 1110)}: the one-digit numbers)"
                          if single < 0.1 else f"{single:.3g} of the numbers are single tokens", model))
        cos = g[g.finder == "unembedding_cosine"]
        if len(cos):
            r = cos.iloc[0]
            b, n = int(r.beats_null_p95), int(r.animals)
            out.append(record(TOPIC, "topic_b_across_models.py", "the unembedding cosine, as a finder, picks numbers that beat "
                              "the best-of-10 random-number null", "reproduced" if b >= n / 2 else "partly" if b > 0.1 * n
                              else "contradicts", f"{b}/{n} animals beat the null; t-test top > bottom for {int(r.ttest_pos)}, "
                              f"top < bottom for {int(r.ttest_neg)}", model))
    out.append(record(TOPIC, "topic_b_across_models.py", "seed: mechanism split 60% co-occurrence / 30% softmax amplification "
                      "/ 10% geometry", "untestable here", "these measurements cannot apportion mechanisms"))
    return out


def verdicts(root: Path) -> list[dict]:
    root = Path(root)
    return [r for f in (_part1, _part2, _part3, _step2, _step3, _data, _across) for r in f(root)]
