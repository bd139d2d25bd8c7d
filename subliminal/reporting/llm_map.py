"""README's map of the LLM transfer results (table ``b_llm_map``): one row per rung, from the theorem's conditions
(the ladder, ``topic_b_transfer_theory.py``) down to the paper's recipe (the transfer runs, ``topic_b_transfer.py``
and its variants), columns owl and eagle, each cell '×ratio [CI] verdict'. Read from plots_b only: the ladder's
verdict CSV (CIs at each verdict's Holm level) and the transfer runs' summary CSVs (95% CIs, their verdict's level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting import theory, transfer
from subliminal.reporting.render import table
from subliminal.topic_b.theory.analysis import MIN_SEEDS
from subliminal.topic_b.theory.cells import BY_KEY, FAMILIES, label

ANIMALS = ("owl", "eagle")
# transfer run stem -> (the rung's name, {animal: the arm whose students carry it})
ARMS = (("topic_b_transfer_logits", "logits route: system-prompted teacher, number-token KL on its sampled lists",
         {"owl": "owl", "eagle": "eagle"}),
        ("topic_b_transfer_weights", "weight-level teacher, SFT on its sampled lists", {"owl": "owl_w", "eagle": "eagle_w"}),
        ("topic_b_transfer", "the paper's recipe: system-prompted teacher, SFT on its sampled lists",
         {"owl": "owl", "eagle": "eagle"}),
        ("topic_b_transfer_defence", "the paper's recipe after the threshold defence", {"owl": "owl", "eagle": "eagle"}),
        ("topic_b_transfer", "the paper's recipe, a teacher of another base model ({cross})", {"owl": "cross_owl"}))


def ladder_rows(root: Path) -> list[list[str]]:
    got = theory._load(root)
    if got is None:
        return []
    v = got[0]["_verdicts"]
    primary = {k for k, _ in FAMILIES["primary"]}
    out = []
    for key in BY_KEY:
        g = v[v.cell == key] if len(v) else v
        if not len(g):
            continue
        cells = {r.animal: f"{theory.at_level(r, 'share_mean')} {theory.word(r)}" for r in g.itertuples()}
        out.append([label(key), "primary" if key in primary else "secondary", "share among 25 animals; neutral teacher",
                    *[cells.get(a, "—") for a in ANIMALS]])
    return out


def _arm_cell(r) -> str:
    ratio = transfer._versus(r)[0]
    n = int(r.n_seeds)
    if n < MIN_SEEDS:
        return f"×{ratio} (95% CI) too few seeds (n = {n})"
    return f"×{ratio} (95% CI) {r.verdict}" if r.verdict else f"×{ratio} (95% CI)"


def transfer_rows(root: Path) -> list[list[str]]:
    out = []
    for stem, name, arms in ARMS:
        got = transfer._load(root, stem)
        if got is None:
            continue
        s, meta = got
        cells, vs = {}, ""
        for animal, arm in arms.items():
            g = s[(s.arm == arm) & (s.animal == animal)]
            if len(g) and np.isfinite(float(pd.to_numeric(g.iloc[0].ratio_to_neutral, errors="coerce"))):
                cells[animal] = _arm_cell(g.iloc[0])
                vs = vs or transfer._versus(g.iloc[0])[2].split(", ")[0].removeprefix("vs ")
        if cells:
            cross = (meta.get("config") or {}).get("cross_model") or "another model"
            out.append([name.format(cross=cross) + ("" if meta.get("complete") else " (partial run)"), "transfer run",
                        f"P(animal); {vs}", *[cells.get(a, "—") for a in ANIMALS]])
    return out


def b_llm_map(root: Path) -> str:
    rows = ladder_rows(root) + transfer_rows(root)
    if not rows:
        return "_No LLM transfer result yet._"
    return "\n".join([
        f"**LLM transfer, SmolLM2-135M-Instruct** (the ladder: {theory.state(root)}; own teacher's students / the "
        "control's, ×ratio [CI] verdict; each CI at the level its verdict uses):", "",
        table(rows, ["rung, from the theorem's conditions to the paper's recipe", "tests", "readout; control", *ANIMALS]), "",
        "The ladder's primary family (cells a and b) is fixed in code and Holm-corrected inside itself; secondary "
        "rungs are corrected in their own families and read against cell b in the docs; the transfer runs' verdicts "
        "are per arm, at 95% ([the ladder](docs/topic_b_transfer.md#under-the-theorems-conditions), "
        "[the transfer runs](docs/topic_b_transfer.md); the claims' verdicts: [docs/topic_b.md](docs/topic_b.md))."])


def tables(root: Path) -> dict[str, str]:
    return {"b_llm_map": b_llm_map(Path(root))}
