"""The GPU bench's flow (a dry run on the CPU at a tiny config) and the "Speed on a GPU" table it feeds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from subliminal.reporting.bench_tables import speed_gpu

ROOT = Path(__file__).resolve().parent.parent


def test_dry_run_writes_every_record_and_compares_nothing_across_configs(tmp_path, mnist):
    out = tmp_path / "gpu"
    p = subprocess.run([sys.executable, "bench/bench_topic_a_gpu.py", "--dry-run", "--device", "cpu", "--out", str(out),
                        "--scripts", "topic_a", "topic_a_exp1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads((out / "bench.json").read_text())
    assert doc["dry_run"] is True and set(doc["scripts"]) == {"topic_a", "topic_a_exp1"}
    for name, run in doc["scripts"].items():
        assert run["fresh"]["wall_seconds"] > 0 and run["warm"]["wall_seconds"] > 0
        assert run["work"]["device"] == "cpu" and (out / f"{name}_summary.csv").exists()
    assert doc["scripts"]["topic_a"]["work"]["student_steps"] > 0
    assert doc["scripts"]["topic_a_exp1"]["work"]["teacher_steps"] == 0  # the teacher came from the shared cache
    agree = pd.read_csv(out / "agreement.csv")
    assert agree.within_cpu_ci.isna().all()  # a tiny config is never held against the full-size CPU rows
    assert doc["matmul_ceiling_gflops"]["fp32"] > 0 and 0 < doc["engine_fraction_of_fp32_ceiling"] < 2


def test_gpu_bench_refuses_a_missing_gpu_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    p = subprocess.run([sys.executable, "bench/bench_topic_a_gpu.py", "--out", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no CUDA GPU" in p.stderr
    assert not list(tmp_path.iterdir())


def _root(tmp_path: Path) -> Path:
    for name in ("topic_a", "topic_a_exp1", "topic_a_exp2", "topic_a_exp3", "topic_a_maximize"):
        (tmp_path / "plots_a").mkdir(exist_ok=True)
        shutil.copy(ROOT / "plots_a" / f"{name}.json", tmp_path / "plots_a" / f"{name}.json")
    return tmp_path


def test_table_says_not_yet_measured_without_a_gpu_run(tmp_path):
    md = speed_gpu(_root(tmp_path))
    assert md.count("not yet measured") == 7 and "~3 min" in md and "14.0 min" in md


def test_table_shows_a_gpu_run_and_ignores_a_dry_run(tmp_path):
    root = _root(tmp_path)
    (root / "plots_a" / "gpu").mkdir()
    runs = {n: {"fresh": {"wall_seconds": 20.0}, "warm": {"wall_seconds": 4.0},
                "work": {"steps_per_s": 300.0}} for n in ("topic_a", "topic_a_exp1")}
    doc = {"dry_run": False, "device_name": "NVIDIA H200", "torch": "2.11", "cuda": "13.0", "scripts": runs,
           "scripts_fraction_of_fp32_ceiling": {"topic_a": 0.41, "topic_a_exp1": 0.5}, "total_wall_seconds_fresh": 40.0,
           "matmul_ceiling_gflops": {"fp32": 50000.0, "tf32": 400000.0, "bf16": 700000.0},
           "engine_distill_batch": {"gflops_per_s": 30000.0}, "engine_fraction_of_fp32_ceiling": 0.6, "finished_utc": "x"}
    (root / "plots_a" / "gpu" / "bench.json").write_text(json.dumps(doc))
    pd.DataFrame({"script": ["topic_a", "topic_a"], "within_cpu_ci": [True, False]}).to_csv(
        root / "plots_a" / "gpu" / "agreement.csv", index=False)
    md = speed_gpu(root)
    assert "NVIDIA H200" in md and "| 20 s | 4 s | 300 (0.41) | 1/2 |" in md and "**40 s**" in md
    assert md.count("not yet measured") == 3  # exp2, exp3 and maximize did not run
    doc["dry_run"] = True
    (root / "plots_a" / "gpu" / "bench.json").write_text(json.dumps(doc))
    assert speed_gpu(root).count("not yet measured") == 7
