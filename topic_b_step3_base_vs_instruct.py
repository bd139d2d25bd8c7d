"""Topic B, step 3 (seed claim "base vs instruct: identical unembedding geometry"): compare two
checkpoints' animal-number unembedding geometry and their entangled numbers.

Default pair: the seed's meta-llama/Llama-3.2-1B (base) vs meta-llama/Llama-3.2-1B-Instruct. When
they cannot be loaded (offline), the script says so and falls back to --fallback-a/--fallback-b.
No offline pair shares a tokenizer (the package lists hold one checkpoint per family), so the
fallback compares SmolLM2-135M-Instruct with Qwen2.5-Coder-0.5B-Instruct: NOT base vs instruct,
two different families, compared per (animal, number) string pair (cosine of mean token vectors)
and by the overlap of their top entangled numbers. The output labels exactly what was compared.

    python topic_b_step3_base_vs_instruct.py                          # tries Llama, then fallback
    python topic_b_step3_base_vs_instruct.py --model-a DIR_A --model-b DIR_B
    python topic_b_step3_base_vs_instruct.py --quick

Writes plots_b/topic_b_step3.csv (one row per animal x number: cosine_a, cosine_b, logit_score_a,
logit_score_b), plots_b/topic_b_step3_summary.csv, a PNG and a JSON.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import time
from dataclasses import dataclass, field

import pandas as pd
from scipy import stats as sps

from subliminal.cli import UserError, cli_main
from subliminal.devices import get_device
from subliminal.results import OutputSet, prepare_out, write_csv
from subliminal.topic_b.entanglement import animal_to_numbers, top_entangled
from subliminal.topic_b.geometry import pair_table
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.plots import plot_step3
from subliminal.topic_b.prompts import ANIMALS, PAPER_ANIMALS
from subliminal.topic_b.scoring import ALL_NUMBERS
from subliminal.topic_b.script_setup import QUICK_OUT, check_animals, check_range, write_provenance


@dataclass
class Config:
    model_a: str = field(default="meta-llama/Llama-3.2-1B", metadata={"help": "first checkpoint (base)"})
    model_b: str = field(default="meta-llama/Llama-3.2-1B-Instruct", metadata={"help": "second checkpoint"})
    fallback_a: str = field(default="smollm2-135m-instruct", metadata={"help": "used when a model can't load"})
    fallback_b: str = field(default="qwen2.5-coder-0.5b-instruct", metadata={"help": "used when a model can't load"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu or cuda"})
    out: str = field(default="plots_b", metadata={"help": "output directory"})
    top_k: int = field(default=10, metadata={"help": "entangled numbers per animal to compare"})
    entangled_animals: tuple[str, ...] = field(default=PAPER_ANIMALS, metadata={"help": "animals for the entangled-number search"})
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits"})

    @classmethod
    def quick(cls) -> Config:
        return cls(out=QUICK_OUT, entangled_animals=("owl",), top_k=3, max_digits=2,
                   fallback_b="smollm2-135m-instruct")

    def validate(self) -> None:
        for flag, spec in (("--model-a", self.model_a), ("--model-b", self.model_b),
                           ("--fallback-a", self.fallback_a), ("--fallback-b", self.fallback_b)):
            if not spec.strip():
                raise UserError(f"{flag} is empty; give an asset name, a .gguf file, a model folder or a HF id")
        get_device(self.device)
        check_animals(self.entangled_animals, "--entangled-animals")
        check_range(self.max_digits, 1, 3, "--max-digits")
        check_range(self.top_k, 1, sum(len(n) <= self.max_digits for n in ALL_NUMBERS), "--top-k")


def _one(spec: str, cfg: Config, numbers, animals):
    model, tok = load_model(spec, device=str(get_device(cfg.device)))
    geo = pair_table(model, tok, animals, numbers)
    a2n = animal_to_numbers(model, tok, list(cfg.entangled_animals), numbers=numbers)
    ent = {a: top_entangled(a2n, a, cfg.top_k) for a in cfg.entangled_animals}
    geo = geo.merge(a2n[["animal", "number", "logit_score"]], on=["animal", "number"], how="left")
    same_vocab = tok.get_vocab()
    del model
    return geo, ent, same_vocab


def main(cfg: Config) -> pd.DataFrame:
    t0 = time.time()
    prepare_out(cfg.out)
    pair, note = (cfg.model_a, cfg.model_b), "as requested"
    animals = [a for a, _ in ANIMALS]
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    try:
        geo_a, ent_a, vocab_a = _one(pair[0], cfg, numbers, animals)
        geo_b, ent_b, vocab_b = _one(pair[1], cfg, numbers, animals)
    except UserError as e:
        print(f"note: {e}\nnote: falling back to {cfg.fallback_a} vs {cfg.fallback_b}")
        note = (f"fallback: {pair[0]} / {pair[1]} cannot be loaded offline; compared "
                f"{cfg.fallback_a} vs {cfg.fallback_b}")
        pair = (cfg.fallback_a, cfg.fallback_b)
        geo_a, ent_a, vocab_a = _one(pair[0], cfg, numbers, animals)
        geo_b, ent_b, vocab_b = _one(pair[1], cfg, numbers, animals)
    shared_tok = vocab_a == vocab_b
    if not shared_tok:
        note += "; tokenizers differ (NOT base vs instruct: string-level comparison only)"
    df = geo_a.merge(geo_b, on=["animal", "number"], suffixes=("_a", "_b"))
    df.insert(0, "model_a", pair[0])
    df.insert(1, "model_b", pair[1])
    r = sps.pearsonr(df["cosine_a"], df["cosine_b"])
    rows = [{"model_a": pair[0], "model_b": pair[1], "comparison": note, "shared_tokenizer": shared_tok,
             "animal": "ALL", "pearson_cosine_a_b": float(r.statistic), "n_pairs": len(df)}]
    for a in cfg.entangled_animals:
        d = df[df["animal"] == a]
        rows.append({"model_a": pair[0], "model_b": pair[1], "comparison": note, "shared_tokenizer": shared_tok,
                     "animal": a, "pearson_cosine_a_b": float(sps.pearsonr(d["cosine_a"], d["cosine_b"]).statistic),
                     "spearman_logit_score_a_b": float(d[["logit_score_a", "logit_score_b"]].corr("spearman").iloc[0, 1]),
                     "entangled_a": " ".join(ent_a[a]), "entangled_b": " ".join(ent_b[a]),
                     "overlap_top_k": len(set(ent_a[a]) & set(ent_b[a])), "n_pairs": len(d)})
    summary = pd.DataFrame(rows)
    with OutputSet(cfg.out) as o:
        write_csv(df, o.path("topic_b_step3.csv"))
        write_csv(summary, o.path("topic_b_step3_summary.csv"))
        plot_step3(df, o.path("topic_b_step3.png"), pair[0], pair[1])
        write_provenance(o, cfg, "topic_b_step3", f"{pair[0]}_vs_{pair[1]}", t0, {"comparison": note})
    print(note)
    print(summary.drop(columns=["comparison"]).to_string(index=False))
    return summary


if __name__ == "__main__":
    cli_main(main, Config)
