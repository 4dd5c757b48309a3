"""Differential testing against a real redis-server: the pieces.

* :class:`RedisServer`: a ``redis-server`` on a free loopback port (no
  persistence), started and stopped by pid.
* :class:`CloneServer`: a one-node redraft cluster of the clone (or any
  machine) serving from a thread of the test process.
* :class:`Conn`: one raw connection that sends commands and returns each
  reply as the exact bytes that came back (:func:`reply_end` frames them,
  RESP2's and RESP3's types alike).
* :class:`Differ`: sends the same commands to both, over one connection to
  each (RESP2, or RESP3 after ``HELLO 3`` with ``resp3=True``), and compares
  the raw replies (after a per-command normaliser for the few replies that
  legitimately differ: KEYS's order, TTLs a few milliseconds apart).

The tests in this package use them through the fixtures of ``conftest.py``;
issue 19's data types plug in their own command strategies
(``strategies.py``).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from redraft.examples.clone import Clone
from redraft.machine import Machine
from redraft.node import Node
from redraft.options import Options
from redraft.testing import LOOPBACK, free_ports, wait_for

Args = Sequence[bytes | str | int]


def encode(args: Args) -> bytes:
    """A RESP2 multibulk request."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)


_LINES = frozenset(b"+-:,_#(")
"""RESP2's and RESP3's one-line types: simple string, error, integer, double, null,
boolean, big number."""
_COUNTED = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2}
"""Aggregate types and the replies each element counts: array, set, push, map."""


def reply_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """Where the reply starting at ``pos`` ends (RESP2, or RESP3 after ``HELLO 3``), or None
    if ``buf`` does not hold all of it."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind = buf[pos]
    if kind in _LINES:
        return eol + 2
    n = int(buf[pos + 1 : eol])
    if n < 0:
        return eol + 2
    if kind in b"$=!":  # bulk string, verbatim string, bulk error
        end = eol + 2 + n + 2
        return end if len(buf) >= end else None
    if kind in _COUNTED:
        at: int | None = eol + 2
        for _ in range(n * _COUNTED[kind]):
            assert at is not None
            at = reply_end(buf, at)
            if at is None:
                return None
        return at
    raise ValueError(f"not a RESP reply: {bytes(buf[pos : pos + 40])!r}")


class Conn:
    """A raw connection: replies come back as the bytes the server sent (RESP2 unless sent
    ``HELLO 3``)."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def send(self, args: Args) -> None:
        self.sock.sendall(encode(args))

    def reply(self, timeout: float | None = None) -> bytes:
        """The next reply (raises ``TimeoutError`` if none comes within ``timeout``)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                end = reply_end(self.buf) if self.buf else None
                if end is not None:
                    out = bytes(self.buf[:end])
                    del self.buf[:end]
                    return out
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("the server closed the connection")
                self.buf += data
        finally:
            if timeout is not None:
                self.sock.settimeout(5.0)

    def call(self, *args: bytes | str | int) -> bytes:
        self.send(args)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


class RedisServer:
    """A redis-server on a free loopback port, without persistence."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = found
        self.port = free_ports(1)[0]
        self.dir = tempfile.mkdtemp(prefix="redraft-diff-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}")
            conn = Conn(self.port, timeout=1)
            try:
                return conn.call("PING") == b"+PONG\r\n"
            finally:
                conn.close()

        wait_for(ready, 10, "redis-server to answer PING")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self) -> str:
        conn = Conn(self.port)
        try:
            info = conn.call("INFO", "server")
        finally:
            conn.close()
        for line in info.split(b"\r\n"):
            if line.startswith(b"redis_version:"):
                return line.split(b":", 1)[1].decode()
        return "?"


