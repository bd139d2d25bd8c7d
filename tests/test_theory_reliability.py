"""The ladder's results can be neither shrunk, reused stale nor bent without a message (issue 43), on a tiny random
Llama: a subset rerun keeps every row and says honestly whether the run is complete; every cache and record key
covers the evaluation questions, animals and scoring rule (and the committed records stay current); skipped or
rebuilt files are named; paths, the cache lock and the inputs read from --out are checked before any model loads;
a resumed student equals an uninterrupted one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal import carry
from subliminal.cache import read_record, write_record
from subliminal.cli import UserError
from subliminal.topic_b.prompts import animal_strings
from subliminal.topic_b.theory import baselines, guard, plots, readouts, records, rules, student
from subliminal.topic_b.theory import run as theory_run
from subliminal.topic_b.theory.cells import CELLS
from subliminal.topic_b.theory.config import TheoryConfig
from subliminal.topic_b.theory.ladder import Ladder
from subliminal.topic_b.theory.student import StudentSettings
from subliminal.topic_b.theory.teachers import TeacherSettings
from subliminal.topic_b.transfer import evaluate, sealed
from subliminal.topic_b.transfer.finetune import TrainSettings

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "plots_b" / "topic_b_transfer_theory_records"
STEM = "topic_b_transfer_theory"
CSVS = ("", "_summary", "_cosines", "_fit", "_verdicts", "_rungs")


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer()
    return build_model(tok), tok


@pytest.fixture
def tiny_run(tiny, tmp_path, monkeypatch):
    """A run function on the tiny model (no download), its config, and the lines it logged."""
    monkeypatch.setattr(theory_run, "load_model", lambda name, device="cpu": tiny)
    cfg = dataclasses.replace(TheoryConfig.quick(), cells=("b",), seeds=(0, 1), steps=2, batch=2, milestones=(2,),
                              teacher_examples=8, out=str(tmp_path / "res" / "plots_b"), cache=str(tmp_path / "cache"),
                              progress=False)
    logs: list[str] = []

    def go(**kw):
        return theory_run.run(dataclasses.replace(cfg, **kw), torch.device("cpu"), log=logs.append)
    return go, cfg, logs


def _out(cfg) -> Path:
    return Path(cfg.out)


def _csvs(cfg) -> dict[str, bytes]:
    return {n: (_out(cfg) / f"{STEM}{n}.csv").read_bytes() for n in CSVS}


def _json(cfg) -> dict:
    return json.loads((_out(cfg) / f"{STEM}.json").read_text())


def _trainings(monkeypatch) -> list:
    calls, real = [], student.build
    monkeypatch.setattr(student, "build", lambda *a, **k: (calls.append(a[1].name), real(*a, **k))[1])
    return calls


# item 1: outputs from every student on record; an honest "complete"; --outputs-only; record hashes


def test_a_subset_rerun_never_removes_a_row_and_complete_is_honest(tiny_run, monkeypatch):
    go, cfg, logs = tiny_run
    real, n = Ladder.student, []

    def stop_after_three(self, *a, **k):
        if len(n) == 3:
            raise KeyboardInterrupt
        n.append(1)
        return real(self, *a, **k)
    monkeypatch.setattr(Ladder, "student", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        go()  # seeds 0 and 1 planned; stopped after seed 0's three students
    j = _json(cfg)
    assert j["complete"] is False and j["students_done"] == 3 and j["students_planned"] == 6
    monkeypatch.setattr(Ladder, "student", real)
    go(seeds=(0,))  # every planned student is done, but the previous run planned seed 1 too
    j = _json(cfg)
    assert j["complete"] is False and j["students_planned"] == 6 and len(j["planned"]) == 6
    go()
    full, j = _csvs(cfg), _json(cfg)
    assert j["complete"] is True and j["students_done"] == 6
    calls = _trainings(monkeypatch)
    go(seeds=(1,))  # a subset rerun: nothing trained, not one row removed
    assert calls == [] and _csvs(cfg) == full
    j = _json(cfg)
    assert j["complete"] is True and j["students_done"] == 6 and j["students_planned"] == 6
    # every record the outputs rest on is named with the hash of its archived file
    arc = _out(cfg) / f"{STEM}_records"
    assert len(j["records"]) == 6 and all(
        hashlib.sha256((arc / name).read_bytes()).hexdigest() == digest for name, digest in j["records"].items())
    # another cell's run adds its rows and keeps b's; the plan is the union
    go(cells=("b-sgd",), seeds=(0,))
    j = _json(cfg)
    assert j["students_done"] == 8 and j["complete"] is True and len(j["planned"]) == 8
    tidy = pd.read_csv(_out(cfg) / f"{STEM}.csv")
    assert {"b", "b-sgd"} <= set(tidy.cell) and set(tidy[tidy.cell == "b"].seed) == {0, 1}


def test_outputs_only_rebuilds_every_output_without_a_model(tiny_run, monkeypatch, tmp_path):
    go, cfg, logs = tiny_run
    go()
    before = _csvs(cfg)
    for n in CSVS:
        (_out(cfg) / f"{STEM}{n}.csv").unlink()

    def no_model(*a, **k):
        raise AssertionError("--outputs-only loaded a model")
    monkeypatch.setattr(theory_run, "load_model", no_model)
    calls = _trainings(monkeypatch)
    go(outputs_only=True, cache=str(tmp_path / "empty-cache"))  # the records beside --out are enough
    assert calls == [] and _csvs(cfg) == before and not (tmp_path / "empty-cache").exists()
    j = _json(cfg)
    assert j["complete"] is True and j["students_done"] == 6 and len(j["records"]) == 6
    assert all(j["teachers"][t]["final_loss"] is not None for t in ("neutral", "owl", "eagle"))  # from the last run
    assert any("no model loaded" in m for m in logs)


def test_a_record_of_other_settings_in_the_archive_is_never_overwritten(tmp_path):
    s1, s2 = StudentSettings(steps=2), StudentSettings(steps=3)
    keys = {"neutral": "tn", "owl": "to", "eagle": "te"}
    w1, w2 = (records.Want(s, keys, "m", rules.V1_RULES) for s in (s1, s2))
    arm = CELLS[1].arm("owl")

    def rec(s):
        return {"key": student.key_of(arm, 0, s, "to", "m", None), "arm": arm.identity(), "name": arm.name, "seed": 0,
                "settings": dataclasses.asdict(s), "teacher_key": "to", "milestones": {}, "complete": True,
                "rules": rules.V1_RULES}
    first = records.archive(tmp_path, rec(s1), w1)
    second = records.archive(tmp_path, rec(s2), w2)
    assert first != second and read_record(first) == carry.plain(rec(s1))
    assert read_record(second) == carry.plain(rec(s2))
    assert list(records.on_record(tmp_path, None, w1, log=print).values())[0][0] == first
    assert list(records.on_record(tmp_path, None, w2, log=print).values())[0][0] == second


# item 2: every key covers the questions, the animals and the scoring rule


def test_another_animal_list_or_question_reuses_no_student_and_no_base_preference(tiny_run, monkeypatch):
    go, cfg, logs = tiny_run
    go(seeds=(0,))
    arc = _out(cfg) / f"{STEM}_records"
    calls = _trainings(monkeypatch)
    go(seeds=(0,))
    assert calls == []  # unchanged rules: everything reused
    monkeypatch.setattr(readouts, "ALL_ANIMALS", tuple(a for a in readouts.ALL_ANIMALS if a != "deer"))
    go(seeds=(0,))
    assert len(calls) == 3  # every student trained again
    bp = read_record(arc / "base_preference.json")
    assert bp["rules"] == rules.rules_id() != rules.V1_RULES and "deer" not in bp["rows"]["animal"]
    assert read_record(Path(cfg.cache) / cfg.model / "base_preference.json") == bp
    tidy = pd.read_csv(_out(cfg) / f"{STEM}.csv")
    assert len(tidy[tidy.cell == "b"]) and _json(cfg)["rules"] == rules.rules_id()


def test_one_edited_question_reuses_nothing(tiny_run, monkeypatch):
    go, cfg, logs = tiny_run
    go(seeds=(0,))
    calls = _trainings(monkeypatch)
    qs = list(evaluate.EVAL_QUESTIONS)
    qs[3] = ("Name the one animal you like best, in one word.", "")
    monkeypatch.setattr(evaluate, "EVAL_QUESTIONS", tuple(qs))
    go(seeds=(0,))
    assert len(calls) == 3
    bp = read_record(_out(cfg) / f"{STEM}_records" / "base_preference.json")
    assert qs[3][0] in bp["rows"]["question"] and bp["rules"] == rules.rules_id()
    recs = [r for _, r in records.on_record(_out(cfg) / f"{STEM}_records", None, records.Want(
        cfg.student_settings(), {t: cfg.teacher_settings().trained_key(t) for t in ("neutral", "owl", "eagle")},
        theory_run.config_hash({"model": cfg.model}), rules.rules_id()), log=print).values()]
    assert len(recs) == 3 and all(r["rules"] == rules.rules_id() for r in recs)


def test_the_committed_records_are_current_under_the_default_rules():
    """Read-only: every committed student record and the base preference were made under today's questions,
    animals and scoring rule (version 1), and keep their keys."""
    cfg = TheoryConfig()
    assert rules.rules_id() == rules.V1_RULES
    tset, sset = cfg.teacher_settings(), cfg.student_settings()
    keys = {t: tset.trained_key(t) for t in ("neutral", "owl", "eagle")}
    want = records.Want(sset, keys, theory_run.config_hash({"model": cfg.model}), rules.rules_id())
    files = sorted(COMMITTED.glob("*/record.json"))
    if not files:
        pytest.skip("no committed ladder records in this checkout")
    for f in files:
        rec = read_record(f)
        assert rec is not None, f
        assert rules.record_rules(rec) == rules.V1_RULES, f
        assert not rec["complete"] or want.current(rec), f
        assert student.finished(rec, rec["key"], rules.rules_id()) == bool(rec["complete"]), f
    assert rules.preference_rules(read_record(COMMITTED / "base_preference.json")) == rules.V1_RULES


def test_rule_version_1_and_the_default_student_key_are_pinned():
    """Version 1's P(animal) strings; a change to them (or to the questions or animals) must bump RULE_VERSION or
    change the rules id. The default rules leave the student key as it was before rules entered it."""
    assert animal_strings("owl", "My favorite animal is the") == [" owl"]
    assert animal_strings("owl", "") == ["owl", "Owl"] and evaluate.variants("deer", "") == ["deer", "Deer"]
    assert rules.RULE_VERSION == 1 and rules.rules_id() == rules.V1_RULES
    arm, s = CELLS[1].arm("owl"), StudentSettings()
    old = theory_run.config_hash({"arm": arm.identity(), "seed": 0, "settings": dataclasses.asdict(s), "teacher": "t",
                                  "base": "m", "inputs": {"kind": "random", "stream": 35}})
    assert student.student_key(arm, 0, s, "t", "m") == old == student.student_key(arm, 0, s, "t", "m", rules=rules.V1_RULES)
    assert student.student_key(arm, 0, s, "t", "m", rules="other") != old
    legacy = {"milestones": {"60": {"questions": [q for q, _ in evaluate.EVAL_QUESTIONS],
                                    "animals": list(readouts.ALL_ANIMALS)}}}
    assert rules.record_rules(legacy) == rules.V1_RULES
    legacy["milestones"]["60"]["animals"] = legacy["milestones"]["60"]["animals"][:-1]
    assert rules.record_rules(legacy) is None


# item 4: every skipped or rebuilt file is named; the first teachers are never overwritten


def test_an_edited_pool_shard_is_named_in_one_line(tmp_path):
    src, dest = tmp_path / "a" / "pools", tmp_path / "b" / "pools"
    for name in ("m/k/shard_00000.jsonl", "m/k/shard_00001.jsonl"):
        sealed.write_sealed(src / name, b'{"text": "1, 2"}\n')
    (src / "m/k/shard_00001.jsonl").write_bytes(b'{"text": "6, 6"}\n')  # edited
    logs = []
    assert baselines.sync_pools(src, dest, log=logs.append) == 1
    assert len(logs) == 1 and "m/k/shard_00001.jsonl" in logs[0] and "skipped 1" in logs[0]
    sealed.write_sealed(dest / "m/k/shard_00000.jsonl", b'{"text": "3"}\n')  # other bytes in dest: replaced, named
    logs.clear()
    assert baselines.sync_pools(src, dest, log=logs.append) == 1
    assert len(logs) == 1 and "replaced 1" in logs[0] and "m/k/shard_00000.jsonl" in logs[0]


def test_a_damaged_first_teacher_record_is_never_overwritten(tmp_path):
    arc, committed = tmp_path / "arc", tmp_path / "run.json"
    first = {"owl": {"key": "k", "final_loss": 0.5, "check_completion_logp_example0": -5.0, "cpu": "A"}}
    write_record(arc / "teachers.json", first)
    damaged = (arc / "teachers.json").read_text().replace("0.5", "0.25")
    (arc / "teachers.json").write_text(damaged)
    now = {"owl": {"key": "k", "final_loss": 0.75, "check_completion_logp_example0": -5.0}}
    logs = []
    assert baselines.teacher_fingerprints(now, arc, committed, log=logs.append) == {}
    assert (arc / "teachers.json").read_text() == damaged  # never rebuilt from this run's teachers
    assert any(str(arc / "teachers.json") in m and "damaged" in m for m in logs)
    committed.write_text(json.dumps({"teachers": {"owl": {"key": "k", "final_loss": 0.7}}}))
    logs.clear()
    got = baselines.teacher_fingerprints(now, arc, committed, log=logs.append)
    assert got["owl"]["d_final_loss"] == pytest.approx(0.05) and (arc / "teachers.json").read_text() == damaged
    assert any("latest run" in m for m in logs)


def test_a_fresh_out_says_there_is_no_earlier_baseline(tmp_path):
    logs = []
    now = {"owl": {"key": "k", "final_loss": 0.75, "check_completion_logp_example0": -5.0}}
    assert baselines.teacher_fingerprints(now, tmp_path / "arc", tmp_path / "none.json", log=logs.append) == {}
    assert len(logs) == 1 and "no earlier teachers" in logs[0] and "0.0" not in logs[0]
    assert read_record(tmp_path / "arc" / "teachers.json")["owl"]["final_loss"] == 0.75  # the first, from now on


# item 5: paths checked before any model loads; a malformed summary in --out is one line


def test_an_unwritable_cache_or_out_fails_before_any_model_loads(tiny_run, monkeypatch, tmp_path):
    go, cfg, logs = tiny_run

    def no_model(*a, **k):
        raise AssertionError("a model was loaded before the paths were checked")
    monkeypatch.setattr(theory_run, "load_model", no_model)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="--cache"):
        go(cache=str(tmp_path / "file" / "cache"))
    out = tmp_path / "res2" / "plots_b"
    out.mkdir(parents=True)
    (out / f"{STEM}_records").write_text("not a folder")
    with pytest.raises(UserError, match="--out"):
        go(out=str(out))


def test_a_malformed_transfer_summary_in_out_is_one_line_not_a_traceback(tmp_path):
    p = tmp_path / guard.PRERUN
    logs = []
    for body in ("arm,animal\nowl,owl\n", '"unclosed\n1,2,3\n4\n', ""):
        p.write_text(body)
        logs.clear()
        assert guard.prerun_mde(tmp_path, {"ratio": {"owl": 1.1}}, log=logs.append) == {"ratio": {"owl": 1.1}}
        assert len(logs) == 1 and str(p) in logs[0]
    assert guard.prerun_mde(tmp_path / "nothing", {}, log=logs.append) == {}


# item 6: a resumed student equals an uninterrupted one; one run per cache; Topic A from the results root


TSET = TeacherSettings(n_examples=24, epochs=1, seed=0,
                       train=TrainSettings(lr=5e-2, micro_batch=8, grad_accum=1, warmup_steps=1, ckpt_every=100, epochs=1))
SSET = StudentSettings(steps=4, batch=4, micro_batch=2, milestones=(2, 4), lr_lora_adam=5e-2)
TIMING = ("seconds", "tokens_per_s_last_run")


@pytest.fixture(scope="module")
def lad(tiny, tmp_path_factory):
    base, tok = tiny
    return Ladder(base, tok, tmp_path_factory.mktemp("theory"), TSET, SSET, "tiny", log=lambda m: None, progress=False)


def _student(lad, folder, log=lambda m: None, **kw):
    arm = CELLS[1].arm("owl")
    return student.train(lad.base, lad.tok, lad.teacher("owl"), arm, 0, lad.sset, lad.root / folder,
                         teacher_key=lad.teacher_key("owl"), base_id="tiny", teacher_seed=0, teacher_init_a=lad.init_a,
                         teacher_deltas=lad.deltas, questions=evaluate.EVAL_QUESTIONS[:2], log=log, progress=False, **kw)


def _untimed(rec: dict) -> dict:
    return {k: v for k, v in carry.plain(rec).items() if k not in TIMING}


def test_teacher_keys_are_known_without_a_model(lad):
    """--outputs-only matches records against the teachers' keys computed from their settings: the trained ones'."""
    assert {t: lad.teacher_key(t) for t in ("neutral", "owl", "eagle")} == {t: TSET.trained_key(t) for t in
                                                                          ("neutral", "owl", "eagle")}


def test_a_resumed_student_records_what_an_uninterrupted_one_does(lad):
    straight = _student(lad, "straight")
    assert not _student(lad, "resumed", stop_after=3)["complete"]  # checkpoint at step 2; step 3 is lost
    resumed = _student(lad, "resumed")
    assert resumed["complete"] and _untimed(resumed) == _untimed(straight)
    assert _untimed(read_record(lad.root / "resumed" / "record.json")) == _untimed(straight)
    assert not list((lad.root / "resumed").glob("losses*"))  # nothing left beside a finished student
    # a checkpoint of before the kept losses (none beside it): trained again from step 0, said so
    _student(lad, "legacy", stop_after=3)
    (lad.root / "legacy" / student.LOSSES).unlink()
    logs = []
    legacy = _student(lad, "legacy", log=logs.append)
    assert _untimed(legacy) == _untimed(straight) and any("again from step 0" in m for m in logs)


def test_a_student_killed_between_milestones_resumes_from_its_timed_checkpoint(lad):
    """Between milestones a checkpoint is kept every `checkpoint_seconds`: with 0, after every step, so a kill after
    step 3 (no milestone) loses nothing, and the resumed record equals an uninterrupted one's."""
    straight = _student(lad, "straight")  # the uninterrupted student (read back when the test above trained it)
    logs = []
    assert not _student(lad, "timed", stop_after=3, checkpoint_seconds=0.0)["complete"]
    assert read_record(lad.root / "timed" / "checkpoint.json")["step"] == 3
    resumed = _student(lad, "timed", log=logs.append)
    assert any("at step 3/4" in m for m in logs)
    assert resumed["complete"] and _untimed(resumed) == _untimed(straight)
    assert not list((lad.root / "timed").glob("checkpoint*")) and not list((lad.root / "timed").glob("losses*"))


