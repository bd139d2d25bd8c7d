"""The evaluation rules a ladder readout was made under (``topic_b.rules``, shared with the transfer room), for
the ladder's animal list: the evaluation questions (user message and prefill), the animals of
``readouts.ALL_ANIMALS`` and the version of the P(animal) scoring rule (``topic_b.rules.RULE_VERSION``). Every
student key and record, and the base preference, carry it, so a student read under other questions, animals or
scoring is never reused.

- ``rules_id``: the hash of (questions, animals, ``RULE_VERSION``), read at call time from
  ``evaluate.EVAL_QUESTIONS`` and ``readouts.ALL_ANIMALS``, the lists ``readouts.preference`` scores.
- ``V1_RULES`` / ``V1_LISTS``: the rules of the records made before records carried an id (the committed ones).
  Those records store, at every milestone, the questions' user messages and the animals they were scored on;
  ``record_rules`` gives them ``V1_RULES`` when those lists are version 1's, else None (unknown: not reused).
"""

from __future__ import annotations

from subliminal.cache import config_hash
from subliminal.topic_b import rules as shared
from subliminal.topic_b.rules import RULE_VERSION, questions  # noqa: F401 (read through this module too)
from subliminal.topic_b.theory import readouts

V1_RULES = "e495e6f21989ba63"  # rules_id() of the 26 questions, 25 animals and rule 1 the first records used
V1_LISTS = "b4676df3de4cc796"  # lists_id() of their user messages and animals: what a record of then stores


def rules(qs=None) -> dict:
    return shared.rules(qs, readouts.ALL_ANIMALS)


def rules_id(qs=None) -> str:
    """The id of the rules a ladder readout on `qs` (None: the default questions) is made under."""
    return shared.rules_id(qs, readouts.ALL_ANIMALS)


def lists_id(user_questions, animals) -> str:
    """The id of the lists a readout stores (user messages, animals), to recognise version 1's."""
    return config_hash({"questions": list(user_questions), "animals": list(animals)})


def record_rules(rec: dict) -> str | None:
    """The rules a student record was made under: its ``rules``, or for a record of before the ids, ``V1_RULES``
    when every milestone stores version 1's questions and animals (else None: unknown, never current)."""
    if "rules" in rec:
        return rec["rules"]
    ms = (rec.get("milestones") or {}).values()
    ids = {lists_id(m.get("questions") or [], m.get("animals") or []) for m in ms}
    return V1_RULES if ids == {V1_LISTS} else None


def preference_rules(body: dict) -> str | None:
    """The rules of a kept base preference (``base_preference.json``): its ``rules``, or for one of before the
    ids, ``V1_RULES`` when its rows are version 1's questions and animals."""
    if "rules" in body:
        return body["rules"]
    rows = body.get("rows") or {}
    qs, an = list(dict.fromkeys(rows.get("question") or [])), list(dict.fromkeys(rows.get("animal") or []))
    return V1_RULES if lists_id(qs, an) == V1_LISTS else None
