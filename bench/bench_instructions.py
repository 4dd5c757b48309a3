"""Instructions per request on the server path, counted by callgrind; prints figures, asserts nothing.

Run: .venv/bin/python bench/bench_instructions.py [--against DIR] [--rounds N] [--consistency L]

Timings on a shared VM move by 10-20 % from run to run; instruction counts
do not (callgrind counts the same total for the same code and inputs,
whatever else the machine does).  So this is the figure to compare two
versions of the request path by, such as before and after a refactor:
``--against`` names another checkout of redraft (its ``src`` is put first
on ``PYTHONPATH``, so it must have been installed once to build its C
extension), and both are measured in this one invocation.

For each request (GET and SET of a 16-byte key, one request per read or
16) a one-node clone in this process is fed the bytes redis-benchmark sends
over 50 in-memory connections, as ``bench_request_path.py`` does (over one
in the last row, where every write is a log entry of its own: what an entry
costs beyond its writes), under ``valgrind --tool=callgrind``: once for
``--rounds`` rounds and once for none, and the difference divided by the
requests is what one request costs (start-up cancels out).  The node's clock ticks once a minute here, so the
figures hold the request path only: parsing, the session, the batch, the
log, the apply and the reply, with no heartbeat and no fsync.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import asyncio, sys, tempfile, shutil
import redraft
from redraft.examples.clone import Clone
from redraft.options import Options
from redraft.raft.types import Role
try:
    from redraft.server import ClientProtocol as Conn
except ImportError:  # before the request session (issue 16)
    from redraft.server import ClientConn as Conn


class Transport:
    def write(self, data): pass
    def get_write_buffer_size(self): return 0
    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 50000) if name == "peername" else default
    def close(self): pass
    def abort(self): pass


def request(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


async def main(kind, per, rounds, consistency, connections):
    d = tempfile.mkdtemp()
    opts = Options(log_level="warning", durability="low", tick_ms=60000, consistency=consistency)
    node = redraft.open(d, "127.0.0.1:1", machine=Clone(), options=opts)
    await node.start()
    while not (node.core.role == Role.LEADER and node.core.committed_in_term()):
        await asyncio.sleep(0.01)
    conns = []
    for _ in range(connections):
        c = Conn(node.server)
        c.connection_made(Transport())
        conns.append(c)
    key = b"key:000000001234"
    one = request(b"SET", key, b"x" * 16) if kind == "SET" else request(b"GET", key)
    data = one * per
    for _ in range(rounds):
        for c in conns:
            c.data_received(data)
        await asyncio.sleep(0)
    while node.server.owes_replies():  # reads waiting for a ReadIndex round
        await asyncio.sleep(0)
    await node.close()
    shutil.rmtree(d)

try:
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run
run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
"""

CASES = [("SET", 1, 50), ("SET", 16, 50), ("GET", 1, 50), ("GET", 16, 50), ("SET", 1, 1)]
"""(command, requests per read, connections).  The last: every write its own
log entry, so it measures what an entry costs beyond its writes."""


def callgrind_instructions(src: Path, driver: str, *args: str) -> int:
    """Instructions ``python -c driver *args`` runs under callgrind, ``src`` first on ``PYTHONPATH``."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    cmd += [sys.executable, "-c", driver, *args]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed in {src}:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def trees_to_measure(against: Path | None) -> list[tuple[str, Path]]:
    """(name, src) of the trees to measure: ``against`` first when given, then this one."""
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian package valgrind)")
    trees = [("this tree", ROOT / "src")]
    if against is not None:
        trees.insert(0, (f"{against}", against.resolve() / "src"))
    return trees


def print_header(columns: list[str], trees: list[tuple[str, Path]]) -> None:
    """A Markdown table's head: ``columns``, one per tree, and a ratio when there are two."""
    names = [*columns, *(name for name, _ in trees)] + (["ratio"] if len(trees) > 1 else [])
    print("| " + " | ".join(names) + " |")
    print("|" + "---|" * len(names))


def print_row(cells: list[str], counts: list[float]) -> None:
    """A row: ``cells``, each tree's count, and the second's ratio to the first when two."""
    row = "| " + " | ".join([*cells, *(f"{c:,.0f}" for c in counts)])
    if len(counts) > 1:
        row += f" | {counts[1] / counts[0]:.3f}"
    print(row + " |", flush=True)


def _instructions(src: Path, kind: str, per: int, rounds: int, consistency: str, conns: int) -> int:
    return callgrind_instructions(src, DRIVER, kind, str(per), str(rounds), consistency, str(conns))


def per_request(
    src: Path, kind: str, per: int, rounds: int, consistency: str, conns: int = 50
) -> float:
    """Instructions one request costs in the tree at ``src`` (``conns`` connections)."""
    busy = _instructions(src, kind, per, rounds, consistency, conns)
    idle = _instructions(src, kind, per, 0, consistency, conns)
    return (busy - idle) / (rounds * conns * per)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="another redraft checkout to compare with")
    ap.add_argument(
        "--rounds",
        type=int,
        default=40,
        help="rounds of 50 requests (or 50 x 16; the -c 1 row: ten times as many of one)",
    )
    ap.add_argument(
        "--consistency",
        choices=("low", "medium", "high"),
        default="medium",
        help="read consistency (at high every read waits for a ReadIndex round)",
    )
    ns = ap.parse_args()
    trees = trees_to_measure(ns.against)
    print(
        "# instructions per request (callgrind), one-node clone, 50 connections"
        f" (-c 1: one), consistency {ns.consistency}"
    )
    print_header(["request"], trees)
    for kind, per, conns in CASES:
        # About as many requests in every row (one connection: ten times the rounds).
        rounds = max(1, ns.rounds // 4) if per > 1 else ns.rounds * (10 if conns == 1 else 1)
        counts = [per_request(src, kind, per, rounds, ns.consistency, conns) for _, src in trees]
        label = f"{kind} -P {per}" + (f" -c {conns}" if conns != 50 else "")
        print_row([label], counts)


if __name__ == "__main__":
    main()
