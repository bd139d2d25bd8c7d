"""The noise-regime analysis: run order and stages, the paired contrasts, and the generated verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from subliminal.reporting.topic_a import noise_regime_verdicts
from subliminal.stats import summarize
from subliminal.topic_a import noise_regime

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
    df.attrs["n_distill"] = 60_000
    return df


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
    text = "\n".join(noise_regime_verdicts(summarize(df, ["part", "setting", "condition", "distill_epochs"]), tests, 5))
    assert "rises with every step up in distinct images" in text
    assert "not a data-reuse artefact" in text
    assert "about the input distribution" in text and "1k noise images beat 60k MNIST images" in text


def test_verdicts_say_so_when_fresh_noise_does_not_rise():
    acc = {("regime", "noise fixed 60k per-model", 5): 0.54}
    for ep, (fixed, fresh) in {1: (0.2, 0.6), 5: (0.54, 0.6), 40: (0.79, 0.6)}.items():
        acc[("curve", "noise fixed 60k per-model", ep)] = fixed
        acc[("curve", "noise fresh per-model", ep)] = fresh
    df = _fake(acc)
    tests = noise_regime.tests_vs_reference(df)
    text = "\n".join(noise_regime_verdicts(summarize(df, ["part", "setting", "condition", "distill_epochs"]), tests, 5))
    assert "partly a data-reuse effect" in text


def test_verdicts_name_the_settings_of_a_smaller_run():
    """A run with --n-distill 6000 --pool-sizes 600 6000: the reference and the pools are named from the config."""
    acc = {("regime", "noise fixed 6k per-model", 5): 0.40, ("regime", "noise fixed 600 per-model", 5): 0.20,
           ("regime", "noise fresh per-model", 5): 0.50, ("regime", "noise fresh shared", 5): 0.50,
           ("regime", "mnist 6k", 5): 0.10, ("regime", "noise fixed 600 shared", 5): 0.20}
    df = _fake(acc)
    df.attrs["n_distill"] = 6000
    tests = noise_regime.tests_vs_reference(df)
    assert set(tests.b) >= {"noise fixed 6k per-model"}
    text = "\n".join(noise_regime_verdicts(summarize(df, ["part", "setting", "condition", "distill_epochs"]), tests, 5,
                                           n_distill=6000, pool_sizes=(600, 6000), mnist_sizes=(6000,)))
    assert "fixed 600 " in text and "fixed 6k " in text  # both pools in the distinct-images sentence
    assert "fresh − fixed 6k" in text and "fresh shared − fixed 6k per-model" in text
    assert "60k" not in text


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
