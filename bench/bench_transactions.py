"""MULTI/EXEC of 10 SETs and BLPOP wake-up latency: redraft beside redis-server, in one run.

Starts a reference redis-server (``appendfsync everysec``, as bench_cluster)
and a 3-node redraft cluster of the clone (medium/medium, fastlog) on free
loopback ports, then, in interleaved rounds (redis-server, then redraft):

* **transactions, throughput**: ``--clients`` connections each keep
  ``--window`` transactions in flight (``MULTI``, 10 ``SET``s, ``EXEC``,
  pipelined); transactions per second, and the server CPU per transaction
  from ``/proc`` (redraft: the leader's, and all three nodes' added up);
* **transactions, latency**: one connection, one transaction at a time:
  p50 and p99 from sending MULTI to EXEC's reply;
* **BLPOP wake-up**: a client waits in ``BLPOP q 0``; another sends
  ``RPUSH q x``; the time from sending the RPUSH to the waiter holding its
  reply, p50 and p99.

Replies are framed with hiredis (what redis-py uses); every run is bounded
by ``--seconds``, and ``--max-minutes`` bounds the whole script.

    .venv/bin/python bench/bench_transactions.py             # 3 rounds
    .venv/bin/python bench/bench_transactions.py --quick     # a smoke run, well under a minute

Every process it starts is stopped by pid at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import hiredis
from bench_cluster import (
    Budget,
    Processes,
    System,
    log,
    machine_info,
    start_redis,
    start_redraft,
    workspace,
)

from redraft.testing import LOOPBACK

TICKS = os.sysconf("SC_CLK_TCK")


def encode(*args: str) -> bytes:
    parts = [a.encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)


def transaction(n: int) -> bytes:
    sets = b"".join(encode("SET", f"tx:{k}", str(n)) for k in range(10))
    return encode("MULTI") + sets + encode("EXEC")


REPLIES_PER_TX = 12


class Link:
    """One client connection with a hiredis reader."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader(replyError=lambda e: ValueError(e))
        self.errors = 0

    def replies(self) -> int:
        """Read what arrived; the number of whole replies in it."""
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed")
        self.reader.feed(data)
        n = 0
        while (r := self.reader.gets()) is not False:
            if isinstance(r, ValueError):
                self.errors += 1
            n += 1
        return n

    def wait(self, count: int, timeout: float = 10.0) -> None:
        self.sock.settimeout(timeout)
        while count > 0:
            count -= self.replies()

    def close(self) -> None:
        self.sock.close()


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


@dataclass
class Result:
    tx_per_s: list[float] = field(default_factory=list)
    cpu_us_leader: list[float] = field(default_factory=list)
    cpu_us_all: list[float] = field(default_factory=list)
    tx_p50: list[float] = field(default_factory=list)
    tx_p99: list[float] = field(default_factory=list)
    wake_p50: list[float] = field(default_factory=list)
    wake_p99: list[float] = field(default_factory=list)


