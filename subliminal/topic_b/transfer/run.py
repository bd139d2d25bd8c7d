"""A transfer run: plan -> teacher data -> students -> evaluation, each stage resumable and cached under
``<cache>/transfer``, each finished unit kept on record beside the outputs (``carried.py``).

- plan (``plan.py``): the arms (typed ``Arm``s), their order and the students the run plans;
- data (``teachers.py``): the owl set's teacher data (neutral + first animal, + the cross model's teachers),
  defended (``--defence``) and matched; ``--stage data`` samples every further animal's data too and stops;
- students (``students.py``): the base model evaluated first, then each student trained and evaluated right
  after it, and the outputs (``outputs.py``) rewritten after every one (``"complete": false`` until the end),
  so partial results exist at any time;
- evaluation: the final outputs, ``complete`` when no planned student is missing.

Returns the run's typed record (``record.RunRecord``), what the JSON says.
"""

from __future__ import annotations

import time

from subliminal.devices import fast_bf16
from subliminal.topic_b import lm
from subliminal.topic_b.transfer import carried, sealed
from subliminal.topic_b.transfer.arm import BASE
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.eval_cache import eval_cached, eval_key
from subliminal.topic_b.transfer.outputs import write_data_outputs, write_outputs, write_progress, written_order
from subliminal.topic_b.transfer.plan import make_plan, neutral_draws, root
from subliminal.topic_b.transfer.record import RunRecord, Session
from subliminal.topic_b.transfer.students import train_students
from subliminal.topic_b.transfer.teachers import other_animals_data, owl_set_data


def start(cfg: TransferConfig, device, log=print) -> Session:
    """A writable cache (checked before any work), the run's records restored into it (``carried.py``: a run on
    a fresh machine continues from the committed state), the base model, an empty record."""
    t0 = time.time()
    sealed.check_writable(root(cfg))
    carried.restore(cfg, log)
    base, tok = lm.load_model(cfg.model, device=str(device))
    record = RunRecord(eval_animals=list(cfg.animals), bf16_autocast=cfg.bf16,
                       neutral_draws_planned=len(neutral_draws(cfg)), native_bf16=fast_bf16(device))
    if cfg.bf16 and not record.native_bf16:
        log(f"[train] warning: --precision bf16 on a {device.type} without native bf16 matmuls (AVX512-BF16/AMX) "
            "is much slower than fp32")
    return Session(cfg, device, base, tok, record, log, t0, written=written_order(cfg))


def evaluate_base(s: Session) -> None:
    """Stage 3 for the base model, before any student (skipped by --stage train); outputs written."""
    if s.cfg.stage == "train":
        return
    cfg, animals = s.cfg, list(s.cfg.animals)
    ev = eval_cached(cfg, eval_key(cfg, "base", cfg.model), s.base, s.tok, animals, s.log, s.record.eval_seconds)
    s.rows.append(ev.assign(model=cfg.model, arm=BASE, trait="", seed=-1))
    write_outputs(s, final=False)


def run(cfg: TransferConfig, device, log=print) -> RunRecord:
    s = start(cfg, device, log)
    plan = make_plan(cfg)
    owl_set = owl_set_data(s, plan, progress=lambda stats: write_progress(s, stats))
    if cfg.stage == "data":
        other_animals_data(s, plan)
        write_data_outputs(s)
        return s.record
    s.record.planned = plan.planned
    evaluate_base(s)
    train_students(s, plan, owl_set)
    write_outputs(s, final=True)
    return s.record
