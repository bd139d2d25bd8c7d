"""Output folders and result sets: prepare_out refuses unusable folders up front; OutputSet replaces a
run's files all together or not at all; figures and CSVs written through it land atomically."""

from __future__ import annotations

import errno
import json
import os
import tempfile

import pandas as pd
import pytest

from subliminal import results
from subliminal.cli import UserError, os_error_message
from subliminal.results import OutputSet, prepare_out, read_csv_checked, read_json, save_figure, write_csv


def _files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_prepare_out_creates_nested_folders(tmp_path):
    d = prepare_out(tmp_path / "a" / "b")
    assert d.is_dir() and list(d.iterdir()) == []  # the write test leaves nothing behind


def test_prepare_out_refuses_a_file(tmp_path):
    f = tmp_path / "plots"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        prepare_out(f)
    with pytest.raises(UserError, match="cannot create output folder"):
        prepare_out(f / "sub")  # a parent is a file


def test_prepare_out_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    def read_only(*_a, **_k):  # root ignores chmod, so simulate the read-only filesystem
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(UserError, match="not writable .Read-only file system.") as e:
        prepare_out(tmp_path)
    assert "\n" not in str(e.value)


def test_output_set_moves_all_files_in_together(tmp_path):
    out = tmp_path / "out"
    with OutputSet(out) as o:
        write_csv(pd.DataFrame({"a": [1]}), o.path("x.csv"))
        results.atomic_write_text(o.path("sub/y.json"), "{}")
        assert not (out / "x.csv").exists()  # staged, not yet visible
        assert o.path("x.csv").parent.parent == out.parent  # staging beside out: same filesystem
    got = _files(out)
    assert json.loads(got.pop("sha256.json"))["files"].keys() == {"x.csv", "sub/y.json"}  # their hashes, moved in too
    assert got == {"x.csv": b"a\n1\n", "sub/y.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # staging and backup removed


def test_output_set_exception_changes_nothing(tmp_path):
    out = tmp_path / "out"
    with OutputSet(out) as o:
        results.atomic_write_text(o.path("x.csv"), "old")
    before = _files(out)
    with pytest.raises(RuntimeError), OutputSet(out) as o:
        results.atomic_write_text(o.path("x.csv"), "new")
        results.atomic_write_text(o.path("z.csv"), "new")
        raise RuntimeError("analysis failed")
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_set_failure_mid_move_restores_the_previous_set(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with OutputSet(out) as o:
        for n in ("a.csv", "b.csv", "c.csv"):
            results.atomic_write_text(o.path(n), f"old {n}")
    before = _files(out)
    real_replace = os.replace

    def flaky(src, dst):  # the second new file fails to move in (disk full)
        if ".staging-" in str(src) and str(dst).endswith("b.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    with pytest.raises(OSError, match="No space"), OutputSet(out) as o:
        for n in ("a.csv", "b.csv", "c.csv", "d.csv"):
            results.atomic_write_text(o.path(n), f"new {n}")
        monkeypatch.setattr(os, "replace", flaky)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _files(out) == before  # a.csv moved in, then rolled back; d.csv never appears
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_save_figure_is_atomic_and_closes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    p = save_figure(fig, tmp_path / "f.png", dpi=50)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert [x.name for x in tmp_path.iterdir()] == ["f.png"]


def test_readers_turn_malformed_files_into_one_line(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("model,p\nx,1\n")
    assert read_csv_checked(p, required=("model",))["p"].tolist() == [1]
    with pytest.raises(UserError, match="lacks column.s. animal"):
        read_csv_checked(p, required=("model", "animal"))
    p.write_bytes(b"")
    with pytest.raises(UserError, match="cannot be read as a CSV"):
        read_csv_checked(p)
    p.write_bytes(b"\xff\xfe\x00garbage,\x81\n\x00\x00")
    with pytest.raises(UserError, match="cannot be read as a CSV"):
        read_csv_checked(p)
    j = tmp_path / "r.json"
    j.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_json(j)


def test_os_error_messages_say_what_to_do():
    assert "disk full (/x/y.csv)" in os_error_message(OSError(errno.ENOSPC, "No space left on device", "/x/y.csv"))
    assert "writable --out" in os_error_message(PermissionError(errno.EACCES, "Permission denied", "/x"))


def test_output_set_stages_inside_out_when_the_parent_is_read_only(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with OutputSet(out) as o:
        results.atomic_write_text(o.path("x.csv"), "old")
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with OutputSet(out) as o:
        results.atomic_write_text(o.path("x.csv"), "new")
        assert o.path("x.csv").parent.parent == out
    assert {k: v for k, v in _files(out).items() if k != "sha256.json"} == {"x.csv": b"new"}
    assert sorted(p.name for p in out.iterdir()) == ["sha256.json", "x.csv"]
