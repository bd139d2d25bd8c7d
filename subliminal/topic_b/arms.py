"""What one arm of a Topic B transfer experiment is, as a typed value (never parsed from a name): one identity
for both LLM rooms (``transfer/``, the transfer room; ``theory/``, the ladder), owned by neither.

An `Arm` says which teacher writes (or shows) what, and how the student learns from it: the trait (an animal or
"neutral"), the teacher's kind (a system prompt on the base model, or the base model fine-tuned in its weights),
the teacher's model, which draw of its data, the route (text or logits), the loss, the student's
parametrisation, optimiser, initialisation, and the inputs the student sees. Each knob is a ``StrEnum`` (a
member equals, hashes and JSON-encodes as its string, so cache keys are those of the plain strings); a string is
coerced to its member on construction. Its name, its system prompt, its reference arm (the neutral teacher with
everything else the same) and its cache identity are derived from it. The transfer room's names of arms ('owl_w',
'cross_owl', 'neutral_2') are the transfer room's: ``transfer/arm.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from subliminal.topic_b.prompts import animal_system

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: the same behaviour (str() and format() give the value)
    class StrEnum(str, Enum):
        __str__ = str.__str__
        __format__ = str.__format__

NEUTRAL = "neutral"


class Teacher(StrEnum):
    prompt = "prompt"  # a system prompt on the base model
    weights = "weights"  # the base model LoRA-trained on the trait


class Route(StrEnum):
    text = "text"  # SFT on sampled text
    logits = "logits"  # matching the teacher's next-token distributions


class Loss(StrEnum):
    sft = "sft"  # text CE
    number_kl = "number_kl"  # KL over the number tokens, renormalised
    full_kl = "full_kl"  # KL over the vocabulary
    shared_class_kl = "shared_class_kl"  # KL over classes both models' vocabularies share (a teacher of another model)


class Param(StrEnum):
    lora = "lora"  # LoRA r8 on every projection
    full = "full"  # every weight of the model


class Optim(StrEnum):
    adam = "adam"
    sgd = "sgd"


class Init(StrEnum):
    shared = "shared"  # the teacher's init
    adapter_cross = "adapter_cross"  # another LoRA draw
    noisy_base = "noisy_base"  # base + noise


class Inputs(StrEnum):
    teacher = "teacher"  # the teacher's own samples
    random = "random"  # random number lists
    neutral_text = "neutral_text"  # the neutral teacher's samples


KNOBS: dict[str, type[StrEnum]] = {"teacher": Teacher, "route": Route, "loss": Loss, "param": Param,
                                   "optim": Optim, "init": Init, "inputs": Inputs}
KL_LOSSES = frozenset({Loss.number_kl, Loss.full_kl, Loss.shared_class_kl})  # the logits route's losses
# the knobs a name shows only when they differ from these (a plain text-route arm is just its trait)
_DEFAULTS = {"teacher": Teacher.prompt, "route": Route.text, "loss": Loss.sft, "param": Param.lora,
             "optim": Optim.adam, "init": Init.shared, "inputs": Inputs.teacher}


def _member(field: str, value) -> StrEnum:
    """`value` as the member of `field`'s enum; one line naming the allowed values when it is none of them."""
    kind = KNOBS[field]
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"arm {field}={value!r}: choose from {', '.join(m.value for m in kind)}") from None


@dataclass(frozen=True)
class Arm:
    trait: str
    teacher: Teacher = Teacher.prompt
    teacher_model: str = ""  # "" = the student's own base model; else another model (the cross-model control)
    draw: int = 0  # which draw of the teacher's data (0 = the first)
    route: Route = Route.text
    loss: Loss = Loss.sft
    param: Param = Param.lora
    optim: Optim = Optim.adam
    init: Init = Init.shared
    inputs: Inputs = Inputs.teacher

    def __post_init__(self):
        if not isinstance(self.trait, str) or not self.trait.isalpha() or self.trait != self.trait.lower():
            raise ValueError(f"an arm's trait is an animal or {NEUTRAL!r} in lower case, not {self.trait!r}")
        for f in KNOBS:
            object.__setattr__(self, f, _member(f, getattr(self, f)))
        if (self.route == Route.text) != (self.loss == Loss.sft):
            raise ValueError("the text route trains by SFT on text; the logits route by a KL "
                             f"({', '.join(m.value for m in Loss if m in KL_LOSSES)})")
        if self.draw < 0:
            raise ValueError("an arm's data draw is ≥ 0")

    @property
    def neutral(self) -> bool:
        return self.trait == NEUTRAL

    @property
    def cross(self) -> bool:
        """Whether the teacher is another model than the student's base model."""
        return bool(self.teacher_model)

    @property
    def name(self) -> str:
        """A readable, unique name: the trait, then every field that differs from a plain text-route arm."""
        parts = [self.trait]
        if self.teacher_model:
            parts.append(f"from-{self.teacher_model}")
        if self.draw:
            parts.append(f"draw{self.draw + 1}")
        parts += [getattr(self, f).value for f, d in _DEFAULTS.items() if getattr(self, f) != d]
        return "-".join(parts)

    def system_prompt(self) -> str | None:
        """The system prompt the teacher writes under (a prompted animal teacher only)."""
        if self.teacher != Teacher.prompt or self.neutral:
            return None
        return animal_system(self.trait)

    def reference(self) -> Arm | None:
        """The arm this one is compared with: the neutral teacher, everything else the same (None for a neutral arm)."""
        return None if self.neutral else dataclasses.replace(self, trait=NEUTRAL)

    def identity(self) -> dict:
        """What names this arm in a cache key: every field in order, the knobs as their plain strings (the same
        JSON, hence the same ``cache.config_hash``, as the arms of before the enums)."""
        return {f.name: (v.value if isinstance(v := getattr(self, f.name), Enum) else v)
                for f in dataclasses.fields(self)}
