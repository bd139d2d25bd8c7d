"""Topic A — the students' optimiser: learning rate {1e-4, 3e-4, 1e-3, 3e-3} and weight decay {0, 1e-4, 1e-3} (issue 4).

A peer reports that weight decay 1e-4 alone collapses transfer to ~12%. Every setting distils the same
teachers (trained with --lr, 3e-4 by default); only the students' Adam changes. Weight decay here is
torch Adam's L2 term, which also reaches the digit readout that aux-only distillation otherwise never
touches, so the CSV also records each student's digit-readout norm relative to its init
(`readout_norm`, 1 = untouched). lr 3e-4, wd 0 is the baseline (shared through the cache).

If the peer's decay also reached the teachers, their ghost readout (never touched by the digit loss)
decays too, and the students distil a shrunken channel. `--teacher-decays` (default 1e-4) adds that
setting: teachers and students both with that decay, own teachers; the CSV records the teacher's
ghost-readout norm relative to the shared init (`teacher_ghost_norm`).

    python topic_a_mech_optim.py           # full: 25 models, one knob at a time: 6 settings + teacher decay (~20 min on 2 free cores)
    python topic_a_mech_optim.py --grid    # the full lr × wd grid: 12 settings (~30 min)
    python topic_a_mech_optim.py --quick   # 5 models, 10k images, lr 3e-4, 1e-3 × wd 0, 1e-4

Writes plots_a/topic_a_mech_optim.{csv,_summary.csv,_tests.csv,png,json}.
"""

from __future__ import annotations

from subliminal.interrupt import quiet_ctrl_c

quiet_ctrl_c(__name__)  # Ctrl-C during the imports below: the one-line message, not a traceback

import math

from subliminal.cli import cli_main
from subliminal.topic_a import plots as plot_a
from subliminal.topic_a.mech_runs import run_sweep
from subliminal.topic_a.registry import MECH_OPTIM as EXPERIMENT
from subliminal.topic_a.registry import OptimConfig as Config


def plot(summary, path, cfg: Config) -> None:
    s = summary[summary.condition == "student_aux"].copy()
    s["log10_lr"] = [math.log10(v) for v in s["lr"]]
    s["line"] = ("student (aux only), wd " + s["weight_decay"].map(lambda v: f"{v:g}")
                 + s["teacher_weight_decay"].map(lambda v: ", teachers too" if v > 0 else ""))
    plot_a.curves(s.sort_values("log10_lr"), "log10_lr", path, f"Students' Adam lr × weight decay ({cfg.n_models} models, "
                  f"teacher lr {cfg.lr:g}, 95% CI)", group="line", xlabel="log10 student learning rate")


def main(cfg: Config) -> None:
    # the baseline setting (students with the teacher's lr, no decay) first: the reference of the paired tests
    lrs, wds = sorted(set(cfg.student_lrs)), sorted(set(cfg.weight_decays))
    if cfg.grid:
        grid = [(cfg.lr, 0.0)] + [(lr, wd) for wd in wds for lr in lrs]
    else:  # one knob at a time: lr at no decay, then decay at the teacher's lr
        grid = [(cfg.lr, 0.0)] + [(lr, 0.0) for lr in lrs] + [(cfg.lr, wd) for wd in wds]
    sweep = {f"lr={lr:g} wd={wd:g}": {"lr": float(lr), "weight_decay": float(wd), "teacher_weight_decay": 0.0} for lr, wd in grid}
    for wd in sorted({w for w in cfg.teacher_decays if w > 0}):
        sweep[f"lr={cfg.lr:g} wd={wd:g}, teacher too"] = {"lr": cfg.lr, "weight_decay": float(wd), "teacher_weight_decay": float(wd)}

    run_sweep(EXPERIMENT, cfg, sweep, plot=plot, extra={"teacher_lr": cfg.lr}, students_only=True, readout_norms=True)


if __name__ == "__main__":
    cli_main(main, Config)
