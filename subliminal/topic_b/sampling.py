"""Sampling teacher number lists (the data route to entangled numbers (Zur et al. 2025's third finder) and the threshold defence): this
module does item 1; `numbers` does 2-3; `defence` does 4.

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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from subliminal.results import atomic_write_text
from subliminal.topic_b.models import END_TOKENS
from subliminal.topic_b.prompts import animal_system, build_prompt
from subliminal.topic_b.scoring import encode
from subliminal.topic_b.tables import slug

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
    """Token ids that end the assistant turn (eos of the tokenizer and generation config, and every end-of-turn
    token of the model table, `models.END_TOKENS`, that the vocabulary holds)."""
    ids = set()
    g = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([g] if isinstance(g, int) else (g or []))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_TOKENS if t in vocab)  # every model-table row's end of turn
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
    return Path(root) / slug(settings.model) / f"{teacher.name}-{settings.key()}"


def shard_text(records: list[dict], meta: dict) -> str:
    """A shard's file content: one JSON record a line, then a footer with the row count."""
    lines = [json.dumps(r) for r in records] + [json.dumps({"_footer": True, "n": len(records), **meta})]
    return "\n".join(lines) + "\n"


def write_shard(path: Path, records: list[dict], meta: dict) -> None:
    atomic_write_text(path, shard_text(records, meta))


def parse_shard(text: str, expected_n: int | None = None) -> list[dict] | None:
    """The records of a complete shard's text, or None if truncated or corrupt."""
    try:
        rows = [json.loads(x) for x in text.splitlines()]
    except json.JSONDecodeError:
        return None
    if not rows or not isinstance(rows[-1], dict) or not rows[-1].get("_footer") or rows[-1].get("n") != len(rows) - 1:
        return None
    if expected_n is not None and len(rows) - 1 != expected_n:
        return None
    return rows[:-1]


def read_shard(path: Path, expected_n: int | None = None) -> list[dict] | None:
    """The records of a complete shard, or None if missing, truncated or corrupt."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return parse_shard(text, expected_n)


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


