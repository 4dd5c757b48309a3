"""redraft against redis-server (and PySyncObj) under redis-benchmark, in one run.

Starts an N-node cluster of the Redis clone and a reference redis-server
(``appendonly yes``, ``appendfsync everysec``; plus one with ``appendfsync
always`` at ``--durability high``) on free loopback ports in a temporary
directory, runs redis-benchmark against the redraft leader and the reference
in interleaved rounds, and prints one Markdown table of medians: ops/s, p50
and p99 latency, the ratio redraft / redis-server (the median of the
per-round ratios), issue 6's target for it, and the fsyncs per acknowledged
SET on the leader and the followers.

    .venv/bin/python bench/bench_cluster.py                  # defaults: 3 nodes, medium/medium, fastlog
    .venv/bin/python bench/bench_cluster.py --durability high
    .venv/bin/python bench/bench_cluster.py --consistency high
    .venv/bin/python bench/bench_cluster.py --value-size 16,1024,16384
    .venv/bin/python bench/bench_cluster.py --pysyncobj     # add a 3-node PySyncObj column
    .venv/bin/python bench/bench_cluster.py --proxy         # --redirect proxy: add a column at a follower
    .venv/bin/python bench/bench_cluster.py --matrix        # durability x backend, SET only
    .venv/bin/python bench/bench_cluster.py --tests set --clients 10,50,200  # batch size by load
    .venv/bin/python bench/bench_cluster.py --quick         # smoke run, well under a minute
    .venv/bin/python bench/bench_cluster.py --against src   # compiled (the default) against pure

The nodes run the hot modules compiled with mypyc, as a regular install
does (built into the run's directory first, about a minute); ``--pure``
runs this checkout's modules as an editable install does.

Every process it starts is stopped by pid at the end, on error and on
Ctrl-C; every subprocess has a timeout, and ``--max-minutes`` bounds the
whole run (rows not reached by then are left out of the table).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import importlib.util
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from redraft.storage import BACKENDS
from redraft.testing import (
    LocalCluster,
    LocalProcess,
    NodeProcess,
    free_ports,
    request,
    wait_for,
)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LEVELS = ("low", "medium", "high")

# PySyncObj's settings for the comparison (see BENCHMARKS.md): batching on,
# as its documentation advises for throughput, entries sent every 2 ms rather
# than with the 100 ms heartbeat, and a poll timeout no longer than that
# period so a lone write does not sit in the log until the next wake-up.
PYSYNCOBJ_ARGS = "--batch --period 0.002 --tick 0.002"


class Row(NamedTuple):
    """One redis-benchmark configuration."""

    test: str
    pipeline: int
    clients: int

    @property
    def label(self) -> str:
        return f"{self.test} -P {self.pipeline} -c {self.clients}"


ROWS = (
    Row("SET", 1, 50),
    Row("SET", 16, 50),
    Row("GET", 1, 50),
    Row("GET", 16, 50),
    Row("SET", 1, 1),
    Row("GET", 1, 1),
)
MATRIX_ROWS = (Row("SET", 1, 50), Row("SET", 16, 50))


@dataclass
class Sample:
    """One redis-benchmark run."""

    ops: float
    p50: float
    p99: float
    round: int = 0
    errors: bool = False
    fsyncs_leader: float | None = None
    fsyncs_followers: list[float] = field(default_factory=list)
    writes_per_entry: float | None = None  # commands applied / entries the leader proposed
    cpu_leader: float | None = None  # us of CPU per request, the node benchmarked
    cpu_all: float | None = None  # the same, summed over the system's processes
    cpu_followers: list[float] = field(default_factory=list)  # the same, each other node


@dataclass
class Cell:
    """The samples of one system on one row, and their medians."""

    samples: list[Sample] = field(default_factory=list)
    failures: int = 0

    def median(self, attr: str) -> float | None:
        values = [getattr(s, attr) for s in self.samples if getattr(s, attr) is not None]
        return statistics.median(values) if values else None

    @property
    def errors(self) -> bool:
        return any(s.errors for s in self.samples) or self.failures > 0

    def followers_fsyncs(self) -> float | None:
        values = [max(s.fsyncs_followers) for s in self.samples if s.fsyncs_followers]
        return statistics.median(values) if values else None

    def followers_cpu(self) -> list[float]:
        """Each follower's CPU per request, median over the rounds (busiest first)."""
        per = [sorted(s.cpu_followers, reverse=True) for s in self.samples if s.cpu_followers]
        return [statistics.median(col) for col in zip(*per, strict=False)] if per else []


