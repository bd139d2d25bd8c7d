"""Topic A training: teachers on MNIST, and the run context that students are distilled in (`distill.py`).

`TopicA(cfg)` is one configuration's context: the data on its device, the shared reference init, the
distillation inputs and the run store (`store.RunStore`: keys, snapshots, results). Teachers are
trained by `teachers(A, epochs)`, one run snapshotted per epoch, resumed from the latest snapshot;
`student_init(A, condition)` is a student's starting point. `teacher_accuracy(A, epochs)` reads a teacher's
recorded accuracies, so a run whose students are all finished (`records.py`) needs no teacher weights.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from subliminal.assets import cache_home
from subliminal.cache import log
from subliminal.cli import UserError
from subliminal.devices import available_memory, fast_bf16, get_device
from subliminal.results import cpu_name
from subliminal.topic_a import engine
from subliminal.topic_a.engine import MLPShape, ParallelMLP, derangement, make_adam, teacher_loss, train_step_flops
from subliminal.topic_a.inputs import ImageSource, NoiseSource, pixel_permutation
from subliminal.topic_a.mnist import MNIST_TEST_SIZE, ImageSet, load_fashion_mnist, load_mnist
from subliminal.topic_a.records import RunRecords
from subliminal.topic_a.store import RunStore, fingerprint

__all__ = ["CONDITIONS", "SOURCES", "TopicA", "TopicAConfig", "Work", "accuracy_rows", "device_name", "lazy_teacher", "log",
           "student_init", "teacher", "teacher_accuracy", "teachers"]

# condition name → (student init, distilled logits). 'cross' = another model's init (a derangement).
CONDITIONS = {
    "student_aux": ("same", "aux"),
    "student_all": ("same", "all"),
    "cross_aux": ("cross", "aux"),
    "cross_all": ("cross", "all"),
}
SOURCES = ("uniform", "gaussian", "mnist", "mnist_shuffled", "fashion")


def _h(default, help: str):  # noqa: A002
    return field(default=default, metadata={"help": help})


@dataclass
class TopicAConfig:
    """Settings shared by every Topic A script (defaults = the reference experiment)."""

    n_models: int = _h(25, "parallel models (each with its own init, teacher and students)")
    teacher_epochs: int = _h(5, "teacher training epochs on MNIST")
    distill_epochs: int = _h(5, "student distillation epochs")
    hidden: int = _h(256, "hidden width of both hidden layers")
    n_aux: int = _h(3, "number of auxiliary (ghost) logits m")
    init: str = _h("reference", "weight init: reference = N(0, 1/sqrt(fan_in)), b = 0; torch = nn.Linear default")
    signed_inputs: bool = _h(True, "images and noise in [-1, 1] (reference); --no-signed-inputs for [0, 1)")
    lr: float = _h(3e-4, "Adam learning rate (teacher and students)")
    weight_decay: float = _h(0.0, "Adam weight decay for the students")
    teacher_weight_decay: float = _h(0.0, "Adam weight decay for the teachers (torch Adam's "
                                     "coupled L2, as for the students; 0 = the reference)")
    student_init_noise: float = _h(0.0, "std of Gaussian noise added to every weight and bias of the students' copy of the init (0 = exact copy)")
    precision: str = _h("fp32", "fp32 | bf16: bf16 runs the training matmuls in bfloat16 under autocast "
                        "(weights, Adam, losses and evaluation stay fp32); ~2x faster on CPUs with AVX512-BF16 or AMX")
    batch_size: int = _h(1024, "batch size (teacher and students)")
    n_train: int = _h(60_000, "MNIST training images for the teacher (≤ 60000; fewer for quick runs)")
    n_distill: int = _h(60_000, "distillation inputs per model per epoch")
    noise: str = _h("fixed", "noise regime: fixed = one set per model reused each epoch (reference); fresh = new every batch")
    noise_shared: bool = _h(False, "one noise batch shared by all models instead of one per model")
    seed: int = _h(0, "seed for inits, data order, noise and the cross-model derangement")
    device: str = _h("auto", "auto | cpu | cuda")
    out: str = _h("plots_a", "output directory for CSV / PNG / JSON")
    data_root: str = _h("", "torchvision-style MNIST root with IDX files (default: $MNIST_ROOT, then the verified offline asset)")
    cache_dir: str = _h("", "teacher/student cache (default: $SUBLIMINAL_CACHE/topic_a)")

    def validate(self) -> None:
        checks = [
            (self.n_models >= 2, "--n-models must be at least 2 (the cross-model control needs two inits)"),
            (self.teacher_epochs >= 0 and self.distill_epochs >= 0,
             "--teacher-epochs and --distill-epochs must be ≥ 0 (0 distillation epochs = the students' init)"),
            (self.hidden >= 1 and self.n_aux >= 1, "--hidden and --n-aux must be ≥ 1"),
            (self.init in ("reference", "torch"), "--init must be reference or torch"),
            (0 < self.n_train <= 60_000, "--n-train must be in 1..60000"),
            (self.n_distill >= 1 and self.batch_size >= 1, "--n-distill and --batch-size must be ≥ 1"),
            (self.noise in ("fixed", "fresh"), "--noise must be fixed or fresh"),
            (0 <= self.seed < 2**32, "--seed must be in 0..4294967295"),
            (all(math.isfinite(v) for v in (self.lr, self.weight_decay, self.teacher_weight_decay, self.student_init_noise))
             and self.lr > 0 and self.weight_decay >= 0 and self.teacher_weight_decay >= 0,
             "--lr must be > 0 and --weight-decay, --teacher-weight-decay ≥ 0 (finite numbers)"),
            (self.precision in ("fp32", "bf16"), "--precision must be fp32 or bf16"),
            (self.student_init_noise >= 0, "--student-init-noise must be ≥ 0"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"), "--device must be auto, cpu or cuda"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(msg)
        limits = [(self.n_models <= 100_000, "--n-models must be ≤ 100000"), (self.hidden <= 65_536, "--hidden must be ≤ 65536"),
                  (self.n_aux <= 10_000, "--n-aux must be ≤ 10000"), (self.batch_size <= 1_000_000, "--batch-size must be ≤ 1000000"),
                  (self.n_distill <= 10_000_000, "--n-distill must be ≤ 10000000 (the reference is 60000)"),
                  (self.teacher_epochs <= 1000 and self.distill_epochs <= 10_000,
                   "--teacher-epochs must be ≤ 1000 and --distill-epochs ≤ 10000")]
        for ok, msg in limits:
            if not ok:
                raise UserError(msg)
        need, have, where = self.memory_needed(), *_memory_available(self.device)
        if have and need > have:
            raise UserError(f"this configuration needs about {need / 2**30:.1f} GiB of {where} memory but {have / 2**30:.1f} GiB "
                            "is available; lower --n-models, --hidden or --batch-size")

    def memory_needed(self) -> int:
        """Bytes a run holds at once, roughly: the reference init, a teacher with Adam, 4 students with Adam and
        gradients, the MNIST inputs, and one batch's activations through teacher and students (the kept noise set
        is extra only where it fits: `inputs.pool_budget`)."""
        per_model = 784 * self.hidden + self.hidden * self.hidden + self.hidden * (10 + self.n_aux) + 2 * self.hidden + 10 + self.n_aux
        weights = self.n_models * per_model * 4 * (2 + 4 + 4 * 4)
        acts = self.n_models * self.batch_size * (784 + 6 * self.hidden + 4 * (10 + self.n_aux)) * 4 * 2
        return weights + acts + 70_000 * 784 * 4


def _memory_available(device: str) -> tuple[int, str]:
    """(bytes available, 'GPU' or 'CPU') where the run trains; 0 where unknown."""
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(torch.device(device if device != "auto" else "cuda")).total_memory, "GPU"
        return 0, "GPU"
    return available_memory() or 0, "CPU"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = cpu_name()
    return f"cpu ({model}, {torch.get_num_threads()} threads)" if model else f"cpu ({torch.get_num_threads()} threads)"


@dataclass
class Work:
    """What a run's training loops did: optimiser steps (each over all N models), their FLOPs and their wall time
    (the device synchronised at the end of each loop, never inside it). Shared by the configurations of one run."""

    teacher_steps: int = 0
    student_steps: int = 0
    flops: float = 0.0
    seconds: float = 0.0

    def summary(self, device: torch.device) -> dict:
        steps = self.teacher_steps + self.student_steps
        return {"device": str(device), "device_name": device_name(device),
                "cuda": torch.version.cuda if device.type == "cuda" else None,
                "teacher_steps": self.teacher_steps, "student_steps": self.student_steps,
                "train_seconds": round(self.seconds, 2),
                "steps_per_s": round(steps / self.seconds, 2) if self.seconds else None,
                "train_gflops_per_s": round(self.flops / self.seconds / 1e9, 1) if self.seconds else None}


class TopicA:
    """One configuration's data, reference init, distillation inputs and run store; `records`: the run's records
    folder (`records.RunRecords`, shared by the configurations of one run), where finished units are kept."""

    def __init__(self, cfg: TopicAConfig, mnist: ImageSet | None = None, progress: bool = True, work: Work | None = None,
                 records: RunRecords | None = None):
        cfg.validate()
        self.cfg = cfg
        self.records = records
        self.device = get_device(cfg.device)
        self.progress = progress
        self.work = work if work is not None else Work()
        self.mnist = mnist if mnist is not None else load_mnist(cfg.data_root or None)
        _check_data(self.mnist, cfg)
        signed = cfg.signed_inputs
        self.x_train = self.mnist.float_inputs("train", signed)[: cfg.n_train].to(self.device)
        self.y_train = self.mnist.train_y[: cfg.n_train].to(self.device)
        self.x_test = self.mnist.float_inputs("test", signed).to(self.device)
        self.y_test = self.mnist.test_y.to(self.device)
        self.shape = MLPShape(cfg.n_models, 784, cfg.hidden, cfg.n_aux)
        root = cfg.cache_dir or cache_home() / "topic_a"
        data_fp = fingerprint(self.mnist.train_x[: cfg.n_train], self.mnist.train_y[: cfg.n_train])
        self.store = RunStore(Path(root), cfg, self.shape, data_fp)
        self._reference: ParallelMLP | None = None
        if cfg.precision == "bf16" and not fast_bf16(self.device):
            log("warning: --precision bf16 on a CPU without native bf16 matmuls (AVX512-BF16/AMX) is slower than fp32")

    @property
    def cache(self) -> Path:
        return self.store.root

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Count a training loop's wall time in `work` (one device sync at its end)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.work.seconds += time.perf_counter() - t

    def autocast(self):
        """bf16 autocast around training forwards when --precision bf16 (a no-op for fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    def reference(self) -> ParallelMLP:
        """The shared init: model i's teacher and same-init students start from model i here."""
        if self._reference is None:
            g = torch.Generator().manual_seed(self.cfg.seed)
            self._reference = ParallelMLP(self.shape).init_(g, self.cfg.init).to(self.device)
        return self._reference

    def cross_permutation(self) -> torch.Tensor:
        return derangement(self.cfg.n_models, torch.Generator().manual_seed(self.cfg.seed + 1))

    def test_accuracy(self, model: ParallelMLP) -> list[float]:
        return model.accuracy(self.x_test, self.y_test).cpu().tolist()

    def source(self, name: str = "uniform", **noise_overrides):
        """The distillation inputs called `name` (one of SOURCES) for this configuration."""
        c = self.cfg
        if name in ("uniform", "gaussian"):
            kw = {"regime": c.noise, "shared": c.noise_shared, "n_images": c.n_distill, **noise_overrides}
            return NoiseSource(name, c.n_models, c.seed, c.signed_inputs, n_per_epoch=c.n_distill,
                               batch_size=c.batch_size, device=str(self.device), **kw)
        if name in ("mnist", "mnist_shuffled") and c.n_distill > c.n_train:
            raise UserError(f"--n-distill {c.n_distill} exceeds --n-train {c.n_train}: the {name} inputs are the "
                            "teacher's training images; lower --n-distill or raise --n-train")
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


def _check_data(mnist: ImageSet, cfg: TopicAConfig) -> None:
    """Refuse a training set smaller than asked for; warn loudly about a test set that is not MNIST's."""
    if len(mnist.train_y) < cfg.n_train:
        raise UserError(f"--n-train {cfg.n_train} but {mnist.source} has only {len(mnist.train_y)} training images; "
                        "lower --n-train or point --data-root at the full MNIST")
    if len(mnist.test_y) != MNIST_TEST_SIZE:
        log(f"WARNING: {mnist.source} has {len(mnist.test_y)} test images, not MNIST's {MNIST_TEST_SIZE}: "
            "accuracies are not comparable with the README's")


def student_init(A: TopicA, condition: str) -> ParallelMLP:
    """The students' starting weights under `condition`: the reference init (same) or another model's (cross),
    plus --student-init-noise."""
    if condition not in CONDITIONS:
        raise UserError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    student = ParallelMLP(A.shape).to(A.device)
    same = CONDITIONS[condition][0] == "same"
    student.load_state(A.reference().state(), None if same else A.cross_permutation().to(A.device))
    if A.cfg.student_init_noise:
        # one seeded draw (the same for every condition), from a stream no other generator here uses
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([A.cfg.seed, 29]).generate_state(1)[0]))
        with torch.no_grad():
            for k in engine.PARAM_NAMES:
                p = getattr(student, k)
                p.add_((torch.randn(p.shape, generator=g) * A.cfg.student_init_noise).to(A.device))
    return student


