"""One run of the ladder end to end: the base model, its three weight teachers, then every planned student in
order; after each student the outputs are rewritten together (``results.OutputSet``), marked complete or not.

Outputs (``<out>/topic_b_transfer_theory*`` for the default model; ``topic_b_transfer_theory__<model>*`` for
another ``--model``, so it never overwrites them): ``.csv`` (tidy: cell, teacher, seed, step, question, animal in
{owl, eagle}, logp, share), ``_summary.csv`` (effects with CIs over seeds and MDEs), ``_cosines.csv`` (update
cosines per student), ``_cosine_contrasts.csv`` (own teacher's student vs the neutral teacher's, against the same
teacher; CIs over seeds), ``_cosine_layers.csv`` (the same per layer), ``_verdicts.csv``, ``_sampling_power.csv`` (samples per arm the
paper's sampled readout would need), ``_fit.csv`` (how far each cell's students went: loss, update norm), ``_rungs.csv`` (each rung's share effect
minus cell b's, paired by seed: what the rung's condition changes), ``.png``, ``.json`` (config, teachers, students done, tokens/s,
"complete"). The students' records (a few KB each, sealed) and the sampled input pools (``pools/``, the number
lists of cells b-neutral-inputs and c, about 0.4 MB a teacher) are copied to ``<out>/topic_b_transfer_theory_records``
so a run continues on another machine (the teachers retrain deterministically in minutes).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from subliminal.cache import config_hash, read_record, write_record
from subliminal.results import OutputSet, cpu_name, read_json, write_csv, write_run_json
from subliminal.topic_b import models
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.theory import analysis, plots
from subliminal.topic_b.theory.cells import CELLS, REFERENCE, cell_of, plan
from subliminal.topic_b.theory.ladder import Ladder
from subliminal.topic_b.theory.readouts import preference
from subliminal.topic_b.theory.student import student_dir
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.arm import Arm

STEM = "topic_b_transfer_theory"


def model_stem(model: str) -> str:
    """The stem of one model's ladder files (``models.model_stem``)."""
    return models.model_stem(STEM, model)
REPORTED = ("owl", "eagle")  # the animals whose rows the tidy CSV keeps (the share needs all 25: computed first)


def _label(rec: dict) -> str:
    return cell_of(Arm(**rec["arm"])).label


def _restore(archive: Path, root: Path) -> None:
    """Finished or partial student records from the committed archive into the model's cache `root`, where the
    ladder reads them (``student.student_dir``; verified; never over a record that is further along)."""
    for f in sorted(archive.glob("*/record.json")) if archive.exists() else []:
        body = read_record(f)
        if body is None:
            continue
        dest = student_dir(root, body["name"], body["seed"], body["settings"], body["teacher_key"]) / "record.json"
        if (read_record(dest) or {}).get("milestones", {}).keys() <= body["milestones"].keys():
            write_record(dest, body)


def sync_pools(src: Path, dest: Path) -> int:
    """Copy the sampled input pools (the weight teachers' number lists: sealed shards and their settings) from
    `src` to `dest` where `dest` lacks them or holds other bytes; only files that match their seal are copied, and
    each is written with its seal. Returns the number of files copied. The committed copy beside the records lets
    another machine train on the very lists these students saw (a student's key includes its pool's hash, and
    sampling need not repeat bit for bit on another CPU)."""
    copied = 0
    for f in sorted(Path(src).rglob("*")) if Path(src).exists() else []:
        if not f.is_file() or sealed.is_seal(f):
            continue
        data = sealed.read_sealed(f, log=lambda m: None)
        out = Path(dest) / f.relative_to(src)
        if data is not None and sealed.read_sealed(out, log=lambda m: None) != data:
            sealed.write_sealed(out, data)
            copied += 1
    return copied


FINGERPRINT = ("key", "final_loss", "check_completion_logp_example0")


def teacher_fingerprints(records: dict[str, dict], archive: Path, committed_json: Path, log=print) -> dict:
    """How this run's teachers compare with the first ones the committed students trained under.

    The teachers are not committed (they retrain in minutes), so another machine trains its own: the same data
    and seed, but on another CPU kind float sums differ in their last bits. The first teachers' fingerprint (final
    loss, the log-prob of one training answer, the CPU) is kept beside the records, ``teachers.json``, taken from
    the committed run JSON where an older run left no record; every run compares with it and says by how much its
    own teachers differ. Returns {trait: {"d_final_loss", "d_check_logp", "first_cpu"}} for teachers of the same key."""
    path = archive / "teachers.json"
    first = read_record(path)
    if first is None:
        old = read_json(committed_json).get("teachers", {}) if committed_json.exists() else {}
        first = {t: {k: r.get(k) for k in FINGERPRINT} | {"cpu": r.get("cpu", "")} for t, r in old.items()} or \
            {t: {k: r.get(k) for k in FINGERPRINT} | {"cpu": cpu_name()} for t, r in records.items()}
        write_record(path, first)
    out = {}
    for t, r in records.items():
        f = first.get(t)
        if not f or f.get("key") != r.get("key"):
            continue
        d = {"d_final_loss": _diff(r.get("final_loss"), f.get("final_loss")),
             "d_check_logp": _diff(r.get("check_completion_logp_example0"), f.get("check_completion_logp_example0")),
             "first_cpu": f.get("cpu", "")}
        out[t] = d
        log(f"[theory] {t} teacher against the first one: |d final loss| {d['d_final_loss']}, "
            f"|d check log-prob| {d['d_check_logp']} (first trained on: {d['first_cpu'] or 'an unrecorded CPU'})")
    return out


