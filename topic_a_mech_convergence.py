"""Topic A mechanism 1 — do same-init students converge to their teacher's representation? (issue 4)

The seed explains subliminal learning by "shared init → representation convergence": ghost-logit
distillation drives the student's hidden layers towards the teacher's. At each distillation milestone
this measures, per model, linear CKA and mean cosine similarity between teacher and student hidden
activations (both layers) on MNIST test images, and the cosine between the student's and the teacher's
weight updates, for same-init and cross-model students; and how each correlates with the student's
accuracy across models. Milestone 0 is the students' starting point (same-init: the teacher's init).

    python topic_a_mech_convergence.py           # full: 25 models, milestones 0-20 (~25 min on 2 CPU cores)
    python topic_a_mech_convergence.py --quick   # 5 models, 10k images, milestones 0, 1, 3

Writes plots_a/topic_a_mech_convergence.{csv,_summary.csv,_tests.csv,png,json}; the CSV has one row per
condition × model × milestone with accuracy and the measures; _tests.csv the measure means, their
correlations with accuracy and the paired student − cross-model differences.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots_mech as plot_mech
from subliminal.topic_a.experiments import run_and_write
from subliminal.topic_a.mech_runs import convergence
from subliminal.topic_a.registry import MECH_CONVERGENCE as EXPERIMENT
from subliminal.topic_a.registry import ConvergenceConfig as Config


def plot(summary, path, cfg: Config) -> None:
    plot_mech.convergence(path.with_suffix(".csv"), path, cfg.n_models)


def main(cfg: Config) -> None:
    memo: dict = {}
    milestones = sorted(set(cfg.milestones))
    run_and_write(EXPERIMENT, cfg, lambda A, st: convergence(A, st, memo, cfg.n_eval), plot=plot,
                  stages=[milestones[:k] for k in range(1, len(milestones) + 1)])


if __name__ == "__main__":
    cli_main(main, Config)
