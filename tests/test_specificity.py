"""Specificity test and multiplicity: against brute force, scipy, hand-worked examples, synthetic data."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from subliminal.cli import UserError
from subliminal.topic_b import multiplicity as mult
from subliminal.topic_b import specificity as spec
from subliminal.topic_b.tables import set_columns


def test_best_of_k_exact_matches_enumeration():
    v = np.array([0.3, 1.0, 2.5, 2.5, 0.1, 4.0, 1.7, 0.9, 2.5])  # ties included
    for k in (1, 2, 3, 5, 9):
        subsets = [max(v[list(c)]) for c in itertools.combinations(range(len(v)), k)]
        for obs in (0.05, 0.9, 2.5, 3.0, 4.0, 4.5):
            brute = np.mean([m >= obs for m in subsets])
            assert mult.best_of_k_exact_p(v, obs, k) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(ValueError):
        mult.best_of_k_exact_p(v, 1.0, 10)


def test_best_of_k_exact_agrees_with_monte_carlo_and_floor():
    from subliminal.topic_b.entanglement import best_of_n_null

    v = np.random.default_rng(3).lognormal(size=1110)
    obs = np.sort(v)[-40]
    mc = (best_of_n_null(v, 10, draws=20_000, seed=1) >= obs).mean()
    assert mult.best_of_k_exact_p(v, obs, 10) == pytest.approx(mc, abs=0.01)
    assert mult.best_of_k_exact_p(v, v.max(), 10) == pytest.approx(10 / 1110)  # the smallest possible p


def test_top_k_mean_null_matches_subsets():
    v = np.arange(20.0)
    idx = mult.subset_index(20, 4, 5000, seed=0)
    assert all(len(set(r)) == 4 for r in idx[:200])  # without replacement
    means = np.array([np.mean(c) for c in itertools.combinations(v, 4)])  # all C(20, 4) subsets
    p95, p = mult.top_k_mean_p(v, 13.0, idx)
    assert p == pytest.approx((means >= 13.0).mean(), abs=0.01)
    assert p95 == pytest.approx(np.quantile(means, 0.95), abs=0.3)
    assert mult.top_k_mean_p(v, 0.0, idx)[1] == 1.0


def test_bh_hand_worked_and_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.20])
    # sorted 0.005 0.01 0.03 0.04 0.2 -> x5/rank: 0.025 0.025 0.05 0.05 0.2 -> running min from the top
    assert mult.bh_qvalues(p) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=10)])
        assert mult.bh_qvalues(x) == pytest.approx(sps.false_discovery_control(x))
    q = mult.bh_qvalues([0.01, np.nan, 0.02])  # NaN is no test
    assert np.isnan(q[1]) and q[[0, 2]] == pytest.approx([0.02, 0.02])


def test_multiplicity_table_counts():
    step2 = pd.DataFrame({
        "model": ["a"] * 4 + ["b"] * 4,
        "null_p_exact": [0.001, 0.04, 0.5, 0.9, 0.02, 0.03, 0.04, 0.045],
        "ttest_p": [0.001, 0.001, 0.04, 0.5, 0.2, 0.2, 0.2, 0.2],
        "ttest_t": [2.0, -2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    })
    t = mult.multiplicity_table(step2).set_index(["model", "test"])
    ex = t.xs("best_of_n_max_exact", level="test")
    # a: q = .004 .08 .667 .9 -> 1; b: q = .045 x4 -> 4; all 8 together: q = .008, then .06 for b's four -> 1
    assert ex.loc["a", "p_lt_alpha"] == 2 and ex.loc["a", "bh_within_model"] == 1
    assert ex.loc["b", "bh_within_model"] == 4 and ex.loc["b", "bh_all_models"] == 0
    assert ex.loc["all models", "bh_all_models"] == 1 and ex.loc["all models", "p_lt_alpha"] == 6
    pos = t.xs("ttest_positive", level="test")
    assert pos.loc["a", "p_lt_alpha"] == 2 and pos.loc["a", "bh_within_model"] == 1  # q(.04) = .053
    assert t.xs("ttest_negative", level="test").loc["a", "bh_within_model"] == 1
    assert ("a", "top_n_mean") not in t.index  # no such p column: no row
    assert mult.count(step2[step2.model == "b"], "best_of_n_max_exact", bh=True) == 4


def _synthetic(k=10, n=400, generic=1.0, planted=0.0, seed=0):
    """Scores with a shared (generic) part; log P(animal | n) follows the generic part, plus `planted`
    times the animal's own score."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, 1))
    S = generic * g + rng.normal(size=(n, k))
    L = np.log(0.01) + generic * g + planted * S + rng.normal(size=(n, k))
    return S, L


