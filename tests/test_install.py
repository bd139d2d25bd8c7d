"""The project installs whole: `pip install .` (not editable) into a fresh venv, then every subpackage imports from
outside the checkout, at the version the package states."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import importlib, importlib.metadata, pkgutil, sys
import subliminal
assert sys.argv[1] in subliminal.__file__, subliminal.__file__
names = [m.name for m in pkgutil.walk_packages(subliminal.__path__, "subliminal.")]
for n in names:
    if n.endswith(".__main__"):  # an entry point (python -m ...): found, not run
        continue
    mod = importlib.import_module(n)
    assert sys.argv[1] in mod.__file__, (n, mod.__file__)
print(importlib.metadata.version("subliminal"), subliminal.__version__, len(names), " ".join(sorted(names)))
"""


def test_pip_install_dot_gives_every_subpackage_outside_the_checkout(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "subliminal", src / "subliminal", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                               text=True, check=True).stdout.strip())
    # the dependencies (torch, pandas, ... and setuptools to build) come from this test's environment; the project does not
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    p = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", str(src)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    shutil.rmtree(src)  # the installed copy must stand on its own
    out = tmp_path / "elsewhere"
    out.mkdir()
    p = subprocess.run([py, "-c", CHECK, str(site)], cwd=out, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    dist_version, version, n, names = p.stdout.split(maxsplit=3)
    assert dist_version == version  # one version, from subliminal.__version__
    expected = {str(f.relative_to(ROOT).with_suffix("")).replace("/", ".").removesuffix(".__init__")
                for f in (ROOT / "subliminal").rglob("*.py")}
    assert set(names.split()) == expected - {"subliminal"} and int(n) == len(expected) - 1
