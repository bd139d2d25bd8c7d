"""Stage 2, the student: LoRA fine-tuning (peft) on user prompt -> teacher completion, loss on the completion.

The student sees the chat template with the user prompt and *no* system prompt (whatever the template
does without one, exactly what the neutral teacher saw), followed by the teacher's completion and the
template's end of turn. Labels are -100 on every prompt token. Defaults follow the official open-model
config (MinhxLe/subliminal-learning ``cfgs/preference_numbers/open_model_cfgs.py``): LoRA r=8, alpha=8 on
q,k,v,o,gate,up,down (the model table's ``lora_targets``, ``topic_b/models.py``); AdamW lr 2e-4, linear decay
after 5 warm-up steps; effective batch 66 (the official 22 x 3, here 6 x 11 accumulation to fit CPU memory); max
grad norm 1; 3 epochs. The seed sets the LoRA init and the data order.

Plain transformers + peft + torch: the loop runs unchanged on a GPU (``--device cuda``); with
``TrainSettings.bf16`` the forward passes run under bf16 autocast (weights and optimizer stay fp32; the run's
``--precision bf16``), and the student's key says so. A checkpoint
(adapter weights, AdamW moments, step; safetensors with a checksum, no pickle) is written every
`ckpt_every` optimizer steps; a rerun resumes from it and ends at the same weights as an uninterrupted
run. The finished adapter is saved in the standard PEFT format (``adapter_config.json`` +
``adapter_model.safetensors``) and ``train.json`` (written last) marks it done; each is sealed with its
SHA-256 (``sealed.py``) and a student is reused only when all of them match (``finished``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from subliminal.cache import config_hash
from subliminal.topic_b.sampling import end_ids
from subliminal.topic_b.trainer import (  # noqa: F401 (lora_model, load/save_checkpoint: read through this module)
    load_checkpoint,
    lora_model,
    optimiser,
    quiet_peft,
    run_steps,
    save_checkpoint,
)
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.logits_route import (
    allowed_ids,
    attach_teacher,
    distill_item,
    distill_loss,
    teacher_key,
)
from subliminal.topic_b.transfer.padding import pad_sequences
from subliminal.topic_b.transfer.prompts import student_text, tokenize_example  # noqa: F401 (tests, bench import them here)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # what PEFT needs to load an adapter


@dataclass(frozen=True)
class TrainSettings:
    rank: int = 8
    alpha: int = 8
    lr: float = 2e-4
    warmup_steps: int = 5
    epochs: int = 3
    micro_batch: int = 6  # 6 x 11 = 66 = the official 22 x 3, in ~3 GB instead of ~12 GB (fp32 CPU)
    grad_accum: int = 11
    max_grad_norm: float = 1.0
    ckpt_every: int = 4  # ~6 min of 2-core CPU time at the default size: a stopped session loses little
    bf16: bool = False  # bf16 autocast around the forward passes (weights and optimizer stay fp32)


def settings_id(s: TrainSettings) -> dict:
    """The settings that name a student (its cache key): all but `ckpt_every`, which does not change the
    weights (a resumed run ends where an uninterrupted one does). It is hashed at 20, its value before it
    stopped counting, so students trained then keep their keys; `bf16` enters only when on, so fp32
    students keep theirs too and a bf16 student never shares a key (or a checkpoint) with an fp32 one."""
    d = {**asdict(s), "ckpt_every": 20}
    if not d["bf16"]:
        del d["bf16"]
    return d


def loss_tokens(tokenizer, examples: list[dict], epochs: int) -> int:
    """Tokens that carry a loss over the whole fine-tune: completion (+ end of turn) tokens x epochs."""
    return epochs * sum(sum(x != -100 for x in tokenize_example(tokenizer, ex)[1]) for ex in examples)


def step_plan(n: int, s: TrainSettings, seed: int) -> list[list[int]]:
    """Example indices of every optimizer step: a fresh permutation per epoch (seeded), cut into steps."""
    per = s.micro_batch * s.grad_accum
    plan = []
    for e in range(s.epochs):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1009 + e)).tolist()
        plan += [perm[i: i + per] for i in range(0, n, per)]
    return plan


def _collate(items: list[tuple[list[int], list[int]]], pad: int, device) -> dict:
    ids, att = pad_sequences([i for i, _ in items], pad)
    lab, _ = pad_sequences([la for _, la in items], -100)
    return {"input_ids": ids.to(device), "labels": lab.to(device), "attention_mask": att.to(device)}


def completion_loss(model, batch: dict) -> torch.Tensor:
    """Mean cross-entropy over the completion tokens. Same value as the model's own loss, but the output
    head (~20% of SmolLM2's weights) runs only where a label is, not on every prompt position."""
    hidden = model.get_base_model().model(input_ids=batch["input_ids"],
                                          attention_mask=batch["attention_mask"]).last_hidden_state
    lab = batch["labels"][:, 1:]
    keep = lab != -100
    logits = model.get_base_model().lm_head(hidden[:, :-1][keep]).float()
    return torch.nn.functional.cross_entropy(logits, lab[keep])


@dataclass(frozen=True)
class TextCE:
    """The text route's objective: cross-entropy of the completion tokens (``completion_loss``). Items: (tokenized
    example, unused)."""

    pad: int
    device: torch.device

    def length(self, item) -> int:
        return len(item[0][0])

    def tokens(self, micro: list) -> int:
        return sum(len(x[0][0]) for x in micro)

    def loss(self, model, micro: list) -> torch.Tensor:
        return completion_loss(model, _collate([x[0] for x in micro], self.pad, self.device))


@dataclass(frozen=True)
class NumberKL:
    """The logits route's objective: KL to the teacher's number-token distributions attached to each item
    (``logits_route.distill_loss``). Items: (tokenized example, distillation item); sorted and counted by the
    tokenized example, as the text route."""

    allowed: torch.Tensor
    pad: int

    def length(self, item) -> int:
        return len(item[0][0])

    def tokens(self, micro: list) -> int:
        return sum(len(x[0][0]) for x in micro)

    def loss(self, model, micro: list) -> torch.Tensor:
        return distill_loss(model, [x[1] for x in micro], self.allowed, self.pad)


def train_student(base, tokenizer, examples: list[dict], out_dir: Path, s: TrainSettings, seed: int, *,
                  data_hash: str, stop_after: int | None = None, log=print,
                  distill: bool = False, distill_system: str | None = None, teacher_cache: Path | None = None,
                  progress: bool = True) -> dict:
    """Fine-tune a LoRA student on `examples`; resumable. Returns the train.json record (also written).
    With `distill` the objective is the logits route's (``logits_route.distill_loss``: match the
    base model's number-token distributions under that system prompt) instead of cross-entropy on the text;
    `teacher_cache` is the file where those distributions are kept for the next seed (see
    ``logits_route.attach_teacher``; it must be specific to the base model)."""
    out_dir = Path(out_dir)
    key = train_key(s, seed, data_hash, distill, distill_system)
    rec = finished(out_dir, key, log)
    if rec is not None:  # the adapter is where this record is (a restored copy moved both)
        return {**rec, "adapter": str(out_dir / "adapter")}
    flags = [(p, p.requires_grad) for p in base.parameters()]
    modes = [(m, m.training) for m in base.modules()]
    try:
        return _train(base, tokenizer, examples, out_dir, s, seed, key, data_hash, stop_after, log, distill,
                      distill_system, teacher_cache, progress)
    finally:  # peft froze every base weight, the loop ends in eval mode, a stop leaves LoRA layers in:
        # `base` goes back exactly as it came (weights, requires_grad, train/eval mode)
        if hasattr(base, "peft_config") or any("lora_" in n for n, _ in base.named_parameters()):
            _strip_lora(base)
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def train_key(s: TrainSettings, seed: int, data_hash: str, distill: bool = False,
              distill_system: str | None = None) -> str:
    """A fine-tune's key (its train.json's ``key``): settings, seed, data and, on the logits route, the teacher's
    system prompt."""
    return config_hash({"settings": settings_id(s), "seed": seed, "data": data_hash}
                       | ({"distill_system": distill_system} if distill else {}))


def recorded(out_dir: Path, key: str, log=print) -> dict | None:
    """The verified train.json record of `key` in `out_dir`, whether or not its adapter is there (a student
    restored from its record, ``carried.py``, whose evaluation is on record needs none); None otherwise."""
    done = Path(out_dir) / "train.json"
    raw = sealed.read_sealed(done, log) if done.exists() else None
    try:
        rec = json.loads(raw) if raw is not None else None
    except ValueError:
        rec = None
    return rec if isinstance(rec, dict) and rec.get("key") == key else None


def finished(out_dir: Path, key: str | None = None, log=print) -> dict | None:
    """The train.json record of a finished student (of `key` when given) whose record and adapter files all
    match the checksums written with them (``sealed.py``); None otherwise, with one line when something is
    there but unverified (the student is then trained again, never used)."""
    done = Path(out_dir) / "train.json"
    raw = sealed.read_sealed(done, log) if done.exists() else None
    if raw is None:
        return None
    try:
        rec = json.loads(raw)
    except ValueError:
        rec = None
    if not isinstance(rec, dict) or (key is not None and rec.get("key") != key):
        return None
    adapter = Path(out_dir) / "adapter"
    if not all((adapter / f).is_file() for f in ADAPTER_FILES):
        log(f"[cache] {adapter} lacks {' or '.join(ADAPTER_FILES)}; training the student again")
        return None
    return rec if sealed.verify_tree(adapter, log) else None


def _strip_lora(base) -> None:
    from peft.tuners.lora import LoraLayer

    for name, mod in list(base.named_modules()):
        if isinstance(mod, LoraLayer):
            parent = base.get_submodule(name.rsplit(".", 1)[0]) if "." in name else base
            setattr(parent, name.rsplit(".", 1)[-1], mod.get_base_layer())
    if hasattr(base, "peft_config"):  # else the next get_peft_model(base) finds a stale adapter config
        del base.peft_config


def _train(base, tokenizer, examples, out_dir: Path, s: TrainSettings, seed: int, key: str, data_hash: str,
           stop_after, log, distill: bool, distill_system, teacher_cache, progress: bool) -> dict:
    done = out_dir / "train.json"
    device = next(base.parameters()).device
    data = [tokenize_example(tokenizer, ex) for ex in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if distill:  # the teacher (base weights + system prompt) is fixed: its distributions once, before LoRA
        items = [distill_item(tokenizer, ex, distill_system) for ex in examples]
        allowed = allowed_ids(tokenizer, end_ids(base, tokenizer))
        attach_teacher(base, items, allowed, pad, teacher_cache, teacher_key(data_hash, distill_system, allowed), log)
    model = lora_model(base, s, seed)
    model.train()
    opt = optimiser([p for p in model.parameters() if p.requires_grad], "adam", s.lr)
    plan = step_plan(len(data), s, seed)
    total = len(plan)

    def lr_at(step: int) -> float:  # linear warm-up (1/5, 2/5, ...; transformers starts at 0), linear decay
        if step < s.warmup_steps:
            return (step + 1) / max(1, s.warmup_steps) if s.warmup_steps else 1.0
        return max(0.0, (total - step) / max(1, total - s.warmup_steps))

    ckpt = out_dir / "checkpoint.safetensors"
    start = load_checkpoint(ckpt, model, opt, key)
    if start:
        log(f"[train] resuming {out_dir.name} at step {start}/{total}")
    objective = (NumberKL(allowed, pad) if distill else TextCE(pad, device))
    pairs = [(d, items[i] if distill else None) for i, d in enumerate(data)]

    def on_step(done: int, loss: float, so_far) -> None:
        if done % s.ckpt_every == 0 and done < total:
            save_checkpoint(ckpt, model, opt, done, key)
        if done % 10 == 0 or done == total:
            log(f"[train] {out_dir.name}: step {done}/{total} loss {loss:.4f} "
                f"{so_far.tokens / max(so_far.seconds, 1e-9):.0f} tokens/s")

    ran = run_steps(model, opt, objective, lambda step: [pairs[i] for i in plan[step]], start=start, total=total,
                    micro_batch=s.micro_batch, max_grad_norm=s.max_grad_norm, lr=s.lr, schedule=lr_at, bf16=s.bf16,
                    stop_after=stop_after, on_step=on_step, desc=f"train {out_dir.name}", progress=progress)
    if ran.stopped_at is not None:
        save_checkpoint(ckpt, model, opt, ran.stopped_at, key)
        return {"stopped_at": ran.stopped_at}
    losses, ntok, secs = ran.losses, ran.tokens, ran.seconds
    adapter = out_dir / "adapter"
    model.save_pretrained(adapter)
    sealed.seal_tree(adapter)  # hashed as written: a later edit or bit flip is caught before it is used
    model.eval()
    check = completion_logp(model, data[0], pad, device)  # a reload must give this back (tests, provenance)
    model.unload()  # take the LoRA layers out of `base` again
    rec = {"key": key, "adapter": str(adapter), "data_hash": data_hash, "seed": seed, "settings": asdict(s),
           "bf16_autocast": s.bf16, "n_examples": len(data), "steps": total, "steps_this_run": total - start,
           "tokens_this_run": ntok, "seconds_this_run": round(secs, 1),
           "tokens_per_s": round(ntok / max(secs, 1e-9), 1), "final_loss": losses[-1] if losses else math.nan,
           "mean_loss_last_10": sum(losses[-10:]) / max(1, len(losses[-10:])),
           "check_completion_logp_example0": check,
           "objective": "logits" if distill else "text",
           "device": device.type, "torch_version": torch.__version__}  # provenance only: not in the key
    sealed.write_sealed(done, (json.dumps(rec, indent=1) + "\n").encode())
    ckpt.unlink(missing_ok=True)
    ckpt.with_suffix(".json").unlink(missing_ok=True)
    return rec


@torch.no_grad()
def completion_logp(model, item: tuple[list[int], list[int]], pad: int, device) -> float:
    """Sum of log p(label token) over the completion of one tokenized example (fp32)."""
    batch = _collate([item], pad, device)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0, :-1].float()
    lab = batch["labels"][0, 1:]
    keep = lab != -100
    return float(torch.log_softmax(logits[keep], -1).gather(1, lab[keep, None]).sum())


def load_student(base, adapter: str | Path):
    """base + adapter, merged (plain module for scoring). `base` is modified in place: pass a fresh copy."""
    from peft import PeftModel

    with quiet_peft():
        return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().eval()
