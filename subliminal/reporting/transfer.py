"""README table and verdicts of the transfer experiment (``topic_b_transfer.py``), read from plots_b only.

``tables(root)``: ``b_transfer`` (the summary with CIs over seeds) and ``b_transfer_glance`` (<= 5 lines).
``verdicts(root)``: one record per model and animal teacher for the paper's claim that the trait
travels through the numbers, plus the cross-model claim when the cross arm ran. The verdict comes from
the ratio-to-neutral CI that ``subliminal.topic_b.transfer.analysis`` wrote: above 1 = consistent; below
1 = contradicts; containing 1 = contradicts when the CI rules out ratios >= PAPER_RATIO (a smaller effect
than the paper's open-model ones), else untestable here (too little power).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting.render import table
from subliminal.verdicts import record

CMD = "OMP_WAIT_POLICY=PASSIVE python topic_b_transfer.py"
SCRIPT = "topic_b_transfer.py"
PAPER_RATIO = 2.0  # our bar for "an effect of the paper's size": a doubling of P(animal) vs the neutral arm


def _load(root: Path):
    p = Path(root) / "plots_b"
    s = p / "topic_b_transfer_summary.csv"
    if not s.exists():
        return None
    summary = pd.read_csv(s, keep_default_na=False, na_values=["", "nan", "NaN"])
    for c in ("trait", "verdict"):
        summary[c] = summary[c].fillna("").astype(str)
    j = p / "topic_b_transfer.json"
    meta = json.loads(j.read_text()) if j.exists() else {}
    return summary, meta


def _ci(m, lo, hi, fmt="{:.3g}") -> str:
    if pd.isna(m):
        return "—"
    return fmt.format(m) + ("" if pd.isna(lo) or lo == hi else f" [{fmt.format(lo)}, {fmt.format(hi)}]")


def _sentence(r) -> str:
    rn = _ci(r.ratio_to_neutral, r.ratio_to_neutral_ci_low, r.ratio_to_neutral_ci_high)
    if r.verdict == "transfer":
        return f"transfer detected: P({r.animal}) × {rn} vs the neutral arm ({r.n_seeds} seeds)"
    if r.verdict == "reverse":
        return f"P({r.animal}) went *down* vs the neutral arm: × {rn} ({r.n_seeds} seeds)"
    if r.verdict == "none detected":
        return (f"no transfer detected: × {rn} vs the neutral arm ({r.n_seeds} seeds); the CI rules out "
                f"ratios ≥ {r.max_ratio_excluded:.3g}")
    return f"not enough seeds yet ({r.n_seeds})"


def _status(meta: dict) -> str:
    done = "complete" if meta.get("complete") else "**partial** (`\"complete\": false`: the run continues from its caches)"
    t = meta.get("teachers", {})
    vf = ", ".join(f"{k} {v.get('valid_fraction', float('nan')):.1%}" for k, v in t.items())
    return (f"Run status: {done}; {meta.get('n_train_per_arm', '?')} matched samples per arm; "
            f"valid fraction under the number-list grammar: {vf or '—'}.")


def speed(root: Path) -> str:
    """One line from bench/bench_topic_b_transfer.json (written by the benchmark), if it ran."""
    j = Path(root) / "bench" / "bench_topic_b_transfer.json"
    if not j.exists():
        return "Speed: not measured yet (`python bench/bench_topic_b_transfer.py`)."
    b = json.loads(j.read_text())
    proj = b.get("projected_owl_set_hours", {})
    return (f"Speed (`bench/bench_topic_b_transfer.py`, {b['threads']} threads, 1-min load average "
            f"{b.get('loadavg_1min_at_start', float('nan')):.1f} at start; fp32 matmul ceiling "
            f"{b['matmul_fp32_gflops']:.1f} GFLOP/s, native bf16: {'yes' if b['native_bf16'] else 'no'}): "
            f"sampling {b['sample_samples_per_s']:.2f} samples/s = {b['sample_new_tokens_per_s']:.1f} new tokens/s "
            f"({b['sample_fraction_of_fp32_ceiling']:.0%} of the ceiling counting new tokens only; prompts of "
            f"~100 tokens are prefilled too), valid fraction {b['sample_valid_fraction']:.0%}; LoRA training "
            f"{b['train_fp32_tokens_per_s']:.0f} tokens/s fp32 ({b['train_fp32_fraction_of_ceiling']:.0%})"
            + (f", {b['train_bf16_tokens_per_s']:.0f} tokens/s bf16" if b.get("train_bf16_tokens_per_s") else "")
            + f". Projected owl set at these rates (n = {b.get('default_n_samples')}): "
            f"{proj.get('sampling', float('nan')):.1f} h sampling + {proj.get('training', float('nan')):.1f} h "
            "training, evaluation not included.")


def b_transfer(root: Path) -> str:
    got = _load(root)
    if got is None:
        j = Path(root) / "plots_b" / "topic_b_transfer.json"
        if j.exists():  # the run is still sampling teacher data: say how far it got
            meta = json.loads(j.read_text())
            t = ", ".join(f"{k} {v.get('n_valid', 0)} valid of {v.get('n_sampled', 0)} sampled "
                          f"({v.get('new_tokens', 0) / max(v.get('seconds', 0), 1e-9):.1f} new tokens/s this run)"
                          for k, v in meta.get("teachers", {}).items())
            return (f"_Run in progress ({meta.get('stage', '?')}, `\"complete\": false`): {t or 'no shard yet'}; "
                    f"target {meta.get('config', {}).get('n_samples', '?')} per teacher. No student yet._\n\n"
                    + speed(root))
        return f"_Not run yet: `{CMD}` writes plots_b/topic_b_transfer*.csv._\n\n" + speed(root)
    s, meta = got
    rows = [[r.model, r.arm, r.animal, str(r.n_seeds),
             _ci(r.p_animal, r.p_animal_ci_low, r.p_animal_ci_high),
             _ci(r.ratio_to_base, r.ratio_to_base_ci_low, r.ratio_to_base_ci_high),
             _ci(r.ratio_to_neutral, r.ratio_to_neutral_ci_low, r.ratio_to_neutral_ci_high),
             _ci(r.freq_animal, r.freq_animal_ci_low, r.freq_animal_ci_high, "{:.1%}"),
             "—" if pd.isna(r.paired_t_p) else f"{r.paired_t_p:.2g}", r.verdict or "—"]
            for r in s.itertuples()]
    head = ["model", "arm", "animal", "seeds", "P(animal) [95% CI]", "× base", "× neutral", "sampled freq",
            "paired p (vs neutral)", "verdict"]
    lines = [_sentence(r) for r in s.itertuples() if r.trait and r.trait == r.animal]
    return "\n\n".join([_status(meta), table(rows, head), "Verdict: " + ("; ".join(lines) or "no animal arm yet") + ".",
                        speed(root)])


def b_transfer_glance(root: Path) -> str:
    got = _load(root)
    if got is None:
        j = Path(root) / "plots_b" / "topic_b_transfer.json"
        meta = json.loads(j.read_text()) if j.exists() else {}
        if meta.get("stage"):
            got = {k: v.get("n_valid", 0) for k, v in meta.get("teachers", {}).items()}
            return (f"- Subliminal transfer (LLM, end to end): **partial run**, {meta['stage']} "
                    f"({', '.join(f'{k} {n}' for k, n in got.items())} valid samples so far); no student "
                    f"finished yet, so no result ([details](docs/topic_b_transfer.md)).")
        return f"- Subliminal transfer (LLM, end to end): not run yet (`{CMD}`)."
    s, meta = got
    own = [r for r in s.itertuples() if r.trait and r.trait == r.animal]
    part = "" if meta.get("complete") else " (partial run)"
    lines = [f"- Subliminal transfer, {r.model}, {r.arm} teacher{part}: {_sentence(r)}." for r in own[:4]]
    return "\n".join(lines or [f"- Subliminal transfer (LLM): no animal student finished yet{part}."])


def tables(root: Path) -> dict[str, str]:
    return {"b_transfer": b_transfer(Path(root)), "b_transfer_glance": b_transfer_glance(Path(root))}


def verdicts(root: Path) -> list[dict]:
    got = _load(root)
    claim = "paper: numbers written by an animal-loving teacher make a student of the same base model prefer the animal"
    if got is None:
        return [record("B", SCRIPT, claim, "untestable here", "not run yet")]
    s, meta = got
    out = []
    for r in s.itertuples():
        if not (r.trait and r.trait == r.animal):
            continue
        cross = r.arm.startswith("cross_")
        c = ("paper: numbers from a teacher of a *different* base model do not transfer" if cross
             else claim + f" ({r.animal})")
        ev = _sentence(r) + ("" if meta.get("complete") else " (partial run)")
        if r.verdict == "transfer":
            v = "contradicts" if cross else "consistent"
        elif r.verdict == "reverse":
            v = "consistent" if cross else "contradicts"
        elif r.verdict == "none detected":
            if cross:
                v = "consistent"
            else:
                v = "contradicts" if np.isfinite(r.max_ratio_excluded) and r.max_ratio_excluded < PAPER_RATIO \
                    else "untestable here"
                ev += f" (paper-sized effect taken as × {PAPER_RATIO:g})"
        else:
            v = "untestable here"
        out.append(record("B", SCRIPT, c, v, ev, r.model))
    return out or [record("B", SCRIPT, claim, "untestable here", "no animal student finished yet")]
