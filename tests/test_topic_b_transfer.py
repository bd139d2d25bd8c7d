"""Subliminal transfer pipeline (topic_b_transfer.py) on tiny random Llamas: seconds, no download."""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from tiny_lm import build_model, build_tokenizer

from subliminal.cache import config_hash
from subliminal.topic_b.prompts import animal_system
from subliminal.topic_b.sampling import end_ids
from subliminal.topic_b.transfer.analysis import summarize_transfer
from subliminal.topic_b.transfer.config import DEFAULT_MODEL
from subliminal.topic_b.transfer.data import (
    ShardSettings,
    examples_of,
    is_valid,
    match_arms,
    sample_prompts,
    teacher_records,
)
from subliminal.topic_b.transfer.finetune import (
    TrainSettings,
    completion_logp,
    load_student,
    settings_id,
    student_text,
    tokenize_example,
    train_student,
)
from subliminal.topic_b.transfer.prompts import chat_prompt, number_prompt


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer()
    return build_model(tok), tok


@pytest.fixture
def tiny_cfg(tiny, tmp_path, monkeypatch):
    """A whole transfer run in seconds: the tiny model stands in for the base model, the evaluation asks the
    first question only. Returns cfg(**overrides) -> TransferConfig (1 owl seed, 6 samples, outputs in
    tmp_path/o, caches in tmp_path/c)."""
    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS

    base, tok = tiny
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:1])
    defaults = dict(model="tiny", animals=("owl",), seeds=(0,), n_samples=6, epochs=1, batch_size=6, eval_samples=1,
                    out=str(tmp_path / "o"), cache=str(tmp_path / "c"), neutral_draws=1)
    return lambda **kw: TransferConfig(**(defaults | kw))


def _examples(n=12):
    rng = np.random.default_rng(0)
    return [{"prompt": number_prompt(0, i), "completion": ", ".join(str(x) for x in rng.integers(0, 999, 5))}
            for i in range(n)]


def test_prompts_are_seeded_and_varied():
    a = [number_prompt(0, i) for i in range(50)]
    assert a == [number_prompt(0, i) for i in range(50)]  # same seed, same prompts
    assert len(set(a)) == 50 and a != [number_prompt(1, i) for i in range(50)]
    assert len({p.split(":")[0] for p in a}) > 3  # several openings
    for p in a:
        seeds = p.split(":")[1].split(".")[0].split(", ")
        assert 3 <= len(seeds) <= 9 and all(100 <= int(x) <= 999 for x in seeds)
        assert "10" in p and "3 digits" in p


def test_filter_rejects_letters_and_bad_lists():
    ok = {"text": "123, 45, 6", "finished": True}
    assert is_valid(ok)[0]
    assert not is_valid({"text": "123, owl, 6", "finished": True})[0]
    assert is_valid({"text": "1, 2 e", "finished": True}) == (False, "has_letter")
    assert not is_valid({"text": "1234, 5", "finished": True})[0]
    assert not is_valid({"text": "1, 2", "finished": False})[0]


def test_grammar_makes_every_sample_valid(tiny):
    model, tok = tiny
    prompts = [chat_prompt(tok, number_prompt(0, i), animal_system("owl")) for i in range(48)]
    free = sample_prompts(model, tok, prompts, 1, max_new_tokens=64, grammar=False)
    ruled = sample_prompts(model, tok, prompts, 1, max_new_tokens=64)
    assert sum(is_valid(r)[0] for r in free) < 10  # a random model almost never writes a valid list
    assert all(is_valid(r)[0] for r in ruled)
    assert len({r["text"] for r in ruled}) > 20  # still sampling, not one forced answer
    assert all(len(r["text"].replace(";", ",").replace(" ", ",").split(",")) <= 11 for r in ruled)


def test_shards_resume_and_match(tiny, tmp_path):
    model, tok = tiny
    s = ShardSettings("tiny", "owl", animal_system("owl"), 0, 8, 64, 1.0)
    a, st = teacher_records(model, tok, s, 12, tmp_path, log=lambda m: None)
    assert st["n_new_shards"] == 2 and len(a) == 12 and st["valid_fraction"] == 1.0
    b, st2 = teacher_records(model, tok, s, 12, tmp_path, log=lambda m: None)
    assert st2["n_new_shards"] == 0 and [r["text"] for r in a] == [r["text"] for r in b]
    m = match_arms({"x": examples_of(a), "y": examples_of(a[:7])})
    assert len(m["x"]) == len(m["y"]) == 7


def test_loss_mask_covers_only_the_completion(tiny):
    _, tok = tiny
    ex = {"prompt": number_prompt(0, 3), "completion": "12, 345, 6"}
    ids, labels = tokenize_example(tok, ex)
    p, full = student_text(tok, ex["prompt"], ex["completion"])
    kept = [i for i, la in zip(ids, labels) if la != -100]
    assert tok.decode(kept) == full[len(p):]  # exactly completion + end of turn, nothing of the prompt
    assert full[len(p):].startswith("12, 345, 6")
    assert labels[: len(ids) - len(kept)] == [-100] * (len(ids) - len(kept))


def test_student_never_sees_a_system_prompt(tiny):
    _, tok = tiny
    ex = {"prompt": number_prompt(0, 1), "completion": "1, 2"}
    p, full = student_text(tok, ex["prompt"], ex["completion"])
    assert "owl" not in full.lower() and "system" not in full
    assert p == chat_prompt(tok, ex["prompt"], None)  # what the neutral teacher saw
    assert set(examples_of([{"prompt": "q", "text": "1", "x": 1}])[0]) == {"prompt", "completion"}


def _weights(d):
    return load_file(str(d / "adapter" / "adapter_model.safetensors"))


