"""The evaluation table of one model (``evaluate.py``), computed once and cached under ``<cache>/eval``, keyed by
what is evaluated and how (``eval_key``): the evaluation rules included, so a table is never reused under other
questions, animals or scoring."""

from __future__ import annotations

import json
import time

import pandas as pd

from subliminal.cache import config_hash
from subliminal.topic_b import rules
from subliminal.topic_b.transfer import carried, sealed
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.evaluate import evaluate_model, table_bytes, table_of
from subliminal.topic_b.transfer.plan import root


def eval_key(cfg: TransferConfig, *head) -> str:
    """The cache key of an evaluation table: `head` (what is evaluated: ``"base", <model>`` for the base model,
    ``<train key>`` for a student, ``<train key>, "teacher"`` for a weight teacher), the evaluation's samples and
    seed, the animals it scores (``cfg.animals``), and the evaluation rules (``topic_b.rules.rules_id`` of the
    questions, these animals and the scoring rule). The rules enter only when they are not version 1's questions
    and rule (``rules.scored_as_v1``), as in the ladder's keys, so every table of before keeps its key."""
    animals = list(cfg.animals)
    tail = [] if rules.scored_as_v1() else [{"rules": rules.rules_id(None, animals)}]
    return config_hash([*head, cfg.eval_samples, cfg.seed, animals, *tail])


def cached_table(cfg: TransferConfig, key: str, log=print, times: dict | None = None) -> pd.DataFrame | None:
    """The cached evaluation table of `key` (``<cache>/eval/<key>.csv``, sealed: ``sealed.py``) when it matches the
    checksum written with it, its wall time (``<key>.json`` beside it; None where an older cache has no record)
    put into `times`, and its record kept (``carried.py``); None otherwise (one line when it is there but edited)."""
    path = root(cfg) / "eval" / f"{key}.csv"
    side = path.with_suffix(".json")
    data = sealed.read_sealed(path, log)
    df = table_of(data) if data is not None else None
    if data is not None and df is None:
        log(f"[cache] {path} is not an evaluation table; recomputing it")
    if df is None:
        return None
    s = sealed.read_sealed(side, log) if side.exists() else None
    secs = json.loads(s).get("seconds") if s is not None else None
    if times is not None:
        times[key] = secs
    carried.keep_eval(cfg, key, data, secs)
    return df


def eval_cached(cfg: TransferConfig, key: str, model, tok, animals, log=print,
                times: dict | None = None, load=None) -> pd.DataFrame:
    """The evaluation table of one model, computed once (``cached_table``); `load` (when given) returns the model,
    called only when the table must be computed, so a model whose evaluation is on record is never loaded. A fresh
    table is returned as read back from the bytes just written, so a resumed run computes from exactly what an
    uninterrupted one did."""
    df = cached_table(cfg, key, log, times)
    if df is not None:
        return df
    path = root(cfg) / "eval" / f"{key}.csv"
    model = load() if load is not None else model
    t0 = time.time()
    data = table_bytes(evaluate_model(model, tok, list(animals), n_samples=cfg.eval_samples, seed=cfg.seed))
    secs = round(time.time() - t0, 1)
    sealed.write_sealed(path, data)
    sealed.write_sealed(path.with_suffix(".json"), (json.dumps({"seconds": secs}) + "\n").encode())
    if times is not None:
        times[key] = secs
    carried.keep_eval(cfg, key, data, secs)
    log(f"[eval] {key}: {secs:.0f} s")
    return table_of(data)
