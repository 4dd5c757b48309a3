"""The mypyc-compiled build of the hot modules behaves like the pure one.

A regular install (and the benchmarks) run the compiled modules, while the
rest of the suite runs the pure ones of the checkout: so the in-process
suites of the compiled modules run again on the twin here, and a cluster of
it must pass the basic end-to-end checks too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from redraft import resp
from tests.cluster import ROOT, running_cluster

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler"),
]


# The suites that drive the compiled modules in this process (the consensus
# core and the simulator, the RESP codec, the peer message codec, the
# session, the log writer and the log store).
# Left out: the tests that hand a compiled class a stand-in of their own
# (test_raft_driver's FakeCore, test_peer_link's FakeProto: compiled code
# checks the types its signatures name) and the simulator's mutations, which
# patch the core's methods (compiled callers do not look them up again).
TWIN_SUITES = [
    "tests/test_raft_log.py",
    "tests/test_quorum.py",
    "tests/test_core_readd.py",
    "tests/test_resp.py",
    "tests/test_session.py",
    "tests/test_roundwait.py",
    "tests/test_persist_inline.py",
    "tests/test_persist_diskfull.py",
    "tests/test_storage.py",
    "tests/test_storage_crash.py",
    "tests/test_storage_diskfull.py",
    "tests/test_spinning.py",
    "tests/test_sim.py",
    # The peer codec's fuzz tests (not the ones that run a node in a thread).
    "tests/test_fuzz_server.py::test_decode_messages_accepts_or_rejects_never_crashes",
    "tests/test_fuzz_server.py::test_decode_messages_round_trips_and_rejects_mutations",
    "tests/test_fuzz_server.py::test_batches_of_large_entries_are_shared_and_decode_alike",
    "tests/test_fuzz_server.py::test_terms_a_node_cannot_store_are_rejected_by_the_decoder",
]
# Tests that patch a module's function or stand in for a compiled class: a
# compiled caller does not look either up again.
TWIN_DESELECT = (
    "not catches_mutation and not catches_commit_by_counting"
    " and not failed_write_leaves_no_partial_record"
    " and not syncs_without_its_sync_record_when_there_is_no_room"
)


def _setup_module() -> Any:
    sys.path.insert(0, str(ROOT))
    try:
        import setup
    finally:
        sys.path.pop(0)
    return setup


@pytest.mark.parametrize(
    ("argv", "env", "compiled"),
    [
        (["setup.py", "egg_info"], {"REDRAFT_COMPILE": "1"}, False),  # metadata only
        (["setup.py", "dist_info"], {}, False),
        (["setup.py", "editable_wheel"], {}, False),  # a checkout being worked on
        (["setup.py", "editable_wheel"], {"REDRAFT_COMPILE": "1"}, True),
        (["setup.py", "bdist_wheel"], {"REDRAFT_COMPILE": "0"}, False),
        (["setup.py", "bdist_wheel"], {"REDRAFT_COMPILE": "1"}, True),
        (["setup.py", "bdist_wheel"], {}, True),  # a regular install, where it can
    ],
)
def test_a_regular_install_compiles_and_a_checkout_stays_pure(
    argv: list[str], env: dict[str, str], compiled: bool
) -> None:
    assert _setup_module().compile_wanted(env, argv) is compiled


def test_a_source_mypyc_refuses_installs_pure_unless_compiling_was_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mypyc.build

    def refuse(args: list[str]) -> list[Any]:
        raise SystemExit(1)  # what mypycify does on a type error

    monkeypatch.setattr(mypyc.build, "mypycify", refuse)
    setup = _setup_module()
    assert setup.compiled_modules(forced=False) == []
    with pytest.raises(SystemExit):
        setup.compiled_modules(forced=True)


def test_every_hot_module_exists() -> None:
    assert _setup_module().missing_hot_modules(str(ROOT)) == []


@pytest.fixture(scope="module")
def compiled_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from build_compiled import build
    finally:
        sys.path.pop(0)
    return build(tmp_path_factory.mktemp("compiled"))


def test_a_compiled_cluster_serves_replicates_and_fails_over(
    compiled_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(compiled_src))
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import redraft.node, redraft.raft.core as c, redraft.resp as r;"
            " print(r.SPEEDUPS, c.__file__)",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    speedups, core = probe.stdout.split()
    assert core.endswith(".so"), probe
    # The twin keeps the RESP codec's C fast path, unless this run is pure.
    assert speedups == str(resp.SPEEDUPS), probe
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        with leader.client() as c:
            pipe = c.pipeline(transaction=False)
            for i in range(1000):
                pipe.set(f"k{i}", i)
                pipe.get(f"k{i}")
            replies = pipe.execute()
        assert replies[1::2] == [str(i).encode() for i in range(1000)]
        follower = cluster.followers()[0]
        with follower.client() as c:
            try:
                c.set("x", "y")
            except Exception as exc:  # redis.ResponseError
                assert str(exc) == f"TRY {leader.addr}"
            else:
                raise AssertionError("a follower accepted a write")
        leader.kill(signal.SIGKILL)
        new = cluster.wait_leader(timeout=15, exclude=leader)
        with new.client() as c:
            assert c.get("k999") == b"999"
            assert c.incr("counter") == 1


def test_the_in_process_suites_pass_on_the_compiled_modules(compiled_src: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(compiled_src))
    probe = "import redraft.session as s, redraft.raft.leader as l; print(s.__file__, l.__file__)"
    files = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    ).stdout.split()
    assert files and all(f.endswith(".so") for f in files), files
    pytest_args = ["-q", "-x", "-p", "no:cacheprovider", "-k", TWIN_DESELECT, *TWIN_SUITES]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=480,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
