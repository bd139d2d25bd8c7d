"""Each Topic A script runs end to end from the shell on a tiny config and writes CSV/PNG/JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--quick", "--n-models", "3", "--n-train", "3000", "--n-distill", "3000", "--batch-size", "512", "--device", "cpu"]
SCRIPTS = {
    "topic_a": ["--teacher-epochs", "1", "--distill-epochs", "1"],
    "topic_a_exp1": ["--teacher-epochs", "1", "--milestones", "1", "2"],
    "topic_a_exp2": ["--teacher-sweep", "0", "1", "--distill-epochs", "1"],
    "topic_a_exp3": ["--teacher-epochs", "1", "--distill-epochs", "1", "--sources", "uniform", "gaussian", "mnist", "mnist_shuffled"],
    "topic_a_maximize": ["--teacher-epochs", "1", "--distill-epochs", "3", "--milestone-every", "3"],
    "topic_a_noise_regime": ["--teacher-epochs", "1", "--distill-epochs", "1", "--pool-sizes", "1000", "3000",
                             "--mnist-sizes", "1000", "--curve-milestones", "1", "2"],
}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("topic_a_cache")


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_script_quick_run_writes_outputs(name, tmp_path, shared_cache, mnist):
    cmd = [sys.executable, f"{name}.py", *TINY, *SCRIPTS[name], "--out", str(tmp_path), "--cache-dir", str(shared_cache)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for suffix in (".csv", "_summary.csv", "_tests.csv", ".png", ".json"):
        assert (tmp_path / f"{name}{suffix}").stat().st_size > 0
    df = pd.read_csv(tmp_path / f"{name}.csv")
    assert {"condition", "model", "teacher_epochs", "distill_epochs", "accuracy"} <= set(df.columns)
    assert df.accuracy.between(0, 1).all() and set(df.model) == {0, 1, 2}
    summary = pd.read_csv(tmp_path / f"{name}_summary.csv")
    assert {"n", "mean", "ci95_low", "ci95_high"} <= set(summary.columns)
    assert (summary.ci95_low <= summary["mean"] + 1e-12).all()
    meta = json.loads((tmp_path / f"{name}.json").read_text())
    assert meta["config"]["n_models"] == 3 and meta["wall_seconds"] > 0 and meta["versions"]["torch"]
    assert meta["complete"] is True


def test_rerun_reuses_the_cache(tmp_path, shared_cache, mnist):
    """The baseline's students are found in the cache on a rerun: the second run trains nothing."""
    def run(out):
        cmd = [sys.executable, "topic_a.py", *TINY, *SCRIPTS["topic_a"], "--out", str(out), "--cache-dir", str(shared_cache)]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)

    first, again = run(tmp_path / "a"), run(tmp_path / "b")
    assert first.returncode == 0 and again.returncode == 0
    assert "distil" not in again.stderr and "teacher epochs" not in again.stderr
    assert pd.read_csv(tmp_path / "a" / "topic_a.csv").equals(pd.read_csv(tmp_path / "b" / "topic_a.csv"))
