"""How the noise regime drives transfer (issue: fixed vs fresh, shared vs per-model, pool size).

Every setting distils the same teachers for the same number of optimiser steps (n_distill inputs per
model per epoch); only where the inputs come from changes. Each setting is compared with the
reference regime (a fixed set of 60,000 uniform-noise images per model) by a paired test over models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from subliminal.stats import paired_test
from subliminal.topic_a.distill import distill
from subliminal.topic_a.inputs import ImageSource, NoiseSource
from subliminal.topic_a.train import TopicA, lazy_teacher


def size_label(n: int) -> str:
    """60000 -> '60k' (setting names)."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def reference_name(n_distill: int) -> str:
    """The reference regime: a fixed set of n_distill (60k) noise images per model, reused every epoch."""
    return f"noise fixed {size_label(n_distill)} per-model"


def settings(A: TopicA, pool_sizes: Sequence[int], mnist_sizes: Sequence[int]) -> dict[str, object]:
    c = A.cfg
    out: dict[str, object] = {}
    for shared in (False, True):
        tag = "shared" if shared else "per-model"
        for k in pool_sizes:
            out[f"noise fixed {size_label(k)} {tag}"] = NoiseSource("uniform", c.n_models, c.seed, c.signed_inputs, "fixed", shared,
                                                           n_images=k, n_per_epoch=c.n_distill, batch_size=c.batch_size,
                                                           device=str(A.device))
        out[f"noise fresh {tag}"] = NoiseSource("uniform", c.n_models, c.seed, c.signed_inputs, "fresh", shared,
                                                n_per_epoch=c.n_distill, batch_size=c.batch_size, device=str(A.device))
    for k in mnist_sizes:
        out[f"mnist {size_label(k)}"] = ImageSource("mnist", A.x_train[:k], c.seed, c.batch_size, n_per_epoch=c.n_distill)
    return out


ORDER = ("noise fresh shared", "noise fresh per-model")
PARAMS = ("source", "regime", "pool", "shared", "is_reference")


def setting_table(n_distill: int, pool_sizes: Sequence[int], mnist_sizes: Sequence[int]) -> pd.DataFrame:
    """Each setting's parameters as columns (built with the names, never parsed from them): input source
    (noise/mnist), regime (fixed pool / fresh every batch), pool (distinct images per model; 0 = fresh),
    shared (one batch for all models) and whether it is the reference regime."""
    rows = [("noise", "fixed", k, tag == "shared") for tag in ("per-model", "shared") for k in sorted({*pool_sizes, n_distill})]
    rows += [("noise", "fresh", 0, False), ("noise", "fresh", 0, True)] + [("mnist", "fixed", k, False) for k in mnist_sizes]
    out = []
    for src, regime, k, shared in rows:
        name = (f"mnist {size_label(k)}" if src == "mnist" else f"noise {regime}" + (f" {size_label(k)}" if k else "") +
                (" shared" if shared else " per-model"))
        out.append({"setting": name, "source": src, "regime": regime, "pool": k, "shared": shared,
                    "is_reference": name == reference_name(n_distill)})
    return pd.DataFrame(out)


def run(A: TopicA, pool_sizes: Sequence[int], mnist_sizes: Sequence[int], curve_milestones: Sequence[int],
        conditions: Sequence[str] = ("student_aux", "cross_aux"),
        curve_conditions: Sequence[str] = ("student_aux", "cross_aux"),
        n_settings: int | None = None) -> pd.DataFrame:
    """All regime settings (or the first `n_settings` of them, in `setting_names` order), then the curve."""
    c = A.cfg
    teacher = lazy_teacher(A, c.teacher_epochs)
    parts = []
    srcs = settings(A, pool_sizes, mnist_sizes)
    names = setting_names(c.n_distill, pool_sizes, mnist_sizes)
    assert set(names) == set(srcs), "setting_names and settings disagree"
    for name in names[:n_settings]:
        df = distill(A, c.teacher_epochs, conditions, [c.distill_epochs], srcs[name], teacher=teacher)
        df.insert(0, "part", "regime")
        df.insert(1, "setting", name)
        parts.append(df)
    if curve_milestones:
        curve_sources = settings(A, [c.n_distill], [])
        for name in (reference_name(c.n_distill), "noise fresh per-model"):
            src = curve_sources[name]
            # the reference curve is exp1's (cached with both conditions); the fresh one may be thinner
            conds = conditions if name == reference_name(c.n_distill) else curve_conditions
            df = distill(A, c.teacher_epochs, conds, curve_milestones, src, teacher=teacher)
            df.insert(0, "part", "curve")
            df.insert(1, "setting", name)
            parts.append(df)
    return pd.concat(parts, ignore_index=True)


