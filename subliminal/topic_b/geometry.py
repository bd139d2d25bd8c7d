"""Unembedding geometry: cosine and dot product between animal and number output vectors.

A string's vector is the mean of the unembedding rows of its tokens (as the paper does for
multi-token strings). With digit-split tokenizers a number's vector is the mean of its digits'
vectors, so '087', '078' and '870' share one vector: geometry can only see the digit multiset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from subliminal.topic_b.scoring import encode


def string_vector(W: torch.Tensor, tokenizer, text: str) -> torch.Tensor:
    ids = encode(tokenizer, text)
    return W[ids].mean(0)


@torch.inference_mode()
def pair_table(model, tokenizer, animals, numbers, *, animal_prefix: str = " ",
               number_prefix: str = "") -> pd.DataFrame:
    """One row per (animal, number): cosine and dot of their unembedding vectors."""
    W = model.get_output_embeddings().weight.float()  # (V, d)
    A = torch.stack([string_vector(W, tokenizer, animal_prefix + a) for a in animals])  # (nA, d)
    N = torch.stack([string_vector(W, tokenizer, number_prefix + n) for n in numbers])  # (nN, d)
    dot = A @ N.T
    cos = dot / (A.norm(dim=1, keepdim=True) * N.norm(dim=1)[None, :])
    na, nn = len(animals), len(numbers)
    return pd.DataFrame({
        "animal": np.repeat(list(animals), nn), "number": np.tile(list(numbers), na),
        "cosine": cos.reshape(-1).numpy(), "dot": dot.reshape(-1).numpy(),
        "n_number_tokens": np.tile([len(encode(tokenizer, number_prefix + n)) for n in numbers], na),
    })
