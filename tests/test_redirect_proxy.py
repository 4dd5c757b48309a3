"""``--redirect proxy``: a follower forwards what it may not serve to the leader and relays
the reply, so any plain Redis client works at any node."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redraft.errors import NOT_APPLIED, Redirect
from redraft.replies import fail
from redraft.resp import ReplyParser, encode_command
from redraft.testing import LOOPBACK, wait_for
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
