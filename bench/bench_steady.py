"""Steady-state writes: a redraft cluster against redis-server (and another tree), under load.

``bench_cluster.py`` times whole redis-benchmark runs, which at ``-P 16``
last about a second on this project's machines: a young cluster costs more
per write than a warm one (BENCHMARKS.md), and the figures move by 10 %
from one run to the next.  This script measures
the middle of a long run instead: it starts redis-benchmark with far more
requests than it can send, lets ``--warmup`` seconds pass, then reads
``/proc`` and ``RAFTSTATS`` (``INFO`` for redis-server) before and after
``--seconds`` more, and stops the load.  Per system and round: writes per
second, CPU microseconds per write of every server process (the leader
first), and for redraft the fsyncs and persist groups per second.

The systems take turns in every round: redis-server (``appendfsync
everysec``, or ``always`` at ``--durability high``), this tree's cluster,
and with ``--against SRC`` the cluster of another tree's ``src`` directory
(its C extensions built), so a change is measured beside what it changes.

    .venv/bin/python bench/bench_steady.py --durability high --rounds 3
    .venv/bin/python bench/bench_steady.py --pipeline 1 --against /tmp/base/src

Every process it starts is stopped by pid at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench_cluster import (
    Processes,
    System,
    _terminate,
    cpu_seconds,
    markdown,
    start_redis,
    start_redraft,
    stats,
    workspace,
)

from redraft.testing import request


@dataclass
class Reading:
    """One system's figures over one measured window."""

    ops: float
    cpu_us: list[float]
    fsyncs: float | None = None
    groups: float | None = None


@dataclass
class Column:
    """A system and its readings, by round (a round whose run failed has none)."""

    title: str
    start: Callable[[], System]
    readings: dict[int, Reading] = field(default_factory=dict)


def redis_writes(port: int) -> int:
    info = request(port, "INFO", "commandstats")
    for line in bytes(info).decode().splitlines():
        if line.startswith("cmdstat_set:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


def writes_and_io(system: System, port: int) -> tuple[int, float | None, float | None]:
    if not system.raft_stats:
        return redis_writes(port), None, None
    st = stats(port)
    return int(st["commands_applied"]), float(st["fsyncs"]), float(st["persist_groups"])


def measure(system: System, ns: argparse.Namespace) -> Reading | None:
    """Load ``system`` with SETs and read the figures of the window after the warm-up."""
    port = system.leader_port()
    if port is None:
        return None
    order = sorted(system.procs, key=lambda p: getattr(p, "port", port) != port)
    load = subprocess.Popen(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set", "-q",
         "-c", str(ns.clients), "-P", str(ns.pipeline), "-n", "2000000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(ns.warmup)
        cpu0 = [cpu_seconds(p) or 0.0 for p in order]
        w0, f0, g0 = writes_and_io(system, port)
        t0 = time.monotonic()
        time.sleep(ns.seconds)
        cpu1 = [cpu_seconds(p) or 0.0 for p in order]
        w1, f1, g1 = writes_and_io(system, port)
        took = time.monotonic() - t0
        if not system.alive():
            return None  # a node died: its CPU cannot be read
    finally:
        load.send_signal(signal.SIGINT)
        try:
            load.wait(timeout=10)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()
    writes = max(1, w1 - w0)
    per = [(b - a) / writes * 1e6 for a, b in zip(cpu0, cpu1, strict=True)]
    fsyncs = None if f0 is None or f1 is None else (f1 - f0) / took
    groups = None if g0 is None or g1 is None else (g1 - g0) / took
    return Reading(writes / took, per, fsyncs, groups)


def columns(ns: argparse.Namespace, procs: Processes, base: Path) -> list[Column]:
    fsync = "always" if ns.durability == "high" else "everysec"
    n = itertools.count()

    def redraft(src: Path | None) -> Callable[[], System]:
        return lambda: start_redraft(
            procs, base / f"r{next(n)}", 3, ns.durability, "medium", "fastlog", src=src
        )

    cols = [
        Column(
            f"redis-server ({fsync})", lambda: start_redis(procs, base, f"redis{next(n)}", fsync)
        ),
        Column("redraft", redraft(None)),
    ]
    if ns.against is not None:
        cols.append(Column(f"redraft of {ns.against}", redraft(ns.against)))
    return cols


def run(ns: argparse.Namespace, procs: Processes, base: Path) -> list[Column]:
    cols = columns(ns, procs, base)
    for rnd in range(ns.rounds):
        for col in cols:
            system = col.start()
            try:
                reading = measure(system, ns)
            finally:
                for proc in system.procs:
                    procs.stop(proc)
            if reading is not None:
                col.readings[rnd] = reading
                cpu = " ".join(f"{c:.2f}" for c in reading.cpu_us)
                print(
                    f"round {rnd + 1} {col.title}: {reading.ops:,.0f} writes/s, cpu us/write {cpu}"
                )
    return cols


def table(cols: list[Column]) -> str:
    ref = cols[0].readings
    lines = []
    for col in cols:
        rs = list(col.readings.values())
        if not rs:
            continue
        ratio = [r.ops / ref[k].ops for k, r in col.readings.items() if k in ref and ref[k].ops]
        cpu = [statistics.median(c) for c in zip(*(r.cpu_us for r in rs), strict=True)]
        fsyncs = [r.fsyncs for r in rs if r.fsyncs is not None]
        groups = [r.groups for r in rs if r.groups is not None]
        lines.append([
            col.title,
            f"{statistics.median(r.ops for r in rs):,.0f}",
            f"{statistics.median(ratio):.2f}" if ratio else "",
            " / ".join(f"{c:.2f}" for c in cpu),
            f"{statistics.median(fsyncs):,.0f}" if fsyncs else "",
            f"{statistics.median(groups):,.0f}" if groups else "",
        ])  # fmt: skip
    header = [
        "system", "writes/s", "ratio to redis", "CPU us/write (leader / followers)",
        "fsyncs/s (leader)", "persist groups/s (leader)",
    ]  # fmt: skip
    return markdown(header, lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--durability", choices=("low", "medium", "high"), default="medium")
    ap.add_argument("--pipeline", type=int, default=16, help="redis-benchmark -P (default 16)")
    ap.add_argument("--clients", type=int, default=50, help="redis-benchmark -c (default 50)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds measured per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another tree's src directory, as a third column")
    ns = ap.parse_args(argv)
    if ns.rounds < 1 or ns.seconds <= 0 or ns.warmup < 0:
        ap.error("--rounds must be at least 1, --seconds positive, --warmup not negative")
    return ns


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    with workspace(keep=False) as base:
        procs = Processes(base)
        try:
            cols = run(ns, procs, base)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
    print(f"\n### steady state, SET -P {ns.pipeline} -c {ns.clients}, durability {ns.durability}, "
          f"{ns.rounds} round(s) of {ns.seconds:g} s after {ns.warmup:g} s\n")  # fmt: skip
    print(table(cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