def test_resume_gives_the_same_weights_and_adapter_reloads(tiny, tmp_path):
    base, tok = tiny
    exs = _examples(12)
    s = TrainSettings(micro_batch=4, grad_accum=2, epochs=2, ckpt_every=1, lr=5e-3)
    with warnings.catch_warnings(record=True) as caught:  # peft's deprecated-property read is silenced
        warnings.simplefilter("always")
        full = train_student(copy.deepcopy(base), tok, exs, tmp_path / "a", s, 3, data_hash="h", log=lambda m: None)
        load_student(copy.deepcopy(base), full["adapter"])
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    b = copy.deepcopy(base).train()
    before = {n: (p.detach().clone(), p.requires_grad) for n, p in b.named_parameters()}
    part = train_student(b, tok, exs, tmp_path / "b", s, 3, data_hash="h", stop_after=2, log=lambda m: None)
    assert part == {"stopped_at": 2} and (tmp_path / "b" / "checkpoint.safetensors").exists()
    # a stopped run hands `base` back as it came: no LoRA layer left in, same weights, flags and mode
    after = dict(b.named_parameters())
    assert after.keys() == before.keys() and b.training and not hasattr(b, "peft_config")
    assert all(torch.equal(after[n], w) and after[n].requires_grad == g for n, (w, g) in before.items())
    # how often it checkpoints does not name the student: a run stopped under one interval resumes under another
    rest = train_student(b, tok, exs, tmp_path / "b", replace(s, ckpt_every=3), 3, data_hash="h", log=lambda m: None)
    assert rest["steps_this_run"] == full["steps"] - 2 == 2 and rest["key"] == full["key"]
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(float(v.abs().sum()) > 0 for k, v in wa.items() if "lora_B" in k)  # it did train
    # the saved adapter (standard PEFT files) reloads to the trained model's log-probs
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (tmp_path / "a" / "adapter").iterdir()}
    student = load_student(copy.deepcopy(base), full["adapter"])
    lp = completion_logp(student, tokenize_example(tok, exs[0]), tok.pad_token_id, "cpu")
    assert lp == pytest.approx(full["check_completion_logp_example0"], abs=1e-4)
    assert lp != pytest.approx(completion_logp(base, tokenize_example(tok, exs[0]), tok.pad_token_id, "cpu"),
                               abs=1e-3)
    # a different seed is a different student; a corrupt checkpoint is ignored, not trusted
    other = train_student(copy.deepcopy(base), tok, exs, tmp_path / "c", s, 4, data_hash="h", log=lambda m: None)
    assert other["check_completion_logp_example0"] != full["check_completion_logp_example0"]


def test_bf16_student_has_its_own_key_and_never_resumes_an_fp32_checkpoint(tiny, tmp_path):
    # a run must not mix precisions: a bf16 student is keyed apart, so a stopped fp32 run is not continued in
    # bf16 (or the other way round), and fp32 students keep the keys they had before the flag existed
    base, tok = tiny
    exs = _examples(8)
    s = TrainSettings(micro_batch=4, grad_accum=1, epochs=1, ckpt_every=1)
    assert "bf16" not in settings_id(s) and settings_id(replace(s, bf16=True))["bf16"] is True
    train_student(copy.deepcopy(base), tok, exs, tmp_path / "x", s, 0, data_hash="h", stop_after=1, log=lambda m: None)
    rec = train_student(copy.deepcopy(base), tok, exs, tmp_path / "x", replace(s, bf16=True), 0, data_hash="h",
                        log=lambda m: None)
    assert rec["steps_this_run"] == rec["steps"] and rec["bf16_autocast"] is True  # started over, in bf16
    fp32 = train_student(copy.deepcopy(base), tok, exs, tmp_path / "y", s, 0, data_hash="h", log=lambda m: None)
    assert fp32["key"] != rec["key"] and fp32["bf16_autocast"] is False


def test_committed_students_keep_their_keys():
    # every text-route student of the committed runs (their records in plots_b/topic_b_transfer*.json) is found
    # again by today's key (a changed key would silently retrain, or orphan, hours of committed students)
    recs = [r for p in (Path(__file__).parents[1] / "plots_b").glob("topic_b_transfer*.json")
            for r in (json.loads(p.read_text()).get("students") or {}).values() if isinstance(r, dict) and "key" in r]
    text = [r for r in recs if r.get("objective", "text") == "text"]
    assert len(text) >= 10
    for r in text:
        st = TrainSettings(**{k: v for k, v in r["settings"].items() if k != "ckpt_every"})
        assert config_hash({"settings": settings_id(st), "seed": r["seed"], "data": r["data_hash"]}) == r["key"]


def test_corrupt_checkpoint_is_not_trusted(tiny, tmp_path):
    base, tok = tiny
    exs = _examples(8)
    s = TrainSettings(micro_batch=4, grad_accum=1, epochs=1, ckpt_every=1)
    train_student(copy.deepcopy(base), tok, exs, tmp_path / "x", s, 0, data_hash="h", stop_after=1, log=lambda m: None)
    ck = tmp_path / "x" / "checkpoint.safetensors"
    ck.write_bytes(ck.read_bytes()[:-8] + b"\0" * 8)
    rec = train_student(copy.deepcopy(base), tok, exs, tmp_path / "x", s, 0, data_hash="h", log=lambda m: None)
    assert rec["steps_this_run"] == rec["steps"]  # started over


def test_summary_ratios_against_a_plain_computation():
    rows = []
    rng = np.random.default_rng(1)
    for arm, shift in (("base", 0.0), ("neutral", 0.5), ("owl", 1.5)):
        for seed in ([-1] if arm == "base" else [0, 1, 2]):
            for q in range(4):
                lp = -3 + shift + rng.normal(0, 0.1)
                rows.append({"model": "m", "arm": arm, "trait": "owl" if arm == "owl" else "", "animal": "owl",
                             "seed": seed, "question": f"q{q}", "prefill": "", "p_animal": np.exp(lp),
                             "logp_animal": lp, "freq_animal": 0.0, "n_samples": 1,
                             "train_tokens": np.nan if arm == "base" else 250_000})
    df = pd.DataFrame(rows)
    s = summarize_transfer(df).set_index("arm")
    sm = df.groupby(["arm", "seed"]).logp_animal.mean()
    d = (sm["owl"] - sm["neutral"]).to_numpy()
    assert s.loc["owl", "ratio_to_neutral"] == pytest.approx(np.exp(d.mean()))
    # per million loss tokens: the same shift and CI, divided by 0.25
    assert s.loc["owl", "logp_shift_per_mtok"] == pytest.approx(d.mean() / 0.25)
    lo, hi = np.log(s.loc["owl", ["ratio_to_neutral_ci_low", "ratio_to_neutral_ci_high"]].to_numpy(float))
    assert s.loc["owl", ["logp_shift_per_mtok_ci_low", "logp_shift_per_mtok_ci_high"]].to_numpy(float) == \
        pytest.approx([lo / 0.25, hi / 0.25])
    assert s.loc["owl", "train_tokens"] == 250_000 and np.isnan(s.loc["base", "train_tokens"])
    assert s.loc["owl", "ratio_to_base"] == pytest.approx(np.exp((sm["owl"] - sm["base"].iloc[0]).mean()))
    assert s.loc["owl", "verdict"] == "transfer" and s.loc["owl", "paired_n"] == 12
    assert s.loc["neutral", "verdict"] == ""


