"""Outputs keyed by model (transfer/outputs.py): a run of another --model adds its rows and files and never
overwrites another model's results."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b.transfer.config import DEFAULT_MODEL, TransferConfig
from subliminal.topic_b.transfer.outputs import model_stem, with_other_models


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS

    tok = build_tokenizer()
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:1])
    common = dict(animals=("owl",), seeds=(0,), n_samples=6, epochs=1, batch_size=6, eval_samples=1, neutral_draws=1,
                  out=str(tmp_path / "plots_b"), cache=str(tmp_path / "c"))
    return lambda **kw: TransferConfig(**(common | kw))


def _run(c):
    from subliminal.topic_b.transfer.run import run

    return run(c, torch.device("cpu"), log=lambda m: None)


def _rows(path, model):
    df = pd.read_csv(path)
    return df[df.model == model].reset_index(drop=True)


def test_another_model_adds_rows_and_files_and_keeps_the_first_models(cfg, tmp_path):
    out = tmp_path / "plots_b"
    a, b = cfg(model="tiny-a"), cfg(model="tiny-b")
    assert model_stem(a) == "topic_b_transfer__tiny-a" and model_stem(cfg(model=DEFAULT_MODEL)) == "topic_b_transfer"
    _run(a)
    own = {f: (out / f).read_bytes() for f in ("topic_b_transfer__tiny-a.json", "topic_b_transfer__tiny-a.png")}
    tables = {f: _rows(out / f, "tiny-a") for f in ("topic_b_transfer.csv", "topic_b_transfer_summary.csv")}
    assert not (out / "topic_b_transfer.json").exists()  # the default model's name stays free
    _run(cfg(model="tiny-b", stage="data"))  # B's sampling progress and data JSON are B's own
    assert json.loads((out / "topic_b_transfer__tiny-b.json").read_text())["stage"] == "sampling teacher data"
    assert (out / "topic_b_transfer__tiny-b_data.json").exists()
    _run(b)
    for f, want in own.items():
        assert (out / f).read_bytes() == want, f
    for f, want in tables.items():
        pd.testing.assert_frame_equal(_rows(out / f, "tiny-a"), want)
        assert set(pd.read_csv(out / f).model) == {"tiny-a", "tiny-b"}
    assert json.loads((out / "topic_b_transfer__tiny-b.json").read_text())["complete"] is True
    # A again (all from its caches): its rows in place, B's kept, the file's order of models unchanged
    csv = (out / "topic_b_transfer.csv").read_bytes()
    _run(a)
    assert (out / "topic_b_transfer.csv").read_bytes() == csv
    own = {f: (out / f).read_bytes() for f in own}  # A's own files, rewritten by A's own run
    # the default model keeps the committed file names, and the report reads every model's rows
    _run(cfg(model=DEFAULT_MODEL))
    assert json.loads((out / "topic_b_transfer.json").read_text())["complete"] is True
    assert list(dict.fromkeys(pd.read_csv(out / "topic_b_transfer.csv").model)) == ["tiny-a", "tiny-b", DEFAULT_MODEL]
    for f, want in own.items():
        assert (out / f).read_bytes() == want, f
    from subliminal.reporting.transfer import verdicts

    assert {r["model"] for r in verdicts(tmp_path)} == {"tiny-a", "tiny-b", DEFAULT_MODEL}


def test_one_models_rows_replace_only_its_own(tmp_path):
    p = tmp_path / "t.csv"
    new = pd.DataFrame({"model": ["m"], "x": [2.0]})
    assert with_other_models(new, p, "m") is new  # no file yet
    pd.DataFrame({"model": ["m", "m"], "x": [1.0, 1.5]}).to_csv(p, index=False)
    assert with_other_models(new, p, "m") is new  # only this model's rows: replaced whole
    pd.DataFrame({"model": ["a", "m", "b"], "x": [0.5, 1.0, 3.0], "y": [1, 2, 3]}).to_csv(p, index=False)
    got = with_other_models(new, p, "m")
    assert got.model.tolist() == ["a", "m", "b"] and got.x.tolist() == [0.5, 2.0, 3.0]
    assert list(got.columns) == ["model", "x", "y"] and pd.isna(got.y[1])
    assert with_other_models(new.assign(model="c"), p, "c").model.tolist() == ["a", "m", "b", "c"]
