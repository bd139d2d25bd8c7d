"""A transfer run carried to another machine (transfer/carried.py, the scheme of subliminal/carry.py): finished
units are sealed records beside the outputs; a run given only the outputs and the records, on an empty cache,
continues from them and retrains nothing finished; an edited record or a kept adapter that fails its SHA-256 is
refused in one line and recomputed, never used."""

from __future__ import annotations

import copy
import json
import shutil

import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal import carry
from subliminal.cache import read_record
from subliminal.topic_b.transfer import carried, data, eval_cache, finetune, students
from subliminal.topic_b.transfer import evaluate as ev
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS

TABLES = ("topic_b_transfer.csv", "topic_b_transfer_summary.csv")


@pytest.fixture
def tiny(monkeypatch):
    import subliminal.topic_b.lm as lm

    tok = build_tokenizer()
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:1])
    return base, tok


def _cfg(tmp_path, machine: str, **kw) -> TransferConfig:
    common = dict(model="tiny", animals=("owl",), seeds=(0,), n_samples=6, epochs=1, batch_size=6, eval_samples=1,
                  neutral_draws=1, out=str(tmp_path / machine / "plots_b"), cache=str(tmp_path / machine / "cache"))
    return TransferConfig(**(common | kw))


def _run(cfg, logs=None):
    from subliminal.topic_b.transfer.run import run

    return run(cfg, torch.device("cpu"), log=(logs.append if logs is not None else lambda m: None))


def _move(tmp_path, src: str, dst: str) -> None:
    """What a commit carries to a fresh machine: the outputs and their records, no cache."""
    shutil.copytree(tmp_path / src / "plots_b", tmp_path / dst / "plots_b")


def _tables(cfg) -> dict[str, bytes]:
    return {f: (carried.records(cfg).parent / f).read_bytes() for f in TABLES}


def _count(monkeypatch, module, name, fail: bool = False) -> list:
    """Calls of `module.name` (each call's first positional arguments), or a failure on any call."""
    calls, real = [], getattr(module, name)

    def spy(*a, **k):
        if fail:
            raise AssertionError(f"{name} was called on a fresh machine for a finished unit")
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_a_finished_run_moved_to_a_fresh_machine_retrains_and_resamples_nothing(tiny, tmp_path, monkeypatch):
    first = _cfg(tmp_path, "a")
    _run(first)
    recs = carried.records(first)
    assert {p.parent.relative_to(recs).parts[0] for p in recs.rglob(carry.RECORD)} == {"data", "eval", "students"}
    kept = [b for _, b in carry.kept(recs / "students")]
    assert len(kept) == 2 and all(b["adapter"]["dtype"] == "float16" and b["complete"] for b in kept)
    _move(tmp_path, "a", "b")
    fresh = _cfg(tmp_path, "b")
    for module, name in ((students, "train_student"), (data, "sample_prompts"), (eval_cache, "evaluate_model")):
        _count(monkeypatch, module, name, fail=True)
    logs = []
    rec = _run(fresh, logs)
    assert _tables(fresh) == _tables(first) and rec.not_trained == []
    assert not [m for m in logs if m.startswith(("[train]", "[eval]", "[cache]"))], logs
    # the records are unchanged by the second machine, and no adapter came with them (they stay outside git)
    assert {p.relative_to(recs): p.read_bytes() for p in recs.rglob("*") if p.is_file()} == \
        {p.relative_to(carried.records(fresh)): p.read_bytes() for p in carried.records(fresh).rglob("*") if p.is_file()}
    assert not list((tmp_path / "b" / "cache").rglob("adapter_model.safetensors"))


def test_a_partial_run_continues_elsewhere_and_trains_only_the_missing_students(tiny, tmp_path, monkeypatch):
    _run(_cfg(tmp_path, "a"))  # seed 0 only: a run stopped after its first seed
    _move(tmp_path, "a", "b")
    _count(monkeypatch, data, "sample_prompts", fail=True)  # seed 1 trains on exactly the committed data
    trained = _count(monkeypatch, students, "train_student")
    both = _cfg(tmp_path, "b", seeds=(0, 1))
    rec = _run(both)
    assert sorted(a[5] for a in trained) == [1, 1] and rec.not_trained == []  # (base, tok, examples, dir, settings, seed)
    monkeypatch.undo()
    straight = _cfg(tmp_path, "c", seeds=(0, 1))
    import subliminal.topic_b.lm as lm

    tok = build_tokenizer()
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:1])
    _run(straight)  # the same run, uninterrupted, on one machine
    assert _tables(both) == _tables(straight)


def _edit(path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc["body"])
    path.write_text(json.dumps(doc))  # its own SHA-256 no longer matches


