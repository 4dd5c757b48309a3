"""The clone's sorted set, in process: ZADD's apply, the range reads and memory per member.

Run: .venv/bin/python bench/bench_zset.py --against SRC [--quick]

``--against SRC`` measures another tree too (its ``src`` directory first on
``PYTHONPATH``, e.g. a copy with the clone package of an earlier commit) in a
child process of the same invocation, and prints both side by side: the
reference figure of every row.  Figures, for sets of 1,000, 40,000 and
1,000,000 members (members ``element:<12 digits>``, whole scores below
100,000, as ``redis-benchmark -r 100000`` writes them):

- **ZADD**: nanoseconds of CPU per ``ZADD key score member``, the leader's
  ``check`` plus the ``apply`` every node runs (a
  :class:`~redraft.machine.Write` called directly), each member drawn from
  twice the set's names: half change a member's score, half insert one.
- **reads**: nanoseconds per read called directly (no parsing, no reply
  encoding): ZSCORE, ZRANK, ZRANGE of 10 and of 100 members WITHSCORES,
  ZRANGEBYSCORE with LIMIT 0 10, ZCOUNT, and ZRANGEBYLEX with LIMIT 0 10 on
  a set whose scores are all 0 (the use Redis documents).

And **memory**: bytes the clone's structures allocate (``tracemalloc``) per
member of sets of 1, 10, 100 and 10,000 members (as ``bench_memory.py``
loads them: members ``m:<9 digits>``, scores 0, 1, 2, ...; some 200,000
members in all).  CPU time (``time.process_time``), best of three rounds;
on a shared machine compare only figures of one invocation.  The first line
names the order each tree's sorted sets keep (``ZSet().order``'s type).

``--orders`` measures instead, in this tree alone, ``ZSet.add`` (half
inserts, half moves, as above) on sets of 1 to 40,000 members with each
order it has: the one in use (the C ``_zorder.Order`` when built) and the
pure-Python ``PyOrder`` (a plain sorted list up to 1,000 members), and the
bytes per member of each (``tracemalloc``, as **memory** above but with the
set's own ``add``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

Read = Callable[[Any, list[bytes]], Any]

SIZES = (1_000, 40_000, 1_000_000)
"""Members of the sets the ZADD and read figures are taken at."""

MEMORY_SIZES = (1, 10, 100, 10_000)
"""Members per set of the memory figures."""

SCORES = 100_000
"""Scores are whole numbers below this, as ``redis-benchmark -r 100000`` writes them."""


def _member(i: int) -> bytes:
    return b"element:%012d" % i


def _zadd(key: bytes, pairs: list[tuple[int, int]]) -> list[bytes]:
    args = [b"ZADD", key]
    for score, i in pairs:
        args += [b"%d" % score, _member(i)]
    return args


class Bench:
    """One tree's clone, its sorted sets filled, and its reads and writes at hand."""

    def __init__(self, size: int, rng: random.Random) -> None:
        from redraft.applying import ApplyingApplier
        from redraft.examples.clone import Clone

        self.clone = Clone()
        self.m = ApplyingApplier()
        self.m.stamp = time.time_ns()
        self.reads = self.clone.reads()
        write = self.clone.writes()["zadd"]
        self.check, self.apply = write.check, write.apply
        self.size = size
        # Even names in the set, odd ones not: a draw among 2 * size is half inserts.
        names = list(range(0, 2 * size, 2))
        rng.shuffle(names)
        for lo in range(0, size, 1000):
            chunk = names[lo : lo + 1000]
            self.write(_zadd(b"z", [(rng.randrange(SCORES), i) for i in chunk]))
            self.write(_zadd(b"lex", [(0, i) for i in chunk]))

    def write(self, args: list[bytes]) -> None:
        if self.check is not None:
            self.check(args)
        self.apply(self.m, args)


def _best(run: Callable[[], int]) -> float:
    """Nanoseconds of CPU per operation, best of three rounds of ``run`` (which returns how
    many operations it did)."""
    best = float("inf")
    for _ in range(3):
        gc.collect()
        start = time.process_time()
        count = run()
        best = min(best, (time.process_time() - start) / count)
    return best * 1e9


