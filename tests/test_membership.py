"""Snapshots, InstallSnapshot and membership changes with real processes."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.cluster import NO_RETRY, Cluster, NodeProc, free_ports, running_cluster, wait_until

pytestmark = pytest.mark.timeout(240)


stats = NodeProc.stats


def fill(node: NodeProc, n: int, prefix: str = "key") -> None:
    with node.client(socket_timeout=30) as c:
        for start in range(0, n, 5000):
            pipe = c.pipeline(transaction=False)
            for i in range(start, min(n, start + 5000)):
                pipe.set(f"{prefix}:{i}", f"value-{i}")
            pipe.execute()


def dump(node: NodeProc) -> dict[bytes, bytes]:
    """Every key and value as this node's own state has them (consistency low)."""
    with node.client(socket_timeout=30) as c:
        keys = c.keys("*")
        out: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 5000):
            chunk = keys[start : start + 5000]
            out.update(zip(chunk, c.mget(chunk), strict=True))
        return out


def _peers(cluster: Cluster) -> list[bytes]:
    with cluster.wait_leader().client() as c:
        peers: list[bytes] = c.execute_command("RAFTPEERS")
    return peers


def caught_up(node: NodeProc, leader: NodeProc) -> bool:
    return int(stats(node)["applied_index"]) >= int(stats(leader)["commit_index"])


def add_node(cluster: Cluster, leader: NodeProc, extra: list[str] | None = None) -> NodeProc:
    node = cluster.add_node()
    node.start(join=leader.addr, extra=extra)
    return node


def test_new_node_catches_up_by_install_snapshot_even_if_the_leader_dies(tmp_path: Path) -> None:
    flags = ["--consistency", "low", "--snapshot-chunk-bytes", "65536", "--compaction-tail", "0"]
    with running_cluster(tmp_path, 3, flags) as cluster:
        leader = cluster.wait_leader()
        fill(leader, 100_000)
        for n in cluster.nodes:
            with n.client(socket_timeout=30) as c:
                wait_until(lambda n=n: caught_up(n, leader), 30, "followers to apply")
                assert c.execute_command("RAFTSNAPSHOT") in (b"OK", True)
        assert int(stats(leader)["first_log_index"]) > 1, "the log was not compacted"
        expected = dump(leader)
        assert len(expected) == 100_000

        # A newcomer starts receiving the snapshot; freeze it mid-transfer and
        # kill the leader: it must finish catching up from the next leader.
        newcomer = add_node(cluster, leader, flags)

        def receiving() -> bool:
            with leader.client() as c:
                peers = c.execute_command("RAFTPEERS", "VERBOSE")
            for p in peers:
                info = dict(zip(p[::2], p[1::2], strict=True)) if isinstance(p, list) else p
                if info[b"address"] == newcomer.addr.encode():
                    return info.get(b"replication") == b"snapshot" or int(info[b"match_index"]) > 0
            return False

        wait_until(receiving, 20, "the snapshot transfer to start", interval=0.005)
        newcomer.kill(signal.SIGSTOP)
        leader.kill(signal.SIGKILL)
        newcomer.kill(signal.SIGCONT)
        new_leader = cluster.wait_leader(timeout=20, exclude=leader)
        with new_leader.client() as c:
            c.set("after-failover", "yes")
        wait_until(lambda: caught_up(newcomer, new_leader), 60, "the newcomer to catch up")
        got = dump(newcomer)
        assert got.pop(b"after-failover") == b"yes"
        assert got == expected
        assert int(stats(newcomer)["last_snapshot_index"]) > 0, "no snapshot was installed"


