"""Topic B extension: step 2's 25-animal analysis across models, one table for all finders.

For each of --models: the step-2 rows from plots_b/topic_b_step2_extended.csv when that model is
there, else step 2 is run (``topic_b_step2_extended.main``, full size: ~8 min for SmolLM2, longer for
the 0.5B Qwen). Finders: logit-score (step 2 itself); unembedding cosine (same statistics with the
cosine as the ranking, from step 2's saved P(animal | 'You love N'); needs the model's weights);
data-frequency (rows of plots_b/topic_b_data_frequency.csv without defence, when that script has run
for the model). Per model x finder: animals beating the best-of-n null, positive/negative t-tests and
Pearson correlations, median best-number ratio vs no system and vs the mean over all numbers (the
random-number null); plus the model's size and the fraction of the 1,110 numbers that are one token.
Added: the exact best-of-n count, the mean-of-top-n count, and every count after Benjamini-Hochberg
within the model (columns ``*_bh``); topic_b_multiplicity.csv (every finder: per model and over all
models, counts uncorrected / BH within the model / BH over all models; the cosine finder's per-animal
rows are kept in topic_b_step2_cosine.csv so --from-csv can count them); topic_b_specificity.csv (the
animal-label permutation test of subliminal.topic_b.specificity, from the saved pairs CSV) and
topic_b_specificity_numbers.csv (ranks of 087 for owl and 747 for eagle).

    python topic_b_across_models.py                     # smollm2, qwen2.5-coder-0.5b-instruct, gemma-3-270m
    python topic_b_across_models.py --models smollm2-135m-instruct --no-run-missing   # tables from CSVs only
    python topic_b_across_models.py --from-csv           # specificity + multiplicity only, from the CSVs (~1 min)
    python topic_b_across_models.py --quick              # 4 animals x 110 numbers, into plots_b/quick

Writes plots_b/topic_b_across_models.csv, a PNG and a provenance JSON (--from-csv: only the
specificity and multiplicity CSVs and topic_b_specificity__all.json).
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
from subliminal.devices import get_device, seed_everything
from subliminal.results import OutputSet, prepare_out, save_figure, write_csv
from subliminal.topic_b.entanglement import animal_statistics
from subliminal.topic_b.geometry import pair_table
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.multiplicity import TESTS, count, multiplicity_table
from subliminal.topic_b.prompts import ANIMALS
from subliminal.topic_b.scoring import ALL_NUMBERS, encode
from subliminal.topic_b.script_setup import MAX_DRAWS, MAX_SEED, QUICK_OUT, check_range, write_provenance
from subliminal.topic_b.specificity import NUMBERS_CSV, SPEC_CSV
from subliminal.topic_b.specificity import outputs as specificity_outputs
from subliminal.topic_b.step2 import Step2Config, run_step2
from subliminal.topic_b.tables import check_upsertable, read_table, upsert

DEFAULT_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m")


@dataclass
class Config:
    models: tuple[str, ...] = field(default=DEFAULT_MODELS, metadata={"help": "models (asset names, dirs, HF ids)"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu or cuda"})
    out: str = field(default="plots_b", metadata={"help": "output directory (step 2 CSVs are read from here)"})
    n_animals: int = field(default=25, metadata={"help": "first n of the fixed 25-animal list"})
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits (3: all 1,110)"})
    top_n: int = field(default=10, metadata={"help": "top numbers for the best-of-n null"})
    null_draws: int = field(default=10_000, metadata={"help": "permutation-null draws"})
    seed: int = field(default=0, metadata={"help": "seed of the permutation null"})
    run_missing: bool = field(default=True, metadata={"help": "run step 2 for models without results"})
    unembedding: bool = field(default=True, metadata={"help": "add the unembedding-cosine finder (loads each model)"})
    from_csv: bool = field(default=False, metadata={"help": "only recompute the specificity and multiplicity CSVs "
                                                     "from the saved step-2 CSVs (no model is loaded)"})

    @classmethod
    def quick(cls) -> Config:
        return cls(models=("smollm2-135m-instruct",), out=QUICK_OUT, n_animals=4, max_digits=2, top_n=5,
                   null_draws=2000)

    def validate(self) -> None:
        if not self.models:
            raise UserError("--models is empty; give at least one model, e.g. --models smollm2-135m-instruct")
        if len(set(self.models)) != len(self.models):
            raise UserError("--models lists a model twice; give each once")
        get_device(self.device)
        check_range(self.n_animals, 1, len(ANIMALS), "--n-animals")
        check_range(self.max_digits, 1, 3, "--max-digits")
        check_range(self.top_n, 1, sum(len(n) <= self.max_digits for n in ALL_NUMBERS), "--top-n")
        check_range(self.null_draws, 1, MAX_DRAWS, "--null-draws")
        check_range(self.seed, 0, MAX_SEED, "--seed")


def _read(path: Path) -> pd.DataFrame | None:
    return read_table(path) if path.exists() else None


def step2_rows(cfg: Config, model: str, animals: list[str]) -> tuple[pd.DataFrame | None, str]:
    """Step 2's per-animal rows for the model: read, or run step 2 (its own functions) and read."""
    d = Path(cfg.out)
    s = _read(d / "topic_b_step2_extended.csv")
    if s is not None and set(animals) <= set(s.loc[s["model"] == model, "animal"]):
        return s[(s["model"] == model) & s["animal"].isin(animals)].reset_index(drop=True), "read"
    if not cfg.run_missing:
        return None, "missing"
    run_step2(Step2Config(model=model, device=cfg.device, out=cfg.out, n_animals=cfg.n_animals,
                          max_digits=cfg.max_digits, top_n=cfg.top_n, null_draws=cfg.null_draws, seed=cfg.seed))
    s = _read(d / "topic_b_step2_extended.csv")
    return s[(s["model"] == model) & s["animal"].isin(animals)].reset_index(drop=True), "run"


