"""The transfer room's arm names are derived from typed `Arm` values and read back into them, byte for byte."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.transfer.arm import from_label, label, row_arm, row_kind, student_prefix, teacher_row

ROOT = Path(__file__).resolve().parents[1]
SUMMARIES = sorted(p for p in (ROOT / "plots_b").glob("topic_b_transfer*_summary.csv") if "theory" not in p.name)


def _committed_arms() -> set[str]:
    return {a for p in SUMMARIES for a in pd.read_csv(p)["arm"].astype(str)}


def test_every_committed_arm_round_trips():
    arms = _committed_arms()
    assert {"owl", "neutral", "neutral_2", "owl_w", "cross_owl", "cross_neutral", "teacher_owl_w"} <= arms
    for name in arms:
        arm = row_arm(name)
        if arm is None:
            assert name == "base" or row_kind(name) == "teacher"
            if name != "base":
                assert teacher_row(from_label(name.removeprefix("teacher_"))) == name
            continue
        assert label(arm) == name
        for route in ("text", "logits"):
            assert label(from_label(name, route=route)) == name


def test_fields_of_the_committed_names():
    assert from_label("neutral_2") == Arm(NEUTRAL, draw=1)
    assert from_label("owl_w") == Arm("owl", teacher="weights")
    cross = from_label("cross_owl", cross_model="qwen2.5-coder-0.5b-instruct")
    assert cross.cross and cross.teacher_model == "qwen2.5-coder-0.5b-instruct" and cross.trait == "owl"
    assert label(cross) == "cross_owl" and label(dataclasses.replace(cross, teacher_model="")) == "owl"
    assert student_prefix(from_label("owl", route="logits")) == "logits-"
    assert student_prefix(from_label("owl")) == ""
    assert from_label("owl").system_prompt() and from_label("owl_w").system_prompt() is None
    assert from_label("neutral_3").system_prompt() is None
    assert [row_kind(x) for x in ("base", "teacher_owl_w", "neutral_2", "cross_neutral", "cross_owl", "eagle")] == \
        ["base", "teacher", "neutral", "cross", "cross", "animal"]


@pytest.mark.parametrize("bad", ["neutral_1", "neutral_", "neutral_x", "neutrals_2", "owl_2", "cross_owl_w", "Owl",
                                 "teacher_owl", "logits-owl", ""])
def test_names_that_are_no_arm(bad):
    with pytest.raises(ValueError):
        from_label(bad)


def test_arms_the_room_cannot_name():
    for arm in (Arm("owl", param="full"), Arm("owl", draw=1), Arm("owl", teacher="weights", teacher_model="x"),
                Arm("owl", route="logits", loss="full_kl")):
        with pytest.raises(ValueError):
            label(arm)
