"""The logits route (Topic A's analogue, "ghost logits" of a language model): instead of training on
sampled text, the student matches the teacher's next-token distributions on the completion positions
of number sequences, with the KL restricted to the number-list tokens (digits, separators, end of turn).

Teacher = the base model *with* the animal system prompt; student = the same base model + LoRA, *without*
it, on the same completion tokens. Because teacher and student share the base weights, the teacher is the
student's own model with its adapters switched off (``peft``'s ``disable_adapter``): no second copy.
The KL is KL(teacher || student) of the two distributions renormalised over the allowed tokens, averaged
over completion positions. Status: the objective and its tests are here; ``topic_b_transfer.py`` does not
run this route yet (``--route`` accepts only ``text``).
"""

from __future__ import annotations

import torch

from subliminal.topic_b.scoring import encode
from subliminal.topic_b.transfer.finetune import tokenize_example
from subliminal.topic_b.transfer.grammar import token_classes
from subliminal.topic_b.transfer.prompts import chat_prompt


def allowed_ids(tokenizer, stop_ids: list[int]) -> torch.Tensor:
    """Token ids of the number-list vocabulary: all-digit tokens, separator tokens, end of turn."""
    c = token_classes(tokenizer, stop_ids)
    ok = (c["ndig"] > 0) | c["end"]
    ok[list(c["sep_text"])] = True
    return ok.nonzero().flatten()


def restricted_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(teacher || student), both renormalised over `allowed` ids. (N, V) inputs."""
    s = torch.log_softmax(student_logits[:, allowed].float(), -1)
    t = torch.log_softmax(teacher_logits[:, allowed].float(), -1)
    return (t.exp() * (t - s)).sum(-1).mean()


def distill_item(tokenizer, ex: dict, system: str) -> dict:
    """Student (no system prompt) and teacher (system prompt) token ids of one example, and the positions
    in each whose next token is a completion token (the same tokens in both)."""
    ids, labels = tokenize_example(tokenizer, ex)
    t_prompt = chat_prompt(tokenizer, ex["prompt"], system)
    comp = [i for i, la in zip(ids, labels) if la != -100]
    t_ids = encode(tokenizer, t_prompt) + comp
    n = len(comp)
    return {"s_ids": ids, "s_pos": list(range(len(ids) - n - 1, len(ids) - 1)),
            "t_ids": t_ids, "t_pos": list(range(len(t_ids) - n - 1, len(t_ids) - 1))}


def _logits_at(model, seqs: list[list[int]], pos: list[list[int]], pad: int) -> torch.Tensor:
    device = next(model.parameters()).device
    L = max(map(len, seqs))
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    att = torch.zeros_like(ids)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
        att[b, : len(s)] = 1
    out = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
    return torch.cat([out[b, p] for b, p in enumerate(pos)])


def distill_loss(model, items: list[dict], allowed: torch.Tensor, pad: int) -> torch.Tensor:
    """The route's loss for a micro-batch; `model` is a peft model (teacher = adapters off)."""
    with torch.no_grad(), model.disable_adapter():
        t = _logits_at(model, [i["t_ids"] for i in items], [i["t_pos"] for i in items], pad)
    s = _logits_at(model, [i["s_ids"] for i in items], [i["s_pos"] for i in items], pad)
    return restricted_kl(s, t, allowed.to(s.device))