def test_an_edited_record_is_refused_in_one_line_and_recomputed(tiny, tmp_path, monkeypatch, capfd):
    first = _cfg(tmp_path, "a")
    _run(first)
    _move(tmp_path, "a", "b")
    fresh = _cfg(tmp_path, "b")
    recs = carried.records(fresh)
    owl = next(p for p in (recs / "students").glob("owl-s0-*/record.json"))
    evals = {json.loads(p.read_text())["body"]["unit"]: p for p in (recs / "eval").rglob(carry.RECORD)}
    key = json.loads(owl.read_text())["body"]["train"]["key"]
    from subliminal.topic_b.transfer.eval_cache import eval_key

    table = evals[f"eval/{eval_key(fresh, key)}"]
    _edit(table, lambda b: b.update(csv=b["csv"].replace("0.", "0.9", 1)))  # a number of the owl student's table
    _edit(owl, lambda b: b["train"].update(final_loss=0.0))
    capfd.readouterr()
    trained, scored = _count(monkeypatch, students, "train_student"), _count(monkeypatch, eval_cache, "evaluate_model")
    _run(fresh)
    err = [m for m in capfd.readouterr().err.splitlines() if "does not match its checksum" in m]
    assert any(owl.name in m and str(owl.parent.name) in m for m in err) and any(table.parent.name in m for m in err)
    assert len(trained) == 1 and len(scored) == 1  # the owl student trained and scored again, nothing else
    assert _tables(fresh) == _tables(first)  # the true numbers, never the edited ones
    assert carry.read_kept is not None and json.loads(owl.read_text())["body"]["train"]["final_loss"] != 0.0


def test_a_kept_adapter_rescores_a_student_and_one_that_fails_its_sha_is_refused(tiny, tmp_path, monkeypatch, capfd):
    first = _cfg(tmp_path, "a")
    _run(first)
    owl_dir = next((tmp_path / "a" / "cache" / "students").glob("owl-s0-*"))
    for case, flip in (("b", False), ("c", True)):
        _move(tmp_path, "a", case)
        fresh = _cfg(tmp_path, case)
        body = carried.kept_body(first, owl_dir)
        kept = tmp_path / case / "cache" / "students" / owl_dir.name / carried.KEPT
        kept.parent.mkdir(parents=True)
        b = bytearray((owl_dir / carried.KEPT).read_bytes())
        if flip:
            b[len(b) // 2] ^= 1
        kept.write_bytes(bytes(b))  # the 16-bit adapter carried outside git
        from subliminal.topic_b.transfer.eval_cache import eval_key

        ekey = eval_key(fresh, body["train"]["key"])
        shutil.rmtree(carried.records(fresh) / "eval" / ekey)  # the owl student must be scored again
        trained = _count(monkeypatch, students, "train_student")
        capfd.readouterr()
        _run(fresh)
        err = capfd.readouterr().err
        new, old = (pd.read_csv(carried.records(c).parent / TABLES[0]) for c in (fresh, first))
        if not flip:  # re-scored from the kept fp16 adapter, not retrained: its numbers up to fp16 rounding
            assert trained == [] and "fails its checksum" not in err
            assert (new.logp_animal - old.logp_animal).abs().max() < 1e-3
        else:  # refused in one line, and the student trained again (the same student: the same numbers)
            assert len(trained) == 1 and sum("fails its checksum" in m and carried.KEPT in m
                                             for m in err.splitlines()) == 1, err
            assert _tables(fresh) == _tables(first)
        monkeypatch.setattr(students, "train_student", finetune.train_student)


@pytest.mark.slow
def test_a_committed_student_rescored_from_its_kept_adapter_gives_its_committed_numbers(tmp_path):
    """P(owl), P(eagle) of the committed owl student (seed 0), its fp16 adapter read through its committed record
    (``carry.read_kept``: where the cache holds it, e.g. after ``transfer.migrate``), against topic_b_transfer.csv.
    Measured when the compact archive held it: |d logp| <= 3.5e-5 on all 26 questions (fp32 adapter: 1.8e-5); the
    CSV keeps 6 significant digits. Tolerance 2e-4."""
    from pathlib import Path

    from subliminal import assets
    from subliminal.topic_b import lm
    from subliminal.topic_b.transfer.evaluate import evaluate_model

    root = Path(__file__).resolve().parent.parent
    cfg = TransferConfig(out=str(root / "plots_b"))
    unit = "students/owl-s0-4dbdb8b55cdd889b"
    body = read_record(carried.records(cfg) / unit / carry.RECORD)
    kept = cfg.cache_root / unit / carried.KEPT
    if not kept.exists() or not (assets.cache_dir() / assets.ASSETS["smollm2-135m-instruct"].filename).exists():
        pytest.skip("the kept adapter or the SmolLM2 asset is not in this machine's cache")
    (tmp_path / unit).mkdir(parents=True)
    shutil.copyfile(kept, tmp_path / unit / carried.KEPT)
    assert carried._restore_trained(tmp_path / unit, body, print) == 3  # adapter config, weights, train.json
    base, tok = lm.load_model("smollm2-135m-instruct")
    student = finetune.load_student(copy.deepcopy(base), tmp_path / unit / "adapter")
    got = evaluate_model(student, tok, ["owl", "eagle"], n_samples=0, questions=EVAL_QUESTIONS[:6], progress=False)
    csv = pd.read_csv(root / "plots_b" / "topic_b_transfer.csv", keep_default_na=False, na_values=["nan"])
    ref = csv[(csv["arm"] == "owl") & (csv["seed"] == 0) & (csv["model"] == "smollm2-135m-instruct")]
    m = got.merge(ref, on=["question", "prefill", "animal"], suffixes=("", "_csv"), validate="1:1")
    assert len(m) == 12 and (m["logp_animal"] - m["logp_animal_csv"]).abs().max() < 2e-4
