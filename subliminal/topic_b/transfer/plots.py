"""The paper-style figure: P(animal) per arm with 95% CIs over seeds, one panel per evaluated animal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.results import save_figure


def plot_transfer(summary: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    animals = list(dict.fromkeys(summary["animal"]))
    fig, axes = plt.subplots(1, len(animals), figsize=(3.2 + 2.2 * len(animals), 3.4), squeeze=False)
    for ax, a in zip(axes[0], animals):
        g = summary[summary.animal == a]
        x = np.arange(len(g))
        m = g["p_animal"].to_numpy()
        err = np.vstack([m - g["p_animal_ci_low"].to_numpy(), g["p_animal_ci_high"].to_numpy() - m])
        # grey: no trait (base, the neutral draws); red: the panel's animal's teacher; blue: another animal's
        colors = ["#888888" if not isinstance(t, str) or not t else ("#d62728" if t == a else "#1f77b4")
                  for t in g["trait"]]
        ax.bar(x, m, yerr=np.nan_to_num(err), color=colors, capsize=4)
        ax.set_xticks(x, [f"{arm}\n(n={n})" for arm, n in zip(g["arm"], g["n_seeds"])], fontsize=8)
        ax.set_title(f"P({a}) by student arm", fontsize=9)
        ax.set_ylabel(f"mean P({a}) over questions")
    fig.suptitle("Students fine-tuned on teacher numbers (95% CI over seeds)", fontsize=9)
    return save_figure(fig, path)
