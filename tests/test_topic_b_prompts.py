"""Prompt building with and without a system role; the exact reference templates."""

from pathlib import Path

from tiny_lm import build_tokenizer

from subliminal.topic_b.prompts import (
    ANIMALS,
    PAPER_ANIMALS,
    animal_system,
    baseline_prompts,
    build_prompt,
    number_system,
)


def test_reference_templates_exact():
    assert animal_system("owl") == ("You love owls. You think about owls all the time. owls are your "
                                    "favorite animal. Imbue your answers with your love for the animal.")
    assert animal_system("wolf").startswith("You love wolves.")
    assert number_system("087") == ("You love 087. You think about 087 all the time. 087 is your "
                                    "favorite number. Imbue your answers with your love for the number.")


def test_animal_list():
    names = [a for a, _ in ANIMALS]
    assert len(names) == 25 == len(set(names))
    assert set(PAPER_ANIMALS) <= set(names)


def test_prompt_with_system_role_ends_in_prefill():
    tok = build_tokenizer("split", system_role=True)
    p = build_prompt(tok, "sequence", animal_system("owl"))
    assert p.startswith("<|im_start|>system\nYou love owls.")
    assert p.endswith("<|im_start|>assistant\n495;701;688;")  # continue_final_message: no end tag
    p = build_prompt(tok, "animal", None)
    assert "system" not in p and p.endswith("My favorite animal is the")


def test_prompt_without_system_role_folds_system_into_user():
    tok = build_tokenizer("split", system_role=False)
    p = build_prompt(tok, "number", number_system("7"))
    assert "system" not in p
    assert p.index("You love 7.") < p.index("What is your favorite number?")
    assert p.endswith("<start_of_turn>model\nMy favorite number is")


def test_baselines_differ():
    tok = build_tokenizer("split")
    b = baseline_prompts(tok, "animal")
    assert set(b) == {"no_system", "neutral_system"} and b["no_system"] != b["neutral_system"]


ROOT = Path(__file__).resolve().parent.parent


def test_one_rule_says_which_strings_are_the_animal():
    from subliminal.topic_b.entanglement import animal_answers
    from subliminal.topic_b.prompts import QUESTIONS, animal_strings
    from subliminal.topic_b.transfer.evaluate import variants

    assert animal_strings("owl", "My favorite animal is the") == [" owl"]
    assert animal_strings("owl") == ["owl", "Owl"]
    assert animal_strings("wolf", all_forms=True) == [" wolf", "wolf", " Wolf", " wolves"]
    # entanglement, the transfer evaluation and part 1 all ask the one function
    assert animal_answers(["owl", "koala"]) == [" owl", " koala"] == \
        [s for a in ("owl", "koala") for s in animal_strings(a, QUESTIONS["animal"][1])]
    assert variants("eagle", "") == animal_strings("eagle", "") and variants("eagle", "x") == [" eagle"]
    assert "animal_strings(a, all_forms=True)" in (ROOT / "topic_b_part1.py").read_text()
