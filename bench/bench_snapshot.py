"""Snapshot figures for a 3-node clone cluster on loopback.

Three measurements, each printed as a small table:

* memory: N writes (default 1,000,000) over K keys (default 10,000); the
  in-memory log must stay bounded by the snapshot threshold, so the peak RSS
  of each node is reported next to the log length at the end;
* size: a large data set (default 1,000,000 keys of 1 KiB, about 1 GB of
  values) is loaded, then the time to snapshot it and the time for a new
  node to receive and install it (InstallSnapshot) are measured;
* latency: a single client writes at a steady rate and the p50/p99 of its
  write latency are compared with and without a snapshot running meanwhile.

Every process is started here, on free ports under a temporary directory,
and stopped at the end.  Example (the figures in BENCHMARKS.md):

    python bench/bench_snapshot.py --writes 1000000 --keys 10000 --big-keys 1000000
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from redraft.testing import ClusterNode, LocalCluster, wait_for

ROOT = Path(__file__).resolve().parent.parent


def start_cluster(base: Path, flags: list[str]) -> LocalCluster:
    return LocalCluster(base, 3, ["--loglevel", "verbose", *flags], cwd=ROOT).start()


def client(node: ClusterNode, timeout: float) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=timeout)


def stats(node: ClusterNode) -> dict[str, str]:
    return node.stats(timeout=30)


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in MiB."""
    cur = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cur, peak


def pipeline_writes(node: ClusterNode, n: int, keys: int, value: bytes, depth: int = 2000) -> float:
    """Write n SETs over `keys` keys in pipelines; returns the seconds taken."""
    start = time.monotonic()
    with client(node, 120) as c:
        for base in range(0, n, depth):
            pipe = c.pipeline(transaction=False)
            for i in range(base, min(n, base + depth)):
                pipe.set(f"key:{i % keys}", value)
            pipe.execute()
    return time.monotonic() - start


def bench_memory(base: Path, writes: int, keys: int, flags: list[str]) -> None:
    cluster = start_cluster(base / "mem", flags)
    try:
        leader = cluster.wait_leader()
        took = pipeline_writes(leader, writes, keys, b"v" * 64)
        time.sleep(1.0)
        print(
            f"\n# memory: {writes:,} writes over {keys:,} keys in {took:.1f}s ({writes / took:,.0f}/s)"
        )
        print(f"{'node':<22}{'rss MiB':>10}{'peak MiB':>10}{'log entries':>13}{'snapshot at':>13}")
        for n in cluster.nodes:
            assert n.proc is not None
            cur, peak = rss_mb(n.proc.pid)
            s = stats(n)
            in_log = int(s["last_log_index"]) - int(s["first_log_index"]) + 1
            print(
                f"{n.addr:<22}{cur:>10.0f}{peak:>10.0f}{in_log:>13,}{s['last_snapshot_index']:>13}"
            )
    finally:
        cluster.stop()


def bench_size(base: Path, big_keys: int, value_size: int, flags: list[str]) -> None:
    cluster = start_cluster(base / "big", [*flags, "--compaction-tail", "0"])
    try:
        leader = cluster.wait_leader()
        took = pipeline_writes(leader, big_keys, big_keys, b"x" * value_size, depth=500)
        mb = big_keys * value_size / 1e6
        print(
            f"\n# size: {big_keys:,} keys x {value_size} B (~{mb:,.0f} MB of values) loaded in {took:.1f}s"
        )
        t0 = time.monotonic()
        with client(leader, 600) as c:
            c.execute_command("RAFTSNAPSHOT")
        snap_s = time.monotonic() - t0
        s = stats(leader)
        snap_dir = leader.dir / "snapshots"
        size = max((p.stat().st_size for p in snap_dir.glob("*.rsnap")), default=0)
        print(
            f"snapshot on the leader: {snap_s:.1f}s, file {size / 1e6:,.0f} MB, index {s['last_snapshot_index']}"
        )
        for n in cluster.followers():
            with client(n, 600) as c:
                c.execute_command("RAFTSNAPSHOT")
        newcomer = cluster.add_node()
        t0 = time.monotonic()
        newcomer.start(join=leader.addr)
        target = int(stats(leader)["commit_index"])
        wait_for(
            lambda: int(stats(newcomer)["applied_index"]) >= target,
            1200,
            "the install",
            interval=0.2,
            retry_on=(redis.RedisError, OSError),
        )
        install_s = time.monotonic() - t0
        assert newcomer.proc is not None
        print(
            f"new node joined, received and installed it in {install_s:.1f}s "
            f"({size / 1e6 / install_s:,.0f} MB/s); its peak RSS {rss_mb(newcomer.proc.pid)[1]:,.0f} MiB"
        )
    finally:
        cluster.stop()


def _steady_writer(
    port: int, rate: float, seconds: float, out: list[tuple[float, float]], stop: threading.Event
) -> None:
    with redis.Redis(port=port, socket_timeout=10) as c:
        interval = 1.0 / rate
        t_end = time.monotonic() + seconds
        nxt = time.monotonic()
        i = 0
        while time.monotonic() < t_end and not stop.is_set():
            now = time.monotonic()
            if now < nxt:
                time.sleep(nxt - now)
            t0 = time.monotonic()
            c.set(f"lat:{i % 1000}", i)
            out.append((t0, time.monotonic() - t0))
            i += 1
            nxt += interval


def bench_latency(base: Path, keys: int, flags: list[str], rate: float) -> None:
    cluster = start_cluster(base / "lat", flags)
    try:
        leader = cluster.wait_leader()
        pipeline_writes(leader, keys, keys, b"y" * 1000, depth=1000)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        t = threading.Thread(target=_steady_writer, args=(leader.port, rate, 20.0, samples, stop))
        t.start()
        time.sleep(8.0)
        t0 = time.monotonic()
        with client(leader, 300) as c:
            c.execute_command("RAFTSNAPSHOT")
        t1 = time.monotonic()
        t.join()
        during = [lat for at, lat in samples if t0 <= at <= t1]
        before = [lat for at, lat in samples if at < t0 - 0.5]

        def pct(xs: list[float], q: float) -> float:
            return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) >= 2 else float("nan")

        print(
            f"\n# latency: one client writing {rate:.0f}/s; snapshot of {keys:,} keys took {t1 - t0:.2f}s"
        )
        print(f"{'window':<20}{'writes':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for name, xs in (("without snapshot", before), ("during snapshot", during)):
            mx = max(xs) * 1000 if xs else float("nan")
            print(f"{name:<20}{len(xs):>8}{pct(xs, 50):>9.2f}{pct(xs, 99):>9.2f}{mx:>9.2f}")
    finally:
        cluster.stop()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--writes", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--big-keys", type=int, default=1_000_000)
    ap.add_argument("--value-size", type=int, default=1000)
    ap.add_argument("--latency-keys", type=int, default=300_000)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--only", choices=("memory", "size", "latency"), default=None)
    ap.add_argument("--flag", action="append", default=[], help="extra node flag (repeatable)")
    ns = ap.parse_args()
    flags: list[str] = list(ns.flag)
    with tempfile.TemporaryDirectory(prefix="redraft-snapbench-") as tmp:
        base = Path(tmp)
        print(f"redraft snapshot bench, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores")
        if ns.only in (None, "memory"):
            bench_memory(base, ns.writes, ns.keys, flags)
        if ns.only in (None, "latency"):
            bench_latency(base, ns.latency_keys, flags, ns.rate)
        if ns.only in (None, "size"):
            bench_size(base, ns.big_keys, ns.value_size, flags)
    return 0


if __name__ == "__main__":
    _: Any = signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
