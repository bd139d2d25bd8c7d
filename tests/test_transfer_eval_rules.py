"""The transfer room's evaluation caches are keyed by the evaluation rules (``topic_b.rules``: the questions, the
animals scored and the P(animal) rule's version), as the ladder's are: under today's (version 1's) rules every key
is the one of before the rules entered keys (literal values below, and every key of the committed runs); under
other questions, animals or rule, another key, so no cached evaluation is reused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import subliminal.topic_b.transfer.eval_cache as E
import subliminal.topic_b.transfer.evaluate as ev
from subliminal.cache import config_hash
from subliminal.topic_b import rules
from subliminal.topic_b.theory import readouts
from subliminal.topic_b.theory import rules as ladder_rules
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.eval_cache import eval_key

ROOT = Path(__file__).resolve().parents[1]
RUNS = ["topic_b_transfer.json", "topic_b_transfer_logits.json", "topic_b_transfer_weights.json",
        "topic_b_transfer_defence.json"]
STUDENT, TEACHER = "0f7900d384f3247d", "59b1dabb7832d8eb"  # a committed student's and weight teacher's train keys
# the keys of before (config_hash of [what, eval_samples, seed, animals]) for the default config
V1_KEYS = {"base": "cbedda2b16971377", "student": "56774104d25cf3c4", "teacher": "56bb894835114b00"}


def _keys(cfg) -> dict:
    return {"base": eval_key(cfg, "base", cfg.model), "student": eval_key(cfg, STUDENT),
            "teacher": eval_key(cfg, TEACHER, "teacher")}


@pytest.fixture
def cfg(tmp_path):
    return TransferConfig(cache=str(tmp_path / "cache"), out=str(tmp_path / "o"))


def test_todays_rules_keep_the_keys_of_before(cfg):
    assert rules.scored_as_v1() and rules.questions_id() == rules.V1_QUESTIONS and rules.RULE_VERSION == 1
    assert _keys(cfg) == V1_KEYS
    assert ladder_rules.rules_id() == ladder_rules.V1_RULES  # the ladder's id, from the shared rules, unchanged


@pytest.mark.parametrize("name", RUNS)
def test_every_committed_evaluation_keeps_its_key(name):
    """The committed runs list each evaluation's key (``eval_seconds``): the base model's, every student's and
    every weight teacher's key is one of them, and none is missing."""
    d = json.loads((ROOT / "plots_b" / name).read_text())
    c = d["config"]
    cfg = TransferConfig(model=c["model"], animals=tuple(c["animals"]), eval_samples=c["eval_samples"], seed=c["seed"],
                         cache="unused")
    keys = {eval_key(cfg, "base", cfg.model)} | {eval_key(cfg, r["key"]) for r in d["students"].values()} | \
        {eval_key(cfg, t["key"], "teacher") for t in (d.get("trait_teachers") or {}).values()}
    assert keys == set(d["eval_seconds"])


def _other_rules(monkeypatch, what):
    if what == "questions":
        monkeypatch.setattr(ev, "EVAL_QUESTIONS", ev.EVAL_QUESTIONS[:-1])
    elif what == "question text":
        qs = list(ev.EVAL_QUESTIONS)
        qs[3] = (qs[3][0] + " Answer in one word.", qs[3][1])
        monkeypatch.setattr(ev, "EVAL_QUESTIONS", tuple(qs))
    elif what == "rule":
        monkeypatch.setattr(rules, "RULE_VERSION", 2)


@pytest.mark.parametrize("what", ["questions", "question text", "rule"])
def test_other_questions_or_rule_give_other_keys(cfg, monkeypatch, what):
    _other_rules(monkeypatch, what)
    assert not rules.scored_as_v1()
    got = _keys(cfg)
    assert not set(got.values()) & set(V1_KEYS.values())
    assert got == {k: config_hash([*h, cfg.eval_samples, cfg.seed, list(cfg.animals),
                                     {"rules": rules.rules_id(None, cfg.animals)}])
                   for k, h in (("base", ["base", cfg.model]), ("student", [STUDENT]), ("teacher", [TEACHER, "teacher"]))}


def test_another_animal_list_gives_other_keys(cfg, monkeypatch):
    """The transfer room scores the run's animals (``--animals``): another list, another key, under today's rules
    and under others (the rules id then names the list too)."""
    more = dataclasses.replace(cfg, animals=(*cfg.animals, "wolf"))
    assert not set(_keys(more).values()) & set(V1_KEYS.values())
    _other_rules(monkeypatch, "questions")
    assert not set(_keys(more).values()) & set(_keys(cfg).values())
    assert rules.rules_id(None, more.animals) != rules.rules_id(None, cfg.animals)


def test_the_ladders_animal_list_enters_its_rules_id(monkeypatch):
    """The ladder scores every animal of ``readouts.ALL_ANIMALS`` (the list its rules read): one more or fewer, another
    id (so another student key and record)."""
    monkeypatch.setattr(readouts, "ALL_ANIMALS", (*readouts.ALL_ANIMALS, "axolotl"))
    assert ladder_rules.rules_id() != ladder_rules.V1_RULES


@pytest.mark.parametrize("what", ["questions", "question text", "rule", "animals"])
def test_no_cached_evaluation_is_reused_under_other_rules(cfg, monkeypatch, what):
    """An evaluation cached under today's rules is read back under them, and computed afresh under others."""
    calls = []

    def fake(model, tok, animals, n_samples, seed):
        calls.append(list(animals))
        p = np.full(len(animals), 0.25)
        return pd.DataFrame({"question": ["q"] * len(animals), "prefill": [""] * len(animals), "animal": animals,
                             "p_animal": p, "logp_animal": np.log(p), "freq_animal": p, "n_samples": 4})

    monkeypatch.setattr(E, "evaluate_model", fake)
    logs = []
    E.eval_cached(cfg, eval_key(cfg, STUDENT), None, None, list(cfg.animals), logs.append)
    E.eval_cached(cfg, eval_key(cfg, STUDENT), None, None, list(cfg.animals), logs.append)
    assert len(calls) == 1  # today's rules: the cached table
    if what == "animals":
        cfg = dataclasses.replace(cfg, animals=(*cfg.animals, "wolf"))
    else:
        _other_rules(monkeypatch, what)
    E.eval_cached(cfg, eval_key(cfg, STUDENT), None, None, list(cfg.animals), logs.append)
    assert len(calls) == 2 and calls[-1] == list(cfg.animals)  # a cache miss: evaluated again
    assert len(list((Path(cfg.cache) / "eval").glob("*.csv"))) == 2
