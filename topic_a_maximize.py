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

from dataclasses import dataclass, field

from subliminal.cli import UserError, cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.experiments import distill_sweep, run_and_write
from subliminal.topic_a.spec import Experiment, paired
from subliminal.topic_a.train import CONDITIONS, TopicAConfig


@dataclass
class Config(TopicAConfig):
    teacher_epochs: int = field(default=2, metadata={"help": "teacher training epochs on MNIST"})
    distill_epochs: int = field(default=100, metadata={"help": "student distillation epochs"})
    milestone_every: int = field(default=10, metadata={"help": "evaluate (and checkpoint) every this many epochs"})
    conditions: tuple[str, ...] = field(default=("student_aux",), metadata={"help": "conditions to run (add cross_aux for the control)"})

    @classmethod
    def quick(cls) -> Config:
        return cls(n_models=5, n_train=20_000, n_distill=20_000, distill_epochs=20, milestone_every=5)

    def validate(self) -> None:
        super().validate()
        if self.milestone_every < 1 or self.distill_epochs < 1:
            raise UserError("--milestone-every and --distill-epochs must be ≥ 1")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            raise UserError(f"unknown --conditions {', '.join(bad)}; choose from {', '.join(CONDITIONS)}")


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "distill_epochs", path, f"Maximize: teacher {cfg.teacher_epochs} ep, up to "
                  f"{cfg.distill_epochs} distillation epochs ({cfg.n_models} models, 95% CI)",
                  xlabel="distillation epochs")


# student_aux vs cross_aux where --conditions includes the control
EXPERIMENT = Experiment(__file__, Config, by=("condition", "distill_epochs"), tests=paired(["distill_epochs"]), plot=plot)


def main(cfg: Config) -> None:
    milestones = sorted({1, 2, 5, *range(cfg.milestone_every, cfg.distill_epochs + 1, cfg.milestone_every),
                         cfg.distill_epochs} - {e for e in (1, 2, 5) if e > cfg.distill_epochs})
    run_and_write(EXPERIMENT, cfg, lambda A, ms: distill_sweep(A, ms, cfg.conditions),
                  stages=[milestones[:k] for k in range(1, len(milestones) + 1)])


if __name__ == "__main__":
    cli_main(main, Config)
