"""Benchmark of the Topic B scoring path (not a test): speed vs this machine's matmul ceiling.

Measures, on SmolLM2-135M-Instruct (fp32, CPU):
- the fp32 matmul ceiling (GFLOP/s) on shapes like the model's MLP;
- the digit trie over a cached prompt (all 1,110 numbers): token positions per second and the
  fraction of the ceiling reached (2 x non-embedding params + output head per position);
- the naive way (one full forward of prompt+number per number) on a random subset, extrapolated
  to 1,110 numbers: speedup_vs_naive = naive_estimate / trie_time;
- the number -> animal direction (one prompt per number, all 25 animals from one forward) on a
  subset, extrapolated to 1,110 prompts;
- full_analysis_seconds: the measured wall time of topic_b_step2_extended.py (25 animals x 1,110
  numbers, both directions) from its provenance JSON when it exists; otherwise
  estimated_full_analysis_seconds = 27 tries + 1,110 prompts extrapolated from this run.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_topic_b.py          # ~1-2 min; last line is JSON
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subliminal.topic_b.lm import load_model  # noqa: E402
from subliminal.topic_b.prompts import ANIMALS, animal_system, build_prompt, number_system  # noqa: E402
from subliminal.topic_b.scoring import ALL_NUMBERS, brute_force_logp, score_numbers, score_prompts  # noqa: E402


def matmul_ceiling(m: int = 1110, k: int = 576, n: int = 1536, reps: int = 20) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * m * k * n * reps / (time.perf_counter() - t)


LOAD_AT_START = round(os.getloadavg()[0], 2)  # > 0.5 means something else was running


def main() -> dict:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    model, tok = load_model("smollm2-135m-instruct")
    d, V = model.config.hidden_size, model.config.vocab_size
    n_params = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    flops_per_position = 2 * (n_params - emb) + 2 * V * d  # body + output head
    ceiling = max(matmul_ceiling() for _ in range(3))

    prompt = build_prompt(tok, "animal", animal_system("owl"))
    score_numbers(model, tok, prompt, ALL_NUMBERS[:10], sep=" ")  # warm-up
    times, res = [], None
    for _ in range(2):
        t = time.perf_counter()
        res = score_numbers(model, tok, prompt, ALL_NUMBERS, sep=" ")
        times.append(time.perf_counter() - t)
    t_trie = min(times)
    tps = res["n_positions"] / t_trie
    frac = tps * flops_per_position / ceiling

    rng = np.random.default_rng(0)
    subset = [ALL_NUMBERS[i] for i in rng.choice(len(ALL_NUMBERS), 20, replace=False)]
    t = time.perf_counter()
    for s in subset:
        brute_force_logp(model, tok, prompt, " " + s, numbers=True)
    t_naive = (time.perf_counter() - t) / len(subset) * len(ALL_NUMBERS)

    animals = [" " + a for a, _ in ANIMALS]
    prompts = [build_prompt(tok, "animal", number_system(n)) for n in ALL_NUMBERS[500:560]]
    t = time.perf_counter()
    score_prompts(model, tok, prompts, animals)
    t_n2a = (time.perf_counter() - t) / len(prompts) * len(ALL_NUMBERS)

    out = {"model": "smollm2-135m-instruct", "threads": torch.get_num_threads(),
           "matmul_ceiling_gflops": round(ceiling / 1e9, 1),
           "trie_seconds_1110_numbers": round(t_trie, 2), "trie_positions": res["n_positions"],
           "prompt_tokens": res["prefix_len"], "tokens_per_second": round(tps, 1),
           "fraction_of_ceiling": round(frac, 3),
           "naive_seconds_1110_numbers_estimated": round(t_naive, 1),
           "naive_how": "20 random numbers, one full forward each, scaled to 1,110",
           "speedup_vs_naive": round(t_naive / t_trie, 1),
           "number_to_animal_seconds_1110_estimated": round(t_n2a, 1),
           "number_to_animal_how": "60 prompts x 25 animals, scaled to 1,110 prompts"}
    run = Path(__file__).resolve().parent.parent / "plots_b" / "topic_b_step2_extended__smollm2-135m-instruct.json"
    est = 27 * t_trie + t_n2a
    if run.exists():
        info = json.loads(run.read_text())
        if info.get("n_animals") == 25 and info.get("n_numbers") == 1110:
            out["full_analysis_seconds"] = info["wall_seconds"]
            out["full_analysis_how"] = "measured wall time of topic_b_step2_extended.py (plots_b JSON)"
    out["estimated_full_analysis_seconds"] = round(est, 1)
    out["estimated_how"] = "27 trie runs (25 animals + 2 baselines) + number->animal estimate, this run"
    from subliminal.results import write_bench_json

    write_bench_json(__file__, out, LOAD_AT_START)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
