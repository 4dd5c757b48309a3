"""A full disk stops writes on that node, not the node; a failed fsync still stops it.

Real processes whose data dirs are small tmpfs volumes (mounting needs root,
as in CI; elsewhere these tests skip and say why).  A volume is filled with
a filler file while writes go on, and freed again, as an operator would.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redraft.testing import LocalCluster
from tests import tmpfs
from tests.cluster import NO_RETRY, ROOT, Cluster, NodeProc, free_ports, started, wait_until
from tests.test_status_page import CHROMIUM, render

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(tmpfs.unavailable() is not None, reason=str(tmpfs.unavailable())),
]

VOLUME = 48 << 20
VALUE = b"v" * 512
# Small snapshots and a short tail: while a follower's disk is full the
# leader compacts past it, so it must catch up through a snapshot.
FLAGS = ["--snapshot-entries", "300", "--compaction-tail", "20"]


class Load:
    """Writes ``k<n>`` = ``<n>:<VALUE>`` to whichever node leads, recording what was acknowledged."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.acked: list[int] = []
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        n = 0
        node: NodeProc | None = None
        conn: redis.Redis | None = None
        while not self._stop.is_set():
            if conn is None:
                node = self._leader()
                if node is None:
                    time.sleep(0.05)
                    continue
                conn = node.client(socket_timeout=5, retry=NO_RETRY)
            n += 1
            try:
                conn.set(f"k{n}", b"%d:" % n + VALUE)
            except redis.ResponseError as exc:
                self.refused.append(str(exc))  # not applied (-TRY, -MISCONF)
                conn.close()
                conn = None
                continue
            except (redis.ConnectionError, redis.TimeoutError):
                conn.close()  # outcome unknown: neither counted nor checked
                conn = None
                continue
            self.acked.append(n)
        if conn is not None:
            conn.close()

    def _leader(self) -> NodeProc | None:
        with contextlib.suppress(redis.RedisError, OSError):
            found = self.cluster.leader()
            assert found is None or isinstance(found, NodeProc)
            return found
        return None


@contextlib.contextmanager
def cluster_on_volumes(
    base: Path, size: int = 3, extra: list[str] | None = None
) -> Iterator[tuple[Cluster, dict[int, tmpfs.Volume]]]:
    """A cluster whose nodes keep their data on volumes of their own (by node index)."""
    cluster = Cluster(base, size, [*FLAGS, *(extra or [])])
    with contextlib.ExitStack() as stack:
        volumes = {n.index: stack.enter_context(tmpfs.volume(n.dir, VOLUME)) for n in cluster.nodes}
        stack.enter_context(started(cluster))
        yield cluster, volumes


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        body: bytes = reply.read()
    return body.decode()


def stats(node: NodeProc) -> dict[str, str]:
    return node.stats()


def all_agree(cluster: Cluster) -> bool:
    digests = {tuple(n.call("RAFTDIGEST", timeout=5)) for n in cluster.nodes}
    return len(digests) == 1


def leader_of(cluster: Cluster) -> NodeProc:
    node = cluster.wait_leader()
    assert isinstance(node, NodeProc)
    return node


def check_acked(node: NodeProc, acked: list[int]) -> None:
    """Every acknowledged write is there, with its own value."""
    with node.client(socket_timeout=10) as c:
        for lo in range(0, len(acked), 500):
            part = acked[lo : lo + 500]
            got = c.mget([f"k{n}" for n in part])
            missing = [n for n, v in zip(part, got, strict=True) if v != b"%d:" % n + VALUE]
            assert not missing, f"acknowledged writes lost: {missing[:10]}"


@pytest.mark.parametrize("backend", ["fastlog", "lmdb", "leveldb"])
def test_a_follower_whose_disk_fills_stays_up_and_catches_up_without_a_restart(
    tmp_path: Path, backend: str
) -> None:
    with cluster_on_volumes(tmp_path, extra=["--backend", backend]) as (cluster, volumes):
        leader = cluster.wait_leader()
        follower = cluster.followers()[0]
        assert isinstance(follower, NodeProc) and isinstance(leader, NodeProc)
        pid = follower.pid
        with Load(cluster) as load:
            wait_until(lambda: len(load.acked) > 50, 30, "writes before the fill")
            volumes[follower.index].fill()
            wait_until(lambda: stats(follower)["disk_full"] == "1", 30, "the follower to see it")
            assert "No space left on device" in stats(follower)["disk_full_error"]
            assert follower.ping()
            with follower.client() as c:
                assert c.info()["disk_full"] == 1
            # The cluster goes on taking writes, well past the follower's log.
            before = len(load.acked)
            wait_until(lambda: len(load.acked) > before + 800, 60, "writes while it is full")
            assert stats(follower)["disk_full"] == "1"
            behind = int(stats(follower)["applied_index"])
            wait_until(
                lambda: int(stats(leader)["first_log_index"]) > behind + 1,
                30,
                "the leader to compact past the full follower",
            )
            volumes[follower.index].free()
            wait_until(lambda: stats(follower)["disk_full"] == "0", 30, "space to be seen back")
            after = len(load.acked)
            wait_until(lambda: len(load.acked) > after + 100, 30, "writes after space returned")
        wait_until(lambda: all_agree(cluster), 60, "every node to hold the same state")
        assert follower.pid == pid, "the follower was restarted"
        assert int(stats(follower)["disk_full_count"]) >= 1
        check_acked(leader_of(cluster), load.acked)


