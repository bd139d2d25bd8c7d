"""The base matrix (issue 44; subliminal/topic_b/theory/matrix*.py, teacher_check.py) on two tiny random Llamas with
different chat templates and weights, standing in for SmolLM2 and Gemma: seconds, no download."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.theory import matrix, matrix_analysis, matrix_run, shared_class, student, teacher_check
from subliminal.topic_b.theory.matrix_config import MatrixConfig

S, G = "smollm2-135m-instruct", "gemma-3-270m"


@pytest.fixture(scope="module")
def bases():
    ts, tg = build_tokenizer(), build_tokenizer(system_role=False)
    return {S: (build_model(ts, seed=0), ts), G: (build_model(tg, seed=1), tg)}


def _cfg(tmp_path, **kw):
    return dataclasses.replace(MatrixConfig.quick(), out=str(tmp_path / "out"), cache=str(tmp_path / "machine1"),
                               progress=False, **kw)


def test_the_matrix_runs_end_to_end_and_continues_on_another_machine(bases, tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "load_model", lambda name, device="cpu": bases[name])
    calls = []
    real = shared_class.teacher_targets
    monkeypatch.setattr(shared_class, "teacher_targets", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = _cfg(tmp_path)
    matrix_run.run(cfg, torch.device("cpu"), log=lambda m: None)
    out = tmp_path / "out"
    recs = sorted((out / "topic_b_base_matrix_records").glob("*/*/record.json"))
    students_recs = [f for f in recs if f.parent.parent.name in (S, G)]
    assert len(students_recs) == 4 * 3 + 2  # 4 pairs x (neutral, owl, eagle), one seed; the dose: 1 scale x 2
    # the fit rule decided each cross-base pair's steps and lr on its neutral teacher, before its trait students
    rule = pd.read_csv(out / "topic_b_base_matrix_fit_rule.csv")
    assert set(rule.pair) == {f"{S}>{G}", f"{G}>{S}"} and (rule.groupby("pair").chosen.sum() == 1).all()
    assert [f.parent.name for f in recs if f.parent.parent.name == "fit_rule"] == [f"{G}__{S}", f"{S}__{G}"]
    cap = pd.read_csv(out / "topic_b_base_matrix_capability.csv")
    assert list(cap.noise_scale) == [0.0, 0.1] and (cap.nats_answers > 0).all() and cap.p_any_animal.between(0, 1).all()
    dose = pd.read_csv(out / "topic_b_base_matrix_dose.csv")
    assert set(dose.family) == {"base-noise dose", "dose contrasts"} and set(dose.noise_scale) == {0.1}
    assert (out / "topic_b_base_matrix_dose.png").stat().st_size > 0
    tidy = pd.read_csv(out / "topic_b_base_matrix.csv")
    assert set(tidy.pair) == {f"{t}>{s}" for t in (S, G) for s in (S, G)} | {f"{S}>{S}+noise0.1"}
    run_json = (out / "topic_b_base_matrix.json").read_text()
    assert '"complete": true' in run_json
    teachers = pd.read_csv(out / "topic_b_base_matrix_teachers.csv")
    assert set(teachers.base) == {S, G} and set(teachers.animal) == {"owl", "eagle"}
    signal = pd.read_csv(out / "topic_b_base_matrix_signal.csv")
    assert set(signal.teacher_base) == {S, G} and (signal.kl >= 0).all()
    # teacher targets: computed once per distinct (teacher, teacher-side inputs) and kept; the signal reuses them
    kept = list((tmp_path / "machine1").glob("*/targets/targets-*.safetensors"))
    assert 2 * 3 <= len(calls) == len(kept) <= 4 * 3 + 2
    fit = pd.read_csv(out / "topic_b_base_matrix_fit.csv")
    assert set(fit.fits) <= {"below the signal", "not below the signal"} and np.isfinite(fit.signal_kl).all()
    effects = pd.read_csv(out / "topic_b_base_matrix_effects.csv")
    assert set(effects.verdict) == {"too few seeds"}  # one seed: no verdict
    chosen = rule[rule.chosen].set_index("pair").steps
    assert all(effects[effects.pair == p].step.eq(k).all() for p, k in chosen.items())  # read at the chosen steps
    first = (out / "topic_b_base_matrix.csv").read_bytes()

    def no_training(*a, **k):
        raise AssertionError("a finished student was trained again")

    monkeypatch.setattr(student, "build", no_training)
    matrix_run.run(dataclasses.replace(cfg, cache=str(tmp_path / "machine2")), torch.device("cpu"), log=lambda m: None)
    assert (out / "topic_b_base_matrix.csv").read_bytes() == first
    # --teachers-only rewrites the teacher check and keeps every student on record in the outputs
    matrix_run.run(dataclasses.replace(cfg, cache=str(tmp_path / "machine2"), teachers_only=True), torch.device("cpu"),
                   log=lambda m: None)
    assert (out / "topic_b_base_matrix.csv").read_bytes() == first
    assert '"students_done": 14' in (out / "topic_b_base_matrix.json").read_text()
    # "complete" is the whole design's: a run that selects a part (--pairs, --teachers-only) of a design not all on
    # record says partial
    import shutil

    shutil.copytree(out, tmp_path / "out2")
    shutil.rmtree(next((tmp_path / "out2" / "topic_b_base_matrix_records" / G).glob("matrix-owl-*")))
    matrix_run.run(dataclasses.replace(cfg, out=str(tmp_path / "out2"), cache=str(tmp_path / "machine2"),
                                       teachers_only=True), torch.device("cpu"), log=lambda m: None)
    meta = json.loads((tmp_path / "out2" / "topic_b_base_matrix.json").read_text())
    assert not meta["complete"] and meta["students_done"] == 13 and meta["students_planned"] == 14


def test_a_cross_base_student_is_keyed_by_its_teachers_base_and_needs_the_shared_class_loss(bases, tmp_path):
    sset = student.StudentSettings(steps=1, batch=2, micro_batch=2, milestones=(1,))
    keys = {student.key_of(matrix.arm("owl", tb, S), 0, sset, "t", matrix.base_id(S), None, "r", matrix.base_id(tb))
            for tb in (S, G)}
    assert len(keys) == 2
    assert matrix.arm("owl", G, S).teacher_model == G and matrix.arm("owl", S, S).teacher_model == ""
    base, tok = bases[S]
    from subliminal.topic_b.theory.cells import BY_KEY
    with pytest.raises(ValueError, match="shared-class"):
        student.train(base, tok, bases[G][0], BY_KEY["b"].arm("owl"), 0, sset, tmp_path / "x", teacher_key="t",
                      base_id=matrix.base_id(S), teacher_seed=0, teacher_init_a={}, teacher_deltas={},
                      teacher_tok=bases[G][1], teacher_base_id=matrix.base_id(G), progress=False)


def _tidy(effects: dict[str, float], n: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for pair, eff in effects.items():
        for seed in range(n):
            for q in ("q1", "q2"):
                for animal in ("owl", "eagle"):
                    base = rng.normal(-3, 0.01)
                    rows.append({"pair": pair, "teacher": NEUTRAL, "seed": seed, "step": 60, "question": q,
                                 "animal": animal, "logp": base, "share": base})
                    rows.append({"pair": pair, "teacher": animal, "seed": seed, "step": 60, "question": q,
                                 "animal": animal, "logp": base + eff, "share": base + eff + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_effects_and_contrasts_read_the_declared_families():
    df = _tidy({f"{S}>{S}": 0.5, f"{G}>{G}": 0.4, f"{G}>{S}": 0.0, f"{S}>{G}": 0.4})
    e = matrix_analysis.effects(df).set_index(["pair", "animal"])
    assert e.loc[(f"{S}>{S}", "owl"), "verdict"] == "transfer"
    assert e.loc[(f"{G}>{S}", "owl"), "verdict"] == "none detected"
    assert (e.ratio_low <= e.ratio).all() and (e.ratio <= e.ratio_high).all()
    c = matrix_analysis.contrasts(df).set_index(["pair", "animal"])
    assert c.loc[(f"{G}>{S}", "owl"), "versus"] == f"{S}>{S}"
    assert c.loc[(f"{G}>{S}", "owl"), "reading"] == "smaller than the diagonal"
    assert c.loc[(f"{S}>{G}", "owl"), "reading"] == "not distinguishable from the diagonal"
    with pytest.raises(ValueError, match="outside the declared family"):
        matrix_analysis.effects(_tidy({"qwen>qwen": 0.5}).assign(), {"base matrix": ((f"{S}>{S}", "owl"),)})


def test_the_tidy_frame_from_records_holds_numbers_and_its_contrasts_run_at_two_seeds():
    """The tidy frame built from records (no base preference: an empty frame) once held its numbers as objects; at
    two seeds of an off-diagonal pair the paired keep ratio then failed inside numpy (np.cov of object arrays)."""
    def rec(pair, trait, seed, shift):
        tb, sb = pair.split(">")
        return {"arm": {"trait": trait, "teacher_model": "" if tb == sb else tb}, "student_base": sb, "seed": seed,
                "milestones": {"60": {"questions": ["q1", "q2"], "animals": ["owl", "eagle", "wolf"],
                                      "logp": [[-3 + shift + 0.1 * seed, -3.0, -3.0], [-2.5 + shift, -3.0, -2.0]]}}}

    recs = [rec(p, t, s, 0.5 if t == "owl" else 0.0) for p in (f"{S}>{S}", f"{G}>{S}") for t in (NEUTRAL, "owl")
            for s in (range(3) if p == f"{S}>{S}" else range(2))]
    df = matrix_analysis.tidy(recs)
    assert df.logp.dtype == float and df.share.dtype == float
    c = matrix_analysis.contrasts(df).set_index(["pair", "animal"])
    assert c.loc[(f"{G}>{S}", "owl"), "n_seeds"] == 2 and np.isfinite(c.loc[(f"{G}>{S}", "owl"), "keep"])


def test_the_teacher_check_says_which_teacher_carries_its_trait():
    qs = [f"q{i}" for i in range(6)]

    def pref(shift: dict[str, float]):
        rows = []
        for i, q in enumerate(qs):
            for a in ("owl", "eagle", "wolf"):
                rows.append({"question": q, "animal": a, "logp_animal": -3.0, "share": -3.0 + shift.get(a, 0) + 0.01 * i})
        return pd.DataFrame(rows)

    c = teacher_check.check({"b": {NEUTRAL: pref({}), "owl": pref({"owl": 2.0}), "eagle": pref({})}}).set_index("animal")
    assert c.loc["owl", "verdict"] == teacher_check.CARRIES and c.loc["owl", "ratio"] == pytest.approx(np.exp(2.0))
    assert c.loc["eagle", "verdict"] == teacher_check.LACKS


def test_the_fit_rule_takes_the_cheapest_candidate_below_the_bar_and_keeps_its_decision(tmp_path):
    from subliminal.topic_b.theory import matrix_fit

    rule = matrix_fit.FitRule(lrs=(1e-3, 4e-3), steps=(60, 120), target=1.0)
    assert rule.order() == [(60, 1e-3), (60, 4e-3), (120, 1e-3), (120, 4e-3)]
    base = student.StudentSettings()
    fits = {(60, 1e-3): 0.5, (60, 4e-3): 0.3, (120, 1e-3): 0.08, (120, 4e-3): 0.01}
    asked = []

    def train(lr, sset, stop_after):
        assert sset.steps == 120 and sset.lr_lora_adam == lr and sset.milestones == (60, 120)
        asked.append((stop_after, lr))
        return {"milestones": {str(stop_after): {"kl": fits[(stop_after, lr)]}}}

    rec = matrix_fit.decide(tmp_path, S, G, rule, base, 0.1, train, log=lambda m: None)
    assert rec["chosen"] == {"steps": 120, "lr": 1e-3, "reached": True}
    assert asked == [(60, 1e-3), (60, 4e-3), (120, 1e-3)]  # stops at the first below the bar
    assert matrix_fit.overrides(rec) == {"steps": 120, "lr_lora_adam": 1e-3}
    assert matrix_fit.decided(tmp_path, S, G, rule, base) == rec
    # another rule or other student settings: not this decision
    assert matrix_fit.decided(tmp_path, S, G, dataclasses.replace(rule, target=0.5), base) is None
    assert matrix_fit.decided(tmp_path, S, G, rule, dataclasses.replace(base, batch=4)) is None
    # no candidate below the bar: the best fit, marked not reached
    rec = matrix_fit.decide(tmp_path / "b", G, S, rule, base, 0.001, train, log=lambda m: None)
    assert rec["chosen"] == {"steps": 120, "lr": 4e-3, "reached": False}
    t = matrix_fit.table(tmp_path / "b")
    assert len(t) == 4 and t.chosen.sum() == 1 and not t.reached.any()
    signal = pd.DataFrame({"teacher_base": [S, S, G], "animal": ["owl", "eagle", "owl"], "kl": [0.2, 0.1, 0.3]})
    assert matrix_fit.bar(signal, S, 0.5) == pytest.approx(0.05) and matrix_fit.bar(signal, G, 1.0) is None


def test_a_noisy_base_works_within_the_declared_tolerance_of_the_clean_base_at_every_seed():
    ma = matrix_analysis
    cap = pd.DataFrame([{"base": S, "seed": -1, "noise_scale": 0.0, "nats_answers": 3.0},
                        {"base": S, "seed": 0, "noise_scale": 0.03, "nats_answers": 3.0 + ma.WORKS_WITHIN / 2},
                        {"base": S, "seed": 1, "noise_scale": 0.03, "nats_answers": 3.0 + ma.WORKS_WITHIN / 3},
                        {"base": S, "seed": 0, "noise_scale": 0.1, "nats_answers": 3.0 + ma.WORKS_WITHIN / 2},
                        {"base": S, "seed": 1, "noise_scale": 0.1, "nats_answers": 3.0 + 2 * ma.WORKS_WITHIN},
                        {"base": G, "seed": 0, "noise_scale": 0.1, "nats_answers": 1.0}])  # no clean readout of G
    c = ma.capability(cap)
    assert list(c.base_state) == [ma.WORKS, ma.WORKS, ma.WORKS, ma.WORKS, ma.DEGRADED, ma.NO_READOUT]
    assert np.allclose(c.d_nats_answers[:5], [0, ma.WORKS_WITHIN / 2, ma.WORKS_WITHIN / 3, ma.WORKS_WITHIN / 2,
                                              2 * ma.WORKS_WITHIN])
    dose = pd.DataFrame({"pair": [ma.dose_key(S, x) for x in (0.03, 0.1, 0.3)], "noise_scale": [0.03, 0.1, 0.3]})
    d = ma.dose_capability(dose, c)
    assert list(d.base_state) == [ma.WORKS, ma.DEGRADED, ma.NO_READOUT]  # one degraded draw degrades the scale
    assert np.allclose(d.d_nats_answers[:2], [ma.WORKS_WITHIN / 2, 2 * ma.WORKS_WITHIN]) and np.isnan(d.d_nats_answers[2])
    from subliminal.verdicts import TEST_WORDS
    assert f"within {ma.WORKS_WITHIN:g} nats/token" in TEST_WORDS[ma.WORKS]
