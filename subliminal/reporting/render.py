"""The one table renderer and the number formats every report uses, plus the loaders (read-only; a file that
cannot be read is a one-line UserError naming it: ``read_csv_checked``, ``read_json_checked``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.cli import UserError
from subliminal.reporting import verify
from subliminal.results import read_csv_checked as _read_csv

B_DTYPES = {"number": str, "best_number": str, "logit_best_number": str}


def cell(x) -> str:
    """A table cell: yes/no for booleans, 3 significant digits for floats (scientific below 1e-3), – for NaN."""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (float, np.floating)):
        if np.isnan(x):
            return "–"
        return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return str(x)


def table(rows: pd.DataFrame | Iterable[Sequence], header: Sequence[str] | None = None) -> str:
    """A markdown table from a DataFrame (cells through `cell`) or from rows of already formatted strings."""
    if isinstance(rows, pd.DataFrame):
        header = list(rows.columns) if header is None else list(header)
        rows = [[cell(v) for v in r] for r in rows.itertuples(index=False)]
    def esc(x) -> str:
        return str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(esc, r)) + " |" for r in rows])


def pct(m: float, lo: float | None = None, hi: float | None = None) -> str:
    if pd.isna(m):
        return "—"
    return f"{m:.1%}" if lo is None else f"{m:.1%} [{lo:.1%}, {hi:.1%}]"


def num(m: float, lo: float | None = None, hi: float | None = None) -> str:
    if pd.isna(m):
        return "—"
    return f"{m:.3f}" if lo is None else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def ci(r, fmt=pct) -> str:
    """Mean [95% CI] of a summary/test row with mean, ci95_low, ci95_high (or mean_diff, diff_ci95_*); — for none."""
    if r is None:
        return "—"
    if "mean_diff" in r and not pd.isna(r.get("mean_diff")):
        return fmt(r["mean_diff"], r["diff_ci95_low"], r["diff_ci95_high"])
    return fmt(r["mean"], r["ci95_low"], r["ci95_high"])


def diff(t, fmt: str = "pct", p: bool = True) -> str:
    """A paired test row as 'mean diff [95% CI], p = …' (signed)."""
    f = (lambda v: f"{v:+.1%}") if fmt == "pct" else (lambda v: f"{v:+.3f}")
    m, lo, hi = (t["mean_diff"], t["diff_ci95_low"], t["diff_ci95_high"]) if "mean_diff" in t and not pd.isna(
        t.get("mean_diff")) else (t["mean"], t["ci95_low"], t["ci95_high"])
    return f"{f(m)} [{f(lo)}, {f(hi)}]" + (f", p = {t['t_p']:.2g}" if p else "")


def sign(t) -> int:
    """+1 / −1 when the 95% CI of a test row excludes 0 on that side, else 0 (also for no test)."""
    if t is None:
        return 0
    lo, hi = (t["diff_ci95_low"], t["diff_ci95_high"]) if "diff_ci95_low" in t and not pd.isna(
        t.get("diff_ci95_low")) else (t["ci95_low"], t["ci95_high"])
    return 1 if lo > 0 else -1 if hi < 0 else 0


def paras(notes: list[str]) -> list[str]:
    """Markdown paragraphs: a blank line between notes."""
    return [x for n in notes if n for x in (n, "")][:-1]


def row(df: pd.DataFrame | None, **match) -> pd.Series | None:
    """The first row of df whose columns equal every `match` value (None if none or a column is missing)."""
    if df is None or df.empty:
        return None
    m = df
    for k, v in match.items():
        if k not in m.columns:
            return None
        m = m[m[k] == v]
    return m.iloc[0] if len(m) else None


def load_a(root: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict] | None:
    """plots_a/<name>_summary.csv, _tests.csv and .json (None when the script has not run)."""
    return load_plots_a(Path(root) / "plots_a", name)


def load_plots_a(plots: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict] | None:
    """<plots>/<name>_summary.csv, _tests.csv and .json, from any folder of Topic A outputs (None when absent)."""
    d = Path(plots)
    s, t, j = d / f"{name}_summary.csv", d / f"{name}_tests.csv", d / f"{name}.json"
    if not s.exists():
        return None
    tests = read_csv_checked(t) if t.exists() and t.stat().st_size > 1 else pd.DataFrame()
    meta = read_json_checked(j) if j.exists() else {}
    if "records" in meta:  # the students and teachers its outputs rest on (subliminal/carry.py), as listed
        verify.verify_records(d / f"{name}_records", meta, pattern="*/record.json")
    return read_csv_checked(s), tests, meta


def read_b(root: Path, name: str) -> pd.DataFrame | None:
    p = Path(root) / "plots_b" / name
    return read_csv_checked(p, dtype=B_DTYPES) if p.exists() else None


def read_csv_checked(path: str | Path, required_columns: Sequence[str] = (), **read_csv_kw) -> pd.DataFrame:
    """A result CSV, or a one-line UserError naming it when it cannot be parsed, is empty or undecodable, or
    lacks one of `required_columns` (``results.read_csv_checked``; a missing file stays an OSError)."""
    return _read_csv(path, required=tuple(required_columns), **read_csv_kw)


def read_json_checked(path: str | Path, required_keys: Sequence[str] = ()) -> dict:
    """A result's JSON object, or a one-line UserError naming the file when it is not valid JSON (truncated,
    edited), not an object, or lacks one of `required_keys` (a missing file stays an OSError)."""
    fix = f"restore it (git checkout {path}) or rerun the script that writes it"
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({type(e).__name__}: {e}); {fix}") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} holds a JSON {type(doc).__name__}, not the object a run writes; {fix}")
    missing = [k for k in required_keys if k not in doc]
    if missing:
        raise UserError(f"{path} lacks key(s) {', '.join(missing)}; {fix}")
    return doc


def not_run(script: str, out: str = "plots_a") -> str:
    return f"_Not run yet: `python {script}.py` writes {out}/{script}*.csv._"
