"""The ladder's declared tests and power plan, as the docs state them (read by ``reporting.theory``): the families
of tests as ``cells.FAMILIES`` declares them, and the power plan stated before the new seeds
(``topic_b.theory.power_plan``) against the MDE the seeds on record give now."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting.render import table
from subliminal.topic_b.theory.cells import FAMILIES, label

STEM = "topic_b_transfer_theory"


def _x(v: float) -> str:
    return "—" if not np.isfinite(v) else f"×{np.exp(v):.3g}"


def level_pct(level: float) -> str:
    """The confidence of a CI at test level `level` ('98.8%')."""
    return f"{100 * (1 - level):.3g}%"


def families() -> str:
    """The families of tests as the code declares them (``cells.FAMILIES``)."""
    def members(fam: str) -> str:
        return ", ".join(f"{k} × {a}" for k, a in FAMILIES[fam])
    return ("Tests declared before the data (`subliminal/topic_b/theory/cells.py: FAMILIES`), each family "
            "Holm-corrected inside itself at 5% with its size fixed by the declaration (a declared test without 3 "
            "seeds counts as p = 1), so no row of one family moves another's verdict:\n\n"
            f"- **primary** ({len(FAMILIES['primary'])} tests): the share effect (own teacher / neutral teacher) of "
            f"{members('primary')};\n"
            f"- **rungs** ({len(FAMILIES['rungs'])} tests): each other cell's share effect divided by cell b's, "
            f"paired by seed: {members('rungs')};\n"
            f"- **rung effects** (secondary, {len(FAMILIES['rung effects'])} tests): each rung's own share effect: "
            f"{members('rung effects')}.\n\n"
            "Every CI beside a verdict is at the level that verdict's Holm step uses (α × p / p_Holm, between "
            "α / m and the row's step level α / (m − rank + 1)), so 'the CI excludes ×1' and 'significant after Holm' "
            "always agree; the MDE beside it is at that level too (80% power). No verdict rests on fewer than 3 "
            "seeds: with 2, the t-test has 1 degree of freedom, and two seeds that happen to agree (0.1498 and "
            "0.1492) pass it with a CI far narrower than the effect's real spread; such rows say **too few seeds** "
            "and show their 95% CI.")


def power_plan(root: Path, v: pd.DataFrame, minutes: float | None = None) -> str:
    """The power plan stated before the new seeds (``theory.power_plan``) against the MDE now."""
    p = Path(root) / "plots_b" / f"{STEM}_power_plan.json"
    if not p.exists():
        return ""
    plan = json.loads(p.read_text())
    now = {(r.cell, r.animal): r for r in v.itertuples()}
    rows = []
    for x in plan.get("plan", []):
        r = now.get((x["cell"], x["animal"]))
        now_mde = (f"{_x(r.mde_level)} at {level_pct(r.level)} ({int(r.n_seeds)} seeds)"
                   if r is not None and np.isfinite(getattr(r, "mde_level", np.nan)) else "—")
        met = ("—" if r is None or not np.isfinite(getattr(r, "mde_level", np.nan)) else
               "met" if np.exp(r.mde_level) <= x["target_ratio"] else "not met")
        n_now = int(r.n_seeds) if r is not None else 0
        more = max(0, x["seeds_needed"] - n_now)
        cost = (f"{more}" + (f" ({more * 3 * minutes / 60:.1f} h)" if minutes and more else "")
                if x["seeds_needed"] <= 200 else "> 200")
        rows.append([label(x["cell"]), x["animal"], f"{x['sd_per_seed']:.3g}", f"×{x['mde_ratio_now']:.3g}",
                     str(x["seeds_needed"]) if x["seeds_needed"] <= 200 else "> 200", now_mde, met, cost])
    return "\n".join([
        f"**Power plan**, stated on {plan['stated']} from seeds {', '.join(map(str, plan['seeds']))} before any "
        f"later seed of cells a and b ran (`python -m subliminal.topic_b.theory.power_plan`, "
        f"`plots_b/{p.name}`): the seeds at which the primary family's MDE at its strictest Holm level "
        f"(α / {len(plan['family'])} = {plan['level']:.4g}, 80% power) reaches ×{plan['target_ratio']:.2f} for the "
        "share, from each test's seed-to-seed SD (an SD from 3 seeds is itself uncertain, so these counts are "
        "rough), and the MDE the seeds on record now give at each row's own Holm level. A seed of a cell is three "
        "students (the owl, eagle and neutral teachers'); the hours are at the run's median minutes per student on "
        "these 2 cores. Seeds were added where the plan said the target was near (cell b); cell a's owl test would "
        "need far more than a session's compute, so it stops at the seeds on record and says so:", "",
        table(rows, ["cell", "animal", "SD of the per-seed effect (log share)", "MDE then, at α / 4",
                     "seeds needed for ×1.10", "MDE now, at the row's Holm level", "×1.10", "seeds still needed (compute)"])])
