"""Build hook: the C fast paths, and the hot modules compiled with mypyc.

``redraft._cresp`` (request parsing and reply encoding in C) is built on
every install that has a C compiler; without one the install still
succeeds and redraft runs on the pure-Python codec (``redraft.resp.SPEEDUPS``
tells which).  A regular install (``pip install .``, a wheel) also compiles
the modules of the request path (``HOT_MODULES``) with mypyc when a C
compiler and the Python headers are there: the same source, with a quarter
less of a leader's interpreter time per write (BENCHMARKS.md).  An editable
install (a checkout being worked on) stays pure, so that edits take effect
and the tests run what they read.  If mypyc refuses the source, the install
goes on pure with a warning.  ``REDRAFT_COMPILE=1`` compiles whatever the
install, and fails if it cannot (an editable one builds the modules in
place, where they shadow the sources until removed); ``REDRAFT_COMPILE=0``
never does.  Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import Extension, setup

# Every module a replicated write or a read passes through on a running node:
# the consensus core (raft/, with its data types: compiled callers then read
# an entry's or a message's fields directly), the RESP codec, the session and
# its reply slots, the command table, the server, the group and its parts, the
# peer links and their codec, the log writer and the default log store (with
# the base class every store derives from, which interpreted stores may
# subclass), the clock and the busy polling.  Their module-level constants are
# ``Final``: compiled, such a name is a C static, not a dict lookup per use.
# machine.py stays interpreted: users subclass its classes.
HOT_MODULES = [
    "src/redraft/raft/types.py",
    "src/redraft/raft/core.py",
    "src/redraft/raft/leader.py",
    "src/redraft/raft/follower.py",
    "src/redraft/raft/log.py",
    "src/redraft/raft/progress.py",
    "src/redraft/raft/tracker.py",
    "src/redraft/raft/quorum.py",
    "src/redraft/raft/readonly.py",
    "src/redraft/raft/snapshot.py",
    "src/redraft/raft/outbox.py",
    "src/redraft/raft/handout.py",
    "src/redraft/raft/driver.py",
    "src/redraft/resp.py",
    "src/redraft/replies.py",
    "src/redraft/session.py",
    "src/redraft/server.py",
    "src/redraft/group.py",
    "src/redraft/proposals.py",
    "src/redraft/registry.py",
    "src/redraft/applying.py",
    "src/redraft/reads.py",
    "src/redraft/persist.py",
    "src/redraft/storage/base.py",
    "src/redraft/storage/files.py",
    "src/redraft/storage/fastlog.py",
    "src/redraft/storage/memory.py",
    "src/redraft/ticker.py",
    "src/redraft/spinning.py",
    "src/redraft/transport/codec.py",
    "src/redraft/transport/outbox.py",
    "src/redraft/transport/peers.py",
    "src/redraft/builtins/peer.py",
]


def missing_hot_modules(root: str = ".") -> list[str]:
    """The entries of HOT_MODULES with no file under ``root`` (moved or renamed modules)."""
    return [m for m in HOT_MODULES if not os.path.isfile(os.path.join(root, m))]


# optional: a failed build leaves the pure-Python codec in charge.
CRESP = Extension(
    "redraft._cresp", ["src/redraft/_cresp.c"], optional=True, extra_compile_args=["-O2"]
)
# optional: without it msgpack itself packs every log entry's batch.
CBATCH = Extension(
    "redraft._cbatch", ["src/redraft/_cbatch.c"], optional=True, extra_compile_args=["-O2"]
)
# optional: without it the clone's sorted sets keep their order in Python (zset.PyOrder).
ZORDER = Extension(
    "redraft.examples.clone._zorder",
    ["src/redraft/examples/clone/_zorder.c"],
    optional=True,
    extra_compile_args=["-O2"],
)

# Silent about the modules it only imports: a build environment lacks the
# runtime dependencies some of those are checked against (make typecheck
# checks them all, strictly).
MYPYC_OPTIONS = ["--config-file", "pyproject.toml", "--follow-imports", "silent"]

C_EXTENSIONS = [CRESP, CBATCH, ZORDER]
"""The hand-written C extensions (mypyc's modules come on top of them)."""


CHOICE = "REDRAFT_COMPILE"
"""The environment variable that forces the choice: 1 compiles, 0 does not."""

_BUILDS = {"bdist_wheel", "editable_wheel", "build", "build_ext", "install", "develop"}
"""The setup.py commands that build extension modules."""


def compile_wanted(env: dict[str, str], argv: list[str]) -> bool:
    """Whether this build compiles ``HOT_MODULES`` with mypyc (see the module's docstring)."""
    if not _BUILDS.intersection(argv):
        return False  # metadata only (egg_info, dist_info, sdist): nothing is compiled
    choice = env.get(CHOICE, "")
    if choice in ("0", "1"):
        return choice == "1"
    if "editable_wheel" in argv or "develop" in argv:
        return False
    return _can_compile()


def _can_compile() -> bool:
    """Whether mypyc, a C compiler and the Python headers are all there."""
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return False
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = os.path.join(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(cc) is not None and os.path.isfile(headers)


def compiled_modules(forced: bool) -> list[Extension]:
    """mypyc's extensions for ``HOT_MODULES``; none, with a warning, if mypyc refuses
    the source (a newer mypy finding fault with it) and compiling was not asked for."""
    from mypyc.build import mypycify

    if missing := missing_hot_modules():
        raise SystemExit(f"setup.py: HOT_MODULES names missing files: {', '.join(missing)}")
    try:
        return list(mypycify([*MYPYC_OPTIONS, *HOT_MODULES]))
    except (SystemExit, Exception) as exc:
        if forced:
            raise
        print(f"setup.py: mypyc failed ({exc!r}); installing the pure modules", file=sys.stderr)
        return []


if __name__ == "__main__":
    ext_modules = list(C_EXTENSIONS)
    if compile_wanted(dict(os.environ), sys.argv):
        ext_modules += compiled_modules(forced=os.environ.get(CHOICE) == "1")
    setup(ext_modules=ext_modules)
