"""Topic A's five seed scripts on a CUDA GPU at full size, from a fresh cache (issue 30; not a test).

    python bench/bench_topic_a_gpu.py                 # on a CUDA machine: the five scripts, then a warm rerun
    python bench/bench_topic_a_gpu.py --dry-run       # anywhere (CPU): the same flow on a tiny config, into a temp folder

Runs topic_a.py, topic_a_exp1.py, topic_a_exp2.py, topic_a_exp3.py and topic_a_maximize.py one after
another, as a user would (`python <script>.py --device cuda`), in one fresh Topic A cache (the MNIST
asset is read from its usual verified place), each writing its usual outputs into plots_a/gpu/: the
tidy CSV, the summary with 95% CIs, the tests, the figure, and the run JSON (config, seed, versions,
device name, CUDA version, steps, FLOPs and the training loops' time). Then the same five again on the
warm cache (they should only read it). It also measures the device's matmul ceilings (fp32 with TF32
off, which the scripts use; TF32 and bf16 for reference) and one distillation step of the engine, and
writes plots_a/gpu/bench.json and plots_a/gpu/agreement.csv: every summary row beside the committed CPU
row, and whether the GPU mean lies inside the CPU's 95% CI. `make report` turns these into the
"Speed on a GPU" table of docs/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from subliminal.results import atomic_write_text, versions, write_csv  # noqa: E402
from subliminal.topic_a.engine import (  # noqa: E402
    MLPShape,
    ParallelMLP,
    distill_loss,
    forward_flops,
    logit_index,
    make_adam,
    train_step_flops,
)

SCRIPTS = ("topic_a", "topic_a_exp1", "topic_a_exp2", "topic_a_exp3", "topic_a_maximize")
STATS = ("n", "mean", "ci95_low", "ci95_high")
WHERE = ("device", "out", "cache_dir", "data_root")  # config keys that say where a run ran, not what it computed
# the dry run: every script on a tiny config (a check of the flow, not a measurement)
TINY = ["--n-models", "3", "--n-train", "2048", "--n-distill", "1024", "--batch-size", "512", "--hidden", "32"]
TINY_SCRIPT = {"topic_a": ["--teacher-epochs", "1", "--distill-epochs", "1"],
               "topic_a_exp1": ["--teacher-epochs", "1", "--milestones", "1", "2"],
               "topic_a_exp2": ["--teacher-sweep", "0", "1", "--distill-epochs", "1"],
               "topic_a_exp3": ["--teacher-epochs", "1", "--distill-epochs", "1", "--sources", "uniform", "mnist"],
               "topic_a_maximize": ["--teacher-epochs", "1", "--distill-epochs", "2", "--milestone-every", "1"]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, reps: int, warmup: int = 3) -> float:
    """Best of 3 mean seconds per call, the device synchronised around each timed block."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(3):
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def ceilings(device: torch.device, n: int) -> dict[str, float]:
    """GFLOP/s of an n×n matmul: fp32 with TF32 off (what the scripts run), TF32 and bf16."""
    out = {}
    prev = torch.backends.cuda.matmul.allow_tf32
    try:
        for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
            if device.type == "cpu" and name == "tf32":
                continue
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            out[name] = round(2 * n ** 3 / timed(lambda: a @ b, device, 5 if device.type == "cuda" else 2) / 1e9, 1)  # noqa: B023
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    return out


def engine_step(device: torch.device, n_models: int = 25, batch: int = 1024) -> dict[str, float]:
    """One distillation batch as the scripts run it (teacher targets + two students) on inputs already on the device."""
    shape = MLPShape(n_models)
    g = torch.Generator().manual_seed(0)
    teacher = ParallelMLP(shape).init_(g).to(device)
    students = [teacher.copy() for _ in range(2)]
    opts = [make_adam(s, 3e-4) for s in students]
    sel = logit_index("aux", 3)
    x = (torch.rand(n_models, batch, 784, generator=g) * 2 - 1).to(device)

    def step():
        with torch.no_grad():
            t_lp = torch.log_softmax(teacher(x)[..., sel], -1)
        for s, o in zip(students, opts):
            o.zero_grad(set_to_none=True)
            distill_loss(s(x)[..., sel], t_lp).backward()
            o.step()

    sec = timed(step, device, 20 if device.type == "cuda" else 2)
    flops = forward_flops(shape, batch) + 2 * train_step_flops(shape, batch)
    return {"seconds_per_batch": sec, "student_steps_per_s": 2 / sec, "gflops_per_s": flops / sec / 1e9}


def run_script(name: str, device: str, out: Path, cache: Path, dry: bool) -> dict:
    cmd = [sys.executable, f"{name}.py", "--device", device, "--out", str(out), "--cache-dir", str(cache)]
    if dry:
        cmd += [*TINY, *TINY_SCRIPT[name]]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[1:])} failed (exit {p.returncode}): {p.stderr.strip().splitlines()[-1:]}")
    return {"wall_seconds": round(wall, 2), "command": " ".join(["python", *cmd[1:]])}


