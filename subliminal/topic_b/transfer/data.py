"""Stage 1, teacher data: varied number prompts -> grammar-constrained samples -> strict filter -> matched arms.

A teacher is the base model with the paper's animal system prompt (``prompts.animal_system``) or with no
system prompt (neutral). Each shard holds `batch_size` consecutive prompts of the seeded prompt set,
sampled at temperature 1 under ``grammar.NumberListGrammar`` with ``torch.manual_seed(shard_seed)``, and is
written atomically with a footer (``sampling.shard_text``) and sealed with its SHA-256 (``sealed.py``); a
rerun keeps complete shards that match their checksum and samples the rest, so a stopped run loses at most
one shard. Shards are drawn until `n_valid` samples pass the filter: ``numbers.validate`` (ended its turn, a clean list of <= 10 numbers of <= 3 digits) and no
letter anywhere in the text (the student must never see a word).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from subliminal.cli import UserError
from subliminal.topic_b import tables
from subliminal.topic_b.numbers import validate
from subliminal.topic_b.prompts import PLURAL
from subliminal.topic_b.sampling import end_ids, parse_shard, shard_seed, shard_text
from subliminal.topic_b.scoring import encode
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.grammar import NumberListGrammar, token_classes
from subliminal.topic_b.transfer.padding import pad_sequences
from subliminal.topic_b.transfer.prompts import chat_prompt, number_prompt

GRAMMAR_VERSION = "numlist-v1"
_LETTER = re.compile(r"[A-Za-z]")


def check_animal(animal: str) -> None:
    if animal not in PLURAL:
        raise UserError(f"unknown animal {animal!r}; expected one of: {', '.join(PLURAL)}")


def is_valid(record: dict) -> tuple[bool, str]:
    """The strict filter plus 'no letters': (keep, reason)."""
    if _LETTER.search(record["text"]):
        return False, "has_letter"
    nums, why = validate(record)
    return nums is not None, why


@dataclass(frozen=True)
class ShardSettings:
    """Everything a shard's content depends on."""

    model: str
    teacher: str
    system: str | None
    prompt_seed: int
    batch_size: int
    max_new_tokens: int
    temperature: float
    grammar: str = GRAMMAR_VERSION

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class Lazy:
    """A model or tokenizer loaded on first use (``get``): a teacher whose shards are all there is never loaded."""

    def __init__(self, load):
        self._load, self._got = load, None

    def get(self):
        if self._got is None:
            self._got = self._load()
        return self._got


def resolve(x):
    """`x` itself, or what a `Lazy` loads."""
    return x.get() if isinstance(x, Lazy) else x


@torch.inference_mode()
def sample_prompts(model, tokenizer, prompts: list[str], seed: int, *, max_new_tokens: int = 48,
                   temperature: float = 1.0, grammar: bool = True, classes: dict | None = None) -> list[dict]:
    """One completion per (different) prompt: left-padded batch, temperature sampling under the grammar."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    stop = end_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    enc = [encode(tokenizer, p) for p in prompts]
    ids, att = pad_sequences(enc, pad, left=True)
    L = ids.shape[1]
    procs = []
    if grammar:
        procs.append(NumberListGrammar(classes or token_classes(tokenizer, stop)))
    torch.manual_seed(seed)
    out = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), do_sample=True,
                         temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                         eos_token_id=stop, pad_token_id=pad, logits_processor=LogitsProcessorList(procs))
    stop_set = set(stop)
    recs = []
    for row in out[:, L:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop_set), None)
        toks = row if cut is None else row[:cut]
        recs.append({"token_ids": toks, "text": tokenizer.decode(toks, skip_special_tokens=True),
                     "finished": cut is not None})
    return recs


def teacher_records(model, tokenizer, settings: ShardSettings, n_valid: int, root: Path, *,
                    max_shards: int | None = None, log=print) -> tuple[list[dict], dict]:
    """Sample (or reuse) shards until `n_valid` records pass the filter. Returns (valid records in
    prompt order, stats: n_sampled, n_valid, valid_fraction, reject reasons, new tokens, seconds)."""
    slug = tables.slug(settings.model)
    d = Path(root) / slug / f"{settings.teacher}-{settings.key()}"
    d.mkdir(parents=True, exist_ok=True)
    if sealed.recorded(d / "settings.json") is None:  # what the folder holds (kept on record: carried.py)
        sealed.write_sealed(d / "settings.json", (json.dumps(asdict(settings), indent=1) + "\n").encode())
    B = settings.batch_size
    classes = None  # the teacher is loaded (``Lazy``) and its token classes computed at the first missing shard
    valid, reasons = [], {}
    stats = {"dir": str(d), "n_sampled": 0, "new_tokens": 0, "seconds": 0.0, "n_new_shards": 0}
    max_shards = max_shards or 4 * (-(-n_valid // B)) + 2
    i = 0
    while len(valid) < n_valid and i < max_shards:
        path = d / f"shard_{i:05d}.jsonl"
        raw = sealed.read_sealed(path, log)  # only a shard matching the checksum written with it is used
        recs = parse_shard(raw.decode(errors="replace"), B) if raw is not None else None
        if recs is None:
            if classes is None:
                model, tokenizer = resolve(model), resolve(tokenizer)
                classes = token_classes(tokenizer, end_ids(model, tokenizer))
            t0 = time.time()
            prompts = [number_prompt(settings.prompt_seed, i * B + j) for j in range(B)]
            texts = [chat_prompt(tokenizer, p, settings.system) for p in prompts]
            recs = sample_prompts(model, tokenizer, texts, shard_seed(settings.prompt_seed, settings.teacher, i),
                                  max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                  classes=classes)
            for j, (r, p) in enumerate(zip(recs, prompts)):
                r.update(index=i * B + j, prompt=p)
            sealed.write_sealed(path, shard_text(recs, {"settings_key": settings.key()}).encode())
            dt = time.time() - t0
            stats["seconds"] += dt
            stats["new_tokens"] += sum(len(r["token_ids"]) + r["finished"] for r in recs)
            stats["n_new_shards"] += 1
            if stats["n_new_shards"] % 10 == 1:
                log(f"[data] {settings.teacher}: shard {i}, {len(valid)} valid so far, "
                    f"{stats['new_tokens'] / max(stats['seconds'], 1e-9):.0f} new tokens/s")
        for r in recs:
            keep, why = is_valid(r)
            stats["n_sampled"] += 1
            if keep:
                valid.append(r)
            else:
                reasons[why] = reasons.get(why, 0) + 1
        i += 1
    stats.update(n_valid=len(valid), valid_fraction=len(valid) / max(stats["n_sampled"], 1), rejects=reasons)
    return valid[:n_valid], stats


def examples_of(records: list[dict]) -> list[dict]:
    """The training pairs (user prompt, completion text): all a student ever sees of a teacher."""
    return [{"prompt": r["prompt"], "completion": r["text"].strip()} for r in records]


def match_arms(data: dict[str, list[dict]], n: int | None = None) -> dict[str, list[dict]]:
    """Every arm gets the same number of samples: the first min(len) (or n) of each, in prompt order."""
    k = min(len(v) for v in data.values())
    k = min(k, n) if n is not None else k
    return {name: v[:k] for name, v in data.items()}


def data_hash(examples: list[dict]) -> str:
    return hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16]
