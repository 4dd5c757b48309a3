"""The clone's lists on a real 3-node cluster: replicated alike, blocking pops woken across clients.

Three ``python -m redraft.examples.clone`` processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from redraft.testing import LocalCluster
from tests.differential.harness import Conn

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(Path(tmp_path_factory.mktemp("lists")), 3, ["--loglevel", "warning"])
    try:
        c.start()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


def test_lists_replicate_to_every_node(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()
    assert leader.call("RPUSH", "rl", "a", "b", "c") == 3
    assert leader.call("LMOVE", "rl", "rl2", "LEFT", "RIGHT") == b"a"
    assert leader.call("LPOP", "rl", "1") == [b"b"]
    digests = cluster.wait(
        lambda: len({tuple(n.call("RAFTDIGEST")) for n in cluster.nodes}) == 1,
        5.0,
        "every node to hold the same state",
    )
    assert digests
    assert leader.call("LRANGE", "rl2", "0", "-1") == [b"a"]
    assert leader.call("TYPE", "rl") == b"list"


def test_blpop_on_the_leader_is_woken_by_rpush_from_another_client(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()
    waiter, pusher = Conn(leader.port), Conn(leader.port)
    try:
        waiter.send(["BLPOP", "jobs", "10"])
        with pytest.raises(TimeoutError):
            waiter.reply(timeout=0.3)
        assert pusher.call("RPUSH", "jobs", "j1") == b":1\r\n"
        assert waiter.reply(timeout=5) == b"*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n"
        assert pusher.call("LLEN", "jobs") == b":0\r\n"
        # Pipelined behind a waiting pop, a request waits for it, as in Redis.
        waiter.send(["BRPOP", "jobs", "10"])
        waiter.send(["PING"])
        with pytest.raises(TimeoutError):
            waiter.reply(timeout=0.3)
        assert pusher.call("LPUSH", "jobs", "j2") == b":1\r\n"
        assert waiter.reply(timeout=5) == b"*2\r\n$4\r\njobs\r\n$2\r\nj2\r\n"
        assert waiter.reply(timeout=5) == b"+PONG\r\n"
    finally:
        waiter.close()
        pusher.close()


def test_blmove_times_out_with_a_null_array(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()
    conn = Conn(leader.port)
    try:
        assert conn.call("BLMOVE", "empty", "dst", "LEFT", "RIGHT", "0.1") == b"*-1\r\n"
        assert conn.call("BLPOP", "empty", "0.1") == b"*-1\r\n"
    finally:
        conn.close()
