"""The Topic A run store: cache keys, paths, teacher snapshots and student runs, all verified on read.

Layout under the cache root (default `$SUBLIMINAL_CACHE/topic_a`):

    teachers/<teacher key>/epNNN.safetensors   weights + Adam state after NNN epochs
    teachers/<teacher key>/epNNN.json          its record: key, epoch, SHA-256 of the tensors
    teachers/<teacher key>/accNNN.json         the teacher's test accuracies after NNN epochs (no weights)
    students/<student key>/record.json         accuracies per milestone, hashes of the files below
    students/<student key>/ckptNNN.safetensors weights + Adam state at milestone NNN (the furthest, and a rerun's)
    students/<student key>/epNNN.safetensors   weights at milestone NNN, when a caller asked to keep them
    measures/<measure key>/record.json         numbers measured on weights (CKA, probes, norms: `records.measured`),
                                               keyed by everything that determines them (`measure_key`)

Every record carries the hash of its own body (`subliminal.cache`), so an edited accuracy or a
malformed file is reported and recomputed, never used. Keys hash everything that determines the
numbers plus `LAYOUT`, so a cache written by another layout is never found and never mixed in.

The small records (a student's accuracies, a teacher's) are also kept beside a run's outputs and put back here
on another machine (`records.py`, `subliminal.carry`): a student record without checkpoints or weights (as
restored) is finished at its milestones, and retrained only where a caller wants its weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from subliminal.cache import (
    config_hash,
    load_tensors,
    log,
    read_record,
    read_tensors,
    save_tensors,
    write_record,
    write_tensors,
)
from subliminal.topic_a import engine
from subliminal.topic_a.engine import MLPShape, ParallelMLP

LAYOUT = 2  # bump when the files or records change; part of every key
MEASURE_VERSION = 1  # bump when the code of a measurement on weights changes (mechanisms.py, probes.py): part of its key


def fingerprint(*tensors: torch.Tensor) -> str:
    return "".join(hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16] for t in tensors)


# ---------------------------------------------------------------------- snapshots: weights + Adam state
def snapshot(model: ParallelMLP, opt: torch.optim.Optimizer | None = None) -> dict[str, torch.Tensor]:
    t = model.state()
    for name, p in model.named_parameters():
        st = opt.state.get(p) if opt is not None else None
        if st:
            for k in ("exp_avg", "exp_avg_sq", "step"):
                t[f"adam.{name}.{k}"] = st[k].detach().reshape(-1) if k == "step" else st[k].detach()
    return t


def restore(tensors: dict[str, torch.Tensor], model: ParallelMLP, opt: torch.optim.Optimizer | None = None) -> ParallelMLP:
    """Load a snapshot's weights into `model` (on its device) and its Adam state into `opt`.

    The Adam state goes through the optimizer's own `load_state_dict`, so every tensor lands where that
    optimizer keeps it: moments on the parameter's device, and `step` on the CPU for the plain Adam but on
    the parameter's device for the fused (and capturable) one, which a CUDA run uses.
    """
    dev = model.w1.device
    model.load_state({k: tensors[k].to(dev) for k in engine.PARAM_NAMES})
    if opt is not None:
        index = {id(p): i for i, p in enumerate(p for g in opt.param_groups for p in g["params"])}
        state = {index[id(p)]: {"step": tensors[f"adam.{name}.step"].reshape(()).clone(),
                                "exp_avg": tensors[f"adam.{name}.exp_avg"].clone(),
                                "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].clone()}
                 for name, p in model.named_parameters() if f"adam.{name}.exp_avg" in tensors}
        opt.load_state_dict({**opt.state_dict(), "state": state})
    return model


def _has_params(tensors: dict[str, torch.Tensor] | None, shape: MLPShape) -> bool:
    n, d, h, o = shape.n_models, shape.d_in, shape.hidden, shape.d_out
    want = {"w1": (n, d, h), "b1": (n, 1, h), "w2": (n, h, h), "b2": (n, 1, h), "w3": (n, h, o), "b3": (n, 1, o)}
    return tensors is not None and all(k in tensors and tuple(tensors[k].shape) == s for k, s in want.items())


# ---------------------------------------------------------------------- student runs
@dataclass
class StudentRun:
    """One student condition's run: accuracies per milestone, checkpoints, and weights kept on request.

    Checkpoints (weights + Adam state) are kept at two milestones at most: the furthest one, and the latest
    one written, when a rerun from an earlier point (for weights at a milestone the run has passed) is
    behind it, so that rerun can continue too.
    """

    dir: Path
    key: str
    shape: MLPShape
    results: dict[int, list[float]] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)  # milestone → SHA-256 of ckptNNN.safetensors
    weights: dict[int, str] = field(default_factory=dict)  # milestone → SHA-256 of epNNN.safetensors

    @classmethod
    def open(cls, d: Path, key: str, shape: MLPShape) -> StudentRun:
        run = cls(d, key, shape)
        body = read_record(d / "record.json")
        if body is None:
            return run
        try:
            if body["key"] != key:
                raise ValueError("another key")
            results = {int(m): [float(a) for a in accs] for m, accs in body["results"].items()}
            if any(len(a) != shape.n_models for a in results.values()):
                raise ValueError("wrong number of models")
            checkpoints = {int(m): str(h) for m, h in body.get("checkpoints", {}).items()}  # none: restored
            weights = {int(m): str(h) for m, h in body.get("weights", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log(f"[cache] {d / 'record.json'} is not a valid student record ({type(e).__name__}: {e}); recomputing it")
            return run
        run.results, run.checkpoints, run.weights = results, checkpoints, weights
        return run

    def _save(self) -> None:
        write_record(self.dir / "record.json", {"key": self.key, **{
            k: {str(m): v for m, v in sorted(d.items())}
            for k, d in (("results", self.results), ("checkpoints", self.checkpoints), ("weights", self.weights))}})

    def load_checkpoint(self, model: ParallelMLP, opt: torch.optim.Optimizer, limit: int) -> int:
        """Restore the latest usable checkpoint at or before epoch `limit` into model and opt; its epoch (0: none)."""
        for e in sorted((e for e in self.checkpoints if e <= limit), reverse=True):
            t = read_tensors(self.dir / f"ckpt{e:03d}.safetensors", self.checkpoints[e])
            if _has_params(t, self.shape):
                restore(t, model, opt)
                return e
        return 0

    def load_weights(self, epoch: int, model: ParallelMLP) -> ParallelMLP | None:
        """`model` holding the students' weights kept at milestone `epoch`; None when there are none (valid)."""
        t = read_tensors(self.dir / f"ep{epoch:03d}.safetensors", self.weights.get(epoch))
        return restore(t, model) if _has_params(t, self.shape) else None

    def has_weights(self, epoch: int) -> bool:
        return epoch in self.weights and self.load_weights(epoch, ParallelMLP(self.shape)) is not None

    def keep_weights(self, epoch: int, model: ParallelMLP) -> None:
        self.weights[epoch] = write_tensors(self.dir / f"ep{epoch:03d}.safetensors", model.state())
        self._save()

    def record(self, epoch: int, accuracies: list[float], model: ParallelMLP, opt: torch.optim.Optimizer,
               keep_weights: bool = False) -> None:
        """A milestone reached: its accuracies, a checkpoint, and the weights when asked."""
        self.results[epoch] = accuracies
        if keep_weights:
            self.weights[epoch] = write_tensors(self.dir / f"ep{epoch:03d}.safetensors", model.state())
        self.checkpoints[epoch] = write_tensors(self.dir / f"ckpt{epoch:03d}.safetensors", snapshot(model, opt))
        dropped = [e for e in self.checkpoints if e not in (epoch, max(self.checkpoints))]
        for e in dropped:
            del self.checkpoints[e]
        self._save()
        for e in dropped:  # after the record stops naming them
            (self.dir / f"ckpt{e:03d}.safetensors").unlink(missing_ok=True)


