"""The Jepsen-style fault suite: a real 3-node cluster under each nemesis, checked.

Every run starts a fresh cluster of clone processes (consistency and
durability high), runs 15 clients for ``JEPSEN_TIME`` seconds (default 18)
while the nemesis injects faults, heals everything, and then checks that the
history is linearizable, that no acknowledged write was lost, that the
counter is within its bounds, that bank transfers (MULTI/EXEC) conserved
the total in every snapshot read and at the end, that every replica holds
the same state and that no node crashed (see :mod:`tests.jepsen.runner`).  A failure prints the
seed, the nemesis schedule, the smallest failing key history, the node log
tails and the directory holding the full history and logs.  Set
``JEPSEN_SEED`` to replay a seed's schedule; run ``python -m tests.jepsen``
for longer and larger runs.

The proxy tests at the end check the partition machinery itself.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jepsen.harness import classify_error
from tests.jepsen.history import Outcome
from tests.jepsen.nemesis import NEMESES
from tests.jepsen.proxy import Mode, ProxyNet
from tests.jepsen.runner import RunConfig, run

RUN_TIME = float(os.environ.get("JEPSEN_TIME", "18"))
SEED = int(os.environ["JEPSEN_SEED"]) if os.environ.get("JEPSEN_SEED") else None


@pytest.mark.slow
@pytest.mark.timeout(int(RUN_TIME) + 200)
@pytest.mark.parametrize("nemesis", list(NEMESES))
def test_cluster_stays_correct_under(nemesis: str, tmp_path: Path) -> None:
    result = run(RunConfig(nemesis=nemesis, time=RUN_TIME, seed=SEED, base=tmp_path / nemesis))
    print(result.report)
    assert result.ok, result.report
    # A run that injected nothing or served nothing proved nothing.
    assert result.faults > 0, result.report
    assert result.ops > 0, result.report


# ------------------------------------------------------------ the machinery


def test_only_guaranteed_errors_count_as_failed_writes() -> None:
    assert classify_error("TRY 127.0.0.1:7481") == (Outcome.FAIL, "127.0.0.1:7481")
    assert classify_error("leader not known") == (Outcome.FAIL, "")
    assert classify_error(
        "leadership changed before the command committed; it was not applied"
    ) == (Outcome.FAIL, "")
    assert (
        classify_error("TIMEOUT the command did not commit in time; it may still be applied")[0]
        is Outcome.UNKNOWN
    )
    assert classify_error("something unexpected")[0] is Outcome.UNKNOWN


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A loopback echo server."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


@pytest.fixture
def net() -> Iterator[ProxyNet]:
    n = ProxyNet()
    yield n
    n.close()


def _roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.timeout(30)
def test_proxy_forwards_then_drop_resets_and_refuses(echo_port: int, net: ProxyNet) -> None:
    port = net.add(("a", "b"), echo_port)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert _roundtrip(s, b"hello") == b"hello"
        net.cut([("a", "b")])
        with pytest.raises(OSError):
            s.sendall(b"more")
            if not s.recv(10):
                raise ConnectionResetError("closed")
    # Accepted, then reset at once: nothing ever comes back.
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s, pytest.raises(OSError):
        s.sendall(b"x")
        if not s.recv(10):
            raise ConnectionResetError("closed")
    net.heal()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert _roundtrip(s, b"again") == b"again"


@pytest.mark.timeout(30)
def test_proxy_stall_holds_bytes_and_delivers_them_on_heal(echo_port: int, net: ProxyNet) -> None:
    port = net.add(("a", "b"), echo_port)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert _roundtrip(s, b"one") == b"one"
        net.cut([("a", "b")], stall=True)
        s.sendall(b"late")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(10)
        late = socket.create_connection(("127.0.0.1", port), timeout=2)
        late.sendall(b"new")
        net.heal()
        s.settimeout(2)
        assert s.recv(10) == b"late"
        with late:
            late.settimeout(2)
            assert late.recv(10) == b"new"


@pytest.mark.timeout(30)
def test_proxy_links_are_independent_so_cuts_can_be_one_way(echo_port: int, net: ProxyNet) -> None:
    ab = net.add(("a", "b"), echo_port)
    ba = net.add(("b", "a"), echo_port)
    net.cut([("a", "b")])
    assert net.modes() == {("a", "b"): Mode.DROP, ("b", "a"): Mode.OPEN}
    with socket.create_connection(("127.0.0.1", ba), timeout=2) as s:
        assert _roundtrip(s, b"still") == b"still"
    deadline = time.monotonic() + 2
    with socket.create_connection(("127.0.0.1", ab), timeout=2) as s:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        with pytest.raises(OSError):
            s.sendall(b"x")
            if not s.recv(10):
                raise ConnectionResetError("closed")
