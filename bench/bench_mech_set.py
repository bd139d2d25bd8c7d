"""The whole issue-4 mechanisms set end to end, timed, and checked against the committed full-size tables.

Issue 4 asks for the six topic_a_mech_* scripts to be runnable on 2 cores in well under an hour. At the
full size of the committed tables (25 models, fp32) they need ~2.3 h here: that is ~400 epochs of
25 models over 60k images at ~75% of the fp32 matmul ceiling, so no scheduling trick gets it under an
hour. This runs the set at a fast configuration (default: 10 models, bf16 mixed precision) and says
how well its numbers agree with the full-size ones.

    python bench/bench_mech_set.py                          # 10 models, bf16 (fp32 without native bf16): ~30 min on 2 idle cores
    python bench/bench_mech_set.py --flags "--n-models 25"  # any flags every mech script takes

Each script runs with the same --flags into --out (default out/mech_fast) with its own cache
(<out>/cache), so a fresh run counts every teacher and student; a rerun resumes from that cache and
records that it did (`fresh_cache`). Writes bench/bench_mech_set.json (wall time per script and in
all) and bench/bench_mech_set.csv: every summary row of the fast run beside the committed plots_a/
row (mean and 95% CI of both, difference, z = difference / combined standard error), and whether the
verdict records on each script's claims (`subliminal.reporting.mechanisms.verdicts_for`) come out the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from subliminal.devices import fast_bf16, get_device  # noqa: E402
from subliminal.reporting.mechanisms import verdicts_for  # noqa: E402
from subliminal.results import write_bench_json, write_csv  # noqa: E402
from subliminal.stats import compare_summaries  # noqa: E402
from subliminal.topic_a.analysis import experiments, rewrite  # noqa: E402

# the mechanism scripts, as they declare themselves (the first to run trains the shared baseline teacher)
SCRIPTS = tuple(n.removeprefix("topic_a_mech_") for n, e in experiments().items() if e.group == "mechanism")
LOAD_AT_START = round(os.getloadavg()[0], 2)  # > 0.5 means something else was running


def run_set(flags: list[str], out: Path, cache: Path) -> dict[str, float]:
    walls = {}
    for s in SCRIPTS:
        name = f"topic_a_mech_{s}"
        t0 = time.time()
        cmd = [sys.executable, str(ROOT / f"{name}.py"), *flags, "--out", str(out), "--cache-dir", str(cache)]
        print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            sys.exit(f"error: {name}.py failed (its output is above); rerun to continue from {cache}")
        walls[s] = round(time.time() - t0, 1)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flags", default=None, help="flags for every mech script (default: --n-models 10, plus "
                    "--precision bf16 where the CPU has native bf16 matmuls or a GPU is used)")
    ap.add_argument("--out", default=str(ROOT / "out" / "mech_fast"), help="output directory (cache in <out>/cache)")
    ap.add_argument("--reference", default=str(ROOT / "plots_a"), help="the committed full-size results")
    ap.add_argument("--compare-only", action="store_true",
                    help="do not run: redo the comparison of --out's results, keeping the last run's times")
    a = ap.parse_args()
    out, me = Path(a.out), Path(__file__)
    cache = out / "cache"
    if a.compare_only:
        try:
            run = json.loads(me.with_suffix(".json").read_text())
        except (OSError, ValueError):
            sys.exit(f"error: --compare-only needs an earlier run's {me.with_suffix('.json').name}; run without it first")
        run = {k: run[k] for k in ("flags", "fresh_cache", "wall_seconds", "total_minutes", "run_loadavg_1min_at_start",
                                   "run_finished_utc") if k in run}
    else:
        if a.flags is None:
            a.flags = "--n-models 10" + (" --precision bf16" if fast_bf16(get_device("auto")) else "")
        fresh = not cache.exists() or not any(cache.iterdir())
        t_all = time.time()
        walls = run_set(shlex.split(a.flags), out, cache)
        run = {"flags": a.flags, "fresh_cache": fresh, "wall_seconds": walls, "total_minutes": round((time.time() - t_all) / 60, 1),
               "run_loadavg_1min_at_start": LOAD_AT_START,
               "run_finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rewrite(out)  # a run made before the analysis wrote the verdicts' extra rows gets them (a no-op otherwise)
    parts = []
    for s in SCRIPTS:
        ref, got = Path(a.reference) / f"topic_a_mech_{s}_summary.csv", out / f"topic_a_mech_{s}_summary.csv"
        if ref.exists() and got.exists():
            c = compare_summaries(pd.read_csv(ref), pd.read_csv(got))
            c.insert(0, "script", s)
            parts.append(c)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    write_csv(table, me.with_suffix(".csv"))
    z = table["z"].abs().to_numpy() if len(table) else np.array([])
    # the verdict records (claim, verdict) each run's CSVs give, script by script
    v_full, v_fast = verdicts_for(Path(a.reference)), verdicts_for(out)
    res = {
        **run,
        "rows_compared": int(len(table)), "rows_abs_z_over_2": int((z > 2).sum()), "rows_abs_z_over_3": int((z > 3).sum()),
        "median_abs_diff": round(float(np.median(table["diff"].abs())), 4) if len(table) else None,
        "max_abs_diff": round(float(table["diff"].abs().max()), 4) if len(table) else None,
        "reference": os.path.relpath(a.reference, ROOT),
        "verdicts_same": {s: v_full.get(s) == v_fast.get(s) for s in SCRIPTS if s in v_full or s in v_fast},
        "verdicts_full": v_full, "verdicts_fast": v_fast,
    }
    write_bench_json(__file__, res, LOAD_AT_START)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
