"""README table and verdicts of the transfer experiment (``topic_b_transfer.py``), read from plots_b only.

``tables(root)``: ``b_transfer`` (the summary with CIs over seeds), ``b_transfer_budget``, ``b_transfer_variants`` and
``transfer_records_size``.
``verdicts(root)``: one record per model and animal teacher for the paper's claim that the trait
travels through the numbers, plus the cross-model claim when the cross arm ran. The verdict comes from
the ratio-to-neutral CI that ``subliminal.topic_b.transfer.analysis`` wrote: above 1 = reproduced (partly when
not specific to the animal); below 1 = contradicts (the claimed direction fails, the CI excludes it); containing
1 = inconclusive, with the smallest ratio the CI excludes in the evidence (the words: ``subliminal.verdicts``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from subliminal.reporting.render import table
from subliminal.reporting.transfer_runs import (
    b_transfer_budget,
    device_check,
    kept_comparison,
    kept_line,
    records_size,
    speed,
    status_line,
)
from subliminal.topic_b.transfer.arm import from_label, label, row_kind
from subliminal.verdicts import record

CMD = "OMP_WAIT_POLICY=PASSIVE python topic_b_transfer.py"
SCRIPT = "topic_b_transfer.py"


MAIN = "topic_b_transfer"
# output stem -> (section title, qualifier of the claim); the main run first
ROUTES = {MAIN: ("System-prompted teacher, text route", ""),
          "topic_b_transfer_logits": ("Logits route (`--route logits`)", " (logits route)"),
          "topic_b_transfer_weights": ("Weight-level teacher (`--teacher weights`)", " (weight-level teacher)"),
          "topic_b_transfer_defence": ("Threshold defence (`--defence`)", " (after the threshold defence)"),
          "topic_b_transfer_weights_defence": ("Weight-level teacher after the threshold defence",
                                               " (weight-level teacher, after the threshold defence)")}


def _load(root: Path, stem: str = MAIN):
    p = Path(root) / "plots_b"
    s = p / f"{stem}_summary.csv"
    if not s.exists():
        return None
    summary = pd.read_csv(s, keep_default_na=False, na_values=["", "nan", "NaN"])
    for c in ("trait", "verdict", "specific", "verdict_basis"):
        if c not in summary:
            summary[c] = ""
        summary[c] = summary[c].fillna("").astype(str)
    j = p / f"{stem}.json"
    meta = json.loads(j.read_text()) if j.exists() else {}
    return summary, meta


def _ci(m, lo, hi, fmt="{:.3g}") -> str:
    if pd.isna(m):
        return "—"
    return fmt.format(m) + ("" if pd.isna(lo) or lo == hi else f" [{fmt.format(lo)}, {fmt.format(hi)}]")


def _specific(r) -> str:
    """The specificity clauses: own animal vs the other animals of the run (both vs the neutral arm), and
    P(own animal) under this teacher's data vs under the run's other animal teachers' data."""
    out = ""
    if pd.notna(getattr(r, "ratio_own_vs_other", np.nan)):
        so = _ci(r.ratio_own_vs_other, r.ratio_own_vs_other_ci_low, r.ratio_own_vs_other_ci_high)
        out += f"; own animal vs the other animals of the run: × {so}"
    if pd.notna(getattr(r, "ratio_vs_other_teachers", np.nan)):
        ot = _ci(r.ratio_vs_other_teachers, r.ratio_vs_other_teachers_ci_low, r.ratio_vs_other_teachers_ci_high)
        dr = ("" if pd.isna(getattr(r, "ratio_vs_other_teachers_draws_ci_low", np.nan)) else
              f" (with draw-to-draw variation: [{r.ratio_vs_other_teachers_draws_ci_low:.3g}, "
              f"{r.ratio_vs_other_teachers_draws_ci_high:.3g}])")
        out += (f"; P({r.animal}) under this teacher's data vs under the other animal teacher(s)' data: "
                f"× {ot} over seeds{dr}")
    return out


