"""The paper-style figure: P(animal) per arm with 95% CIs over seeds, one panel per evaluated animal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.results import save_figure
from subliminal.topic_b.arms import Arm, Teacher
from subliminal.topic_b.transfer.arm import row_kind, teacher_row


def _order(arm: str) -> tuple[int, str]:
    """base, the neutral draws, the students of animal teachers, cross arms, then the teachers themselves."""
    return {"base": 0, "neutral": 1, "animal": 2, "cross": 3, "teacher": 4}[row_kind(arm)], arm


def plot_transfer(summary: pd.DataFrame, path: Path) -> Path:
    """Mean P(animal) per arm with its CI on a log axis (a weight-level teacher's P(owl) ~0.5 next to
    students' ~1e-3 would flatten a linear one); grey: no trait, red: the panel's animal's teacher (or its
    students), blue: another animal's; hollow markers: teachers, which are no student arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    animals = list(dict.fromkeys(summary["animal"]))
    fig, axes = plt.subplots(1, len(animals), figsize=(3.6 + 2.6 * len(animals), 3.8), squeeze=False)
    for ax, a in zip(axes[0], animals):
        g = summary[summary.animal == a]
        g = g.iloc[sorted(range(len(g)), key=lambda i: _order(g["arm"].iloc[i]))]
        x = np.arange(len(g))
        m = g["p_animal"].to_numpy(float)
        lo = np.clip(np.nan_to_num(g["p_animal_ci_low"].to_numpy(float), nan=0.0), m * 1e-3, None)
        hi = np.nan_to_num(g["p_animal_ci_high"].to_numpy(float), nan=0.0)
        err = np.vstack([np.clip(m - lo, 0, None), np.clip(hi - m, 0, None)])
        trait = [t if isinstance(t, str) else "" for t in g["trait"]]
        for i, (arm, t) in enumerate(zip(g["arm"], trait)):
            teacher = row_kind(arm) == "teacher"
            c = "#888888" if not t and not teacher else (
                "#d62728" if t == a or arm in (teacher_row(Arm(a, teacher=Teacher.weights)), teacher_row(Arm(a)))
                else "#1f77b4")
            ax.errorbar(x[i], m[i], yerr=err[:, i:i + 1], fmt="o", color=c, capsize=4,
                        mfc="white" if teacher else c, ms=6)
        ax.set_yscale("log")
        ax.set_xticks(x, [f"{arm} (n={n})" for arm, n in zip(g["arm"], g["n_seeds"])], fontsize=7, rotation=35,
                      ha="right")
        ax.set_title(f"P({a}) by arm", fontsize=9)
        ax.set_ylabel(f"mean P({a}) over questions (log)")
        ax.grid(axis="y", which="major", alpha=0.3)
    fig.suptitle("Students fine-tuned on teacher numbers (95% CI over seeds; hollow: the teachers)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