# --------------------------------------------------------------- processes


class Processes:
    """Every process this script started; stopped by pid, never by name.

    Each has a session of its own: Ctrl-C reaches this script only, which
    then stops its children in order.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.running: list[LocalProcess] = []

    def track(self, proc: LocalProcess) -> None:
        """Stop ``proc`` with the others (it may not be started yet)."""
        self.running.append(proc)

    def start(self, name: str, cmd: Sequence[str]) -> LocalProcess:
        proc = LocalProcess(self.base / f"{name}.log", cwd=ROOT, new_session=True)
        self.track(proc)
        proc.launch(cmd)
        return proc

    def start_node(self, name: str, port: int, cmd: Sequence[str]) -> NodeProcess:
        """Start a server that answers PING on ``port``, and wait until it does."""
        proc = NodeProcess(port, self.base / f"{name}.log", cwd=ROOT, new_session=True)
        self.track(proc)
        proc.launch(cmd)
        proc.wait_ready()
        return proc

    def stop(self, proc: LocalProcess) -> None:
        if proc in self.running:
            proc.stop()
            self.running.remove(proc)

    def stop_all(self) -> None:
        while self.running:
            self.running.pop().stop()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(proc: LocalProcess) -> float | None:
    """The CPU time (user + system) ``proc`` has used, None if it cannot be read."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stats(port: int) -> dict[str, str]:
    flat = request(port, "RAFTSTATS")
    return {k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)}


# ---------------------------------------------------------------- systems


@dataclass
class System:
    """Something redis-benchmark can be pointed at."""

    key: str
    title: str
    ports: list[int]
    procs: list[LocalProcess]
    raft_stats: bool = False  # answers RAFTSTATS (redraft)

    def leader_port(self) -> int | None:
        """The port of the node that says it leads (None if none does right now)."""
        if len(self.ports) == 1:
            return self.ports[0]
        for port in self.ports:
            with contextlib.suppress(OSError):
                if request(port, "RAFTSTATE", timeout=1.0) == b"Leader":
                    return port
        return None

    def raft_stats_all(self) -> dict[int, dict[str, str]] | None:
        """RAFTSTATS of every node, or None if a node does not answer."""
        try:
            return {p: stats(p) for p in self.ports}
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        return all(p.running for p in self.procs)


@dataclass
class AtFollower(System):
    """The same redraft cluster, reached at a follower (``--redirect proxy`` forwards)."""

    def leader_port(self) -> int | None:
        leader = super().leader_port()
        if leader is None:
            return None
        return next(p for p in self.ports if p != leader)


def start_redis(procs: Processes, base: Path, name: str, fsync: str) -> System:
    (port,) = free_ports(1)
    data = base / name
    data.mkdir()
    proc = procs.start_node(
        name,
        port,
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", fsync,
            "--dir", str(data), "--daemonize", "no",
        ],
    )  # fmt: skip
    return System(name, f"redis-server ({fsync})", [port], [proc])


def start_redraft(
    procs: Processes,
    base: Path,
    nodes: int,
    durability: str,
    consistency: str,
    backend: str,
    extra: Sequence[str] = (),
    src: Path | None = None,
) -> System:
    """A redraft cluster of the clone; of the tree whose ``src`` directory is given (its
    extensions built), instead of this one, for ``--against``."""
    tag = f"redraft-{durability}-{consistency}-{backend}" + ("-against" if src else "")
    flags = ["--loglevel", "warning", "--durability", durability, "--consistency", consistency]
    flags += ["--backend", backend, *extra]
    env = None if src is None else dict(os.environ, PYTHONPATH=str(src))
    cluster = LocalCluster(base / tag, nodes, flags, cwd=ROOT, env=env, new_session=True)
    for node in cluster.nodes:
        procs.track(node)
    cluster.start(timeout=60, lead_timeout=20)
    title = f"redraft ({nodes} nodes, {durability}/{consistency}, {backend})"
    ports = [n.port for n in cluster.nodes]
    key, title = ("redraft", title) if src is None else ("against", f"{title} of {src}")
    return System(key, title, ports, list(cluster.nodes), raft_stats=True)


