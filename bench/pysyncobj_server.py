"""One node of a PySyncObj key-value store that speaks enough RESP for redis-benchmark.

The comparison point for redraft among Python Raft libraries, started three
times by ``bench/bench_cluster.py --pysyncobj``:

    python bench/pysyncobj_server.py --port 7000 --raft-port 7100 \\
        --partner 127.0.0.1:7101 --partner 127.0.0.1:7102

Commands: SET key value (replicated; answered once PySyncObj reports the
entry applied), GET key (served from the node's own copy, as PySyncObj reads
always are: no read consistency beyond "whatever this node has applied"),
PING, RAFTSTATE (Leader / Follower / Candidate), CONFIG GET (an empty value, so
redis-benchmark's start-up probe passes) and QUIT.

One thread does everything: PySyncObj runs with ``autoTick=False`` and this
script calls its ``doTick`` in a loop, with the client sockets registered in
PySyncObj's own poller.  No thread hand-off sits between a client and the
Raft log, which is the fastest way to drive the library.  PySyncObj keeps its
log in memory and never fsyncs.

Tuning knobs (``--batch`` / ``--no-batch``, ``--period``, ``--tick``) map to
``SyncObjConf.appendEntriesUseBatch``, ``appendEntriesPeriod`` and the poll
timeout; see BENCHMARKS.md for the settings the benchmark uses and why.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
from collections import deque
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # type: ignore[import-untyped]
from pysyncobj.poller import POLL_EVENT_TYPE  # type: ignore[import-untyped]

from redraft.resp import ProtocolError, RequestParser

READ_SIZE = 1 << 16
OK_REPLY = b"+OK\r\n"
NULL_REPLY = b"$-1\r\n"
STATES = {0: "Follower", 1: "Candidate", 2: "Leader"}
WATCH_READ = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
WATCH_WRITE = WATCH_READ | POLL_EVENT_TYPE.WRITE


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


class Store(SyncObj):  # type: ignore[misc]
    """The replicated dict."""

    def __init__(self, self_addr: str, partners: list[str], conf: Any) -> None:
        super().__init__(self_addr, partners, conf)
        self.data: dict[bytes, bytes] = {}

    @replicated  # type: ignore[untyped-decorator]
    def put(self, key: bytes, value: bytes) -> bool:
        self.data[key] = value
        return True


class Client:
    """One client connection: replies leave in request order, in batches."""

    __slots__ = ("closed", "fd", "out", "parser", "pending", "server", "sock")

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.parser = RequestParser()
        # Replies in request order; a write's slot stays None until applied.
        self.pending: deque[list[bytes | None]] = deque()
        self.out = bytearray()
        self.closed = False

    def on_event(self, _fd: int, events: int) -> None:
        if events & POLL_EVENT_TYPE.READ:
            try:
                data = self.sock.recv(READ_SIZE)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data is not None:
                if not data:
                    self.close()
                    return
                try:
                    commands = self.parser.parse(data)
                except ProtocolError as exc:
                    self.pending.append([error(f"ERR Protocol error: {exc}")])
                    commands = list(exc.commands)
                for cmd in commands:
                    self.handle(cmd)
                self.server.dirty.add(self)
        if events & POLL_EVENT_TYPE.WRITE:
            self.server.dirty.add(self)
        if events & POLL_EVENT_TYPE.ERROR and not events & POLL_EVENT_TYPE.READ:
            self.close()

    def handle(self, cmd: list[bytes]) -> None:
        name = cmd[0].lower()
        store = self.server.store
        if name == b"set" and len(cmd) >= 3:
            slot: list[bytes | None] = [None]
            self.pending.append(slot)
            self.server.proposed += 1

            def done(_result: Any, err: int, slot: list[bytes | None] = slot) -> None:
                slot[0] = OK_REPLY if err == FAIL_REASON.SUCCESS else error(f"ERR failed {err}")
                self.server.dirty.add(self)

            store.put(cmd[1], cmd[2], callback=done)
            return
        if name == b"get" and len(cmd) == 2:
            value = store.data.get(cmd[1])
            reply = NULL_REPLY if value is None else bulk(value)
        elif name == b"ping":
            reply = b"+PONG\r\n" if len(cmd) == 1 else bulk(cmd[1])
        elif name == b"raftstate":
            reply = b"+" + STATES.get(store.getStatus()["state"], "Unknown").encode() + b"\r\n"
        elif name == b"config" and len(cmd) == 3 and cmd[1].lower() == b"get":
            # redis-benchmark asks for "save" and "appendonly" before it starts.
            reply = b"*2\r\n" + bulk(cmd[2]) + bulk(b"")
        elif name == b"quit":
            reply = OK_REPLY
        else:
            reply = error(f"ERR unknown command '{cmd[0].decode(errors='replace')}'")
        self.pending.append([reply])

    def flush(self) -> None:
        if self.closed:
            return
        pending = self.pending
        out = self.out
        while pending and pending[0][0] is not None:
            out += pending.popleft()[0]  # type: ignore[arg-type]
        if not out:
            return
        try:
            sent = self.sock.send(out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        del out[:sent]
        self.server.poller.subscribe(self.fd, self.on_event, WATCH_WRITE if out else WATCH_READ)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.poller.unsubscribe(self.fd)
            self.sock.close()


class Server:
    """The RESP listener sharing PySyncObj's poller."""

    def __init__(self, store: Store, port: int) -> None:
        self.store = store
        self.poller: Any = store._poller
        self.dirty: set[Client] = set()
        self.proposed = 0
        self.listener = socket.create_server(("127.0.0.1", port), backlog=512)
        self.listener.setblocking(False)
        self.poller.subscribe(self.listener.fileno(), self.on_accept, WATCH_READ)
        # Runs at the end of every tick, after the tick applied entries and
        # before it waits in poll: every reply ready by then leaves now.
        store.addOnTickCallback(self.flush)

    def on_accept(self, _fd: int, _events: int) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = Client(self, sock)
            self.poller.subscribe(client.fd, client.on_event, WATCH_READ)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, set()
        for client in dirty:
            client.flush()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True, help="RESP port for clients")
    ap.add_argument("--raft-port", type=int, required=True, help="PySyncObj's own port")
    ap.add_argument(
        "--partner", action="append", default=[], help="HOST:PORT of a peer's raft port"
    )
    ap.add_argument(
        "--batch", action=argparse.BooleanOptionalAction, default=True,
        help="appendEntriesUseBatch (default on, PySyncObj's default and its advice for throughput)",
    )  # fmt: skip
    ap.add_argument("--period", type=float, default=0.1, help="appendEntriesPeriod, seconds")
    ap.add_argument("--tick", type=float, default=0.05, help="poll timeout per tick, seconds")
    ns = ap.parse_args()

    conf = SyncObjConf(
        autoTick=False,
        appendEntriesUseBatch=ns.batch,
        appendEntriesPeriod=ns.period,
    )
    store = Store(f"127.0.0.1:{ns.raft_port}", ns.partner, conf)
    server = Server(store, ns.port)
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        tick = ns.tick
        while True:
            before = server.proposed
            store.doTick(tick)
            if server.proposed != before:
                # New commands only join the log in the tick after the poll
                # that read them; run it now instead of after the next wait.
                store.doTick(0.0)


if __name__ == "__main__":
    main()
