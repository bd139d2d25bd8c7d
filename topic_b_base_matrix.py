"""Is it the shared base model that carries the trait? (Cloud et al. 2025, Sec. 6's theorem and the journal
version's same-base claim; issue 44): teacher base x student base = {SmolLM2-135M-Instruct, Gemma-3-270M}^2, every
cell with the shared-class KL (the ten digits and "other", aligned by character offset, so two vocabularies can
both compute it), cell b of ``topic_b_transfer_theory.py`` otherwise.

Teachers: each base's owl, eagle and neutral weight teachers by the ladder's recipe, each checked to carry its
trait (its share of its animal against the neutral teacher's) before a student reads it. Students: their own base
with their own base's adapter draw, trained to match the teacher on the seed's random number lists; the share of
the animal among 25 against the neutral teacher's student of the same pair and seed, beside the students' fit to
their teacher against the trait-neutral teacher KL (the signal to be learned).

    OMP_WAIT_POLICY=PASSIVE python topic_b_base_matrix.py                      # the whole matrix; hours, resumable
    python topic_b_base_matrix.py --teachers-only                             # the teachers and their check
    python topic_b_base_matrix.py --pairs "smollm2-135m-instruct>smollm2-135m-instruct" --seeds 0 1 2
    python topic_b_base_matrix.py --quick                                     # tiny end-to-end check

Writes plots_b/topic_b_base_matrix_teachers.csv, _signal.csv, .csv, _effects.csv, _contrasts.csv, _fit.csv, _fit_rule.csv
(each cross-base pair's steps and lr, decided on its neutral teacher before its trait students run),
.json, and the students' records in plots_b/topic_b_base_matrix_records/ (rerun the same command to continue).
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import torch

from subliminal.cli import cli_main
from subliminal.devices import get_device, seed_everything
from subliminal.results import prepare_out
from subliminal.topic_b.theory.matrix_config import MatrixConfig
from subliminal.topic_b.theory.matrix_run import run


def main(cfg: MatrixConfig) -> None:
    torch.set_num_threads(cfg.threads)
    prepare_out(cfg.out)
    seed_everything(0)
    run(cfg, get_device(cfg.device), log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    cli_main(main, MatrixConfig)