def _versus(r) -> tuple[str, str, str]:
    """(ratio with CI, what it is against, the same in short for the LLM map) for the verdict's basis: the
    neutral data draws when there are >= 2, else the training seeds of one draw (the CI then leaves out what
    another draw would do)."""
    basis = getattr(r, "verdict_basis", "")
    n = int(r.draws_n_seeds if basis == "neutral draws" else r.n_cross_pairs if basis == "cross-model neutral teacher"
            else r.n_seeds)
    seeds = f", {n} seed{'s' if n != 1 else ''}"
    if basis == "cross-model neutral teacher":
        return (_ci(r.ratio_to_cross_neutral, r.ratio_to_cross_neutral_ci_low, r.ratio_to_cross_neutral_ci_high),
                f"vs students of the cross model's own neutral teacher ({n} seed pairs; the CI is over training "
                "seeds on one draw of each teacher's data)", "vs the cross model's neutral teacher" + seeds)
    if basis == "neutral draws":
        pooled = ("" if pd.isna(getattr(r, "draws_pooled_df", np.nan)) else
                  f"; with the draw variance pooled over the evaluated animals ({int(r.draws_pooled_df)} df, "
                  f"sensitivity): [{r.ratio_to_neutral_draws_pooled_ci_low:.3g}, "
                  f"{r.ratio_to_neutral_draws_pooled_ci_high:.3g}]")
        return (_ci(r.ratio_to_neutral_draws, r.ratio_to_neutral_draws_ci_low, r.ratio_to_neutral_draws_ci_high),
                f"vs {int(r.n_neutral_draws)} draws of neutral data (on the {int(r.draws_n_seeds)} seed(s) every "
                f"draw has so far; the CI includes "
                f"draw-to-draw variation, {int(r.n_neutral_draws) - 1} df{pooled})",
                f"vs {int(r.n_neutral_draws)} draws of neutral data" + seeds)
    data = ("every arm of the logits route distils on the same draw of the neutral teacher's sequences, and the "
            "CI is over training seeds, so it leaves out what another draw of sequences would do"
            if pd.notna(getattr(r, "kl_start", np.nan)) else
            "the CI is over training seeds on one draw of each teacher's data, so it leaves out what another draw "
            "would do")
    return (_ci(r.ratio_to_neutral, r.ratio_to_neutral_ci_low, r.ratio_to_neutral_ci_high),
            f"vs the neutral arm ({r.n_seeds} seeds; {data})", "vs the neutral arm" + seeds)


def _sentence(r) -> str:
    return _outcome(r) + _learned(r)


def _learned(r) -> str:
    """Logits route: how much of the teacher's number-token distributions the students learned."""
    start = getattr(r, "kl_start", np.nan)
    if pd.isna(start) or pd.isna(getattr(r, "kl_end", np.nan)):
        return ""
    return (f"; KL(teacher || student) over the number tokens {start:.2g} nats per position at init, "
            f"{_ci(r.kl_end, r.kl_end_ci_low, r.kl_end_ci_high, '{:.2g}')} over the last 10 training steps "
            f"({r.kl_closed:.0%} of it closed)")


def _outcome(r) -> str:
    """The verdict sentence of one arm."""
    rn, vs, _ = _versus(r)
    sp = _specific(r)
    if r.verdict == "transfer":
        tail = "" if r.specific != "no" else (" (not specific: the other animals, or the other animal teachers' "
                                               "data, moved it about as much)")
        return f"transfer detected: P({r.animal}) × {rn} {vs}{sp}{tail}"
    if r.verdict == "reverse":
        return f"P({r.animal}) went *down*: × {rn} {vs}{sp}"
    if r.verdict == "none detected":
        return f"no transfer detected: × {rn} {vs}; the CI rules out ratios ≥ {r.max_ratio_excluded:.3g}{sp}"
    if getattr(r, "verdict_basis", "") == "cross-model neutral teacher":  # one seed pair: the estimate, no verdict
        return (f"{int(r.n_cross_pairs)} seed pair so far: P({r.animal}) × {r.ratio_to_cross_neutral:.3g} vs the cross "
                "model's own neutral teacher "
                f"(× {r.ratio_to_neutral:.3g} vs this model's neutral arm: the other model's "
                f"numbers as such){sp}; no verdict before ≥ 2 seeds")
    if pd.notna(r.ratio_to_neutral):  # one seed pair so far: the estimate, no verdict
        p = ("" if pd.isna(r.paired_t_p) else
             f", paired over {int(r.paired_n)} questions t-test p = {r.paired_t_p:.2g}")
        return (f"{r.n_seeds} seed so far: P({r.animal}) × {r.ratio_to_neutral:.3g} vs the neutral arm{p}{sp}; "
                "no verdict before ≥ 2 seeds"
                " (questions are not independent replicates of the training run)")
    return f"not enough seeds yet ({r.n_seeds})"


def b_transfer(root: Path) -> str:
    blocks = [_main_block(root)]
    for stem, (title, _) in ROUTES.items():
        other = _load(root, stem) if stem != MAIN else None
        if other is not None:
            kc = kept_comparison(root, stem)
            blocks.append(f"### {title}\n\n" + _block(*other) + (f"\n\n{kc}." if kc else ""))
    return "\n\n".join(blocks + [x for x in (device_check(root), speed(root)) if x])


