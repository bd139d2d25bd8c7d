"""One run of the ladder end to end: checks (every folder writable, one run per cache), the base model, its three
weight teachers, then every planned student in order; after each student the outputs are rewritten together
from every finished student on record, whichever subset this command planned (``records.on_record``,
``outputs.write``), marked complete or not. ``--outputs-only`` rebuilds the outputs from the records on record
with no model loaded and no training.

Outputs (``<out>/topic_b_transfer_theory*`` for the default model; ``topic_b_transfer_theory__<model>*`` for
another ``--model``, so it never overwrites them): ``.csv`` (tidy: cell, teacher, seed, step, question, animal in
{owl, eagle}, logp, share), ``_summary.csv`` (effects with CIs over seeds and MDEs), ``_cosines.csv`` (update
cosines per student), ``_cosine_contrasts.csv`` (own teacher's student vs the neutral teacher's, against the same
teacher; CIs over seeds), ``_cosine_layers.csv`` (the same per layer), ``_verdicts.csv``, ``_sampling_power.csv`` (samples per arm the
paper's sampled readout would need), ``_fit.csv`` (how far each cell's students went: loss, update norm), ``_rungs.csv`` (each rung's share effect
minus cell b's, paired by seed: what the rung's condition changes), ``.png``, ``.json`` (config, teachers, students
planned and done, tokens/s, "complete", the evaluation rules, the hash of every record used). The students'
records (a few KB each, sealed) and the sampled input pools (``pools/``, the number lists of cells
b-neutral-inputs and c, about 0.4 MB a teacher) are copied to ``<out>/topic_b_transfer_theory_records`` so a run
continues on another machine (the teachers retrain deterministically in minutes).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from subliminal import carry
from subliminal.cache import config_hash, read_record  # noqa: F401 (read_record: read through this module by tests)
from subliminal.cli import UserError
from subliminal.results import read_json
from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.theory import guard, plots, records
from subliminal.topic_b.theory.baselines import base_preference, kept_preference, sync_pools, teacher_fingerprints
from subliminal.topic_b.theory.cells import CELLS, plan
from subliminal.topic_b.theory.ladder import Ladder
from subliminal.topic_b.theory.outputs import model_stem
from subliminal.topic_b.theory.outputs import write as _write
from subliminal.topic_b.theory.records import restore as _restore
from subliminal.topic_b.theory.rules import rules_id

TRAITS = (NEUTRAL, "owl", "eagle")


def _previous(path: Path, log) -> dict:
    """The previous run JSON ({} when absent); a damaged one is one line and {} (its plan is then not carried)."""
    if not path.exists():
        return {}
    try:
        prev = read_json(path)
    except (UserError, OSError) as e:
        log(f"[theory] {e}: the previous run's plan, teachers and inputs are not carried over")
        return {}
    return prev if isinstance(prev, dict) else {}


def run(cfg, device, log=print) -> dict:
    t0 = time.time()
    root, out = Path(cfg.cache_root()) / cfg.model, Path(cfg.out)
    archive = out / f"{model_stem(cfg.model)}_records"
    guard.check_paths(out, archive, None if cfg.outputs_only else root)  # before any model loads
    prev = _previous(out / f"{model_stem(cfg.model)}.json", log)
    _same_settings(cfg, prev, out)
    ctx = {"archive": archive, "prev": prev, "t0": t0, "topic_a": plots.topic_a_summary(out),
           "mde": guard.prerun_mde(out, prev.get("mde_stated_before_the_runs") or {}, log)}
    if not ctx["topic_a"].exists():
        log(f"[theory] {ctx['topic_a']} not found (the results root is the folder holding --out): the figure's "
            "Topic A panel says so instead of showing the reference pattern")
    if cfg.outputs_only:
        return _outputs_only(cfg, root, ctx, log)
    with guard.CacheLock(root, log):
        return _train(cfg, device, root, ctx, log)


def _same_settings(cfg, prev: dict, out: Path) -> None:
    """A run whose student or teacher settings differ from those the outputs in `out` were written under would
    replace those outputs with its own students only: refused, before any model loads, with what to do."""
    differ = []
    for name, mine in (("student_settings", asdict(cfg.student_settings())),
                       ("teacher_settings", asdict(cfg.teacher_settings()))):
        theirs = prev.get(name)
        if isinstance(theirs, dict):
            differ += [f for f in sorted(set(theirs) | set(mine))
                       if carry.plain(theirs.get(f)) != carry.plain(mine.get(f))]
    if differ:
        raise UserError(f"{out} holds the ladder's outputs under other settings ({', '.join(differ)} differ); this run "
                        "would replace them with its own students: pass another --out (its records stay apart too)")


def _info(cfg, want: records.Want, found: dict, ctx: dict, teachers: dict, sampled: dict) -> dict:
    """The run JSON's fields beside the tables (``outputs.write``)."""
    this = records.planned([c for c in CELLS if c.key in cfg.cells], cfg.seeds)
    before = records.previous_plan(ctx["prev"], want)
    return {"planned": list(dict.fromkeys(this + before)), "teachers": teachers,
            "teacher_settings": asdict(cfg.teacher_settings()), "student_settings": asdict(want.sset),
            "rules": want.rules, "records": records.file_hashes(found), "mde_stated_before_the_runs": ctx["mde"],
            "sampled_inputs": sampled, "topic_a": ctx["topic_a"]}


