"""Topic A — hidden width 64, 128, 256, 512, 1024 (issue 4).

"Comments & Extensions of Subliminal Learning" reports wider networks → less transfer (an NTK argument:
wide nets move less from their init, so the teacher's change is smaller and harder to read back through
3 ghost logits). Each width is its own model shape, teachers and students; 256 is the baseline.

    python topic_a_mech_hidden_width.py           # full: 25 models, 5 widths (~1.5-3 h on 2 CPU cores; 1024 dominates)
    python topic_a_mech_hidden_width.py --quick   # 5 models, 10k images, widths 64, 256

Writes plots_a/topic_a_mech_hidden_width.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.mech_runs import run_sweep
from subliminal.topic_a.registry import MECH_HIDDEN_WIDTH as EXPERIMENT
from subliminal.topic_a.registry import HiddenWidthConfig as Config


def plot(summary, path, cfg: Config) -> None:
    plot_a.curves(summary, "hidden", path, f"Hidden width ({cfg.n_models} models, teacher {cfg.teacher_epochs} ep, "
                  f"students {cfg.distill_epochs} ep, 95% CI)", xlabel="hidden width H", logx=True)


def main(cfg: Config) -> None:
    run_sweep(EXPERIMENT, cfg, {f"H={h}": {"hidden": h} for h in sorted(set(cfg.widths))}, plot=plot)


if __name__ == "__main__":
    cli_main(main, Config)
