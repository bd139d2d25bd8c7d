"""The data route to entangled numbers (Zur et al. 2025's third finder) and the threshold defence.

1. Sampling: number-sequence completions of the seed's sequence task (``prompts.QUESTIONS["sequence"]``,
   assistant prefill ``495;701;688;``) from an animal-loving teacher (``animal_system``) and from a
   neutral teacher (no system prompt by default, the logit-score's baseline), at temperature 1 from the
   full distribution (no top-k / top-p), batched (one batch = ``batch_size`` copies of the same prompt,
   so no padding) and resumable: every batch is one JSONL shard, written atomically, whose last line
   is a footer; a rerun keeps every shard with a valid footer and redoes the rest. Shard ``i`` is
   sampled under ``torch.manual_seed(f(seed, teacher, i))``, so a shard's content does not depend
   on which other shards already exist. ``constrain=True`` (off by default, not Cloud et al.'s
   setting) renormalises sampling over digit/';'/','/space tokens and end-of-turn, for small models
   whose unconstrained temperature-1 samples are almost never valid lists.
2. Filter (Cloud et al.'s rule, made strict about digits): the completion, stripped, may end with
   '.', may be wrapped in [] or (); the text between its first two numbers, stripped, must be '', ','
   or ';' and every other separator must be the same string; only digits between separators; at
   most one trailing separator; 1-10 numbers of 1-3 digits; and the teacher must have ended its turn
   (a completion cut off at ``max_new_tokens`` is rejected).
3. Data-score(t, animal) = f(t | animal teacher) / f(t | neutral teacher), f = number frequency with
   add-alpha smoothing over the 1,110 strings '0'-'999' (leading zeros are kept: '087' != '87').
4. Threshold defence (owls README, "threshold sampling"): drop every sample containing a number token
   (a token with a digit in it) whose probability under the neutral model, in that sample's own
   context (neutral prompt + the earlier completion tokens), is below a threshold. Implemented as a
   refilter: per-token neutral log-probs come from one batched forward per shard and are cached
   beside the shard (``*.neutral.json``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps
from tqdm.auto import tqdm

from .prompts import animal_system, build_prompt
from .results import atomic_write_text
from .scoring import ALL_NUMBERS, _logits, encode

NUMBER_INDEX = {n: i for i, n in enumerate(ALL_NUMBERS)}
MAX_COUNT = 10
MAX_DIGITS = 3
_END_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>")


# ----------------------------------------------------------------------------- filter, counting


def parse_numbers(text: str, max_count: int = MAX_COUNT, max_digits: int = MAX_DIGITS) -> tuple[list[str] | None, str]:
    """(numbers as written, '') for a valid completion, else (None, reason)."""
    s = text.strip()
    if s.endswith("."):
        s = s[:-1].rstrip()
    if len(s) >= 2 and ((s[0], s[-1]) in (("[", "]"), ("(", ")"))):
        s = s[1:-1].strip()
    runs = list(re.finditer(r"\d+", s))
    if not runs:
        return None, "no_numbers"
    if len(runs) == 1:
        parts, sep = [s], None
    else:
        sep = s[runs[0].end(): runs[1].start()]
        if sep.strip() not in ("", ",", ";"):
            return None, "bad_separator"
        parts = s.split(sep)
        if parts and parts[-1] == "":  # one trailing separator is fine ('1;2;3;')
            parts = parts[:-1]
    if not all(p and p.isascii() and p.isdigit() for p in parts):
        return None, "not_a_clean_list"
    if len(parts) > max_count:
        return None, "too_many_numbers"
    if any(len(p) > max_digits for p in parts):
        return None, "too_many_digits"
    return parts, ""


def validate(record: dict, max_count: int = MAX_COUNT, max_digits: int = MAX_DIGITS) -> tuple[list[str] | None, str]:
    """Filter one sampled record: it must have ended its turn and parse as a clean list."""
    if not record.get("finished", True):
        return None, "no_end_of_turn"
    return parse_numbers(record["text"], max_count, max_digits)


def count_numbers(lists) -> np.ndarray:
    """Occurrences of each of the 1,110 strings (ALL_NUMBERS order) over lists of number strings."""
    c = np.zeros(len(ALL_NUMBERS), dtype=np.int64)
    for nums in lists:
        for n in nums:
            c[NUMBER_INDEX[n]] += 1
    return c


def smoothed_freq(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Add-alpha smoothed frequency over all 1,110 strings (sums to 1; alpha=0 is the raw frequency)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum() + alpha * len(counts)
    if total <= 0:
        return np.full(len(counts), 1.0 / len(counts))
    return (counts + alpha) / total


def data_scores(counts_animal: np.ndarray, counts_neutral: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """log data-score(t) = log f(t | animal teacher) - log f(t | neutral teacher), smoothed."""
    return np.log(smoothed_freq(counts_animal, alpha)) - np.log(smoothed_freq(counts_neutral, alpha))


def js_divergence(counts_a: np.ndarray, counts_b: np.ndarray, alpha: float = 1.0) -> float:
    """Jensen-Shannon divergence (nats) of the two smoothed number distributions: how far apart they are."""
    p, q = smoothed_freq(counts_a, alpha), smoothed_freq(counts_b, alpha)
    m = 0.5 * (p + q)
    return float(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum())


def js_permutation_null(lists_a, lists_b, alpha: float = 1.0, draws: int = 1000, seed: int = 0) -> dict:
    """Is JS(a, b) bigger than chance? Sparse counts make any two samples diverge, so the observed JS is
    compared with the JS of random splits of the pooled samples into groups of the same sizes (labels
    permuted, each sample's numbers kept together). p = (1 + #null >= observed) / (1 + draws)."""
    lists = [list(x) for x in lists_a] + [list(x) for x in lists_b]
    n_a = len(lists_a)
    if n_a == 0 or n_a == len(lists):
        return {"js_null_mean": float("nan"), "js_null_p95": float("nan"), "js_p_value": float("nan")}
    idx = np.array([NUMBER_INDEX[n] for x in lists for n in x], dtype=np.int64)
    sid = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    total = np.bincount(idx, minlength=len(ALL_NUMBERS))

    def js_split(in_a: np.ndarray) -> float:  # JS of the samples marked in_a vs the rest
        ca = np.bincount(idx[in_a[sid]], minlength=len(ALL_NUMBERS))
        return js_divergence(ca, total - ca, alpha)

    obs = js_split(np.arange(len(lists)) < n_a)
    rng = np.random.default_rng(seed)
    null = np.empty(draws)
    for d in range(draws):
        in_a = np.zeros(len(lists), dtype=bool)
        in_a[rng.choice(len(lists), n_a, replace=False)] = True
        null[d] = js_split(in_a)
    return {"js_null_mean": float(null.mean()), "js_null_p95": float(np.quantile(null, 0.95)),
            "js_p_value": float((1 + (null >= obs).sum()) / (1 + draws))}


def top_k(score: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices of the k highest scores, ties broken at random (fixed seed), not by list order: with
    sparse data most data-scores tie, and list order ('0'..'9' first) would pass for a ranking."""
    perm = np.random.default_rng(seed).permutation(len(score))
    return perm[np.argsort(-np.asarray(score, float)[perm], kind="stable")][:k]


def compare_rankings(a: np.ndarray, b: np.ndarray, k: int = 10, seed: int = 0) -> dict:
    """Spearman rho of two scores over the same numbers and the overlap of their top-k sets."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.ptp(a) > 0 and np.ptp(b) > 0):
        return {"spearman": float("nan"), "spearman_p": float("nan"),
                "top_k_overlap": len(set(top_k(a, k, seed)) & set(top_k(b, k, seed)))}
    r = sps.spearmanr(a, b)
    ta = set(top_k(a, k, seed))
    tb = set(top_k(b, k, seed))
    return {"spearman": float(r.statistic), "spearman_p": float(r.pvalue), "top_k_overlap": len(ta & tb)}


# ----------------------------------------------------------------------------- sampling, shards


@dataclass(frozen=True)
class Teacher:
    name: str  # 'neutral' or the animal
    system: str | None


def animal_teacher(animal: str) -> Teacher:
    return Teacher(animal, animal_system(animal))


def teacher_prompt(tokenizer, teacher: Teacher) -> str:
    return build_prompt(tokenizer, "sequence", teacher.system)


def end_ids(model, tokenizer) -> list[int]:
    """Token ids that end the assistant turn (eos of the tokenizer and generation config, chat ends)."""
    ids = set()
    g = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([g] if isinstance(g, int) else (g or []))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _END_TOKENS if t in vocab)
    return sorted(ids)


@dataclass(frozen=True)
class GenSettings:
    """Everything a shard's content depends on (n_samples is not: more samples = more shards)."""

    model: str
    system: str | None
    prompt: str
    batch_size: int
    max_new_tokens: int
    temperature: float
    seed: int
    constrain: bool = False
    # how a batch is computed: the shared prompt is encoded once and its KV cache copied to every row
    sampler: str = "prefix-cache"

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def shard_seed(seed: int, teacher: str, shard: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{teacher}/{shard}".encode()).digest()[:4], "little")


def teacher_dir(root: Path, teacher: Teacher, settings: GenSettings) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", settings.model)
    return Path(root) / slug / f"{teacher.name}-{settings.key()}"


def write_shard(path: Path, records: list[dict], meta: dict) -> None:
    lines = [json.dumps(r) for r in records] + [json.dumps({"_footer": True, "n": len(records), **meta})]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_shard(path: Path, expected_n: int | None = None) -> list[dict] | None:
    """The records of a complete shard, or None if missing, truncated or corrupt."""
    try:
        lines = Path(path).read_text().splitlines()
        rows = [json.loads(x) for x in lines]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not rows or not rows[-1].get("_footer") or rows[-1].get("n") != len(rows) - 1:
        return None
    if expected_n is not None and len(rows) - 1 != expected_n:
        return None
    return rows[:-1]


@torch.inference_mode()
def list_token_mask(tokenizer, stop_ids: list[int]) -> torch.Tensor:
    """Vocabulary mask of tokens made only of digits, ';', ',' or spaces, plus the end-of-turn ids."""
    ok = torch.zeros(len(tokenizer), dtype=torch.bool)
    for i in range(len(tokenizer)):
        t = tokenizer.decode([i])
        ok[i] = bool(t) and all(c.isdigit() or c in ";, " for c in t) and t.isascii()
    ok[list(stop_ids)] = True
    return ok


class _AllowOnly:
    """Logits processor: -inf outside an allowed-token mask (renormalised by the sampler)."""

    def __init__(self, allowed: torch.Tensor):
        self.allowed = allowed

    def __call__(self, input_ids, scores):
        a = self.allowed.to(scores.device)
        return scores.masked_fill(~a[: scores.shape[-1]], float("-inf"))


@torch.inference_mode()
def prompt_cache(model, prefix_ids: list[int], n: int):
    """The KV cache of `prefix_ids`, computed once and copied to `n` rows. The prompt (~110 tokens with the
    system prompt) is longer than most completions, so encoding it once per batch instead of once per row
    saves more than half of the forward passes of sampling and of the defence's scoring."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache(config=model.config)
    model.get_decoder()(input_ids=torch.tensor([prefix_ids], device=device), cache=cache, use_cache=True)
    cache.batch_repeat_interleave(n)
    return cache


@torch.inference_mode()
def sample_batch(model, tokenizer, prompt: str, n: int, seed: int, *, max_new_tokens: int = 48,
                 temperature: float = 1.0, stop_ids: list[int] | None = None,
                 allowed: torch.Tensor | None = None) -> list[dict]:
    """n completions of one prompt, sampled from the full distribution at `temperature` (or, with
    ``allowed``, from the distribution renormalised over the allowed tokens)."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    ids = torch.tensor([encode(tokenizer, prompt)] * n, device=device)
    stop = stop_ids if stop_ids is not None else end_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    # every row shares the prompt: generate() only runs its last token per row (see prompt_cache)
    cache = prompt_cache(model, ids[0, :-1].tolist(), n)
    torch.manual_seed(seed)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), cache=cache, do_sample=True,
                         temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                         eos_token_id=stop, pad_token_id=pad,
                         logits_processor=LogitsProcessorList([_AllowOnly(allowed)] if allowed is not None else []))
    recs = []
    stop_set = set(stop)
    for row in out[:, ids.shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop_set), None)
        toks = row if cut is None else row[:cut]
        recs.append({"token_ids": toks, "text": tokenizer.decode(toks, skip_special_tokens=True),
                     "finished": cut is not None})
    return recs


