"""Exact probabilities of multi-token continuations, scored as a token trie with tree attention.

Why this exists: the offline tokenizers split numbers into digits ('087' -> '0','8','7') and some
animal names into pieces (' koala' -> ' ko','ala'), so P(answer = s) is a chain-rule product, not
one softmax entry. Scoring 1,110 numbers with one full forward each would cost ~45x more than
scoring the trie of their token sequences once over a cached prompt.

How: every continuation is tokenised *jointly* with its prompt (the tokenizer, not we, decides the
boundary). The shared part of the token sequences is the prefix; the rest forms a trie. Trie nodes
are packed into rows (one depth-1 subtree per row when possible) and run in one batched forward
over the prefix KV cache with a custom 4-D attention mask: each node sees the prefix, its
ancestors and itself, at position prefix_len + depth - 1. Logits are computed only at the
positions whose next-token distribution we need.

Definitions (all in natural log, fp32):
- ``logp_path(s)``: sum of log p(token_i | prompt, tokens_<i) over the continuation's tokens.
  For a tokenizer with one token per number (Llama-3) and an empty separator this is the plain
  log-softmax entry of that token.
- ``logp(s)`` for numbers: ``logp_path(s) + log P(next token does not start with a digit)``, so
  that '0', '08' and '087' are disjoint events ("the number is exactly 087").
- if joint tokenisation re-splits the end of the prompt (a merge across the boundary), the prompt's
  own tail is scored as one more trie path and divided out: P(s | prompt) = P(prompt + s) / P(prompt)
  along the canonical tokenisations, and ``n_boundary_merges`` reports how often it happened.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import torch

from subliminal.topic_b.trie import Row, Trie, edge_logps, pack_subtrees, tree_mask

ALL_NUMBERS: tuple[str, ...] = tuple(
    [f"{a}" for a in range(10)]
    + [f"{a}{b}" for a in range(10) for b in range(10)]
    + [f"{a}{b}{c}" for a in range(10) for b in range(10) for c in range(10)]
)  # 1,110 strings, leading zeros included, in the owls code's order

NEG_INF = float("-inf")


@functools.lru_cache(maxsize=8)
def _digit_start_ids_cached(tok_key: int, tokens: tuple[str, ...]) -> torch.Tensor:
    ids = [i for i, t in enumerate(tokens) if t and t[0].isascii() and t[0].isdigit()]
    return torch.tensor(ids, dtype=torch.long)


def digit_start_ids(tokenizer) -> torch.Tensor:
    """Token ids whose text starts with an ASCII digit: the tokens that would continue a number."""
    tokens = tuple(t or "" for t in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
    return _digit_start_ids_cached(id(tokenizer), tokens)


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of text exactly as written (chat templates already contain their special tokens)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def split_joint(tokenizer, prompt: str, continuations: list[str]):
    """Tokenise prompt+continuation jointly; return (prompt_ids, m, seqs, tail) where the first m
    prompt tokens are shared by every joint sequence, seqs[i] = joint_i[m:], and tail = the prompt's
    own tokens after m (empty unless some continuation merged across the boundary)."""
    prompt_ids = encode(tokenizer, prompt)
    joints = [encode(tokenizer, prompt + c) for c in continuations]
    m = min([len(prompt_ids)] + [_lcp(prompt_ids, j) for j in joints])
    if m == 0:
        raise ValueError("continuation changes the first prompt token; nothing to condition on")
    return prompt_ids, m, [j[m:] for j in joints], prompt_ids[m:]


def head_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Output head on selected hidden states (float32), incl. final soft-capping where a model has it."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _queries_logstats(model, rows: list[Row], queries: list[list[int]], targets: list[list[list[int]]],
                      cont_ids: torch.Tensor | None, prefix_cache=None, n_prefix: int = 0,
                      head_chunk: int = 256):
    """One forward over padded rows; for row r and its query positions q, return log p(target) for
    each target token and logsumexp of log p over cont_ids. Output: list per row of list per query
    of (np.ndarray target_logps, float cont_lse)."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    B, L = len(rows), max(len(r.tokens) for r in rows)
    input_ids = torch.zeros(B, L, dtype=torch.long)
    position_ids = torch.zeros(B, L, dtype=torch.long)
    mask = torch.full((B, 1, L, n_prefix + L), torch.finfo(dtype).min, dtype=dtype)
    for b, r in enumerate(rows):
        n = len(r.tokens)
        input_ids[b, :n] = torch.tensor(r.tokens)
        position_ids[b, :n] = n_prefix + torch.tensor(r.depths)
        position_ids[b, n:] = n_prefix  # padding: harmless positions
        mask[b, 0, :n, : n_prefix + n] = tree_mask(r.parents, n_prefix, dtype)
        for j in range(n, L):  # padding rows attend to themselves only (avoids all-masked softmax)
            mask[b, 0, j, n_prefix + j] = 0.0
    cache = None
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        if B > 1:
            cache.batch_repeat_interleave(B)
    out = model.get_decoder()(
        input_ids=input_ids.to(device), attention_mask=mask.to(device),
        position_ids=position_ids.to(device), cache=cache, use_cache=cache is not None,
    )
    hidden = out.last_hidden_state  # (B, L, d)
    flat = [(b, q) for b in range(B) for q in queries[b]]
    results: list[list] = [[None] * len(queries[b]) for b in range(B)]
    qi = {b: 0 for b in range(B)}
    for s in range(0, len(flat), head_chunk):
        chunk = flat[s: s + head_chunk]
        h = hidden[[b for b, _ in chunk], [q for _, q in chunk]]  # (C, d)
        lp = torch.log_softmax(head_logits(model, h), dim=-1)  # (C, V) fp32
        lse = torch.logsumexp(lp[:, cont_ids.to(lp.device)], dim=-1) if cont_ids is not None else None
        for c, (b, _) in enumerate(chunk):
            tg = targets[b][qi[b]]
            vals = lp[c, tg].cpu().numpy() if tg else np.zeros(0, dtype=np.float32)
            results[b][qi[b]] = (vals, float(lse[c]) if lse is not None else NEG_INF)
            qi[b] += 1
    return results


