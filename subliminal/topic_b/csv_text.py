"""New columns added to a committed results CSV, edited as text, so that every existing cell stays
byte-identical: the saved pairs table holds 6 significant digits, so a re-analysis from it would move
the last digit of statistics that the full-precision run wrote. (Whole rows: ``tables.upsert``.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.results import FLOAT_FORMAT, read_csv_checked, write_csv


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the string write_csv would write (floats %.6g, NaN empty)."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        v = df[c]
        if pd.api.types.is_float_dtype(v):
            out[c] = [("" if np.isnan(x) else FLOAT_FORMAT % x) for x in v]
        else:
            out[c] = ["" if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x) for x in v]
    return out


def read_text(path: Path) -> pd.DataFrame | None:
    return read_csv_checked(path, dtype=str, keep_default_na=False) if Path(path).exists() else None


def set_columns_text(df: pd.DataFrame, path: Path, keys: list[str], columns: list[str],
                     write_to: Path | None = None) -> bool:
    """Write df's `columns` into the existing rows of the CSV at `path` that match df on `keys`, keeping
    every other cell as written (new columns go at the end, empty for the other rows), to `write_to`
    (default `path`). Returns False, and writes nothing, when the file is absent or lacks df's rows."""
    old = read_text(path)
    if old is None or not set(keys) <= set(old.columns):
        return False
    new = as_text(df[keys + columns]).set_index(keys)
    at = old.set_index(keys).index
    if not new.index.isin(at).all():
        return False
    for c in columns:
        if c not in old.columns:
            old[c] = ""
        hit = at.isin(new.index)
        old.loc[hit, c] = new.loc[at[hit], c].to_numpy()
    write_csv(old, write_to if write_to is not None else path)
    return True
