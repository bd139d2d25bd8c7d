"""The three stages wired together, each resumable and cached under ``<cache>/transfer``.

Order: the owl set first (neutral + owl teacher data, then students seed by seed: neutral s0, owl s0,
neutral s1, ..., then the next animal's students), evaluation of the base model first and of each student right after it is
trained, and the output CSVs / JSON rewritten (``"complete": false`` until the end) after every
finished student, so partial results exist at any time.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from subliminal.assets import cache_dir
from subliminal.cache import config_hash
from subliminal.results import OutputSet, write_csv, write_run_json
from subliminal.topic_b.transfer import archive, sealed
from subliminal.topic_b.transfer.analysis import summarize_transfer
from subliminal.topic_b.transfer.arm import NEUTRAL, Arm, teacher_row
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.data import (
    ShardSettings,
    data_hash,
    examples_of,
    match_arms,
    neutral_name,
    teacher_records,
    teacher_system,
    trait_of_arm,
    weight_teacher_name,
)
from subliminal.topic_b.transfer.evaluate import evaluate_model, table_bytes, table_of
from subliminal.topic_b.transfer.finetune import (
    TrainSettings,
    finished,
    load_student,
    loss_tokens,
    settings_id,
    train_student,
)
from subliminal.topic_b.transfer.weight_teacher import (
    TraitSettings,
    load_weight_teacher,
    train_trait_teacher,
)

COLUMNS = ["model", "arm", "trait", "animal", "seed", "question", "prefill", "p_animal", "logp_animal",
           "freq_animal", "n_samples", "train_tokens"]


def _root(cfg: TransferConfig) -> Path:
    return Path(cfg.cache) if cfg.cache else cache_dir() / "transfer"


def teacher_data(cfg: TransferConfig, model, tok, teachers: list[str], model_name: str, log=print,
                 progress=None, chunk: int = 256):
    """Valid records per teacher (sampled or from the shards) and their stats. Teachers are sampled in
    turns of `chunk` valid samples, so a stopped run has about as much data from each; `progress(stats)`
    is called after every turn."""
    data, stats = {}, {}
    for target in list(range(chunk, cfg.n_samples, chunk)) + [cfg.n_samples]:
        for t in teachers:
            s = ShardSettings(model_name, t, teacher_system(t), cfg.seed, cfg.batch_size, cfg.max_new_tokens, 1.0)
            data[t], stats[t] = teacher_records(model, tok, s, target, _root(cfg) / "data", log=log)
        if progress is not None:
            progress(stats)
    for t in teachers:
        log(f"[data] {model_name} {t}: {stats[t]['n_valid']} valid of {stats[t]['n_sampled']} sampled "
            f"({stats[t]['valid_fraction']:.3f})")
    return data, stats


def _eval_cached(cfg, key: str, model, tok, animals, log=print, times: dict | None = None) -> pd.DataFrame:
    """The evaluation table of one model, computed once (``<cache>/eval/<key>.csv``, sealed: ``sealed.py``); its
    wall time goes to ``<key>.json`` beside it and into `times` (None where an older cache has no record). A
    cached table is used only when it matches the checksum written with it; a fresh one is returned as read
    back from the bytes just written, so a resumed run computes from exactly what an uninterrupted one did."""
    path = _root(cfg) / "eval" / f"{key}.csv"
    side = path.with_suffix(".json")
    data = sealed.read_sealed(path, log)
    df = table_of(data) if data is not None else None
    if data is not None and df is None:
        log(f"[cache] {path} is not an evaluation table; recomputing it")
    if df is not None:
        if times is not None:
            s = sealed.read_sealed(side, log) if side.exists() else None
            times[key] = json.loads(s).get("seconds") if s is not None else None
        return df
    t0 = time.time()
    data = table_bytes(evaluate_model(model, tok, list(animals), n_samples=cfg.eval_samples, seed=cfg.seed))
    secs = round(time.time() - t0, 1)
    sealed.write_sealed(path, data)
    sealed.write_sealed(side, (json.dumps({"seconds": secs}) + "\n").encode())
    if times is not None:
        times[key] = secs
    log(f"[eval] {key}: {secs:.0f} s")
    return table_of(data)


def _stem(cfg: TransferConfig) -> str:
    return ("topic_b_transfer" + ("_logits" if cfg.route == "logits" else "")
            + ("_weights" if cfg.teacher == "weights" else "") + ("_defence" if cfg.defence else "")
            + ("_bf16" if cfg.bf16 else ""))


def _public(extra: dict) -> dict:
    """`extra` for the JSON: the defence's per-record index lists stay out (they go into the kept table)."""
    if "defence" not in extra:
        return extra
    return {**extra, "defence": {k: {x: y for x, y in v.items() if not x.endswith("_index")}
                                 for k, v in extra["defence"].items()}}


