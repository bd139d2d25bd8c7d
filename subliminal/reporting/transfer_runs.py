"""How the transfer runs ran, for the report: status lines (matched samples, valid fractions, the threshold
defence's kept fractions, devices), the CPU-vs-GPU device check, training speed and the compute budget.
Read from plots_b only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def status_line(meta: dict) -> str:
    done = "complete" if meta.get("complete") else "**partial** (`\"complete\": false`: the run continues from its caches)"
    t = meta.get("teachers", {})
    vf = ", ".join(f"{k} {v.get('valid_fraction', float('nan')):.1%}" for k, v in t.items())
    kept = "; " + kept_line(meta) if meta.get("defence") else ""
    return (f"Run status: {done}; {meta.get('n_train_per_arm', '?')} matched samples per arm; "
            f"valid fraction under the number-list grammar: {vf or '—'}{kept}{_devices(meta)}.")


def kept_line(meta: dict) -> str:
    """'threshold defence at p ≥ 0.01 kept neutral 760 of 768 (99.0%), owl ...' from a run's JSON."""
    d = meta.get("defence", {})
    return ("threshold defence at p ≥ " + f"{next(iter(d.values()))['threshold']:g} kept "
            + ", ".join(f"{k} {v['n_kept']} of {v['n_before']} ({v['kept_fraction']:.1%})" for k, v in d.items()))


def kept_comparison(root: Path, stem: str) -> str:
    """The defence's paired kept-fraction comparison (``<stem>_kept.csv``, ``defence_on_data.kept_table``), one clause
    per arm against the neutral teacher's data; '' when the variant has not run."""
    p = Path(root) / "plots_b" / f"{stem}_kept.csv"
    if not p.exists():
        return ""
    df = pd.read_csv(p)
    parts = []
    for r in df[df.role != "reference"].itertuples():
        p_txt = f"Holm p = {r.holm_p:.2g}" if r.role == "animal" else f"McNemar p = {r.mcnemar_p:.2g}, control"
        parts.append(f"{r.arm} {100 * r.diff_vs_reference:+.1f} [{100 * r.diff_ci_low:+.1f}, "
                     f"{100 * r.diff_ci_high:+.1f}] ({p_txt})")
    return ("Kept fraction minus the neutral teacher's, in percentage points, paired by prompt (McNemar, "
            f"{int(df.paired_n.max())} prompts): " + "; ".join(parts))


def _devices(meta: dict) -> str:
    """Where the students trained, when not all on the CPU (a record without 'device' predates the field and
    was trained on the CPU): '; students trained on: cpu 5, cuda 4 (owl/s2, ...)'."""
    recs = {k: v for k, v in meta.get("students", {}).items() if "steps" in v}
    st = {k: v.get("device", "cpu") for k, v in recs.items()}
    if set(st.values()) <= {"cpu"}:
        return ""
    counts = {d: sorted(k for k, v in st.items() if v == d) for d in sorted(set(st.values()))}

    def rate(ks):  # students trained in one go only: a resumed one's rate mixes two runs
        r = [recs[k]["tokens_per_s"] for k in ks if recs[k].get("steps_this_run") == recs[k]["steps"]]
        return f", {np.mean(r):,.0f} tokens/s" if r else ""

    prec = "bf16 autocast" if meta.get("bf16_autocast") else "fp32"
    return ("; students trained on: " + ", ".join(f"{d} {len(ks)}" + ("" if d == "cpu" else f" ({', '.join(ks)})")
                                                  + rate(ks) for d, ks in counts.items())
            + f", all {prec} (see the device check)")


DEVICE_CHECK = "topic_b_transfer_device_check"


