"""The base-noise dose figure (issue 44): the LLM student's share effect against the noise on its base, beside Topic
A's student-init-noise sweep, both on an x axis in units of each weight tensor's std; and the noisy base's
capability, so that "no transfer" is told apart from "no model". Reads CSVs only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.results import save_figure
from subliminal.topic_b.theory.matrix_analysis import DEGRADED, WORKS, WORKS_WITHIN

TOPIC_A_INIT = Path("plots_a") / "topic_a_mech_init_summary.csv"
# Topic A's reference init draws W ~ N(0, 1/sqrt(fan_in)): layer 1 (784 inputs, 74% of the weights) has std 1/28,
# layers 2 and 3 (256 inputs) 1/16; its noise sigma is one number for every weight, so sigma / std is 28 sigma
# (layer 1, the marker) to 16 sigma (layers 2-3, the bar).
A_STD = {"layer 1": 1 / 28, "layers 2-3": 1 / 16}


def topic_a_init(out: Path) -> Path:
    """Topic A's init-noise summary beside the results: ``<results root>/plots_a/topic_a_mech_init_summary.csv``."""
    return Path(out).resolve().parent / TOPIC_A_INIT


def dose(dose_rows: pd.DataFrame, matrix_rows: pd.DataFrame, capability: pd.DataFrame, topic_a: Path, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    eff = dose_rows[dose_rows.family == "base-noise dose"] if len(dose_rows) else dose_rows
    diag = matrix_rows[matrix_rows.pair.str.split(">").str[0] == matrix_rows.pair.str.split(">").str[1]] \
        if len(matrix_rows) else matrix_rows
    zero_x = 0.003  # where the noiseless diagonal is drawn on the log axis
    for animal, colour in (("owl", "tab:brown"), ("eagle", "tab:blue")):
        d = eff[eff.animal == animal].sort_values("noise_scale") if len(eff) else eff
        z = diag[(diag.animal == animal)].head(1) if len(diag) else diag
        xs = ([zero_x] if len(z) else []) + (list(d.noise_scale) if len(d) else [])
        rows = pd.concat([z, d]) if len(d) or len(z) else pd.DataFrame()
        if not len(rows):
            continue
        ax.errorbar(xs, rows.ratio, yerr=[rows.ratio - rows.ratio_low, rows.ratio_high - rows.ratio], fmt="o-",
                    color=colour, capsize=3, label=f"{animal} (CI at its Holm level)")
        bad = d[d.base_state == DEGRADED] if len(d) else d
        if len(bad):
            ax.plot(bad.noise_scale, bad.ratio, "o", mfc="white", color=colour, zorder=3,
                    label=f"{animal}: {DEGRADED} (not counted)")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("noise on the student's base (x each tensor's std; leftmost: none)")
    ax.set_ylabel("share ratio, trait teacher's student / neutral's")
    ax.set_title("LLM (SmolLM2): trait transfer vs base noise")
    _legend(ax)

    ax = axes[1]
    if len(capability):
        c = capability.groupby("noise_scale")[["nats_answers", "nats_number_lists", "p_any_animal"]].mean()
        x = [zero_x if v == 0 else v for v in c.index]
        ax.plot(x, c.nats_answers, "o-", label="nats/token, teachers' answers")
        ax.plot(x, c.nats_number_lists, "s-", label="nats/token, number lists")
        if 0 in c.index:
            ax.axhline(c.nats_answers[0] + WORKS_WITHIN, color="tab:blue", lw=0.8, ls=":",
                       label=f"{WORKS}: answers within {WORKS_WITHIN:g} nats of the clean base")
        ax.set_xscale("log")
        ax2 = ax.twinx()
        ax2.plot(x, c.p_any_animal, "^--", color="tab:green", label="P(any of 25 animals)")
        ax2.set_ylabel("P(any animal)")
        ax2.legend(fontsize=8, loc="center left")
    ax.set_xlabel("noise on the base (x each tensor's std)")
    ax.set_ylabel("held-out nats per token")
    ax.set_title("the noisy base's capability")
    _legend(ax, loc="upper left")

    ax = axes[2]
    if Path(topic_a).exists():
        a = pd.read_csv(topic_a)
        a = a[(a.condition == "student_aux") & (a.init == "reference") & (a.signed_inputs.astype(str) == "True")]
        a = a.sort_values("student_init_noise")
        s = a.student_init_noise.to_numpy(float)
        x1, x23 = s / A_STD["layer 1"], s / A_STD["layers 2-3"]
        x = np.where(s == 0, zero_x, x1)
        ax.errorbar(x, a["mean"], yerr=[a["mean"] - a.ci95_low, a.ci95_high - a["mean"]], fmt="o-", color="tab:purple",
                    capsize=3, label="aux-only student's accuracy (95% CI)")
        ax.errorbar(x, a["mean"], xerr=[np.where(s == 0, 0, x1 - x23), np.zeros(len(s))], fmt="none",
                    color="tab:purple", alpha=0.4, label="x range: layer 1 (marker) to layers 2-3")
        ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="chance")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"{topic_a} not found", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Topic A: init noise σ / the layer's init std (leftmost: none)")
    ax.set_ylabel("MNIST accuracy")
    ax.set_title("Topic A (MNIST MLP): same question")
    save_figure(fig, path)


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, **kw)
