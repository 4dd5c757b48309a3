"""One client connection's requests and replies, with no I/O: bytes in, commands run, bytes out.

A :class:`Session` is fed what the socket read (:meth:`Session.feed`); it
parses the requests, enforces authentication and the connection's limits,
runs each command (a built-in, a machine's plain read or write, or the
machine's ``command``) and keeps the replies in request order, some of
them still to come (:class:`~redraft.replies.Slot`).  What is ready to send
accumulates in :attr:`Session.out`; the asyncio protocol around it
(:mod:`redraft.server`) writes it out and closes the socket when told.

The ordering rules live here and only here.  A connection behaves as if
its commands ran one after another: a read waits for every reply before it
(so it sees the connection's earlier writes), and a write waits for every
read before it to be served (so those reads do not see it).  Writes behind
writes pipeline freely.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from redraft.errors import NOT_APPLIED, Redirect
from redraft.machine import Applier, Command, Conn, Machine, Mutate, Read, Respond, Write
from redraft.options import Level, Options
from redraft.registry import BUILTIN, MACHINE, READ, WRITE, Registry, Route
from redraft.replies import (
    LATER_READ,
    LATER_WRITE,
    WAIT,
    Line,
    ReadRun,
    Slot,
    SlotKind,
    WriteRun,
    as_is,
    command_error,
    deferred,
    error_reply,
    reply_for,
)
from redraft.replies import (
    READ as READ_SLOT,
)
from redraft.replies import (
    WRITE as WRITE_SLOT,
)
from redraft.resp import (
    NULL3,
    NULL_BULK,
    ErrorReply,
    Lookup,
    ProtocolError,
    RequestParser,
    encode,
    encode3,
    encode_command,
    encode_error,
    encode_push,
    run_end,
)
from redraft.roundwait import HeldForRound, confirmed, front_reads, wait_round
from redraft.security import (
    NOAUTH_REPLY,
    PRE_AUTH_COMMANDS,
    UNAUTHENTICATED_QUERY_BUFFER,
    ConnGuard,
    Security,
)

log = logging.getLogger("redraft.session")

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Requests:
    """What a session may ask of the Raft group that serves its commands.

    Bound methods of the group's parts, called directly: on the request
    path each layer of delegation would cost a call per request.
    """

    read_now: Callable[[], bool]
    """Whether a read may be answered from the local state right now."""
    read: Callable[[Line, Slot | None, Respond | None, str], Any]
    """Serve a read now (its reply value) or later (the slot it will fill); may raise Redirect."""
    write: Callable[[Line, Slot | None, list[bytes], Respond | None, str], Slot]
    """Queue a write for this turn's log entry; the slot its reply will fill.  May raise Redirect."""
    open_run: Callable[[Slot], list[list[bytes]] | None]
    """Queue ``slot`` for this turn's batch; the list a run of writes appends its commands to.

    None (and ``slot`` not queued) when this node does not lead.
    """
    last_stamp: Callable[[], int]
    """The newest time stamp applied (what ``m.now_ns()`` never goes below)."""
    forward: Callable[[str, bytes, Callable[[bytes | None], None], int, bool], bool]
    """Send ``count`` requests (their RESP bytes) to the leader at the address given, to be
    answered in RESP3 if the last argument is True (else RESP2); the callable gets each
    reply in turn, or None for each lost with the link.  False if nothing was sent."""
    leader: Callable[[], str]
    """The leader as this node knows it ("" if none)."""


class Ending(IntEnum):
    """How a connection is to end; each is final once set, and a later, harsher one wins."""

    NO = 0
    AFTER_REPLIES = 1
    """Close once every reply owed is sent (QUIT, a protocol error)."""
    NOW = 2
    """Send what is ready, then close (a limit was crossed)."""
    ABORT = 3
    """Drop the connection without sending anything more."""


_NO_END: Final = Ending.NO


class NoReply:
    """Returned by a command that must not be answered (peer traffic)."""


NO_REPLY: Final = NoReply()


@dataclass
class Shared:
    """What every session of a node shares: its commands, its group, its settings."""

    registry: Registry
    requests: Requests
    machine: Machine
    options: Options
    security: Security
    forget: list[Callable[[Session], None]] = field(default_factory=list)
    """Called with a connection whose state is to be forgotten: it closed, or sent RESET
    (pub/sub drops its subscriptions)."""

    def __post_init__(self) -> None:
        self.applier = ClientApplier(self)
        self.round_reads = self.options.consistency is Level.HIGH
        """Every read waits for a ReadIndex round: bytes that begin with one are held for it."""