def start_pysyncobj(procs: Processes, base: Path, args: str) -> System:
    ports = free_ports(6)
    client_ports, raft_ports = ports[:3], ports[3:]
    started: list[LocalProcess] = []
    for i in range(3):
        cmd = [
            sys.executable, str(BENCH_DIR / "pysyncobj_server.py"),
            "--port", str(client_ports[i]), "--raft-port", str(raft_ports[i]),
            *args.split(),
        ]  # fmt: skip
        for j in range(3):
            if j != i:
                cmd += ["--partner", f"127.0.0.1:{raft_ports[j]}"]
        started.append(procs.start(f"pysyncobj-node{i + 1}", cmd))
    system = System("pysyncobj", "PySyncObj (3 nodes)", client_ports, started)

    def settled() -> bool:
        states = sorted(request(p, "RAFTSTATE", timeout=1.0) for p in client_ports)
        return states == [b"Follower", b"Follower", b"Leader"]

    wait_for(settled, 30, "a PySyncObj leader")
    leader = system.leader_port() or client_ports[0]
    wait_for(
        lambda: request(leader, "SET", "probe", "1", timeout=5) == b"OK", 30, "a PySyncObj write"
    )
    return system


# ---------------------------------------------------------- redis-benchmark


def redis_benchmark(
    port: int, row: Row, requests: int, size: int, timeout: float, random_keys: int = 0
) -> tuple[Sample | None, str]:
    """One run; the sample (None if it failed) and a note about what went wrong.

    ``random_keys``: redis-benchmark's ``-r`` (0: none, so ``__rand_int__`` is
    sent as it is and SADD and ZADD add the same member every time).
    """
    cmd = [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", row.test.lower(),
        "-c", str(row.clients), "-n", str(requests), "-P", str(row.pipeline),
        "-d", str(size), "--csv",
    ]  # fmt: skip
    if random_keys:
        cmd += ["-r", str(random_keys)]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, f"timed out after {timeout:.0f}s"
    except BaseException:
        # Interrupted: reap it before going on with the shutdown.
        proc.kill()
        proc.wait()
        raise
    for rec in csv.DictReader(io.StringIO(stdout)):
        # LRANGE_100's line is "LRANGE_100 (first 100 elements)".
        name = rec.get("test") or ""
        if name == row.test or (name.startswith(row.test + " (") and "needed" not in name):
            errors = "Error from server" in stdout + stderr
            sample = Sample(
                ops=float(rec["rps"]),
                p50=float(rec["p50_latency_ms"]),
                p99=float(rec["p99_latency_ms"]),
                errors=errors,
            )
            return sample, "errors from server" if errors else ""
    tail = (stdout + stderr).strip().splitlines()[-3:]
    return None, f"exit {proc.returncode}: {' | '.join(tail)}"


