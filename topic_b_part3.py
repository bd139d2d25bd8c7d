"""Topic B, part 3 (Zur et al. 2025, Sec. 5 "softmax bottleneck"; seed claim "cosine similarity
predicts entanglement? partially"): unembedding geometry of animals and numbers.

Cosine and dot product between each animal's and each number's unembedding vector (multi-token
strings: mean of their token vectors, as the paper does); entangled numbers (top-k by logit-score)
vs all numbers; overlap of top-k cosine with top-k entangled; and whether prompting with the
top-cosine numbers raises P(animal) (vs the same random numbers as part 2).

    python topic_b_part3.py                   # SmolLM2-135M-Instruct, ~1-2 min
    python topic_b_part3.py --quick

Writes plots_b/topic_b_part3.csv (model, animal, number, cosine, dot, logit_score, is_entangled,
is_top_cosine, p_subliminal, p_no_system), plots_b/topic_b_part3_summary.csv, a PNG and a JSON.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from subliminal.cli import cli_main
from subliminal.devices import seed_everything
from subliminal.results import OutputSet, prepare_out
from subliminal.topic_b.entanglement import animal_to_numbers, numbers_to_animals, top_entangled
from subliminal.topic_b.geometry import pair_table
from subliminal.topic_b.plots import plot_part3
from subliminal.topic_b.scoring import ALL_NUMBERS
from subliminal.topic_b.script_setup import QUICK_OUT, AnimalSweepConfig, check_range, load, write_provenance
from subliminal.topic_b.tables import check_upsertable, slug, upsert


@dataclass
class Config(AnimalSweepConfig):
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits"})

    @classmethod
    def quick(cls) -> Config:
        return cls(out=QUICK_OUT, animals=("owl", "eagle"), top_k=3, n_random=10, max_digits=2)

    def validate(self) -> None:
        check_range(self.max_digits, 1, 3, "--max-digits")
        super().validate(n_numbers=sum(len(n) <= self.max_digits for n in ALL_NUMBERS))


def main(cfg: Config) -> pd.DataFrame:
    t0 = time.time()
    prepare_out(cfg.out)
    check_upsertable(cfg.out, ("topic_b_part3.csv", "topic_b_part3_summary.csv"))
    seed_everything(cfg.seed)
    model, tok, name = load(cfg, cfg.animals)
    animals = list(cfg.animals)
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    geo = pair_table(model, tok, animals, numbers)
    a2n = animal_to_numbers(model, tok, animals, numbers=numbers)
    geo = geo.merge(a2n[["animal", "number", "logit_score"]], on=["animal", "number"])
    ent = {a: top_entangled(a2n, a, cfg.top_k) for a in animals}
    topcos = {a: geo[geo["animal"] == a].nlargest(cfg.top_k, "cosine")["number"].tolist() for a in animals}
    rnd = [numbers[i] for i in sorted(np.random.default_rng(cfg.seed).choice(len(numbers), cfg.n_random, replace=False))]
    scored = list(dict.fromkeys([n for a in animals for n in ent[a] + topcos[a]] + rnd))
    n2a = numbers_to_animals(model, tok, scored, animals)
    geo = geo.merge(n2a[["animal", "number", "p_subliminal", "p_no_system"]], on=["animal", "number"], how="left")
    geo["is_entangled"] = [n in ent[a] for a, n in zip(geo["animal"], geo["number"])]
    geo["is_top_cosine"] = [n in topcos[a] for a, n in zip(geo["animal"], geo["number"])]
    geo["is_random"] = geo["number"].isin(rnd)
    geo.insert(0, "model", name)
    rows = []
    for a in animals:
        g = geo[geo["animal"] == a]
        ratio = g["p_subliminal"] / g["p_no_system"]
        rows.append({
            "model": name, "animal": a,
            "mean_cos_entangled": g.loc[g["is_entangled"], "cosine"].mean(),
            "mean_cos_all": g["cosine"].mean(),
            "mean_dot_entangled": g.loc[g["is_entangled"], "dot"].mean(), "mean_dot_all": g["dot"].mean(),
            "spearman_cos_vs_logit_score": g[["cosine", "logit_score"]].corr("spearman").iloc[0, 1],
            "overlap_topcos_entangled": len(set(ent[a]) & set(topcos[a])),
            "mean_ratio_topcos": ratio[g["is_top_cosine"]].mean(), "max_ratio_topcos": ratio[g["is_top_cosine"]].max(),
            "mean_ratio_entangled": ratio[g["is_entangled"]].mean(),
            "max_ratio_entangled": ratio[g["is_entangled"]].max(),
            "mean_ratio_random": ratio[g["is_random"]].mean(),
            "top_cosine_numbers": " ".join(topcos[a]), "entangled_numbers": " ".join(ent[a]),
        })
    summary = pd.DataFrame(rows)
    with OutputSet(cfg.out) as o:
        for df, f in ((geo, "topic_b_part3.csv"), (summary, "topic_b_part3_summary.csv")):
            upsert(df, o.final(f), write_to=o.path(f))
        plot_part3(geo, o.path(f"topic_b_part3__{slug(name)}.png"), name)
        write_provenance(o, cfg, "topic_b_part3", name, t0)
    print(summary.drop(columns=["model"]).to_string(index=False))
    return summary


if __name__ == "__main__":
    cli_main(main, Config)
