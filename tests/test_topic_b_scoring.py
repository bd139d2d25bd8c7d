"""Trie + cached-prefix scoring equals brute force, on tiny random Llamas (no download)."""

import math

import numpy as np
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b.prompts import build_prompt
from subliminal.topic_b.scoring import (
    ALL_NUMBERS,
    brute_force_logp,
    digit_start_ids,
    encode,
    score_continuations,
    score_numbers,
    score_prompts,
)


def close(a, b, tol=1e-4):
    torch.testing.assert_close(torch.as_tensor(np.asarray(a, dtype=np.float64)),
                               torch.as_tensor(np.asarray(b, dtype=np.float64)), rtol=tol, atol=tol)


@pytest.fixture(scope="module", params=["split", "multi"])
def lm(request):
    tok = build_tokenizer(request.param)
    return build_model(tok), tok, request.param


def test_all_numbers_enumeration():
    assert len(ALL_NUMBERS) == 1110 and len(set(ALL_NUMBERS)) == 1110
    assert ALL_NUMBERS[:3] == ("0", "1", "2") and "087" in ALL_NUMBERS and "00" in ALL_NUMBERS


def test_tokenizers_split_as_intended():
    split, multi = build_tokenizer("split"), build_tokenizer("multi")
    assert len(encode(split, "087")) == 3
    assert sum(len(encode(multi, f"{i:03d}")) == 1 for i in range(1000)) > 100


@pytest.mark.parametrize("question,sep", [("sequence", ""), ("animal", " ")])
def test_number_trie_equals_brute_force(lm, question, sep):
    model, tok, _ = lm
    prompt = build_prompt(tok, question, "You love owls.")
    sample = ["0", "7", "08", "42", "087", "495", "999", "100"]
    trie = score_numbers(model, tok, prompt, tuple(sample), sep=sep, max_row_tokens=5,
                         max_batch_tokens=12)  # tiny rows: exercises packing + padding
    brute = [brute_force_logp(model, tok, prompt, sep + s, numbers=True) for s in sample]
    close(trie["logp"], brute)


def test_full_trie_matches_subset_and_batches(lm):
    model, tok, _ = lm
    prompt = build_prompt(tok, "sequence", None)
    full = score_numbers(model, tok, prompt)  # all 1,110
    small = score_numbers(model, tok, prompt, max_row_tokens=1, max_batch_tokens=1)  # unbatched
    close(full["logp"], small["logp"])


def test_digit_probabilities_sum_to_one(lm):
    model, tok, kind = lm
    prompt = build_prompt(tok, "sequence", None)
    res = score_continuations(model, tok, prompt, [str(d) for d in range(10)], numbers=False)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([encode(tok, prompt)])).logits[0, -1]
    lp = torch.log_softmax(logits.float(), -1)
    p_digit_start = float(lp[digit_start_ids(tok)].exp().sum())
    if kind == "split":  # the ten 1-digit tokens are exactly the digit-start tokens
        total = float(np.exp(res["logp_path"]).sum()) + (1 - p_digit_start)
        assert math.isclose(total, 1.0, rel_tol=1e-5)
    # exact-number events over all 1,110 numbers + "no digit" + ">3 digits" partition the mass
    full = score_numbers(model, tok, prompt)
    assert float(np.exp(full["logp"]).sum()) + (1 - p_digit_start) <= 1 + 1e-5
    if kind == "split":
        # the remaining mass is exactly the 4th-digit continuations of 3-digit numbers
        three = [s for s in ALL_NUMBERS if len(s) == 3]
        idx = [ALL_NUMBERS.index(s) for s in three]
        four_mass = float((np.exp(full["logp_path"][idx]) - np.exp(full["logp"][idx])).sum())
        total = float(np.exp(full["logp"]).sum()) + (1 - p_digit_start) + four_mass
        assert math.isclose(total, 1.0, rel_tol=1e-5)


def test_single_token_number_is_plain_softmax_entry():
    tok = build_tokenizer("multi")
    model = build_model(tok)
    prompt = build_prompt(tok, "sequence", None)
    singles = [f"{i:03d}" for i in range(1000) if len(encode(tok, prompt + f"{i:03d}"))
               == len(encode(tok, prompt)) + 1][:5]
    assert singles
    res = score_numbers(model, tok, prompt, tuple(singles))
    with torch.inference_mode():
        lp = torch.log_softmax(model(input_ids=torch.tensor([encode(tok, prompt)])).logits[0, -1], -1)
    expected = torch.stack([lp[encode(tok, s)[0]] for s in singles])
    torch.testing.assert_close(torch.tensor(res["logp_path"], dtype=torch.float32), expected,
                               rtol=1e-5, atol=1e-5)


def test_multi_token_animals_and_boundary(lm):
    model, tok, _ = lm
    prompt = build_prompt(tok, "animal", "You love 087.")
    conts = [" owl", " koala", " kangaroo", " elephant", " owls", "x"]
    res = score_continuations(model, tok, prompt, conts)
    brute = [brute_force_logp(model, tok, prompt, c) for c in conts]
    close(res["logp"], brute)


def test_boundary_merge_is_divided_out():
    tok = build_tokenizer("split")
    model = build_model(tok)
    prompt = "My favorite animal is the ow"  # ' ow' + 'l' may merge into ' owl' when joined
    res = score_continuations(model, tok, prompt, ["l", "ls", "x"])
    brute = [brute_force_logp(model, tok, prompt, c) for c in ["l", "ls", "x"]]
    close(res["logp"], brute)


def test_batched_padded_prompts_equal_unbatched(lm):
    model, tok, _ = lm
    prompts = [build_prompt(tok, "animal", s) for s in
               [None, "You love 7.", "You love 087. You think about 087 all the time.", "Hi"]]
    conts = [" owl", " koala", " eagle"]
    batched = score_prompts(model, tok, prompts, conts, max_batch_tokens=10_000)
    single = np.stack([score_prompts(model, tok, [p], conts)[0] for p in prompts])
    close(batched, single)
    brute = np.array([[brute_force_logp(model, tok, p, c) for c in conts] for p in prompts])
    close(batched, brute)


def test_eager_attention_agrees():
    tok = build_tokenizer("split")
    model = build_model(tok, attn_implementation="eager")
    prompt = build_prompt(tok, "sequence", None)
    res = score_numbers(model, tok, prompt, ("1", "12", "123"))
    brute = [brute_force_logp(model, tok, prompt, s, numbers=True) for s in ("1", "12", "123")]
    close(res["logp"], brute)
