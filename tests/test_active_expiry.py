"""The clone's active expiry through the replicated tick, its INFO keyspace, and role callbacks.

A real cluster of three processes runs :mod:`tests.role_app` (the clone,
recording the role callbacks it gets): keys past their TTL leave every node
with no client write, the nodes stay identical, the idle log stops growing,
and the callbacks follow a leader's death.  INFO keyspace and FLUSHALL are
compared with a real redis-server.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest

from redraft.options import Options
from redraft.resp import encode_command
from redraft.testing import ClusterNode, LocalCluster
from tests.test_clone_machine import redis_server  # noqa: F401  (a fixture)
from tests.test_fuzz_server import ThreadNode

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
KEPT = b"# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(
        tmp_path_factory.mktemp("expiry"),
        3,
        ["--loglevel", "warning"],
        app="tests.role_app",
        cwd=ROOT,
    )
    try:
        c.start()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


def events(node: ClusterNode) -> list[bytes]:
    got: list[bytes] = node.call("EVENTS")
    return got


def roles(node: ClusterNode) -> list[bytes]:
    """The role callbacks the node got, in order (leaving out ``ready``)."""
    return [e for e in events(node) if not e.startswith(b"ready")]


def test_keys_past_their_ttl_leave_every_node_without_a_write(cluster: LocalCluster) -> None:
    leader = cluster.wait_leader()
    nodes = cluster.nodes
    leader.call("SET", "keep1", "v")
    leader.call("SET", "keep2", "v", "PX", "600000")
    leader.call("PERSIST", "keep2")
    for i in range(20):
        assert leader.call("SET", f"t{i}", "v", "PX", "300") == b"OK"
    written = time.monotonic()
    assert leader.call("DBSIZE") == 22
    # From here on no client writes: only ticks can delete the keys.
    cluster.wait(
        lambda: all(n.call("INFO", "keyspace") == KEPT for n in nodes),
        2.0,
        "the expired keys to leave every node",
    )
    assert time.monotonic() - written < 2.0
    digests = cluster.wait(
        lambda: len({tuple(n.call("RAFTDIGEST")) for n in nodes}) == 1,
        5.0,
        "the nodes to agree",
    )
    assert digests
    for n in nodes:
        assert int(n.stats()["ticks_applied"]) > 0
    # Nothing is due any more: the leader stops logging ticks.
    time.sleep(0.3)
    last = leader.stats()["last_log_index"]
    time.sleep(0.6)
    assert leader.stats()["last_log_index"] == last, "an idle cluster's log must not grow"


def test_role_callbacks_follow_a_leader_kill(cluster: LocalCluster) -> None:
    nodes = cluster.nodes
    cluster.wait(
        lambda: all(any(e.startswith(b"ready") for e in events(n)) for n in nodes),
        10.0,
        "every node to be ready",
    )
    old = cluster.wait_leader()
    assert roles(old)[-1] == b"leader"
    followers = [n for n in nodes if n is not old]
    for f in followers:
        assert roles(f)[-1] == b"follower " + old.addr.encode()

    old.kill()
    new = cluster.wait_leader(exclude=old)
    (other,) = [n for n in followers if n is not new]
    cluster.wait(lambda: roles(new)[-1] == b"leader", 10.0, "on_leader on the new leader")
    cluster.wait(
        lambda: roles(other)[-1] == b"follower " + new.addr.encode(),
        10.0,
        "on_follower naming the new leader",
    )
    assert roles(new)[-2:] == [b"follower " + old.addr.encode(), b"leader"]

    # Writes the old leader misses; back, it follows and is ready once it caught up.
    for i in range(30):
        assert new.call("MSET", *(f"w{i}.{j}" for j in range(8) for _ in (0, 1))) == b"OK"
    keys = new.call("DBSIZE")
    old.start()
    cluster.wait(
        lambda: any(e.startswith(b"ready") for e in events(old)), 15.0, "the old leader to catch up"
    )
    assert events(old) == [b"follower " + new.addr.encode(), b"ready keys=%d" % keys]


# -- against a real Redis ---------------------------------------------------------------

_SCRIPT = [
    ["FLUSHALL"],
    ["INFO", "keyspace"],
    ["SET", "a", "1"],
    ["INFO", "keyspace"],
    ["MSET", "b", "2", "c", "3"],
    ["INFO", "Keyspace"],
    ["EXPIRE", "b", "1000"],
    ["INFO", "keyspace"],  # avg_ttl is Redis's estimate: compared without it
    ["FLUSHALL", "foo"],
    ["FLUSHALL", "sync", "async"],
    ["FLUSHALL", "ASYNC"],
    ["INFO", "keyspace"],
    ["SET", "a", "1"],
    ["FLUSHALL", "SYNC"],
    ["DBSIZE"],
    ["SET", "a", "1"],
    ["FLUSHDB", "async"],
    ["INFO", "keyspace"],
]


def _call(sock: socket.socket, reader: Any, args: list[str]) -> Any:
    sock.sendall(encode_command(args))
    while (reply := reader.gets()) is False:
        reader.feed(sock.recv(1 << 16))
    return ("error", str(reply)) if isinstance(reply, hiredis.ReplyError) else reply


def _without_avg_ttl(reply: Any) -> Any:
    """Redis estimates avg_ttl as it samples keys with a TTL; the clone says 0."""
    if isinstance(reply, bytes) and b"avg_ttl=" in reply and b",expires=0," not in reply:
        return reply.split(b",avg_ttl=")[0]
    return reply


def test_info_keyspace_and_flushall_match_a_real_redis(
    redis_server: socket.socket,  # noqa: F811
    tmp_path: Path,
) -> None:
    tn = ThreadNode(tmp_path, Options(log_level="warning"))
    tn.start()
    try:
        ours = socket.create_connection(("127.0.0.1", tn.port), timeout=5)
        try:
            theirs_reader, ours_reader = hiredis.Reader(), hiredis.Reader()
            for args in _SCRIPT:
                theirs = _call(redis_server, theirs_reader, args)
                mine = _call(ours, ours_reader, args)
                if args[0] == "INFO":
                    theirs, mine = _without_avg_ttl(theirs), _without_avg_ttl(mine)
                assert mine == theirs, args
        finally:
            ours.close()
    finally:
        tn.stop()
