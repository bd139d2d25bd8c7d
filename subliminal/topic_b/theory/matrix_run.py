"""One run of the base matrix end to end (issue 44): every base's teachers and their trait check, then every
planned student in order (``matrix.plan``), and after each student every output rewritten together from all
current students on record (whichever subset this command runs), marked complete when the whole design (every pair
of the bases and every dose scale, at the seeds) is on record.

Outputs (``<out>/topic_b_base_matrix*``): ``_teachers.csv`` (each trait teacher's share of its animal against the
neutral teacher's, ``teacher_check``), ``_signal.csv`` (per teacher base, animal and seed: the shared-class KL
between the trait and the neutral teacher on the seed's lists, the signal a student must learn), ``.csv`` (tidy:
pair, teacher, seed, step, question, animal in {owl, eagle}, logp, share), ``_effects.csv`` (per pair and animal:
the share effect, verdict at its Holm level), ``_contrasts.csv`` (off-diagonal minus diagonal of the same student
base, by seed), ``_fit.csv`` (each pair's students' KL to their teacher against the signal), ``_fit_rule.csv`` (the
cross-base pairs' steps and learning rate, decided on the neutral teacher alone, ``matrix_fit``), ``.json`` (config,
students planned and done, "complete", teachers, the hash of every record used). Students' records are copied to
``<out>/topic_b_base_matrix_records/<student base>/<student folder>/record.json`` and restored into the cache on
another machine; the teachers retrain deterministically.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from subliminal.cache import read_record, write_record
from subliminal.results import OutputSet, write_csv, write_run_json
from subliminal.topic_b.arms import NEUTRAL
from subliminal.topic_b.theory import (
    inputs,
    matrix,
    matrix_analysis,
    matrix_fit,
    matrix_plots,
    shared_class,
    student,
    teacher_check,
)
from subliminal.topic_b.theory.guard import CacheLock
from subliminal.topic_b.theory.rules import rules_id

STEM = matrix.STEM
SIGNAL = "signal.json"  # in the archive: the signal rows measured so far (teacher base, animal, seed, kl)


def run(cfg, device, log: Callable = print) -> dict:
    t0 = time.time()
    out, root = Path(cfg.out), cfg.cache_root()
    archive = out / f"{STEM}_records"
    n = matrix.restore(archive, root)
    if n:
        log(f"[matrix] {n} finished student record(s) restored from {archive} into {root}")
    root.mkdir(parents=True, exist_ok=True)
    with CacheLock(root, log):
        bases = matrix.Bases(root, cfg.teacher_settings(), cfg.student_settings(), device=str(device), log=log,
                             progress=cfg.progress)
        prefs, rules = {}, rules_id()
        for b in cfg.bases:
            lad = bases.ladder(b)
            prefs[b] = {t: teacher_check.teacher_preference(lad.teacher(t), bases.model(b)[1],
                                                            Path(lad.records[t]["adapter"]).parent, rules, log)
                        for t in matrix.TRAITS}
        check = teacher_check.check(prefs)
        rule = cfg.fit_rule()
        for tb, sb in _cross_pairs(cfg.bases):  # the fit rule's decisions on record set those pairs' settings
            rec = matrix_fit.decided(archive, tb, sb, rule, bases.sset)
            if rec is not None:
                bases.fitted[(tb, sb)] = matrix_fit.overrides(rec)
        # the design: every pair of the bases and every dose scale at these seeds, whichever part this command runs
        # (--pairs, --no-dose, --teachers-only select the work, not the design): "complete" means all of it
        design = matrix.plan([(t, s) for t in cfg.bases for s in cfg.bases], cfg.seeds, scales=cfg.noise_scales,
                             dose_base=cfg.bases[0], dose_traits=(NEUTRAL, *cfg.dose_animals))
        planned = [_student_id(tb, sb, s, t, x) for tb, sb, s, t, x in design]
        if cfg.teachers_only:  # the students on record stay in the outputs
            found = _on_record(bases, cfg, archive)
            _write(cfg, bases, check, found, _signal_rows(archive), planned, t0)
            return {"students": len(found)}
        todo = matrix.plan(cfg.pair_list(), cfg.seeds, scales=cfg.scales(), dose_base=cfg.bases[0],
                           dose_traits=(NEUTRAL, *cfg.dose_animals))
        found: list[dict] = []
        for i, (tb, sb, seed, trait, noise) in enumerate(todo):
            if noise is not None:
                _add_capability(bases, archive, sb, seed, noise, log)
            elif tb != sb and (tb, sb) not in bases.fitted:
                _fit_rule(bases, archive, cfg, tb, sb, log)
            rec = bases.student(tb, sb, seed, trait, noise)
            if rec.get("complete"):
                matrix.archive(archive / sb, bases.student_dir(tb, sb, seed, trait, noise))
                _add_signal(bases, archive, tb, seed, log)
            found = _on_record(bases, cfg, archive)
            _write(cfg, bases, check, found, _signal_rows(archive), planned, t0)
            log(f"[matrix] {i + 1}/{len(todo)} students: {tb} -> {sb} {trait} s{seed}"
                f"{'' if noise is None else f' noise {noise:g}'} ({len(found)} on record)")
    return {"students": len(found)}


def _cross_pairs(bases_: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(t, s) for t in bases_ for s in bases_ if t != s]


def _fit_rule(bases: matrix.Bases, archive: Path, cfg, tb: str, sb: str, log: Callable) -> None:
    """Decide a cross-base pair's steps and learning rate on its neutral teacher alone (``matrix_fit``), before
    any of its trait students; the bar is the teacher base's signal (measured first on the first seed's lists
    when it is not yet)."""
    rule = cfg.fit_rule()
    level = matrix_fit.bar(_signal_rows(archive), tb, rule.target)
    if level is None:
        _add_signal(bases, archive, tb, cfg.seeds[0], log)
        level = matrix_fit.bar(_signal_rows(archive), tb, rule.target)

    def train(lr: float, sset, stop_after: int) -> dict:
        return bases.student(tb, sb, matrix_fit.FIT_SEED, NEUTRAL, settings=sset, prefix="matrix-fit",
                             stop_after=stop_after)

    rec = matrix_fit.decide(archive, tb, sb, rule, bases.sset, level, train, log)
    bases.fitted[(tb, sb)] = matrix_fit.overrides(rec)


def _student_id(tb: str, sb: str, seed: int, trait: str, noise: float | None = None) -> str:
    key = matrix_analysis.pair_key(tb, sb) if noise is None else matrix_analysis.dose_key(sb, noise)
    return f"{key}:{trait}:s{seed}"


def _rec_id(r: dict) -> str:
    tb, sb = matrix_analysis.split(matrix_analysis.record_pair(r))
    noisy = r["arm"].get("init") == "noisy_base"
    return _student_id(tb, sb, r["seed"], r["arm"]["trait"], r["settings"]["noise_scale"] if noisy else None)


def _on_record(bases: matrix.Bases, cfg, archive: Path) -> list[dict]:
    """Every current student on record (archived, finished, of this run's settings, teachers and rules), with its
    student base and the archived file's SHA-256 added (not part of the sealed record)."""
    found = []
    dose = [(cfg.bases[0], cfg.bases[0], x) for x in cfg.noise_scales]
    cells = [(tb, sb, None) for tb in cfg.bases for sb in cfg.bases] + dose
    for tb, sb, noise in cells:
        for seed in sorted({*cfg.seeds, *_archived_seeds(archive / sb)}):
            for trait in matrix.TRAITS:
                f = archive / sb / bases.student_dir(tb, sb, seed, trait, noise).name / "record.json"
                rec = read_record(f)
                if rec is not None and student.finished(rec, bases.key(tb, sb, seed, trait, noise), rules_id()):
                    found.append(rec | {"student_base": sb, "file": f.relative_to(archive).as_posix(),
                                        "sha256": hashlib.sha256(f.read_bytes()).hexdigest()})
    return found


CAPABILITY = "capability.json"  # in the archive: the capability readout of every (noisy) base measured so far


def _add_capability(bases: matrix.Bases, archive: Path, sb: str, seed: int, noise: float, log: Callable) -> None:
    """The capability readout (``matrix.capability``) of `sb` itself (noise 0, once) and of the dose's noisy base of
    this seed and scale, once each."""
    path = archive / CAPABILITY
    doc = read_record(path) or {"rows": []}
    have = {(r["base"], r["seed"], r["noise_scale"]) for r in doc["rows"]}
    for s, x in ((-1, 0.0), (seed, noise)):
        if (sb, s, x) in have:
            continue
        model = bases.model(sb)[0] if x == 0 else matrix.noisy_base(bases, sb, s, x)
        t = time.time()
        doc["rows"].append({"base": sb, "seed": s, "noise_scale": x, **matrix.capability(model, bases.model(sb)[1])})
        log(f"[matrix] capability of {sb} + noise {x:g} (seed {s}) in {time.time() - t:.0f} s")
        del model
        write_record(path, doc)


def _capability_rows(archive: Path) -> pd.DataFrame:
    doc = read_record(archive / CAPABILITY) or {"rows": []}
    return pd.DataFrame(doc["rows"], columns=["base", "seed", "noise_scale", "nats_answers", "nats_number_lists",
                                              "p_any_animal"])


def _archived_seeds(d: Path) -> set[int]:
    seeds = set()
    for f in d.glob("*/record.json") if d.is_dir() else []:
        rec = read_record(f)
        if rec is not None and isinstance(rec.get("seed"), int):
            seeds.add(rec["seed"])
    return seeds


def _add_signal(bases: matrix.Bases, archive: Path, tb: str, seed: int, log: Callable) -> None:
    """The signal of teacher base `tb` on seed `seed`'s lists, once: KL(trait teacher || neutral teacher) over the
    shared classes at the completion positions (the teachers' targets come from the cache the students use)."""
    path = archive / SIGNAL
    doc = read_record(path) or {"rows": []}
    if any(r["teacher_base"] == tb and r["seed"] == seed and r.get("settings") == _sig_settings(bases)
           for r in doc["rows"]):
        return
    tok = bases.model(tb)[1]
    lad = bases.ladder(tb)
    contexts = inputs.random_lists(seed, bases.sset.steps * bases.sset.batch)
    items = shared_class.pair_items(tok, tok, contexts)
    logp = {t: student.class_targets(lad.teacher(t), tok, items, lad.teacher_key(t), matrix.base_id(tb),
                                     bases.root / tb / "targets", log) for t in matrix.TRAITS}
    for a in matrix_analysis.ANIMALS:
        kl = float(shared_class.shared_class_kl(logp[NEUTRAL], logp[a]))
        doc["rows"].append({"teacher_base": tb, "animal": a, "seed": seed, "kl": kl, "settings": _sig_settings(bases),
                            "n_positions": int(logp[a].shape[0])})
    write_record(path, doc)


def _sig_settings(bases: matrix.Bases) -> dict:
    return {"steps": bases.sset.steps, "batch": bases.sset.batch}


def _signal_rows(archive: Path) -> pd.DataFrame:
    doc = read_record(archive / SIGNAL) or {"rows": []}
    return pd.DataFrame(doc["rows"], columns=["teacher_base", "animal", "seed", "kl", "n_positions"])


def _write(cfg, bases: matrix.Bases, check: pd.DataFrame, found: list[dict], signal: pd.DataFrame,
           planned: list[str], t0: float) -> None:
    fam = cfg.families()
    tidy = matrix_analysis.tidy(found) if found else pd.DataFrame()
    done = {_rec_id(r) for r in found}
    archive = Path(cfg.out) / f"{STEM}_records"
    with OutputSet(cfg.out) as o:
        write_csv(check, o.path(f"{STEM}_teachers.csv"))
        write_csv(signal, o.path(f"{STEM}_signal.csv"))
        if len(tidy):
            write_csv(tidy[tidy.animal.isin(matrix_analysis.ANIMALS)], o.path(f"{STEM}.csv"))
            effects = matrix_analysis.effects(tidy, fam)
            write_csv(effects, o.path(f"{STEM}_effects.csv"))
            write_csv(matrix_analysis.contrasts(tidy, fam), o.path(f"{STEM}_contrasts.csv"))
            write_csv(matrix_analysis.fit(found, signal), o.path(f"{STEM}_fit.csv"))
            dose = pd.concat([matrix_analysis.effects(tidy, fam, family="base-noise dose"),
                              matrix_analysis.contrasts(tidy, fam, family="dose contrasts")], ignore_index=True)
        write_csv(matrix_fit.table(archive), o.path(f"{STEM}_fit_rule.csv"))
        cap = matrix_analysis.capability(_capability_rows(archive))
        write_csv(cap, o.path(f"{STEM}_capability.csv"))
        if len(tidy):
            dose = matrix_analysis.dose_capability(dose, cap)
            write_csv(dose, o.path(f"{STEM}_dose.csv"))
            matrix_plots.dose(dose, effects, cap,
                              matrix_plots.topic_a_init(Path(cfg.out)), o.path(f"{STEM}_dose.png"))
        teachers = {b: {t: {k: lad.records[t].get(k) for k in ("key", "final_loss", "tokens_per_s")}
                        for t in matrix.TRAITS} for b, lad in bases._ladders.items()}
        write_run_json(o.path(f"{STEM}.json"), cfg, 0, time.time() - t0, {
            "complete": bool(planned) and set(planned) <= done, "students_done": len(done),
            "students_planned": len(planned), "planned": planned, "teachers": teachers,
            "teacher_settings": asdict(cfg.teacher_settings()), "student_settings": asdict(cfg.student_settings()),
            "fit_rule": asdict(cfg.fit_rule()) | {"decided": {matrix_analysis.pair_key(*p): o
                                                             for p, o in bases.fitted.items()}},
            "rules": rules_id(), "families": {k: [list(m) for m in v] for k, v in fam.items()},
            "minutes_per_student": {_rec_id(r): round(r.get("seconds", 0) / 60, 1) for r in found},
            "records": {r["file"]: r["sha256"] for r in found} | {
                f.relative_to(archive).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(archive.glob(f"{matrix_fit.FOLDER}/*/record.json"))}})
