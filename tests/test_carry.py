"""One way to carry a run (subliminal/carry.py, issue 42): records in git, verified artefacts outside it."""

from __future__ import annotations

import torch

from subliminal import carry
from subliminal.cache import read_record, write_record


def test_records_travel_to_a_fresh_cache_and_never_go_over_one_further_along(tmp_path):
    recs, cache = tmp_path / "out" / "x_records", tmp_path / "cache"
    assert carry.records_dir(tmp_path / "out", "x") == recs
    done = {"name": "a", "milestones": {"10": 1, "30": 2}, "complete": True}
    part = {"name": "b", "milestones": {"10": 1}, "complete": False}
    carry.keep(recs, "a", done)
    carry.keep(recs, "b", part)
    place = lambda f, body: cache / body["name"] / carry.RECORD  # noqa: E731
    assert carry.restore(recs, place) == 2
    assert read_record(cache / "a" / carry.RECORD) == done and read_record(cache / "b" / carry.RECORD) == part
    assert carry.restore(recs, place) == 0  # the same records: nothing written
    ahead = {**part, "milestones": {"10": 1, "30": 2}}
    write_record(cache / "b" / carry.RECORD, ahead)  # the cache is further along: it keeps its own
    assert carry.restore(recs, place) == 0 and read_record(cache / "b" / carry.RECORD) == ahead
    # a place of None: not this run's; an edited record: never used
    assert carry.restore(recs, lambda f, b: None) == 0
    f = recs / "a" / carry.RECORD
    f.write_text(f.read_text().replace('"30": 2', '"30": 3'))
    (cache / "a" / carry.RECORD).unlink()
    assert carry.restore(recs, place) == 0 and not (cache / "a" / carry.RECORD).exists()
    assert [b["name"] for _, b in carry.kept(recs)] == ["b"]


def test_further_orders_records_by_milestones_then_completeness():
    assert carry.further({"milestones": {"10": 0}}, None)
    assert not carry.further({"milestones": {"10": 0}, "complete": False}, {"milestones": {"10": 0}, "complete": True})
    assert carry.further({"milestones": {"10": 0, "60": 0}, "complete": True}, {"milestones": {"10": 0}})
    assert not carry.further({"milestones": {"10": 0}}, {"milestones": {"10": 0, "30": 0}})
    assert carry.further({"complete": True}, {"complete": False}) and not carry.further({}, {"complete": False})


def test_a_kept_adapter_is_16_bit_and_refused_when_it_does_not_match(tmp_path):
    t = {"lora_A": torch.randn(4, 8), "lora_B": torch.randn(8, 4) * 1e-3}
    entry = carry.keep_tensors(tmp_path / "adapter.safetensors", t)
    assert entry["file"] == "adapter.safetensors" and entry["dtype"] == "float16" and len(entry["sha256"]) == 64
    got = carry.read_kept(tmp_path, entry)
    assert all(got[k].dtype == torch.float16 and torch.allclose(got[k].float(), t[k], rtol=1e-3, atol=1e-6) for k in t)
    f = tmp_path / "adapter.safetensors"
    f.write_bytes(f.read_bytes()[:-2] + b"\0\0")
    assert carry.read_kept(tmp_path, entry) is None and carry.read_kept(tmp_path, None) is None
