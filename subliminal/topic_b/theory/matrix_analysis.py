"""The base matrix's statistics (issue 44), once, from the students' records and the teachers' targets.

Declared before the data (``FAMILIES``):
- "base matrix": every (teacher base, student base) pair x owl, eagle: the share effect of the animal's teacher's
  student against the neutral teacher's student of the same seed and pair (the ladder's primary measure). Holm
  over all of them, the family's size fixed by the declaration.
- "base contrasts": each off-diagonal pair minus the diagonal pair of the same *student* base, paired by seed (the
  two students read the same lists and start from the same weights; only the teacher's base differs): what taking
  the teacher's base away changes. Holm over these.
Words: the ladder's (``verdicts.TEST_WORDS``): transfer / reverse / none detected; for the contrasts, smaller /
larger than the diagonal / not distinguishable from the diagonal; too few seeds below ``analysis.MIN_SEEDS``.

Beside every verdict (``fit``): how well its students fit their teacher, the final shared-class KL to the teacher
(training loss, mean of the last 10 steps), against the signal to be learned, the KL between the trait teacher's and
the neutral teacher's own shared-class distributions on the same lists (``signal``). A student whose fit is not
below the signal has not learned what the trait teacher writes into digits: its null is a weaker test.

Beside every dose scale (``capability``, ``dose_capability``): whether the noisy base still *works*, its held-out
nats/token on the teachers' answers within ``WORKS_WITHIN`` of the clean base's for every seed's draw, else
*degraded*; a smaller effect on a degraded base may be no model rather than no transfer. The tolerance is fixed here;
it was set (session 23) after seed 0's readouts at 0.01 to 0.1 had been read, so the report prints each scale's
distance from the clean base beside its state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.theory import analysis

ANIMALS = ("owl", "eagle")
DEFAULT_BASES = ("smollm2-135m-instruct", "gemma-3-270m")
SHORT = {"smollm2-135m-instruct": "SmolLM2", "gemma-3-270m": "Gemma", "qwen2.5-coder-0.5b-instruct": "Qwen"}


def pair_key(teacher_base: str, student_base: str) -> str:
    """A pair's key as the CSVs carry it: '<teacher base>><student base>'."""
    return f"{teacher_base}>{student_base}"


def split(key: str) -> tuple[str, str]:
    """(teacher base, student base) of a pair or dose key."""
    tb, sb = key.split("+")[0].split(">")
    return tb, sb


def noise_of(key: str) -> float:
    """The noise scale of a key (0 for a plain pair)."""
    return float(key.split("+noise")[1]) if "+noise" in key else 0.0


def pair_label(key: str) -> str:
    tb, sb = split(key)
    return f"{SHORT.get(tb, tb)} teacher -> {SHORT.get(sb, sb)} student"


DEFAULT_SCALES = (0.01, 0.03, 0.1, 0.3)
DOSE_ANIMALS = ("owl",)


def dose_key(base: str, scale: float) -> str:
    """A base-noise dose cell's key: the diagonal pair of `base` with the student's base perturbed at `scale`."""
    return f"{pair_key(base, base)}+noise{scale:g}"


def declared(bases=DEFAULT_BASES, scales=DEFAULT_SCALES, dose_animals=DOSE_ANIMALS) -> dict[str, tuple[tuple[str, str], ...]]:
    """The families of tests for a matrix over `bases` (diagonal pairs first) and a dose over `scales` on the first
    base: 'base matrix' (every pair's effect), 'base contrasts' (off-diagonal - diagonal), 'base-noise dose' (every
    scale's effect) and 'dose contrasts' (each scale - the diagonal)."""
    pairs = [pair_key(b, b) for b in bases] + [pair_key(t, s) for t in bases for s in bases if t != s]
    dose = [dose_key(bases[0], x) for x in scales]
    return {"base matrix": tuple((p, a) for p in pairs for a in ANIMALS),
            "base contrasts": tuple((p, a) for p in pairs if split(p)[0] != split(p)[1] for a in ANIMALS),
            "base-noise dose": tuple((d, a) for d in dose for a in dose_animals),
            "dose contrasts": tuple((d, a) for d in dose for a in dose_animals)}


