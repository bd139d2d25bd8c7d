"""Topic A training: teachers on MNIST, students distilled on ghost logits, with milestones and caches.

`TopicA(cfg)` holds the data, the shared reference init and the cache. Teachers are cached per epoch
by a hash of everything that determines them (`teacher_key`); students are cached per condition and
milestone, with a checkpoint (weights + Adam state) at the last milestone, so an interrupted or
extended sweep continues where it stopped, and scripts that share a configuration share the work
(the baseline's students are exp1's 5-epoch milestone).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from subliminal.cache import config_hash, load_tensors, save_tensors
from subliminal.common import UserError, fast_bf16, get_device
from subliminal.results import atomic_write_text
from subliminal.topic_a import engine
from subliminal.topic_a.engine import (
    MLPShape,
    ParallelMLP,
    derangement,
    distill_loss,
    logit_index,
    make_adam,
    teacher_loss,
)
from subliminal.topic_a.inputs import ImageSource, NoiseSource, pixel_permutation
from subliminal.topic_a.mnist import ImageSet, load_fashion_mnist, load_mnist

# condition name → (student init, distilled logits). 'cross' = another model's init (a derangement).
CONDITIONS = {
    "student_aux": ("same", "aux"),
    "student_all": ("same", "all"),
    "cross_aux": ("cross", "aux"),
    "cross_all": ("cross", "all"),
}
SOURCES = ("uniform", "gaussian", "mnist", "mnist_shuffled", "fashion")


def _h(name: str, default, help: str):  # noqa: A002
    return field(default=default, metadata={"help": help})


@dataclass
class TopicAConfig:
    """Settings shared by every Topic A script (defaults = the reference experiment)."""

    n_models: int = _h("n_models", 25, "parallel models (each with its own init, teacher and students)")
    teacher_epochs: int = _h("teacher_epochs", 5, "teacher training epochs on MNIST")
    distill_epochs: int = _h("distill_epochs", 5, "student distillation epochs")
    hidden: int = _h("hidden", 256, "hidden width of both hidden layers")
    n_aux: int = _h("n_aux", 3, "number of auxiliary (ghost) logits m")
    init: str = _h("init", "reference", "weight init: reference = N(0, 1/sqrt(fan_in)), b = 0; torch = nn.Linear default")
    signed_inputs: bool = _h("signed_inputs", True, "images and noise in [-1, 1] (reference); --no-signed-inputs for [0, 1)")
    lr: float = _h("lr", 3e-4, "Adam learning rate (teacher and students)")
    weight_decay: float = _h("weight_decay", 0.0, "Adam weight decay for the students")
    teacher_weight_decay: float = _h("teacher_weight_decay", 0.0, "Adam weight decay for the teachers (torch Adam's "
                                     "coupled L2, as for the students; 0 = the reference)")
    student_init_noise: float = _h("student_init_noise", 0.0, "std of Gaussian noise added to every weight and bias of the students' copy of the init (0 = exact copy)")
    precision: str = _h("precision", "fp32", "fp32 | bf16: bf16 runs the training matmuls in bfloat16 under autocast "
                        "(weights, Adam, losses and evaluation stay fp32); ~2x faster on CPUs with AVX512-BF16 or AMX")
    batch_size: int = _h("batch_size", 1024, "batch size (teacher and students)")
    n_train: int = _h("n_train", 60_000, "MNIST training images for the teacher (≤ 60000; fewer for quick runs)")
    n_distill: int = _h("n_distill", 60_000, "distillation inputs per model per epoch")
    noise: str = _h("noise", "fixed", "noise regime: fixed = one set per model reused each epoch (reference); fresh = new every batch")
    noise_shared: bool = _h("noise_shared", False, "one noise batch shared by all models instead of one per model")
    seed: int = _h("seed", 0, "seed for inits, data order, noise and the cross-model derangement")
    device: str = _h("device", "auto", "auto | cpu | cuda")
    out: str = _h("out", "plots_a", "output directory for CSV / PNG / JSON")
    data_root: str = _h("data_root", "", "torchvision-style MNIST root with IDX files (default: $MNIST_ROOT, then the verified offline asset)")
    cache_dir: str = _h("cache_dir", "", "teacher/student cache (default: $SUBLIMINAL_CACHE/topic_a)")

    def validate(self) -> None:
        checks = [
            (self.n_models >= 2, "--n-models must be at least 2 (the cross-model control needs two inits)"),
            (self.teacher_epochs >= 0 and self.distill_epochs >= 0, "epochs must be ≥ 0"),
            (self.hidden >= 1 and self.n_aux >= 1, "--hidden and --n-aux must be ≥ 1"),
            (self.init in ("reference", "torch"), "--init must be reference or torch"),
            (0 < self.n_train <= 60_000, "--n-train must be in 1..60000"),
            (self.n_distill >= 1 and self.batch_size >= 1, "--n-distill and --batch-size must be ≥ 1"),
            (self.noise in ("fixed", "fresh"), "--noise must be fixed or fresh"),
            (self.lr > 0 and self.weight_decay >= 0 and self.teacher_weight_decay >= 0,
             "--lr must be > 0 and --weight-decay, --teacher-weight-decay ≥ 0"),
            (self.precision in ("fp32", "bf16"), "--precision must be fp32 or bf16"),
            (self.student_init_noise >= 0, "--student-init-noise must be ≥ 0"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"), "--device must be auto, cpu or cuda"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(msg)


def _fingerprint(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


class TopicA:
    """Data, reference init, cached teachers and students for one Topic A configuration."""

    def __init__(self, cfg: TopicAConfig, mnist: ImageSet | None = None, progress: bool = True):
        cfg.validate()
        self.cfg = cfg
        self.device = get_device(cfg.device)
        self.progress = progress
        self.mnist = mnist if mnist is not None else load_mnist(cfg.data_root or None)
        signed = cfg.signed_inputs
        self.x_train = self.mnist.float_inputs("train", signed)[: cfg.n_train].to(self.device)
        self.y_train = self.mnist.train_y[: cfg.n_train].to(self.device)
        self.x_test = self.mnist.float_inputs("test", signed).to(self.device)
        self.y_test = self.mnist.test_y.to(self.device)
        self.shape = MLPShape(cfg.n_models, 784, cfg.hidden, cfg.n_aux)
        root = cfg.cache_dir or os.path.join(os.environ.get("SUBLIMINAL_CACHE", Path.home() / ".cache" / "subliminal"), "topic_a")
        self.cache = Path(root).expanduser()
        self.data_fp = _fingerprint(self.mnist.train_x[: cfg.n_train]) + _fingerprint(self.mnist.train_y[: cfg.n_train])
        self._reference: ParallelMLP | None = None
        if cfg.precision == "bf16" and not fast_bf16(self.device):
            log("warning: --precision bf16 on a CPU without native bf16 matmuls (AVX512-BF16/AMX) is slower than fp32")

    def _autocast(self):
        """bf16 autocast around training forwards when --precision bf16 (a no-op for fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    def _precision_key(self) -> dict:
        # only when set, so that every existing fp32 cache key stays the same
        return {"precision": self.cfg.precision} if self.cfg.precision != "fp32" else {}

    # ------------------------------------------------------------------ keys
    def teacher_key(self) -> str:
        c = self.cfg
        return config_hash({"engine": engine.ENGINE_VERSION, "shape": dataclasses.asdict(self.shape), "init": c.init,
                            "signed": c.signed_inputs, "lr": c.lr, "batch": c.batch_size, "seed": c.seed,
                            "data": self.data_fp, **self._precision_key(),
                            # only when set, so that every existing cache key stays the same
                            **({"wd": c.teacher_weight_decay} if c.teacher_weight_decay else {})})

    def cross_permutation(self) -> torch.Tensor:
        return derangement(self.cfg.n_models, torch.Generator().manual_seed(self.cfg.seed + 1))

    # ------------------------------------------------------------------ models
    def reference(self) -> ParallelMLP:
        if self._reference is None:
            g = torch.Generator().manual_seed(self.cfg.seed)
            self._reference = ParallelMLP(self.shape).init_(g, self.cfg.init).to(self.device)
        return self._reference

    def _teacher_path(self, epoch: int) -> Path:
        return self.cache / "teachers" / self.teacher_key() / f"ep{epoch:03d}.safetensors"

    def _cached_teacher_epochs(self) -> list[int]:
        d = self.cache / "teachers" / self.teacher_key()
        return sorted(int(p.stem[2:]) for p in d.glob("ep*.safetensors")) if d.exists() else []

    def teachers(self, epochs: Iterable[int]) -> dict[int, ParallelMLP]:
        """Teachers after each of `epochs` training epochs, from one training run (cached snapshots)."""
        out: dict[int, ParallelMLP] = {}
        missing = []
        for e in sorted(set(epochs)):
            if e == 0:
                out[0] = self.reference().copy()
                continue
            snap = ParallelMLP(self.shape).to(self.device)
            if self._load_snapshot(self._teacher_path(e), snap, None, {"epoch": e}):
                out[e] = snap
            else:
                missing.append(e)
        if missing:
            model = self.reference().copy()
            opt = make_adam(model, self.cfg.lr, self.cfg.teacher_weight_decay)
            start = 0
            # resume from the latest cached snapshot before the first missing epoch
            for e in reversed([e for e in self._cached_teacher_epochs() if e < missing[0]]):
                if self._load_snapshot(self._teacher_path(e), model, opt, {"epoch": e}):
                    start = e
                    break
            self._train_teacher(model, opt, start, missing[-1], set(missing), out)
        return out

    def teacher(self, epochs: int) -> ParallelMLP:
        return self.teachers([epochs])[epochs]

    def _train_teacher(self, model, opt, start: int, end: int, save_at: set[int], out: dict) -> None:
        n = self.x_train.shape[0]
        nb = -(-n // self.cfg.batch_size)
        bar = tqdm(total=(end - start) * nb, desc=f"teacher epochs {start}→{end}", disable=not self.progress,
                   unit="step", leave=False)
        for epoch in range(start, end):
            order = torch.from_numpy(np.random.default_rng([self.cfg.seed, 1, epoch]).permutation(n)).to(self.device)
            for i in range(0, n, self.cfg.batch_size):
                idx = order[i:i + self.cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                with self._autocast():
                    logits = model(self.x_train[idx])
                teacher_loss(logits.float(), self.y_train[idx]).backward()
                opt.step()
                bar.update(1)
            if epoch + 1 in save_at:
                self._save_snapshot(self._teacher_path(epoch + 1), model, opt, {"epoch": epoch + 1, "key": self.teacher_key()})
                out[epoch + 1] = model.copy()
        bar.close()

    # ------------------------------------------------------------------ snapshots (weights + Adam state)
    @staticmethod
    def _opt_tensors(model: ParallelMLP, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        t = {}
        for name, p in model.named_parameters():
            st = opt.state.get(p)
            if st:
                for k in ("exp_avg", "exp_avg_sq", "step"):
                    t[f"adam.{name}.{k}"] = st[k].detach().reshape(-1) if k == "step" else st[k].detach()
        return t

    def _save_snapshot(self, path: Path, model: ParallelMLP, opt, meta: dict) -> None:
        save_tensors(path, {**model.state(), **self._opt_tensors(model, opt)}, meta)

    def _load_snapshot(self, path: Path, model: ParallelMLP, opt, expect: dict) -> bool:
        got = load_tensors(path, expect)
        if got is None:
            return False
        tensors, _ = got
        model.load_state({k: tensors[k].to(self.device) for k in engine.PARAM_NAMES})
        if opt is None:
            return True
        for name, p in model.named_parameters():
            if f"adam.{name}.exp_avg" in tensors:
                opt.state[p] = {
                    "step": tensors[f"adam.{name}.step"].reshape(()).clone(),
                    "exp_avg": tensors[f"adam.{name}.exp_avg"].to(self.device).clone(),
                    "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].to(self.device).clone(),
                }
        return True

    # ------------------------------------------------------------------ distillation inputs
    def source(self, name: str = "uniform", **noise_overrides):
        c = self.cfg
        if name in ("uniform", "gaussian"):
            kw = {"regime": c.noise, "shared": c.noise_shared, "n_images": c.n_distill, **noise_overrides}
            return NoiseSource(name, c.n_models, c.seed, c.signed_inputs, n_per_epoch=c.n_distill,
                               batch_size=c.batch_size, **kw)
        if name == "mnist":
            return ImageSource("mnist", self.x_train[: c.n_distill], c.seed, c.batch_size)
        if name == "mnist_shuffled":
            return ImageSource("mnist_shuffled", self.x_train[: c.n_distill][:, pixel_permutation(c.seed).to(self.device)],
                               c.seed, c.batch_size)
        if name == "fashion":
            f = load_fashion_mnist()
            if f is None:
                raise UserError("Fashion-MNIST not found (install Debian's dataset-fashion-mnist or set FASHION_MNIST_ROOT)")
            return ImageSource("fashion", f.float_inputs("train", c.signed_inputs)[: c.n_distill].to(self.device),
                               c.seed, c.batch_size)
        raise UserError(f"unknown distillation input {name!r}; choose from {', '.join(SOURCES)}")

    # ------------------------------------------------------------------ students
    def student_key(self, teacher_epochs: int, condition: str, src) -> str:
        c = self.cfg
        return config_hash({"teacher": self.teacher_key(), "teacher_epochs": teacher_epochs, "condition": condition,
                            "source": src.describe(), "lr": c.lr, "wd": c.weight_decay, "batch": c.batch_size,
                            "seed": c.seed, "engine": engine.ENGINE_VERSION,
                            # only when set, so that every existing cache key stays the same
                            **({"init_noise": c.student_init_noise} if c.student_init_noise else {}),
                            **self._precision_key()})

    def distill(self, teacher_epochs: int, conditions: Sequence[str], milestones: Sequence[int],
                source: str | object = "uniform", teacher: ParallelMLP | None = None) -> pd.DataFrame:
        """Distil students under `conditions` and evaluate them at each milestone (distillation epochs).

        Returns one row per condition × model × milestone. Cached milestones are read, not recomputed.
        """
        for cond in conditions:
            if cond not in CONDITIONS:
                raise UserError(f"unknown condition {cond!r}; choose from {', '.join(CONDITIONS)}")
        src = self.source(source) if isinstance(source, str) else source
        milestones = sorted(set(int(m) for m in milestones))
        state = {}
        for cond in conditions:
            d = self.cache / "students" / self.student_key(teacher_epochs, cond, src)
            res_path = d / "results.json"
            results = json.loads(res_path.read_text()) if res_path.exists() else {}
            state[cond] = {"dir": d, "results": results}
        todo = [c for c in conditions if any(str(m) not in state[c]["results"] for m in milestones)]
        if todo:
            teacher = teacher if teacher is not None else self.teacher(teacher_epochs)
            self._run_students(teacher, todo, milestones, src, state)
        rows = []
        for cond in conditions:
            for m in milestones:
                for i, acc in enumerate(state[cond]["results"][str(m)]):
                    rows.append({"condition": cond, "model": i, "teacher_epochs": teacher_epochs,
                                 "distill_epochs": m, "accuracy": acc})
        return pd.DataFrame(rows)

    def _new_student(self, cond: str) -> ParallelMLP:
        init_kind, _ = CONDITIONS[cond]
        ref = self.reference()
        student = ParallelMLP(self.shape).to(self.device)
        student.load_state(ref.state(), None if init_kind == "same" else self.cross_permutation().to(self.device))
        if self.cfg.student_init_noise:
            # one seeded draw (the same for every condition), from a stream no other generator here uses
            g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.cfg.seed, 29]).generate_state(1)[0]))
            with torch.no_grad():
                for k in engine.PARAM_NAMES:
                    p = getattr(student, k)
                    p.add_((torch.randn(p.shape, generator=g) * self.cfg.student_init_noise).to(self.device))
        return student

    def _run_students(self, teacher: ParallelMLP, conds: list[str], milestones: list[int], src, state: dict) -> None:
        # Resume each condition from its checkpoint; conditions at the same start epoch train together
        # so the teacher's targets for a batch are computed once and shared.
        groups: dict[int, list] = {}
        for cond in conds:
            student = self._new_student(cond)
            opt = make_adam(student, self.cfg.lr, self.cfg.weight_decay)
            start = 0
            ck = state[cond]["dir"] / "ckpt.safetensors"
            side = ck.with_suffix(".json")
            needed = [m for m in milestones if str(m) not in state[cond]["results"]]
            if side.exists():
                ep = json.loads(side.read_text()).get("epoch", 0)
                # resume only when no needed milestone lies before the checkpoint
                if ep <= needed[0] and self._load_snapshot(ck, student, opt, {"epoch": ep}):
                    start = ep
            groups.setdefault(start, []).append((cond, student, opt))
        for start, members in sorted(groups.items()):
            end = max(m for m in milestones if any(str(m) not in state[c]["results"] for c, _, _ in members))
            if end <= start:
                continue
            names = ",".join(c for c, _, _ in members)
            bar = tqdm(total=(end - start) * src.n_batches(), desc=f"distil {names} ep {start}→{end}",
                       disable=not self.progress, unit="step", leave=False)
            for epoch in range(start, end):
                for x in src.batches(epoch):
                    x = x.to(self.device, non_blocking=True)
                    with torch.no_grad(), self._autocast():
                        t_logits = teacher(x).float()
                    t_lp = {}
                    for cond, student, opt in members:
                        sel = logit_index(CONDITIONS[cond][1], self.cfg.n_aux)
                        key = (sel.start, sel.stop)
                        if key not in t_lp:
                            t_lp[key] = torch.log_softmax(t_logits[..., sel], dim=-1)
                        opt.zero_grad(set_to_none=True)
                        with self._autocast():
                            s_logits = student(x)[..., sel]
                        distill_loss(s_logits.float(), t_lp[key]).backward()
                        opt.step()
                    bar.update(1)
                if epoch + 1 in milestones:
                    for cond, student, opt in members:
                        st = state[cond]
                        st["results"][str(epoch + 1)] = student.accuracy(self.x_test, self.y_test).cpu().tolist()
                        self._save_snapshot(st["dir"] / "ckpt.safetensors", student, opt, {"epoch": epoch + 1})
                        atomic_write_text(st["dir"] / "results.json", json.dumps(st["results"]))
            bar.close()

    def teacher_accuracy(self, model: ParallelMLP) -> list[float]:
        return model.accuracy(self.x_test, self.y_test).cpu().tolist()


def accuracy_rows(condition: str, accs: Sequence[float], **cols) -> list[dict]:
    return [{"condition": condition, "model": i, **cols, "accuracy": a} for i, a in enumerate(accs)]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
