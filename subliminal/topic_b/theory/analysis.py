"""The ladder's statistics, once, from the students' records: tidy rows, then per cell x animal x milestone the
effect of the animal's teacher against the neutral weight teacher, with CIs over seeds and the minimum
detectable effect, specificity, and the cosines of the updates.

Per seed (students of one seed share their contexts, so arms are paired by seed) and question:
- share: log [P(animal) / sum over the 25 animals] of the student of the animal's teacher, minus that of the
  neutral teacher's student (primary: a generic rise in naming animals cancels);
- dlogp_vs_neutral, dlogp_vs_base: the same for log P(animal), and against the base model;
- own_vs_other: the animal's share under its own teacher minus under the other animal's (specificity).
Each is averaged over the questions per seed; the CI is over seeds (t, n - 1 df). Verdict, per cell and animal at
the last milestone, inside the family ``cells.FAMILIES`` declares for it before any data (primary: cells a and b;
rung effects: the others; rung - b contrasts: the rungs), Holm-corrected inside that family with its size fixed by
the declaration (``family_levels``): transfer / reverse when significant, in the direction of the mean, else none
detected; too few seeds below ``MIN_SEEDS`` (3). The CI and the MDE ((t_{1-l/2} + t_.80) x SE) printed beside a
verdict are at the level l its Holm step uses, so they agree with it; specific when own_vs_other's 95% CI is
above 0.

The theorem's own quantity, the cosine of the student's update with a teacher's update, is tested against the
student of the neutral teacher of the same seed, read against the *same* teacher vector (``cosine_contrasts``):
cos(owl student, owl teacher) - cos(neutral student, owl teacher). All three teachers share their recipe, so
every student's update lines up with every teacher's somewhat; this pairing removes that generic part. Per layer
too (``cosine_layer_summary``).

The paper reads the trait by sampling answers and counting the animal. Here the exact P(animal) is the primary
readout (sampling estimates it with noise); ``sampling_power`` says how many samples per arm that sampled readout
would need to see each cell's effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from subliminal.stats import holm
from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.theory.cells import FAMILIES, REFERENCE, effect_family

ALPHA = 0.05  # every family's family-wise error rate
POWER = 0.8  # the power at which an MDE is stated
MIN_SEEDS = 3  # no verdict below this: with 2 seeds the t-test has 1 df, and two seeds that agree by chance pass it
TARGET_RATIO = 1.10  # issue 41: the primary family's MDE at its Holm level should reach this share ratio


def tidy(records: list[dict], base_pref: pd.DataFrame, cell_label) -> pd.DataFrame:
    """One row per student x milestone x question x animal (logp, share), plus the base model as step 0 of 'base'."""
    rows = []
    for r in records:
        for step, m in r["milestones"].items():
            logp = np.asarray(m["logp"], float).reshape(len(m["questions"]), len(m["animals"]))
            share = logp - np.logaddexp.reduce(logp, axis=1, keepdims=True)
            for qi, q in enumerate(m["questions"]):
                for ai, a in enumerate(m["animals"]):
                    rows.append({"cell": cell_label(r), "teacher": r["arm"]["trait"], "seed": r["seed"], "step": int(step),
                                 "question": q, "animal": a, "logp": logp[qi, ai], "share": share[qi, ai]})
    df = pd.DataFrame(rows)
    b = base_pref.rename(columns={"logp_animal": "logp"}).assign(cell="base", teacher="base", seed=-1, step=0)
    if not len(df):
        return b
    # an empty base frame joins nothing: concatenated, its untyped columns would turn the numbers into objects
    return pd.concat([b[df.columns], df], ignore_index=True) if len(b) else df


def _ci(v: np.ndarray) -> dict:
    """Mean, 95% CI (t, n - 1 df), two-sided p against 0, the SE and the MDE at 5% (80% power) over seeds."""
    n = len(v)
    if n < 2:
        return {"n_seeds": n, "mean": float(v.mean()) if n else np.nan, "ci95_low": np.nan, "ci95_high": np.nan,
                "p": np.nan, "mde": np.nan, "se": np.nan}
    se = v.std(ddof=1) / np.sqrt(n)
    t = stats.t.ppf(0.975, n - 1)
    p = float(2 * stats.t.sf(abs(v.mean() / se), n - 1)) if se > 0 else (0.0 if v.mean() else 1.0)
    return {"n_seeds": n, "mean": float(v.mean()), "ci95_low": float(v.mean() - t * se), "ci95_high": float(v.mean() + t * se),
            "p": p, "mde": mde(se, n - 1, ALPHA), "se": float(se)}


def mde(se: float, df: int, level: float, power: float = POWER) -> float:
    """The smallest true effect a two-sided test at `level` over these seeds detects with `power`."""
    return float((stats.t.ppf(1 - level / 2, df) + stats.t.ppf(power, df)) * se) if df >= 1 else np.nan


def _per_seed(df: pd.DataFrame, animal: str, a: str, b: str, col: str) -> np.ndarray:
    """Per seed: mean over questions of `col` for `animal` under teacher a minus under teacher b (seeds both have)."""
    return _by_seed(df, animal, a, b, col).to_numpy()


def _by_seed(df: pd.DataFrame, animal: str, a: str, b: str, col: str) -> pd.Series:
    """`_per_seed`, indexed by seed."""
    x = df[(df.animal == animal) & (df.teacher == a)].set_index(["seed", "question"])[col]
    if b == "base":
        base = df[(df.teacher == "base") & (df.animal == animal)].set_index("question")[col]
        d = x - base.reindex(x.index.get_level_values("question")).to_numpy()
    else:
        y = df[(df.animal == animal) & (df.teacher == b)].set_index(["seed", "question"])[col]
        d = (x - y).dropna()
    return d.groupby("seed").mean() if len(d) else pd.Series(dtype=float)


def summary(df: pd.DataFrame, cells: list[str], animals: list[str]) -> pd.DataFrame:
    rows = []
    base = df[df.teacher == "base"]
    for cell in cells:
        g = df[df.cell == cell]
        for step in sorted(set(g.step)):
            h = pd.concat([g[g.step == step], base])
            for animal in animals:
                if animal not in set(h.teacher):
                    continue
                other = next((a for a in animals if a != animal and a in set(h.teacher)), None)
                comps = {"share_vs_neutral": (animal, NEUTRAL, "share"), "dlogp_vs_neutral": (animal, NEUTRAL, "logp"),
                         "dlogp_vs_base": (animal, "base", "logp"), "neutral_dlogp_vs_base": (NEUTRAL, "base", "logp")}
                if other:
                    comps["share_own_vs_other"] = (animal, other, "share")
                for name, (a, b, col) in comps.items():
                    rows.append({"cell": cell, "step": step, "animal": animal, "measure": name, "teacher": a, "versus": b,
                                 **_ci(_per_seed(h, animal, a, b, col))})
    return pd.DataFrame(rows)


def rung_contrasts(df: pd.DataFrame, cells: list[str], animals: list[str], ref: str = REFERENCE.key,
                   alpha: float = ALPHA) -> pd.DataFrame:
    """What each rung changes against the reference cell `ref` (cell b): per cell x animal, each at its last
    milestone, the rung's share effect (own teacher vs neutral, per seed) minus the reference's of the same seed,
    mean, p, and a reading in the declared family 'rungs' (``cells.FAMILIES``; Holm inside it, at the row's Holm
    level, ``family_levels``): 'smaller than b' / 'larger than b' where significant, else 'not distinguishable from
    b' (with the MDE at that level); 'too few seeds' below ``MIN_SEEDS``. That a rung shows no transfer while b does
    is not by itself evidence that its condition matters (the difference between a significant and a
    non-significant effect need not be significant): this is that difference, tested.

    Also how much of b's effect the rung keeps: ``keep`` = mean(rung) / mean(b) over the paired seeds, with
    Fieller's CI at the row's level (``keep_ratio``); descriptive, no verdict rests on it."""
    def effect(cell: str, animal: str) -> pd.Series:
        g = df[df.cell == cell]
        return _by_seed(g[g.step == g.step.max()], animal, animal, NEUTRAL, "share") if len(g) else pd.Series(dtype=float)

    rows = []
    for cell in cells:
        if cell == ref:
            continue
        for animal in animals:
            x, y = effect(cell, animal), effect(ref, animal)
            both = pd.concat({"x": x, "y": y}, axis=1).dropna()
            if not len(both):
                continue
            rows.append({"cell": cell, "versus": ref, "animal": animal, "step": int(df[df.cell == cell].step.max()),
                         **_ci((both.x - both.y).to_numpy()), "_x": both.x.to_numpy(), "_y": both.y.to_numpy()})
    v = pd.DataFrame(rows)
    if not len(v):
        return v
    v.insert(3, "family", "rungs")
    v = family_levels(v, alpha)
    keep = [keep_ratio(x, y, lvl if np.isfinite(lvl) else alpha) for x, y, lvl in zip(v["_x"], v["_y"], v["level"])]
    v = pd.concat([v.drop(columns=["_x", "_y"]), pd.DataFrame(keep, index=v.index)], axis=1)
    v["reading"] = _words(v, ("not distinguishable from b", "larger than b", "smaller than b"))
    return v


def keep_ratio(x: np.ndarray, y: np.ndarray, level: float = ALPHA) -> dict:
    """mean(x) / mean(y) over paired seeds, with Fieller's CI at 1 - `level` (t, n - 1 df): the ratios r for which
    mean(x - r y) is not rejected. NaN bounds where mean(y) is not itself significant (the set is then unbounded)."""
    n = len(x)
    out = {"keep": float(x.mean() / y.mean()) if y.mean() else np.nan, "keep_ci_low": np.nan, "keep_ci_high": np.nan}
    if n < 2:
        return out
    t2 = stats.t.ppf(1 - level / 2, n - 1) ** 2
    c = np.cov(x, y, ddof=1) / n
    a, b = x.mean(), y.mean()
    qa, qb, qc = b * b - t2 * c[1, 1], -2 * (a * b - t2 * c[0, 1]), a * a - t2 * c[0, 0]
    disc = qb * qb - 4 * qa * qc
    if qa > 0 and disc >= 0:
        lo, hi = sorted(((-qb - np.sqrt(disc)) / (2 * qa), (-qb + np.sqrt(disc)) / (2 * qa)))
        out.update(keep_ci_low=float(lo), keep_ci_high=float(hi))
    return out


def family_levels(v: pd.DataFrame, alpha: float = ALPHA, families: dict | None = None) -> pd.DataFrame:
    """Holm inside each declared family (``cells.FAMILIES``; column ``family``), with the family's size fixed by
    its declaration: a declared test without ``MIN_SEEDS`` seeds (or not run) counts as p = 1, so the rows of one
    family never move another's, and a row gaining seeds can only lower the others' adjusted p (Holm is monotone).

    Adds ``p_holm``; ``level``, the row's Holm level alpha x p / p_holm (between alpha / m and the row's Holm step
    level alpha / (m - rank + 1)), at which its CI and MDE are stated, so that 'the CI excludes 0' and 'p_holm <
    alpha' always agree; ``ci_low``/``ci_high`` at that level; ``mde_level``, the MDE at that level. Rows below
    ``MIN_SEEDS`` keep their 95% CI only (``level`` NaN). `families`: another experiment's declaration, in the same
    form (family -> its (cell, animal) members), e.g. the base matrix's (``matrix_analysis.FAMILIES``)."""
    v = v.copy()
    v["p_holm"], v["level"], v["ci_low"], v["ci_high"], v["mde_level"] = np.nan, np.nan, np.nan, np.nan, np.nan
    for fam, members in (FAMILIES if families is None else families).items():
        rows = v.index[(v.family == fam)]
        tested = [i for i in rows if v.at[i, "n_seeds"] >= MIN_SEEDS and np.isfinite(float(v.at[i, "p"]))]
        pos = {(v.at[i, "cell"], v.at[i, "animal"]): i for i in tested}
        unknown = set(pos) - set(members)
        if unknown:
            raise ValueError(f"rows outside the declared family {fam!r}: {sorted(unknown)}")
        p = np.array([float(v.at[pos[m], "p"]) if m in pos else 1.0 for m in members])
        adj = holm(p) if len(p) else p
        for m, pa in zip(members, adj):
            if m not in pos:
                continue
            i = pos[m]
            raw, se, df = float(v.at[i, "p"]), float(v.at[i, "se"]), int(v.at[i, "n_seeds"]) - 1
            lvl = alpha * raw / pa if pa > 0 else alpha
            half = stats.t.ppf(1 - lvl / 2, df) * se
            v.loc[i, ["p_holm", "level", "ci_low", "ci_high", "mde_level"]] = [
                pa, lvl, v.at[i, "mean"] - half, v.at[i, "mean"] + half, mde(se, df, lvl)]
    return v