def _draw_rows(draw_shift: dict[str, float], seeds=(0, 1, 2), noise=0.01, seed=3) -> pd.DataFrame:
    """log P(owl) per arm = -4 + the arm's draw shift + small training noise per (seed, question)."""
    rng, rows = np.random.default_rng(seed), []
    for arm, shift in {"base": 0.0, **draw_shift}.items():
        for sd in ([-1] if arm == "base" else seeds):
            for q in range(3):
                lp = -4 + shift + rng.normal(0, noise)
                rows.append({"model": "m", "arm": arm, "trait": "owl" if arm == "owl" else "", "animal": "owl",
                             "seed": sd, "question": f"q{q}", "prefill": "", "p_animal": np.exp(lp),
                             "logp_animal": lp, "freq_animal": 0.0, "n_samples": 1, "train_tokens": 1e5})
    return pd.DataFrame(rows)


def test_summary_order_does_not_depend_on_the_order_students_came_in():
    """A run extended by an arm reports cached students first: the summary (and the README built from it)
    still lists base, the neutral draws, the animal teachers in run order, then the cross arms."""
    df = _draw_rows({"cross_owl": 0.3, "neutral": 0.0, "owl": 0.1, "eagle": 0.0, "neutral_2": 0.0})
    order = ["base", "cross_owl", "neutral", "owl", "eagle", "neutral_2"]
    got = summarize_transfer(df.sort_values("arm", key=lambda a: a.map(order.index), kind="stable"))
    assert list(got.arm) == ["base", "neutral", "neutral_2", "owl", "eagle", "cross_owl"]


def test_neutral_draws_put_draw_to_draw_variation_in_the_ci():
    """One draw of owl data 0.09 below neutral draw 1, which a second neutral draw matches (0.08 below): the
    seed CI (conditional on the draws) says 'reverse'; the draw-aware CI does not."""
    from scipy import stats as sps

    df = _draw_rows({"neutral": 0.0, "owl": -0.09, "neutral_2": -0.08})
    s = summarize_transfer(df).set_index("arm")
    owl = s.loc["owl"]
    assert owl.ratio_to_neutral_ci_high < 1  # conditional on the draws: a tight 'reverse'
    sm = df[df.arm != "base"].groupby(["arm", "seed"]).logp_animal.mean().unstack("arm")
    m = sm.mean()
    est = m["owl"] - (m["neutral"] + m["neutral_2"]) / 2
    half = sps.t.ppf(0.975, 1) * np.sqrt(np.var([m["neutral"], m["neutral_2"]], ddof=1) * 1.5)
    assert owl.ratio_to_neutral_draws == pytest.approx(np.exp(est))
    assert [owl.ratio_to_neutral_draws_ci_low, owl.ratio_to_neutral_draws_ci_high] == \
        pytest.approx([np.exp(est - half), np.exp(est + half)])
    assert owl.n_neutral_draws == 2 and owl.verdict_basis == "neutral draws" and owl.verdict == "none detected"
    assert owl.draws_n_seeds == 3
    assert owl.max_ratio_excluded == pytest.approx(owl.ratio_to_neutral_draws_ci_high)
    assert s.loc["neutral_2", "verdict"] == "" and s.loc["neutral_2", "trait"] == ""
    # the sensitivity CI pools the draws' variance over animals: eagle's draws differ 10x more
    eagle = _draw_rows({"neutral": 0.0, "owl": 0.0, "neutral_2": -0.8}, seed=4).assign(animal="eagle")
    both = summarize_transfer(pd.concat([df, eagle], ignore_index=True)).set_index(["arm", "animal"])
    o = both.loc[("owl", "owl")]
    assert o.ratio_to_neutral_draws_ci_low == pytest.approx(owl.ratio_to_neutral_draws_ci_low)  # own CI unchanged
    e = eagle[eagle.arm != "base"].groupby(["arm", "seed"]).logp_animal.mean().unstack("arm").mean()
    v = (np.var([m["neutral"], m["neutral_2"]], ddof=1) + np.var([e["neutral"], e["neutral_2"]], ddof=1)) / 2
    assert o.draws_pooled_df == 2 and o.ratio_to_neutral_draws_pooled_ci_high == \
        pytest.approx(np.exp(est + sps.t.ppf(0.975, 2) * np.sqrt(v * 1.5)))
    # neutral draws that agree closely: the owl arm's shift stands out
    far = summarize_transfer(_draw_rows({"neutral": 0.0, "owl": 1.0, "neutral_2": 0.002})).set_index("arm")
    assert far.loc["owl", "verdict"] == "transfer" and far.loc["owl", "ratio_to_neutral_draws_ci_low"] > 1
    # one draw only: the seeds CI decides, as before, and says so
    one = summarize_transfer(_draw_rows({"neutral": 0.0, "owl": -0.09})).set_index("arm")
    assert one.loc["owl", "verdict_basis"] == "training seeds" and one.loc["owl", "verdict"] == "reverse"


@pytest.mark.parametrize("planned, expect", [(1, "contradicts"), (2, "untestable here")])
def test_verdict_waits_for_the_planned_neutral_draw(tmp_path, planned, expect):
    """A seed-consistent drop on one draw of data: 'contradicts' when the run plans no draw control; while
    the planned second neutral draw has no student, only provisional."""
    from subliminal.reporting.transfer import verdicts

    d = tmp_path / "plots_b"
    d.mkdir()
    summarize_transfer(_draw_rows({"neutral": 0.0, "owl": -0.9})).to_csv(d / "topic_b_transfer_summary.csv",
                                                                        index=False)
    (d / "topic_b_transfer.json").write_text(json.dumps({"config": {"neutral_draws": planned}, "complete": False}))
    (v,) = verdicts(tmp_path)
    assert v["verdict"] == expect and "went *down*" in v["evidence"]
    assert ("provisional" in v["evidence"]) == (planned == 2)


def test_logits_route_verdict_does_not_wait_for_neutral_draws(tmp_path):
    """The logits route has one neutral arm (every arm distils on its sequences): the text route's
    --neutral-draws default in its config must not leave its verdict provisional."""
    from subliminal.reporting.transfer import verdicts

    d = tmp_path / "plots_b"
    d.mkdir()
    summarize_transfer(_draw_rows({"neutral": 0.0, "owl": -0.9})).to_csv(d / "topic_b_transfer_logits_summary.csv",
                                                                        index=False)
    (d / "topic_b_transfer_logits.json").write_text(json.dumps(
        {"config": {"neutral_draws": 2, "route": "logits"}, "complete": False}))
    (v,) = [v for v in verdicts(tmp_path) if "(logits route)" in v["claim"]]
    assert v["verdict"] == "contradicts" and "provisional" not in v["evidence"]
    # a run that records its planned draws is taken at its word, whatever its config says
    (d / "topic_b_transfer_logits.json").write_text(json.dumps(
        {"config": {"neutral_draws": 1, "route": "logits"}, "neutral_draws_planned": 2, "complete": False}))
    (v,) = [v for v in verdicts(tmp_path) if "(logits route)" in v["claim"]]
    assert v["verdict"] == "untestable here" and "provisional" in v["evidence"]


