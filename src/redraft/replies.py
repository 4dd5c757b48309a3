"""Replies still to come: reply slots, runs of plain commands answered as one, and filling them.

A request whose reply is not ready when it is read (a write waiting to
commit, a read waiting for its ReadIndex round) holds a :class:`Slot` in its
connection's line, so that replies always leave in request order.  The
rules of that line live in :class:`redraft.session.Session`; this module
holds what the rest of the node hands back to it: slots, and
:func:`answer` to fill many at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any, Final, Protocol, cast

from redraft.errors import NOT_APPLIED, ErrUnknownCommand, Redirect, expected, unknown_command_text
from redraft.machine import Applier, Block, Read, Respond
from redraft.resp import ErrorReply, encode_error

log = logging.getLogger("redraft.session")

Encode = Callable[..., bytes]


class SlotKind(IntEnum):
    """What a reply slot waits for."""

    WAIT = 0
    """Started: anything the node fills (a built-in's later answer, say)."""
    READ = 1
    """Started: a read waiting for its ReadIndex round."""
    LATER_READ = 2
    """Not started: a read behind unanswered commands (it must see their effects)."""
    LATER_WRITE = 3
    """Not started: a write behind an unanswered read (which must not see it)."""
    WRITE = 4
    """Started: a client write waiting to commit."""


# Enum members looked up on their class cost ~0.1 us each in Python 3.11; the
# request path compares with these aliases instead.
WAIT: Final = SlotKind.WAIT
READ: Final = SlotKind.READ
LATER_READ: Final = SlotKind.LATER_READ
LATER_WRITE: Final = SlotKind.LATER_WRITE
WRITE: Final = SlotKind.WRITE


class Line(Protocol):
    """A connection's line of replies, as slots see it (:class:`redraft.session.Session`)."""

    addr: str
    encode: Encode
    redirect: str
    """How a redirect is answered: ``Options.redirect`` ("try", "moved" or "proxy")."""

    def settle(self, slot: Slot, data: bytes) -> bool:
        """Give ``slot`` its reply without writing anything out; False if it had one."""
        ...

    def advance(self) -> None:
        """Write out the answered head of the line and start what may start now."""
        ...

    def fill_error(self, slot: Slot, exc: BaseException) -> None:
        """Answer ``slot`` with the error ``exc`` and move the line on."""
        ...

    def new_slot(self, kind: SlotKind = WAIT) -> Slot:
        """Take a place in line for a reply that comes later."""
        ...


class Run(Protocol):
    """What a slot answering more than one plain command is (or a token standing for bytes)."""

    @property
    def count(self) -> int:
        """How many logged commands the slot answers."""
        ...

    def errors(self, exc: BaseException, mode: str = "try") -> bytes:
        """The slot's reply when it fails as a whole."""
        ...


class Slot:
    """A reply still to come, holding its connection's place in line."""

    __slots__ = ("args", "conn", "data", "encode", "kind", "name", "respond", "run")

    def __init__(self, kind: SlotKind, conn: Line) -> None:
        self.kind = kind
        self.conn = conn
        self.encode: Encode = conn.encode
        """The protocol of the request (a later HELLO does not change its reply's)."""
        self.data: bytes | None = None
        """The encoded reply, once there is one."""
        self.respond: Respond | None = None
        self.name = ""
        """The command's name, for error replies."""
        self.run: Run | None = None
        """The run of plain commands this slot answers as a whole, if any."""
        self.args: list[bytes] | None = None
        """The command's arguments: a write not started yet needs them to start; a
        redirect in moved mode names the slot of their key."""

    @property
    def commands(self) -> int:
        """How many logged commands this slot answers (a write run's answers several)."""
        run = self.run
        return run.count if run is not None else 1

    def error(self, exc: BaseException) -> bytes:
        """The reply of this slot when it fails as a whole: one error per command it answers."""
        run = self.run
        mode = self.conn.redirect
        if run is not None:
            return run.errors(exc, mode)
        return failure(exc, self.name, self.args, mode)

    def failed(self, exc: Exception) -> bytes:
        """Like :meth:`error`, for a command that raised ``exc`` when it started: a bug is logged."""
        run = self.run
        if run is not None:
            return run.errors(exc, self.conn.redirect)
        return command_error(self.conn, exc, self.name, self.args)


def reply_for(slot: Slot, result: Any, respond: Respond | None) -> bytes:
    """The encoded reply of a finished command (an error reply if it or ``respond`` failed)."""
    if isinstance(result, BaseException):
        return encode_error(result, slot.name)
    try:
        return slot.encode(respond(result) if respond is not None else result)
    except Exception as exc:
        return error_reply(exc, slot.name, slot.conn.addr)


def error_reply(exc: Exception, name: str, addr: str) -> bytes:
    """The error reply of a command that raised; an unexpected error (a bug) is logged too."""
    if not expected(exc):
        log.warning("command %r from %s failed: %r", name, addr, exc)
    return encode_error(exc, name)


def failure(exc: BaseException, name: str, args: Sequence[bytes] | None, mode: str) -> bytes:
    """The error reply of the command ``args`` (named ``name``) that failed with ``exc``.

    ``mode`` is the node's ``--redirect``.  In moved mode a redirect is
    Redis Cluster's ``MOVED``, naming the slot of the command's own key: a
    client points that slot at the leader and retries there.  In proxy mode
    a request the node could forward was forwarded; a redirect that reaches
    a reply came after the command was taken (leadership moved before it
    was logged), and says so to a client that knows nothing of redirects.
    Every other error, and any error in try mode, is encoded as
    :func:`~redraft.resp.encode_error` does.
    """
    if isinstance(exc, Redirect) and mode != "try":
        if mode == "moved":
            return encode_error(ErrorReply(exc.moved_text(args)), name)
        if exc.leader:
            return encode_error(ErrorReply(NOT_APPLIED), name)
    return encode_error(exc, name)


def command_error(line: Line, exc: Exception, name: str, args: Sequence[bytes] | None) -> bytes:
    """:func:`error_reply` of a command of ``line``'s, a redirect answered in the line's mode."""
    if isinstance(exc, Redirect):
        return failure(exc, name, args, line.redirect)
    if isinstance(exc, ErrUnknownCommand) and args:
        return encode_error(ErrorReply(unknown_command_text(args)), name)
    return error_reply(exc, name, line.addr)


class Parked:
    """The result of a blocking command that could not be answered yet.

    :func:`answer` hands its slot to ``park`` (:class:`redraft.waiting.Waiters`)
    instead of answering it.
    """

    __slots__ = ("args", "block", "park")

    def __init__(self, block: Block, park: Callable[[Slot, Parked], None]) -> None:
        self.block = block
        self.park = park
        self.args: list[bytes] = []
        """The logged command, to log again when woken (set by whoever applied it)."""


def answer(slots: list[Slot], results: list[Any] | None = None) -> None:
    """Answer started slots in order: a committed batch's writes with their
    ``results`` (one per command), or a confirmed ReadIndex round's reads
    (``results`` None).

    Each connection's answered head of line is written out once for the
    whole batch rather than once per command.
    """
    if results is not None and len(results) != len(slots):
        results = _per_slot(slots, results)
    touched: dict[Line, None] = {}
    for pos, slot in enumerate(slots):
        if slot.data is None:
            conn = slot.conn
            result = None if results is None else results[pos]
            if type(result) is Parked:
                result.park(slot, result)
                continue
            conn.settle(slot, reply_for(slot, result, slot.respond))
            touched[conn] = None
    for conn in touched:
        conn.advance()


def fail(slots: list[Slot], exc: BaseException) -> None:
    """Answer every slot with the error ``exc`` (one error per command each answers)."""
    for slot in slots:
        slot.conn.fill_error(slot, exc)


def _per_slot(slots: list[Slot], results: list[Any]) -> list[Any]:
    """``results`` (one per command) regrouped one per slot: a write run's slot gets a list."""
    grouped: list[Any] = []
    pos = 0
    for slot in slots:
        n = slot.commands
        grouped.append(results[pos] if n == 1 else results[pos : pos + n])
        pos += n
    return grouped


class ReadRun:
    """Plain reads of one pipelined run that wait together (ReadIndex, redirect).

    It is their reply slot's ``respond`` and ``run``: one slot and one
    ReadIndex token serve them all, and their replies, each encoded in turn
    (an error for a read that raised), fill the slot joined.
    """

    __slots__ = ("addr", "encode", "m", "reads")

    def __init__(
        self,
        m: Applier,
        reads: list[tuple[Read, list[bytes], str]],
        encode: Encode,
        addr: str,
    ) -> None:
        self.m = m
        self.reads = reads
        self.encode = encode
        self.addr = addr

    @property
    def name(self) -> str:
        """The first read's name (what a single error reply would be named after)."""
        return self.reads[0][2]

    @property
    def count(self) -> int:
        return len(self.reads)

    def __call__(self, _: Any) -> bytes:
        out = bytearray()
        m = self.m
        encode = self.encode
        for read, args, name in self.reads:
            try:
                out += encode(read(m, args))
            except Exception as exc:
                out += error_reply(exc, name, self.addr)
        return bytes(out)

    def errors(self, exc: BaseException, mode: str = "try") -> bytes:
        """One error reply per read: the run failed as a whole (a redirect, say)."""
        return b"".join(failure(exc, name, args, mode) for _, args, name in self.reads)


class WriteRun:
    """Plain writes of one pipelined run on the leader, answered as one.

    Consecutive writes of one route in a client's read share one reply slot
    (this object is its ``respond`` and ``run``) while their commands go to
    the batch one by one, so a pipeline of SETs costs one slot, not one per
    SET.  The committed results come back as one list (see :func:`answer`),
    each encoded in turn: an error reply for a write whose apply failed.
    """

    __slots__ = ("addr", "batch", "count", "encode", "first", "name")

    def __init__(
        self,
        name: str,
        encode: Encode,
        addr: str,
        batch: list[list[bytes]] | None = None,
        first: int = 0,
    ) -> None:
        self.name = name
        self.encode = encode
        self.addr = addr
        self.count = 0
        """How many commands of the batch it answers (consecutive ones)."""
        self.batch = batch
        self.first = first
        """Its commands are ``batch[first : first + count]``: kept by reference (no
        copy per write) for a redirect in moved mode, which names each one's slot.
        A batch that fails is dropped whole, never changed."""

    def __call__(self, results: list[Any]) -> bytes:
        encode = self.encode
        first = results[0]
        if not isinstance(first, BaseException) and all(r is first for r in results):
            # One reply for all (a run of SETs: OK each): encoded once.
            try:
                return encode(first) * len(results)
            except Exception:
                pass  # each gets its error reply below
        out = bytearray()
        for result in results:
            if isinstance(result, BaseException):
                out += encode_error(result, self.name)
                continue
            try:
                out += encode(result)
            except Exception as exc:
                out += error_reply(exc, self.name, self.addr)
        return bytes(out)

    def errors(self, exc: BaseException, mode: str = "try") -> bytes:
        """One error reply per write: the run failed as a whole (leadership lost, say)."""
        if mode == "moved" and isinstance(exc, Redirect):
            batch = self.batch
            cmds = batch[self.first : self.first + self.count] if batch is not None else []
            if len(cmds) != self.count:
                cmds = [[]] * self.count  # not known (never expected): slot 0
            return b"".join(failure(exc, self.name, args, mode) for args in cmds)
        return failure(exc, self.name, None, mode) * self.count


def as_is(replies: Any, cmd_name: str = "") -> bytes:
    """The encoder of a run's slot: its replies come encoded."""
    return cast(bytes, replies)


def deferred(read: Read, m: Applier, args: list[bytes]) -> Respond:
    """A plain read as the ``respond`` of a read that waits for its turn."""
    return lambda _: read(m, args)
