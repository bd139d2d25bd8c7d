"""Topic A, experiment 3 — what the student is distilled on (seed: uniform noise 54.9% vs real MNIST 15.1%).

Inputs: uniform noise, Gaussian noise with the same mean and variance, real MNIST training images,
pixel-shuffled MNIST (one fixed permutation), and Fashion-MNIST when it is installed (Debian package
dataset-fashion-mnist, or FASHION_MNIST_ROOT); without it the script says so and runs the other four.

    python topic_a_exp3.py           # full: 25 models (~15 min on 2 CPU cores)
    python topic_a_exp3.py --quick   # 5 models, 20k images

Writes plots_a/topic_a_exp3.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import run_and_write, source_sweep
from subliminal.topic_a.mnist import load_fashion_mnist
from subliminal.topic_a.registry import EXP3 as EXPERIMENT
from subliminal.topic_a.registry import Exp3Config as Config
from subliminal.topic_a.train import log


def plot(summary, path, cfg: Config) -> None:
    s = summary.copy()
    s["label"] = s["source"] + "\n" + s["condition"].str.replace("_aux", "")
    plot_a.bars(s, path, f"Exp 3: distillation inputs ({cfg.n_models} models, aux-only, 95% CI)", label_col="label")


def main(cfg: Config) -> None:
    sources = list(cfg.sources)
    if "fashion" in sources and load_fashion_mnist() is None:
        log("[topic_a_exp3] Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or set "
            "FASHION_MNIST_ROOT): running the other inputs only")
        sources.remove("fashion")
    run_and_write(EXPERIMENT, cfg, lambda A: source_sweep(A, sources), plot=plot, extra={"sources_run": sources})


if __name__ == "__main__":
    cli_main(main, Config)
