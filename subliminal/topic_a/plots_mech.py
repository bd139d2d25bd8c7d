"""Figures for the mechanism scripts that plot more than accuracy, drawn only from the CSV on disk."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from subliminal.results import save_figure  # noqa: E402
from subliminal.stats import summarize  # noqa: E402
from subliminal.topic_a.plots import LABELS  # noqa: E402

PANELS = (("cka_h1", "linear CKA, layer 1"), ("cka_h2", "linear CKA, layer 2"), ("cos_h2", "mean cosine, layer 2"),
          ("accuracy", "MNIST test accuracy"))


def convergence(csv: Path, path: Path, n_models: int) -> None:
    """Teacher-vs-student similarity and student accuracy over distillation epochs, one line per condition."""
    df = pd.read_csv(csv)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(14, 3.6))
    for ax, (col, title) in zip(axes, PANELS):
        s = summarize(df, ["condition", "distill_epochs"], value=col)
        for cond, g in s.groupby("condition", sort=False):
            g = g.sort_values("distill_epochs")
            ax.plot(g.distill_epochs, g["mean"], marker="o", ms=3, label=LABELS.get(cond, cond))
            ax.fill_between(g.distill_epochs, g.ci95_low, g.ci95_high, alpha=0.2)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("distillation epochs")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[-1].axhline(0.1, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Teacher vs student representations on MNIST test images ({n_models} models, 95% CI)", fontsize=10)
    save_figure(fig, path)
