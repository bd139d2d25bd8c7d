"""Topic A figures, drawn only from the summary tables the scripts wrote."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from subliminal.results import save_figure  # noqa: E402

CHANCE = 0.10
LABELS = {
    "reference": "reference (init)", "teacher": "teacher", "student_aux": "student (aux only)",
    "student_all": "student (all logits)", "cross_aux": "cross-model (aux only)", "cross_all": "cross-model (all logits)",
}


def _finish(ax, fig, path: Path, title: str) -> None:
    ax.axhline(CHANCE, color="grey", ls=":", lw=1, label="chance (10%)")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("MNIST test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def bars(summary: pd.DataFrame, path: Path, title: str, label_col: str = "condition") -> None:
    """One bar per row: mean with its 95% CI."""
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [LABELS.get(str(v), str(v)) for v in summary[label_col]]
    err = [summary["mean"] - summary["ci95_low"], summary["ci95_high"] - summary["mean"]]
    ax.bar(range(len(summary)), summary["mean"], yerr=err, capsize=4, color="#4c72b0")
    for i, m in enumerate(summary["mean"]):
        ax.text(i, summary["ci95_high"].iloc[i] + 0.015, f"{m:.1%}", ha="center", fontsize=8)
    ax.set_xticks(range(len(summary)), labels, rotation=20, ha="right", fontsize=8)
    _finish(ax, fig, path, title)


def curves(summary: pd.DataFrame, x: str, path: Path, title: str, group: str = "condition",
           xlabel: str | None = None, logx: bool = False) -> None:
    """One line per group with a shaded 95% CI band."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, g in summary.groupby(group, sort=False):
        g = g.sort_values(x)
        ax.plot(g[x], g["mean"], marker="o", ms=3, label=LABELS.get(str(name), str(name)))
        ax.fill_between(g[x], g["ci95_low"], g["ci95_high"], alpha=0.2)
    if logx:
        ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(xlabel or x)
    _finish(ax, fig, path, title)
