"""The seeds the ladder's primary family needs, estimated from the seeds on record *before* more are run
(issue 41): per primary test (cells a and b x owl and eagle), the seed-to-seed SD of the share effect, the MDE at
the family's strictest Holm level (alpha / 4) and the seeds at which that MDE would reach x1.10.

    python -m subliminal.topic_b.theory.power_plan --seeds 0 1 2        # writes the plan beside the results

Writes ``<out>/topic_b_transfer_theory_power_plan.json`` (the plan, the seeds and records it rests on, the date
and commit) once: an existing plan is never overwritten (``--force`` to replace it knowingly), so the plan stays
the one stated before the new seeds' data. Reads the committed student records only (no model, no training).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from subliminal.cache import read_record
from subliminal.cli import UserError
from subliminal.results import atomic_write_text, git_commit, read_json, to_jsonable
from subliminal.topic_b.arms import Arm
from subliminal.topic_b.theory import analysis
from subliminal.topic_b.theory.cells import FAMILIES, cell_of
from subliminal.topic_b.theory.config import TheoryConfig

STEM = "topic_b_transfer_theory"
NAME = f"{STEM}_power_plan.json"


def records(archive: Path, seeds: tuple[int, ...]) -> list[dict]:
    """The finished records of the primary cells at `seeds` in the committed records folder, trained under the
    default student settings (a record of other settings, e.g. ``--steps``, is not part of the plan)."""
    keep = {k for k, _ in FAMILIES["primary"]}
    want = json.loads(json.dumps(asdict(TheoryConfig().student_settings()), default=str))
    out = []
    for f in sorted(Path(archive).glob("*/record.json")):
        r = read_record(f)
        if r is None:
            raise UserError(f"{f}: unreadable or damaged record; restore it from git (git checkout -- {f})")
        if r.get("complete") and r["seed"] in seeds and r.get("settings") == want and cell_of(Arm(**r["arm"])).key in keep:
            out.append(r)
    return out


def plan(archive: Path, seeds: tuple[int, ...]) -> tuple[pd.DataFrame, list[str]]:
    recs = records(archive, seeds)
    if not recs:
        raise UserError(f"no finished record of cells a or b at seeds {list(seeds)} in {archive}")
    bp = read_record(Path(archive) / "base_preference.json")
    if bp is None:
        raise UserError(f"{archive}/base_preference.json is missing or damaged; restore it from git")
    tidy = analysis.tidy(recs, pd.DataFrame(bp["rows"]), lambda r: cell_of(Arm(**r["arm"])).key)
    cells = list(dict.fromkeys(tidy.cell[tidy.cell != "base"]))
    summ = analysis.summary(tidy, cells, ["owl", "eagle"])
    return analysis.power_plan(summ), sorted(f"{r['name']}-s{r['seed']}" for r in recs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m subliminal.topic_b.theory.power_plan", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds on record to plan from")
    p.add_argument("--out", default="plots_b", help="the results folder holding the records")
    p.add_argument("--force", action="store_true", help="replace an existing plan")
    a = p.parse_args(argv)
    path = Path(a.out) / NAME
    try:
        if path.exists() and not a.force:
            print(f"{path} exists (the plan stated before later seeds); not overwritten (--force replaces it)")
            return 0
        df, used = plan(Path(a.out) / f"{STEM}_records", tuple(a.seeds))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    body = {"stated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "git_commit": git_commit(),
            "seeds": a.seeds, "records": used, "alpha": analysis.ALPHA, "power": analysis.POWER,
            "family": [list(m) for m in FAMILIES["primary"]], "level": analysis.ALPHA / len(FAMILIES["primary"]),
            "target_ratio": analysis.TARGET_RATIO, "plan": df.to_dict("records")}
    atomic_write_text(path, json.dumps(to_jsonable(body), indent=1) + "\n")
    print(df.to_string(index=False))
    print(f"wrote {path}")
    return 0


def read(out: Path) -> dict:
    """The stated plan, or {} when none was written."""
    path = Path(out) / NAME
    return read_json(path) if path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