# ---------------------------------------------------------------------- teachers
def teachers(A: TopicA, epochs: Iterable[int]) -> dict[int, ParallelMLP]:
    """Teachers after each of `epochs` training epochs, from one training run (snapshots in the store)."""
    out: dict[int, ParallelMLP] = {}
    missing = []
    for e in sorted(set(epochs)):
        snap = A.reference().copy() if e == 0 else ParallelMLP(A.shape).to(A.device)
        if e == 0 or A.store.load_teacher(e, snap):
            out[e] = snap
        else:
            missing.append(e)
    if missing:
        model = A.reference().copy()
        opt = make_adam(model, A.cfg.lr, A.cfg.teacher_weight_decay)
        start = 0
        # resume from the latest snapshot before the first missing epoch
        for e in reversed([e for e in A.store.teacher_epochs() if e < missing[0]]):
            if A.store.load_teacher(e, model, opt):
                start = e
                break
        _train_teacher(A, model, opt, start, missing[-1], set(missing), out)
    return out


def teacher(A: TopicA, epochs: int) -> ParallelMLP:
    return teachers(A, [epochs])[epochs]


def lazy_teacher(A: TopicA, epochs: int) -> Callable[[], ParallelMLP]:
    """The teacher after `epochs` epochs, loaded or trained at the first call only (a run whose students are
    finished never calls it)."""
    return functools.cache(lambda: teacher(A, epochs))