def test_permutation_test_detects_planted_effect_only():
    r = spec.variant_stats(*_synthetic(planted=0.3), top_k=10, n_perm=2000)
    assert r["p_own_r"] < 0.01 and r["p_own_rank"] < 0.01 and r["effect_ci95_low"] > 1
    pvals = [spec.variant_stats(*_synthetic(planted=0.0, seed=s), top_k=10, n_perm=500)["p_own_r"]
             for s in range(20)]
    assert np.mean(np.array(pvals) < 0.05) <= 0.2 and np.median(pvals) > 0.2  # a strong generic part alone


def test_statistics_match_plain_loops():
    S, L = _synthetic(k=6, n=80, planted=0.2, seed=5)
    C = spec.corr_matrix(S, L)
    ref = np.array([[np.corrcoef(L[:, a], S[:, b])[0, 1] for b in range(6)] for a in range(6)])
    assert C == pytest.approx(ref, abs=1e-10)
    r = spec.variant_stats(S, L, top_k=5, n_perm=300)
    ranks = [1 + sum(ref[a, b] > ref[a, a] for b in range(6)) for a in range(6)]
    assert r["mean_own_rank"] == pytest.approx(np.mean(ranks))
    diffs = []
    for a in range(6):
        own = L[np.argsort(-S[:, a])[:5], a].mean()
        others = [L[np.argsort(-S[:, b])[:5], a].mean() for b in range(6) if b != a]
        diffs.append(own - np.mean(others))
    assert np.log(r["effect_ratio"]) == pytest.approx(np.mean(diffs))
    assert r["effect_ci95_low"] <= r["effect_ratio"] <= r["effect_ci95_high"]


def test_shift_ci_inverts_the_test():
    """Each CI end is where the permutation test of the own-entry-shifted effect matrix crosses 2.5%
    (brute force: plain loops over the same permutations)."""
    k, n_perm = 8, 1000
    S, L = _synthetic(k=k, n=150, planted=0.2, seed=2)
    r = spec.variant_stats(S, L, top_k=8, n_perm=n_perm, seed=4)
    M = np.array([[L[np.argsort(-S[:, b], kind="stable")[:8], a].mean() for b in range(k)] for a in range(k)])
    perms = spec.permutations(k, n_perm, 4)

    def stat(Mx, p):
        return np.mean([Mx[a, p[a]] - np.mean([Mx[a, b] for b in range(k) if b != p[a]]) for a in range(k)])

    def p_values(delta):
        Mx = M - delta * np.eye(k)
        obs, null = stat(Mx, range(k)), np.array([stat(Mx, p) for p in perms])
        return (1 + (null >= obs - 1e-12).sum()) / (1 + n_perm), (1 + (null <= obs + 1e-12).sum()) / (1 + n_perm)

    lo, hi = np.log(r["effect_ci95_low"]), np.log(r["effect_ci95_high"])
    assert p_values(lo + 1e-9)[0] > 0.025 >= p_values(lo - 1e-3)[0]
    assert p_values(hi - 1e-9)[1] > 0.025 >= p_values(hi + 1e-3)[1]


