"""The model table (subliminal/topic_b/models.py): every row complete, and what it gives is what the four places
that used to hold these values gave before the table (values copied from that code: finetune.TARGETS,
numbers._END_TOKENS, lm's gemma branch with its GEMMA_CHAT_TEMPLATE, the gguf entries of assets.ASSETS), except the
one change made since: Gemma's fallback template ends the model's turn with <eos> (issue 44; every prompt renders as
before, and a tokenizer saved with the old template gets the new one when loaded)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from subliminal.assets import ASSETS
from subliminal.cli import UserError
from subliminal.topic_b import lm, models, sampling
from subliminal.topic_b.models import MODELS, ModelSpec, get_model, lora_targets, spec_for

# --- the values before the table, verbatim from the code it replaced
OLD_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # finetune.TARGETS
OLD_END_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>")  # numbers._END_TOKENS
OLD_GEMMA_CHAT_TEMPLATE = (  # lm.GEMMA_CHAT_TEMPLATE, installed when model_type starts with 'gemma' and none ships
    "{{ bos_token }}{% set ns = namespace(sys='', first=true) %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.sys = m['content'] + '\n\n' %}"
    "{% endif %}{% endfor %}"
    "{% for m in messages if m['role'] != 'system' %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if m['role'] == 'user' and ns.first %}{{ ns.sys }}{% set ns.first = false %}{% endif %}"
    "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
OLD_OFFLINE = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]  # gguf assets, in order
OLD_DEFAULT = "smollm2-135m-instruct"  # lm.DEFAULT_MODEL

ARCHS = ("llama", "qwen2", "qwen2_moe", "gemma", "gemma2", "gemma3", "gemma3_text", "mistral", "gpt2", "")


def _old_template(arch: str):
    return models.GEMMA_CHAT_TEMPLATE if arch.startswith("gemma") else None


@pytest.mark.parametrize("name", list(MODELS))
def test_every_row_has_every_field(name):
    m = MODELS[name]
    assert isinstance(m, ModelSpec) and m.name == name
    for f in dataclasses.fields(ModelSpec):
        v = getattr(m, f.name)
        if f.name == "chat_template":
            assert v is None or (isinstance(v, str) and v), name
        elif f.name == "system_role":
            assert isinstance(v, bool)
        elif isinstance(v, tuple):
            assert v and all(isinstance(x, str) and x for x in v), (name, f.name)
        else:
            assert isinstance(v, str) and v.strip(), (name, f.name)
    assert m.system_role or m.chat_template, f"{name}: no system role needs a template that folds it into the user turn"
    if m.offline:
        assert ASSETS[m.weights].kind == "gguf"
    else:
        assert m.weights.count("/") == 1, "a row's weights are an offline asset or a Hugging Face id"
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "x"  # type: ignore[misc]


def test_rows_of_one_family_agree_on_what_a_model_without_a_row_takes_from_it():
    for fam in {m.family for m in MODELS.values()}:
        rows = [m for m in MODELS.values() if m.family == fam]
        assert len({(m.lora_targets, m.system_role, m.chat_template) for m in rows}) == 1, fam


def test_every_offline_language_model_has_a_row():
    assert sorted(a.name for a in ASSETS.values() if a.kind == "gguf") == sorted(m.weights for m in MODELS.values()
                                                                                if m.offline)


def test_the_table_gives_the_old_values():
    assert models.DEFAULT_MODEL == lm.DEFAULT_MODEL == OLD_DEFAULT
    assert all(m.lora_targets == OLD_TARGETS for m in MODELS.values())
    assert models.LORA_TARGETS == OLD_TARGETS
    assert set(models.END_TOKENS) == set(OLD_END_TOKENS) and len(models.END_TOKENS) == len(OLD_END_TOKENS)
    assert lm.offline_specs() == OLD_OFFLINE
    assert MODELS["gemma-3-270m"].chat_template == models.GEMMA_CHAT_TEMPLATE != OLD_GEMMA_CHAT_TEMPLATE
    assert models.SUPERSEDED_TEMPLATES == {OLD_GEMMA_CHAT_TEMPLATE} == {models.GEMMA_CHAT_TEMPLATE_END_OF_TURN}


def _stub(arch: str, name: str = ""):
    model = SimpleNamespace(config=SimpleNamespace(model_type=arch), name_or_spec=name)
    model.to = lambda **kw: model
    model.eval = lambda: model
    return model


@pytest.mark.parametrize("arch", ARCHS)
def test_a_loaded_model_gets_the_old_targets_and_chat_template(arch):
    names = ["tiny", "/some/dir", "some.gguf", "other/hub-id", *MODELS]  # a row's name with another arch too
    for name in names:
        assert lora_targets(_stub(arch, name)) == OLD_TARGETS
        tok = SimpleNamespace(pad_token=None, eos_token="</s>", chat_template=None)
        _, tok = lm._finish(_stub(arch), tok, name, "cpu")
        assert tok.chat_template == _old_template(arch), (arch, name)
        shipped = SimpleNamespace(pad_token="<pad>", eos_token="</s>", chat_template="{{ 'own' }}")
        assert lm._finish(_stub(arch), shipped, name, "cpu")[1].chat_template == "{{ 'own' }}"  # never replaced
        saved = SimpleNamespace(pad_token="<pad>", eos_token="</s>", chat_template=OLD_GEMMA_CHAT_TEMPLATE)
        got = lm._finish(_stub(arch), saved, name, "cpu")[1].chat_template  # a folder saved with the old fallback
        assert got == (models.GEMMA_CHAT_TEMPLATE if arch.startswith("gemma") else OLD_GEMMA_CHAT_TEMPLATE), (arch, name)


def test_end_ids_find_every_rows_end_tokens_in_a_vocabulary():
    vocab = {t: i for i, t in enumerate(OLD_END_TOKENS + ("<other>", "a"))}
    tok = SimpleNamespace(eos_token_id=None, get_vocab=lambda: vocab)
    assert sampling.end_ids(SimpleNamespace(), tok) == list(range(len(OLD_END_TOKENS)))


def test_lookup():
    assert get_model("gemma-3-270m").family == "gemma"
    assert spec_for("no-such-model", "gemma3_text").family == "gemma" and spec_for("no-such-model", "gpt2") is None
    assert spec_for("meta-llama/Llama-3.2-1B", "llama").name == "meta-llama/Llama-3.2-1B"
    assert spec_for("gemma-3-270m", "llama").family == "llama"  # the architecture decides, not the name
    with pytest.raises(UserError) as e:
        get_model("gpt-5")
    msg = str(e.value)
    assert "\n" not in msg and "'gpt-5'" in msg and "smollm2-135m-instruct" in msg and "models.py" in msg


def test_gemma_template_changes_only_the_end_of_the_models_turn():
    """Issue 44: the offline Gemma is a base model whose <end_of_turn> embedding row is untrained (docs/
    notes_gemma_teacher_loss.md); its model turn now ends with <eos>. Every prompt the repo renders (generation
    prompts with and without a system prompt, prefilled prompts, part 1's questions) is the same string under the
    old and the new template; a training text differs only in its end."""
    from tiny_lm import build_tokenizer

    from subliminal.topic_b.prompts import NEUTRAL_SYSTEM, QUESTIONS, animal_system, build_prompt
    from subliminal.topic_b.transfer.prompts import EVAL_QUESTIONS, chat_prompt, number_prompt, student_text

    old, new = build_tokenizer("split", system_role=False), build_tokenizer("split", system_role=False)
    old.chat_template, new.chat_template = OLD_GEMMA_CHAT_TEMPLATE, models.GEMMA_CHAT_TEMPLATE
    for system in (None, NEUTRAL_SYSTEM, animal_system("owl")):
        for q in QUESTIONS:
            assert build_prompt(old, q, system) == build_prompt(new, q, system)
        for user, prefill in EVAL_QUESTIONS[:6] + tuple((number_prompt(0, i), "") for i in range(3)):
            assert chat_prompt(old, user, system, prefill) == chat_prompt(new, user, system, prefill)
    p_old, full_old = student_text(old, "Which animal?", "Owl.")
    p_new, full_new = student_text(new, "Which animal?", "Owl.")
    assert p_old == p_new and full_old == p_new + "Owl.<end_of_turn>\n" and full_new == p_new + "Owl." + new.eos_token
