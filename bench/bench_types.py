"""CPU per command of the clone's hot writes (SET, HSET, SADD, ZADD, LPUSH), in process.

Run: .venv/bin/python bench/bench_types.py [--seconds S] [--against SRC]

Two figures per command, each of the shape redis-benchmark sends (``SET
key:__rand_int__ <16 B>``, ``HSET myhash element:__rand_int__ <16 B>``,
``SADD myset element:__rand_int__``, ``ZADD myzset 0 element:__rand_int__``,
``LPUSH mylist <16 B>``):

- **apply**: nanoseconds of the machine's own work, the ``check`` the
  leader runs before logging plus the ``apply`` every node runs once the
  entry commits (a :class:`~redraft.machine.Write` called directly, as
  :mod:`redraft.applying` calls it), over 50,000 commands applied to a
  fresh machine, as one ``redis-benchmark -n 50000`` run sends them.
  Twice: with the placeholder left as it is, which is what redis-benchmark
  sends without ``-r`` (the same member every time, so SADD and ZADD change
  nothing after the first), and with it replaced by a random number below
  100,000 as ``-r 100000`` does (ZADD's score too), so SADD and ZADD insert
  into a set that grows to some 40,000 members (or move a member to a new
  score).
- **path**: microseconds of CPU per request of the whole server path at
  ``-P 16`` (a one-node clone, 50 in-memory connections, as
  ``bench_request_path.py`` feeds them): parsing, the session, the log,
  the apply and the reply; without ``-r``.

``--against SRC`` measures another tree too (its ``src`` directory first on
``PYTHONPATH``, e.g. a copy with the clone package of an earlier commit),
in the same invocation, and prints both side by side.  CPU time
(``time.process_time``), best of three rounds; on a shared machine compare
only figures of one invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES: dict[str, list[bytes]] = {
    "SET": [b"SET", b"key:__rand_int__", b"x" * 16],
    "HSET": [b"HSET", b"myhash", b"element:__rand_int__", b"x" * 16],
    "SADD": [b"SADD", b"myset", b"element:__rand_int__"],
    "ZADD": [b"ZADD", b"myzset", b"0", b"element:__rand_int__"],
    "LPUSH": [b"LPUSH", b"mylist", b"x" * 16],
}
"""The requests redis-benchmark sends for each test (its ``-t`` names)."""

RANDOM_KEYS = 100_000
"""As ``redis-benchmark -r 100000``: ``__rand_int__`` becomes a 12-digit number below it."""


def _randomised(shape: list[bytes], rng: random.Random) -> list[bytes]:
    """``shape`` with every ``__rand_int__`` replaced as redis-benchmark ``-r`` does (and
    ZADD's score 0 by one, as redis-benchmark writes it with ``-r``)."""
    out = [a.replace(b"__rand_int__", b"%012d" % rng.randrange(RANDOM_KEYS)) for a in shape]
    if shape[0] == b"ZADD":
        out[2] = b"%012d" % rng.randrange(RANDOM_KEYS)
    return out


def apply_costs(randomised: bool, requests: int = 50_000) -> dict[str, float]:
    """Nanoseconds of check + apply per command, for each shape: ``requests`` commands
    applied to a fresh machine, as one redis-benchmark run sends them to a fresh server
    (best of 3 rounds)."""
    from redraft.applying import ApplyingApplier
    from redraft.examples.clone import Clone

    rng = random.Random(19)
    costs: dict[str, float] = {}
    for name, shape in SHAPES.items():
        cmds = [_randomised(shape, rng) if randomised else shape for _ in range(requests)]
        best = float("inf")
        for _ in range(3):
            write = Clone().writes()[name.lower()]
            check, apply = write.check, write.apply
            m = ApplyingApplier()
            m.stamp = time.time_ns()
            start = time.process_time()
            for args in cmds:
                if check is not None:
                    check(args)
                apply(m, args)
            best = min(best, (time.process_time() - start) / requests)
        costs[name] = best * 1e9
    return costs


async def _path_costs(seconds: float) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_request_path import _rate, _request, _Transport

    import redraft
    from redraft.examples.clone import Clone
    from redraft.options import Options
    from redraft.raft.types import Role
    from redraft.server import ClientProtocol

    directory = tempfile.mkdtemp(prefix="redraft-bench-types-")
    node = redraft.open(
        directory, "127.0.0.1:1", machine=Clone(), options=Options(log_level="warning")
    )
    costs: dict[str, float] = {}
    try:
        await node.start()
        async with asyncio.timeout(20):  # a one-node cluster elects itself at once
            while not (node.core.role == Role.LEADER and node.core.committed_in_term()):
                await asyncio.sleep(0.01)
        feeds = []
        for conn in (ClientProtocol(node.server) for _ in range(50)):
            conn.connection_made(_Transport())  # type: ignore[arg-type]
            feeds.append(conn.data_received)
        for name, shape in SHAPES.items():
            costs[name] = await _rate(feeds, _request(*shape) * 16, 16, seconds)
    finally:
        await node.close()
        shutil.rmtree(directory, ignore_errors=True)
    return costs


def measure(seconds: float) -> dict[str, Any]:
    import uvloop

    return {
        "fixed": apply_costs(False),
        "random": apply_costs(True),
        "path": uvloop.run(_path_costs(seconds)),
    }


def _measure_in(src: str, seconds: float) -> dict[str, Any]:
    """:func:`measure` in a child process with ``src`` first on its import path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, __file__, "--json-only", "--seconds", str(seconds)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="CPU seconds per figure")
    ap.add_argument("--against", metavar="SRC", help="another tree's src directory, beside")
    ap.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.json_only:
        print(json.dumps(measure(ns.seconds)))
        return
    runs: list[tuple[str, dict[str, Any]]] = []
    if ns.against:
        runs.append((f"{ns.against}", _measure_in(ns.against, ns.seconds)))
    runs.append(("this tree", measure(ns.seconds)))
    print("# ns of CPU per command (check + apply), us per request of the whole path at -P 16")
    for label, _ in runs:
        print(f"# {label}")
    head = ["command"]
    for label, _ in runs:
        tag = "" if len(runs) == 1 else f" ({'before' if label != 'this tree' else 'after'})"
        head += [f"apply ns, no -r{tag}", f"apply ns, -r 100000{tag}", f"path us -P 16{tag}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in SHAPES:
        row = [name]
        for _, r in runs:
            row += [f"{r['fixed'][name]:.0f}", f"{r['random'][name]:.0f}", f"{r['path'][name]:.2f}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