class ReplyLine:
    """A connection's replies in request order: the slots still to be answered, and what is ready.

    The half of :class:`Session` that keeps the ordering rules: a read waits
    for every reply before it, a write for every read before it, and replies
    leave in request order; plain writes are queued here, in their place in
    line.  Its attributes are set by :class:`Session`.
    """

    shared: Shared
    addr: str
    out: bytearray
    encode: Callable[..., bytes]
    ending: Ending
    on_output: Callable[[], None]
    peer_id: str
    redirect: str
    tag: list[bytes] | None
    _slots: deque[Slot]
    _unfilled_reads: int
    _unfilled_writes: int
    _later_writes: int
    _held: list[list[bytes]] | None

    # --- reads and writes in request order

    def read(self, respond: Respond | None, name: str, run: ReadRun | None = None) -> Any:
        """Serve a read in its place in line: its reply value, or the slot the reply will fill."""
        if self._unfilled_writes:
            # A read pipelined behind a write must see that write: run it
            # once everything before it on this connection has replied.
            slot = self._later(LATER_READ, respond, name)
            slot.run = run
            return slot
        value = self.shared.requests.read(self, None, respond, name)
        if run is not None and type(value) is Slot:
            value.run = run  # failed as a whole, it owes one error per read
        return value

    def write(self, args: list[bytes], respond: Respond | None, name: str) -> Slot:
        """Log a write in its place in line; the slot its reply will fill."""
        tag = self.tag
        if tag is not None:
            if not tag:
                raise ValueError(
                    f"ERR '{name}' logs more than one write: RAFTSEQ cannot make it exactly-once"
                )
            args = tag + args
            self.tag = []
        if self._unfilled_reads:
            # ...and a write behind such a read must wait until it is served.
            slot = self._later(LATER_WRITE, respond, name)
            slot.args = args
            return slot
        return self.shared.requests.write(self, None, args, respond, name)

    def _later(self, kind: SlotKind, respond: Respond | None, name: str) -> Slot:
        """A place in line for a read or write that may start only once what is ahead allows."""
        slot = Slot(kind, self)
        slot.respond = respond
        slot.name = name
        if kind is LATER_READ:
            self._unfilled_reads += 1
        else:
            self._unfilled_writes += 1
            self._later_writes += 1
        self._slots.append(slot)
        return slot

    # --- the line of replies

    def has_pending(self) -> bool:
        """Whether replies are still owed."""
        return bool(self._slots)

    def reply_bytes(self, data: bytes) -> None:
        """Queue an encoded reply behind everything owed before it."""
        if self._slots:
            s = Slot(WAIT, self)
            s.data = data
            self._slots.append(s)
        else:
            self.out += data

    def new_slot(self, kind: SlotKind = WAIT) -> Slot:
        """Take a place in line for a reply that comes later."""
        s = Slot(kind, self)
        if kind is READ_SLOT:
            self._unfilled_reads += 1
        elif kind is WRITE_SLOT:
            self._unfilled_writes += 1
        self._slots.append(s)
        return s

    def drop_slot(self, slot: Slot) -> None:
        """Forget a slot taken for a reply that will not come (the command failed at once)."""
        self._slots.remove(slot)
        self._uncount(slot)

    def fill(self, slot: Slot, value: Any) -> None:
        """Answer ``slot`` with ``value`` (encoded in the slot's protocol)."""
        self._fill(slot, reply_for(slot, value, None))

    def fill_error(self, slot: Slot, exc: BaseException) -> None:
        """Answer ``slot`` with the error ``exc`` (one per command it answers)."""
        self._fill(slot, slot.error(exc))

    def settle(self, slot: Slot, data: bytes) -> bool:
        """Give ``slot`` its reply without writing anything out; False if it had one."""
        if slot.data is not None:
            return False
        slot.data = data
        kind = slot.kind
        if kind is WRITE_SLOT:
            self._unfilled_writes -= 1
        elif kind is not WAIT:
            self._uncount(slot)
        return True

    def _uncount(self, slot: Slot) -> None:
        kind = slot.kind
        if kind is READ_SLOT or kind is LATER_READ:
            self._unfilled_reads -= 1
        elif kind is WRITE_SLOT or kind is LATER_WRITE:
            self._unfilled_writes -= 1
            if kind is LATER_WRITE and slot.args is not None:
                self._later_writes -= 1

    def _fill(self, slot: Slot, data: bytes) -> None:
        if not self.settle(slot, data):
            return
        slots = self._slots
        if slots and (slots[0] is slot or slot.kind is READ_SLOT or slot.kind is LATER_READ):
            self.advance()

    def advance(self) -> None:
        """Move the answered head of the line to :attr:`out` and start what may start now."""
        slots = self._slots
        out = self.out
        while slots:
            head = slots[0]
            if head.data is None and not self._start_read(head):
                break
            out += head.data  # type: ignore[arg-type]  # _start_read filled it
            slots.popleft()
        if self._later_writes:
            self._start_writes()
        if self._held is not None and not slots:
            self._resume()
        if out or self.ending is not _NO_END:
            self.on_output()

    def _resume(self) -> None:
        """Run the requests held until the line was answered (:meth:`Session.wait_turn`)."""
        raise NotImplementedError

    def _start_read(self, head: Slot) -> bool:
        """Start a read that reached the head of the line; whether it is answered already."""
        if head.kind is not LATER_READ:
            return False
        head.kind = READ_SLOT
        try:
            value = self.shared.requests.read(self, head, head.respond, head.name)
        except Exception as exc:
            self._unfilled_reads -= 1
            head.data = head.failed(exc)
            return True
        if value is head:
            return False
        self._unfilled_reads -= 1
        try:
            head.data = head.encode(value)
        except Exception as exc:
            head.data = encode_error(exc, head.name)
        return True

    def _start_writes(self) -> None:
        """Start the writes that no unanswered read precedes any more."""
        requests = self.shared.requests
        for s in list(self._slots):
            if s.data is None and (s.kind is READ_SLOT or s.kind is LATER_READ):
                break
            if s.kind is LATER_WRITE:
                s.kind = WRITE_SLOT
                self._later_writes -= 1
                args = s.args  # kept: a redirect in moved mode names its key's slot
                assert args is not None
                try:
                    requests.write(self, s, args, s.respond, s.name)
                except Exception as exc:
                    self.settle(s, s.failed(exc))
        if self._slots and self._slots[0].data is not None:
            self.advance()

    def take_output(self) -> bytes:
        """The replies ready to send (and forget them)."""
        data = bytes(self.out)
        self.out.clear()
        return data

    def forward(self, cmds: list[list[bytes]], name: str, leader: str) -> None:
        """Have the leader run requests this node may not serve; their replies, in one
        slot, take their place in line.

        Proxy mode (:mod:`redraft.transport.forward`): a pipelined run goes in
        one write, to be answered in this client's protocol (RESP3 after
        ``HELLO 3``), so the leader's reply bytes are relayed as they come.
        A request that came forwarded is not sent on again: two nodes that
        each believe the other leads must not pass it back and forth.
        """
        if self.peer_id:
            self.reply_bytes(encode_error(ErrorReply(NOT_APPLIED), name) * len(cmds))
            return
        slot = self.new_slot(WAIT)
        slot.name = name
        data = b"".join(map(encode_command, cmds))
        n = len(cmds)
        if not self.shared.requests.forward(
            leader, data, _Gather(slot, n), n, self.encode is encode3
        ):
            self.drop_slot(slot)
            failed = encode_error(
                ErrorReply(f"{FORWARD_FAILED} {leader}; it was not applied"), name
            )
            self.reply_bytes(failed * len(cmds))

    # --- plain writes, in their place in line

    def _plain_writes(self, cmds: list[list[bytes]], i: int, n: int, route: Route) -> int:
        """Queue the run of plain writes of ``route`` starting at ``cmds[i]``; the index after it.

        What :meth:`_dispatch` does for a plain write, with one reply slot
        for up to ``max_batch_commands`` of them (see
        :class:`~redraft.replies.WriteRun`).  The run is the writes of this
        route that come next in the read, so nothing checked when it began
        can have changed before its end.
        """
        end = run_end(cmds, i + 1, n, self.shared.registry.routes, route)
        write: Write = route.fn
        check = route.check
        while i < end:
            refusal: Exception | None = None
            if check is None:
                good = end
            elif end - i == 1:  # one write (no pipeline): no run to look through
                try:
                    check(cmds[i])
                    good = end
                except Exception as exc:
                    good, refusal = i, exc
            else:
                good, refusal = _first_refused(write, cmds, i, end)
            while i < good:
                i = self._queue_writes(cmds, i, good, end, route)
            if refusal is not None and i == good:
                # Refused before the log: its error takes its place in line.
                self.reply_bytes(error_reply(refusal, route.name, self.addr))
                i += 1
        return end

    def _lone_write(self, args: list[bytes], route: Route) -> None:
        """A plain write alone in its read, as :meth:`_plain_writes` queues a run of one.

        The commonest request (a client waiting for each reply before the
        next) in one call instead of five: the leader's interpreter time
        per write is what bounds its writes per second.
        """
        check = route.check
        if check is not None:
            try:
                check(args)
            except Exception as exc:
                self.reply_bytes(error_reply(exc, route.name, self.addr))
                return
        slot = Slot(WRITE_SLOT, self)
        slot.name = route.name  # before open_run: the metrics' timing twin reads it
        slot.args = args
        batch = self.shared.requests.open_run(slot)
        if batch is None:
            # Not leading: a redirect, or proxy mode's forward.
            self._plain_writes([args], 0, 1, route)
            return
        self._unfilled_writes += 1
        self._slots.append(slot)
        batch.append(args)

    def _queue_writes(
        self, cmds: list[list[bytes]], i: int, good: int, end: int, route: Route
    ) -> int:
        """Queue checked writes from ``cmds[i]`` (before ``good``) under one slot; the index after.

        Not leading, the rest of the run (to ``end``) goes to the leader in
        proxy mode, or this one write takes the general path (a redirect).
        """
        shared = self.shared
        slot = self.new_slot(WRITE_SLOT)
        slot.name = route.name
        batch = shared.requests.open_run(slot)
        if batch is None:
            self.drop_slot(slot)
            if self.redirect == "proxy" and (leader := shared.requests.leader()):
                self.forward(cmds[i:end], route.name, leader)
                return end
            self._dispatch(cmds[i], route)
            return i + 1
        stop = i + shared.options.max_batch_commands  # a run never spans two entries
        if stop > good:
            stop = good
        if stop - i == 1:
            slot.args = cmds[i]
            batch.append(cmds[i])
            return stop
        run = WriteRun(route.name, slot.encode, self.addr, batch, len(batch))
        run.count = stop - i
        slot.run = run
        slot.respond = run
        slot.encode = as_is
        batch += cmds[i:stop]
        return stop

    def _dispatch(self, args: list[bytes], route: Route) -> None:
        """The general path of one command (the session's)."""
        raise NotImplementedError