def run_one(
    system: System,
    row: Row,
    requests: int,
    size: int,
    rnd: int,
    cells: dict[str, Cell],
    random_keys: int = 0,
) -> None:
    """Run ``row`` once against ``system`` and add the sample to its cell."""
    cell = cells.setdefault(system.key, Cell())
    if not system.alive():
        cell.failures += 1
        log(f"  {system.key:<13} {row.label:<18} skipped: a process of it exited")
        return
    try:
        port: int = wait_for(system.leader_port, 15, f"a leader of {system.title}")
    except TimeoutError as exc:
        cell.failures += 1
        log(f"  {system.key:<13} {row.label:<18} skipped: {exc}")
        return
    measure_fsyncs = system.raft_stats and row.test == "SET"
    before = system.raft_stats_all() if system.raft_stats else None
    timeout = 60 + requests / 300
    cpu_before = [cpu_seconds(p) for p in system.procs]
    sample, note = redis_benchmark(port, row, requests, size, timeout, random_keys)
    cpu_after = [cpu_seconds(p) for p in system.procs]
    after = system.raft_stats_all() if before is not None else None
    if sample is not None:
        used = [
            None if a is None or b is None else (b - a) * 1e6 / requests
            for a, b in zip(cpu_before, cpu_after, strict=True)
        ]
        if port in system.ports and len(system.procs) == len(system.ports):
            sample.cpu_leader = used[system.ports.index(port)]
            sample.cpu_followers = [
                u for p, u in zip(system.ports, used, strict=True) if p != port and u is not None
            ]
        if None not in used:
            sample.cpu_all = sum(u for u in used if u is not None)
    if before is not None and after is not None:
        applied = int(after[port]["commands_applied"]) - int(before[port]["commands_applied"])
        if row.test == "SET" and applied < requests and sample is not None:
            sample.errors = True
            note = f"only {applied} of {requests} SETs applied"
        if sample is not None and measure_fsyncs:
            delta = {p: int(after[p]["fsyncs"]) - int(before[p]["fsyncs"]) for p in system.ports}
            sample.fsyncs_leader = delta[port] / requests
            sample.fsyncs_followers = [delta[p] / requests for p in system.ports if p != port]
        entries = int(after[port].get("proposals", 0)) - int(before[port].get("proposals", 0))
        if sample is not None and entries > 0 and applied > 0:
            # The batch size: the leader's CPU per write falls as it grows
            # (each entry costs a proposal, a log write, appends and acks).
            sample.writes_per_entry = applied / entries
    if sample is None:
        cell.failures += 1
        log(f"  {system.key:<13} {row.label:<18} FAILED: {note}")
        return
    sample.round = rnd
    cell.samples.append(sample)
    extra = f"  fsyncs/write {sample.fsyncs_leader:.4f}" if sample.fsyncs_leader is not None else ""
    if sample.writes_per_entry is not None:
        extra += f"  writes/entry {sample.writes_per_entry:.1f}"
    if sample.cpu_leader is not None:
        extra += f"  cpu {sample.cpu_leader:.1f} us/req"
    warn = f"  ({note})" if note else ""
    log(
        f"  {system.key:<13} {row.label:<18} {sample.ops:>11,.0f} ops/s  "
        f"p50 {sample.p50:.3f}  p99 {sample.p99:.3f} ms{extra}{warn}"
    )


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Budget:
    """The wall-clock limit of the whole run."""

    def __init__(self, minutes: float) -> None:
        self.deadline = time.monotonic() + minutes * 60
        self.exhausted = False

    def left(self) -> bool:
        if time.monotonic() >= self.deadline and not self.exhausted:
            self.exhausted = True
            log("time budget (--max-minutes) used up: stopping here")
        return not self.exhausted


def run_rounds(
    systems: list[System],
    rows: Sequence[Row],
    rounds: int,
    requests: int,
    single_requests: int,
    size: int,
    budget: Budget,
    random_keys: int = 0,
) -> dict[Row, dict[str, Cell]]:
    """Every row against every system, ``rounds`` times, systems interleaved."""
    results: dict[Row, dict[str, Cell]] = {row: {} for row in rows}
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}, value size {size} B")
        # Rotating the order keeps any one system from always going first.
        order = systems[r % len(systems) :] + systems[: r % len(systems)]
        for row in rows:
            n = single_requests if row.clients == 1 else requests
            for system in order:
                if not budget.left():
                    return results
                run_one(system, row, n, size, r, results[row], random_keys)
    return results


# ------------------------------------------------------------------ tables


def targets(durability: str, consistency: str) -> dict[Row, float]:
    """The goals for the ratio redraft / redis-server (everysec): issue 21's, else issue 6's."""
    goal: dict[Row, float] = {}
    if durability == "medium":
        goal[Row("SET", 1, 50)] = 0.5
        goal[Row("SET", 16, 50)] = 0.5
    elif durability == "high":
        goal[Row("SET", 1, 50)] = 0.25
        goal[Row("SET", 16, 50)] = 0.4
    if consistency == "medium":
        goal[Row("GET", 1, 50)] = 1.0
        goal[Row("GET", 16, 50)] = 0.65
    elif consistency == "high":
        goal[Row("GET", 16, 50)] = 0.5
    # "Keep the single-client round trip (SET at -c 1) within 3x of redis-server."
    goal[Row("SET", 1, 1)] = 1 / 3
    return goal