def teacher_accuracy(A: TopicA, epochs: int, model: Callable[[], ParallelMLP] | None = None) -> list[float]:
    """The test accuracies of the teacher after `epochs` epochs: recorded in the store, else measured on the teacher
    (`model()`, default: loaded or trained) and recorded; kept in the run's records."""
    accs = A.store.teacher_accuracy(epochs)
    body = A.store.save_teacher_accuracy(epochs, A.test_accuracy((model or lazy_teacher(A, epochs))())) if accs is None \
        else {"key": A.store.teacher_key(), "epoch": epochs, "accuracy": accs}
    if A.records is not None:
        A.records.teacher(body)
    return body["accuracy"]


def _train_teacher(A: TopicA, model: ParallelMLP, opt, start: int, end: int, save_at: set[int], out: dict) -> None:
    c = A.cfg
    n = A.x_train.shape[0]
    bar = tqdm(total=(end - start) * -(-n // c.batch_size), desc=f"teacher epochs {start}→{end}", disable=not A.progress,
               unit="step", leave=False)
    with A.timed():
        for epoch in range(start, end):
            order = torch.from_numpy(np.random.default_rng([c.seed, 1, epoch]).permutation(n)).to(A.device)
            for i in range(0, n, c.batch_size):
                idx = order[i:i + c.batch_size]
                opt.zero_grad(set_to_none=True)
                with A.autocast():
                    logits = model(A.x_train[idx])
                teacher_loss(logits.float(), A.y_train[idx]).backward()
                opt.step()
                A.work.teacher_steps += 1
                A.work.flops += train_step_flops(A.shape, len(idx))
                bar.update(1)
            if epoch + 1 in save_at:
                A.store.save_teacher(epoch + 1, model, opt)
                out[epoch + 1] = model.copy()
    bar.close()


def accuracy_rows(condition: str, accs: Sequence[float], **cols) -> list[dict]:
    return [{"condition": condition, "model": i, **cols, "accuracy": a} for i, a in enumerate(accs)]
