"""One ladder student: built from the teacher's initialisation (or a stated other one), trained to match the teacher
on the shared contexts, read at milestones; resumable at every milestone and, between milestones, from a checkpoint
kept every `CHECKPOINT_SECONDS` of training (the checkpoint and, beside it, the training losses so far: a resumed
student's record equals an uninterrupted one's but for its timings, which leave out the time lost to a kill). Its key and
record carry the evaluation rules it is read under (``rules.rules_id``).

Initialisation (`Arm.init`):
- shared: the base model and, for LoRA, the adapter the teacher's started from: its A matrices drawn from the
  teacher's seed, B = 0. So at step 0 the student *is* the base model, like the teacher before its training.
- adapter_cross: the same base, a LoRA adapter drawn from another seed (`cross_seed`): a LoRA update is B @ A, so
  this student moves in other row spaces than the teacher.
- noisy_base: the base with Gaussian noise on every weight (std `noise_scale` x that tensor's std), the
  teacher's adapter draw on top (Topic A's `--student-init-noise`).
Student seeds vary the contexts (their draw and order), never the adapter draw. Loss: KL to the teacher on the
contexts (full vocabulary or number tokens), or SFT on the teacher's own sampled lists (cell c). Parametrisation: LoRA (r, alpha
as the teacher's, on every projection) or every weight (`full`); optimiser: Adam (AdamW, no decay) or plain SGD;
gradient norm clipped at 1 either way.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from subliminal import carry
from subliminal.cache import config_hash, read_record, write_record
from subliminal.topic_b.arms import Arm, Init, Inputs, Loss, Optim, Param
from subliminal.topic_b.theory import inputs, losses, readouts, shared_class
from subliminal.topic_b.theory.rules import V1_RULES, record_rules, rules_id
from subliminal.topic_b.trainer import (
    all_weights,
    load_checkpoint,
    lora_model,
    optimiser,
    run_steps,
    save_checkpoint,
    trainable,
)
from subliminal.topic_b.transfer.finetune import TrainSettings

POOLED = (Inputs.neutral_text, Inputs.teacher)  # inputs drawn from a pool of sampled lists, not the random ones
LOSS_WINDOW = 10  # a milestone's "kl": the mean training loss over the last this many steps
LOSSES = "losses.json"  # beside a checkpoint: the training losses up to its step (a resume continues their mean)
CHECKPOINT_SECONDS = 300.0  # between milestones, a checkpoint after the first step this long after the last one


@dataclass(frozen=True)
class StudentSettings:
    steps: int = 60
    batch: int = 8  # contexts per optimiser step
    micro_batch: int = 8
    milestones: tuple[int, ...] = (10, 30, 60)  # readouts (and checkpoints) after these steps; the last is `steps`
    lr_lora_adam: float = 5e-4
    lr_lora_sgd: float = 5e-2
    lr_full_adam: float = 2e-5
    lr_full_sgd: float = 1e-3
    max_grad_norm: float = 1.0
    rank: int = 8
    alpha: int = 8
    cross_seed: int = 1000  # adapter_cross: the LoRA draw is cross_seed + the student seed
    noise_scale: float = 0.01  # noisy_base: noise std relative to each weight tensor's std

    def lr(self, arm: Arm) -> float:
        return {(Param.lora, Optim.adam): self.lr_lora_adam, (Param.lora, Optim.sgd): self.lr_lora_sgd,
                (Param.full, Optim.adam): self.lr_full_adam, (Param.full, Optim.sgd): self.lr_full_sgd}[(arm.param, arm.optim)]

    def all_milestones(self) -> list[int]:
        return sorted({m for m in self.milestones if 0 < m < self.steps} | {self.steps})

    def lora(self) -> TrainSettings:
        return TrainSettings(rank=self.rank, alpha=self.alpha)


def student_key(arm: Arm, seed: int, s: StudentSettings, teacher_key: str, base_id: str, inputs_id: str = "",
                rules: str = V1_RULES, teacher_base_id: str = "") -> str:
    """The student's identity; `inputs_id` names the context pool where it is not the random lists; `rules` the
    evaluation rules its readouts are made under (``rules.rules_id``). Rules enter the hash only when they are not
    ``V1_RULES``, so the students of before the rules id keep their keys (``rules.record_rules`` checks their
    stored lists instead). `teacher_base_id` names the teacher's base model where it is not the student's (a
    cross-base student, issue 44); it enters the hash only then."""
    ins = {"kind": arm.inputs, "stream": inputs.STREAM} | ({"pool": inputs_id} if inputs_id else {})
    return config_hash({"arm": arm.identity(), "seed": seed, "settings": asdict(s), "teacher": teacher_key,
                        "base": base_id, "inputs": ins} | ({"rules": rules} if rules != V1_RULES else {})
                       | ({"teacher_base": teacher_base_id} if teacher_base_id and teacher_base_id != base_id else {}))


def key_of(arm: Arm, seed: int, s: StudentSettings, teacher_key: str, base_id: str, pool: list[dict] | None,
           rules: str = V1_RULES, teacher_base_id: str = "") -> str:
    """`student_key` for a student trained on `pool` (None: the random lists)."""
    return student_key(arm, seed, s, teacher_key, base_id, inputs.pool_id(pool) if pool is not None else "", rules,
                       teacher_base_id)


def student_dir(root: Path, name: str, seed: int, settings: dict, teacher_key: str) -> Path:
    """A student's folder in the cache: its arm, seed and a hash of the settings and the teacher it trains under, so
    a run with other settings (``--quick``, ``--steps``) never reads or overwrites it."""
    tag = config_hash({"settings": settings, "teacher": teacher_key})[:8]
    return Path(root) / "students" / f"{name}-s{seed}-{tag}"


def lora_a(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_A." in n}


def build(base, arm: Arm, seed: int, s: StudentSettings, teacher_seed: int):
    """The student model at its initialisation (a copy: `base` is untouched)."""
    model = copy.deepcopy(base)
    if arm.init is Init.noisy_base:
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 29]).generate_state(1)[0]))
        with torch.no_grad():
            for p in model.parameters():
                if p.numel() > 1:
                    p.add_(torch.randn(p.shape, generator=g).to(p) * (s.noise_scale * float(p.float().std())))
    if arm.param is Param.full:
        return all_weights(model)
    draw = s.cross_seed + seed if arm.init is Init.adapter_cross else teacher_seed
    return lora_model(model, s.lora(), draw)


def deltas(model, arm: Arm, s: StudentSettings, init_state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    if arm.param is Param.full:
        return readouts.full_deltas(model, init_state)
    return readouts.lora_deltas(trainable(model), s.alpha / s.rank)


def _a_cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    if not a or a.keys() != b.keys():
        return float("nan")
    return readouts.cosine(*(torch.cat([d[k].flatten() for k in sorted(a)]) for d in (a, b)))


def finished(rec: dict | None, key: str, rules: str = V1_RULES) -> bool:
    """Whether `rec` is a finished student of this key, read under these evaluation rules (its folder then needs
    no training)."""
    return rec is not None and rec.get("key") == key and bool(rec.get("complete")) and record_rules(rec) == rules


def _stale(rec: dict, key: str, rules: str) -> bool:
    """Whether a record in the student's folder belongs to another student or was read under other rules."""
    return rec.get("key") != key or (bool(rec.get("milestones")) and record_rules(rec) != rules)


