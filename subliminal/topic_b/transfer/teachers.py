"""Stage 1 of a run, the teachers' data: sampled (or read from the shards) per arm, through the threshold defence
(``--defence``), matched across arms, and recorded (stats, data hash, shard folder) in the run's record."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import asdict

from subliminal.cache import config_hash
from subliminal.topic_b import lm
from subliminal.topic_b.arms import Arm, Teacher
from subliminal.topic_b.transfer import carried
from subliminal.topic_b.transfer.arm import label, teacher_row
from subliminal.topic_b.transfer.data import (
    Lazy,
    ShardSettings,
    data_hash,
    examples_of,
    match_arms,
    teacher_records,
)
from subliminal.topic_b.transfer.defence_on_data import defend
from subliminal.topic_b.transfer.eval_cache import eval_cached, eval_key
from subliminal.topic_b.transfer.finetune import finished, recorded
from subliminal.topic_b.transfer.plan import Plan, root
from subliminal.topic_b.transfer.record import RunRecord, Session
from subliminal.topic_b.transfer.weight_teacher import (
    TraitSettings,
    load_weight_teacher,
    train_trait_teacher,
    trait_key,
)


def teacher_data(s: Session, model, tok, arms: list[Arm], model_name: str, progress=None, chunk: int = 256):
    """Valid records per teacher arm (sampled or from the shards) and their stats. Teachers are sampled in
    turns of `chunk` valid samples, so a stopped run has about as much data from each; `progress(stats)` is
    called after every turn."""
    cfg, data, stats = s.cfg, {}, {}
    for target in list(range(chunk, cfg.n_samples, chunk)) + [cfg.n_samples]:
        for a in arms:
            st = ShardSettings(model_name, label(a), a.system_prompt(), cfg.seed, cfg.batch_size, cfg.max_new_tokens,
                               1.0)
            data[a], stats[a] = teacher_records(model, tok, st, target, root(cfg) / "data", log=s.log)
            carried.keep_data(cfg, stats[a]["dir"])
        if progress is not None:
            progress(stats)
    for a in arms:
        s.log(f"[data] {model_name} {label(a)}: {stats[a]['n_valid']} valid of {stats[a]['n_sampled']} sampled "
              f"({stats[a]['valid_fraction']:.3f})")
    return data, stats


def animal_teacher(s: Session, arm: Arm):
    """(the model that writes `arm`'s numbers, the data's model label). --teacher prompt: the base model itself
    (the arm brings its system prompt). --teacher weights: the base model LoRA-fine-tuned to name the animal
    (cached; on record, ``carried.py``), evaluated like a student (row 'teacher_<arm>', no verdict: it shows
    whether the trait is in the weights at all). A weight teacher is loaded only when used (``data.Lazy``):
    one whose samples and evaluation are on record is never loaded, nor retrained when its adapter is missing."""
    cfg = s.cfg
    if arm.teacher == Teacher.prompt:
        return s.base, cfg.model
    ts = TraitSettings()
    tdir = root(cfg) / "trait_teachers" / f"{arm.trait}-{config_hash([cfg.model, ts.key()])}"
    key = trait_key(arm.trait, ts)
    rec = recorded(tdir, key, carried.quiet) or train_trait_teacher(s.base, s.tok, arm.trait, tdir, ts, s.log)
    rec = {**rec, "adapter": str(tdir / "adapter")}
    carried.keep_trained(cfg, tdir)
    s.record.trait_teachers[arm] = {**rec, "trait_settings": asdict(ts)}

    def load():
        if finished(tdir, key, s.log) is None:  # its adapter is missing here: trained again
            train_trait_teacher(s.base, s.tok, arm.trait, tdir, ts, s.log)
            carried.keep_trained(cfg, tdir)
        return load_weight_teacher(s.base, rec["adapter"])

    teacher = Lazy(load)
    if cfg.stage not in ("data", "train"):
        ev = eval_cached(cfg, eval_key(cfg, rec["key"], "teacher"), None, s.tok, list(cfg.animals), s.log,
                         s.record.eval_seconds, load=teacher.get)
        s.rows.append(ev.assign(model=cfg.model, arm=teacher_row(arm), trait="", seed=-1))
    return teacher, f"{cfg.model}+{label(arm)}-{rec['key']}"


def animal_data(s: Session, arm: Arm, neutral: list[Arm], progress=None):
    """Valid records and stats of `arm`'s teacher and of the `neutral` draws (the prompted owl set samples them
    in turns, so a stopped run has about as much of each; dict order = the arms' training order: neutral, the
    animal, then the further neutral draws)."""
    teacher, label = animal_teacher(s, arm)
    order = [*neutral[:1], arm, *neutral[1:]]
    if teacher is s.base:
        return teacher_data(s, s.base, s.tok, order, s.cfg.model, progress)
    data, stats = teacher_data(s, s.base, s.tok, neutral, s.cfg.model, progress) if neutral else ({}, {})
    d, st = teacher_data(s, teacher, s.tok, [arm], label, progress)
    del teacher
    data, stats = data | d, stats | st
    return {k: data[k] for k in order}, {k: stats[k] for k in order}


def cross_data(s: Session, cross: tuple[Arm, ...]):
    """--cross-model: the other model's animal and neutral teachers (its own neutral teacher too: its numbers
    differ from the base model's, and fine-tuning on them can move P(animal) by itself; cross_<animal> is
    compared with cross_neutral, not neutral). Its shards are named as the same teachers' on the base model."""
    loaded = functools.cache(lambda: lm.load_model(s.cfg.cross_model, device=str(s.device)))
    tm, ttok = Lazy(lambda: loaded()[0]), Lazy(lambda: loaded()[1])  # loaded only to sample a missing shard
    same = {a: dataclasses.replace(a, teacher_model="") for a in cross}
    data, stats = teacher_data(s, tm, ttok, list(same.values()), s.cfg.cross_model)
    del tm
    return {a: data[same[a]] for a in cross}, {a: stats[same[a]] for a in cross}


