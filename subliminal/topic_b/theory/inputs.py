"""The contexts every ladder student is trained on, the same for every arm: number-sequence prompts answered with
random number lists (the analogue of Topic A's noise), drawn from the student seed, never from the teacher; or,
as the second input set (``Arm.inputs == "neutral_text"``), number lists the *neutral* weight teacher wrote: a pool
sampled once (grammar-constrained, as the transfer room's teachers), from which each student seed draws its subset
and order. Either way every arm of a seed sees the same tokens, so arms differ only in the teacher.

A context is the chat prompt (no system prompt) of ``prompts.number_prompt`` followed by a completion of 10
random numbers (0-999, ", "-separated) and the template's end of turn. Both teacher and student read the same
tokens; the losses look at the completion positions (each position's next token is a completion token).
"""

from __future__ import annotations

import numpy as np

from subliminal.topic_b.transfer.data import ShardSettings, data_hash, examples_of, teacher_records
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


def neutral_pool(teacher, tokenizer, n: int, root, model_label: str, batch_size: int = 32, max_new_tokens: int = 64,
                 log=print) -> list[dict]:
    """n {"prompt", "completion"} number lists written by the neutral weight teacher (sampled once, cached in
    sealed shards under `root`; the prompts come from this module's stream, apart from the teachers' own)."""
    s = ShardSettings(model_label, "neutral_w", None, STREAM, batch_size, max_new_tokens, 1.0)
    records, _ = teacher_records(teacher, tokenizer, s, n, root, log=log)
    return examples_of(records)[:n]


def draw(pool: list[dict], seed: int, n: int) -> list[dict]:
    """Student seed `seed`'s n contexts from the pool: a subset and an order of its own."""
    if n > len(pool):
        raise ValueError(f"{n} contexts asked of a pool of {len(pool)}")
    order = np.random.default_rng([STREAM, seed, 7]).permutation(len(pool))[:n]
    return [pool[i] for i in order]


def pool_id(pool: list[dict]) -> str:
    return data_hash(pool)
