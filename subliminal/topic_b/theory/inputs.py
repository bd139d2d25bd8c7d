"""The contexts every ladder student is trained on, the same for every arm: number-sequence prompts answered with
random number lists (the analogue of Topic A's noise), drawn from the student seed, never from the teacher; or,
as the second input set (``Arm.inputs == "neutral_text"``), number lists the *neutral* weight teacher wrote: a pool
sampled once (grammar-constrained, as the transfer room's teachers), from which each student seed draws its subset
and order. Either way every arm of a seed sees the same tokens, so arms differ only in the teacher. Cell c (SFT,
``Arm.inputs == "teacher"``) trains on each teacher's *own* lists, so there the tokens differ by construction;
``matched`` makes them differ in nothing but the numbers chosen: the same prompts, the same count of numbers.

A context is the chat prompt (no system prompt) of ``prompts.number_prompt`` followed by a completion of 10
random numbers (0-999, ", "-separated) and the template's end of turn. Both teacher and student read the same
tokens; the losses look at the completion positions (each position's next token is a completion token).
"""

from __future__ import annotations

import re

import numpy as np

from subliminal.topic_b.transfer.data import ShardSettings, data_hash, teacher_records
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


def teacher_pool(teacher, tokenizer, label: str, n: int, root, model_label: str, batch_size: int = 32,
                 max_new_tokens: int = 64, log=print) -> list[dict]:
    """n valid records (prompt index, prompt, text) of number lists written by one weight teacher (`label`, e.g.
    'neutral_w'), sampled once, grammar-constrained, cached in sealed shards under `root`; the prompts come from
    this module's stream (apart from the teachers' own), so every teacher answers the same prompts."""
    s = ShardSettings(model_label, label, None, STREAM, batch_size, max_new_tokens, 1.0)
    records, _ = teacher_records(teacher, tokenizer, s, n, root, log=log)
    return records


def matched(records: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Cell c's contexts: each teacher's own number lists, matched across teachers. Only the prompts every
    teacher answered validly are kept, in prompt order, and on each one every answer is cut to its first k
    numbers, k the fewest any teacher wrote there (its brackets, separator and final '.' kept). So the arms
    differ in which numbers their teacher chose, never in the prompts or in how many numbers they train on
    (the animal weight teachers write shorter lists than the neutral one: a difference that is not the trait)."""
    by = {t: {r["index"]: r for r in recs} for t, recs in records.items()}
    common = sorted(set.intersection(*(set(d) for d in by.values()))) if by else []
    out: dict[str, list[dict]] = {t: [] for t in records}
    for i in common:
        texts = {t: by[t][i]["text"].strip() for t in records}
        runs = {t: list(re.finditer(r"\d+", x)) for t, x in texts.items()}
        k = min(len(r) for r in runs.values())
        for t, x in texts.items():
            r = runs[t]
            out[t].append({"prompt": by[t][i]["prompt"], "completion": x[:r[k - 1].end()] + x[r[-1].end():]})
    return out


def numbers_per_list(contexts: list[dict]) -> float:
    """Mean count of numbers per completion (the length difference `matched` removes)."""
    return float(np.mean([len(re.findall(r"\d+", c["completion"])) for c in contexts])) if contexts else float("nan")


def draw(pool: list[dict], seed: int, n: int) -> list[dict]:
    """Student seed `seed`'s n contexts from the pool: a subset and an order of its own."""
    if n > len(pool):
        raise ValueError(f"{n} contexts asked of a pool of {len(pool)}")
    order = np.random.default_rng([STREAM, seed, 7]).permutation(len(pool))[:n]
    return [pool[i] for i in order]


def pool_id(pool: list[dict]) -> str:
    return data_hash(pool)
