"""The ladder figure: each cell's effect of the animal's teacher on the animal's share (vs the neutral teacher,
95% CI over seeds) and the cosine of the student's update with its teacher's (minus the neutral teacher's student's
cosine with that same teacher, ``analysis.cosine_contrasts``), beside
Topic A's reference pattern (student_all, student_aux, cross_aux) from ``plots_a/topic_a_summary.csv`` in the
results root, the folder that holds ``--out`` (``topic_a_summary``); without it that panel says what is missing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from subliminal.topic_b.theory.cells import CELLS  # noqa: E402

TOPIC_A = Path("plots_a") / "topic_a_summary.csv"  # relative to the results root


def topic_a_summary(out: Path) -> Path:
    """Topic A's summary beside the ladder's results: ``<results root>/plots_a/topic_a_summary.csv``, the results
    root being the folder that holds ``--out`` (``plots_b``), wherever the package is installed."""
    return Path(out).resolve().parent / TOPIC_A


def _label(cell: str) -> str:
    """A cell's display label (the CSVs carry its key; a label passes through)."""
    return next((c.label for c in CELLS if c.key == cell), cell)


def _topic_a(path: Path) -> pd.DataFrame | None:
    try:
        a = pd.read_csv(path).set_index("condition").reindex(["student_all", "student_aux", "cross_aux"])
        return a if a["mean"].notna().any() else None
    except (OSError, ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None


def ladder(summary: pd.DataFrame, cos: pd.DataFrame, path: Path, topic_a: Path) -> None:
    s = summary[summary.measure == "share_vs_neutral"]
    s = s[s.step == s.groupby("cell").step.transform("max")]
    cells = list(dict.fromkeys(s.cell))
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.7 * len(cells) + 3), gridspec_kw={"width_ratios": [3, 3, 2]})
    y = np.arange(len(cells))
    for k, (animal, color) in enumerate((("owl", "tab:brown"), ("eagle", "tab:blue"))):
        g = s[s.animal == animal].set_index("cell").reindex(cells)
        axes[0].errorbar(g["mean"], y + 0.3 * (k - 0.5), xerr=[g["mean"] - g.ci95_low, g.ci95_high - g["mean"]],
                         fmt="o", color=color, label=animal, capsize=3)
    axes[0].axvline(0, color="grey", lw=0.8)
    for ax in axes[:2]:
        ax.set_ylim(len(cells) - 0.5, -0.5)
    axes[0].set_yticks(y, [_label(c) for c in cells])
    axes[0].set_xlabel("Δ log share of the animal among 25 animals\n(own teacher − neutral teacher, 95% CI over seeds)")
    axes[0].legend(loc="lower right")
    c = cos[(cos.step == cos.groupby("cell").step.transform("max")) & (cos.vs == "neutral student")] if len(cos) else cos
    for k, (animal, color) in enumerate((("owl", "tab:brown"), ("eagle", "tab:blue"))):
        g = (c[c.teacher == animal].set_index("cell").reindex(cells) if len(c)
             else pd.DataFrame(index=cells, columns=["mean", "ci95_low", "ci95_high"], dtype=float))
        axes[1].errorbar(g["mean"], y + 0.3 * (k - 0.5), xerr=[g["mean"] - g.ci95_low, g.ci95_high - g["mean"]],
                         fmt="s", color=color, label=animal, capsize=3)
    axes[1].axvline(0, color="grey", lw=0.8)
    axes[1].set_yticks(y, [""] * len(cells))
    axes[1].set_xlabel("update cosine with the animal's teacher:\nits own student − the neutral teacher's student "
                       "(95% CI over seeds)")
    axes[1].legend(loc="lower right")
    a = _topic_a(topic_a)
    if a is not None:
        axes[2].barh(range(3), a["mean"], xerr=[a["mean"] - a.ci95_low, a.ci95_high - a["mean"]], color="tab:purple")
        axes[2].set_yticks(range(3), ["all logits (a)", "ghost logits (b)", "cross-init"])
        axes[2].invert_yaxis()
        axes[2].set_xlabel("Topic A (MNIST MLPs):\nstudent accuracy\n(the reference pattern)")
    else:
        axes[2].axis("off")
        axes[2].text(0.5, 0.5, f"Topic A's reference pattern:\n{topic_a}\nnot found or unreadable", ha="center",
                     va="center", fontsize=8, wrap=True, transform=axes[2].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
