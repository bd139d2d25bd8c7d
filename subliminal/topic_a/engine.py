"""The batched parallel-MLP engine: N independent MLPs 784→H→H→(10+m) stored as stacked tensors.

Every Topic A script trains through this one implementation. Weights are [N, fan_in, fan_out] and
a forward pass is three batched matmuls (`torch.baddbmm`), so N models cost one kernel launch per
layer instead of N. Because Adam is elementwise, one Adam over the stacked tensors is exactly N
independent Adams, and summing the per-model mean losses gives each model its own gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ENGINE_VERSION = "1"  # bump when a change alters numerics; part of every cache key
N_CLASSES = 10
PARAM_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")


@dataclass(frozen=True)
class MLPShape:
    n_models: int = 25
    d_in: int = 784
    hidden: int = 256
    n_aux: int = 3

    @property
    def d_out(self) -> int:
        return N_CLASSES + self.n_aux


class ParallelMLP(torch.nn.Module):
    """N MLPs with stacked parameters. Shapes: w1 (N, d_in, H), w2 (N, H, H), w3 (N, H, 10+m)."""

    def __init__(self, shape: MLPShape, device: torch.device | str = "cpu"):
        super().__init__()
        self.shape = shape
        n, d, h, o = shape.n_models, shape.d_in, shape.hidden, shape.d_out
        z = lambda *s: torch.nn.Parameter(torch.zeros(*s, device=device))  # noqa: E731
        self.w1, self.b1 = z(n, d, h), z(n, 1, h)
        self.w2, self.b2 = z(n, h, h), z(n, 1, h)
        self.w3, self.b3 = z(n, h, o), z(n, 1, o)

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def init_(self, generator: torch.Generator, scheme: str = "reference") -> ParallelMLP:
        """'reference': W ~ N(0, 1/√fan_in) (std), b = 0, as the reference code's MultiLinear.
        'torch': PyTorch nn.Linear default, W and b ~ U(−1/√fan_in, 1/√fan_in)."""
        for wname, bname in (("w1", "b1"), ("w2", "b2"), ("w3", "b3")):
            w, b = getattr(self, wname), getattr(self, bname)
            fan_in = w.shape[1]
            bound = fan_in ** -0.5
            if scheme == "reference":
                w.copy_(torch.randn(w.shape, generator=generator) * bound)
                b.zero_()
            elif scheme == "torch":
                w.copy_(torch.rand(w.shape, generator=generator) * 2 * bound - bound)
                b.copy_(torch.rand(b.shape, generator=generator) * 2 * bound - bound)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
        return self

    def state(self) -> dict[str, Tensor]:
        return {k: getattr(self, k).detach().clone() for k in PARAM_NAMES}

    @torch.no_grad()
    def load_state(self, state: dict[str, Tensor], index: Tensor | None = None) -> ParallelMLP:
        """Copy stacked weights in; `index` (N,) picks which source model each model gets (cross-model)."""
        for k in PARAM_NAMES:
            src = state[k] if index is None else state[k][index]
            getattr(self, k).copy_(src)
        return self

    def copy(self) -> ParallelMLP:
        m = ParallelMLP(self.shape, self.w1.device)
        return m.load_state(self.state())

    # ------------------------------------------------------------------ forward
    def hidden(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, d_in) shared by all models or (N, B, d_in) per model → h1, h2: (N, B, H)."""
        if x.dim() == 2:
            # One GEMM for all models: (B, d) @ (d, N·H), then view as (N, B, H).
            n, d, h = self.w1.shape
            w1 = self.w1.permute(1, 0, 2).reshape(d, n * h)
            h1 = (x @ w1).view(x.shape[0], n, h).transpose(0, 1) + self.b1
        else:
            h1 = torch.baddbmm(self.b1, x, self.w1)
        h1 = torch.relu(h1)
        h2 = torch.relu(torch.baddbmm(self.b2, h1, self.w2))
        return h1, h2

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, B, 10+m); the first 10 are the digit logits, the last m the auxiliary ones."""
        return torch.baddbmm(self.b3, self.hidden(x)[1], self.w3)

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, chunk: int = 2500) -> Tensor:
        """Digit accuracy of each model from its 10 regular logits: (N,)."""
        correct = torch.zeros(self.shape.n_models, device=x.device)
        for i in range(0, x.shape[0], chunk):
            logits = self(x[i:i + chunk])[..., :N_CLASSES]
            correct += (logits.argmax(-1) == y[i:i + chunk]).float().sum(1)
        return correct / x.shape[0]


def forward_flops(shape: MLPShape, b: int) -> float:
    """Multiply-add FLOPs of one forward pass of all N models on a batch of b inputs."""
    d, h, o = shape.d_in, shape.hidden, shape.d_out
    return shape.n_models * 2.0 * b * (d * h + h * h + h * o)


def train_step_flops(shape: MLPShape, b: int) -> float:
    """FLOPs of one training step of all N models (forward + backward, without the layer-1 input gradient,
    which is never computed): 3 forwards minus 2·b·d·h per model."""
    return 3 * forward_flops(shape, b) - shape.n_models * 2.0 * b * shape.d_in * shape.hidden


def logit_index(kind: str, n_aux: int) -> slice:
    """Which logits a student distils: 'aux' = the last m (ghost) logits, 'all' = all 10+m."""
    if kind == "aux":
        return slice(N_CLASSES, N_CLASSES + n_aux)
    if kind == "all":
        return slice(0, N_CLASSES + n_aux)
    raise ValueError(f"unknown logit selection {kind!r}")


def teacher_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy on the 10 digit logits, mean over the batch, summed over models."""
    n, b, _ = logits.shape
    ce = torch.nn.functional.cross_entropy(logits[..., :N_CLASSES].reshape(n * b, N_CLASSES), y.repeat(n),
                                           reduction="sum")
    return ce / b


def distill_loss(student_logits: Tensor, teacher_logprobs: Tensor) -> Tensor:
    """KL(teacher ‖ student) over the selected logits' softmax, mean over examples, summed over models.

    teacher_logprobs: (N, B, k) log-softmax of the teacher's selected logits (computed once per batch).
    """
    s = torch.log_softmax(student_logits, dim=-1)
    kl = (teacher_logprobs.exp() * (teacher_logprobs - s)).sum(-1)  # (N, B)
    return kl.mean(1).sum()


def make_adam(model: ParallelMLP, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over the stacked tensors (= N independent Adams). Fused kernel where available."""
    kwargs = {"lr": lr, "weight_decay": weight_decay}
    try:
        return torch.optim.Adam(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), foreach=True, **kwargs)


def derangement(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation with no fixed points (model i never keeps its own init)."""
    if n < 2:
        raise ValueError("a cross-model control needs at least 2 models")
    while True:
        p = torch.randperm(n, generator=generator)
        if not bool((p == torch.arange(n)).any()):
            return p
