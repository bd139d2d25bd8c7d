"""The ladder's two distillation losses, as Topic A's: KL to the teacher's whole next-token distribution
(`full_kl`, the analogue of distilling all logits, a positive control), and KL over the number-list tokens
only, both distributions renormalised there (`number_kl`, the analogue of the ghost logits: the subliminal
cell). Both are KL(teacher || student) averaged over the completion positions of the contexts. Cell c's `sft` is
the paper's recipe instead: cross-entropy of the teacher's own sampled tokens, no teacher forward pass. The
shared-class KL (``shared_class``, issue 44) is the one loss two bases with different vocabularies can both compute:
KL over the ten digits and "other", at the completion offsets where both tokenizers start a token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from subliminal.topic_b.sampling import end_ids
from subliminal.topic_b.theory.shared_class import shared_class_loss
from subliminal.topic_b.transfer.logits_route import allowed_ids, kl_to_teacher, restricted_logits

LOSSES = ("full_kl", "number_kl", "sft", "shared_class_kl")


def vocabulary(loss: str, model, tokenizer) -> torch.Tensor:
    """The token ids a loss compares distributions over: every id (full_kl, sft) or the number-list ids (number_kl)."""
    if loss in ("full_kl", "sft"):
        return torch.arange(model.get_output_embeddings().weight.shape[0])
    if loss == "number_kl":
        return allowed_ids(tokenizer, end_ids(model, tokenizer))
    raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")


@torch.no_grad()
def teacher_logp(teacher, batch: list[dict], ids: torch.Tensor, pad: int) -> torch.Tensor:
    """The teacher's log-probs renormalised over `ids` at the batch's completion positions, (positions, len(ids))."""
    return torch.log_softmax(restricted_logits(teacher, [b["t_ids"] for b in batch], [b["t_pos"] for b in batch], ids,
                                               pad).float(), -1)


def kl_loss(student, t_logp: torch.Tensor, batch: list[dict], ids: torch.Tensor, pad: int) -> torch.Tensor:
    """KL(teacher || student) over `ids`, both renormalised there, mean over the batch's completion positions. The
    student's logits outside `ids` are never computed, so no gradient reaches them."""
    s = restricted_logits(student, [b["s_ids"] for b in batch], [b["s_pos"] for b in batch], ids, pad)
    return kl_to_teacher(t_logp.to(s.device), s)


def sft_loss(student, batch: list[dict], pad: int) -> torch.Tensor:
    """Cross-entropy of each context's completion tokens (and end of turn) under the student, mean over the batch's
    completion positions: SFT on the teacher's text."""
    logits = restricted_logits(student, [b["s_ids"] for b in batch], [b["s_pos"] for b in batch], None, pad)
    target = torch.tensor([b["s_ids"][p + 1] for b in batch for p in b["s_pos"]], device=logits.device)
    return torch.nn.functional.cross_entropy(logits.float(), target)


# ---- the ladder's objectives for ``trainer.run_steps``: items are ``inputs.items`` dicts (or, for the shared-class
# KL, ``shared_class.pair_items`` dicts carrying their teacher targets); sorted and counted by the student's ids


class _ByStudentIds:
    def length(self, item: dict) -> int:
        return len(item["s_ids"])

    def tokens(self, micro: list[dict]) -> int:
        return sum(len(b["s_ids"]) for b in micro)


@dataclass(frozen=True)
class TeacherKL(_ByStudentIds):
    """full_kl / number_kl: KL to the teacher over `ids`, the teacher's side computed on each micro-batch."""

    teacher: object
    ids: torch.Tensor
    pad: int

    def loss(self, model, micro: list[dict]) -> torch.Tensor:
        return kl_loss(model, teacher_logp(self.teacher, micro, self.ids, self.pad), micro, self.ids, self.pad)


@dataclass(frozen=True)
class SFT(_ByStudentIds):
    """sft: the contexts' own completion tokens (cell c)."""

    pad: int

    def loss(self, model, micro: list[dict]) -> torch.Tensor:
        return sft_loss(model, micro, self.pad)


@dataclass(frozen=True)
class SharedClassKL(_ByStudentIds):
    """shared_class_kl: KL over the 11 shared classes to the teacher targets attached to each item
    (``shared_class.attach_targets``); `digit_ids` are the student tokenizer's."""

    digit_ids: torch.Tensor
    pad: int

    def loss(self, model, micro: list[dict]) -> torch.Tensor:
        return shared_class_loss(model, micro, self.digit_ids, self.pad)
