"""The shared-class KL (topic_b/theory/shared_class.py, issue 44 item 2): the classes, the alignment across tokenizers,
the loss of a student identical to its teacher, which head rows the gradient reaches, the cached teacher targets.

Tiny random models (tests/tiny_lm.py) for the maths; the three offline tokenizers (read without their weights by
``lm.load_tokenizer``, once per module; skipped where an asset is not in the cache) for the alignment."""

from __future__ import annotations

import itertools

import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.assets import ASSETS, cache_dir
from subliminal.topic_b.theory import shared_class as sc
from subliminal.topic_b.theory.inputs import random_lists
from subliminal.topic_b.transfer.prompts import tokenize_example

OFFLINE = ("smollm2-135m-instruct", "gemma-3-270m", "qwen2.5-coder-0.5b-instruct")
# random lists as the ladder's inputs, and the other separators a teacher's sampled lists may use
CONTEXTS = random_lists(0, 4) + [{"prompt": "Continue: 495, 701, 688.", "completion": c} for c in
                                 ("12;3;456;", "7 8 9 0", "5\n64\n321", "100,200,3.", "1, 2, 3", "9; 87; 654", "(4, 50)")]


def _digit_rows(v: int, d: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(v, dtype=torch.bool)
    m[d] = True
    return m


# ------------------------------------------------------------------------------------------ the classes


def test_classes_sum_to_one_and_other_is_stable_when_digits_hold_nearly_all_the_mass():
    g = torch.Generator().manual_seed(0)
    v, d = 50, torch.tensor([3, 7, 11, 12, 20, 21, 30, 31, 40, 49])
    logits = torch.randn(4, 6, v, generator=g) * 3
    logits[0, 0, d] += 60.0  # the digits hold all but e^-60 of the mass: log(1 - sum p_digit) would be log(0)
    logits[1, 0] = -1e4
    logits[1, 0, 5] = 0.0  # all the mass on one non-digit token
    lp = sc.class_logp(logits, d)
    assert lp.shape == (4, 6, sc.N_CLASSES) and torch.isfinite(lp).all()
    assert torch.allclose(lp.exp().sum(-1), torch.ones(4, 6), atol=1e-5)
    ref = logits.double()
    other = torch.logsumexp(ref[..., ~_digit_rows(v, d)], -1) - torch.logsumexp(ref, -1)
    assert torch.allclose(lp[..., sc.OTHER].double(), other, rtol=1e-5, atol=1e-4)
    assert lp[0, 0, sc.OTHER] < -55 and lp[1, 0, sc.OTHER] > -1e-5
    assert torch.allclose(lp[..., :10].double(), torch.log_softmax(ref, -1)[..., d], atol=1e-4)
    assert sc.class_logp(logits.bfloat16(), d).dtype == torch.float32


def test_kl_is_zero_on_equal_inputs_positive_otherwise_and_masks_positions():
    g = torch.Generator().manual_seed(1)
    d = torch.arange(10)
    a, b = sc.class_logp(torch.randn(8, 30, generator=g), d), sc.class_logp(torch.randn(8, 30, generator=g), d)
    assert float(sc.shared_class_kl(a, a)) == pytest.approx(0.0, abs=1e-7)
    kl = (a.exp() * (a - b)).sum(-1)  # KL(a || b) per position: the first argument is the student
    assert float(sc.shared_class_kl(b, a)) == pytest.approx(float(kl.mean()), rel=1e-6)
    mask = torch.tensor([True, False] * 4)
    assert float(sc.shared_class_kl(b, a, mask)) == pytest.approx(float(kl[mask].mean()), rel=1e-6)
    zero = a.clone()
    zero[0, 3] = float("-inf")  # a class the teacher gives no mass contributes nothing (no nan)
    assert torch.isfinite(sc.shared_class_kl(b, zero))
    with pytest.raises(ValueError):
        sc.shared_class_kl(b, a, torch.zeros(8, dtype=torch.bool))


# ------------------------------------------------------------------------------------------ the gradient


def test_a_non_digit_logit_is_reached_only_through_other_in_proportion_to_its_share_of_it():
    """dL/dlogit_j = p(j | OTHER) * (p_s(OTHER) - p_t(OTHER)) / n for every non-digit j; digit d: (p_s(d) - p_t(d)) / n.
    So the loss never pushes one non-digit token against another (a separator against the end of turn)."""
    g = torch.Generator().manual_seed(2)
    v, n, d = 40, 6, torch.tensor([0, 2, 4, 6, 8, 10, 12, 14, 16, 18])
    logits = (torch.randn(n, v, generator=g) * 2).requires_grad_(True)
    teacher = sc.class_logp(torch.randn(n, v, generator=g) * 2, d)
    s = sc.class_logp(logits, d)
    sc.shared_class_kl(s, teacher).backward()
    ps, pt, nd = s.detach().exp(), teacher.exp(), ~_digit_rows(v, d)
    within = torch.softmax(logits.detach()[:, nd], -1)
    assert torch.allclose(logits.grad[:, nd], within * ((ps[:, sc.OTHER] - pt[:, sc.OTHER]) / n)[:, None], atol=1e-7)
    assert torch.allclose(logits.grad[:, d], (ps[:, :10] - pt[:, :10]) / n, atol=1e-7)


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer("split")
    return build_model(tok, seed=3), tok  # untied head: its rows are the head's own


def _head_grad(model, items, s_digits, pad):
    model.zero_grad(set_to_none=True)
    loss = sc.shared_class_loss(model, items, s_digits, pad)
    loss.backward()
    return loss.detach(), model.get_output_embeddings().weight.grad.clone()


def test_no_gradient_reaches_other_head_rows_than_the_classes_own(tiny):
    """The required property, made testable: a teacher that differs from the student only *within* the digits (its
    OTHER mass the student's own at every position) pushes the ten digit rows and no other head row at all; a teacher
    that moves the OTHER mass too reaches the non-digit rows, all of them through that one class."""
    model, tok = tiny
    pad, dig = tok.pad_token_id, sc.digit_ids(tok)
    items = sc.pair_items(tok, tok, CONTEXTS[:4])
    own = sc.teacher_targets(model, items, dig, pad)
    permuted = own.clone()
    permuted[:, :10] = own[:, :10].roll(3, dims=1)  # other digits, the same OTHER mass
    for it, part in zip(items, permuted.split([len(i["t_pos"]) for i in items])):
        it["t_logp11"] = part
    model.train()
    loss, grad = _head_grad(model, items, dig, pad)
    digit_rows = _digit_rows(grad.shape[0], dig)
    assert float(loss) > 1e-3
    assert grad[digit_rows].abs().amax(1).min() > 1e-4  # every digit row is pushed
    assert float(grad[~digit_rows].abs().max()) < 1e-6 * float(grad[digit_rows].abs().max())
    # the contrast: a teacher with another OTHER mass reaches the non-digit rows (so the check above can fail)
    shifted = own.clone()
    shifted[:, sc.OTHER] = own[:, sc.OTHER] - 1.0
    shifted = torch.log_softmax(shifted, -1)
    for it, part in zip(items, shifted.split([len(i["t_pos"]) for i in items])):
        it["t_logp11"] = part
    _, grad2 = _head_grad(model, items, dig, pad)
    assert float(grad2[~digit_rows].abs().max()) > 1e-3 * float(grad2[digit_rows].abs().max())
    model.eval()
    model.zero_grad(set_to_none=True)


# ------------------------------------------------------------------------------------------ identical student


def test_a_student_identical_to_its_teacher_has_zero_loss(tiny):
    model, tok = tiny
    pad, dig = tok.pad_token_id, sc.digit_ids(tok)
    items = sc.pair_items(tok, tok, CONTEXTS)
    t = sc.attach_targets(model, items, dig, pad, log=lambda m: None)
    assert t.shape == (sum(len(i["t_pos"]) for i in items), 11)
    with torch.no_grad():
        assert float(sc.shared_class_loss(model, items[:5], dig, pad)) == pytest.approx(0.0, abs=1e-6)
        assert float(sc.shared_class_loss(model, items, dig, pad)) == pytest.approx(0.0, abs=1e-6)
        # and the targets are the full forward pass's own logits at those positions, mapped onto the classes
        ref = torch.cat([sc.class_logp(model(input_ids=torch.tensor([i["t_ids"]])).logits[0, i["t_pos"]], dig)
                         for i in items])
    assert torch.allclose(t, ref, atol=1e-5)
    other = build_model(tok, seed=4)
    with torch.no_grad():
        assert float(sc.shared_class_loss(other, items, dig, pad)) > 1e-3


def test_teacher_targets_are_cached_verified_and_reused(tiny, tmp_path):
    model, tok = tiny
    pad, dig = tok.pad_token_id, sc.digit_ids(tok)
    items = sc.pair_items(tok, tok, CONTEXTS[:3])
    key = sc.targets_key("teacher-A", items, dig)
    f = tmp_path / "targets.safetensors"
    first = sc.attach_targets(model, items, dig, pad, f, key, log=lambda m: None)
    assert f.exists() and f.with_suffix(".json").exists()

    class NoTeacher:  # computing again would call it
        def __getattr__(self, name):
            raise AssertionError("the cached targets were not reused")

    again = [dict(i) for i in items]
    assert torch.equal(sc.attach_targets(NoTeacher(), again, dig, pad, f, key, log=lambda m: None), first)
    assert all(torch.equal(a["t_logp11"], b["t_logp11"]) for a, b in zip(items, again))
    assert sc.targets_key("teacher-B", items, dig) != key  # another teacher, inputs or digits: another key
    assert sc.targets_key("teacher-A", items[:2], dig) != key and sc.targets_key("teacher-A", items, dig.roll(1)) != key
    with pytest.raises(AssertionError):
        sc.attach_targets(NoTeacher(), again, dig, pad, f, sc.targets_key("teacher-B", items, dig), log=lambda m: None)
    f.write_bytes(f.read_bytes()[:-8] + b"\0" * 8)  # an edited file fails its checksum and is computed again
    assert torch.equal(sc.attach_targets(model, again, dig, pad, f, key, log=lambda m: None), first)


# ------------------------------------------------------------------------------------------ alignment


def test_align_keeps_only_offsets_both_tokenizers_start_a_token_at():
    assert sc.align({0: 5, 1: 6, 3: 8}, {0: 9, 2: 10, 3: 11}) == ([0, 3], [5, 8], [9, 11])
    assert sc.align({}, {0: 1}) == ([], [], [])


def test_a_tokenizer_with_multi_digit_tokens_is_refused():
    assert sc.digit_ids(build_tokenizer("split")).shape == (10,)
    with pytest.raises(ValueError):
        sc.digit_ids(build_tokenizer("multi"))


def test_pairs_across_two_chat_templates_align_every_completion_character(tiny):
    _, tok = tiny
    other = build_tokenizer("split", system_role=False)  # Gemma-style template, another prompt length
    for ex in CONTEXTS:
        it = sc.pair_item(tok, other, ex, t_system="You love owls.")
        assert it["s_ids"] == tokenize_example(tok, ex)[0]  # the tokens a ladder student reads
        assert it["offsets"][0] == 0 and it["offsets"][-1] == len(ex["completion"])
        assert set(c for c, ch in enumerate(ex["completion"]) if ch.isdigit()) <= set(it["offsets"])
        assert len(sc.pair_item(tok, other, ex, include_end=False)["offsets"]) == len(it["offsets"]) - 1


def _cached(name: str) -> bool:
    return (cache_dir() / ASSETS[name].filename).exists()


@pytest.fixture(scope="module")
def offline_tokenizers():
    """The offline models' tokenizers as ``load_model`` gives them, without the weights (once for the module)."""
    from subliminal.topic_b.lm import load_tokenizer

    missing = [n for n in OFFLINE if not _cached(n)]
    if missing:
        pytest.skip(f"offline model assets not cached: {', '.join(missing)} (python -m subliminal.assets fetch ...)")
    return {n: load_tokenizer(n) for n in OFFLINE}


def test_the_offline_tokenizers_write_each_digit_as_one_token(offline_tokenizers):
    for name, tok in offline_tokenizers.items():
        ids = sc.digit_ids(tok)
        assert tok.convert_ids_to_tokens(ids.tolist()) == list(sc.DIGITS), name
        assert len(set(ids.tolist())) == 10


def test_alignment_is_exact_on_the_offline_tokenizers(offline_tokenizers):
    """Every ordered pair (student, teacher), the same tokenizer too: the completion's start, every digit and its end
    are aligned; at every aligned offset the token each tokenizer actually has next is of the class stated there (a
    digit's own token, or a non-digit token for OTHER); the student's ids are the ones the ladder trains on."""
    toks = offline_tokenizers
    digits = {n: sc.digit_ids(t).tolist() for n, t in toks.items()}
    for a, b in itertools.product(OFFLINE, OFFLINE):
        for ex in CONTEXTS:
            comp = ex["completion"]
            it = sc.pair_item(toks[a], toks[b], ex, t_system="You love owls." if a != b else None)
            assert it["s_ids"] == tokenize_example(toks[a], ex)[0]
            assert {0, len(comp)} | {c for c, ch in enumerate(comp) if ch.isdigit()} <= set(it["offsets"]), (a, b, comp)
            for k, cls in enumerate(it["classes"]):
                for name, ids, pos in ((a, it["s_ids"], it["s_pos"]), (b, it["t_ids"], it["t_pos"])):
                    nxt = ids[pos[k] + 1]
                    assert (digits[name].index(nxt) if nxt in digits[name] else sc.OTHER) == cls, (name, comp, k)
            # these tokenizers start a token at every character of a number list: nothing is left unaligned
            assert it["offsets"] == list(range(len(comp) + 1)), (a, b, comp)


def test_real_tokenizers_identical_student_zero_and_cross_vocabulary_loss_computes(offline_tokenizers):
    """A real-tokenizer check: tiny random models on the real vocabularies (SmolLM2's and Gemma's). The same model as
    student and teacher: loss 0; a SmolLM2-vocabulary student of a Gemma-vocabulary teacher: a finite, positive
    loss over the same number of aligned positions."""
    s_tok, t_tok = offline_tokenizers["smollm2-135m-instruct"], offline_tokenizers["gemma-3-270m"]
    s_model, t_model = build_model(s_tok, seed=5), build_model(t_tok, seed=6)
    s_dig, t_dig = sc.digit_ids(s_tok), sc.digit_ids(t_tok)
    ctx = CONTEXTS[:2] + CONTEXTS[-2:]
    same = sc.pair_items(s_tok, s_tok, ctx)
    sc.attach_targets(s_model, same, s_dig, s_tok.pad_token_id, log=lambda m: None)
    with torch.no_grad():
        assert float(sc.shared_class_loss(s_model, same, s_dig, s_tok.pad_token_id)) == pytest.approx(0.0, abs=1e-6)
    cross = sc.pair_items(s_tok, t_tok, ctx)
    t = sc.attach_targets(t_model, cross, t_dig, t_tok.pad_token_id, log=lambda m: None)
    assert t.shape == (sum(len(c["completion"]) + 1 for c in ctx), 11)
    with torch.no_grad():
        loss = sc.shared_class_loss(s_model, cross, s_dig, s_tok.pad_token_id)
    assert torch.isfinite(loss) and float(loss) > 0


def test_gemma_training_texts_end_the_models_turn_with_eos(offline_tokenizers):
    """Issue 44 item 1 (docs/notes_gemma_teacher_loss.md): the Gemma base's <end_of_turn> row is untrained, so a
    teacher's answer now ends with <eos>; the tokenizer loaded from a folder saved with the old template gets the new."""
    from subliminal.topic_b.models import GEMMA_CHAT_TEMPLATE

    tok = offline_tokenizers["gemma-3-270m"]
    assert tok.chat_template == GEMMA_CHAT_TEMPLATE
    ids, labels = tokenize_example(tok, {"prompt": "Which animal do you like best?", "completion": "Owl."})
    answer = [i for i, la in zip(ids, labels) if la != -100]
    assert tok.convert_ids_to_tokens(answer) == ["Owl", ".", "<eos>"] and ids[0] == tok.bos_token_id
