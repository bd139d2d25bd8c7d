"""The students on record: the sealed records archived beside the outputs (``<out>/<stem>_records/*/record.json``)
and those in the model's cache (``<cache>/<model>/students/*/record.json``), and which of them are *current*:
finished under this run's student settings, teachers, base model and evaluation rules (``Want``).

Every output is built from all current students on record, whichever subset a command plans (``on_record``), so
a rerun of some cells or seeds never removes a row; a run's plan is the union of its own, the previous run's
(kept in the run JSON, ``planned``) and the students on record (``planned``).

Archive layout: ``<name>-s<seed>/record.json``; a record of other settings, teachers or rules that holds that
place is never overwritten: a student of this run then goes to ``<name>-s<seed>-<tag>`` (``slot``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from subliminal import carry
from subliminal.cache import config_hash, read_record
from subliminal.topic_b.arms import Arm
from subliminal.topic_b.theory.cells import CELLS, Cell, cell_of, plan
from subliminal.topic_b.theory.rules import V1_RULES, record_rules
from subliminal.topic_b.theory.student import POOLED, StudentSettings, key_of, student_dir


def student_id(name: str, seed: int) -> str:
    """A student's name in plans and in the archive: ``<arm name>-s<seed>``."""
    return f"{name}-s{seed}"


@dataclass(frozen=True)
class Want:
    """What a record must have been made under to be current: these student settings, the teachers of these keys
    (trait -> key), this base model and these evaluation rules."""

    sset: StudentSettings
    teacher_keys: dict
    base_id: str
    rules: str

    def cell(self, rec: dict) -> Cell | None:
        """The record's cell when its arm and trait are one of ``cells.CELLS``'s; else None."""
        try:
            arm = Arm(**rec["arm"])
            c = cell_of(arm)
        except (KeyError, TypeError, ValueError):
            return None
        return c if arm.trait in c.traits() else None

    def same_run(self, rec: dict) -> bool:
        """Settings, teacher and rules as this run's (whatever the record's progress)."""
        trait = (rec.get("arm") or {}).get("trait")
        return (carry.plain(rec.get("settings")) == carry.plain(asdict(self.sset)) and trait in self.teacher_keys
                and rec.get("teacher_key") == self.teacher_keys[trait] and record_rules(rec) == self.rules)

    def current(self, rec: dict) -> bool:
        """A finished student of a ladder cell made under this run's settings, teacher, rules and base model. The
        key is checked in full for the random-list cells; a pooled cell's key also holds its pool's hash, which
        only the ladder (``Ladder.finished``) checks, having the pool."""
        if not rec.get("complete") or not self.same_run(rec) or self.cell(rec) is None:
            return False
        arm = Arm(**rec["arm"])
        if arm.inputs in POOLED:
            return True
        key = key_of(arm, rec["seed"], self.sset, rec["teacher_key"], self.base_id, None, self.rules)
        return rec.get("key") == key


def slot(archive: Path, rec: dict, want: Want) -> Path:
    """Where `rec` (a student of this run) goes in the archive: ``<name>-s<seed>/record.json`` unless a readable
    record of other settings, teachers or rules is there; then ``<name>-s<seed>-<tag>/record.json``."""
    base = Path(archive) / student_id(rec["name"], rec["seed"])
    there = read_record(base / "record.json")
    if there is None or want.same_run(there):
        return base / "record.json"
    tag = config_hash({"settings": rec["settings"], "teacher": rec["teacher_key"], "rules": want.rules})[:8]
    return base.with_name(f"{base.name}-{tag}") / "record.json"


def archive(archive_dir: Path, rec: dict, want: Want) -> Path:
    """Keep a finished student of this run in the archive (``carry.keep``; unless the same record is there)."""
    return carry.keep(archive_dir, slot(archive_dir, rec, want).parent.name, carry.plain(rec))


def restore(archive_dir: Path, root: Path) -> None:
    """Finished or partial student records from the committed archive into the model's cache `root`, where the
    ladder reads them (``student.student_dir``; ``carry.restore``: verified, never over a record further along)."""
    carry.restore(archive_dir, lambda f, b: student_dir(root, b["name"], b["seed"], b["settings"],
                                                        b["teacher_key"]) / carry.RECORD, pattern=f"*/{carry.RECORD}")


def on_record(archive_dir: Path, root: Path | None, want: Want, log: Callable = print) -> dict[str, tuple[Path, dict]]:
    """Every current student on record: {student id: (its archive file, record)}, in the ladder's plan order.
    A current student found only in the cache is archived first, so every record an output rests on is a file
    beside it; a second current record of one student (another slot) is named in one line and left out."""
    found: dict[str, tuple[Path, dict]] = {}
    dupes = []
    for f in sorted(Path(archive_dir).glob("*/record.json")):
        r = read_record(f)
        if r is None or not want.current(r):
            continue
        sid = student_id(r["name"], r["seed"])
        if sid in found:
            dupes.append(f.parent.name)
            continue
        found[sid] = (f, r)
    cached = sorted((Path(root) / "students").glob("*/record.json")) if root is not None else []
    for f in cached:
        r = read_record(f)
        if r is None or not want.current(r) or student_id(r["name"], r["seed"]) in found:
            continue
        found[student_id(r["name"], r["seed"])] = (archive(archive_dir, r, want), r)
    if dupes:
        log(f"[theory] a second current record of one student, left out of the outputs: {', '.join(dupes)}")
    order = plan_order(r for _, r in found.values())
    return dict(sorted(found.items(), key=lambda kv: order[kv[0]]))


def plan_order(recs) -> dict[str, tuple]:
    """Each record's place in the ladder's order (``cells.plan`` over every cell and the seeds on record)."""
    recs = list(recs)
    seeds = sorted({r["seed"] for r in recs})
    pos = {student_id(c.arm(t).name, s): i for i, (c, s, t) in enumerate(plan(CELLS, seeds))}
    return {student_id(r["name"], r["seed"]): (pos.get(student_id(r["name"], r["seed"]), len(pos)), r["name"])
            for r in recs}


def planned(cells, seeds) -> list[str]:
    """The student ids a command's cells and seeds plan, in run order."""
    return [student_id(c.arm(t).name, s) for c, s, t in plan(cells, seeds)]


def same_run_json(prev: dict, want: Want) -> bool:
    """Whether a previous run JSON was written under this run's student settings, teachers and rules (a JSON of
    before the rules id: version 1's)."""
    teachers = prev.get("teachers") if isinstance(prev.get("teachers"), dict) else {}
    return bool(prev) and carry.plain(prev.get("student_settings")) == carry.plain(asdict(want.sset)) \
        and prev.get("rules", V1_RULES) == want.rules \
        and all((teachers.get(t) or {}).get("key", k) == k for t, k in want.teacher_keys.items())


def previous_plan(prev: dict, want: Want) -> list[str]:
    """The students the previous run JSON planned, when it ran under this run's settings, teachers and rules:
    its ``planned`` list, or for a JSON of before that list, the plan of its configured cells and seeds."""
    if not same_run_json(prev, want):
        return []
    if isinstance(prev.get("planned"), list):
        return [str(p) for p in prev["planned"]]
    cfg = prev.get("config") or {}
    cells = [c for c in CELLS if c.key in (cfg.get("cells") or [])]
    return planned(cells, [int(s) for s in cfg.get("seeds") or []])


def file_hashes(found: dict[str, tuple[Path, dict]]) -> dict[str, str]:
    """{"<student folder>/record.json": SHA-256 of the archived file's bytes} for every record used."""
    return {f"{f.parent.name}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(f for f, _ in found.values())}