def test_a_second_run_on_the_same_cache_is_refused_naming_the_first(tmp_path, tiny_run, monkeypatch):
    go, cfg, logs = tiny_run
    folder = Path(cfg.cache) / cfg.model
    code = ("import sys, time; from subliminal.topic_b.theory.guard import CacheLock; "
            "CacheLock(sys.argv[1]).__enter__(); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"

        def no_model(*a, **k):
            raise AssertionError("a model was loaded by a second run on a locked cache")
        monkeypatch.setattr(theory_run, "load_model", no_model)
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            go()
    finally:
        holder.kill()
        holder.wait()
    with guard.CacheLock(folder):  # the first run gone, the lock is free again
        with pytest.raises(UserError, match=f"pid {__import__('os').getpid()}"):
            guard.CacheLock(folder).__enter__()


def test_the_figure_finds_topic_a_from_the_results_root(tmp_path):
    root = tmp_path / "results"
    assert plots.topic_a_summary(root / "plots_b") == (root / "plots_a" / "topic_a_summary.csv").resolve()
    (root / "plots_a").mkdir(parents=True)
    pd.DataFrame({"condition": ["student_all", "student_aux", "cross_aux"], "mean": [0.9, 0.5, 0.1],
                  "ci95_low": [0.8, 0.4, 0.0], "ci95_high": [1.0, 0.6, 0.2]}).to_csv(
        root / "plots_a" / "topic_a_summary.csv", index=False)
    assert plots._topic_a(plots.topic_a_summary(root / "plots_b"))["mean"].tolist() == [0.9, 0.5, 0.1]
    assert plots._topic_a(tmp_path / "nowhere" / "topic_a_summary.csv") is None
    summ = pd.DataFrame([{"cell": "b", "animal": a, "measure": "share_vs_neutral", "step": 2, "mean": 0.1,
                          "ci95_low": 0.0, "ci95_high": 0.2} for a in ("owl", "eagle")])
    for topic_a in (plots.topic_a_summary(root / "plots_b"), tmp_path / "nowhere.csv"):
        plots.ladder(summ, pd.DataFrame(), tmp_path / "fig.png", topic_a)
        assert (tmp_path / "fig.png").stat().st_size > 0


def test_a_run_on_a_fresh_out_says_where_topic_a_was_looked_for(tiny_run):
    go, cfg, logs = tiny_run
    go(seeds=(0,))
    want = plots.topic_a_summary(_out(cfg))
    assert any(str(want) in m and "not found" in m for m in logs)
    assert any("no earlier teachers" in m for m in logs) and not any("against the first one" in m for m in logs)


def test_every_student_knob_is_a_flag_and_the_defaults_keep_the_committed_keys():
    """Learning rates, the noise scale and the cross-init seed are on the typed config (issue 42); today's values are
    the defaults, so the student settings (and every key built from them) are unchanged."""
    from subliminal.cli import UserError
    from subliminal.topic_b.theory.config import TheoryConfig
    from subliminal.topic_b.theory.student import StudentSettings

    assert TheoryConfig().student_settings() == StudentSettings()
    s = dataclasses.replace(TheoryConfig(), lr_lora_adam=1e-3, noise_scale=0.1, cross_seed=7).student_settings()
    assert (s.lr_lora_adam, s.noise_scale, s.cross_seed) == (1e-3, 0.1, 7)
    for bad in ({"lr_lora_sgd": 0.0}, {"noise_scale": -1.0}, {"cross_seed": -1}):
        with pytest.raises(UserError):
            dataclasses.replace(TheoryConfig(), **bad).validate()


def test_a_run_under_other_settings_is_refused_before_it_replaces_the_outputs(tmp_path):
    from subliminal.cli import UserError
    from subliminal.topic_b.theory.config import TheoryConfig
    from subliminal.topic_b.theory.run import _same_settings

    prev = {"student_settings": dataclasses.asdict(TheoryConfig().student_settings()),
            "teacher_settings": dataclasses.asdict(TheoryConfig().teacher_settings())}
    _same_settings(TheoryConfig(), prev, tmp_path)  # the same settings: fine
    _same_settings(TheoryConfig(steps=30, milestones=(10, 30)), {}, tmp_path)  # a fresh --out: fine
    with pytest.raises(UserError, match="noise_scale differ"):
        _same_settings(dataclasses.replace(TheoryConfig(), noise_scale=0.03), prev, tmp_path)