def throughput(
    port: int, pids: list[int], leader_pid: int, args: argparse.Namespace
) -> tuple[float, float, float]:
    """Transactions per second and CPU microseconds per transaction (leader, all nodes)."""
    links = [Link(port) for _ in range(args.clients)]
    sel = selectors.DefaultSelector()
    inflight: dict[Link, int] = {}  # replies still owed
    received = 0
    half = max(1, args.window // 2)
    for link in links:
        sel.register(link.sock, selectors.EVENT_READ, link)
        link.sock.sendall(transaction(1) * args.window)
        inflight[link] = REPLIES_PER_TX * args.window
    cpu0, lead0 = cpu_seconds(pids), cpu_seconds([leader_pid])
    start = time.perf_counter()
    end = start + args.seconds
    while time.perf_counter() < end:
        for key, _ in sel.select(timeout=1.0):
            link = key.data
            got = link.replies()
            received += got
            inflight[link] -= got
            if inflight[link] <= REPLIES_PER_TX * (args.window - half):
                link.sock.sendall(transaction(2) * half)  # refill the window
                inflight[link] += REPLIES_PER_TX * half
    elapsed = time.perf_counter() - start
    cpu, lead = cpu_seconds(pids) - cpu0, cpu_seconds([leader_pid]) - lead0
    done = received / REPLIES_PER_TX
    for link in links:
        link.wait(inflight[link])
        link.close()
    errors = sum(link.errors for link in links)
    if errors:
        raise RuntimeError(f"{errors} error replies")
    return done / elapsed, lead / done * 1e6, cpu / done * 1e6


def tx_latency(port: int, args: argparse.Namespace) -> tuple[float, float]:
    link = Link(port)
    times = []
    deadline = time.monotonic() + args.seconds
    body = transaction(3)
    while time.monotonic() < deadline and len(times) < 5000:
        t0 = time.perf_counter()
        link.sock.sendall(body)
        link.wait(REPLIES_PER_TX)
        times.append(time.perf_counter() - t0)
    link.close()
    return pct(times, 50), pct(times, 99)


def wake_latency(port: int, args: argparse.Namespace) -> tuple[float, float]:
    waiter, pusher = Link(port), Link(port)
    times = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and len(times) < args.wakes:
        waiter.sock.sendall(encode("BLPOP", "bench:q", "0"))
        time.sleep(0.002)  # parked by now (on redraft: logged and applied)
        t0 = time.perf_counter()
        pusher.sock.sendall(encode("RPUSH", "bench:q", "x"))
        waiter.wait(1)
        times.append(time.perf_counter() - t0)
        pusher.wait(1)
    waiter.close()
    pusher.close()
    return pct(times, 50), pct(times, 99)


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * p // 100)] * 1000


def one_round(system: System, result: Result, args: argparse.Namespace) -> None:
    port = system.leader_port()
    assert port is not None
    pids = [p.pid for p in system.procs if p.pid is not None]
    leader_pid = next(p.pid for p in system.procs if getattr(p, "port", None) == port)
    assert leader_pid is not None
    rate, lead_us, all_us = throughput(port, pids, leader_pid, args)
    result.tx_per_s.append(rate)
    result.cpu_us_leader.append(lead_us)
    result.cpu_us_all.append(all_us)
    p50, p99 = tx_latency(port, args)
    result.tx_p50.append(p50)
    result.tx_p99.append(p99)
    w50, w99 = wake_latency(port, args)
    result.wake_p50.append(w50)
    result.wake_p99.append(w99)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(systems: list[System], results: dict[str, Result], args: argparse.Namespace) -> None:
    ref = results[systems[0].key]
    lines = [
        f"machine: {machine_info()}",
        f"clients {args.clients}, window {args.window} transactions each, {args.rounds} rounds "
        "(medians)",
        "",
        "| system | MULTI+10 SET+EXEC /s | ratio | CPU us/tx (leader) | CPU us/tx (all nodes)"
        " | tx p50 ms | tx p99 ms | BLPOP wake p50 ms | wake p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        r = results[system.key]
        ratio = med(r.tx_per_s) / med(ref.tx_per_s)
        lines.append(
            f"| {system.title} | {med(r.tx_per_s):,.0f} | {ratio:.2f} | "
            f"{med(r.cpu_us_leader):.0f} | {med(r.cpu_us_all):.0f} | "
            f"{med(r.tx_p50):.3f} | {med(r.tx_p99):.3f} | "
            f"{med(r.wake_p50):.3f} | {med(r.wake_p99):.3f} |"
        )
    print("\n".join(lines))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--window", type=int, default=16, help="transactions in flight per client")
    ap.add_argument("--wakes", type=int, default=300, help="BLPOP wake-ups measured per round")
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument("--quick", action="store_true", help="1 round of 1 s: a smoke run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.wakes = 1, 1.0, 50
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    budget = Budget(args.max_minutes)
    with workspace(args.keep) as base:
        procs = Processes(base)
        try:
            systems = [
                start_redis(procs, base, "redis", "everysec"),
                start_redraft(procs, base, 3, "medium", "medium", "fastlog"),
            ]
            results = {s.key: Result() for s in systems}
            for n in range(args.rounds):
                for system in systems:
                    if not budget.left():
                        break
                    log(f"round {n + 1}: {system.title}")
                    one_round(system, results[system.key], args)
            report(systems, results, args)
        finally:
            procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