def _main_block(root: Path) -> str:
    """The default run's table, or how far its sampling got, or 'not run yet'."""
    got = _load(root)
    if got is not None:
        return _block(*got)
    j = Path(root) / "plots_b" / f"{MAIN}.json"
    if j.exists():  # the run is still sampling teacher data: say how far it got
        meta = json.loads(j.read_text())
        t = ", ".join(f"{k} {v.get('n_valid', 0)} valid of {v.get('n_sampled', 0)} sampled "
                      f"({v.get('new_tokens', 0) / max(v.get('seconds', 0), 1e-9):.1f} new tokens/s this run)"
                      for k, v in meta.get("teachers", {}).items())
        return (f"_Run in progress ({meta.get('stage', '?')}, `\"complete\": false`): {t or 'no shard yet'}; "
                f"target {meta.get('config', {}).get('n_samples', '?')} per teacher. No student yet._")
    return f"_Not run yet: `{CMD}` writes plots_b/topic_b_transfer*.csv._"


def _block(s: pd.DataFrame, meta: dict) -> str:
    rows = [[r.model, r.arm, r.animal, str(r.n_seeds),
             _ci(r.p_animal, r.p_animal_ci_low, r.p_animal_ci_high),
             _ci(r.ratio_to_base, r.ratio_to_base_ci_low, r.ratio_to_base_ci_high),
             _ci(r.ratio_to_neutral, r.ratio_to_neutral_ci_low, r.ratio_to_neutral_ci_high),
             _ci(getattr(r, "ratio_to_neutral_draws", np.nan), getattr(r, "ratio_to_neutral_draws_ci_low", np.nan),
                 getattr(r, "ratio_to_neutral_draws_ci_high", np.nan)),
             _ci(r.freq_animal, r.freq_animal_ci_low, r.freq_animal_ci_high, "{:.1%}"),
             _ci(getattr(r, "ratio_own_vs_other", np.nan), getattr(r, "ratio_own_vs_other_ci_low", np.nan),
                 getattr(r, "ratio_own_vs_other_ci_high", np.nan)),
             _ci(getattr(r, "ratio_vs_other_teachers", np.nan), getattr(r, "ratio_vs_other_teachers_ci_low", np.nan),
                 getattr(r, "ratio_vs_other_teachers_ci_high", np.nan)),
             _ci(getattr(r, "logp_shift_per_mtok", np.nan), getattr(r, "logp_shift_per_mtok_ci_low", np.nan),
                 getattr(r, "logp_shift_per_mtok_ci_high", np.nan), "{:+.2f}"),
             "—" if pd.isna(r.paired_t_p) else f"{r.paired_t_p:.2g}", r.verdict or "—"]
            for r in s.itertuples()]
    head = ["model", "arm", "animal", "seeds", "P(animal) [95% CI]", "× base", "× neutral (seeds)",
            "× neutral draws", "sampled freq",
            "own vs other animals", "× other animal teachers", "Δ log P vs neutral per M loss tokens", "paired p (vs neutral)", "verdict"]
    lines = [f"- {r.arm} teacher: {_sentence(r)}." for r in s.itertuples() if r.trait and r.trait == r.animal]
    return "\n\n".join([status_line(meta), table(rows, head),
                         "Verdicts:\n\n" + ("\n".join(lines) or "- no animal arm yet.")])


def _partial(r, meta: dict) -> str:
    """' (partial run)' while a planned student of this arm (or, in an older JSON without the plan, any
    student) is missing; '' once the arm's own students are all in, even if the run goes on with others."""
    if meta.get("complete"):
        return ""
    if "not_trained" not in meta:
        return " (partial run)"
    return " (partial run)" if any(k.split("/")[0] == r.arm for k in meta["not_trained"]) else ""


VARIANT_CMDS = {"topic_b_transfer_logits": "--route logits", "topic_b_transfer_weights": "--teacher weights",
                "topic_b_transfer_defence": "--defence 0.01", "topic_b_transfer_weights_defence":
                "--teacher weights --defence 0.01"}


def _run_state(meta: dict) -> str:
    if meta.get("complete"):
        return "complete"
    planned, left = meta.get("planned", []), meta.get("not_trained", [])
    return f"partial ({len(planned) - len(left)} of {len(planned)} students)" if planned else "partial"


