"""Compile redraft's hot modules with mypyc into a separate directory.

An editable install (the checkout's venv) runs the pure modules; this
builds a compiled twin under ``build/compiled`` (or ``--out``), the modules
a regular install compiles (see setup.py).  Put its ``src`` first on
``PYTHONPATH`` to run nodes on them, as ``bench/bench_cluster.py`` (unless
``--pure``), ``make cluster`` and ``tests/test_compiled.py`` do.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from setup import C_EXTENSIONS, HOT_MODULES, MYPYC_OPTIONS, missing_hot_modules  # noqa: E402


def build(out: Path) -> Path:
    """Copy the sources to ``out`` and compile the hot modules there; returns the import root."""
    if missing := missing_hot_modules(str(ROOT)):
        raise SystemExit(f"setup.py: HOT_MODULES names missing files: {', '.join(missing)}")
    src = out / "src"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    # The C extensions (the RESP codec's fast path, the clone's sorted-set
    # order) are no mypyc modules: take the ones the install built (without
    # them the twin would run their pure-Python stand-ins).
    for ext in C_EXTENSIONS:
        stem = Path(*ext.name.split("."))
        for built in (ROOT / "src" / stem.parent).glob(f"{stem.name}.*.so"):
            shutil.copy(built, src / stem.parent / built.name)
    for name in ("pyproject.toml", "README.md"):  # mypy's settings; the readme it names
        shutil.copy(ROOT / name, out / name)
    cmd = [sys.executable, "-m", "mypyc", *MYPYC_OPTIONS, *HOT_MODULES]
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
