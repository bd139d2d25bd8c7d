"""The transfer room's names of arms (``topic_b.arms.Arm``): how its caches, student folders and committed CSVs
spell an arm, and how such a name is read back (the one place it is).

'owl', 'neutral', 'neutral_2' (draw 1 of the neutral teacher), 'owl_w' (a weight teacher), 'cross_owl' (a teacher
of another model); the route is not in the name (it prefixes the student's folder: `student_prefix`). The room's
students are LoRA + Adam from the shared init on the teacher's own samples, with its route's loss (text: sft;
logits: number_kl); `label` raises for any other arm (a ladder arm, say).
"""

from __future__ import annotations

import dataclasses
import re

from subliminal.topic_b.arms import NEUTRAL, Arm, Init, Inputs, Loss, Optim, Param, Route, Teacher

BASE = "base"  # the CSV row of the base model (no arm)
TEACHER_ROW = "teacher_"  # a CSV row of a teacher evaluated like a student: 'teacher_owl_w'
CROSS_PREFIX = "cross_"  # the transfer room's name of an arm whose teacher is another model: 'cross_owl'
WEIGHT_SUFFIX = "_w"  # ... whose teacher loves the animal in its weights: 'owl_w'
OTHER_MODEL = "other"  # the teacher model of a 'cross_' arm read from a name alone
ROUTE_LOSS = {Route.text: Loss.sft, Route.logits: Loss.number_kl}  # the transfer room's loss per route
_RECIPE = (Param.lora, Optim.adam, Init.shared, Inputs.teacher)  # the room's students: (param, optim, init, inputs)


def label(arm: Arm) -> str:
    """The arm's name in the transfer room's caches and CSVs: 'owl', 'neutral', 'neutral_2', 'owl_w', 'cross_owl'.
    Raises for an arm the room cannot name."""
    if (arm.param, arm.optim, arm.init, arm.inputs) != _RECIPE or arm.loss != ROUTE_LOSS[arm.route]:
        raise ValueError(f"arm {arm.name!r} has no name in the transfer room (its students are LoRA + Adam "
                         "from the shared init on the teacher's own samples)")
    if arm.teacher_model and arm.teacher == Teacher.weights:
        raise ValueError("the transfer room has no weight teacher of another model")
    if arm.draw and not arm.neutral:
        raise ValueError("the transfer room draws only the neutral teacher's data more than once")
    s = arm.trait + (WEIGHT_SUFFIX if arm.teacher == Teacher.weights else "") + (f"_{arm.draw + 1}" if arm.draw else "")
    return (CROSS_PREFIX if arm.teacher_model else "") + s


def student_prefix(arm: Arm) -> str:
    """What a student's folder name starts with before the arm's label: 'logits-' on the logits route."""
    return "logits-" if arm.route == Route.logits else ""


def on_route(arm: Arm, route: str) -> Arm:
    """`arm` on the transfer room's `route`, with that route's loss (text: sft; logits: number_kl)."""
    route = Route(route)
    return dataclasses.replace(arm, route=route, loss=ROUTE_LOSS[route])


def from_label(name: str, *, route: str = "text", cross_model: str = OTHER_MODEL) -> Arm:
    """The arm a transfer-room name stands for: the inverse of `label`. `cross_model` names the other model of a
    'cross_' arm where the caller knows it."""
    rest = name.removeprefix(CROSS_PREFIX)
    m = re.fullmatch(r"([a-z]+)(_w)?(?:_([1-9]\d*))?", rest)
    draw = int(m.group(3)) - 1 if m and m.group(3) else 0
    if m is None or draw == 0 and m.group(3) or (m.group(3) and m.group(1) != NEUTRAL):
        raise ValueError(f"{name!r} is not a transfer arm's name")
    arm = on_route(Arm(trait=m.group(1), teacher=Teacher.weights if m.group(2) else Teacher.prompt,
                       teacher_model=cross_model if rest != name else "", draw=draw), route)
    if label(arm) != name:
        raise ValueError(f"{name!r} is not a transfer arm's name")
    return arm


def row_arm(value: str, route: str = "text") -> Arm | None:
    """The arm of a transfer CSV's row; None for the rows that are no student arm ('base', 'teacher_owl_w')."""
    return None if value == BASE or value.startswith(TEACHER_ROW) else from_label(value, route=route)


def teacher_row(arm: Arm) -> str:
    """The CSV arm value of a teacher evaluated like a student ('teacher_owl_w')."""
    return TEACHER_ROW + label(arm)


def row_kind(value: str) -> str:
    """What a transfer CSV row is: 'base', 'teacher' (a teacher evaluated like a student), 'neutral' (a neutral
    draw), 'cross' (a student of another model's teacher) or 'animal'."""
    if value == BASE or value.startswith(TEACHER_ROW):
        return "base" if value == BASE else "teacher"
    arm = from_label(value)
    return "neutral" if arm.neutral and not arm.cross else "cross" if arm.cross else "animal"


def neutral_row(value: str) -> bool:
    """Whether a transfer CSV row is a draw of the base model's own prompted neutral teacher ('neutral',
    'neutral_2', ...); False for every other row and for a value that is no arm's name."""
    try:
        arm = row_arm(value)
    except ValueError:
        return False
    return arm is not None and arm.neutral and not arm.cross and arm.teacher == Teacher.prompt