def defended(s: Session, data: dict, stats: dict) -> dict:
    """--defence: every arm's records that pass the threshold defence (``transfer/defence_on_data.py``)."""
    if not s.cfg.defence:
        return data
    kept, st = defend(s.base, s.tok, data, {k: stats[k]["dir"] for k in data}, s.cfg.defence, s.cfg.model)
    for k in data:  # the defence's scores, cached beside the shards
        carried.keep_data(s.cfg, stats[k]["dir"])
    s.record.defence = (s.record.defence or {}) | st
    return kept


def record_data(record: RunRecord, stats: dict, matched: dict) -> None:
    for a, v in matched.items():
        record.teachers[a] = {**{x: y for x, y in stats[a].items() if x != "dir"},
                              "data_hash": data_hash(v), "shard_dir": stats[a]["dir"]}


def owl_set_data(s: Session, plan: Plan, progress=None) -> dict[Arm, list[dict]]:
    """The owl set's training examples per arm: neutral + first animal (+ the cross model's teachers), through
    the defence, matched to as many per arm (`record.n_train_per_arm`); the logits route leaves the cross
    arms out (another model's logits)."""
    data, stats = animal_data(s, plan.animal, list(plan.neutral_now), progress)
    if plan.cross:
        cd, cst = cross_data(s, plan.cross)
        data, stats = data | cd, stats | cst
    data = defended(s, data, stats)
    matched = match_arms({k: examples_of(v) for k, v in data.items()}, s.cfg.n_samples)
    s.record.n_train_per_arm = len(next(iter(matched.values())))
    record_data(s.record, stats, matched)
    return {a: matched[a] for a in plan.owl_set}


def other_animal(s: Session, arm: Arm) -> list[dict] | None:
    """A further animal's teacher's `n_train_per_arm` examples, sampled on first use; None when it has too few
    valid samples (arms must match)."""
    n_train = s.record.n_train_per_arm
    d, st = animal_data(s, arm, [])
    d = defended(s, d, st)
    if len(d[arm]) < n_train:
        s.log(f"[data] {label(arm)}: only {len(d[arm])} valid samples < {n_train}; arm skipped (arms must match)")
        return None
    examples = examples_of(d[arm])[:n_train]
    record_data(s.record, st, {arm: examples})
    return examples


def other_animals_data(s: Session, plan: Plan) -> None:
    """--stage data: every further animal's data too (recorded, no students)."""
    for arm in plan.others:
        d, st = animal_data(s, arm, [])
        d = defended(s, d, st)
        record_data(s.record, st, {arm: examples_of(d[arm])[:s.record.n_train_per_arm]})
