"""The compact archive of a transfer run (transfer/compact.py): fp16 adapters, gzip, manifests, the committed
student re-scored against its committed numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, save

from subliminal.cli import UserError
from subliminal.topic_b.transfer import archive, compact, sealed

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "plots_b" / "topic_b_transfer_adapters"  # one student, compact (the re-score test's)
RECORD = ROOT / archive.RECORD
STUDENT = "students/owl-s0-4dbdb8b55cdd889b"
ADAPTER = f"{STUDENT}/adapter/adapter_model.safetensors"


def _adapter(scale: float = 0.05) -> bytes:
    g = torch.Generator().manual_seed(0)
    t = {"a.lora_A.weight": torch.randn(8, 16, generator=g) * scale, "a.lora_B.weight": torch.randn(16, 8, generator=g) * 1e-6}
    return save(t, metadata={"format": "pt"})


def _cache(root: Path) -> dict[str, bytes]:
    files = {"data/m/owl-abc/settings.json": b"{}", "data/m/owl-abc/shard_00000.jsonl": b'{"x": 1}\n' * 50,
             "eval/k1.csv": b"a\n1\n", "students/owl-s0-x/train.json": b"{}",
             "students/owl-s0-x/adapter/adapter_model.safetensors": _adapter(),
             "students/owl-s0-x/adapter/adapter_config.json": b"{}",
             "students/neutral-s1-z/checkpoint.safetensors": b"half"}  # unfinished: no train.json
    for rel, b in files.items():
        sealed.write_sealed(root / rel, b)
    return files


@pytest.mark.parametrize("name", ["arc.tar", "arc"])
def test_round_trip_upcasts_adapters_and_keeps_the_original_hashes(tmp_path, name):
    cache, fresh, path = tmp_path / "cache", tmp_path / "fresh", tmp_path / name
    files = _cache(cache)
    assert archive.sync(cache, compact.Compact(path)) == 6 and compact.is_compact(path)
    before = (path if path.is_file() else path / compact.COMPACT).read_bytes()
    assert archive.sync(cache, path) == 0  # nothing new: not even rewritten
    assert (path if path.is_file() else path / compact.COMPACT).read_bytes() == before
    m = compact.Compact(path).files
    ad = m["students/owl-s0-x/adapter/adapter_model.safetensors"]
    assert ad["encoding"] == "fp16" and ad["stored"].endswith(".f16.safetensors") and ad["stored_size"] < ad["size"]
    assert ad["sha256"] == compact.sha(files["students/owl-s0-x/adapter/adapter_model.safetensors"])
    assert m["eval/k1.csv"]["stored"] == "eval/k1.csv.gz" and "students/neutral-s1-z/checkpoint.safetensors" not in m
    assert archive.restore(path, fresh, log=print) == 6 and compact.verify(path)
    for rel, b in files.items():
        if "checkpoint" in rel:
            assert not (fresh / rel).exists()
        elif rel.endswith(compact.ADAPTER):  # upcast to fp32: the original up to fp16 rounding
            got, want = load((fresh / rel).read_bytes()), load(b)
            assert all(got[k].dtype == torch.float32 and torch.equal(got[k], want[k].half().float()) for k in want)
            assert compact.sha((fresh / rel).read_bytes()) == ad["restored_sha256"] == sealed.recorded(fresh / rel)
        else:
            assert (fresh / rel).read_bytes() == b and sealed.recorded(fresh / rel) == compact.sha(b)
    assert archive.sync(fresh, path) == 0  # the upcast copy is what is stored: the original's hash stays
    assert compact.Compact(path).files == m


def test_fp16_unless_it_would_overflow_and_other_tensors_untouched():
    t = {"small": torch.tensor([1e-3, -0.05]), "big": torch.tensor([1e5, 1.0]), "ids": torch.arange(3)}
    got = load(compact.to16(save(t)))
    assert got["small"].dtype == torch.float16 and got["big"].dtype == torch.bfloat16 and got["ids"].dtype == torch.int64
    back = load(compact.to32(compact.to16(save(t))))
    assert back["big"].dtype == torch.float32 and torch.isfinite(back["big"]).all() and torch.equal(back["ids"], t["ids"])


def test_corrupt_or_unsafe_entries_are_refused(tmp_path):
    cache, fresh, path = tmp_path / "cache", tmp_path / "fresh", tmp_path / "arc"
    _cache(cache)
    archive.sync(cache, compact.Compact(path))
    stored = path / compact.stored_name("students/owl-s0-x/adapter/adapter_model.safetensors")
    b = bytearray(stored.read_bytes())
    b[-1] ^= 1  # one bit of one weight
    stored.write_bytes(bytes(b))
    man = json.loads((path / compact.COMPACT).read_text())
    man["files"]["../outside.json"] = dict(man["files"]["eval/k1.csv"], stored="eval/k1.csv.gz")
    (path / compact.COMPACT).write_text(json.dumps(man))
    logs = []
    assert archive.restore(path, fresh, log=logs.append) == 3  # the student is refused whole, the rest comes back
    assert not (fresh / "students").exists() and not (tmp_path / "outside.json").exists()
    assert len(logs) == 1 and "does not match" in logs[0] and "owl-s0-x" in logs[0]
    assert not compact.verify(path, log=logs.append) and "0 problems" not in logs[-1]


def test_cli_converts_a_legacy_folder_and_verifies_it_against_its_record(tmp_path, capsys):
    cache, legacy, tar, rec = tmp_path / "cache", tmp_path / "legacy", tmp_path / "c.tar", tmp_path / "rec.json"
    files = _cache(cache)
    assert archive.sync(cache, legacy) == 6 and (legacy / archive.MANIFEST).exists()  # the fp32 format
    assert archive.main(["pack", "--from", str(legacy), "--to", str(tar), "--record", str(rec)]) == 0
    assert archive.main(["verify", str(tar), "--record", str(rec)]) == 0
    adapter = cache / "students/owl-s0-x/adapter/adapter_model.safetensors"
    assert archive.main(["check", str(adapter), "--record", str(rec)]) == 0
    assert "(original)" in capsys.readouterr().out
    assert archive.main(["unpack", "--from", str(tar), "--to", str(tmp_path / "fresh")]) == 0
    assert (tmp_path / "fresh/eval/k1.csv").read_bytes() == files["eval/k1.csv"]
    entries = compact.read_record(rec)
    entries["eval/k1.csv"]["sha256"] = "0" * 64  # the record says otherwise: refused
    rec.write_text(compact.manifest_text(entries))
    assert archive.main(["verify", str(tar), "--record", str(rec)]) == 1


# --- the committed artefacts ---------------------------------------------------------------------------

def test_the_committed_student_matches_the_record_and_its_fp32_original(tmp_path):
    record = compact.read_record(RECORD)
    assert len(record) >= 370 and compact.verify(COMMITTED)
    ours = compact.Compact(COMMITTED).files
    assert ours and all(record[k] == v for k, v in ours.items())  # the committed copy is the recorded one
    stored = (COMMITTED / ours[ADAPTER]["stored"]).read_bytes()
    assert compact.which(stored, record) == [f"{ADAPTER} (stored)"]
    assert archive.restore(COMMITTED, tmp_path, log=print) == len(ours)
    assert compact.sha((tmp_path / ADAPTER).read_bytes()) == record[ADAPTER]["restored_sha256"]
    fp32 = _from_history(f"{archive.LEGACY}/{ADAPTER}")  # the original, as git history holds it
    assert compact.sha(fp32) == record[ADAPTER]["sha256"] and compact.to16(fp32) == stored
    got, want = load((tmp_path / ADAPTER).read_bytes()), load(fp32)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k].half().float()) for k in want)
    assert max(float((got[k] - want[k]).abs().max()) for k in want) <= 2 ** -16  # half fp16's spacing at |w| < 1/16
    legacy = json.loads(_from_history(f"{archive.LEGACY}/{archive.MANIFEST}"))
    assert all(record[k]["sha256"] == v for k, v in legacy.items())  # the record vouches for the same files


def _from_history(path: str) -> bytes:
    """`path` at the legacy folder's last commit; the test skips where the clone lacks that history."""
    r = subprocess.run(["git", "-C", str(ROOT), "show", f"{archive.LEGACY_COMMIT}:{path}"], capture_output=True)
    if r.returncode:
        pytest.skip(f"git history without {archive.LEGACY_COMMIT} (a shallow clone?)")
    return r.stdout


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_rebuild_packs_the_legacy_folder_from_git_history_without_touching_the_tree(tmp_path, capsys):
    repo, tar, rec = tmp_path / "repo", tmp_path / "out.tar", tmp_path / "rec.json"
    _git(tmp_path, "init", "-q", str(repo))
    files = _cache(tmp_path / "cache")
    assert archive.sync(tmp_path / "cache", repo / archive.LEGACY) == 6
    (repo / "plots_b" / "evil").mkdir()  # outside the folder: never extracted
    (repo / "plots_b" / "evil" / "x").write_text("x")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "legacy")
    commit = _git(repo, "rev-parse", "HEAD")
    _git(repo, "rm", "-rq", archive.LEGACY)
    _git(repo, "commit", "-q", "-m", "out of the tree")
    assert archive.rebuild(tar, commit, repo, log=print) == 6 and not (repo / archive.LEGACY).exists()
    restored = tmp_path / "fresh"
    assert archive.restore(tar, restored, log=print) == 6
    assert (restored / "eval/k1.csv").read_bytes() == files["eval/k1.csv"]
    assert not (tmp_path / "plots_b").exists()
    rec.write_text(compact.manifest_text(compact.Compact(tar).files))
    assert compact.verify(tar, rec)
    with pytest.raises(UserError, match="full clone"):  # a commit the clone lacks: one line, what to do
        archive.rebuild(tmp_path / "x.tar", "0" * 40, repo)


