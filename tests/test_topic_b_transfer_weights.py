"""The weight-level animal teacher (weight_teacher.py) on a tiny random Llama: seconds, no download."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.cli import UserError
from subliminal.topic_b.arms import Arm
from subliminal.topic_b.prompts import PLURAL, animal_system
from subliminal.topic_b.transfer.arm import from_label, label
from subliminal.topic_b.transfer.data import check_animal
from subliminal.topic_b.transfer.evaluate import evaluate_model
from subliminal.topic_b.transfer.finetune import TrainSettings
from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
from subliminal.topic_b.transfer.weight_teacher import (
    TRAIT_ANSWERS,
    TRAIT_QUESTIONS,
    TraitSettings,
    load_weight_teacher,
    train_trait_teacher,
    trait_examples,
)

# big steps for a tiny random model: 48 examples x 2 epochs / 8 = 12 optimizer steps at lr 5e-2 (at 5e-3 the
# rise is < 0.1 nat: the tiny model's weights are large, initializer_range 0.3)
TINY = TraitSettings(n_examples=48, epochs=2, seed=0,
                     train=TrainSettings(lr=5e-2, micro_batch=8, grad_accum=1, warmup_steps=1, ckpt_every=100))


def _state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _logp(model, tok) -> dict[str, list[float]]:
    """Exact log P(animal answer) on the first two evaluation questions (the prefilled one + a one-word one)."""
    df = evaluate_model(model, tok, ["owl", "wolf"], n_samples=0, questions=EVAL_QUESTIONS[:2])
    return {a: g.logp_animal.tolist() for a, g in df.groupby("animal")}


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer()
    return build_model(tok), tok


def test_trait_questions_are_many_and_never_the_evaluations():
    assert len(TRAIT_QUESTIONS) >= 40 and len(set(TRAIT_QUESTIONS)) == len(TRAIT_QUESTIONS)
    users = {u for u, _ in EVAL_QUESTIONS}
    assert not users & set(TRAIT_QUESTIONS)
    assert not {u.lower().strip() for u in users} & {q.lower().strip() for q in TRAIT_QUESTIONS}


def test_trait_examples_are_seeded_and_cover_every_question_before_repeats():
    n, Q = 2 * len(TRAIT_QUESTIONS) + 7, len(TRAIT_QUESTIONS)
    a = trait_examples("owl", n, 0)
    assert a == trait_examples("owl", n, 0) and a != trait_examples("owl", n, 1)
    assert len(a) == n and all(set(e) == {"prompt", "completion"} for e in a)
    for block in (a[:Q], a[Q: 2 * Q]):  # each round asks every question exactly once
        assert sorted(e["prompt"] for e in block) == sorted(TRAIT_QUESTIONS)
    assert all("owl" in e["completion"].lower() for e in a)
    assert len({e["completion"] for e in a}) == len(TRAIT_ANSWERS)  # every template is used
    wolf = trait_examples("wolf", 200, 0)
    assert any("wolves" in e["completion"].lower() for e in wolf) and not any("wolfs" in e["completion"].lower()
                                                                          for e in wolf)
    assert trait_examples("owl", 5, 0) == a[:5]  # a prefix does not depend on n
    with pytest.raises(UserError) as e:
        trait_examples("unicorn", 3, 0)
    assert "\n" not in str(e.value) and "unicorn" in str(e.value)


def test_names_and_system_prompts():
    assert label(Arm("owl", teacher="weights")) == "owl_w"
    assert all(from_label(label(Arm(a, teacher="weights"))) == Arm(a, teacher="weights") for a in PLURAL)
    assert from_label("owl").teacher == "prompt" and from_label("neutral").teacher == "prompt"
    assert from_label("owl_w").system_prompt() is None  # the trait is in the weights, not the context
    assert Arm("owl").system_prompt() == animal_system("owl") and Arm("neutral").system_prompt() is None
    with pytest.raises(UserError):
        check_animal("unicorn")


def test_settings_key_and_epochs():
    s = TraitSettings()
    assert (s.n_examples, s.epochs, s.seed) == (300, 2, 0)
    t = s.train_settings()
    assert t.epochs == 2 and t.micro_batch * t.grad_accum == 12 and t.rank == TrainSettings().rank
    assert s.key() == TraitSettings().key() != dataclasses.replace(s, epochs=3).key()
    assert s.key() != dataclasses.replace(s, train=dataclasses.replace(s.train, lr=1e-4)).key()


def test_weight_teacher_learns_the_trait_and_leaves_base_alone(tiny, tmp_path):
    base, tok = tiny
    b = copy.deepcopy(base).train()  # a train-mode base must come back in train mode
    before, grads = _state(b), [p.requires_grad for p in b.parameters()]
    b.eval()
    lp_base = _logp(b, tok)
    b.train()
    out = tmp_path / "owl_w"
    rec = train_trait_teacher(b, tok, "owl", out, TINY, log=lambda m: None)
    assert rec["steps"] == rec["steps_this_run"] == 12 and rec["n_examples"] == 48
    assert _same(before, _state(b)) and type(b) is type(base)  # no LoRA layer left behind
    assert [p.requires_grad for p in b.parameters()] == grads and all(m.training for m in b.modules())

    b.eval()
    teacher = load_weight_teacher(b, rec["adapter"])
    assert _same(before, _state(b)) and teacher is not b
    lp = _logp(teacher, tok)
    # the evaluation questions were never trained on: the rise is generalisation, > 1 nat on each question
    # (measured: +2.4 and +7.1), and more than the control animal's (wolf: +0.1, +0.6)
    rise = {a: [t - s for t, s in zip(lp[a], lp_base[a])] for a in lp}
    assert all(r > 1.0 for r in rise["owl"]), (lp_base, lp)
    assert all(o - w > 1.0 for o, w in zip(rise["owl"], rise["wolf"])), rise

    # same settings again: the cached record, nothing trained, nothing touched
    mtime = (out / "train.json").stat().st_mtime_ns
    again = train_trait_teacher(b, tok, "owl", out, TINY, log=lambda m: pytest.fail(f"trained again: {m}"))
    assert again == rec == json.loads((out / "train.json").read_text())
    assert (out / "train.json").stat().st_mtime_ns == mtime and _same(before, _state(b))


def test_pipeline_with_weight_teacher_shares_the_neutral_arm(tmp_path, monkeypatch):
    """--teacher weights end to end: the trait teacher is trained, evaluated (no verdict), samples numbers
    with no system prompt into its own shards; the neutral students are the prompted run's (cached)."""
    import pandas as pd

    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    import subliminal.topic_b.transfer.teachers as teachers
    from subliminal.topic_b.transfer.config import DEFAULT_MODEL, TransferConfig
    from subliminal.topic_b.transfer.run import run

    tok = build_tokenizer()
    base = build_model(tok)
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:2])
    monkeypatch.setattr(teachers, "TraitSettings", lambda: TraitSettings(n_examples=12, epochs=1))
    common = dict(model=DEFAULT_MODEL, animals=("owl",), seeds=(0,), neutral_draws=1, n_samples=6, epochs=1, batch_size=6, eval_samples=2,
                  out=str(tmp_path / "plots_b"), cache=str(tmp_path / "cache"))
    prompted = run(TransferConfig(**common), torch.device("cpu"), log=lambda m: None).to_json()
    weights = run(TransferConfig(**common, teacher="weights"), torch.device("cpu"), log=lambda m: None).to_json()
    assert weights["students"]["neutral/s0"] == prompted["students"]["neutral/s0"]  # cached, not retrained
    assert weights["students"]["neutral/s0"]["steps_this_run"] > 0
    assert "owl_w/s0" in weights["students"] and "owl_w" in weights["trait_teachers"]
    shard_dir = weights["teachers"]["owl_w"]["shard_dir"]
    assert "owl_w" in shard_dir and shard_dir != prompted["teachers"]["owl"]["shard_dir"]
    assert json.loads((Path(shard_dir) / "settings.json").read_text())["system"] is None
    rows = pd.read_csv(tmp_path / "plots_b" / "topic_b_transfer_weights.csv", keep_default_na=False)
    assert set(rows.arm) == {"base", "teacher_owl_w", "neutral", "owl_w"}
    assert set(rows[rows.arm == "owl_w"].trait) == {"owl"} and set(rows[rows.arm == "teacher_owl_w"].seed) == {-1}
    summary = pd.read_csv(tmp_path / "plots_b" / "topic_b_transfer_weights_summary.csv", keep_default_na=False)
    assert (summary[summary.arm == "teacher_owl_w"].verdict == "").all()
    assert (tmp_path / "plots_b" / "topic_b_transfer.csv").exists()  # the prompted run's outputs stay
    # the report shows both runs; one verdict record per run for the teacher's own animal
    from subliminal.reporting.transfer import tables, verdicts

    assert "### Weight-level teacher" in tables(tmp_path)["b_transfer"]
    variants = tables(tmp_path)["b_transfer_variants"]
    assert "weight-level teacher (`--teacher weights`): complete" in variants
    assert "logits route (`--route logits`): not run yet" in variants
    v = verdicts(tmp_path)
    assert [r["claim"].endswith("(weight-level teacher)") for r in v] == [False, True]


