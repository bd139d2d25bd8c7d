"""A transfer run's output files in ``cfg.out``, keyed by model so one model's run never overwrites another's.

The rows CSV (``<stem>.csv``) and the summary CSV (``<stem>_summary.csv``) hold every model's rows (their
``model`` column): a run replaces its own model's rows and keeps the others'. The JSON, the figure, the kept
table and the data-stage JSON are one model's: ``<stem>.json`` etc. for the default model (the committed file
names), ``<stem>__<model>.json`` etc. for any other.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from subliminal.results import OutputSet, write_csv, write_run_json
from subliminal.topic_b import models
from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.transfer.analysis import summarize_transfer
from subliminal.topic_b.transfer.arm import label, on_route
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.defence_on_data import kept_table
from subliminal.topic_b.transfer.plots import plot_transfer
from subliminal.topic_b.transfer.record import Session

COLUMNS = ["model", "arm", "trait", "animal", "seed", "question", "prefill", "p_animal", "logp_animal",
           "freq_animal", "n_samples", "train_tokens"]


def stem(cfg: TransferConfig) -> str:
    """The name the run's files start with: its route, teacher, defence and precision (not its model)."""
    return ("topic_b_transfer" + ("_logits" if cfg.route == "logits" else "")
            + ("_weights" if cfg.teacher == "weights" else "") + ("_defence" if cfg.defence else "")
            + ("_bf16" if cfg.bf16 else ""))


def model_stem(cfg: TransferConfig) -> str:
    """The stem of the files that hold one model's run: `stem` for the default model, else `stem__<model>`."""
    return models.model_stem(stem(cfg), cfg.model)


def with_other_models(new: pd.DataFrame, previous: Path, model: str) -> pd.DataFrame:
    """`new` (one model's rows) in place of that model's rows of the table at `previous`, the other models' rows
    kept as they were, in the file's order of models (a new model last). Without other models: `new` itself."""
    if not previous.exists():
        return new
    old = pd.read_csv(previous)
    if "model" not in old or (old.model.astype(str) == model).all():
        return new
    old_models = list(dict.fromkeys(old.model.astype(str)))
    pieces = [new if m == model else old[old.model.astype(str) == m] for m in old_models]
    if model not in old_models:
        pieces.append(new)
    cols = list(new.columns) + [c for c in old.columns if c not in new.columns]
    return pd.concat([p.reindex(columns=cols) for p in pieces], ignore_index=True)


def written_order(cfg: TransferConfig) -> dict[str, int]:
    """The order the run's JSON lists its students in ('owl/s0': 1), read before the run rewrites it, so a rerun,
    here or on another machine, writes their rows in that order (a run extended by an arm trained that arm last)."""
    try:
        prev = json.loads((Path(cfg.out) / f"{model_stem(cfg)}.json").read_text()).get("students")
    except (OSError, ValueError, AttributeError):
        prev = None
    return {k: i for i, k in enumerate(prev)} if isinstance(prev, dict) else {}


def has_table(cfg: TransferConfig) -> bool:
    """Whether an earlier run left a summary table with this model's rows."""
    p = Path(cfg.out) / f"{stem(cfg)}_summary.csv"
    if not p.exists():
        return False
    s = pd.read_csv(p)
    return "model" not in s or bool((s.model.astype(str) == cfg.model).any())  # no model column: one model's


def write_kept(s: Session, path: Path) -> None:
    """--defence: the paired kept-fraction comparison (``defence_on_data.kept_table``) beside the outputs."""
    d, neutral = s.record.defence, on_route(Arm(NEUTRAL), s.cfg.route)
    if s.cfg.defence and d is not None and neutral in d:
        write_csv(kept_table(d, neutral), path)


def write_progress(s: Session, stats: dict) -> None:
    """Partial provenance while the (long) sampling runs: the teachers' stats so far, `complete` false."""
    cfg = s.cfg
    if has_table(cfg):
        return  # a table from an earlier run is there: its JSON stays beside it until this run rewrites both
    teachers = {label(a): {x: y for x, y in v.items() if x != "dir"} for a, v in stats.items()}
    with OutputSet(cfg.out) as o:
        write_run_json(o.path(model_stem(cfg) + ".json"), cfg, cfg.seed, time.time() - s.t0,
                       {**s.record.to_json(public=False), "stage": "sampling teacher data", "complete": False,
                        "teachers": teachers})


def write_data_outputs(s: Session) -> None:
    """--stage data: the kept table and the data JSON (the record so far, complete)."""
    cfg = s.cfg
    write_kept(s, Path(cfg.out) / f"{model_stem(cfg)}_kept.csv")
    write_run_json(Path(cfg.out) / f"{model_stem(cfg)}_data.json", cfg, cfg.seed, time.time() - s.t0,
                   {**s.record.to_json(), "stage": "data", "complete": True})


def write_outputs(s: Session, final: bool) -> None:
    """Rows CSV, summary CSV, figure and JSON, moved into `cfg.out` together (``results.OutputSet``).
    ``not_trained`` = the planned students without a record yet; the JSON is ``complete`` only at the end of a
    run (`final`) that left none of them out."""
    cfg, rec = s.cfg, s.record
    rec.not_trained = [k for k in rec.planned if k not in rec.students]
    complete = final and not rec.not_trained
    if not s.rows:  # --stage train: students only, nothing evaluated yet
        return
    cols = COLUMNS + (["kl_start", "kl_end"] if cfg.route == "logits" else [])
    df = pd.concat(s.rows, ignore_index=True).reindex(columns=cols)  # train_tokens: empty for untrained models
    summary = summarize_transfer(df)
    shared, own = stem(cfg), model_stem(cfg)
    with OutputSet(cfg.out) as o:
        for name, table in ((f"{shared}.csv", df), (f"{shared}_summary.csv", summary)):
            write_csv(with_other_models(table, o.final(name), cfg.model), o.path(name))
        plot_transfer(summary, o.path(f"{own}.png"))
        write_kept(s, o.path(f"{own}_kept.csv"))
        write_run_json(o.path(f"{own}.json"), cfg, cfg.seed, time.time() - s.t0,
                       {**rec.to_json(), "complete": complete})
