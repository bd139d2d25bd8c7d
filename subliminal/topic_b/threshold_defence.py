"""The threshold defence (owls README, "threshold sampling"): drop every sample holding a number token
whose probability under the neutral model, in its own context, is below a threshold. Per-token neutral
log-probs come from one batched forward per shard and are cached beside the shard (``*.neutral.json``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from subliminal.results import atomic_write_text
from subliminal.topic_b.numbers import validate
from subliminal.topic_b.sampling import prompt_cache
from subliminal.topic_b.scoring import encode, head_logits

# ----------------------------------------------------------------------------- threshold defence


def number_token_mask(tokenizer, token_ids: list[int]) -> np.ndarray:
    """True for tokens whose text contains a digit (the 'number tokens' the defence looks at)."""
    toks = tokenizer.convert_ids_to_tokens(list(token_ids))
    return np.array([any(c.isdigit() for c in (t or "")) for t in toks], dtype=bool)


@torch.inference_mode()
def token_logprobs(model, tokenizer, prompt: str, completions: list[list[int]], *, batch_size: int = 32) -> list[np.ndarray]:
    """log p(token_i | prompt, tokens_<i) for every token of every completion: one right-padded
    forward per batch of completions over the prompt's cached keys and values (`prompt_cache`), the
    output head only at the positions that are needed."""
    device = next(model.parameters()).device
    p_ids = encode(tokenizer, prompt)
    P = len(p_ids) - 1  # cached prefix; the last prompt token leads every row (it predicts token 0)
    out: list[np.ndarray] = [np.zeros(0)] * len(completions)
    for s in range(0, len(completions), batch_size):
        chunk = list(enumerate(completions[s: s + batch_size], start=s))
        chunk_nz = [(i, c) for i, c in chunk if len(c)]
        if not chunk_nz:
            continue
        L = 1 + max(len(c) for _, c in chunk_nz)
        ids = torch.zeros(len(chunk_nz), L, dtype=torch.long)
        att = torch.zeros(len(chunk_nz), P + L, dtype=torch.long)
        for b, (_, c) in enumerate(chunk_nz):
            ids[b, : 1 + len(c)] = torch.tensor(p_ids[-1:] + list(c))
            att[b, : P + 1 + len(c)] = 1
        cache = prompt_cache(model, p_ids[:-1], len(chunk_nz))
        hidden = model.get_decoder()(input_ids=ids.to(device), attention_mask=att.to(device), cache=cache,
                                     use_cache=True).last_hidden_state
        for b, (i, c) in enumerate(chunk_nz):
            out[i] = gather_logprobs(model, hidden[b, : len(c)], c)
    return out


def gather_logprobs(model, hidden: torch.Tensor, token_ids: list[int]) -> np.ndarray:
    """log p(token_ids[i] | row i of `hidden`): the output head on just these rows, then one gather."""
    lp = torch.log_softmax(head_logits(model, hidden), dim=-1)
    return lp[torch.arange(len(token_ids)), torch.tensor(token_ids, device=lp.device)].cpu().numpy().astype(np.float64)


def min_number_token_logp(tokenizer, token_ids: list[int], logps: np.ndarray) -> float:
    """Smallest neutral log-prob among the sample's number tokens (+inf when it has none)."""
    m = number_token_mask(tokenizer, token_ids)
    return float(logps[m].min()) if m.any() else float("inf")


def neutral_min_logps(model, tokenizer, records: list[dict], neutral_prompt: str, *, batch_size: int = 32,
                      cache_dir: Path | None = None, progress: bool = False) -> np.ndarray:
    """Per record: min over its number tokens of log p_neutral(token | neutral prompt, context).
    Computed per shard (one batched forward) and cached as ``shard_XXXXX.neutral.json`` next to
    the shard when ``cache_dir`` is given (key: hash of the neutral prompt)."""
    key = hashlib.sha256(neutral_prompt.encode()).hexdigest()[:12]
    out = np.full(len(records), np.nan)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.get("teacher"), r.get("shard")), []).append(i)
    for (_teacher, shard), idx in tqdm(groups.items(), desc="neutral log-probs", disable=not progress):
        path = None
        if cache_dir is not None and shard is not None:
            path = Path(cache_dir) / f"shard_{shard:05d}.neutral.json"
            try:
                doc = json.loads(path.read_text())
                got = {int(k): v for k, v in doc["min_logp"].items()} if doc.get("key") == key else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
                got = {}
            if all(records[i]["index"] in got for i in idx):
                out[idx] = [got[records[i]["index"]] for i in idx]
                continue
        lps = token_logprobs(model, tokenizer, neutral_prompt, [records[i]["token_ids"] for i in idx],
                             batch_size=max(1, len(idx)))
        vals = [min_number_token_logp(tokenizer, records[i]["token_ids"], lp) for i, lp in zip(idx, lps)]
        out[idx] = vals
        if path is not None:
            atomic_write_text(path, json.dumps({"key": key, "min_logp": {str(records[i]["index"]): v
                                                                         for i, v in zip(idx, vals)}}))
    return out


def threshold_keep(min_logps: np.ndarray, threshold: float) -> np.ndarray:
    """Keep mask of the defence: every number token has neutral probability >= threshold."""
    if threshold <= 0:
        return np.ones(len(min_logps), dtype=bool)
    return np.asarray(min_logps) >= np.log(threshold)


def records_table(records: list[dict]) -> pd.DataFrame:
    """One row per record with the filter's verdict and parsed numbers."""
    rows = []
    for r in records:
        nums, why = validate(r)
        rows.append({"teacher": r.get("teacher"), "index": r.get("index"), "valid": nums is not None,
                     "reject_reason": why, "numbers": nums or [], "n_tokens": len(r["token_ids"])})
    return pd.DataFrame(rows)
