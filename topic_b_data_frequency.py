"""Topic B extension: the data-frequency entanglement finder and the threshold-sampling defence.

Zur et al. 2025 find entangled numbers three ways; steps 1-3 use the logit-score and the unembedding.
This is the third, the data route of subliminal learning itself: sample number-sequence completions
(the seed's sequence task, prefill '495;701;688;') from an animal-loving teacher and a neutral teacher
(no system prompt) at temperature 1, keep valid lists (Cloud et al.'s filter: <= 10 numbers of <= 3
digits, ',' ';' or space separators), and score every number t by
data-score(t, animal) = f(t | animal teacher) / f(t | neutral teacher) (add-alpha smoothing over the
1,110 strings). The data-score ranking is compared with the logit-score and unembedding-cosine
rankings (Spearman, top-10 overlap) and run through the same statistics as step 2 (best number's
subliminal ratio, best-of-n permutation null, t-test top vs bottom 10%, Pearson), using step 2's
saved P(animal | 'You love N') when plots_b/topic_b_step2_pairs.csv has them.
Defence (owls README): drop every sample with a number token whose probability under the neutral
model in that sample's context is below a threshold (refilter of the same samples, applied to both
teachers' data), and report how the data-frequency signal and the best number's ratio change.

    python topic_b_data_frequency.py                    # Qwen2.5-Coder-0.5B, 4 paper animals x 2,000 samples (see docs/topic_b_extensions.md for cost)
    python topic_b_data_frequency.py --model smollm2-135m-instruct   # SmolLM2: only ~2.5% of its samples are valid lists
    python topic_b_data_frequency.py --animals owl --n-samples 500 --batch-size 32 --thresholds 0.01 0.05 0.1
    python topic_b_data_frequency.py --constrain        # sample only digit/separator tokens (valid lists from small models)
    python topic_b_data_frequency.py --quick            # owl, 40 samples per teacher, into plots_b/quick

Shards (one JSONL per batch, resumable: a rerun continues) go to --data-dir (default out/topic_b_data).
Writes plots_b/topic_b_data_frequency.csv (model x animal x threshold), topic_b_data_frequency_scores.csv
(model x animal x number, no defence), a PNG and a provenance JSON.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.cli import UserError, cli_main
from subliminal.devices import seed_everything
from subliminal.results import OutputSet, prepare_out, save_figure
from subliminal.topic_b import numbers as number_lists
from subliminal.topic_b import sampling, threshold_defence
from subliminal.topic_b.entanglement import animal_statistics, animal_to_numbers, numbers_to_animals
from subliminal.topic_b.geometry import pair_table
from subliminal.topic_b.prompts import PAPER_ANIMALS
from subliminal.topic_b.scoring import ALL_NUMBERS
from subliminal.topic_b.script_setup import (
    MAX_DRAWS,
    MAX_SEED,
    QUICK_OUT,
    LMConfig,
    check_animals,
    check_range,
    load,
    write_provenance,
)
from subliminal.topic_b.tables import check_upsertable, read_table, slug, upsert

PAIRS_COLUMNS = ("model", "animal", "number", "logit_score", "p_no_system", "p_neutral_system", "p_subliminal")
STAT_COLS = ["best_number", "p_subliminal", "ratio_vs_no_system", "ratio_vs_random_mean", "top_n_max_ratio",
             "null_p95", "null_p_value", "ttest_t", "ttest_p", "pearson_r", "pearson_p"]


@dataclass
class Config(LMConfig):
    # SmolLM2-135M (the other scripts' default) writes a valid list in ~2.5% of samples at temperature 1,
    # Qwen2.5-Coder-0.5B in ~65%: the data route needs a model that follows the task
    model: str = field(default="qwen2.5-coder-0.5b-instruct", metadata={"help": "asset name, HF id, dir or .gguf"})
    animals: tuple[str, ...] = field(default=PAPER_ANIMALS, metadata={"help": "animal teachers (singular)"})
    n_samples: int = field(default=2000, metadata={"help": "completions per teacher"})
    batch_size: int = field(default=64, metadata={"help": "completions per batch (= per shard); 64 samples ~20% faster per token than 32 on 2 cores"})
    thresholds: tuple[float, ...] = field(default=(0.01, 0.05, 0.1),
                                          metadata={"help": "defence thresholds on neutral token probability"})
    max_new_tokens: int = field(default=48, metadata={"help": "sampling budget per completion"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    constrain: bool = field(default=False, metadata={"help": "sample only digit/separator/end tokens"})
    alpha: float = field(default=1.0, metadata={"help": "add-alpha smoothing of number frequencies"})
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits in the statistics"})
    top_n: int = field(default=10, metadata={"help": "top numbers for the best-of-n null and the overlaps"})
    null_draws: int = field(default=10_000, metadata={"help": "permutation-null draws (best-of-n)"})
    js_draws: int = field(default=1000, metadata={"help": "label permutations for the JS divergence's null"})
    seed: int = field(default=0, metadata={"help": "sampling seed and null seed"})
    data_dir: str = field(default="out/topic_b_data", metadata={"help": "where the JSONL shards go"})
    pairs_csv: str = field(default="plots_b/topic_b_step2_pairs.csv",
                           metadata={"help": "step 2 pairs to reuse ('' = always compute)"})

    @classmethod
    def quick(cls) -> Config:
        return cls(out=QUICK_OUT, animals=("owl",), n_samples=40, batch_size=20, max_new_tokens=40,
                   null_draws=2000, top_n=10)

    def validate(self) -> None:
        super().validate()
        check_animals(self.animals)
        check_range(self.n_samples, 1, 1_000_000, "--n-samples")
        check_range(self.batch_size, 1, 4096, "--batch-size")
        check_range(self.seed, 0, MAX_SEED, "--seed")
        if any(not 0 < t < 1 for t in self.thresholds):
            raise UserError("--thresholds must be probabilities in (0, 1)")
        if not (self.temperature > 0 and self.alpha > 0):
            raise UserError("--temperature and --alpha must be > 0")
        check_range(self.max_new_tokens, 1, 4096, "--max-new-tokens")
        check_range(self.max_digits, 1, 3, "--max-digits")
        check_range(self.top_n, 1, sum(len(n) <= self.max_digits for n in ALL_NUMBERS), "--top-n")
        check_range(self.null_draws, 1, MAX_DRAWS, "--null-draws")
        check_range(self.js_draws, 1, MAX_DRAWS, "--js-draws")


def logit_finder(cfg: Config, model, tok, name: str, animal: str, numbers: tuple[str, ...]):
    """(a2n, n2a) for one animal: from step 2's pairs CSV when it has them, else computed."""
    p = Path(cfg.pairs_csv) if cfg.pairs_csv else None
    if p is not None and p.exists():
        s = read_table(p, PAIRS_COLUMNS)
        s = s[(s["model"] == name) & (s["animal"] == animal) & s["number"].isin(numbers)]
        if len(s) == len(numbers):
            return (s[["animal", "number", "logit_score"]].reset_index(drop=True),
                    s[["number", "animal", "p_no_system", "p_neutral_system", "p_subliminal"]].reset_index(drop=True),
                    "step2_pairs_csv")
    a2n = animal_to_numbers(model, tok, [animal], numbers=numbers, progress=False)
    n2a = numbers_to_animals(model, tok, numbers, [animal], progress=False)
    return a2n[["animal", "number", "logit_score"]], n2a, "computed"


