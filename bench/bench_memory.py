"""Memory per key and per element: the clone beside redis-server, for every data type.

For each type, loads ``--keys`` keys of one element (and ``--containers``
keys of ``--elements`` elements each) into a fresh redis-server (no
persistence; pipelined commands) and into a fresh clone machine in this
process (the same commands applied as every node applies them, without a
node: the log and the network buffers would hide what the keyspace
costs), and reports per item the growth of redis-server's resident
memory (``/proc/PID/status`` VmRSS; its ``used_memory`` beside it) and the
bytes the clone's structures allocated (``tracemalloc``).  Values are 16
bytes, keys and members about 12, as redis-benchmark's.

    .venv/bin/python bench/bench_memory.py                 # 100,000 keys; 1,000 x 100 elements
    .venv/bin/python bench/bench_memory.py --quick         # a smoke run

Every process it starts is stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import gc
import socket
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import hiredis
from bench_cluster import Processes, log, machine_info, workspace

from redraft.applying import ApplyingApplier
from redraft.examples.clone import Clone
from redraft.machine import Command
from redraft.testing import LOOPBACK, free_ports, request

Loader = Callable[[int, int], Iterator[list[bytes]]]


def encode(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def strings(keys: int, _: int) -> Iterator[list[bytes]]:
    for k in range(keys):
        yield [b"SET", b"key:%08d" % k, b"v" * 16]


def container(command: bytes, pair: bool, score: bool = False) -> Loader:
    def load(keys: int, elements: int) -> Iterator[list[bytes]]:
        for k in range(keys):
            args = [command, b"key:%08d" % k]
            for e in range(elements):
                member = b"m:%09d" % e
                if score:
                    args += [b"%d" % e, member]
                elif pair:
                    args += [member, b"v" * 16]
                else:
                    args.append(member)
            yield args

    return load


TYPES: dict[str, tuple[Loader, bool]] = {
    "string": (strings, False),
    "list": (container(b"RPUSH", False), True),
    "hash": (container(b"HSET", True), True),
    "set": (container(b"SADD", False), True),
    "zset": (container(b"ZADD", False, score=True), True),
}
"""Each type's loader, and whether it has elements."""


def load(port: int, commands: Iterator[list[bytes]], batch: int = 500) -> None:
    sock = socket.create_connection((LOOPBACK, port))
    reader = hiredis.Reader()
    try:
        pending: list[bytes] = []
        for args in commands:
            pending.append(encode(args))
            if len(pending) == batch:
                _send(sock, reader, pending)
                pending = []
        if pending:
            _send(sock, reader, pending)
    finally:
        sock.close()


def _send(sock: socket.socket, reader: hiredis.Reader, pending: list[bytes]) -> None:
    sock.sendall(b"".join(pending))
    owed = len(pending)
    while owed:
        reader.feed(sock.recv(1 << 20))
        while (reply := reader.gets()) is not False:
            if isinstance(reply, hiredis.ReplyError):
                raise RuntimeError(f"error reply while loading: {reply}")
            owed -= 1


def apply_all(clone: Clone, commands: Iterator[list[bytes]]) -> None:
    """Apply ``commands`` to ``clone`` as a node applies a committed entry."""
    m = ApplyingApplier()
    m.stamp = time.time_ns()
    writes = clone.writes()
    for args in commands:
        write = writes.get(args[0].decode().lower())
        if write is not None:
            write.apply(m, args)
        else:
            clone.command(m, None, Command(args))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def used_memory(port: int) -> int:
    info = request(port, "INFO", "memory").decode()
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory")


def settle(port: int) -> None:
    """Let the server finish what it was doing (the clone: its applies)."""
    time.sleep(0.5)
    request(port, "PING")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000, help="keys of each type, one element")
    ap.add_argument("--containers", type=int, default=1_000, help="keys with many elements")
    ap.add_argument("--elements", type=int, default=100, help="elements in each of those")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ns = ap.parse_args(argv)
    if ns.quick:
        ns.keys, ns.containers, ns.elements = 10_000, 200, 50
    print(f"# {machine_info()}")
    print(f"# python bench/bench_memory.py {' '.join(argv or sys.argv[1:])}")
    with workspace(ns.keep) as base:
        procs = Processes(base)
        try:
            rows = run(procs, base, ns)
        finally:
            procs.stop_all()
    print(
        "| type | shape | redis-server RSS B/item | used_memory B/item | clone allocated B/item"
        " | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def run(procs: Processes, base: Path, ns: argparse.Namespace) -> list[list[str]]:
    rows: list[list[str]] = []
    for name, (loader, has_elements) in TYPES.items():
        shapes = [("1 element x keys", ns.keys, 1)]
        if has_elements:
            shapes.append((f"{ns.elements} elements x keys", ns.containers, ns.elements))
        for shape, keys, elements in shapes:
            items = keys * elements
            (redis_port,) = free_ports(1)
            tag = f"{name}-{elements}"
            (base / tag).mkdir()
            redis = procs.start_node(
                f"redis-{tag}", redis_port,
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(base / tag)],
            )  # fmt: skip
            assert redis.pid is not None
            r0, u0 = rss(redis.pid), used_memory(redis_port)
            load(redis_port, loader(keys, elements))
            settle(redis_port)
            r1, u1 = rss(redis.pid), used_memory(redis_port)
            gc.collect()
            clone = Clone()
            # Bytes the machine allocated (tracemalloc): this process's RSS
            # would hide them in memory freed by the previous type's run.
            tracemalloc.start()
            c0 = tracemalloc.get_traced_memory()[0]
            apply_all(clone, loader(keys, elements))
            gc.collect()
            c1 = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            del clone
            per = [(r1 - r0) / items, (u1 - u0) / items, (c1 - c0) / items]
            log(f"{name:<6} {shape:<22} redis {per[0]:.0f} B ({per[1]:.0f}), clone {per[2]:.0f} B")
            rows.append([name, shape, f"{per[0]:.0f}", f"{per[1]:.0f}", f"{per[2]:.0f}",
                         f"{per[2] / per[0]:.1f}" if per[0] > 0 else "-"])  # fmt: skip
            procs.stop(redis)
    return rows


if __name__ == "__main__":
    sys.exit(main())
