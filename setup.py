"""Build hook: the C fast paths of the RESP codec, and optionally mypyc.

``redraft._cresp`` (request parsing and reply encoding in C) is built on
every install that has a C compiler; without one the install still
succeeds and redraft runs on the pure-Python codec (``redraft.resp.SPEEDUPS``
tells which).  With REDRAFT_COMPILE=1 the hot modules are also compiled with
mypyc.  Everything else about the package is in pyproject.toml.  The compiled build
needs mypy in the build environment, so install it with
``REDRAFT_COMPILE=1 pip install --no-build-isolation .`` from an environment
that has ``mypy`` and ``wheel`` (``pip install '.[test]'`` brings both).
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

# The request path: the consensus core, the RESP codec, the server, the node
# and its appliers, the peer codec.  machine.py stays interpreted: users
# subclass its classes.
HOT_MODULES = [
    "src/redraft/raft/core.py",
    "src/redraft/raft/log.py",
    "src/redraft/raft/progress.py",
    "src/redraft/resp.py",
    "src/redraft/server.py",
    "src/redraft/node.py",
    "src/redraft/applier.py",
    "src/redraft/transport/codec.py",
]

# optional: a failed build leaves the pure-Python codec in charge.
CRESP = Extension(
    "redraft._cresp", ["src/redraft/_cresp.c"], optional=True, extra_compile_args=["-O2"]
)

if __name__ == "__main__":
    ext_modules = [CRESP]
    if os.environ.get("REDRAFT_COMPILE") == "1":
        from mypyc.build import mypycify

        ext_modules += mypycify(["--config-file", "pyproject.toml", *HOT_MODULES])
    setup(ext_modules=ext_modules)