def _log1mexp(x: float) -> float:
    """log(1 - exp(x)) for x <= 0, accurate near 0."""
    if x >= 0:
        return NEG_INF
    return math.log(-math.expm1(x)) if x > -0.693 else math.log1p(-math.exp(x))


@torch.inference_mode()
def score_continuations(model, tokenizer, prompt: str, continuations: list[str], *,
                        numbers: bool = False, max_row_tokens: int = 128,
                        max_batch_tokens: int = 1024) -> dict:
    """Exact log P(continuation | prompt) for every continuation, from one cached prefix.

    numbers=True multiplies in P(next token does not start with a digit). Returns dict of numpy
    arrays ``logp_path``, ``logp`` (== logp_path when numbers=False), and ``n_boundary_merges``,
    ``n_positions`` (trie nodes scored) for the benchmark.
    """
    prompt_ids, m, seqs, tail = split_joint(tokenizer, prompt, continuations)
    trie = Trie.build(seqs + ([tail] if tail else []))
    cont_ids = digit_start_ids(tokenizer) if numbers else None
    device = next(model.parameters()).device
    child_of: dict[int, list[int]] = {}
    for k, p in enumerate(trie.parents):
        child_of.setdefault(p, []).append(k)
    ends = set(trie.ends)

    decoder = model.get_decoder()
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    out = decoder(input_ids=torch.tensor([prompt_ids[:m]], device=device), cache=cache, use_cache=True)
    cache = out.cache
    root_lp = torch.log_softmax(head_logits(model, out.last_hidden_state[0, -1:]), dim=-1)[0]
    root_targets = [trie.tokens[c] for c in child_of.get(-1, [])]
    stats: dict[int, tuple] = {-1: (root_lp[root_targets].cpu().numpy(),
                                    float(torch.logsumexp(root_lp[cont_ids], 0)) if numbers else NEG_INF)}
    # nodes whose own next-token distribution we need: internal nodes and continuation ends
    needed = [k for k in range(len(trie)) if k in child_of or k in ends]
    needed_set = set(needed)
    row_nodes = pack_subtrees(trie, max_row_tokens)
    batch: list[list[int]] = []

    def flush(batch):
        rows, queries, targets = [], [], []
        for nodes in batch:
            local = {k: i for i, k in enumerate(nodes)}
            rows.append(Row([trie.tokens[k] for k in nodes],
                            [local.get(trie.parents[k], -1) for k in nodes],
                            [trie.depths[k] - 1 for k in nodes]))
            qs = [k for k in nodes if k in needed_set]
            queries.append([local[k] for k in qs])
            targets.append([[trie.tokens[c] for c in child_of.get(k, [])] for k in qs])
        res = _queries_logstats(model, rows, queries, targets, cont_ids, cache, m)
        for nodes, r in zip(batch, res):
            qs = [k for k in nodes if k in needed_set]
            for k, st in zip(qs, r):
                stats[k] = st

    n_tok = 0
    for nodes in row_nodes:
        if batch and n_tok + len(nodes) > max_batch_tokens:
            flush(batch)
            batch, n_tok = [], 0
        batch.append(nodes)
        n_tok += len(nodes)
    if batch:
        flush(batch)

    edge = edge_logps(trie, stats, child_of)
    path_lp = np.zeros(len(trie))
    for k, p in enumerate(trie.parents):  # parents precede children
        path_lp[k] = edge[k] + (path_lp[p] if p >= 0 else 0.0)

    def node_path(k):
        return path_lp[k] if k >= 0 else 0.0

    def node_term(k):
        return _log1mexp(stats[k][1]) if numbers else 0.0

    n = len(continuations)
    denom = node_path(trie.ends[n]) if tail else 0.0
    logp_path = np.array([node_path(trie.ends[i]) - denom for i in range(n)])
    logp = np.array([node_path(trie.ends[i]) + node_term(trie.ends[i]) - denom for i in range(n)])
    return {"logp_path": logp_path, "logp": logp,
            "n_boundary_merges": int(sum(s[: len(tail)] != tail for s in seqs)) if tail else 0,
            "n_positions": len(needed) + 1, "prefix_len": m}


