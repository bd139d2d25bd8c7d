"""Regenerate README.md's result tables from the committed CSVs (`make report`).

README.md holds marked regions `<!-- report:NAME -->` … `<!-- /report:NAME -->`; each is replaced by
the markdown that the registered table function for NAME produces from the files in plots_a/ and
plots_b/. Numbers never get typed into README by hand. `--check` fails when README is out of date.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = ("subliminal.reporting.topic_a", "subliminal.reporting.mechanisms", "subliminal.reporting.topic_b", "subliminal.reporting.topic_b_ext")


def collect_tables(root: Path = ROOT) -> dict[str, str]:
    tables: dict[str, str] = {}
    for mod_name in PROVIDERS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name != mod_name:
                raise
            continue
        takes_root = len(inspect.signature(mod.tables).parameters) > 0
        tables.update(mod.tables(root) if takes_root else mod.tables())
    return tables


def render(text: str, tables: dict[str, str]) -> tuple[str, list[str]]:
    """Replace every marked region whose name has a table; return the new text and the names replaced."""
    done = []

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in tables:
            return m.group(0)
        done.append(name)
        return f"<!-- report:{name} -->\n{tables[name].strip()}\n<!-- /report:{name} -->"

    new = re.sub(r"<!-- report:([\w.-]+) -->.*?<!-- /report:\1 -->", sub, text, flags=re.S)
    return new, done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m subliminal.reporting", description=__doc__.splitlines()[0])
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--check", action="store_true", help="exit 1 if README.md differs from what the CSVs give")
    args = p.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text()
    tables = collect_tables(readme.parent)
    new, done = render(text, tables)
    missing = sorted(set(re.findall(r"<!-- report:([\w.-]+) -->", text)) - set(done))
    if missing:
        print(f"warning: no table provider for README sections: {', '.join(missing)}", file=sys.stderr)
    if args.check:
        if new != text:
            print("README.md is out of date with the CSVs: run `make report`", file=sys.stderr)
            return 1
        print(f"README.md is up to date ({len(done)} tables)")
        return 0
    if new != text:
        from subliminal.results import atomic_write_text

        atomic_write_text(readme, new)
    print(f"README.md: {len(done)} tables regenerated ({', '.join(done)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
