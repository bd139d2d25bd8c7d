"""Topic B, step 2 (Zur et al. 2025, Sec. 4 "subliminal prompting", extended to 25 animals).

Is entanglement widespread or cherry-picked? For each of 25 animals: the number the animal prompt
raises most (logit-score over all 1,110 numbers), its subliminal ratio P(animal | "You love N") /
P(animal | no system prompt), and where the best of the top-n numbers falls in a permutation null
(best of n random numbers, 10,000 draws, 95th percentile); plus the paper's two tests over all
1,110 numbers: Welch t-test of log P(animal | number) for the top 10% vs bottom 10% by logit-score,
and Pearson r of logit-score with log P(animal | number). Added (subliminal.topic_b.multiplicity): the
best-of-n p exactly, the mean of the top n with its own null, Benjamini-Hochberg q-values over the
animals; and (subliminal.topic_b.specificity) the animal-label permutation test of whether each
animal's own score predicts its own P(animal | n) better than the other animals' scores do.

    python topic_b_step2_extended.py                      # SmolLM2-135M-Instruct, ~8 min on 2 cores
    python topic_b_step2_extended.py --model qwen2.5-coder-0.5b-instruct
    python topic_b_step2_extended.py --quick               # 4 animals x 110 numbers, into plots_b/quick
    python topic_b_step2_extended.py --from-pairs          # statistics only, from the saved pairs CSV
                                                           # (adds the new columns; keeps the full run's)
    python -m subliminal.topic_b.plots                            # redraw all Topic B figures from the CSVs

Writes plots_b/topic_b_step2_extended.csv (one row per model x animal), topic_b_step2_pairs.csv
(one row per model x number x animal), topic_b_specificity.csv (one row per model x variant),
topic_b_specificity_numbers.csv (ranks of 087 for owl and 747 for eagle), a PNG and a provenance JSON.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from dataclasses import dataclass

from subliminal.cli import cli_main
from subliminal.topic_b.step2 import Step2Config, run_step2


@dataclass
class Config(Step2Config):
    pass


def main(cfg: Config):
    return run_step2(cfg)


if __name__ == "__main__":
    cli_main(main, Config)
