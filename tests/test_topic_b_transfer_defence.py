"""The threshold defence on transfer data (transfer/defence_on_data.py) on a tiny random Llama."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.cli import UserError
from subliminal.topic_b.arms import Arm
from subliminal.topic_b.scoring import encode
from subliminal.topic_b.threshold_defence import number_token_mask
from subliminal.topic_b.transfer.defence_on_data import CACHE_NAME, defend, min_logps, sample_token_logprobs
from subliminal.topic_b.transfer.prompts import chat_prompt, number_prompt


@pytest.fixture(scope="module")
def tiny():
    tok = build_tokenizer()
    return build_model(tok), tok


def _records(tok, n=7):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        text = "\n".join(str(x) for x in rng.integers(0, 999, 1 + i % 4))
        out.append({"index": i, "prompt": number_prompt(0, i), "text": text, "token_ids": encode(tok, text)})
    return out


@torch.inference_mode()
def test_batched_logprobs_equal_a_plain_per_sample_forward(tiny):
    model, tok = tiny
    recs = _records(tok)
    got = sample_token_logprobs(model, tok, recs, batch_size=3)
    for r, lp in zip(recs, got):
        p = encode(tok, chat_prompt(tok, r["prompt"]))
        ids = torch.tensor([p + r["token_ids"]])
        ref = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        want = [float(ref[len(p) - 1 + j, t]) for j, t in enumerate(r["token_ids"])]
        assert lp == pytest.approx(want, abs=1e-4)


def test_defend_keeps_exactly_the_samples_above_the_threshold_and_caches(tiny, tmp_path):
    model, tok = tiny
    recs = _records(tok, 12)
    mins = min_logps(model, tok, recs, tmp_path, "tiny")
    direct = [float(lp[number_token_mask(tok, r["token_ids"])].min())
              for r, lp in zip(recs, sample_token_logprobs(model, tok, recs))]
    assert mins == pytest.approx(direct, abs=1e-9)
    thr = float(np.exp(np.median(mins)))  # keeps about half
    owl = Arm("owl")
    kept, st = defend(model, tok, {owl: recs}, {owl: str(tmp_path)}, thr, "tiny")
    assert [r["index"] for r in kept[owl]] == [r["index"] for r, m in zip(recs, mins) if m >= np.log(thr)]
    assert 0 < st[owl]["n_kept"] < len(recs) and st[owl]["n_before"] == len(recs)
    doc = json.loads((tmp_path / CACHE_NAME).read_text())
    assert doc["scorer"] == "tiny" and len(doc["min_logp"]) == len(recs)
    # the cache is used: a model that would give other numbers is never asked
    other = build_model(tok, seed=5)
    assert min_logps(other, tok, recs, tmp_path, "tiny") == pytest.approx(mins)
    assert min_logps(other, tok, recs, tmp_path, "other") != pytest.approx(mins)  # another scorer: recomputed


def test_pipeline_with_the_defence_matches_the_defended_arms(tiny, tmp_path, monkeypatch):
    import subliminal.topic_b.lm as lm
    import subliminal.topic_b.transfer.evaluate as ev
    from subliminal.topic_b.transfer.config import DEFAULT_MODEL, TransferConfig
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS
    from subliminal.topic_b.transfer.run import run

    base, tok = tiny
    monkeypatch.setattr(lm, "load_model", lambda spec, device="cpu": (copy.deepcopy(base), tok))
    monkeypatch.setattr(ev, "EVAL_QUESTIONS", EVAL_QUESTIONS[:1])  # the default model: the report reads its files
    cfg = TransferConfig(model=DEFAULT_MODEL, animals=("owl",), seeds=(0,), neutral_draws=1, n_samples=12, epochs=1, batch_size=12,
                         eval_samples=1, out=str(tmp_path / "o"), cache=str(tmp_path / "c"), defence=0.002)
    import dataclasses

    from subliminal.reporting.transfer import b_transfer_variants

    # --stage data: the kept fractions alone, in the variant's own data JSON (not the main run's), and the
    # report says the variant has data but no student
    run(dataclasses.replace(cfg, stage="data"), torch.device("cpu"), log=lambda m: None)
    dj = json.loads((tmp_path / "o" / "topic_b_transfer_defence_data.json").read_text())
    assert set(dj["defence"]) == {"neutral", "owl"} and dj["config"]["defence"] == 0.002
    assert "kept_index" not in dj["defence"]["owl"]  # the per-record lists go into the kept table, not the JSON
    kt = pd.read_csv(tmp_path / "o" / "topic_b_transfer_defence_kept.csv").set_index("arm")
    assert kt.loc["owl", "n_kept"] == dj["defence"]["owl"]["n_kept"] and kt.loc["owl", "role"] == "animal"
    assert not (tmp_path / "o" / "topic_b_transfer_data.json").exists()
    (tmp_path / "plots_b").mkdir()
    for f in (tmp_path / "o").glob("topic_b_transfer_defence*"):
        (tmp_path / "plots_b" / f.name).write_bytes(f.read_bytes())
    line = b_transfer_variants(tmp_path)
    assert "(`--defence 0.01`): teacher data only, no student yet (threshold defence at p ≥ 0.002 kept neutral " in line
    assert "Kept fraction minus the neutral teacher's, in percentage points, paired by prompt" in line
    extra = run(cfg, torch.device("cpu"), log=lambda m: None).to_json()
    d = extra["defence"]
    assert set(d) == {"neutral", "owl"} and extra["n_train_per_arm"] == min(v["n_kept"] for v in d.values())
    assert extra["students"]["owl/s0"]["n_examples"] == extra["n_train_per_arm"]
    rows = pd.read_csv(tmp_path / "o" / "topic_b_transfer_defence.csv")
    assert set(rows.arm) == {"base", "neutral", "owl"}
    from subliminal.reporting.transfer import tables

    for f in (tmp_path / "o").glob("topic_b_transfer_defence*"):
        (tmp_path / "plots_b" / f.name).write_bytes(f.read_bytes())
    assert "threshold defence at p ≥ 0.002 kept" in tables(tmp_path)["b_transfer"]
    assert "(`--defence 0.01`): complete" in b_transfer_variants(tmp_path)


def test_defence_flags_are_checked():
    from subliminal.topic_b.transfer.config import TransferConfig

    for bad in (dict(defence=1.5), dict(defence=0.01, route="logits"), dict(defence=0.01, cross_model="x")):
        with pytest.raises(UserError, match="--defence"):
            TransferConfig(**bad).validate()


def test_kept_table_pairs_arms_by_prompt():
    """McNemar on the prompts both arms answered, against a plain count; Holm over the animal arms only."""
    from scipy import stats as sps

    from subliminal.topic_b.transfer.defence_on_data import kept_table

    rng = np.random.default_rng(1)
    idx = list(range(200))

    def arm(p_keep, drop=()):
        before = [i for i in idx if i not in drop]
        return {"threshold": 0.01, "n_before": len(before), "before_index": before,
                "kept_index": [i for i in before if rng.random() < p_keep]}

    arms = {"neutral": Arm("neutral"), "owl": Arm("owl"), "eagle": Arm("eagle"), "neutral_2": Arm("neutral", draw=1)}
    st = {"neutral": arm(0.7), "owl": arm(0.35, drop=(3, 4)), "eagle": arm(0.68), "neutral_2": arm(0.7)}
    for v in st.values():
        v["n_kept"] = len(v["kept_index"])
        v["kept_fraction"] = v["n_kept"] / v["n_before"]
    t = kept_table({arms[k]: v for k, v in st.items()}).set_index("arm")  # written by label
    rk = set(st["neutral"]["kept_index"])
    for a in ("owl", "eagle", "neutral_2"):
        common = set(st[a]["before_index"])
        ak = set(st[a]["kept_index"])
        b, c = len((rk & common) - ak), len(ak - rk)
        r = t.loc[a]
        assert (r.paired_n, r.kept_ref_only, r.kept_arm_only) == (len(common), b, c)
        assert r.diff_vs_reference == pytest.approx((c - b) / len(common))
        assert r.mcnemar_p == pytest.approx(sps.binomtest(min(b, c), b + c, 0.5).pvalue)
        assert r.diff_ci_low < r.diff_vs_reference < r.diff_ci_high
    assert t.loc["owl", "diff_vs_reference"] < -0.2 and t.loc["owl", "mcnemar_p"] < 1e-4
    p = t.loc[["owl", "eagle"], "mcnemar_p"].sort_values()
    assert t.loc[p.index[0], "holm_p"] == pytest.approx(min(1, 2 * p.iloc[0]))
    assert t.loc[p.index[1], "holm_p"] == pytest.approx(max(min(1, 2 * p.iloc[0]), p.iloc[1]))
    assert np.isnan(t.loc["neutral_2", "holm_p"]) and t.loc["neutral_2", "role"] == "neutral control"
    assert t.loc["neutral", "role"] == "reference"


def test_holm_by_hand():
    from subliminal.stats import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_an_edited_min_logp_cache_is_recomputed_not_used(tiny, tmp_path, capsys):
    """The cached per-sample log-probs decide which samples the defence keeps: an edit must not."""
    model, tok = tiny
    recs = _records(tok, 6)
    mins = min_logps(model, tok, recs, tmp_path, "tiny")
    doc = json.loads((tmp_path / CACHE_NAME).read_text())
    doc["min_logp"] = {k: 0.0 for k in doc["min_logp"]}  # every sample would pass any threshold
    (tmp_path / CACHE_NAME).write_text(json.dumps(doc))
    capsys.readouterr()
    assert min_logps(model, tok, recs, tmp_path, "tiny") == pytest.approx(mins, abs=1e-9)
    assert capsys.readouterr().out.count("does not match the checksum") == 1