def device_check(root: Path) -> str:
    """One line from the device check's CSV (``transfer/device_check.py``): one student trained twice, on two
    devices, compared by its training record, its adapter and its exact P(animal)."""
    p = Path(root) / "plots_b" / f"{DEVICE_CHECK}.csv"
    if not p.exists():
        return ""
    df = pd.read_csv(p).set_index("quantity")
    j = p.with_suffix(".json")
    meta = json.loads(j.read_text()) if j.exists() else {}
    a, b = meta.get("a", {}).get("device", "?"), meta.get("b", {}).get("device", "?")
    outcome = [q for q in df.index if q.startswith("mean_p_")]
    worst = max([df.rel_diff[q] for q in [*outcome, "final_loss", "adapter_norm"] if q in df.index] or [np.nan])
    same = "the same student up to rounding" if worst < 1e-3 else "**different students**"
    parts = [f"final loss {df.abs_diff.get('final_loss', np.nan):.1g} apart (relative "
             f"{df.rel_diff.get('final_loss', np.nan):.1g})",
             f"adapter ||Δ|| / ||·|| {df.rel_diff.get('adapter_norm', np.nan):.1g} (LoRA B alone "
             f"{df.rel_diff.get('lora_B_norm', np.nan):.1g})"]
    parts += [f"mean exact P({q.removeprefix('mean_p_')}) relative difference {df.rel_diff[q]:.1g}" for q in outcome]
    ta, tb = meta.get("a", {}).get("torch", ""), meta.get("b", {}).get("torch", "")
    tv = f" (torch {ta} vs {tb})" if ta and tb else f" (torch {ta} on {a})" if ta else ""
    return (f"Device check (`python -m subliminal.topic_b.transfer.device_check`): {meta.get('student', '?')} trained "
            f"on {a} and on {b}{tv}: "
            + "; ".join(parts) + f": {same}.")


def speed(root: Path) -> str:
    """One line from bench/bench_topic_b_transfer.json (written by the benchmark), if it ran."""
    j = Path(root) / "bench" / "bench_topic_b_transfer.json"
    if not j.exists():
        return "Speed: not measured yet (`python bench/bench_topic_b_transfer.py`)."
    b = json.loads(j.read_text())
    proj = b.get("projected_owl_set_hours", {})
    return (f"Speed (`bench/bench_topic_b_transfer.py`, {b['threads']} threads, 1-min load average "
            f"{b.get('loadavg_1min_at_start', float('nan')):.1f} at start; fp32 matmul ceiling "
            f"{b['matmul_fp32_gflops']:.1f} GFLOP/s, native bf16: {'yes' if b['native_bf16'] else 'no'}): "
            f"sampling {b['sample_samples_per_s']:.2f} samples/s = {b['sample_new_tokens_per_s']:.1f} new tokens/s "
            f"({b['sample_fraction_of_fp32_ceiling']:.0%} of the ceiling counting new tokens only; prompts of "
            f"~100 tokens are prefilled too), valid fraction {b['sample_valid_fraction']:.0%}; LoRA training "
            f"{b['train_fp32_tokens_per_s']:.0f} tokens/s fp32 ({b['train_fp32_fraction_of_ceiling']:.0%})"
            + (f", {b['train_bf16_tokens_per_s']:.0f} tokens/s bf16" if b.get("train_bf16_tokens_per_s") else "")
            + f". Projected owl set at these rates (n = {b.get('default_n_samples')}, "
            f"{b.get('default_neutral_draws', 1)} neutral draw(s) + owl, {b.get('default_seeds', '?')} seeds): "
            f"{proj.get('sampling', float('nan')):.1f} h sampling + {proj.get('training', float('nan')):.1f} h "
            "training, evaluation not included.")


PAPER_SAMPLES, PAPER_STEPS = 10_000, 455  # the official open-model run: 10k samples, 3 epochs, batch 66


