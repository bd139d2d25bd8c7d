"""Direct measurements of the seed's proposed mechanisms (issue 4): do student and teacher converge?

- `linear_cka` / `CkaAccumulator`: linear CKA (Kornblith et al. 2019) between two batched representations
  (N, B, D1) and (N, B, D2), one value per model, from cross-products accumulated over chunks of inputs
  (float64), so no (N, 10000, H) activation tensor is ever kept.
- `similarity`: CKA and mean per-image cosine similarity of teacher vs student hidden activations (both
  layers) on shared inputs (MNIST test images), plus how well the weight updates line up
  (cosine of the students' and teachers' displacements from their own inits).
- `readout_norm_ratio`: how far a readout moved from its init.
(Students' weights at any milestone: `distill.students_at`.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from subliminal.topic_a.engine import N_CLASSES, ParallelMLP


class CkaAccumulator:
    """Linear CKA per model from chunks: X (N, b, D1) and Y (N, b, D2) with the same inputs in the same order.

    With centred X, Y: CKA = ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F). Centred cross-products come from raw sums
    (XᵀY − n·μx μyᵀ); both are shifted by the first chunk's mean first (CKA is shift-invariant) to keep
    the subtraction well conditioned.
    """

    def __init__(self):
        self.n = 0
        self.sums: dict[str, Tensor] = {}

    @torch.no_grad()
    def update(self, x: Tensor, y: Tensor) -> None:
        if not self.sums:
            self.shift_x, self.shift_y = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
        x, y = x - self.shift_x, y - self.shift_y
        parts = {"xy": x.transpose(1, 2) @ y, "xx": x.transpose(1, 2) @ x, "yy": y.transpose(1, 2) @ y,  # (N, D, D')
                 "sx": x.sum(1), "sy": y.sum(1)}  # (N, D)
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0) + v.double()
        self.n += x.shape[1]

    def value(self) -> Tensor:
        s, n = self.sums, self.n
        cxy = s["xy"] - s["sx"][:, :, None] * s["sy"][:, None, :] / n
        cxx = s["xx"] - s["sx"][:, :, None] * s["sx"][:, None, :] / n
        cyy = s["yy"] - s["sy"][:, :, None] * s["sy"][:, None, :] / n
        num = cxy.square().sum((1, 2))
        den = cxx.square().sum((1, 2)).sqrt() * cyy.square().sum((1, 2)).sqrt()
        return (num / den.clamp_min(1e-300)).float()  # (N,)


def linear_cka(x: Tensor, y: Tensor) -> Tensor:
    """Linear CKA of x (N, B, D1) vs y (N, B, D2), or unbatched (B, D1) vs (B, D2): (N,) or a scalar."""
    unbatched = x.dim() == 2
    acc = CkaAccumulator()
    acc.update(x[None] if unbatched else x, y[None] if unbatched else y)
    v = acc.value()
    return v[0] if unbatched else v


@torch.no_grad()
def similarity(teacher: ParallelMLP, student: ParallelMLP, x: Tensor, chunk: int = 1000) -> dict[str, Tensor]:
    """Teacher vs student activations on shared inputs x (B, 784): CKA and mean cosine, per layer, each (N,).

    Cosine is per image between the two H-dim activation vectors, averaged over images; an all-zero
    (dead) vector counts as cosine 0.
    """
    cka = {"h1": CkaAccumulator(), "h2": CkaAccumulator()}
    cos_sum = {"h1": 0.0, "h2": 0.0}
    for i in range(0, x.shape[0], chunk):
        xc = x[i:i + chunk]
        for layer, ht, hs in zip(("h1", "h2"), teacher.hidden(xc), student.hidden(xc)):  # each (N, b, H)
            cka[layer].update(ht, hs)
            cos_sum[layer] = cos_sum[layer] + torch.nn.functional.cosine_similarity(ht, hs, dim=-1, eps=1e-8).sum(1)
    out = {f"cka_{k}": v.value() for k, v in cka.items()}
    out.update({f"cos_{k}": (v / x.shape[0]).float() for k, v in cos_sum.items()})
    return out


@torch.no_grad()
def update_alignment(teacher_init: ParallelMLP, teacher: ParallelMLP, student_init: ParallelMLP,
                     student: ParallelMLP) -> dict[str, Tensor]:
    """Cosine between the student's and the teacher's weight updates (each from its own init), w1 and w2: (N,).

    The seed's mechanism 1 says distillation moves fc1_student along fc1_teacher's path; this is 1 for
    identical updates, ≈ 0 for unrelated ones.
    """
    out = {}
    for k in ("w1", "w2"):
        dt = (getattr(teacher, k) - getattr(teacher_init, k)).flatten(1)
        ds = (getattr(student, k) - getattr(student_init, k)).flatten(1)
        out[f"update_cos_{k}"] = torch.nn.functional.cosine_similarity(dt, ds, dim=1, eps=1e-12)
    return out


@torch.no_grad()
def readout_norm_ratio(model: ParallelMLP, init: ParallelMLP, part: str = "digit") -> Tensor:
    """‖readout now‖ / ‖readout at init‖ per model, for the 10 digit columns of w3 (part='digit'; 1 when
    aux-only distillation leaves them alone) or the m ghost columns (part='aux'; 1 for a teacher trained
    without decay, since cross-entropy on the digits never reaches them)."""
    cols = slice(0, N_CLASSES) if part == "digit" else slice(N_CLASSES, None)
    return model.w3[..., cols].flatten(1).norm(dim=1) / init.w3[..., cols].flatten(1).norm(dim=1)