def setting_names(n_distill: int, pool_sizes: Sequence[int], mnist_sizes: Sequence[int]) -> list[str]:
    """Settings in run order: the reference first, then fresh noise (the issue's headline contrast), then the rest."""
    names = [f"noise fixed {size_label(k)} {tag}" for tag in ("per-model", "shared") for k in pool_sizes]
    names += ["noise fresh per-model", "noise fresh shared"] + [f"mnist {size_label(k)}" for k in mnist_sizes]
    ref = reference_name(n_distill)
    first = [n for n in (ref, *ORDER) if n in names]
    return first + [n for n in names if n not in first]


def stages(n_distill: int, pool_sizes: Sequence[int], mnist_sizes: Sequence[int],
           curve_milestones: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    """Checkpoints for partial outputs: (settings done, curve milestones done), one per setting, then one per milestone."""
    n = len(setting_names(n_distill, pool_sizes, mnist_sizes))
    ms = sorted(curve_milestones)
    return [(i, ()) for i in range(1, n + 1)] + [(n, tuple(ms[:j])) for j in range(1, len(ms) + 1)]


def contrast_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """The issue's specific contrasts among the settings present: shared vs per-model (same pool), and real
    MNIST vs uniform noise at the same number of distinct images per model."""
    have = set(names)
    pairs = []
    for n in names:
        if n.startswith("noise ") and n.endswith(" shared") and n.replace(" shared", " per-model") in have:
            pairs.append((n, n.replace(" shared", " per-model")))
    for n in names:
        if n.startswith("mnist ") and f"noise fixed {n[6:]} per-model" in have:
            pairs.append((n, f"noise fixed {n[6:]} per-model"))
    return pairs


def tests_vs_reference(df: pd.DataFrame, n_distill: int = 60_000) -> pd.DataFrame:
    """Paired tests of aux-only students (same models): every setting against the reference regime (n_distill
    images per model) at the same distillation length, then the contrasts of `contrast_pairs` (column `b` names
    the comparison)."""
    rows = []
    ref_name = reference_name(n_distill)
    for (part, ep), g in df[df.condition == "student_aux"].groupby(["part", "distill_epochs"]):
        acc = {name: h.sort_values("model").accuracy.to_numpy() for name, h in g.groupby("setting")}
        if ref_name in acc:
            rows += [{"part": part, "distill_epochs": ep, "a": name, "b": ref_name, **paired_test(a, acc[ref_name])}
                     for name, a in acc.items() if name != ref_name]
        rows += [{"part": part, "distill_epochs": ep, "a": a, "b": b, **paired_test(acc[a], acc[b])}
                 for a, b in contrast_pairs(list(acc)) if b != ref_name]
    return pd.DataFrame(rows)


def with_params(df: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame, cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extras: each setting's parameters (from `cfg`, the script's config) as columns of the summary and (for
    setting a) the tests, plus `contrast`."""
    p = setting_table(cfg.n_distill, cfg.pool_sizes, cfg.mnist_sizes).set_index("setting")
    summary = summary.join(p, on="setting")
    if len(tests):
        tests = tests.join(p, on="a")
        b = p.reindex(tests.b).reset_index(drop=True)
        a = tests.reset_index(drop=True)
        same_pool = (a.regime == b.regime) & (a.pool == b.pool)
        tests["contrast"] = np.where((a.source == "mnist") & (b.source == "noise") & same_pool, "mnist_vs_noise",
                                     np.where(a.shared.fillna(False).astype(bool) & ~b.shared.fillna(False).astype(bool) & same_pool, "shared_vs_per_model",
                                              "vs_reference"))
        tests = tests[[c for c in tests.columns if c not in PARAMS and c != "contrast"] + ["contrast", *PARAMS]]
    return summary, tests
