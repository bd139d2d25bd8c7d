"""The summary table: per (model, arm, animal) means with 95% CIs over seeds, ratios, paired tests, verdict.

Per student seed the question-mean of log P(animal) is one number; CIs are t-intervals over seeds.
- ratio_to_base = exp(mean_s [lp(arm, s) - lp(base)]) (the base model is one deterministic model);
- ratio_to_neutral = exp(mean_s [lp(arm, s) - lp(neutral, s)]): seed s of both arms shares its LoRA init
  and data order, so the difference is paired by seed. This is the comparison that counts: fine-tuning
  on numbers from any teacher moves P(animal) by itself.
- paired test (seeds x questions) of log P(animal), arm vs neutral: t and Wilcoxon p.
- transfer per training token (to compare routes and sizes): the seed-paired shift of log P(animal) vs the
  neutral arm divided by the student's loss tokens in millions (`train_tokens`: completion tokens x epochs,
  the positions that carry a loss in either route), with its CI scaled alike: `logp_shift_per_mtok`.
- specificity (teacher's own animal only, needs another animal in the run): ratio_own_vs_other =
  exp(mean_s [d_own(s) - mean_a d_a(s)]) with d_x(s) = lp(arm, s, x) - lp(neutral, s, x) over the other
  animals a. It removes what the teacher's data does to animal answers in general (e.g. every animal
  named more or less often).
- the other-teacher control (needs a second animal teacher of the same kind in the run): ratio_vs_other_teachers
  = exp(mean_s [lp(arm, s, own) - mean_b lp(b, s, own)]) over the run's other animal-teacher arms b (same
  base: a cross arm is compared with cross arms only). It removes what *any* animal teacher's data of this
  kind does to P(own animal) (e.g. every weight-level teacher's numbers raise P(owl)): the within-student
  control above cannot. Seed CI, plus `_draws_` CI when there are K >= 2 neutral draws: the same
  draw-to-draw variance as ratio_to_neutral_draws, +- t(K-1) sqrt(v (1 + 1/B)) for B other teachers.
- 'specific': 'yes' when the own-vs-other CI lies above 1 and, where there is another animal teacher, so
  does the other-teacher CI (its draws CI when K >= 2, as the verdict); 'no' when one of them does not.
- neutral data draws (arms 'neutral', 'neutral_2', ...: the neutral teacher's data drawn K times, same
  prompts): the seed CI above is conditional on the one draw of teacher data each arm trained on; a draw
  of numbers can move P(animal) by itself. ratio_to_neutral_draws = exp(m_arm - mean_k m_k), m_x the
  seed-mean of arm x over the seeds all of them share; its CI treats each arm's m_x as one draw from a
  distribution whose variance v (draw + training noise) the K neutral draws estimate:
  +- t(K-1) * sqrt(v (1 + 1/K)). With K = 2 that is 1 degree of freedom: wide, but it is the honest
  width of "this teacher's data vs another draw of neutral data".
- a cross arm (teacher of another base model) with that model's neutral teacher in the run ('cross_neutral'):
  ratio_to_cross_neutral, seed-paired; it is the cross arm's verdict basis ('cross-model neutral teacher'),
  since the other model's numbers can move P(animal) by themselves.
- verdict for a teacher's own animal: 'transfer' when the CI of the ratio to neutral lies above 1,
  'reverse' when below, else 'none detected' with `max_ratio_excluded`: the CI's upper end, the smallest
  ratio the data rule out (the power of the null). The CI is the neutral-draws one when K >= 2
  (`verdict_basis` 'neutral draws'), else the seeds one (needs >= 2 seed pairs; 'training seeds').
- logits route only: kl_start (the exact KL(teacher || student at init) over the number tokens, nats per
  completion position), kl_end (the mean training loss of the last 10 steps; mean and CI over seeds) and
  kl_closed = 1 - kl_end / kl_start (none when kl_start < 1e-6): whether a null is a student that did not learn the teacher's number
  distributions or one that learned them without the trait.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from subliminal.stats import mean_ci, paired_test
from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.transfer.arm import OTHER_MODEL, label, neutral_row, row_kind

# the order of a run's rows: per model, base, the neutral draws, the animal teachers (and teachers evaluated like
# students) in run order, the cross model's arms
_RANK = {"base": 0, "neutral": 1, "animal": 2, "teacher": 2, "cross": 3}


def _seed_means(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(["model", "arm", "trait", "animal", "seed"], as_index=False, sort=False).agg(
        logp=("logp_animal", "mean"), p=("p_animal", "mean"), freq=("freq_animal", "mean"))


def summarize_transfer(rows: pd.DataFrame) -> pd.DataFrame:
    sm = _seed_means(rows)
    out = []
    for (model, arm, trait, animal), g in sm.groupby(["model", "arm", "trait", "animal"], sort=False):
        base = sm[(sm.model == model) & (sm.arm == "base") & (sm.animal == animal)]
        neut = sm[(sm.model == model) & (sm.arm == "neutral") & (sm.animal == animal)].set_index("seed")
        r = {"model": model, "arm": arm, "trait": trait, "animal": animal, "n_seeds": len(g)}
        for col, name in (("logp", "mean_logp"), ("p", "p_animal"), ("freq", "freq_animal")):
            m, lo, hi = mean_ci(g[col])
            if col != "logp":  # a probability: the t-interval cut to [0, 1]
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            r.update({name: m, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        b = float(base["logp"].mean()) if len(base) else np.nan
        m, lo, hi = mean_ci(g["logp"] - b)
        r.update(ratio_to_base=np.exp(m), ratio_to_base_ci_low=np.exp(lo), ratio_to_base_ci_high=np.exp(hi))
        paired = g[g.seed.isin(neut.index)]
        a_rows = rows[(rows.model == model) & (rows.arm == arm) & (rows.animal == animal)]
        mtok = (a_rows["train_tokens"].mean() if "train_tokens" in a_rows else np.nan) / 1e6
        r["train_tokens"] = mtok * 1e6
        if "kl_end" in a_rows and a_rows["kl_end"].notna().any():
            r.update(_kl_learned(a_rows))
        if arm not in ("base", "neutral") and len(paired):
            d = paired["logp"].to_numpy() - neut.loc[paired.seed, "logp"].to_numpy()
            m, lo, hi = _paired_ci(d)
            r.update(ratio_to_neutral=np.exp(m), ratio_to_neutral_ci_low=np.exp(lo),
                     ratio_to_neutral_ci_high=np.exp(hi), logp_shift_per_mtok=m / mtok,
                     logp_shift_per_mtok_ci_low=lo / mtok, logp_shift_per_mtok_ci_high=hi / mtok)
            n_rows = rows[(rows.model == model) & (rows.arm == "neutral") & (rows.animal == animal)]
            j = a_rows.merge(n_rows, on=["seed", "question"], suffixes=("", "_n"))
            if len(j) >= 2:
                t = paired_test(j["logp_animal"], j["logp_animal_n"])
                r.update(paired_n=t["n"], paired_t_p=t["t_p"], paired_wilcoxon_p=t["wilcoxon_p"])
            if trait == animal and row_kind(arm) == "cross":
                r.update(_versus_cross_neutral(sm, model, arm, animal))
            if trait == animal:
                r.update(_specificity(sm, model, arm, animal))
                r.update(_versus_draws(sm, model, arm, animal))
                r.update(_versus_other_teachers(sm, model, arm, animal))
        out.append(r)
    df = pd.DataFrame(out)
    for c in ("ratio_to_neutral", "ratio_to_neutral_ci_low", "ratio_to_neutral_ci_high", "logp_shift_per_mtok",
              "logp_shift_per_mtok_ci_low", "logp_shift_per_mtok_ci_high", "paired_n",
              "paired_t_p", "paired_wilcoxon_p", "ratio_own_vs_other", "ratio_own_vs_other_ci_low",
              "ratio_own_vs_other_ci_high", "ratio_to_neutral_draws", "ratio_to_neutral_draws_ci_low",
              "ratio_to_neutral_draws_ci_high", "n_neutral_draws", "ratio_to_neutral_draws_pooled_ci_low",
              "ratio_to_neutral_draws_pooled_ci_high", "draws_pooled_df", "draws_n_seeds", *OTHER_TEACHER_COLS):
        if c not in df:
            df[c] = np.nan
    for c in CROSS_COLS:
        if c not in df:
            df[c] = np.nan
    draws = df["n_neutral_draws"] >= 2
    df["verdict_basis"] = np.where(df["trait"] != df["animal"], "",
                                   np.where(df["ratio_to_cross_neutral"].notna(), "cross-model neutral teacher",
                                            np.where(draws, "neutral draws", "training seeds")))
    df["verdict"] = [verdict(r) for r in df.itertuples()]
    df["specific"] = [_specific(r) for r in df.itertuples()]
    high = np.where(df["verdict_basis"] == "cross-model neutral teacher", df["ratio_to_cross_neutral_ci_high"],
                    np.where(draws, df["ratio_to_neutral_draws_ci_high"], df["ratio_to_neutral_ci_high"]))
    df["max_ratio_excluded"] = np.where(df["verdict"] == "none detected", high, np.nan)
    # one order whatever order the students were trained or reported in: per model, base, the neutral
    # draws, the animal teachers (run order), the cross model's arms
    rank = [(list(df.model.unique()).index(r.model),
             _RANK[row_kind(r.arm)])
            for r in df.itertuples()]
    return df.iloc[sorted(range(len(df)), key=lambda i: rank[i])].reset_index(drop=True)


def _kl_learned(a_rows: pd.DataFrame) -> dict:
    """Logits route: the KL to the teacher at init (exact; the same for every seed) and at the end of training
    (mean over seeds, t-interval), and the share of it the students closed, 1 - kl_end / kl_start."""
    per = a_rows.groupby("seed")[["kl_start", "kl_end"]].first()
    start = float(per["kl_start"].mean())
    m, lo, hi = mean_ci(per["kl_end"])
    # no share of a KL that is rounding noise to begin with (the neutral arm: its teacher is its init)
    closed = 1 - m / start if start > 1e-6 else np.nan
    return {"kl_start": start, "kl_end": m, "kl_end_ci_low": lo, "kl_end_ci_high": hi, "kl_closed": closed}


CROSS_COLS = ("ratio_to_cross_neutral", "ratio_to_cross_neutral_ci_low", "ratio_to_cross_neutral_ci_high",
              "n_cross_pairs")


def _paired_ci(d) -> tuple[float, float, float]:
    """Mean and 95% CI of seed-paired differences; no interval (NaN) from fewer than 2 pairs: an arm ahead of
    its comparison arm by a seed must not get a zero-width CI, and so a verdict, from one pair."""
    m, lo, hi = mean_ci(d)
    return (m, lo, hi) if np.count_nonzero(~np.isnan(np.asarray(d, dtype=float))) >= 2 else (m, np.nan, np.nan)


def _versus_cross_neutral(sm: pd.DataFrame, model: str, arm: str, animal: str) -> dict:
    """A cross arm vs the cross model's own neutral teacher (arm 'cross_neutral'), paired by seed: what the
    other model's owl teacher adds over that model's numbers as such."""
    m = sm[(sm.model == model) & (sm.animal == animal)]
    by = m.pivot_table(index="seed", columns="arm", values="logp")
    if "cross_neutral" not in by or arm not in by:
        return {}
    d = (by[arm] - by["cross_neutral"]).dropna()
    if not len(d):
        return {}
    mean, lo, hi = _paired_ci(d)
    return {"ratio_to_cross_neutral": np.exp(mean), "ratio_to_cross_neutral_ci_low": np.exp(lo),
            "ratio_to_cross_neutral_ci_high": np.exp(hi), "n_cross_pairs": len(d)}


OTHER_TEACHER_COLS = ("ratio_vs_other_teachers", "ratio_vs_other_teachers_ci_low", "ratio_vs_other_teachers_ci_high",
                      "ratio_vs_other_teachers_draws_ci_low", "ratio_vs_other_teachers_draws_ci_high",
                      "n_other_teachers")


def _specific(r) -> str:
    """'yes' / 'no' / '' (no verdict or no control): see the module docstring."""
    if not r.verdict or pd.isna(r.ratio_own_vs_other):
        return ""
    lows = [r.ratio_own_vs_other_ci_low]
    if pd.notna(r.ratio_vs_other_teachers):
        draws = r.verdict_basis == "neutral draws" and pd.notna(r.ratio_vs_other_teachers_draws_ci_low)
        lows.append(r.ratio_vs_other_teachers_draws_ci_low if draws else r.ratio_vs_other_teachers_ci_low)
    if any(pd.isna(lo) for lo in lows):
        return ""  # a control with too few seed pairs for a CI: not decided yet
    return "yes" if all(lo > 1 for lo in lows) else "no"


def _versus_other_teachers(sm: pd.DataFrame, model: str, arm: str, animal: str) -> dict:
    """P(own animal) under this teacher's data vs under the run's other animal teachers' data, paired by seed."""
    m = sm[(sm.model == model) & (sm.animal == animal)]
    cross = row_kind(arm) == "cross"
    traits = m.groupby("arm", sort=False)["trait"].first().fillna("")
    others = [b for b, t in traits.items() if b != arm and (row_kind(b) == "cross") == cross and t not in ("", animal)]
    if not others:
        return {}
    table = m.pivot_table(index="seed", columns="arm", values="logp")
    by = table[[arm, *others]].dropna()
    if not len(by):
        return {}
    d = by[arm] - by[others].mean(axis=1)
    mean, lo, hi = _paired_ci(d)
    out = {"ratio_vs_other_teachers": np.exp(mean), "ratio_vs_other_teachers_ci_low": np.exp(lo),
           "ratio_vs_other_teachers_ci_high": np.exp(hi), "n_other_teachers": len(others)}
    neutral = sorted(x for x in m.arm.unique() if neutral_row(x))
    nb = table[[c for c in neutral if c in table]].loc[by.index].dropna()
    if nb.shape[1] >= 2 and len(nb) == len(by):  # the draws' variance on the same seeds as the comparison
        r = _ratio_ci("x", mean, float(nb.mean().var(ddof=1)), nb.shape[1] - 1, len(others))
        out.update(ratio_vs_other_teachers_draws_ci_low=r["x_ci_low"], ratio_vs_other_teachers_draws_ci_high=r["x_ci_high"])
    return out


