"""Stages 2 and 3 of a run: each student trained (or reused from its cache) and evaluated right after it, the
outputs rewritten after every student (``"complete": false`` until the end).

Order: the students already trained (a rerun, or a run extended by an arm) are evaluated and reported first, so a
partial table never has fewer of them than the caches do; then the owl set seed-major (neutral s0, owl s0,
neutral_2 s0, ..., neutral s1, ...), so a stopped run still has seed-paired arms; then each further animal's
data and students, seed by seed (same n_train: arms stay matched).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from subliminal.cache import config_hash, load_tensors
from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.sampling import end_ids
from subliminal.topic_b.transfer import carried
from subliminal.topic_b.transfer.arm import label
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.eval_cache import cached_table, eval_cached, eval_key
from subliminal.topic_b.transfer.finetune import finished, load_student, loss_tokens, recorded, train_key, train_student
from subliminal.topic_b.transfer.logits_route import allowed_ids, attach_teacher, distill_item, stored_kl, teacher_key
from subliminal.topic_b.transfer.outputs import write_outputs
from subliminal.topic_b.transfer.plan import Plan, root, student_dir, trained
from subliminal.topic_b.transfer.record import Session, Student, student_key
from subliminal.topic_b.transfer.teachers import other_animal


def teacher_file(cfg: TransferConfig, data_hash: str, system: str | None) -> Path:
    """Logits route: where a teacher's number-token log-probs on the neutral sequences are cached."""
    return root(cfg) / "teacher_logits" / f"{config_hash([cfg.model, data_hash, system])}.safetensors"


def kl_columns(s: Session, data_hash: str, system: str | None, rec: dict, sdir: Path, examples: list[dict]) -> dict:
    """Logits route: how much of its teacher's number-token distributions a student learned. kl_start: the
    exact KL(teacher || student at init) over every completion position (the student at init is the base
    model without a system prompt, i.e. the neutral teacher, so it comes from the two stored files: recomputed
    from `examples`, the neutral sequences, when missing; or the student's record); kl_end: the mean training
    loss of the last 10 steps (the same KL on those steps' batches)."""
    end = rec.get("mean_loss_last_10", float("nan"))
    on_record = (carried.kept_body(s.cfg, sdir) or {}).get("kl_start")
    if isinstance(on_record, float) and math.isfinite(on_record):
        return {"kl_start": on_record, "kl_end": end}
    allowed = allowed_ids(s.tok, end_ids(s.base, s.tok))
    pad = s.tok.pad_token_id if s.tok.pad_token_id is not None else 0
    systems = list(dict.fromkeys((system, Arm(NEUTRAL).system_prompt())))
    files = [(teacher_file(s.cfg, data_hash, x), teacher_key(data_hash, x, allowed)) for x in systems]
    for x, (f, key) in zip(systems, files):  # an artefact outside the records: recomputed when missing
        if load_tensors(f, {"key": key}) is None:
            attach_teacher(s.base, [distill_item(s.tok, ex, x) for ex in examples], allowed, pad, f, key, s.log)
    return {"kl_start": stored_kl(*files[0], *files[-1]), "kl_end": end}


def evaluate_student(s: Session, plan: Plan, student: Student, rec: dict, examples: list[dict], data_hash: str,
                     sdir: Path):
    """Stage 3 for one trained student: its evaluation table (cached; the student is loaded only to compute it),
    its rows appended, its record kept with the logits route's kl_start."""
    cfg, (arm, seed), animals = s.cfg, student, list(s.cfg.animals)
    ev = eval_cached(cfg, eval_key(cfg, rec["key"]), None, s.tok, animals, s.log, s.record.eval_seconds,
                     load=lambda: load_student(copy.deepcopy(s.base), rec["adapter"]))
    kl = kl_columns(s, data_hash, arm.system_prompt(), rec, sdir, examples) if cfg.route == "logits" else {}
    carried.keep_trained(cfg, sdir, {"kl_start": kl["kl_start"]} if math.isfinite(kl.get("kl_start", math.nan)) else None)
    s.rows.append(ev.assign(model=cfg.model, arm=label(arm), trait="" if arm.neutral else arm.trait, seed=seed,
                            train_tokens=loss_tokens(s.tok, examples, plan.settings.epochs), **kl))