def fmt_ops(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def ratio(a: Cell, b: Cell) -> float | None:
    """The median over rounds of a's ops/s over b's in the same round.

    Both ran back to back in each round, so a change in the machine's load
    between rounds (it is shared) moves both sides of each ratio alike.
    """
    theirs = {s.round: s.ops for s in b.samples}
    pairs = [s.ops / theirs[s.round] for s in a.samples if theirs.get(s.round)]
    return statistics.median(pairs) if pairs else None


def fmt_cpu(leader: float | None, followers: list[float]) -> str:
    if leader is None:
        return "-"
    if not followers:
        return f"{leader:.1f}"
    return f"{leader:.1f} ({', '.join(f'{f:.1f}' for f in followers)})"


def fmt_batch(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def fmt_target(value: float | None, goal: float | None) -> str:
    if goal is None:
        return ""
    mark = "?" if value is None else ("met" if value >= goal else "MISS")
    return f">= {goal:.2f} {mark}"


def markdown(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def main_table(
    results: dict[Row, dict[str, Cell]], systems: list[System], goals: dict[Row, float]
) -> tuple[str, list[dict[str, Any]]]:
    keys = [s.key for s in systems]
    header = ["test", "redraft ops/s", "p50 ms", "p99 ms", "redis ops/s", "p50 ms", "p99 ms"]
    header += ["ratio", "target", "fsyncs/write leader (followers)", "writes/entry"]
    header += ["CPU us/req leader (each follower)", "redis CPU us/req"]
    if "redis-always" in keys:
        header += ["redis always ops/s", "p50 ms", "p99 ms", "redraft/always"]
    if "pysyncobj" in keys:
        header += ["PySyncObj ops/s", "p50 ms", "p99 ms", "PySyncObj/redis"]
    if "follower" in keys:
        header += ["at a follower ops/s", "p50 ms", "p99 ms", "follower/leader"]
    if "against" in keys:
        header += ["--against ops/s", "p50 ms", "ratio", "CPU us/req leader (each follower)"]
        header += ["writes/entry"]
    lines: list[list[str]] = []
    records: list[dict[str, Any]] = []
    flagged = False
    for row, cells in results.items():
        if not cells:
            continue
        ours = cells.get("redraft", Cell())
        ref = cells.get("redis", Cell())
        r = ratio(ours, ref)
        mark = " *" if ours.errors else ""
        flagged |= ours.errors
        fs = ours.median("fsyncs_leader")
        ff = ours.followers_fsyncs()
        fsyncs = "" if fs is None else f"{fs:.4f} ({ff:.4f})" if ff is not None else f"{fs:.4f}"
        line = [
            row.label + mark,
            fmt_ops(ours.median("ops")), fmt_ms(ours.median("p50")), fmt_ms(ours.median("p99")),
            fmt_ops(ref.median("ops")), fmt_ms(ref.median("p50")), fmt_ms(ref.median("p99")),
            fmt_ratio(r), fmt_target(r, goals.get(row)), fsyncs,
            fmt_batch(ours.median("writes_per_entry")),
            fmt_cpu(ours.median("cpu_leader"), ours.followers_cpu()),
            fmt_cpu(ref.median("cpu_leader"), []),
        ]  # fmt: skip
        record: dict[str, Any] = {"row": row._asdict(), "ratio": r, "target": goals.get(row)}
        if "redis-always" in keys:
            al = cells.get("redis-always", Cell())
            line += [fmt_ops(al.median("ops")), fmt_ms(al.median("p50")), fmt_ms(al.median("p99"))]
            line.append(fmt_ratio(ratio(ours, al)))
        if "pysyncobj" in keys:
            py = cells.get("pysyncobj", Cell())
            line += [fmt_ops(py.median("ops")), fmt_ms(py.median("p50")), fmt_ms(py.median("p99"))]
            line.append(fmt_ratio(ratio(py, ref)))
        if "follower" in keys:
            fo = cells.get("follower", Cell())
            line += [fmt_ops(fo.median("ops")), fmt_ms(fo.median("p50")), fmt_ms(fo.median("p99"))]
            line.append(fmt_ratio(ratio(fo, ours)))
        if "against" in keys:
            ag = cells.get("against", Cell())
            line += [fmt_ops(ag.median("ops")), fmt_ms(ag.median("p50")), fmt_ratio(ratio(ag, ref))]
            line.append(fmt_cpu(ag.median("cpu_leader"), ag.followers_cpu()))
            line.append(fmt_batch(ag.median("writes_per_entry")))
        for key, cell in cells.items():
            record[key] = {
                "ops": cell.median("ops"),
                "p50_ms": cell.median("p50"),
                "p99_ms": cell.median("p99"),
                "fsyncs_per_write_leader": cell.median("fsyncs_leader"),
                "fsyncs_per_write_followers": cell.followers_fsyncs(),
                "writes_per_entry": cell.median("writes_per_entry"),
                "cpu_us_per_request": cell.median("cpu_leader"),
                "cpu_us_per_request_all": cell.median("cpu_all"),
                "cpu_us_per_request_followers": cell.followers_cpu(),
                "failures": cell.failures,
                "samples": [asdict(s) for s in cell.samples],
            }
        lines.append(line)
        records.append(record)
    text = markdown(header, lines)
    text += (
        "\n\nops/s, p50 and p99: medians over rounds. ratio: median over rounds of redraft"
        " ops/s / redis-server (everysec) ops/s in the same round; target: issue 21's goal"
        " for that ratio, issue 6's where 21 sets none (SET -c 1: round trip within 3x)."
        " fsyncs/write: fsyncs during the SET run / SETs, on the leader (the busiest"
        " follower). writes/entry: commands applied during a write run / log entries the"
        " leader proposed in it (the batch size). CPU: user + system time of the server"
        " processes during the run (/proc) per request, medians over rounds:"
        " the node benchmarked (each other node, busiest first), redis-server."
    )
    if flagged:
        text += "\n\n\\* some runs saw errors from the server (e.g. a leader change): suspect."
    return text, records


# -------------------------------------------------------------------- runs


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "redis": redis_version,
        "loadavg_start": os.getloadavg(),
    }


def standard_run(
    ns: argparse.Namespace, procs: Processes, base: Path, budget: Budget
) -> list[dict[str, Any]]:
    extra = ["--redirect", "proxy"] if ns.proxy else []
    redraft = start_redraft(procs, base, ns.nodes, ns.durability, ns.consistency, ns.backend, extra)
    systems = [redraft, start_redis(procs, base, "redis", "everysec")]
    if ns.proxy:
        systems.append(
            AtFollower("follower", redraft.title + " at a follower", redraft.ports, redraft.procs,
                       raft_stats=True)
        )  # fmt: skip
    if ns.durability == "high" or ns.redis_always:
        systems.append(start_redis(procs, base, "redis-always", "always"))
    if ns.pysyncobj:
        systems.append(start_pysyncobj(procs, base, ns.pysyncobj_args))
    if ns.against:
        systems.append(
            start_redraft(procs, base, ns.nodes, ns.durability, ns.consistency, ns.backend,
                          extra, src=ns.against)
        )  # fmt: skip
    log("started: " + "; ".join(f"{s.title} on {s.ports}" for s in systems))
    goals = targets(ns.durability, ns.consistency)
    tables = []
    for size in ns.value_size:
        results = run_rounds(
            systems, ns.rows, ns.rounds, ns.requests, ns.single_requests, size, budget,
            ns.random_keys,
        )  # fmt: skip
        text, records = main_table(results, systems, goals)
        title = (
            f"### {systems[0].title}, value {size} B, {ns.rounds} round(s), "
            f"-n {ns.requests} (-c 1: -n {ns.single_requests})"
            + (f", -r {ns.random_keys}" if ns.random_keys else "")
        )
        print(f"\n{title}\n\n{text}\n", flush=True)
        tables.append({"title": title, "value_size": size, "rows": records})
    return tables


def matrix_run(
    ns: argparse.Namespace, procs: Processes, base: Path, budget: Budget
) -> list[dict[str, Any]]:
    refs = [start_redis(procs, base, "redis", "everysec")]
    refs.append(start_redis(procs, base, "redis-always", "always"))
    header = ["durability", "backend"]
    for row in MATRIX_ROWS:
        p = f"-P {row.pipeline}"
        header += [f"SET {p} ops/s", "ratio", "vs always", "p99 ms", "fsyncs/write"]
    lines: list[list[str]] = []
    records: list[dict[str, Any]] = []
    size = ns.value_size[0]
    for durability in LEVELS:
        for backend in BACKENDS:
            if not budget.left():
                break
            log(f"matrix cell: durability {durability}, backend {backend}")
            cluster = start_redraft(procs, base, ns.nodes, durability, ns.consistency, backend)
            try:
                results = run_rounds(
                    [cluster, *refs], MATRIX_ROWS, ns.rounds, ns.requests, ns.requests, size, budget
                )
            finally:
                for proc in cluster.procs:
                    procs.stop(proc)
            line = [durability, backend]
            record: dict[str, Any] = {"durability": durability, "backend": backend}
            for row in MATRIX_ROWS:
                cells = results[row]
                ours = cells.get("redraft", Cell())
                ops = ours.median("ops")
                r = ratio(ours, cells.get("redis", Cell()))
                ra = ratio(ours, cells.get("redis-always", Cell()))
                fs = ours.median("fsyncs_leader")
                line += [
                    fmt_ops(ops) + (" *" if ours.errors else ""),
                    fmt_ratio(r), fmt_ratio(ra), fmt_ms(ours.median("p99")),
                    "-" if fs is None else f"{fs:.4f}",
                ]  # fmt: skip
                record[row.label] = {
                    "ops": ops, "ratio": r, "ratio_always": ra,
                    "p99_ms": ours.median("p99"), "fsyncs_per_write_leader": fs,
                    "redis": cells.get("redis", Cell()).median("ops"),
                    "redis_always": cells.get("redis-always", Cell()).median("ops"),
                }  # fmt: skip
            lines.append(line)
            records.append(record)
            log("  " + " | ".join(line))
    title = (
        f"### Matrix: {ns.nodes} nodes, consistency {ns.consistency}, value {size} B, "
        f"{ns.rounds} round(s), -n {ns.requests}; ratio = redraft / redis-server everysec, "
        "vs always = redraft / redis-server appendfsync always"
    )
    print(f"\n{title}\n\n{markdown(header, lines)}\n", flush=True)
    return [{"title": title, "value_size": size, "rows": records}]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nodes", type=int, default=3, help="redraft cluster size (default 3)")
    ap.add_argument("--durability", choices=LEVELS, default="medium")
    ap.add_argument("--consistency", choices=LEVELS, default="medium")
    ap.add_argument("--backend", choices=BACKENDS, default="fastlog")
    ap.add_argument(
        "--value-size",
        default="16",
        help="value bytes (redis-benchmark -d); a comma list gives one table each (default 16)",
    )
    ap.add_argument(
        "--requests",
        type=int,
        default=None,
        help="-n at 50 clients (default 200000, as issue 6 measures; matrix 30000)",
    )
    ap.add_argument(
        "--single-requests", type=int, default=None, help="-n at 1 client (default requests/10)"
    )
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    ap.add_argument("--quick", action="store_true", help="small smoke run: -n 5000, 1 round")
    ap.add_argument(
        "--matrix", action="store_true", help="durability x backend, SET -P 1 / -P 16 only"
    )
    ap.add_argument("--pysyncobj", action="store_true", help="add a 3-node PySyncObj column")
    ap.add_argument(
        "--pysyncobj-args",
        default=PYSYNCOBJ_ARGS,
        help=f"flags for bench/pysyncobj_server.py (default: {PYSYNCOBJ_ARGS!r})",
    )
    ap.add_argument(
        "--redis-always",
        action="store_true",
        help="add the appendfsync-always reference (on by default at --durability high)",
    )
    ap.add_argument(
        "--proxy",
        action="store_true",
        help="start redraft with --redirect proxy and add a column at a follower",
    )
    ap.add_argument(
        "--against",
        type=Path,
        metavar="SRC",
        help="also run a cluster of another tree (its src directory, extensions built) in the"
        " same rounds, with its own columns: an A/B of two versions in one invocation. Its"
        " modules run as they are: give this tree's own src for compiled against pure, or a"
        " twin from scripts/build_compiled.py for compiled against compiled",
    )
    ap.add_argument(
        "--tests",
        default="",
        help="redis-benchmark tests instead of the SET/GET rows, each at -P 1 and -P 16 with"
        " -c 50 (e.g. hset,lpush,sadd,zadd,lrange_100: the data types)",
    )
    ap.add_argument(
        "--clients",
        default="",
        help="with --tests: run each test at these client counts (comma list, default 50);"
        " the batch size, and so the leader's CPU per write, grows with the clients",
    )
    ap.add_argument(
        "--random-keys",
        type=int,
        default=0,
        metavar="N",
        help="redis-benchmark -r N: random keys, members (and ZADD scores) below N; without it"
        " SADD and ZADD add one member over and over, which changes nothing after the first",
    )
    ap.add_argument("--max-minutes", type=float, default=30, help="bound on the whole run")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    build = ap.add_mutually_exclusive_group()
    build.add_argument(
        "--pure",
        action="store_true",
        help="run the nodes on this checkout's modules as they are (what an editable install"
        " runs), not compiled with mypyc as a regular install does",
    )
    build.add_argument(
        "--compiled",
        action="store_true",
        help="the default: the mypyc-compiled hot modules of a regular install, built first"
        " (~1 min) into the run's directory",
    )
    ns = ap.parse_args(argv)
    try:
        ns.value_size = [int(v) for v in ns.value_size.split(",") if v.strip()]
    except ValueError:
        ap.error("--value-size: a comma-separated list of byte counts")
    tests = [t.strip().upper() for t in ns.tests.split(",") if t.strip()]
    try:
        clients = [int(c) for c in ns.clients.split(",") if c.strip()] or [50]
    except ValueError:
        ap.error("--clients: a comma-separated list of client counts")
    if ns.clients and not tests:
        ap.error("--clients goes with --tests (the default rows fix their client counts)")
    if min(clients) < 1:
        ap.error("--clients: at least one client")
    ns.rows = tuple(Row(t, p, c) for t in tests for c in clients for p in (1, 16)) or ROWS
    if ns.quick:
        ns.requests = ns.requests or 5000
        ns.rounds = ns.rounds or 1
    ns.requests = ns.requests or (30000 if ns.matrix else 200000)
    ns.rounds = ns.rounds or 3
    ns.single_requests = ns.single_requests or max(500, ns.requests // 10)
    if ns.nodes < 1:
        ap.error("--nodes must be at least 1")
    if ns.against is not None:
        if ns.matrix:
            ap.error("--against takes the standard rows, not --matrix")
        if not (ns.against / "redraft" / "__init__.py").is_file():
            ap.error(f"--against {ns.against}: not a src directory with redraft in it")
        ns.against = ns.against.resolve()
    if ns.pysyncobj and importlib.util.find_spec("pysyncobj") is None:
        ap.error("--pysyncobj needs PySyncObj: .venv/bin/pip install -e '.[bench]'")
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            ap.error(f"{tool} not found (Debian: apt-get install redis-server redis-tools)")
    return ns


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="redraft-bench-"))
    try:
        yield base
    finally:
        if keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    meta = machine_info()
    meta["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print(
        f"# {meta['date']}: {meta['nproc']} CPUs ({meta['cpu']}), Python {meta['python']}, "
        f"{meta['redis']}\n# load average at start: "
        + " ".join(f"{x:.2f}" for x in meta["loadavg_start"]),
        flush=True,
    )
    budget = Budget(ns.max_minutes)
    started = time.monotonic()
    with workspace(ns.keep) as base:
        meta["compiled"] = not ns.pure
        if not ns.pure:
            sys.path.insert(0, str(ROOT / "scripts"))
            from build_compiled import build  # type: ignore[import-not-found]

            # Children inherit it: every redraft node imports the compiled twin.
            os.environ["PYTHONPATH"] = str(build(base / "compiled"))
            print("# nodes run the mypyc-compiled modules, as a regular install does", flush=True)
        else:
            print("# nodes run this checkout's modules, not compiled (--pure)", flush=True)
        procs = Processes(base)
        try:
            tables = (matrix_run if ns.matrix else standard_run)(ns, procs, base, budget)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            procs.stop_all()
    meta["loadavg_end"] = os.getloadavg()
    meta["seconds"] = round(time.monotonic() - started, 1)
    print(
        f"# {meta['seconds']:.0f} s; load average at end: "
        + " ".join(f"{x:.2f}" for x in meta["loadavg_end"]),
        flush=True,
    )
    if ns.json:
        settings = {k: v for k, v in vars(ns).items() if k != "json"}
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(
            json.dumps(
                {"meta": meta, "settings": settings, "tables": tables}, indent=2, default=str
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
