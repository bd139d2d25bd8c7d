"""A Topic A run moved to a fresh machine continues from the committed state: its records folder beside the outputs
(`subliminal.topic_a.records`, `subliminal.carry`) is all it needs to skip every finished student and teacher."""

from __future__ import annotations

import json
import shutil

import pytest

from subliminal import cache, carry
from subliminal.topic_a import distill as distill_mod
from subliminal.topic_a import train as train_mod
from subliminal.topic_a.experiments import baseline, distill_sweep, run_and_write
from subliminal.topic_a.registry import BASELINE, EXP1, BaselineConfig, Exp1Config

TINY = dict(n_models=2, n_train=1024, n_distill=512, batch_size=256, hidden=16, teacher_epochs=1, distill_epochs=1,
            device="cpu")
OUTPUTS = ("topic_a.csv", "topic_a_summary.csv", "topic_a_tests.csv")


def _no_plot(summary, path, cfg) -> None:
    path.write_bytes(b"")


def _baseline(out, cache_dir, mnist, monkeypatch):
    monkeypatch.setattr(train_mod, "load_mnist", lambda root=None: mnist)
    cfg = BaselineConfig(**TINY, out=str(out), cache_dir=str(cache_dir))
    run_and_write(BASELINE, cfg, baseline, plot=_no_plot)


def _count_training(monkeypatch, forbid: bool = False) -> dict[str, list]:
    """Record (or forbid) every student and teacher training run."""
    trained: dict[str, list] = {"students": [], "teachers": []}
    real_students, real_teacher = distill_mod._train_students, train_mod._train_teacher

    def students(A, teacher, runs, *a, **k):
        if forbid:
            raise AssertionError(f"students retrained: {sorted(runs)}")
        trained["students"] += sorted(runs)
        return real_students(A, teacher, runs, *a, **k)

    def teacher(A, model, opt, start, end, *a, **k):
        if forbid:
            raise AssertionError("teacher retrained")
        trained["teachers"].append((start, end))
        return real_teacher(A, model, opt, start, end, *a, **k)

    monkeypatch.setattr(distill_mod, "_train_students", students)
    monkeypatch.setattr(train_mod, "_train_teacher", teacher)
    return trained


@pytest.fixture(scope="module")
def committed(tmp_path_factory, mnist):
    """A finished tiny baseline: its out folder (outputs + records), written with its own cache."""
    root = tmp_path_factory.mktemp("carry")
    with pytest.MonkeyPatch.context() as mp:
        _baseline(root / "out", root / "c1", mnist, mp)
    return root / "out"


def _moved(committed, tmp_path):
    """Only the committed out folder, copied to another place (a fresh machine: no cache)."""
    out = tmp_path / "moved"
    shutil.copytree(committed, out)
    return out


def test_records_are_small_sealed_and_name_every_unit(committed):
    folder = committed / "topic_a_records"
    slots = sorted(p.name for p in folder.iterdir())
    assert len(slots) == 5 and slots[-1].startswith("teacher-t1-")  # 4 students and the teacher
    assert {s.split("-t1-")[0] for s in slots[:-1]} == {"cross_all", "cross_aux", "student_all", "student_aux"}
    for s in slots:
        body = cache.read_record(folder / s / carry.RECORD)
        assert body is not None and not {"checkpoints", "weights"} & set(body)  # numbers, never weights
    meta = json.loads((committed / "topic_a.json").read_text())
    assert sorted(meta["records"]) == [f"{s}/record.json" for s in slots]
    assert sum(f.stat().st_size for f in folder.rglob(carry.RECORD)) < 3_000


def test_moved_run_trains_nothing_and_writes_the_same_outputs(committed, tmp_path, mnist, monkeypatch):
    out = _moved(committed, tmp_path)
    _count_training(monkeypatch, forbid=True)
    _baseline(out, tmp_path / "c2", mnist, monkeypatch)  # an empty cache
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (committed / name).read_bytes(), name
    assert len(list((tmp_path / "c2" / "students").iterdir())) == 4  # restored into the new cache


