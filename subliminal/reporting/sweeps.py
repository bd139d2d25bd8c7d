"""The table of a Topic A one-knob sweep (mechanism scripts), read from its summary and tests, with what its verdicts use."""

from __future__ import annotations

import numpy as np
import pandas as pd

from subliminal.reporting.render import ci, diff, num, row, sign, table
from subliminal.topic_a.spec import Experiment


def reference_setting(exp: Experiment, summary: pd.DataFrame, meta: dict) -> str:
    """The setting a sweep's paired tests compared every other with: the declared reference for the run's recorded
    config, or the first setting when it names none or one the run lacks (as `mech_runs.sweep_tests` chose)."""
    ref = exp.sweep.reference(exp.config_from(meta.get("config", {})))
    names = list(dict.fromkeys(summary.setting))
    return ref if ref in names else names[0]


def sweep_table(s: pd.DataFrame, t: pd.DataFrame, knobs: list[str], reference: str, extra: str | None = None):
    """The sweep table (rows from summary + tests) and a per-setting frame of what the verdicts use."""
    head = ["setting", "n", "teacher", "student (aux)", "cross-model (aux)", "student − cross", f"student − {reference}"]
    head += [f"{extra} (student)"] if extra else []
    rows, means = [], []
    for name, g in s.groupby("setting", sort=False):
        st = row(g, condition="student_aux")
        sc = row(t, setting=name, a="student_aux", b="cross_aux")
        vr = row(t, setting=name, a="student_aux", b=f"student_aux at {reference}")
        line = [name, int(st["n"]), ci(row(g, condition="teacher")), ci(st), ci(row(g, condition="cross_aux")),
                diff(sc) if sc is not None else "—", diff(vr) if vr is not None else "(reference)"]
        if extra:
            x = row(t, setting=name, kind="measure", measure=extra, condition="student_aux")
            line.append(num(x["mean"], x["ci95_low"], x["ci95_high"]) if x is not None else "—")
        rows.append(line)
        means.append({"setting": name, **{k: g[k].iloc[0] for k in knobs}, "student": st["mean"],
                      "transfer": sc["mean_diff"] if sc is not None else np.nan, "transfer_sign": sign(sc), "vs_ref": vr})
    return table(rows, head), pd.DataFrame(means)
