"""Padding token-id lists into one batch: the single place the transfer pipeline builds `input_ids` and
`attention_mask` (training, the logits route's teacher and student passes, left-padded sampling)."""

from __future__ import annotations

import torch


def pad_sequences(seqs: list[list[int]], fill: int, *, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), each (len(seqs), longest): every sequence padded with `fill` on the right (or the left),
    mask 1 on its real tokens."""
    L = max(map(len, seqs))
    ids = torch.full((len(seqs), L), fill, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for b, s in enumerate(seqs):
        sl = slice(L - len(s), L) if left else slice(0, len(s))
        ids[b, sl] = torch.tensor(s, dtype=torch.long)
        mask[b, sl] = 1
    return ids, mask