def _words(v: pd.DataFrame, words: tuple[str, str, str], alpha: float = ALPHA) -> np.ndarray:
    """Per row: "too few seeds" below ``MIN_SEEDS``, else words[0] (not significant after Holm), words[1]
    (significant, mean > 0), words[2] (significant, mean < 0)."""
    ok = np.isfinite(v.p_holm.astype(float))
    sig = ok & (v.p_holm < alpha)
    return np.where(~ok, "too few seeds", np.where(~sig, words[0], np.where(v["mean"] > 0, words[1], words[2])))


def seeds_needed(sd: float, target: float, m: int, alpha: float = ALPHA, power: float = POWER, cap: int = 200) -> int:
    """The fewest seeds at which the MDE at the Bonferroni level alpha / m (Holm's first and strictest step, so
    the plan holds at every step) reaches `target` (log share) for a seed-to-seed SD of `sd`; `cap` + 1 if never."""
    for n in range(MIN_SEEDS, cap + 1):
        if mde(sd / np.sqrt(n), n - 1, alpha / m, power) <= target:
            return n
    return cap + 1


def power_plan(summ: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per primary test, from the seeds on record: the seed-to-seed SD of the share effect, the MDE now at the
    family's strictest Holm level (alpha / m), and the seeds at which that MDE would reach ``TARGET_RATIO``."""
    members = FAMILIES["primary"]
    rows = []
    last = summ[summ.measure == "share_vs_neutral"]
    for cell, animal in members:
        g = last[(last.cell == cell) & (last.animal == animal)]
        if not len(g):
            continue
        r = g[g.step == g.step.max()].iloc[0]
        n, sd = int(r.n_seeds), float(r.se) * np.sqrt(int(r.n_seeds))
        rows.append({"cell": cell, "animal": animal, "n_seeds": n, "sd_per_seed": sd,
                     "mde_ratio_now": float(np.exp(mde(float(r.se), n - 1, alpha / len(members)))),
                     "target_ratio": TARGET_RATIO,
                     "seeds_needed": seeds_needed(sd, float(np.log(TARGET_RATIO)), len(members), alpha)})
    return pd.DataFrame(rows)


def sampling_power(df: pd.DataFrame, cells: list[str], animals: list[str], power: float = 0.8,
                   alpha: float = 0.05) -> pd.DataFrame:
    """What the paper's readout, the sampled frequency of answers that name the animal, would need to see each
    cell's effect. Per cell x animal at the last milestone: the mean P(animal) over questions and seeds of the
    animal teacher's students and of the neutral teacher's (the exact P is, to the answer's first word, the
    expectation of that frequency), their ratio, and the samples per arm a two-sided two-proportion z-test at
    `alpha` needs for `power` (pooled variance under the null)."""
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    rows = []
    for cell in cells:
        g = df[df.cell == cell]
        if not len(g):
            continue
        g = g[g.step == g.step.max()]
        for animal in animals:
            own, neu = (g[(g.teacher == t) & (g.animal == animal)] for t in (animal, NEUTRAL))
            if not len(own) or not len(neu):
                continue
            p1, p0 = float(np.exp(own.logp).mean()), float(np.exp(neu.logp).mean())
            pbar = (p1 + p0) / 2
            n = (za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(p1 * (1 - p1) + p0 * (1 - p0))) ** 2 / (p1 - p0) ** 2 \
                if p1 != p0 else np.inf
            rows.append({"cell": cell, "animal": animal, "step": int(g.step.max()), "n_seeds": own.seed.nunique(),
                         "p_own": p1, "p_neutral": p0, "ratio": p1 / p0, "samples_per_arm": n})
    return pd.DataFrame(rows)


def fit_summary(cos: pd.DataFrame) -> pd.DataFrame:
    """How far each cell's students went, per cell x teacher at the last milestone, mean over seeds: the training
    loss (KL to the teacher, over the last 10 steps; cross-entropy for cell c's SFT), the update's norm and its
    cosine with its own teacher's update. A rung whose students fit the teacher less (e.g. SGD at a stable learning
    rate) is not the same test as one whose students fit it well: read its verdict with this beside it."""
    if not len(cos):
        return pd.DataFrame()
    own = cos[cos.versus_teacher == cos.teacher]
    own = own[own.step == own.groupby("cell").step.transform("max")]
    return (own.groupby(["cell", "teacher"], sort=False)
            .agg(step=("step", "first"), n_seeds=("seed", "nunique"), loss=("kl", "mean"),
                 update_norm=("update_norm", "mean"), cosine_own=("cosine", "mean")).reset_index())


def cosine_rows(records: list[dict], cell_label) -> pd.DataFrame:
    """Per student x milestone: the cosine of its update with each teacher's update (own, other, neutral)."""
    rows = []
    for r in records:
        for step, m in r["milestones"].items():
            for t, c in m.get("cos_all", {}).items():
                rows.append({"cell": cell_label(r), "teacher": r["arm"]["trait"], "seed": r["seed"], "step": int(step),
                             "versus_teacher": t, "cosine": c, "init_cos_a": r.get("init_cos_a", np.nan),
                             "update_norm": m.get("update_norm", np.nan), "kl": m.get("kl", np.nan)})
    return pd.DataFrame(rows)


def verdicts(s: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per cell x animal at its last milestone, in its declared family (``cells.effect_family``: a and b are the
    primary family, every other cell a secondary one): transfer / reverse / none detected after Holm inside the
    family (``family_levels``: CI and MDE at the row's Holm level), 'too few seeds' below ``MIN_SEEDS``; specific
    or not (own teacher vs the other animal's teacher, 95% CI; only read where the row transfers)."""
    out = []
    for (cell, animal), g in s.groupby(["cell", "animal"], sort=False):
        last = g[g.step == g.step.max()].set_index("measure")
        if "share_vs_neutral" not in last.index:
            continue
        r = last.loc["share_vs_neutral"]
        spec = last.loc["share_own_vs_other"] if "share_own_vs_other" in last.index else None
        specific = "" if spec is None or not np.isfinite(spec.ci95_low) else ("yes" if spec.ci95_low > 0 else "no")
        out.append({"cell": cell, "animal": animal, "step": int(g.step.max()), "family": effect_family(cell),
                    "specific": specific, "mean": r["mean"], "se": r.se, "n_seeds": int(r.n_seeds), "p": r.p,
                    "share_ci95_low": r.ci95_low, "share_ci95_high": r.ci95_high, "mde95": r.mde})
    v = pd.DataFrame(out)
    if not len(v):
        return v
    v = family_levels(v, alpha)
    v.insert(3, "verdict", _words(v, ("none detected", "transfer", "reverse")))
    return v.rename(columns={"mean": "share_mean"})


def cosine_contrasts(cos: pd.DataFrame) -> pd.DataFrame:
    """Per cell x animal teacher x milestone: cos(the animal teacher's student, that teacher) minus cos(the neutral
    teacher's student of the same seed, that teacher) (`vs='neutral student'`), and minus cos(the other animal's
    student, that teacher) (`vs='other animal student'`), mean [95% CI] over seeds."""
    rows = []
    if not len(cos):
        return pd.DataFrame(rows)
    x = cos.set_index(["cell", "step", "seed", "teacher", "versus_teacher"]).cosine
    for (cell, step), g in cos.groupby(["cell", "step"], sort=False):
        animals = [t for t in dict.fromkeys(g.teacher) if t != NEUTRAL]
        for a in animals:
            for vs, other in (("neutral student", NEUTRAL), *[("other animal student", b) for b in animals if b != a]):
                d = []
                for seed in sorted(set(g.seed)):
                    k_own, k_ref = (cell, step, seed, a, a), (cell, step, seed, other, a)
                    if k_own in x.index and k_ref in x.index:
                        d.append(float(x.loc[k_own]) - float(x.loc[k_ref]))
                rows.append({"cell": cell, "step": int(step), "teacher": a, "vs": vs, **_ci(np.asarray(d, float))})
    return pd.DataFrame(rows)


def cosine_layer_rows(records: list[dict], cell_label) -> pd.DataFrame:
    """Per student x milestone x teacher x layer: the cosine of the student's update with the teacher's, that
    layer's adapted matrices together (the records' ``cos_layers``)."""
    rows = []
    for r in records:
        for step, m in r["milestones"].items():
            for t, layers in m.get("cos_layers", {}).items():
                for layer, c in layers.items():
                    rows.append({"cell": cell_label(r), "teacher": r["arm"]["trait"], "seed": r["seed"], "step": int(step),
                                 "versus_teacher": t, "layer": int(str(layer).rsplit(".", 1)[-1]), "cosine": c})
    return pd.DataFrame(rows)


def cosine_layer_summary(layers: pd.DataFrame) -> pd.DataFrame:
    """``cosine_contrasts`` per layer (at every milestone): where in the network the own teacher's student lines
    up with the teacher more than the neutral teacher's student does; ``p_holm_layers``: Holm over the layers."""
    if not len(layers):
        return pd.DataFrame()
    parts = [cosine_contrasts(g.drop(columns="layer")).assign(layer=layer) for layer, g in layers.groupby("layer")]
    out = pd.concat(parts, ignore_index=True)
    if "cell" not in out:
        return pd.DataFrame()
    out = out.sort_values(["cell", "teacher", "vs", "step", "layer"], kind="stable").reset_index(drop=True)
    out["p_holm_layers"] = np.nan  # Holm over the layers of one (cell, teacher, vs, step)
    for _, g in out.groupby(["cell", "teacher", "vs", "step"], sort=False):
        ok = g.index[np.isfinite(g.p.to_numpy(float))]
        if len(ok):
            out.loc[ok, "p_holm_layers"] = holm(out.loc[ok, "p"].to_numpy(float))
    return out


def prerun_mde(logits_summary: pd.DataFrame) -> dict:
    """The MDE stated before the ladder ran: (t_.975 + t_.80) x the seed SE of log P(animal) vs the neutral arm of
    the logits route's students (the same base model, a number-token KL, LoRA, Adam), from its summary CSV."""
    s = logits_summary[(logits_summary.arm == logits_summary.animal) & logits_summary.ratio_to_neutral_ci_low.notna()]
    out = {}
    for r in s.itertuples():
        n = int(r.n_seeds)
        t = stats.t.ppf(0.975, n - 1)
        se = (np.log(r.ratio_to_neutral_ci_high) - np.log(r.ratio_to_neutral_ci_low)) / (2 * t)
        out[r.animal] = float(np.exp((t + stats.t.ppf(0.80, n - 1)) * se))
    return {"ratio": out, "n_seeds": int(s.n_seeds.max()), "source": "plots_b/topic_b_transfer_logits_summary.csv"} if out else {}
