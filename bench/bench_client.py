"""What redraft.client costs: exactly-once writes next to a bare redis-py client, in one run.

Starts a reference redis-server (``appendfsync everysec``) and a 3-node
cluster of the clone (medium/medium), then, in interleaved rounds, runs the
same load through four clients: redis-py at redis-server, redis-py at the
redraft leader, :class:`redraft.client.Client` with sessions (every command
sent as ``RAFTSEQ``, given every node's address) and the same client with
``exactly_once=False``.  The load is ``--threads`` threads of this process,
each with a client of its own, sending INCR (or GET) on a key of its own for
``--seconds``.  Prints one Markdown table of medians: ops/s, p50 latency,
the ratio to redis-py at the same server, and the leader's CPU microseconds
per operation (from ``/proc``).

    .venv/bin/python bench/bench_client.py                 # INCR and GET, 3 rounds
    .venv/bin/python bench/bench_client.py --quick         # a smoke run, well under a minute

Every process it starts is stopped by pid at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from bench_cluster import Processes, System, log, start_redis, start_redraft, workspace

from redraft.client import Client

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Way:
    """One client of one system."""

    key: str
    title: str
    system: System
    make: Callable[[System], Any]
    reference: str = ""
    """The way this one is compared with (same server, bare redis-py)."""


@dataclass
class Result:
    ops: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def leader_pid(system: System) -> int | None:
    port = system.leader_port()
    for proc, p in zip(system.procs, system.ports, strict=True):
        if p == port:
            return proc.pid
    return None


def load(way: Way, command: str, threads: int, seconds: float) -> tuple[float, float, float]:
    """ops/s, p50 ms and the leader's CPU us per op of ``threads`` clients for ``seconds``."""
    clients = [way.make(way.system) for _ in range(threads)]
    for i, c in enumerate(clients):
        c.set(f"bench:{i}", 0)
    counts = [0] * threads
    samples: list[list[float]] = [[] for _ in range(threads)]
    stop = threading.Event()

    def work(i: int) -> None:
        c, key, lat = clients[i], f"bench:{i}", samples[i]
        call = c.incr if command == "INCR" else c.get
        while not stop.is_set():
            t = time.perf_counter()
            call(key)
            lat.append(time.perf_counter() - t)
            counts[i] += 1

    pid = leader_pid(way.system)
    cpu0 = cpu_seconds(pid) if pid else 0.0
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    for c in clients:
        c.close()
    total = sum(counts)
    p50 = statistics.median(x for lat in samples for x in lat) * 1000 if total else 0.0
    return total / elapsed, p50, cpu / total * 1e6 if total else 0.0


def ways(reference: System, cluster: System) -> list[Way]:
    def bare(system: System) -> redis.Redis:
        port = system.leader_port()
        assert port is not None
        return redis.Redis(port=port)

    def addresses(system: System) -> list[str]:
        return [f"127.0.0.1:{p}" for p in system.ports]

    return [
        Way("redis", "redis-py at redis-server", reference, bare),
        Way("leader", "redis-py at the redraft leader", cluster, bare),
        Way(
            "client",
            "redraft.client.Client (sessions)",
            cluster,
            lambda s: Client(*addresses(s)),
            reference="leader",
        ),
        Way(
            "bare-client",
            "redraft.client.Client(exactly_once=False)",
            cluster,
            lambda s: Client(*addresses(s), exactly_once=False),
            reference="leader",
        ),
    ]


def run(ns: argparse.Namespace, procs: Processes, base: Path) -> str:
    reference = start_redis(procs, base, "redis", "everysec")
    cluster = start_redraft(procs, base, 3, "medium", "medium", "fastlog")
    all_ways = ways(reference, cluster)
    results: dict[tuple[str, str], Result] = {}
    for r in range(ns.rounds):
        order = all_ways[r % len(all_ways) :] + all_ways[: r % len(all_ways)]
        for command in ns.commands:
            for way in order:
                ops, p50, cpu = load(way, command, ns.threads, ns.seconds)
                res = results.setdefault((command, way.key), Result())
                res.ops.append(ops)
                res.p50.append(p50)
                res.cpu_us.append(cpu)
                log(
                    f"round {r + 1} {command:<4} {way.key:<12} {ops:>9,.0f} ops/s  "
                    f"p50 {p50:.3f} ms  leader CPU {cpu:.1f} us/op"
                )
    return table(all_ways, ns.commands, results)


def table(all_ways: list[Way], commands: Sequence[str], results: dict[Any, Result]) -> str:
    lines = [
        "| command | client | ops/s | p50 ms | ratio to redis-py at the same server "
        "| ratio to redis-server | server CPU us/op |",
        "|---|---|---|---|---|---|---|",
    ]
    for command in commands:
        ref = statistics.median(results[(command, "redis")].ops)
        for way in all_ways:
            res = results[(command, way.key)]
            ops = statistics.median(res.ops)
            same = statistics.median(results[(command, way.reference)].ops) if way.reference else 0
            lines.append(
                f"| {command} | {way.title} | {ops:,.0f} | {statistics.median(res.p50):.3f} | "
                f"{ops / same:.2f} | {ops / ref:.2f} | {statistics.median(res.cpu_us):.1f} |"
                if same
                else f"| {command} | {way.title} | {ops:,.0f} | "
                f"{statistics.median(res.p50):.3f} | - | {ops / ref:.2f} | "
                f"{statistics.median(res.cpu_us):.1f} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0, help="per client, per round")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--commands", default="INCR,GET", type=lambda s: s.upper().split(","))
    p.add_argument("--quick", action="store_true", help="1 round of 1 s each")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.rounds, ns.seconds = 1, 1.0
    return ns


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {' '.join(sys.argv)}", flush=True)
    with workspace(ns.keep) as base:
        procs = Processes(base)
        try:
            print(run(ns, procs, base), flush=True)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