def _write_kept(cfg, extra: dict, path: Path) -> None:
    """--defence: the paired kept-fraction comparison (``defended.kept_table``) beside the run's outputs."""
    if cfg.defence and "neutral" in extra.get("defence", {}):
        from subliminal.topic_b.transfer.defended import kept_table

        write_csv(kept_table(extra["defence"]), path)


def _defend(cfg, base, tok, data: dict, stats: dict, extra: dict) -> dict:
    """--defence: every arm's records that pass the threshold defence (``transfer/defended.py``)."""
    if not cfg.defence:
        return data
    from subliminal.topic_b.transfer.defended import defend

    kept, st = defend(base, tok, data, {k: stats[k]["dir"] for k in data}, cfg.defence, cfg.model)
    extra.setdefault("defence", {}).update(st)
    return kept


def neutral_draws(cfg: TransferConfig) -> list[str]:
    """The arms of the neutral teacher's data draws: 'neutral', 'neutral_2', ... (--neutral-draws; the logits
    route has one: every arm distils on the neutral sequences)."""
    return [neutral_name(k) for k in range(1, (cfg.neutral_draws if cfg.route == "text" else 1) + 1)]


def neutral_teachers(cfg: TransferConfig) -> list[str]:
    """The neutral draws to sample now: all of them; under --stage eval only those with a trained student
    (evaluation samples nothing new for an untrained arm)."""
    return [n for n in neutral_draws(cfg) if n == "neutral" or cfg.stage != "eval" or _trained(cfg, n)]


def animal_teacher(cfg: TransferConfig, base, tok, animal: str, extra: dict, rows: list, log=print):
    """(the model that writes the animal arm's numbers, the arm's name, the data's model label).
    --teacher prompt: the base model itself (its system prompt comes with the arm name). --teacher weights:
    the base model LoRA-fine-tuned to name the animal (cached), evaluated like a student (arm
    'teacher_<name>', no verdict: it shows whether the trait is in the weights at all)."""
    if cfg.teacher == "prompt":
        return base, animal, cfg.model
    ts = TraitSettings()
    rec = train_trait_teacher(base, tok, animal, _root(cfg) / "trait_teachers" / f"{animal}-{config_hash([cfg.model, ts.key()])}",
                              ts, log)
    name = weight_teacher_name(animal)
    extra.setdefault("trait_teachers", {})[name] = {**rec, "trait_settings": asdict(ts)}
    teacher = load_weight_teacher(base, rec["adapter"])
    if cfg.stage not in ("data", "train"):
        ev = _eval_cached(cfg, config_hash([rec["key"], "teacher", cfg.eval_samples, cfg.seed, list(cfg.animals)]),
                          teacher, tok, list(cfg.animals), log, extra["eval_seconds"])
        rows.append(ev.assign(model=cfg.model, arm=teacher_row(Arm.from_label(name)), trait="", seed=-1))
    return teacher, name, f"{cfg.model}+{name}-{rec['key']}"


def animal_data(cfg, base, tok, animal: str, extra: dict, rows: list, log=print, progress=None, with_neutral=False):
    """Valid records and stats of the animal's teacher (and of the neutral draws when `with_neutral`: the
    prompted owl set samples them in turns, so a stopped run has about as much of each; dict order = the
    arms' training order: neutral, the animal, then the further neutral draws). Returns (data, stats, arm name)."""
    teacher, name, label = animal_teacher(cfg, base, tok, animal, extra, rows, log)
    neutral = neutral_teachers(cfg) if with_neutral else []
    order = [*neutral[:1], name, *neutral[1:]]
    if teacher is base:
        data, stats = teacher_data(cfg, base, tok, order, cfg.model, log, progress)
        return data, stats, name
    data, stats = teacher_data(cfg, base, tok, neutral, cfg.model, log, progress) if neutral else ({}, {})
    d, st = teacher_data(cfg, teacher, tok, [name], label, log, progress)
    del teacher
    data, stats = data | d, stats | st
    return {k: data[k] for k in order}, {k: stats[k] for k in order}, name