class CloneServer:
    """A one-node redraft cluster serving a machine (the clone) from a thread of this process."""

    def __init__(
        self, base: Path, machine: Machine | None = None, options: Options | None = None
    ) -> None:
        self.port = free_ports(1)[0]
        self.addr = f"{LOOPBACK}:{self.port}"
        self.machine = machine if machine is not None else Clone()
        opts = options if options is not None else Options(log_level="warning")
        self.node = Node(base / "node", self.addr, "", self.machine, opts)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="differential-node", daemon=True)
        self.stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.node.serve())  # signal handlers: main thread only

    def start(self) -> CloneServer:
        self.thread.start()

        def ready() -> bool:
            conn = Conn(self.port, timeout=1)
            try:
                # A session opened (and ended) is a write committed in this term.
                sid = conn.call("RAFTSESSION", "NEW")
                return (
                    sid.startswith(b":")
                    and conn.call("RAFTSESSION", "END", sid[1:-2]) == b"+OK\r\n"
                )
            finally:
                conn.close()

        wait_for(ready, 15, "the node to serve writes")
        return self

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        asyncio.run_coroutine_threadsafe(self.node.close(), self.loop).result(15)
        self.thread.join(15)
        self.loop.close()


Normaliser = Callable[[bytes], Any]


def _sorted_array(reply: bytes) -> Any:
    """An array reply's elements in sorted order (KEYS: the order is the hash table's)."""
    if not reply.startswith(b"*") or reply.startswith(b"*-1"):
        return reply
    items = []
    at = reply.index(b"\r\n") + 2
    while at < len(reply):
        end = reply_end(reply, at)
        assert end is not None
        items.append(reply[at:end])
        at = end
    return (reply[: reply.index(b"\r\n")], sorted(items))


def _sorted_scan(reply: bytes) -> Any:
    """A SCAN page: the keys of a complete scan (cursor 0) in sorted order, as KEYS's."""
    head = b"*2\r\n$1\r\n0\r\n"
    if not reply.startswith(head):
        return reply
    return (head, _sorted_array(reply[len(head) :]))


NORMALISERS: dict[bytes, Normaliser] = {
    b"keys": _sorted_array,
    b"scan": _sorted_scan,
}
"""Per command (lower case): how its replies are made comparable.  TTL and
PTTL are compared with a tolerance by :meth:`Differ.same`, not here."""

_TOLERANCE = {b"ttl": 1, b"pttl": 1000}  # seconds, milliseconds


class Mismatch(AssertionError):
    """The two servers answered one command differently."""


class Differ:
    """One connection to redis-server and one to the clone; the same commands to both.

    With ``resp3`` both connections speak RESP3 (``HELLO 3``, whose replies,
    which name the servers, are not compared).
    """

    def __init__(self, redis_port: int, clone_port: int, *, resp3: bool = False) -> None:
        self.redis = Conn(redis_port)
        self.clone = Conn(clone_port)
        self.resp3 = resp3
        if resp3:
            for conn in (self.redis, self.clone):
                assert conn.call("HELLO", "3").startswith(b"%")
        self.history: list[tuple[Args, bytes, bytes]] = []

    def close(self) -> None:
        self.redis.close()
        self.clone.close()

    def reset(self) -> None:
        """Empty both keyspaces (FLUSHALL) and forget the history."""
        assert self.redis.call("FLUSHALL") == b"+OK\r\n"
        assert self.clone.call("FLUSHALL") == b"+OK\r\n"
        self.history = []

    def both(self, *args: bytes | str | int) -> tuple[bytes, bytes]:
        """Send one command to both; their raw replies (redis-server's first)."""
        self.redis.send(args)
        self.clone.send(args)
        ours = self.clone.reply()
        theirs = self.redis.reply()
        self.history.append((args, theirs, ours))
        return theirs, ours

    def check(self, *args: bytes | str | int) -> bytes:
        """Send one command to both and require the same reply; returns it."""
        theirs, ours = self.both(*args)
        if not same(args, theirs, ours):
            raise Mismatch(self.report())
        return ours

    def run(self, commands: Iterable[Args]) -> None:
        for args in commands:
            self.check(*args)

    def pipeline(self, commands: list[Args]) -> None:
        """Send ``commands`` to each server in one write, then require the same replies."""
        payload = b"".join(encode(args) for args in commands)
        self.redis.sock.sendall(payload)
        self.clone.sock.sendall(payload)
        for args in commands:
            theirs, ours = self.redis.reply(), self.clone.reply()
            self.history.append((args, theirs, ours))
            if not same(args, theirs, ours):
                raise Mismatch(self.report())

    def report(self) -> str:
        """The history so far, the last command's replies side by side."""
        lines = ["the clone and redis-server disagree:"]
        for args, theirs, ours in self.history[-40:]:
            mark = "  " if same(args, theirs, ours) else "!!"
            shown = " ".join(repr(a) if not isinstance(a, str) else a for a in args)
            lines.append(f"{mark} {shown}")
            if mark == "!!":
                lines.append(f"     redis-server: {theirs!r}")
                lines.append(f"     clone:        {ours!r}")
        return "\n".join(lines)