def _window_crosses(start: int, milestones: list[int], window: int = LOSS_WINDOW) -> bool:
    """Whether a milestone after `start` averages the loss over steps up to `start` (a resume then needs them)."""
    return any(m > start and m - window < start for m in milestones)


def _saved_losses(out_dir: Path, key: str, step: int) -> list[float] | None:
    """The training losses of steps 1..`step` kept beside the student's checkpoint of that step, or None. They are
    written before the checkpoint, so a kill between the two leaves more of them than the checkpoint's step."""
    saved = read_record(out_dir / LOSSES)
    if step and saved and saved.get("key") == key and len(saved.get("losses", [])) >= step:
        return [float(x) for x in saved["losses"][:step]]
    return None


def _drop_checkpoint(ckpt: Path, out_dir: Path) -> None:
    for p in (ckpt, ckpt.with_suffix(".json"), out_dir / LOSSES):
        p.unlink(missing_ok=True)


def train(base, tokenizer, teacher, arm: Arm, seed: int, s: StudentSettings, out_dir: Path, *, teacher_key: str,
          base_id: str, teacher_seed: int, teacher_init_a: dict[str, torch.Tensor],
          teacher_deltas: dict[str, dict[str, torch.Tensor]], questions=None, log: Callable = print,
          progress: bool = True, stop_after: int | None = None, pool: list[dict] | None = None,
          teacher_tok=None, teacher_base_id: str = "", targets_dir: Path | None = None,
          checkpoint_seconds: float = CHECKPOINT_SECONDS) -> dict:
    """Train (or resume, or read back) one student; its record: milestones with loss, cosines to every teacher's
    update, and the exact preference over the 25 animals. Contexts: the seed's random lists, or its draw from
    `pool` (the neutral teacher's lists for ``inputs == "neutral_text"``; the teacher's own, matched, for
    ``"teacher"``, cell c). Loss: a KL to `teacher` on those contexts, or (``sft``) their own tokens' CE. The
    shared-class KL (``shared_class_kl``) also takes a teacher of another base (`teacher_tok`, `teacher_base_id`):
    its targets are computed once per teacher and inputs and kept in `targets_dir` (the same for every student
    that reads them)."""
    out_dir = Path(out_dir)
    if (arm.inputs in POOLED) != (pool is not None):
        raise ValueError(f"{arm.name}: a pool of contexts goes with inputs in {POOLED} and only with them")
    cross = bool(teacher_base_id) and teacher_base_id != base_id
    if cross and arm.loss is not Loss.shared_class_kl:
        raise ValueError(f"{arm.name}: a teacher of another base model needs the shared-class KL (loss {arm.loss})")
    rules = rules_id(questions)
    key = key_of(arm, seed, s, teacher_key, base_id, pool, rules, teacher_base_id)
    rec_path, ckpt = out_dir / "record.json", out_dir / "checkpoint.safetensors"
    rec = read_record(rec_path)
    if finished(rec, key, rules):
        return rec
    if rec is None or _stale(rec, key, rules):
        if rec is not None and rec.get("key") == key:  # the same student read under other rules: start over
            log(f"[theory] {rec_path} was read under other evaluation rules; training {arm.name} s{seed} again")
            _drop_checkpoint(ckpt, out_dir)
        rec = {"key": key, "arm": arm.identity(), "name": arm.name, "seed": seed, "settings": asdict(s),
               "teacher_key": teacher_key, "milestones": {}, "complete": False}
        if cross:
            rec["teacher_base"] = teacher_base_id
    rec["rules"] = rules
    milestones = s.all_milestones()
    meta = read_record(ckpt.with_suffix(".json")) if ckpt.exists() else None
    at = int(meta.get("step", 0)) if meta and meta.get("key") == key else 0  # the checkpoint's step, if any
    saved = _saved_losses(out_dir, key, at)
    if at and saved is None and _window_crosses(at, milestones):
        log(f"[theory] {ckpt} keeps no training losses (written by an older version) and the next milestone's "
            f"loss needs them; training {arm.name} s{seed} again from step 0")
        _drop_checkpoint(ckpt, out_dir)
    device = next(base.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n = s.steps * s.batch
    contexts = inputs.draw(pool, seed, n) if pool is not None else inputs.random_lists(seed, n)
    data, objective = _objective(arm, base, tokenizer, teacher, contexts, pad, teacher_tok, teacher_key,
                                 teacher_base_id or base_id, targets_dir, log)
    model = build(base, arm, seed, s, teacher_seed)
    init_state = {n: p.detach().clone() for n, p in model.named_parameters()} if arm.param is Param.full else None
    rec["init_cos_a"] = (_a_cosine(lora_a(model), teacher_init_a) if arm.param is Param.lora and not cross
                         else float("nan"))
    opt = optimiser([p for p in model.parameters() if p.requires_grad], arm.optim, s.lr(arm))
    start = load_checkpoint(ckpt, model, opt, key)
    if start:
        log(f"[theory] resuming {arm.name} s{seed} at step {start}/{s.steps}")
    if arm.init is Init.noisy_base and "0" not in rec["milestones"]:
        rec["milestones"]["0"] = _readout(model, tokenizer, arm, s, init_state, teacher_deltas, questions, float("nan"))
    # the losses before `start`: a milestone's loss is their mean over the last LOSS_WINDOW steps, as uninterrupted
    step_losses = list(saved) if start and saved is not None and start == at else []
    t0 = time.time()
    t_mark = [t0]  # wall time (training and readouts) is summed into the record at each milestone
    t_saved = [t0]  # the last checkpoint's time: a kill between milestones loses at most `checkpoint_seconds`

    def keep(done: int) -> None:
        write_record(out_dir / LOSSES, {"key": key, "losses": step_losses})
        save_checkpoint(ckpt, model, opt, done, key)
        t_saved[0] = time.time()

    def on_step(done: int, loss: float, so_far) -> None:
        step_losses.append(loss)
        if done not in milestones:
            if time.time() - t_saved[0] >= checkpoint_seconds:
                keep(done)
            return
        model.eval()
        rec["milestones"][str(done)] = _readout(model, tokenizer, arm, s, init_state, teacher_deltas, questions,
                                                float(np.mean(step_losses[-LOSS_WINDOW:])))
        model.train()
        rec["complete"] = done == s.steps
        now = time.time()
        rec.update(tokens_per_s_last_run=round(so_far.tokens / max(now - t0, 1e-9), 1), device=device.type,
                   torch_version=torch.__version__, seconds=round(rec.get("seconds", 0.0) + now - t_mark[0], 1))
        t_mark[0] = now
        if not rec["complete"]:
            keep(done)
        elif arm.param is Param.lora:
            rec["adapter"] = keep_adapter(model, out_dir)
        write_record(rec_path, rec)

    model.train()
    run_steps(model, opt, objective, lambda step: data[step * s.batch:(step + 1) * s.batch], start=start,
              total=s.steps, micro_batch=s.micro_batch, max_grad_norm=s.max_grad_norm, stop_after=stop_after,
              on_step=on_step, desc=f"student {arm.name} s{seed}", progress=progress, postfix="kl")
    if rec["complete"]:
        _drop_checkpoint(ckpt, out_dir)
    return rec


def _objective(arm: Arm, base, tokenizer, teacher, contexts: list[dict], pad: int, teacher_tok, teacher_key: str,
               teacher_base_id: str, targets_dir: Path | None, log: Callable):
    """(items, objective) of the arm's loss on `contexts` (``losses``' objectives for ``trainer.run_steps``)."""
    if arm.loss is Loss.shared_class_kl:
        t_tok = teacher_tok or tokenizer
        data = shared_class.pair_items(tokenizer, t_tok, contexts)
        class_targets(teacher, t_tok, data, teacher_key, teacher_base_id, targets_dir, log)
        return data, losses.SharedClassKL(shared_class.digit_ids(tokenizer), pad)
    data = inputs.items(tokenizer, contexts)
    if arm.loss is Loss.sft:
        return data, losses.SFT(pad)
    return data, losses.TeacherKL(teacher, losses.vocabulary(arm.loss, base, tokenizer), pad)


def class_targets(teacher, t_tok, items: list[dict], teacher_key: str, teacher_base_id: str,
                  targets_dir: Path | None, log: Callable = print) -> torch.Tensor:
    """The teacher's shared-class targets on `items` (``shared_class.pair_items``), attached to them and returned:
    kept in `targets_dir` under a key of the teacher (its training key and base) and its side of the inputs, so
    every student and readout that reads the same teacher on the same inputs computes them once."""
    digits = shared_class.digit_ids(t_tok)
    pad = t_tok.pad_token_id if t_tok.pad_token_id is not None else 0
    key = shared_class.targets_key(config_hash({"teacher": teacher_key, "base": teacher_base_id}), items, digits)
    cache = Path(targets_dir) / f"targets-{key}.safetensors" if targets_dir is not None else None
    return shared_class.attach_targets(teacher, items, digits, pad, cache, key, log)


ADAPTER = "adapter_fp16.safetensors"


def keep_adapter(model, out_dir: Path) -> dict:
    """A finished LoRA student's final adapter (its trainable A and B matrices) in 16 bits beside its record in
    the cache, outside git: the record holds its SHA-256, so the student can be scored or probed again without
    retraining (``read_adapter``). A full fine-tuning student's update is the whole model: not kept."""
    return carry.keep_tensors(Path(out_dir) / ADAPTER, trainable(model))


def read_adapter(rec: dict, out_dir: Path) -> dict[str, torch.Tensor] | None:
    """The finished student's kept adapter when its file matches the record's SHA-256; None otherwise."""
    return carry.read_kept(out_dir, rec.get("adapter"))


@torch.no_grad()
def _readout(model, tokenizer, arm, s, init_state, teacher_deltas, questions, loss: float) -> dict:
    pref = readouts.preference(model, tokenizer, questions)
    d = deltas(model, arm, s, init_state)
    cos = {trait: readouts.cosines(d, td) for trait, td in teacher_deltas.items()}
    return {"kl": loss,
            "cos_all": {t: c.get("all", float("nan")) for t, c in cos.items()},
            "cos_layers": {t: readouts.by_layer(c) for t, c in cos.items()},
            "update_norm": float(torch.sqrt(sum((v.float() ** 2).sum() for v in d.values()))) if d else float("nan"),
            "questions": list(dict.fromkeys(pref.question)),
            "animals": list(dict.fromkeys(pref.animal)),
            "logp": pref.logp_animal.round(8).tolist()}
