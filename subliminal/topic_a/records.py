"""A Topic A run's records beside its outputs (`subliminal.carry`): how a run moves to another machine.

Every student whose accuracies a run's outputs show, every teacher whose test accuracy they show, and every number
they show that was measured on weights (the mechanism scripts' CKA / cosines, probe accuracies, readout norms) is one
sealed record (`cache.write_record`) in the run's records folder, ``<out>/<name>_records/<slot>/record.json``,
committed with the outputs:

    <condition>-t<teacher epochs>-<inputs>-<student key>/record.json   key, condition, teacher epochs, inputs, and
                                                                         the accuracies (one per model) at each
                                                                         milestone the run read
    teacher-t<epochs>-<teacher key>/record.json                         key, epochs, the teacher's accuracies
    <measure>-<label>-<measure key>/record.json                         measure, key, inputs (everything that
                                                                         determines the numbers: models' keys,
                                                                         milestone, input set, settings), values
                                                                         (name → one number per model)

At the start of a run `restore` puts every verified record back into the run store (`store.py`) where the store
holds none as far along (a measure: the committed one always, it is what the outputs were built from), so a run on
a fresh machine (an empty cache, only the committed outputs) skips every finished student and teacher, measures
nothing it has kept (`measured`) and writes the same outputs; an edited record is named in one line and recomputed.
Weights and checkpoints stay in the cache: what needs them (a measure not kept, e.g. with a changed setting, whose
key is then another; a student distilled further) trains them again, deterministically. A run that completes drops
the records it did not read (an earlier configuration's), so the folder holds exactly what its outputs were built
from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from subliminal import carry
from subliminal.cache import log, read_record, write_record
from subliminal.checksums import sha256_file
from subliminal.topic_a.store import StudentRun, measure_key, measure_path, student_dir, teacher_accuracy_path

_KEY = re.compile(r"[0-9a-f]{16}")  # store keys (`cache.config_hash`): nothing a record names leaves the cache


class RunRecords:
    """The records folder of the run `name` writing to `out`, and the records this run has kept in it."""

    def __init__(self, out: Path | str, name: str):
        self.folder = carry.records_dir(out, name)
        self.kept: dict[str, dict] = {}  # slot → body

    def restore(self, root: Path) -> int:
        """Put the folder's verified records into the store at `root` (never over one further along); how many.
        A record that fails its checksum (said in one line) is removed: its unit is recomputed and kept again."""
        pattern = f"*/{carry.RECORD}"
        verified: set[Path] = set()

        def place(f: Path, body: dict) -> Path | None:
            verified.add(f)
            return _place(Path(root), body)

        n = carry.restore(self.folder, place, _further, pattern=pattern)
        for f in sorted(self.folder.glob(pattern)) if self.folder.is_dir() else []:
            if f not in verified:
                f.unlink()
        return n

    def student(self, run: StudentRun, condition: str, teacher_epochs: int, source: dict, milestones: Iterable[int]) -> None:
        """Keep `run`'s accuracies at `milestones` (with those this run kept before: a run reads a student at
        several milestone lists)."""
        ms = [m for m in milestones if m in run.results]
        if not ms:
            return
        slot = f"{condition}-t{teacher_epochs}-{source.get('kind', 'inputs')}-{run.key}"
        results = {**self.kept.get(slot, {}).get("results", {}), **{str(m): run.results[m] for m in ms}}
        self._keep(slot, {"key": run.key, "condition": condition, "teacher_epochs": teacher_epochs, "source": source,
                          "results": dict(sorted(results.items(), key=lambda kv: int(kv[0])))})

    def teacher(self, body: dict) -> None:
        """Keep a teacher's accuracy record (`RunStore.save_teacher_accuracy`'s body)."""
        self._keep(f"teacher-t{body['epoch']}-{body['key']}", body)

    def measure(self, label: str, body: dict) -> None:
        """Keep a measure record (`measured`'s body) under `label` (its unit: 'student_aux-e5', 'teacher-h2', ...)."""
        self._keep(f"{body['measure']}-{label}-{body['key']}", body)

    def _keep(self, slot: str, body: dict) -> None:
        self.kept[slot] = body
        carry.keep(self.folder, slot, body)

    def prune(self) -> list[Path]:
        """Drop the folder's records that this run did not keep (another configuration's); the slots dropped."""
        gone = [f.parent for f in sorted(self.folder.glob(f"*/{carry.RECORD}")) if f.parent.name not in self.kept]
        for d in gone:
            (d / carry.RECORD).unlink()
            if not any(d.iterdir()):
                d.rmdir()
        return gone

    def hashes(self) -> dict[str, str]:
        """``<slot>/record.json`` → SHA-256 of every record this run kept (for its run JSON)."""
        return {f"{slot}/{carry.RECORD}": sha256_file(self.folder / slot / carry.RECORD) for slot in sorted(self.kept)}


Values = dict[str, list[float]]


def measured(A, measure: str, units: dict[str, dict], compute: Callable[[list[str]], dict[str, dict]]) -> dict[str, Values]:
    """Numbers measured on weights, per unit: `units` maps a label ('student_aux-e5') to its inputs (everything that
    determines the numbers: models' keys, milestone, input set, settings; plain JSON values). A unit whose record the
    store (`A.cache`, where `restore` put the committed ones) holds under the same key is read; `compute(labels)` is
    called once for the rest (so what they share, e.g. training their students, is done once) and gives, per label,
    name → one number per model (a tensor or a list). Every unit is kept in the run's records. label → name → values."""
    out: dict[str, Values] = {}
    bodies = {label: _kept_measure(A, measure, inputs) for label, inputs in units.items()}
    missing = [label for label, body in bodies.items() if body is None]
    got = compute(missing) if missing else {}
    for label, inputs in units.items():
        body = bodies[label]
        if body is None:
            body = {"measure": measure, "key": measure_key(measure, carry.plain(inputs)), "inputs": carry.plain(inputs),
                    "values": {k: [float(v) for v in torch.as_tensor(vs).flatten().tolist()] for k, vs in got[label].items()}}
            write_record(measure_path(A.cache, body["key"]), body)
        if A.records is not None:
            A.records.measure(label, body)
        out[label] = body["values"]
    return out


def _kept_measure(A, measure: str, inputs: dict) -> dict | None:
    """The store's record of `measure` with `inputs`; None (one line if it is unusable) when there is none."""
    key = measure_key(measure, carry.plain(inputs))
    path = measure_path(A.cache, key)
    body = read_record(path)
    if body is None:
        return None
    if _measure_ok(body, A.shape.n_models) and (body["measure"], body["key"], body.get("inputs")) == (measure, key, carry.plain(inputs)):
        return body
    log(f"[cache] {path} is not a valid {measure} record of this configuration; recomputing it")
    return None


def _measure_ok(body: dict, n_models: int | None = None) -> bool:
    """Whether `body` is a measure record: a measure name, a key, inputs, and values (name → numbers, one per model)."""
    values = body.get("values")
    return (isinstance(body.get("measure"), str) and isinstance(body.get("inputs"), dict) and isinstance(values, dict)
            and bool(values) and all(isinstance(v, list) and v and all(isinstance(x, float) for x in v)
                                     and (n_models is None or len(v) == n_models) for v in values.values()))


def _place(root: Path, body: dict) -> Path | None:
    """Where the store reads `body`: a student's record, a teacher's accuracies or a measure (whose key is its
    inputs' hash); None for anything else."""
    key = body.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        return None
    if "values" in body:
        ok = _measure_ok(body) and key == measure_key(body["measure"], body["inputs"])
        return measure_path(root, key) if ok else None
    if isinstance(body.get("results"), dict):
        return student_dir(root, key) / carry.RECORD
    epoch = body.get("epoch")
    if isinstance(epoch, int) and 0 <= epoch <= 1000 and isinstance(body.get("accuracy"), list):
        return teacher_accuracy_path(root, key, epoch)
    return None


def _further(new: dict, old: dict | None) -> bool:
    """Whether a committed record goes over the store's: the store has none (or an unusable one), or (a student)
    the committed one holds every milestone the store's does and more. The store's record, with its checkpoints
    and kept weights, stays where it is as far along. A measure: the committed one (the outputs were built from it)."""
    if old is None or "values" in new:
        return True
    mine, theirs = new.get("results"), old.get("results")
    if not isinstance(mine, dict):  # a teacher's accuracies: the store's stand
        return not isinstance(old.get("accuracy"), list)
    return not isinstance(theirs, dict) or set(theirs) < set(mine)
