"""The logits route (Topic A's analogue, "ghost logits" of a language model): instead of training on
sampled text, the student matches the teacher's next-token distributions on the completion positions
of number sequences, with the KL restricted to the number-list tokens (digits, separators, end of turn).

Teacher = the base model *with* the animal system prompt; student = the same base model + LoRA, *without*
it, on the same completion tokens. The teacher is fixed (the base weights, adapters off), so its
distributions are computed once per data set, before any student trains (``attach_teacher``), and cached
by the caller on disk (a few MB: completion positions x the ~24 allowed tokens), shared by every seed.
The KL is KL(teacher || student) of the two distributions renormalised over the allowed tokens, averaged
over completion positions; the output head runs only at the completion positions and only on the allowed
rows (``restricted_logits``): the full-vocabulary head at every position would cost ~20% of a step for
numbers the loss never reads.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from subliminal.cache import config_hash, load_tensors, save_tensors
from subliminal.topic_b.scoring import encode
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.grammar import token_classes
from subliminal.topic_b.transfer.padding import pad_sequences
from subliminal.topic_b.transfer.prompts import chat_prompt, tokenize_example


def allowed_ids(tokenizer, stop_ids: list[int]) -> torch.Tensor:
    """Token ids of the number-list vocabulary: all-digit tokens, separator tokens, end of turn."""
    c = token_classes(tokenizer, stop_ids)
    ok = (c["ndig"] > 0) | c["end"]
    ok[list(c["sep_text"])] = True
    return ok.nonzero().flatten()


def teacher_key(data_hash: str, system: str | None, allowed: torch.Tensor) -> str:
    """What a stored teacher's distributions are computed from: the data set, the system prompt, the tokens."""
    return config_hash({"data": data_hash, "system": system, "allowed": allowed.tolist()})


def stored_kl(p_file: Path, p_key: str, q_file: Path, q_key: str) -> float:
    """Mean over positions of KL(p || q) between two stored teachers' distributions over the same positions
    (``attach_teacher``'s files); NaN when either file is missing or they do not align. With q = the neutral
    teacher (the base model without a system prompt, i.e. every student at its init) it is the KL a
    logits-route student starts from."""
    a, b = load_tensors(p_file, {"key": p_key}), load_tensors(q_file, {"key": q_key})
    if a is None or b is None or a[0]["logp"].shape != b[0]["logp"].shape:
        return float("nan")
    return float(kl_to_teacher(a[0]["logp"], b[0]["logp"]))


def restricted_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(teacher || student), both renormalised over `allowed` ids. (N, V) inputs."""
    return kl_to_teacher(torch.log_softmax(teacher_logits[:, allowed].float(), -1), student_logits[:, allowed])


def kl_to_teacher(teacher_logp: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(teacher || student): `teacher_logp` already normalised, both (N, A)."""
    s = torch.log_softmax(student_logits.float(), -1)
    return (teacher_logp.exp() * (teacher_logp - s)).sum(-1).mean()


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