def test_partly_finished_run_trains_only_the_missing_student(committed, tmp_path, mnist, monkeypatch):
    out = _moved(committed, tmp_path)
    (missing,) = [d for d in (out / "topic_a_records").iterdir() if d.name.startswith("cross_all-")]
    shutil.rmtree(missing)
    trained = _count_training(monkeypatch)
    _baseline(out, tmp_path / "c2", mnist, monkeypatch)
    assert trained["students"] == ["cross_all"] and trained["teachers"] == [(0, 1)]  # its teacher, from its seed
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (committed / name).read_bytes(), name
    assert (missing / carry.RECORD).is_file()  # kept again


def test_edited_record_is_refused_in_one_line_and_recomputed(committed, tmp_path, mnist, monkeypatch, capsys):
    out = _moved(committed, tmp_path)
    (rec,) = [d / carry.RECORD for d in (out / "topic_a_records").iterdir() if d.name.startswith("student_aux-")]
    doc = json.loads(rec.read_text())
    doc["body"]["results"]["1"][0] = 0.999  # a hand-edited accuracy, its hash left as it was
    rec.write_text(json.dumps(doc))
    trained = _count_training(monkeypatch)
    capsys.readouterr()
    _baseline(out, tmp_path / "c2", mnist, monkeypatch)
    said = [ln for ln in capsys.readouterr().err.splitlines() if str(rec) in ln]
    assert len(said) == 1 and "does not match its checksum" in said[0]
    assert trained["students"] == ["student_aux"]
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (committed / name).read_bytes(), name
    assert cache.read_record(rec) is not None  # whole again


def test_staged_sweep_keeps_every_milestone_and_drops_other_configurations(tmp_path, mnist, monkeypatch):
    monkeypatch.setattr(train_mod, "load_mnist", lambda root=None: mnist)

    def run(out, cache_dir, milestones):
        cfg = Exp1Config(**TINY, milestones=milestones, out=str(out), cache_dir=str(cache_dir))
        ms = sorted(milestones)
        run_and_write(EXP1, cfg, distill_sweep, plot=_no_plot, stages=[ms[:k] for k in range(1, len(ms) + 1)])

    run(tmp_path / "a", tmp_path / "c1", (1, 2))
    folder = tmp_path / "a" / "topic_a_exp1_records"
    students = [cache.read_record(f) for f in sorted(folder.glob(f"*/{carry.RECORD}")) if "teacher" not in f.parent.name]
    assert len(students) == 2 and all(list(b["results"]) == ["1", "2"] for b in students)
    stray = folder / "student_aux-t1-uniform-0123456789abcdef"  # an earlier configuration's record
    cache.write_record(stray / carry.RECORD, {**students[0], "key": "0123456789abcdef"})
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    _count_training(monkeypatch, forbid=True)
    run(tmp_path / "b", tmp_path / "c2", (1, 2))
    assert (tmp_path / "b" / "topic_a_exp1.csv").read_bytes() == (tmp_path / "a" / "topic_a_exp1.csv").read_bytes()
    assert not (tmp_path / "b" / "topic_a_exp1_records" / stray.name).exists()


def test_moved_sweep_with_a_shared_teacher_trains_nothing(tmp_path, mnist, monkeypatch):
    """A one-knob sweep whose students distil another configuration's teacher (the optimiser sweep's) moves too."""
    from subliminal.topic_a.mech_runs import run_sweep
    from subliminal.topic_a.registry import MECH_OPTIM, OptimConfig

    monkeypatch.setattr(train_mod, "load_mnist", lambda root=None: mnist)
    sweep = {name: {"lr": lr, "weight_decay": wd, "teacher_weight_decay": twd}
             for name, lr, wd, twd in (("base", 3e-4, 0.0, 0.0), ("lr", 1e-3, 0.0, 0.0), ("teacher too", 3e-4, 1e-3, 1e-3))}

    def run(out, cache_dir):
        cfg = OptimConfig(**TINY, out=str(out), cache_dir=str(cache_dir))
        run_sweep(MECH_OPTIM, cfg, sweep, plot=_no_plot, students_only=True)

    run(tmp_path / "a", tmp_path / "c1")
    teachers = [p.name for p in (tmp_path / "a" / "topic_a_mech_optim_records").iterdir() if p.name.startswith("teacher")]
    assert len(teachers) == 2  # the shared teacher and the decayed setting's own
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    _count_training(monkeypatch, forbid=True)
    run(tmp_path / "b", tmp_path / "c2")
    for suffix in (".csv", "_summary.csv", "_tests.csv"):
        name = f"topic_a_mech_optim{suffix}"
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name
