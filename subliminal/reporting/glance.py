"""Tables rendered from the verdict CSVs (plots_a/verdicts.csv, plots_b/verdicts.csv): the README's
"Results at a glance" and the full verdict tables of the docs pages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from subliminal.reporting.render import ci, load_a, read_b, row, table
from subliminal.verdicts import DEFINITIONS, TEST_WORDS


def _word(v: str) -> str:
    return f"**{v}**"


def a_claims(va: pd.DataFrame) -> str:
    s = va[va.claim.str.startswith("seed:")]
    return table([[r.claim.removeprefix("seed: "), _word(r.verdict), r.evidence, f"`{r.script}`"] for r in s.itertuples()],
                 ["seed's claim", "verdict", "evidence (ours: mean [95% CI] over models)", "script"]) + (
        "\n\n_reproduced = the seed's number lies inside our 95% CI (a shape: it holds in our means); differs = our CI "
        "excludes it (by the size and in the direction given). Computed from the CSVs by `make report` into "
        "`plots_a/verdicts.csv`; every word is defined in the README._")


def a_verdicts(va: pd.DataFrame) -> str:
    s = va[~va.claim.str.startswith("seed:") | va.script.str.contains("mech|noise_regime")]
    return table([[r.claim, _word(r.verdict), r.evidence, f"`{r.script}`"] for r in s.itertuples()],
                 ["claim", "verdict", "evidence", "script"])


EXT_SCRIPTS = ("topic_b_data_frequency.py", "topic_b_across_models.py")


def b_verdicts(vb: pd.DataFrame) -> str:
    return table([[r.model or "all", r.claim, _word(r.verdict), r.evidence, f"`{r.script}`"] for r in vb.itertuples()],
                 ["model", "claim", "verdict", "evidence", "script"])


def _short(claim: str) -> str:
    """A claim without its parenthesised detail, for one-line lists."""
    return claim.split(" (")[0]


def _grouped(g: pd.DataFrame) -> list[str]:
    """'claim verdict' per claim; claims that differ only in their parenthesised detail (the animal, the
    route) share one entry: 'claim: owl **contradicts**, eagle (weight-level teacher) **partly**'."""
    out = []
    for short, h in g.groupby(g.claim.map(_short), sort=False):
        if len(h) == 1:
            out.append(f"{short} {_word(h.verdict.iloc[0])}")
        else:
            out.append(f"{short}: " + ", ".join(f"{_detail(c, short)} {_word(v)}" for c, v in zip(h.claim, h.verdict)))
    return out


def _detail(claim: str, short: str) -> str:
    """'x (owl) (weight-level teacher)' -> 'owl, weight-level teacher'."""
    return ", ".join(part.strip(" ()") for part in claim[len(short):].split(") (")) or "—"


CORRECTION = "this repo's earlier reading"
MAP_SCRIPTS = ("topic_b_transfer.py", "topic_b_transfer_theory.py")  # shown in README's LLM map instead
BLOCK_SCRIPTS = ("topic_b_base_matrix.py",)  # their claims and verdicts in their own README block (b_matrix_glance)
ANIMALS = ("owl", "eagle")


def _single_rows(g: pd.DataFrame, repeat: bool = False) -> list[list[str]]:
    """One row per claim and setting (its parenthesised detail without the animal); the animals' verdicts side by
    side: 'owl **reproduced**, eagle **inconclusive**'."""
    rows: dict[tuple[str, str], list[str]] = {}
    for c, v in zip(g.claim, g.verdict):
        short = _short(c)
        parts = [x for x in _detail(c, short).split(", ") if x != "—"] if c != short else []
        animal = next((x for x in parts if x in ANIMALS), "")
        setting = ", ".join(x for x in parts if x != animal) or "—"
        rows.setdefault((short, setting), []).append(f"{animal} {_word(v)}" if animal else _word(v))
    order = list(dict.fromkeys(short for short, _ in rows))  # a claim's settings together, the claim written once
    keys = sorted(rows, key=lambda k: order.index(k[0]))
    return [[short if repeat or i == 0 or keys[i - 1][0] != short else "″", setting, ", ".join(rows[short, setting])]
            for i, (short, setting) in enumerate(keys)]


def glance(root: Path, va: pd.DataFrame, vb: pd.DataFrame) -> str:
    """Headline rows with CIs and one verdict word per claim, a table per topic (README's Results at a glance,
    <= 45 lines; the LLM transfer results follow in their own map)."""
    base = load_a(root, "topic_a")
    gap = f"; same-init − cross-model student {ci(row(base[1], a='student_aux', b='cross_aux'))}" if base is not None else ""
    out = [f"**Topic A** (MNIST MLPs, 25 models, mean [95% CI]{gap}):", ""]
    seed = va[va.claim.str.startswith("seed:") & va.evidence.str.startswith("ours")]
    out.append(table([[r.claim.removeprefix("seed: "), _word(r.verdict), r.evidence.removeprefix("ours ").split(";")[0]]
                      for r in seed.itertuples()], ["seed's claim", "verdict", "ours"]))
    rest = va[~va.index.isin(seed.index)]
    out += [""] + [f"- {_word(v)}: " + "; ".join(_short(c) for c in g.claim) + "."
                   for v, g in rest.groupby("verdict", sort=False)]
    # corrections of this repo's own earlier statements stay in verdicts.csv and docs/, not in the headline
    vb = vb[~vb.script.isin(BLOCK_SCRIPTS)]
    testable = vb[(vb.verdict != "untestable here") & ~vb.claim.str.startswith(CORRECTION)]
    models = list(dict.fromkeys(m for m in testable.model if m))
    out += ["", "**Topic B** (token entanglement, one column per offline model):", ""]
    rows = []
    am = read_b(root, "topic_b_across_models.csv")
    if am is not None:
        lg = am[am.finder == "logit"].set_index("model")
        rows.append(["headline: animals whose entangled numbers beat random ones; median best-number ratio vs random numbers"] +
                    [f"{int(lg.beats_null_p95[m])}/{int(lg.animals[m])}; {lg.median_ratio_vs_random[m]:.3g}×"
                     if m in lg.index else "—" for m in models])
    # the LLM transfer claims are read from README's map of the runs (reporting/llm_map.py), their words in docs/
    ent = testable[~testable.script.isin(MAP_SCRIPTS)]
    cells = {(r.claim, r.model): r.verdict for r in ent.itertuples()}
    per_claim = ent.groupby("claim", sort=False).model.nunique()
    rows += [[_short(c)] + [_word(cells[c, m]) if (c, m) in cells else "—" for m in models]
             for c in per_claim.index if per_claim[c] > 1]
    single = ent[ent.claim.map(per_claim) == 1]
    for m, g in single.groupby("model", sort=False):
        rows += [[claim + (f" ({setting})" if setting != "—" else "")]
                 + [verdict if x == m else "—" for x in models] for claim, setting, verdict in _single_rows(g, repeat=True)]
    out.append(table(rows, ["", *models]))
    tested = {_short(c) for c in testable.claim}  # e.g. the owl teacher tested, the eagle one underpowered
    untestable = list(dict.fromkeys(_short(c) for c in vb[vb.verdict == "untestable here"].claim
                                    if _short(c) not in tested))
    if untestable:
        out += ["", "- **untestable here** (offline models, or runs not done yet): " + "; ".join(untestable) + "."]
    return "\n".join(out)


def verdict_words() -> str:
    """The verdict words, each defined once (subliminal.verdicts.DEFINITIONS)."""
    return ("Verdicts, one record per claim (and per model in Topic B) in `plots_a/verdicts.csv` and "
            "`plots_b/verdicts.csv`, with the evidence:\n" + "\n".join(f"- **{w}**: {d}." for w, d in DEFINITIONS.items())
            + "\n\nThe words of single tests in the LLM transfer map and the base matrix:\n"
            + "\n".join(f"- *{w}*: {d}." for w, d in TEST_WORDS.items()))


def tables(root: Path, va: pd.DataFrame, vb: pd.DataFrame) -> dict[str, str]:
    ext = vb.script.isin(EXT_SCRIPTS)
    return {"verdict_words": verdict_words(), "glance": glance(root, va, vb), "a_claims": a_claims(va), "a_verdicts": a_verdicts(va),
            "b_verdicts_core": b_verdicts(vb[~ext]), "b_verdicts_ext": b_verdicts(vb[ext])}
