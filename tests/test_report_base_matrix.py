"""The base matrix's report (``subliminal/reporting/base_matrix.py``, issue 44): read from plots_b only, every number
as the analysis wrote it; absent files are 'not run yet', rows below 3 seeds 'too few seeds (n = k)'."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from subliminal.cli import UserError
from subliminal.reporting import base_matrix as bm
from subliminal.reporting import readme
from subliminal.results import OutputSet, write_csv
from subliminal.topic_b.theory import matrix_analysis
from subliminal.topic_b.theory.matrix_analysis import dose_key, noise_of, pair_key

ROOT = Path(__file__).resolve().parent.parent
S, G = "smollm2-135m-instruct", "gemma-3-270m"
SS, GG, SG, GS = pair_key(S, S), pair_key(G, G), pair_key(S, G), pair_key(G, S)
NAN = float("nan")


def _plots(tmp_path: Path) -> Path:
    p = tmp_path / "plots_b"
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_the_provider_is_registered_and_the_readme_and_page_carry_its_markers():
    assert "subliminal.reporting.base_matrix" in readme.PROVIDERS
    text = (ROOT / "README.md").read_text()
    assert "<!-- report:b_matrix_glance -->" in text and "docs/topic_b_base_matrix.md" in text
    page = (ROOT / "docs" / "topic_b_base_matrix.md").read_text()
    names = set(re.findall(r"<!-- report:([\w.-]+) -->", page))
    assert names == set(bm.tables(ROOT)) - {"b_matrix_glance"}
    for cmd in ("python topic_b_base_matrix.py --teachers-only", "python topic_b_base_matrix.py --pairs",
                "OMP_WAIT_POLICY=PASSIVE python topic_b_base_matrix.py"):
        assert cmd in page


def test_with_no_file_everything_says_not_run_yet(tmp_path):
    _plots(tmp_path)
    t = bm.tables(tmp_path)
    assert all("Not run yet" in v for v in t.values())
    assert bm.verdicts(tmp_path) == []


def test_with_only_the_teacher_check(tmp_path):
    shutil.copy(ROOT / "plots_b" / "topic_b_base_matrix_teachers.csv", _plots(tmp_path))
    t = bm.tables(tmp_path)
    assert "| SmolLM2 | owl | 0.9811 | 0.02524 | ×51.8 [37.6, 71.4] (97.5% CI) | carries its trait |" in t["b_matrix_teachers"]
    assert "Teacher check: every trait teacher carries its trait" in t["b_matrix_glance"]
    assert "Gemma owl ×54.8 [39.5, 76.1], eagle ×188 [128, 277]" in t["b_matrix_glance"]
    assert t["b_matrix"].count("not run yet") == 4 and "not run yet" in t["b_matrix_dose"]
    assert "**untestable here**, not yet tested (0 seeds so far)" in t["b_matrix_glance"]
    v = pd.DataFrame(bm.verdicts(tmp_path))
    assert (v[v.claim.str.startswith(bm.TEACHER_CLAIM)].verdict == "reproduced").all()
    assert set(v[v.claim.str.startswith("theorem")].verdict) == {"untestable here"}
    control = v[v.claim == bm.CONTROL].iloc[0]
    assert control.verdict == "untestable here" and control.evidence.startswith("not yet tested (0 seeds so far)")


def _effect(pair, animal, ratio, lo, hi, verdict, n=3, level=0.0125, family="base matrix", **kw):
    tested = n >= 3
    return {"pair": pair, "animal": animal, "family": family, "noise_scale": noise_of(pair), "step": 60,
            "verdict": verdict, "n_seeds": n, "mean": 0.0, "ci95_low": -1.0, "ci95_high": 1.0, "p": 0.001, "se": 0.1,
            "mde": 0.2, "p_holm": 0.004 if tested else NAN, "level": level if tested else NAN,
            "ci_low": -1.0 if tested else NAN, "ci_high": 1.0 if tested else NAN, "mde_level": 0.3 if tested else NAN,
            "ratio": ratio, "ratio_low": lo, "ratio_high": hi, **kw}


def _contrast(pair, animal, ratio, lo, hi, reading, n=3, family="base contrasts", keep=0.2):
    r = _effect(pair, animal, ratio, lo, hi, None, n=n, level=0.0125, family=family)
    del r["verdict"], r["step"]
    return r | {"versus": SS if pair.startswith(f"{S}>{S}") or pair == GS else GG, "reading": reading, "keep": keep,
                "keep_ci_low": 0.05 if n >= 3 else NAN, "keep_ci_high": 0.4 if n >= 3 else NAN}


def _write(tmp_path: Path, effects, contrasts, dose, meta=None, figure=False, noisy_nats=2.5) -> Path:
    p = _plots(tmp_path)
    cap = pd.DataFrame([{"base": S, "seed": -1, "noise_scale": 0.0, "nats_answers": 1.11, "nats_number_lists": 2.22,
                         "p_any_animal": 0.33}]
                       + [{"base": S, "seed": s, "noise_scale": 0.1, "nats_answers": noisy_nats + s / 10,
                           "nats_number_lists": 3.0, "p_any_animal": 0.1} for s in range(3)])
    with OutputSet(p) as o:  # recorded in plots_b/sha256.json as the script records them
        shutil.copy(ROOT / "plots_b" / "topic_b_base_matrix_teachers.csv", o.path("topic_b_base_matrix_teachers.csv"))
        write_csv(pd.DataFrame(effects), o.path("topic_b_base_matrix_effects.csv"))
        write_csv(pd.DataFrame(contrasts), o.path("topic_b_base_matrix_contrasts.csv"))
        write_csv(matrix_analysis.dose_capability(pd.DataFrame(dose), matrix_analysis.capability(cap)),
                  o.path("topic_b_base_matrix_dose.csv"))
        write_csv(pd.DataFrame([
            {"pair": SS, "teacher": t, "kl_to_teacher": 0.001, "kl_min": 0.0009, "kl_max": 0.0012, "n_seeds": 3,
             "signal_kl": 0.002, "fit_over_signal": 0.5, "fits": "below the signal"} for t in ("neutral", "owl", "eagle")]
            + [{"pair": GS, "teacher": "owl", "kl_to_teacher": 0.004, "kl_min": 0.003, "kl_max": 0.005, "n_seeds": 3,
                "signal_kl": 0.002, "fit_over_signal": 2.0, "fits": "not below the signal"}]),
            o.path("topic_b_base_matrix_fit.csv"))
        write_csv(pd.DataFrame([{"pair": GS, "steps": k, "lr": lr, "kl": kl, "bar": 0.002, "over_bar": kl / 0.002,
                                 "chosen": k == 120 and lr == 0.002, "reached": True}
                                for k, lr, kl in ((60, 0.0005, 0.009), (60, 0.002, 0.004), (120, 0.0005, 0.0031),
                                                  (120, 0.002, 0.0015))]), o.path("topic_b_base_matrix_fit_rule.csv"))
        write_csv(pd.DataFrame({"teacher_base": [S, S], "animal": ["owl", "owl"], "seed": [0, 1], "kl": [0.0021, 0.0019],
                                "n_positions": [100, 100]}), o.path("topic_b_base_matrix_signal.csv"))
        write_csv(matrix_analysis.capability(cap), o.path("topic_b_base_matrix_capability.csv"))
        (o.path("topic_b_base_matrix.json")).write_text(json.dumps(meta or {
            "config": {"bases": [S, G], "seeds": [0, 1, 2], "noise_scales": [0.1, 0.3]}, "complete": False,
            "students_done": 20, "students_planned": 48,
            "planned": [f"{k}:{t}:s{s}" for k in (SS, GG, SG, GS) for s in range(3) for t in ("neutral", "owl", "eagle")],
            "minutes_per_student": {f"{k}:{t}:s{s}": 3.0 for k in (SS, GS) for s in range(3)
                                    for t in ("neutral", "owl", "eagle")} | {f"{SG}:neutral:s0": 3.0},
            "records": {}}))
        if figure:
            o.path(bm.FIGURE).write_bytes(b"\x89PNG")
    return tmp_path


def _synthetic(tmp_path, off_reading="smaller than the diagonal", n_off=3, **kw):
    effects = [_effect(SS, "owl", 7.77, 1.5, 2.5, "transfer"), _effect(SS, "eagle", 1.2, 0.9, 1.6, "none detected"),
               _effect(GS, "owl", 1.01, 0.8, 1.3, "too few seeds", n=2),
               _effect(GS, "eagle", 0.98, NAN, NAN, "too few seeds", n=1)]
    contrasts = [_contrast(GS, "owl", 0.44, 0.2, 0.9, off_reading if n_off >= 3 else "too few seeds", n=n_off),
                 _contrast(GS, "eagle", 0.9, 0.5, 1.6, "not distinguishable from the diagonal" if n_off >= 3
                           else "too few seeds", n=n_off)]
    dose = [_effect(dose_key(S, 0.1), "owl", 1.05, 0.9, 1.2, "none detected", family="base-noise dose"),
            _contrast(dose_key(S, 0.1), "owl", 0.55, 0.4, 0.8, "smaller than the diagonal", family="dose contrasts")]
    return _write(tmp_path, effects, contrasts, dose, **kw)


def test_synthetic_results_are_printed_as_written(tmp_path):
    root = _synthetic(tmp_path, figure=True)
    t = bm.tables(root)
    m = t["b_matrix"]
    # the CSV's ratio, not exp(mean) (mean is 0 in every synthetic row): reporting computes no statistic
    assert "owl ×7.77 [1.5, 2.5] (98.8% CI) transfer; eagle ×1.2 [0.9, 1.6] (98.8% CI) none detected (3 seeds)" in m
    assert "KL to teacher / signal = 0.5 (owl), 0.5 (eagle)" in m
    assert "owl ×1.01 [0.8, 1.3] (95% CI) too few seeds (n = 2); eagle ×0.98 (1 seed) too few seeds (n = 1)" in m
    assert "KL to teacher / signal = 2 (owl)" in m
    assert "no comparison yet (1 of 9 students)" in m and "not run yet (0 of 9 students)" in m
    assert "partial run, 20 of 48 students" in t["b_matrix_state"]
    c = t["b_matrix_contrasts"]
    assert "| Gemma teacher → SmolLM2 student | SmolLM2 teacher → SmolLM2 student | owl | 3 | ×0.44 [0.2, 0.9] " \
           "(98.8% CI) | 20% [5%, 40%] (98.8%) | ×1.35 at 98.8% | smaller than the diagonal |" in c
    d = t["b_matrix_dose"]
    assert "| 0.1 | owl | ×1.05 [0.9, 1.2] (98.8% CI) none detected | ×0.55 [0.4, 0.8] (98.8% CI) smaller than the " \
           "diagonal, keeps 20% [5%, 40%] (98.8%) | 2.5, 2.6, 2.7 | 3, 3, 3 | 0.1, 0.1, 0.1 | base degraded (+1.59) | — |" in d
    assert "| 0 (the diagonal) | owl | ×7.77 [1.5, 2.5] (98.8% CI) transfer | — | 1.11 | 2.22 | 0.33 | the clean base " \
           "| 0.5 (owl) |" in d
    assert "| 0.3 | owl | not run yet |" in d  # declared (config noise_scales), not run
    assert "](../plots_b/topic_b_base_matrix_dose.png)" in d
    assert "0.0021 (seed 0), 0.0019 (seed 1)" in t["b_matrix_fit"] and "not below the signal" in t["b_matrix_fit"]
    assert "| Gemma teacher → SmolLM2 student | 120 | 0.002 | 0.0015 | 0.002 | 0.75 | chosen |" in t["b_matrix_fit"]
    assert "| Gemma teacher → SmolLM2 student | 60 | 0.0005 | 0.009 | 0.002 | 4.5 |  |" in t["b_matrix_fit"]
    v = {r["claim"].split(" (")[0] + f" {r['model']}": r for r in bm.verdicts(root)}
    ctl = v[f"{bm.CONTROL} "]
    assert ctl["verdict"] == "partly" and ctl["evidence"].startswith("from the base contrasts")
    assert "not below the signal (a weaker test): Gemma teacher → SmolLM2 student (owl)" in ctl["evidence"]
    assert "**partly**, from the base contrasts" in t["b_matrix_glance"]


@pytest.mark.parametrize("reading, word", [("smaller than the diagonal", "partly"),
                                           ("larger than the diagonal", "contradicts"),
                                           ("not distinguishable from the diagonal", "inconclusive")])
def test_the_control_claim_follows_the_base_contrasts(tmp_path, reading, word):
    root = _synthetic(tmp_path, off_reading=reading)
    d = bm.load(root)
    assert bm.control(d)[0] == word  # eagle is not distinguishable: all owl+eagle smaller would be 'reproduced'
    d.csv["_contrasts"] = d["_contrasts"].assign(reading="smaller than the diagonal")
    assert bm.control(d)[0] == "reproduced"


def test_below_3_seeds_the_control_claim_is_not_yet_tested_and_the_dose_does_not_stand_in(tmp_path):
    root = _synthetic(tmp_path, n_off=2, noisy_nats=0.96)
    d = bm.load(root)
    w, ev, basis = bm.control(d)
    assert w == "untestable here" and basis == "not yet tested (2 seeds so far)" and "too few seeds (n = 2)" in ev
    assert bm.dose_control(d)[0] == "reproduced"  # its own claim: a smaller effect on a base that still works


@pytest.mark.parametrize("noisy_nats, reading, word", [
    (0.96, "smaller than the diagonal", "reproduced"),
    (0.96, "larger than the diagonal", "contradicts"),
    (0.96, "not distinguishable from the diagonal", "inconclusive"),
    (2.5, "smaller than the diagonal", "untestable here"),  # only a degraded base: no model, not no transfer
])
def test_the_init_noise_sweep_counts_only_scales_whose_noisy_base_still_works(tmp_path, noisy_nats, reading, word):
    root = _synthetic(tmp_path, noisy_nats=noisy_nats)
    d = bm.load(root)
    dc = d["_dose"].family == "dose contrasts"
    d.csv["_dose"] = d["_dose"].assign(reading=np.where(dc, reading, None))
    w, ev, basis = bm.dose_control(d)
    assert w == word
    state = "base works, +0.05" if noisy_nats < 2 else "base degraded, +1.59"
    assert state in ev
    rec = [r for r in bm.records(d) if r["claim"] == bm.DOSE_CLAIM]
    assert len(rec) == 1 and rec[0]["verdict"] == word and rec[0]["model"] == S
    d.csv["_dose"] = d["_dose"].assign(n_seeds=2, reading=np.where(dc, "too few seeds", None))
    assert bm.dose_control(d)[:3:2] == ("untestable here", "not yet tested (2 seeds so far)")


def test_the_reader_takes_what_the_analysis_writes(tmp_path):
    """Effects, contrasts and the dose from ``matrix_analysis`` itself on a synthetic tidy frame (so the columns the
    report reads are the ones the analysis writes)."""
    rng = np.random.default_rng(0)
    rows = []
    for pair in (SS, GS, dose_key(S, 0.1)):
        for seed in range(3):
            for teacher in ("neutral", "owl", "eagle"):
                for q in range(4):
                    for animal in ("owl", "eagle"):
                        bump = 0.3 if teacher == animal and pair == SS else 0.0
                        rows.append({"pair": pair, "teacher": teacher, "seed": seed, "step": 60, "question": f"q{q}",
                                     "animal": animal, "logp": 0.0, "share": -3 + bump + rng.normal(0, 0.02)})
    tidy = pd.DataFrame(rows)
    fam = matrix_analysis.FAMILIES
    dose = pd.concat([matrix_analysis.effects(tidy, fam, family="base-noise dose"),
                      matrix_analysis.contrasts(tidy, fam, family="dose contrasts")], ignore_index=True)
    root = _write(tmp_path, matrix_analysis.effects(tidy, fam), matrix_analysis.contrasts(tidy, fam), dose,
                  meta={"config": {"bases": [S, G]}, "complete": False, "students_done": 27, "students_planned": 60})
    t = bm.tables(root)
    assert "transfer" in t["b_matrix"] and "smaller than the diagonal" in t["b_matrix_contrasts"]
    assert "smaller than the diagonal" in t["b_matrix_dose"]
    assert bm.control(bm.load(root))[0] in ("reproduced", "partly")


def test_an_edited_result_or_an_unlisted_record_is_one_line(tmp_path):
    root = _synthetic(tmp_path)
    f = root / "plots_b" / "topic_b_base_matrix_effects.csv"
    good = f.read_text()
    f.write_text(good.replace("7.77", "9.99"))
    with pytest.raises(UserError, match="topic_b_base_matrix_effects.csv does not match the SHA-256"):
        bm.load(root)
    f.write_text(good)
    rec = root / "plots_b" / "topic_b_base_matrix_records" / S / "student-x" / "record.json"
    rec.parent.mkdir(parents=True)
    rec.write_text("{}")
    with pytest.raises(UserError, match="student-x/record.json is not among the records"):
        bm.load(root)


def test_the_reporting_module_computes_no_statistic():
    src = Path(bm.__file__).read_text()
    assert not re.search(r"scipy|\bstats\b|\.mean\(|\.std\(|\.var\(|ttest|holm\(|np\.log\b|\.agg\(", src)


def test_the_glance_leaves_the_base_matrix_to_its_own_block(tmp_path):
    from subliminal.reporting.glance import glance

    va = pd.DataFrame({"topic": ["A"], "script": ["x.py"], "claim": ["c"], "verdict": ["reproduced"], "evidence": ["e"],
                       "model": [""]})
    root = _synthetic(tmp_path)
    vb = pd.DataFrame(bm.verdicts(root))
    text = glance(tmp_path, va, vb)
    assert "carries its trait" not in text and bm.CONTROL not in text
