"""The portable archive of a transfer run (transfer/archive.py): round trip, checksums, unfinished work."""

from __future__ import annotations

import copy
import json

import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b.transfer import archive, compact, sealed
from subliminal.topic_b.transfer.finetune import (
    TrainSettings,
    completion_logp,
    load_student,
    tokenize_example,
    train_student,
)
from subliminal.topic_b.transfer.prompts import number_prompt


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_round_trip_refuses_tampered_units_and_skips_unfinished(tmp_path):
    cache, arc, fresh = tmp_path / "cache", tmp_path / "arc", tmp_path / "fresh"
    files = {"data/m/owl-abc/settings.json": b"{}", "data/m/owl-abc/shard_00000.jsonl": b"1\n",
             "eval/k1.csv": b"a\n1\n", "eval/k1.json": b'{"seconds": 1}',
             "students/owl-s0-x/train.json": b"{}", "students/owl-s0-x/adapter/adapter_model.safetensors": b"w",
             "students/owl-s0-x/adapter/adapter_config.json": b"{}",
             "students/owl-s1-y/train.json": b"{}", "students/owl-s1-y/adapter/adapter_model.safetensors": b"v",
             "students/neutral-s2-z/checkpoint.safetensors": b"half"}  # unfinished: no train.json
    for rel, b in files.items():
        sealed.write_sealed(cache / rel, b)  # as the pipeline writes them: each with its checksum
    assert archive.sync(cache, arc) == 9 and archive.sync(cache, arc) == 0  # nothing new the second time
    manifest = json.loads((arc / archive.MANIFEST).read_text())
    assert "students/neutral-s2-z/checkpoint.safetensors" not in manifest and len(manifest) == 9
    (arc / "students/owl-s1-y/adapter/adapter_model.safetensors").write_bytes(b"tampered")
    logs = []
    n = archive.restore(arc, fresh, log=logs.append)
    got = _tree(fresh)
    assert n == 7 and "students/owl-s0-x/train.json" in got
    assert not any(k.startswith("students/owl-s1-y") for k in got)  # the whole unit is refused
    assert len(logs) == 1 and "does not match" in logs[0] and "owl-s1-y" in logs[0]
    assert all(got[k] == files[k] for k in got if not sealed.is_seal(k))
    assert all(sealed.recorded(fresh / k) == manifest[k] for k in got if not sealed.is_seal(k))  # sealed again
    assert archive.restore(arc, fresh, log=logs.append) == 0  # the cache has the rest already


def test_sync_copies_only_sealed_files_with_the_hash_recorded_at_creation(tmp_path, monkeypatch):
    cache, arc = tmp_path / "cache", tmp_path / "arc"
    for rel in ("eval/k1.csv", "eval/k2.csv"):
        sealed.write_sealed(cache / rel, b"a\n1\n")
    assert archive.sync(cache, arc, log=print) == 2
    read = []
    real = archive._read
    monkeypatch.setattr(archive, "_read", lambda p: read.append(p.name) or real(p))
    assert archive.sync(cache, arc) == 0 and read == []  # in the manifest with its recorded hash: not even read
    digest = sealed.recorded(cache / "eval/k1.csv")
    (cache / "eval/k1.csv").write_bytes(b"a\n9\n")  # edited after it was written: never archived
    sealed.write_sealed(cache / "eval/k2.csv", b"a\n2\n")  # recomputed: copied with its new hash
    logs = []
    assert archive.sync(cache, arc, log=logs.append) == 1 and read == ["k2.csv"]
    m = json.loads((arc / archive.MANIFEST).read_text())
    assert m["eval/k1.csv"] == digest and (arc / "eval/k1.csv").read_bytes() == b"a\n1\n" and not logs
    assert (arc / "eval/k2.csv").read_bytes() == b"a\n2\n" and m["eval/k2.csv"] == real_sha(b"a\n2\n")
    (arc / "eval/k1.csv").unlink()  # the archive lacks it: the edited cache file is refused in one line
    assert archive.sync(cache, arc, log=logs.append) == 0 and not (arc / "eval/k1.csv").exists()
    assert len(logs) == 1 and "does not match the checksum" in logs[0] and "k1.csv" in logs[0]
    assert not list(arc.rglob("*" + sealed.SUFFIX))  # seals stay in the cache


def real_sha(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


def test_a_restored_student_is_found_where_it_now_is(tmp_path):
    tok = build_tokenizer()
    base = build_model(tok)
    exs = [{"prompt": number_prompt(0, i), "completion": "1, 2, 3"} for i in range(6)]
    s = TrainSettings(micro_batch=3, grad_accum=1, epochs=1, lr=5e-3)
    rec = train_student(copy.deepcopy(base), tok, exs, tmp_path / "c1" / "students" / "a", s, 0, data_hash="h",
                        log=lambda m: None)
    archive.sync(tmp_path / "c1", tmp_path / "arc")
    archive.restore(tmp_path / "arc", tmp_path / "c2", log=lambda m: None)
    again = train_student(copy.deepcopy(base), tok, exs, tmp_path / "c2" / "students" / "a", s, 0, data_hash="h",
                          log=lambda m: (_ for _ in ()).throw(AssertionError("retrained: " + m)))
    assert again["adapter"] == str(tmp_path / "c2" / "students" / "a" / "adapter") != rec["adapter"]
    student = load_student(copy.deepcopy(base), again["adapter"])
    lp = completion_logp(student, tokenize_example(tok, exs[0]), tok.pad_token_id, torch.device("cpu"))
    assert abs(lp - rec["check_completion_logp_example0"]) < 1e-4


def test_a_run_continues_from_its_archive_on_a_fresh_cache(tmp_path, monkeypatch):
    import shutil

    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
    from subliminal.topic_b.transfer.run import run

    tok = build_tokenizer()
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:2])
    cfg = TransferConfig(model="tiny", animals=("owl",), seeds=(0,), neutral_draws=1, n_samples=6, epochs=1, batch_size=6,
                         eval_samples=2, out=str(tmp_path / "plots_b"), cache=str(tmp_path / "cache"))
    run(cfg, torch.device("cpu"), log=lambda m: None)
    first = (tmp_path / "plots_b" / "topic_b_transfer.csv").read_bytes()
    tar = tmp_path / compact.DEFAULT_NAME  # --archive auto: the compact archive beside the cache, outside the results
    assert compact.verify(tar) and not (tmp_path / "plots_b" / "topic_b_transfer_cache").exists()
    shutil.rmtree(tmp_path / "cache")  # a new machine: only the archive is left
    logs = []
    run(cfg, torch.device("cpu"), log=logs.append)
    assert not [m for m in logs if m.startswith(("[train]", "[eval]")) or "shard" in m], logs
    assert (tmp_path / "plots_b" / "topic_b_transfer.csv").read_bytes() == first