def score_numbers(model, tokenizer, prompt: str, numbers: tuple[str, ...] = ALL_NUMBERS,
                  sep: str = "", **kw) -> dict:
    """P(the answer is exactly the number) for all candidate numbers after ``prompt + sep``."""
    return score_continuations(model, tokenizer, prompt, [sep + s for s in numbers], numbers=True,
                               **kw)


@torch.inference_mode()
def score_prompts(model, tokenizer, prompts: list[str], continuations: list[str], *,
                  max_batch_tokens: int = 2048, progress=None) -> np.ndarray:
    """log P(continuation | prompt) for many different prompts (no shared cache): each row is one
    prompt followed by the trie of all continuations, so one forward per batch reads them all.
    Returns an array (n_prompts, n_continuations) of chain-rule log-probs (no terminator)."""
    out = np.zeros((len(prompts), len(continuations)))
    items = []
    for i, p in enumerate(prompts):
        prompt_ids, m, seqs, tail = split_joint(tokenizer, p, continuations)
        items.append((i, prompt_ids[:m], Trie.build(seqs + ([tail] if tail else [])), bool(tail)))
    items.sort(key=lambda it: len(it[1]) + len(it[2]))  # similar lengths together: less padding
    batch: list = []

    def flush(batch):
        rows, queries, targets, metas = [], [], [], []
        for i, ids, trie, has_tail in batch:
            P = len(ids)
            child_of: dict[int, list[int]] = {}
            for k, p in enumerate(trie.parents):
                child_of.setdefault(p, []).append(k)
            rows.append(Row(ids + trie.tokens,
                            list(range(-1, P - 1)) + [P + p if p >= 0 else P - 1 for p in trie.parents],
                            list(range(P)) + [P - 1 + d for d in trie.depths]))
            qnodes = [-1] + [k for k in range(len(trie)) if k in child_of]
            queries.append([P - 1 if k < 0 else P + k for k in qnodes])
            targets.append([[trie.tokens[c] for c in child_of.get(k, [])] for k in qnodes])
            metas.append((i, trie, child_of, qnodes, has_tail))
        res = _queries_logstats(model, rows, queries, targets, None)
        for (i, trie, child_of, qnodes, has_tail), r in zip(metas, res):
            stats = {k: st for k, st in zip(qnodes, r)}
            edge = edge_logps(trie, stats, child_of)
            path_lp = np.zeros(len(trie))
            for k, p in enumerate(trie.parents):
                path_lp[k] = edge[k] + (path_lp[p] if p >= 0 else 0.0)
            vals = np.array([path_lp[e] if e >= 0 else 0.0 for e in trie.ends])
            if has_tail:
                vals = vals[:-1] - vals[-1]
            out[i] = vals
        if progress is not None:
            progress.update(len(batch))

    n_tok = 0
    for it in items:
        L = len(it[1]) + len(it[2])
        if batch and (n_tok + L > max_batch_tokens):
            flush(batch)
            batch, n_tok = [], 0
        batch.append(it)
        n_tok += L
    if batch:
        flush(batch)
    return out


@torch.inference_mode()
def brute_force_logp(model, tokenizer, prompt: str, continuation: str, *, numbers: bool = False) -> float:
    """Reference implementation: one full forward of prompt+continuation, no cache, no trie."""
    prompt_ids = encode(tokenizer, prompt)
    joint = encode(tokenizer, prompt + continuation)
    device = next(model.parameters()).device

    def path(ids, start):
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0].float()
        lp = torch.log_softmax(logits, dim=-1)
        total = sum(float(lp[i - 1, ids[i]]) for i in range(start, len(ids)))
        return total, lp[-1]

    m = min(_lcp(prompt_ids, joint), len(prompt_ids))
    total, last = path(joint, m)
    if numbers:
        total += _log1mexp(float(torch.logsumexp(last[digit_start_ids(tokenizer)], 0)))
    if m < len(prompt_ids):
        total -= path(prompt_ids, m)[0]
    return total
