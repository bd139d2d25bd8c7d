"""The five Topic A experiments as functions of a config, and the runner that writes any experiment's outputs;
the top-level scripts are thin wrappers (their declarations are in `registry.py`).

Each experiment returns a tidy DataFrame (one row per condition × model × setting) and the writer
produces `<out>/<name>.csv`, `<name>_summary.csv`, `<name>_tests.csv` (paired tests), `<name>.png`
and `<name>.json` (config, seed, versions, commit, wall time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from subliminal.cli import UserError
from subliminal.results import OutputSet, prepare_out, read_json, to_jsonable, write_csv, write_run_json
from subliminal.topic_a.distill import distill
from subliminal.topic_a.records import RunRecords
from subliminal.topic_a.spec import Experiment, Plot, analyse
from subliminal.topic_a.train import TopicA, TopicAConfig, accuracy_rows, lazy_teacher, log, teacher_accuracy

BASELINE_CONDITIONS = ("student_aux", "student_all", "cross_aux", "cross_all")
EXP1_MILESTONES = (1, 2, 5, 10, 20, 40)


def baseline(A: TopicA) -> pd.DataFrame:
    c = A.cfg
    t = lazy_teacher(A, c.teacher_epochs)
    rows = accuracy_rows("reference", A.test_accuracy(A.reference()), teacher_epochs=0, distill_epochs=0)
    rows += accuracy_rows("teacher", teacher_accuracy(A, c.teacher_epochs, t), teacher_epochs=c.teacher_epochs, distill_epochs=0)
    # evaluate at exp1's early milestones too (cheap), so exp1 finds them in the cache
    milestones = sorted({m for m in EXP1_MILESTONES if m < c.distill_epochs} | {c.distill_epochs})
    students = distill(A, c.teacher_epochs, BASELINE_CONDITIONS, milestones, "uniform", teacher=t)
    students = students[students.distill_epochs == c.distill_epochs]
    return pd.concat([pd.DataFrame(rows), students], ignore_index=True)


def distill_sweep(A: TopicA, milestones: Sequence[int], conditions: Sequence[str] = ("student_aux", "cross_aux"),
                  source: str = "uniform") -> pd.DataFrame:
    c = A.cfg
    return distill(A, c.teacher_epochs, conditions, milestones, source)


def teacher_sweep(A: TopicA, teacher_epochs: Sequence[int], conditions: Sequence[str] = ("student_aux", "cross_aux")) -> pd.DataFrame:
    c = A.cfg
    parts = []
    for te in sorted(set(teacher_epochs)):  # each teacher resumes from the previous one's snapshot when trained
        t = lazy_teacher(A, te)
        parts.append(pd.DataFrame(accuracy_rows("teacher", teacher_accuracy(A, te, t), teacher_epochs=te, distill_epochs=0)))
        parts.append(distill(A, te, conditions, [c.distill_epochs], "uniform", teacher=t))
    return pd.concat(parts, ignore_index=True)


def source_sweep(A: TopicA, sources: Sequence[str], conditions: Sequence[str] = ("student_aux", "cross_aux")) -> pd.DataFrame:
    c = A.cfg
    t = lazy_teacher(A, c.teacher_epochs)
    parts = []
    for s in sources:
        df = distill(A, c.teacher_epochs, conditions, [c.distill_epochs], s, teacher=t)
        df.insert(1, "source", s)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _earlier_seconds(json_path: Path, cfg) -> float:
    """Wall time of earlier invocations of the same script and config (a resumed or re-run sweep), from its JSON.

    Config keys the earlier JSON lacks are options added to the code since that run (it ran without them, at
    their default or with less work), so they do not break the match: the earlier run's finished parts are
    in the cache this run reads."""
    try:
        prev = read_json(json_path)
    except (OSError, ValueError, UserError):  # no earlier run, or its JSON is broken: count this run only
        return 0.0
    old, new = prev.get("config"), to_jsonable(cfg)
    if not isinstance(old, dict) or any(k not in new or old[k] != new[k] for k in old):
        return 0.0
    return float(prev.get("wall_seconds_all_runs", prev.get("wall_seconds", 0.0)))


def run_and_write(exp: Experiment, cfg: TopicAConfig, body: Callable[..., pd.DataFrame], *, plot: Plot,
                  extra: dict | None = None, stages: Sequence | None = None) -> pd.DataFrame:
    """Run `body`, then write the experiment's tidy CSV, the summary with 95% CIs, the tests, the JSON and the figure
    (`<out>/<exp.name>.*`; `exp` says how: see `spec.Experiment`; `plot(summary, path, cfg)` draws the figure).

    With `stages`, `body(A, stage)` runs once per stage (e.g. growing milestone lists) and all outputs are
    rewritten after each, marked `"complete": false` in the JSON until the last: a long sweep that is
    stopped leaves honest partial results, and a rerun continues from the cache.

    The run's records (`<out>/<exp.name>_records/`, `records.py`) are restored into the cache first, so a run
    moved to another machine with its outputs continues from them; the JSON lists their hashes.
    """
    name = exp.name
    t0 = time.time()
    out = prepare_out(cfg.out)  # a bad --out fails here, before any data or training
    earlier = _earlier_seconds(out / f"{name}.json", cfg)
    A = TopicA(cfg, records=RunRecords(out, name))
    log(f"[{name}] data: {A.mnist.source}; device: {A.device}; cache: {A.cache}")
    if n := A.records.restore(A.cache):
        log(f"[{name}] restored {n} finished records from {A.records.folder} into the cache")
    runs = [(lambda a: body(a), None)] if stages is None else [((lambda a, st=st: body(a, st)), st) for st in stages]
    for i, (fn, stage) in enumerate(runs):
        df = fn(A)
        summary, test_table = analyse(exp, df, cfg)
        done = {"complete": i == len(runs) - 1}
        if stage is not None:
            done["stage_done"] = stage
        if done["complete"] and (gone := A.records.prune()):
            log(f"[{name}] dropped {len(gone)} records of another configuration from {A.records.folder}")
        with OutputSet(out) as o:  # the stage's files replace the previous ones together
            write_csv(df, o.path(f"{name}.csv"))
            write_csv(summary, o.path(f"{name}_summary.csv"))
            write_csv(test_table, o.path(f"{name}_tests.csv"))
            plot(summary, o.path(f"{name}.png"), cfg)
            write_run_json(o.path(f"{name}.json"), cfg, cfg.seed, time.time() - t0,
                           {"script": f"{name}.py", **done, "wall_seconds_all_runs": round(earlier + time.time() - t0, 2),
                            "work": A.work.summary(A.device), **(extra or {}), "records": A.records.hashes()})
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if len(test_table):
            print(test_table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    log(f"[{name}] wrote {out}/{name}.csv, _summary.csv, _tests.csv, .png, .json in {time.time() - t0:.0f} s")
    return df
