"""What the ladder's students are measured against that is kept beside their records (``<out>/<stem>_records``):
the sampled input pools (``sync_pools``), the first teachers' fingerprint (``teacher_fingerprints``) and the base
model's preference (``base_preference``). Each is verified when read; whatever is skipped, rebuilt or not
compared is named in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from subliminal.cache import read_record, write_record
from subliminal.cli import UserError
from subliminal.results import cpu_name, read_json
from subliminal.topic_b.theory.readouts import preference
from subliminal.topic_b.theory.rules import preference_rules
from subliminal.topic_b.transfer import sealed

BASE_PREFERENCE = "base_preference.json"
FINGERPRINT = ("key", "final_loss", "check_completion_logp_example0")


def _names(paths: list[Path]) -> str:
    return ", ".join(p.as_posix() for p in paths)


def sync_pools(src: Path, dest: Path, log: Callable = print) -> int:
    """Copy the sampled input pools (the weight teachers' number lists: sealed shards and their settings) from
    `src` to `dest` where `dest` lacks them or holds other bytes; only files that match their seal are copied, and
    each is written with its seal. Returns the number of files copied. The committed copy beside the records lets
    another machine train on the very lists these students saw (a student's key includes its pool's hash, and
    sampling need not repeat bit for bit on another CPU). One line names every file skipped (no valid seal:
    edited, unsealed or unreadable) and every file of `dest` replaced."""
    copied, skipped, replaced = 0, [], []
    for f in sorted(Path(src).rglob("*")) if Path(src).exists() else []:
        if not f.is_file() or sealed.is_seal(f):
            continue
        rel = f.relative_to(src)
        data = sealed.read_sealed(f, log=lambda m: None)
        if data is None:
            skipped.append(rel)
            continue
        out = Path(dest) / rel
        if out.exists():
            if sealed.read_sealed(out, log=lambda m: None) == data:
                continue
            replaced.append(rel)
        sealed.write_sealed(out, data)
        copied += 1
    if skipped or replaced:
        log(f"[theory] pools {src} -> {dest}: "
            + "; ".join(x for x in (
                f"skipped {len(skipped)} file(s) failing their checksum (edited, unsealed or unreadable; "
                f"restore them or delete them to resample): {_names(skipped)}" if skipped else "",
                f"replaced {len(replaced)} file(s) of {dest} that held other or unverified bytes: {_names(replaced)}"
                if replaced else "") if x))
    return copied


def _run_json_teachers(committed_json: Path, log: Callable) -> dict:
    """The teachers' fingerprints in a run JSON; {} when it is absent or unreadable (one line)."""
    if not committed_json.exists():
        return {}
    try:
        old = read_json(committed_json).get("teachers", {})
    except (UserError, OSError, AttributeError) as e:
        log(f"[theory] {committed_json} cannot be read ({e}); its teachers are not compared with")
        return {}
    return {t: {k: r.get(k) for k in FINGERPRINT} | {"cpu": r.get("cpu", "")}
            for t, r in old.items() if isinstance(r, dict)} if isinstance(old, dict) else {}


def teacher_fingerprints(records: dict[str, dict], archive: Path, committed_json: Path, log: Callable = print) -> dict:
    """How this run's teachers compare with the first ones the committed students trained under.

    The teachers are not committed (they retrain in minutes), so another machine trains its own: the same data
    and seed, but on another CPU kind float sums differ in their last bits. The first teachers' fingerprint (final
    loss, the log-prob of one training answer, the CPU) is kept beside the records, ``teachers.json``, taken from
    the committed run JSON where an older run left no record; every run compares with it and says by how much its
    own teachers differ. ``teachers.json`` is never overwritten: a damaged one is named in one line and the
    comparison falls back to the run JSON's teachers (the latest run's, said so) or is skipped; with no earlier
    teachers at all (a fresh ``--out``) this run's become the first, and nothing is compared. Returns {trait:
    {"d_final_loss", "d_check_logp", "first_cpu"}} for teachers of the same key."""
    path = Path(archive) / "teachers.json"
    first, against, note = read_record(path), "the first one", ""
    if first is None and path.exists():
        first, against = _run_json_teachers(committed_json, log), f"the teachers in {committed_json} (the latest run's)"
        log(f"[theory] {path} is damaged (unreadable or failing its checksum): the first teachers' fingerprint is "
            f"not used and not rewritten (restore it from git); "
            + (f"comparing with {against} instead" if first else "no teacher comparison this run"))
    elif first is None:
        first = _run_json_teachers(committed_json, log)
        if not first:
            write_record(path, {t: {k: r.get(k) for k in FINGERPRINT} | {"cpu": cpu_name()} for t, r in records.items()})
            log(f"[theory] no earlier teachers to compare with (no {path.name} nor run JSON beside the outputs): "
                f"this run's teachers are recorded as the first, in {path}")
            return {}
        write_record(path, first)
        note = (f"[theory] no {path.name} beside the records: the teachers in {committed_json} are recorded as the "
                f"first, in {path} (if it was deleted, restore it from git instead)")
    out = {}
    for t, r in records.items():
        f = first.get(t)
        if not f or f.get("key") != r.get("key"):
            continue
        d = {"d_final_loss": _diff(r.get("final_loss"), f.get("final_loss")),
             "d_check_logp": _diff(r.get("check_completion_logp_example0"), f.get("check_completion_logp_example0")),
             "first_cpu": f.get("cpu", "")}
        out[t] = d
        log(f"[theory] {t} teacher against {against}: |d final loss| {d['d_final_loss']}, "
            f"|d check log-prob| {d['d_check_logp']} (first trained on: {d['first_cpu'] or 'an unrecorded CPU'})")
    if first and not out:
        log("[theory] no earlier teacher of these keys (other teacher settings): nothing compared")
    if note:
        log(note)
    return out


def _diff(a, b) -> float | None:
    return None if a is None or b is None else abs(float(a) - float(b))


def kept_preference(root: Path | None, archive: Path, rules: str, base_id: str, log: Callable = print) -> dict | None:
    """The base preference kept beside the records (first) or in the cache, made under these evaluation rules and
    this base model; one line for a kept one that is not (it is not used)."""
    for p in [Path(archive) / BASE_PREFERENCE] + ([Path(root) / BASE_PREFERENCE] if root is not None else []):
        got = read_record(p)
        if got is None:
            continue
        if preference_rules(got) != rules or got.get("base", base_id) != base_id:
            log(f"[theory] {p} was computed under other evaluation rules (questions, animals or scoring) or for "
                "another model: not used, computed again")
            continue
        return got
    return None


def base_preference(base, tok, root: Path, archive: Path, rules: str, base_id: str, log: Callable = print) -> pd.DataFrame:
    """The base model's exact preference (the 'base' rows): from the archive beside the outputs (so another
    machine reports the same base rows), else from the cache, else computed; kept in both, with its rules."""
    got = kept_preference(root, archive, rules, base_id, log)
    if got is None:
        got = {"rules": rules, "base": base_id, "rows": preference(base, tok).to_dict("list")}
    for p in (Path(root) / BASE_PREFERENCE, Path(archive) / BASE_PREFERENCE):
        if read_record(p) != got:
            write_record(p, got)
    return pd.DataFrame(got["rows"])