def _sync(cfg: TransferConfig, log=print) -> None:
    if cfg.archive_dir:
        n = archive.sync(_root(cfg), cfg.archive_dir, log)
        if n:
            log(f"[archive] {n} new files in {cfg.archive_dir}")


def write_outputs(cfg: TransferConfig, rows: list[pd.DataFrame], extra: dict, t0: float, final: bool,
                  log=print) -> None:
    """Rows CSV, summary CSV, figure and JSON, moved into `cfg.out` together (``results.OutputSet``); the
    archive (``--archive``) brought up to date first. ``not_trained`` = the planned students without a record
    yet; the JSON is ``complete`` only at the end of a run (`final`) that left none of them out."""
    extra["not_trained"] = [k for k in extra.get("planned", []) if k not in extra["students"]]
    complete = final and not extra["not_trained"]
    _sync(cfg, log)
    if not rows:  # --stage train: students only, nothing evaluated yet
        return
    from subliminal.topic_b.transfer.plots import plot_transfer

    cols = COLUMNS + (["kl_start", "kl_end"] if cfg.route == "logits" else [])
    df = pd.concat(rows, ignore_index=True).reindex(columns=cols)  # train_tokens: empty for untrained models
    summary = summarize_transfer(df)
    stem = _stem(cfg)
    with OutputSet(cfg.out) as o:
        write_csv(df, o.path(f"{stem}.csv"))
        write_csv(summary, o.path(f"{stem}_summary.csv"))
        plot_transfer(summary, o.path(f"{stem}.png"))
        _write_kept(cfg, extra, o.path(f"{stem}_kept.csv"))
        write_run_json(o.path(f"{stem}.json"), cfg, cfg.seed, time.time() - t0,
                       {**_public(extra), "complete": complete})


def _student_dir(cfg: TransferConfig, arm: str, seed: int, settings: TrainSettings, extra: dict) -> Path:
    """Where the student of (arm, seed) lives: keyed by the arm's data hash, the settings and the seed."""
    h = extra["teachers"][arm]["data_hash"]
    sdir = _root(cfg) / "students" / f"{arm}-s{seed}-{config_hash([cfg.model, h, settings_id(settings), seed])}"
    return sdir.with_name(Arm.from_label(arm, route=cfg.route).student_prefix + sdir.name)


def _student(cfg, base, tok, arm, seed, examples, settings, extra, rows, animals, log, neutral) -> None:
    """Train (or reuse) one student, evaluate it, append its rows."""
    h = extra["teachers"][arm]["data_hash"]
    sdir = _student_dir(cfg, arm, seed, settings, extra)
    if cfg.stage == "eval" and finished(sdir, log=log) is None:
        return  # not trained (or not verified): listed in not_trained by write_outputs, never trained here
    logits = cfg.route == "logits"
    if logits:  # every arm distils on the neutral teacher's sequences: only the teacher's logits differ
        examples, h = neutral, extra["teachers"]["neutral"]["data_hash"]
    system = Arm.from_label(arm).system_prompt()
    tcache = _teacher_file(cfg, h, system) if logits else None
    rec = train_student(base, tok, examples, sdir, settings, seed, data_hash=h, log=log,
                        distill=logits, distill_system=system, teacher_cache=tcache)
    extra["students"][f"{arm}/s{seed}"] = rec
    if cfg.stage == "train":
        return
    student = load_student(copy.deepcopy(base), rec["adapter"])
    ev = _eval_cached(cfg, config_hash([rec["key"], cfg.eval_samples, cfg.seed, animals]), student, tok, animals, log,
                      extra["eval_seconds"])
    kl = _kl_columns(cfg, base, tok, h, system, rec) if logits else {}
    rows.append(ev.assign(model=cfg.model, arm=arm, trait=trait_of_arm(arm), seed=seed,
                          train_tokens=loss_tokens(tok, examples, settings.epochs), **kl))


def _teacher_file(cfg: TransferConfig, data_hash: str, system: str | None) -> Path:
    return _root(cfg) / "teacher_logits" / f"{config_hash([cfg.model, data_hash, system])}.safetensors"


