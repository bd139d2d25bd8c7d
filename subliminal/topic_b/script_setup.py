"""What every Topic B script shares: its common flags, input checks made before any work, model
loading on ``devices.get_device``, and the provenance JSON written into the run's OutputSet."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from subliminal.cli import UserError
from subliminal.devices import get_device
from subliminal.results import OutputSet, write_run_json
from subliminal.topic_b.models import DEFAULT_MODEL
from subliminal.topic_b.prompts import PAPER_ANIMALS, PLURAL
from subliminal.topic_b.scoring import encode
from subliminal.topic_b.tables import slug

MAX_SEED = 2**32 - 1  # numpy's seed range (torch's is wider)
MAX_DRAWS = 1_000_000  # permutation draws: p-values to +-0.001 at most, far beyond what a null needs
QUICK_OUT = "plots_b/quick"  # --quick never overwrites the committed full-size results
_ANIMAL_RE = re.compile(r"[A-Za-z][A-Za-z' -]*")


def check_numbers(numbers, flag: str = "--numbers") -> tuple[str, ...]:
    """Numbers exactly as a model would write them: 1-3 ASCII digits each ('087' and '87' are
    different answers and both allowed; '0087', '1000', '-1', '7.5' and 'abc' are refused)."""
    for n in numbers:
        if not (isinstance(n, str) and n.isascii() and n.isdigit() and 1 <= len(n) <= 3):
            raise UserError(f"{flag} {n!r} is not a number of 1-3 digits (0-999 as written, leading zeros "
                            f"kept: 7, 07 and 007 are three answers); give e.g. {flag} 087 747")
    if len(set(numbers)) != len(numbers):
        raise UserError(f"{flag} lists a number twice; give each once")
    return tuple(numbers)


def check_animals(animals, flag: str = "--animals") -> tuple[str, ...]:
    """Animal names (singular, letters/spaces/hyphens), at least one, none twice."""
    if not animals:
        raise UserError(f"{flag} is empty; give at least one animal, e.g. {flag} owl eagle")
    for a in animals:
        if not _ANIMAL_RE.fullmatch(a or "") or a != a.strip():
            raise UserError(f"{flag} {a!r} is not an animal name (letters, spaces or hyphens); "
                            f"e.g. {flag} {' '.join(PAPER_ANIMALS)}")
    if len(set(animals)) != len(animals):
        raise UserError(f"{flag} lists an animal twice; give each once")
    return tuple(animals)


def check_range(value: int, lo: int, hi: int | None, flag: str) -> None:
    if value < lo or (hi is not None and value > hi):
        where = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise UserError(f"{flag} must be {where} (got {value})")


def animal_notes(tokenizer, animals) -> list[str]:
    """Notes for the log: animals outside the 25-animal list (plural guessed) and animals the
    tokenizer splits into several tokens (their probability is the exact chain-rule product)."""
    notes = []
    guessed = [a for a in animals if a not in PLURAL]
    if guessed:
        notes.append(f"note: {', '.join(guessed)} not in the 25-animal list; plural taken as name + 's'")
    for a in animals:
        ids = encode(tokenizer, " " + a)
        if len(ids) > 1:
            pieces = tokenizer.convert_ids_to_tokens(ids)
            notes.append(f"note: ' {a}' is {len(ids)} tokens for this model ({' + '.join(map(repr, pieces))}); "
                         "P(animal) is the product over its tokens")
    return notes


@dataclass
class LMConfig:
    """The flags every single-model Topic B script shares."""

    model: str = field(default=DEFAULT_MODEL, metadata={"help": "asset name, HF id, dir or .gguf"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available), cpu or cuda"})
    out: str = field(default="plots_b", metadata={"help": "output directory"})

    def validate(self) -> None:
        if not self.model.strip():
            raise UserError("--model is empty; give an asset name, a .gguf file, a model folder or a HF id")
        get_device(self.device)


@dataclass
class AnimalSweepConfig(LMConfig):
    """Flags of the per-animal analyses (parts 2 and 3): which animals, how many top and random numbers."""

    animals: tuple[str, ...] = field(default=PAPER_ANIMALS, metadata={"help": "animals (singular)"})
    top_k: int = field(default=10, metadata={"help": "top entangled numbers per animal"})
    n_random: int = field(default=100, metadata={"help": "random numbers (drawn from the 1,110) for the reference"})
    seed: int = field(default=0, metadata={"help": "seed of the random-number draw"})

    def validate(self, n_numbers: int = 1110) -> None:
        super().validate()
        check_animals(self.animals)
        check_range(self.top_k, 1, n_numbers, "--top-k")
        check_range(self.n_random, 0, n_numbers, "--n-random")
        check_range(self.seed, 0, MAX_SEED, "--seed")


def load(cfg, animals=()):
    """(model, tokenizer, model_name) for cfg.model on devices.get_device(cfg.device), fp32; prints the
    tokenizer notes for `animals`."""
    from subliminal.topic_b.lm import load_model

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    model, tok = load_model(cfg.model, device=str(get_device(cfg.device)))
    for line in animal_notes(tok, animals):
        print(line)
    return model, tok, cfg.model


def write_provenance(outs: OutputSet, cfg, stem: str, model_name: str, t0: float, extra: dict | None = None):
    """`<stem>__<model>.json` in the run's output set: config, seed, versions, commit, wall time."""
    return write_run_json(outs.path(f"{stem}__{slug(model_name)}.json"), cfg, getattr(cfg, "seed", None),
                          time.time() - t0, extra)
