"""Do two trainings of the same student on different devices give the same student?

The transfer run's students are keyed by their data, settings and seed, not by the device, so a student
trained on a GPU (fp32, TF32 off: PyTorch's default) can stand beside CPU-trained ones only if the two
devices give the same student up to rounding. ``compare_students(a, b)`` takes two finished student folders
with the same key and returns one row per quantity:

- the training record: final loss, mean loss of the last 10 steps, log p of example 0 after training;
- the adapter: ||a - b|| / ||b|| over all LoRA tensors, over the B matrices alone (they start at zero, so
  they hold what training wrote) and the largest absolute difference;
- with `base` given, the outcome itself: the exact P(animal) of each merged student over the evaluation
  questions (``evaluate.evaluate_model``, no sampling), as the ratio of the two mean P(animal) and the mean
  absolute difference of log P(animal) per question.

    python -m subliminal.topic_b.transfer.device_check --student-a GPU_DIR --student-b CPU_DIR

The CSV's columns: quantity, a, b, abs_diff, rel_diff (|a - b| / |b|), plus the config and both devices in a JSON
beside it.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from subliminal.cli import UserError
from subliminal.topic_b.models import DEFAULT_MODEL

RECORD_FIELDS = ("final_loss", "mean_loss_last_10", "check_completion_logp_example0")


def _record(d: Path) -> dict:
    p = d / "train.json"
    if not p.exists():
        raise UserError(f"{d} is not a finished student (no train.json); give the folder of a trained student")
    return json.loads(p.read_text())


def _adapter(d: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    p = d / "adapter" / "adapter_model.safetensors"
    if not p.exists():
        raise UserError(f"{p} is missing; the student folder is incomplete")
    return load_file(str(p))


def _row(q: str, a: float, b: float) -> dict:
    return {"quantity": q, "a": a, "b": b, "abs_diff": abs(a - b),
            "rel_diff": abs(a - b) / abs(b) if b else float("nan")}


def _norm(t: dict, names: list[str]) -> float:
    """||t|| over the tensors `names`, fp64."""
    return sum(float((t[n].double() ** 2).sum()) for n in names) ** 0.5


def _norm_row(q: str, a: dict, b: dict, names: list[str]) -> dict:
    """||a||, ||b||, ||a - b|| and ||a - b|| / ||b|| over the tensors `names`."""
    d = sum(float(((a[n].double() - b[n].double()) ** 2).sum()) for n in names) ** 0.5
    nb = _norm(b, names)
    return {"quantity": q, "a": _norm(a, names), "b": nb, "abs_diff": d, "rel_diff": d / nb}


def compare_students(a_dir: str | Path, b_dir: str | Path, base=None, tok=None,
                     animals: list[str] | None = None) -> pd.DataFrame:
    a_dir, b_dir = Path(a_dir), Path(b_dir)
    ra, rb = _record(a_dir), _record(b_dir)
    if ra.get("key") != rb.get("key"):
        raise UserError(f"{a_dir.name} and {b_dir.name} are different students (keys {ra.get('key')} and "
                        f"{rb.get('key')}); compare two trainings of the same student")
    rows = [_row(f, float(ra[f]), float(rb[f])) for f in RECORD_FIELDS if f in ra and f in rb]
    ta, tb = _adapter(a_dir), _adapter(b_dir)
    if sorted(ta) != sorted(tb) or any(ta[n].shape != tb[n].shape for n in ta):
        raise UserError(f"the adapters of {a_dir.name} and {b_dir.name} have different tensors")
    names = sorted(ta)
    rows.append(_norm_row("adapter_norm", ta, tb, names))
    rows.append(_norm_row("lora_B_norm", ta, tb, [n for n in names if "lora_B" in n]))
    mx = max(float((ta[n] - tb[n]).abs().max()) for n in names)
    rows.append({"quantity": "adapter_max_abs_diff", "a": float("nan"), "b": float("nan"), "abs_diff": mx,
                 "rel_diff": float("nan")})
    if base is not None:
        rows += _outcome_rows(base, tok, a_dir, b_dir, animals or ["owl"])
    return pd.DataFrame(rows)


def _outcome_rows(base, tok, a_dir: Path, b_dir: Path, animals: list[str]) -> list[dict]:
    from subliminal.topic_b.transfer.evaluate import evaluate_model
    from subliminal.topic_b.transfer.finetune import load_student

    ev = {k: evaluate_model(load_student(copy.deepcopy(base), d / "adapter"), tok, animals, n_samples=0,
                            progress=False) for k, d in (("a", a_dir), ("b", b_dir))}
    rows = []
    for an in animals:
        pa, pb = (ev[k][ev[k].animal == an] for k in ("a", "b"))
        ma, mb = float(pa.p_animal.mean()), float(pb.p_animal.mean())
        rows.append(_row(f"mean_p_{an}", ma, mb))  # rel_diff = |ma / mb - 1|
        dl = np.abs(pa.logp_animal.to_numpy() - pb.logp_animal.to_numpy())
        rows.append({"quantity": f"mean_abs_dlogp_{an}", "a": float("nan"), "b": float("nan"),
                     "abs_diff": float(dl.mean()), "rel_diff": float("nan")})
    return rows


@dataclass(frozen=True)
class DeviceCheckConfig:
    student_a: str = field(default="", metadata={"help": "finished student folder (e.g. the GPU copy)"})
    student_b: str = field(default="", metadata={"help": "student folder with the same key (e.g. the CPU original)"})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "base model, for the P(animal) comparison"})
    animals: tuple[str, ...] = field(default=("owl",), metadata={"help": "animals whose exact P(animal) is compared"})
    eval: bool = field(default=True, metadata={"help": "compare exact P(animal) too (loads the base model)"})
    out: str = field(default="plots_b/topic_b_transfer_device_check.csv", metadata={"help": "output CSV"})

    def validate(self) -> None:
        if not self.student_a or not self.student_b:
            raise UserError("give both students: --student-a DIR --student-b DIR")


def run(cfg: DeviceCheckConfig) -> pd.DataFrame:
    from subliminal.results import write_csv, write_run_json

    t0 = time.time()
    base = tok = None
    if cfg.eval:
        from subliminal.topic_b.lm import load_model

        base, tok = load_model(cfg.model)
    df = compare_students(cfg.student_a, cfg.student_b, base, tok, list(cfg.animals))
    write_csv(df, Path(cfg.out))
    ra, rb = _record(Path(cfg.student_a)), _record(Path(cfg.student_b))
    write_run_json(Path(cfg.out).with_suffix(".json"), cfg, None, time.time() - t0,
                   {"student": Path(cfg.student_b).name, "key": rb["key"], "complete": True,
                    "a": {"device": ra.get("device", "cpu"), "torch": ra.get("torch_version", "")},
                    "b": {"device": rb.get("device", "cpu"), "torch": rb.get("torch_version", "")}})
    print(df.to_string(index=False))
    return df


if __name__ == "__main__":
    from subliminal.cli import cli_main

    cli_main(run, DeviceCheckConfig)