def _kl_columns(cfg, base, tok, data_hash: str, system: str | None, rec: dict) -> dict:
    """Logits route: how much of its teacher's number-token distributions a student learned. kl_start: the
    exact KL(teacher || student at init) over every completion position (the student at init is the base
    model without a system prompt, i.e. the neutral teacher, so it comes from the two stored files);
    kl_end: the mean training loss of the last 10 steps (the same KL on those steps' batches)."""
    from subliminal.topic_b.sampling import end_ids
    from subliminal.topic_b.transfer.logits_route import allowed_ids, stored_kl, teacher_key

    allowed = allowed_ids(tok, end_ids(base, tok))
    neutral = Arm(NEUTRAL).system_prompt()
    start = stored_kl(_teacher_file(cfg, data_hash, system), teacher_key(data_hash, system, allowed),
                      _teacher_file(cfg, data_hash, neutral), teacher_key(data_hash, neutral, allowed))
    return {"kl_start": start, "kl_end": rec.get("mean_loss_last_10", float("nan"))}


def _trained(cfg: TransferConfig, arm: str) -> bool:
    """Whether any student of `arm` has finished (any seed, this route)."""
    prefix = Arm.from_label(arm, route=cfg.route).student_prefix + f"{arm}-s"
    return any((_root(cfg) / "students").glob(f"{prefix}*/train.json"))


def _record_data(extra: dict, stats: dict, matched: dict) -> None:
    for k, v in matched.items():
        extra["teachers"][k] = {**{x: y for x, y in stats[k].items() if x != "dir"},
                                "data_hash": data_hash(v), "shard_dir": stats[k]["dir"]}


