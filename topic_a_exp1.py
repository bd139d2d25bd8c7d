"""Topic A, experiment 1 — distillation epochs 1, 2, 5, 10, 20, 40 (seed: 19.7% → 77.2%).

One distillation run per condition, evaluated at each milestone (not one run per value), for the
aux-only student and the aux-only cross-model control. The 5-epoch milestone is the baseline's
student, shared through the cache.

    python topic_a_exp1.py           # full: 25 models, up to 40 epochs (~25 min on 2 CPU cores)
    python topic_a_exp1.py --quick   # 5 models, 20k images, up to 10 epochs

Writes plots_a/topic_a_exp1.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import distill_sweep, run_and_write
from subliminal.topic_a.registry import EXP1 as EXPERIMENT
from subliminal.topic_a.registry import Exp1Config as Config


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "distill_epochs", path, f"Exp 1: distillation epochs ({cfg.n_models} models, "
                  f"teacher {cfg.teacher_epochs} ep, 95% CI)", xlabel="distillation epochs", logx=True)


def main(cfg: Config) -> None:
    milestones = sorted(set(cfg.milestones))
    run_and_write(EXPERIMENT, cfg, distill_sweep, plot=plot, stages=[milestones[:k] for k in range(1, len(milestones) + 1)])


if __name__ == "__main__":
    cli_main(main, Config)
