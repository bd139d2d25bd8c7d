"""The noise-regime analysis: run order and stages, the paired contrasts, the parameter columns, and the verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from subliminal.reporting.noise_regime import notes_and_verdicts
from subliminal.topic_a import noise_regime
from subliminal.topic_a.analysis import analyse, experiments

BY = ["part", "setting", "condition", "distill_epochs"]

POOLS, MNIST = (1000, 10_000, 60_000), (1000, 10_000, 60_000)


def test_setting_order_and_stages_cover_everything_once():
    names = noise_regime.setting_names(60_000, POOLS, MNIST)
    assert names[:3] == ["noise fixed 60k per-model", "noise fresh shared", "noise fresh per-model"]
    assert len(names) == len(set(names)) == 2 * (len(POOLS) + 1) + len(MNIST)
    st = noise_regime.stages(60_000, POOLS, MNIST, (1, 5, 40))
    assert st[0] == (1, ()) and st[-1] == (len(names), (1, 5, 40))
    assert [s[0] for s in st] == sorted(s[0] for s in st)  # partial outputs only ever grow


def _fake(acc: dict[tuple[str, str, int], float], n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for (part, setting, ep), m in acc.items():
        for i in range(n):
            rows.append({"part": part, "setting": setting, "condition": "student_aux", "model": i, "teacher_epochs": 5,
                         "distill_epochs": ep, "accuracy": m + 0.01 * rng.standard_normal()})
    df = pd.DataFrame(rows)
    return df


def _analysed(df, n_distill=60_000, pools=POOLS, mnist=MNIST, exp3=None):
    """Summary and tests as the analysis writes them, then the report's notes and verdicts {claim start: verdict}."""
    exp = experiments()["topic_a_noise_regime"]  # as the script declares it
    assert exp.by == tuple(BY)
    cfg = exp.config_from({"n_distill": n_distill, "pool_sizes": list(pools), "mnist_sizes": list(mnist)})
    s, t = analyse(exp, df, cfg)
    notes, recs = notes_and_verdicts(s, t, 5, exp3)
    return s, t, "\n".join(notes), {r["claim"].split(" (")[0]: r["verdict"] for r in recs}


FRESH_RISES = "seed: more distillation epochs give more transfer, also with fresh noise"
NOISE_BEATS = "seed: noise beats real MNIST as distillation input"


def test_parameter_columns_come_from_the_config_not_the_names():
    t = noise_regime.setting_table(6000, (600, 6000), (6000,)).set_index("setting")
    assert t.loc["noise fixed 6k per-model"].is_reference and t.is_reference.sum() == 1
    assert t.loc["noise fixed 600 shared"][["source", "regime", "pool", "shared"]].tolist() == ["noise", "fixed", 600, True]
    assert t.loc["noise fresh per-model"][["regime", "pool", "shared"]].tolist() == ["fresh", 0, False]
    assert t.loc["mnist 6k"][["source", "pool"]].tolist() == ["mnist", 6000]
    # every name the run uses has a row
    assert set(noise_regime.setting_names(6000, (600, 6000), (6000,))) <= set(t.index)


