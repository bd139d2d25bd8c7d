"""Topic B result tables: one reader (numbers stay strings: '087' is not 87), two text-preserving editors
of a committed CSV (``upsert``: whole rows, one CSV holds every model's rows and a run replaces its own;
``set_columns``: new columns on existing rows), and one file-name slug for model names.

Both editors keep every cell they do not replace as text, byte for byte: never re-parsed, so '087'
stays '087' and a statistic written at full precision is not re-derived from a 6-digit copy."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pandas as pd

from subliminal.results import FLOAT_FORMAT, read_csv_checked, write_csv

# columns that hold numbers as the model writes them (leading zeros matter) or lists of them
NUMBER_COLUMNS = ("number", "best_number", "logit_best_number", "entangled_numbers", "top_cosine_numbers",
                  "entangled_a", "entangled_b")


def slug(name: str) -> str:
    """A model name as a file-name part: 'meta-llama/Llama-3.2-1B' -> 'meta-llama_Llama-3.2-1B'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def read_table(path: str | os.PathLike, required: tuple[str, ...] = ("model",)) -> pd.DataFrame:
    """A Topic B results CSV with its number columns as strings. A file that is not such a table
    (unparsable, or without the `required` columns) is a one-line UserError; a missing one an OSError."""
    return read_csv_checked(path, required=tuple(required), dtype={c: str for c in NUMBER_COLUMNS})


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the string ``write_csv`` writes (floats %.6g, missing values empty), index dropped."""
    return read_csv_checked(io.StringIO(df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")),
                            dtype=str, keep_default_na=False)


def upsert(new: pd.DataFrame, path: str | os.PathLike, keys: tuple[str, ...] = ("model",),
           write_to: str | os.PathLike | None = None) -> Path:
    """Replace, in the CSV at `path`, the rows whose `keys` values occur in `new` by `new`, and write the
    table to `write_to` (default `path`; with an OutputSet: read ``o.final(name)``, write ``o.path(name)``).

    One CSV holds every model's rows, so a run replaces only its own. The other rows are kept as text,
    byte for byte (never re-parsed: '087' stays '087', 1234567 stays 1234567), in their order; the new
    rows are appended exactly as ``write_csv`` formats them. A file that is not such a table (unparsable,
    without the key columns) is a one-line UserError."""
    keys = tuple(keys)
    text = as_text(new)
    if Path(path).exists():
        old = read_csv_checked(path, required=keys, dtype=str, keep_default_na=False)
        new_keys = set(map(tuple, text[list(keys)].to_numpy()))
        keep = [tuple(r) not in new_keys for r in old[list(keys)].to_numpy()]
        text = pd.concat([old[keep], text], ignore_index=True).fillna("")
    return write_csv(text, write_to if write_to is not None else path)


def set_columns(df: pd.DataFrame, path: str | os.PathLike, keys: list[str], columns: list[str],
                write_to: str | os.PathLike | None = None) -> bool:
    """Write df's `columns` into the existing rows of the CSV at `path` that match df on `keys`, keeping
    every other cell as written (new columns go at the end, empty for the other rows), to `write_to`
    (default `path`). Returns False, and writes nothing, when the file is absent or lacks df's rows."""
    if not Path(path).exists():
        return False
    old = read_csv_checked(path, dtype=str, keep_default_na=False)
    if not set(keys) <= set(old.columns):
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


def check_upsertable(out: str | os.PathLike, names, keys: tuple[str, ...] = ("model",)) -> None:
    """Before any work: every existing table `out/name` that the run will upsert into must be readable
    and have the key columns (else a one-line UserError now, not after hours of computing)."""
    for name in names:
        if (Path(out) / name).exists():
            read_csv_checked(Path(out) / name, required=tuple(keys), dtype=str, keep_default_na=False)