def _prev_inputs(ctx: dict, want: records.Want) -> dict:
    """The previous run's input statistics, when it ran under these settings (a subset rerun keeps them)."""
    return dict(ctx["prev"].get("sampled_inputs") or {}) if records.same_run_json(ctx["prev"], want) else {}


def _train(cfg, device, root: Path, ctx: dict, log) -> dict:
    archive = ctx["archive"]
    _restore(archive, root)
    sync_pools(archive / "pools", root / "pools", log)
    base, tok = load_model(cfg.model, device=str(device))
    base_id = config_hash({"model": cfg.model})
    ladder = Ladder(base, tok, root, cfg.teacher_settings(), cfg.student_settings(), base_id, log=log,
                    progress=cfg.progress)
    want = records.Want(ladder.sset, {t: ladder.teacher_key(t) for t in ladder.records}, base_id, ladder.rules)
    bp = base_preference(base, tok, root, archive, ladder.rules, base_id, log)
    vs_first = teacher_fingerprints(ladder.records, archive, Path(cfg.out) / f"{model_stem(cfg.model)}.json", log=log)
    teachers = {t: {k: r.get(k) for k in ("key", "steps", "final_loss", "tokens_per_s")}
                | {"vs_first_teacher": vs_first.get(t)} for t, r in ladder.records.items()}
    todo = plan([c for c in CELLS if c.key in cfg.cells], cfg.seeds)
    found: dict = {}
    for i, (cell, seed, trait) in enumerate(todo):
        rec = ladder.student(cell, seed, trait)
        if rec.get("complete"):
            records.archive(archive, rec, want)
        sync_pools(root / "pools", archive / "pools", log)
        found = records.on_record(archive, root, want, log)
        sampled = _prev_inputs(ctx, want) | ladder.input_stats()
        _write(cfg, [r for _, r in found.values()], bp, _info(cfg, want, found, ctx, teachers, sampled), ctx["t0"])
        log(f"[theory] {i + 1}/{len(todo)} students: {cell.arm(trait).name} s{seed} ({len(found)} on record)")
    return {"students": len(found)}


def _outputs_only(cfg, root: Path, ctx: dict, log) -> dict:
    """Every output rebuilt from the records on record: no model, no training. The teachers' keys are computed
    from their settings (``TeacherSettings.trained_key``); their fingerprints, and the input statistics, come
    from the previous run JSON where it ran under the same settings."""
    archive, tset, sset = ctx["archive"], cfg.teacher_settings(), cfg.student_settings()
    base_id, rules = config_hash({"model": cfg.model}), rules_id()
    want = records.Want(sset, {t: tset.trained_key(t) for t in TRAITS}, base_id, rules)
    cache = root if root.is_dir() else None
    kept = kept_preference(cache, archive, rules, base_id, log)
    if kept is None:
        raise UserError(f"no base preference of these evaluation rules in {archive} (or {root}); run the ladder "
                        "without --outputs-only first")
    found = records.on_record(archive, cache, want, log)
    prev = ctx["prev"]
    old = prev.get("teachers") if records.same_run_json(prev, want) and isinstance(prev.get("teachers"), dict) else {}
    teachers = {t: old[t] if isinstance(old.get(t), dict) and old[t].get("key") == k else {"key": k}
                for t, k in want.teacher_keys.items()}
    _write(cfg, [r for _, r in found.values()], pd.DataFrame(kept["rows"]),
           _info(cfg, want, found, ctx, teachers, _prev_inputs(ctx, want)), ctx["t0"])
    log(f"[theory] outputs rebuilt from the {len(found)} students on record (no model loaded, nothing trained)")
    return {"students": len(found)}