def agreement(out: Path, scripts) -> pd.DataFrame:
    """Each GPU summary row beside the committed CPU row with the same keys."""
    parts = []
    for name in scripts:
        gpu = pd.read_csv(out / f"{name}_summary.csv")
        cpu_path = ROOT / "plots_a" / f"{name}_summary.csv"
        if not cpu_path.exists():
            continue
        cpu = pd.read_csv(cpu_path)
        cfg_gpu, cfg_cpu = (json.loads(p.read_text())["config"] for p in (out / f"{name}.json", cpu_path.parent / f"{name}.json"))
        same_config = all(cfg_gpu.get(k) == v for k, v in cfg_cpu.items() if k not in WHERE)
        keys = [c for c in gpu.columns if c not in STATS]
        m = gpu.merge(cpu, on=keys, how="left", suffixes=("_gpu", "_cpu"))
        m.insert(0, "script", name)
        m["row"] = m[keys].astype(str).agg(" ".join, axis=1)
        m["diff"] = m["mean_gpu"] - m["mean_cpu"]
        within = ((m["mean_gpu"] >= m["ci95_low_cpu"]) & (m["mean_gpu"] <= m["ci95_high_cpu"])).astype("boolean")
        # not compared: no CPU row with these keys, or another configuration (a dry run)
        m["within_cpu_ci"] = within.mask(m["mean_cpu"].isna() | (not same_config))
        parts.append(m[["script", "row", "mean_gpu", "mean_cpu", "ci95_low_cpu", "ci95_high_cpu", "diff", "within_cpu_ci"]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cuda:N; cpu only with --dry-run")
    p.add_argument("--dry-run", action="store_true", help="tiny config into a temporary folder (check the flow anywhere)")
    p.add_argument("--scripts", nargs="+", default=list(SCRIPTS), choices=SCRIPTS, help="which seed scripts (default: all five)")
    p.add_argument("--out", default=None, help="output folder (default: plots_a/gpu; a temporary folder with --dry-run)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run this on a GPU machine, or check the flow with --dry-run --device cpu", file=sys.stderr)
        return 2
    if device.type != "cuda" and not args.dry_run:
        print("error: this bench measures a GPU; use --device cuda (or --dry-run to check the flow on the CPU)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="bench_gpu_")) if args.dry_run else ROOT / "plots_a" / "gpu")
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="topic_a_cache_"))  # a fresh Topic A cache: teachers and students trained here
    t0 = time.time()
    try:
        ceil = ceilings(device, 8192 if device.type == "cuda" else 1024)
        step = engine_step(device, *((25, 1024) if not args.dry_run else (3, 512)))
        runs = {}
        for name in args.scripts:
            shutil.rmtree(out / f"{name}_records", ignore_errors=True)  # a former bench's records would skip the work
            runs[name] = {"fresh": run_script(name, args.device, out, cache, args.dry_run)}
            print(f"{name}: {runs[name]['fresh']['wall_seconds']:.1f} s (fresh cache)", file=sys.stderr)
        for name in args.scripts:
            runs[name]["warm"] = run_script(name, args.device, out / "warm", cache, args.dry_run)
        shutil.rmtree(out / "warm", ignore_errors=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    for name in args.scripts:
        meta = json.loads((out / f"{name}.json").read_text())
        runs[name]["work"] = meta.get("work", {})
    agree = agreement(out, args.scripts)
    if len(agree):
        write_csv(agree, out / "agreement.csv")
    total = sum(r["fresh"]["wall_seconds"] for r in runs.values())
    flops = {n: r["work"].get("train_gflops_per_s") for n, r in runs.items()}
    doc = {
        "dry_run": args.dry_run,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tf32_in_scripts": False,
        "matmul_ceiling_gflops": ceil,
        "engine_distill_batch": {k: round(v, 4) for k, v in step.items()},
        "engine_fraction_of_fp32_ceiling": round(step["gflops_per_s"] / ceil["fp32"], 3),
        "scripts": runs,
        "scripts_fraction_of_fp32_ceiling": {n: (round(v / ceil["fp32"], 3) if v else None) for n, v in flops.items()},
        "total_wall_seconds_fresh": round(total, 1),
        "total_wall_seconds_warm": round(sum(r["warm"]["wall_seconds"] for r in runs.values()), 1),
        "rows_within_cpu_ci": None if not len(agree) else f"{int(agree.within_cpu_ci.fillna(False).sum())}/{int(agree.within_cpu_ci.notna().sum())}",
        "versions": versions(),
        "bench_seconds": round(time.time() - t0, 1),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
    }
    atomic_write_text(out / "bench.json", json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("device_name", "total_wall_seconds_fresh", "total_wall_seconds_warm",
                                          "engine_fraction_of_fp32_ceiling", "rows_within_cpu_ci")}))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
