"""Every limit a node enforces, each against a client (or peer) that breaks it.

One clone process with small limits; the raw-socket clients here behave as a
careless or hostile client would, and each test checks that the node cuts
that one client off and keeps serving everyone else.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redraft.raft.types import Membership, Message, MsgType, SnapChunk, SnapshotMeta
from redraft.resp import encode_command
from redraft.transport.codec import encode_messages
from tests.cluster import NodeProc, running_cluster, wait_until
from tests.test_security import Raw, peer_handshake, stats

pytestmark = pytest.mark.timeout(60)

SECRET = b"limits-secret"
LIMIT_FLAGS = [
    "--maxclients", "12",
    "--timeout", "1.5",
    "--client-query-buffer-limit", "1mb",
    "--client-output-buffer-limit", "1mb",
    "--proto-max-bulk-len", "256kb",
    "--max-peer-message", "128kb",
    "--snapshot-chunk-bytes", "8192",
    "--peer-secret", SECRET.decode(),
]  # fmt: skip


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProc]:
    with running_cluster(tmp_path_factory.mktemp("limits"), 1, LIMIT_FLAGS) as cluster:
        yield cluster.nodes[0]


def connected_clients(node: NodeProc) -> int:
    with node.client() as c:
        return int(c.info("clients")["connected_clients"])


def rss_peak_kb(node: NodeProc) -> int:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def test_max_clients(node: NodeProc) -> None:
    wait_until(lambda: connected_clients(node) == 1, 10, "earlier clients to go")
    conns: list[Raw] = []
    try:
        for _ in range(12):
            conns.append(Raw(node.port))
            assert conns[-1].call("PING") == b"+PONG"
        extra = Raw(node.port)
        conns.append(extra)
        assert extra.line() == b"-ERR max number of clients reached"
        assert extra.closed_by_server()
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: connected_clients(node) == 1, 10, "the clients to go")


def test_idle_clients_are_closed_busy_ones_are_not(node: NodeProc) -> None:
    idle, busy = Raw(node.port, timeout=10), Raw(node.port)
    try:
        assert idle.call("PING") == b"+PONG"
        deadline = time.monotonic() + 3.0  # twice the --timeout
        while time.monotonic() < deadline:
            assert busy.call("PING") == b"+PONG"
            time.sleep(0.2)
        assert idle.closed_by_server()
        assert busy.call("PING") == b"+PONG"
    finally:
        idle.close()
        busy.close()


def test_query_buffer_limit(node: NodeProc) -> None:
    raw = Raw(node.port)
    try:
        # A request announcing 8 arguments of 200 KB and never finishing.
        raw.sock.sendall(b"*9\r\n$4\r\nMSET\r\n")
        chunk = b"$200000\r\n" + b"x" * 200_000 + b"\r\n"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(8):
                raw.sock.sendall(chunk)
        assert raw.line().startswith(b"-ERR max query buffer length reached")
        assert raw.closed_by_server()
    finally:
        raw.close()
    assert "over the query buffer limit" in node.log_path.read_text()
    with node.client() as c:
        assert c.ping() is True


@pytest.mark.parametrize("per_write", [1, 100], ids=["unread-replies-pile-up", "one-huge-read"])
def test_output_buffer_limit_for_a_client_that_never_reads(node: NodeProc, per_write: int) -> None:
    # 1 GET of 32 KB per write stays under the 1 MB limit each time: the
    # unsent replies pile up until the limit; 100 exceed it within one read.
    value = b"v" * 32768
    with node.client() as c:
        c.set("big", value)
    peak_before = rss_peak_kb(node)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", node.port))
    requests = encode_command(["GET", "big"]) * per_write
    asked = 0
    try:
        # Up to 4000 GETs (125 MB of replies) without reading a byte.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while asked < 4000:
                s.sendall(requests)
                asked += per_write
                time.sleep(0.002)
        reset = False
        try:
            while s.recv(1 << 20):
                pass
        except ConnectionResetError:
            reset = True
        assert reset or asked < 4000, "the node kept buffering replies for a client not reading"
    finally:
        s.close()
    grown_mb = (rss_peak_kb(node) - peak_before) / 1024
    assert grown_mb < 48, f"the node's peak memory grew by {grown_mb:.0f} MB"
    assert "output buffer" in node.log_path.read_text()
    with node.client() as c:
        assert c.get("big") == value


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        (b"*2\r\n$4\r\nECHO\r\n$300000\r\n", b"-ERR Protocol error: invalid bulk length"),
        (b"*2000000\r\n", b"-ERR Protocol error: invalid multibulk length"),
        (b"PING " + b"x" * 70_000, b"-ERR Protocol error: too big inline request"),
    ],
    ids=["bulk", "multibulk", "inline"],
)
def test_request_size_caps(node: NodeProc, request_bytes: bytes, error: bytes) -> None:
    raw = Raw(node.port)
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            raw.sock.sendall(request_bytes)
        assert raw.line() == error
        assert raw.closed_by_server()
    finally:
        raw.close()


def test_oversized_peer_messages_and_snapshot_chunks_are_dropped(node: NodeProc) -> None:
    before = stats(node)
    me = node.addr
    peer = "127.0.0.1:1"
    mem = Membership(voters=frozenset({peer}))
    big_chunk = SnapChunk(SnapshotMeta(10**6, 10**6, mem, 200_000), 0, 200_000, b"s" * 200_000)
    oversized = encode_messages([Message(MsgType.SNAP, me, peer, 10**6, snap=big_chunk)])
    assert len(oversized) > 128 * 1024
    raw = Raw(node.port)
    try:
        assert peer_handshake(raw, peer, SECRET) == b"+OK"
        raw.send("RAFTMSG", oversized)
        raw.send("RAFTMSG", b"\xc1 not msgpack")
        assert raw.call("PING") == b"+PONG"  # dropped, not answered; the link stays
    finally:
        raw.close()
    log_text = node.log_path.read_text()
    assert f"dropping a {len(oversized)}-byte message batch from {peer}" in log_text
    assert f"dropping malformed message batch from {peer}" in log_text
    after = stats(node)
    assert after["term"] == before["term"]
    assert after["last_snapshot_index"] == before["last_snapshot_index"]
    assert after["state"] == "Leader"