def analyse(cfg: Config, name: str, animal: str, counts_a, counts_n, a2n, n2a, cos, numbers) -> dict:
    """Data-score ranking vs the other finders, and step 2's statistics with the data-score as finder."""
    idx = [number_lists.NUMBER_INDEX[n] for n in numbers]
    ds = number_lists.data_scores(counts_a, counts_n, cfg.alpha)[idx]
    logit = a2n.set_index("number").loc[list(numbers), "logit_score"].to_numpy()
    cmp_l = number_lists.compare_rankings(ds, logit, cfg.top_n, seed=cfg.seed)
    cmp_c = number_lists.compare_rankings(ds, cos, cfg.top_n, seed=cfg.seed)
    # rows in random order: animal_statistics ranks with a stable sort, so ties (most numbers when the
    # data are sparse) are broken at random instead of by list order ('0'..'9' first)
    perm = np.random.default_rng(cfg.seed).permutation(len(numbers))
    finder = pd.DataFrame({"animal": animal, "number": np.array(numbers)[perm], "logit_score": ds[perm]})
    st = animal_statistics(finder, n2a, animal, top_n=cfg.top_n, draws=cfg.null_draws, seed=cfg.seed)
    lbest = numbers[int(np.argmax(logit))]
    return {"js_divergence": number_lists.js_divergence(counts_a, counts_n, cfg.alpha),
            "n_distinct_data_scores": int(len(np.unique(np.round(ds, 9)))),
            "spearman_data_vs_logit": cmp_l["spearman"], "spearman_data_vs_logit_p": cmp_l["spearman_p"],
            "top_overlap_data_logit": cmp_l["top_k_overlap"],
            "spearman_data_vs_cosine": cmp_c["spearman"], "top_overlap_data_cosine": cmp_c["top_k_overlap"],
            "logit_best_number": lbest, "logit_best_log_data_score": float(ds[numbers.index(lbest)]),
            "max_log_data_score": float(ds.max()),
            **{k: st[k] for k in STAT_COLS}}


