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

# The request path: the consensus core, the RESP codec, the session and its
# reply slots, the server, the group and its parts, the peer codec.
# machine.py stays interpreted: users subclass its classes.
HOT_MODULES = [
    "src/redraft/raft/core.py",
    "src/redraft/raft/leader.py",
    "src/redraft/raft/follower.py",
    "src/redraft/raft/log.py",
    "src/redraft/raft/progress.py",
    "src/redraft/raft/quorum.py",
    "src/redraft/raft/driver.py",
    "src/redraft/resp.py",
    "src/redraft/replies.py",
    "src/redraft/session.py",
    "src/redraft/server.py",
    "src/redraft/group.py",
    "src/redraft/proposals.py",
    "src/redraft/applying.py",
    "src/redraft/reads.py",
    "src/redraft/transport/codec.py",
]


def missing_hot_modules(root: str = ".") -> list[str]:
    """The entries of HOT_MODULES with no file under ``root`` (moved or renamed modules)."""
    return [m for m in HOT_MODULES if not os.path.isfile(os.path.join(root, m))]


# optional: a failed build leaves the pure-Python codec in charge.
CRESP = Extension(
    "redraft._cresp", ["src/redraft/_cresp.c"], optional=True, extra_compile_args=["-O2"]
)
# optional: without it the clone's sorted sets keep their order in Python (zset.PyOrder).
ZORDER = Extension(
    "redraft.examples.clone._zorder",
    ["src/redraft/examples/clone/_zorder.c"],
    optional=True,
    extra_compile_args=["-O2"],
)

if __name__ == "__main__":
    ext_modules = [CRESP, ZORDER]
    if os.environ.get("REDRAFT_COMPILE") == "1":
        from mypyc.build import mypycify

        if missing := missing_hot_modules():
            raise SystemExit(f"setup.py: HOT_MODULES names missing files: {', '.join(missing)}")

        ext_modules += mypycify(["--config-file", "pyproject.toml", *HOT_MODULES])
    setup(ext_modules=ext_modules)
