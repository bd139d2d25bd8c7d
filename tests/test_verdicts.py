"""Verdict records: allowed values, atomic round trip, corrupt files refused; the committed records' values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from subliminal.cli import UserError
from subliminal.verdicts import COLUMNS, VERDICTS, Verdict, read_verdicts, record, write_verdicts

ROOT = Path(__file__).resolve().parent.parent


def test_only_the_defined_verdicts_and_a_named_claim_are_allowed():
    assert VERDICTS == ("reproduced", "differs", "partly", "inconclusive", "contradicts", "untestable here")
    with pytest.raises(ValueError):
        Verdict("A", "topic_a.py", "seed: x", "holds", "e")
    with pytest.raises(ValueError):
        record("A", "topic_a.py", "", "reproduced", "e")


def test_round_trip_keeps_order_text_and_the_empty_model(tmp_path):
    recs = [record("A", "topic_a.py", "seed: teacher 94.3%", "reproduced", "ours 94.3% [94.2%, 94.4%], \"quoted\""),
            record("B", "topic_b_part2.py", "claim, with a comma", "untestable here", "", model="gemma-3-270m")]
    path = write_verdicts(tmp_path / "v.csv", recs)
    got = read_verdicts(path)
    assert list(got.columns) == list(COLUMNS)
    assert got.to_dict("records") == recs
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left behind


def test_corrupt_files_are_refused_with_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame([{**record("A", "s.py", "c", "reproduced", "e"), "verdict": "probably"}]).to_csv(bad, index=False)
    with pytest.raises(UserError, match="outside"):
        read_verdicts(bad)
    bad.write_text("topic,script\nA,s.py\n")
    with pytest.raises(UserError, match="lacks column"):
        read_verdicts(bad)
    with pytest.raises(UserError, match="make report"):
        read_verdicts(tmp_path / "missing.csv")


def _committed(topic: str) -> pd.DataFrame:
    return read_verdicts(ROOT / ("plots_a" if topic == "A" else "plots_b") / "verdicts.csv")


def test_committed_topic_a_verdicts_follow_the_confidence_intervals():
    """Recompute each seed-number verdict from the summary CSV: reproduced iff the seed's value is inside our CI, else
    differs (a missed number is never 'contradicts')."""
    from subliminal.reporting.render import row
    from subliminal.reporting.seed_claims import A_CLAIMS

    v = _committed("A").set_index("claim").verdict
    for claim, seed, script, match in A_CLAIMS:
        s = pd.read_csv(ROOT / "plots_a" / f"{script}_summary.csv")
        r = row(s, **match)
        expect = "reproduced" if r.ci95_low <= seed <= r.ci95_high else "differs"
        assert v[f"seed: {claim} {seed:.1%}"] == expect, claim


def test_committed_topic_b_verdicts_have_one_row_per_model():
    vb = _committed("B")
    step2 = pd.read_csv(ROOT / "plots_b" / "topic_b_step2_extended.csv")
    for claim in ("seed: ratios of 200×+", "entangled numbers beat random ones"):
        rows = vb[vb.claim.str.startswith(claim)]
        assert sorted(rows.model) == sorted(step2.model.unique()), claim  # a model in the CSV has its own record
    beats = step2.groupby("model").significant.sum()
    for r in vb[vb.claim.str.startswith("entangled numbers beat random ones")].itertuples():
        n = int(beats[r.model])
        assert r.verdict == ("reproduced" if n >= 12.5 else "partly" if n > 2.5 else "contradicts")
