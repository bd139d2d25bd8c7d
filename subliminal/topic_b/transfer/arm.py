"""What one arm of a transfer experiment is, as a typed value (never parsed from a name).

An `Arm` says which teacher writes (or shows) what, and how the student learns from it: the trait (an animal or
"neutral"), the teacher's kind (a system prompt on the base model, or the base model fine-tuned in its weights),
the teacher's model, which draw of its data, the route (text or logits), the loss, the student's
parametrisation, optimiser, initialisation, and the inputs the student sees. Its name, its system prompt, its
reference arm (the neutral teacher with everything else the same) and its cache identity are derived from it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from subliminal.topic_b.prompts import animal_system

CHOICES = {
    "teacher": ("prompt", "weights"),  # a system prompt on the base model | the base model LoRA-trained on the trait
    "route": ("text", "logits"),  # SFT on sampled text | matching the teacher's next-token distributions
    "loss": ("sft", "number_kl", "full_kl"),  # text CE | KL over the number tokens, renormalised | KL over the vocabulary
    "param": ("lora", "full"),  # LoRA r8 on every projection | every weight of the model
    "optim": ("adam", "sgd"),
    "init": ("shared", "adapter_cross", "noisy_base"),  # the teacher's init | another LoRA draw | base + noise
    "inputs": ("teacher", "random", "neutral_text"),  # the teacher's own samples | random number lists | neutral samples
}
NEUTRAL = "neutral"
BASE = "base"  # the CSV row of the base model (no arm)
TEACHER_ROW = "teacher_"  # a CSV row of a teacher evaluated like a student: 'teacher_owl_w'
CROSS_PREFIX = "cross_"  # the transfer room's name of an arm whose teacher is another model: 'cross_owl'
WEIGHT_SUFFIX = "_w"  # ... whose teacher loves the animal in its weights: 'owl_w'
OTHER_MODEL = "other"  # the teacher model of a 'cross_' arm read from a name alone
_ROUTE_LOSS = {"text": "sft", "logits": "number_kl"}  # the transfer room's loss per route
# the fields a name shows only when they differ from these (a plain text-route arm is just its trait)
_DEFAULTS = {"teacher": "prompt", "route": "text", "loss": "sft", "param": "lora", "optim": "adam", "init": "shared",
             "inputs": "teacher"}


@dataclass(frozen=True)
class Arm:
    trait: str
    teacher: str = "prompt"
    teacher_model: str = ""  # "" = the student's own base model; else another model (the cross-model control)
    draw: int = 0  # which draw of the teacher's data (0 = the first)
    route: str = "text"
    loss: str = "sft"
    param: str = "lora"
    optim: str = "adam"
    init: str = "shared"
    inputs: str = "teacher"

    def __post_init__(self):
        if not self.trait or not self.trait.isalpha() or self.trait != self.trait.lower():
            raise ValueError(f"an arm's trait is an animal or {NEUTRAL!r} in lower case, not {self.trait!r}")
        for f, allowed in CHOICES.items():
            if getattr(self, f) not in allowed:
                raise ValueError(f"arm {f}={getattr(self, f)!r}: choose from {', '.join(allowed)}")
        if (self.route == "text") != (self.loss == "sft"):
            raise ValueError("the text route trains by SFT on text; the logits route by a KL (number_kl or full_kl)")
        if self.draw < 0:
            raise ValueError("an arm's data draw is ≥ 0")

    @property
    def neutral(self) -> bool:
        return self.trait == NEUTRAL

    @property
    def name(self) -> str:
        """A readable, unique name: the trait, then every field that differs from a plain text-route arm."""
        parts = [self.trait]
        if self.teacher_model:
            parts.append(f"from-{self.teacher_model}")
        if self.draw:
            parts.append(f"draw{self.draw + 1}")
        parts += [f"{getattr(self, f)}" for f, d in _DEFAULTS.items() if getattr(self, f) != d]
        return "-".join(parts)

    def system_prompt(self) -> str | None:
        """The system prompt the teacher writes under (a prompted animal teacher only)."""
        if self.teacher != "prompt" or self.neutral:
            return None
        return animal_system(self.trait)

    def reference(self) -> Arm | None:
        """The arm this one is compared with: the neutral teacher, everything else the same (None for a neutral arm)."""
        return None if self.neutral else dataclasses.replace(self, trait=NEUTRAL)

    def identity(self) -> dict:
        """What names this arm in a cache key."""
        return dataclasses.asdict(self)

    # ---- the transfer room's names (cache keys, student folders and committed CSVs spell arms this way)
    @property
    def label(self) -> str:
        """The arm's name in the transfer room's caches and CSVs: 'owl', 'neutral', 'neutral_2' (draw 1 of the
        neutral teacher), 'owl_w' (a weight teacher), 'cross_owl' (a teacher of another model). The route is not
        in it (it prefixes the student's folder: ``student_prefix``). Raises for an arm the room cannot name."""
        if (self.param, self.optim, self.init, self.inputs) != ("lora", "adam", "shared", "teacher") or \
                self.loss != _ROUTE_LOSS[self.route]:
            raise ValueError(f"arm {self.name!r} has no name in the transfer room (its students are LoRA + Adam "
                             "from the shared init on the teacher's own samples)")
        if self.teacher_model and self.teacher == "weights":
            raise ValueError("the transfer room has no weight teacher of another model")
        if self.draw and not self.neutral:
            raise ValueError("the transfer room draws only the neutral teacher's data more than once")
        s = self.trait + (WEIGHT_SUFFIX if self.teacher == "weights" else "") + (f"_{self.draw + 1}" if self.draw else "")
        return (CROSS_PREFIX if self.teacher_model else "") + s

    @property
    def student_prefix(self) -> str:
        """What a student's folder name starts with before the arm's label: 'logits-' on the logits route."""
        return "logits-" if self.route == "logits" else ""

    def on_route(self, route: str) -> Arm:
        """This arm on the transfer room's `route`, with that route's loss (text: sft; logits: number_kl)."""
        return dataclasses.replace(self, route=route, loss=_ROUTE_LOSS[route])

    @property
    def cross(self) -> bool:
        """Whether the teacher is another model than the student's base model."""
        return bool(self.teacher_model)

    @classmethod
    def from_label(cls, label: str, *, route: str = "text", cross_model: str = OTHER_MODEL) -> Arm:
        """The arm a transfer-room name stands for (the one place such a name is read): the inverse of `label`.
        `cross_model` names the other model of a 'cross_' arm where the caller knows it."""
        rest = label.removeprefix(CROSS_PREFIX)
        m = re.fullmatch(r"([a-z]+)(_w)?(?:_([1-9]\d*))?", rest)
        draw = int(m.group(3)) - 1 if m and m.group(3) else 0
        if m is None or draw == 0 and m.group(3) or (m.group(3) and m.group(1) != NEUTRAL):
            raise ValueError(f"{label!r} is not a transfer arm's name")
        arm = cls(trait=m.group(1), teacher="weights" if m.group(2) else "prompt",
                  teacher_model=cross_model if rest != label else "", draw=draw, route=route, loss=_ROUTE_LOSS[route])
        if arm.label != label:
            raise ValueError(f"{label!r} is not a transfer arm's name")
        return arm


def row_arm(value: str, route: str = "text") -> Arm | None:
    """The arm of a transfer CSV's row; None for the rows that are no student arm ('base', 'teacher_owl_w')."""
    return None if value == BASE or value.startswith(TEACHER_ROW) else Arm.from_label(value, route=route)


def teacher_row(arm: Arm) -> str:
    """The CSV arm value of a teacher evaluated like a student ('teacher_owl_w')."""
    return TEACHER_ROW + arm.label


def row_kind(value: str) -> str:
    """What a transfer CSV row is: 'base', 'teacher' (a teacher evaluated like a student), 'neutral' (a neutral
    draw), 'cross' (a student of another model's teacher) or 'animal'."""
    if value == BASE or value.startswith(TEACHER_ROW):
        return "base" if value == BASE else "teacher"
    arm = Arm.from_label(value)
    return "neutral" if arm.neutral and not arm.cross else "cross" if arm.cross else "animal"


def neutral_row(value: str) -> bool:
    """Whether a transfer CSV row is a draw of the base model's own prompted neutral teacher ('neutral',
    'neutral_2', ...); False for every other row and for a value that is no arm's name."""
    try:
        arm = row_arm(value)
    except ValueError:
        return False
    return arm is not None and arm.neutral and not arm.cross and arm.teacher == "prompt"