def _specificity(sm: pd.DataFrame, model: str, arm: str, animal: str) -> dict:
    """Own-animal shift vs the other animals' shift, both relative to the neutral arm (a cross arm: to the cross
    model's own neutral teacher once it has students, as the other model's numbers move animals unevenly),
    paired by seed."""
    m = sm[sm.model == model]
    cross_neutral = label(Arm(NEUTRAL, teacher_model=OTHER_MODEL))
    ref = cross_neutral if row_kind(arm) == "cross" and (m.arm == cross_neutral).any() else NEUTRAL
    d = (m[m.arm == arm].set_index(["seed", "animal"])["logp"]
         - m[m.arm == ref].set_index(["seed", "animal"])["logp"]).dropna().unstack("animal")
    others = [a for a in d.columns if a != animal]
    if animal not in d.columns or not others or not len(d):
        return {}
    mean, lo, hi = _paired_ci(d[animal] - d[others].mean(axis=1))
    return {"ratio_own_vs_other": np.exp(mean), "ratio_own_vs_other_ci_low": np.exp(lo),
            "ratio_own_vs_other_ci_high": np.exp(hi)}


def _versus_draws(sm: pd.DataFrame, model: str, arm: str, animal: str) -> dict:
    """The arm vs K >= 2 draws of neutral data, with draw-to-draw variation in the CI (see the module doc).
    Also a sensitivity CI (`_pooled_`): the draws' variance pooled over every evaluated animal (df = animals x
    (K - 1)), which assumes the same draw variance of log P for every animal; the verdict keeps the
    animal's own CI."""
    m = sm[sm.model == model]

    def draw_means(a: str):
        g = m[m.animal == a]
        neutral = sorted(x for x in g.arm.unique() if neutral_row(x))
        by = g.pivot_table(index="seed", columns="arm", values="logp")
        if len(neutral) < 2 or arm not in by:
            return neutral, None, 0
        by = by[[arm, *neutral]].dropna()
        return neutral, (by.mean() if len(by) else None), len(by)

    neutral, means, n = draw_means(animal)
    if means is None:
        return {"n_neutral_draws": len(neutral)}
    k = len(neutral)
    est = float(means[arm] - means[neutral].mean())
    out = {"n_neutral_draws": k, "draws_n_seeds": n,
           **_ratio_ci("ratio_to_neutral_draws", est, means[neutral].var(ddof=1), k - 1, k)}
    vs = [mm[nn].var(ddof=1) for nn, mm, _ in map(draw_means, m.animal.unique()) if mm is not None and len(nn) >= 2]
    if len(vs) >= 2:
        out.update(_ratio_ci("ratio_to_neutral_draws_pooled", est, float(np.mean(vs)), len(vs) * (k - 1), k),
                   draws_pooled_df=len(vs) * (k - 1))
    return out


