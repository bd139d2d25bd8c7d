"""Benchmark of one ladder / base-matrix student (not a test): training tokens/s vs this machine's matmul ceiling.

Per base of `--bases` (fp32, CPU, `--threads` torch threads):
- the fp32 matmul ceiling (GFLOP/s): a (1024 x d) @ (d x d_ff) matmul, the base's MLP shape, best of 3 tries;
- the base matrix's student step exactly as the matrix trains it (``matrix.arm``: the shared-class KL on the seed's
  random number lists, LoRA r8 from ``student.build``, Adam from ``trainer.optimiser``, batch 8, ``run_steps``),
  except that the teacher is the *base itself* (its targets computed once, ``student.class_targets``, no cache
  file): 1 warm-up step, then `--steps` timed steps; tokens counted as ``run_steps`` counts them
  (``objective.tokens``: the student's token ids of every context, no padding);
- FLOPs per token. The base is frozen, so the backward pass computes activation gradients only (dX = dY W^T, as
  many FLOPs as the forward) and the LoRA weight gradients (negligible): no weight gradient of the base (which
  would be another forward's worth). The output head runs only at the loss's aligned positions
  (``logits_route.restricted_logits``), h of them per token. So, with N the non-embedding parameters (the head
  excluded), d the width and V the vocabulary:

      flops_per_token = 2 x forward,  forward = 2 x N + 2 x d x V x h

  and fraction_of_ceiling = tokens/s x flops_per_token / ceiling. Also given: the same with the head at every
  position (h = 1, ``flops_per_token_head_everywhere``), and the matmul FLOPs of the warm-up step as torch's
  ``FlopCounterMode`` counts them (forward + backward matmuls, LoRA included, on the right-padded micro-batch) per
  counted token, a check on the formula (it exceeds it by about the padding, ``padded_tokens_per_token``);
- the readout a student makes at every milestone (``readouts.preference``: 26 questions x 25 animals), timed once
  on the trained student; the teacher targets' time (once per teacher and seed, shared by the students reading it);
- estimated_student_minutes: one 60-step student, 60 steps + 3 readouts at this run's speeds (its targets apart);
- what the committed full runs got: ``tokens_per_s_last_run`` and ``seconds`` of every sealed record under
  plots_b/topic_b_base_matrix_records/<base>/ (their tokens/s divides by training *and* readout time, since the
  start of the run's last session: compare it with ``tokens_per_s_with_readouts``).

Writes `--out` (default bench/bench_ladder_student.json, beside this script) with the load average at start, the
threads, the CPU, versions and finished_utc; the last line printed is the same JSON.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_ladder_student.py          # ~5-10 min on 2 quiet cores
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported, or it has no effect

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_topic_b import matmul_ceiling  # noqa: E402  (the one fp32 ceiling of the benches)

from subliminal.cache import read_record  # noqa: E402
from subliminal.results import atomic_write_text, cpu_name, git_commit, versions  # noqa: E402
from subliminal.topic_b.arms import NEUTRAL  # noqa: E402
from subliminal.topic_b.lm import load_model  # noqa: E402
from subliminal.topic_b.theory import inputs, losses, readouts, shared_class, student  # noqa: E402
from subliminal.topic_b.theory.matrix import arm as matrix_arm  # noqa: E402
from subliminal.topic_b.theory.matrix import base_id  # noqa: E402
from subliminal.topic_b.theory.teachers import TeacherSettings  # noqa: E402
from subliminal.topic_b.trainer import optimiser, run_steps  # noqa: E402

LOAD_AT_START = round(os.getloadavg()[0], 2)  # > 0.5 means something else was running
RECORDS = ROOT / "plots_b" / "topic_b_base_matrix_records"
SEED = 0  # the student seed whose random lists are read
FORMULA = ("flops_per_token = 2 x forward (frozen base: backward = activation gradients only, ~1 forward; LoRA "
           "weight gradients neglected); forward = 2 x N_non_embedding + 2 x d x V x h, h = head positions per token "
           "(the head runs at the loss's aligned positions only); fraction = tokens/s x flops_per_token / ceiling")


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def param_counts(model) -> dict:
    """Non-embedding parameters (no input embedding, no output head), the width and the vocabulary."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    n = sum(p.numel() for p in model.parameters())  # a tied head is counted once, as the embedding
    tied = head.data_ptr() == emb.data_ptr()
    body = n - emb.numel() - (0 if tied else head.numel())
    return {"params": n, "non_embedding_params": body, "d": int(head.shape[1]), "V": int(head.shape[0]), "tied": tied}


