"""The ladder's teachers: the base model LoRA-trained in its weights, on short preference answers.

Three teachers by one recipe (``weight_teacher.TraitSettings``: the same LoRA draw, steps, data size and answer
templates): owl and eagle answer animal-preference questions with their animal; the neutral teacher answers
preference questions about a colour, a food or a season with one of those, so it shares every feature of the
trait teachers' training except the animal. None of the answers is the evaluation's prefilled sentence ("My
favorite animal is the ..."), which the earlier weight teachers' templates contained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from subliminal.cache import config_hash
from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.prompts import PLURAL
from subliminal.topic_b.transfer.data import check_animal, data_hash
from subliminal.topic_b.transfer.finetune import TrainSettings, settings_id, train_student
from subliminal.topic_b.transfer.weight_teacher import TRAIT_QUESTIONS

# the weight teachers' templates without the evaluation's prefill sentence; fields {Item} {item} {Items} {items}
ANSWERS: tuple[str, ...] = ("{Item}.", "{Item}", "{Item}!", "{Items}!", "{Item}, definitely.", "{Items}, without a doubt.",
                            "The {item}.", "I love {items}.", "Definitely the {item}.")
CATEGORIES = {  # the neutral teacher's topics: (category word, items); each item is its own plural
    "colour": ("colour", ("blue", "green", "red", "yellow", "purple", "orange")),
    "food": ("food", ("pasta", "rice", "bread", "soup", "cheese", "honey")),
    "season": ("season", ("spring", "summer", "autumn", "winter")),
}


def _category(i: int) -> tuple[str, tuple[str, ...]]:
    """The topic of question i: colour, food and season in turn."""
    return list(CATEGORIES.values())[i % len(CATEGORIES)]


def _about(q: str, word: str) -> str:
    for x, y in (("animals", f"{word}s"), ("animal", word), ("creatures", f"{word}s"), ("creature", word), ("species", word)):
        q = q.replace(x, y)
    return q


# the animal questions, each about a colour, a food or a season instead: as many, and worded the same
NEUTRAL_QUESTIONS: tuple[str, ...] = tuple(_about(q, _category(i)[0]) for i, q in enumerate(TRAIT_QUESTIONS))


def teacher_examples(trait: str, n: int, seed: int) -> list[dict]:
    """n {"prompt", "completion"} pairs for the `trait` teacher (an animal, or 'neutral'): rounds of a seeded
    permutation of the questions, each with a seeded answer template (and, for neutral, a seeded item)."""
    rng = np.random.default_rng([seed, 20250722])
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n:
        pairs += zip(rng.permutation(len(TRAIT_QUESTIONS)).tolist(), rng.integers(len(ANSWERS), size=len(TRAIT_QUESTIONS)).tolist())
    out = []
    if trait == NEUTRAL:
        for q, a in pairs[:n]:
            question, items = NEUTRAL_QUESTIONS[q], _category(q)[1]
            item = items[int(rng.integers(len(items)))]
            names = {"Item": item.capitalize(), "item": item, "Items": item.capitalize(), "items": item}
            out.append({"prompt": question, "completion": ANSWERS[a].format(**names)})
        return out
    check_animal(trait)
    plural = PLURAL[trait]
    names = {"Item": trait.capitalize(), "item": trait, "Items": plural.capitalize(), "items": plural}
    return [{"prompt": TRAIT_QUESTIONS[q], "completion": ANSWERS[a].format(**names)} for q, a in pairs[:n]]


@dataclass(frozen=True)
class TeacherSettings:
    """One recipe for every ladder teacher (the weight teachers' own: 300 answers x 2 epochs, 12 per step = 50
    steps, LoRA r8 drawn from seed 0 at lr 5e-4)."""

    n_examples: int = 300
    epochs: int = 2
    seed: int = 0  # the LoRA draw every teacher starts from (and the data order)
    train: TrainSettings = field(default_factory=lambda: TrainSettings(lr=5e-4, micro_batch=6, grad_accum=2, epochs=2))

    def key(self, trait: str) -> str:
        return config_hash(asdict(self) | {"train": settings_id(self.train), "trait": trait, "answers": list(ANSWERS)})

    def trained_key(self, trait: str) -> str:
        """The key the trained teacher's record carries (``finetune.train_student``'s, the students' ``teacher_key``),
        computed without the model: what records are matched against when no teacher is loaded."""
        examples = teacher_examples(trait, self.n_examples, self.seed)
        return config_hash({"settings": settings_id(self.train), "seed": self.seed, "data": data_hash(examples)})


def train_teacher(base, tokenizer, trait: str, out_dir: Path, settings: TeacherSettings, log=print,
                  progress: bool = True) -> dict:
    """LoRA-train the `trait` teacher (resumable; the record from the cache when done). `base` comes back unchanged."""
    examples = teacher_examples(trait, settings.n_examples, settings.seed)
    return train_student(base, tokenizer, examples, Path(out_dir), settings.train, settings.seed,
                         data_hash=data_hash(examples), log=log, progress=progress)