def test_a_leader_whose_disk_fills_hands_over_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    with cluster_on_volumes(tmp_path) as (cluster, volumes):
        old = cluster.wait_leader()
        assert isinstance(old, NodeProc)
        pid = old.pid
        with Load(cluster) as load:
            wait_until(lambda: len(load.acked) > 50, 30, "writes before the fill")
            volumes[old.index].fill()
            wait_until(lambda: stats(old)["disk_full"] == "1", 30, "the leader to see it")
            seen_full = time.monotonic()
            new = cluster.wait_leader(timeout=15, exclude=old)
            moved_in = time.monotonic() - seen_full
            before = len(load.acked)
            wait_until(lambda: len(load.acked) > before + 300, 60, "writes at the new leader")
            # While its disk is full, the old leader does not take leadership back.
            for _ in range(30):
                assert old.state() != b"Leader"
                assert stats(old)["disk_full"] == "1"
                time.sleep(0.1)
            volumes[old.index].free()
            wait_until(lambda: stats(old)["disk_full"] == "0", 30, "space to be seen back")
        wait_until(lambda: all_agree(cluster), 60, "every node to hold the same state")
        assert old.pid == pid
        assert new.addr != old.addr
        check_acked(leader_of(cluster), load.acked)
        print(f"leadership moved {moved_in:.2f} s after the leader saw its disk full")
        # One election timeout (1 s by default) for the handover, with room for a loaded machine.
        assert moved_in < 5.0


@pytest.mark.parametrize("backend", ["fastlog", "lmdb", "leveldb"])
def test_a_lone_node_on_a_full_disk_refuses_writes_serves_reads_and_resumes(
    tmp_path: Path, backend: str
) -> None:
    (metrics,) = free_ports(1)
    extra = ["--metrics-port", str(metrics), "--backend", backend]
    with cluster_on_volumes(tmp_path, size=1, extra=extra) as (cluster, volumes):
        node = leader_of(cluster)
        with node.client(retry=NO_RETRY) as c:
            assert c.set("kept", b"before")
        volumes[node.index].fill()
        error = ""
        stuck = 0
        for n in range(5000):
            # The write that found the disk full is in the log and commits once
            # space returns: it waits (its client times out, outcome unknown).
            # Those after it are refused before they reach the log.
            with node.client(retry=NO_RETRY, socket_timeout=1) as c:
                try:
                    c.set(f"f{n}", VALUE)
                except redis.ResponseError as exc:
                    error = str(exc)
                    break
                except redis.TimeoutError:
                    stuck += 1
        assert error.startswith("MISCONF disk full on "), error
        assert "No space left on device" in error
        with node.client(retry=NO_RETRY) as c:
            assert c.get("kept") == b"before"  # reads go on
            assert c.ping()
            with pytest.raises(redis.ResponseError, match=r"^MISCONF"):
                c.set("refused", b"x")
            assert node.stats()["disk_full"] == "1"
            # Operators see it in the metrics and on the status page too.
            scraped = http_get(metrics, "/metrics")
            assert "\nredraft_disk_full 1.0\n" in scraped
            assert "\nredraft_disk_full_events_total 1.0\n" in scraped
            status = json.loads(http_get(metrics, "/status.json"))
            assert "No space left on device" in status["disk_full"]["error"]
            if CHROMIUM is not None and backend == "fastlog":
                dom = render(f"http://127.0.0.1:{metrics}/", tmp_path / "profile")
                banner = dom[dom.index('id="alarm"') :][:600]
                assert 'class="on"' in banner and "Disk full since" in banner, banner
                assert "No space left on device" in banner
            volumes[node.index].free()
            wait_until(lambda: c.set("after", b"yes"), 30, "writes to resume")
            assert c.get("after") == b"yes"
            assert c.get("refused") is None
            assert node.stats()["disk_full"] == "0"
            assert json.loads(http_get(metrics, "/status.json"))["disk_full"] is None
        print(f"{stuck} write(s) were in the log when the disk filled")


def test_a_failed_fsync_stops_the_node_and_a_restart_holds_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(
        tmp_path,
        1,
        ["--durability", "high", "--loglevel", "verbose"],
        app="tests.eio_app",
        cwd=ROOT,
    )
    try:
        cluster.start()
        node = cluster.nodes[0]
        acked: list[int] = []
        with redis.Redis(port=node.port, socket_timeout=5, retry=NO_RETRY) as c:
            for n in range(200):
                assert c.set(f"k{n}", b"%d" % n)
                acked.append(n)
            Path(str(node.dir) + ".FAIL_FSYNC").touch()
            with pytest.raises((redis.ConnectionError, redis.ResponseError, redis.TimeoutError)):
                for n in range(200, 400):
                    c.set(f"k{n}", b"%d" % n)
                    acked.append(n)
        wait_until(lambda: not node.running, 30, "the node to stop")
        log = node.log_tail(80)
        assert "fsync of" in log and "fastlog.wal failed" in log, log
        assert "Input/output error" in log
        Path(str(node.dir) + ".FAIL_FSYNC").unlink()
        node.start()
        with redis.Redis(port=node.port, socket_timeout=5) as c:
            wait_until(lambda: c.get("k0") == b"0", 30, "the restarted node to serve")
            got = c.mget([f"k{n}" for n in acked])
            assert got == [b"%d" % n for n in acked]
    finally:
        cluster.stop()
