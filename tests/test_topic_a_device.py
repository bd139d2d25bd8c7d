"""Topic A on every device: kept noise is the same noise, restored optimizer state lands where the optimizer
keeps it, a resumed run equals an uninterrupted one, and the work counters count the loops' steps.

Tests marked `cuda` run the same paths on a GPU (the milestone/resume path a CPU never takes: fused CUDA
Adam keeps `step` on the device); they are skipped where no GPU is present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from subliminal.topic_a import inputs
from subliminal.topic_a.distill import distill
from subliminal.topic_a.engine import MLPShape, ParallelMLP, forward_flops, make_adam, train_step_flops
from subliminal.topic_a.inputs import NoiseSource, pool_budget, release_kept
from subliminal.topic_a.store import restore, snapshot
from subliminal.topic_a.train import TopicA, TopicAConfig, teacher, teachers

ROOT = Path(__file__).resolve().parent.parent
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(autouse=True)
def _no_kept_set():
    release_kept()
    yield
    release_kept()


def _cfg(tmp_path, device="cpu", **kw):
    base = dict(n_models=3, n_train=2048, n_distill=1536, batch_size=512, hidden=32, teacher_epochs=1, distill_epochs=1,
                device=device, cache_dir=str(tmp_path / "ta"))
    return TopicAConfig(**{**base, **kw})


def _epochs(src: NoiseSource, n: int = 3) -> list[list[torch.Tensor]]:
    return [[x.cpu().clone() for x in src.batches(e)] for e in range(n)]


# ---------------------------------------------------------------------- kept noise = drawn noise
@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
@pytest.mark.parametrize("shared", [False, True])
def test_kept_noise_is_bit_identical_to_drawing_it_again(kind, shared):
    kw = dict(n_models=3, seed=5, shared=shared, n_per_epoch=1300, batch_size=512)
    kept, drawn = NoiseSource(kind, keep=True, **kw), NoiseSource(kind, keep=False, **kw)
    a, b = _epochs(kept), _epochs(drawn)
    assert sorted(x.shape[-2] for x in a[0]) == [1300 - 2 * 512, 512, 512]  # one partial chunk, in a shuffled order
    for ea, eb in zip(a, b):
        assert all(torch.equal(x, y) for x, y in zip(ea, eb))
    assert inputs._KEPT is not None and len(inputs._KEPT[1]) == 3  # every chunk drawn once, then kept


def test_one_kept_set_at_a_time_and_a_budget_of_zero_keeps_none(monkeypatch):
    a = NoiseSource("uniform", 2, 0, n_per_epoch=600, batch_size=256, keep=True)
    b = NoiseSource("gaussian", 2, 0, n_per_epoch=600, batch_size=256, keep=True)
    list(a.batches(0))
    first = inputs._KEPT[0]
    list(b.batches(0))
    assert inputs._KEPT[0] != first and inputs._KEPT[0][0] == "gaussian"  # a's set was dropped for b's
    release_kept()
    monkeypatch.setenv("SUBLIMINAL_NOISE_POOL_GB", "0")
    assert pool_budget("cpu") == 0
    list(NoiseSource("uniform", 2, 0, n_per_epoch=600, batch_size=256).batches(0))
    assert inputs._KEPT is None
    monkeypatch.setenv("SUBLIMINAL_NOISE_POOL_GB", "0.5")
    assert pool_budget("cpu") == 2**29
    monkeypatch.delenv("SUBLIMINAL_NOISE_POOL_GB")
    assert pool_budget("cpu") > 0  # 40% of the available memory


def test_students_are_the_same_with_kept_or_drawn_noise(tmp_path, mnist, monkeypatch):
    monkeypatch.setenv("SUBLIMINAL_NOISE_POOL_GB", "0")
    drawn = distill(TopicA(_cfg(tmp_path / "d"), mnist, progress=False), 1, ["student_aux", "cross_aux"], [1, 2])
    assert inputs._KEPT is None
    monkeypatch.setenv("SUBLIMINAL_NOISE_POOL_GB", "1")
    kept = distill(TopicA(_cfg(tmp_path / "k"), mnist, progress=False), 1, ["student_aux", "cross_aux"], [1, 2])
    assert inputs._KEPT is not None
    assert kept.accuracy.tolist() == drawn.accuracy.tolist()


# ---------------------------------------------------------------------- optimizer state after a restore
def _trained(device: str, steps: int = 3):
    m = ParallelMLP(MLPShape(2, 8, 4, 3)).init_(torch.Generator().manual_seed(0)).to(device)
    opt = make_adam(m, 1e-3)
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1)).to(device)

    def step(model, o):
        o.zero_grad(set_to_none=True)
        model(x).square().sum().backward()
        o.step()

    for _ in range(steps):
        step(m, opt)
    return m, opt, step


@pytest.mark.parametrize("device", DEVICES)
def test_restored_optimizer_state_lands_where_the_optimizer_keeps_it(device):
    m, opt, step = _trained(device)
    snap = {k: v.cpu() for k, v in snapshot(m, opt).items()}  # as read back from disk
    m2 = ParallelMLP(m.shape).to(device)
    opt2 = make_adam(m2, 1e-3)
    restore(snap, m2, opt2)
    for p, q in zip(m.parameters(), m2.parameters()):
        assert set(opt2.state[q]) == set(opt.state[p])
        for k, live in opt.state[p].items():
            got = opt2.state[q][k]
            # the same device and dtype as the state the optimizer built itself (fused CUDA Adam: step on the GPU)
            assert (got.device, got.dtype, got.shape) == (live.device, live.dtype, live.shape), k
            assert torch.equal(got.cpu(), live.cpu()), k
            if k != "step":
                assert got.device == q.device
    for _ in range(2):  # and it steps on, exactly as the uninterrupted optimizer
        step(m, opt)
        step(m2, opt2)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))


@pytest.mark.parametrize("device", DEVICES)
def test_resumed_students_and_teachers_equal_uninterrupted_ones(tmp_path, mnist, device):
    """Milestone 1, then a rerun to milestone 2 (resumed from the checkpoint with its Adam state), equals a
    straight run to 2; the same for a teacher resumed from its epoch-1 snapshot."""
    straight_t = teacher(TopicA(_cfg(tmp_path / "s", device), mnist, progress=False), 2).state()
    A = TopicA(_cfg(tmp_path / "r", device), mnist, progress=False)
    teachers(A, [1])
    resumed_t = teacher(TopicA(_cfg(tmp_path / "r", device), mnist, progress=False), 2).state()
    for k, v in straight_t.items():
        assert torch.equal(resumed_t[k], v), k

    conds = ["student_aux", "cross_aux"]
    straight = distill(TopicA(_cfg(tmp_path / "s", device), mnist, progress=False), 1, conds, [2])
    distill(TopicA(_cfg(tmp_path / "r", device), mnist, progress=False), 1, conds, [1])
    B = TopicA(_cfg(tmp_path / "r", device), mnist, progress=False)
    resumed = distill(B, 1, conds, [1, 2])
    assert B.work.student_steps == len(conds) * 3  # one epoch of 3 batches per condition: it resumed, not restarted
    assert resumed[resumed.distill_epochs == 2].accuracy.tolist() == straight.accuracy.tolist()


# ---------------------------------------------------------------------- the work counters
def test_work_counts_every_step_and_its_flops(tmp_path, mnist):
    A = TopicA(_cfg(tmp_path), mnist, progress=False)
    distill(A, 1, ["student_aux", "cross_aux"], [2])
    w = A.work
    nb_t, nb_s = 4, 3  # 2048 / 512 teacher batches; 1536 / 512 noise batches
    assert w.teacher_steps == nb_t and w.student_steps == 2 * 2 * nb_s
    want = nb_t * train_step_flops(A.shape, 512) + 2 * nb_s * (forward_flops(A.shape, 512) + 2 * train_step_flops(A.shape, 512))
    assert w.flops == pytest.approx(want)
    s = w.summary(A.device)
    assert s["device"] == "cpu" and s["train_seconds"] > 0 and s["steps_per_s"] > 0 and s["cuda"] is None


# ---------------------------------------------------------------------- GPU only
@pytest.mark.cuda
def test_kept_noise_on_the_gpu_is_the_cpu_draw():
    kw = dict(n_models=3, seed=2, n_per_epoch=1300, batch_size=512)
    gpu, cpu = NoiseSource("uniform", device="cuda", **kw), NoiseSource("uniform", keep=False, **kw)
    for e in range(2):
        for x, y in zip(gpu.batches(e), cpu.batches(e)):
            assert x.device.type == "cuda" and torch.equal(x.cpu(), y)
    small = NoiseSource("uniform", 2, 0, n_images=100, n_per_epoch=500, batch_size=128, device="cuda")
    ref = NoiseSource("uniform", 2, 0, n_images=100, n_per_epoch=500, batch_size=128)
    assert all(torch.equal(x.cpu(), y) for x, y in zip(small.batches(1), ref.batches(1)))


@pytest.mark.cuda
def test_gpu_students_match_the_cpu_ones(tmp_path, mnist):
    conds = ["student_aux", "cross_aux"]
    cpu = distill(TopicA(_cfg(tmp_path / "c"), mnist, progress=False), 1, conds, [2])
    gpu = distill(TopicA(_cfg(tmp_path / "g", "cuda"), mnist, progress=False), 1, conds, [2])
    diff = (cpu.accuracy - gpu.accuracy).abs()
    assert diff.max() < 0.02, diff.max()  # the same noise and inits; only rounding differs


@pytest.mark.cuda
@pytest.mark.parametrize("name,flags", [("topic_a_exp1", ["--milestones", "1", "2"]),
                                        ("topic_a_maximize", ["--distill-epochs", "2", "--milestone-every", "1"])])
def test_seed_scripts_resume_on_the_gpu(tmp_path, mnist, name, flags):
    """The scripts that resume students from a checkpoint (every milestone after the first) on --device cuda:
    a fresh cache, then a warm rerun that trains nothing and writes the same numbers."""
    tiny = ["--quick", "--n-models", "3", "--n-train", "3000", "--n-distill", "3000", "--batch-size", "512",
            "--teacher-epochs", "1", "--device", "cuda", "--cache-dir", str(tmp_path / "cache")]

    def run(out):
        return subprocess.run([sys.executable, f"{name}.py", *tiny, *flags, "--out", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)

    first, again = run(tmp_path / "a"), run(tmp_path / "b")
    assert first.returncode == 0, first.stderr[-2000:]
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "a" / f"{name}_summary.csv").read_text() == (tmp_path / "b" / f"{name}_summary.csv").read_text()
    meta = json.loads((tmp_path / "a" / f"{name}.json").read_text())
    assert meta["work"]["device"].startswith("cuda") and meta["work"]["student_steps"] > 0