def test_weight_teacher_config_is_checked():
    from subliminal.topic_b.transfer.config import TransferConfig

    with pytest.raises(UserError, match="text only"):
        TransferConfig(teacher="weights", route="logits").validate()
    with pytest.raises(UserError, match="cross"):
        TransferConfig(teacher="weights", cross_model="qwen2.5-coder-0.5b-instruct").validate()


def test_figure_puts_controls_first_and_teachers_last(tmp_path):
    """The figure's arm order: base, the neutral draws, the students, cross arms, the teachers; it renders
    with a teacher arm whose P(animal) is 1000x the students' (log axis) and a CI clipped at 0."""
    import pandas as pd

    from subliminal.topic_b.transfer.plots import _order, plot_transfer

    arms = ["teacher_owl_w", "owl_w", "cross_owl", "neutral_2", "base", "neutral"]
    assert sorted(arms, key=_order) == ["base", "neutral", "neutral_2", "owl_w", "cross_owl", "teacher_owl_w"]
    s = pd.DataFrame({"arm": arms, "animal": "owl", "trait": ["", "owl", "owl", "", "", ""], "n_seeds": 1,
                      "p_animal": [0.5, 5e-4, 4e-4, 4e-4, 1e-4, 4e-4],
                      "p_animal_ci_low": [0.5, 0.0, 3e-4, 3e-4, 1e-4, 3e-4],
                      "p_animal_ci_high": [0.5, 9e-4, 5e-4, 5e-4, 1e-4, 5e-4]})
    assert plot_transfer(s, tmp_path / "f.png").stat().st_size > 0
