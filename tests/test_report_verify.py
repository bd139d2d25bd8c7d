"""The report reads only what the scripts wrote, and says so in one line when it cannot (issue 43, items 3, 5, 6):
result files are checked against the SHA-256 that ``results.OutputSet`` recorded when it wrote them, records
against the run JSON that lists them; an unreadable result is one line and exit 2, never a traceback; the
transfer migration refuses a commit the clone lacks in one line; a results commit cut by a kill is
completed or undone by the next OutputSet of the folder, one line per file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pandas as pd
import pytest

from subliminal import results
from subliminal.cli import UserError
from subliminal.results import OutputSet, write_csv

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "sha256.json"  # subliminal.MANIFEST


def _manifest(out: Path) -> dict | None:
    from subliminal import checksums

    return checksums.read(out)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- A: the manifest OutputSet writes, and verify_outputs ------------------------------------------------

def test_output_set_records_the_sha256_of_every_file_it_writes(tmp_path):
    out = tmp_path / "out"
    with OutputSet(out) as o:
        write_csv(pd.DataFrame({"a": [1, 2]}), o.path("r.csv"))
        results.atomic_write_text(o.path("sub/r.json"), '{"x": 1}\n')
    m = _manifest(out)
    assert set(m) == {"r.csv", "sub/r.json"}
    assert all(m[k]["sha256"] == _sha(out / k) and m[k]["size"] == (out / k).stat().st_size for k in m)
    assert m["r.csv"]["by"].startswith("python")  # the command to rerun
    with OutputSet(out) as o:  # another set into the same folder: its entries join the others
        write_csv(pd.DataFrame({"b": [3]}), o.path("s.csv"))
        write_csv(pd.DataFrame({"a": [9]}), o.path("r.csv"))
    m2 = _manifest(out)
    assert set(m2) == {"r.csv", "sub/r.json", "s.csv"} and m2["r.csv"]["sha256"] == _sha(out / "r.csv")
    assert m2["sub/r.json"] == m["sub/r.json"]


def test_verify_outputs_names_an_edited_truncated_or_missing_result(tmp_path):
    from subliminal.reporting import verify

    out = tmp_path / "plots_b"
    with OutputSet(out) as o:
        write_csv(pd.DataFrame({"cell": ["b", "c"], "verdict": ["transfer", "none detected"]}), o.path("v.csv"))
        write_csv(pd.DataFrame({"x": range(50)}), o.path("s.csv"))
    assert verify.verify_outputs(out, ["v.csv", "s.csv"]) == []
    good = (out / "v.csv").read_bytes()
    (out / "v.csv").write_bytes(good.replace(b"none detected", b"transfer     "))  # one word, same size
    with pytest.raises(UserError) as e:
        verify.verify_outputs(out, ["s.csv", "v.csv"])
    msg = str(e.value)
    assert "\n" not in msg and str(out / "v.csv") in msg and "edited" in msg and "rerun `python" in msg
    (out / "v.csv").write_bytes(good)
    (out / "s.csv").write_bytes((out / "s.csv").read_bytes()[:20])
    with pytest.raises(UserError, match=r"s\.csv does not match .*truncated: 20 of"):
        verify.verify_outputs(out, ["v.csv", "s.csv"])
    (out / "s.csv").unlink()
    with pytest.raises(UserError, match=r"s\.csv is missing, though .*sha256\.json records it"):
        verify.verify_outputs(out, ["s.csv"])


def test_results_without_a_recorded_hash_are_a_warning_not_an_error(tmp_path):
    from subliminal.reporting import verify

    old = tmp_path / "old"  # results written before manifests existed
    old.mkdir()
    (old / "a.csv").write_text("a\n1\n")
    verify.unverified_warning()
    assert verify.verify_outputs(old, ["a.csv", "not_run_yet.csv"]) == [old / "a.csv"]
    w = verify.unverified_warning()
    assert w.startswith("warning: 1 result file") and str(old / "a.csv") in w and "\n" not in w
    assert verify.unverified_warning() is None  # said once
    (old / MANIFEST).write_text("{truncated")
    with pytest.raises(UserError, match=r"sha256\.json is not valid JSON"):
        verify.verify_outputs(old, ["a.csv"])


def _records(tmp_path: Path) -> tuple[Path, dict]:
    d = tmp_path / "plots_b" / "ladder_records"
    for name in ("b-owl-s0", "b-owl-s1", "c-owl-s0"):
        (d / name).mkdir(parents=True)
        (d / name / "record.json").write_text(json.dumps({"name": name, "share": 0.1}) + "\n")
    (d / "base_preference.json").write_text("{}\n")
    listed = {f"{n}/record.json": _sha(d / n / "record.json") for n in ("b-owl-s0", "b-owl-s1", "c-owl-s0")}
    return d, {"complete": True, "records": listed}


def test_verify_records_names_an_edited_truncated_missing_or_unlisted_record(tmp_path):
    from subliminal.reporting import verify

    d, run = _records(tmp_path)
    j = tmp_path / "plots_b" / "ladder.json"
    j.write_text(json.dumps(run))
    assert verify.verify_records(d, j) == 3 and verify.verify_records(d, run) == 3
    rec = d / "b-owl-s1" / "record.json"
    good = rec.read_text()
    rec.write_text(good.replace("0.1", "0.9"))
    with pytest.raises(UserError) as e:
        verify.verify_records(d, j)
    assert "\n" not in str(e.value) and str(rec) in str(e.value) and "does not match" in str(e.value)
    rec.write_text(good[:10])
    with pytest.raises(UserError, match="b-owl-s1/record.json does not match"):
        verify.verify_records(d, j)
    rec.unlink()
    with pytest.raises(UserError, match="b-owl-s1/record.json is missing, though"):
        verify.verify_records(d, j)
    rec.write_text(good)
    (d / "d-owl-s0").mkdir()
    (d / "d-owl-s0" / "record.json").write_text("{}")
    with pytest.raises(UserError, match="d-owl-s0/record.json is not among the records"):
        verify.verify_records(d, j)
    verify.unverified_warning()
    assert verify.verify_records(d, {"complete": True}) == 0  # a run JSON from before records were listed
    assert str(d) in verify.unverified_warning()
    j.write_text('{"records": {"b-owl')
    with pytest.raises(UserError, match="ladder.json cannot be read"):
        verify.verify_records(d, j)


# --- B: the report on unreadable results -----------------------------------------------------------------

def _root(tmp_path: Path) -> Path:
    """A repository root with copies of the committed Topic A results, no Topic B results and a small README."""
    shutil.copytree(ROOT / "plots_a", tmp_path / "plots_a", ignore=shutil.ignore_patterns(".*"))
    (tmp_path / "plots_b").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("x\n<!-- report:glance -->\nold\n<!-- /report:glance -->\n")
    (tmp_path / "docs" / "p.md").write_text("<!-- report:a_baseline -->\n<!-- /report:a_baseline -->\n")
    return tmp_path


def test_a_truncated_run_json_or_a_csv_with_other_columns_is_one_line_and_exit_2(tmp_path, capsys):
    from subliminal.reporting import readme

    root = _root(tmp_path)
    j = root / "plots_a" / "topic_a.json"
    good = j.read_text()
    j.write_text(good[: len(good) // 2])  # truncated
    assert readme.main(["--root", str(root), "--check"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {j} is not valid JSON") and "rerun the script" in line
    j.write_text(good)
    s = root / "plots_a" / "topic_a_summary.csv"
    s.write_text("x,y\n1,2\n")  # another table's columns
    assert readme.main(["--root", str(root), "--check"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: subliminal.reporting.topic_a: ") and "git checkout" in line  # the provider
    s.write_bytes(b"\xff\xfe\x00\x81,\x00\n")  # not text
    assert readme.main(["--root", str(root)]) == 2
    assert str(s) in _one_line(capsys.readouterr().err)
    with pytest.raises((KeyError, AttributeError)):  # --traceback: the traceback, for whoever debugs a provider
        s.write_text("x,y\n1,2\n")
        readme.main(["--root", str(root), "--check", "--traceback"])


def test_check_fails_in_one_line_on_a_result_that_does_not_match_its_hash(tmp_path, capsys, monkeypatch):
    from subliminal.reporting import readme, verify

    root = _root(tmp_path)
    with OutputSet(root / "plots_b") as o:
        write_csv(pd.DataFrame({"cell": ["b"], "verdict": ["transfer"]}), o.path("ladder_verdicts.csv"))
    fake = types.ModuleType("fake_ladder_report")  # a provider that checks before it reads, as theory.py will
    fake.tables = lambda r: (verify.verify_outputs(Path(r) / "plots_b", ["ladder_verdicts.csv"]), {})[1]
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setattr(readme, "PROVIDERS", (*readme.PROVIDERS, fake.__name__))
    assert readme.main(["--root", str(root)]) == 0
    assert readme.main(["--root", str(root), "--check"]) == 0
    capsys.readouterr()
    v = root / "plots_b" / "ladder_verdicts.csv"
    v.write_text(v.read_text().replace("transfer", "reverse"))
    assert readme.main(["--root", str(root), "--check"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {v} does not match the SHA-256 recorded") and "rerun `python" in line


def test_python_m_reporting_check_on_a_truncated_result_is_one_line(tmp_path):
    root = _root(tmp_path)
    j = root / "plots_a" / "topic_a.json"
    j.write_text(j.read_text()[:100])
    p = subprocess.run([sys.executable, "-m", "subliminal.reporting", "--root", str(root), "--check"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2 and str(j) in _one_line(p.stderr)


def test_render_loaders_name_the_file_they_cannot_read(tmp_path):
    from subliminal.reporting import render

    (tmp_path / "plots_b").mkdir()
    b = tmp_path / "plots_b" / "t.csv"
    b.write_text("")
    with pytest.raises(UserError, match=f"{b} cannot be read as a CSV"):
        render.read_b(tmp_path, "t.csv")
    b.write_text("model,p\nm,1\n")
    with pytest.raises(UserError, match="lacks column.s. animal"):
        render.read_csv_checked(b, ["model", "animal"])
    j = tmp_path / "r.json"
    j.write_text("[1, 2]")
    with pytest.raises(UserError, match="not the object a run writes"):
        render.read_json_checked(j)
    j.write_text('{"a": 1}')
    with pytest.raises(UserError, match="lacks key.s. records"):
        render.read_json_checked(j, ["records"])


# --- C: the transfer run's one-off migration --------------------------------------------------------------

def test_the_migration_refuses_a_commit_the_clone_lacks_in_one_line(tmp_path, capsys):
    from subliminal.topic_b.transfer import migrate

    rc = migrate.main(["--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "--commit", "0" * 40])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and "full clone" in line
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


# --- D: a results commit cut by a kill ----------------------------------------------------------------------

_KILLER = textwrap.dedent("""
    import os, signal, sys
    from subliminal import results
    out, phase = sys.argv[1], sys.argv[2]
    real = os.replace
    def replace(src, dst):
        aside = phase == "aside" and ".previous-" in str(dst) and str(dst).endswith("c.csv")
        moving_in = phase == "in" and ".staging-" in str(src) and str(dst) == os.path.join(out, "b.csv")
        if aside or moving_in:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the commit
        return real(src, dst)
    with results.OutputSet(out) as o:
        for n in ("a.csv", "b.csv", "c.csv", "d.csv"):
            results.atomic_write_text(o.path(n), "new " + n)
        os.replace = replace
