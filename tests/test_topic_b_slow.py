"""Slow: part 2 on the real SmolLM2-135M-Instruct for two explicit numbers (needs the asset)."""

import numpy as np
import pytest


@pytest.mark.slow
def test_part2_smollm2_two_numbers(tmp_path):
    import topic_b_part2
    from subliminal.cli import parse_config

    cfg = parse_config(topic_b_part2.Config, ["--numbers", "087", "747", "--animals", "owl", "eagle",
                                              "--out", str(tmp_path)])
    df = topic_b_part2.main(cfg)
    assert set(df["number"]) == {"087", "747"} and set(df["animal"]) == {"owl", "eagle"}
    for col in ["model", "number", "animal", "p_no_system", "p_neutral_system", "p_subliminal"]:
        assert col in df.columns
    assert np.all((df["p_subliminal"] > 0) & (df["p_subliminal"] < 1))
    assert (tmp_path / "topic_b_part2.csv").exists()


@pytest.mark.slow
def test_tampered_dequant_config_of_smollm2_is_rebuilt(scratch_cache, capsys):
    """The issue's case: editing rms_norm_eps in the cached config.json changed P(owl) from 9.75e-4 to
    1.6e-8 without a word. Now the folder is rebuilt (said in one line) and P(owl) is unchanged."""
    import json
    import os

    from subliminal import assets
    from subliminal.topic_b import lm
    from subliminal.topic_b.prompts import build_prompt
    from subliminal.topic_b.scoring import score_continuations

    real = assets.Path.home() / ".cache" / "subliminal" / assets.ASSETS["smollm2-135m-instruct"].filename
    if not real.exists():
        pytest.skip("SmolLM2 asset not cached")
    os.symlink(real, scratch_cache / real.name)

    def p_owl(model, tok):
        return float(np.exp(score_continuations(model, tok, build_prompt(tok, "animal"), [" owl"])["logp"][0]))

    before = p_owl(*lm.load_model("smollm2-135m-instruct"))
    d = scratch_cache / "dequant" / assets.ASSETS["smollm2-135m-instruct"].sha256
    cfg = json.loads((d / "config.json").read_text())
    cfg["rms_norm_eps"] = 0.1
    (d / "config.json").write_text(json.dumps(cfg))
    tampered = p_owl(*lm._load_dir(d, "x", "cpu"))  # what the unchecked cache used to give
    assert abs(np.log(tampered / before)) > 1
    capsys.readouterr()
    after = p_owl(*lm.load_model("smollm2-135m-instruct"))
    assert [x for x in capsys.readouterr().err.splitlines() if x.startswith("[lm]")][0].count("config.json") == 1
    assert after == pytest.approx(before, rel=1e-6)
    assert json.loads((d / "config.json").read_text())["rms_norm_eps"] != 0.1
