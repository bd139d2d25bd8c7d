"""The mechanism scripts' numbers measured on weights (CKA / cosines, probe accuracies, readout norms) travel with a
run as sealed records (`subliminal.topic_a.records.measured`): a run moved to a fresh machine with only its out folder
trains, loads and measures nothing and writes the same CSVs; an edited measure is refused and measured again alone; a
changed setting never reuses an old number."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil

import pytest

from subliminal import cache, carry
from subliminal.reporting import verify
from subliminal.topic_a import distill as distill_mod
from subliminal.topic_a import mech_runs
from subliminal.topic_a import train as train_mod
from subliminal.topic_a.registry import ConvergenceConfig, OptimConfig, ProbeConfig
from subliminal.topic_a.store import RunStore, StudentRun

TINY = dict(n_models=2, n_train=1024, n_distill=512, batch_size=256, hidden=16, teacher_epochs=1, distill_epochs=1,
            device="cpu")
CONFIGS = {
    "topic_a_mech_convergence": ConvergenceConfig(**TINY, milestones=(0, 1, 2), n_eval=500),
    "topic_a_mech_probe": ProbeConfig(**TINY, features=("h2", "aux"), n_probe_train=512, probe_iters=10),
    "topic_a_mech_optim": OptimConfig(**TINY, student_lrs=(1e-3,), weight_decays=(0.0, 1e-3), teacher_decays=(1e-3,)),
}
CSVS = (".csv", "_summary.csv", "_tests.csv")
# per script: the measure record edited in the refusal test (a prefix of its slot) and the unit measured again
EDITED = {"topic_a_mech_convergence": ("convergence-student_aux-e1-", "convergence:student_aux-e1"),
          "topic_a_mech_probe": ("probe-teacher-h2-", "probe:teacher-h2"),
          "topic_a_mech_optim": ("readout_norm-cross_aux-", "readout_norm:cross_aux")}


def _no_plot(summary, path, cfg) -> None:
    path.write_bytes(b"")


def _run(name, out, cache_dir, mnist, monkeypatch, **changes) -> None:
    """The script's own `main` on its tiny config, writing to `out` with the cache `cache_dir` (no figure)."""
    script = importlib.import_module(name)
    monkeypatch.setattr(train_mod, "load_mnist", lambda root=None: mnist)
    monkeypatch.setattr(script, "plot", _no_plot)
    script.main(dataclasses.replace(CONFIGS[name], out=str(out), cache_dir=str(cache_dir), **changes))


def _measures(monkeypatch) -> list[str]:
    """The units measured on weights (``<measure>:<label>``), in order."""
    computed: list[str] = []
    real = mech_runs.measured

    def spy(A, measure, units, compute):
        def counted(labels):
            computed.extend(f"{measure}:{label}" for label in labels)
            return compute(labels)
        return real(A, measure, units, counted)

    monkeypatch.setattr(mech_runs, "measured", spy)
    return computed


def _forbid_weights(monkeypatch) -> None:
    """Training, loading weights and every measurement on them raise."""
    def refuse(what):
        def f(*a, **k):
            raise AssertionError(f"{what} on a run whose measures are all kept")
        return f

    for owner, attr in ((distill_mod, "_train_students"), (train_mod, "_train_teacher"), (StudentRun, "load_weights"),
                        (RunStore, "load_teacher"), (mech_runs, "students_at"), (mech_runs, "similarity"),
                        (mech_runs, "update_alignment"), (mech_runs, "probe_accuracy"), (mech_runs, "readout_norm_ratio")):
        monkeypatch.setattr(owner, attr, refuse(f"{owner.__name__}.{attr}"))


@pytest.fixture(scope="module", params=list(CONFIGS))
def committed(request, tmp_path_factory, mnist):
    """(script, out folder) of a finished tiny run of each mechanism script, written with its own cache."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        _run(name, root / "out", root / "c1", mnist, mp)
    return name, root / "out"


def _moved(out, tmp_path):
    dest = tmp_path / "moved"
    shutil.copytree(out, dest)
    return dest


def _same_outputs(name, a, b) -> None:
    for suffix in CSVS:
        assert (a / f"{name}{suffix}").read_bytes() == (b / f"{name}{suffix}").read_bytes(), f"{name}{suffix}"


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_measures_are_small_sealed_records_listed_in_the_run_json(committed):
    name, out = committed
    folder = out / f"{name}_records"
    measures = [p for p in folder.iterdir() if p.name.split("-")[0] in ("convergence", "probe", "readout_norm")]
    assert measures
    for d in measures:
        body = cache.read_record(d / carry.RECORD)
        assert body is not None and set(body) == {"measure", "key", "inputs", "values"}
        assert all(len(v) == TINY["n_models"] for v in body["values"].values())
    assert verify.verify_records(folder, json.loads((out / f"{name}.json").read_text())) == len(list(folder.iterdir()))
    assert sum(f.stat().st_size for f in folder.rglob(carry.RECORD)) < 40_000


def test_moved_run_trains_loads_and_measures_nothing(committed, tmp_path, mnist, monkeypatch):
    name, out = committed
    moved = _moved(out, tmp_path)
    computed = _measures(monkeypatch)
    _forbid_weights(monkeypatch)
    _run(name, moved, tmp_path / "c2", mnist, monkeypatch)  # an empty cache
    assert computed == []
    _same_outputs(name, out, moved)
    assert _files(out / f"{name}_records") == _files(moved / f"{name}_records")  # nothing dropped, nothing new


def test_edited_measure_is_refused_in_one_line_and_measured_again_alone(committed, tmp_path, mnist, monkeypatch, capsys):
    name, out = committed
    moved = _moved(out, tmp_path)
    prefix, unit = EDITED[name]
    (rec,) = [d / carry.RECORD for d in sorted((moved / f"{name}_records").iterdir()) if d.name.startswith(prefix)][:1]
    doc = json.loads(rec.read_text())
    first = next(iter(doc["body"]["values"]))
    doc["body"]["values"][first][0] = 0.123  # a hand-edited number, its hash left as it was
    rec.write_text(json.dumps(doc))
    computed = _measures(monkeypatch)
    capsys.readouterr()
    _run(name, moved, tmp_path / "c2", mnist, monkeypatch)
    said = [ln for ln in capsys.readouterr().err.splitlines() if str(rec) in ln]
    assert len(said) == 1 and "does not match its checksum" in said[0]
    assert computed == [unit]  # that unit only: a partial run measures what is missing
    _same_outputs(name, out, moved)
    assert cache.read_record(rec) is not None  # whole again


def test_changed_probe_setting_measures_again_and_drops_the_old_numbers(tmp_path, mnist, monkeypatch):
    name = "topic_a_mech_probe"
    _run(name, tmp_path / "a", tmp_path / "c1", mnist, monkeypatch)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    computed = _measures(monkeypatch)
    _run(name, tmp_path / "b", tmp_path / "c1", mnist, monkeypatch, probe_l2=1e-2)  # the same cache
    # every probe again (the readout's own argmax does not depend on the probe's settings)
    assert sorted(computed) == sorted(f"probe:{m}-{f}" for m in ("reference", "teacher", "student_aux", "cross_aux")
                                      for f in ("h2", "aux"))
    a, b = (sorted(p.name for p in (tmp_path / d / f"{name}_records").iterdir()) for d in "ab")
    assert len(a) == len(b) and len(set(a) - set(b)) == 8  # the old probes' records dropped, the new ones kept
