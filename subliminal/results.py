"""Result I/O: atomic writes (temp file + rename), tidy CSVs, figures, a JSON of config + provenance, and
output folders: ``prepare_out`` checks one before any work, ``OutputSet`` replaces a run's files together."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from subliminal import checksums
from subliminal.cli import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)
FLOAT_FORMAT = "%.6g"  # results CSVs: 6 significant digits
_PACKAGES = ("torch", "numpy", "pandas", "scipy", "transformers", "gguf", "accelerate", "matplotlib")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so that a reader sees either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give results the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(df: pd.DataFrame, path: str | os.PathLike, float_format: str = FLOAT_FORMAT) -> Path:
    return atomic_write_text(path, df.to_csv(index=False, float_format=float_format, lineterminator="\n"))


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """tight_layout, render into memory, write atomically (the format follows the suffix) and close."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def prepare_out(path: str | os.PathLike) -> Path:
    """Create the output folder and prove it writable (a temp file), before any work is done.

    Raises a one-line UserError saying what is wrong and what to do when `path` is a file, cannot be
    created, or cannot be written (read-only, no permission, disk full)."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UserError(f"output folder {p} is a file, not a folder; give --out a folder path")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {p} ({e.strerror or e}); "
                        "give --out a folder you can write") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".write-test-")
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:
        raise UserError(f"output folder {p} is not writable ({e.strerror or e}); "
                        "give --out a writable folder or fix its permissions") from None
    return p


def clean_stale_staging(folder: Path, name: str, legacy_age_s: float = 3600) -> list[Path]:
    """Remove the staging folders of `name` in `folder` that a killed run left: those whose writer's PID is
    gone, and unnamed ones (written before staging folders carried a PID) older than `legacy_age_s`."""
    gone = []
    for p in _dead(folder, name, "staging", legacy_age_s):
        shutil.rmtree(p, ignore_errors=True)
        gone.append(p)
    return gone


def _dead(folder: Path, name: str, kind: str, legacy_age_s: float = 3600) -> list[Path]:
    """The `kind` ("staging" or "previous") folders of output folder `name` in `folder` whose writer is gone."""
    from subliminal.devices import pid_alive

    pat = re.compile(rf"\.{re.escape(name)}\.{kind}-(?:(\d+)-\w+\.tmp|\w+)")
    found = []
    for p in sorted(folder.glob(f".{name}.{kind}-*")):
        m = pat.fullmatch(p.name)
        if m is None or not p.is_dir():
            continue
        if not pid_alive(int(m.group(1))) if m.group(1) else time.time() - p.stat().st_mtime > legacy_age_s:
            found.append(p)
    return found


JOURNAL = ".commit.json"  # in a commit's backup folder: the staging folder and the files being replaced


def recover_interrupted(out: Path, beside: Path, log) -> None:
    """Finish or undo the results commit of a run killed while moving its files into `out` (its backup folder
    ``.<out>.previous-<pid>-*.tmp`` is still there). With the journal and a staging folder that holds every new
    file not yet in `out`, the commit is completed (the new set, whole); without them the previous files are put
    back (with no journal: where `out` lacks them). The backup is then removed. One line per file, on `log`."""
    out = out.resolve()
    for folder in dict.fromkeys((beside, out)):
        for backup in _dead(folder, out.name, "previous"):
            try:
                j = json.loads((backup / JOURNAL).read_text())
                staging, files, old = folder / j["staging"], list(j["files"]), set(j["old"])
            except (OSError, ValueError, KeyError, TypeError):
                staging, files, old = None, None, set()
            kept = [r for r in (p.relative_to(backup).as_posix() for p in backup.rglob("*") if p.is_file())
                    if r != JOURNAL]
            if files and all(checksums.safe_rel(r) and ((staging / r).is_file() or (out / r).is_file()) for r in files):
                for r in files:  # complete the commit: every new file is in staging or in out
                    if (staging / r).is_file():
                        (out / r).parent.mkdir(parents=True, exist_ok=True)
                        os.replace(staging / r, out / r)
                        log(f"[results] {out / r}: moved in from {staging.name}, the results of a run killed while "
                            "committing them")
                for r in kept:
                    log(f"[results] {backup / r}: removed, the old version of {out / r} that this commit replaced")
            else:  # undo: put the previous files back (with no journal, only those out lacks), drop the rest
                for r in kept:
                    if r in old or not (out / r).exists():
                        (out / r).parent.mkdir(parents=True, exist_ok=True)
                        os.replace(backup / r, out / r)
                        log(f"[results] {out / r}: restored from {backup.name}, left by a run killed while "
                            "committing its results")
                    else:
                        log(f"[results] {backup / r}: removed, a stale backup ({out / r} is newer)")
            shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive lock on `folder` (flock on its descriptor): one commit and manifest update at a time."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class OutputSet:
    """One run's result files, replaced together.

        with OutputSet(cfg.out) as o:
            write_csv(df, o.path("x.csv"))
            save_figure(fig, o.path("x.png"))

    `path(name)` points into a staging folder beside `out` (same filesystem). On normal exit every
    staged file is renamed into `out`: old files with those names are moved aside first and put back
    if any rename fails, so `out` never holds a mix of old and new files. On an exception nothing in
    `out` changes and the staging folder is removed. `final(name)` is the file's place in `out`
    (where the previous run's file, e.g. a CSV to upsert into, is read from).

    The commit also updates ``<out>/sha256.json`` (``checksums``): the SHA-256, size and writing command of
    every file it moves in, moved in with them, so a reader can check a result (``reporting.verify``). On
    entering, a commit that a killed run left half done is completed or undone (``recover_interrupted``),
    one line on `log` (default stderr) per file it moves."""

    def __init__(self, out: str | os.PathLike, log=None):
        self.out = Path(out).expanduser()
        self.staging: Path | None = None
        self.log = log or (lambda m: print(m, file=sys.stderr))

    def __enter__(self) -> OutputSet:
        prepare_out(self.out)
        beside, name = self._beside(), self.out.resolve().name
        with _locked(self.out):
            recover_interrupted(self.out, beside, self.log)  # before its staging folder is cleaned away
        clean_stale_staging(beside, name)
        # hidden, named after this process and ending in .tmp (.gitignore's `.*.tmp`): a kill leaves nothing
        # git shows, and the next OutputSet of `out` removes it
        self.staging = Path(tempfile.mkdtemp(dir=beside, prefix=f".{name}.staging-{os.getpid()}-", suffix=".tmp"))
        return self

    def _beside(self) -> Path:
        """out's parent; out itself when the parent is read-only or another filesystem (out is a mount
        point), since renames only work within one filesystem."""
        out = self.out.resolve()
        same_fs = out.parent.stat().st_dev == out.stat().st_dev
        return out.parent if same_fs and os.access(out.parent, os.W_OK) else out

    def path(self, name: str) -> Path:
        if self.staging is None:
            raise RuntimeError("OutputSet.path() outside its with-block")
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"output name {name!r} must be relative to the output folder")
        p = self.staging / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def final(self, name: str) -> Path:
        return self.out / name

    def __exit__(self, exc_type, exc, tb) -> bool:
        staging, self.staging = self.staging, None
        try:
            if exc_type is None:
                with _locked(self.out):
                    _stage_manifest(staging, self.out, self.log)
                    _commit(staging, self.out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return False


def _stage_manifest(staging: Path, out: Path, log) -> None:
    """`out`'s manifest with an entry for every staged file, staged to move in with them."""
    rels = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    rels = [r for r in rels if r != checksums.NAME]
    if not rels:
        return
    try:
        files = checksums.read(out) or {}
    except checksums.ManifestError as e:
        log(f"[results] {e}; rewritten with this run's files only (the others are unverified until rerun)")
        files = {}
    by = checksums.writer()
    files.update({r: checksums.entry(staging / r, by) for r in rels})
    atomic_write_text(staging / checksums.NAME, checksums.text(files))


