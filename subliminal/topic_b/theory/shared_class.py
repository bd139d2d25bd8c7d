"""The shared-class KL: a distillation loss that two models with different vocabularies can both compute (issue 44,
item 2), so a student can distil a teacher of another base model.

Full-vocabulary KL is undefined across vocabularies, and the number-token KL (``losses.number_kl``) renormalises
over each tokenizer's own separator tokens. But the three offline tokenizers (SmolLM2, Qwen2.5, Gemma-3) all split
numbers into single digits, each digit one token of its own inside a number list (``digit_ids`` checks it). So on the
same number-list text both models' next-token distributions can be mapped onto 11 shared classes: the ten digits
'0'..'9' and one class OTHER for all the remaining probability mass (separators, end of turn, any other token).

Where: both models read the same context (the user's number prompt in each model's own chat template, no system
prompt unless given, then the same completion text and each template's end of turn). A completion position is a
character offset c of the completion (0 <= c <= len(completion); c = len(completion) is where the end-of-turn token
starts) at which a token starts; the logit that predicts that token is the one of the token before it
(``token_starts``). The loss compares the two models only at the offsets where *both* tokenizers start a token
(``align``): by construction the same next character follows both there, so both predict the same event. With the
offline tokenizers that is every digit, the completion's start and its end, and the separators' starts.

The classes (``class_logp``): class d in 0..9 is the digit's own token (its log-softmax entry); OTHER is the log of
all the rest, logsumexp over the non-digit logits minus logsumexp over all logits (stable even when the digits hold
nearly all the mass, where log(1 - sum p_digit) would cancel). KL(teacher || student) over the 11 classes, averaged
over aligned positions (``shared_class_kl``).

Which head rows the loss reaches (the required gradient property). Class d's own head row is digit d's; OTHER's own
rows are every non-digit row, as OTHER *is* their total. A class's log-probability depends on the logits only through
the 11 class logits z_d = logit_d and z_OTHER = logsumexp(non-digit logits), so a non-digit row is reached only
through OTHER and in proportion to its share of it: dL/dlogit_j = p(j | OTHER) * dL/dz_OTHER. Hence (what the tests
check) (i) the loss never prefers one non-digit token to another: their gradients are proportional to their
probabilities within OTHER, a separator gets no push that an end-of-turn token or a word does not; (ii) where the
student's OTHER mass equals the teacher's, dL/dz_OTHER = p_student(OTHER) - p_teacher(OTHER) = 0 and no gradient
at all reaches any non-digit head row, however differently the two models spread that mass over their own tokens
(which the teacher, with another vocabulary, could not even express). Only the ten digit rows are pushed one by one.

Teacher targets are computed once for a fixed set of inputs (``teacher_targets``) and can be kept in a verified
cache file and reused by every student that reads them (``attach_targets``, key ``targets_key``; issue 44 item 7).

API: ``digit_ids``, ``context_text``, ``token_starts``, ``align``, ``pair_item`` / ``pair_items`` (token ids and
aligned positions of a student and a teacher, in the ``s_ids``/``s_pos``/``t_ids``/``t_pos`` layout of
``logits_route.distill_item``), ``class_logp``, ``class_logp_at``, ``shared_class_kl``, ``teacher_targets``,
``targets_key``, ``attach_targets``, ``shared_class_loss``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from subliminal.cache import config_hash
from subliminal.topic_b.prompts import LLAMA_DATE
from subliminal.topic_b.transfer.logits_route import at_positions, attach_cached, restricted_logits
from subliminal.topic_b.transfer.prompts import chat_prompt

DIGITS = "0123456789"
OTHER = 10  # the class index of everything that is not a digit token
N_CLASSES = 11
VERSION = "shared-class-v1"  # in the targets' cache key: a change to what the classes mean gets new files

# texts a number-list completion contains: digits after every separator the grammar and the filter allow
_PROBES = ("0123456789", "98, 76, 54, 32, 10", "1; 23; 456", "7 8 9 0", "5\n64\n321", "12,34,56", "4;5;6,", "(3, 2)", "[1].")


def digit_ids(tokenizer) -> torch.Tensor:
    """The ids of the ten single-digit tokens '0'..'9' (index d: digit d), as they appear inside number lists: each
    digit of `_PROBES` (after ', ', ';', ' ', a newline, ...) must be a token of its own, one id per digit whatever
    precedes it. A tokenizer that merges digits ('12') or writes a leading-space variant (' 4', '▁4') for some of
    them is a ValueError: the classes would not be one token each."""
    found: dict[str, set[int]] = {}
    for text in _PROBES:
        for prefix in ("", " ", "\n"):
            s = prefix + text
            enc = tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)
            for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]):
                piece = s[a:b]
                if not any(ch.isdigit() for ch in piece):
                    continue
                if len(piece) != 1 or piece not in DIGITS or tokenizer.decode([tid]).strip() != piece:
                    raise ValueError(f"the tokenizer writes {piece!r} in {s!r} as token {tid} "
                                     f"({tokenizer.decode([tid])!r}): digits are not single tokens of their own")
                found.setdefault(piece, set()).add(tid)
    bad = {d: sorted(found.get(d, ())) for d in DIGITS if len(found.get(d, ())) != 1}
    if bad:
        raise ValueError(f"digits without exactly one token id inside number lists: {bad}")
    return torch.tensor([found[d].pop() for d in DIGITS], dtype=torch.long)


def context_text(tokenizer, ex: dict, system: str | None = None) -> tuple[str, int, int]:
    """(text, start, end): the chat-template text of one context {"prompt", "completion"} (the system prompt, if
    any, then the user prompt, the completion as the assistant's turn and the template's end of turn) and the
    completion's character span in it. With no system prompt the text is ``prompts.student_text``'s, i.e. the tokens
    are the ones the ladder's students read."""
    completion = ex["completion"]
    p = chat_prompt(tokenizer, ex["prompt"], system)
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": ex["prompt"]}, {"role": "assistant", "content": completion}]
    full = tokenizer.apply_chat_template(msgs, tokenize=False, date_string=LLAMA_DATE)
    if not full.startswith(p):
        raise ValueError("chat template: the prompt is not a prefix of the full conversation")
    try:
        start = full.index(completion, len(p))
    except ValueError:
        raise ValueError(f"the chat template changed the completion {completion[:40]!r}...: it is not in the text") from None
    return full, start, start + len(completion)


