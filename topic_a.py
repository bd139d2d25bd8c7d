"""Topic A baseline — subliminal learning of MNIST through ghost logits (Cloud et al. 2025, §6).

25 MLPs (784→256→256→10+3) share nothing but their own init with their teacher and students. Each
teacher learns MNIST on its 10 digit logits; each student is a copy of the same init distilled only
on the teacher's 3 auxiliary logits, on uniform noise. Controls: students distilled on all logits,
and cross-model students that start from another model's init.

    python topic_a.py            # full: 25 models, teacher 5 epochs, students 5 epochs (~8 min on 2 CPU cores)
    python topic_a.py --quick    # 5 models, 20k images, ~1 min

Writes plots_a/topic_a.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import baseline, run_and_write
from subliminal.topic_a.registry import BASELINE as EXPERIMENT
from subliminal.topic_a.registry import BaselineConfig as Config


def plot(summary, path, cfg: Config) -> None:
    order = ["reference", "teacher", "student_aux", "student_all", "cross_aux", "cross_all"]
    s = summary.set_index("condition").loc[order].reset_index()
    plot_a.bars(s, path, f"Baseline: {cfg.n_models} models, teacher {cfg.teacher_epochs} ep, "
                         f"students {cfg.distill_epochs} ep on uniform noise (95% CI)")


def main(cfg: Config) -> None:
    run_and_write(EXPERIMENT, cfg, baseline, plot=plot)


if __name__ == "__main__":
    cli_main(main, Config)