def plot(rows: pd.DataFrame, scores: pd.DataFrame, path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for a, d in scores.groupby("animal", sort=False):
        axes[0].scatter(d["logit_score"], d["log_data_score"], s=4, alpha=0.4, label=a)
    axes[0].set_xlabel("logit-score (log P(n | animal) - log P(n | no system))")
    axes[0].set_ylabel("log data-score (no defence)")
    axes[0].legend(fontsize=7)
    for a, d in rows.groupby("animal", sort=False):
        d = d.sort_values("threshold")
        axes[1].plot(d["threshold"], d["n_kept_animal"] / d["n_samples_animal"], marker="o", label=f"{a}: kept")
        axes[2].plot(d["threshold"], d["js_divergence"], marker="o", label=f"{a}: JS(animal, neutral)")
        axes[2].plot(d["threshold"], d["ratio_vs_no_system"], marker="x", ls="--", label=f"{a}: best-number ratio")
    axes[1].set_xlabel("defence threshold (0 = none)")
    axes[1].set_ylabel("fraction of animal-teacher samples kept")
    axes[2].set_xlabel("defence threshold (0 = none)")
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"Data-frequency finder and threshold defence, {model}")
    save_figure(fig, path, dpi=110)


def main(cfg: Config) -> pd.DataFrame:
    t0 = time.time()
    prepare_out(cfg.out)
    check_upsertable(cfg.out, ("topic_b_data_frequency.csv", "topic_b_data_frequency_scores.csv"), ("model", "animal"))
    if cfg.pairs_csv and Path(cfg.pairs_csv).exists():
        read_table(cfg.pairs_csv, PAIRS_COLUMNS)  # a malformed step-2 table: one line now, not after sampling
    seed_everything(cfg.seed)
    model, tok, name = load(cfg, cfg.animals)
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    root = Path(cfg.data_dir)
    gen = {"batch_size": cfg.batch_size, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
           "seed": cfg.seed, "constrain": cfg.constrain}
    neutral = sampling.Teacher("neutral", None)
    neutral_prompt = sampling.teacher_prompt(tok, neutral)
    timing = {"new_tokens": 0, "sampling_seconds": 0.0, "n_new_shards": 0, "n_reused_shards": 0}

    def teacher_data(teacher):
        recs, st = sampling.generate_shards(model, tok, name, teacher, cfg.n_samples, root, **gen)
        for k in ("new_tokens", "n_new_shards", "n_reused_shards"):
            timing[k] += st[k]
        timing["sampling_seconds"] += st["seconds"]
        table = threshold_defence.records_table(recs)
        valid = table["valid"].to_numpy()
        minlp = np.full(len(recs), np.inf)
        vrecs = [r for r, v in zip(recs, valid) if v]
        if vrecs:  # the defence only ever looks at valid samples
            minlp[valid] = threshold_defence.neutral_min_logps(model, tok, vrecs, neutral_prompt, batch_size=cfg.batch_size,
                                                cache_dir=Path(st["dir"]))
        return table, minlp

    neutral_table, neutral_minlp = teacher_data(neutral)
    rows, score_frames, reasons = [], [], {}
    for animal in cfg.animals:
        table, minlp = teacher_data(sampling.animal_teacher(animal))
        reasons[animal] = table["reject_reason"].value_counts().to_dict()
        a2n, n2a, source = logit_finder(cfg, model, tok, name, animal, numbers)
        cos = pair_table(model, tok, [animal], numbers).set_index("number").loc[list(numbers), "cosine"].to_numpy()
        for thr in (0.0, *cfg.thresholds):
            keep_a = table["valid"].to_numpy() & threshold_defence.threshold_keep(minlp, thr)
            keep_n = neutral_table["valid"].to_numpy() & threshold_defence.threshold_keep(neutral_minlp, thr)
            ca = number_lists.count_numbers(table["numbers"][keep_a])
            cn = number_lists.count_numbers(neutral_table["numbers"][keep_n])
            row = {"model": name, "animal": animal, "threshold": thr, "n_samples_animal": len(table),
                   "n_valid_animal": int(table["valid"].sum()), "n_kept_animal": int(keep_a.sum()),
                   "n_samples_neutral": len(neutral_table), "n_valid_neutral": int(neutral_table["valid"].sum()),
                   "n_kept_neutral": int(keep_n.sum()), "n_numbers_animal": int(ca.sum()),
                   "n_numbers_neutral": int(cn.sum()), "logit_source": source,
                   **analyse(cfg, name, animal, ca, cn, a2n, n2a, cos, numbers),
                   **number_lists.js_permutation_null(table["numbers"][keep_a], neutral_table["numbers"][keep_n], cfg.alpha,
                                            draws=cfg.js_draws, seed=cfg.seed)}
            rows.append(row)
            if thr == 0.0:
                idx = [number_lists.NUMBER_INDEX[n] for n in numbers]
                score_frames.append(pd.DataFrame({
                    "model": name, "animal": animal, "number": list(numbers), "count_animal": ca[idx],
                    "count_neutral": cn[idx], "log_data_score": number_lists.data_scores(ca, cn, cfg.alpha)[idx],
                    "logit_score": a2n.set_index("number").loc[list(numbers), "logit_score"].to_numpy(),
                    "cosine": cos}))
    summary = pd.DataFrame(rows)
    scores = pd.concat(score_frames, ignore_index=True)
    tps = timing["new_tokens"] / timing["sampling_seconds"] if timing["sampling_seconds"] > 0 else float("nan")
    extra = {**timing, "sampling_tokens_per_second": round(tps, 2),
             "valid_fraction_neutral": float(neutral_table["valid"].mean()),
             "reject_reasons_neutral": neutral_table["reject_reason"].value_counts().to_dict(),
             "reject_reasons_animal": reasons}
    with OutputSet(cfg.out) as o:
        for df, f in ((summary, "topic_b_data_frequency.csv"), (scores, "topic_b_data_frequency_scores.csv")):
            upsert(df, o.final(f), ("model", "animal"), write_to=o.path(f))
        plot(summary, scores, o.path(f"topic_b_data_frequency__{slug(name)}.png"), name)
        write_provenance(o, cfg, "topic_b_data_frequency", name, t0, extra)
    print(summary[["animal", "threshold", "n_valid_animal", "n_kept_animal", "n_kept_neutral", "js_divergence",
                   "js_p_value", "spearman_data_vs_logit", "top_overlap_data_logit", "best_number", "ratio_vs_no_system",
                   "null_p_value", "ttest_p", "pearson_r"]].to_string(index=False))
    print({k: v for k, v in extra.items() if not k.startswith("reject")})
    return summary


if __name__ == "__main__":
    cli_main(main, Config)