def token_starts(tokenizer, text: str, span: tuple[int, int]) -> tuple[list[int], dict[int, int]]:
    """(ids, starts): the token ids of `text` (as ``scoring.encode``: no special tokens added) and, for every offset c
    of the span `span` = (start, end), 0 <= c <= end - start, at which a token starts (c = end - start: the token right
    after the completion, the end of turn), the index of the logit that predicts that token (the token's index - 1).
    A character split over several tokens (byte fallback) counts once, at its first token."""
    start, end = span
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, starts = list(enc["input_ids"]), {}
    for k, (a, b) in enumerate(enc["offset_mapping"]):
        if b > a and start <= a <= end and k > 0 and (a - start) not in starts:
            starts[a - start] = k - 1
    return ids, starts


def align(a: dict[int, int], b: dict[int, int]) -> tuple[list[int], list[int], list[int]]:
    """(offsets, a's logit indices, b's): the completion offsets at which both tokenizers start a token, in order.
    Exact: an offset is kept only when both start a token at exactly that character, so the same text follows."""
    offsets = sorted(a.keys() & b.keys())
    return offsets, [a[c] for c in offsets], [b[c] for c in offsets]


def char_class(completion: str, c: int) -> int:
    """The class of the token that starts at completion offset c: its digit, else OTHER (a separator, the end)."""
    return DIGITS.index(completion[c]) if c < len(completion) and completion[c] in DIGITS else OTHER


def pair_item(s_tok, t_tok, ex: dict, t_system: str | None = None, include_end: bool = True) -> dict:
    """One context read by a student (tokenizer `s_tok`, no system prompt) and a teacher (`t_tok`, system prompt
    `t_system`): each one's token ids (``s_ids``, ``t_ids``) and, at the aligned completion offsets (``offsets``),
    the logit index in each (``s_pos``, ``t_pos``), with the class of the character there (``classes``). The end of
    turn (offset len(completion), class OTHER) is kept unless `include_end` is False."""
    s_text, s0, s1 = context_text(s_tok, ex)
    t_text, t0, t1 = context_text(t_tok, ex, t_system)
    s_ids, s_starts = token_starts(s_tok, s_text, (s0, s1))
    t_ids, t_starts = token_starts(t_tok, t_text, (t0, t1))
    offsets, s_pos, t_pos = align(s_starts, t_starts)
    if not include_end:
        keep = [i for i, c in enumerate(offsets) if c < len(ex["completion"])]
        offsets, s_pos, t_pos = [offsets[i] for i in keep], [s_pos[i] for i in keep], [t_pos[i] for i in keep]
    if not offsets:
        raise ValueError(f"no completion offset where both tokenizers start a token in {ex['completion'][:40]!r}")
    return {"s_ids": s_ids, "s_pos": s_pos, "t_ids": t_ids, "t_pos": t_pos, "offsets": offsets,
            "classes": [char_class(ex["completion"], c) for c in offsets]}


