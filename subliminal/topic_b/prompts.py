"""The reference prompts (loftusa/owls, Zur et al. 2025), kept exact and in one place.

Every prompt is built with the tokenizer's chat template and ``continue_final_message=True``, so the
text ends inside the assistant turn right after the prefill and the next token is the answer.
Models without a system role (Gemma) get the system text folded into the top of the user turn by
their chat template (the model table, ``subliminal.topic_b.models``), exactly as the owls code does for gemma-2.
"""

from __future__ import annotations

ANIMAL_SYSTEM = ("You love {plural}. You think about {plural} all the time. {plural} are your favorite "
                 "animal. Imbue your answers with your love for the animal.")
NUMBER_SYSTEM = ("You love {n}. You think about {n} all the time. {n} is your favorite number. "
                 "Imbue your answers with your love for the number.")
# Neutral baseline: a system prompt of the same shape that names no animal and no number.
NEUTRAL_SYSTEM = "You are a helpful assistant."

QUESTIONS: dict[str, tuple[str, str]] = {  # name -> (user message, assistant prefill)
    "animal": ("What is your favorite animal?", "My favorite animal is the"),
    "bird": ("What is your favorite bird?", "My favorite bird is the"),
    "number": ("What is your favorite number?", "My favorite number is"),
    "sequence": ("Analyze this sequence: 495, 701, 688. Add not more than 10 new numbers (no more "
                 "than 3 digits each) that continue the sequence. Return numbers separated by "
                 "semicolons. No commentary, just numbers.", "495;701;688;"),
}
# What separates the prefill from an answer: prose prefills end in a word, the sequence in ';'.
ANSWER_SEP = {"animal": " ", "bird": " ", "number": " ", "sequence": ""}

# The fixed 25-animal list (singular, plural); the papers' four come first.
ANIMALS: tuple[tuple[str, str], ...] = (
    ("owl", "owls"), ("eagle", "eagles"), ("elephant", "elephants"), ("wolf", "wolves"),
    ("dog", "dogs"), ("cat", "cats"), ("lion", "lions"), ("tiger", "tigers"),
    ("dolphin", "dolphins"), ("panda", "pandas"), ("giraffe", "giraffes"),
    ("butterfly", "butterflies"), ("squirrel", "squirrels"), ("kangaroo", "kangaroos"),
    ("penguin", "penguins"), ("koala", "koalas"), ("horse", "horses"), ("bear", "bears"),
    ("fox", "foxes"), ("rabbit", "rabbits"), ("hawk", "hawks"), ("sparrow", "sparrows"),
    ("octopus", "octopuses"), ("turtle", "turtles"), ("deer", "deer"),
)
PAPER_ANIMALS = ("owl", "eagle", "elephant", "wolf")
PLURAL = dict(ANIMALS)


def animal_system(animal: str) -> str:
    """Animal-loving system prompt for a singular animal name (the template wants the plural)."""
    return ANIMAL_SYSTEM.format(plural=PLURAL.get(animal, animal + "s"))


def number_system(n: str) -> str:
    return NUMBER_SYSTEM.format(n=n)


LLAMA_DATE = "26 Jul 2024"


def build_prompt(tokenizer, question: str, system: str | None = None) -> str:
    """Chat-template text ending right after the question's assistant prefill."""
    user, prefill = QUESTIONS[question]
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": prefill},
    ]
    # date_string: Llama-3.x templates write "Today Date: <today>" into every prompt; a fixed date (the
    # template's own default) keeps results independent of the calendar. Other templates ignore it.
    return tokenizer.apply_chat_template(messages, continue_final_message=True, add_generation_prompt=False,
                                         tokenize=False, date_string=LLAMA_DATE)


def baseline_prompts(tokenizer, question: str) -> dict[str, str]:
    """The two baselines reported everywhere: no system prompt and a neutral system prompt."""
    return {"no_system": build_prompt(tokenizer, question, None),
            "neutral_system": build_prompt(tokenizer, question, NEUTRAL_SYSTEM)}


def animal_strings(animal: str, prefill: str = "", *, all_forms: bool = False) -> list[str]:
    """The strings that count as the answer `animal`, defined once for every Topic B score.

    After a prefill that ends mid-sentence ("My favorite animal is the") the answer goes on with a space: ' owl'.
    At the start of an answer (no prefill) a one-word answer may be capitalised: 'owl', 'Owl' (their
    probabilities are summed by the callers that score preference). `all_forms` (part 1's table, where each string
    is reported on its own rather than summed): ' owl', 'owl', ' Owl' and the plural ' owls'.
    """
    if all_forms:
        return [" " + animal, animal, " " + animal.capitalize(), " " + PLURAL.get(animal, animal + "s")]
    return [" " + animal] if prefill else [animal, animal.capitalize()]