def b_transfer_budget(root: Path) -> str:
    """The committed run's size and its measured cost, from its JSON (config, student records)."""
    j = Path(root) / "plots_b" / "topic_b_transfer.json"
    if not j.exists():
        return "_Not run yet._"
    meta = json.loads(j.read_text())
    c = meta.get("config", {})
    n = meta.get("n_train_per_arm") or c.get("n_samples")
    st = [v for v in meta.get("students", {}).values() if "steps" in v]
    lines = [f"Run configuration: **{n} matched samples per arm** (`--n-samples`; the paper: {PAPER_SAMPLES:,}), "
             f"{c.get('epochs')} epochs, seeds {', '.join(map(str, c.get('seeds', [])))}, animals "
             f"{', '.join(c.get('animals', []))} (in run order; chosen before any result), route `{c.get('route')}`, "
             f"{c.get('neutral_draws', 1)} draw(s) of neutral data."]
    if st:
        steps = st[0]["steps"]
        tok = np.mean([v["tokens_this_run"] for v in st if v.get("steps_this_run") == v["steps"]] or [np.nan])
        secs = [v["seconds_this_run"] for v in st if v.get("steps_this_run") == v["steps"]]
        rate = np.mean([v["tokens_per_s"] for v in st])
        lines.append(f"Per student: {steps} optimiser steps (the paper: {PAPER_STEPS}, so {steps / PAPER_STEPS:.0%} of its "
                     f"steps and {n / PAPER_SAMPLES:.1%} of its samples)"
                     + (f", {tok / 1e6:.2f} M training tokens, {np.mean(secs) / 60:.0f} min of wall time at "
                        f"{rate:.0f} tokens/s (mean of the {len(secs)} students trained in one go)" if secs else "")
                     + f"; bf16 autocast: {'yes' if meta.get('bf16_autocast') else 'no (fp32)'}.")
    ev = [v for v in meta.get("eval_seconds", {}).values() if v is not None]
    if ev:
        lines.append(f"Evaluation: {np.mean(ev):.0f} s per model (mean of {len(ev)} timed).")
    lines.append(f"What the smaller size costs: an effect the paper sees after {PAPER_SAMPLES:,} samples and "
                 f"{PAPER_STEPS} steps may be several times smaller here, so a null is reported with the smallest ratio its CI "
                 "rules out, not as a negative.")
    return " ".join(lines)


LEGACY, LEGACY_COMMIT = "plots_b/topic_b_transfer_cache", "cc4d048"  # the committed run's fp32 folder in git history
RECORDS = "plots_b/topic_b_transfer_records"  # transfer/carried.py


def records_size(root: Path) -> str:
    """README: how the transfer run travels, counted from its committed records (``transfer/carried.py``)."""
    root = Path(root)
    files = sorted((root / RECORDS).rglob("record.json")) if (root / RECORDS).is_dir() else []
    if not files:
        return "_No records of the transfer run yet: a run keeps them in `plots_b/topic_b_transfer_records/`._"
    kinds: dict[str, int] = {}
    for f in files:
        k = f.relative_to(root / RECORDS).parts[0]
        kinds[k] = kinds.get(k, 0) + 1
    size = sum(f.stat().st_size for f in files)
    results = sum(f.stat().st_size for d in ("plots_a", "plots_b") if (root / d).is_dir()
                  for f in (root / d).rglob("*") if f.is_file())
    units = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
    adapters = kinds.get("students", 0) + kinds.get("trait_teachers", 0)
    return (f"**Size.** The transfer run travels as {len(files)} sealed records ({units}; {size / 1e6:.1f} MB in "
            f"`{RECORDS}/`, committed with the results; `plots_a/` and `plots_b/` are {results / 1e6:.0f} MB in all): "
            "`topic_b_transfer.py` writes them back into its cache before anything else, so on a fresh machine it "
            f"continues the committed run instead of retraining it. The final adapters of its {adapters} fine-tunes are "
            "kept in 16 bits outside git, in the cache beside each one's `train.json`, each vouched for by the SHA-256 "
            "its record holds; a student whose evaluation is on record needs none. The fp32 artefacts the committed run "
            f"wrote are in git history only (`{LEGACY}/` at commit {LEGACY_COMMIT}; "
            "`python -m subliminal.topic_b.transfer.migrate` made the records from them) "
            "([details](docs/topic_b_transfer.md#budget-and-size)).")
