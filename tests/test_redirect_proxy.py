"""``--redirect proxy``: a follower forwards what it may not serve to the leader and relays
the reply, so any plain Redis client works at any node."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redraft.errors import NOT_APPLIED, Redirect
from redraft.replies import fail
from redraft.resp import ReplyParser, encode_command
from redraft.testing import LOOPBACK, wait_for
from redraft.transport.forward import reply_end
from tests.cluster import Cluster, running_cluster
from tests.test_session import req, session

pytestmark = pytest.mark.timeout(120)


# --- the session, with a fake group ------------------------------------------------------


def test_a_follower_forwards_in_order_and_relays_each_reply_in_its_place() -> None:
    s, group = session(redirect="proxy")
    group.leader = group.lease = False
    s.feed(req(["SET", "a", "1"], ["PING"], ["GET", "a"], ["SET", "b", "2"], ["DBSIZE"]))
    sent = [(commands, count) for _, commands, _, count in group.forwarded]
    assert sent == [
        (encode_command(["SET", "a", "1"]), 1),
        (encode_command(["GET", "a"]), 1),
        (encode_command(["SET", "b", "2"]), 1),
        (encode_command(["DBSIZE"]), 1),
    ]
    assert {leader for leader, _, _, _ in group.forwarded} == {"127.0.0.1:2"}
    assert s.take_output() == b""  # PING waits behind the forwarded SET
    relays = [relay for _, _, relay, _ in group.forwarded]
    relays[1](b"$1\r\n1\r\n")  # replies may come back in any order...
    assert s.take_output() == b""
    relays[0](b"+OK\r\n")
    assert s.take_output() == b"+OK\r\n$4\r\nPONG\r\n$1\r\n1\r\n"  # ...in request order
    relays[2](b"+OK\r\n")
    relays[3](None)  # the link to the leader was lost before this reply came
    out = s.take_output()
    assert out.startswith(b"+OK\r\n-TIMEOUT proxy: the link to the leader was lost")
    assert b"may have been applied" in out


def test_a_pipelined_run_goes_to_the_leader_in_one_piece() -> None:
    s, group = session(redirect="proxy")
    group.leader = group.lease = False
    writes = [["SET", f"k{i}", "v"] for i in range(16)]
    reads = [["GET", f"k{i}"] for i in range(16)]
    s.feed(req(*writes, *reads))
    assert [(c, n) for _, c, _, n in group.forwarded] == [
        (b"".join(encode_command(w) for w in writes), 16),
        (b"".join(encode_command(r) for r in reads), 16),
    ]
    write_relay, read_relay = (relay for _, _, relay, _ in group.forwarded)
    for _ in range(16):
        read_relay(b"$1\r\nv\r\n")
    for _ in range(15):
        write_relay(b"+OK\r\n")
    assert s.take_output() == b""  # one reply still owed ahead of the reads
    write_relay(None)
    lost = b"-TIMEOUT proxy: the link to the leader was lost"
    out = s.take_output()
    assert out.startswith(b"+OK\r\n" * 15 + lost) and out.endswith(b"$1\r\nv\r\n" * 16)


def test_a_request_that_cannot_be_sent_is_refused_as_not_applied() -> None:
    s, group = session(redirect="proxy")
    group.leader = group.lease = False
    group.link_up = False
    s.feed(req(["SET", "a", "1"]))
    assert s.take_output() == (
        b"-ERR proxy: the request could not be sent to the leader 127.0.0.1:2; "
        b"it was not applied\r\n"
    )


def test_a_forwarded_request_is_never_forwarded_again() -> None:
    # Two nodes that each believe the other leads must not pass it back and forth.
    s, group = session(redirect="proxy")
    group.leader = group.lease = False
    s.peer_id = "127.0.0.1:3"
    s.feed(req(["SET", "a", "1"]))
    assert group.forwarded == []
    assert s.take_output() == f"-{NOT_APPLIED}\r\n".encode()


def test_a_write_taken_then_dropped_by_a_lost_leadership_says_it_was_not_applied() -> None:
    s, group = session(redirect="proxy")
    s.feed(req(["SET", "a", "1"], ["SET", "b", "2"]))
    fail(group.runs, Redirect("127.0.0.1:9"))
    assert s.take_output() == f"-{NOT_APPLIED}\r\n".encode() * 2


def test_a_resp3_clients_requests_are_forwarded_to_be_answered_in_resp3() -> None:
    s, group = session(redirect="proxy")
    group.leader = group.lease = False
    s.feed(req(["HGETALL", "h"]))
    s.use_resp3(True)  # what HELLO 3 does
    s.feed(req(["HGETALL", "h"], ["ZSCORE", "z", "a"]))
    assert group.forwarded_resp3 == [False, True]
    relays = [relay for _, _, relay, _ in group.forwarded]
    relays[0](b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
    relays[1](b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n")
    relays[1](b",1.5\r\n")
    assert s.take_output() == (b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n,1.5\r\n")


def test_a_peers_connection_never_gets_a_push() -> None:
    # Its link takes whatever comes back for the reply of the next forwarded request.
    s, _ = session()
    s.peer_id = "127.0.0.1:3"
    for resp3 in (False, True):
        s.use_resp3(resp3)
        s.push([b"message", b"ch", b"hi"])
        assert s.take_output() == b""


# --- real processes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("proxy"), 3, ["--redirect", "proxy"]) as c:
        yield c


def test_redis_cli_and_redis_py_just_work_at_a_follower(cluster: Cluster) -> None:
    follower = cluster.followers()[0]
    cli = ["redis-cli", "-p", str(follower.port)]
    assert subprocess.run([*cli, "SET", "cli", "yes"], capture_output=True, text=True).stdout == (
        "OK\n"
    )
    assert subprocess.run([*cli, "GET", "cli"], capture_output=True, text=True).stdout == "yes\n"
    r = redis.Redis(port=follower.port)
    assert r.set("py", "1") is True
    assert r.incr("py") == 2
    with r.pipeline(transaction=False) as p:
        for i in range(200):
            p.set(f"p:{i}", i)
            p.get(f"p:{i}")
        replies = p.execute()
    assert replies == [x for i in range(200) for x in (True, str(i).encode())]
    assert r.info("server")["redis_mode"] == "standalone"
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("SET", "only-a-key")
    r.close()


def test_redis_benchmark_at_a_follower_applies_every_write(cluster: Cluster) -> None:
    follower = cluster.followers()[0]
    leader = cluster.wait_leader()
    before = int(leader.stats()["commands_applied"])
    out = subprocess.run(
        ["redis-benchmark", "-p", str(follower.port), "-t", "set", "-n", "3000", "-P", "16",
         "-c", "8", "--csv"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and "Error" not in out.stdout + out.stderr
    assert int(leader.stats()["commands_applied"]) - before >= 3000


def test_a_leader_lost_mid_request_is_an_unknown_outcome_never_a_retry(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path, 3, ["--redirect", "proxy"]) as c:
        leader = c.wait_leader()
        follower = c.followers()[0]
        assert redis.Redis(port=follower.port).set("before", "1") is True
        leader.signal(signal.SIGSTOP)  # the request reaches it and waits there
        try:
            with socket.create_connection((LOOPBACK, follower.port), timeout=30) as s:
                s.sendall(encode_command(["INCR", "pending"]))
                time.sleep(0.5)
                leader.kill()  # the link drops with the request in flight
                parser = ReplyParser()
                reply = wait_for(lambda: parser.parse(s.recv(4096)), 20, "the relayed reply")
        finally:
            leader.signal(signal.SIGCONT)
        assert "may have been applied" in str(reply[0])
        c.wait_leader(timeout=20, exclude=leader)
        r = redis.Redis(port=follower.port, socket_timeout=10)
        got = wait_for(lambda: r.incr("after"), 20, "a write through the new leader",
                       retry_on=(redis.ResponseError, OSError))  # fmt: skip
        assert got == 1
        r.close()


def test_the_exactly_once_client_works_through_a_follower(cluster: Cluster) -> None:
    from redraft.client import Client

    follower = cluster.followers()[0]
    with Client(follower.addr) as r:
        assert [r.incr("through-proxy") for _ in range(3)] == [1, 2, 3]
        assert r.leader == follower.addr  # never redirected: the follower forwarded


# --- a RESP3 client at a follower gets the leader's bytes --------------------------------


class Raw:
    """A client on a plain socket: requests sent and replies read as bytes, nothing parsed."""

    def __init__(self, port: int, resp3: bool) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=20)
        self.buf = bytearray()
        if resp3:
            assert self.ask(["HELLO", "3"])[0].startswith(b"%7\r\n")

    def send(self, *cmds: list[str]) -> None:
        self.sock.sendall(b"".join(encode_command(c) for c in cmds))

    def read(self, count: int) -> list[bytes]:
        """The next ``count`` replies, each exactly as it came."""
        out: list[bytes] = []
        while len(out) < count:
            end = reply_end(self.buf, 0) if self.buf else -1
            if end >= 0:
                out.append(bytes(self.buf[:end]))
                del self.buf[:end]
                continue
            data = self.sock.recv(65536)
            assert data, "the connection closed"
            self.buf += data
        return out

    def ask(self, *cmds: list[str]) -> list[bytes]:
        self.send(*cmds)
        return self.read(len(cmds))

    def close(self) -> None:
        self.sock.close()


def _prepare(node: Any, *prefixes: str) -> None:
    """The same keys under each prefix (same length each: replies never name keys)."""
    with node.client() as r:
        for p in prefixes:
            r.hset(f"{p}h", mapping={"f1": "v1", "f2": "v2"})
            r.zadd(f"{p}z", {"a": 1.5, "b": 2})
            r.sadd(f"{p}set", "x")


def _requests(p: str) -> list[list[str]]:
    """Replies whose RESP3 form differs from RESP2's, and some whose form does not."""
    return [
        ["HGETALL", f"{p}h"],
        ["HGETALL", f"{p}none"],
        ["ZSCORE", f"{p}z", "a"],
        ["ZSCORE", f"{p}z", "none"],
        ["ZRANGE", f"{p}z", "0", "-1", "WITHSCORES"],
        ["ZINCRBY", f"{p}z", "2", "b"],
        ["SMEMBERS", f"{p}set"],
        ["SET", f"{p}s", "v"],
        ["SET", f"{p}s", "w", "GET"],
        ["GET", f"{p}none"],
        ["INCR", f"{p}s"],  # an error the leader answers
        ["HGET", f"{p}z", "f"],  # WRONGTYPE
        ["SET", f"{p}s"],  # an error the follower answers itself
        ["CONFIG", "GET", "maxmemory"],
        ["MULTI"],
        ["HGETALL", f"{p}h"],
        ["ZSCORE", f"{p}z", "b"],
        ["EXEC"],
    ]


