"""CPU per request of the server path, without sockets; prints figures, asserts nothing.

Run: .venv/bin/python bench/bench_request_path.py [--seconds S] [--consistency LEVEL]
     .venv/bin/python bench/bench_request_path.py --serve-bare PORT [--for SECONDS]

A one-node clone (durability medium) is started in this process; 50 client
connections with in-memory transports are fed the bytes redis-benchmark
sends (GET and SET of a 16-byte key, one request per read or 16), and each
loop turn lets the node commit and answer.  Beside it, in the same run, a
bare handler (hiredis parsing, a dict, replies joined into one write: what
any Python RESP server must do at least) is fed the same bytes.  The
difference is what the framework's layers cost per request: the Finn API
(command objects, the machine's dispatch, the applier), the lease check,
in-order reply slots and, for writes, the log and the apply.

CPU time (``time.process_time``) rather than wall time, the best of three
rounds; a shared machine still moves the figures by 10-20 %, so compare
runs of one invocation.  System calls are not in these figures: on
loopback a reply ``write`` costs about as much again (see BENCHMARKS.md).
``--serve-bare`` runs the bare handler as a real server for a while, so
redis-benchmark can show what the floor is with the system calls.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import hiredis
import uvloop

import redraft
from redraft.examples.clone import Clone
from redraft.options import Level, Options
from redraft.raft.types import Role
from redraft.server import ClientProtocol

CONNS = 50


class _Transport:
    """Swallows replies; enough of asyncio.Transport for ClientProtocol."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _Bare:
    """The reference: parse with hiredis, answer GET/SET from a dict, one write per read."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.reader = hiredis.Reader()
        self.data = data
        self.transport = _Transport()

    def data_received(self, chunk: bytes) -> None:
        self.reader.feed(chunk)
        out = []
        while (cmd := self.reader.gets()) is not False:
            name = cmd[0].lower()
            if name == b"get":
                v = self.data.get(cmd[1])
                out.append(b"$-1\r\n" if v is None else b"$%d\r\n%b\r\n" % (len(v), v))
            elif name == b"set":
                self.data[cmd[1]] = cmd[2]
                out.append(b"+OK\r\n")
            else:
                out.append(b"-ERR unknown command\r\n")
        self.transport.write(b"".join(out))


def _request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


async def _rate(
    feeds: list[Callable[[bytes], None]], data: bytes, per: int, seconds: float
) -> float:
    """Microseconds of CPU per request, best of 3 rounds of ``seconds / 3``."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        done = 0
        while time.process_time() - start < seconds / 3:
            for feed in feeds:
                feed(data)
            done += len(feeds) * per
            await asyncio.sleep(0)  # a loop turn: the node proposes, commits, answers
        best = min(best, (time.process_time() - start) / done)
    return best * 1e6


async def _main(seconds: float, consistency: str) -> None:
    directory = tempfile.mkdtemp(prefix="redraft-bench-")
    options = Options(consistency=Level.parse(consistency), log_level="warning")
    node = redraft.open(directory, "127.0.0.1:1", machine=Clone(), options=options)
    try:
        await node.start()
        for _ in range(200):
            if node.core.role == Role.LEADER and node.core.committed_in_term():
                break
            await asyncio.sleep(0.01)
        conns = []
        for _ in range(CONNS):
            conn = ClientProtocol(node.server)
            conn.connection_made(_Transport())  # type: ignore[arg-type]
            conns.append(conn)
        bare = [_Bare({}) for _ in range(CONNS)]
        get = _request(b"GET", b"key:000000001234")
        put = _request(b"SET", b"key:000000001234", b"xxxxxxxxxxxxxxxx")
        print(
            f"# {CONNS} connections, 1-node clone, consistency {consistency}; us of CPU per request"
        )
        print("| request | redraft | bare hiredis + dict | redraft - bare |")
        print("|---|---|---|---|")
        for name, one in (("SET", put), ("GET", get)):
            for per in (1, 16):
                data = one * per
                ours = await _rate([c.data_received for c in conns], data, per, seconds)
                ref = await _rate([b.data_received for b in bare], data, per, seconds)
                print(
                    f"| {name} -P {per} | {ours:.2f} | {ref:.2f} | {ours - ref:.2f} |", flush=True
                )
    finally:
        await node.close()
        shutil.rmtree(directory, ignore_errors=True)


class _BareProtocol(asyncio.Protocol):
    """The bare handler on a real socket, for redis-benchmark."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.bare = _Bare(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.bare.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.bare.data_received(data)


async def _serve_bare(port: int, seconds: float) -> None:
    data: dict[bytes, bytes] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _BareProtocol(data), "127.0.0.1", port)
    print(f"bare hiredis + dict server on 127.0.0.1:{port} for {seconds:g} s", flush=True)
    await asyncio.sleep(seconds)
    server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    ap.add_argument("--consistency", default="medium", choices=["low", "medium", "high"])
    ap.add_argument(
        "--serve-bare",
        type=int,
        metavar="PORT",
        help="instead: serve the bare handler on this loopback port (for redis-benchmark)",
    )
    ap.add_argument("--for", dest="duration", type=float, default=60.0, help="with --serve-bare")
    ns = ap.parse_args()
    if ns.serve_bare:
        uvloop.run(_serve_bare(ns.serve_bare, ns.duration))
    else:
        uvloop.run(_main(ns.seconds, ns.consistency))


if __name__ == "__main__":
    main()
