"""Speed pages: the benchmarks' last runs (bench/*.json, *.csv, written by the bench scripts), read-only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from subliminal.reporting.render import table


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


def tables(root: Path) -> dict[str, str]:
    return {"speed": speed(root), "a_mech_set": mech_set(root), "a_precision": precision(root)}