""")


@pytest.mark.parametrize("phase", ["moving the old files aside", "moving the new files in"])
def test_a_commit_killed_midway_is_completed_by_the_next_output_set(tmp_path, phase):
    out = tmp_path / "out"
    with OutputSet(out) as o:
        for n in ("a.csv", "b.csv", "c.csv"):
            results.atomic_write_text(o.path(n), "old " + n)
    mode = "in" if phase == "moving the new files in" else "aside"
    p = subprocess.run([sys.executable, "-c", _KILLER, str(out), mode], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == -9, p.stderr
    assert [x for x in tmp_path.iterdir() if ".previous-" in x.name]  # what the kill left
    said = []
    with OutputSet(out, log=said.append) as o:
        pass
    got = {x.name: x.read_text() for x in out.iterdir() if x.name != MANIFEST}
    assert got == {n: "new " + n for n in ("a.csv", "b.csv", "c.csv", "d.csv")}  # the new set, whole
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out"]  # backup and staging gone
    assert said and all(x.startswith("[results] ") for x in said)
    assert any("moved in" in x and "b.csv" in x for x in said)
    from subliminal.reporting import verify

    assert verify.verify_outputs(out, ["a.csv", "b.csv", "c.csv", "d.csv"]) == []  # the manifest came in too


def test_a_backup_without_journal_is_restored_where_the_file_is_missing_and_removed_otherwise(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.csv").write_text("newer")
    dead = tmp_path / ".out.previous-999999999-abcd1234.tmp"  # a kill of a run from before journals
    alive = tmp_path / f".out.previous-{os.getppid()}-zzzz1234.tmp"  # another run, committing now
    for d in (dead, alive):
        d.mkdir()
        (d / "lost.csv").write_text("old lost")
        (d / "kept.csv").write_text("old kept")
    said = []
    with OutputSet(out, log=said.append):
        pass
    assert (out / "lost.csv").read_text() == "old lost" and (out / "kept.csv").read_text() == "newer"
    assert not dead.exists() and alive.exists()
    assert len(said) == 2 and any("lost.csv: restored" in x for x in said)
    assert any("kept.csv: removed" in x for x in said)


def test_a_topic_a_run_whose_listed_record_is_missing_or_edited_is_one_line(tmp_path):
    import hashlib
    import json

    from subliminal.cache import write_record
    from subliminal.cli import UserError
    from subliminal.reporting.render import load_plots_a

    (tmp_path / "x_summary.csv").write_text("a,b\n1,2\n")
    f = tmp_path / "x_records" / "s0" / "record.json"
    write_record(f, {"key": "k", "accuracies": [0.5]})
    meta = {"records": {"s0/record.json": hashlib.sha256(f.read_bytes()).hexdigest()}}
    (tmp_path / "x.json").write_text(json.dumps(meta))
    assert load_plots_a(tmp_path, "x")[2] == meta
    f.write_text(f.read_text().replace("0.5", "0.9"))
    with pytest.raises(UserError, match="x_records"):
        load_plots_a(tmp_path, "x")
    f.unlink()
    with pytest.raises(UserError, match="missing"):
        load_plots_a(tmp_path, "x")
