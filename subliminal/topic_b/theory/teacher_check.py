"""Does each weight teacher carry its trait? (issue 44, item 1): checked before any student of a new base runs.

For every teacher base, the owl and eagle teachers' own share of their animal (``readouts.preference``: log of the
animal's share among the 25 animals, exact, on every evaluation question) against the neutral teacher's share of
the same animal, paired by question. The ratio is exp(mean difference); its CI is a t interval over the
questions (the teacher is one fixed model: the questions are what is sampled here, not training seeds), at the
level Holm's step gives it inside the declared family (every base x animal checked by one command). A teacher
*carries its trait* when that CI lies above x1 (``CARRIES``); a base whose teachers do not carry it needs another
recipe before its students mean anything.

Each teacher's preference is kept beside its adapter in the cache (``preference-<rules>.json``, sealed), so the
check is recomputed from it without a model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from subliminal.cache import read_record, write_record
from subliminal.stats import holm
from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.theory.readouts import preference

ANIMALS = ("owl", "eagle")
ALPHA = 0.05
CARRIES, LACKS = "carries its trait", "trait not detected"


def teacher_preference(teacher, tok, teacher_dir: Path, rules: str, log: Callable = print) -> pd.DataFrame:
    """The teacher's preference (one row per question and animal), read from its folder when kept there under
    these evaluation rules, else measured and kept."""
    path = Path(teacher_dir) / f"preference-{rules[:12]}.json"
    rec = read_record(path)
    if rec is not None and rec.get("rules") == rules:
        return pd.DataFrame(rec["rows"])
    df = preference(teacher, tok)
    write_record(path, {"rules": rules, "rows": df.to_dict("records")})
    log(f"[theory] teacher preference kept in {path}")
    return df


def check(prefs: dict[str, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    """One row per (base, animal): the animal teacher's share of its animal against the neutral teacher's, paired by
    question; `prefs[base][trait]` is that base's teacher preference. Holm over every row of the call."""
    rows = []
    for base, by_trait in prefs.items():
        for animal in ANIMALS:
            if animal not in by_trait or NEUTRAL not in by_trait:
                continue
            own = by_trait[animal].query("animal == @animal").set_index("question").share
            ref = by_trait[NEUTRAL].query("animal == @animal").set_index("question").share
            d = (own - ref.reindex(own.index)).dropna().to_numpy()
            n = len(d)
            t = d.mean() / (d.std(ddof=1) / np.sqrt(n)) if n > 1 and d.std(ddof=1) > 0 else float("nan")
            p = float(2 * stats.t.sf(abs(t), n - 1)) if np.isfinite(t) else 1.0
            rows.append({"base": base, "animal": animal, "n_questions": n, "share_teacher": float(np.exp(own).mean()),
                         "share_neutral": float(np.exp(ref).mean()), "mean_log_ratio": float(d.mean()),
                         "sd": float(d.std(ddof=1)) if n > 1 else float("nan"), "p": p})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["p_holm"] = holm(df.p.to_numpy())
    # the level each row's Holm step tests it at: alpha / (m - rank); its CI is at that level
    level = np.empty(len(df))
    level[np.argsort(df.p.to_numpy())] = ALPHA / (len(df) - np.arange(len(df)))
    df["level"] = level
    half = [stats.t.ppf(1 - lv / 2, n - 1) * sd / np.sqrt(n) if n > 1 else float("nan")
            for lv, n, sd in zip(df.level, df.n_questions, df.sd)]
    df["ratio"] = np.exp(df.mean_log_ratio)
    df["ci_low"] = np.exp(df.mean_log_ratio - half)
    df["ci_high"] = np.exp(df.mean_log_ratio + half)
    df["verdict"] = np.where(df.ci_low > 1, CARRIES, LACKS)
    return df
