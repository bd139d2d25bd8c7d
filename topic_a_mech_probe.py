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

from dataclasses import dataclass, field

from subliminal.cli import UserError, cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import run_and_write
from subliminal.topic_a.mech_runs import probe_table, probe_tests
from subliminal.topic_a.probes import FEATURES
from subliminal.topic_a.spec import Experiment
from subliminal.topic_a.train import TopicAConfig


@dataclass
class Config(TopicAConfig):
    features: tuple[str, ...] = field(default=FEATURES, metadata={"help": f"feature sets to probe among {', '.join(FEATURES)}"})
    n_probe_train: int = field(default=10_000, metadata={"help": "MNIST training images for fitting the probes (≤ --n-train)"})
    probe_l2: float = field(default=1e-4, metadata={"help": "L2 penalty on the probe weights (standardised features)"})
    probe_iters: int = field(default=100, metadata={"help": "L-BFGS iterations per probe"})

    @classmethod
    def quick(cls) -> Config:
        return cls(n_models=5, n_train=10_000, n_distill=10_000, batch_size=256, teacher_epochs=2, distill_epochs=3,
                   n_probe_train=5000, probe_iters=50)

    def validate(self) -> None:
        super().validate()
        bad = [f for f in self.features if f not in FEATURES]
        if bad:
            raise UserError(f"unknown --features {', '.join(bad)}; choose from {', '.join(FEATURES)}")
        if not 10 <= self.n_probe_train <= self.n_train:
            raise UserError("--n-probe-train must be in 10..--n-train")


def plot(summary, path, cfg: Config) -> None:
    s = summary.copy()
    s["label"] = s["condition"] + "\n" + s["features"]
    plot_a.bars(s, path, f"Readout argmax vs linear probes on frozen features ({cfg.n_models} models, 95% CI)",
                label_col="label")


EXPERIMENT = Experiment(__file__, Config, by=("condition", "features"), tests=lambda df, cfg: probe_tests(df), plot=plot,
                        group="mechanism")


def main(cfg: Config) -> None:
    run_and_write(EXPERIMENT, cfg, lambda A: probe_table(A, cfg.features, cfg.n_probe_train, cfg.probe_l2, cfg.probe_iters))


if __name__ == "__main__":
    cli_main(main, Config)
