"""Does the current code reproduce a committed ladder student? (issue 42: the redesign must change no number.)

Retrains one committed student of ``topic_b_transfer_theory.py`` (cell b, the owl teacher, seed 0) from scratch in a
scratch cache (the cached teachers are copied in; a fresh machine retrains them), and compares its record with the
committed one: the key, each milestone's log P(animal) for all 25 animals x 26 questions, its loss and its update
cosine with the owl teacher's. Writes bench/check_ladder_retrain.json (the machine, threads and the differences).

    PYTHONPATH=. OMP_WAIT_POLICY=PASSIVE python bench/check_ladder_retrain.py [--threads 1]    # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from subliminal.assets import cache_home
from subliminal.cache import config_hash, read_record
from subliminal.results import cpu_name
from subliminal.topic_b.lm import load_model
from subliminal.topic_b.theory.cells import BY_KEY
from subliminal.topic_b.theory.ladder import Ladder
from subliminal.topic_b.theory.student import StudentSettings
from subliminal.topic_b.theory.teachers import TeacherSettings

MODEL = "smollm2-135m-instruct"
RECORD = Path("plots_b/topic_b_transfer_theory_records/owl-weights-logits-number_kl-random-s0/record.json")
TOLERANCE = 1e-3  # max |log P(animal)| difference accepted as the same student (fp32 reductions differ by threads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    old = read_record(RECORD)
    if old is None:
        raise SystemExit(f"{RECORD} is missing or fails its checksum")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / MODEL
        src = cache_home() / "transfer_theory" / MODEL / "teachers"
        if src.is_dir():
            shutil.copytree(src, root / "teachers")
        base, tok = load_model(MODEL)
        lad = Ladder(base, tok, root, TeacherSettings(), StudentSettings(), config_hash({"model": MODEL}), progress=False)
        t0 = time.time()
        rec = lad.student(BY_KEY["b"], 0, "owl")
    out = {"record": RECORD.as_posix(), "same_key": rec["key"] == old["key"], "cpu": cpu_name(), "threads": args.threads,
           "torch": torch.__version__, "minutes": round((time.time() - t0) / 60, 1), "tolerance_logp": TOLERANCE,
           "milestones": {}}
    for m in old["milestones"]:
        a, b = np.array(rec["milestones"][m]["logp"]), np.array(old["milestones"][m]["logp"])
        out["milestones"][m] = {"max_abs_logp_diff": float(np.abs(a - b).max()),
                                "loss_new": rec["milestones"][m]["kl"], "loss_committed": old["milestones"][m]["kl"],
                                "cos_owl_new": rec["milestones"][m]["cos_all"]["owl"],
                                "cos_owl_committed": old["milestones"][m]["cos_all"]["owl"]}
    out["reproduced"] = out["same_key"] and all(v["max_abs_logp_diff"] <= TOLERANCE for v in out["milestones"].values())
    Path("bench/check_ladder_retrain.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