def data_hash_of(s: Session, arm: Arm) -> str:
    return s.record.teachers[arm]["data_hash"]


def student_path(s: Session, plan: Plan, student: Student) -> Path:
    return student_dir(s.cfg, student, data_hash_of(s, student[0]), plan.settings)


def train_and_evaluate(s: Session, plan: Plan, student: Student, examples: list[dict], neutral: list[dict]) -> None:
    """Train (or reuse) one student, evaluate it, append its rows. The logits route distils every arm on the
    neutral teacher's sequences (`neutral`): only the teacher's logits differ. A student on record (its
    train.json) is reused without its adapter when its evaluation is on record too; else it needs its adapter,
    and is trained again without one (never under --stage eval)."""
    arm, seed = student
    sdir = student_path(s, plan, student)
    h, logits = data_hash_of(s, arm), s.cfg.route == "logits"
    if logits:
        examples, h = neutral, data_hash_of(s, plan.neutral)
    system = arm.system_prompt()
    key = train_key(plan.settings, seed, h, logits, system)
    rec = recorded(sdir, key, s.log if s.cfg.stage == "eval" else carried.quiet)
    evaluated = s.cfg.stage == "train" or cached_table(s.cfg, eval_key(s.cfg, key), s.log) is not None
    if rec is None or not (evaluated or finished(sdir, key, s.log) is not None):
        if s.cfg.stage == "eval":
            return  # not trained (or not verified): listed in not_trained by write_outputs, never trained here
        rec = train_student(s.base, s.tok, examples, sdir, plan.settings, seed, data_hash=h, log=s.log,
                            distill=logits, distill_system=system,
                            teacher_cache=teacher_file(s.cfg, h, system) if logits else None)
    rec = {**rec, "adapter": str(sdir / "adapter")}
    s.record.students[student] = rec
    if s.cfg.stage == "train":
        carried.keep_trained(s.cfg, sdir)
    else:
        evaluate_student(s, plan, student, rec, examples, h, sdir)


def next_student(s: Session, plan: Plan, student: Student, examples: list[dict], neutral: list[dict]) -> None:
    """One student not in the record yet: trained, evaluated, and the outputs rewritten."""
    if student in s.record.students:
        return
    train_and_evaluate(s, plan, student, examples, neutral)
    write_outputs(s, final=False)


def train_students(s: Session, plan: Plan, owl_set: dict[Arm, list[dict]]) -> None:
    """Every planned student, in the module's order (the caller evaluated the base model first)."""
    neutral = owl_set[plan.neutral]
    ready = {a: other_animal(s, a) for a in plan.others if trained(s.cfg, a)}
    jobs = [((arm, seed), owl_set[arm]) for seed in plan.seeds for arm in owl_set] + \
        [((a, seed), ex) for a, ex in ready.items() if ex is not None for seed in plan.seeds]
    done = [j for j in jobs if (student_path(s, plan, j[0]) / "train.json").exists()]
    done.sort(key=lambda j: s.written.get(student_key(j[0]), len(jobs)))  # stable: then the plan's order
    for student, examples in done:
        train_and_evaluate(s, plan, student, examples, neutral)
    if done:
        write_outputs(s, final=False)
    for seed in plan.seeds:
        for arm in owl_set:
            next_student(s, plan, (arm, seed), owl_set[arm], neutral)
    for a in plan.others:
        if s.cfg.stage == "eval" and not trained(s.cfg, a):
            continue  # evaluation only: an animal without a trained student needs no data either
        examples = ready[a] if a in ready else other_animal(s, a)
        if examples is None:
            continue
        for seed in plan.seeds:
            next_student(s, plan, (a, seed), examples, neutral)