# ---------------------------------------------------------------------- the store
class RunStore:
    """Keys and files of one Topic A configuration (`cfg`: a TopicAConfig) on data with fingerprint `data_fp`."""

    def __init__(self, root: Path, cfg, shape: MLPShape, data_fp: str):
        self.root, self.cfg, self.shape, self.data_fp = Path(root).expanduser(), cfg, shape, data_fp

    def teacher_key(self) -> str:
        c = self.cfg
        return config_hash({"layout": LAYOUT, "engine": engine.ENGINE_VERSION, "shape": asdict(self.shape), "init": c.init,
                            "signed": c.signed_inputs, "lr": c.lr, "batch": c.batch_size, "seed": c.seed,
                            "data": self.data_fp, "precision": c.precision, "wd": c.teacher_weight_decay})

    def student_key(self, teacher_epochs: int, condition: str, source: dict, teacher_key: str | None = None) -> str:
        """`teacher_key`: the key of the teacher distilled, when it comes from another configuration."""
        c = self.cfg
        return config_hash({"layout": LAYOUT, "engine": engine.ENGINE_VERSION, "teacher": teacher_key or self.teacher_key(),
                            "teacher_epochs": teacher_epochs, "condition": condition, "source": source, "lr": c.lr,
                            "wd": c.weight_decay, "batch": c.batch_size, "seed": c.seed,
                            "init_noise": c.student_init_noise, "precision": c.precision})

    # ------------------------------------------------------------------ teachers
    def teacher_path(self, epoch: int) -> Path:
        return self.root / "teachers" / self.teacher_key() / f"ep{epoch:03d}.safetensors"

    def teacher_epochs(self) -> list[int]:
        """Epochs with a teacher snapshot on disk (not yet verified)."""
        d = self.root / "teachers" / self.teacher_key()
        return sorted(int(p.stem[2:]) for p in d.glob("ep*.safetensors")) if d.exists() else []

    def load_teacher(self, epoch: int, model: ParallelMLP, opt: torch.optim.Optimizer | None = None) -> bool:
        got = load_tensors(self.teacher_path(epoch), {"key": self.teacher_key(), "epoch": epoch})
        if got is None or not _has_params(got[0], self.shape):
            return False
        restore(got[0], model, opt)
        return True

    def save_teacher(self, epoch: int, model: ParallelMLP, opt: torch.optim.Optimizer) -> None:
        save_tensors(self.teacher_path(epoch), snapshot(model, opt), {"key": self.teacher_key(), "epoch": epoch})

    def teacher_accuracy(self, epoch: int) -> list[float] | None:
        """The recorded test accuracies of the teacher after `epoch` epochs; None when there are none (valid)."""
        path = teacher_accuracy_path(self.root, self.teacher_key(), epoch)
        body = read_record(path)
        if body is None:
            return None
        accs = body.get("accuracy")
        if (body.get("key"), body.get("epoch")) != (self.teacher_key(), epoch) or not isinstance(accs, list) \
                or len(accs) != self.shape.n_models or not all(isinstance(a, float) for a in accs):
            log(f"[cache] {path} is not a valid teacher record of this configuration; recomputing it")
            return None
        return accs

    def save_teacher_accuracy(self, epoch: int, accuracy: list[float]) -> dict:
        body = {"key": self.teacher_key(), "epoch": epoch, "accuracy": [float(a) for a in accuracy]}
        write_record(teacher_accuracy_path(self.root, body["key"], epoch), body)
        return body

    # ------------------------------------------------------------------ students
    def student_run(self, teacher_epochs: int, condition: str, source: dict, teacher_key: str | None = None) -> StudentRun:
        key = self.student_key(teacher_epochs, condition, source, teacher_key)
        return StudentRun.open(student_dir(self.root, key), key, self.shape)


def student_dir(root: Path, key: str) -> Path:
    return Path(root) / "students" / key


def teacher_accuracy_path(root: Path, key: str, epoch: int) -> Path:
    return Path(root) / "teachers" / key / f"acc{epoch:03d}.json"


def measure_key(measure: str, inputs: dict) -> str:
    """The key of `measure` (a name: 'convergence', 'probe', ...) taken with `inputs`, everything that determines its
    numbers (the models' keys, milestone, input set, the measurement's settings)."""
    return config_hash({"layout": LAYOUT, "measure": measure, "version": MEASURE_VERSION, "inputs": inputs})


def measure_path(root: Path, key: str) -> Path:
    return Path(root) / "measures" / key / "record.json"
