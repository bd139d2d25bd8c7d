"""Topic B extension (Cloud et al. 2025, Sec. 3-4, open-model setting): does an animal preference travel
through bare number sequences from a teacher to a student fine-tuned on them?

Teacher = the base model with the paper's animal system prompt (owl, then eagle) or with none (neutral);
each sample answers its own seeded number-continuation prompt under a number-list grammar and the strict
filter. Students = the same base model, no system prompt, LoRA r8 on the matched data sets (same size,
same optimiser steps), >= 3 seeds per arm. Evaluation = exact P(animal) over 26 one-word questions plus
sampled frequency. The neutral arm, not the base model, is the comparison that counts.

    OMP_WAIT_POLICY=PASSIVE python topic_b_transfer.py                 # owl set first; hours, resumable
    python topic_b_transfer.py --stage data                            # teacher data only
    python topic_b_transfer.py --teacher weights                       # trait in the teacher's weights
    python topic_b_transfer.py --defence 0.01                          # after the threshold defence
    python topic_b_transfer.py --quick                                 # tiny end-to-end check

Writes plots_b/topic_b_transfer.csv (model, arm, trait, animal, seed, question, prefill, p_animal,
logp_animal, freq_animal, n_samples), plots_b/topic_b_transfer_summary.csv (CIs over seeds, ratios to
base and neutral, paired tests, verdict), a PNG and a JSON (config, data hashes, valid fractions, adapter
paths, tokens/s, "complete"). Caches (shards, adapters, checkpoints, evaluations) live under
$SUBLIMINAL_CACHE/transfer, each with the SHA-256 it was written with (an edited one is recomputed, never
used); rerun the same command to continue: the resumed run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import torch

from subliminal.cli import cli_main
from subliminal.devices import get_device, seed_everything
from subliminal.results import prepare_out
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.run import run


def main(cfg: TransferConfig) -> None:
    torch.set_num_threads(cfg.threads)
    prepare_out(cfg.out)
    seed_everything(cfg.seed)
    run(cfg, get_device(cfg.device), log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    cli_main(main, TransferConfig)
