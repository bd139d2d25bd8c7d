"""Speed benchmark for the Topic A engine (not a test): how close the hot loop runs to this machine's
fp32 matmul ceiling, and how it compares with a plain loop over 25 single-model MLPs.

    python bench/bench_topic_a.py            # ~1-2 min; run with nothing else busy on the machine

FLOPs per model and step: forward F = 2·B·(784·256 + 256·256 + 256·13); backward 2F minus the layer-1
input gradient that is never computed (2·B·784·256) (`engine.train_step_flops`). Also the distillation
loop as the scripts run it (noise batch, teacher targets, two students), with each noise chunk drawn
again every epoch (the code before issue 30) and with the fixed noise set kept once drawn (the default
where it fits in memory), in the same run. Prints one JSON line last.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from subliminal.topic_a.engine import (  # noqa: E402
    MLPShape,
    ParallelMLP,
    distill_loss,
    forward_flops,
    logit_index,
    make_adam,
    teacher_loss,
    train_step_flops,
)
from subliminal.topic_a.inputs import NoiseSource, release_kept  # noqa: E402

N, B, STEPS_PER_EPOCH = 25, 1024, 59


def step_flops(n: int, b: int) -> float:
    return train_step_flops(MLPShape(n), b)


def timeit(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def ceiling() -> float:
    best = 0.0
    for n in (1024, 2048, 3072):
        a, b = torch.randn(n, n), torch.randn(n, n)
        best = max(best, 2 * n ** 3 / timeit(lambda: a @ b, 3) / 1e9)  # noqa: B023
    return best


def engine_steps(b: int):
    g = torch.Generator().manual_seed(0)
    m = ParallelMLP(MLPShape(N)).init_(g)
    opt = make_adam(m, 3e-4)
    xs, y = torch.rand(b, 784) * 2 - 1, torch.randint(0, 10, (b,))
    xp = torch.rand(N, b, 784) * 2 - 1
    teacher = m.copy()
    sel = logit_index("aux", 3)

    def teacher_step():
        opt.zero_grad(set_to_none=True)
        teacher_loss(m(xs), y).backward()
        opt.step()

    with torch.no_grad():
        t_lp = torch.log_softmax(teacher(xp)[..., sel], -1)

    def student_step():
        opt.zero_grad(set_to_none=True)
        distill_loss(m(xp)[..., sel], t_lp).backward()
        opt.step()

    def teacher_forward():
        with torch.no_grad():
            torch.log_softmax(teacher(xp)[..., sel], -1)

    return teacher_step, student_step, teacher_forward


def loop_step(b: int):
    models = [torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                  torch.nn.ReLU(), torch.nn.Linear(256, 13)) for _ in range(N)]
    opts = [torch.optim.Adam(m.parameters(), lr=3e-4) for m in models]
    xp = torch.rand(N, b, 784) * 2 - 1
    t_lp = torch.log_softmax(torch.randn(N, b, 3), -1)

    def step():
        for i, (m, o) in enumerate(zip(models, opts)):
            o.zero_grad(set_to_none=True)
            distill_loss(m(xp[i]).unsqueeze(0)[..., 10:], t_lp[i:i + 1]).backward()
            o.step()

    return step


def distill_loop(keep: bool, n_batches: int = 6) -> float:
    """Seconds per batch of the scripts' distillation loop in its second epoch (noise batch, teacher targets,
    two students), with the fixed noise set kept (`keep`) or each chunk drawn again."""
    release_kept()
    g = torch.Generator().manual_seed(0)
    teacher = ParallelMLP(MLPShape(N)).init_(g)
    students = [teacher.copy() for _ in range(2)]
    opts = [make_adam(s, 3e-4) for s in students]
    sel = logit_index("aux", 3)
    src = NoiseSource("uniform", N, 0, n_per_epoch=n_batches * B, batch_size=B, keep=keep)

    def epoch(e: int) -> None:
        for x in src.batches(e):
            with torch.no_grad():
                t_lp = torch.log_softmax(teacher(x)[..., sel], -1)
            for s, o in zip(students, opts):
                o.zero_grad(set_to_none=True)
                distill_loss(s(x)[..., sel], t_lp).backward()
                o.step()

    epoch(0)  # the first epoch draws every chunk (and, kept, stores it)
    best = float("inf")
    for e in (1, 2):
        t = time.perf_counter()
        epoch(e)
        best = min(best, (time.perf_counter() - t) / n_batches)
    release_kept()
    return best


LOAD_AT_START = round(os.getloadavg()[0], 2)  # > 0.5 means something else was running


def main() -> None:
    torch.manual_seed(0)
    ceil = ceiling()
    res = {}
    for b in (B, 64):
        t_step, s_step, t_fwd = engine_steps(b)
        reps = 10 if b == B else 50
        res[b] = {"teacher": timeit(t_step, reps), "student": timeit(s_step, reps), "teacher_fwd": timeit(t_fwd, reps),
                  "loop": timeit(loop_step(b), max(3, reps // 5))}
        fl = step_flops(N, b)
        print(f"batch {b}: teacher step {res[b]['teacher'] * 1e3:.0f} ms ({fl / res[b]['teacher'] / 1e9:.0f} GFLOP/s), "
              f"student step {res[b]['student'] * 1e3:.0f} ms ({fl / res[b]['student'] / 1e9:.0f} GFLOP/s), "
              f"per-model loop {res[b]['loop'] * 1e3:.0f} ms", file=sys.stderr)
    big = res[B]
    gflops = step_flops(N, B) / big["student"] / 1e9
    # the full baseline: teacher 5 epochs + 5 epochs of (teacher targets + 4 students), 59 steps/epoch,
    # plus noise generation (measured; drawn in the first epoch only when the set is kept) — an estimate
    src = NoiseSource("uniform", N, 0, keep=False)
    t_noise = timeit(lambda: next(src.batches(0)), 3)
    drawn, kept = distill_loop(False), distill_loop(True)
    print(f"distillation loop (noise + teacher targets + 2 students): {drawn * 1e3:.0f} ms/batch drawing each chunk, "
          f"{kept * 1e3:.0f} ms/batch with the noise set kept", file=sys.stderr)
    baseline = 5 * STEPS_PER_EPOCH * big["teacher"] + 5 * STEPS_PER_EPOCH * (big["teacher_fwd"] + 4 * big["student"]) \
        + STEPS_PER_EPOCH * t_noise
    recorded = None
    j = Path(__file__).resolve().parent.parent / "plots_a" / "topic_a.json"
    if j.exists():
        recorded = json.loads(j.read_text()).get("wall_seconds")
    out = {
        "gflops": round(gflops, 1),
        "teacher_gflops": round(step_flops(N, B) / big["teacher"] / 1e9, 1),
        "ceiling_gflops": round(ceil, 1),
        "fraction_of_ceiling": round(gflops / ceil, 3),
        "speedup_vs_loop": round(big["loop"] / big["student"], 2),
        "speedup_vs_loop_batch64": round(res[64]["loop"] / res[64]["student"], 2),
        "noise_batch_ms": round(t_noise * 1e3, 1),
        "distill_batch_ms_noise_drawn": round(drawn * 1e3, 1),
        "distill_batch_ms_noise_kept": round(kept * 1e3, 1),
        "kept_noise_speedup": round(drawn / kept, 2),
        "distill_fraction_of_ceiling_noise_kept": round((forward_flops(MLPShape(N), B) + 2 * step_flops(N, B)) / kept / 1e9 / ceil, 3),
        "baseline_seconds": round(baseline, 1),
        "baseline_seconds_recorded_in_plots_a": recorded,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
    }
    from subliminal.results import write_bench_json

    write_bench_json(__file__, out, LOAD_AT_START)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