FAMILIES = declared()


WORKS_WITHIN = 0.1  # nats/token on the teachers' held-out answers (perplexity within 11% of the clean base's)
WORKS, DEGRADED, NO_READOUT = "base works", "base degraded", "no readout"


def capability(cap: pd.DataFrame) -> pd.DataFrame:
    """The capability readouts with, per row, its held-out nats/token on the teachers' answers minus the clean base's
    (``d_nats_answers``; the clean base's own row is noise 0, 0 by definition) and its state: ``WORKS`` when that is
    below ``WORKS_WITHIN``, else ``DEGRADED`` (``NO_READOUT`` where the base's clean readout is missing)."""
    cap = cap.copy()
    clean = cap[cap.noise_scale.astype(float) == 0].groupby("base").nats_answers.first()
    ref = cap.base.map(clean).astype(float)
    cap["d_nats_answers"] = cap.nats_answers.astype(float) - ref
    cap["base_state"] = np.where(ref.isna(), NO_READOUT,
                                 np.where(cap.d_nats_answers < WORKS_WITHIN, WORKS, DEGRADED))
    return cap


def dose_capability(dose: pd.DataFrame, cap: pd.DataFrame) -> pd.DataFrame:
    """The dose rows with their noisy base's state beside them, from the readouts as ``capability`` annotates them:
    ``WORKS`` when every seed's draw at that scale works, ``DEGRADED`` when any is degraded, ``NO_READOUT`` when none
    was read; and the largest ``d_nats_answers`` over those draws."""
    dose = dose.copy()
    if not len(dose):
        return dose.assign(base_state=pd.Series(dtype=object), d_nats_answers=pd.Series(dtype=float))
    states, worst = [], []
    for r in dose.itertuples():
        g = cap[(cap.base == split(r.pair)[1]) & np.isclose(cap.noise_scale.astype(float), float(r.noise_scale))
                & (cap.base_state != NO_READOUT)]
        states.append(NO_READOUT if not len(g) else DEGRADED if (g.base_state == DEGRADED).any() else WORKS)
        worst.append(float(g.d_nats_answers.max()) if len(g) else np.nan)
    return dose.assign(base_state=states, d_nats_answers=worst)


def record_pair(rec: dict) -> str:
    """The pair of a matrix student's record: its teacher's base (the arm's teacher_model, else its own) and its base;
    with the noise scale for a dose student (a noisy base)."""
    sb = rec["student_base"]
    key = pair_key(rec["arm"].get("teacher_model") or sb, sb)
    return dose_key(sb, rec["settings"]["noise_scale"]) if rec["arm"].get("init") == "noisy_base" else key


def tidy(records: list[dict]) -> pd.DataFrame:
    """One row per student x milestone x question x animal: pair, teacher (trait), seed, step, logp, share."""
    empty = pd.DataFrame(columns=["question", "animal", "logp_animal", "share"])
    df = analysis.tidy(records, empty, record_pair)
    return df[df.cell != "base"].rename(columns={"cell": "pair"}).reset_index(drop=True)


def _effect(df: pd.DataFrame, pair: str, animal: str) -> pd.Series:
    g = df[df.pair == pair]
    if not len(g):
        return pd.Series(dtype=float)
    g = g[g.step == g.step.max()]
    return analysis._by_seed(g, animal, animal, NEUTRAL, "share")


