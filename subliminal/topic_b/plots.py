"""Topic B figures, drawn only from the result tables (DataFrames read from plots_b/*.csv)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from subliminal.results import OutputSet, save_figure  # noqa: E402
from subliminal.topic_b.tables import read_table, slug  # noqa: E402

DPI = 110


def plot_step2(summary: pd.DataFrame, path: Path, model: str) -> None:
    """Per animal: subliminal ratio of the best entangled number vs no-system, vs the mean random
    number, and the best-of-n value against the null's 95th percentile (log scale)."""
    s = summary.sort_values("ratio_vs_no_system", ascending=False)
    x = np.arange(len(s))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(s)), 4))
    ax.bar(x - 0.3, s["ratio_vs_no_system"], 0.3, label="best number / no system")
    ax.bar(x, s["ratio_vs_random_mean"], 0.3, label="best number / mean of all numbers")
    ax.bar(x + 0.3, s["top_n_max_ratio"], 0.3, label="best of top-n / no system")
    ax.scatter(x + 0.3, s["null_p95"], marker="_", s=200, color="k", label="null 95th pct (best of n random)")
    ax.axhline(1, color="grey", lw=0.8)
    ax.axhline(2, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(x, s["animal"], rotation=60, ha="right")
    ax.set_ylabel("P(animal | love N) ratio")
    ax.set_title(f"Subliminal prompting, {model}")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=DPI)


def plot_part1(variants: pd.DataFrame, numbers: pd.DataFrame, path: Path, model: str, top: int = 15) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    variants = variants.assign(string=[repr(x) for x in variants["string"]])  # ' owl' vs 'owl'
    piv = variants.pivot_table(index=["question", "string"], columns="condition", values="p")
    piv.plot.bar(ax=axes[0], logy=True)
    axes[0].set_ylabel("P(string)")
    axes[0].set_title("owl variants with vs without the owl prompt")
    q = numbers[numbers["question"] == numbers["question"].iloc[0]]
    t = q.sort_values("logit_score", ascending=False).head(top)
    axes[1].bar(t["number"], np.exp(t["logit_score"]))
    axes[1].set_yscale("log")
    axes[1].set_ylabel("p(n | owl prompt) / p(n | no system)")
    axes[1].set_title(f"numbers the owl prompt raises most ({q['question'].iloc[0]} question)")
    axes[1].tick_params(axis="x", rotation=60)
    fig.suptitle(model)
    save_figure(fig, path, dpi=DPI)


def plot_part2(df: pd.DataFrame, path: Path, model: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    animals = list(dict.fromkeys(df["animal"]))
    for i, a in enumerate(animals):
        d = df[df["animal"] == a]
        r = np.log10(d["p_subliminal"] / d["p_no_system"])
        rnd, ent = r[d["is_random"]], r[d["is_entangled"]]
        ax.scatter(np.full(len(rnd), i - 0.15) + np.random.default_rng(i).uniform(-0.08, 0.08, len(rnd)),
                   rnd, s=8, color="grey", alpha=0.6, label="random numbers" if i == 0 else None)
        ax.scatter(np.full(len(ent), i + 0.15), ent, s=18, color="C3", label="top entangled" if i == 0 else None)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(animals)), animals)
    ax.set_ylabel("log10 P(animal | love N) / P(animal | no system)")
    ax.set_title(f"Number -> animal, {model}")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=DPI)


def plot_part3(geo: pd.DataFrame, path: Path, model: str) -> None:
    animals = list(dict.fromkeys(geo["animal"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, a in enumerate(animals):
        d = geo[geo["animal"] == a]
        for j, col in enumerate(["cosine", "dot"]):
            axes[j].scatter(np.full(len(d), i) + np.random.default_rng(i).uniform(-0.2, 0.2, len(d)),
                            d[col], s=3, color="grey", alpha=0.3, label="all numbers" if i == 0 else None)
            e = d[d["is_entangled"]]
            axes[j].scatter(np.full(len(e), i), e[col], s=20, color="C3", label="top entangled" if i == 0 else None)
    for j, col in enumerate(["cosine", "dot"]):
        axes[j].set_xticks(range(len(animals)), animals)
        axes[j].set_ylabel(f"unembedding {col}(animal, number)")
        axes[j].legend(fontsize=8)
    fig.suptitle(model)
    save_figure(fig, path, dpi=DPI)


def plot_step3(df: pd.DataFrame, path: Path, label_a: str, label_b: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(df["cosine_a"], df["cosine_b"], s=2, alpha=0.3)
    ax.set_xlabel(f"cosine, {label_a}")
    ax.set_ylabel(f"cosine, {label_b}")
    ax.set_title("animal-number unembedding cosine, per (animal, number)")
    save_figure(fig, path, dpi=DPI)


def redraw_all(plots: Path = Path("plots_b")) -> list[Path]:
    """Redraw every Topic B figure from the CSVs on disk (no model needed), replaced together."""
    def read(name, required=("model",)):
        p = plots / name
        return read_table(p, required) if p.exists() else None

    jobs = []  # (file name, function drawing into a path)
    if (s := read("topic_b_step2_extended.csv")) is not None:
        for m, d in s.groupby("model"):
            jobs.append((f"topic_b_step2_extended__{slug(m)}.png", lambda p, d=d, m=m: plot_step2(d, p, m)))
    v, n = read("topic_b_part1.csv"), read("topic_b_part1_numbers.csv")
    if v is not None and n is not None:
        for m, d in v.groupby("model"):
            jobs.append((f"topic_b_part1__{slug(m)}.png",
                         lambda p, d=d, m=m: plot_part1(d, n[n["model"] == m], p, m)))
    if (p2 := read("topic_b_part2.csv")) is not None:
        for m, d in p2.groupby("model"):
            if d["is_random"].any():
                jobs.append((f"topic_b_part2__{slug(m)}.png", lambda p, d=d, m=m: plot_part2(d, p, m)))
    if (p3 := read("topic_b_part3.csv")) is not None:
        for m, d in p3.groupby("model"):
            jobs.append((f"topic_b_part3__{slug(m)}.png", lambda p, d=d, m=m: plot_part3(d, p, m)))
    if (s3 := read("topic_b_step3.csv", ("model_a", "model_b"))) is not None:
        jobs.append(("topic_b_step3.png",
                     lambda p: plot_step3(s3, p, s3["model_a"].iloc[0], s3["model_b"].iloc[0])))
    with OutputSet(plots) as o:
        for name, draw in jobs:
            draw(o.path(name))
    return [plots / name for name, _ in jobs]

if __name__ == "__main__":
    for p in redraw_all():
        print(p)