class Session(ReplyLine):
    """One client (or incoming peer) connection; implements :class:`redraft.Conn`."""

    def __init__(self, shared: Shared, addr: str = "") -> None:
        self.shared = shared
        self.id = next(_ids)
        self.addr = addr
        self.name = ""
        self.context: Any = None
        self.peer_id = ""
        """Set once the connection proved to be a peer's link (RAFTPEER)."""
        opts = shared.options
        self.authenticated = shared.security.password is None
        self.guard: ConnGuard = shared.security.new_guard()
        self.query_limit = opts.max_query_buffer
        """Unparsed bytes this client may hold (less until it authenticates)."""
        if not self.authenticated:
            self.query_limit = min(opts.max_query_buffer, UNAUTHENTICATED_QUERY_BUFFER)
        self._parser = RequestParser(
            max_bulk_len=opts.max_bulk_len,
            max_multibulk_len=opts.max_multibulk_len,
            max_inline_len=opts.max_inline_len,
        )
        self.out = bytearray()
        """Replies ready to send, in order."""
        self.encode: Callable[..., bytes] = encode
        """The reply encoder of the protocol this client speaks (HELLO switches it)."""
        self.redirect = opts.redirect
        """How a redirect is answered (``Options.redirect``): proxy mode forwards the request."""
        self.ending = Ending.NO
        """Whether and how the connection is to end (the adapter acts on it)."""
        self.closed = False
        self.on_output: Callable[[], None] = _ignore
        """Called when replies become ready outside :meth:`feed` (a write committed)."""
        self.tag: list[bytes] | None = None
        """While a ``RAFTSEQ`` runs its command: the prefix its write is logged under."""
        self.hold: Callable[[list[bytes], Route], bool] | None = None
        """A mode holding the connection (MULTI queueing, RESP2 subscriber mode): it sees
        every request first and returns True for one it took (it is then not run)."""
        self.transaction: Any = None
        """MULTI/EXEC/WATCH state (:class:`redraft.transaction.Transaction`), made on first use."""
        self.unsent: Callable[[], int] = _nothing
        """Bytes handed to the socket but not sent yet (the server sets it)."""
        self._slots: deque[Slot] = deque()
        self._unfilled_reads = 0
        self._unfilled_writes = 0
        self._later_writes = 0
        self._held: list[list[bytes]] | None = None
        self._held_size = 0
        self._held_over: Callable[[list[bytes], Route], bool] | None = None
        self._lookup: Lookup | None = None
        self.round_wait: HeldForRound | None = None
        """Bytes held for a ReadIndex round (:mod:`redraft.roundwait`): what arrives joins them."""
        self._protocol_changed()

    # --- bytes in

    def feed(self, data: bytes) -> None:
        """Run the requests completed by ``data``; replies go to :attr:`out`."""
        held = self.round_wait
        if held is not None:
            held.more(data)
            return
        # The parser answers the KeyRead reads (GET) at the front itself,
        # where _reads_in_place would answer them: nothing before them on
        # the connection, no mode holding it, the lease asked once.
        lookup = self._lookup
        if lookup is not None and (self.hold is not None or self._slots or not self.authenticated):
            lookup = None
        if (
            lookup is not None
            and self.shared.round_reads
            and data.find(b"\r\n*", 4) >= 0  # more than one request, most likely
            and self._parser.idle
            and wait_round(self, data)
        ):
            return
        try:
            cmds = self._parser.parse(data, lookup)
        except ProtocolError as exc:
            self._broken(exc)
            return
        if lookup is not None and len(self.out) > lookup[3]:
            self._over_output_limit()
            return
        if cmds:
            route = self.shared.registry.routes.get(cmds[0][0]) if len(cmds) == 1 else None
            if route is None or self.hold is not None or not self.authenticated:
                self._serve(cmds)
            elif route.kind is WRITE and not self._unfilled_reads:
                self._lone_write(cmds[0], route)
            elif route.kind is READ:
                # A read alone that the parser could not answer (one waiting
                # for a ReadIndex round, most often): where _serve_free would
                # send it, in one call (ReplyLine.read keeps it in line).
                self._dispatch(cmds[0], route)
                if len(self.out) > self.shared.options.max_output_buffer:
                    self._over_output_limit()
            else:
                self._serve(cmds)
        if self._parser.buffered > self.query_limit:
            self.overflow()

    def run_held(self, line: Slot, data: bytes, confirmed_round: bool) -> None:
        """Run bytes held for ReadIndex rounds (:mod:`redraft.roundwait`), their replies after ``line``.

        Confirmed, the reads at the front answer now (in place by the
        parser where it can) and fill ``line``; the rest runs as if just read.
        """
        replies = bytearray()
        lookup = None
        if confirmed_round and self._lookup is not None:
            tables, _, _, limit, nil = self._lookup
            lookup = (tables, confirmed, replies, limit, nil)
        try:
            cmds = self._parser.parse(data, lookup)
        except ProtocolError as exc:
            self._fill(line, bytes(replies))
            self._broken(exc)
            return
        done = front_reads(self, cmds, replies) if confirmed_round else 0
        self._fill(line, bytes(replies))
        if len(replies) > self.shared.options.max_output_buffer:
            self._over_output_limit()
        elif done < len(cmds):
            self._serve(cmds[done:])
        if self._parser.buffered > self.query_limit:
            self.overflow()

    def _broken(self, error: ProtocolError) -> None:
        """Redis answers a bad request and hangs up; the requests before it in the same read run."""
        if error.commands:
            self._serve(error.commands)
        if self.ending is Ending.ABORT:
            return
        log.info("protocol error from %s: %s", self.addr, error)
        self.reply_bytes(b"-ERR " + str(error).encode() + b"\r\n")
        self.end(Ending.AFTER_REPLIES)

    def overflow(self) -> None:
        """A request that never ends must not hold memory without bound."""
        log.warning(
            "closing %s: %d bytes of unfinished request, over the query buffer limit",
            self.addr,
            self._parser.buffered,
        )
        self.out += b"-ERR max query buffer length reached: closing the connection\r\n"
        self.end(Ending.NOW)

    def _serve(self, cmds: list[list[bytes]]) -> None:
        """Run parsed requests in order."""
        if self.hold is not None:
            self._serve_held(cmds)
        else:
            self._serve_free(cmds)

    def _serve_held(self, cmds: list[list[bytes]]) -> None:
        """Run requests while a mode holds the connection (MULTI, subscribed): it sees each first."""
        registry = self.shared.registry
        for k, args in enumerate(cmds):
            hold = self.hold
            if hold is None:
                self._serve_free(cmds[k:])
                return
            if not hold(args, registry.route(args[0])):
                self._serve_free([args])
            if self.ending is not _NO_END:
                return
            if len(self.out) > self.shared.options.max_output_buffer:
                self._over_output_limit()
                return

    def _serve_free(self, cmds: list[list[bytes]]) -> None:
        """Run requests in order, as no mode holds the connection."""
        shared = self.shared
        registry = shared.registry
        routes = registry.routes
        out = self.out
        out_limit = shared.options.max_output_buffer
        read_now: bool | None = None
        i = 0
        n = len(cmds)
        while i < n:
            args = cmds[i]
            route = routes.get(args[0]) or registry.route(args[0])
            kind = route.kind if self.authenticated else MACHINE
            if kind is READ and (not self._slots or self.redirect == "proxy"):
                if read_now is None:
                    read_now = shared.requests.read_now()
                if not read_now:
                    # Waits as a run (or goes to the leader as one, in proxy mode).
                    i = self._waiting_reads(cmds, i, n, route)
                elif not self._slots:
                    i = self._reads_in_place(cmds, i, n, route)
                else:
                    self._dispatch(args, route)
                    i += 1
            elif kind is WRITE and not self._unfilled_reads:
                i = self._plain_writes(cmds, i, n, route)
                continue  # a write run answers later: nothing to measure yet
            else:
                self._dispatch(args, route)
                read_now = None
                i += 1
                if self.ending is not _NO_END:
                    break  # QUIT, or the machine closed the connection
                if self.hold is not None:
                    self._serve_held(cmds[i:])  # MULTI, SUBSCRIBE: a mode starts
                    return
            if len(out) > out_limit:
                # Checked per command (and per read in place): one read of
                # small requests (GET of a big value, many times) must not
                # build an unbounded reply.
                self._over_output_limit()
                return

    def _over_output_limit(self) -> None:
        log.warning("closing %s: replies over the output buffer limit", self.addr)
        self.end(Ending.ABORT)

    def _reads_in_place(self, cmds: list[list[bytes]], i: int, n: int, route: Route) -> int:
        """Answer the plain reads from ``cmds[i]`` on in place; the index after them.

        The hot path: reads with nothing ahead of them on the connection,
        which the consistency level lets this node answer now.  Asking that
        once for the run is as good as per read: nothing is applied until
        the loop turn ends, so every read sees the state the lease vouched
        for.  Stops early past the output limit (the caller closes).
        """
        shared = self.shared
        registry = shared.registry
        routes = registry.routes
        out = self.out
        out_limit = shared.options.max_output_buffer
        encode = self.encode
        m = shared.applier
        while True:
            args = cmds[i]
            try:
                out += encode(route.fn(m, args))
            except Exception:
                # The general path answers it again, with the error reply
                # and the log line (a plain read changes nothing).
                self._dispatch(args, route)
            i += 1
            if i == n or len(out) > out_limit:
                return i
            a0 = cmds[i][0]
            route = routes.get(a0) or registry.route(a0)
            if route.kind is not READ:
                return i

    def _waiting_reads(self, cmds: list[list[bytes]], i: int, n: int, route: Route) -> int:
        """Plain reads from ``cmds[i]`` on that must wait (ReadIndex, redirect): they wait as one.

        Returns the index after the run; one reply slot serves it.
        """
        run = self.shared.registry.read_run(cmds, i, route)
        self._read_run(run)
        return i + len(run)

    def _dispatch(self, args: list[bytes], route: Route) -> None:
        """The general path of one command."""
        kind = route.kind
        fn = route.fn
        name = route.name
        if not self.authenticated and route.key not in PRE_AUTH_COMMANDS:
            self.reply_bytes(NOAUTH_REPLY)
            return
        shared = self.shared
        try:
            if kind is READ:
                # What _reads_in_place could not answer in place: served as the
                # machine's own m.apply of a read would be.
                value = self.read(deferred(fn, shared.applier, args), name)
            elif kind is WRITE:
                if fn.check is not None:
                    fn.check(args)
                value = self.write(args, None, name)
            elif kind is MACHINE:
                value = shared.machine.command(shared.applier, self, Command(args, name))
            else:
                value = fn(self, args)
        except Exception as exc:
            if type(exc) is Redirect and self.redirect == "proxy" and exc.leader:
                self.forward([args], name, exc.leader)
            else:
                self.reply_bytes(command_error(self, exc, name, args))
            return
        if type(value) is Slot or value is NO_REPLY:
            if type(value) is Slot and value.args is None:
                value.args = args  # should it be redirected later: its key's slot
            return
        try:
            data = self.encode(value)
        except Exception as exc:
            log.warning("command %r returned an unencodable value: %r", name, exc)
            data = encode_error(exc, name)
        self.reply_bytes(data)

    def sequenced(self, tag: list[bytes], args: list[bytes]) -> None:
        """Run ``args`` as a command of its own whose write, if any, is logged under ``tag``.

        ``RAFTSEQ`` uses it: the write reaches the log wrapped, so that every
        node applies it at most once (:mod:`redraft.dedup`).  Reads and
        built-ins run as they would unwrapped.
        """
        self.tag = tag
        try:
            self._dispatch(args, self.shared.registry.route(args[0]))
        finally:
            self.tag = None

    def _read_run(self, run: list[tuple[Read, list[bytes], str]]) -> None:
        """Serve plain reads that cannot be answered at once as one (see :class:`ReadRun`)."""
        if len(run) == 1:
            _, args, _ = run[0]
            route = self.shared.registry.route(args[0])
            self._dispatch(args, route)
            return
        reads = ReadRun(self.shared.applier, run, self.encode, self.addr)
        try:
            value = self.read(reads, reads.name, reads)
        except Exception as exc:
            if type(exc) is Redirect and self.redirect == "proxy" and exc.leader:
                self.forward([args for _, args, _ in run], reads.name, exc.leader)
            else:
                self.reply_bytes(reads.errors(exc, self.redirect))
            return
        if type(value) is Slot:
            value.encode = as_is
        else:
            self.reply_bytes(value)  # answered at once: the replies, encoded

    # --- requests that run only once everything before them is answered

    def wait_turn(self, args: list[bytes]) -> bool:
        """Hold ``args``, and every request after it, until every reply owed before it is answered.

        For a command whose effect must fall in its place in line, as in
        Redis where each command runs when read (``SUBSCRIBE`` behind a
        ``PUBLISH`` still being logged must not receive its message).
        True: held, run again later through the normal path (the handler
        returns :data:`NO_REPLY`); False: nothing is owed, run it now.
        """
        if not self._slots:
            return False
        self.hold_behind()
        self._hold_back(args, None)
        return True

    def hold_behind(self) -> None:
        """Hold every request from now on until every reply owed is answered (a blocking command)."""
        if self._held is None and self._slots:
            self._held = []
            self._held_size = 0
            self._held_over = self.hold
            self.hold = self._hold_back

    def _hold_back(self, args: list[bytes], route: Route | None) -> bool:
        held = self._held
        if held is None:  # lost meanwhile
            return True
        held.append(args)
        self._held_size += sum(map(len, args)) + 16 * len(args)
        if self._held_size > self.query_limit:
            self._held = None
            self.overflow()
        return True

    def _resume(self) -> None:
        held = self._held
        if held is None:
            return
        self._held = None
        self.hold = self._held_over
        self._held_over = None
        self._serve(held)

    # --- server push

    def push(self, items: list[Any]) -> None:
        """Send ``items`` to the client out of band (:meth:`redraft.Conn.push`)."""
        if self.encode is encode3:
            self.push_bytes(b"", encode_push(items))
        else:
            self.push_bytes(encode(items), b"")

    def push_bytes(self, resp2: bytes, resp3: bytes) -> None:
        """Send a message encoded already: ``resp3`` (a push frame) after ``HELLO 3``, else ``resp2``.

        In RESP3 it goes out as it happens, as Redis writes pushes: ahead of
        the replies still owed (their commands have not run yet: a write
        runs when it is applied), never inside one.  In RESP2, where a
        client could not tell it from a reply, it waits behind every reply
        owed.  Unsent output (this connection's buffer and the socket's)
        over ``Options.max_output_buffer`` drops the connection: a
        subscriber that does not read must not hold the node's memory.
        A peer's connection gets none: its link frames what comes back as the
        replies of the requests it forwarded (:mod:`redraft.transport.forward`).
        """
        if self.ending is not _NO_END or self.closed or self.peer_id:
            return
        if self.encode is encode3:
            self.out += resp3
        elif self._slots:
            self.reply_bytes(resp2)
        else:
            self.out += resp2
        if len(self.out) + self.unsent() > self.shared.options.max_output_buffer:
            log.warning(
                "closing %s: pushed messages over the output buffer limit (a slow reader)",
                self.addr,
            )
            self.end(Ending.ABORT)
            self.out.clear()  # never sent: the memory goes now
        self.on_output()

    # --- redraft.Conn

    def use_resp3(self, on: bool) -> None:
        """Speak RESP3 (after ``HELLO 3``) or RESP2 from now on."""
        self.encode = encode3 if on else encode
        self._protocol_changed()

    def _protocol_changed(self) -> None:
        # What the parser may answer GETs from (see feed), made once per
        # protocol rather than per read: its nil is the protocol's.
        tables = self.shared.registry.lookups
        if not tables:
            self._lookup = None
            return
        nil = NULL3 if self.encode is encode3 else NULL_BULK
        limit = self.shared.options.max_output_buffer
        self._lookup = (tables, self._read_now, self.out, limit, nil)

    def _read_now(self) -> bool:
        return self.shared.requests.read_now()

    def close(self) -> None:
        """Close once every pending reply is written."""
        self.end(Ending.AFTER_REPLIES)
        self.on_output()

    def abort(self) -> None:
        """Drop the connection now: what it sent and was not read is never acted on."""
        self.end(Ending.ABORT)
        self.on_output()

    def end(self, how: Ending) -> None:
        """Mark the connection to end ``how`` (unless it is to end more harshly already)."""
        if how > self.ending:
            self.ending = how

    def lost(self) -> None:
        """The connection is gone: nothing owed to it will be sent."""
        self.closed = True
        self._slots.clear()
        self._unfilled_reads = 0
        self._unfilled_writes = 0
        self._later_writes = 0
        self._held = None
        for forget in self.shared.forget:
            forget(self)

    def authenticate(self) -> None:
        """The client proved a credential: it may run everything, admin commands included."""
        self.authenticated = True
        self.guard.admin = True
        self.query_limit = self.shared.options.max_query_buffer