def run(cfg: TransferConfig, device, log=print) -> dict:
    from subliminal.devices import fast_bf16
    from subliminal.topic_b.lm import load_model

    t0 = time.time()
    sealed.check_writable(_root(cfg))
    if cfg.archive_dir:
        log(f"[archive] {archive.restore(cfg.archive_dir, _root(cfg), log)} files restored from {cfg.archive_dir}")
    base, tok = load_model(cfg.model, device=str(device))
    animals = list(cfg.animals)
    extra: dict = {"teachers": {}, "students": {}, "eval_seconds": {}, "planned": [],
                   "eval_animals": animals, "bf16_autocast": cfg.bf16,
                   "neutral_draws_planned": len(neutral_draws(cfg)),  # what reporting's verdicts wait for
                   "native_bf16": fast_bf16(device)}
    if cfg.bf16 and not extra["native_bf16"]:
        log(f"[train] warning: --precision bf16 on a {device.type} without native bf16 matmuls (AVX512-BF16/AMX) "
            "is much slower than fp32")
    rows: list[pd.DataFrame] = []
    # ---- stage 1 for the owl set: neutral + first animal (+ the cross-model teacher)
    def progress(st):  # partial provenance while the (long) sampling runs
        _sync(cfg, log)
        if (Path(cfg.out) / f"{_stem(cfg)}_summary.csv").exists():
            return  # a table from an earlier run is there: its JSON stays beside it until this run rewrites both
        with OutputSet(cfg.out) as o:
            write_run_json(o.path(_stem(cfg) + ".json"), cfg, cfg.seed, time.time() - t0,
                           {**extra, "stage": "sampling teacher data", "complete": False,
                            "teachers": {k: {x: y for x, y in v.items() if x != "dir"} for k, v in st.items()}})

    data, stats, _ = animal_data(cfg, base, tok, animals[0], extra, rows, log, progress, with_neutral=True)
    if cfg.cross_model:
        tm, ttok = load_model(cfg.cross_model, device=str(device))
        # the cross model's own neutral teacher too: its numbers differ from the base model's, and fine-tuning
        # on them can move P(animal) by itself; cross_<animal> is compared with cross_neutral, not neutral
        cross, cstats = teacher_data(cfg, tm, ttok, [animals[0], "neutral"], cfg.cross_model, log)
        del tm
        for t in (animals[0], NEUTRAL):
            name = Arm(t, teacher_model=cfg.cross_model).label
            data[name], stats[name] = cross[t], cstats[t]
    data = _defend(cfg, base, tok, data, stats, extra)
    matched = match_arms({k: examples_of(v) for k, v in data.items()}, cfg.n_samples)
    n_train = extra["n_train_per_arm"] = len(next(iter(matched.values())))
    _record_data(extra, stats, matched)
    if cfg.route == "logits":
        for k in [k for k in matched if Arm.from_label(k).cross]:
            matched.pop(k)  # a teacher of another model has other logits: text only
    if cfg.stage == "data":
        for a in animals[1:]:
            d, st, name = animal_data(cfg, base, tok, a, extra, rows, log)
            d = _defend(cfg, base, tok, d, st, extra)
            _record_data(extra, st, {name: examples_of(d[name])[:n_train]})
        _sync(cfg, log)
        _write_kept(cfg, extra, Path(cfg.out) / f"{_stem(cfg)}_kept.csv")
        write_run_json(Path(cfg.out) / f"{_stem(cfg)}_data.json", cfg, cfg.seed, time.time() - t0,
                       {**_public(extra), "stage": "data", "complete": True})
        return extra
    # ---- stage 3 for the base model, then stages 2 + 3 per student, seed-major so a stopped run
    # still has seed-paired arms (neutral s0, owl s0, neutral s1, ...)
    settings = TrainSettings(epochs=cfg.epochs, bf16=cfg.bf16)
    others = [weight_teacher_name(a) if cfg.teacher == "weights" else a for a in animals[1:]]
    first = [*matched, *(n for n in neutral_draws(cfg) if n not in matched)]  # untrained draws too (--stage eval)
    extra["planned"] = [f"{arm}/s{seed}" for seed in cfg.seeds for arm in first] + \
        [f"{a}/s{seed}" for a in others for seed in cfg.seeds]
    if cfg.stage != "train":
        ev = _eval_cached(cfg, config_hash(["base", cfg.model, cfg.eval_samples, cfg.seed, animals]), base, tok,
                          animals, log, extra["eval_seconds"])
        rows.append(ev.assign(model=cfg.model, arm="base", trait="", seed=-1))
        write_outputs(cfg, rows, extra, t0, final=False, log=log)
    def other_animal(a: str):
        """(arm name, its n_train examples) of another animal's teacher, sampled on first use; None when it has
        too few valid samples (arms must match)."""
        d, st, name = animal_data(cfg, base, tok, a, extra, rows, log)
        d = _defend(cfg, base, tok, d, st, extra)
        if len(d[name]) < n_train:
            log(f"[data] {name}: only {len(d[name])} valid samples < {n_train}; arm skipped (arms must match)")
            return None
        _record_data(extra, st, {name: examples_of(d[name])[:n_train]})
        return name, examples_of(d[name])[:n_train]

    # students already trained (a rerun, or a run extended by an arm) are evaluated and reported first, so a
    # partial table never has fewer of them than the caches do
    ready = {a: other_animal(a) for a, name in zip(animals[1:], others) if _trained(cfg, name)}
    jobs = [(arm, seed, matched[arm]) for seed in cfg.seeds for arm in matched] + \
        [(o[0], seed, o[1]) for o in ready.values() if o for seed in cfg.seeds]
    done = [j for j in jobs if (_student_dir(cfg, j[0], j[1], settings, extra) / "train.json").exists()]
    for arm, seed, ex in done:
        _student(cfg, base, tok, arm, seed, ex, settings, extra, rows, animals, log, matched["neutral"])
    if done:
        write_outputs(cfg, rows, extra, t0, final=False, log=log)
    for seed in cfg.seeds:
        for arm in matched:
            if f"{arm}/s{seed}" in extra["students"]:
                continue
            _student(cfg, base, tok, arm, seed, matched[arm], settings, extra, rows, animals, log,
                     matched["neutral"])
            write_outputs(cfg, rows, extra, t0, final=False, log=log)
    # ---- the other animals: data, then students (same n_train: arms stay matched)
    for a, name in zip(animals[1:], others):
        if cfg.stage == "eval" and not _trained(cfg, name):
            continue  # evaluation only: an animal without a trained student needs no data either
        got = ready[a] if a in ready else other_animal(a)
        if got is None:
            continue
        for seed in cfg.seeds:
            if f"{got[0]}/s{seed}" in extra["students"]:
                continue
            _student(cfg, base, tok, got[0], seed, got[1], settings, extra, rows, animals, log,
                     matched["neutral"])
            write_outputs(cfg, rows, extra, t0, final=False, log=log)
    write_outputs(cfg, rows, extra, t0, final=True, log=log)
    return extra
