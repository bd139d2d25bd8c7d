"""Topic A statistics, once: summaries and tests as pure functions of the tidy per-model CSVs.

`run_and_write` calls `analyse` when a script finishes; `python -m subliminal.topic_a.analysis` redoes
the same from the committed tidy CSVs without training, for every experiment that `registry.py` declares,
so every number the report shows can be recomputed from plots_a/*.csv. The reporting layer only reads
what this writes. Nothing here reads the scripts.

    python -m subliminal.topic_a.analysis            # rewrite plots_a/*_summary.csv and *_tests.csv
    python -m subliminal.topic_a.analysis --check    # only say whether they match

Accuracies are float32 counts / 10,000 in memory and 6-digit text in the CSV; reading them back as
float32 recovers the in-memory values exactly, so summaries and paired tests come out bit-for-bit.
The mechanism measures (CKA, cosines) lose digits in the CSV: where recomputing gives the committed
rows only to within that rounding, the committed rows are kept verbatim and the new rows appended.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.cli import UserError
from subliminal.results import atomic_write_text
from subliminal.topic_a.registry import EXPERIMENTS
from subliminal.topic_a.spec import Experiment, analyse

__all__ = ["analyse", "experiments", "load_tidy", "merge_committed", "rewrite"]

FLOAT_FORMAT = "%.6g"


def experiments() -> dict[str, Experiment]:
    """Every declared Topic A experiment (`registry.py`), by name, in report order (seed scripts, noise, mechanisms)."""
    return dict(sorted(EXPERIMENTS.items(), key=lambda kv: kv[1].sort_key()))


def load_tidy(path: Path) -> pd.DataFrame:
    """A tidy per-model CSV with accuracies back at their in-memory float32 values."""
    df = pd.read_csv(path)
    if "accuracy" not in df or "condition" not in df:
        raise UserError(f"{path} is not a tidy Topic A result (no accuracy/condition column): rerun its script")
    df["accuracy"] = df["accuracy"].astype("float32").astype("float64")
    return df


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def merge_committed(old: str, new: pd.DataFrame) -> tuple[str, str]:
    """The text to write and how it relates to `old`: 'same', 'extends' (old rows bit-for-bit, rows/columns
    added), 'kept' (old rows reproduced only to within the tidy CSV's rounding: kept verbatim, new rows
    appended) or 'differs' (nothing written)."""
    text = _csv(new)
    if text == old or not old.strip():
        return text, "same"
    old_df = pd.read_csv(pd.io.common.StringIO(old))
    cols = list(old_df.columns)
    if not set(cols) <= set(new.columns) or len(new) < len(old_df):
        return old, "differs"
    head = new[cols].iloc[: len(old_df)]
    if _csv(head) == old:
        return text, "extends"
    a, b = head.reset_index(drop=True), old_df
    for c in cols:
        if pd.api.types.is_numeric_dtype(b[c]):
            if not np.allclose(pd.to_numeric(a[c]), b[c], rtol=2e-4, atol=1e-5, equal_nan=True):
                return old, "differs"
        elif not (a[c].fillna("").astype(str) == b[c].fillna("").astype(str)).all():
            return old, "differs"
    extra_cols = [c for c in new.columns if c not in cols]
    if new[extra_cols].iloc[: len(old_df)].notna().any().any():
        return old, "differs"
    lines = _csv(new).splitlines()
    kept = [lines[0]] + [ln + "," * len(extra_cols) for ln in old.splitlines()[1:]] + lines[1 + len(old_df):]
    return "\n".join(kept) + "\n", "kept"


def rewrite(plots: Path, check: bool = False) -> dict[str, str]:
    """Recompute every experiment's summary and tests in `plots` from its tidy CSV; write them unless `check`.
    A tidy CSV that no experiment declares is an error."""
    exps = experiments()
    tidy = sorted(p for p in Path(plots).glob("topic_a*.csv") if not p.stem.endswith(("_summary", "_tests")))
    if not tidy:
        raise UserError(f"no Topic A tidy CSV (topic_a*.csv) in {plots}: pass --plots DIR with a script's --out directory")
    unknown = [p.name for p in tidy if p.stem not in exps]
    if unknown:
        raise UserError(f"{', '.join(unknown)} in {plots}: no Topic A experiment declares it (subliminal/topic_a/registry.py); "
                        "restore its declaration or remove the result")
    status = {}
    for name, exp in exps.items():
        path = Path(plots) / f"{name}.csv"
        if not path.exists():
            continue
        meta = path.with_suffix(".json")
        cfg = exp.config_from(json.loads(meta.read_text()).get("config", {}) if meta.exists() else {})
        summary, tests = analyse(exp, load_tidy(path), cfg)
        for kind, new in (("summary", summary), ("tests", tests)):
            out = Path(plots) / f"{name}_{kind}.csv"
            old = out.read_text() if out.exists() else ""
            text, how = merge_committed(old, new)
            status[f"{name}_{kind}"] = how if text != old or how == "differs" else "same"
            if not check and how != "differs" and text != old:
                atomic_write_text(out, text)
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m subliminal.topic_a.analysis", description=__doc__.splitlines()[0])
    p.add_argument("--plots", default="plots_a", help="directory of the tidy CSVs (default plots_a)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change or differs")
    a = p.parse_args(argv)
    try:
        status = rewrite(Path(a.plots), a.check)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, v in status.items():
        print(f"{k}: {v}")
    bad = [k for k, v in status.items() if v == "differs" or (a.check and v != "same")]
    if bad:
        print(f"{'out of date or different' if a.check else 'not reproduced (left as they are)'}: {', '.join(bad)}",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