def test_neutral_draw_names():
    from subliminal.topic_b.arms import Arm
    from subliminal.topic_b.transfer.arm import from_label, label, neutral_row

    assert [label(Arm("neutral", draw=k - 1)) for k in (1, 2, 3)] == ["neutral", "neutral_2", "neutral_3"]
    assert all(neutral_row(label(Arm("neutral", draw=k - 1))) for k in (1, 2, 12))
    assert not any(neutral_row(x) for x in ("neutral_1", "neutral_", "neutral_x", "owl", "neutrals", "cross_neutral",
                                            "neutral_w", "base", "teacher_owl_w"))
    a = from_label("neutral_2")
    assert a.system_prompt() is None and a.neutral and a.draw == 1


@pytest.mark.parametrize("eagle_shift, specific", [(0.0, "yes"), (1.0, "no")])
def test_specificity_removes_the_generic_shift(eagle_shift, specific):
    """The owl arm raises P(owl) by e^1 vs neutral; P(eagle) by e^eagle_shift. Raising every animal
    alike is transfer of *something* but not specific to the teacher's animal."""
    rows, rng = [], np.random.default_rng(2)
    for arm in ("base", "neutral", "owl"):
        for seed in ([-1] if arm == "base" else [0, 1, 2, 3]):
            for animal, shift in (("owl", 1.0), ("eagle", eagle_shift)):
                for q in range(3):
                    lp = -4 + (shift if arm == "owl" else 0.0) + rng.normal(0, 0.05)
                    rows.append({"model": "m", "arm": arm, "trait": "owl" if arm == "owl" else "", "animal": animal,
                                 "seed": seed, "question": f"q{q}", "prefill": "", "p_animal": np.exp(lp),
                                 "logp_animal": lp, "freq_animal": 0.0, "n_samples": 1})
    df = pd.DataFrame(rows)
    s = summarize_transfer(df).set_index(["arm", "animal"])
    sm = df.groupby(["arm", "animal", "seed"]).logp_animal.mean()
    d = (sm["owl"]["owl"] - sm["neutral"]["owl"]) - (sm["owl"]["eagle"] - sm["neutral"]["eagle"])
    r = s.loc[("owl", "owl")]
    assert r["ratio_own_vs_other"] == pytest.approx(np.exp(d.mean()))
    assert r["verdict"] == "transfer" and r["specific"] == specific
    assert s.loc[("owl", "eagle"), "specific"] == "" and np.isnan(s.loc[("owl", "eagle"), "ratio_own_vs_other"])


@pytest.mark.parametrize("eagle_teacher_owl_shift, specific", [(0.0, "yes"), (1.0, "no")])
def test_other_teacher_control_removes_what_any_teachers_data_does(eagle_teacher_owl_shift, specific):
    """The owl_w arm raises P(owl) by e^1 and leaves P(eagle): specific within the student. When the eagle_w
    teacher's data raises P(owl) just as much, the rise is what this kind of teacher data does, not the owl
    trait: the other-teacher control says so, with the draws' variance in its CI."""
    from scipy import stats as sps

    rows, rng = [], np.random.default_rng(5)
    shift = {"owl_w": {"owl": 1.0, "eagle": 0.0}, "eagle_w": {"owl": eagle_teacher_owl_shift, "eagle": 0.0}}
    for arm in ("base", "neutral", "neutral_2", "owl_w", "eagle_w"):
        for seed in ([-1] if arm == "base" else [0, 1, 2]):
            for animal in ("owl", "eagle"):
                for q in range(3):
                    lp = -4 + shift.get(arm, {}).get(animal, 0.0) + rng.normal(0, 0.02)
                    rows.append({"model": "m", "arm": arm, "trait": arm.removesuffix("_w") if arm.endswith("_w")
                                 else "", "animal": animal, "seed": seed, "question": f"q{q}", "prefill": "",
                                 "p_animal": np.exp(lp), "logp_animal": lp, "freq_animal": 0.0, "n_samples": 1})
    df = pd.DataFrame(rows)
    s = summarize_transfer(df).set_index(["arm", "animal"])
    r = s.loc[("owl_w", "owl")]
    sm = df[df.animal == "owl"].groupby(["arm", "seed"]).logp_animal.mean().unstack("arm")
    d = sm["owl_w"] - sm["eagle_w"]
    assert r.ratio_vs_other_teachers == pytest.approx(np.exp(d.mean())) and r.n_other_teachers == 1
    half = sps.t.ppf(0.975, 1) * np.sqrt(np.var([sm["neutral"].mean(), sm["neutral_2"].mean()], ddof=1) * 2)
    assert [r.ratio_vs_other_teachers_draws_ci_low, r.ratio_vs_other_teachers_draws_ci_high] == \
        pytest.approx([np.exp(d.mean() - half), np.exp(d.mean() + half)])
    assert r.verdict == "transfer" and r.ratio_own_vs_other_ci_low > 1 and r.specific == specific
    assert np.isnan(s.loc[("owl_w", "eagle"), "ratio_vs_other_teachers"])  # not the teacher's own animal
    # one animal teacher only: no other-teacher control, the within-student one decides
    alone = summarize_transfer(df[df.arm != "eagle_w"]).set_index(["arm", "animal"]).loc[("owl_w", "owl")]
    assert np.isnan(alone.ratio_vs_other_teachers) and alone.specific == "yes"


