"""One arm identity for both LLM rooms (``topic_b.arms``): every arm names and hashes exactly as before the knobs
were enums, so no cache key moves. The expected names and ``cache.config_hash(arm.identity())`` values below were
written down from the code of before the change (knobs as plain strings, ``transfer.arm.Arm``)."""

from __future__ import annotations

import dataclasses

import pytest

from subliminal.cache import config_hash
from subliminal.topic_b.arms import NEUTRAL, Arm, Init, Inputs, Loss, Optim, Param, Route, Teacher
from subliminal.topic_b.theory.cells import BY_KEY, CELLS
from subliminal.topic_b.transfer.arm import from_label

# (how the arm is built, its name, config_hash(arm.identity())), recorded before the enums
BEFORE = [
    ("Arm('owl')", 'owl', '31409bb8bf218fb7'),
    ("Arm('neutral')", 'neutral', '9c8c0d83edc03e39'),
    ("Arm('owl', teacher='prompt')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', teacher='weights')", 'owl-weights', '18fa23690a4e9193'),
    ("Arm('owl', route='text', loss='sft')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', route='logits', loss='number_kl')", 'owl-logits-number_kl', '77001da43b175ea5'),
    ("Arm('owl', loss='sft', route='text')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', loss='number_kl', route='logits')", 'owl-logits-number_kl', '77001da43b175ea5'),
    ("Arm('owl', loss='full_kl', route='logits')", 'owl-logits-full_kl', 'c8b3c5ff8eaa4f6d'),
    ("Arm('owl', param='lora')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', param='full')", 'owl-full', '76c3bd2ed26b83e4'),
    ("Arm('owl', optim='adam')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', optim='sgd')", 'owl-sgd', '27f75cf512ba638e'),
    ("Arm('owl', init='shared')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', init='adapter_cross')", 'owl-adapter_cross', '4ba822c2fb247965'),
    ("Arm('owl', init='noisy_base')", 'owl-noisy_base', '5665bb1a5ba9dffc'),
    ("Arm('owl', inputs='teacher')", 'owl', '31409bb8bf218fb7'),
    ("Arm('owl', inputs='random')", 'owl-random', '9ab14d9b46039f5f'),
    ("Arm('owl', inputs='neutral_text')", 'owl-neutral_text', '28193105ba47d71d'),
    ("Arm('eagle', teacher='weights', teacher_model='qwen', draw=2, route='logits', loss='full_kl', param='full', optim='sgd', init='noisy_base', inputs='neutral_text')", 'eagle-from-qwen-draw3-weights-logits-full_kl-full-sgd-noisy_base-neutral_text', '6fedbf14afd56f47'),
    ("BY_KEY['a'].arm('neutral')", 'neutral-weights-logits-full_kl-random', 'b241ee1e4b084999'),
    ("BY_KEY['a'].arm('owl')", 'owl-weights-logits-full_kl-random', 'df3ebeaf52438ea6'),
    ("BY_KEY['a'].arm('eagle')", 'eagle-weights-logits-full_kl-random', 'fbc32685c7a74833'),
    ("BY_KEY['b'].arm('neutral')", 'neutral-weights-logits-number_kl-random', '1fda25ab3b26c787'),
    ("BY_KEY['b'].arm('owl')", 'owl-weights-logits-number_kl-random', 'b8786d09cc0e2942'),
    ("BY_KEY['b'].arm('eagle')", 'eagle-weights-logits-number_kl-random', 'c0ec033d18dc7db8'),
    ("BY_KEY['b-xinit'].arm('neutral')", 'neutral-weights-logits-number_kl-adapter_cross-random', '1a8790348c930268'),
    ("BY_KEY['b-xinit'].arm('owl')", 'owl-weights-logits-number_kl-adapter_cross-random', '3a5c25f1ff8d215b'),
    ("BY_KEY['b-xinit'].arm('eagle')", 'eagle-weights-logits-number_kl-adapter_cross-random', '67b281c84613f2e2'),
    ("BY_KEY['b-full'].arm('neutral')", 'neutral-weights-logits-number_kl-full-random', 'a867174af9a70280'),
    ("BY_KEY['b-full'].arm('owl')", 'owl-weights-logits-number_kl-full-random', 'cdc3dfc4bf2acfc7'),
    ("BY_KEY['b-sgd'].arm('neutral')", 'neutral-weights-logits-number_kl-sgd-random', 'dd5b0aea8edbe8d3'),
    ("BY_KEY['b-sgd'].arm('owl')", 'owl-weights-logits-number_kl-sgd-random', 'af915807e6534cdc'),
    ("BY_KEY['b-noisy'].arm('neutral')", 'neutral-weights-logits-number_kl-noisy_base-random', '3960052e38dae5e2'),
    ("BY_KEY['b-noisy'].arm('owl')", 'owl-weights-logits-number_kl-noisy_base-random', '3a6f7b74d6ee0194'),
    ("BY_KEY['b-neutral-inputs'].arm('neutral')", 'neutral-weights-logits-number_kl-neutral_text', 'e48ba7a98501f79f'),
    ("BY_KEY['b-neutral-inputs'].arm('owl')", 'owl-weights-logits-number_kl-neutral_text', '92c7a150aee0d78f'),
    ("BY_KEY['b-neutral-inputs'].arm('eagle')", 'eagle-weights-logits-number_kl-neutral_text', '4c688e890ceb5193'),
    ("BY_KEY['c'].arm('neutral')", 'neutral-weights', 'ef575eb9dd4dc7e1'),
    ("BY_KEY['c'].arm('owl')", 'owl-weights', '18fa23690a4e9193'),
    ("BY_KEY['c'].arm('eagle')", 'eagle-weights', 'ae9d94146177548a'),
    ("from_label('owl', route='text')", 'owl', '31409bb8bf218fb7'),
    ("from_label('owl', route='logits')", 'owl-logits-number_kl', '77001da43b175ea5'),
    ("from_label('neutral', route='text')", 'neutral', '9c8c0d83edc03e39'),
    ("from_label('neutral', route='logits')", 'neutral-logits-number_kl', '768f1aac68f63385'),
    ("from_label('neutral_2', route='text')", 'neutral-draw2', '8bfa4a20bdfa5395'),
    ("from_label('neutral_2', route='logits')", 'neutral-draw2-logits-number_kl', '73bf0a51eac4a6b4'),
    ("from_label('neutral_3', route='text')", 'neutral-draw3', '49f885ba6706ca47'),
    ("from_label('neutral_3', route='logits')", 'neutral-draw3-logits-number_kl', '35b663d01b2d86c9'),
    ("from_label('owl_w', route='text')", 'owl-weights', '18fa23690a4e9193'),
    ("from_label('owl_w', route='logits')", 'owl-weights-logits-number_kl', '455f1a9e92172970'),
    ("from_label('eagle_w', route='text')", 'eagle-weights', 'ae9d94146177548a'),
    ("from_label('eagle_w', route='logits')", 'eagle-weights-logits-number_kl', '5ccd72142a99360a'),
    ("from_label('cross_owl', route='text')", 'owl-from-other', 'a3672d558150561e'),
    ("from_label('cross_owl', route='logits')", 'owl-from-other-logits-number_kl', '08dee9410feedd29'),
    ("from_label('cross_neutral', route='text')", 'neutral-from-other', 'e4ca7a08a9bb91e8'),
    ("from_label('cross_neutral', route='logits')", 'neutral-from-other-logits-number_kl', 'c079785ba08cfb27'),
    ("from_label('cross_owl', cross_model='qwen2.5-coder-0.5b-instruct')", 'owl-from-qwen2.5-coder-0.5b-instruct', '9a32b660886ec318'),
]


