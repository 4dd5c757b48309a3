"""The single-client write round trip: redraft beside its floors; prints figures, asserts nothing.

Run: .venv/bin/python bench/bench_relay_floor.py [--rounds 3] [--requests 10000]

In one run, interleaved round by round, ``redis-benchmark -t set -c 1``
against:

- redis-server alone (``appendfsync everysec``): the reference;
- a *relay*: three uvloop processes passing the messages a replicated write
  needs and nothing else (the "leader" appends each request to a file,
  forwards it to two "followers", which append it to their own files and
  acknowledge, and answers ``+OK`` on the first acknowledgement).  No Raft,
  no parsing: what any three-process Python design pays on this machine;
- a one-node redraft clone (the request path and the log, no peers);
- a three-node redraft clone (durability and consistency medium).

Issue 6 asks for the three-node round trip within 3x of redis-server; the
relay shows how much of that budget three Python processes on these cores
take before any work is done.  Every process is stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_cluster import (
    ROOT,
    Processes,
    Row,
    Sample,
    redis_benchmark,
    start_redis,
    start_redraft,
)

from redraft.testing import free_ports, wait_for

ROW = Row("SET", 1, 1)


def _relay_follower(port: int, log_path: str) -> None:
    import uvloop

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    class Follower(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            os.write(fd, data)
            self.transport.write(b"a")

    async def main() -> None:
        await asyncio.get_running_loop().create_server(Follower, "127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(main())


def _relay_leader(port: int, followers: list[int], log_path: str) -> None:
    import uvloop

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    waiting: list[asyncio.Transport] = []  # clients owed an +OK, in order
    links: list[asyncio.Transport] = []
    answered = [0]

    class Ack(asyncio.Protocol):
        acked = 0

        def data_received(self, data: bytes) -> None:
            # A request is answered by its first acknowledgement, whichever
            # follower sends it (a majority of three: the leader and one).
            self.acked += len(data)
            while answered[0] < self.acked and waiting:
                answered[0] += 1
                waiting.pop(0).write(b"+OK\r\n")

    class Client(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            if data.startswith(b"*1\r\n$4\r\nPING") or data.startswith(b"*2\r\n$6\r\nCONFIG"):
                self.transport.write(b"+PONG\r\n" if b"PING" in data else b"*0\r\n")
                return
            for link in links:
                link.write(data)
            os.write(fd, data)
            waiting.append(self.transport)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for fport in followers:
            transport, _ = await loop.create_connection(Ack, "127.0.0.1", fport)
            links.append(transport)
        await loop.create_server(Client, "127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(main())


def start_relay(procs: Processes, base: Path) -> int:
    lport, f1, f2 = free_ports(3)
    me = [sys.executable, str(Path(__file__).resolve())]
    for name, fport in (("relay-f1", f1), ("relay-f2", f2)):
        procs.start(name, [*me, "--serve-follower", str(fport), str(base / f"{name}.wal")])
        wait_for(lambda fport=fport: _listening(fport), 15, f"{name} to listen")
    argv = [*me, "--serve-leader", str(lport), str(f1), str(f2), str(base / "relay-leader.wal")]
    procs.start_node("relay-leader", lport, argv)
    return lport


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=10000, help="redis-benchmark -n per run")
    ap.add_argument("--serve-follower", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--serve-leader", nargs=4, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.serve_follower:
        _relay_follower(int(ns.serve_follower[0]), ns.serve_follower[1])
        return 0
    if ns.serve_leader:
        port, f1, f2, path = ns.serve_leader
        _relay_leader(int(port), [int(f1), int(f2)], path)
        return 0

    with tempfile.TemporaryDirectory(prefix="redraft-floor-") as tmp:
        base = Path(tmp)
        (base / "one").mkdir()
        (base / "three").mkdir()
        groups = [Processes(base), Processes(base / "one"), Processes(base / "three")]
        procs, one, three = groups
        try:
            systems = {
                "redis-server": start_redis(procs, base, "redis", "everysec").ports[0],
                "relay (3 processes, no Raft)": start_relay(procs, base),
                "redraft, 1 node": start_redraft(
                    one, base / "one", 1, "medium", "medium", "fastlog"
                ).ports[0],
                "redraft, 3 nodes": start_redraft(
                    three, base / "three", 3, "medium", "medium", "fastlog"
                ).ports[0],
            }
            samples: dict[str, list[Sample]] = {name: [] for name in systems}
            for r in range(ns.rounds):
                order = list(systems)
                order = order[r % len(order) :] + order[: r % len(order)]
                for name in order:
                    sample, note = redis_benchmark(systems[name], ROW, ns.requests, 16, 120)
                    if sample is not None:
                        samples[name].append(sample)
                    got = f"{sample.ops:,.0f} ops/s, p50 {sample.p50:.3f} ms" if sample else note
                    print(f"round {r + 1}: {name}: {got}", flush=True)
        finally:
            for group in groups:
                group.stop_all()
    ref = statistics.median(s.p50 for s in samples["redis-server"])
    print(f"\n### SET -c 1 -P 1, {ns.rounds} round(s) of -n {ns.requests}\n")
    print("| system | ops/s | p50 ms | p99 ms | p50 / redis-server p50 |")
    print("|---|---|---|---|---|")
    for name, got in samples.items():
        if not got:
            print(f"| {name} | failed | | | |")
            continue
        p50 = statistics.median(s.p50 for s in got)
        print(
            f"| {name} | {statistics.median(s.ops for s in got):,.0f} | {p50:.3f} | "
            f"{statistics.median(s.p99 for s in got):.3f} | {p50 / ref:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
