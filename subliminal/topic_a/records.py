"""A Topic A run's records beside its outputs (`subliminal.carry`): how a run moves to another machine.

Every student whose accuracies a run's outputs show, and every teacher whose test accuracy they show, is one sealed
record (`cache.write_record`) in the run's records folder, ``<out>/<name>_records/<slot>/record.json``, committed
with the outputs:

    <condition>-t<teacher epochs>-<inputs>-<student key>/record.json   key, condition, teacher epochs, inputs, and
                                                                         the accuracies (one per model) at each
                                                                         milestone the run read
    teacher-t<epochs>-<teacher key>/record.json                         key, epochs, the teacher's accuracies

At the start of a run `restore` puts every verified record back into the run store (`store.py`) where the store
holds none as far along, so a run on a fresh machine (an empty cache, only the committed outputs) skips every
finished student and teacher and writes the same outputs; an edited record is named in one line and recomputed.
Weights and checkpoints stay in the cache: what needs them (the mechanism scripts' measures, a student distilled
further) trains them again, deterministically. A run that completes drops the records it did not read (an earlier
configuration's), so the folder holds exactly what its outputs were built from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from subliminal import carry
from subliminal.checksums import sha256_file
from subliminal.topic_a.store import StudentRun, student_dir, teacher_accuracy_path

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


def _place(root: Path, body: dict) -> Path | None:
    """Where the store reads `body`: a student's record or a teacher's accuracies; None for anything else."""
    key = body.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        return None
    if isinstance(body.get("results"), dict):
        return student_dir(root, key) / carry.RECORD
    epoch = body.get("epoch")
    if isinstance(epoch, int) and 0 <= epoch <= 1000 and isinstance(body.get("accuracy"), list):
        return teacher_accuracy_path(root, key, epoch)
    return None


def _further(new: dict, old: dict | None) -> bool:
    """Whether a committed record goes over the store's: the store has none (or an unusable one), or (a student)
    the committed one holds every milestone the store's does and more. The store's record, with its checkpoints
    and kept weights, stays where it is as far along."""
    if old is None:
        return True
    mine, theirs = new.get("results"), old.get("results")
    if not isinstance(mine, dict):  # a teacher's accuracies: the store's stand
        return not isinstance(old.get("accuracy"), list)
    return not isinstance(theirs, dict) or set(theirs) < set(mine)