def _first_refused(
    write: Write, cmds: list[list[bytes]], i: int, end: int
) -> tuple[int, Exception | None]:
    """The index of the first of ``cmds[i:end]`` that ``write``'s check refuses, and why;
    ``(end, None)`` if none is."""
    many = write.check_many
    if many is not None and end - i > 1:
        try:
            many(cmds[i:end])
            return end, None
        except Exception:
            pass  # which one: asked one by one below
    check = write.check
    assert check is not None
    for k in range(i, end):
        try:
            check(cmds[k])
        except Exception as exc:
            return k, exc
    return end, None


def _ignore() -> None:
    pass


def _nothing() -> int:
    return 0


FORWARD_FAILED: Final = "ERR proxy: the request could not be sent to the leader"
RELAY_LOST: Final = (
    b"-TIMEOUT proxy: the link to the leader was lost before the reply came; "
    b"the command may have been applied\r\n"
)


class _Gather:
    """Collects the leader's replies to a run of forwarded requests into their slot."""

    __slots__ = ("left", "parts", "slot")

    def __init__(self, slot: Slot, count: int) -> None:
        self.slot = slot
        self.left = count
        self.parts: list[bytes] = []

    def __call__(self, data: bytes | None) -> None:
        """One reply (None: lost with the link); the last one answers the slot."""
        self.parts.append(RELAY_LOST if data is None else data)
        self.left -= 1
        if self.left == 0:
            conn = self.slot.conn
            if conn.settle(self.slot, b"".join(self.parts)):
                conn.advance()


