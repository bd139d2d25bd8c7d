"""Topic A — how exact must the shared init be, and which init/input choice carries the effect? (issue 4)

Part 1: Gaussian noise of std σ = 0, 0.005, 0.01, 0.02, 0.05, 0.1 added to every weight and bias of the
student's copy of the init (the teacher is untouched; the baseline weights have std 0.036 in layer 1
and 0.0625 in layers 2-3). Part 2: init scheme × input range, each with its own teachers: the
reference N(0, 1/√fan_in) vs PyTorch's default U(±1/√fan_in) with uniform biases, and images and noise
in [−1, 1] vs [0, 1) (a probe saw the effect vanish with PyTorch init and [0, 1) inputs). σ = 0 with
the reference init and [−1, 1] inputs is the baseline and both parts' reference.

    python topic_a_mech_init.py           # full: 25 models, 6 σ + 3 more inits (~60 min on 2 CPU cores)
    python topic_a_mech_init.py --quick   # 5 models, 10k images, σ = 0, 0.01, 0.1 and the 3 other inits

Writes plots_a/topic_a_mech_init.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.mech_runs import run_sweep
from subliminal.topic_a.registry import MECH_INIT as EXPERIMENT
from subliminal.topic_a.registry import InitConfig as Config


def _range(signed: bool) -> str:
    return "[-1,1]" if signed else "[0,1)"


def settings(cfg: Config) -> dict[str, dict]:
    base = {"init": cfg.init, "signed_inputs": cfg.signed_inputs}
    out = {f"σ={s:g}": {"student_init_noise": float(s), **base} for s in sorted(set(cfg.sigmas) | {0.0})}
    if cfg.schemes:
        for init in ("reference", "torch"):
            for signed in (True, False):
                if (init, signed) != (cfg.init, cfg.signed_inputs):
                    out[f"{init} init, {_range(signed)} inputs"] = {"student_init_noise": 0.0, "init": init, "signed_inputs": signed}
    return out


def plot(summary, path, cfg: Config) -> None:
    s = summary[summary.condition != "teacher"].copy()
    s["label"] = s["setting"] + "\n" + s["condition"]
    plot_a.bars(s, path, f"Init sensitivity ({cfg.n_models} models, teacher {cfg.teacher_epochs} ep, "
                f"students {cfg.distill_epochs} ep, 95% CI)", label_col="label")


def main(cfg: Config) -> None:
    run_sweep(EXPERIMENT, cfg, settings(cfg), plot=plot)


if __name__ == "__main__":
    cli_main(main, Config)
