"""Topic A, experiment 2 — teacher epochs 0, 1, 2, 5, 10, 20, each student distilled 5 epochs
(seed: inverted U, peak 62.6% at 2 teacher epochs, 35.1% at 20).

The teachers are snapshots of one training run (cached, shared with the maximize script).

    python topic_a_exp2.py           # full: 25 models (~20 min on 2 CPU cores)
    python topic_a_exp2.py --quick   # 5 models, 20k images

Writes plots_a/topic_a_exp2.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import run_and_write, teacher_sweep
from subliminal.topic_a.registry import EXP2 as EXPERIMENT
from subliminal.topic_a.registry import Exp2Config as Config


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "teacher_epochs", path, f"Exp 2: teacher epochs ({cfg.n_models} models, students "
                  f"{cfg.distill_epochs} ep, 95% CI)", xlabel="teacher training epochs", logx=True)


def main(cfg: Config) -> None:
    sweep = sorted(set(cfg.teacher_sweep))
    run_and_write(EXPERIMENT, cfg, teacher_sweep, plot=plot, stages=[sweep[:k] for k in range(1, len(sweep) + 1)])


if __name__ == "__main__":
    cli_main(main, Config)
