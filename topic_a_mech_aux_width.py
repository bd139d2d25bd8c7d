"""Topic A mechanism 2 — the width of the ghost channel: m = 1, 2, 3, 5, 10, 30 auxiliary logits (issue 4).

The seed calls the 3 ghost logits a bottleneck; "Comments & Extensions of Subliminal Learning" reports
more auxiliary logits → more transfer. Each m is its own model shape (so its own teachers, trained on
the 10 digit logits exactly as in the baseline); students distil all m ghost logits on uniform noise.
m = 3 is the baseline (shared through the cache).

    python topic_a_mech_aux_width.py           # full: 25 models, 6 widths (~45 min on 2 CPU cores)
    python topic_a_mech_aux_width.py --quick   # 5 models, 10k images, m = 1, 3, 10

Writes plots_a/topic_a_mech_aux_width.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from dataclasses import dataclass, field

from subliminal.cli import UserError, cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.mech_runs import run_sweep, sweep_experiment
from subliminal.topic_a.train import TopicAConfig


@dataclass
class Config(TopicAConfig):
    aux_widths: tuple[int, ...] = field(default=(1, 2, 3, 5, 10, 30), metadata={"help": "numbers of auxiliary logits m"})

    @classmethod
    def quick(cls) -> Config:
        return cls(n_models=5, n_train=10_000, n_distill=10_000, batch_size=256, teacher_epochs=2, distill_epochs=3,
                   aux_widths=(1, 3, 10))

    def validate(self) -> None:
        super().validate()
        if not self.aux_widths or min(self.aux_widths) < 1:
            raise UserError("--aux-widths must be ≥ 1")


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "n_aux", path, f"Ghost-channel width ({cfg.n_models} models, teacher {cfg.teacher_epochs} ep, "
                  f"students {cfg.distill_epochs} ep, 95% CI)", xlabel="auxiliary logits m", logx=True)


EXPERIMENT = sweep_experiment(__file__, Config, ["n_aux"], reference=lambda cfg: f"m={cfg.n_aux}", plot=plot, trend_knob="n_aux")


def main(cfg: Config) -> None:
    run_sweep(EXPERIMENT, cfg, {f"m={m}": {"n_aux": m} for m in sorted(set(cfg.aux_widths))})


if __name__ == "__main__":
    cli_main(main, Config)
