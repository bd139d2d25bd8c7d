"""Each Topic A experiment is declared once, in its script: the runner, the analysis and the report find it there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from subliminal.cli import UserError
from subliminal.reporting.topic_a import walltimes
from subliminal.topic_a import analysis
from subliminal.topic_a.spec import Experiment

ROOT = Path(__file__).resolve().parent.parent


def test_every_script_declares_its_experiment_under_its_own_name():
    exps = analysis.experiments()
    scripts = sorted(p.stem for p in ROOT.glob("topic_a*.py"))
    assert sorted(exps) == scripts and {"topic_a", "topic_a_exp1", "topic_a_exp2", "topic_a_exp3", "topic_a_maximize"} <= set(scripts)  # the interface's five, plus any new sweep
    assert all(isinstance(e, Experiment) and e.name == n for n, e in exps.items())
    groups = [e.group for e in exps.values()]
    assert groups == sorted(groups, key=("seed", "noise", "mechanism").index)  # report order: seed, noise, mechanisms
    assert list(exps)[:5] == ["topic_a", "topic_a_exp1", "topic_a_exp2", "topic_a_exp3", "topic_a_maximize"]


def test_the_report_lists_what_the_scripts_declare():
    text = walltimes(ROOT)
    assert all(f"`{n}.py`" in text for n in analysis.experiments())


def test_a_recorded_config_is_typed_with_the_scripts_defaults():
    aux = analysis.experiments()["topic_a_mech_aux_width"]
    cfg = aux.config_from({"n_models": 5, "aux_widths": [1, 3], "retired_option": 1})
    assert cfg.n_models == 5 and cfg.aux_widths == (1, 3) and cfg.n_aux == 3  # a default from the dataclass
    assert type(cfg).__name__ == "Config" and not hasattr(cfg, "retired_option")


def _root_with(tmp_path: Path, *scripts: str) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    for s in scripts:
        shutil.copy(ROOT / f"{s}.py", root / f"{s}.py")
    return root


def test_a_result_no_script_declares_is_an_error_not_a_skip(tmp_path):
    root = _root_with(tmp_path, "topic_a")
    plots = tmp_path / "plots"
    plots.mkdir()
    for f in ("topic_a.csv", "topic_a.json", "topic_a_exp1.csv"):
        shutil.copy(ROOT / "plots_a" / f, plots / f)
    with pytest.raises(UserError, match="topic_a_exp1.csv .*no script"):
        analysis.rewrite(plots, check=True, root=root)
    (plots / "topic_a_exp1.csv").unlink()
    assert set(analysis.rewrite(plots, check=True, root=root)) == {"topic_a_summary", "topic_a_tests"}


def test_a_script_without_an_experiment_is_an_error(tmp_path):
    root = _root_with(tmp_path)
    (root / "topic_a_new_sweep.py").write_text('"""A new sweep that forgot to declare itself."""\n')
    with pytest.raises(UserError, match="topic_a_new_sweep.py declares no EXPERIMENT"):
        analysis.experiments(root)


def test_scripts_never_import_scripts():
    import ast

    scripts = {p.stem for p in ROOT.glob("topic_*.py")}
    for p in ROOT.glob("topic_*.py"):
        tree = ast.parse(p.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & scripts, (p.name, names & scripts)
