"""Speed pages: the benchmarks' last runs (bench/*.json, *.csv, written by the bench scripts), read-only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from subliminal.reporting.render import table
from subliminal.reporting.seed_claims import A_RTX3090_MINUTES


def speed(root: Path) -> str:
    rows = []
    for name in ("bench_topic_a", "bench_topic_b", "bench_topic_b_transfer"):
        j = Path(root) / "bench" / f"{name}.json"
        if not j.exists():
            rows.append([f"`bench/{name}.py`", "not run yet", ""])
            continue
        m = json.loads(j.read_text())
        rows += [[f"`bench/{name}.py`", k, v] for k, v in m.items() if k != "versions" and not isinstance(v, (dict, list))]
    return table(rows, ["benchmark", "metric", "value"])


def mech_set(root: Path) -> str:
    """bench/bench_mech_set.py: the six scripts' wall times at the fast configuration beside the committed
    full-size runs, and how far the fast run's summary rows lie from the committed ones."""
    root = Path(root)
    j, c = root / "bench" / "bench_mech_set.json", root / "bench" / "bench_mech_set.csv"
    if not j.exists() or not c.exists():
        return "_`bench/bench_mech_set.py` has not been run yet._"
    m, comp = json.loads(j.read_text()), pd.read_csv(c)
    full_cfg, full_total, rows = {}, 0.0, []
    for s, sec in m["wall_seconds"].items():
        fj = root / "plots_a" / f"topic_a_mech_{s}.json"
        full = json.loads(fj.read_text()) if fj.exists() else {}
        full_cfg = full_cfg or full.get("config", {})
        fs = full.get("wall_seconds_all_runs", full.get("wall_seconds"))
        full_total += fs or 0.0
        rows.append([f"`topic_a_mech_{s}.py`", "—" if fs is None else f"{fs / 60:.1f} min", f"{sec / 60:.1f} min"])
    rows.append(["**whole set**", f"**{full_total / 60:.0f} min**", f"**{sum(m['wall_seconds'].values()) / 60:.1f} min**"])
    head = ["script", f"committed tables: {full_cfg.get('n_models', '?')} models, {full_cfg.get('precision', 'fp32')}",
            f"`bench/bench_mech_set.py`: `{m['flags']}`"]
    n, z = len(comp), comp["z"].abs()
    big = comp.assign(az=z).sort_values("az", ascending=False)
    big = big[big.az > 3].head(5)
    text = [f"_Fast run {'from an empty cache' if m.get('fresh_cache') else 'resumed from its cache (times count the last invocation only)'}, "
            f"load {m.get('run_loadavg_1min_at_start', m.get('loadavg_1min_at_start'))} at start, finished "
            f"{m.get('run_finished_utc', m.get('finished_utc'))}._", ""]
    if n:
        worst = comp.loc[comp["diff"].abs().idxmax()]
        text.append(f"Agreement: the fast run's {n} summary rows (setting × condition × milestone or probe) against the "
                    f"committed ones, z = difference / combined standard error. |z| > 2 in {int((z > 2).sum())} rows "
                    f"({(z > 2).mean():.0%}; about 5% if both estimate the same means), |z| > 3 in {int((z > 3).sum())}. "
                    f"Median |difference| {comp['diff'].abs().median() * 100:.1f} points; the largest "
                    f"{abs(worst['diff']) * 100:.1f} points ({worst['script']}: {worst['row']}).")
        same = m.get("verdicts_same")
        if same:
            differ = [s for s, ok in same.items() if not ok]
            text.append(f"The verdict records on the six scripts' claims: the same in {len(same) - len(differ)} "
                        f"of {len(same)} scripts" + (f"; they differ for {', '.join(differ)} (see `bench/bench_mech_set.json`)."
                                                     if differ else "."))
        if len(big):
            text.append("Rows with |z| > 3: " + "; ".join(
                f"{r.script}: {r.row} ({r.mean_full:.1%} → {r.mean_fast:.1%}, z = {r.z:+.1f})" for r in big.itertuples()) + ".")
    return "\n".join([table(rows, head), "", *text])


