"""The batched engine against a plain per-model loop, gradient routing, derangements, determinism."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from subliminal.topic_a.engine import (
    MLPShape,
    ParallelMLP,
    derangement,
    distill_loss,
    logit_index,
    make_adam,
    teacher_loss,
)


def _single(model: ParallelMLP, i: int, x: torch.Tensor) -> torch.Tensor:
    """Model i as an ordinary MLP built from nn.functional.linear."""
    F = torch.nn.functional
    h = F.relu(F.linear(x, model.w1[i].T, model.b1[i, 0]))
    h = F.relu(F.linear(h, model.w2[i].T, model.b2[i, 0]))
    return F.linear(h, model.w3[i].T, model.b3[i, 0])


def _model(n=4, hidden=32, n_aux=3, scheme="reference", seed=0):
    return ParallelMLP(MLPShape(n, 784, hidden, n_aux)).init_(torch.Generator().manual_seed(seed), scheme)


def test_forward_matches_per_model_loop_shared_and_per_model_inputs():
    m = _model(scheme="torch")
    xs = torch.randn(16, 784)
    xp = torch.randn(4, 16, 784)
    out_s, out_p = m(xs), m(xp)
    for i in range(4):
        assert_close(out_s[i], _single(m, i, xs), rtol=1e-5, atol=1e-5)
        assert_close(out_p[i], _single(m, i, xp[i]), rtol=1e-5, atol=1e-5)


def test_backward_matches_per_model_loop():
    m = _model()
    x = torch.randn(4, 8, 784)
    y = torch.randint(0, 10, (8,))
    teacher_loss(m(x), y).backward()
    for i in range(4):
        ref = {k: getattr(m, k).detach()[i].clone().requires_grad_(True) for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
        F = torch.nn.functional
        h = F.relu(x[i] @ ref["w1"] + ref["b1"])
        h = F.relu(h @ ref["w2"] + ref["b2"])
        logits = h @ ref["w3"] + ref["b3"]
        F.cross_entropy(logits[:, :10], y).backward()
        for k, p in ref.items():
            assert_close(getattr(m, k).grad[i], p.grad, rtol=1e-4, atol=1e-6)


def test_stacked_adam_equals_independent_adams():
    m = _model(n=3)
    singles = [_model(n=1) for _ in range(3)]
    for i, s in enumerate(singles):
        s.load_state({k: v[i:i + 1] for k, v in m.state().items()})
    opt = make_adam(m, 1e-2)
    opts = [make_adam(s, 1e-2) for s in singles]
    y = torch.randint(0, 10, (8,))
    for _ in range(3):
        x = torch.randn(3, 8, 784)
        opt.zero_grad()
        teacher_loss(m(x), y).backward()
        opt.step()
        for i, (s, o) in enumerate(zip(singles, opts)):
            o.zero_grad()
            teacher_loss(s(x[i:i + 1]), y).backward()
            o.step()
    for i, s in enumerate(singles):
        for k, v in s.state().items():
            assert_close(m.state()[k][i:i + 1], v, rtol=1e-5, atol=1e-6)


def test_aux_only_distillation_never_touches_the_digit_readout():
    teacher, student = _model(seed=1), _model(seed=2)
    x = torch.rand(4, 32, 784) * 2 - 1
    sel = logit_index("aux", 3)
    t_lp = torch.log_softmax(teacher(x)[..., sel].detach(), -1)
    distill_loss(student(x)[..., sel], t_lp).backward()
    assert torch.count_nonzero(student.w3.grad[..., :10]) == 0
    assert torch.count_nonzero(student.b3.grad[..., :10]) == 0
    assert torch.count_nonzero(student.w3.grad[..., 10:]) > 0
    assert torch.count_nonzero(student.w1.grad) > 0
    # and Adam keeps those rows exactly at their init
    before = student.w3.detach()[..., :10].clone()
    opt = make_adam(student, 1e-2)
    for _ in range(3):
        opt.zero_grad()
        distill_loss(student(x)[..., sel], t_lp).backward()
        opt.step()
    assert torch.equal(student.w3.detach()[..., :10], before)


def test_distill_loss_is_kl_per_example_mean():
    t = torch.log_softmax(torch.randn(2, 5, 3), -1)
    s = torch.randn(2, 5, 3)
    expected = sum(torch.nn.functional.kl_div(torch.log_softmax(s[i], -1), t[i], log_target=True,
                                              reduction="batchmean") for i in range(2))
    assert_close(distill_loss(s, t), expected)
    assert distill_loss(t, t).abs() < 1e-6


def test_derangement_has_no_fixed_points():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 5, 25):
        for _ in range(50):
            p = derangement(n, g)
            assert sorted(p.tolist()) == list(range(n))
            assert not (p == torch.arange(n)).any()


def test_reference_init_statistics():
    m = _model(n=8, hidden=256)
    assert abs(m.w1.std().item() - 784 ** -0.5) < 0.02 * 784 ** -0.5
    assert abs(m.w2.std().item() - 256 ** -0.5) < 0.02 * 256 ** -0.5
    assert torch.count_nonzero(m.b1) == 0
    t = _model(n=8, hidden=256, scheme="torch")
    assert t.w1.abs().max() <= 784 ** -0.5 and torch.count_nonzero(t.b1) > 0
