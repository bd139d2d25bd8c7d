"""One-off migration of the committed transfer run onto the records of ``carried.py`` (kept as a documented
record of how they were made; nothing else imports it).

The committed run's artefacts are the legacy fp32 folder git history holds (``plots_b/topic_b_transfer_cache``
at commit cc4d048, ``MANIFEST.json``: {path: SHA-256}). ``migrate`` streams it out of history (``git archive``;
the work tree is not touched), keeps every file that matches the manifest, and writes the run's records exactly
as a run does (``carried.keep_data`` / ``keep_eval`` / ``keep_trained``, from a scratch cache of the verified
files): each teacher's data folder, each evaluation table, and each student and trait teacher with its final
adapter kept in 16 bits in the cache (outside git) and, on the logits route, its ``kl_start`` (the KL between
its teacher's and the neutral teacher's stored distributions, ``teacher_logits/``, which stay outside the
records). ``python -m subliminal.topic_b.transfer.migrate [--out plots_b] [--cache DIR] [--commit C]``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from subliminal.cache import config_hash, load_tensors
from subliminal.cli import UserError
from subliminal.topic_b.arms import NEUTRAL, Arm
from subliminal.topic_b.transfer import carried, sealed
from subliminal.topic_b.transfer.config import TransferConfig
from subliminal.topic_b.transfer.logits_route import kl_to_teacher

LEGACY = "plots_b/topic_b_transfer_cache"  # the fp32 folder the committed run wrote; git history holds it
LEGACY_COMMIT = "cc4d048"  # the last commit that changed it
MODEL = "smollm2-135m-instruct"  # the logits route's base model (its teacher files are keyed by it)


def extract(dest: Path, commit: str = LEGACY_COMMIT, repo: str | Path = ".") -> dict[str, str]:
    """`LEGACY` at `commit` written under `dest` (regular files with a safe name only); returns its manifest."""
    try:
        proc = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", commit, LEGACY],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise UserError(f"the migration needs git ({e})") from None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as t:
            for m in t:
                rel = PurePosixPath(m.name)
                if m.isfile() and m.name.startswith(LEGACY + "/") and ".." not in rel.parts:
                    out = dest / rel.relative_to(LEGACY)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(t.extractfile(m).read())
    except tarfile.TarError:
        pass  # git failed (nothing on stdout): its message follows
    err = proc.stderr.read().decode(errors="replace").strip()
    if proc.wait() != 0:
        raise UserError(f"git archive {commit} {LEGACY} failed ({err.splitlines()[-1] if err else 'no message'}); "
                        "run the migration inside a full clone of the repository (not a --depth clone)")
    return json.loads((dest / "MANIFEST.json").read_text())


def _kl_start(legacy: Path, unit: Path, train: dict) -> float | None:
    """A logits-route student's kl_start from the stored teacher distributions of its arm and the neutral one."""
    trait = unit.name.split("-")[1]
    files = [legacy / "teacher_logits" / f"{config_hash([MODEL, train['data_hash'], Arm(t).system_prompt()])}"
             ".safetensors" for t in (trait, NEUTRAL)]
    got = [load_tensors(f) for f in files]
    if any(g is None for g in got):
        return None
    return float(kl_to_teacher(got[0][0]["logp"], got[1][0]["logp"]))


def migrate(out: str | Path, cache: str | Path, commit: str = LEGACY_COMMIT, repo: str | Path = ".",
            log=print) -> dict[str, int]:
    """The records of the committed run in ``<out>/topic_b_transfer_records`` and its fine-tunes' 16-bit adapters
    in `cache`; returns how many units of each kind were kept."""
    with tempfile.TemporaryDirectory() as tmp:
        legacy, scratch = Path(tmp) / "legacy", Path(tmp) / "cache"
        manifest = extract(legacy, commit, repo)
        for rel, digest in sorted(manifest.items()):
            data = (legacy / rel).read_bytes() if (legacy / rel).is_file() else None
            if data is None or hashlib.sha256(data).hexdigest() != digest:
                log(f"[migrate] {rel} is missing or does not match {LEGACY}/MANIFEST.json; left out")
            elif not rel.startswith("teacher_logits/") and not rel.endswith("/README.md"):
                sealed.write_sealed(scratch / rel, data)
        cfg = TransferConfig(out=str(out), cache=str(scratch))
        counts = {"data": 0, "eval": 0, "students": 0, "trait_teachers": 0}
        for folder in sorted(p for p in scratch.glob("data/*/*") if p.is_dir()):
            carried.keep_data(cfg, folder)
            counts["data"] += 1
        for table in sorted(scratch.glob("eval/*.csv")):
            side = sealed.read_sealed(table.with_suffix(".json"), carried.quiet)
            secs = json.loads(side).get("seconds") if side is not None else None
            carried.keep_eval(cfg, table.stem, table.read_bytes(), secs)
            counts["eval"] += 1
        for kind in carried.TRAINED:
            for unit in sorted(p.parent for p in scratch.glob(f"{kind}/*/train.json")):
                train = json.loads((unit / "train.json").read_text())
                kl = _kl_start(legacy, unit, train) if train.get("objective") == "logits" else None
                carried.keep_trained(cfg, unit, {"kl_start": kl} if kl is not None else None)
                dest = Path(cache) / kind / unit.name / carried.KEPT
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(unit / carried.KEPT, dest)  # outside git, vouched for by the record's SHA-256
                counts[kind] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m subliminal.topic_b.transfer.migrate", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="plots_b")
    p.add_argument("--cache", default="", help="the transfer cache (default: $SUBLIMINAL_CACHE/transfer)")
    p.add_argument("--commit", default=LEGACY_COMMIT)
    a = p.parse_args(argv)
    try:
        counts = migrate(a.out, TransferConfig(cache=a.cache).cache_root, a.commit)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("migrate: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f" kept on record in "
          f"{carried.records(TransferConfig(out=a.out))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
