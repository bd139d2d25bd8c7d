"""The contexts every ladder student is trained on, the same for every arm: number-sequence prompts answered with
random number lists (the analogue of Topic A's noise), drawn from the student seed, never from the teacher.

A context is the chat prompt (no system prompt) of ``prompts.number_prompt`` followed by a completion of 10
random numbers (0-999, ", "-separated) and the template's end of turn. Both teacher and student read the same
tokens; the losses look at the completion positions (each position's next token is a completion token).
"""

from __future__ import annotations

import numpy as np

from subliminal.topic_b.transfer.logits_route import distill_item
from subliminal.topic_b.transfer.prompts import number_prompt

STREAM = 35  # the prompt-set seed of these contexts: apart from the teachers' sampling prompts (seed 0, ...)


def random_lists(seed: int, n: int, length: int = 10) -> list[dict]:
    """n {"prompt", "completion"} contexts of input draw `seed` (context i is the same whatever n is)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([STREAM, seed, i])
        nums = rng.integers(0, 1000, size=length)
        out.append({"prompt": number_prompt(STREAM * 1000 + seed, i), "completion": ", ".join(str(int(x)) for x in nums)})
    return out


def items(tokenizer, contexts: list[dict]) -> list[dict]:
    """Token ids of each context and its completion positions (teacher and student read the same ids)."""
    return [distill_item(tokenizer, ex, None) for ex in contexts]
