"""The ladder's output files, all written together (``results.OutputSet``) from the students on record
(``records.on_record``): the tidy CSV, the summaries, verdicts, figure and the run JSON (``write``).

The run JSON says which students the outputs rest on and whether the run is complete: ``planned`` (the union of
this command's plan, the previous run's and the students on record), ``complete`` (every planned student is
finished), ``rules`` (the evaluation rules, ``rules.rules_id``) and ``records`` ({"<student folder>/record.json":
SHA-256 of the archived file}), so a report can verify each record against the summary it produced.
"""

from __future__ import annotations

import time

import pandas as pd

from subliminal.results import OutputSet, write_csv, write_run_json
from subliminal.topic_b import models
from subliminal.topic_b.arms import Arm
from subliminal.topic_b.theory import analysis, plots
from subliminal.topic_b.theory.cells import cell_of
from subliminal.topic_b.theory.records import student_id

STEM = "topic_b_transfer_theory"
REPORTED = ("owl", "eagle")  # the animals whose rows the tidy CSV keeps (the share needs all 25: computed first)


def model_stem(model: str) -> str:
    """The stem of one model's ladder files (``models.model_stem``)."""
    return models.model_stem(STEM, model)


def cell_key(rec: dict) -> str:
    """The record's cell as the CSVs carry it (its key, ``cells.CELLS``)."""
    return cell_of(Arm(**rec["arm"])).key


def write(cfg, records: list[dict], base_pref: pd.DataFrame, info: dict, t0: float) -> None:
    """Every output from `records` (the students on record, in plan order) and `base_pref` (the base rows).
    `info`: the run JSON's fields that do not come from the records: "planned" (student ids), "teachers",
    "teacher_settings", "student_settings", "rules", "records" (file hashes), "mde_stated_before_the_runs",
    "sampled_inputs"; and "topic_a", the figure's Topic A summary (not written)."""
    done = [r for r in records if r.get("complete")]
    tidy = analysis.tidy(done, base_pref, cell_key)
    cells = list(dict.fromkeys(cell_key(r) for r in done))
    summ = analysis.summary(tidy, cells, list(REPORTED))
    cos = analysis.cosine_rows(done, cell_key)
    contrasts = analysis.cosine_contrasts(cos)
    stem = model_stem(cfg.model)
    ids = {student_id(r["name"], r["seed"]) for r in done}
    planned = list(dict.fromkeys(list(info["planned"]) + sorted(ids - set(info["planned"]))))
    with OutputSet(cfg.out) as o:
        write_csv(tidy[tidy.animal.isin(REPORTED)], o.path(f"{stem}.csv"))
        write_csv(summ, o.path(f"{stem}_summary.csv"))
        write_csv(cos, o.path(f"{stem}_cosines.csv"))
        write_csv(contrasts, o.path(f"{stem}_cosine_contrasts.csv"))
        write_csv(analysis.fit_summary(cos), o.path(f"{stem}_fit.csv"))
        write_csv(analysis.cosine_layer_summary(analysis.cosine_layer_rows(done, cell_key)), o.path(f"{stem}_cosine_layers.csv"))
        write_csv(analysis.verdicts(summ) if len(summ) else pd.DataFrame(), o.path(f"{stem}_verdicts.csv"))
        write_csv(analysis.sampling_power(tidy, cells, list(REPORTED)), o.path(f"{stem}_sampling_power.csv"))
        write_csv(analysis.rung_contrasts(tidy, cells, list(REPORTED)), o.path(f"{stem}_rungs.csv"))
        if len(summ):
            plots.ladder(summ, contrasts, o.path(f"{stem}.png"), info["topic_a"])
        write_run_json(o.path(f"{stem}.json"), cfg, 0, time.time() - t0, {
            "complete": ids >= set(planned), "students_done": len(done), "students_planned": len(planned),
            "planned": planned, "teachers": info["teachers"],
            "teacher_settings": info["teacher_settings"], "student_settings": info["student_settings"],
            "rules": info["rules"],
            "tokens_per_s": {student_id(r["name"], r["seed"]): r.get("tokens_per_s_last_run") for r in done},
            "minutes_per_student": {student_id(r["name"], r["seed"]): round(r["seconds"] / 60, 1)
                                    for r in done if r.get("seconds")},
            "mde_stated_before_the_runs": info["mde_stated_before_the_runs"], "sampled_inputs": info["sampled_inputs"],
            "records": info["records"]})