def restricted_logits(model, seqs: list[list[int]], pos: list[list[int]], allowed: torch.Tensor | None,
                      pad: int) -> torch.Tensor:
    """Logits over the `allowed` ids at `pos` of each (right-padded) sequence, (sum of len(pos), A): the same
    numbers as ``model(...).logits[b, pos][:, allowed]``, with the output head run only there, on those rows
    (`allowed` None: the whole head, no row copied). `model`: a causal LM or a peft model around one (its LoRA
    layers active)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = next(inner.parameters()).device
    ids, att = pad_sequences(seqs, pad)
    hidden = inner.model(input_ids=ids.to(device), attention_mask=att.to(device)).last_hidden_state
    h = torch.cat([hidden[b, p] for b, p in enumerate(pos)])
    head = inner.get_output_embeddings()
    if allowed is None:
        return head(h)
    a = allowed.to(device)
    out = h @ head.weight[a].T
    return out if getattr(head, "bias", None) is None else out + head.bias[a]


@torch.no_grad()
def at_positions(model, items: list[dict], read, batch: int = 16) -> list[torch.Tensor]:
    """`read(model, seqs, positions)` -> (sum of len(positions), ...) over `items` (their ``t_ids`` and ``t_pos``)
    in batches of similar length (less padding), split back per item, items in order, on the CPU. Run in eval
    mode; the mode is put back."""
    was = model.training
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i]["t_ids"]))  # similar lengths: less padding
    parts: dict[int, torch.Tensor] = {}
    try:
        for k in range(0, len(order), batch):
            chunk = order[k: k + batch]
            out = read(model, [items[i]["t_ids"] for i in chunk], [items[i]["t_pos"] for i in chunk]).cpu()
            for i, part in zip(chunk, out.split([len(items[i]["t_pos"]) for i in chunk])):
                parts[i] = part
    finally:
        model.train(was)
    return [parts[i] for i in range(len(items))]


def teacher_logprobs(base, items: list[dict], allowed: torch.Tensor, pad: int, batch: int = 16) -> torch.Tensor:
    """The teacher's log-probs renormalised over `allowed` at every item's completion positions, items in
    order, (sum of len(t_pos), A). `base`: the plain base model (no adapters), run in eval mode."""
    return torch.cat(at_positions(base, items, lambda m, seqs, pos: torch.log_softmax(
        restricted_logits(m, seqs, pos, allowed, pad).float(), -1), batch))


def attach_cached(items: list[dict], field: str, name: str, compute, cache: Path | None, key: str, width: int,
                  what: str, meta: dict | None = None, log=print) -> torch.Tensor:
    """Put each item's slice of a teacher tensor at its ``t_pos`` (rows: every item's positions in order, `width`
    columns) in ``item[field]`` and return the whole tensor. With `cache`, read it (tensor `name`) from that
    checksummed file when its record names `key` and the shape fits, else `compute()` it once and write it there
    with `meta` (`what` names it in the log line; self-checked on
    load, ``cache.load_tensors``, and sealed; an artefact outside the records, recomputed when missing). One mechanism for the logits route's teacher
    log-probs (``attach_teacher``) and the shared-class KL's targets (``shared_class.attach_targets``)."""
    n = sum(len(i["t_pos"]) for i in items)
    got = load_tensors(Path(cache), {"key": key}) if cache else None
    if got is not None and name in got[0] and got[0][name].shape == (n, width):
        t = got[0][name]
    else:
        t0 = time.time()
        t = compute()
        log(f"{what} at {n} positions in {time.time() - t0:.0f} s")
        if cache:
            cache = Path(cache)
            save_tensors(cache, {name: t}, {"key": key, **(meta or {})})
            for f in (cache, cache.with_suffix(".json")):
                sealed.seal(f)
    for it, part in zip(items, t.split([len(i["t_pos"]) for i in items])):
        it[field] = part
    return t


def attach_teacher(base, items: list[dict], allowed: torch.Tensor, pad: int, cache: Path | None = None,
                   key: str = "", log=print) -> None:
    """Put each item's teacher log-probs (``teacher_logprobs``) in ``item["t_logp"]``; with `cache`, read them
    from that checksummed file when its record names `key`, else compute and write them there (``attach_cached``)."""
    attach_cached(items, "t_logp", "logp", lambda: teacher_logprobs(base, items, allowed, pad), cache, key,
                  len(allowed), "[logits] teacher distributions", log=log)


def distill_loss(model, items: list[dict], allowed: torch.Tensor, pad: int) -> torch.Tensor:
    """The route's loss for a micro-batch of items carrying their teacher log-probs (``attach_teacher``)."""
    s = restricted_logits(model, [i["s_ids"] for i in items], [i["s_pos"] for i in items], allowed, pad)
    return kl_to_teacher(torch.cat([i["t_logp"] for i in items]).to(s.device), s)