def test_generic_removed_and_verdicts():
    S, L = _synthetic(k=5, n=300, generic=3.0, planted=0.0, seed=1)
    pairs = pd.DataFrame([(f"{i:03d}", f"a{j}", S[i, j], np.exp(L[i, j])) for i in range(300) for j in range(5)],
                         columns=["number", "animal", "logit_score", "p_subliminal"])
    rows = spec.specificity_rows(pairs, "m", top_k=10, n_perm=500)
    assert list(rows["variant"]) == ["raw", "generic_removed"]
    raw = rows.iloc[0]
    assert raw["mean_other_r"] > 0.5 and raw["mean_own_r"] == pytest.approx(raw["mean_other_r"], abs=0.1)
    assert rows.iloc[1]["mean_other_r"] < 0.1  # the shared part is gone
    base = {"p_own_r": 0.001, "effect_ratio": 1.03, "effect_ci95_low": 1.01, "effect_ci95_high": 1.05}
    assert spec.verdict(base) == "specific but tiny (+3.0% P(animal))"
    assert spec.verdict({**base, "p_own_r": 0.3}).startswith("not detected (effect at most +5%")
    assert spec.verdict({**base, "effect_ci95_low": 0.99}).startswith("specific in correlation")
    assert spec.verdict({**base, "p_own_r": 0.3, "effect_ci95_high": np.inf}).endswith("to bound the effect)")
    assert spec.verdict({**base, "effect_ratio": 3.0, "effect_ci95_low": 2.0}).startswith("specific and large")
    with pytest.raises(UserError):
        spec.specificity_rows(pairs.iloc[1:], "m")  # incomplete table


def test_number_ranks():
    pairs = pd.DataFrame({"animal": ["owl"] * 4 + ["eagle"] * 2, "number": ["087", "1", "02", "5", "747", "0"],
                          "logit_score": [0.5, 2.0, 0.1, 0.5, 1.0, 3.0],
                          "p_subliminal": [0.3, 0.1, 0.2, 0.05, 0.9, 0.1]})
    r = spec.number_ranks(pairs, "m").set_index("animal")
    assert r.loc["owl", "rank_by_logit_score"] == 2 and r.loc["owl", "rank_by_p_animal"] == 1  # ties share
    assert r.loc["eagle", "rank_by_logit_score"] == 2 and r.loc["eagle", "top_number_by_logit_score"] == "0"


