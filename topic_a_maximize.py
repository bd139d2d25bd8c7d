"""Topic A, maximize — the seed's best configuration: teacher 2 epochs, 100 distillation epochs on
uniform noise (seed: 70.3%), with the learning curve at milestones.

Shares the 2-epoch teacher snapshot with experiment 2 through the cache; resumable at every milestone.

    python topic_a_maximize.py           # full: 25 models, 100 epochs (~30 min on 2 CPU cores)
    python topic_a_maximize.py --quick   # 5 models, 20k images, 20 epochs

Writes plots_a/topic_a_maximize.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import distill_sweep, run_and_write
from subliminal.topic_a.registry import MAXIMIZE as EXPERIMENT
from subliminal.topic_a.registry import MaximizeConfig as Config


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "distill_epochs", path, f"Maximize: teacher {cfg.teacher_epochs} ep, up to "
                  f"{cfg.distill_epochs} distillation epochs ({cfg.n_models} models, 95% CI)",
                  xlabel="distillation epochs")


def main(cfg: Config) -> None:
    milestones = sorted({1, 2, 5, *range(cfg.milestone_every, cfg.distill_epochs + 1, cfg.milestone_every),
                         cfg.distill_epochs} - {e for e in (1, 2, 5) if e > cfg.distill_epochs})
    run_and_write(EXPERIMENT, cfg, lambda A, ms: distill_sweep(A, ms, cfg.conditions), plot=plot,
                  stages=[milestones[:k] for k in range(1, len(milestones) + 1)])


if __name__ == "__main__":
    cli_main(main, Config)