def test_node_down_through_writes_and_two_snapshots_comes_back(tmp_path: Path) -> None:
    flags = ["--consistency", "low", "--snapshot-entries", "200", "--compaction-tail", "10"]
    with running_cluster(tmp_path, 3, flags) as cluster:
        leader = cluster.wait_leader()
        down = cluster.followers()[0]
        down.kill(signal.SIGKILL)
        with leader.client(socket_timeout=30) as c:
            for i in range(50_000):
                # Unpipelined batches keep many log entries so snapshots trigger.
                if i % 100 == 0:
                    pipe = c.pipeline(transaction=False)
                pipe.set(f"k:{i % 7000}", i)
                if i % 100 == 99:
                    pipe.execute()
        assert int(stats(leader)["last_snapshot_index"]) > 0
        down.start()
        wait_until(lambda: caught_up(down, leader), 60, "the returning node to catch up")
        assert dump(down) == dump(leader)


def test_grow_to_five_and_shrink_to_three_under_load_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        acked: list[str] = []
        unknown: list[str] = []
        stop = threading.Event()

        def writer(wid: int) -> None:
            port = leader.port
            seq = 0
            while not stop.is_set():
                token = f"{wid}.{seq}"
                seq += 1
                try:
                    with redis.Redis(port=port, socket_timeout=2, retry=NO_RETRY) as c:
                        c.append(f"log:{wid}", token + ",")
                        acked.append(token)
                except redis.ResponseError as exc:
                    text = str(exc)
                    if text.startswith("TRY "):
                        port = int(text.rsplit(":", 1)[1])
                    elif not text.startswith(("leader not known", "leadership changed")):
                        unknown.append(token)
                    time.sleep(0.02)
                except (redis.RedisError, OSError):
                    unknown.append(token)
                    time.sleep(0.05)

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        added = [add_node(cluster, leader) for _ in range(2)]
        wait_until(lambda: cluster.voters() == 5, 30, "five voters")
        # Shrink by one newcomer and by the original leader (which hands over).
        for n in (added[0], leader):
            current = cluster.wait_leader()
            with current.client() as c:
                c.execute_command("RAFTREMOVEPEER", n.addr)
            wait_until(lambda n=n: n.addr.encode() not in _peers(cluster), 20, "the removal")
            n.stop()
        wait_until(lambda: cluster.voters() == 3, 30, "three voters again")
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        current = cluster.wait_leader()
        seen: list[str] = []
        with current.client() as c:
            for wid in range(4):
                seen += [t for t in (c.get(f"log:{wid}") or b"").decode().split(",") if t]
        assert len(seen) == len(set(seen)), "a write was applied twice"
        missing = set(acked) - set(seen)
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
        assert set(seen) <= set(acked) | set(unknown)
        assert len(acked) > 100


