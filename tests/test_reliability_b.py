"""Topic B scripts refuse bad input before any work, with one line and exit 2; result tables keep
numbers as written; a run's files are replaced together. Tiny random Llama, no download."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tiny_lm import build_model, build_tokenizer

import topic_b_data_frequency
import topic_b_part1
import topic_b_part2
import topic_b_part3
import topic_b_step3_base_vs_instruct
from subliminal.cli import UserError, cli_main
from subliminal.topic_b.script_setup import animal_notes, check_numbers
from subliminal.topic_b.tables import read_table, upsert

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_llama")
    tok = build_tokenizer("split")
    build_model(tok).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _exit2(capsys, script, argv):
    """Run the script's CLI in-process; return its one stderr line (it must exit 2)."""
    def must_not_run(_cfg):
        raise AssertionError("main ran although the arguments are bad")

    with pytest.raises(SystemExit) as e:
        cli_main(must_not_run, script.Config, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize("numbers", [["abc"], ["1000"], ["-1"], ["0087"], ["7.5"], [""], ["087", "087"], ["٣"]])
def test_part2_refuses_bad_numbers(capsys, numbers):
    err = _exit2(capsys, topic_b_part2, ["--numbers", *numbers])
    assert "--numbers" in err


@pytest.mark.parametrize("script,argv,says", [
    (topic_b_part2, ["--animals", ""], "--animals"),
    (topic_b_part2, ["--animals", "owl", "owl"], "twice"),
    (topic_b_part2, ["--animals", "owl3"], "not an animal name"),
    (topic_b_part2, ["--top-k", "0"], "--top-k"),
    (topic_b_part2, ["--n-random", "2000"], "--n-random"),
    (topic_b_part2, ["--device", "tpu"], "unknown device"),
    (topic_b_part1, ["--animal", ""], "--animal"),
    (topic_b_part1, ["--questions", "weather"], "--questions"),
    (topic_b_part1, ["--max-digits", "4"], "--max-digits"),
    (topic_b_part3, ["--quick", "--n-random", "111"], "--n-random"),  # quick: 110 numbers of <= 2 digits
    (topic_b_part3, ["--animals", " owl"], "not an animal name"),
    (topic_b_step3_base_vs_instruct, ["--entangled-animals", ""], "--entangled-animals"),
    (topic_b_step3_base_vs_instruct, ["--model-a", ""], "--model-a"),
    (topic_b_data_frequency, ["--animals", ""], "--animals"),
    (topic_b_data_frequency, ["--alpha", "0"], "--alpha"),
    (topic_b_data_frequency, ["--thresholds", "1.5"], "--thresholds"),
])
def test_bad_arguments_are_one_line_exit_2(capsys, script, argv, says):
    assert says in _exit2(capsys, script, argv)


def test_numbers_as_written_are_accepted():
    assert check_numbers(("0", "07", "087", "999")) == ("0", "07", "087", "999")


def test_out_on_a_file_fails_before_the_model_is_loaded(tmp_path):
    f = tmp_path / "results"
    f.write_text("not a folder")
    # the model does not exist either: the --out error must come first (no model load, no work)
    p = subprocess.run([sys.executable, "topic_b_part1.py", "--model", str(tmp_path / "missing.gguf"),
                        "--out", str(f)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "is a file, not a folder" in p.stderr and "Traceback" not in p.stderr
    assert f.read_text() == "not a folder"


def test_fake_gguf_via_script_is_one_line(tmp_path, scratch_cache):
    g = tmp_path / "model.gguf"
    g.write_bytes(b"GGUF" + b"\x00" * 20)
    p = subprocess.run([sys.executable, "topic_b_part2.py", "--model", str(g), "--numbers", "7",
                        "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "cannot be read as a GGUF model" in p.stderr and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0


def test_multi_token_and_unknown_animals_get_a_note():
    tok = build_tokenizer("split")
    notes = animal_notes(tok, ["owl", "zebra"])
    assert any("zebra not in the 25-animal list" in n for n in notes)
    pieces = {a: len(tok(" " + a, add_special_tokens=False)["input_ids"]) for a in ("owl", "zebra")}
    assert sum("tokens for this model" in n for n in notes) == sum(v > 1 for v in pieces.values())
    assert pieces["zebra"] > 1  # not in the tiny tokenizer's corpus: split into pieces, so noted


def test_read_table_keeps_numbers_as_written(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("model,number,best_number,entangled_numbers,p\nm,087,007,087,0.5\n")
    t = read_table(p)
    assert t["number"].tolist() == ["087"] and t["best_number"].tolist() == ["007"]
    assert t["entangled_numbers"].tolist() == ["087"] and t["p"].tolist() == [0.5]


def test_upsert_replaces_one_models_rows_and_keeps_the_rest_byte_for_byte(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("model,number,n,p\na,087,1234567,0.123457\nb,7,1,1e-14\na,02,3,\n")
    upsert(pd.DataFrame({"model": ["b", "b"], "number": ["087", "9"], "n": [2, 3], "p": [0.25, 1 / 3]}), p)
    assert p.read_text() == "model,number,n,p\na,087,1234567,0.123457\na,02,3,\nb,087,2,0.25\nb,9,3,0.333333\n"
    q = tmp_path / "k.csv"  # two keys: only the (model, animal) pairs of the new rows go
    q.write_text("model,animal,x\nm,owl,1\nm,eagle,2\n")
    upsert(pd.DataFrame({"model": ["m"], "animal": ["owl"], "x": [5]}), q, ("model", "animal"))
    assert q.read_text() == "model,animal,x\nm,eagle,2\nm,owl,5\n"


def test_upsert_of_new_rows_matches_write_csv(tmp_path):
    from subliminal.results import write_csv

    df = pd.DataFrame({"model": ["m/x", "m,y"], "number": ["087", "1"], "p": [1 / 7, float("nan")],
                       "ok": [True, False], "s": ['say "hi"', ""]})
    upsert(df, tmp_path / "a.csv")
    write_csv(df, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize("content", ["animal,p\nowl,1\n", "", "model,p\n\"unterminated,1\n"])
def test_malformed_results_csv_is_one_line(tmp_path, content):
    p = tmp_path / "t.csv"
    p.write_text(content)
    with pytest.raises(UserError) as e:
        upsert(pd.DataFrame({"model": ["m"], "p": [1]}), p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)
    assert p.read_text() == content


def test_part2_end_to_end_with_a_malformed_previous_csv(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--model", model_dir, "--numbers", "087", "7", "--animals", "owl", "eagle", "--out", str(out)]
    cli_main(topic_b_part2.main, topic_b_part2.Config, argv)
    t = read_table(out / "topic_b_part2.csv")
    assert sorted(set(t["number"])) == ["087", "7"] and len(t) == 4
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "topic_b_part2_summary.csv").write_text("animal,x\nowl,1\n")  # not a part-2 table
    files["topic_b_part2_summary.csv"] = b"animal,x\nowl,1\n"
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli_main(topic_b_part2.main, topic_b_part2.Config, argv)
    err = capsys.readouterr().err
    # refused before the model was loaded (no progress bar) and before any work
    assert e.value.code == 2 and "lacks column(s) model" in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # the failed run changed nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_part2_search_and_redraw_replace_figures_together(model_dir, tmp_path):
    from subliminal.topic_b.plots import redraw_all

    out = tmp_path / "out"
    cli_main(topic_b_part2.main, topic_b_part2.Config,
             ["--model", model_dir, "--animals", "owl", "eagle", "--top-k", "2", "--n-random", "5", "--out", str(out)])
    png = next(out.glob("topic_b_part2__*.png"))
    png.write_bytes(b"stale")
    assert redraw_all(out) == [png]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---- the transfer experiment (topic_b_transfer.py): flags, caches, temporary folders

def _transfer_exit2(capsys, argv):
    from subliminal.topic_b.transfer.config import TransferConfig

    def must_not_run(_cfg):
        raise AssertionError("main ran although the arguments are bad")

    with pytest.raises(SystemExit) as e:
        cli_main(must_not_run, TransferConfig, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize("argv,says", [
    (["--seeds", "0", "0"], "--seeds lists a seed twice"),
    (["--seeds", "0", "1", "0"], "--seeds lists a seed twice"),
    (["--animals", "owl", "eagle", "owl"], "--animals lists an animal twice"),
    (["--seed", "99999999999999999999999"], "--seed must be between 0 and 4294967295"),
    (["--seed", "-1"], "--seed must be between"),
    (["--seeds", "0", "4294967296"], "--seeds must be between"),
    (["--threads", "0"], "--threads must be between 1"),
    (["--batch-size", "0"], "--batch-size must be between 1"),
    (["--eval-samples", "0"], "--eval-samples must be between 1"),
    (["--n-samples", "100000000000"], "--n-samples must be between"),
    (["--batch-size", "99999"], "memory"),  # ~1 TiB of logits for one batch
    (["--device", "cudafoo"], "unknown device"),
    (["--device", "cuda:x"], "unknown device"),
    (["--cross-model", "nosuch"], "--cross-model: unknown model"),
    (["--model", "missing.gguf"], "does not exist"),
])
def test_transfer_refuses_bad_flags_before_any_work(capsys, argv, says):
    assert says in _transfer_exit2(capsys, argv)


@pytest.mark.parametrize("script,argv,says", [
    ("topic_b_part2", ["--seed", "99999999999999999999999"], "--seed must be between 0 and 4294967295"),
    ("topic_b_part3", ["--seed", "-1"], "--seed must be between"),
    ("topic_b_data_frequency", ["--seed", "4294967296"], "--seed must be between"),
    ("topic_b_data_frequency", ["--null-draws", "1000000000000"], "--null-draws must be between"),
    ("topic_b_data_frequency", ["--batch-size", "0"], "--batch-size must be between 1"),
    ("topic_b_data_frequency", ["--n-samples", "100000000000"], "--n-samples must be between"),
    ("topic_b_step2_extended", ["--seed", "99999999999999999999999"], "--seed must be between"),
    ("topic_b_across_models", ["--null-draws", "1000000000000"], "--null-draws must be between"),
    ("topic_b_across_models", ["--models", "gemma-3-270m", "gemma-3-270m"], "--models lists a model twice"),
])
def test_topic_b_seeds_sizes_and_sets_have_ranges(capsys, script, argv, says):
    import importlib

    assert says in _exit2(capsys, importlib.import_module(script), argv)


def test_an_unreachable_hub_id_fails_in_one_line_within_seconds(tmp_path, monkeypatch, capsys):
    import time

    import subliminal.topic_b.lm as lm

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty local Hugging Face cache
    monkeypatch.setattr(lm, "_hub_reachable", lambda timeout=3.0: False)
    assert "--cross-model nosuch/model: not in the local Hugging Face cache" in \
        _transfer_exit2(capsys, ["--cross-model", "nosuch/model"])
    t0 = time.time()
    with pytest.raises(UserError, match="cannot be loaded offline"):
        lm.load_model("nosuch/model")
    assert time.time() - t0 < 10  # no half minute of "Retrying..."


@pytest.fixture
def tiny_transfer(tmp_path, monkeypatch):
    """cfg for a whole transfer run on a tiny random Llama in seconds (1 owl seed, 6 samples, 1 question)."""
    import copy

    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS

    tok = build_tokenizer("split")
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:1])
    return TransferConfig(model="tiny", animals=("owl",), seeds=(0,), n_samples=6, epochs=1, batch_size=6,
                          eval_samples=1, neutral_draws=1, out=str(tmp_path / "o"), cache=str(tmp_path / "c"))


def test_a_tampered_eval_cache_is_recomputed_and_never_kept_on_record(tiny_transfer, tmp_path):
    """One edited number in an evaluation cache once turned a verdict around and was copied into the
    checksummed archive: now it is recomputed (one line) and the run's records keep the true table."""
    import torch

    from subliminal import carry
    from subliminal.topic_b.transfer import carried
    from subliminal.topic_b.transfer.run import run

    run(tiny_transfer, torch.device("cpu"), log=lambda m: None)
    out, recs = tmp_path / "o", carried.records(tiny_transfer)
    before = {f: (out / f).read_bytes() for f in ("topic_b_transfer.csv", "topic_b_transfer_summary.csv")}
    tables = {b["unit"]: b["csv"] for _, b in carry.kept(recs / "eval")}
    rows = pd.read_csv(out / "topic_b_transfer.csv")
    owl = rows[(rows.arm == "owl") & (rows.animal == "owl")].p_animal.iloc[0]
    edited = []
    for f in sorted((tmp_path / "c" / "eval").glob("*.csv")):
        text = f.read_text()
        # the cached table may spell the number otherwise than the output CSV (0.000123 vs 1.23e-04): match the
        # value, not its spelling
        hit = next((m for m in re.finditer(r"[-+]?\d[\d.]*(?:e[-+]?\d+)?", text)
                    if float(f"{float(m.group()):.6g}") == float(f"{owl:.6g}")), None)
        if hit is not None and not edited:
            f.write_text(text[:hit.start()] + "0.9" + text[hit.end():])
            edited.append(f)
    assert edited
    logs = []
    run(tiny_transfer, torch.device("cpu"), log=logs.append)
    assert {f: (out / f).read_bytes() for f in before} == before  # the verdict is the true one
    assert sum("[cache]" in m and edited[0].name in m for m in logs) == 1, logs
    assert {b["unit"]: b["csv"] for _, b in carry.kept(recs / "eval")} == tables  # the record keeps the true table


def test_duplicated_seeds_never_reach_a_run(capsys):
    """`--seeds 0 0` once evaluated every student twice on a rerun and quadrupled the paired test's n."""
    err = _transfer_exit2(capsys, ["--quick", "--seeds", "0", "0"])
    assert "twice" in err


def _tiny_dequant(monkeypatch, lm, fail_tokenizer_save=None):
    tok = build_tokenizer("split")
    model = build_model(tok)
    if fail_tokenizer_save is not None:
        def boom(*a, **k):
            raise fail_tokenizer_save
        monkeypatch.setattr(tok, "save_pretrained", boom)
    monkeypatch.setattr(lm, "_dequantise", lambda gguf: (model, tok))


def test_a_stopped_dequantisation_leaves_no_folder_and_a_killed_ones_are_cleaned(scratch_cache, tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm

    sha, dq = "ab" * 32, scratch_cache / "dequant"
    _tiny_dequant(monkeypatch, lm, KeyboardInterrupt())  # Ctrl-C after the weights were written
    with pytest.raises(KeyboardInterrupt):
        lm._load_gguf(tmp_path / "m.gguf", "m", "cpu", sha=sha)
    assert list(dq.iterdir()) == []
    # kill -9 leaves its folder (this layout and the one before it); the next start removes it
    for stale in (dq / f".{sha}.999999999.tmp", dq / f"{sha}.tmp999999999"):
        stale.mkdir()
        (stale / "model.safetensors").write_bytes(b"\0" * 1000)
    alive = dq / f".{sha}.{os.getppid()}.tmp"  # a rebuild still running (its process alive) is left alone
    alive.mkdir()
    _tiny_dequant(monkeypatch, lm)
    model, tok = lm._load_gguf(tmp_path / "m.gguf", "m", "cpu", sha=sha)
    assert sorted(p.name for p in dq.iterdir()) == sorted([sha, alive.name])
    assert lm._cache_problem(dq / sha, sha) is None and model.name_or_spec == "m"


def test_a_full_disk_during_dequantisation_is_one_line_naming_the_folder(scratch_cache, tmp_path, monkeypatch):
    import collections

    import subliminal.topic_b.lm as lm

    _tiny_dequant(monkeypatch, lm)
    usage, real = collections.namedtuple("usage", "total used free"), lm.shutil.disk_usage
    monkeypatch.setattr(lm.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**5, 10**5))
    with pytest.raises(UserError) as e:
        lm._load_gguf(tmp_path / "m.gguf", "m", "cpu", sha="cd" * 32)
    msg = str(e.value)
    assert "\n" not in msg and str(scratch_cache / "dequant") in msg and "MiB" in msg and "free" in msg
    assert list((scratch_cache / "dequant").iterdir()) == []
    monkeypatch.setattr(lm.shutil, "disk_usage", real)  # the space is there, but the write fails (another writer)
    _tiny_dequant(monkeypatch, lm, OSError(28, "No space left on device"))
    with pytest.raises(UserError, match="No space left on device") as e:
        lm._load_gguf(tmp_path / "m.gguf", "m", "cpu", sha="cd" * 32)
    assert str(scratch_cache / "dequant") in str(e.value) and list((scratch_cache / "dequant").iterdir()) == []


def test_a_killed_runs_staging_folder_is_ignored_by_git_and_removed_at_the_next_start(tmp_path):
    import time

    from subliminal.results import OutputSet, write_csv

    out = tmp_path / "out"
    with OutputSet(out) as o:
        staging = o.staging
        write_csv(pd.DataFrame({"a": [1]}), o.path("a.csv"))
        assert staging.parent == tmp_path and staging.name.endswith(".tmp")
        ignored = subprocess.run(["git", "check-ignore", "-q", f"plots_b/{staging.name}/a.csv"], cwd=ROOT)
        assert ignored.returncode == 0  # a kill here leaves nothing `git status` shows
    # what kill -9 leaves: a staging folder of a dead process, and one from before they carried a PID
    dead = tmp_path / ".out.staging-999999999-abcd1234.tmp"
    old = tmp_path / ".out.staging-k2j3h4g5"
    alive = tmp_path / f".out.staging-{os.getppid()}-zzzz1234.tmp"  # another run, still going
    other = tmp_path / ".other.staging-999999999-abcd1234.tmp"  # another output folder's
    for d in (dead, old, alive, other):
        (d / "x.csv").parent.mkdir(parents=True)
        (d / "x.csv").write_text("half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    with OutputSet(out) as o:
        write_csv(pd.DataFrame({"a": [2]}), o.path("a.csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", alive.name, other.name])
    assert (out / "a.csv").read_text() == "a\n2\n"


@pytest.mark.parametrize("script", ["topic_b_transfer.py", "topic_b_part2.py"])
def test_ctrl_c_during_the_imports_is_the_one_line_message(tmp_path, script):
    import signal
    import time

    env = {**os.environ, "SUBLIMINAL_CACHE": str(tmp_path / "cache")}
    for delay in (0.2, 0.7):  # torch, transformers and pandas take a second or two to import
        p = subprocess.Popen([sys.executable, script, "--out", str(tmp_path / "out")], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 130 and err.startswith("interrupted: ") and err.count("\n") == 1, (delay, err)
