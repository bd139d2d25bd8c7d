"""Topic A mechanism 3 — is the random readout the bottleneck? Linear probes on frozen features (issue 4).

The seed says a student's random, never-trained digit readout works because it is a random projection
(Johnson-Lindenstrauss) of a digit-structured hidden layer. Per model this compares the argmax of the
model's own digit readout with logistic-regression probes (trained on an MNIST training subset, scored
on the test set) on its frozen features: h1, h2, the 10 digit logits of the readout, and the m ghost
logits (mechanism 2: how much digit information the ghost channel carries on real digits). Models:
the untrained reference (random features: the control), the teacher, the aux-only student and the
cross-model student.

    python topic_a_mech_probe.py           # full: 25 models (~10 min on 2 CPU cores after the baseline's cache)
    python topic_a_mech_probe.py --quick   # 5 models, 10k images

Writes plots_a/topic_a_mech_probe.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import run_and_write
from subliminal.topic_a.mech_runs import probe_table
from subliminal.topic_a.registry import MECH_PROBE as EXPERIMENT
from subliminal.topic_a.registry import ProbeConfig as Config


def plot(summary, path, cfg: Config) -> None:
    s = summary.copy()
    s["label"] = s["condition"] + "\n" + s["features"]
    plot_a.bars(s, path, f"Readout argmax vs linear probes on frozen features ({cfg.n_models} models, 95% CI)",
                label_col="label")


def main(cfg: Config) -> None:
    run_and_write(EXPERIMENT, cfg, lambda A: probe_table(A, cfg.features, cfg.n_probe_train, cfg.probe_l2, cfg.probe_iters),
                  plot=plot)


if __name__ == "__main__":
    cli_main(main, Config)
