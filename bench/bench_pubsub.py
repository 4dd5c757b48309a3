"""PUBLISH throughput and delivery with 1 and 100 subscribers: redraft beside redis-server, in one run.

Starts a reference redis-server (``appendfsync everysec``, as bench_cluster)
and a 3-node redraft cluster of the clone (medium/medium, fastlog) on free
loopback ports.  For 1 and 100 subscribers (on the redraft leader, and on a
follower, where messages arrive through the applied log), in interleaved
rounds:

* **throughput**: redis-benchmark sends ``PUBLISH <channel> <16 bytes>``
  (``-c 50``, pipelined ``-P 16`` and not ``-P 1``) to redis-server and to
  the redraft leader, while one thread of this script reads every
  subscriber's socket and counts whole messages.  Reported: PUBLISH ops/s
  and p50, the ratio to redis-server, deliveries per second (from the first
  PUBLISH until the last subscriber had every message), the share of
  messages delivered, how long after the last PUBLISH was answered the
  last one arrived (lag), and the server CPU per PUBLISH from ``/proc``
  (every node's, added up: a follower with subscribers delivers too);
* **latency**: one client publishes 300 messages one at a time; the time
  from sending each to the last subscriber holding it, p50 and p99.

The size of each run is set from the rate of the previous one (a short
calibration first), so that each takes about ``--seconds``; every
subprocess has a timeout and ``--max-minutes`` bounds the whole run.

    .venv/bin/python bench/bench_pubsub.py              # 3 rounds of about 3 s per run
    .venv/bin/python bench/bench_pubsub.py --quick      # a smoke run, well under a minute

Every process it starts is stopped by pid at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

from redraft.testing import request, wait_for

CLK_TCK = os.sysconf("SC_CLK_TCK")
MESSAGE = b"0123456789abcdef"
SUBSCRIBERS = (1, 100)


@dataclass(frozen=True)
class Case:
    """One measurement: how many subscribers, on which node, how the publishers pipeline."""

    subscribers: int
    at: str
    """``leader`` or ``follower`` (redis-server: ``-``)."""
    pipeline: int

    @property
    def label(self) -> str:
        return f"{self.subscribers:>3} subs at {self.at:<8} -P {self.pipeline:<2}"


@dataclass
class Result:
    ops: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    deliveries: list[float] = field(default_factory=list)
    delivered: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def frame_of(channel: bytes) -> int:
    """The bytes of one RESP2 message on ``channel``."""
    return len(
        b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$16\r\n%b\r\n" % (len(channel), channel, MESSAGE)
    )


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def system_cpu(system: System) -> float:
    return sum(cpu_seconds(p.pid) for p in system.procs)


class Subscribers:
    """``n`` subscriber connections to ``port`` on ``channel``, read by one thread."""

    def __init__(self, port: int, channel: bytes, n: int) -> None:
        self.channel = channel
        self.size = frame_of(channel)
        self.socks: list[socket.socket] = []
        confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(channel), channel)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%b\r\n" % (len(channel), channel))
            got = b""
            while len(got) < len(confirm):
                got += s.recv(len(confirm) - len(got))
            assert got == confirm, got
            self.socks.append(s)
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _read(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self.socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        buf = bytearray(1 << 18)
        while not self.stop.is_set():
            for key, _ in sel.select(0.05):
                try:
                    n = key.fileobj.recv_into(buf)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if n == 0:
                    sel.unregister(key.fileobj)
                self.received += n
        sel.close()

    def messages(self) -> int:
        return self.received // self.size

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for s in self.socks:
            s.close()


def publish_benchmark(
    port: int, channel: bytes, pipeline: int, requests: int, timeout: float
) -> tuple[float, float] | None:
    """redis-benchmark's PUBLISH ops/s and p50 ms (None if it failed)."""
    cmd = [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "50",
        "-n", str(requests), "-P", str(pipeline), "--csv",
        "PUBLISH", channel.decode(), MESSAGE.decode(),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    for rec in csv.DictReader(io.StringIO(stdout)):
        if rec.get("test", "").startswith("PUBLISH"):
            return float(rec["rps"]), float(rec["p50_latency_ms"])
    return None


def published(port: int) -> int:
    """PUBLISHes served so far: Redis's command count, or what a redraft node applied."""
    text = request(port, "INFO", "commandstats").decode() + request(port, "INFO", "stats").decode()
    for line in text.splitlines():
        if line.startswith("cmdstat_publish:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
        if line.startswith("pubsub_messages_applied:"):
            return int(line.split(":", 1)[1])
    return 0


def drain(subs: Subscribers, want: int) -> float:
    """When the subscribers had ``want`` messages, or last made progress (5 s without any,
    or 120 s in all: a follower far behind catches up meanwhile)."""
    start = last_change = time.perf_counter()
    seen = subs.messages()
    while seen < want:
        time.sleep(0.002)
        now = time.perf_counter()
        got = subs.messages()
        if got != seen:
            seen, last_change = got, now
        elif now - last_change > 5 or now - start > 120:
            return last_change
    return time.perf_counter()


class Bench:
    """The systems, where their subscribers go, and the runs so far."""

    def __init__(self, reference: System, cluster: System, seconds: float) -> None:
        self.reference = reference
        self.cluster = cluster
        self.seconds = seconds
        self.rates: dict[tuple[str, Case], float] = {}
        self.results: dict[tuple[str, Case], Result] = {}
        self.runs = 0

    def ports(self, system: System, case: Case) -> tuple[int, int]:
        """The port PUBLISH goes to, and the one the subscribers connect to."""
        leader = wait_for(system.leader_port, 15, f"a leader of {system.title}")
        if case.at != "follower":
            return leader, leader
        return leader, next(p for p in system.ports if p != leader)

    def run(self, system: System, case: Case) -> None:
        self.runs += 1
        channel = b"ch%06d" % self.runs
        pub_port, sub_port = self.ports(system, case)
        key = (system.key, case)
        rate = self.rates.get(key)
        requests = 5000 if rate is None else max(2000, int(rate * self.seconds))
        subs = Subscribers(sub_port, channel, case.subscribers)
        try:
            subs.start()
            before = published(pub_port)
            cpu0 = system_cpu(system)
            t0 = time.perf_counter()
            got = publish_benchmark(pub_port, channel, case.pipeline, requests, 120)
            t_end = time.perf_counter()
            # redis-benchmark may send a few more than -n when it pipelines.
            requests = published(pub_port) - before
            want = requests * case.subscribers
            t_all = drain(subs, want)
            cpu = system_cpu(system) - cpu0
        finally:
            subs.close()
        if got is None:
            log(f"  {system.key:<8} {case.label} FAILED")
            return
        ops, p50 = got
        self.rates[key] = ops
        if rate is None:
            log(f"  {system.key:<8} {case.label} calibrated: {ops:,.0f} PUBLISH/s")
            self.run(system, case)
            return
        res = self.results.setdefault(key, Result())
        delivered = subs.messages() / want
        res.ops.append(ops)
        res.p50.append(p50)
        res.deliveries.append(subs.messages() / (t_all - t0))
        res.delivered.append(delivered)
        res.lag_ms.append((t_all - t_end) * 1000)
        res.cpu_us.append(cpu / requests * 1e6)
        log(
            f"  {system.key:<8} {case.label} {ops:>10,.0f} PUBLISH/s  p50 {p50:.3f} ms  "
            f"{res.deliveries[-1]:>11,.0f} deliveries/s ({delivered:.1%})  "
            f"lag {res.lag_ms[-1]:.0f} ms  CPU {res.cpu_us[-1]:.1f} us/PUBLISH"
        )


def latency(port: int, sub_port: int, channel: bytes, n: int, count: int) -> tuple[float, float]:
    """p50 and p99 ms from sending a PUBLISH to the last of ``n`` subscribers holding it."""
    size = frame_of(channel)
    subs = Subscribers(sub_port, channel, n)
    pub = socket.create_connection(("127.0.0.1", port), timeout=10)
    pub.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$16\r\n%b\r\n" % (len(channel), channel, MESSAGE)
    samples: list[float] = []
    try:
        for _ in range(count):
            t = time.perf_counter()
            pub.sendall(req)
            for s in subs.socks:
                left = size
                while left:
                    left -= len(s.recv(left))
            samples.append((time.perf_counter() - t) * 1000)
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += pub.recv(64)
    finally:
        pub.close()
        subs.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def cases(pipelines: Sequence[int]) -> list[Case]:
    return [Case(n, at, p) for p in pipelines for n in SUBSCRIBERS for at in ("leader", "follower")]


def throughput_table(bench: Bench, pipelines: Sequence[int]) -> str:
    lines = [
        "| subscribers | at | -P | system | PUBLISH ops/s | p50 ms | ratio to redis-server "
        "| deliveries/s | delivered | lag ms | server CPU us/PUBLISH |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases(pipelines):
        ref_case = Case(case.subscribers, "-", case.pipeline)
        rows = [("redis-server", bench.reference.key, ref_case), ("redraft", "redraft", case)]
        if case.at == "follower":
            rows = rows[1:]
        ref = bench.results.get(("redis", ref_case))
        for title, key, c in rows:
            res = bench.results.get((key, c))
            if res is None or not res.ops:
                continue
            ops = statistics.median(res.ops)
            ratio = f"{ops / statistics.median(ref.ops):.2f}" if ref and ref.ops else "-"
            lines.append(
                f"| {c.subscribers} | {c.at} | {c.pipeline} | {title} | {ops:,.0f} | "
                f"{statistics.median(res.p50):.3f} | {ratio} | "
                f"{statistics.median(res.deliveries):,.0f} | {min(res.delivered):.1%} | "
                f"{statistics.median(res.lag_ms):.0f} | {statistics.median(res.cpu_us):.1f} |"
            )
    return "\n".join(lines)


def run(ns: argparse.Namespace, procs: Processes, base: Path) -> str:
    budget = Budget(ns.max_minutes)
    reference = start_redis(procs, base, "redis", "everysec")
    cluster = start_redraft(procs, base, 3, "medium", "medium", "fastlog")
    bench = Bench(reference, cluster, ns.seconds)
    for r in range(ns.rounds):
        log(f"round {r + 1}/{ns.rounds}")
        for case in cases(ns.pipelines):
            if not budget.left():
                break
            if case.at == "leader":
                bench.run(reference, Case(case.subscribers, "-", case.pipeline))
            bench.run(cluster, case)
    lat = ["| subscribers | system | at | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for n in SUBSCRIBERS:
        if not budget.left():
            break
        port = reference.ports[0]
        p50, p99 = latency(port, port, b"lat-r-%d" % n, n, ns.latency_count)
        lat.append(f"| {n} | redis-server | - | {p50:.3f} | {p99:.3f} |")
        for at in ("leader", "follower"):
            pub_port, sub_port = bench.ports(cluster, Case(n, at, 1))
            p50, p99 = latency(pub_port, sub_port, b"lat-%s-%d" % (at[0].encode(), n), n,
                               ns.latency_count)  # fmt: skip
            lat.append(f"| {n} | redraft | {at} | {p50:.3f} | {p99:.3f} |")
    leader = wait_for(cluster.leader_port, 15, "a leader")
    stats = request(leader, "INFO", "stats").decode()
    log(" ".join(line for line in stats.splitlines() if line.startswith("pubsub")))
    return throughput_table(bench, ns.pipelines) + "\n\n" + "\n".join(lat)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="about how long each run lasts")
    p.add_argument("--pipelines", default="16,1", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--latency-count", type=int, default=300)
    p.add_argument("--max-minutes", type=float, default=15.0)
    p.add_argument("--quick", action="store_true", help="1 round of about 1 s per run")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.rounds, ns.seconds, ns.latency_count = 1, 1.0, 50
    return ns


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    meta = machine_info()
    print(
        f"# {meta['date']}: {meta['nproc']} CPUs ({meta['cpu']}), Python {meta['python']}, "
        f"{meta['redis']}\n# {' '.join([Path(sys.executable).name, *sys.argv])}",
        flush=True,
    )
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