def test_removed_node_stops_and_says_so_and_concurrent_changes_are_refused(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        victim = cluster.followers()[0]
        term_before = int(stats(leader)["term"])
        with leader.client() as c:
            pipe = c.pipeline(transaction=False)
            pipe.execute_command("RAFTREMOVEPEER", victim.addr)
            pipe.execute_command("RAFTADDPEER", "127.0.0.1:1")
            first, second = pipe.execute(raise_on_error=False)
        assert first in (b"OK", True)
        assert isinstance(second, redis.ResponseError)
        assert "already in progress" in str(second)
        wait_until(lambda: "removed from the cluster" in victim.log_path.read_text(), 10, "log")
        time.sleep(2.0)  # several election timeouts: the removed node must stay quiet
        assert int(stats(leader)["term"]) == term_before
        assert cluster.leader() is leader
        with leader.client() as c:
            assert c.set("still", "writable") is True
            peers = c.execute_command("RAFTPEERS")
        assert victim.addr.encode() not in peers


@pytest.mark.parametrize("who", ["follower", "leader"])
def test_a_node_that_lost_its_data_rejoins_as_a_new_learner(tmp_path: Path, who: str) -> None:
    """A node whose data dir is wiped comes back with --join: the leader
    removes the member it used to be (whose log and votes are gone) before
    admitting it again as a learner, which catches up and is promoted.  A
    wiped leader asks a follower, which may still name it as the leader."""
    with running_cluster(tmp_path, 3, ["--consistency", "low"]) as cluster:
        leader = cluster.wait_leader()
        fill(leader, 3000)
        victim = cluster.followers()[0] if who == "follower" else leader
        helper = next(n for n in cluster.nodes if n is not victim)
        victim.kill(signal.SIGKILL)
        shutil.rmtree(victim.dir)
        victim.start(join=helper.addr)
        leader = cluster.wait_leader(exclude=victim)
        wait_until(
            lambda: "lost its data: removed" in victim.log_path.read_text(errors="replace"),
            20,
            "the leader to remove the member the wiped node used to be",
        )
        wait_until(lambda: "joined the cluster" in victim.log_path.read_text(), 30, "the rejoin")
        wait_until(lambda: cluster.voters() == 3, 30, "the new node to be promoted")
        wait_until(lambda: caught_up(victim, leader), 30, "the new node to catch up")
        with leader.client() as c:
            assert c.set("after", "rejoin") is True
        wait_until(lambda: caught_up(victim, leader), 10, "the new node to apply the write")
        assert dump(victim) == dump(leader)
        assert len(dump(leader)) == 3001


def test_join_asks_every_address_in_turn(tmp_path: Path) -> None:
    """--join with several addresses: neither a dead one nor a node that is
    itself still joining (which says so) holds the join up; the node is
    admitted through the member further down the list."""
    with running_cluster(tmp_path, 1, ["--consistency", "low"]) as cluster:
        (leader,) = cluster.nodes
        dead, p_stuck, p_new = free_ports(3)
        stuck = cluster.add_node(p_stuck)  # joins through nothing that answers
        stuck.start(join=f"127.0.0.1:{dead}")
        with (
            stuck.client(socket_timeout=2) as c,
            pytest.raises(redis.ResponseError, match="itself still joining"),
        ):
            c.execute_command("RAFTJOIN", "127.0.0.1:1")
        new = cluster.add_node(p_new)
        new.start(join=f"{stuck.addr}, :{dead},{leader.addr}")
        wait_until(lambda: "joined the cluster" in new.log_path.read_text(), 30, "the join")
        text = new.log_path.read_text()
        assert "itself still joining" in text
        assert f"joined the cluster via {leader.addr}" in text
        wait_until(lambda: cluster.voters() == 2, 30, "the new node to be promoted")
        with leader.client() as c:
            peers = c.execute_command("RAFTPEERS")
            assert c.set("after", "join") is True
        assert new.addr.encode() in peers and stuck.addr.encode() not in peers
        wait_until(lambda: caught_up(new, leader), 10, "the new node to apply the write")
        assert dump(new) == dump(leader)


def test_a_node_killed_while_joining_goes_on_joining_when_restarted_without_join(
    tmp_path: Path,
) -> None:
    """Restarted without --join before the leader admitted it, a node whose
    data dir holds nothing yet must not found a cluster of its own under its
    address (it would acknowledge writes the real cluster never sees): it
    goes on asking to join, and once it can, joins."""
    with running_cluster(tmp_path, 1, ["--consistency", "low"]) as cluster:
        (leader,) = cluster.nodes
        p_gate, p_new = free_ports(2)
        new = cluster.add_node(p_new)
        new.start(join=f"127.0.0.1:{p_gate}")
        new.kill()  # still asking a port where nothing listens
        new.start()  # no --join
        assert new.state() == b"Follower"
        with new.client() as c, pytest.raises(redis.ResponseError, match="leader not known"):
            c.set("split", "brain")
        text = new.log_path.read_text()
        assert "bootstrapped" not in text
        assert "goes on asking" in text
        # What it asks is what it was told: the operator points it at the cluster.
        new.kill()
        new.start(join=leader.addr)
        wait_until(lambda: cluster.voters() == 2, 30, "the node to join and be promoted")
        with leader.client() as c:
            assert c.set("after", "join") is True
        wait_until(lambda: caught_up(new, leader), 10, "the node to apply the write")
        # Admitted and holding state: a plain restart restarts from it.
        new.kill()
        before = len(new.log_path.read_text())
        new.start()
        wait_until(lambda: caught_up(new, leader), 10, "the restarted node to catch up")
        assert "goes on asking" not in new.log_path.read_text()[before:]


def test_a_join_closes_the_peer_links_of_the_address_previous_process(tmp_path: Path) -> None:
    """Messages still on their way from an address's previous process (held
    by a stalled network) must not reach the leader once a new, empty
    process has joined under that address: its join closes them."""
    import socket

    def peer_link(peer_id: str) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", leader.port), timeout=10)
        s.sendall(b"*2\r\n$8\r\nRAFTPEER\r\n$%d\r\n%s\r\n" % (len(peer_id), peer_id.encode()))
        assert s.recv(100) == b"+OK\r\n"
        return s

    def closed(s: socket.socket) -> bool:
        try:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(100) == b""
        except ConnectionResetError:
            return True

    with running_cluster(tmp_path, 1) as cluster:
        (leader,) = cluster.nodes
        gone = "127.0.0.1:1"
        old, other = peer_link(gone), peer_link("127.0.0.1:2")
        try:
            with leader.client(socket_timeout=10) as new:
                # As --join sends it when the cluster has no peer secret.
                assert new.execute_command("RAFTJOIN", gone) == b"OK"
            assert closed(old)
            assert not closed(other)
        finally:
            old.close()
            other.close()
        with leader.client() as c:
            assert gone.encode() in c.execute_command("RAFTPEERS")


def test_a_malformed_join_address_is_refused_at_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "redraft.examples.clone", "-p", "0", "--dir", str(tmp_path),
         "--join", "10.0.0.1:7481,nonsense"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    assert "invalid address 'nonsense'" in out.stderr


def test_leader_removes_itself_and_hands_over(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        with leader.client() as c:
            assert c.execute_command("RAFTREMOVEPEER", leader.addr) in (b"OK", True)
        new = cluster.wait_leader(timeout=10, exclude=leader)
        with new.client() as c:
            assert c.set("after", "handover") is True
            peers = c.execute_command("RAFTPEERS")
        assert leader.addr.encode() not in peers and len(peers) == 4


def test_transfer_leadership_on_demand(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        leader = cluster.wait_leader()
        target = cluster.followers()[0]
        with leader.client() as c:
            assert c.execute_command("RAFTTRANSFERLEADER", target.addr) in (b"OK", True)
        assert cluster.wait_leader(timeout=5) is target
        with target.client() as c:
            assert c.execute_command("RAFTTRANSFERLEADER") in (b"OK", True)
        assert cluster.wait_leader(timeout=5) is not target


def test_restart_from_snapshot_with_a_corrupt_newest_snapshot(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 1) as cluster:
        node = cluster.nodes[0]
        fill(node, 1000, "a")
        with node.client() as c:
            c.execute_command("RAFTSNAPSHOT")
        fill(node, 1000, "b")
        with node.client() as c:
            c.execute_command("RAFTSNAPSHOT")
        snaps = sorted((node.dir / "snapshots").glob("*.rsnap"))
        assert len(snaps) == 2
        newest = max(snaps, key=lambda p: p.stat().st_mtime)
        data = bytearray(newest.read_bytes())
        data[len(data) // 2] ^= 0xFF
        newest.write_bytes(bytes(data))
        node.stop()
        node.start()
        wait_until(lambda: node.state() == b"Leader", 15, "restart")
        with node.client() as c:
            assert c.get("a:999") == b"value-999" and c.get("b:999") == b"value-999"
        assert "corrupt" in node.log_path.read_text().lower()


def test_snapshot_files_are_kept_to_the_limit(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 1) as cluster:
        node = cluster.nodes[0]
        for round_ in range(4):
            fill(node, 100, f"r{round_}")
            with node.client() as c:
                c.execute_command("RAFTSNAPSHOT")
        assert len(list((node.dir / "snapshots").glob("*.rsnap"))) == 2
    shutil.rmtree(tmp_path, ignore_errors=True)