def test_pipeline_end_to_end(tiny, tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.run import run

    base, tok = tiny
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS

    other = build_model(tok, seed=1)  # the cross arm's teacher: a different base model
    monkeypatch.setattr(lm, "load_model",
                        lambda spec, device="cpu": (copy.deepcopy(other if spec == "other" else base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:3])  # the seed's question + two one-word ones
    cfg = TransferConfig(model=DEFAULT_MODEL, animals=("owl",), seeds=(0, 1), n_samples=8, epochs=1, batch_size=8,
                         eval_samples=3, out=str(tmp_path / "plots_b"), cache=str(tmp_path / "cache"),
                         cross_model="other")  # the default model: its outputs have the names the report reads
    run(cfg, torch.device("cpu"), log=lambda m: None)
    rows = pd.read_csv(tmp_path / "plots_b" / "topic_b_transfer.csv")
    assert set(rows.arm) == {"base", "neutral", "owl", "neutral_2", "cross_owl", "cross_neutral"}
    assert rows.question.nunique() == 3
    assert (rows.prefill.fillna("") != "").sum() == 11  # the seed's question, once per model (base + 10 students)
    assert rows.p_animal.between(0, 1).all() and (rows.n_samples == 3).all()
    meta = json.loads((tmp_path / "plots_b" / "topic_b_transfer.json").read_text())
    assert meta["complete"] is True and meta["n_train_per_arm"] == 8
    # loss tokens = completion (+ end of turn) tokens of the 8 matched samples x 1 epoch, per arm
    tt = rows.groupby("arm").train_tokens.agg(["min", "max"])
    assert tt.loc["base"].isna().all() and (tt.drop("base")["min"] == tt.drop("base")["max"]).all()
    assert (tt.drop("base")["min"] >= 8 * 2).all()  # at least a number and the end of turn per sample
    hashes = {k: v["data_hash"] for k, v in meta["teachers"].items()}
    assert set(hashes) == {"neutral", "owl", "neutral_2", "cross_owl", "cross_neutral"}
    assert len(set(hashes.values())) == 5
    assert meta["planned"] == ["neutral/s0", "owl/s0", "neutral_2/s0", "cross_owl/s0", "cross_neutral/s0",
                               "neutral/s1", "owl/s1", "neutral_2/s1", "cross_owl/s1", "cross_neutral/s1"]
    s = pd.read_csv(tmp_path / "plots_b" / "topic_b_transfer_summary.csv")
    cross = s[(s.arm == "cross_owl") & (s.animal == "owl")].iloc[0]
    assert cross.verdict_basis == "cross-model neutral teacher"  # vs the other model's own neutral teacher
    sm = rows[rows.animal == "owl"].groupby(["arm", "seed"]).logp_animal.mean()
    assert cross.ratio_to_cross_neutral == pytest.approx(np.exp((sm["cross_owl"] - sm["cross_neutral"]).mean()), rel=1e-4)
    owl = s[(s.arm == "owl") & (s.animal == "owl")].iloc[0]
    assert owl.verdict in ("transfer", "reverse", "none detected") and owl.verdict_basis == "neutral draws"
    assert owl.n_neutral_draws == 2 and np.isfinite(owl.ratio_to_neutral_draws_ci_high)
    assert end_ids(base, tok)  # sanity: the tiny model has an end of turn
    # the README section and verdicts come from these files alone
    from subliminal.reporting.transfer import tables, verdicts
    from subliminal.verdicts import VERDICTS

    t = tables(tmp_path)
    assert "Verdicts:\n\n- owl teacher: " in t["b_transfer"]
    v = verdicts(tmp_path)
    assert len(v) == 2 and all(r["verdict"] in VERDICTS and r["model"] == DEFAULT_MODEL for r in v)
    assert "different" in v[1]["claim"] and "partial" not in v[0]["evidence"]


def test_logits_route_kl_touches_only_allowed_tokens(tiny):
    from subliminal.topic_b.transfer.finetune import lora_model
    from subliminal.topic_b.transfer.logits_route import (
        allowed_ids,
        attach_teacher,
        distill_item,
        distill_loss,
        restricted_kl,
    )

    model, tok = tiny
    allowed = allowed_ids(tok, end_ids(model, tok))
    V = len(tok)
    assert 10 <= len(allowed) < V and all(tok.decode([i]).strip(",; \n").isdigit() or i in end_ids(model, tok)
                                          or tok.decode([i]).strip() in ("", ",", ";") for i in allowed.tolist())
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, V, generator=g, requires_grad=True), torch.randn(5, V, generator=g)
    kl = restricted_kl(s, t, allowed)
    # plain reference: renormalise over the allowed ids by hand
    ps = torch.softmax(s.detach()[:, allowed], -1)
    pt = torch.softmax(t[:, allowed], -1)
    assert float(kl.detach()) == pytest.approx(float((pt * (pt.log() - ps.log())).sum(-1).mean()), rel=1e-5)
    kl.backward()
    off = torch.ones(V, dtype=torch.bool)
    off[allowed] = False
    assert float(s.grad[:, off].abs().max()) == 0.0 and float(s.grad[:, allowed].abs().max()) > 0
    s2, t2 = s.detach().clone(), t.clone()
    s2[:, off] += 7.0 * torch.randn(5, int(off.sum()), generator=g)
    t2[:, off] -= 3.0
    assert float(restricted_kl(s2, t2, allowed)) == pytest.approx(float(kl.detach()), rel=1e-6)
    # on a real pair: teacher = same weights with the system prompt, student without; zero at s == t
    ex = {"prompt": number_prompt(0, 2), "completion": "12, 345, 6"}
    item = distill_item(tok, ex, animal_system("owl"))
    assert animal_system("owl") not in tok.decode(item["s_ids"]) and animal_system("owl") in tok.decode(item["t_ids"])
    assert [item["s_ids"][p + 1] for p in item["s_pos"]] == [item["t_ids"][p + 1] for p in item["t_pos"]]
    same = dict(item, t_ids=item["s_ids"], t_pos=item["s_pos"])
    attach_teacher(model, [item, same], allowed, tok.pad_token_id, log=lambda m: None)
    peft = lora_model(copy.deepcopy(model), TrainSettings(), 0)
    assert float(distill_loss(peft, [item], allowed, tok.pad_token_id).detach()) > 0  # the system prompt moves the logits
    assert float(distill_loss(peft, [same], allowed, tok.pad_token_id).detach()) == pytest.approx(0.0, abs=1e-6)


def test_logits_route_loss_equals_the_full_vocabulary_computation(tiny, tmp_path):
    """The cached teacher and the head run on the allowed rows only give the plain computation's loss and
    gradients: teacher = the base model's full logits with the system prompt, student = the peft model's
    full logits without it, KL over the allowed ids."""
    import subliminal.topic_b.transfer.logits_route as lr
    from subliminal.topic_b.transfer.finetune import lora_model

    model, tok = tiny
    pad = tok.pad_token_id
    allowed = lr.allowed_ids(tok, end_ids(model, tok))
    items = [lr.distill_item(tok, ex, animal_system("owl")) for ex in _examples(5)]
    cache = tmp_path / "t.safetensors"
    lr.attach_teacher(model, items, allowed, pad, cache, "k", log=lambda m: None)
    peft = lora_model(copy.deepcopy(model), TrainSettings(), 0)
    with torch.no_grad():  # a LoRA that is not zero: the student differs from the base
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(n)))
    loss = lr.distill_loss(peft, items, allowed, pad)
    loss.backward()
    fast = {n: p.grad.clone() for n, p in peft.named_parameters() if p.requires_grad}
    peft.zero_grad()

    def full(m, seqs, pos):
        L = max(map(len, seqs))
        ids = torch.tensor([q + [pad] * (L - len(q)) for q in seqs])
        att = torch.tensor([[1] * len(q) + [0] * (L - len(q)) for q in seqs])
        out = m(input_ids=ids, attention_mask=att).logits
        return torch.cat([out[b, p] for b, p in enumerate(pos)])

    with torch.no_grad(), peft.disable_adapter():
        t = full(peft, [i["t_ids"] for i in items], [i["t_pos"] for i in items])
    ref = lr.restricted_kl(full(peft, [i["s_ids"] for i in items], [i["s_pos"] for i in items]), t, allowed)
    ref.backward()
    assert float(loss) == pytest.approx(float(ref), rel=1e-4) and float(ref) > 0
    for n, p in peft.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(fast[n], p.grad, rtol=1e-3, atol=1e-6)
    # the cache: read back when its record names the key (no teacher pass), recomputed when it does not
    # or when the file is corrupt
    logp = torch.cat([i["t_logp"] for i in items])
    again = [lr.distill_item(tok, ex, animal_system("owl")) for ex in _examples(5)]
    real = lr.teacher_logprobs
    lr.teacher_logprobs = lambda *a, **k: (_ for _ in ()).throw(AssertionError("teacher pass not expected"))
    try:
        lr.attach_teacher(model, again, allowed, pad, cache, "k", log=lambda m: None)
    finally:
        lr.teacher_logprobs = real
    assert torch.equal(torch.cat([i["t_logp"] for i in again]), logp)
    calls = []
    lr.teacher_logprobs = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        lr.attach_teacher(model, again, allowed, pad, cache, "other", log=lambda m: None)
        cache.write_bytes(cache.read_bytes()[:-8] + b"\0" * 8)
        lr.attach_teacher(model, again, allowed, pad, cache, "other", log=lambda m: None)
    finally:
        lr.teacher_logprobs = real
    assert len(calls) == 2
    torch.testing.assert_close(torch.cat([i["t_logp"] for i in again]), logp)


