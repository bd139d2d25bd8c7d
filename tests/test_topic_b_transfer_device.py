"""The device check (transfer/device_check.py): two trainings of one student compared, on tiny random Llamas."""

from __future__ import annotations

import copy
import json
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_lm import build_model, build_tokenizer

from subliminal.cli import UserError
from subliminal.reporting.transfer_runs import _devices, device_check
from subliminal.topic_b.transfer.device_check import DeviceCheckConfig, compare_students
from subliminal.topic_b.transfer.finetune import TrainSettings, train_student

S = TrainSettings(micro_batch=4, grad_accum=2, epochs=1, lr=5e-3)
EXS = [{"prompt": f"Continue: {i}, {i + 1}, {i + 2}", "completion": f"{i + 3}, {i + 4}, {i + 5}"} for i in range(8)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tok = build_tokenizer()
    base = build_model(tok)
    root = tmp_path_factory.mktemp("dev")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train_student(copy.deepcopy(base), tok, EXS, root / name, S, seed, data_hash="h", log=lambda m: None,
                      progress=False)
    return base, tok, root


def _q(df: pd.DataFrame, q: str, col: str = "rel_diff") -> float:
    return float(df.set_index("quantity").loc[q, col])


def test_the_record_names_its_device(trained):
    _, _, root = trained
    rec = json.loads((root / "a" / "train.json").read_text())
    assert rec["device"] == "cpu" and rec["torch_version"] == torch.__version__


def test_two_trainings_of_one_student_agree_and_a_changed_adapter_does_not(trained, tmp_path):
    base, tok, root = trained
    df = compare_students(root / "a", root / "b", base, tok, ["owl"])
    assert _q(df, "adapter_norm") == 0 and _q(df, "final_loss") == 0 and _q(df, "mean_p_owl") == 0
    # the same student with one LoRA B matrix nudged by 10%: every measure sees it
    d = tmp_path / "d"
    shutil.copytree(root / "a", d)
    f = d / "adapter" / "adapter_model.safetensors"
    t = load_file(str(f))
    k = next(n for n in sorted(t) if "lora_B" in n and float(t[n].abs().sum()) > 0)
    t[k] = t[k] * 1.1
    save_file(t, str(f))
    df = compare_students(d, root / "a", base, tok, ["owl"])
    assert _q(df, "lora_B_norm") > 1e-3 and _q(df, "adapter_max_abs_diff", "abs_diff") > 0
    assert _q(df, "mean_abs_dlogp_owl", "abs_diff") > 0


def test_different_students_and_unfinished_folders_are_refused(trained, tmp_path):
    _, _, root = trained
    with pytest.raises(UserError, match="different students"):
        compare_students(root / "a", root / "c")
    with pytest.raises(UserError, match="not a finished student"):
        compare_students(tmp_path, root / "a")
    with pytest.raises(UserError, match="give both students"):
        DeviceCheckConfig(student_a="x").validate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_training_gives_the_cpu_student(trained, tmp_path):
    base, tok, root = trained
    train_student(copy.deepcopy(base).cuda(), tok, EXS, tmp_path / "g", S, 0, data_hash="h", log=lambda m: None,
                  progress=False)
    df = compare_students(tmp_path / "g", root / "a", base, tok, ["owl"])
    assert _q(df, "adapter_norm") < 1e-3 and _q(df, "mean_p_owl") < 1e-3


def test_report_lines(tmp_path):
    meta = {"students": {"owl/s0": {"steps": 3, "steps_this_run": 1, "tokens_per_s": 9.0},
                         "owl/s1": {"steps": 3, "steps_this_run": 3, "tokens_per_s": 4000.0, "device": "cuda"},
                         "owl/s2": {"stopped_at": 1}}}
    assert _devices(meta) == ("; students trained on: cpu 1, cuda 1 (owl/s1), 4,000 tokens/s, all fp32 "
                              "(see the device check)")  # a resumed student's rate is left out
    assert _devices({"students": {"owl/s0": {"steps": 3}}}) == ""
    assert device_check(tmp_path) == ""
    (tmp_path / "plots_b").mkdir()
    rows = [{"quantity": q, "a": 1.0, "b": 1.0, "abs_diff": d, "rel_diff": d}
            for q, d in (("final_loss", 1e-6), ("adapter_norm", 2e-6), ("lora_B_norm", 1e-5), ("mean_p_owl", 1e-6))]
    pd.DataFrame(rows).to_csv(tmp_path / "plots_b" / "topic_b_transfer_device_check.csv", index=False)
    (tmp_path / "plots_b" / "topic_b_transfer_device_check.json").write_text(json.dumps(
        {"student": "logits-owl-s1-x", "a": {"device": "cuda", "torch": "2.11"}, "b": {"device": "cpu", "torch": "2.13"}}))
    line = device_check(tmp_path)
    assert "trained on cuda and on cpu" in line and "up to rounding" in line and "P(owl)" in line
    rows[-1]["rel_diff"] = 0.05
    pd.DataFrame(rows).to_csv(tmp_path / "plots_b" / "topic_b_transfer_device_check.csv", index=False)
    assert "**different students**" in device_check(tmp_path)
