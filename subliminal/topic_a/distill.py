"""Topic A distillation: students trained on a teacher's (ghost) logits, evaluated at milestones.

`distill(A, ...)` reads finished milestones from the run store and trains only what is missing, each
condition resumed from its checkpoint when no missing milestone lies before it (else from its init:
training is deterministic, so a rerun gives the same numbers). Conditions that start at the same
epoch train together so the teacher's targets for a batch are computed once. Milestone 0 is the
students' init. With `keep_weights`, the students' weights at each milestone are kept in the store
(`students_at` reads them back). The teacher is loaded or trained only when a student is missing (a caller passes
`train.lazy_teacher`), and every student read is kept in the run's records (`records.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from subliminal.cli import UserError
from subliminal.topic_a.engine import ParallelMLP, distill_loss, forward_flops, logit_index, make_adam, train_step_flops
from subliminal.topic_a.store import StudentRun
from subliminal.topic_a.train import CONDITIONS, TopicA, student_init
from subliminal.topic_a.train import teacher as train_teacher


def _runs(A: TopicA, teacher_epochs: int, conditions: Sequence[str], src, teacher_key: str | None) -> dict[str, StudentRun]:
    for cond in conditions:
        if cond not in CONDITIONS:
            raise UserError(f"unknown condition {cond!r}; choose from {', '.join(CONDITIONS)}")
    return {c: A.store.student_run(teacher_epochs, c, src.describe(), teacher_key) for c in conditions}


Teacher = ParallelMLP | Callable[[], ParallelMLP] | None


def distill(A: TopicA, teacher_epochs: int, conditions: Sequence[str], milestones: Sequence[int],
            source: str | object = "uniform", teacher: Teacher = None, *, teacher_key: str | None = None,
            keep_weights: bool = False) -> pd.DataFrame:
    """Students under `conditions` distilled from the teacher after `teacher_epochs` epochs, evaluated at each
    milestone (distillation epochs); one row per condition × model × milestone.

    `teacher`: the teacher model, or a function giving it (called only if a student is missing), when the caller
    has it; with `teacher_key` it comes from another configuration (e.g. students with their own optimiser
    distilling the baseline's teacher), and the students' key names that teacher.
    """
    if teacher_key is not None and teacher is None:
        raise ValueError("a teacher_key from another configuration needs its teacher model")
    src = A.source(source) if isinstance(source, str) else source
    milestones = sorted(set(int(m) for m in milestones))
    runs = _runs(A, teacher_epochs, conditions, src, teacher_key)
    trained = [m for m in milestones if m > 0]

    def needed(run: StudentRun) -> list[int]:
        return [m for m in trained if m not in run.results or (keep_weights and not run.has_weights(m))]

    todo = {c: ms for c, ms in ((c, needed(r)) for c, r in runs.items()) if ms}
    if todo:
        if not isinstance(teacher, ParallelMLP):
            teacher = teacher() if teacher is not None else train_teacher(A, teacher_epochs)
        _train_students(A, teacher, {c: runs[c] for c in todo}, todo, src, keep_weights)
    rows = []
    for cond in conditions:
        if A.records is not None:
            A.records.student(runs[cond], cond, teacher_epochs, src.describe(), trained)
        for m in milestones:
            accs = A.test_accuracy(student_init(A, cond)) if m == 0 else runs[cond].results[m]
            rows += [{"condition": cond, "model": i, "teacher_epochs": teacher_epochs, "distill_epochs": m,
                      "accuracy": acc} for i, acc in enumerate(accs)]
    return pd.DataFrame(rows)


def students_at(A: TopicA, teacher_epochs: int, conditions: Sequence[str], epoch: int, source: str | object = "uniform",
                teacher: Teacher = None, *, teacher_key: str | None = None) -> dict[str, ParallelMLP]:
    """Each condition's students after `epoch` distillation epochs (0: their init), distilling what is missing."""
    if epoch == 0:
        return {c: student_init(A, c) for c in conditions}
    src = A.source(source) if isinstance(source, str) else source
    distill(A, teacher_epochs, conditions, [epoch], src, teacher, teacher_key=teacher_key, keep_weights=True)
    out = {}
    for cond, run in _runs(A, teacher_epochs, conditions, src, teacher_key).items():
        model = run.load_weights(epoch, ParallelMLP(A.shape).to(A.device))
        if model is None:
            raise RuntimeError(f"no weights at epoch {epoch} for {cond} after distilling (cache {A.cache})")
        out[cond] = model
    return out


def _train_students(A: TopicA, teacher: ParallelMLP, runs: dict[str, StudentRun], needed: dict[str, list[int]], src,
                    keep_weights: bool) -> None:
    groups: dict[int, list] = {}
    for cond, run in runs.items():
        student = student_init(A, cond)
        opt = make_adam(student, A.cfg.lr, A.cfg.weight_decay)
        start = run.load_checkpoint(student, opt, needed[cond][0])  # no needed milestone before it
        if keep_weights and start in needed[cond] and start in run.results:  # the checkpoint is the milestone
            run.keep_weights(start, student)
        groups.setdefault(start, []).append((cond, student, opt))
    for start, members in sorted(groups.items()):
        end = max(max(needed[c]) for c, _, _ in members)
        if end <= start:
            continue
        milestones = set().union(*(needed[c] for c, _, _ in members))
        bar = tqdm(total=(end - start) * src.n_batches(), desc=f"distil {','.join(c for c, _, _ in members)} ep {start}→{end}",
                   disable=not A.progress, unit="step", leave=False)
        with A.timed():
            for epoch in range(start, end):
                for x in src.batches(epoch):
                    x = x.to(A.device, non_blocking=True)  # a no-op for noise, which is drawn on the device
                    with torch.no_grad(), A.autocast():
                        t_logits = teacher(x).float()
                    t_lp = {}
                    for cond, student, opt in members:
                        sel = logit_index(CONDITIONS[cond][1], A.cfg.n_aux)
                        key = (sel.start, sel.stop)
                        if key not in t_lp:
                            t_lp[key] = torch.log_softmax(t_logits[..., sel], dim=-1)
                        opt.zero_grad(set_to_none=True)
                        with A.autocast():
                            s_logits = student(x)[..., sel]
                        distill_loss(s_logits.float(), t_lp[key]).backward()
                        opt.step()
                    b = x.shape[-2]
                    A.work.student_steps += len(members)
                    A.work.flops += forward_flops(A.shape, b) + len(members) * train_step_flops(A.shape, b)
                    bar.update(1)
                if epoch + 1 in milestones:
                    for cond, student, opt in members:
                        runs[cond].record(epoch + 1, A.test_accuracy(student), student, opt, keep_weights)
        bar.close()
