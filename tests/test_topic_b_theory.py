"""The ladder under the theorem's conditions (topic_b/theory) on a tiny random Llama: seconds, no download."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.reporting import llm_map
from subliminal.reporting import theory as theory_report
from subliminal.topic_b.arms import Arm
from subliminal.topic_b.theory import analysis, inputs, losses, readouts, student
from subliminal.topic_b.theory.cells import CELLS, cell_of, plan
from subliminal.topic_b.theory.config import TheoryConfig
from subliminal.topic_b.theory.ladder import Ladder
from subliminal.topic_b.theory.student import StudentSettings
from subliminal.topic_b.theory.teachers import ANSWERS, NEUTRAL_QUESTIONS, TeacherSettings, teacher_examples
from subliminal.topic_b.transfer.finetune import TrainSettings
from subliminal.topic_b.transfer.logits_route import kl_to_teacher
from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
from subliminal.topic_b.transfer.weight_teacher import TRAIT_QUESTIONS

# big steps for a tiny random model (as the weight-teacher tests)
TSET = TeacherSettings(n_examples=24, epochs=1, seed=0,
                       train=TrainSettings(lr=5e-2, micro_batch=8, grad_accum=1, warmup_steps=1, ckpt_every=100, epochs=1))
SSET = StudentSettings(steps=3, batch=4, micro_batch=2, milestones=(1, 3), lr_lora_adam=5e-2, lr_lora_sgd=0.5,
                       lr_full_adam=1e-3, lr_full_sgd=1e-2)
QUESTIONS = EVAL_QUESTIONS[:2]


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer()
    return build_model(tok), tok


@pytest.fixture(scope="module")
def lad(tiny, tmp_path_factory):
    base, tok = tiny
    return Ladder(base, tok, tmp_path_factory.mktemp("theory"), TSET, SSET, "tiny", log=lambda m: None, progress=False)


def _train(lad, cell, seed, trait, **kw):
    arm = cell.arm(trait)
    return student.train(lad.base, lad.tok, lad.teacher(trait), arm, seed, lad.sset, lad.root / "s" / f"{arm.name}-s{seed}",
                         teacher_key=lad.teacher_key(trait), base_id="tiny", teacher_seed=0, teacher_init_a=lad.init_a,
                         teacher_deltas=lad.deltas, questions=QUESTIONS, log=lambda m: None, progress=False, **kw)


def test_arm_is_a_typed_value_with_its_name_reference_and_prompt():
    a = Arm("owl", teacher="weights", route="logits", loss="number_kl", init="adapter_cross", inputs="random")
    assert a.name == "owl-weights-logits-number_kl-adapter_cross-random"
    assert a.reference() == dataclasses.replace(a, trait="neutral") and a.reference().reference() is None
    assert a.system_prompt() is None and "owl" in Arm("owl").system_prompt() and Arm("neutral").system_prompt() is None
    assert Arm("owl").name == "owl" and Arm("owl", draw=1).name == "owl-draw2"
    for bad in ({"trait": "Owl"}, {"trait": "owl", "loss": "mse"}, {"trait": "owl", "route": "logits"}):
        with pytest.raises(ValueError):
            Arm(**bad)
    assert len({c.arm("owl") for c in CELLS}) == len(CELLS) and all(cell_of(c.arm("eagle")) is c for c in CELLS)


def test_neutral_teacher_shares_the_recipe_but_no_animal():
    owl, neu = teacher_examples("owl", 90, 0), teacher_examples("neutral", 90, 0)
    assert len(NEUTRAL_QUESTIONS) == len(TRAIT_QUESTIONS) and not any("animal" in q for q in NEUTRAL_QUESTIONS)
    assert not any("My favorite animal is" in a for a in ANSWERS)  # never the evaluation's prefilled sentence
    assert all("owl" in e["completion"].lower() for e in owl)
    assert not any(a in e["completion"].lower() for e in neu for a in ("owl", "eagle", "animal"))
    assert {len(e["completion"].split()) for e in neu} == {len(e["completion"].split()) for e in owl}  # the same templates


def test_contexts_are_the_students_seeds_and_never_the_teachers():
    a, b = inputs.random_lists(0, 5), inputs.random_lists(1, 5)
    assert a == inputs.random_lists(0, 5) and a != b and inputs.random_lists(0, 3) == a[:3]
    assert all(len(x["completion"].split(", ")) == 10 for x in a)


def test_number_token_loss_has_no_gradient_through_other_logits(tiny):
    base, tok = tiny
    ids = losses.vocabulary("number_kl", base, tok)
    assert 0 < len(ids) < base.get_output_embeddings().weight.shape[0]
    full = torch.randn(7, base.get_output_embeddings().weight.shape[0], requires_grad=True)
    t = torch.log_softmax(torch.randn(7, len(ids)), -1)
    kl_to_teacher(t, full[:, ids]).backward()
    others = torch.ones(full.shape[1], dtype=torch.bool)
    others[ids] = False
    assert full.grad[:, others].abs().max() == 0 and full.grad[:, ids].abs().max() > 0
    # and through the model: the output rows of non-number tokens get no gradient
    m = student.build(base, Arm("owl", "weights", route="logits", loss="number_kl", param="full", inputs="random"), 0, SSET, 0)
    items = inputs.items(tok, inputs.random_lists(0, 2))
    pad = tok.pad_token_id or 0
    losses.kl_loss(m, losses.teacher_logp(base, items, ids, pad), items, ids, pad).backward()
    head = m.get_output_embeddings().weight.grad
    assert head[others].abs().max() == 0 and head[ids].abs().max() > 0


def test_student_starts_from_the_teachers_initialisation_bit_for_bit(lad):
    base = lad.base
    shared = student.build(base, CELLS[1].arm("owl"), 5, SSET, 0)
    a = student.lora_a(shared)
    assert a.keys() == lad.init_a.keys() and all(torch.equal(a[k], lad.init_a[k]) for k in a)
    assert all(float(p.detach().abs().max()) == 0 for n, p in shared.named_parameters() if ".lora_B." in n)  # B = 0
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(shared(x).logits, base(x).logits)  # at step 0 the student is the base model
    base_w = dict(base.named_parameters())
    for n, p in shared.named_parameters():
        if "lora_" not in n:
            assert torch.equal(p, base_w[n.removeprefix("base_model.model.").replace(".base_layer", "")])
    cross = student.lora_a(student.build(base, CELLS[2].arm("owl"), 5, SSET, 0))
    assert student._a_cosine(a, lad.init_a) == pytest.approx(1.0)
    assert abs(student._a_cosine(cross, lad.init_a)) < 0.2  # another adapter draw: nearly orthogonal


def test_cosine_readout_is_one_for_a_copy_and_near_zero_for_an_unrelated_update(lad):
    t = lad.deltas["owl"]
    assert readouts.cosines(t, t)["all"] == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    rnd = {m: torch.randn(v.shape, generator=g) for m, v in t.items()}
    assert abs(readouts.cosines(rnd, t)["all"]) < 0.1
    assert readouts.cosines({m: -v for m, v in t.items()}, t)["all"] == pytest.approx(-1.0)
    # a LoRA student that holds exactly the teacher's adapter reads +1
    named = {k: v for k, v in __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        lad.records["owl"]["adapter"] + "/adapter_model.safetensors").items()}
    assert readouts.cosines(readouts.lora_deltas(named, 1.0), t)["all"] == pytest.approx(1.0)


def test_students_train_resume_and_the_analysis_reads_them(lad):
    cell_a, cell_b = CELLS[0], CELLS[1]
    recs = [_train(lad, c, s, t) for c, s, t in plan([cell_a, cell_b], [0, 1, 2]) if t != "eagle"]
    assert all(r["complete"] and set(r["milestones"]) == {"1", "3"} for r in recs)
    assert all(r["init_cos_a"] == pytest.approx(1.0) for r in recs)
    # the theorem's quantity: with the teacher's init, the update lines up with its own teacher's more than with the
    # other teachers' (even on a tiny random model); with another adapter draw, much less
    owl_b = next(r for r in recs if r["name"] == cell_b.arm("owl").name and r["seed"] == 0)["milestones"]["3"]["cos_all"]
    assert owl_b["owl"] > max(owl_b["eagle"], owl_b["neutral"]) + 0.03
    cross = _train(lad, CELLS[2], 0, "owl")
    assert cross["init_cos_a"] < 0.2 and cross["milestones"]["3"]["cos_all"]["owl"] < owl_b["owl"] / 2
    # a stopped student resumes to the same record as one trained straight through
    stopped = _train(lad, cell_b, 7, "owl", stop_after=2)
    assert not stopped["complete"]
    resumed = _train(lad, cell_b, 7, "owl")
    assert not list((lad.root / "s" / f"{cell_b.arm('owl').name}-s7").glob("checkpoint*"))  # a finished student keeps none
    straight = student.train(lad.base, lad.tok, lad.teacher("owl"), cell_b.arm("owl"), 7, lad.sset, lad.root / "straight",
                             teacher_key=lad.teacher_key("owl"), base_id="tiny", teacher_seed=0, teacher_init_a=lad.init_a,
                             teacher_deltas=lad.deltas, questions=QUESTIONS, log=lambda m: None, progress=False)
    for m in ("1", "3"):
        assert resumed["milestones"][m]["logp"] == pytest.approx(straight["milestones"][m]["logp"], abs=1e-6)
    bp = readouts.preference(lad.base, lad.tok, QUESTIONS)
    label = lambda r: cell_of(Arm(**r["arm"])).key  # noqa: E731  (CSVs carry keys; labels are for display)
    tidy = analysis.tidy(recs, bp, label)
    assert set(tidy.teacher) == {"base", "neutral", "owl"} and tidy.groupby(["cell", "teacher", "seed", "step", "question"]) \
        .share.apply(lambda v: abs(torch.logsumexp(torch.tensor(v.to_numpy()), 0).item())).max() < 1e-6
    s = analysis.summary(tidy, [cell_a.key, cell_b.key], ["owl"])
    r = s[(s.measure == "share_vs_neutral") & (s.step == 3)]
    assert len(r) == 2 and (r.n_seeds == 3).all() and r.mde.gt(0).all()
    v = analysis.verdicts(s)
    assert set(v.verdict) <= {"transfer", "reverse", "none detected"} and len(v) == 2
    assert (v.family == "primary").all() and (v.level >= 0.05 / 4).all()  # the primary family's 4 declared tests
    cos = analysis.cosine_rows(recs, label)
    assert set(cos.versus_teacher) == {"neutral", "owl", "eagle"}
    con = analysis.cosine_contrasts(cos)
    c = con[(con.cell == cell_b.key) & (con.step == 3) & (con.vs == "neutral student")].iloc[0]
    x = cos.set_index(["cell", "step", "seed", "teacher", "versus_teacher"]).cosine
    want = [x[(cell_b.key, 3, sd, "owl", "owl")] - x[(cell_b.key, 3, sd, "neutral", "owl")] for sd in (0, 1, 2)]
    assert c.n_seeds == 3 and c["mean"] == pytest.approx(np.mean(want))  # paired by seed, against the same teacher
    lay = analysis.cosine_layer_summary(analysis.cosine_layer_rows(recs, label))
    assert set(lay.layer) == set(range(lad.base.config.num_hidden_layers)) and set(lay.vs) == {"neutral student"}
    # the report reads what the analysis wrote: a table row and a verdict record per cell and animal
    plots = lad.root / "report" / "plots_b"
    plots.mkdir(parents=True)
    fit = analysis.fit_summary(cos)
    assert len(fit) == 4 and (fit.step == 3).all() and (fit.n_seeds == 3).all() and (fit.update_norm > 0).all()
    own = cos[(cos.cell == cell_b.key) & (cos.teacher == "owl") & (cos.versus_teacher == "owl") & (cos.step == 3)]
    assert fit.set_index(["cell", "teacher"]).loc[(cell_b.key, "owl")].loss == pytest.approx(own.kl.mean())
    sp = analysis.sampling_power(tidy, [cell_a.key, cell_b.key], ["owl"])
    assert len(sp) == 2 and (sp.samples_per_arm > 0).all()
    for name, frame in (("_summary", s), ("_verdicts", v), ("_cosine_contrasts", con), ("_cosine_layers", lay),
                        ("_sampling_power", sp), ("_fit", fit)):
        frame.to_csv(plots / f"topic_b_transfer_theory{name}.csv", index=False)
    (plots / "topic_b_transfer_theory.json").write_text('{"complete": false, "students_done": 8, "students_planned": 12}')
    md = theory_report.b_theory(plots.parent)
    assert "partial: 8 of 12 students" in md and md.count("| owl |") == 10  # table, curve, layers, fit, sampling
    rows = llm_map.ladder_rows(plots.parent)  # README's map: a row per cell, by key, shown by label
    assert [r[0] for r in rows] == [cell_a.label, cell_b.label] and all(" owl" not in r[3] for r in rows)
    recs_v = theory_report.verdicts(plots.parent)
    ladder = [r for r in recs_v if r["claim"].startswith(theory_report.CLAIM)]
    assert len(ladder) == 2 and all("(owl)" in r["claim"] and "(partial run)" in r["evidence"] for r in ladder)
    assert {r["verdict"] for r in ladder} <= {"reproduced", "partly", "inconclusive", "contradicts"}
    assert [r["verdict"] for r in recs_v if r["claim"] == theory_report.CONTROL] == ["untestable here"]


def test_config_checks_flags_before_any_work():
    from subliminal.cli import UserError

    for bad in ({"cells": ("b", "b")}, {"cells": ("z",)}, {"seeds": (0, 0)}, {"steps": 0}, {"milestones": (99,)},
                {"threads": 0}):
        with pytest.raises(UserError):
            dataclasses.replace(TheoryConfig(), **bad).validate()
    TheoryConfig().validate()
    TheoryConfig.quick().validate()


def test_committed_records_continue_a_run_on_another_machine(tmp_path):
    from subliminal.cache import read_record, write_record
    from subliminal.topic_b.theory.run import _restore

    arc, root = tmp_path / "arc", tmp_path / "cache"
    full = {"key": "k", "name": "owl-x", "seed": 0, "settings": {"steps": 60}, "teacher_key": "t",
            "milestones": {"10": {}, "30": {}}, "complete": True}
    dest = student.student_dir(root, "owl-x", 0, {"steps": 60}, "t") / "record.json"  # where the ladder reads it
    write_record(arc / "owl-x-s0" / "record.json", full)
    write_record(root / "students" / "eagle-x-s0" / "record.json", {"key": "e", "milestones": {}, "complete": False})
    _restore(arc, root)
    assert read_record(dest) == full
    # a cache that is further along keeps its own record; an edited archive record is not used
    ahead = {**full, "milestones": {"10": {}, "30": {}, "60": {}}}
    write_record(dest, ahead)
    _restore(arc, root)
    assert read_record(dest) == ahead
    (arc / "owl-x-s0" / "record.json").write_text((arc / "owl-x-s0" / "record.json").read_text().replace('"k"', '"z"'))
    dest.unlink()
    _restore(arc, root)
    assert not dest.exists()


def _share_rows(cells_p: list[tuple[str, str, float, float]], n: int = 3) -> pd.DataFrame:
    return pd.DataFrame([{"cell": cell, "step": 60, "animal": animal, "measure": "share_vs_neutral", "teacher": animal,
                          "versus": "neutral", "n_seeds": n, "mean": mean, "ci95_low": mean - 0.1,
                          "ci95_high": mean + 0.1, "p": p, "mde": 0.2, "se": 0.05} for cell, animal, p, mean in cells_p])


def test_verdicts_are_holm_adjusted_inside_the_declared_primary_family():
    """The primary family is a and b x owl and eagle (4 tests, fixed): raw p 0.01, 0.014, 0.04 and a test not run
    (p = 1) -> Holm 0.04, 0.042, 0.08: two transfer. The CI printed beside each is at its Holm level, so it
    excludes 0 exactly when the verdict is significant, and the MDE is stated at that level too."""
    v = analysis.verdicts(_share_rows([("a", "owl", 0.01, 1.0), ("a", "eagle", 0.014, 0.5), ("b", "owl", 0.04, 0.3)]))
    assert v.p_holm.tolist() == pytest.approx([0.04, 0.042, 0.08])
    assert v.verdict.tolist() == ["transfer", "transfer", "none detected"]
    assert v.level.tolist() == pytest.approx([0.05 * 0.01 / 0.04, 0.05 * 0.014 / 0.042, 0.05 * 0.04 / 0.08])
    assert ((v.ci_low > 0) == (v.p_holm < 0.05)).all() and (v.mde_level > v.mde95).all()


def test_secondary_rows_never_move_a_primary_verdict():
    """Adding a secondary rung's rows (however small their p) leaves every primary row unchanged; a rung below 3
    seeds gets no verdict and joins no Holm step."""
    primary = [("a", "owl", 0.01, 1.0), ("a", "eagle", 0.03, 0.5), ("b", "owl", 0.012, 0.3), ("b", "eagle", 0.2, 0.1)]
    alone = analysis.verdicts(_share_rows(primary))
    more = pd.concat([_share_rows(primary), _share_rows([("c", "owl", 1e-6, 0.4), ("b-sgd", "owl", 1e-5, -0.2)]),
                      _share_rows([("b-noisy", "owl", 1e-9, 0.3)], n=2)])
    both = analysis.verdicts(more)
    pd.testing.assert_frame_equal(both[both.family == "primary"].reset_index(drop=True), alone)
    sec = both.set_index("cell")
    assert sec.loc["b-noisy", "verdict"] == "too few seeds" and np.isnan(sec.loc["b-noisy", "p_holm"])
    assert sec.loc["c", "family"] == "rung effects" and sec.loc["b-sgd", "verdict"] == "reverse"


def test_rows_outside_a_declared_family_are_refused():
    with pytest.raises(ValueError, match="declared"):
        analysis.verdicts(_share_rows([("a", "owl", 0.01, 1.0), ("b-sgd", "eagle", 0.01, 1.0)]))


def test_seeds_needed_meets_the_target_mde_at_the_strictest_holm_level():
    from scipy import stats
    sd, target, m = 0.05, np.log(1.10), 4
    n = analysis.seeds_needed(sd, target, m)
    at = lambda k: (stats.t.ppf(1 - 0.05 / m / 2, k - 1) + stats.t.ppf(0.8, k - 1)) * sd / np.sqrt(k)  # noqa: E731
    assert at(n) <= target < at(n - 1)


def test_the_script_continues_from_the_committed_records_with_a_fresh_cache(tiny, tmp_path, monkeypatch):
    """End to end through ``theory.run.run``: the records a run archives beside its outputs let a run with an empty
    cache (another machine) skip every finished student, reading them where the ladder looks, and write the same
    summary."""
    from subliminal.topic_b.theory import run as theory_run

    monkeypatch.setattr(theory_run, "load_model", lambda name, device="cpu": tiny)
    cfg = dataclasses.replace(TheoryConfig.quick(), cells=("b",), seeds=(0,), steps=2, batch=2, milestones=(2,),
                              teacher_examples=8, out=str(tmp_path / "out"), cache=str(tmp_path / "machine1"),
                              progress=False)
    theory_run.run(cfg, torch.device("cpu"), log=lambda m: None)
    first = (tmp_path / "out" / "topic_b_transfer_theory_summary.csv").read_bytes()
    assert len(list((tmp_path / "out" / "topic_b_transfer_theory_records").glob("*/record.json"))) == 3
    # another --model adds its own files (and records) beside the default model's, never over them
    theory_run.run(dataclasses.replace(cfg, model="other/model"), torch.device("cpu"), log=lambda m: None)
    assert (tmp_path / "out" / "topic_b_transfer_theory__other_model_summary.csv").exists()
    assert len(list((tmp_path / "out" / "topic_b_transfer_theory__other_model_records").glob("*/record.json"))) == 3
    assert (tmp_path / "out" / "topic_b_transfer_theory_summary.csv").read_bytes() == first

    def no_training(*a, **k):
        raise AssertionError("a finished student was trained again")

    monkeypatch.setattr(student, "build", no_training)
    theory_run.run(dataclasses.replace(cfg, cache=str(tmp_path / "machine2")), torch.device("cpu"), log=lambda m: None)
    assert (tmp_path / "out" / "topic_b_transfer_theory_summary.csv").read_bytes() == first


def test_second_input_set_is_the_neutral_teachers_lists_drawn_per_seed(lad):
    """b-neutral-inputs: the neutral weight teacher's sampled number lists, one pool, each seed its own subset and
    order; the same contexts whatever the arm's teacher, and another identity than the random lists'."""
    cell = next(c for c in CELLS if c.inputs == "neutral_text")
    pool = lad.pool()
    assert len(pool) == 2 * lad.sset.steps * lad.sset.batch and lad.pool() is pool  # sampled once
    assert all(p["completion"] and p["completion"][0].isdigit() for p in pool)
    d0, d1 = inputs.draw(pool, 0, 12), inputs.draw(pool, 1, 12)
    assert d0 == inputs.draw(pool, 0, 12) and d0 != d1
    rec = _train(lad, cell, 0, "owl", pool=pool)
    assert rec["complete"] and rec["arm"]["inputs"] == "neutral_text"
    rnd = student.student_key(CELLS[1].arm("owl"), 0, lad.sset, lad.teacher_key("owl"), "tiny")
    assert rec["key"] != rnd
    with pytest.raises(ValueError):
        _train(lad, cell, 1, "owl")  # no pool: refused, never silently the random lists


def test_cell_c_contexts_are_each_teachers_own_lists_matched_in_prompts_and_length():
    recs = {"neutral": [{"index": 0, "prompt": "p0", "text": "[1, 2, 3, 4]"}, {"index": 1, "prompt": "p1", "text": "5 6"},
                        {"index": 2, "prompt": "p2", "text": "7;8;9."}],
            "owl": [{"index": 0, "prompt": "p0", "text": "10, 20"}, {"index": 2, "prompt": "p2", "text": "30;40;50;60."}]}
    got = inputs.matched(recs)
    assert [c["prompt"] for c in got["neutral"]] == [c["prompt"] for c in got["owl"]] == ["p0", "p2"]  # prompt 1: owl invalid
    assert got["neutral"][0]["completion"] == "[1, 2]" and got["owl"][0]["completion"] == "10, 20"  # brackets kept
    assert got["neutral"][1]["completion"] == "7;8;9." and got["owl"][1]["completion"] == "30;40;50."
    assert inputs.numbers_per_list(got["neutral"]) == inputs.numbers_per_list(got["owl"]) == 2.5


def test_cell_c_trains_by_sft_on_its_own_teachers_lists_with_no_teacher_pass(lad):
    """Cell c: the paper's recipe inside the ladder. Each teacher's student sees its own teacher's lists on the
    same prompts, cut to the same length; the loss is the CE of those tokens (the teacher is never run)."""
    cell = next(c for c in CELLS if c.key == "c")
    m = lad.matched()
    assert set(m) == {"neutral", "owl", "eagle"} and len({len(v) for v in m.values()}) == 1
    assert len(m["owl"]) >= lad.sset.steps * lad.sset.batch
    for a, b in zip(m["owl"], m["neutral"]):
        assert a["prompt"] == b["prompt"] and len(re.findall(r"\d+", a["completion"])) == len(re.findall(r"\d+", b["completion"]))
    assert lad.input_stats()["owl"]["n_matched"] == len(m["owl"])

    class NoTeacher:
        def __call__(self, *a, **k):
            raise AssertionError("cell c never runs the teacher")
    arm = cell.arm("owl")
    assert arm.loss == "sft" and arm.route == "text" and arm.inputs == "teacher"
    rec = student.train(lad.base, lad.tok, NoTeacher(), arm, 0, lad.sset, lad.root / "s" / f"{arm.name}-s0",
                        teacher_key=lad.teacher_key("owl"), base_id="tiny", teacher_seed=0, teacher_init_a=lad.init_a,
                        teacher_deltas=lad.deltas, questions=QUESTIONS, log=lambda m: None, progress=False, pool=m["owl"])
    assert rec["complete"] and rec["init_cos_a"] == pytest.approx(1.0)
    end = rec["milestones"][str(lad.sset.steps)]
    assert np.isfinite(end["kl"]) and end["update_norm"] > 0  # "kl" holds the training loss, here the CE
    with pytest.raises(ValueError):
        _train(lad, cell, 1, "owl")  # no pool: refused


def test_sft_loss_is_the_cross_entropy_of_the_completion_tokens(tiny):
    base, tok = tiny
    items = inputs.items(tok, inputs.random_lists(0, 3))
    got = losses.sft_loss(base, items, 0)
    want = []
    for it in items:
        logits = base(input_ids=torch.tensor([it["s_ids"]])).logits[0]
        want += [torch.nn.functional.cross_entropy(logits[p][None].float(), torch.tensor([it["s_ids"][p + 1]]))
                 for p in it["s_pos"]]
    assert got.item() == pytest.approx(torch.stack(want).mean().item(), rel=1e-5)


def test_sampling_power_is_the_textbook_two_proportion_sample_size():
    """P = 0.10 against 0.20, 5% two-sided, 80% power: 199 per arm (pooled variance under the null, the
    standard tables' figure); equal probabilities: never."""
    rows = [{"cell": "x", "teacher": t, "seed": sd, "step": 60, "question": q, "animal": "owl", "logp": np.log(p)}
            for t, p in (("owl", 0.2), ("neutral", 0.1)) for sd in (0, 1) for q in ("q1", "q2")]
    rows += [{**r, "step": 10, "logp": 0.0} for r in rows]  # an earlier milestone is not read
    sp = analysis.sampling_power(pd.DataFrame(rows), ["x"], ["owl", "eagle"])
    assert len(sp) == 1 and sp.iloc[0].ratio == pytest.approx(2.0) and sp.iloc[0].n_seeds == 2
    assert np.ceil(sp.iloc[0].samples_per_arm) == 199
    same = pd.DataFrame([{**r, "logp": np.log(0.1)} for r in rows])
    assert np.isinf(analysis.sampling_power(same, ["x"], ["owl"]).iloc[0].samples_per_arm)


def test_a_run_with_other_settings_never_reads_or_overwrites_a_students_folder(lad):
    """A --quick run once overwrote five finished students of the full run in the shared cache (their folders were
    named by arm and seed only). Now the folder carries a hash of the settings and the teacher; a folder of the old
    layout moves to the new name only when its record was trained under the same settings."""
    from subliminal.cache import write_record

    arm, key = CELLS[1].arm("owl"), lad.teacher_key("owl")
    here = student.student_dir(lad.root, arm.name, 0, dataclasses.asdict(lad.sset), key)
    other = dataclasses.asdict(dataclasses.replace(lad.sset, steps=4))
    assert here != student.student_dir(lad.root, arm.name, 0, other, key)
    assert here != student.student_dir(lad.root, arm.name, 0, dataclasses.asdict(lad.sset), "another teacher")
    for seed, settings in ((5, dataclasses.asdict(lad.sset)), (6, other)):
        write_record(lad.root / "students" / f"{arm.name}-s{seed}" / "record.json",
                     {"name": arm.name, "seed": seed, "settings": settings, "teacher_key": key, "milestones": {}})
    moved = lad._dir(arm, 5, "owl")
    assert (moved / "record.json").exists() and not (lad.root / "students" / f"{arm.name}-s5").exists()
    kept = lad._dir(arm, 6, "owl")
    assert not kept.exists() and (lad.root / "students" / f"{arm.name}-s6" / "record.json").exists()


def test_sampled_pools_travel_with_the_records_and_an_edited_copy_is_refused(tmp_path):
    from subliminal.topic_b.theory.run import sync_pools
    from subliminal.topic_b.transfer import sealed

    cache, arc, fresh = tmp_path / "cache" / "pools", tmp_path / "arc" / "pools", tmp_path / "fresh" / "pools"
    for name, body in (("m/neutral_w-k/shard_00000.jsonl", b'{"text": "1, 2"}\n'), ("m/neutral_w-k/settings.json", b"{}")):
        sealed.write_sealed(cache / name, body)
    (cache / "m" / "stray.jsonl").write_text("no seal")  # unsealed: never copied
    assert sync_pools(cache, arc) == 2 and sync_pools(cache, arc) == 0  # nothing new the second time
    assert sealed.read_sealed(arc / "m/neutral_w-k/shard_00000.jsonl") == b'{"text": "1, 2"}\n'
    assert not (arc / "m" / "stray.jsonl").exists()
    (arc / "m/neutral_w-k/shard_00000.jsonl").write_bytes(b'{"text": "9, 9"}\n')  # edited in the archive
    assert sync_pools(arc, fresh) == 1 and not (fresh / "m/neutral_w-k/shard_00000.jsonl").exists()


def test_the_plan_runs_a_and_b_then_the_theorem_rungs_then_the_rest_seed_by_seed():
    order = plan(CELLS, [0, 1])
    keys = [(c.key, s) for c, s, _ in order]
    assert len(order) == sum(len(c.traits()) for c in CELLS) * 2 and len(set((c.key, s, t) for c, s, t in order)) == len(order)
    groups = [{"a", "b"}, {"b-xinit", "b-full", "b-sgd"}, {"b-noisy", "b-neutral-inputs", "c"}]
    rank = [next(i for i, g in enumerate(groups) if k in g) for k, _ in keys]
    assert rank == sorted(rank)  # group by group
    for g in groups:  # within a group: seed 0 of every cell before seed 1
        seeds = [s for k, s in keys if k in g]
        assert seeds == sorted(seeds)
    # a seed's students of one cell come together, the neutral teacher's first
    first = [t for c, s, t in order if c.key == "b-full" and s == 1]
    assert first == ["neutral", "owl"]


def test_retrained_teachers_are_compared_with_the_first_ones(tmp_path):
    import json

    from subliminal.cache import read_record
    from subliminal.topic_b.theory.run import teacher_fingerprints

    committed = tmp_path / "run.json"  # an older run JSON: keys and final losses, no CPU, no check log-prob
    committed.write_text(json.dumps({"teachers": {"owl": {"key": "k1", "final_loss": 0.5, "steps": 50}}}))
    now = {"owl": {"key": "k1", "final_loss": 0.5000001, "check_completion_logp_example0": -5.0},
           "eagle": {"key": "k2", "final_loss": 0.6, "check_completion_logp_example0": -4.0}}
    logs = []
    got = teacher_fingerprints(now, tmp_path / "arc", committed, log=logs.append)
    assert set(got) == {"owl"} and got["owl"]["d_final_loss"] == pytest.approx(1e-7, abs=1e-12)
    assert got["owl"]["d_check_logp"] is None and "unrecorded CPU" in logs[0]
    first = read_record(tmp_path / "arc" / "teachers.json")
    assert first["owl"]["final_loss"] == 0.5  # the first record is kept, never replaced by a later run's teachers
    committed.unlink()
    again = teacher_fingerprints({"owl": {"key": "k1", "final_loss": 0.75}}, tmp_path / "arc", committed, log=logs.append)
    assert again["owl"]["d_final_loss"] == pytest.approx(0.25)
    assert teacher_fingerprints({"owl": {"key": "other", "final_loss": 1.0}}, tmp_path / "arc", committed,
                                log=logs.append) == {}  # other settings: another teacher, nothing to compare


def test_finished_students_of_a_later_group_are_in_the_outputs_from_the_first_write(tiny, tmp_path, monkeypatch):
    """A run whose plan puts unfinished students before finished ones (another order, more cells or seeds) still
    writes every finished student from its first write on, never tables without them."""
    from subliminal.topic_b.theory import run as theory_run

    monkeypatch.setattr(theory_run, "load_model", lambda name, device="cpu": tiny)
    cfg = dataclasses.replace(TheoryConfig.quick(), cells=("b-sgd",), seeds=(0,), steps=2, batch=2, milestones=(2,),
                              teacher_examples=8, out=str(tmp_path / "out"), cache=str(tmp_path / "c"), progress=False)
    theory_run.run(cfg, torch.device("cpu"), log=lambda m: None)
    writes, real = [], theory_run._write
    monkeypatch.setattr(theory_run, "_write", lambda cfg, records, *a, **k: (
        writes.append([r["name"] for r in records]), real(cfg, records, *a, **k)))
    theory_run.run(dataclasses.replace(cfg, cells=("b", "b-sgd")), torch.device("cpu"), log=lambda m: None)
    sgd = {CELLS[4].arm(t).name for t in ("neutral", "owl")}
    assert CELLS[4].key == "b-sgd" and len(writes) == 5
    assert sgd <= set(writes[0]) and len(writes[0]) == 3  # the first b student, and both finished SGD students
    assert writes[-1] == [CELLS[1].arm(t).name for t in ("neutral", "owl", "eagle")] + sorted(sgd)
    assert list(theory_run.read_record(tmp_path / "out" / "topic_b_transfer_theory_records" / "teachers.json")) \
        == ["neutral", "owl", "eagle"]


def test_rung_contrasts_test_the_difference_from_cell_b_paired_by_seed():
    from subliminal.topic_b.theory.analysis import rung_contrasts

    rows = []
    # real rung keys (the family 'rungs' is declared in cells.FAMILIES): x = b-sgd, same = b-full, one = c
    effects = {"b": {0: 1.0, 1: 1.2, 2: 0.9}, "b-sgd": {0: 0.1, 1: 0.25, 2: 0.0},
               "b-full": {0: 1.01, 1: 1.15, 2: 0.95}, "c": {0: 0.0}}
    for cell, by_seed in effects.items():
        for seed, e in by_seed.items():
            for q in ("q1", "q2"):
                for teacher, share in (("owl", -3.0 + e + (0.1 if q == "q1" else -0.1)), ("neutral", -3.0)):
                    rows.append({"cell": cell, "teacher": teacher, "seed": seed, "step": 60 if cell != "c" else 30,
                                 "question": q, "animal": "owl", "logp": share, "share": share})
                rows.append({"cell": cell, "teacher": "owl", "seed": seed, "step": 10, "question": q, "animal": "owl",
                             "logp": 0.0, "share": 5.0})  # an earlier milestone: not the one compared
    v = rung_contrasts(pd.DataFrame(rows), list(effects), ["owl", "eagle"]).set_index("cell")
    assert list(v.index) == ["b-sgd", "b-full", "c"]  # b itself is the reference; no eagle rows without eagle students
    assert v.loc["b-sgd", "mean"] == pytest.approx(np.mean([0.1 - 1.0, 0.25 - 1.2, 0.0 - 0.9]))
    assert v.loc["b-sgd", "n_seeds"] == 3 and v.loc["b-sgd", "reading"] == "smaller than b"
    assert v.loc["b-full", "reading"] == "not distinguishable from b"
    assert v.loc["c", "reading"] == "too few seeds" and v.loc["c", "step"] == 30
    # Holm inside the declared family of the rungs, its size fixed (untested members count as p = 1)
    from subliminal.stats import holm
    from subliminal.topic_b.theory.cells import FAMILIES
    m = len(FAMILIES["rungs"])
    p = [v.loc["b-sgd", "p"], v.loc["b-full", "p"]] + [1.0] * (m - 2)
    assert v.loc["b-sgd", "p_holm"] == pytest.approx(holm(p)[0])
    assert v.loc["b-sgd", "ci_high"] < 0  # the CI at the reading's level agrees with the reading
    assert v.loc["b-sgd", "keep"] == pytest.approx(0.35 / 3.1)  # mean rung effect / mean b effect


def test_keep_ratio_is_fiellers_interval_for_a_ratio_of_paired_means():
    from scipy import stats

    from subliminal.topic_b.theory.analysis import keep_ratio

    x, y = np.array([0.05, 0.09, 0.07, 0.06]), np.array([0.08, 0.11, 0.10, 0.09])
    got = keep_ratio(x, y)
    assert got["keep"] == pytest.approx(x.mean() / y.mean())
    # brute force: the ratios r at which the paired t-test of x - r y does not reject at 5%
    grid = np.linspace(0, 2, 200001)
    d = x[None, :] - grid[:, None] * y[None, :]
    tval = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(len(x)))
    inside = grid[np.abs(tval) <= stats.t.ppf(0.975, len(x) - 1)]
    assert got["keep_ci_low"] == pytest.approx(inside.min(), abs=2e-5)
    assert got["keep_ci_high"] == pytest.approx(inside.max(), abs=2e-5)
    noisy = keep_ratio(np.array([0.1, -0.1, 0.05]), np.array([0.1, -0.08, 0.02]))  # the denominator is not significant
    assert np.isnan(noisy["keep_ci_low"]) and np.isnan(noisy["keep_ci_high"])
    assert np.isnan(keep_ratio(x[:1], y[:1])["keep_ci_low"])


