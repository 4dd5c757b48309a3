"""The mypyc-compiled build of the hot modules behaves like the pure one.

Benchmarks and production installs (REDRAFT_COMPILE=1) run the compiled
modules, so a cluster of them must pass the basic end-to-end checks too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from redraft import resp
from tests.cluster import ROOT, running_cluster

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler"),
]


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
