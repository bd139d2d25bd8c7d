"""Slow: part 2 on the real SmolLM2-135M-Instruct for two explicit numbers (needs the asset)."""

import numpy as np
import pytest


@pytest.mark.slow
def test_part2_smollm2_two_numbers(tmp_path):
    import topic_b_part2
    from subliminal.common import parse_config

    cfg = parse_config(topic_b_part2.Config, ["--numbers", "087", "747", "--animals", "owl", "eagle",
                                              "--out", str(tmp_path)])
    df = topic_b_part2.main(cfg)
    assert set(df["number"]) == {"087", "747"} and set(df["animal"]) == {"owl", "eagle"}
    for col in ["model", "number", "animal", "p_no_system", "p_neutral_system", "p_subliminal"]:
        assert col in df.columns
    assert np.all((df["p_subliminal"] > 0) & (df["p_subliminal"] < 1))
    assert (tmp_path / "topic_b_part2.csv").exists()
