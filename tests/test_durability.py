"""Durability and read consistency with real processes: kill -9, pauses, damaged files."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

from redraft.storage.fastlog import FastLogStore
from redraft.testing import node_command
from tests.cluster import NO_RETRY, ROOT, Cluster, free_ports, running_cluster, wait_until

pytestmark = pytest.mark.timeout(180)


class Writer(threading.Thread):
    """Writes unique keys to whoever leads, remembering what was acknowledged."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.name_ = name
        self.acked: dict[str, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        port = self.cluster.nodes[0].port
        seq = 0
        while not self.stop.is_set():
            key = f"{self.name_}:{seq}"
            value = f"v{seq}"
            try:
                with redis.Redis(
                    port=port, socket_timeout=1, socket_connect_timeout=0.5, retry=NO_RETRY
                ) as c:
                    while not self.stop.is_set():
                        if c.set(key, value):
                            self.acked[key] = value
                        seq += 1
                        key, value = f"{self.name_}:{seq}", f"v{seq}"
            except redis.ResponseError as exc:
                if str(exc).startswith("TRY "):
                    port = int(str(exc).rsplit(":", 1)[1])
                seq += 1
            except (redis.RedisError, OSError):
                # Unknown outcome: the write may or may not have happened.
                seq += 1
                port = random.choice(self.cluster.nodes).port
                time.sleep(0.05)


def _restart_all(cluster: Cluster) -> None:
    for n in cluster.nodes:
        n.start()
    cluster.wait_leader(timeout=20)


def test_high_durability_survives_kill_9_of_every_node(tmp_path: Path) -> None:
    """At durability HIGH, no acknowledged write is lost when every node dies at once."""
    with running_cluster(tmp_path, 3, ["--durability", "high"]) as cluster:
        rng = random.Random(7)
        acked: dict[str, str] = {}
        for rnd in range(3):
            writers = [Writer(cluster, f"r{rnd}w{i}") for i in range(4)]
            for w in writers:
                w.start()
            wait_until(lambda ws=writers: sum(len(w.acked) for w in ws) >= 200, 30, "writes")
            time.sleep(rng.uniform(0.0, 0.5))
            for n in cluster.nodes:
                n.kill(signal.SIGKILL)
            for w in writers:
                w.stop.set()
                w.join(timeout=5)
                acked.update(w.acked)
            _restart_all(cluster)
            leader = cluster.wait_leader(timeout=20)
            with leader.client(socket_timeout=10) as c:
                keys = sorted(acked)
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    values = c.mget(chunk)
                    missing = [
                        k for k, v in zip(chunk, values, strict=True) if v != acked[k].encode()
                    ]
                    assert not missing, f"round {rnd}: acknowledged writes lost: {missing[:10]}"


def test_medium_durability_kill_9_of_every_node_leaves_one_history(tmp_path: Path) -> None:
    """At MEDIUM a process crash loses nothing the OS got; all nodes agree afterwards."""
    with running_cluster(tmp_path, 3, ["--consistency", "low"]) as cluster:
        writers = [Writer(cluster, f"w{i}") for i in range(4)]
        for w in writers:
            w.start()
        wait_until(lambda: sum(len(w.acked) for w in writers) >= 500, 30, "writes")
        for n in cluster.nodes:
            n.kill(signal.SIGKILL)
        for w in writers:
            w.stop.set()
            w.join(timeout=5)
        _restart_all(cluster)
        leader = cluster.wait_leader(timeout=20)
        with leader.client() as c:
            c.set("marker", "after-restart")  # commits everything before it
            commit = int(c.execute_command("RAFTSTATS")[3])
        states = []
        for n in cluster.nodes:
            with n.client() as c:
                wait_until(
                    lambda c=c: c.get("marker") == b"after-restart", 15, f"{n.addr} to catch up"
                )
                keys = sorted(c.keys("*"))
                states.append(dict(zip(keys, c.mget(keys), strict=True)))
        assert commit > 0
        assert states[0] == states[1] == states[2]
        acked = {k: v for w in writers for k, v in w.acked.items()}
        lost = [k for k, v in acked.items() if states[0].get(k.encode()) != v.encode()]
        # kill -9 is not a power cut: the OS still had every write.
        assert not lost, f"acknowledged writes lost: {lost[:10]}"


@pytest.mark.parametrize("consistency", ["high", "medium"])
def test_paused_old_leader_never_serves_a_stale_read(tmp_path: Path, consistency: str) -> None:
    with running_cluster(tmp_path, 3, ["--consistency", consistency]) as cluster:
        old = cluster.wait_leader()
        with old.client() as c:
            # Pipelined reads see the writes before them and not those after.
            pipe = c.pipeline(transaction=False)
            for i in range(300):
                pipe.get("p")
                pipe.get("p")
                pipe.set("p", i)
            replies = pipe.execute()
            assert replies[0::3] == [None] + [str(i).encode() for i in range(299)]
            assert replies[1::3] == replies[0::3]
            c.set("k", "old")
        old.kill(signal.SIGSTOP)
        try:
            new = cluster.wait_leader(timeout=15, exclude=old)
            with new.client() as c:
                c.set("k", "new")
        finally:
            old.kill(signal.SIGCONT)
        with old.client(socket_timeout=5) as c:
            try:
                value = c.get("k")
            except redis.ResponseError as exc:
                assert str(exc).startswith(("TRY ", "leader not known")), exc
            else:
                assert value == b"new", "the deposed leader served a stale read"


def _start_single(directory: Path, port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run a node until it exits on its own (or 6 s pass) and return what it printed."""
    proc = subprocess.Popen(
        node_command(port, directory, *flags),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=6)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _fill_single_node(directory: Path, port: int, n: int, *flags: str) -> None:
    proc = subprocess.Popen(
        node_command(port, directory, *flags),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with redis.Redis(port=port, socket_timeout=5) as c:
            wait_until(lambda: c.execute_command("RAFTSTATE") == b"Leader", 15, "leadership")
            for i in range(n):
                c.set(f"key:{i}", f"value:{i}")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_opening_a_data_dir_with_another_backend_is_refused(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    _fill_single_node(tmp_path / "d", port, 10, "--backend", "lmdb")
    out = _start_single(tmp_path / "d", port, "--backend", "fastlog")
    assert out.returncode == 1
    assert "written by the lmdb backend" in out.stdout and "--backend lmdb" in out.stdout


def test_torn_tail_is_cut_and_mid_log_corruption_stops_the_node(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    _fill_single_node(tmp_path / "d", port, 50)
    wal = next((tmp_path / "d" / "log").glob("*.wal"))
    data = wal.read_bytes()
    store = FastLogStore(wal.parent)
    end = store.file_size  # where the records end and the zeros grown ahead begin
    store.close()
    # A half-written last record, as a power cut mid-write leaves it.
    wal.write_bytes(data[: end - 7] + bytes(len(data) - end + 7))
    proc = subprocess.Popen(
        node_command(port, tmp_path / "d"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with redis.Redis(port=port, socket_timeout=5) as c:
            wait_until(lambda: c.execute_command("RAFTSTATE") == b"Leader", 15, "restart")
            assert c.get("key:0") == b"value:0"
            assert c.get("key:48") == b"value:48"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert "torn" in out.lower() or "cut" in out.lower(), out
    # Now damage a record in the middle: the node must refuse to start.
    data = bytearray(wal.read_bytes())
    data[(end - 7) // 2] ^= 0xFF
    wal.write_bytes(bytes(data))
    result = _start_single(tmp_path / "d", port)
    assert result.returncode == 1, result.stdout
    assert str(wal) in result.stdout and "offset" in result.stdout