def test_set_columns_keeps_cells(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("model,animal,x\nm,owl,1.234567891\nm,cat,2\nn,owl,3\n")
    new = pd.DataFrame({"model": ["m", "m"], "animal": ["owl", "cat"], "x": [9.0, 9.0], "q": [0.5, np.nan]})
    assert set_columns(new, path, ["model", "animal"], ["q"], write_to=tmp_path / "w.csv")
    assert (tmp_path / "w.csv").read_text() == "model,animal,x,q\nm,owl,1.234567891,0.5\nm,cat,2,\nn,owl,3,\n"
    assert not set_columns(new.assign(animal="dog"), path, ["model", "animal"], ["q"])  # rows missing
    assert not set_columns(new, tmp_path / "absent.csv", ["model", "animal"], ["q"])
    assert path.read_text() == "model,animal,x\nm,owl,1.234567891\nm,cat,2\nn,owl,3\n"  # never touched


def _pairs_csv(path, model="m", n_animals=4, seed=0):
    from subliminal.topic_b.prompts import ANIMALS
    from subliminal.topic_b.scoring import ALL_NUMBERS

    rng = np.random.default_rng(seed)
    rows = []
    for a, _ in ANIMALS[:n_animals]:
        s = rng.normal(size=len(ALL_NUMBERS))
        p = np.exp(np.log(0.01) + 0.3 * s + rng.normal(size=len(ALL_NUMBERS)))
        rows += [(model, n, a, 0.01, 0.02, pi, si, -3.0) for n, pi, si in zip(ALL_NUMBERS, p, s)]
    pd.DataFrame(rows, columns=["model", "number", "animal", "p_no_system", "p_neutral_system", "p_subliminal",
                                "logit_score", "logp_animal_prompt"]).to_csv(path, index=False)


def test_step2_from_pairs_adds_columns_and_keeps_the_full_runs(tmp_path):
    import topic_b_across_models as across
    import topic_b_step2_extended as step2
    from subliminal.cli import parse_config

    out = tmp_path / "plots_b"
    out.mkdir()
    _pairs_csv(out / "topic_b_step2_pairs.csv")
    argv = ["--model", "m", "--n-animals", "4", "--null-draws", "300", "--out", str(out)]
    first = step2.main(parse_config(step2.Config, argv + ["--from-pairs"]))  # no step-2 CSV yet: all columns
    assert (first["null_p_exact"] >= 10 / 1110 - 1e-12).all()
    csv = out / "topic_b_step2_extended.csv"
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("ttest_t")] = "1.23456789"  # as if written at full precision by a model run
    cells[header.index("null_p_exact")] = "0.5"  # an added column: recomputed
    csv.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    step2.main(parse_config(step2.Config, argv + ["--from-pairs"]))
    again = pd.read_csv(csv, dtype=str)
    assert again.loc[0, "ttest_t"] == "1.23456789"
    assert float(again.loc[0, "null_p_exact"]) == pytest.approx(first.loc[0, "null_p_exact"], rel=1e-5)
    spec_rows = pd.read_csv(out / "topic_b_specificity.csv")
    assert list(spec_rows["variant"]) == ["raw", "generic_removed"] and (spec_rows["n_perm"] == 300).all()
    ranks = pd.read_csv(out / "topic_b_specificity_numbers.csv", dtype=str)
    assert list(ranks["number"]) == ["087", "747"]

    t = across.main(parse_config(across.Config, ["--models", "m", "--n-animals", "4", "--null-draws", "300",
                                                 "--out", str(out), "--from-csv"]))
    assert list(t["variant"]) == ["raw", "generic_removed"]
    m = pd.read_csv(out / "topic_b_multiplicity.csv")
    assert set(m["model"]) == {"m", "all models"} and "best_of_n_max_exact" in set(m["test"])
    assert pd.read_csv(out / "topic_b_specificity.csv").equals(spec_rows)  # same pairs, same seed

    from subliminal.reporting.specificity import tables, verdicts
    from subliminal.verdicts import VERDICTS

    md = tables(tmp_path)
    assert set(md) == {"b_specificity", "b_multiplicity", "b_087_747"} and "| m | raw |" in md["b_specificity"]
    assert "| m | owl | 087 |" in md["b_087_747"]
    recs = verdicts(tmp_path)
    assert {r["verdict"] for r in recs} <= set(VERDICTS) and {r["topic"] for r in recs} == {"B"}
    spec_rec = [r for r in recs if r["model"] == "m" and "animal-specific" in r["claim"]]
    assert len(spec_rec) == 1 and spec_rec[0]["verdict"] == "reproduced"  # planted: 0.3 x own score
    assert tables(tmp_path / "none")["b_multiplicity"].startswith("_Not run yet")


def test_from_pairs_refuses_missing_or_partial_pairs(tmp_path):
    import topic_b_step2_extended as step2
    from subliminal.cli import parse_config

    argv = ["--model", "m", "--n-animals", "4", "--from-pairs", "--out", str(tmp_path)]
    with pytest.raises(UserError, match="no saved pairs"):
        step2.main(parse_config(step2.Config, argv))
    _pairs_csv(tmp_path / "topic_b_step2_pairs.csv", n_animals=3)
    with pytest.raises(UserError, match="pairs of m"):
        step2.main(parse_config(step2.Config, argv))
    with pytest.raises(UserError, match="--n-animals"):
        parse_config(step2.Config, ["--n-animals", "26"])
