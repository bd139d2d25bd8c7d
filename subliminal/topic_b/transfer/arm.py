"""What one arm of a transfer experiment is, as a typed value (never parsed from a name).

An `Arm` says which teacher writes (or shows) what, and how the student learns from it: the trait (an animal or
"neutral"), the teacher's kind (a system prompt on the base model, or the base model fine-tuned in its weights),
the teacher's model, which draw of its data, the route (text or logits), the loss, the student's
parametrisation, optimiser, initialisation, and the inputs the student sees. Its name, its system prompt, its
reference arm (the neutral teacher with everything else the same) and its cache identity are derived from it.
"""

from __future__ import annotations

import dataclasses
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
