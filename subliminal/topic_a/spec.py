"""What a Topic A script declares once: its experiment (`Experiment`), found by the runner, the analysis and the report.

A script `topic_a_X.py` holds `EXPERIMENT = Experiment(__file__, Config, by=..., tests=..., plot=...)`. The
runner (`experiments.run_and_write`) writes `<out>/topic_a_X.*` from it; the analysis
(`python -m subliminal.topic_a.analysis`) finds every script's EXPERIMENT and recomputes its summary and
tests from the tidy CSV, with the script's own typed Config rebuilt from the run's JSON (defaults from the
dataclass, never retyped); a tidy CSV that no script declares is an error, not a skip. A new sweep is one
script (and a section in the report).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from subliminal.stats import paired_test

GROUPS = ("seed", "noise", "mechanism")  # the report lists experiments in this order, then by name

Tests = Callable[[pd.DataFrame, Any], pd.DataFrame]
Extras = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, Any], "tuple[pd.DataFrame, pd.DataFrame]"]
Plot = Callable[[pd.DataFrame, Path, Any], None]


@dataclass(frozen=True)
class Experiment:
    """One Topic A experiment.

    script: the declaring script's path (`__file__`); its file name names every output.
    config: the script's Config dataclass (a TopicAConfig).
    by: the summary's grouping columns (mean [95% CI] over models per group).
    tests: (tidy frame, config) → the tests table.
    plot: (summary, PNG path, config) → the figure.
    extras: (tidy, summary, tests, config) → (summary, tests) with the extra rows/columns the report reads.
    group: where the report lists it: 'seed' (the seed's five scripts), 'noise' or 'mechanism'.
    """

    script: str
    config: type
    by: tuple[str, ...]
    tests: Tests
    plot: Plot
    extras: Extras | None = None
    group: str = "seed"

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"unknown experiment group {self.group!r}; choose from {', '.join(GROUPS)}")
        object.__setattr__(self, "by", tuple(self.by))

    @property
    def name(self) -> str:
        return Path(self.script).stem

    def config_from(self, recorded: dict) -> Any:
        """The typed config of a run from the `config` its JSON recorded: the dataclass's defaults, replaced by
        every recorded field that the dataclass still has (lists back to tuples)."""
        names = {f.name for f in dataclasses.fields(self.config)}
        given = {k: tuple(v) if isinstance(v, list) else v for k, v in (recorded or {}).items() if k in names}
        return dataclasses.replace(self.config(), **given)

    def sort_key(self) -> tuple[int, str]:
        return GROUPS.index(self.group), self.name


def paired(by: tuple[str, ...] | list[str] = (), pairs=(("student_aux", "cross_aux"), ("student_all", "cross_all"))) -> Tests:
    """Tests: each pair of conditions compared on the same models (paired t and Wilcoxon), within each group of `by`."""
    pairs, by = tuple(pairs), tuple(by)

    def tests(df: pd.DataFrame, cfg: Any) -> pd.DataFrame:
        return paired_tests(df, pairs, by)

    return tests


def paired_tests(df: pd.DataFrame, pairs, by=()) -> pd.DataFrame:
    """Paired tests (same model index) of condition a vs b, within each group of `by`."""
    rows = []
    groups = df.groupby(list(by), sort=False) if by else [((), df)]
    for keys, g in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        for a, b in pairs:
            ga = g[g.condition == a].sort_values("model")
            gb = g[g.condition == b].sort_values("model")
            if len(ga) and len(ga) == len(gb):
                rows.append({**dict(zip(by, keys)), "a": a, "b": b, **paired_test(ga.accuracy, gb.accuracy)})
    return pd.DataFrame(rows)
