"""Regenerate README.md, docs/*.md and the verdict CSVs from the committed result CSVs (`make report`).

Markdown files hold marked regions `<!-- report:NAME -->` … `<!-- /report:NAME -->`; each is replaced by
the markdown that a provider's `tables(root)` gives for NAME, built from plots_a/ and plots_b/ only.
Providers' `verdicts(root)` records go to plots_a/verdicts.csv (topic A) and plots_b/verdicts.csv
(topic B), and the verdict tables are rendered from those files. A provider module that fails to
import is an error. `--check` fails when any of these files is out of date.

A result file that cannot be read (truncated JSON, a CSV with other columns, undecodable bytes) or that does
not match the hash recorded when it was written (``verify``) is one line, ``error: <file or provider>: <what>;
<what to do>``, and exit 2 (``--traceback`` shows the traceback instead); results read without a recorded
hash get one warning line.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import tempfile
from pathlib import Path

import pandas.errors

from subliminal.cli import UserError, os_error_message
from subliminal.reporting import glance, verify
from subliminal.results import atomic_write_text
from subliminal.verdicts import read_verdicts, write_verdicts

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = (
    "subliminal.reporting.topic_a", "subliminal.reporting.noise_regime", "subliminal.reporting.mechanisms",
    "subliminal.reporting.bench_tables", "subliminal.reporting.topic_b", "subliminal.reporting.topic_b_ext",
    "subliminal.reporting.topic_b_verdicts",
    "subliminal.reporting.specificity",  # Topic B specificity / multiplicity / 087-747 (tables b_specificity, …)
    "subliminal.reporting.transfer",  # the LLM transfer experiment (table b_transfer and its companions)
    "subliminal.reporting.theory",  # the ladder under the theorem's conditions (table b_theory)
    "subliminal.reporting.llm_map",  # README's map of the LLM transfer results (table b_llm_map)
    "subliminal.reporting.base_matrix",  # teacher base x student base (issue 44; b_matrix_glance, docs' b_matrix*)
)
VERDICT_FILES = {"A": Path("plots_a") / "verdicts.csv", "B": Path("plots_b") / "verdicts.csv"}
MARK = re.compile(r"<!-- report:([\w.-]+) -->.*?<!-- /report:\1 -->", re.S)


def providers():
    """The provider modules; one that fails to import is an error (a report missing a section would look whole)."""
    for name in PROVIDERS:
        yield importlib.import_module(name)


def collect(root: Path) -> tuple[dict[str, str], dict[str, list[dict]]]:
    """Every provider's tables and its verdict records, split by topic."""
    tables: dict[str, str] = {}
    records: dict[str, list[dict]] = {k: [] for k in VERDICT_FILES}
    for mod in providers():
        if hasattr(mod, "tables"):
            tables.update(provided(mod, mod.tables, root))
        for r in provided(mod, mod.verdicts, root) if hasattr(mod, "verdicts") else []:
            records.setdefault(r["topic"], []).append(r)
    return tables, records


# what a provider raises on a result file it cannot use: unparsable JSON/CSV (ValueError and its kin: JSONDecodeError,
# UnicodeDecodeError, pandas' ParserError), a missing column or key, a value of another type
UNREADABLE = (ValueError, KeyError, IndexError, AttributeError, TypeError, pandas.errors.EmptyDataError)
TRACEBACK = False  # --traceback: let them through


def provided(mod, fn, *args):
    """`fn(*args)` of provider `mod`, with what it raises on an unusable result file turned into one line."""
    try:
        return fn(*args)
    except UNREADABLE as e:
        if TRACEBACK:
            raise
        what = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"{mod.__name__}: {type(e).__name__}: {what}: a result file it reads is damaged, edited or "
                        "from another version; restore plots_a/ and plots_b/ (git checkout) or rerun the script "
                        "that writes it (--traceback for details)") from e


def render(text: str, tables: dict[str, str]) -> tuple[str, list[str]]:
    """Replace every marked region whose name has a table; return the new text and the names replaced."""
    done = []

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in tables:
            return m.group(0)
        done.append(name)
        return f"<!-- report:{name} -->\n{tables[name].strip()}\n<!-- /report:{name} -->"

    return MARK.sub(sub, text), done


def pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def run(root: Path, check: bool) -> list[str]:
    """Regenerate (or, with check, compare) the verdict CSVs and every page; return what is out of date."""
    tables, records = collect(root)
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        frames = {}
        for topic, rel in VERDICT_FILES.items():
            new = write_verdicts(Path(tmp) / f"{topic}.csv", records.get(topic, []))
            path = root / rel
            if not path.exists() or path.read_bytes() != new.read_bytes():
                stale.append(str(rel))
                if not check:
                    atomic_write_text(path, new.read_text())
            frames[topic] = read_verdicts(new)
    tables.update(provided(glance, glance.tables, root, frames["A"], frames["B"]))
    missing = set()
    for page in pages(root):
        try:
            text = page.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{page} is not UTF-8 text ({e}); restore it (git checkout {page})") from None
        new, done = render(text, tables)
        missing |= set(re.findall(r"<!-- report:([\w.-]+) -->", text)) - set(done)
        if new != text:
            stale.append(str(page.relative_to(root)))
            if not check:
                atomic_write_text(page, new)
    if missing:
        print(f"warning: no table provider (yet) for sections: {', '.join(sorted(missing))}", file=sys.stderr)
    return stale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m subliminal.reporting", description=__doc__.splitlines()[0])
    p.add_argument("--root", default=str(ROOT), help="repository root (README.md, docs/, plots_a/, plots_b/)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page or verdict CSV is out of date "
                   "(2 if a result cannot be read or does not match its recorded hash)")
    p.add_argument("--traceback", action="store_true", help="on an unreadable result, the traceback, not one line")
    args = p.parse_args(argv)
    global TRACEBACK
    TRACEBACK = args.traceback
    root = Path(args.root)
    if not (root / "README.md").exists():
        print(f"error: {root}/README.md not found: pass --root DIR (the repository root)", file=sys.stderr)
        return 2
    verify.unverified_warning()  # only this run's
    try:
        stale = run(root, args.check)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if args.traceback:
            raise
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        return 2
    if warning := verify.unverified_warning():
        print(warning, file=sys.stderr)
    n = len(pages(root)) + len(VERDICT_FILES)
    if args.check:
        if stale:
            print(f"out of date with the CSVs (run `make report`): {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"README.md, docs/*.md and the verdict CSVs are up to date ({n} files)")
        return 0
    print(f"regenerated {len(stale)} of {n} files" + (f": {', '.join(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
