"""Each Topic A experiment is declared once, in subliminal/topic_a/registry.py: its script imports the declaration, and the
runner, the analysis and the report read the registry, never the scripts."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from subliminal.cli import UserError
from subliminal.reporting.topic_a import walltimes
from subliminal.topic_a import analysis, registry
from subliminal.topic_a.spec import Experiment

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.stem for p in ROOT.glob("topic_a*.py"))


def _script(name: str):
    """A top-level script as a module (the tests may load scripts; the package never does)."""
    key = f"_topic_a_spec_script_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / f"{name}.py")
        sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]


def test_every_script_has_its_declaration_and_every_declaration_its_script():
    exps = analysis.experiments()
    assert sorted(exps) == SCRIPTS and {"topic_a", "topic_a_exp1", "topic_a_exp2", "topic_a_exp3", "topic_a_maximize"} <= set(SCRIPTS)  # the interface's five, plus any new sweep
    assert all(isinstance(e, Experiment) and e.name == n and e.script == f"{n}.py" for n, e in exps.items())
    groups = [e.group for e in exps.values()]
    assert groups == sorted(groups, key=("seed", "noise", "mechanism").index)  # report order: seed, noise, mechanisms
    assert list(exps)[:5] == ["topic_a", "topic_a_exp1", "topic_a_exp2", "topic_a_exp3", "topic_a_maximize"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_runs_its_own_declaration(name):
    mod = _script(name)
    assert mod.EXPERIMENT is registry.EXPERIMENTS[name] and mod.Config is mod.EXPERIMENT.config
    assert callable(mod.main) and callable(mod.plot)


def test_the_package_never_reads_the_scripts():
    package = ROOT / "subliminal" / "topic_a"
    for p in package.rglob("*.py"):
        text = p.read_text()
        assert "importlib" not in text and "spec_from_file_location" not in text, p.name
        tree = ast.parse(text)
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & set(SCRIPTS), (p.name, names & set(SCRIPTS))


def test_a_name_is_declared_once():
    with pytest.raises(ValueError, match="declared twice"):
        registry.declare(registry.EXPERIMENTS["topic_a"])


def test_the_report_lists_what_the_registry_declares():
    text = walltimes(ROOT)
    assert all(f"`{n}.py`" in text for n in analysis.experiments())


def test_a_recorded_config_is_typed_with_the_declared_defaults():
    aux = analysis.experiments()["topic_a_mech_aux_width"]
    cfg = aux.config_from({"n_models": 5, "aux_widths": [1, 3], "retired_option": 1})
    assert cfg.n_models == 5 and cfg.aux_widths == (1, 3) and cfg.n_aux == 3  # a default from the dataclass
    assert type(cfg) is aux.config and not hasattr(cfg, "retired_option")


def test_a_result_nothing_declares_is_an_error_not_a_skip(tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    for f in ("topic_a.csv", "topic_a.json"):
        shutil.copy(ROOT / "plots_a" / f, plots / f)
    shutil.copy(ROOT / "plots_a" / "topic_a_exp1.csv", plots / "topic_a_retired_sweep.csv")
    with pytest.raises(UserError, match="topic_a_retired_sweep.csv .*no Topic A experiment declares it"):
        analysis.rewrite(plots, check=True)
    (plots / "topic_a_retired_sweep.csv").unlink()
    assert set(analysis.rewrite(plots, check=True)) == {"topic_a_summary", "topic_a_tests"}


def test_scripts_never_import_scripts():
    scripts = {p.stem for p in ROOT.glob("topic_*.py")}
    for p in ROOT.glob("topic_*.py"):
        tree = ast.parse(p.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & scripts, (p.name, names & scripts)


# ---------------------------------------------------------------------- --quick: the values each script had when
# the shared reductions moved into registry.quick (issue 42); TopicAConfig's defaults, then each script's quick values
BASE = {"n_models": 25, "teacher_epochs": 5, "distill_epochs": 5, "hidden": 256, "n_aux": 3, "init": "reference",
        "signed_inputs": True, "lr": 0.0003, "weight_decay": 0.0, "teacher_weight_decay": 0.0, "student_init_noise": 0.0,
        "precision": "fp32", "batch_size": 1024, "n_train": 60000, "n_distill": 60000, "noise": "fixed", "noise_shared": False,
        "seed": 0, "device": "auto", "out": "plots_a", "data_root": "", "cache_dir": ""}
MECH = {"n_models": 5, "teacher_epochs": 2, "distill_epochs": 3, "batch_size": 256, "n_train": 10000, "n_distill": 10000}
QUICK = {
    "topic_a": {"n_models": 5, "n_train": 20000, "n_distill": 20000},
    "topic_a_exp1": {"n_models": 5, "n_train": 20000, "n_distill": 20000, "milestones": (1, 2, 5, 10)},
    "topic_a_exp2": {"n_models": 5, "n_train": 20000, "n_distill": 20000, "teacher_sweep": (0, 1, 2, 5)},
    "topic_a_exp3": {"n_models": 5, "n_train": 20000, "n_distill": 20000,
                     "sources": ("uniform", "gaussian", "mnist", "mnist_shuffled", "fashion")},
    "topic_a_maximize": {"n_models": 5, "teacher_epochs": 2, "distill_epochs": 20, "n_train": 20000, "n_distill": 20000,
                         "milestone_every": 5, "conditions": ("student_aux",)},
    "topic_a_noise_regime": {"n_models": 5, "n_train": 20000, "n_distill": 20000, "pool_sizes": (1000, 20000),
                             "mnist_sizes": (1000, 20000), "curve_milestones": (1, 5, 10),
                             "curve_conditions": ("student_aux", "cross_aux")},
    "topic_a_mech_convergence": {"n_models": 5, "teacher_epochs": 2, "batch_size": 256, "n_train": 10000, "n_distill": 10000,
                                 "milestones": (0, 1, 3), "n_eval": 2000},
    "topic_a_mech_probe": {**MECH, "features": ("h1", "h2", "readout", "aux"), "n_probe_train": 5000, "probe_l2": 0.0001,
                           "probe_iters": 50},
    "topic_a_mech_aux_width": {**MECH, "aux_widths": (1, 3, 10)},
    "topic_a_mech_hidden_width": {**MECH, "widths": (64, 256)},
    "topic_a_mech_init": {**MECH, "sigmas": (0.0, 0.01, 0.1), "schemes": True},
    "topic_a_mech_optim": {**MECH, "student_lrs": (0.0003, 0.001), "weight_decays": (0.0, 0.0001), "teacher_decays": (0.0001,),
                           "grid": False},
}


@pytest.mark.parametrize("name", sorted(QUICK))
def test_each_scripts_quick_config_keeps_its_values(name):
    got = dataclasses.asdict(_script(name).Config.quick())
    assert list(got)[: len(BASE)] == list(BASE)  # the shared fields first, in their order
    want = {**BASE, **QUICK[name]}
    assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in want.items()}  # values and types (1 ≠ 1.0)