def committed(base: str) -> dict:
    """The committed matrix records of students of `base`: their tokens/s and seconds, and the medians."""
    rows, bad = [], []
    for f in sorted((RECORDS / base).glob("*/record.json")):
        rec = read_record(f)
        if rec is None or "tokens_per_s_last_run" not in rec:
            bad.append(f.parent.name)
            continue
        rows.append({"student": f.parent.name, "teacher_base": rec.get("teacher_base", ""),
                     "steps": rec.get("settings", {}).get("steps"), "complete": bool(rec.get("complete")),
                     "tokens_per_s_last_run": rec["tokens_per_s_last_run"], "seconds": rec.get("seconds"),
                     "device": rec.get("device"), "torch": rec.get("torch_version")})
    done = [r for r in rows if r["complete"] and r["seconds"] is not None]
    out = {"n_records": len(rows), "unreadable": bad, "records": rows}
    if rows:
        out["median_tokens_per_s_last_run"] = float(np.median([r["tokens_per_s_last_run"] for r in rows]))
    if done:
        out["median_minutes_complete"] = round(float(np.median([r["seconds"] for r in done])) / 60, 1)
    return out


def bench_base(name: str, steps: int) -> dict:
    t_load = time.perf_counter()
    base, tok = load_model(name)
    base.eval()
    pc = param_counts(base)
    cfg = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    d_ff = int(getattr(cfg, "intermediate_size", 4 * pc["d"]))
    log(f"{name}: loaded in {time.perf_counter() - t_load:.0f} s; N_non_embedding={pc['non_embedding_params']:,} "
        f"d={pc['d']} V={pc['V']} d_ff={d_ff}")

    shape = (1024, pc["d"], d_ff)
    ceiling = max(matmul_ceiling(*shape) for _ in range(3))
    log(f"{name}: fp32 matmul ceiling {ceiling / 1e9:.1f} GFLOP/s on {shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}")

    s = student.StudentSettings()
    a = matrix_arm(NEUTRAL, name, name)  # the diagonal's arm; the teacher below is the base itself
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    data = shared_class.pair_items(tok, tok, inputs.random_lists(SEED, (1 + steps) * s.batch))
    shared_class.teacher_targets(base, data[:2], shared_class.digit_ids(tok), pad)  # warm-up (first-call costs)
    t = time.perf_counter()
    student.class_targets(base, tok, data, "bench-base-as-teacher", base_id(name), None, log=lambda m: None)
    t_targets = time.perf_counter() - t
    log(f"{name}: teacher (base) targets on {len(data)} contexts in {t_targets:.1f} s")
    objective = losses.SharedClassKL(shared_class.digit_ids(tok), pad)
    model = student.build(base, a, SEED, s, TeacherSettings().seed)
    opt = optimiser([p for p in model.parameters() if p.requires_grad], a.optim, s.lr(a))
    n_lora = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def items(step: int) -> list[dict]:
        return data[step * s.batch:(step + 1) * s.batch]

    model.train()
    counter = FlopCounterMode(display=False)
    with counter:  # the warm-up step, its FLOPs counted (not timed)
        warm = run_steps(model, opt, objective, items, start=0, total=1, micro_batch=s.micro_batch,
                         max_grad_norm=s.max_grad_norm, progress=False)
    counted_per_token = counter.get_total_flops() / warm.tokens
    log(f"{name}: warm-up step done; FlopCounterMode: {counted_per_token / 1e6:.1f} MFLOP per token")

    run = run_steps(model, opt, objective, items, start=1, total=1 + steps, micro_batch=s.micro_batch,
                    max_grad_norm=s.max_grad_norm, progress=False)
    tps = run.tokens / run.seconds
    timed = data[s.batch:(1 + steps) * s.batch]
    h = sum(len(i["s_pos"]) for i in timed) / sum(len(i["s_ids"]) for i in timed)
    padded = 0  # the tokens the model runs on: run_steps' micro-batches (sorted by length), right-padded
    for k in range(1, 1 + steps):
        lens = sorted(len(i["s_ids"]) for i in items(k))
        padded += sum(len(c) * c[-1] for c in (lens[j:j + s.micro_batch] for j in range(0, len(lens), s.micro_batch)))
    fwd = 2 * pc["non_embedding_params"] + 2 * pc["d"] * pc["V"] * h
    fwd_all = 2 * pc["non_embedding_params"] + 2 * pc["d"] * pc["V"]
    fpt, fpt_all = 2 * fwd, 2 * fwd_all
    step_s = run.seconds / steps
    log(f"{name}: {steps} steps in {run.seconds:.1f} s ({step_s:.2f} s/step), {tps:.0f} tokens/s, "
        f"{tps * fpt / ceiling:.3f} of the ceiling")

    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        pref = readouts.preference(model, tok)
    t_read = time.perf_counter() - t
    log(f"{name}: readout ({pref.question.nunique()} questions x {pref.animal.nunique()} animals) in {t_read:.1f} s")

    n_mile = len(s.all_milestones())
    student_s = s.steps * step_s + n_mile * t_read
    tokens_per_step = run.tokens / steps
    rec = committed(name)
    log(f"{name}: one {s.steps}-step student ~{student_s / 60:.1f} min; committed records: {rec['n_records']}, "
        f"median tokens/s {rec.get('median_tokens_per_s_last_run', float('nan'))}")
    return {
        "params": pc, "d_ff": d_ff, "lora_params": n_lora, "arm": a.identity(), "student_settings": asdict(s),
        "seed": SEED, "teacher": "the base itself (targets computed once, not cached)",
        "matmul_ceiling_shape": list(shape), "matmul_ceiling_gflops": round(ceiling / 1e9, 1),
        "steps_timed": steps, "batch": s.batch, "tokens_timed": run.tokens, "tokens_per_step": round(tokens_per_step, 1),
        "head_positions_per_token": round(h, 4), "padded_tokens_per_token": round(padded / run.tokens, 4), "seconds_timed": round(run.seconds, 2),
        "seconds_per_step": round(step_s, 3), "tokens_per_s": round(tps, 1),
        "flops_per_token": round(fpt), "fraction_of_ceiling": round(tps * fpt / ceiling, 4),
        "flops_per_token_head_everywhere": round(fpt_all),
        "fraction_of_ceiling_head_everywhere": round(tps * fpt_all / ceiling, 4),
        "flops_per_token_counted": round(counted_per_token),
        "fraction_of_ceiling_counted": round(tps * counted_per_token / ceiling, 4),
        "readout_seconds": round(t_read, 2), "readout_questions": int(pref.question.nunique()),
        "readout_animals": int(pref.animal.nunique()),
        "teacher_targets_seconds": round(t_targets, 2), "teacher_targets_contexts": len(data),
        "teacher_targets_seconds_per_student_estimated": round(t_targets / len(data) * s.steps * s.batch, 1),
        "estimated_student_minutes": round(student_s / 60, 2),
        "estimated_how": f"{s.steps} steps x seconds_per_step + {n_mile} readouts x readout_seconds (targets apart)",
        "tokens_per_s_with_readouts": round(s.steps * tokens_per_step / student_s, 1),
        "committed_runs": rec,
    }


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bases", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    ap.add_argument("--steps", type=int, default=6, help="timed optimiser steps (after 1 warm-up step)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = ap.parse_args()
    if args.steps < 1:
        raise SystemExit("--steps must be at least 1")
    torch.set_num_threads(args.threads)
    log(f"load average at start {LOAD_AT_START}; {args.threads} threads; {cpu_name()}")
    t0 = time.perf_counter()
    out = {"bases": {}, "formula": FORMULA, "threads": torch.get_num_threads(), "cpu": cpu_name(),
           "cpu_count": os.cpu_count(), "machine": platform.machine(), "git_commit": git_commit()}
    for name in args.bases:
        out["bases"][name] = bench_base(name, args.steps)
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    record = {**out, "loadavg_1min_at_start": LOAD_AT_START, "versions": versions(),
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    log(f"wrote {args.out}")
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
