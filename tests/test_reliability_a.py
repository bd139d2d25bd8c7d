"""Topic A inputs are checked before any work: bad flags, bad data folders and a bad --out give one line and exit 2."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from subliminal.cli import UserError, cli_main
from subliminal.topic_a import experiments
from subliminal.topic_a.distill import distill
from subliminal.topic_a.mnist import IDX_FILES, load_idx_root
from subliminal.topic_a.train import TopicA, TopicAConfig

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    if f"_script_{name}" not in sys.modules:  # dataclasses look their module up in sys.modules
        spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / f"{name}.py")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[f"_script_{name}"]


def _exit_line(capsys, name: str, argv: list[str]) -> str:
    """Run script `name` with argv in-process; it must exit 2 with exactly one line on stderr."""
    mod = _script(name)
    with pytest.raises(SystemExit) as e:
        cli_main(mod.main, mod.Config, argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if a run gets as far as building its data and models."""
    def refuse(*a, **k):
        raise AssertionError("work started before the inputs were checked")

    monkeypatch.setattr(experiments, "TopicA", refuse)


@pytest.mark.parametrize("argv,flag", [
    (["--seed", "-1"], "--seed"),
    (["--distill-epochs", "-1"], "--distill-epochs"),
    (["--teacher-epochs", "-2"], "--teacher-epochs"),
    (["--n-train", "0"], "--n-train"),
    (["--n-train", "70000"], "--n-train"),
    (["--batch-size", "0"], "--batch-size"),
    (["--n-models", "1"], "--n-models"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--student-init-noise", "-0.1"], "--student-init-noise"),
    (["--hidden", "10000000"], "--hidden"),
    (["--n-models", "100000000"], "--n-models"),
    (["--n-models", "50000"], "GiB"),  # in range, but far more memory than any machine here: said before any work
    (["--n-distill", "100000000000"], "--n-distill"),
    (["--distill-epochs", "1000000"], "--distill-epochs"),
])
def test_bad_flag_is_one_line_and_exit_2(capsys, no_training, argv, flag):
    assert flag in _exit_line(capsys, "topic_a", ["--quick", *argv])


def test_out_on_a_file_fails_before_any_work(tmp_path, capsys, no_training):
    f = tmp_path / "results.csv"
    f.write_text("not a folder")
    err = _exit_line(capsys, "topic_a_exp1", ["--quick", "--out", str(f), "--cache-dir", str(tmp_path / "c")])
    assert str(f) in err and f.read_text() == "not a folder"


def test_zero_distillation_epochs_are_the_students_init(tmp_path, mnist):
    cfg = TopicAConfig(n_models=3, n_train=512, n_distill=512, hidden=16, distill_epochs=0, device="cpu",
                       cache_dir=str(tmp_path / "c"))
    A = TopicA(cfg, mnist, progress=False)
    df = distill(A, 1, ["student_aux", "cross_aux"], [0])  # no teacher needed, nothing trained
    acc = {c: g.sort_values("model").accuracy.tolist() for c, g in df.groupby("condition")}
    ref = A.test_accuracy(A.reference())
    assert acc["student_aux"] == ref
    assert acc["cross_aux"] == [ref[i] for i in A.cross_permutation().tolist()]
    assert not (tmp_path / "c").exists()


def _write_idx(path: Path, a: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    path.write_bytes(header + a.astype(np.uint8).tobytes())


def _idx_root(root: Path, n_train: int = 100, n_test: int = 10, labels_max: int = 9) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        key = "train" if split == "train" else "test"
        _write_idx(root / IDX_FILES[f"{key}_x"], rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / IDX_FILES[f"{key}_y"], np.arange(n) % (labels_max + 1))
    return root


def test_labels_above_9_are_refused(tmp_path, capsys):
    root = _idx_root(tmp_path / "m", labels_max=11)
    with pytest.raises(UserError, match="labels 0..9"):
        load_idx_root(root)
    err = _exit_line(capsys, "topic_a", ["--quick", "--n-train", "100", "--data-root", str(root), "--out", str(tmp_path / "o"),
                                         "--cache-dir", str(tmp_path / "c")])
    assert "train_y must hold digit labels 0..9" in err and "0..11" in err


def test_a_non_gzip_gz_is_one_line(tmp_path, capsys):
    root = _idx_root(tmp_path / "m")
    name = IDX_FILES["train_x"]
    (root / name).rename(root / f"{name}.gz")  # an uncompressed file under a .gz name
    err = _exit_line(capsys, "topic_a", ["--quick", "--n-train", "100", "--data-root", str(root), "--out", str(tmp_path / "o"),
                                         "--cache-dir", str(tmp_path / "c")])
    assert "not a valid gzip file" in err and f"{name}.gz" in err
    (root / f"{name}.gz").write_bytes(gzip.compress(b"\x00" * 10)[:-6])  # truncated gzip
    assert "not a valid gzip file" in _exit_line(capsys, "topic_a", ["--quick", "--n-train", "100", "--data-root",
                                                                      str(root), "--out", str(tmp_path / "o")])


def test_a_small_data_set_is_refused_and_a_small_test_set_is_warned(tmp_path, capsys):
    root = _idx_root(tmp_path / "m")  # 100 training images, 10 test images
    err = _exit_line(capsys, "topic_a", ["--quick", "--data-root", str(root), "--out", str(tmp_path / "o"),
                                         "--cache-dir", str(tmp_path / "c")])
    assert "--n-train 20000" in err and "only 100 training images" in err
    TopicA(TopicAConfig(n_models=2, n_train=100, n_distill=100, device="cpu"), load_idx_root(root), progress=False)
    err = capsys.readouterr().err
    assert "WARNING" in err and "10 test images" in err


def test_ctrl_c_during_the_imports_is_the_one_line_message(tmp_path):
    import os
    import signal
    import subprocess
    import time

    for delay in (0.2, 0.7):  # torch and pandas take a second or two to import
        p = subprocess.Popen([sys.executable, "topic_a_exp1.py", "--out", str(tmp_path / "out"), "--cache-dir",
                              str(tmp_path / "c")], cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 130 and err.startswith("interrupted: ") and err.count("\n") == 1, (delay, err)


def test_every_script_says_ctrl_c_in_one_line_from_its_first_import():
    for script in sorted(ROOT.glob("topic_*.py")):
        lines = [ln for ln in script.read_text().splitlines() if ln.startswith(("import ", "from "))]
        assert lines[:2] == ["from __future__ import annotations", "from subliminal.interrupt import quiet_ctrl_c"], script.name
        assert "quiet_ctrl_c(__name__)" in script.read_text(), script.name