def b_transfer_variants(root: Path) -> str:
    """Which of the run's variants have results (from the JSONs in plots_b), so the page never claims a stale
    state: the cross arm lives in the main run, the others in their own outputs."""
    p = Path(root) / "plots_b"
    main = json.loads((p / f"{MAIN}.json").read_text()) if (p / f"{MAIN}.json").exists() else {}
    cross = main.get("config", {}).get("cross_model")
    parts = ["cross arm (`--cross-model`): " + (f"{cross}, {_run_state(main)}" if cross else "not run yet")]
    for stem, flag in VARIANT_CMDS.items():
        j, dj = p / f"{stem}.json", p / f"{stem}_data.json"
        if dj.exists() and not (p / f"{stem}_summary.csv").exists():  # `--stage data` only: no student yet
            dm = json.loads(dj.read_text())
            kc = kept_comparison(root, stem)
            state = ("teacher data only, no student yet" + (f" ({kept_line(dm)})" if dm.get("defence") else "")
                     + (f". {kc}" if kc else ""))
        else:
            state = _run_state(json.loads(j.read_text())) if j.exists() else "not run yet"
        parts.append(f"{ROUTES[stem][0].split(' (`')[0].lower()} (`{flag}`): {state}")
    return "Variants of the run: " + "; ".join(parts) + "."


def tables(root: Path) -> dict[str, str]:
    return {"b_transfer": b_transfer(Path(root)), "b_transfer_budget": b_transfer_budget(Path(root)),
            "b_transfer_variants": b_transfer_variants(Path(root)), "transfer_records_size": records_size(Path(root))}


def verdicts(root: Path) -> list[dict]:
    claim = "paper: numbers written by an animal-loving teacher make a student of the same base model prefer the animal"
    out = []
    for stem, (_, qual) in ROUTES.items():
        got = _load(root, stem)
        if got is None:
            continue
        s, meta = got
        for r in s.itertuples():
            if r.trait and r.trait == r.animal:
                same = s[(s.model == r.model) & (s.arm == label(dataclasses.replace(from_label(r.arm), teacher_model=""))) & (s.animal == r.animal)]
                out.append(_verdict(r, meta, claim, qual, same.verdict.iloc[0] if len(same) else ""))
    if not out:
        return [record("B", SCRIPT, claim, "untestable here",
                       "not run yet" if _load(root) is None else "no animal student finished yet")]
    return out


def _verdict(r, meta: dict, claim: str, qual: str, same_model: str = "") -> dict:
    """One verdict record; `same_model`: for a cross arm, the verdict of the same animal's teacher of the base
    model itself (the contrast the cross-model claim is about)."""
    cross = row_kind(r.arm) == "cross"
    c = ("paper: numbers from a teacher of a *different* base model do not transfer" if cross
         else claim + f" ({r.animal})") + qual
    ev = _sentence(r) + _partial(r, meta)
    cfg = meta.get("config", {})
    planned = meta.get("neutral_draws_planned")  # the run's own count (run.neutral_draws); older JSONs lack it
    if planned is None:
        planned = cfg.get("neutral_draws", 1) if cfg.get("route", "text") == "text" else 1
    if cross and getattr(r, "verdict_basis", "") != "cross-model neutral teacher":
        # without the cross model's own neutral teacher a rise cannot be told from what that model's numbers
        # do by themselves (they differ from the base model's)
        return record("B", SCRIPT, c, "untestable here", ev + "; provisional: no students of the cross model's "
                      "neutral teacher (arm cross_neutral) yet, the control for what that model's numbers do by "
                      "themselves", r.model)
    if r.verdict and not cross and getattr(r, "verdict_basis", "") == "training seeds" and planned >= 2:
        # the run plans the neutral-draw control and it has no student yet: the seed CI cannot tell this
        # teacher's trait from what one draw of numbers does by itself
        return record("B", SCRIPT, c, "untestable here", ev + f"; provisional: {planned - 1} more neutral data "
                      "draw(s), the control for what one draw does by itself, not evaluated yet", r.model)
    if r.verdict == "transfer":
        v = "contradicts" if cross else ("partly" if r.specific == "no" else "reproduced")
    elif r.verdict == "reverse":
        v = "reproduced" if cross else "contradicts"
    elif r.verdict == "none detected":
        if cross and same_model == "transfer":
            v = "reproduced"
        elif cross:
            v = "inconclusive"
            ev += (f"; uninformative as a contrast: the base model's own {r.animal} teacher shows no transfer "
                   "here either")
        else:
            v = "inconclusive"  # the evidence states the smallest ratio the CI excludes
    else:
        v = "untestable here"
    return record("B", SCRIPT, c, v, ev, r.model)