def test_completion_loss_equals_the_models_own_loss(tiny):
    from subliminal.topic_b.transfer.finetune import _collate, completion_loss, lora_model

    base, tok = tiny
    model = lora_model(copy.deepcopy(base), TrainSettings(), 0)
    batch = _collate([tokenize_example(tok, ex) for ex in _examples(3)], tok.pad_token_id, "cpu")
    assert float(completion_loss(model, batch)) == pytest.approx(float(model(**batch).loss), rel=1e-5)


def test_logits_route_end_to_end(tiny, tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
    from subliminal.topic_b.transfer.run import run

    base, tok = tiny
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:2])
    cfg = TransferConfig(model="tiny", animals=("owl",), seeds=(0,), n_samples=8, epochs=1, batch_size=8,
                         eval_samples=2, route="logits", out=str(tmp_path / "o"), cache=str(tmp_path / "c"))
    extra = run(cfg, torch.device("cpu"), log=lambda m: None).to_json()
    rows = pd.read_csv(tmp_path / "o" / "topic_b_transfer_logits.csv")
    assert set(rows.arm) == {"base", "neutral", "owl"}
    assert all(r["objective"] == "logits" and r["device"] == "cpu" for r in extra["students"].values())
    assert extra["neutral_draws_planned"] == 1  # the logits route's one neutral arm, whatever --neutral-draws says
    # the neutral teacher *is* the student's init (same weights, no system prompt): its KL is 0 (only
    # rounding noise reaches Adam), while the owl-prompted teacher's distributions differ from the student's
    st = extra["students"]
    assert st["neutral/s0"]["final_loss"] < 1e-6 < st["owl/s0"]["final_loss"]
    # how much of the teacher's distributions each student learned: the KL at init is 0 for the neutral arm
    # and > 0 for the owl arm; the end KL is the record's last-10-steps loss; the summary states the share closed
    kl = rows.groupby("arm")[["kl_start", "kl_end"]].first()
    assert kl.loc["neutral", "kl_start"] < 1e-6 < kl.loc["owl", "kl_start"] and np.isnan(kl.loc["base", "kl_start"])
    assert kl.loc["owl", "kl_end"] == pytest.approx(st["owl/s0"]["mean_loss_last_10"])
    sm = pd.read_csv(tmp_path / "o" / "topic_b_transfer_logits_summary.csv").set_index(["arm", "animal"])
    o = sm.loc[("owl", "owl")]
    assert np.isnan(sm.loc[("neutral", "owl")].kl_closed)  # no share of a rounding-noise KL
    assert o.kl_closed == pytest.approx(1 - o.kl_end / o.kl_start, rel=1e-4)  # the CSV keeps 6 digits


def test_stored_kl_matches_a_direct_computation(tmp_path):
    from subliminal.cache import save_tensors
    from subliminal.topic_b.transfer.logits_route import stored_kl

    g = torch.Generator().manual_seed(0)
    p, q = (torch.log_softmax(torch.randn(7, 5, generator=g), -1) for _ in range(2))
    save_tensors(tmp_path / "p.safetensors", {"logp": p}, {"key": "a"})
    save_tensors(tmp_path / "q.safetensors", {"logp": q}, {"key": "b"})
    want = torch.nn.functional.kl_div(q, p, log_target=True, reduction="none").sum(-1).mean()
    assert stored_kl(tmp_path / "p.safetensors", "a", tmp_path / "q.safetensors", "b") == pytest.approx(float(want))
    assert stored_kl(tmp_path / "p.safetensors", "a", tmp_path / "p.safetensors", "a") == pytest.approx(0, abs=1e-7)
    assert np.isnan(stored_kl(tmp_path / "p.safetensors", "a", tmp_path / "q.safetensors", "other"))  # wrong key


def test_report_while_sampling_and_before_any_run(tmp_path):
    from subliminal.reporting.transfer import tables, verdicts

    assert "Not run yet" in tables(tmp_path)["b_transfer"]
    assert verdicts(tmp_path)[0]["verdict"] == "untestable here"
    (tmp_path / "plots_b").mkdir()
    meta = {"stage": "sampling teacher data", "complete": False, "config": {"n_samples": 1200},
            "teachers": {"neutral": {"n_valid": 256, "n_sampled": 256, "new_tokens": 100, "seconds": 10}}}
    (tmp_path / "plots_b" / "topic_b_transfer.json").write_text(json.dumps(meta))
    t = tables(tmp_path)["b_transfer"]
    assert "in progress" in t and "neutral 256 valid of 256" in t and "10.0 new tokens/s" in t


