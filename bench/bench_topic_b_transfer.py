"""Speed of the transfer experiment's two heavy loops vs the machine's matmul ceiling (one JSON line).

- sampling: grammar-constrained teacher samples (owl teacher, varied prompts, left-padded batch);
- training: LoRA r8 student steps (micro-batch 22) on those samples, fp32 and, where the CPU has native
  bf16 (``devices.fast_bf16``), under bf16 autocast.
Each rate is also given as a fraction of the measured matmul ceiling (a 2048^3 matmul), counting
2 x parameters FLOPs per sampled token (the tied embedding is the output head) and, per trained token,
4 x the non-embedding parameters (forward + activation gradients; frozen weights get no weight
gradient) plus 4 x the output head's parameters on the completion tokens only (``completion_loss`` runs
the head nowhere else). LoRA's own matmuls and attention scores are not counted, so the fractions are
slight underestimates. The projected wall time of the committed default run (``TransferConfig()``) is
printed too. ``--reproject`` recomputes only the projection from the stored rates, for a changed default,
without measuring again. Writes bench/bench_topic_b_transfer.json.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/bench_topic_b_transfer.py [--batch 64] [--threads 2]
    .venv/bin/python bench/bench_topic_b_transfer.py --reproject
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from subliminal.devices import fast_bf16  # noqa: E402
from subliminal.results import write_bench_json  # noqa: E402
from subliminal.topic_b.arms import Arm  # noqa: E402
from subliminal.topic_b.lm import load_model  # noqa: E402
from subliminal.topic_b.transfer.data import examples_of, is_valid, sample_prompts  # noqa: E402
from subliminal.topic_b.transfer.finetune import (  # noqa: E402
    TrainSettings,
    _collate,
    completion_loss,
    lora_model,
    tokenize_example,
)
from subliminal.topic_b.transfer.prompts import chat_prompt, number_prompt  # noqa: E402


def matmul_ceiling(dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def projection(out: dict) -> dict:
    """Hours for the default owl set (the neutral draws + owl teacher data, seeds x {neutral draws, owl}
    students) at the measured rates; evaluation not included (the run's JSON records its measured
    evaluation times)."""
    from subliminal.topic_b.transfer.config import TransferConfig

    cfg = TransferConfig()
    teachers = 1 + cfg.neutral_draws
    # the default run's precision (fp32 unless --precision bf16), not the fastest one measured
    bf16 = cfg.bf16 and out.get("train_bf16_tokens_per_s")
    train_rate = out["train_bf16_tokens_per_s"] if bf16 else out["train_fp32_tokens_per_s"]
    gen_s = teachers * cfg.n_samples / out["sample_samples_per_s"] / max(out["sample_valid_fraction"], 1e-3)
    train_s = teachers * len(cfg.seeds) * cfg.n_samples * cfg.epochs * out["train_tokens_per_example"] / train_rate
    return {"projected_owl_set_hours": {"sampling": gen_s / 3600, "training": train_s / 3600,
                                        "total_without_eval": (gen_s + train_s) / 3600},
            "default_n_samples": cfg.n_samples, "default_epochs": cfg.epochs, "default_seeds": len(cfg.seeds),
            "default_neutral_draws": cfg.neutral_draws}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--reproject", action="store_true",
                   help="recompute the projection for the current default config from the stored rates")
    a = p.parse_args()
    if a.reproject:
        path = Path(__file__).with_suffix(".json")
        if not path.exists():
            raise SystemExit(f"{path} not found: run the benchmark once without --reproject")
        out = json.loads(path.read_text())
        out.update(projection(out))
        from subliminal.results import atomic_write_text

        atomic_write_text(path, json.dumps(out, indent=1) + "\n")
        print(json.dumps(out))
        return
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    model, tok = load_model(a.model)
    n_params = sum(p.numel() for p in model.parameters())
    n_head = model.get_output_embeddings().weight.numel()
    ceil32 = matmul_ceiling(torch.float32)
    bf16 = fast_bf16(torch.device("cpu"))
    ceil16 = matmul_ceiling(torch.bfloat16) if bf16 else None
    print(f"[bench] ceiling fp32 {ceil32 / 1e9:.1f} GFLOP/s; sampling...", file=sys.stderr, flush=True)
    prompts = [number_prompt(0, i) for i in range(a.batch)]
    texts = [chat_prompt(tok, q, Arm("owl").system_prompt()) for q in prompts]
    t0 = time.perf_counter()
    recs = sample_prompts(model, tok, texts, 1, max_new_tokens=64)
    dt = time.perf_counter() - t0
    new = sum(len(r["token_ids"]) + r["finished"] for r in recs)
    for r, q in zip(recs, prompts):
        r["prompt"] = q
    valid = [r for r in recs if is_valid(r)[0]]
    out = {"model": a.model, "threads": a.threads, "n_params": n_params, "matmul_fp32_gflops": ceil32 / 1e9,
           "matmul_bf16_gflops": ceil16 / 1e9 if ceil16 else None, "native_bf16": bf16,
           "sample_batch": a.batch, "sample_new_tokens_per_s": new / dt, "sample_samples_per_s": a.batch / dt,
           "sample_valid_fraction": len(valid) / len(recs),
           "sample_fraction_of_fp32_ceiling": new / dt * 2 * n_params / ceil32}
    print(f"[bench] {out}", file=sys.stderr, flush=True)
    s = TrainSettings()
    data = [tokenize_example(tok, ex) for ex in examples_of(valid or recs)]
    out["train_tokens_per_example"] = sum(len(i) for i, _ in data) / len(data)
    out["train_completion_fraction"] = sum(sum(x != -100 for x in la) for _, la in data) / sum(len(i) for i, _ in data)
    flops_per_token = 4 * (n_params - n_head) + 4 * n_head * out["train_completion_fraction"]
    for mode in ["fp32"] + (["bf16"] if bf16 else []):
        m = lora_model(model, s, 0)
        opt = torch.optim.AdamW([q for q in m.parameters() if q.requires_grad], lr=s.lr)
        ntok, t0 = 0, None
        for step in range(a.train_steps + 1):  # the first step is a warm-up, not timed
            if step == 1:
                ntok, t0 = 0, time.perf_counter()
            batch = _collate([data[(step * s.micro_batch + j) % len(data)] for j in range(s.micro_batch)], 0, "cpu")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                loss = completion_loss(m, batch)
            loss.backward()
            opt.step()
            opt.zero_grad()
            ntok += int(batch["attention_mask"].sum())
        rate = ntok / (time.perf_counter() - t0)
        m.unload()
        out[f"train_{mode}_tokens_per_s"] = rate
        print(f"[bench] train {mode}: {rate:.0f} tokens/s", file=sys.stderr, flush=True)
        out[f"train_{mode}_fraction_of_ceiling"] = rate * flops_per_token / (ceil16 if mode == "bf16" else ceil32)
    out.update(projection(out))
    write_bench_json(__file__, out, load0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
