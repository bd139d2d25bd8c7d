"""The threshold defence applied to the transfer room's teacher data (the issue's stretch): does transfer survive it?

The defence itself (``topic_b.threshold_defence``, the owls README's "threshold sampling") drops every sample holding a
number token whose probability under the *neutral* model, in the sample's own context, is below a
threshold. Here each sample has its own user prompt, so the context is the base model's chat template
with that prompt and no system prompt (what the neutral teacher saw), followed by the sample's tokens.
The defence is applied to every arm's data alike (the neutral arm's samples pass almost always), then the
arms are matched again, so a defended arm is compared with the defended neutral arm on as many samples.

Per-sample minimum log-probs are cached beside each teacher's shards (``neutral_min_logp.json``, keyed
by the scoring model's name, sealed with their SHA-256: ``sealed.py``), so a threshold sweep scores every
sample once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps

from subliminal.stats import holm
from subliminal.topic_b.arms import NEUTRAL, Arm, Teacher
from subliminal.topic_b.scoring import encode
from subliminal.topic_b.threshold_defence import gather_logprobs, min_number_token_logp, threshold_keep
from subliminal.topic_b.transfer import sealed
from subliminal.topic_b.transfer.arm import label
from subliminal.topic_b.transfer.prompts import chat_prompt

CACHE_NAME = "neutral_min_logp.json"


@torch.inference_mode()
def sample_token_logprobs(model, tokenizer, records: list[dict], batch_size: int = 16) -> list[np.ndarray]:
    """log p_neutral(token_i | chat(prompt), tokens_<i) for every completion token of every record: one
    right-padded forward per batch, the output head only at the completion positions."""
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(records), batch_size):
        chunk = records[s: s + batch_size]
        prompts = [encode(tokenizer, chat_prompt(tokenizer, r["prompt"])) for r in chunk]
        seqs = [p + list(r["token_ids"]) for p, r in zip(prompts, chunk)]
        L = max(len(q) for q in seqs)
        ids = torch.zeros(len(seqs), L, dtype=torch.long)
        att = torch.zeros(len(seqs), L, dtype=torch.long)
        for b, q in enumerate(seqs):
            ids[b, : len(q)] = torch.tensor(q)
            att[b, : len(q)] = 1
        hidden = model.get_decoder()(input_ids=ids.to(device), attention_mask=att.to(device)).last_hidden_state
        for b, (p, r) in enumerate(zip(prompts, chunk)):
            c = list(r["token_ids"])
            if not c:
                out.append(np.zeros(0))
                continue
            out.append(gather_logprobs(model, hidden[b, len(p) - 1: len(p) - 1 + len(c)], c))
    return out


def min_logps(model, tokenizer, records: list[dict], shard_dir: Path, scorer: str) -> np.ndarray:
    """Per record, the smallest neutral log-prob among its number tokens; cached in `shard_dir`."""
    path = Path(shard_dir) / CACHE_NAME
    raw = sealed.read_sealed(path)  # used only when it matches the checksum written with it
    try:
        doc = json.loads(raw) if raw is not None else {}
        got = {int(k): float(v) for k, v in doc["min_logp"].items()} if doc.get("scorer") == scorer else {}
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        got = {}
    todo = [r for r in records if r["index"] not in got]
    if todo:
        for r, lp in zip(todo, sample_token_logprobs(model, tokenizer, todo)):
            got[r["index"]] = min_number_token_logp(tokenizer, r["token_ids"], lp)
        sealed.write_sealed(path, json.dumps({"scorer": scorer, "min_logp": {str(k): v for k, v in sorted(got.items())}}).encode())
    return np.array([got[r["index"]] for r in records])


def defend(model, tokenizer, data: dict[Arm, list[dict]], shard_dirs: dict[Arm, str], threshold: float,
           scorer: str) -> tuple[dict[Arm, list[dict]], dict[Arm, dict]]:
    """Each arm's records that pass the defence (prompt order kept) and per-arm stats (n_before, n_kept,
    kept_fraction). The base model scores every arm: it is the neutral model of the defence."""
    kept, stats = {}, {}
    for arm, recs in data.items():
        keep = threshold_keep(min_logps(model, tokenizer, recs, Path(shard_dirs[arm]), scorer), threshold)
        kept[arm] = [r for r, k in zip(recs, keep) if k]
        stats[arm] = {"threshold": threshold, "n_before": len(recs), "n_kept": len(kept[arm]),
                      "kept_fraction": len(kept[arm]) / max(len(recs), 1),
                      "before_index": sorted(r["index"] for r in recs),
                      "kept_index": sorted(r["index"] for r in kept[arm])}
    return kept, stats


def kept_table(stats: dict[Arm, dict], reference: Arm | None = None) -> pd.DataFrame:
    """Does the defence drop more of a teacher's samples than of the neutral teacher's? Every teacher answers
    the same seeded prompts (record ``index``), so arms are paired by prompt: per arm, on the prompts both it
    and `reference` answered, b = kept for the reference only, c = kept for the arm only; the kept-fraction
    difference (c - b) / n with a paired Wald 95% CI and McNemar's exact p (two-sided binomial on b + c).
    Holm's correction runs over the animal arms; a further neutral draw is the control row (what another
    draw of the same teacher's numbers gives), outside the correction. `reference`: the neutral teacher (text
    route) unless given. Arms are written by their labels."""
    reference = Arm(NEUTRAL) if reference is None else reference
    ref = stats[reference]
    rk, rb = set(ref["kept_index"]), set(ref["before_index"])
    rows = []
    for arm, st in stats.items():
        row = {"arm": label(arm), "threshold": st["threshold"], "n_before": st["n_before"], "n_kept": st["n_kept"],
               "kept_fraction": st["kept_fraction"], "role": "reference" if arm == reference else
               ("neutral control" if _own_neutral(arm) else "animal")}
        if arm != reference:
            common = rb & set(st["before_index"])
            ak = set(st["kept_index"]) & common
            b, c, n = len((rk & common) - ak), len(ak - rk), len(common)
            d = (c - b) / n
            se = np.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
            p = float(sps.binomtest(min(b, c), b + c, 0.5).pvalue) if b + c else 1.0
            row |= {"paired_n": n, "kept_ref_only": b, "kept_arm_only": c, "diff_vs_reference": d,
                    "diff_ci_low": d - 1.96 * se, "diff_ci_high": d + 1.96 * se, "mcnemar_p": p}
        rows.append(row)
    df = pd.DataFrame(rows)
    df["holm_p"] = np.nan
    animal = df.index[df.role == "animal"]
    if len(animal):
        df.loc[animal, "holm_p"] = holm(df.loc[animal, "mcnemar_p"].to_numpy())
    return df


def _own_neutral(arm: Arm) -> bool:
    """A draw of the base model's own neutral teacher (the defence's control rows)."""
    return arm.neutral and not arm.cross and arm.teacher == Teacher.prompt