def _commit(staging: Path, out: Path) -> None:
    """Move every file under `staging` to the same place under `out`, all or nothing (a journal in the backup
    folder lets the next OutputSet finish it after a kill: ``recover_interrupted``)."""
    rels = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
    if not rels:
        return
    backup = Path(tempfile.mkdtemp(dir=staging.parent, prefix=f".{out.resolve().name}.previous-{os.getpid()}-",
                                   suffix=".tmp"))
    journal = {"staging": staging.name, "files": [r.as_posix() for r in rels],
               "old": [r.as_posix() for r in rels if (out / r).exists()]}
    atomic_write_text(backup / JOURNAL, json.dumps(journal) + "\n")
    moved_old: list[Path] = []
    moved_new: list[Path] = []
    try:
        for rel in rels:  # first the previous files with these names, aside
            if (out / rel).exists():
                (backup / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(out / rel, backup / rel)
                moved_old.append(rel)
        for rel in rels:  # then the new ones in
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, out / rel)
            moved_new.append(rel)
    except BaseException:
        try:
            for rel in moved_new:
                (out / rel).unlink(missing_ok=True)
            for rel in moved_old:
                os.replace(backup / rel, out / rel)
        except OSError as e:
            raise UserError(f"writing the results into {out} failed and restoring the previous files failed "
                            f"too ({e.strerror or e}); they are in {backup}: move them back by hand") from None
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    v = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in _PACKAGES:
        try:
            v[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return v


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else what ``platform`` knows; "" when nothing says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_run_json(path: str | os.PathLike, config: Any, seed: int | None, wall_seconds: float,
                   extra: dict[str, Any] | None = None) -> Path:
    """The provenance file beside every result: config, seed, versions, git commit, wall time."""
    import torch

    doc = {
        "config": to_jsonable(config),
        "seed": seed,
        "wall_seconds": round(float(wall_seconds), 2),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),  # float results differ in their last bits across CPU kinds (kernels sum in other orders)
        # other work on the machine slows a run: the 1-minute load average when it finished
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        "device_note": "cuda" if torch.cuda.is_available() else "cpu",
    }
    if extra:
        doc.update(to_jsonable(extra))
    return atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")


def write_bench_json(script: str | os.PathLike, out: dict[str, Any], loadavg_at_start: float) -> Path:
    """A benchmark's result beside its script (``bench/x.py`` → ``bench/x.json``) with the machine's state,
    so README's speed table is generated, not typed."""
    record = {**out, "loadavg_1min_at_start": loadavg_at_start, "versions": versions(),
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return atomic_write_text(Path(script).with_suffix(".json"), json.dumps(record, indent=1) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; one-line UserError when it is not valid JSON (a missing file stays an OSError)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({type(e).__name__}: {e}); delete it or restore it and rerun") from None


def read_csv_checked(path, *, required: tuple[str, ...] = (), **read_csv_kw) -> pd.DataFrame:
    """A results CSV read back (``pd.read_csv(path, **read_csv_kw)``), with one-line UserErrors for a file
    that is not one: unparsable, empty, undecodable, or lacking the `required` columns (a missing file
    stays an OSError)."""
    import pandas.errors as pde

    try:
        df = pd.read_csv(path, **read_csv_kw)
    except (pde.ParserError, pde.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"results file {path} cannot be read as a CSV ({type(e).__name__}: {msg}); "
                        "delete or restore it and rerun the script that writes it") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UserError(f"results file {path} lacks column(s) {', '.join(missing)}: not the table this script "
                        "expects; delete or restore it and rerun the script that writes it")
    return df
