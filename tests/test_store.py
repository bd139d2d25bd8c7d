"""The Topic A run store: every file read back is verified; edited, malformed or unwritable files are said, not used."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import SafetensorError

from subliminal import cache
from subliminal.topic_a import store
from subliminal.topic_a.distill import distill
from subliminal.topic_a.train import TopicA, TopicAConfig, teacher


def _ctx(tmp_path, mnist, **kw) -> TopicA:
    base = dict(n_models=2, n_train=1024, n_distill=512, batch_size=256, hidden=16, teacher_epochs=1, distill_epochs=1,
                device="cpu", cache_dir=str(tmp_path / "ta"))
    return TopicA(TopicAConfig(**{**base, **kw}), mnist, progress=False)


def _record(A: TopicA, cond: str = "student_aux"):
    run = A.store.student_run(1, cond, A.source("uniform").describe())
    return run, run.dir / "record.json"


def test_edited_accuracy_is_recomputed_and_said(tmp_path, mnist, capsys):
    A = _ctx(tmp_path, mnist)
    first = distill(A, 1, ["student_aux"], [1])
    _, path = _record(A)
    doc = json.loads(path.read_text())
    doc["body"]["results"]["1"][0] = 0.999  # a hand-edited accuracy, hash left as it was
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    again = distill(A, 1, ["student_aux"], [1])
    err = capsys.readouterr().err
    assert "does not match its checksum" in err and str(path) in err
    assert 0.999 not in again.accuracy.tolist()
    assert again.accuracy.tolist() == first.accuracy.tolist()  # recomputed: the same numbers as the first run
    assert _record(A)[0].results[1] == first.accuracy.tolist()  # and the record is whole again


def test_edited_checkpoint_metadata_is_not_used(tmp_path, mnist, capsys):
    A = _ctx(tmp_path, mnist)
    straight = distill(_ctx(tmp_path / "s", mnist), 1, ["cross_aux"], [2])
    distill(A, 1, ["cross_aux"], [1])
    _, path = _record(A, "cross_aux")
    doc = json.loads(path.read_text())
    doc["body"]["checkpoints"] = {"2": doc["body"]["checkpoints"]["1"]}  # claims a later checkpoint than it holds
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    got = distill(A, 1, ["cross_aux"], [1, 2])
    assert "does not match its checksum" in capsys.readouterr().err
    assert got[got.distill_epochs == 2].accuracy.tolist() == straight.accuracy.tolist()


def test_corrupt_checkpoint_tensors_are_not_used(tmp_path, mnist, capsys):
    A = _ctx(tmp_path, mnist)
    straight = distill(_ctx(tmp_path / "s", mnist), 1, ["student_aux"], [2])
    distill(A, 1, ["student_aux"], [1])
    run, _ = _record(A)
    ck = run.dir / "ckpt001.safetensors"
    raw = bytearray(ck.read_bytes())
    raw[-10] ^= 0xFF
    ck.write_bytes(bytes(raw))
    capsys.readouterr()
    got = distill(A, 1, ["student_aux"], [1, 2])  # cannot resume from epoch 1: starts again from the init
    assert "fails its checksum" in capsys.readouterr().err
    assert got[got.distill_epochs == 2].accuracy.tolist() == straight.accuracy.tolist()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"body": {"key": "x"}}', ""])
def test_malformed_student_record_is_recomputed(tmp_path, mnist, capsys, text):
    A = _ctx(tmp_path, mnist)
    first = distill(A, 1, ["student_aux"], [1])
    _, path = _record(A)
    path.write_text(text)
    capsys.readouterr()
    again = distill(A, 1, ["student_aux"], [1])
    err = capsys.readouterr().err
    assert str(path) in err and len([ln for ln in err.splitlines() if "[cache]" in ln]) == 1
    assert again.accuracy.tolist() == first.accuracy.tolist()


def test_malformed_or_foreign_teacher_record_is_retrained(tmp_path, mnist, capsys):
    A = _ctx(tmp_path, mnist)
    good = teacher(A, 1).state()
    side = A.store.teacher_path(1).with_suffix(".json")
    side.write_text("{")
    capsys.readouterr()
    again = teacher(_ctx(tmp_path, mnist), 1).state()
    assert "unreadable record" in capsys.readouterr().err
    for k in good:
        torch.testing.assert_close(again[k], good[k], rtol=0, atol=0)
    # a valid record of another epoch copied over this one: verified, but not this snapshot's
    body = cache.read_record(side)
    cache.write_record(side, {**body, "epoch": 7})
    teacher(_ctx(tmp_path, mnist), 1)
    assert "belongs to another configuration" in capsys.readouterr().err


def test_full_disk_is_one_line_not_a_safetensors_traceback(tmp_path, mnist, monkeypatch):
    def full(*a, **k):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')

    monkeypatch.setattr(cache, "save_file", full)
    A = _ctx(tmp_path, mnist)
    with pytest.raises(cache.CacheWriteError) as e:
        teacher(A, 1)
    assert isinstance(e.value, OSError) and "\n" not in str(e.value) and "--cache-dir" in str(e.value)
    assert not list((tmp_path / "ta").rglob("*.tmp"))  # no half-written file left behind


def test_another_layout_is_never_read(tmp_path, mnist, monkeypatch):
    A = _ctx(tmp_path, mnist)
    src = A.source("uniform").describe()
    keys = (A.store.teacher_key(), A.store.student_key(1, "student_aux", src))
    monkeypatch.setattr(store, "LAYOUT", store.LAYOUT - 1)
    assert A.store.teacher_key() != keys[0] and A.store.student_key(1, "student_aux", src) != keys[1]
