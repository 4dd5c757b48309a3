"""Compile redraft's hot modules with mypyc into a separate directory.

The pure-Python package stays what is installed and tested; this builds a
compiled twin under ``build/compiled`` (or ``--out``).  Put that directory
first on ``PYTHONPATH`` to run nodes on the compiled modules, as
``bench/bench_cluster.py --compiled`` does.  For a production install,
``REDRAFT_COMPILE=1 pip install .`` compiles the same modules (see setup.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from setup import HOT_MODULES, missing_hot_modules  # noqa: E402


def build(out: Path) -> Path:
    """Copy the sources to ``out`` and compile the hot modules there; returns the import root."""
    if missing := missing_hot_modules(str(ROOT)):
        raise SystemExit(f"setup.py: HOT_MODULES names missing files: {', '.join(missing)}")
    src = out / "src"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    # The C fast path of the RESP codec is no mypyc module: take the one
    # the install built (without it the twin would run the Python codec).
    for ext in (ROOT / "src" / "redraft").glob("_cresp*.so"):
        shutil.copy(ext, src / "redraft" / ext.name)
    shutil.copy(ROOT / "pyproject.toml", out / "pyproject.toml")
    cmd = [sys.executable, "-m", "mypyc", "--config-file", "pyproject.toml", *HOT_MODULES]
    subprocess.run(cmd, cwd=out, check=True, stdout=subprocess.DEVNULL)
    return src


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "build" / "compiled"))
    ns = ap.parse_args()
    src = build(Path(ns.out))
    compiled = sorted(p.relative_to(src) for p in src.rglob("*.so"))
    print(f"compiled {len(compiled)} modules into {src}")
    print(f"run with: PYTHONPATH={src} python -m redraft.examples.clone ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
