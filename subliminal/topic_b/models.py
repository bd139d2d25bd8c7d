"""The model table: one row per language model with everything that differs between models, read by every
place that used to branch on a model's name or family.

- ``lm`` loads an offline row from its asset (``weights``, an entry of ``subliminal.assets.ASSETS`` that says
  which package holds the GGUF) and installs the row's ``chat_template`` when the tokenizer ships none;
- ``sampling.end_ids`` stops a sample at the end-of-turn tokens of every row (``END_TOKENS``), those that the
  model's vocabulary holds;
- ``transfer.finetune`` puts LoRA adapters on the row's ``lora_targets`` (``theory.readouts`` reads the same).

A loaded model without a row of its own (a .gguf file, a saved folder, another Hugging Face id) takes the row of
its family: the first row whose ``family`` its transformers ``model_type`` starts with (a Gemma-2 from the hub
gets Gemma's template); a model of no listed family gets the defaults (``LORA_TARGETS``, its own template).
Rows of one family therefore agree on LoRA targets, system role and template (a test holds them to it).

Adding a student model: one row below, plus its entry in ``subliminal.assets.ASSETS`` when it ships offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from subliminal.assets import ASSETS
from subliminal.cli import UserError
from subliminal.topic_b.tables import slug

DEFAULT_MODEL = "smollm2-135m-instruct"

# Every attention and MLP projection, as the official open-model config (MinhxLe/subliminal-learning).
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Gemma has no system role: fold the system text into the top of the first user turn (as the owls
# code does for gemma-2), and open the model turn for the prefill. The model's turn ends with the tokenizer's
# <eos>, not <end_of_turn>: the offline Gemma is a base model whose <end_of_turn> row of the (tied) embedding was
# never trained (it sits, at cosine > 0.99, among 4,665 others: <unused...>, <pad>, <unk>, never-seen tokens), so
# the base gives it ~30 nats and a teacher can learn it only by raising that whole cluster (3% of its mass at the
# end of an answer after the ladder's recipe); <eos> is a trained token (docs/notes_gemma_teacher_loss.md). Every
# prompt renders as before (generation prompts and prefills never contain the end of an assistant turn).
def _gemma_template(turn_end: str) -> str:
    """Gemma's fallback chat template; `turn_end` is what follows a turn's text (jinja)."""
    return ("{{ bos_token }}{% set ns = namespace(sys='', first=true) %}"
            "{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.sys = m['content'] + '\n\n' %}"
            "{% endif %}{% endfor %}"
            "{% for m in messages if m['role'] != 'system' %}"
            "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
            "{% if m['role'] == 'user' and ns.first %}{{ ns.sys }}{% set ns.first = false %}{% endif %}"
            "{{ m['content'] | trim }}" + turn_end + "{% endfor %}"
            "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


GEMMA_CHAT_TEMPLATE = _gemma_template("{% if m['role'] == 'assistant' %}{{ eos_token }}{% else %}<end_of_turn>\n{% endif %}")
# The template before: the model's turn ended with "<end_of_turn>\n" too.
GEMMA_CHAT_TEMPLATE_END_OF_TURN = _gemma_template("<end_of_turn>\n")
# Fallback templates this table installed before: a tokenizer that carries one (a dequantised folder saved then keeps
# it in its chat_template.jinja) gets its row's current template when loaded (``lm._install_template``).
SUPERSEDED_TEMPLATES: frozenset[str] = frozenset({GEMMA_CHAT_TEMPLATE_END_OF_TURN})

CHATML_END = ("<|im_end|>", "<|endoftext|>")
LLAMA3_END = ("<|eot_id|>", "<|end_of_text|>")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what --model takes and what the results tables call the model
    weights: str  # an offline asset (subliminal.assets.ASSETS: which package holds the GGUF) or a Hugging Face id
    family: str  # transformers model_type prefix: a model without a row of its own takes its family's row
    lora_targets: tuple[str, ...]  # the modules a LoRA student adapts
    end_tokens: tuple[str, ...]  # the chat template's end-of-turn tokens (sampling stops at them)
    system_role: bool  # whether the chat template has a system role (without one, `chat_template` folds it in)
    chat_template: str | None  # installed when the tokenizer ships none; None: the tokenizer's own
    description: str

    @property
    def offline(self) -> bool:
        return self.weights in ASSETS


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("smollm2-135m-instruct", "smollm2-135m-instruct", "llama", LORA_TARGETS, CHATML_END, True, None,
                  "HuggingFaceTB/SmolLM2-135M-Instruct, offline Q4_1 GGUF, ChatML template (the default)"),
        ModelSpec("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2", LORA_TARGETS, CHATML_END,
                  True, None, "Qwen/Qwen2.5-Coder-0.5B-Instruct, offline Q4 GGUF, ChatML template"),
        ModelSpec("gemma-3-270m", "gemma-3-270m", "gemma", LORA_TARGETS, ("<end_of_turn>",), False,
                  GEMMA_CHAT_TEMPLATE, "google/gemma-3-270m (base), offline Q4_K_M GGUF, no system role"),
        ModelSpec("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-1B-Instruct", "llama", LORA_TARGETS,
                  LLAMA3_END, True, None, "the seed's model (Hugging Face hub only: gated, not offline)"),
        ModelSpec("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B", "llama", LORA_TARGETS, LLAMA3_END, True,
                  None, "the seed's base model for step 3 (Hugging Face hub only: gated, not offline)"),
    )
}

# Sampling stops at any row's end of turn that a vocabulary holds (each listed once, in table order).
END_TOKENS = tuple(dict.fromkeys(t for m in MODELS.values() for t in m.end_tokens))


def model_stem(stem: str, model: str) -> str:
    """The stem of one model's result files: `stem` for the default model (the committed names), else
    `stem__<model>` (file-name safe), so another --model adds files and never overwrites the committed ones."""
    return stem if model == DEFAULT_MODEL else f"{stem}__{slug(model)}"


def get_model(name: str) -> ModelSpec:
    """The row named `name`; an unknown name is a one-line UserError listing the table."""
    try:
        return MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; the model table (subliminal/topic_b/models.py) has: "
                        f"{', '.join(MODELS)}") from None


def offline_models() -> list[str]:
    """The rows whose weights ship offline (an asset), in table order."""
    return [m.name for m in MODELS.values() if m.offline]


def spec_for(name: str, model_type: str) -> ModelSpec | None:
    """The row of a loaded model named `name` whose transformers config says `model_type`: its own row when it
    is of that row's family, else the first row of its family (`model_type` starts with the row's family), else
    None. The architecture decides, as the gemma branch this table replaced did: a name never gives a model
    another family's template."""
    own = MODELS.get(name)
    if own is not None and model_type and model_type.startswith(own.family):
        return own
    return next((m for m in MODELS.values() if model_type and model_type.startswith(m.family)), None)


def spec_of(model) -> ModelSpec | None:
    """`spec_for` a loaded model (its ``name_or_spec``, set by ``lm``, and its config's ``model_type``)."""
    return spec_for(getattr(model, "name_or_spec", "") or "", getattr(getattr(model, "config", None), "model_type", ""))


def lora_targets(model) -> tuple[str, ...]:
    """The modules a LoRA student of `model` adapts: its row's, else `LORA_TARGETS`."""
    spec = spec_of(model)
    return spec.lora_targets if spec is not None else LORA_TARGETS