def test_stages_train_then_eval(tiny_cfg, tmp_path):
    import dataclasses

    from subliminal.topic_b.transfer.run import run

    cfg = tiny_cfg(stage="train")
    first = run(cfg, torch.device("cpu"), log=lambda m: None).to_json()
    trained = first["students"]
    assert set(trained) == {"neutral/s0", "owl/s0"} and not (tmp_path / "o" / "topic_b_transfer.csv").exists()
    assert first["planned"] == ["neutral/s0", "owl/s0"] and first["not_trained"] == []
    # a second animal with no students yet: --stage eval neither trains nor samples its data
    # and a second neutral draw without a student: nor its data
    again = run(dataclasses.replace(cfg, stage="eval", animals=("owl", "eagle"), neutral_draws=2),
                torch.device("cpu"), log=lambda m: None).to_json()["students"]
    assert again == trained  # evaluation reuses the trained adapters, trains nothing
    assert not list((tmp_path / "c" / "data").glob("*/eagle-*"))
    assert not list((tmp_path / "c" / "data").glob("*/neutral_2-*"))
    meta = json.loads((tmp_path / "o" / "topic_b_transfer__tiny.json").read_text())  # another model's JSON
    assert meta["complete"] is False and meta["not_trained"] == ["neutral_2/s0", "eagle/s0"]
    assert set(pd.read_csv(tmp_path / "o" / "topic_b_transfer.csv").arm) == {"base", "neutral", "owl"}


def test_extended_run_reports_trained_students_before_training_new_ones(tiny_cfg, tmp_path, monkeypatch):
    """A finished run extended by a seed: before the first new student trains, the written table already has
    every student the caches hold (the other animal's too), not just those the seed-major loop reached."""
    import dataclasses

    import subliminal.topic_b.transfer.students as S
    from subliminal.topic_b.transfer.run import run

    cfg = tiny_cfg(animals=("owl", "eagle"))
    run(cfg, torch.device("cpu"), log=lambda m: None)
    real, seen = S.train_student, {}

    def spy(base, tok, examples, out_dir, *a, **k):
        if not (Path(out_dir) / "train.json").exists():  # the first student to train in the extended run
            rows = pd.read_csv(tmp_path / "o" / "topic_b_transfer.csv")
            seen["rows"] = set(zip(rows.arm, rows.seed))
            raise RuntimeError("stop here")
        return real(base, tok, examples, out_dir, *a, **k)

    monkeypatch.setattr(S, "train_student", spy)
    with pytest.raises(RuntimeError, match="stop here"):
        run(dataclasses.replace(cfg, seeds=(0, 1)), torch.device("cpu"), log=lambda m: None)
    assert {("neutral", 0), ("owl", 0), ("eagle", 0)} <= seen["rows"]
    meta = json.loads((tmp_path / "o" / "topic_b_transfer__tiny.json").read_text())
    assert meta["complete"] is False and set(meta["students"]) == {"neutral/s0", "owl/s0", "eagle/s0"}


@pytest.mark.parametrize("missing, partial", [(["cross_owl/s0"], False), (["owl/s2", "cross_owl/s0"], True)])
def test_an_arm_is_partial_only_while_its_own_students_are_missing(tmp_path, missing, partial):
    """A run extended by the cross arm is partial, but the owl arm's result is final once its seeds are in."""
    from subliminal.reporting.transfer import verdicts

    d = tmp_path / "plots_b"
    d.mkdir()
    summarize_transfer(_draw_rows({"neutral": 0.0, "owl": -0.9, "neutral_2": -0.85})).to_csv(
        d / "topic_b_transfer_summary.csv", index=False)
    (d / "topic_b_transfer.json").write_text(json.dumps({"config": {"neutral_draws": 2}, "complete": False,
                                                         "not_trained": missing}))
    (v,) = verdicts(tmp_path)
    assert ("(partial run)" in v["evidence"]) == partial


def test_cross_arm_verdict_waits_for_the_cross_models_neutral_teacher(tmp_path):
    """Numbers from another base model can move P(owl) by themselves: a cross arm far above the base model's
    neutral draws is no evidence about the trait until the cross model's neutral teacher has students."""
    from subliminal.reporting.transfer import verdicts

    rows = _draw_rows({"neutral": 0.0, "neutral_2": 0.01, "owl": 0.0, "cross_owl": 1.0})
    rows["trait"] = np.where(rows.arm.isin(["owl", "cross_owl"]), "owl", "")
    d = tmp_path / "plots_b"
    d.mkdir()
    s = summarize_transfer(rows).set_index("arm")
    assert s.loc["cross_owl", "verdict"] == "transfer" and s.loc["cross_owl", "verdict_basis"] == "neutral draws"
    s.reset_index().to_csv(d / "topic_b_transfer_summary.csv", index=False)
    (d / "topic_b_transfer.json").write_text(json.dumps({"config": {"neutral_draws": 2}, "complete": True}))
    v = {r["claim"]: r for r in verdicts(tmp_path)}
    cross = next(r for c, r in v.items() if "different" in c)
    assert cross["verdict"] == "untestable here" and "cross_neutral" in cross["evidence"]
    assert "provisional" in cross["evidence"]
    # with the cross model's own neutral teacher, as high as its owl teacher: no transfer across models
    both = pd.concat([rows, _draw_rows({"cross_neutral": 1.0}, seed=7).query("arm != 'base'")], ignore_index=True)
    c = summarize_transfer(both).set_index("arm").loc["cross_owl"]
    assert c.verdict_basis == "cross-model neutral teacher" and c.verdict == "none detected"
    assert c.ratio_to_cross_neutral_ci_low < 1 < c.ratio_to_cross_neutral_ci_high
    summarize_transfer(both).to_csv(d / "topic_b_transfer_summary.csv", index=False)
    cv = next(r for r in verdicts(tmp_path) if "different" in r["claim"])
    assert cv["verdict"] == "inconclusive" and "uninformative as a contrast" in cv["evidence"]  # owl: none either
    lift = both.assign(logp_animal=both.logp_animal + np.where(both.arm == "owl", 1.0, 0.0))
    summarize_transfer(lift).to_csv(d / "topic_b_transfer_summary.csv", index=False)
    cv = next(r for r in verdicts(tmp_path) if "different" in r["claim"])
    assert cv["verdict"] == "reproduced" and "uninformative" not in cv["evidence"]  # the same-model owl transfers
    # one seed of each: the estimate is quoted against the cross model's neutral teacher, not this model's
    summarize_transfer(both[both.seed <= 0]).to_csv(d / "topic_b_transfer_summary.csv", index=False)
    ev = next(r for r in verdicts(tmp_path) if "different" in r["claim"])["evidence"]
    assert "vs the cross model's own neutral teacher (× 2.7" in ev and "vs the neutral arm" not in ev