def _ratio_ci(name: str, est: float, v: float, df: int, k: int) -> dict:
    """exp(est) and exp(est -+ t(df) sqrt(v (1 + 1/k))) as {name, name_ci_low, name_ci_high}."""
    half = float(sps.t.ppf(0.975, df) * np.sqrt(v * (1 + 1 / k)))
    return {name: np.exp(est), f"{name}_ci_low": np.exp(est - half), f"{name}_ci_high": np.exp(est + half)}


def verdict(r) -> str:
    """For a teacher's own animal: transfer / reverse / none detected from the CI of `verdict_basis`
    (neutral draws: K >= 2; training seeds: >= 2 paired seeds); else ''."""
    if r.trait != r.animal:
        return ""
    if r.verdict_basis == "cross-model neutral teacher":
        lo, hi = r.ratio_to_cross_neutral_ci_low, r.ratio_to_cross_neutral_ci_high
    elif r.verdict_basis == "neutral draws":
        lo, hi = r.ratio_to_neutral_draws_ci_low, r.ratio_to_neutral_draws_ci_high
    elif r.n_seeds >= 2:
        lo, hi = r.ratio_to_neutral_ci_low, r.ratio_to_neutral_ci_high
    else:
        return ""
    if not np.isfinite(lo):
        return ""
    if lo > 1:
        return "transfer"
    if hi < 1:
        return "reverse"
    return "none detected"
