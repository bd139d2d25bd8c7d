"""The one optimiser loop (subliminal/topic_b/trainer.py, issue 42 item 1): it is the plain loop, bit for bit; a
checkpoint resumes it exactly; and it is the only loop: no other module of the package steps an optimiser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from subliminal.topic_b import trainer


class _Net(torch.nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.a = torch.nn.Linear(5, 7)
        self.b = torch.nn.Linear(7, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


@dataclass(frozen=True)
class _MSE:
    def loss(self, model, micro):
        x = torch.stack([m[0] for m in micro])
        y = torch.stack([m[1] for m in micro])
        return ((model(x) - y) ** 2).mean()

    def tokens(self, micro):
        return len(micro)

    def length(self, item):
        return int(item[2])


def _data(n=48):
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(5, generator=g), torch.randn(1, generator=g), int(torch.randint(0, 9, (1,), generator=g)))
            for _ in range(n)]


def _plain(model, opt, data, steps, batch, micro, schedule=None, lr=None):
    """The loop as both rooms wrote it before: sort by length, micro-batches weighted by their share, clip, step."""
    params = [p for p in model.parameters() if p.requires_grad]
    obj = _MSE()
    for step in range(steps):
        if schedule is not None:
            for g in opt.param_groups:
                g["lr"] = lr * schedule(step)
        items = sorted(data[step * batch:(step + 1) * batch], key=obj.length)
        for i in range(0, len(items), micro):
            mb = items[i:i + micro]
            (obj.loss(model, mb) * len(mb) / len(items)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("kind,schedule", [("adam", None), ("adam", lambda s: (s + 1) / 3 if s < 3 else 1.0),
                                           ("sgd", None)])
def test_run_steps_is_the_plain_loop_bit_for_bit(kind, schedule):
    data, steps, batch, micro = _data(), 6, 8, 3
    m1, m2 = _Net(), _Net()
    o1 = trainer.optimiser(list(m1.parameters()), kind, 0.05)
    o2 = trainer.optimiser(list(m2.parameters()), kind, 0.05)
    _plain(m1, o1, data, steps, batch, micro, schedule, 0.05)
    seen = []
    out = trainer.run_steps(m2, o2, _MSE(), lambda s: data[s * batch:(s + 1) * batch], start=0, total=steps,
                            micro_batch=micro, max_grad_norm=1.0, lr=0.05, schedule=schedule,
                            on_step=lambda done, loss, so_far: seen.append(done), progress=False)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert seen == list(range(1, steps + 1)) and len(out.losses) == steps and out.tokens == steps * batch


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_a_checkpoint_resumes_the_loop_exactly(kind, tmp_path: Path):
    data, batch = _data(), 8

    def fresh():
        m = _Net()
        return m, trainer.optimiser(list(m.parameters()), kind, 0.05)

    def go(m, o, start, total, stop_after=None):
        return trainer.run_steps(m, o, _MSE(), lambda s: data[s * batch:(s + 1) * batch], start=start, total=total,
                                 micro_batch=4, max_grad_norm=1.0, stop_after=stop_after, progress=False)

    m1, o1 = fresh()
    go(m1, o1, 0, 5)
    m2, o2 = fresh()
    stopped = go(m2, o2, 0, 5, stop_after=2)
    assert stopped.stopped_at == 2 and len(stopped.losses) == 2
    trainer.save_checkpoint(tmp_path / "c.safetensors", m2, o2, 2, "k")
    m3, o3 = fresh()
    assert trainer.load_checkpoint(tmp_path / "c.safetensors", m3, o3, "other key") == 0  # another student's: refused
    assert trainer.load_checkpoint(tmp_path / "c.safetensors", m3, o3, "k") == 2
    go(m3, o3, 2, 5)
    for p, q in zip(m1.parameters(), m3.parameters()):
        assert torch.equal(p, q)


def test_an_unknown_optimiser_is_refused():
    with pytest.raises(ValueError, match="adam or sgd"):
        trainer.optimiser(list(_Net().parameters()), "lion", 0.1)


def test_no_other_module_steps_an_optimiser():
    """Every LLM student and teacher (Topic B) trains through ``trainer.run_steps`` (Topic A's batched MLP engine is
    another loop, on purpose: many small models in one tensor)."""
    root = Path(trainer.__file__).resolve().parents[1]
    steppers = sorted(p.relative_to(root).as_posix() for p in (root / "topic_b").rglob("*.py")
                      if re.search(r"\bopt\w*\.step\(\)", p.read_text()))
    assert steppers == ["topic_b/trainer.py"]
    users = {p.relative_to(root).as_posix() for p in root.rglob("*.py") if "run_steps(" in p.read_text()}
    assert {"topic_b/transfer/finetune.py", "topic_b/theory/student.py"} <= users