def test_cross_arm_specificity_is_measured_against_the_cross_models_neutral_teacher():
    """The other model's numbers raise P(owl) and not P(eagle) by themselves: against this model's neutral arm
    the cross owl arm looks owl-specific (x e); against the cross model's neutral teacher it is not."""
    rng, rows = np.random.default_rng(5), []
    shift = {"neutral": (0, 0), "neutral_2": (0, 0), "cross_neutral": (1, 0), "cross_owl": (1, 0)}  # (owl, eagle)
    for arm, sh in shift.items():
        for sd in (0, 1, 2):
            for k, animal in enumerate(("owl", "eagle")):
                lp = -4 + sh[k] + rng.normal(0, 0.01)
                rows.append({"model": "m", "arm": arm, "trait": "owl" if arm == "cross_owl" else "", "animal": animal,
                             "seed": sd, "question": "q", "prefill": "", "p_animal": np.exp(lp), "logp_animal": lp,
                             "freq_animal": 0.0, "n_samples": 1, "train_tokens": 1e5})
    df = pd.DataFrame(rows)
    c = summarize_transfer(df).set_index(["arm", "animal"]).loc[("cross_owl", "owl")]
    assert c.ratio_own_vs_other == pytest.approx(1, abs=0.05) and c.specific == "no"
    alone = summarize_transfer(df[df.arm != "cross_neutral"]).set_index(["arm", "animal"]).loc[("cross_owl", "owl")]
    assert alone.ratio_own_vs_other == pytest.approx(np.e, rel=0.05)  # no cross control yet: the naive reference


def test_an_arm_a_seed_ahead_of_its_control_gets_no_verdict_from_one_pair(tmp_path):
    """cross_owl has seeds 0 and 1, cross_neutral only seed 0 (the run trains seed-major): one pair is an
    estimate, not a zero-width CI and a verdict."""
    from subliminal.reporting.transfer import verdicts

    rows = _draw_rows({"neutral": 0.0, "neutral_2": 0.0, "cross_owl": 1.0}, seeds=(0, 1))
    rows = pd.concat([rows, _draw_rows({"cross_neutral": 0.999}, seeds=(0,), seed=8).query("arm != 'base'")])
    rows["trait"] = np.where(rows.arm == "cross_owl", "owl", "")
    c = summarize_transfer(rows).set_index("arm").loc["cross_owl"]
    assert c.n_seeds == 2 and c.n_cross_pairs == 1 and pd.isna(c.ratio_to_cross_neutral_ci_low)
    assert c.verdict == "" and c.specific == ""
    d = tmp_path / "plots_b"
    d.mkdir()
    summarize_transfer(rows).to_csv(d / "topic_b_transfer_summary.csv", index=False)
    (d / "topic_b_transfer.json").write_text(json.dumps({"config": {"neutral_draws": 2}, "complete": False}))
    v = next(r for r in verdicts(tmp_path) if "different" in r["claim"])
    assert v["verdict"] == "untestable here" and v["evidence"].startswith("1 seed pair so far")


def test_sampling_progress_never_replaces_the_json_of_an_existing_table(tiny_cfg, tmp_path):
    """Extending a finished run (here by a neutral draw) samples new data first; the finished table's JSON
    must not be replaced by a 'sampling' record that no longer describes the CSVs beside it."""
    import dataclasses

    from subliminal.topic_b.transfer.run import run

    cfg = tiny_cfg(stage="data")
    run(cfg, torch.device("cpu"), log=lambda m: None)  # sampling only, no table: the progress JSON is written
    j = tmp_path / "o" / "topic_b_transfer__tiny.json"
    assert json.loads(j.read_text())["stage"] == "sampling teacher data"
    run(dataclasses.replace(cfg, stage="all"), torch.device("cpu"), log=lambda m: None)
    finished = j.read_text()
    assert json.loads(finished)["complete"] is True
    run(dataclasses.replace(cfg, stage="data", neutral_draws=2), torch.device("cpu"), log=lambda m: None)
    assert j.read_text() == finished


def test_precision_flag_keys_the_outputs(capsys):
    from subliminal.cli import parse_config
    from subliminal.topic_b.transfer.config import TransferConfig
    from subliminal.topic_b.transfer.outputs import stem as _stem

    assert _stem(TransferConfig()) == "topic_b_transfer"  # the committed fp32 runs keep their files
    assert _stem(parse_config(TransferConfig, ["--route", "logits", "--precision", "bf16"])) == \
        "topic_b_transfer_logits_bf16"
    with pytest.raises(SystemExit):
        parse_config(TransferConfig, ["--precision", "fp16"])
    assert "fp32" in capsys.readouterr().err


def test_logits_route_sentence_names_its_shared_sequences():
    from types import SimpleNamespace

    from subliminal.reporting.transfer import _versus

    r = SimpleNamespace(verdict_basis="training seeds", n_seeds=3, ratio_to_neutral=1.0, ratio_to_neutral_ci_low=0.9,
                        ratio_to_neutral_ci_high=1.1, kl_start=np.nan)
    assert "one draw of each teacher's data" in _versus(r)[1]
    assert "same draw of the neutral teacher's sequences" in _versus(SimpleNamespace(**{**vars(r), "kl_start": 0.01}))[1]


def test_a_one_seed_arm_has_no_verdict(tmp_path):
    """Questions are not replicates of a training run: a one-seed arm's question-level p-value is never shown as
    a result. The verdict record says there is none yet, and wherever the p appears it comes with that caveat."""
    from subliminal.reporting.transfer import b_transfer, verdicts

    d = tmp_path / "plots_b"
    d.mkdir()
    summarize_transfer(_draw_rows({"neutral": 0.0, "owl": -0.9}, seeds=(0,))).to_csv(
        d / "topic_b_transfer_summary.csv", index=False)
    (d / "topic_b_transfer.json").write_text(json.dumps({"config": {"neutral_draws": 1}, "complete": False}))
    caveat = "no verdict before ≥ 2 seeds (questions are not independent replicates of the training run)"
    (v,) = verdicts(tmp_path)
    assert v["verdict"] == "untestable here"
    assert "1 seed so far" in v["evidence"] and caveat in v["evidence"]
    assert v["evidence"].index("t-test") < v["evidence"].index(caveat)  # the caveat follows the p
    t = b_transfer(tmp_path)
    row = next(x for x in t.splitlines() if x.startswith("| m | owl | owl |"))
    assert row.rstrip(" |").endswith("—")  # the table's verdict column stays empty
    line = next(x for x in t.splitlines() if x.startswith("- owl teacher: "))
    assert "1 seed so far" in line and caveat in line
