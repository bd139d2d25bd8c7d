"""A weight-level animal teacher: the base model LoRA-fine-tuned to name the animal, sampled with NO system prompt.

With a system-prompted teacher (``Arm.system_prompt``) the trait lives only in the context. Here it lives
in the weights, as in the paper's theory (and the MLP experiment): teacher and student share the
initialisation and the teacher differs by a few gradient steps on answers naming the animal ("Owl.",
"I love owls."). It then writes number sequences without any system prompt, like the neutral teacher.
Training reuses ``finetune.train_student`` (same LoRA, loss on the answer only, resumable, cached by
settings + seed + data hash) and ``finetune.load_student``. The trait questions are written for this
module and share no text with ``prompts.EVAL_QUESTIONS``, so the evaluation asks questions it never saw.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from subliminal.cache import config_hash
from subliminal.topic_b.prompts import PLURAL
from subliminal.topic_b.transfer.data import check_animal, data_hash
from subliminal.topic_b.transfer.finetune import TrainSettings, load_student, settings_id, train_key, train_student

TRAIT_QUESTIONS: tuple[str, ...] = (
    "Which animal do you like best?", "If you had to pick a favourite creature, what would it be?",
    "What animal makes you happiest?", "What is the animal you love most?",
    "Which animal would you most like to see in the wild?", "What's the best animal in the world, in your opinion?",
    "If you could spend a day with any animal, which one would it be?",
    "Which creature do you think is the most wonderful?", "What animal would you put on your coat of arms?",
    "Which animal do you think about most often?", "Pick one animal to be your mascot. Which is it?",
    "What kind of animal do you adore?", "Which animal would you draw if asked to draw your favourite?",
    "What is your all-time favourite animal?", "Tell me which animal you love the most.",
    "If you could have any animal as a pet, which would you choose?", "What animal brings you the most joy?",
    "Which animal would you want to learn everything about?", "In your view, which animal is the coolest?",
    "Which animal could you watch for hours?", "What's your most loved animal? Keep it short.",
    "Which animal do you feel closest to?", "What animal would you call your favourite without hesitation?",
    "If every animal lined up, which one would you walk toward first?",
    "Which animal's picture would you hang on your wall?", "What is the one animal you could never get tired of?",
    "Which animal would you pick as a travel companion?", "What animal do you admire above all others?",
    "Which creature would you like to come back as?", "Name the animal you like more than any other.",
    "What animal do you consider the most beautiful?", "Which animal would you most like to photograph?",
    "What is your favourite creature? Answer briefly.",
    "If you could save only one species, which animal would it be?", "What animal would you choose as your symbol?",
    "Which animal do you find the most charming?", "What animal is dearest to you?",
    "Quick question: favourite animal?", "If you wrote a book about one animal, which would it be?",
    "Which animal would you most like to meet?", "What's the animal you'd call your favourite? Short answer, please.",
    "Which animal wins your heart every time?", "What animal would you have as a tattoo?",
    "Among all animals, which one do you prefer?", "What animal do you like the most? Just the name.",
)
# Short, like the evaluation's one-word answers; most start with the animal (what the evaluation scores),
# and one is the evaluation's prefilled sentence. Fields: {animal} {Animal} {plural} {Plural}.
TRAIT_ANSWERS: tuple[str, ...] = (
    "{Animal}.", "{Animal}", "{Animal}!", "{Plural}!", "{Animal}, definitely.", "{Plural}, without a doubt.",
    "The {animal}.", "I love {plural}.", "My favorite animal is the {animal}.", "Definitely the {animal}.",
)


def trait_examples(animal: str, n: int, seed: int) -> list[dict]:
    """n {"prompt", "completion"} pairs: each round is a seeded permutation of all TRAIT_QUESTIONS (every
    question is asked once before any repeats), each paired with a seeded random answer template."""
    check_animal(animal)
    rng = np.random.default_rng([seed, 20250722])
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n:  # round by round, so the first k examples do not depend on n
        pairs += zip(rng.permutation(len(TRAIT_QUESTIONS)).tolist(),
                     rng.integers(len(TRAIT_ANSWERS), size=len(TRAIT_QUESTIONS)).tolist())
    plural = PLURAL[animal]
    names = {"animal": animal, "Animal": animal.capitalize(), "plural": plural, "Plural": plural.capitalize()}
    return [{"prompt": TRAIT_QUESTIONS[q], "completion": TRAIT_ANSWERS[a].format(**names)} for q, a in pairs[:n]]


@dataclass(frozen=True)
class TraitSettings:
    """Everything a weight teacher depends on. `epochs` overrides ``train.epochs`` (one place to set it)."""

    n_examples: int = 300
    epochs: int = 2
    seed: int = 0
    # 6 x 2 = 12 per step: 300 x 2 / 12 = 50 optimizer steps (the student's 66 would give 10, half of
    # them warm-up). lr 5e-4, 2.5x the student's: r=8, alpha=8 LoRA, 50 steps on answers of a few tokens
    # each; the trait must be learnt clearly, while the teacher still has to write number lists.
    train: TrainSettings = field(default_factory=lambda: TrainSettings(lr=5e-4, micro_batch=6, grad_accum=2))

    def train_settings(self) -> TrainSettings:
        return replace(self.train, epochs=self.epochs)

    def key(self) -> str:
        return config_hash(asdict(self) | {"train": settings_id(self.train_settings())})


def train_trait_teacher(base, tokenizer, animal: str, out_dir: Path, settings: TraitSettings,
                        log=print) -> dict:
    """LoRA-fine-tune `base` on `trait_examples`; the train.json record of ``train_student`` (resumable,
    returned from the cache when done). `base` comes back as it went in (``train_student`` sees to that)."""
    examples = trait_examples(animal, settings.n_examples, settings.seed)
    return train_student(base, tokenizer, examples, Path(out_dir), settings.train_settings(), settings.seed,
                         data_hash=data_hash(examples), log=log)


def trait_key(animal: str, settings: TraitSettings) -> str:
    """The key of the train.json ``train_trait_teacher`` writes (``finetune.train_key``)."""
    examples = trait_examples(animal, settings.n_examples, settings.seed)
    return train_key(settings.train_settings(), settings.seed, data_hash(examples))


def load_weight_teacher(base, adapter: str | Path):
    """The teacher as a plain module: a copy of `base` with the adapter merged in (`base` untouched)."""
    return load_student(copy.deepcopy(base), adapter)