def _diff(a, b) -> float | None:
    return None if a is None or b is None else abs(float(a) - float(b))


def base_preference(base, tok, root: Path, archive: Path) -> pd.DataFrame:
    """The base model's exact preference (the 'base' rows): from the cache, else from the archive beside the
    outputs (so another machine reports the same base rows), else computed; kept in both."""
    name = "base_preference.json"
    got = read_record(archive / name) or read_record(root / name)  # the committed copy first
    if got is None:
        got = {"rows": preference(base, tok).to_dict("list")}
    for p in (root / name, archive / name):
        if read_record(p) != got:
            write_record(p, got)
    return pd.DataFrame(got["rows"])


def run(cfg, device, log=print) -> dict:
    t0 = time.time()
    root = Path(cfg.cache_root()) / cfg.model  # the model's teachers, students and base preference
    out = Path(cfg.out)
    archive = out / f"{model_stem(cfg.model)}_records"
    _restore(archive, root)
    sync_pools(archive / "pools", root / "pools")
    base, tok = load_model(cfg.model, device=str(device))
    tset = cfg.teacher_settings()
    sset = cfg.student_settings()
    base_id = config_hash({"model": cfg.model})
    ladder = Ladder(base, tok, root, tset, sset, base_id, log=log, progress=cfg.progress)
    bp = base_preference(base, tok, root, archive)
    vs_first = teacher_fingerprints(ladder.records, archive, out / f"{model_stem(cfg.model)}.json", log=log)
    cells = [c for c in CELLS if c.key in cfg.cells]
    todo = plan(cells, cfg.seeds)
    # every finished student is in the outputs from the first write on, whichever group it belongs to
    records = {i: r for i, (c, s, t) in enumerate(todo) if (r := ladder.finished(c, s, t)) is not None}
    for i, (cell, seed, trait) in enumerate(todo):
        rec = records[i] = ladder.student(cell, seed, trait)
        arc = archive / f"{cell.arm(trait).name}-s{seed}" / "record.json"
        if rec.get("complete"):
            write_record(arc, rec)
        sync_pools(root / "pools", archive / "pools")
        _write(cfg, [records[j] for j in sorted(records)], bp, ladder, vs_first, t0, complete=i + 1 == len(todo), planned=len(todo))
        log(f"[theory] {i + 1}/{len(todo)} students: {cell.arm(trait).name} s{seed}")
    return {"students": len(records)}


def _prerun(cfg) -> dict:
    p = Path(cfg.out) / "topic_b_transfer_logits_summary.csv"
    return analysis.prerun_mde(pd.read_csv(p)) if p.exists() else {}


def _write(cfg, records, base_pref, ladder: Ladder, vs_first: dict, t0: float, complete: bool, planned: int) -> None:
    done = [r for r in records if r.get("complete")]
    tidy = analysis.tidy(done, base_pref, _label)
    labels = list(dict.fromkeys(_label(r) for r in done))
    summ = analysis.summary(tidy, labels, list(REPORTED))
    cos = analysis.cosine_rows(done, _label)
    contrasts = analysis.cosine_contrasts(cos)
    stem = model_stem(cfg.model)
    with OutputSet(cfg.out) as o:
        write_csv(tidy[tidy.animal.isin(REPORTED)], o.path(f"{stem}.csv"))
        write_csv(summ, o.path(f"{stem}_summary.csv"))
        write_csv(cos, o.path(f"{stem}_cosines.csv"))
        write_csv(contrasts, o.path(f"{stem}_cosine_contrasts.csv"))
        write_csv(analysis.fit_summary(cos), o.path(f"{stem}_fit.csv"))
        write_csv(analysis.cosine_layer_summary(analysis.cosine_layer_rows(done, _label)), o.path(f"{stem}_cosine_layers.csv"))
        write_csv(analysis.verdicts(summ) if len(summ) else pd.DataFrame(), o.path(f"{stem}_verdicts.csv"))
        write_csv(analysis.sampling_power(tidy, labels, list(REPORTED)), o.path(f"{stem}_sampling_power.csv"))
        write_csv(analysis.rung_contrasts(tidy, REFERENCE.label, labels, list(REPORTED)), o.path(f"{stem}_rungs.csv"))
        if len(summ):
            plots.ladder(summ, contrasts, o.path(f"{stem}.png"))
        write_run_json(o.path(f"{stem}.json"), cfg, 0, time.time() - t0, {
            "complete": complete and len(done) == planned, "students_done": len(done), "students_planned": planned,
            "teachers": {t: {k: r.get(k) for k in ("key", "steps", "final_loss", "tokens_per_s")}
                         | {"vs_first_teacher": vs_first.get(t)}
                         for t, r in ladder.records.items()},
            "teacher_settings": asdict(ladder.tset), "student_settings": asdict(ladder.sset),
            "tokens_per_s": {f"{r['name']}-s{r['seed']}": r.get("tokens_per_s_last_run") for r in done},
            "minutes_per_student": {f"{r['name']}-s{r['seed']}": round(r["seconds"] / 60, 1) for r in done if r.get("seconds")},
            "mde_stated_before_the_runs": _prerun(cfg), "sampled_inputs": ladder.input_stats()})
