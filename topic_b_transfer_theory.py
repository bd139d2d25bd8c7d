"""Subliminal transfer in an LLM under the theorem's conditions (Cloud et al. 2025, Sec. 6's theorem; issue 35):
Topic A's ladder inside SmolLM2-135M-Instruct.

Teachers: the base model LoRA-trained in its weights on short preference answers (owl, eagle, and a neutral
teacher on colours, foods and seasons, by the same recipe). Students: the teacher's exact initialisation (the
base model and the teacher's adapter draw, B = 0), all on the same random number-list contexts, trained to match
the teacher: (a) KL over the whole vocabulary (positive control), (b) KL over the number tokens only (the
subliminal cell), then b with another adapter draw, full fine-tuning, SGD, a noisy base and the neutral teacher's
own number lists as contexts; and (c) the paper's recipe, SFT on each teacher's own number lists, matched across
teachers in prompts and count of numbers. Readouts at
milestones: each animal's share among 25 animals (exact), log P(animal), and the cosine of the student's update
with the teacher's.

    OMP_WAIT_POLICY=PASSIVE python topic_b_transfer_theory.py          # the whole ladder; hours, resumable
    python topic_b_transfer_theory.py --cells a b --seeds 0 1 2        # the first two cells
    python topic_b_transfer_theory.py --quick                          # tiny end-to-end check
    python topic_b_transfer_theory.py --outputs-only                   # rebuild the outputs, no model, no training

Writes plots_b/topic_b_transfer_theory.csv, _summary.csv, _cosines.csv, _verdicts.csv, .png, .json, and the
students' records in plots_b/topic_b_transfer_theory_records/ (rerun the same command to continue). The outputs
always hold every finished student on record under the same settings, whichever cells and seeds a command runs;
the JSON's "complete" says whether every student planned, by this command or the previous one, is finished.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import torch

from subliminal.cli import cli_main
from subliminal.devices import get_device, seed_everything
from subliminal.results import prepare_out
from subliminal.topic_b.theory.config import TheoryConfig
from subliminal.topic_b.theory.run import run


def main(cfg: TheoryConfig) -> None:
    torch.set_num_threads(cfg.threads)
    prepare_out(cfg.out)
    seed_everything(0)
    run(cfg, get_device(cfg.device), log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    cli_main(main, TheoryConfig)