def zadd_cost(size: int, ops: int = 20_000) -> float:
    """ZADD's check + apply, best of three fresh sets of ``size`` members."""
    best = float("inf")
    for round_ in range(3):
        rng = random.Random(19 + round_)
        b = Bench(size, rng)
        cmds = [
            [b"ZADD", b"z", b"%d" % rng.randrange(SCORES), _member(rng.randrange(2 * size))]
            for _ in range(min(ops, size))
        ]
        write = b.write
        gc.collect()
        start = time.process_time()
        for args in cmds:
            write(args)
        best = min(best, (time.process_time() - start) / len(cmds))
    return best * 1e9


def read_costs(size: int, ops: int = 20_000) -> dict[str, float]:
    """Each read's cost on a set of ``size`` members (random arguments)."""
    rng = random.Random(7)
    b = Bench(size, rng)

    def member() -> bytes:
        return _member(2 * rng.randrange(size))

    def ranks(width: int) -> list[bytes]:
        first = rng.randrange(size - width)
        return [b"%d" % first, b"%d" % (first + width - 1)]

    def score() -> bytes:
        return b"%d" % rng.randrange(SCORES)

    limit = [b"LIMIT", b"0", b"10"]
    shapes: dict[str, Callable[[], list[bytes]]] = {
        "ZSCORE": lambda: [b"ZSCORE", b"z", member()],
        "ZRANK": lambda: [b"ZRANK", b"z", member()],
        "ZRANGE 10 WITHSCORES": lambda: [b"ZRANGE", b"z", *ranks(10), b"WITHSCORES"],
        "ZRANGE 100 WITHSCORES": lambda: [b"ZRANGE", b"z", *ranks(100), b"WITHSCORES"],
        "ZRANGE 100": lambda: [b"ZRANGE", b"z", *ranks(100)],
        "ZRANGEBYSCORE LIMIT 10": lambda: [
            b"ZRANGEBYSCORE",
            b"z",
            b"(" + score(),
            b"+inf",
            b"WITHSCORES",
            *limit,
        ],
        "ZCOUNT": lambda: [b"ZCOUNT", b"z", score(), b"(" + score()],
        "ZRANGEBYLEX LIMIT 10": lambda: [b"ZRANGEBYLEX", b"lex", b"[" + member(), b"+", *limit],
    }
    costs: dict[str, float] = {}
    m = b.m
    for name, shape in shapes.items():
        read = b.reads[name.split()[0].lower()]
        calls = [shape() for _ in range(ops // 10 if "100" in name else ops)]

        def run(read: Read = read, calls: list[list[bytes]] = calls) -> int:
            for args in calls:
                read(m, args)
            return len(calls)

        costs[name] = _best(run)
    return costs


def memory_per_member(members: int, total: int = 200_000) -> float:
    """Bytes allocated per member by sets of ``members`` members (``total`` in all)."""
    from redraft.applying import ApplyingApplier
    from redraft.examples.clone import Clone

    keys = max(1, total // members)
    clone = Clone()
    m = ApplyingApplier()
    m.stamp = time.time_ns()
    apply = clone.writes()["zadd"].apply
    cmds = []
    for k in range(keys):
        args = [b"ZADD", b"key:%08d" % k]
        for e in range(members):
            args += [b"%d" % e, b"m:%09d" % e]
        cmds.append(args)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for args in cmds:
        apply(m, args)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / (keys * members)


def order_kind() -> str:
    """The type of the order a new sorted set keeps."""
    from redraft.examples.clone.zset import ZSet

    kind = type(ZSet().order)
    return f"{kind.__module__}.{kind.__qualname__}"


ORDER_SIZES = (1, 10, 100, 1_000, 40_000)
"""Members of the sets ``--orders`` takes its figures at."""


def order_costs(size: int, kind: Any, total: int = 40_000) -> tuple[float, float]:
    """``ZSet.add`` in ns (best of three) and bytes per member, sets of ``size`` members
    keeping their order in ``kind``."""
    from redraft.examples.clone.zset import ZSet

    rng = random.Random(size)
    keys = max(1, total // size)
    best = float("inf")
    for _ in range(3):
        sets = []
        for _ in range(keys):
            z = ZSet()
            z.order = kind()
            for i in range(0, 2 * size, 2):
                z.add(_member(i), float(rng.randrange(SCORES)))
            sets.append(z)
        draws = [
            [(_member(rng.randrange(2 * size)), float(rng.randrange(SCORES))) for _ in range(size)]
            for _ in range(keys)
        ]
        gc.collect()
        start = time.process_time()
        for z, pairs in zip(sets, draws, strict=True):
            add = z.add
            for member, score in pairs:
                add(member, score)
        best = min(best, (time.process_time() - start) / (keys * size))
    members = [_member(i) for i in range(size)]
    scores = [float(i) for i in range(size)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for _ in range(keys):
        z = ZSet()
        z.order = kind()
        for member, score in zip(members, scores, strict=True):
            z.add(member, score)
        kept.append(z)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return best * 1e9, (after - before) / (keys * size)


def orders_table() -> None:
    """``--orders``: this tree's orders side by side."""
    from redraft.examples.clone.zset import PyOrder, new_order

    kinds = [("in use", new_order), ("PyOrder", PyOrder)]
    print(f"# python bench/bench_zset.py {' '.join(sys.argv[1:])}")
    print(f"# in use: {order_kind()}")
    head = ["members per set"]
    head += [f"ZSet.add ns: {label}" for label, _ in kinds]
    head += [f"B/member: {label}" for label, _ in kinds]
    rows = []
    for n in ORDER_SIZES:
        figures = [order_costs(n, kind) for _, kind in kinds]
        rows.append(
            [f"{n:,}", *(f"{f[0]:.0f}" for f in figures), *(f"{f[1]:.0f}" for f in figures)]
        )
    _table(head, rows)


def measure(section: str, size: int) -> Any:
    """One figure set: ``zadd``, ``reads``, ``memory`` at ``size`` members, or ``order``."""
    if section == "order":
        return order_kind()
    if section == "zadd":
        return zadd_cost(size)
    if section == "reads":
        return read_costs(size)
    return memory_per_member(size)


def _measure_in(src: str | None, section: str, size: int) -> Any:
    """:func:`measure` in a child process, with ``src`` first on its import path if given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--json-only", section, str(size)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    ).stdout
    return json.loads(out)


def _table(head: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", metavar="SRC", help="another tree's src directory, beside")
    ap.add_argument("--quick", action="store_true", help="sets of at most 40,000 members")
    ap.add_argument("--orders", action="store_true", help="this tree's orders side by side")
    ap.add_argument("--json-only", nargs=2, metavar=("SECTION", "SIZE"), help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.json_only:
        print(json.dumps(measure(ns.json_only[0], int(ns.json_only[1]))))
        return
    if ns.orders:
        orders_table()
        return
    sizes = SIZES[:2] if ns.quick else SIZES
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if ns.against:
        trees = [("before", ns.against), ("after", None)]
    labels = [label for label, _ in trees]
    # Each figure in a fresh process, the trees taking turns (and turns at going first),
    # so that a busy spell of a shared machine falls on both alike.
    results: dict[tuple[str, str, int], Any] = {}
    jobs = [("zadd", n) for n in sizes] + [("reads", n) for n in sizes]
    jobs += [("memory", n) for n in MEMORY_SIZES]
    for k, (section, size) in enumerate(jobs):
        for label, src in trees if k % 2 == 0 else trees[::-1]:
            results[label, section, size] = _measure_in(src, section, size)
    print(f"# python bench/bench_zset.py {' '.join(sys.argv[1:])}")
    if ns.against:
        print(f"# before: {ns.against}; after: this tree")
    for label, src in trees:
        print(f"# order, {label}: {_measure_in(src, 'order', 0)}")
    head = ["ns per command", *(f"{n:,} members: {lab}" for n in sizes for lab in labels)]
    rows = [
        ["ZADD (check + apply)"]
        + [f"{results[lab, 'zadd', n]:.0f}" for n in sizes for lab in labels]
    ]
    for name in results[labels[0], "reads", sizes[0]]:
        rows.append(
            [name] + [f"{results[lab, 'reads', n][name]:.0f}" for n in sizes for lab in labels]
        )
    _table(head, rows)
    print()
    head = ["members per set", *(f"B/member: {lab}" for lab in labels)]
    if ns.against:
        head.append("after / before")
    rows = []
    for n in MEMORY_SIZES:
        figures = [results[lab, "memory", n] for lab in labels]
        row = [f"{n:,}", *(f"{f:.0f}" for f in figures)]
        if ns.against:
            row.append(f"{figures[1] / figures[0]:.2f}")
        rows.append(row)
    _table(head, rows)


if __name__ == "__main__":
    main()
