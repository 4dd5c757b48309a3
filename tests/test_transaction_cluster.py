"""Transactions and blocking requests on a real 3-node cluster of the clone.

* kill -9 of the leader while transactions are being logged: every
  transaction is on every replica whole or not at all;
* WATCH-based transfers from several clients: totals are conserved;
* a leader change answers a waiting BLPOP with a redirect.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster, running_cluster
from tests.differential.harness import Conn

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, 3) as c:
        yield c


def _same_state(cluster: Cluster) -> bool:
    nodes = [n for n in cluster.nodes if n.running]
    return len({tuple(n.call("RAFTDIGEST")) for n in nodes}) == 1


TX_KEYS = 4


def test_transactions_are_all_or_none_after_kill_9_of_the_leader_mid_exec(
    cluster: Cluster,
) -> None:
    leader = cluster.wait_leader()
    conn = Conn(leader.port)
    sent = 0

    def send_tx(i: int) -> None:
        conn.send(["MULTI"])
        for k in range(TX_KEYS):
            conn.send(["SET", f"tx:{i}:{k}", str(i)])
        conn.send(["EXEC"])

    # A first batch is acknowledged before anything dies: those EXECs were
    # answered, so every one of them must be on every replica afterwards.
    acked = 20
    for i in range(acked):
        send_tx(i)
    replies = [conn.reply() for _ in range(acked * (TX_KEYS + 2))]
    execs = replies[TX_KEYS + 1 :: TX_KEYS + 2]
    assert all(r.startswith(b"*%d\r\n" % TX_KEYS) for r in execs), execs
    sent = acked
    try:
        # Then many transactions in flight at once (pipelined, not waited
        # for), and the leader dies under them.
        for _ in range(10):
            for i in range(sent, sent + 50):
                send_tx(i)
            sent += 50
        leader.kill()
    except OSError:
        pass  # the socket died with the leader
    finally:
        conn.close()
    leader.kill()
    new = cluster.wait_leader(exclude=leader)
    assert new.call("SET", "after", "1") is True
    leader.start()  # back from its data dir: it must agree too
    cluster.wait(lambda: _same_state(cluster), 20.0, "every replica to hold the same state")
    keys = new.call("KEYS", "tx:*")
    present: dict[str, set[str]] = {}
    for raw in keys:
        _, i, k = raw.decode().split(":")
        present.setdefault(i, set()).add(k)
    partial = {i: ks for i, ks in present.items() if len(ks) != TX_KEYS}
    assert not partial, f"transactions applied in part: {partial}"
    lost = [i for i in range(acked) if str(i) not in present]
    assert not lost, f"acknowledged transactions lost: {lost}"
    assert len(present) <= sent


def test_watch_based_transfers_conserve_the_total(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    accounts = [f"acct:{n}" for n in range(4)]
    for a in accounts:
        assert leader.call("SET", a, "100") is True
    deadline = time.monotonic() + 4.0
    done = [0]
    aborted = [0]
    errors: list[str] = []

    def transfer_loop(seed: int) -> None:
        rng = random.Random(seed)
        conn = Conn(leader.port)
        try:
            while time.monotonic() < deadline:
                src, dst = rng.sample(accounts, 2)
                amount = rng.randint(1, 20)
                conn.call("WATCH", src, dst)
                balance = int(conn.call("GET", src).split(b"\r\n")[1])
                if balance < amount:
                    conn.call("UNWATCH")
                    continue
                conn.send(["MULTI"])
                conn.send(["DECRBY", src, str(amount)])
                conn.send(["INCRBY", dst, str(amount)])
                conn.send(["EXEC"])
                replies = [conn.reply(timeout=5) for _ in range(4)]
                if replies[3] == b"*-1\r\n":
                    aborted[0] += 1
                elif replies[3].startswith(b"*2\r\n"):
                    done[0] += 1
                else:
                    errors.append(repr(replies))
        finally:
            conn.close()

    threads = [threading.Thread(target=transfer_loop, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert done[0] > 0
    cluster.wait(lambda: _same_state(cluster), 10.0, "every replica to hold the same state")
    total = sum(int(leader.call("GET", a)) for a in accounts)
    assert total == 100 * len(accounts), (total, done, aborted)
    assert all(int(leader.call("GET", a)) >= 0 for a in accounts)


def test_a_leader_change_answers_a_waiting_blpop_with_a_redirect(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    waiter = Conn(leader.port)
    try:
        waiter.send(["BLPOP", "never", "0"])
        with pytest.raises(TimeoutError):
            waiter.reply(timeout=0.3)
        target = cluster.followers()[0]
        assert leader.call("RAFTTRANSFERLEADER", target.addr, timeout=10.0) == b"OK"
        reply = waiter.reply(timeout=10)
        assert reply.startswith(b"-TRY "), reply
        new = cluster.wait_leader(exclude=leader)
        # Retried at the new leader, it waits there and is woken there.
        again = Conn(new.port)
        try:
            again.send(["BLPOP", "never", "0"])
            with pytest.raises(TimeoutError):
                again.reply(timeout=0.3)
            assert new.call("RPUSH", "never", "v") == 1
            assert again.reply(timeout=5) == b"*2\r\n$5\r\nnever\r\n$1\r\nv\r\n"
        finally:
            again.close()
    finally:
        waiter.close()


def test_in_proxy_mode_a_follower_serves_transactions_and_refuses_to_wait(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3, ["--redirect", "proxy"]) as c:
        follower = c.followers()[0]
        conn = Conn(follower.port)
        other = Conn(follower.port)
        try:
            assert conn.call("WATCH", "pk") == b"+OK\r\n"
            assert conn.call("MULTI") == b"+OK\r\n"
            assert conn.call("SET", "pk", "1") == b"+QUEUED\r\n"
            assert conn.call("INCR", "pk") == b"+QUEUED\r\n"
            assert conn.call("EXEC") == b"*2\r\n+OK\r\n:2\r\n"
            # A watched key changed by another client: EXEC answers nil.
            assert conn.call("WATCH", "pk") == b"+OK\r\n"
            assert other.call("INCR", "pk") == b":3\r\n"
            assert conn.call("MULTI") == b"+OK\r\n"
            assert conn.call("INCR", "pk") == b"+QUEUED\r\n"
            assert conn.call("EXEC") == b"*-1\r\n"
            # A blocking pop that need not wait is served through the leader...
            assert other.call("RPUSH", "pq", "a") == b":1\r\n"
            assert conn.call("BLPOP", "pq", "0") == b"*2\r\n$2\r\npq\r\n$1\r\na\r\n"
            # ...one that would have to wait is refused rather than stall the link.
            reply = conn.call("BLPOP", "pq", "0")
            assert reply.startswith(b"-ERR proxy mode: a blocking command"), reply
            assert conn.call("PING") == b"+PONG\r\n"
        finally:
            conn.close()
            other.close()
