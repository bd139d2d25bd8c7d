"""Linear probes on frozen features of N models at once (issue 4: is the random readout the bottleneck?).

A probe is multinomial logistic regression from one model's frozen features to the digit label, trained
on an MNIST training subset and scored on the test set. All N probes are fitted together: the loss is
the sum of the N per-model losses, which is separable, so the joint optimum is each model's own optimum
(full-batch L-BFGS with a strong-Wolfe line search; features standardised per model on the train set).
"""

from __future__ import annotations

import torch
from torch import Tensor

from subliminal.topic_a.engine import N_CLASSES, ParallelMLP

FEATURES = ("h1", "h2", "readout", "aux")  # readout = the 10 digit logits; aux = the m ghost logits


@torch.no_grad()
def features(model: ParallelMLP, x: Tensor, kind: str, chunk: int = 2500) -> Tensor:
    """Frozen features of every model on shared inputs x (B, 784): (N, B, D)."""
    if kind not in FEATURES:
        raise ValueError(f"unknown feature set {kind!r}; choose from {', '.join(FEATURES)}")
    parts = []
    for i in range(0, x.shape[0], chunk):
        xc = x[i:i + chunk]
        if kind in ("h1", "h2"):
            parts.append(model.hidden(xc)[0 if kind == "h1" else 1])
        else:
            logits = model(xc)
            parts.append(logits[..., :N_CLASSES] if kind == "readout" else logits[..., N_CLASSES:])
    return torch.cat(parts, dim=1)


def fit_probe(f_train: Tensor, y_train: Tensor, f_test: Tensor, y_test: Tensor, l2: float = 1e-4,
              max_iter: int = 100) -> Tensor:
    """Train N logistic-regression probes on f_train (N, n, D) → test accuracy on f_test (N, m, D): (N,).

    l2 is the penalty on the (standardised-feature) weights, per model; labels are shared by all models.
    """
    mu = f_train.mean(1, keepdim=True)
    sd = f_train.std(1, keepdim=True).clamp_min(1e-6)
    a, t = (f_train - mu) / sd, (f_test - mu) / sd
    n_models, n, d = a.shape
    w = torch.zeros(n_models, d, N_CLASSES, device=a.device, requires_grad=True)
    b = torch.zeros(n_models, 1, N_CLASSES, device=a.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=1e-6,
                            tolerance_change=1e-9, line_search_fn="strong_wolfe")
    yy = y_train.repeat(n_models)

    def closure():
        opt.zero_grad()
        logits = torch.baddbmm(b, a, w)  # (N, n, 10)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, N_CLASSES), yy, reduction="sum") / n
        loss = loss + 0.5 * l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = torch.baddbmm(b, t, w).argmax(-1)  # (N, m)
        return (pred == y_test).float().mean(1)


def probe_accuracy(model: ParallelMLP, kind: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                   **kw) -> Tensor:
    """Probe test accuracy of every model's `kind` features: (N,)."""
    return fit_probe(features(model, x_train, kind), y_train, features(model, x_test, kind), y_test, **kw)
