"""Statistics of the 25-animal study on synthetic tables, and the geometry table on a tiny model."""

import numpy as np
import pandas as pd
import pytest
from tiny_lm import build_model, build_tokenizer

from subliminal.topic_b.entanglement import animal_statistics, best_of_n_null, top_entangled
from subliminal.topic_b.geometry import pair_table


def _tables(signal: float, n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    numbers = [f"{i:03d}" for i in range(n)]
    score = rng.normal(size=n)
    logp_animal = np.log(0.01) + signal * score + 0.1 * rng.normal(size=n)
    a2n = pd.DataFrame({"animal": "owl", "number": numbers, "logit_score": score})
    n2a = pd.DataFrame({"animal": "owl", "number": numbers, "p_no_system": 0.01, "p_neutral_system": 0.02,
                        "p_subliminal": np.exp(logp_animal)})
    return a2n, n2a


def test_best_of_n_null_is_max_of_subsets():
    v = np.arange(100.0)
    null = best_of_n_null(v, 1, draws=5000)
    assert abs(np.quantile(null, 0.95) - 95) <= 2  # n=1: the plain 95th percentile
    assert best_of_n_null(v, 100, draws=10).min() == 99  # n=all: always the max


def test_statistics_detect_planted_entanglement():
    a2n, n2a = _tables(signal=1.0)
    s = animal_statistics(a2n, n2a, "owl", top_n=5, draws=2000)
    assert s["best_number"] == top_entangled(a2n, "owl", 1)[0]
    assert s["null_p_value"] < 0.05 and s["ttest_p"] < 1e-6 and s["pearson_r"] > 0.9
    assert s["ratio_vs_no_system"] > 2 and s["ratio_vs_random_mean"] > 2
    # the exact best-of-n p is what the Monte Carlo null estimates; the mean of the top n has its own null
    assert s["null_p_exact"] == pytest.approx(s["null_p_value"], abs=0.01)
    assert s["null_p_exact"] >= 5 / 200 - 1e-12 and s["top_n_mean_p_value"] < 0.01


def test_statistics_null_when_no_signal():
    a2n, n2a = _tables(signal=0.0, seed=1)
    s = animal_statistics(a2n, n2a, "owl", top_n=5, draws=2000)
    assert s["null_p_value"] > 0.05 and abs(s["pearson_r"]) < 0.3
    assert s["null_p_exact"] == pytest.approx(s["null_p_value"], abs=0.03) and s["null_p_exact"] > 0.05


def test_pair_table_cosine_and_multi_token_mean():
    tok = build_tokenizer("split")
    model = build_model(tok)
    t = pair_table(model, tok, ["owl", "koala"], ["087", "780", "1"])
    assert len(t) == 6 and t["cosine"].between(-1, 1).all()
    # digit-split numbers are the mean of their digit vectors: permutations share a vector
    c = t.set_index(["animal", "number"])["cosine"]
    assert np.isclose(c[("owl", "087")], c[("owl", "780")])


def test_pearson_is_undefined_not_a_warning_on_constant_input():
    import warnings

    from subliminal.topic_b.entanglement import _pearson

    x = np.arange(5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(np.isnan(_pearson(np.ones(5), x))) and all(np.isnan(_pearson(x, np.full(5, 2.0))))
    r, p = _pearson(x, 2 * x + 1)
    assert r == pytest.approx(1.0) and p < 1e-3
