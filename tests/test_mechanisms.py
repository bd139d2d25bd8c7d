"""Mechanism measurements (issue 4): CKA's invariances, the probe on real features, and each script end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from subliminal.reporting.mechanisms import declared, tables
from subliminal.topic_a.distill import distill, students_at
from subliminal.topic_a.engine import MLPShape, ParallelMLP
from subliminal.topic_a.mechanisms import linear_cka, similarity
from subliminal.topic_a.probes import probe_accuracy
from subliminal.topic_a.train import TopicA, TopicAConfig, student_init, teacher

ROOT = Path(__file__).resolve().parent.parent


def test_cka_of_a_representation_with_itself_is_one_and_invariant():
    x = torch.randn(3, 400, 32)  # (N, B, D)
    q, _ = torch.linalg.qr(torch.randn(32, 32))
    torch.testing.assert_close(linear_cka(x, x), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(linear_cka(x, x @ q), torch.ones(3), atol=1e-5, rtol=0)  # orthogonal transform
    torch.testing.assert_close(linear_cka(x, 7.5 * x + 3.0), torch.ones(3), atol=1e-5, rtol=0)  # isotropic scale, shift
    relu = torch.relu(torch.randn(2, 1000, 64)) + 5.0  # non-centred features, as ReLU layers give
    torch.testing.assert_close(linear_cka(relu, relu @ torch.linalg.qr(torch.randn(64, 64))[0]), torch.ones(2), atol=1e-4, rtol=0)


def test_cka_of_independent_features_is_small_and_chunking_does_not_matter():
    x, y = torch.randn(2, 2000, 16), torch.randn(2, 2000, 16)
    assert (linear_cka(x, y) < 0.05).all()
    assert linear_cka(x[0], y[0]).dim() == 0  # unbatched input gives a scalar
    # the chunked accumulation in `similarity` equals one CKA over all inputs
    t = ParallelMLP(MLPShape(2, 784, 16, 3)).init_(torch.Generator().manual_seed(0))
    s = ParallelMLP(MLPShape(2, 784, 16, 3)).init_(torch.Generator().manual_seed(1))
    xs = torch.rand(900, 784) * 2 - 1
    got = similarity(t, s, xs, chunk=250)
    torch.testing.assert_close(got["cka_h2"], linear_cka(t.hidden(xs)[1], s.hidden(xs)[1]), atol=1e-4, rtol=0)
    torch.testing.assert_close(similarity(t, t, xs)["cos_h1"], torch.ones(2), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def small(tmp_path_factory, mnist):
    cfg = TopicAConfig(n_models=3, n_train=3000, n_distill=3000, batch_size=256, teacher_epochs=1, distill_epochs=1,
                       device="cpu", cache_dir=str(tmp_path_factory.mktemp("mech_cache")))
    return TopicA(cfg, mnist, progress=False)


def test_probe_on_teacher_features_beats_chance_by_far(small):
    A = small
    acc = probe_accuracy(teacher(A, 1), "h2", A.x_train[:2000], A.y_train[:2000], A.x_test[:2000], A.y_test[:2000], max_iter=50)
    assert acc.shape == (3,) and (acc > 0.75).all(), acc


def test_students_at_earlier_milestone_replays_the_same_numbers(small):
    A = small
    t = teacher(A, 1)
    distill(A, 1, ["student_aux"], [2], teacher=t)  # the checkpoint is now at epoch 2, no weights kept
    at1 = students_at(A, 1, ["student_aux"], 1, teacher=t)["student_aux"]  # rerun from the init to epoch 1
    acc = distill(A, 1, ["student_aux"], [1, 2], teacher=t)
    assert at1.accuracy(A.x_test, A.y_test).tolist() == acc[acc.distill_epochs == 1].accuracy.tolist()
    run = A.store.student_run(1, "student_aux", A.source("uniform").describe())
    assert set(run.checkpoints) == {1, 2} and set(run.weights) == {1}  # the rerun kept epoch 1, and its own checkpoint
    at2 = students_at(A, 1, ["student_aux"], 2, teacher=t)["student_aux"]  # kept from the checkpoint
    assert at2.accuracy(A.x_test, A.y_test).tolist() == acc[acc.distill_epochs == 2].accuracy.tolist()
    assert set(A.store.student_run(1, "student_aux", A.source("uniform").describe()).weights) == {1, 2}


def test_student_init_noise_changes_the_student_and_its_key(small):
    from dataclasses import replace
    A = small
    noisy = TopicA(replace(A.cfg, student_init_noise=0.01), A.mnist, progress=False)
    src = A.source("uniform").describe()
    assert A.store.student_key(1, "student_aux", src) != noisy.store.student_key(1, "student_aux", src)
    d = student_init(noisy, "student_aux").w1 - student_init(A, "student_aux").w1
    assert 0.008 < d.std().item() < 0.012
    # zero noise is the default
    assert replace(A.cfg, student_init_noise=0.0) == A.cfg


def test_teacher_weight_decay_has_its_own_key_and_shrinks_only_what_it_should(small):
    from dataclasses import replace

    from subliminal.topic_a.mechanisms import readout_norm_ratio
    A = small
    B = TopicA(replace(A.cfg, teacher_weight_decay=1e-3), A.mnist, progress=False)
    assert B.store.teacher_key() != A.store.teacher_key()
    plain, decayed = teacher(A, 1), teacher(B, 1)
    assert (readout_norm_ratio(plain, A.reference(), "aux") == 1).all()  # the digit loss never reaches it
    assert (readout_norm_ratio(decayed, A.reference(), "aux") < 1).all()
    assert (readout_norm_ratio(decayed, A.reference(), "digit") != 1).all()


TINY = ["--quick", "--n-models", "3", "--n-train", "3000", "--n-distill", "3000", "--batch-size", "512", "--device", "cpu",
        "--teacher-epochs", "1"]
# every declared mechanism experiment (subliminal/topic_a/registry.py), each run with TINY and its own `tiny_args`
MECHANISMS = {e.name: e for e in declared()}


@pytest.fixture(scope="module")
def script_out(tmp_path_factory):
    return tmp_path_factory.mktemp("mech_out")


@pytest.mark.parametrize("name", list(MECHANISMS))
def test_mech_script_quick_run_writes_outputs(name, script_out, tmp_path_factory, mnist):
    out = script_out / "plots_a"
    cache = tmp_path_factory.getbasetemp() / "mech_scripts_cache"
    cmd = [sys.executable, f"{name}.py", *TINY, *MECHANISMS[name].tiny_args, "--out", str(out), "--cache-dir", str(cache)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    for suffix in (".csv", "_summary.csv", "_tests.csv", ".png", ".json"):
        assert (out / f"{name}{suffix}").stat().st_size > 0
    df = pd.read_csv(out / f"{name}.csv")
    assert {"condition", "model", "accuracy"} <= set(df.columns) and df.accuracy.between(0, 1).all()
    assert set(df.model) == {0, 1, 2}
    assert json.loads((out / f"{name}.json").read_text())["complete"] is True
    if name == "topic_a_mech_convergence":
        assert df.cka_h2.between(0, 1 + 1e-5).all()
        assert df[(df.condition == "student_aux") & (df.distill_epochs == 0)].update_cos_w1.isna().all()
    if name == "topic_a_mech_optim":
        decayed = df[(df.condition == "student_aux") & (df.weight_decay > 0)].readout_norm
        assert (decayed < 1).all()  # Adam's L2 term shrinks the readout that the ghost loss never touches
        assert (df[(df.condition == "student_aux") & (df.weight_decay == 0)].readout_norm == 1).all()
        # decay on the teachers too: own teachers, whose ghost readout (no digit-loss gradient) shrinks;
        # every other setting distils the shared teachers, whose ghost readout is exactly the init's
        t = df[df.condition == "teacher"]
        assert (t[t.teacher_weight_decay > 0].teacher_ghost_norm < 1).all()
        assert (t[t.teacher_weight_decay == 0].teacher_ghost_norm == 1).all()
        shared = t[t.setting == t.setting.iloc[0]].sort_values("model").accuracy.to_numpy()
        assert not np.array_equal(t[t.teacher_weight_decay > 0].sort_values("model").accuracy.to_numpy(), shared)


def test_report_tables_after_the_scripts(script_out):
    if not all((script_out / "plots_a" / f"{name}.csv").exists() for name in MECHANISMS):
        pytest.skip("needs the script runs above (run the whole file)")
    got = tables(script_out)
    for e in MECHANISMS.values():
        assert got[e.report.marker].startswith("|") and "Not run yet" not in got[e.report.marker], (e.name, got[e.report.marker][:300])
    missing = tables(script_out / "nowhere")
    assert all(f"python {e.script}" in missing[e.report.marker] for e in MECHANISMS.values())
    # the fast-set bench compares these verdicts between two output directories
    from subliminal.reporting.mechanisms import verdicts_for
    from subliminal.verdicts import VERDICTS
    v = verdicts_for(script_out / "plots_a")
    assert set(v) <= {name.removeprefix("topic_a_mech_") for name in MECHANISMS} and v
    assert v == verdicts_for(script_out / "plots_a") and all(w in VERDICTS for recs in v.values() for _, w in recs)
    assert verdicts_for(script_out / "nowhere") == {}


def test_every_declared_mechanism_has_its_section_in_the_docs():
    from subliminal.reporting.mechanisms import SECTIONS
    docs = (ROOT / "docs" / "topic_a_mechanisms.md").read_text()
    markers = [e.report.marker for e in MECHANISMS.values()]
    assert len(set(markers)) == len(markers) and all(e.report.section in SECTIONS for e in MECHANISMS.values())
    for m in markers + ["a_mech_scripts", "a_mech_commands"]:
        assert docs.count(f"<!-- report:{m} -->") == 1 and docs.count(f"<!-- /report:{m} -->") == 1, m
    got = tables(ROOT)  # the script table and the run commands list every declared script, in declaration order
    rows = [line.split(" | ")[0].strip("| `") for line in got["a_mech_scripts"].splitlines()[2:]]
    assert rows == [e.script for e in MECHANISMS.values()]
    assert got["a_mech_commands"].splitlines()[1:-1] == [f"python {e.script}" for e in MECHANISMS.values()]


def test_a_new_sweep_gets_the_generic_section_from_its_declaration():
    """A one-knob sweep with no renderer of its own: its table against the declared reference, no verdict without a Trend."""
    from dataclasses import replace

    from subliminal.reporting.mechanisms import SECTIONS
    from subliminal.topic_a.registry import MECH_INIT
    from subliminal.topic_a.spec import Report
    new = replace(MECH_INIT, report=Report("a_mech_new", "q?", "how"))  # the init sweep's data, the generic section
    text, recs = SECTIONS[new.report.section](ROOT / "plots_a", new)
    assert new.report.section == "sweep" and recs == []
    assert text.startswith("| setting | n |") and "student − σ=0 |" in text and "| σ=0.05 | 25 |" in text
    assert SECTIONS["sweep"](ROOT / "nowhere", replace(new, name="topic_a_mech_new"))[0].startswith("_Not run yet: `python topic_a_mech_new.py`")


def test_init_report_names_the_factor_that_removes_transfer():
    import pandas as pd

    from subliminal.reporting.mech_knobs import _which_factor

    def row(name, transfer, init="reference", signed=True, noise=0.0):  # the settings are found by these columns
        return {"setting": name, "student_init_noise": noise, "init": init, "signed_inputs": signed,
                "transfer": transfer, "transfer_sign": 1 if transfer > 0.02 else 0}

    def frame(rng, ini):
        return pd.DataFrame([row("σ=0", 0.45), row("σ=0.1", 0.01, noise=0.1), row("any label", rng, signed=False),
                             row("another label", ini, init="torch"), row("torch, [0,1)", 0.0, "torch", False)])

    assert "input range carries the effect" in _which_factor(frame(0.02, 0.33))[0]
    means = frame(0.40, 0.05)
    assert "init scheme carries the effect" in _which_factor(means)[0]
    assert _which_factor(means[means.setting != "another label"]) == []  # needs both one-change settings


def _width_csv(root, transfers: dict[int, float], n: int = 10) -> None:
    """A tidy hidden-width CSV: per setting, n models with student = 0.1 + transfer, cross = 0.1."""
    rng = np.random.default_rng(0)
    rows = []
    for h, tr in transfers.items():
        for m in range(n):
            for cond, acc in (("teacher", 0.95), ("student_aux", 0.1 + tr), ("cross_aux", 0.1)):
                rows.append({"setting": f"H={h}", "hidden": h, "condition": cond, "model": m,
                             "accuracy": acc + 0.005 * rng.standard_normal()})
    (root / "plots_a").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "plots_a" / "topic_a_mech_hidden_width.csv", index=False)


@pytest.mark.parametrize("transfers,expect", [
    ({64: 0.5, 128: 0.4, 256: 0.3, 512: 0.2, 1024: 0.1}, "reproduced"),  # rho = -1, p < 0.05
    ({64: 0.40, 128: 0.49, 256: 0.45, 512: 0.29, 1024: 0.14}, "partly"),  # rho -0.7, not significant over 5 settings
    ({64: 0.1, 128: 0.2, 256: 0.3, 512: 0.4, 1024: 0.5}, "contradicts"),  # wider transfers more
])
def test_width_verdict_needs_a_significant_rank_trend(tmp_path, transfers, expect):
    from subliminal.reporting.mechanisms import verdicts_for
    from subliminal.topic_a.analysis import rewrite

    _width_csv(tmp_path, transfers)
    rewrite(tmp_path / "plots_a")  # the analysis writes the summary and tests the report reads
    assert [v for _, v in verdicts_for(tmp_path / "plots_a")["hidden_width"]] == [expect]
