"""The evaluation rules an animal-preference readout is made under, as one id, for both LLM rooms (the ladder,
``theory/``, and the transfer room, ``transfer/``): the evaluation questions (user message and prefill), the
animals scored, and the version of the P(animal) scoring rule. A cache of readouts keyed with it is never reused
under other questions, animals or scoring.

- ``RULE_VERSION``: the scoring rule. Version 1: per question, log P(animal) = logaddexp over the strings of
  ``prompts.animal_strings(animal, prefill)`` (' owl' after a prefill; 'owl' + 'Owl' without one), scored exactly
  by ``transfer.evaluate.evaluate_model`` (whose sampled frequency, ``evaluate.mentions``, is scored under the same
  version). Bump it when that rule changes (``tests/test_theory_reliability.py`` pins version 1's strings).
- ``rules_id(qs, animals)``: the hash of (questions, animals, ``RULE_VERSION``); the questions default to
  ``evaluate.EVAL_QUESTIONS``, read at call time (what ``evaluate_model`` scores by default).
- ``V1_QUESTIONS`` / ``scored_as_v1``: version 1's questions and rule, the ones every cache made before the ids
  was read under. A key takes the rules id only when the rules are not these (so those caches keep their keys).
  The ladder's id of its 25 animals under them is ``theory.rules.V1_RULES``.
"""

from __future__ import annotations

from subliminal.cache import config_hash
from subliminal.topic_b.transfer import evaluate

RULE_VERSION = 1
V1_QUESTIONS = "90f37a2bd5d635af"  # questions_id() of version 1's 26 evaluation questions


def questions(qs=None) -> list[tuple[str, str]]:
    """The evaluation questions (user message, prefill): `qs`, or the ones ``evaluate_model`` scores by default."""
    return [tuple(q) for q in (evaluate.EVAL_QUESTIONS if qs is None else qs)]


def questions_id(qs=None) -> str:
    return config_hash([list(q) for q in questions(qs)])


def rules(qs, animals) -> dict:
    return {"questions": [list(q) for q in questions(qs)], "animals": list(animals), "rule": RULE_VERSION}


def rules_id(qs, animals) -> str:
    """The id of the rules a readout of `animals` on `qs` (None: the default questions) is made under."""
    return config_hash(rules(qs, animals))


def scored_as_v1(qs=None) -> bool:
    """Whether a readout on `qs` (None: the default questions) asks version 1's questions under rule 1."""
    return RULE_VERSION == 1 and questions_id(qs) == V1_QUESTIONS