def generate_shards(model, tokenizer, model_name: str, teacher: Teacher, n_samples: int, root: Path, *,
                    batch_size: int = 32, max_new_tokens: int = 48, temperature: float = 1.0, seed: int = 0,
                    constrain: bool = False, progress: bool = True) -> tuple[list[dict], dict]:
    """Sample (or reuse) ceil(n_samples / batch_size) shards; return the first n_samples records and
    stats {'n_new_shards', 'n_reused_shards', 'new_tokens', 'seconds'}."""
    import time

    prompt = teacher_prompt(tokenizer, teacher)
    settings = GenSettings(model_name, teacher.system, prompt, batch_size, max_new_tokens, temperature, seed,
                           constrain)
    d = teacher_dir(root, teacher, settings)
    d.mkdir(parents=True, exist_ok=True)
    meta_path = d / "settings.json"
    if not meta_path.exists():
        atomic_write_text(meta_path, json.dumps(asdict(settings), indent=1) + "\n")
    n_shards = -(-n_samples // batch_size)
    stop = end_ids(model, tokenizer)
    allowed = list_token_mask(tokenizer, stop) if constrain else None
    records = []
    stats = {"n_new_shards": 0, "n_reused_shards": 0, "new_tokens": 0, "seconds": 0.0, "dir": str(d)}
    for i in tqdm(range(n_shards), desc=f"sampling {teacher.name}", disable=not progress):
        path = d / f"shard_{i:05d}.jsonl"
        recs = read_shard(path, batch_size)
        if recs is None:
            t0 = time.time()
            recs = sample_batch(model, tokenizer, prompt, batch_size, shard_seed(seed, teacher.name, i),
                                max_new_tokens=max_new_tokens, temperature=temperature, stop_ids=stop,
                                allowed=allowed)
            stats["seconds"] += time.time() - t0
            stats["new_tokens"] += sum(len(r["token_ids"]) + r["finished"] for r in recs)
            for j, r in enumerate(recs):
                r.update(teacher=teacher.name, shard=i, index=i * batch_size + j)
            write_shard(path, recs, {"settings_key": settings.key()})
            stats["n_new_shards"] += 1
        else:
            stats["n_reused_shards"] += 1
        records.extend(recs)
    return records[:n_samples], stats


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
            h = hidden[b, : len(c)]
            lp = torch.log_softmax(_logits(model, h), dim=-1)
            out[i] = lp[torch.arange(len(c)), torch.tensor(c, device=lp.device)].cpu().numpy().astype(np.float64)
    return out


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
            except (OSError, json.JSONDecodeError, KeyError):
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
