"""The two Appliers a machine meets, and the log entry format of a command batch.

* :class:`ClientApplier` is handed to ``Machine.command`` for a client's
  command on the node holding the connection: ``apply`` turns a write into a
  log proposal and a read into a read at the configured consistency.
* :class:`ApplyingApplier` is handed to ``Machine.command`` when a committed
  entry is applied (on every node, ``conn`` None): ``apply`` runs ``mutate``.

A NORMAL log entry carries one batch: ``[stamp_ns, [args, args, ...]]`` in
msgpack, where the stamp is the leader's clock when it proposed the batch
(never earlier than any earlier stamp) so that ``m.now()`` is identical on
every node.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import msgpack

from redraft.machine import Applier, Command, Conn, Mutate, Respond
from redraft.server import ClientConn, What

if TYPE_CHECKING:
    from redraft.node import Node


def encode_batch(stamp_ns: int, cmds: list[list[bytes]]) -> bytes:
    data: bytes = _pack((stamp_ns, cmds))
    return data


# Shared rather than one Packer (and buffer) per call, as in transport.codec.
_pack = msgpack.Packer(use_bin_type=True).pack


def decode_batch(data: bytes) -> tuple[int, list[list[bytes]]]:
    stamp, cmds = msgpack.unpackb(data, raw=True, use_list=True)
    return stamp, cmds


class ClientApplier(Applier):
    """``m`` for a client command on the node that holds the connection."""

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    def apply(
        self,
        conn: Conn | None,
        cmd: Command,
        mutate: Mutate | None,
        respond: Respond | None,
    ) -> Any:
        if type(conn) is not ClientConn:
            raise TypeError("apply needs the client connection passed to command()")
        if mutate is None:
            return self.read(conn, respond, cmd)
        return self.write(conn, cmd.args, respond, cmd)

    def read(self, conn: ClientConn, respond: Respond | None, what: What) -> Any:
        """Serve a client's read; returns its reply value, or the slot the reply will fill."""
        if conn._unfilled_writes:
            # A read pipelined behind a write must see that write: run it
            # once everything before it on this connection has replied.
            return conn.later_read(respond, what)
        return self._node.client_read(conn, respond, what)

    def write(
        self, conn: ClientConn, args: list[bytes], respond: Respond | None, what: What
    ) -> Any:
        """Log a client's write; returns the slot its reply will fill."""
        if conn._unfilled_reads:
            # ...and a write behind such a read must wait until it is served.
            return conn.later_write(args, respond, what)
        return self._node.client_write(conn, args, respond, what)

    def now_ns(self) -> int:
        now = time.time_ns()
        stamp = self._node.last_stamp
        return now if now > stamp else stamp

    def random(self) -> random.Random:
        return random.Random()


class ApplyingApplier(Applier):
    """``m`` while a committed entry is applied: runs ``mutate`` deterministically."""

    __slots__ = ("index", "pos", "rng", "stamp")

    def __init__(self) -> None:
        self.stamp = 0
        self.index = 0
        self.pos = 0
        self.rng: random.Random | None = None

    def begin(self, stamp: int, index: int) -> None:
        self.stamp = stamp
        self.index = index

    def end(self) -> None:
        self.rng = None

    def apply(
        self,
        conn: Conn | None,
        cmd: Command,
        mutate: Mutate | None,
        respond: Respond | None,
    ) -> Any:
        if mutate is None:
            return None
        return mutate()

    def now_ns(self) -> int:
        return self.stamp

    def random(self) -> random.Random:
        rng = self.rng
        if rng is None:
            # Seeded by the command's place in the log: the same on every node.
            rng = self.rng = random.Random((self.index << 24) | self.pos)
        return rng
