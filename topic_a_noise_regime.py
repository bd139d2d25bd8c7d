"""Topic A extension — how the noise regime drives subliminal transfer (not in the seed or the papers).

Two implementations of the same baseline gave different students here: a fixed set of 60,000 noise
images per model reused every epoch (the reference code) vs fresh noise every batch. This script
separates the factors at equal optimiser steps: distinct noise images per model (1k, 10k, 60k, fresh),
per-model vs shared noise, real MNIST subsets of the same sizes, and exp1's distillation-epoch curve
under fresh noise. Each setting is compared with the reference regime by a paired test over models.

    python topic_a_noise_regime.py           # full: 25 models (about 1.5 h on 2 free CPU cores; resumable)
    python topic_a_noise_regime.py --quick   # 5 models, 20k inputs, short curve

Writes plots_a/topic_a_noise_regime.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import noise_regime
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import run_and_write
from subliminal.topic_a.registry import NOISE_REGIME as EXPERIMENT
from subliminal.topic_a.registry import NoiseRegimeConfig as Config


def plot(summary, path, cfg: Config) -> None:
    s = summary[(summary.part == "regime") & (summary.condition == "student_aux")].copy()
    s["label"] = s["setting"]
    plot_a.bars(s, path, f"Noise regime: aux-only students after {cfg.distill_epochs} ep ({cfg.n_models} models, 95% CI)",
                label_col="label")
    c = summary[summary.part == "curve"].copy()
    if len(c):
        c["line"] = c["setting"] + " / " + c["condition"]
        plot_a.curves(c, "distill_epochs", path.with_name(path.stem + "_curve.png"),
                      "Fixed vs fresh noise over distillation epochs (95% CI)", group="line",
                      xlabel="distillation epochs", logx=True)


def main(cfg: Config) -> None:
    run_and_write(EXPERIMENT, cfg,
                  lambda A, st: noise_regime.run(A, cfg.pool_sizes, cfg.mnist_sizes, st[1], curve_conditions=cfg.curve_conditions,
                                                 n_settings=st[0]),
                  plot=plot,
                  stages=noise_regime.stages(cfg.n_distill, cfg.pool_sizes, cfg.mnist_sizes, cfg.curve_milestones))


if __name__ == "__main__":
    cli_main(main, Config)