def _name(args: Args) -> bytes:
    first = args[0]
    raw = first if isinstance(first, bytes) else str(first).encode()
    return raw.lower()


def same(args: Args, theirs: bytes, ours: bytes) -> bool:
    """Whether two raw replies to ``args`` count as the same."""
    if theirs == ours:
        return True
    name = _name(args)
    norm = NORMALISERS.get(name)
    if norm is not None:
        return bool(norm(theirs) == norm(ours))
    slack = _TOLERANCE.get(name)
    if slack is not None and theirs.startswith(b":") and ours.startswith(b":"):
        a, b = int(theirs[1:-2]), int(ours[1:-2])
        return a == b or (a >= 0 and b >= 0 and abs(a - b) <= slack)
    return False


def watch_replies(
    port: int,
    between: str,
    setup: str,
    probe: Sequence[str] = ("PING",),
    *,
    keep_between: bool = False,
) -> list[bytes]:
    """One WATCH case at ``port``: what decides whether EXEC aborts.

    FLUSHALL, then ``setup`` (commands separated by ``;``); one connection
    WATCHes ``k``, another runs ``between``; then MULTI, ``probe``, EXEC.
    Returns the watching connection's replies (and ``between``'s, if
    ``keep_between``).  ``''`` in a command is an empty argument.
    """
    client, other = Conn(port), Conn(port)
    try:
        assert other.call("FLUSHALL") == b"+OK\r\n"
        for command in filter(None, setup.split(";")):
            other.call(*_words(command))
        got = [client.call("WATCH", "k")]
        if between:
            reply = other.call(*_words(between))
            if keep_between:
                got.append(reply)
        return [*got, client.call("MULTI"), client.call(*probe), client.call("EXEC")]
    finally:
        client.close()
        other.close()


def waiters_served(
    port: int,
    waiting: Sequence[Args],
    writes: Sequence[Args],
    *,
    multi: bool,
    after: Sequence[Args] = (),
) -> list[bytes]:
    """Blocked requests served by ``writes`` at ``port``: which key each is served from.

    FLUSHALL; each of ``waiting`` is sent on a connection of its own and
    seen to block before the next is sent (so they wait in that order);
    then ``writes`` run on another connection, in one MULTI/EXEC if
    ``multi``, else one by one.  Returns the writes' replies (EXEC's alone
    with ``multi``), each waiter's reply, then the replies to ``after``.
    """
    writer = Conn(port)
    waiters: list[Conn] = []
    try:
        assert writer.call("FLUSHALL") == b"+OK\r\n"
        for args in waiting:
            waiter = Conn(port)
            waiters.append(waiter)
            waiter.send(args)
            try:
                early = waiter.reply(timeout=0.2)
            except TimeoutError:
                pass
            else:
                raise AssertionError(f"{list(args)} did not block: {early!r}")
        if multi:
            assert writer.call("MULTI") == b"+OK\r\n"
            for args in writes:
                assert writer.call(*args) == b"+QUEUED\r\n"
            got = [writer.call("EXEC")]
        else:
            got = [writer.call(*args) for args in writes]
        got += [waiter.reply(timeout=5) for waiter in waiters]
        return got + [writer.call(*args) for args in after]
    finally:
        for waiter in waiters:
            waiter.close()
        writer.close()


def _words(command: str) -> list[str]:
    return ["" if word == "''" else word for word in command.split()]


def settle(seconds: float) -> None:
    """Sleep (for the few tests that must let a timeout pass on both servers)."""
    time.sleep(seconds)
