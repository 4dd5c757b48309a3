"""Day-two operations on real processes: online backup and restore, a lost majority, read replicas.

Each test runs clusters of the clone (``tests.cluster``) and the admin
command line (``python -m redraft``) as an operator would.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from redraft.dedup import ClientSessions
from redraft.examples.clone import Clone
from redraft.raft.types import Membership
from redraft.snapshotting import digest_of, restore_payload
from redraft.storage.snapshots import SnapshotStore, adopt_file
from tests.cluster import NO_RETRY, Cluster, NodeProc, running_cluster, wait_until

pytestmark = pytest.mark.timeout(240)


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m redraft ARGS``, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "redraft", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def backup_digest(path: Path, tmp: Path) -> tuple[int, str]:
    """What RAFTDIGEST of a node restored from the backup ``path`` must answer."""
    store = SnapshotStore(tmp / "check")
    meta = adopt_file(store, path, Membership(voters=frozenset(["x"])))
    clone = Clone()
    with store.open_payload(meta) as rd:
        restore_payload(rd, clone, ClientSessions())
    buf = io.BytesIO()
    digest_of(clone, buf)
    return meta.index, hashlib.sha256(buf.getvalue()).hexdigest()


def write_load(node: NodeProc, stop: threading.Event, acked: list[str]) -> None:
    n = 0
    with node.client(retry=NO_RETRY, socket_timeout=2) as c:
        while not stop.is_set():
            try:
                c.set(f"load:{n}", n)
                acked.append(f"load:{n}")
            except (redis.RedisError, OSError):
                time.sleep(0.05)
            n += 1


def extra_node(cluster: Cluster) -> NodeProc:
    node = cluster.add_node()
    assert isinstance(node, NodeProc)
    return node


def test_backup_under_load_restores_into_a_new_cluster(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "old", 3) as old:
        leader = old.wait_leader()
        stop = threading.Event()
        acked: list[str] = []
        writer = threading.Thread(target=write_load, args=(leader, stop, acked))
        writer.start()
        try:
            wait_until(lambda: len(acked) > 200, 10, "writes to flow")
            out = admin("backup", leader.addr, str(tmp_path / "app.rsnap"))
            during = len(acked)
            wait_until(lambda: len(acked) > during + 100, 10, "writes to go on after the backup")
        finally:
            stop.set()
            writer.join(10)
        assert out.returncode == 0, out.stderr
        assert "sha256" in out.stdout and "index" in out.stdout
    index, digest = backup_digest(tmp_path / "app.rsnap", tmp_path)
    with running_cluster(tmp_path / "new", 1) as new:
        first = new.nodes[0]
        first.stop()
        fresh = tmp_path / "restored"
        first.dir = fresh
        first.start(extra=["--restore", str(tmp_path / "app.rsnap")])
        new.wait_leader()
        got = first.call("RAFTDIGEST")
        # The same state; the index is past the backup's by the new leader's empty entry.
        assert got[1].decode() == digest and got[0] >= index
        assert int(first.call("DBSIZE")) > 200
        assert first.call("SET", "after", "restore") is True
        # The restored cluster knows only itself; others join it as usual.
        peers = first.call("RAFTPEERS")
        assert peers == [first.addr.encode(), b"Leader"]
        joiner = extra_node(new)
        joiner.start(join=first.addr)
        wait_until(lambda: new.voters() == 2, 20, "the new member to join the restored cluster")
        wait_until(
            lambda: joiner.call("RAFTDIGEST")[1] == first.call("RAFTDIGEST")[1],
            20,
            "the new member to hold the restored state",
        )


def test_restore_refuses_a_corrupt_or_truncated_backup_and_a_used_data_dir(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "src", 1) as src:
        node = src.nodes[0]
        for i in range(50):
            node.call("SET", f"k{i}", "v" * 100)
        assert admin("backup", node.addr, str(tmp_path / "good.rsnap")).returncode == 0
        good = (tmp_path / "good.rsnap").read_bytes()
        flipped = bytearray(good)
        flipped[len(good) // 2] ^= 0xFF
        (tmp_path / "corrupt.rsnap").write_bytes(bytes(flipped))
        (tmp_path / "short.rsnap").write_bytes(good[: len(good) - 40])
        cases = [
            ("corrupt.rsnap", tmp_path / "d1", "checksum mismatch"),
            ("short.rsnap", tmp_path / "d2", "trailer missing"),
            ("good.rsnap", node.dir, "already holds cluster state"),
        ]
        node.stop()
        for name, directory, why in cases:
            proc = extra_node(src)
            proc.dir = directory
            proc.spawn(extra=["--restore", str(tmp_path / name)])
            assert proc.proc is not None
            assert proc.proc.wait(timeout=30) != 0
            log = proc.log_path.read_text()
            assert why in log and name in log, log


def test_a_lost_majority_recovers_with_force_new_cluster(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        for i in range(100):
            assert leader.call("SET", f"acked:{i}", str(i)) is True
        wait_until(
            lambda: len({tuple(n.call("RAFTDIGEST")) for n in cluster.nodes}) == 1,
            20,
            "every replica to hold every acknowledged write",
        )
        survivor = next(n for n in cluster.nodes if n is not leader)
        for node in cluster.nodes:
            if node is not survivor:
                node.kill()
        # Without a majority the survivor cannot take writes...
        with pytest.raises(redis.RedisError):
            survivor.call("SET", "lost", "1", timeout=3)
        # ...until the operator restarts it as a new cluster of one.
        survivor.kill()
        survivor.start(extra=["--force-new-cluster"])
        wait_until(lambda: survivor.call("RAFTSTATE") == b"Leader", 20, "the survivor to lead")
        assert [survivor.call("GET", f"acked:{i}") for i in range(100)] == [
            str(i).encode() for i in range(100)
        ]
        assert survivor.call("SET", "after", "recovery") is True
        assert survivor.call("RAFTPEERS") == [survivor.addr.encode(), b"Leader"]
        # Back to three: new members with empty data dirs join.
        for _ in range(2):
            fresh = extra_node(cluster)
            fresh.start(join=survivor.addr)
        wait_until(lambda: cluster.voters() == 3, 30, "two new members to join")
        # Restarted without the flag, it stays in the new cluster.
        survivor.stop()
        survivor.start()
        new_leader = cluster.wait_leader()
        assert new_leader.call("GET", "after") == b"recovery"


def test_a_read_replica_serves_reads_and_never_counts_toward_a_quorum(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        replica = extra_node(cluster)
        replica.start(join=leader.addr, extra=["--join-as-learner", "--consistency", "low"])
        wait_until(
            lambda: [replica.addr.encode(), b"Learner"] in _pairs(leader.call("RAFTPEERS")),
            20,
            "the replica to be a learner",
        )
        for i in range(50):
            leader.call("SET", f"r{i}", str(i))
        wait_until(lambda: replica.call("GET", "r49") == b"49", 10, "the replica to catch up")
        assert cluster.voters() == 3  # not promoted
        status = admin("status", replica.addr)
        assert status.returncode == 0, status.stderr
        assert replica.addr in status.stdout and "learner" in status.stdout
        assert leader.addr in status.stdout and "Leader" in status.stdout
        # Two voters gone: the third and the learner are 2 of 4 nodes, but
        # only voters count, so nothing commits.
        others = [n for n in cluster.nodes[:3] if n is not leader]
        others[0].kill()
        others[1].kill()
        with pytest.raises(redis.RedisError):
            leader.call("SET", "no-quorum", "1", timeout=3)
        assert replica.call("GET", "r0") == b"0"  # reads still served at consistency low


def _pairs(flat: list[bytes]) -> list[list[bytes]]:
    return [list(flat[i : i + 2]) for i in range(0, len(flat), 2)]