class ClientApplier(Applier):
    """``m`` for a client command on the node that holds the connection."""

    __slots__ = ("_shared",)

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    def apply(
        self, conn: Conn | None, cmd: Command, mutate: Mutate | None, respond: Respond | None
    ) -> Any:
        if type(conn) is not Session:
            raise TypeError("apply needs the client connection passed to command()")
        if mutate is None:
            return conn.read(respond, cmd.name)
        if self._shared.registry.route(cmd.args[0]).kind is BUILTIN:
            # Applied as the framework's own (a session, a sequenced write, a tick).
            raise TypeError(f"'{cmd.name}' is a built-in command: command() must not log it")
        if self._shared.registry.write_of(cmd.args[0]) is not None:
            # Every node would apply it with the Write, never running mutate.
            raise TypeError(
                f"'{cmd.name}' is declared in the machine's writes(): command() must not "
                "propose it with m.apply (the Write applies it)"
            )
        return conn.write(cmd.args, respond, cmd.name)

    def blocking(
        self, conn: Conn | None, cmd: Command, mutate: Mutate, respond: Respond | None
    ) -> Any:
        slot = self.apply(conn, cmd, mutate, respond)
        if type(conn) is Session and not conn.peer_id:
            conn.hold_behind()  # what was pipelined behind it waits, as in Redis
        return slot

    def now_ns(self) -> int:
        now = time.time_ns()
        stamp = self._shared.requests.last_stamp()
        return now if now > stamp else stamp

    def random(self) -> random.Random:
        return random.Random()


__all__ = ["NO_REPLY", "ClientApplier", "Requests", "Session", "Shared"]