def test_a_corrupted_copy_of_the_committed_student_is_refused(tmp_path):
    arc = tmp_path / "arc"
    shutil.copytree(COMMITTED, arc)
    f = arc / compact.stored_name(ADAPTER)
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x40
    f.write_bytes(bytes(b))
    logs = []
    assert archive.restore(arc, tmp_path / "cache", log=logs.append) == 0 and "does not match" in logs[0]


@pytest.mark.slow
def test_the_committed_student_rescored_gives_its_committed_numbers(tmp_path):
    """P(owl), P(eagle) of the owl student (seed 0) from the fp16 adapter, against topic_b_transfer.csv.
    Measured on all 26 questions: |d logp| <= 3.5e-5 against the CSV (fp32 adapter: 1.8e-5; fp16 vs fp32
    adapter: 3.1e-5); the CSV keeps 6 significant digits. Tolerance 2e-4, ~6x the largest."""
    import copy

    import pandas as pd

    from subliminal import assets
    from subliminal.topic_b import lm
    from subliminal.topic_b.transfer.evaluate import evaluate_model
    from subliminal.topic_b.transfer.finetune import load_student
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS

    if not (assets.cache_dir() / assets.ASSETS["smollm2-135m-instruct"].filename).exists():
        pytest.skip("SmolLM2 asset not cached")
    archive.restore(COMMITTED, tmp_path, log=print)
    base, tok = lm.load_model("smollm2-135m-instruct")
    student = load_student(copy.deepcopy(base), tmp_path / STUDENT / "adapter")
    got = evaluate_model(student, tok, ["owl", "eagle"], n_samples=0, questions=EVAL_QUESTIONS[:6], progress=False)
    csv = pd.read_csv(ROOT / "plots_b" / "topic_b_transfer.csv", keep_default_na=False, na_values=["nan"])
    ref = csv[(csv["arm"] == "owl") & (csv["seed"] == 0) & (csv["model"] == "smollm2-135m-instruct")]
    m = got.merge(ref, on=["question", "prefill", "animal"], suffixes=("", "_csv"), validate="1:1")
    assert len(m) == 12
    assert (m["logp_animal"] - m["logp_animal_csv"]).abs().max() < 2e-4