def test_contrasts_and_verdicts_follow_the_data():
    acc = {("regime", "noise fixed 60k per-model", 5): 0.54, ("regime", "noise fresh shared", 5): 0.66,
           ("regime", "noise fresh per-model", 5): 0.66, ("regime", "noise fixed 1k per-model", 5): 0.30,
           ("regime", "noise fixed 10k per-model", 5): 0.45, ("regime", "noise fixed 1k shared", 5): 0.31,
           ("regime", "mnist 1k", 5): 0.10, ("regime", "mnist 60k", 5): 0.15}
    for ep, (fixed, fresh) in {1: (0.2, 0.25), 5: (0.54, 0.66), 40: (0.79, 0.85)}.items():
        acc[("curve", "noise fixed 60k per-model", ep)] = fixed
        acc[("curve", "noise fresh per-model", ep)] = fresh
    df = _fake(acc)
    tests = noise_regime.tests_vs_reference(df)
    pairs = set(zip(tests.a, tests.b))
    assert ("noise fixed 1k shared", "noise fixed 1k per-model") in pairs
    assert ("noise fresh shared", "noise fresh per-model") in pairs
    assert ("mnist 1k", "noise fixed 1k per-model") in pairs
    fresh = tests[(tests.part == "curve") & (tests.distill_epochs == 40)].iloc[0]
    assert abs(fresh.mean_diff - 0.06) < 0.02 and fresh.diff_ci95_low > 0
    s, t, _, v = _analysed(df)
    assert v[FRESH_RISES] == "reproduced"
    assert v[NOISE_BEATS] == "reproduced"  # noise beats MNIST at every size tested
    # the contrast column names every comparison, and the summary carries the parameters
    assert set(t.contrast) == {"vs_reference", "shared_vs_per_model", "mnist_vs_noise"}
    assert s[s.is_reference].setting.unique().tolist() == ["noise fixed 60k per-model"]
    exp3 = pd.DataFrame({"source": ["mnist", "mnist_shuffled"], "condition": "student_aux", "mean": [0.15, 0.12],
                         "ci95_low": [0.13, 0.10], "ci95_high": [0.17, 0.14]})
    assert _analysed(df, exp3=exp3)[3]["seed: noise works because it removes shortcuts"] == "inconclusive"  # CIs overlap
    exp3.loc[1, ["mean", "ci95_low", "ci95_high"]] = [0.10, 0.09, 0.12]  # shuffling lowers transfer: the direction fails
    assert _analysed(df, exp3=exp3)[3]["seed: noise works because it removes shortcuts"] == "contradicts"
    exp3.loc[1, ["mean", "ci95_low", "ci95_high"]] = [0.40, 0.38, 0.42]  # shuffling brings transfer back
    assert _analysed(df, exp3=exp3)[3]["seed: noise works because it removes shortcuts"] == "reproduced"


def test_verdicts_say_so_when_fresh_noise_does_not_rise():
    acc = {("regime", "noise fixed 60k per-model", 5): 0.54}
    for ep, (fixed, fresh) in {1: (0.2, 0.6), 5: (0.54, 0.6), 40: (0.79, 0.6)}.items():
        acc[("curve", "noise fixed 60k per-model", ep)] = fixed
        acc[("curve", "noise fresh per-model", ep)] = fresh
    assert _analysed(_fake(acc))[3][FRESH_RISES] == "contradicts"


def test_verdicts_name_the_settings_of_a_smaller_run():
    """A run with --n-distill 6000 --pool-sizes 600 6000: the reference and the pools are named from the config."""
    acc = {("regime", "noise fixed 6k per-model", 5): 0.40, ("regime", "noise fixed 600 per-model", 5): 0.20,
           ("regime", "noise fresh per-model", 5): 0.50, ("regime", "noise fresh shared", 5): 0.50,
           ("regime", "mnist 6k", 5): 0.10, ("regime", "noise fixed 600 shared", 5): 0.20}
    df = _fake(acc)
    tests = noise_regime.tests_vs_reference(df, 6000)
    assert set(tests.b) >= {"noise fixed 6k per-model"}
    s, t, text, _ = _analysed(df, 6000, (600, 6000), (6000,))
    assert s[s.is_reference].setting.unique().tolist() == ["noise fixed 6k per-model"]
    assert sorted(t[t.contrast == "mnist_vs_noise"].pool) == [6000]
    assert "60k" not in text  # labels come from the pool column of this run


def test_wall_time_adds_up_over_invocations_of_the_same_config(tmp_path):
    from subliminal.results import write_run_json
    from subliminal.topic_a.experiments import _earlier_seconds
    from subliminal.topic_a.train import TopicAConfig

    cfg = TopicAConfig(n_models=3)
    path = tmp_path / "x.json"
    assert _earlier_seconds(path, cfg) == 0.0  # nothing yet
    write_run_json(path, cfg, 0, 100.0, {"wall_seconds_all_runs": 250.0})
    assert _earlier_seconds(path, cfg) == 250.0
    assert _earlier_seconds(path, TopicAConfig(n_models=4)) == 0.0  # another config starts over
    # a run from before an option existed (its JSON lacks the key) still counts
    old = json.loads(path.read_text())
    del old["config"]["precision"]
    path.write_text(json.dumps(old))
    assert _earlier_seconds(path, cfg) == 250.0
    path.write_text("{broken")
    assert _earlier_seconds(path, cfg) == 0.0
