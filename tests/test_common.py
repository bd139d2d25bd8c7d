"""CLI parsing from dataclasses, one-line user errors, atomic results with provenance, statistics."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from subliminal.cli import UserError, parse_config
from subliminal.devices import get_device
from subliminal.results import write_csv, write_run_json
from subliminal.stats import compare_summaries, mean_ci, summarize

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cfg:
    n_models: int = field(default=25, metadata={"help": "models"})
    flag: bool = True
    milestones: tuple[int, ...] = (1, 2)
    name: str = "x"

    @classmethod
    def quick(cls):
        return cls(n_models=3)


def test_parse_config_types_quick_and_overrides():
    c = parse_config(Cfg, ["--n-models", "7", "--no-flag", "--milestones", "3", "4", "5"])
    assert c == Cfg(n_models=7, flag=False, milestones=(3, 4, 5))
    assert parse_config(Cfg, ["--quick"]).n_models == 3
    assert parse_config(Cfg, ["--quick", "--n-models", "9"]).n_models == 9


def test_bad_flag_is_an_argparse_error():
    with pytest.raises(SystemExit):
        parse_config(Cfg, ["--n-models", "many"])


def test_get_device():
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type in ("cpu", "cuda")
    with pytest.raises(UserError):
        get_device("tpu")


def test_script_user_error_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "topic_a.py", "--n-models", "1", "--out", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: --n-models must be at least 2 (the cross-model control needs two inits)"


def test_mean_ci_matches_scipy():
    x = np.array([0.5, 0.6, 0.55, 0.52, 0.58])
    m, lo, hi = mean_ci(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(ref)
    s = summarize(pd.DataFrame({"c": ["a"] * 5 + ["b"] * 2, "accuracy": list(x) + [1.0, 1.0]}), ["c"])
    assert s.n.tolist() == [5, 2] and s.ci95_low.iloc[1] == 1.0


def test_compare_summaries_joins_rows_and_gives_z_from_the_cis():
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"setting": ["x"] * 25 + ["y"] * 25, "accuracy": rng.normal(0.5, 0.05, 50)})
    b = pd.DataFrame({"setting": ["x"] * 10 + ["z"] * 10, "accuracy": rng.normal(0.6, 0.05, 20)})
    c = compare_summaries(summarize(a, ["setting"]), summarize(b, ["setting"]))
    assert c.row.tolist() == ["x"]  # rows in only one summary are dropped
    xa, xb = a.accuracy[:25], b.accuracy[:10]
    se = np.hypot(stats.sem(xa), stats.sem(xb))
    assert c["diff"].iloc[0] == pytest.approx(xb.mean() - xa.mean())
    assert c.z.iloc[0] == pytest.approx((xb.mean() - xa.mean()) / se)
    same = compare_summaries(summarize(a, ["setting"]), summarize(a, ["setting"]))
    assert (same.z == 0).all() and len(same) == 2


def test_results_are_written_atomically_with_provenance(tmp_path):
    write_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "r.csv")
    write_run_json(tmp_path / "r.json", Cfg(), 0, 1.5)
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["config"]["n_models"] == 25 and meta["seed"] == 0 and meta["wall_seconds"] == 1.5
    assert "torch" in meta["versions"] and "git_commit" in meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json"]  # no temp files left


def test_readme_makefile_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    make = (ROOT / "Makefile").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "\ndemo:" in make and "\ntest:" in make
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_tables_match_the_committed_csvs():
    p = subprocess.run([sys.executable, "-m", "subliminal.reporting", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("exc,says", [
    (OSError(28, "No space left on device", "/out/x.csv"), "disk full (/out/x.csv)"),
    (PermissionError(13, "Permission denied", "/out"), "Permission denied (/out); use a writable --out"),
    (OSError(30, "Read-only file system", "/ro/x.csv"), "Read-only file system (/ro/x.csv)"),
])
def test_cli_main_turns_os_errors_into_one_line(capsys, exc, says):
    from subliminal.cli import cli_main

    def main(_cfg):
        raise exc

    with pytest.raises(SystemExit) as e:
        cli_main(main, Cfg, [])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and says in err and "Traceback" not in err
