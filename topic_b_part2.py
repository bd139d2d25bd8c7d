"""Topic B, part 2 (Zur et al. 2025, Sec. 3-4; owls notebook "Putting it all together"): number -> animal.

For the papers' animals (owl, eagle, elephant, wolf): the numbers the animal prompt raises most
(top-k by logit-score over all 1,110 numbers, favourite-animal question) and 100 random numbers;
P(animal | "You love N" system prompt) vs both baselines (no system prompt, neutral system prompt).
Entanglement would show as the top entangled numbers beating the random numbers, not just the
no-system baseline.

    python topic_b_part2.py                   # SmolLM2-135M-Instruct, ~1-2 min
    python topic_b_part2.py --numbers 087 747 --animals owl eagle   # explicit numbers only
    python topic_b_part2.py --quick

--numbers are taken exactly as written, 1-3 digits each: '087', '87' and '7' are different answers
(the model writes them differently); '0087', '1000', '-1' and 'abc' are refused.

Writes plots_b/topic_b_part2.csv (model, number, animal, p_no_system, p_neutral_system,
p_subliminal, is_entangled, is_random, entangled_rank, logit_score), a summary CSV, a PNG and a JSON.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from subliminal.cli import cli_main
from subliminal.devices import seed_everything
from subliminal.results import OutputSet, prepare_out
from subliminal.topic_b.entanglement import animal_to_numbers, numbers_to_animals, top_entangled
from subliminal.topic_b.plots import plot_part2
from subliminal.topic_b.scoring import ALL_NUMBERS
from subliminal.topic_b.script_setup import QUICK_OUT, AnimalSweepConfig, check_numbers, load, write_provenance
from subliminal.topic_b.tables import check_upsertable, slug, upsert


@dataclass
class Config(AnimalSweepConfig):
    numbers: tuple[str, ...] = field(default=(), metadata={
        "help": "score only these numbers (skips the search); 1-3 digits each, as written ('087' != '87')"})

    @classmethod
    def quick(cls) -> Config:
        return cls(out=QUICK_OUT, animals=("owl", "eagle"), top_k=3, n_random=10)

    def validate(self) -> None:
        super().validate(n_numbers=len(ALL_NUMBERS))
        check_numbers(self.numbers)


def main(cfg: Config) -> pd.DataFrame:
    t0 = time.time()
    prepare_out(cfg.out)
    check_upsertable(cfg.out, ("topic_b_part2.csv", "topic_b_part2_summary.csv"))
    gen = seed_everything(cfg.seed)
    model, tok, name = load(cfg, cfg.animals)
    animals = list(cfg.animals)
    if cfg.numbers:
        a2n, ent, rnd = None, {a: list(cfg.numbers) for a in animals}, []
    else:
        a2n = animal_to_numbers(model, tok, animals)
        ent = {a: top_entangled(a2n, a, cfg.top_k) for a in animals}
        idx = np.random.default_rng(int(gen.initial_seed())).choice(len(ALL_NUMBERS), cfg.n_random, replace=False)
        rnd = [ALL_NUMBERS[i] for i in sorted(idx)]
    numbers = list(dict.fromkeys([n for a in animals for n in ent[a]] + rnd))
    n2a = numbers_to_animals(model, tok, numbers, animals)
    n2a["is_entangled"] = [n in ent[a] for n, a in zip(n2a["number"], n2a["animal"])]
    n2a["is_random"] = n2a["number"].isin(rnd)
    n2a["entangled_rank"] = [ent[a].index(n) + 1 if n in ent[a] else 0 for n, a in zip(n2a["number"], n2a["animal"])]
    if a2n is not None:
        n2a = n2a.merge(a2n[["animal", "number", "logit_score"]], on=["animal", "number"], how="left")
    n2a.insert(0, "model", name)
    summ = []
    for a in animals:
        d = n2a[n2a["animal"] == a]
        lr = np.log(d["p_subliminal"] / d["p_no_system"])
        e, r = lr[d["is_entangled"]], lr[d["is_random"]]
        row = {"model": name, "animal": a, "p_no_system": d["p_no_system"].iloc[0],
               "p_neutral_system": d["p_neutral_system"].iloc[0],
               "entangled_numbers": " ".join(ent[a]),
               "geo_mean_ratio_entangled": float(np.exp(e.mean())),
               "max_ratio_entangled": float(np.exp(e.max()))}
        if len(r) > 1:
            t = sps.ttest_ind(e, r, equal_var=False) if len(e) > 1 else None
            row.update({"geo_mean_ratio_random": float(np.exp(r.mean())),
                        "random_p95_ratio": float(np.exp(np.quantile(r, 0.95))),
                        "n_entangled_above_random_p95": int((e > np.quantile(r, 0.95)).sum()),
                        "welch_p_entangled_vs_random": float(t.pvalue) if t is not None else np.nan})
        summ.append(row)
    summary = pd.DataFrame(summ)
    with OutputSet(cfg.out) as o:
        for df, f in ((n2a, "topic_b_part2.csv"), (summary, "topic_b_part2_summary.csv")):
            upsert(df, o.final(f), write_to=o.path(f))
        if rnd:
            plot_part2(n2a, o.path(f"topic_b_part2__{slug(name)}.png"), name)
        write_provenance(o, cfg, "topic_b_part2", name, t0, {"entangled": ent, "random_numbers": rnd})
    print(summary.to_string(index=False))
    return n2a


if __name__ == "__main__":
    cli_main(main, Config)
