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

from dataclasses import dataclass, field

from subliminal.cli import cli_main
from subliminal.topic_a import noise_regime
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import run_and_write
from subliminal.topic_a.spec import Experiment
from subliminal.topic_a.train import TopicAConfig


@dataclass
class Config(TopicAConfig):
    pool_sizes: tuple[int, ...] = field(default=(1000, 10_000, 60_000), metadata={"help": "distinct noise images per model (fixed regime)"})
    mnist_sizes: tuple[int, ...] = field(default=(1000, 10_000, 60_000), metadata={"help": "MNIST subset sizes used as distillation inputs"})
    curve_milestones: tuple[int, ...] = field(default=(1, 2, 5, 10, 20, 40), metadata={"help": "epochs for the fixed-vs-fresh curve (empty: skip)"})
    curve_conditions: tuple[str, ...] = field(default=("student_aux", "cross_aux"), metadata={
        "help": "student conditions for the fresh-noise curve (cross_aux: its control, 40 more model-epochs)"})

    @classmethod
    def quick(cls) -> Config:
        return cls(n_models=5, n_train=20_000, n_distill=20_000, pool_sizes=(1000, 20_000), mnist_sizes=(1000, 20_000),
                   curve_milestones=(1, 5, 10))


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


EXPERIMENT = Experiment(__file__, Config, by=("part", "setting", "condition", "distill_epochs"),
                        tests=lambda df, cfg: noise_regime.tests_vs_reference(df, cfg.n_distill),
                        extras=noise_regime.with_params, plot=plot, group="noise")


def main(cfg: Config) -> None:
    run_and_write(EXPERIMENT, cfg,
                  lambda A, st: noise_regime.run(A, cfg.pool_sizes, cfg.mnist_sizes, st[1], curve_conditions=cfg.curve_conditions,
                                                 n_settings=st[0]),
                  stages=noise_regime.stages(cfg.n_distill, cfg.pool_sizes, cfg.mnist_sizes, cfg.curve_milestones))


if __name__ == "__main__":
    cli_main(main, Config)