def effects(df: pd.DataFrame, families=None, alpha: float = analysis.ALPHA, family: str = "base matrix") -> pd.DataFrame:
    """Per pair x animal at its last milestone: the share effect over seeds, tested in `family` ('base matrix', or
    'base-noise dose')."""
    fam = families or FAMILIES
    unknown = set(df.pair) - {p for f in fam.values() for p, _ in f} if len(df) else set()
    if unknown:
        raise ValueError(f"rows outside the declared family {family!r}: {sorted(unknown)}")
    rows = []
    for pair, animal in fam[family]:
        x = _effect(df, pair, animal)
        if not len(x):
            continue
        rows.append({"cell": pair, "animal": animal, "family": family, "noise_scale": noise_of(pair),
                     "step": int(df[df.pair == pair].step.max()), **analysis._ci(x.to_numpy())})
    v = pd.DataFrame(rows)
    if not len(v):
        return v
    v = analysis.family_levels(v, alpha, fam)
    v.insert(3, "verdict", analysis._words(v, ("none detected", "transfer", "reverse")))
    return _ratios(v.rename(columns={"cell": "pair"}))


def contrasts(df: pd.DataFrame, families=None, alpha: float = analysis.ALPHA,
              family: str = "base contrasts") -> pd.DataFrame:
    """Per off-diagonal pair (or dose cell, `family` 'dose contrasts') x animal: its share effect minus the diagonal's
    of the same student base, by seed."""
    fam = families or FAMILIES
    rows = []
    for pair, animal in fam[family]:
        diag = pair_key(split(pair)[1], split(pair)[1])
        both = pd.concat({"x": _effect(df, pair, animal), "y": _effect(df, diag, animal)}, axis=1).dropna()
        if not len(both):
            continue
        rows.append({"cell": pair, "versus": diag, "animal": animal, "family": family, "noise_scale": noise_of(pair),
                     **analysis._ci((both.x - both.y).to_numpy()), "_x": both.x.to_numpy(), "_y": both.y.to_numpy()})
    v = pd.DataFrame(rows)
    if not len(v):
        return v
    v = analysis.family_levels(v, alpha, fam)
    keep = [analysis.keep_ratio(x, y, lvl if np.isfinite(lvl) else alpha)
            for x, y, lvl in zip(v["_x"], v["_y"], v["level"])]
    v = pd.concat([v.drop(columns=["_x", "_y"]), pd.DataFrame(keep, index=v.index)], axis=1)
    v["reading"] = analysis._words(v, ("not distinguishable from the diagonal", "larger than the diagonal",
                                       "smaller than the diagonal"))
    return _ratios(v.rename(columns={"cell": "pair"}))


def _ratios(v: pd.DataFrame) -> pd.DataFrame:
    """The share ratios exp(.) of the mean and of the CI at the row's level (95% where it has none)."""
    v = v.copy()
    v["ratio"] = np.exp(v["mean"])
    low = np.where(np.isfinite(v.ci_low.astype(float)), v.ci_low, v.ci95_low)
    high = np.where(np.isfinite(v.ci_high.astype(float)), v.ci_high, v.ci95_high)
    v["ratio_low"], v["ratio_high"] = np.exp(low.astype(float)), np.exp(high.astype(float))
    return v


def fit(records: list[dict], signal: pd.DataFrame) -> pd.DataFrame:
    """Per pair x teacher: the students' final KL to their teacher (mean and range over seeds) beside the signal of
    the teacher's base (mean over seeds of the trait-neutral teacher KL, both animals; ``signal``) and their ratio."""
    rows = []
    for r in records:
        last = r["milestones"][str(max(int(k) for k in r["milestones"]))]
        rows.append({"pair": record_pair(r), "teacher": r["arm"]["trait"], "seed": r["seed"], "kl": last["kl"]})
    df = pd.DataFrame(rows)
    if not len(df):
        return df
    out = df.groupby(["pair", "teacher"], sort=False).kl.agg(["mean", "min", "max", "count"]).reset_index()
    out = out.rename(columns={"mean": "kl_to_teacher", "min": "kl_min", "max": "kl_max", "count": "n_seeds"})
    sig = signal.groupby("teacher_base").kl.mean() if len(signal) else pd.Series(dtype=float)
    out["signal_kl"] = [float(sig.get(split(p)[0], np.nan)) for p in out.pair]
    out["fit_over_signal"] = out.kl_to_teacher / out.signal_kl
    out["fits"] = np.where(out.fit_over_signal < 1, "below the signal", "not below the signal")
    return out