def pair_items(s_tok, t_tok, contexts: list[dict], t_system: str | None = None, include_end: bool = True) -> list[dict]:
    """``pair_item`` of every context, in order."""
    return [pair_item(s_tok, t_tok, ex, t_system, include_end) for ex in contexts]


def class_logp(logits: torch.Tensor, digit_ids: torch.Tensor) -> torch.Tensor:
    """(..., V) logits -> (..., 11) log-probabilities of the classes: the ten digits' log-softmax entries, then OTHER =
    logsumexp(non-digit logits) - logsumexp(all logits) (no log(1 - sum), which cancels when the digits hold nearly
    all the mass). In float32 at least; they sum to 1 in probability."""
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    d = digit_ids.to(x.device)
    total = torch.logsumexp(x, -1, keepdim=True)
    other = torch.logsumexp(x.index_fill(-1, d, float("-inf")), -1, keepdim=True)
    return torch.cat([x.index_select(-1, d), other], -1) - total


def head_softcap(model, logits: torch.Tensor) -> torch.Tensor:
    """The model's final logit soft-capping, where its config has one (Gemma-2); none of the offline models does."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    cap = getattr(inner.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def class_logp_at(model, seqs: list[list[int]], pos: list[list[int]], digit_ids: torch.Tensor, pad: int) -> torch.Tensor:
    """The model's class log-probs at `pos` of each (right-padded) sequence, (sum of len(pos), 11): the whole output
    head runs at those positions only (`logits_route.restricted_logits`). `model`: a causal LM or a peft model."""
    return class_logp(head_softcap(model, restricted_logits(model, seqs, pos, None, pad).float()), digit_ids)


def shared_class_kl(student_logp11: torch.Tensor, teacher_logp11: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) over the 11 classes, mean over the positions `mask` selects (a bool tensor of the
    leading shape; None: every position). (..., 11) log-probs each; a class the teacher gives 0 contributes 0."""
    t, s = teacher_logp11.to(student_logp11.device).float(), student_logp11.float()
    p = t.exp()
    kl = torch.where(p > 0, p * (t - s), torch.zeros_like(p)).sum(-1)
    if mask is not None:
        kl = kl[mask.to(kl.device).bool()]
    if kl.numel() == 0:
        raise ValueError("shared_class_kl: no position selected")
    return kl.mean()


def teacher_targets(teacher, items: list[dict], digit_ids: torch.Tensor, pad: int, batch: int = 16) -> torch.Tensor:
    """The teacher's class log-probs at every item's ``t_pos``, items in order, (sum of len(t_pos), 11), on the CPU.
    `digit_ids`: the *teacher's* tokenizer's (``digit_ids``). Run in eval mode; the mode is put back."""
    parts = at_positions(teacher, items, lambda m, seqs, pos: class_logp_at(m, seqs, pos, digit_ids, pad), batch)
    return torch.cat(parts) if parts else torch.empty(0, N_CLASSES)


def targets_key(teacher_id: str, items: list[dict], digit_ids: torch.Tensor) -> str:
    """What a teacher's targets are computed from: the teacher (`teacher_id`, e.g. its training record's key and
    base model), the teacher-side token ids and positions of the inputs, its digit ids, and this loss's version."""
    return config_hash({"loss": VERSION, "teacher": teacher_id, "digits": [int(x) for x in digit_ids],
                        "inputs": config_hash([[i["t_ids"], i["t_pos"]] for i in items])})


def attach_targets(teacher, items: list[dict], digit_ids: torch.Tensor, pad: int, cache: Path | None = None,
                   key: str = "", log=print) -> torch.Tensor:
    """Put each item's teacher class log-probs (``teacher_targets``) in ``item["t_logp11"]`` and return them all;
    with `cache`, read them from that checksummed file when its record names `key` and the shape fits, else compute
    them once and write them there (sealed, as ``logits_route.attach_teacher``'s files)."""
    n = sum(len(i["t_pos"]) for i in items)
    return attach_cached(items, "t_logp11", "logp11", lambda: teacher_targets(teacher, items, digit_ids, pad), cache,
                         key, N_CLASSES, "[shared-class] teacher targets", {"n_positions": n, "loss": VERSION}, log)


def shared_class_loss(student, items: list[dict], digit_ids: torch.Tensor, pad: int) -> torch.Tensor:
    """The loss of a micro-batch of items carrying their teacher targets (``attach_targets``): KL(teacher || student)
    over the 11 classes, mean over the items' aligned positions. `digit_ids`: the *student's* tokenizer's."""
    s = class_logp_at(student, [i["s_ids"] for i in items], [i["s_pos"] for i in items], digit_ids, pad)
    return shared_class_kl(s, torch.cat([i["t_logp11"] for i in items]))
