"""Does bf16 mixed precision (--precision bf16) change Topic A's numbers? The baseline, model by model.

Runs `topic_a.py --precision bf16` (same config as the committed fp32 baseline otherwise) into
out/precision and compares every model's accuracy with plots_a/topic_a.csv: same inits, same data
order, same noise, so any difference is the precision's. Also times one fp32 and one bf16 student
step of the engine (25 models, batch 1024).

    python bench/bench_precision.py    # ~5 min on 2 idle cores (the bf16 run is cached after the first time)

Writes bench/bench_precision.json and bench/bench_precision.csv (per condition: mean of each, mean
and sd of the per-model difference, correlation across models).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from subliminal.devices import fast_bf16  # noqa: E402
from subliminal.results import write_bench_json, write_csv  # noqa: E402
from subliminal.topic_a.engine import MLPShape, ParallelMLP, distill_loss, logit_index, make_adam  # noqa: E402
from subliminal.topic_a.train import TopicAConfig  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_topic_a import timeit  # noqa: E402

LOAD_AT_START = round(os.getloadavg()[0], 2)


def step_ms(bf16: bool, n: int = 25, b: int = 1024, reps: int = 8) -> float:
    m = ParallelMLP(MLPShape(n)).init_(torch.Generator().manual_seed(0))
    opt = make_adam(m, 3e-4)
    x = torch.rand(n, b, 784) * 2 - 1
    sel = logit_index("aux", 3)
    with torch.no_grad():
        t_lp = torch.log_softmax(m.copy()(x)[..., sel], -1)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            s = m(x)[..., sel]
        distill_loss(s.float(), t_lp).backward()
        opt.step()

    return timeit(step, reps) * 1e3


def main() -> None:
    out = ROOT / "out" / "precision"
    cmd = [sys.executable, str(ROOT / "topic_a.py"), "--precision", "bf16", "--out", str(out)]
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        sys.exit("error: topic_a.py --precision bf16 failed (its output is above)")
    fp32 = pd.read_csv(ROOT / "plots_a" / "topic_a.csv")
    bf16 = pd.read_csv(out / "topic_a.csv")
    cfg32 = json.loads((ROOT / "plots_a" / "topic_a.json").read_text())["config"]
    cfg16 = json.loads((out / "topic_a.json").read_text())["config"]
    default = {f.name: f.default for f in dataclasses.fields(TopicAConfig)}  # keys older JSONs lack
    differ = sorted(k for k in set(cfg32) | set(cfg16) if k not in ("out", "precision")
                    and cfg32.get(k, default.get(k)) != cfg16.get(k, default.get(k)))
    if differ:
        sys.exit(f"error: plots_a/topic_a.json differs from the bf16 run in {differ}; rerun python topic_a.py first")
    m = fp32.merge(bf16, on=["condition", "model"], suffixes=("_fp32", "_bf16"))
    rows = []
    for cond, g in m.groupby("condition", sort=False):
        d = g.accuracy_bf16 - g.accuracy_fp32
        r = np.corrcoef(g.accuracy_fp32, g.accuracy_bf16)[0, 1] if g.accuracy_fp32.std() > 0 else float("nan")
        rows.append({"condition": cond, "n": len(g), "mean_fp32": g.accuracy_fp32.mean(), "mean_bf16": g.accuracy_bf16.mean(),
                     "mean_diff": d.mean(), "sd_diff": d.std(ddof=1), "max_abs_diff": d.abs().max(), "pearson_r": r})
    table = pd.DataFrame(rows)
    write_csv(table, Path(__file__).with_suffix(".csv"))
    t32, t16 = step_ms(False), step_ms(True)
    res = {"student_step_ms_fp32": round(t32, 1), "student_step_ms_bf16": round(t16, 1), "step_speedup": round(t32 / t16, 2),
           "bf16_native": fast_bf16(torch.device("cpu")),
           "conditions": {r["condition"]: {k: round(float(v), 4) for k, v in r.items() if k != "condition"} for r in rows}}
    write_bench_json(__file__, res, LOAD_AT_START)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
