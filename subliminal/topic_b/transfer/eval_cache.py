"""The evaluation table of one model (``evaluate.py``), computed once and cached under ``<cache>/eval``."""

from __future__ import annotations

import json
import time

import pandas as pd

from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.evaluate import evaluate_model, table_bytes, table_of
from subliminal.topic_b.transfer.plan import root


def eval_cached(cfg: TransferConfig, key: str, model, tok, animals, log=print,
                times: dict | None = None) -> pd.DataFrame:
    """The evaluation table of one model, computed once (``<cache>/eval/<key>.csv``, sealed: ``sealed.py``); its
    wall time goes to ``<key>.json`` beside it and into `times` (None where an older cache has no record). A
    cached table is used only when it matches the checksum written with it; a fresh one is returned as read
    back from the bytes just written, so a resumed run computes from exactly what an uninterrupted one did."""
    path = root(cfg) / "eval" / f"{key}.csv"
    side = path.with_suffix(".json")
    data = sealed.read_sealed(path, log)
    df = table_of(data) if data is not None else None
    if data is not None and df is None:
        log(f"[cache] {path} is not an evaluation table; recomputing it")
    if df is not None:
        if times is not None:
            s = sealed.read_sealed(side, log) if side.exists() else None
            times[key] = json.loads(s).get("seconds") if s is not None else None
        return df
    t0 = time.time()
    data = table_bytes(evaluate_model(model, tok, list(animals), n_samples=cfg.eval_samples, seed=cfg.seed))
    secs = round(time.time() - t0, 1)
    sealed.write_sealed(path, data)
    sealed.write_sealed(side, (json.dumps({"seconds": secs}) + "\n").encode())
    if times is not None:
        times[key] = secs
    log(f"[eval] {key}: {secs:.0f} s")
    return table_of(data)
