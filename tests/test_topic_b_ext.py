"""Topic B extensions: number filter, counting, smoothing, the threshold defence, shard resume, and the
two new scripts end to end on a tiny random Llama (no download)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b import numbers, sampling, threshold_defence
from subliminal.topic_b.multiplicity import count
from subliminal.topic_b.scoring import ALL_NUMBERS, encode


@pytest.fixture(scope="module")
def lm():
    tok = build_tokenizer("split")
    return build_model(tok), tok


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, lm):
    d = tmp_path_factory.mktemp("tiny_llama")
    model, tok = lm
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.mark.parametrize("text,expected", [
    ("123;456;789", ["123", "456", "789"]),
    ("123;456;789;", ["123", "456", "789"]),  # one trailing separator
    (" 12, 7, 087.", ["12", "7", "087"]),  # leading zeros kept, final period
    ("[1 2 3]", ["1", "2", "3"]),
    ("(4;5)", ["4", "5"]),
    ("42", ["42"]),
    (";".join(str(i) for i in range(10)), [str(i) for i in range(10)]),
])
def test_filter_accepts(text, expected):
    assert numbers.parse_numbers(text) == (expected, "")


@pytest.mark.parametrize("text,reason", [
    ("", "no_numbers"),
    ("owl", "no_numbers"),
    ("1-2-3", "bad_separator"),
    ("1 and 2", "bad_separator"),
    ("1;2,3", "not_a_clean_list"),  # inconsistent separators
    ("1;2;owl", "not_a_clean_list"),
    ("1;;2", "bad_separator"),
    ("12 (Semicolon added)", "not_a_clean_list"),
    ("1;2;3\n\nThese are numbers", "not_a_clean_list"),
    ("1;2;٣", "not_a_clean_list"),  # non-ASCII digit
    (";".join(str(i) for i in range(11)), "too_many_numbers"),
    ("12;1000", "too_many_digits"),
])
def test_filter_rejects(text, reason):
    assert numbers.parse_numbers(text) == (None, reason)


def test_unfinished_sample_is_rejected():
    assert numbers.validate({"text": "1;2;3", "finished": False}) == (None, "no_end_of_turn")
    assert numbers.validate({"text": "1;2;3", "finished": True})[0] == ["1", "2", "3"]


def test_counting_and_smoothing():
    c = numbers.count_numbers([["087", "87", "087"], ["0"]])
    idx = numbers.NUMBER_INDEX
    assert c.sum() == 4 and c[idx["087"]] == 2 and c[idx["87"]] == 1 and c[idx["0"]] == 1
    f = numbers.smoothed_freq(c, alpha=1.0)
    assert np.isclose(f.sum(), 1) and np.isclose(f[idx["087"]], 3 / (4 + 1110))
    assert np.isclose(numbers.smoothed_freq(c, 0.0)[idx["087"]], 0.5)
    assert np.allclose(numbers.smoothed_freq(np.zeros(1110)), 1 / 1110)  # no data: uniform
    n = numbers.count_numbers([["1"]])
    s = numbers.data_scores(c, n, alpha=1.0)
    assert np.isclose(s[idx["087"]], np.log((3 / 1114) / (1 / 1111)))
    assert np.isclose(s[idx["1"]], np.log((1 / 1114) / (2 / 1111)))
    assert numbers.js_divergence(c, c) == pytest.approx(0, abs=1e-12) and numbers.js_divergence(c, n) > 0
    cmp = numbers.compare_rankings(np.arange(20.0), np.arange(20.0), k=5)
    assert cmp["spearman"] == pytest.approx(1) and cmp["top_k_overlap"] == 5


def test_js_permutation_null_separates_same_from_different_teachers():
    rng = np.random.default_rng(1)

    def lists(p, n):  # n lists of 5 numbers drawn from weights p over '0'..'99'
        return [[str(x) for x in rng.choice(100, 5, p=p)] for _ in range(n)]

    flat = np.full(100, 0.01)
    same = numbers.js_permutation_null(lists(flat, 300), lists(flat, 200), draws=300)
    # same teacher: the observed JS is what label shuffling gives (sparse counts alone make it > 0)
    assert same["js_p_value"] > 0.01 and same["js_null_mean"] > 0
    tilted = flat.copy()
    tilted[:10] *= 3
    tilted /= tilted.sum()
    diff = numbers.js_permutation_null(lists(tilted, 300), lists(flat, 200), draws=300)
    assert diff["js_p_value"] < 0.01  # = 1 / 301: no shuffle reaches it
    assert np.isnan(numbers.js_permutation_null([], lists(flat, 5))["js_p_value"])


def test_token_logprobs_match_one_forward_per_sample(lm):
    model, tok = lm
    prompt = sampling.teacher_prompt(tok, sampling.Teacher("neutral", None))
    comps = [encode(tok, "12;345"), encode(tok, "7"), encode(tok, "98;7;6")]
    got = threshold_defence.token_logprobs(model, tok, prompt, comps, batch_size=3)  # right-padded batch
    p = encode(tok, prompt)
    for c, g in zip(comps, got):
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([p + c])).logits[0].float(), -1)
        ref = [float(lp[len(p) - 1 + i, t]) for i, t in enumerate(c)]
        np.testing.assert_allclose(g, ref, atol=1e-4)
    assert list(threshold_defence.number_token_mask(tok, encode(tok, "12;3"))) == [True, True, False, True]


def test_threshold_defence_drops_low_probability_numbers(lm):
    model, tok = lm
    neutral = sampling.teacher_prompt(tok, sampling.Teacher("neutral", None))
    texts = ["1;2;3", "9;0;5", "4;4", "3;8;1;7"]
    recs = [{"token_ids": encode(tok, t), "teacher": "owl", "shard": None, "index": i} for i, t in enumerate(texts)]
    minlp = threshold_defence.neutral_min_logps(model, tok, recs, neutral)
    assert np.all(np.isfinite(minlp)) and len(set(np.round(minlp, 6))) == len(texts)
    lo, hi = np.sort(minlp)[:2]
    thr = float(np.exp((lo + hi) / 2))  # between the two least likely samples' weakest number tokens
    keep = threshold_defence.threshold_keep(minlp, thr)
    assert keep.sum() == len(texts) - 1 and not keep[np.argmin(minlp)]
    assert threshold_defence.threshold_keep(minlp, 1e-12).all() and not threshold_defence.threshold_keep(minlp, 0.999).any()
    # the check is on the sample's *number* tokens only: a sample without digits is never dropped
    assert threshold_defence.min_number_token_logp(tok, encode(tok, ";"), np.array([-50.0])) == np.inf


def test_shards_resume_and_redo_half_written(lm, tmp_path):
    model, tok = lm
    kw = dict(batch_size=3, max_new_tokens=6, seed=1, progress=False)
    t = sampling.animal_teacher("owl")
    recs1, st1 = sampling.generate_shards(model, tok, "tiny", t, 5, tmp_path, **kw)
    assert st1["n_new_shards"] == 2 and len(recs1) == 5
    recs2, st2 = sampling.generate_shards(model, tok, "tiny", t, 5, tmp_path, **kw)
    assert st2["n_new_shards"] == 0 and st2["n_reused_shards"] == 2 and recs2 == recs1
    shard = sorted(tmp_path.rglob("shard_00001.jsonl"))[0]
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:2]) + "\n")  # a half-written shard: no footer
    recs3, st3 = sampling.generate_shards(model, tok, "tiny", t, 5, tmp_path, **kw)
    assert st3["n_new_shards"] == 1 and recs3 == recs1  # redone, and the same samples (per-shard seed)
    _, st4 = sampling.generate_shards(model, tok, "tiny", t, 8, tmp_path, **kw)  # more samples: one more shard
    assert st4["n_new_shards"] == 1 and st4["n_reused_shards"] == 2
    # neutral log-probs are cached beside the shards
    d = shard.parent
    m1 = threshold_defence.neutral_min_logps(model, tok, recs1, "x" + sampling.teacher_prompt(tok, sampling.Teacher("n", None)), cache_dir=d)
    assert len(list(d.glob("*.neutral.json"))) == 2
    m2 = threshold_defence.neutral_min_logps(None, tok, recs1, "x" + sampling.teacher_prompt(tok, sampling.Teacher("n", None)), cache_dir=d)
    np.testing.assert_array_equal(m1, m2)  # second call: no model needed


def test_prefix_cached_sampling_matches_plain_generate(lm):
    """sample_batch encodes the shared prompt once and copies its KV cache; the samples must be the ones
    plain generate() draws with the same seed (full prompt per row)."""
    import torch

    from subliminal.topic_b.scoring import encode

    model, tok = lm
    prompt = sampling.teacher_prompt(tok, sampling.animal_teacher("owl"))
    stop = sampling.end_ids(model, tok)
    recs = sampling.sample_batch(model, tok, prompt, 5, 123, max_new_tokens=8, stop_ids=stop)
    ids = torch.tensor([encode(tok, prompt)] * 5)
    torch.manual_seed(123)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                             top_k=0, top_p=1.0, max_new_tokens=8, eos_token_id=stop, pad_token_id=stop[0])
    for r, row in zip(recs, out[:, ids.shape[1]:].tolist()):
        assert row[:len(r["token_ids"])] == r["token_ids"]


def test_constrained_sampling_gives_lists(lm):
    model, tok = lm
    stop = sampling.end_ids(model, tok)
    allowed = sampling.list_token_mask(tok, stop)
    recs = sampling.sample_batch(model, tok, sampling.teacher_prompt(tok, sampling.Teacher("neutral", None)), 4, 0,
                           max_new_tokens=5, stop_ids=stop, allowed=allowed)
    for r in recs:
        assert all(c.isdigit() or c in ";, " for c in r["text"])


def test_data_frequency_script_tiny(model_dir, tmp_path):
    import topic_b_data_frequency as script
    from subliminal.cli import parse_config
    from subliminal.reporting.topic_b_ext import tables

    out = tmp_path / "plots_b"
    argv = ["--model", model_dir, "--animals", "owl", "--n-samples", "6", "--batch-size", "3",
            "--max-new-tokens", "6", "--thresholds", "0.05", "0.2", "--max-digits", "1", "--top-n", "3",
            "--null-draws", "200", "--constrain", "--pairs-csv", "", "--out", str(out),
            "--data-dir", str(tmp_path / "data")]
    s = script.main(parse_config(script.Config, argv))
    assert list(s["threshold"]) == [0.0, 0.05, 0.2]
    assert (s["n_kept_animal"] <= s["n_valid_animal"]).all() and s["n_kept_animal"].is_monotonic_decreasing
    for f in ["topic_b_data_frequency.csv", "topic_b_data_frequency_scores.csv"]:
        assert (out / f).exists()
    assert "not run yet" in tables(tmp_path)["b_across_models"]
    assert "| owl |" in tables(tmp_path)["b_data_frequency"]


def test_across_models_script_tiny(model_dir, tmp_path):
    import topic_b_across_models as script
    from subliminal.cli import parse_config
    from subliminal.reporting.topic_b_ext import tables

    out = tmp_path / "plots_b"
    argv = ["--models", model_dir, "--n-animals", "2", "--max-digits", "1", "--top-n", "3", "--null-draws", "200",
            "--out", str(out)]
    t = script.main(parse_config(script.Config, argv))
    assert list(t["finder"]) == ["logit", "unembedding_cosine"] and (t["animals"] == 2).all()
    assert (out / "topic_b_step2_extended.csv").exists()  # step 2 was run through its own main()
    t2 = script.main(parse_config(script.Config, argv + ["--no-run-missing"]))  # now read, not rerun
    assert t2.drop(columns=[]).equals(t)
    assert "unembedding_cosine" in tables(tmp_path)["b_across_models"]
    # multiplicity counts for every finder, the cosine one from its saved rows; --from-csv recounts the same
    m = pd.read_csv(out / "topic_b_multiplicity.csv")
    assert set(m["finder"]) == {"logit", "unembedding_cosine"} and (out / "topic_b_step2_cosine.csv").exists()
    cos = m[(m.finder == "unembedding_cosine") & (m.model != "all models")].set_index("test")
    assert cos.loc["best_of_n_max_exact", "animals"] == 2
    expect = count(pd.read_csv(out / "topic_b_step2_cosine.csv"), "best_of_n_max_exact")
    assert cos.loc["best_of_n_max_exact", "p_lt_alpha"] == expect
    before = (out / "topic_b_multiplicity.csv").read_bytes()
    script.main(parse_config(script.Config, argv + ["--from-csv"]))
    assert (out / "topic_b_multiplicity.csv").read_bytes() == before
    assert tables(tmp_path / "nothing")["b_data_frequency"].startswith("not run yet")
    assert len(ALL_NUMBERS) == 1110
