"""Verdicts as data: every conclusion the README states is a record computed from the result CSVs.

A record says which claim (the seed's, a peer's, or ours) a script's numbers bear on, one word for
what they say (`VERDICTS`, each defined once in `DEFINITIONS`, which the README renders), and the
evidence (the numbers, as text). `make report` writes them to
plots_a/verdicts.csv and plots_b/verdicts.csv and renders README/docs from those files; tests check
the verdict words, not the sentences around them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from subliminal.cli import UserError
from subliminal.results import write_csv

# The verdict words, defined once: what each says about a claim given our measurement. A miss of a claimed number
# is "differs" (with its direction and size), never "contradicts"; a null whose CI still admits the claimed
# effect is "inconclusive" (with the smallest effect its CI excludes), never "contradicts".
DEFINITIONS = {
    "reproduced": "the claim holds in our data: a claimed number lies inside our 95% CI; a claimed effect or shape "
                  "shows (significantly where a test applies)",
    "differs": "a claimed number lies outside our 95% CI; the evidence gives the direction and the size of the difference",
    "partly": "part of the claim holds: some of the animals, sizes or settings, or a trend the claimed way that is not significant",
    "inconclusive": "no effect detected, but the CI does not exclude the claimed one; the evidence states the smallest "
                    "effect the CI excludes (the power of the null)",
    "contradicts": "the claim's direction or existence fails with a CI (or test) that excludes it",
    "untestable here": "the data here cannot test it (offline models, no effect to explain, a run not yet done)",
}
VERDICTS = tuple(DEFINITIONS)
# The words of single tests (an effect in the LLM ladder, a transfer run or the base matrix, a rung against cell b, a
# pair against the base matrix's diagonal, a teacher's trait check), which the README prints beside each ratio,
# defined once here; the claim verdicts above are built from them.
TEST_WORDS = {
    "transfer": "the own teacher's students take on the animal more than the control's: the test is significant "
                "after the correction of its family, and the CI printed beside it (at that level) lies above ×1",
    "reverse": "the same test significant the other way: the CI lies below ×1",
    "none detected": "not significant after the correction: the CI contains ×1; the MDE beside it (80% power, the "
                     "same level) is the power of the null",
    "too few seeds": "fewer than 3 seeds: no test (with 2, a t-test has 1 degree of freedom); the 95% CI is shown",
    "larger than b": "a rung's share effect exceeds cell b's, paired by seed, significant after Holm over the rungs",
    "smaller than b": "a rung's share effect falls short of cell b's, paired by seed, significant after Holm over the rungs",
    "not distinguishable from b": "the rung's difference from cell b is not significant after Holm over the rungs",
    "larger than the diagonal": "in the base matrix, a pair's (or a noisy base's) share effect exceeds the diagonal's "
                                "of the same student base, paired by seed, significant after Holm in its family",
    "smaller than the diagonal": "the same test significant the other way: the pair keeps less of the effect than "
                                 "the teacher's own base does",
    "not distinguishable from the diagonal": "the pair's difference from the diagonal is not significant after Holm "
                                             "in its family",
    "carries its trait": "a trait teacher's own share of its animal exceeds the neutral teacher's: the CI over the "
                         "evaluation questions, at its Holm level over the bases × animals checked, lies above ×1",
    "trait not detected": "that CI does not lie above ×1: the teacher's students cannot test its trait",
    "base works": "in the base-noise dose, every seed's noisy base reads the teachers' held-out answers within 0.1 "
                  "nats/token of the clean base (`matrix_analysis.WORKS_WITHIN`, fixed in code): its students "
                  "test transfer",
    "base degraded": "a noisy base that some seed's draw leaves more than that above the clean base: a smaller effect "
                     "there may be no model rather than no transfer, so the init-noise sweep's verdict does not count it",
}
COLUMNS = ("topic", "script", "claim", "verdict", "evidence", "model")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One conclusion. `model` names the LM for Topic B per-model verdicts ('' where it does not apply)."""

    topic: str
    script: str
    claim: str
    verdict: str
    evidence: str
    model: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")
        for f in ("topic", "script", "claim"):
            if not getattr(self, f):
                raise ValueError(f"a verdict record needs a non-empty {f}")


def record(topic: str, script: str, claim: str, verdict: str, evidence: str, model: str = "") -> dict:
    """A checked record as the dict that verdict providers return."""
    return dataclasses.asdict(Verdict(topic, script, claim, verdict, evidence, model))


def write_verdicts(path: str | Path, records: list[dict]) -> Path:
    """Write records (checked) atomically as CSV, in the order given."""
    rows = [dataclasses.asdict(Verdict(**{k: r.get(k, "") for k in COLUMNS})) for r in records]
    return write_csv(pd.DataFrame(rows, columns=list(COLUMNS)), path)


def read_verdicts(path: str | Path) -> pd.DataFrame:
    """Read a verdicts CSV; a missing column or a verdict outside VERDICTS is a UserError."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"cannot read {path} ({e}): regenerate it with `make report`") from e
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}: regenerate it with `make report`")
    bad = sorted(set(df.verdict) - set(VERDICTS))
    if bad:
        raise UserError(f"{path} has verdict(s) {', '.join(map(repr, bad))} outside {VERDICTS}: regenerate it with `make report`")
    return df[list(COLUMNS)]