@pytest.mark.parametrize("expr, name, h", BEFORE, ids=[b[0] for b in BEFORE])
def test_names_and_cache_identities_are_those_of_before(expr, name, h):
    arm = eval(expr, {"Arm": Arm, "BY_KEY": BY_KEY, "from_label": from_label})
    assert arm.name == name
    assert config_hash(arm.identity()) == h
    assert config_hash(dataclasses.asdict(arm)) == h  # the knobs' members hash as their strings too


def test_the_table_covers_every_knob_value_and_every_ladder_cell():
    arms = [eval(e, {"Arm": Arm, "BY_KEY": BY_KEY, "from_label": from_label}) for e, _, _ in BEFORE]
    for f, kind in (("teacher", Teacher), ("route", Route), ("param", Param), ("optim", Optim), ("init", Init),
                    ("inputs", Inputs)):
        assert {getattr(a, f) for a in arms} == set(kind), f
    assert {a.loss for a in arms} == set(Loss) - {Loss.shared_class_kl}  # new: no arm of before had it
    assert {c.arm(t) for c in CELLS for t in c.traits()} <= set(arms)


def test_identity_is_plain_strings_in_field_order():
    arm = BY_KEY["b-xinit"].arm("owl")
    ident = arm.identity()
    assert list(ident) == [f.name for f in dataclasses.fields(Arm)]
    assert all(type(v) in (str, int) for v in ident.values())
    assert Arm(**ident) == arm  # a record's arm reads back as the same value


def test_strings_and_members_make_the_same_arm():
    a = Arm("owl", loss="number_kl", route="logits")
    b = Arm("owl", loss=Loss.number_kl, route=Route.logits)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.loss is Loss.number_kl and a.route is Route.logits and a.teacher is Teacher.prompt
    assert a.loss == "number_kl" and f"{a.loss}" == "number_kl" and str(a.route) == "logits"
    assert config_hash(a.identity()) == config_hash(b.identity()) == "77001da43b175ea5"


@pytest.mark.parametrize("field, value", [("loss", "mse"), ("teacher", "system"), ("param", "LoRA"), ("optim", None),
                                          ("init", "cross"), ("inputs", "text"), ("route", "tokens")])
def test_a_bad_knob_is_one_line_naming_the_allowed_values(field, value):
    with pytest.raises(ValueError) as e:
        Arm("owl", **{field: value} | ({"route": "logits"} if field == "loss" else {}))
    kind = {"teacher": Teacher, "route": Route, "loss": Loss, "param": Param, "optim": Optim, "init": Init,
            "inputs": Inputs}[field]
    assert str(e.value) == f"arm {field}={value!r}: choose from {', '.join(m.value for m in kind)}"


def test_route_and_loss_go_together():
    for loss in (Loss.number_kl, Loss.full_kl, Loss.shared_class_kl):
        assert Arm("owl", route="logits", loss=loss).loss is loss
        with pytest.raises(ValueError):
            Arm("owl", route="text", loss=loss)
    with pytest.raises(ValueError):
        Arm("owl", route="logits", loss="sft")
    for bad in ({"trait": "Owl"}, {"trait": ""}, {"trait": "owl", "draw": -1}):
        with pytest.raises(ValueError):
            Arm(**bad)


def test_a_shared_class_arm_names_its_teacher_model():
    arm = Arm("owl", teacher="weights", teacher_model="qwen2.5-coder-0.5b-instruct", route="logits",
              loss="shared_class_kl")
    assert arm.cross and arm.name == "owl-from-qwen2.5-coder-0.5b-instruct-weights-logits-shared_class_kl"
    assert arm.reference() == dataclasses.replace(arm, trait=NEUTRAL) and arm.system_prompt() is None