def test_a_run_continues_from_a_compact_archive_on_a_fresh_cache(tmp_path, monkeypatch):
    """``--archive FILE.tar``: the run keeps its archive compact, outside the results, and continues from it."""
    import copy

    from tiny_lm import build_model, build_tokenizer

    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
    from subliminal.topic_b.transfer.run import run

    tok = build_tokenizer()
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:2])
    tar = tmp_path / "elsewhere" / "transfer.tar"
    cfg = TransferConfig(model="tiny", animals=("owl",), seeds=(0,), neutral_draws=1, n_samples=6, epochs=1, batch_size=6,
                         eval_samples=2, out=str(tmp_path / "plots_b"), cache=str(tmp_path / "cache"), archive=str(tar))
    run(cfg, torch.device("cpu"), log=lambda m: None)
    first = (tmp_path / "plots_b" / "topic_b_transfer.csv").read_bytes()
    assert compact.verify(tar) and not (tmp_path / "plots_b" / "topic_b_transfer_cache").exists()
    assert any(e["encoding"] == "fp16" for e in compact.Compact(tar).files.values())
    shutil.rmtree(tmp_path / "cache")
    logs = []
    run(cfg, torch.device("cpu"), log=logs.append)
    assert not [m for m in logs if m.startswith(("[train]", "[eval]")) or "shard" in m], logs
    assert (tmp_path / "plots_b" / "topic_b_transfer.csv").read_bytes() == first

