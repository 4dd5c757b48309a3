"""redraft.client against real nodes: it finds the leader, survives its death, and
applies every write exactly once even when a reply is lost on the way."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redraft.client import AsyncClient, Client, OutcomeUnknown
from redraft.testing import LOOPBACK, LocalCluster, free_ports

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("client"), 3).start()
    try:
        yield c
    finally:
        c.stop()


def test_a_client_given_a_follower_reaches_the_leader(cluster: LocalCluster) -> None:
    follower = cluster.followers()[0]
    with Client(follower.addr) as r:
        assert r.set("greeting", "hello") is True
        assert r.get("greeting") == b"hello"
        assert r.incr("client:hits") == 1
        assert r.leader == cluster.wait_leader().addr


def test_command_errors_are_raised_not_retried(cluster: LocalCluster) -> None:
    with Client(cluster.nodes[0].addr, retry_timeout=2) as r:
        r.set("text", "abc")
        with pytest.raises(redis.ResponseError, match="not an integer"):
            r.incr("text")
        with pytest.raises(redis.ResponseError, match="unknown command"):
            r.execute_command("NOSUCHCOMMAND")


def test_pipelines_are_refused_with_a_reason(cluster: LocalCluster) -> None:
    with Client(cluster.nodes[0].addr) as r, pytest.raises(TypeError, match="session"):
        r.pipeline()


def test_the_async_client_does_the_same(cluster: LocalCluster) -> None:
    async def run() -> tuple[object, object]:
        r = AsyncClient(*(n.addr for n in cluster.followers()))
        try:
            await r.set("async", "yes")
            return await r.get("async"), await r.incr("async:n")
        finally:
            await r.aclose()

    assert asyncio.run(run()) == (b"yes", 1)


def test_a_forged_session_and_an_acknowledged_sequence_are_refused(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()
    r = redis.Redis(port=leader.port)
    with pytest.raises(redis.ResponseError, match="NOSESSION"):
        r.execute_command("RAFTSEQ", 987654, 0, 0, "INCR", "forged")
    sid = r.execute_command("RAFTSESSION", "NEW", 60000)
    assert r.execute_command("RAFTSEQ", sid, 0, 0, "INCR", "seq") == 1
    assert r.execute_command("RAFTSEQ", sid, 0, 0, "INCR", "seq") == 1  # a copy
    assert r.execute_command("RAFTSEQ", sid, 1, 1, "INCR", "seq") == 2
    with pytest.raises(redis.ResponseError, match="below the acknowledged"):
        r.execute_command("RAFTSEQ", sid, 0, 2, "INCR", "seq")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("RAFTSEQ", sid, 5, 2)
    with pytest.raises(redis.ResponseError, match="not a non-negative integer"):
        r.execute_command("RAFTSEQ", sid, -1, 2, "INCR", "seq")
    with pytest.raises(redis.ResponseError, match="cannot run inside RAFTSEQ"):
        r.execute_command("RAFTSEQ", sid, 6, 2, "RAFTSESSION", "NEW")
    assert r.get("seq") == b"2"
    assert r.execute_command("RAFTSESSION", "END", sid) == b"OK"
    with pytest.raises(redis.ResponseError, match="NOSESSION"):
        r.execute_command("RAFTSEQ", sid, 7, 2, "INCR", "seq")
    r.close()


class ReplyLosingProxy:
    """A TCP relay to one node that swallows the reply to the first request naming ``marker``.

    It forwards that request, waits for the node's answer, then drops the
    connection without passing the answer on: the client cannot tell whether
    its write was applied.
    """

    def __init__(self, target: int, marker: bytes) -> None:
        self.target = target
        self.marker = marker
        self.lost = threading.Event()
        self.server = socket.create_server((LOOPBACK, free_ports(1)[0]))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        node = socket.create_connection((LOOPBACK, self.target), timeout=5)
        client.settimeout(5)
        with client, node:
            while not self._stop.is_set():
                try:
                    data = client.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                node.sendall(data)
                reply = node.recv(65536)
                if self.marker in data and not self.lost.is_set():
                    self.lost.set()
                    return  # the write went through; its reply never arrives
                client.sendall(reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.close()


@pytest.mark.parametrize("exactly_once", [True, False])
def test_a_lost_reply_is_retried_and_applied_once_only_with_sessions(
    tmp_path: Path, exactly_once: bool
) -> None:
    cluster = LocalCluster(tmp_path, 1).start()
    proxy = ReplyLosingProxy(cluster.nodes[0].port, b"INCR")
    try:
        with Client(f"{LOOPBACK}:{proxy.port}", exactly_once=exactly_once) as r:
            first = r.incr("lost")
            assert proxy.lost.is_set()
        count = int(cluster.nodes[0].call("GET", "lost"))
        if exactly_once:
            assert (first, count) == (1, 1)
        else:
            # What a client without sessions risks: the retry applied it again.
            assert (first, count) == (2, 2)
    finally:
        proxy.close()
        cluster.stop()


def test_counts_stay_exact_across_a_leader_kill(cluster: LocalCluster) -> None:
    addrs = [n.addr for n in cluster.nodes if n.running]
    acked = [0, 0]
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        with Client(*addrs, retry_timeout=20) as r:
            while not stop.is_set():
                try:
                    r.incr(f"exact:{i}")
                except OutcomeUnknown:
                    errors.append(AssertionError("a retried write had an unknown outcome"))
                    return
                acked[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    old = cluster.wait_leader()
    old.kill()
    new = cluster.wait_leader(timeout=20, exclude=old)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert acked[0] > 0 and acked[1] > 0
    for i in range(2):
        assert int(new.call("GET", f"exact:{i}")) == acked[i]
    old.start()  # the module's cluster goes on with three nodes


def test_sessions_survive_a_snapshot_and_a_restart(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, 1).start()
    node = cluster.nodes[0]
    try:
        sid = node.call("RAFTSESSION", "NEW")
        assert node.call("RAFTSEQ", str(sid), "0", "0", "INCR", "kept") == 1
        assert node.call("RAFTSNAPSHOT", timeout=10) == b"OK"
        node.stop()
        node.start()
        cluster.wait_leader()
        # The copy of sequence 0 is recognised from the snapshot's table: not applied again.
        assert node.call("RAFTSEQ", str(sid), "0", "0", "INCR", "kept") == 1
        assert node.call("GET", "kept") == b"1"
    finally:
        cluster.stop()
