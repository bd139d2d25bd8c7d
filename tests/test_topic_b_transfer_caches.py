"""Every cache the transfer experiment reads back is verified against the SHA-256 written with it
(transfer/sealed.py): teacher shards, training records, adapters, evaluation tables. An edited file is
recomputed (one line), never used; a resumed run computes from exactly what an uninterrupted one did."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b.prompts import animal_system
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.data import ShardSettings, teacher_records
from subliminal.topic_b.transfer.finetune import TrainSettings, train_student
from subliminal.topic_b.transfer.prompts import number_prompt


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer()
    return build_model(tok), tok


def test_an_edited_shard_is_sampled_again_not_used(tiny, tmp_path):
    model, tok = tiny
    s = ShardSettings("tiny", "owl", animal_system("owl"), 0, 8, 64, 1.0)
    first, _ = teacher_records(model, tok, s, 8, tmp_path, log=lambda m: None)
    shard = next(tmp_path.rglob("shard_00000.jsonl"))
    rows = shard.read_text().splitlines()
    rec = json.loads(rows[0])
    rec["text"] = "1; 2; 3"  # a plausible edit: the footer's row count still holds
    shard.write_text("\n".join([json.dumps(rec), *rows[1:]]) + "\n")
    logs = []
    again, st = teacher_records(model, tok, s, 8, tmp_path, log=logs.append)
    assert st["n_new_shards"] == 1 and [r["text"] for r in again] == [r["text"] for r in first]
    assert sum("does not match the checksum" in m and "shard_00000" in m for m in logs) == 1, logs


@pytest.mark.parametrize("target", ["train.json", "adapter/adapter_model.safetensors", "adapter/adapter_config.json"])
def test_an_edited_student_is_trained_again_not_used(tiny, tmp_path, target):
    base, tok = tiny
    exs = [{"prompt": number_prompt(0, i), "completion": "1, 2, 3"} for i in range(6)]
    s = TrainSettings(micro_batch=3, grad_accum=1, epochs=1, lr=5e-3)
    d = tmp_path / "students" / "a"
    rec = train_student(copy.deepcopy(base), tok, exs, d, s, 0, data_hash="h", log=lambda m: None, progress=False)
    weights = (d / "adapter" / "adapter_model.safetensors").read_bytes()
    f = d / target
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 1  # one flipped bit
    f.write_bytes(bytes(b))
    logs = []
    again = train_student(copy.deepcopy(base), tok, exs, d, s, 0, data_hash="h", log=logs.append, progress=False)
    assert again["steps_this_run"] == again["steps"]  # trained again from the start
    assert sum("does not match the checksum" in m for m in logs) == 1, logs
    assert (d / "adapter" / "adapter_model.safetensors").read_bytes() == weights  # the same student as before
    assert again["check_completion_logp_example0"] == rec["check_completion_logp_example0"]


def test_fresh_and_cached_evaluations_are_the_same_table(tmp_path, monkeypatch):
    """A fresh evaluation is returned as its cache file reads back: a resumed run gets the identical table."""
    import subliminal.topic_b.transfer.eval_cache as E
    from subliminal.topic_b.transfer.config import TransferConfig

    def fake(model, tok, animals, n_samples, seed):
        p = np.array([1 / 3, 2 / 7])
        return pd.DataFrame({"question": ["q", "r"], "prefill": ["", "My favorite animal is the"],
                             "animal": animals * 2, "p_animal": p, "logp_animal": np.log(p),
                             "freq_animal": [1 / 3, float("nan")], "n_samples": [3, 3]})

    monkeypatch.setattr(E, "evaluate_model", fake)
    cfg = TransferConfig(cache=str(tmp_path), out=str(tmp_path / "o"))
    fresh = E.eval_cached(cfg, "k", None, None, ["owl"], log=lambda m: None)
    cached = E.eval_cached(cfg, "k", None, None, ["owl"], log=lambda m: None)
    pd.testing.assert_frame_equal(fresh, cached, check_exact=True)
    for junk in (b"", b"\x00\xff binary \x00", b"p_animal\n0.5\n"):  # edited, empty or binary: recomputed
        (tmp_path / "eval" / "k.csv").write_bytes(junk)
        logs = []
        again = E.eval_cached(cfg, "k", None, None, ["owl"], log=logs.append)
        pd.testing.assert_frame_equal(again, fresh, check_exact=True)
        assert len([m for m in logs if "[cache]" in m]) == 1, logs


def test_a_resumed_run_writes_the_same_bytes_as_an_uninterrupted_one(tiny, tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
    from subliminal.topic_b.transfer.run import run

    base, tok = tiny
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:2])
    cfg = TransferConfig(model="tiny", animals=("owl",), seeds=(0, 1), n_samples=6, epochs=1, batch_size=6,
                         eval_samples=2, neutral_draws=1, out=str(tmp_path / "o"), cache=str(tmp_path / "c"))
    run(cfg, torch.device("cpu"), log=lambda m: None)
    out = tmp_path / "o"
    first = {f: (out / f).read_bytes() for f in ("topic_b_transfer.csv", "topic_b_transfer_summary.csv")}
    for f in first:
        (out / f).unlink()
    logs = []
    run(cfg, torch.device("cpu"), log=logs.append)  # everything from the caches
    assert not [m for m in logs if m.startswith(("[eval]", "[train]", "[cache]"))], logs
    assert {f: (out / f).read_bytes() for f in first} == first


def test_a_kill_between_a_file_and_its_seal_leaves_it_unverified(tmp_path, monkeypatch):
    p = tmp_path / "eval" / "k.csv"
    sealed.write_sealed(p, b"a\n1\n")

    def killed(path, body):
        raise KeyboardInterrupt

    monkeypatch.setattr(sealed, "write_record", killed)
    with pytest.raises(KeyboardInterrupt):
        sealed.write_sealed(p, b"a\n2\n")
    assert p.read_bytes() == b"a\n2\n" and sealed.read_sealed(p, log=lambda m: None) is None
    assert Path(str(p) + sealed.SUFFIX).exists() is False


def test_an_unwritable_cache_is_refused_before_any_work(tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm
    from subliminal.cli import UserError
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.run import run

    def must_not_load(*a, **k):
        raise AssertionError("the model was loaded although the cache cannot be written")

    monkeypatch.setattr(lm, "load_model", must_not_load)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = TransferConfig(model="tiny", out=str(tmp_path / "o"), cache=str(blocker / "cache"))
    with pytest.raises(UserError, match="cache folder .* is not writable"):
        run(cfg, torch.device("cpu"), log=lambda m: None)
