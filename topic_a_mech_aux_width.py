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

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.mech_runs import run_sweep
from subliminal.topic_a.registry import MECH_AUX_WIDTH as EXPERIMENT
from subliminal.topic_a.registry import AuxWidthConfig as Config


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "n_aux", path, f"Ghost-channel width ({cfg.n_models} models, teacher {cfg.teacher_epochs} ep, "
                  f"students {cfg.distill_epochs} ep, 95% CI)", xlabel="auxiliary logits m", logx=True)


def main(cfg: Config) -> None:
    run_sweep(EXPERIMENT, cfg, {f"m={m}": {"n_aux": m} for m in sorted(set(cfg.aux_widths))}, plot=plot)


if __name__ == "__main__":
    cli_main(main, Config)
