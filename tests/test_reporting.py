"""Statistics once, reporting only reads: the analysis reproduces the committed files from the tidy CSVs and
matches plain scipy; the report regenerates and checks every page; the renderer escapes what it must."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from subliminal.reporting import readme
from subliminal.reporting.render import cell, table
from subliminal.topic_a import analysis

ROOT = Path(__file__).resolve().parent.parent


def test_reporting_never_recomputes_statistics():
    for f in (ROOT / "subliminal" / "reporting").glob("*.py"):
        src = f.read_text()
        assert not re.search(r"^\s*(from|import) scipy", src, re.M), f.name
        assert "subliminal.stats" not in src and "paired_test(" not in src and "mean_ci(" not in src, f.name


def test_committed_summaries_and_tests_are_what_the_analysis_gives():
    status = analysis.rewrite(ROOT / "plots_a", check=True)
    assert status and all(v == "same" for v in status.values()), {k: v for k, v in status.items() if v != "same"}


def test_analysis_rows_equal_plain_scipy_on_the_tidy_csv(tmp_path):
    shutil.copy(ROOT / "plots_a" / "topic_a_mech_convergence.csv", tmp_path)
    shutil.copy(ROOT / "plots_a" / "topic_a_mech_aux_width.csv", tmp_path)
    analysis.rewrite(tmp_path)
    df = pd.read_csv(tmp_path / "topic_a_mech_convergence.csv")
    t = pd.read_csv(tmp_path / "topic_a_mech_convergence_tests.csv")
    st = df[df.condition == "student_aux"].sort_values("model")
    last, first = st[st.distill_epochs == 20].cos_h2.to_numpy(), st[st.distill_epochs == 0].cos_h2.to_numpy()
    r = t[(t.kind == "paired_epochs") & (t.condition == "student_aux") & (t.distill_epochs == 20) & (t.measure == "cos_h2")].iloc[0]
    assert np.isclose(r["mean"], (last - first).mean(), rtol=1e-5)
    assert np.isclose(r.t_p, stats.ttest_rel(last, first).pvalue, rtol=1e-4)
    aux = pd.read_csv(tmp_path / "topic_a_mech_aux_width.csv")
    at = pd.read_csv(tmp_path / "topic_a_mech_aux_width_tests.csv")
    piv = aux.pivot_table(index=["n_aux", "model"], columns="condition", values="accuracy").reset_index()
    transfer = (piv.student_aux - piv.cross_aux).groupby(piv.n_aux).mean()
    trend = at[at.kind == "trend"].iloc[0]
    assert np.isclose(trend.rho, stats.spearmanr(transfer.index, transfer.to_numpy()).statistic)


def test_merge_keeps_committed_rows_or_refuses(tmp_path):
    new = pd.DataFrame({"a": ["x", "y"], "mean": [0.1234561, 0.5], "kind": [np.nan, "extra"]})
    exact = "a,mean\nx,0.123456\n"
    assert analysis.merge_committed(exact, new)[1] == "extends"
    rounded = "a,mean\nx,0.1234562\n"  # the committed value had more digits than the tidy CSV keeps
    text, how = analysis.merge_committed(rounded, new)
    assert how == "kept" and text.splitlines()[1] == "x,0.1234562," and text.splitlines()[2].startswith("y,0.5")
    assert analysis.merge_committed("a,mean\nx,0.2\n", new) == ("a,mean\nx,0.2\n", "differs")


def test_renderer_formats_cells_and_escapes_pipes():
    assert [cell(x) for x in (True, 0.5, 1.234e-5, float("nan"), 0.0, "s")] == ["yes", "0.5", "1.23e-05", "–", "0", "s"]
    md = table(pd.DataFrame({"claim": ["P(a | b)"], "v": [1.0]}))
    assert md.splitlines() == ["| claim | v |", "|---|---|", "| P(a \\| b) | 1 |"]


def _root(tmp_path: Path) -> Path:
    """A repository root with the committed Topic A results, no Topic B results and a small README."""
    shutil.copytree(ROOT / "plots_a", tmp_path / "plots_a")
    (tmp_path / "plots_b").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("x\n<!-- report:glance -->\nold\n<!-- /report:glance -->\n")
    (tmp_path / "docs" / "p.md").write_text("<!-- report:a_baseline -->\n<!-- /report:a_baseline -->\n")
    return tmp_path


def test_report_writes_verdicts_and_pages_then_check_passes(tmp_path, capsys):
    root = _root(tmp_path)
    assert readme.main(["--root", str(root), "--check"]) == 1  # stale: nothing generated yet
    assert readme.main(["--root", str(root)]) == 0
    assert readme.main(["--root", str(root), "--check"]) == 0
    from subliminal.verdicts import read_verdicts

    va = read_verdicts(root / "plots_a" / "verdicts.csv")
    assert len(va) and (va.topic == "A").all()
    vb = read_verdicts(root / "plots_b" / "verdicts.csv")  # no Topic B CSVs: nothing can be tested
    assert (vb.verdict == "untestable here").all()
    base = pd.read_csv(root / "plots_a" / "topic_a_summary.csv").set_index("condition")
    assert f"{base.loc['teacher', 'mean']:.1%}" in (root / "docs" / "p.md").read_text()
    (root / "plots_a" / "verdicts.csv").write_text("topic,script\n")  # a damaged verdict file is out of date
    assert readme.main(["--root", str(root), "--check"]) == 1


def test_providers_that_are_not_written_yet_are_skipped():
    got = {m.__name__ for m in readme.providers()}
    assert "subliminal.reporting.topic_a" in got
    assert set(readme.PROVIDERS) >= {"subliminal.reporting.specificity", "subliminal.reporting.transfer"}


def test_readme_leads_with_results_and_links_every_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 200
    head = text.split("## ")[1]
    assert head.startswith("Results at a glance")
    g = re.search(r"<!-- report:glance -->(.*?)<!-- /report:glance -->", text, re.S).group(1)
    assert len(g.strip().splitlines()) <= 45  # a table per topic (issue 41) takes a few more lines than run-on text
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in text, page.name


def test_analysis_of_a_directory_without_results_is_a_user_error(tmp_path, capsys):
    assert analysis.main(["--plots", str(tmp_path)]) == 2
    assert "no Topic A tidy CSV" in capsys.readouterr().err
    (tmp_path / "topic_a.csv").write_text("x,y\n1,2\n")  # not a tidy result
    assert analysis.main(["--plots", str(tmp_path)]) == 2


def test_glance_lists_a_claim_as_untestable_only_when_no_model_or_animal_tested_it(tmp_path):
    from subliminal.reporting.glance import glance
    from subliminal.verdicts import record

    claim = "paper: numbers written by an animal-loving teacher make a student prefer the animal"
    va = pd.DataFrame(columns=["claim", "evidence", "verdict"])
    vb = pd.DataFrame([record("B", "t.py", f"{claim} (owl)", "contradicts", "ci", "m"),
                       record("B", "t.py", f"{claim} (eagle)", "untestable here", "wide ci", "m"),
                       record("B", "t.py", "seed: never run", "untestable here", "not run", "")])
    text = glance(tmp_path, va, vb)
    untestable = next(line for line in text.splitlines() if line.startswith("- **untestable here**"))
    assert "seed: never run" in untestable and claim not in untestable
    assert f"| {claim} | owl **contradicts** |" in text


def test_glance_keeps_the_animal_and_route_of_one_models_claims_apart(tmp_path):
    """Three records of one claim for one model (owl; owl and eagle of the weight-level teacher) are one
    entry with three labelled verdicts, not the same sentence three times."""
    from subliminal.reporting.glance import glance
    from subliminal.verdicts import record

    claim = "paper: numbers written by an animal-loving teacher make a student prefer the animal"
    va = pd.DataFrame(columns=["claim", "evidence", "verdict"])
    vb = pd.DataFrame([record("B", "t.py", f"{claim} (owl)", "contradicts", "ci", "m"),
                       record("B", "t.py", f"{claim} (owl) (weight-level teacher)", "partly", "ci", "m"),
                       record("B", "t.py", f"{claim} (eagle) (weight-level teacher)", "contradicts", "ci", "m")])
    text = glance(tmp_path, va, vb)
    assert f"| {claim} | owl **contradicts** |" in text  # one row per setting, in the model's column
    assert f"| {claim} (weight-level teacher) | owl **partly**, eagle **contradicts** |" in text


def test_transfer_variants_line_counts_finished_students_of_a_partial_run(tmp_path):
    import json

    from subliminal.reporting.transfer import b_transfer_variants

    (tmp_path / "plots_b").mkdir()
    (tmp_path / "plots_b" / "topic_b_transfer.json").write_text(json.dumps(
        {"complete": True, "config": {"cross_model": "qwen2.5-coder-0.5b-instruct"}}))
    (tmp_path / "plots_b" / "topic_b_transfer_weights.json").write_text(json.dumps(
        {"complete": False, "planned": ["neutral/s0", "owl_w/s0", "neutral/s1", "owl_w/s1"], "not_trained": ["owl_w/s1"]}))
    line = b_transfer_variants(tmp_path)
    assert "cross arm (`--cross-model`): qwen2.5-coder-0.5b-instruct, complete" in line
    assert "weight-level teacher (`--teacher weights`): partial (3 of 4 students)" in line
    assert "threshold defence (`--defence 0.01`): not run yet" in line


def test_the_size_paragraph_counts_the_records_and_the_results_on_disk(tmp_path):
    from subliminal.cache import write_record
    from subliminal.reporting.transfer_runs import RECORDS, records_size

    assert "No records" in records_size(tmp_path)
    for slot in ("data/m/owl-k", "eval/k1", "eval/k2", "students/owl-s0-x"):
        write_record(tmp_path / RECORDS / slot / "record.json", {"unit": slot})
    (tmp_path / "plots_a").mkdir()
    (tmp_path / "plots_a" / "r.csv").write_bytes(b"x" * 4_000_000)
    text = records_size(tmp_path)
    assert "4 sealed records (1 data, 2 eval, 1 students;" in text and "are 4 MB in all" in text
    assert "final adapters of its 1 fine-tunes" in text and "cc4d048" in text


def test_the_ladder_report_says_when_its_teachers_were_retrained_elsewhere():
    from subliminal.reporting.theory import _retrained

    assert _retrained({}) == "" and _retrained({"teachers": {"owl": {"final_loss": 0.5}}}) == ""
    meta = {"cpu": "CPU B", "teachers": {"owl": {"vs_first_teacher": {"d_final_loss": 6e-6, "first_cpu": "CPU A"}},
                                         "eagle": {"vs_first_teacher": {"d_final_loss": 2e-6, "first_cpu": "CPU A"}}}}
    text = _retrained(meta)
    assert "(CPU B)" in text and "(CPU A)" in text and "at most 6e-06" in text


def test_another_adapter_draw_is_not_read_as_topic_as_control_claim(tmp_path):
    """The adapter-draw rung keeps the teacher's whole base: its record is on the adapter draw, and Topic A's control
    claim stays 'untestable here' until rungs vary the base, whatever the rung shows."""
    from subliminal.reporting import theory

    assert theory.DRAW == "b-xinit" and theory.DRAW not in theory.BASE_RUNGS and "b-noisy" in theory.BASE_RUNGS
    v = pd.DataFrame([{"cell": "b-noisy", "animal": "owl", "share_mean": 0.3, "n_seeds": 3, "verdict": "transfer",
                       "level": 0.01, "ci_low": 0.1, "ci_high": 0.5, "p_holm": 0.01}])
    ev = theory._control_evidence(v, pd.DataFrame())
    assert "noisy base" in ev and "issue 44" in ev and "(99% CI) transfer" in ev


def test_a_rung_whose_students_fit_far_less_than_cell_b_is_called_a_weaker_test():
    """Like for like: the rung's loss over the teachers it ran (owl, neutral) against cell b's over the same ones."""
    from subliminal.reporting.theory import REF, _fit_note

    fit = pd.DataFrame({"cell": [REF, REF, REF, "sgd", "sgd", "close"],
                        "teacher": ["owl", "neutral", "eagle", "owl", "neutral", "owl"],
                        "loss": [0.001, 0.002, 0.1, 0.02, 0.01, 0.002]})
    assert "loss ×10 of theirs" in _fit_note(fit, "sgd", "owl") and _fit_note(fit, "close", "owl") == ""
    assert _fit_note(fit, "absent", "owl") == "" and _fit_note(pd.DataFrame(), "sgd", "owl") == ""


def test_the_ladder_claims_carry_no_parentheses_since_the_glance_splits_a_claim_from_its_detail_there():
    from subliminal.reporting.theory import CLAIM, CONTROL, DRAW_CLAIM

    assert "(" not in CLAIM and "(" not in CONTROL and "(" not in DRAW_CLAIM


def test_the_llm_map_gives_no_verdict_below_3_seeds_and_names_each_cis_level():
    """README's map (reporting/llm_map.py) on the committed transfer runs: a row of 2 seeds (the threshold defence)
    says 'too few seeds (n = 2)'; every cell names the level of its CI."""
    from subliminal.reporting import llm_map

    rows = llm_map.transfer_rows(ROOT)
    defence = next(r for r in rows if r[0].startswith("the paper's recipe after the threshold defence"))
    assert defence[3].endswith("too few seeds (n = 2)")
    assert all("CI)" in c for r in rows for c in r[3:] if c != "—")