def test_a_resp3_client_at_a_follower_gets_what_the_leader_gives_it(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = cluster.followers()[0]
    _prepare(leader, "L1:", "F1:", "L2:", "F2:")
    at_leader, at_follower = Raw(leader.port, True), Raw(follower.port, True)
    try:
        # One request at a time...
        want = [at_leader.ask(c)[0] for c in _requests("L1:")]
        got = [at_follower.ask(c)[0] for c in _requests("F1:")]
        assert got == want
        assert want[0].startswith(b"%2\r\n") and want[2] == b",1.5\r\n"  # RESP3's forms
        assert want[4].startswith(b"*2\r\n*2\r\n") and want[9] == b"_\r\n"
        # ...and all of them pipelined, in one write.
        assert at_follower.ask(*_requests("F2:")) == at_leader.ask(*_requests("L2:")) == want
    finally:
        at_leader.close()
        at_follower.close()


def test_resp2_and_resp3_clients_at_one_follower_each_get_their_own_protocol(
    cluster: Cluster,
) -> None:
    # Their requests take turns on the follower's one link to the leader.
    leader = cluster.wait_leader()
    follower = cluster.followers()[0]
    _prepare(leader, "L3:", "L4:", "F3:", "F4:")
    clients = [Raw(port, resp3) for port in (leader.port, follower.port) for resp3 in (False, True)]
    r2_leader, r3_leader, r2_follower, r3_follower = clients
    try:
        want2 = r2_leader.ask(*_requests("L3:"))
        want3 = r3_leader.ask(*_requests("L4:"))
        assert want2[0].startswith(b"*4\r\n") and want3[0].startswith(b"%2\r\n")
        for c2, c3 in zip(_requests("F3:"), _requests("F4:"), strict=True):
            r2_follower.send(c2)
            r3_follower.send(c3)
        n = len(want2)
        assert r2_follower.read(n) == want2
        assert r3_follower.read(n) == want3
        # A client that switches protocol mid-pipeline: each reply in the protocol of its turn.
        hgetall = ["HGETALL", "F3:h"]
        got = r2_follower.ask(hgetall, ["HELLO", "3"], hgetall, ["HELLO", "2"], hgetall)
        assert got[0::2] == [want2[0], want3[0], want2[0]]
    finally:
        for c in clients:
            c.close()