def precision(root: Path) -> str:
    """bench/bench_precision.py: the baseline in bf16 vs the committed fp32 baseline, model by model."""
    j, c = Path(root) / "bench" / "bench_precision.json", Path(root) / "bench" / "bench_precision.csv"
    if not j.exists() or not c.exists():
        return "_`bench/bench_precision.py` has not been run yet._"
    m, t = json.loads(j.read_text()), pd.read_csv(c)
    rows = [[r.condition, r.n, f"{r.mean_fp32:.2%}", f"{r.mean_bf16:.2%}",
             f"{r.mean_diff * 100:+.2f} ({r.sd_diff * 100:.2f}) points", f"{r.max_abs_diff * 100:.1f} points",
             "—" if pd.isna(r.pearson_r) else f"{r.pearson_r:.3f}"] for r in t.itertuples()]
    head = ["condition", "n", "fp32", "bf16", "per-model bf16 − fp32: mean (sd)", "max abs", "r across models"]
    return "\n".join([table(rows, head), "",
                      f"_One distillation step of 25 models (batch 1024): fp32 {m['student_step_ms_fp32']} ms, bf16 "
                      f"{m['student_step_ms_bf16']} ms ({m['step_speedup']}×); native bf16 matmuls: {m['bf16_native']}; load "
                      f"{m.get('loadavg_1min_at_start')} at start, finished {m.get('finished_utc')}._"])


def _minutes(sec) -> str:
    return "—" if sec is None or pd.isna(sec) else (f"{sec / 60:.1f} min" if sec >= 60 else f"{sec:.0f} s")


def speed_gpu(root: Path) -> str:
    """The five seed scripts at full size: the seed's RTX 3090 minutes, the committed CPU runs (plots_a/*.json) and
    bench/bench_topic_a_gpu.py's run on a CUDA GPU (plots_a/gpu/), or "not yet measured" where it has not run."""
    root = Path(root)
    j = root / "plots_a" / "gpu" / "bench.json"
    g = json.loads(j.read_text()) if j.exists() else None
    if g is not None and g.get("dry_run"):
        g = None  # a dry run checks the flow; it measures nothing
    agree = pd.read_csv(root / "plots_a" / "gpu" / "agreement.csv") if g is not None and (root / "plots_a" / "gpu" / "agreement.csv").exists() else None
    rows, cpu_total, seed_total = [], 0.0, 0
    for name, seed_min in A_RTX3090_MINUTES.items():
        cj = root / "plots_a" / f"{name}.json"
        cpu = json.loads(cj.read_text()).get("wall_seconds") if cj.exists() else None
        cpu_total += cpu or 0.0
        seed_total += seed_min or 0
        run = (g or {}).get("scripts", {}).get(name)
        if run is None:
            gpu_cells = ["not yet measured", "—", "—", "—"]
        else:
            w = run.get("work", {})
            frac = g.get("scripts_fraction_of_fp32_ceiling", {}).get(name)
            a = agree[agree.script == name] if agree is not None else None
            within = "—" if a is None or not a.within_cpu_ci.notna().any() else \
                f"{int(a.within_cpu_ci.fillna(False).astype(bool).sum())}/{int(a.within_cpu_ci.notna().sum())}"
            gpu_cells = [_minutes(run["fresh"]["wall_seconds"]), _minutes(run["warm"]["wall_seconds"]),
                         "—" if w.get("steps_per_s") is None else f"{w['steps_per_s']:,.0f} ({'—' if frac is None else f'{frac:.2f}'})",
                         within]
        rows.append([f"`{name}.py`", "—" if seed_min is None else f"~{seed_min} min", _minutes(cpu), *gpu_cells])
    total = g.get("total_wall_seconds_fresh") if g else None
    rows.append(["**all five**", f"**~{seed_total} min** (+ baseline)", f"**{_minutes(cpu_total)}**",
                 f"**{_minutes(total)}**" if total is not None else "not yet measured", "", "", ""])
    dev = "a CUDA GPU" if g is None else f"{g['device_name']} (torch {g['torch']}, CUDA {g['cuda']})"
    head = ["script", "seed: one RTX 3090", "committed CPU run (2 cores)", f"{dev}: fresh cache", "warm cache",
            "training steps/s (fraction of the fp32 matmul ceiling)", "summary rows inside the CPU's 95% CI"]
    if g is None:
        note = ("_`bench/bench_topic_a_gpu.py` has not run on a GPU yet: the GPU columns are not yet measured. "
                "The CPU column is each script's committed `wall_seconds`; the seed's minutes are its README's._")
    else:
        c = g["matmul_ceiling_gflops"]
        note = (f"_Ceilings on this device: fp32 {c['fp32']:,.0f} GFLOP/s (TF32 off, as the scripts run), TF32 "
                f"{c.get('tf32', float('nan')):,.0f}, bf16 {c.get('bf16', float('nan')):,.0f}. One distillation batch of the "
                f"engine (25 models, batch 1024, teacher targets + 2 students): {g['engine_distill_batch']['gflops_per_s']:,.0f} "
                f"GFLOP/s, {g['engine_fraction_of_fp32_ceiling']:.2f} of the fp32 ceiling. Finished {g['finished_utc']}._")
    return "\n".join([table(rows, head), "", note])


def tables(root: Path) -> dict[str, str]:
    return {"speed": speed(root), "speed_gpu": speed_gpu(root), "a_mech_set": mech_set(root), "a_precision": precision(root)}