def model_facts(model, tok) -> dict:
    n_single = sum(len(encode(tok, n)) == 1 for n in ALL_NUMBERS)
    return {"n_params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "single_token_numbers": n_single / len(ALL_NUMBERS)}


def cosine_rows(cfg: Config, model, tok, name: str, animals: list[str], numbers) -> pd.DataFrame | None:
    """Step 2's statistics with the unembedding cosine as the finder (needs the saved pairs)."""
    pairs = _read(Path(cfg.out) / "topic_b_step2_pairs.csv")
    if pairs is None:
        return None
    pairs = pairs[(pairs["model"] == name) & pairs["animal"].isin(animals) & pairs["number"].isin(numbers)]
    if len(pairs) != len(animals) * len(numbers):
        return None
    geo = pair_table(model, tok, animals, numbers).rename(columns={"cosine": "logit_score"})
    n2a = pairs[["number", "animal", "p_no_system", "p_neutral_system", "p_subliminal"]]
    return pd.DataFrame([animal_statistics(geo, n2a, a, top_n=cfg.top_n, draws=cfg.null_draws, seed=cfg.seed)
                         for a in animals])


def summarise(s: pd.DataFrame, model: str, finder: str, facts: dict) -> dict:
    pos_t = (s["ttest_t"] > 0) & (s["ttest_p"] < 0.05)
    neg_t = (s["ttest_t"] < 0) & (s["ttest_p"] < 0.05)
    pos_r = (s["pearson_r"] > 0) & (s["pearson_p"] < 0.05)
    neg_r = (s["pearson_r"] < 0) & (s["pearson_p"] < 0.05)
    return {"model": model, "finder": finder, "animals": len(s),
            "beats_null_p95": int((s["null_p_value"] < 0.05).sum()),
            "ttest_pos": int(pos_t.sum()), "ttest_neg": int(neg_t.sum()),
            "pearson_pos": int(pos_r.sum()), "pearson_neg": int(neg_r.sum()),
            "ratio_gt_2x_vs_no_system": int((s["ratio_vs_no_system"] > 2).sum()),
            "median_ratio_vs_no_system": float(s["ratio_vs_no_system"].median()),
            "median_ratio_vs_random": float(s["ratio_vs_random_mean"].median()),
            "median_top_n_over_null_p95": float((s["top_n_max_ratio"] / s["null_p95"]).median()),
            **facts,
            **{f"{t}_bh" if bh else t: count(s, t, bh) for t in TESTS for bh in (False, True)
               if bh or t in ("best_of_n_max_exact", "top_n_mean")}}


COSINE_CSV = "topic_b_step2_cosine.csv"


def finder_rows(cfg: Config, animals: list[str], logit: pd.DataFrame | None, cos_csv: Path) -> dict[str, pd.DataFrame]:
    """finder -> per-(model, animal) step-2 rows of cfg.models, from the saved CSVs: the logit finder (given:
    the checked step-2 rows), the unembedding cosine (`cos_csv`: this run's staged copy, or the saved one)
    and the data frequency (topic_b_data_frequency.csv, no defence). A finder with no rows is left out."""
    cos, data = _read(cos_csv), _read(Path(cfg.out) / "topic_b_data_frequency.csv")
    if data is not None:
        data = data[data["threshold"] == 0]
    out = {}
    for finder, df in (("logit", logit), ("unembedding_cosine", cos), ("data_frequency", data)):
        if df is not None:
            df = df[df["model"].isin(cfg.models) & df["animal"].isin(animals)].reset_index(drop=True)
            if len(df):
                out[finder] = df
    return out


def specificity_and_multiplicity(cfg: Config, animals: list[str], numbers, o: OutputSet) -> pd.DataFrame:
    """From the saved step-2 CSVs, no model: the specificity test per model, the 087/747 ranks, and the
    multiplicity counts of every finder (into topic_b_specificity*.csv, topic_b_multiplicity.csv)."""
    d = Path(cfg.out)
    pairs, step2_csv = _read(d / "topic_b_step2_pairs.csv"), _read(d / "topic_b_step2_extended.csv")
    if pairs is None or step2_csv is None:
        raise UserError(f"no step-2 results in {d}; run: python topic_b_step2_extended.py --model MODEL")
    s = step2_csv[step2_csv["model"].isin(cfg.models) & step2_csv["animal"].isin(animals)]
    if "null_p_exact" not in s.columns or s["null_p_exact"].isna().any():
        msg = ("the step-2 CSV lacks the exact best-of-n p-values for some model; add them with: "
               "python topic_b_step2_extended.py --from-pairs --model MODEL")
        if cfg.from_csv:
            raise UserError(msg)
        print(f"note: {msg}; topic_b_multiplicity.csv not written")
        s = None
    frames: dict[str, list[pd.DataFrame]] = {}
    for m in cfg.models:
        p = pairs[(pairs["model"] == m) & pairs["animal"].isin(animals) & pairs["number"].isin(numbers)]
        for f, df in specificity_outputs(p, m, top_k=cfg.top_n, n_perm=cfg.null_draws, seed=cfg.seed).items():
            frames.setdefault(f, []).append(df)
    for f, dfs in frames.items():
        upsert(pd.concat(dfs, ignore_index=True), o.final(f), write_to=o.path(f))
    if s is not None:
        staged = o.path(COSINE_CSV)
        finders = finder_rows(cfg, animals, s, staged if staged.exists() else o.final(COSINE_CSV))
        write_csv(pd.concat([multiplicity_table(df, finder=f) for f, df in finders.items()], ignore_index=True),
                  o.path("topic_b_multiplicity.csv"))
    return pd.concat(frames.get(SPEC_CSV, [pd.DataFrame(columns=["model", "variant", "verdict"])]))


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{m}\n{f}" for m, f in zip(table["model"], table["finder"])]
    x = np.arange(len(table))
    for j, col in enumerate(["beats_null_p95", "ttest_pos", "pearson_pos", "ratio_gt_2x_vs_no_system"]):
        ax.bar(x + (j - 1.5) * 0.2, table[col], 0.2, label=col)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("animals")
    ax.legend(fontsize=7)
    ax.set_title("Entanglement finders across models (step 2 statistics)")
    save_figure(fig, path, dpi=110)


def main(cfg: Config) -> pd.DataFrame:
    t0 = time.time()
    seed_everything(cfg.seed)
    animals = [a for a, _ in ANIMALS[: cfg.n_animals]]
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    d = prepare_out(cfg.out)
    check_upsertable(cfg.out, (SPEC_CSV, NUMBERS_CSV))
    if cfg.from_csv:
        with OutputSet(cfg.out) as o:
            spec = specificity_and_multiplicity(cfg, animals, numbers, o)
            verdicts = {f"{m}/{v}": x for m, v, x in spec[["model", "variant", "verdict"]].itertuples(index=False)}
            write_provenance(o, cfg, "topic_b_specificity", "all", t0, {"verdicts": verdicts})
        print("\n".join(f"{k}: {v}" for k, v in verdicts.items()) or "specificity needs >= 3 animals: skipped")
        return spec
    data = _read(d / "topic_b_data_frequency.csv")
    rows, status, cos_rows = [], {}, []
    for m in cfg.models:
        s, how = step2_rows(cfg, m, animals)
        status[m] = how
        facts = {"n_params_m": np.nan, "single_token_numbers": np.nan}
        cos = None
        if cfg.unembedding and s is not None:
            model, tok = load_model(m, device=str(get_device(cfg.device)))
            facts = model_facts(model, tok)
            cos = cosine_rows(cfg, model, tok, m, animals, numbers)
            del model
        if s is None:
            rows.append({"model": m, "finder": "logit", "animals": 0, **facts})
            continue
        rows.append(summarise(s, m, "logit", facts))
        if cos is not None:
            rows.append(summarise(cos, m, "unembedding_cosine", facts))
            cos_rows.append(cos.assign(model=m)[["model", *cos.columns]])
        if data is not None:
            dd = data[(data["model"] == m) & (data["threshold"] == 0) & data["animal"].isin(animals)]
            if len(dd):
                rows.append(summarise(dd, m, "data_frequency", facts))
    table = pd.DataFrame(rows)
    with OutputSet(cfg.out) as o:
        write_csv(table, o.path("topic_b_across_models.csv"))
        if cos_rows:  # before the multiplicity counts, which read it
            upsert(pd.concat(cos_rows, ignore_index=True), o.final(COSINE_CSV), keys=["model", "animal"],
                   write_to=o.path(COSINE_CSV))
        plot(table.fillna(0), o.path("topic_b_across_models.png"))
        specificity_and_multiplicity(cfg, animals, numbers, o)
        write_provenance(o, cfg, "topic_b_across_models", "all", t0, {"step2_status": status})
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    cli_main(main, Config)
