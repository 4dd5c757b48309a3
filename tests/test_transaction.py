"""Transactions with a machine of one's own: what a machine writer relies on.

A one-node cluster in a thread of the test process, serving :class:`Tally`:
a machine with its own ``command`` (``m.apply`` with a ``respond``), no
WATCH support, and a blocking command of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgpack
import pytest

from redraft import NULL_ARRAY, Applier, Block, Command, Conn, ErrUnknownCommand, Machine
from tests.differential.harness import CloneServer
from tests.differential.harness import Conn as Raw

pytestmark = pytest.mark.timeout(60)


class Tally(Machine):
    """``ADD n`` (replies ``n=<total>``), ``PEEK`` (the total), ``TAKE`` (waits for a positive
    total, then takes one)."""

    def __init__(self) -> None:
        self.total = 0

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if cmd.name == "add":
            n = int(cmd.args[1])

            def add() -> int:
                self.total += n
                if self.total > 0:
                    m.key_ready(b"total")
                return self.total

            return m.apply(conn, cmd, add, lambda total: f"n={total}".encode())
        if cmd.name == "peek":
            return m.apply(conn, cmd, None, lambda _: self.total)
        if cmd.name == "take":

            def take() -> int:
                if self.total <= 0:
                    raise Block([b"total"], int(cmd.args[1]), NULL_ARRAY)
                self.total -= 1
                return self.total

            return m.blocking(conn, cmd, take, None)
        raise ErrUnknownCommand()

    def snapshot(self, wr: IO[bytes]) -> None:
        wr.write(msgpack.packb(self.total))

    def restore(self, rd: IO[bytes]) -> None:
        self.total = msgpack.unpackb(rd.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloneServer]:
    s = CloneServer(Path(tmp_path_factory.mktemp("tally")), Tally())
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture
def conn(server: CloneServer) -> Iterator[Raw]:
    c = Raw(server.port)
    try:
        yield c
    finally:
        c.close()


def test_a_machine_command_in_exec_gets_its_respond_applied(conn: Raw) -> None:
    start = int(conn.call("PEEK")[1:-2])
    assert conn.call("MULTI") == b"+OK\r\n"
    assert conn.call("ADD", "5") == b"+QUEUED\r\n"
    assert conn.call("PEEK") == b"+QUEUED\r\n"
    assert conn.call("ADD", "-2") == b"+QUEUED\r\n"
    total = start + 3
    reply = conn.call("EXEC")
    first = f"n={start + 5}".encode()
    last = f"n={total}".encode()
    assert reply == (
        b"*3\r\n$%d\r\n%b\r\n:%d\r\n$%d\r\n%b\r\n" % (len(first), first, start + 5, len(last), last)
    )


def test_watch_on_a_machine_without_it_is_refused_and_exec_still_works(conn: Raw) -> None:
    assert conn.call("WATCH", "total") == b"-ERR WATCH is not supported by this machine\r\n"
    assert conn.call("MULTI") == b"+OK\r\n"
    assert conn.call("PING") == b"+QUEUED\r\n"
    assert conn.call("EXEC") == b"*1\r\n+PONG\r\n"


def test_unknown_commands_abort_and_an_error_at_apply_stays_in_its_place(conn: Raw) -> None:
    assert conn.call("MULTI") == b"+OK\r\n"
    assert conn.call("NOPE", "x").startswith(b"-ERR unknown command 'NOPE'")
    assert conn.call("ADD", "1") == b"+QUEUED\r\n"
    assert conn.call("EXEC") == (
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    )
    # ADD with a non-number fails when applied: an error in its place, the rest applied.
    before = int(conn.call("PEEK")[1:-2])
    assert conn.call("MULTI") == b"+OK\r\n"
    assert conn.call("ADD", "x") == b"+QUEUED\r\n"
    assert conn.call("ADD", "1") == b"+QUEUED\r\n"
    reply = conn.call("EXEC")
    assert reply.startswith(b"*2\r\n-ERR ") and reply.endswith(b"n=%d\r\n" % (before + 1))


def test_a_blocking_command_inside_multi_answers_at_once(conn: Raw) -> None:
    total = int(conn.call("PEEK")[1:-2])
    conn.call("ADD", str(-total))
    assert conn.call("MULTI") == b"+OK\r\n"
    assert conn.call("TAKE", "0") == b"+QUEUED\r\n"
    assert conn.call("EXEC") == b"*1\r\n*-1\r\n"


def test_a_blocking_command_of_a_machine_waits_and_times_out(server: CloneServer) -> None:
    waiter, adder = Raw(server.port), Raw(server.port)
    try:
        total = int(adder.call("PEEK")[1:-2])
        adder.call("ADD", str(-total))
        waiter.send(["TAKE", "0"])
        with pytest.raises(TimeoutError):
            waiter.reply(timeout=0.2)
        assert adder.call("ADD", "2") == b"$3\r\nn=2\r\n"
        assert waiter.reply(timeout=5) == b":1\r\n"
        start = time.monotonic()
        adder.call("ADD", "-1")
        assert waiter.call("TAKE", "150") == b"*-1\r\n"
        assert time.monotonic() - start >= 0.14
    finally:
        waiter.close()
        adder.close()


def test_raftexec_runs_a_packed_transaction_and_refuses_a_malformed_one(conn: Raw) -> None:
    before = int(conn.call("PEEK")[1:-2])
    packed = msgpack.packb([[b"ADD", b"4"], [b"PEEK"]], use_bin_type=True)
    watches = msgpack.packb([], use_bin_type=True)
    reply = conn.call("RAFTEXEC", watches, packed)
    expect = f"n={before + 4}".encode()
    assert reply == b"*2\r\n$%d\r\n%b\r\n:%d\r\n" % (len(expect), expect, before + 4)
    assert conn.call("RAFTEXEC", b"\xc1", packed) == b"-ERR malformed transaction\r\n"
    assert conn.call("RAFTEXEC", watches, msgpack.packb([1, 2])) == (
        b"-ERR malformed transaction\r\n"
    )


def test_resp3_exec_aborted_by_watch_is_a_resp3_null(server: CloneServer) -> None:
    clone = CloneServer(server_dir(server))
    # The clone serves WATCH; a second server keeps this module's machine apart.
    clone.start()
    try:
        a, b = Raw(clone.port), Raw(clone.port)
        try:
            a.sock.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
            time.sleep(0.2)
            a.sock.recv(1 << 16)  # HELLO's map
            a.buf.clear()
            assert a.call("WATCH", "k") == b"+OK\r\n"
            assert b.call("SET", "k", "1") == b"+OK\r\n"
            assert a.call("MULTI") == b"+OK\r\n"
            assert a.call("GET", "k") == b"+QUEUED\r\n"
            a.send(["EXEC"])
            time.sleep(0.2)
            assert a.sock.recv(1 << 16) == b"_\r\n"
        finally:
            a.close()
            b.close()
    finally:
        clone.stop()


def server_dir(server: CloneServer) -> Path:
    return Path(server.node.dir).parent / "resp3"