def test_the_committed_power_plan_is_reproduced_from_the_committed_records():
    """The plan stated before the new seeds (plots_b/..._power_plan.json) follows from the records of its seeds."""
    from subliminal.topic_b.theory import power_plan

    root = Path(__file__).resolve().parents[1] / "plots_b"
    stated = power_plan.read(root)
    if not stated:
        pytest.skip("no committed power plan")
    df, used = power_plan.plan(root / f"{power_plan.STEM}_records", tuple(stated["seeds"]))
    assert used == stated["records"]
    for got, want in zip(df.to_dict("records"), stated["plan"]):
        assert (got["cell"], got["animal"], got["seeds_needed"]) == (want["cell"], want["animal"], want["seeds_needed"])
        assert got["sd_per_seed"] == pytest.approx(want["sd_per_seed"], rel=1e-9)
    assert power_plan.main(["--out", str(root)]) == 0  # an existing plan is never overwritten without --force
    assert power_plan.read(root) == stated


def test_a_finished_student_keeps_its_final_adapter_verified_in_16_bits(lad):
    """Issue 42: a finished LoRA student's final adapter stays in the cache (fp16, its SHA-256 in the record), so it
    can be scored or probed again without retraining; an edited file is refused."""
    cell_b = CELLS[1]
    rec = _train(lad, cell_b, 11, "owl")
    out = lad.root / "s" / f"{cell_b.arm('owl').name}-s11"
    got = student.read_adapter(rec, out)
    assert rec["complete"] and got and all(v.dtype == torch.float16 for v in got.values())
    assert all(".lora_A." in k or ".lora_B." in k for k in got) and any(v.abs().sum() > 0 for k, v in got.items() if ".lora_B." in k)
    (out / student.ADAPTER).write_bytes((out / student.ADAPTER).read_bytes()[:-4] + b"\0\0\0\0")
    assert student.read_adapter(rec, out) is None


def test_by_layer_gives_nan_without_a_warning_for_a_layer_with_no_finite_cosine():
    import math
    import warnings

    from subliminal.topic_b.theory.readouts import by_layer

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = by_layer({"m.layers.3.q": float("nan"), "m.layers.3.k": float("nan"), "m.layers.4.q": 0.5,
                      "m.layers.4.k": float("nan"), "m.head": 0.9})
    assert math.isnan(r["layers.3"]) and r["layers.4"] == 0.5 and set(r) == {"layers.3", "layers.4"}
