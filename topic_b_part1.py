"""Topic B, part 1 (Zur et al. 2025, Sec. 2; owls notebook cells 3-10): the owl demo.

Does "You love owls" raise P(owl) even on the number-sequence task, and which numbers does it raise
most? Scores owl variants (' owl', 'owl', ' Owl', ' owls') with the owl prompt, no system prompt and
a neutral system prompt on the seed's sequence task (prefill '495;701;688;') and the favourite-bird
question; then all 1,110 numbers under the same three conditions, ranked by
logit-score = p(n | owl prompt) / p(n | no system prompt).

    python topic_b_part1.py                   # SmolLM2-135M-Instruct, ~1 min
    python topic_b_part1.py --model qwen2.5-coder-0.5b-instruct
    python topic_b_part1.py --quick

Writes plots_b/topic_b_part1.csv (model, question, condition, string, p),
plots_b/topic_b_part1_numbers.csv (model, question, number, p_owl_prompt, p_no_system,
p_neutral_system, logit_score, rank), a PNG and a provenance JSON.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from subliminal.cli import UserError, cli_main
from subliminal.results import OutputSet, prepare_out
from subliminal.topic_b.entanglement import animal_to_numbers
from subliminal.topic_b.plots import plot_part1
from subliminal.topic_b.prompts import QUESTIONS, animal_strings, animal_system, baseline_prompts, build_prompt
from subliminal.topic_b.scoring import ALL_NUMBERS, score_continuations
from subliminal.topic_b.script_setup import QUICK_OUT, LMConfig, check_animals, check_range, load, write_provenance
from subliminal.topic_b.tables import check_upsertable, slug, upsert


@dataclass
class Config(LMConfig):
    animal: str = field(default="owl", metadata={"help": "the animal of the demo"})
    questions: tuple[str, ...] = field(default=("sequence", "bird"), metadata={"help": "prompts to probe"})
    max_digits: int = field(default=3, metadata={"help": "numbers of 1..max_digits digits"})
    top: int = field(default=20, metadata={"help": "numbers to print per question"})

    @classmethod
    def quick(cls) -> Config:
        return cls(out=QUICK_OUT, max_digits=2)

    def validate(self) -> None:
        super().validate()
        check_animals((self.animal,), "--animal")
        bad = [q for q in self.questions if q not in QUESTIONS]
        if bad or not self.questions:
            raise UserError(f"--questions {' '.join(bad) or '(none)'}: choose from {', '.join(QUESTIONS)}")
        check_range(self.max_digits, 1, 3, "--max-digits")
        check_range(self.top, 0, None, "--top")


def main(cfg: Config) -> None:
    t0 = time.time()
    prepare_out(cfg.out)
    check_upsertable(cfg.out, ("topic_b_part1.csv", "topic_b_part1_numbers.csv"))
    model, tok, name = load(cfg, (cfg.animal,))
    a = cfg.animal
    variants = animal_strings(a, all_forms=True)
    rows = []
    for q in cfg.questions:
        conds = {f"{a}_prompt": build_prompt(tok, q, animal_system(a)), **baseline_prompts(tok, q)}
        for cond, prompt in conds.items():
            lp = score_continuations(model, tok, prompt, variants)["logp"]
            rows += [(name, q, cond, s, float(np.exp(v))) for s, v in zip(variants, lp)]
    var = pd.DataFrame(rows, columns=["model", "question", "condition", "string", "p"])
    numbers = tuple(n for n in ALL_NUMBERS if len(n) <= cfg.max_digits)
    frames = []
    for q in cfg.questions:
        d = animal_to_numbers(model, tok, [a], question=q, numbers=numbers, progress=False)
        d = d.assign(model=name, question=q, p_owl_prompt=np.exp(d["logp_animal_prompt"]),
                     p_no_system=np.exp(d["logp_no_system"]), p_neutral_system=np.exp(d["logp_neutral_system"]))
        d["rank"] = d["logit_score"].rank(ascending=False, method="first").astype(int)
        frames.append(d[["model", "question", "number", "p_owl_prompt", "p_no_system", "p_neutral_system",
                         "logit_score", "rank"]].sort_values("rank"))
    nums = pd.concat(frames, ignore_index=True)
    with OutputSet(cfg.out) as o:
        for df, f in ((var, "topic_b_part1.csv"), (nums, "topic_b_part1_numbers.csv")):
            upsert(df, o.final(f), write_to=o.path(f))
        plot_part1(var, nums, o.path(f"topic_b_part1__{slug(name)}.png"), name)
        write_provenance(o, cfg, "topic_b_part1", name, t0)
    print(var.pivot_table(index=["question", "string"], columns="condition", values="p").to_string())
    for q in cfg.questions:
        top = nums[nums["question"] == q].head(cfg.top)
        print(f"\n[{q}] numbers the {a} prompt raises most:\n{top.to_string(index=False)}")


if __name__ == "__main__":
    cli_main(main, Config)
