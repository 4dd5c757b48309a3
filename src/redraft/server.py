"""The RESP server: client connections, in-order replies, command dispatch.

Every connection parses what arrives with :class:`~redraft.resp.RequestParser`,
dispatches each command (built-ins first, then the machine) and writes the
replies of one read in one ``write``.  Replies that are not ready yet (writes
waiting for commit, ReadIndex reads) hold a :class:`Slot`; replies behind a
pending slot wait in line so a connection always gets replies in request
order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from redraft.errors import expected
from redraft.machine import Applier, Command, Read, Respond, Write
from redraft.raft.types import Role
from redraft.resp import ProtocolError, RequestParser, encode, encode3, encode_error
from redraft.security import NOAUTH_REPLY, PRE_AUTH_COMMANDS, UNAUTHENTICATED_QUERY_BUFFER

if TYPE_CHECKING:
    from redraft.node import Node

log = logging.getLogger("redraft.server")

LEADER = Role.LEADER

What: TypeAlias = "Command | str | ReadRun | WriteRun"
"""What a reply slot answers: a command, its name, or a run of plain commands."""


class Slot:
    """A reply still to come, holding its connection's place in line.

    ``kind`` says what it waits for: a started write or read (the node fills
    it), or a read or write not started yet because of what is ahead of it on
    the connection (see :meth:`ClientConn._drain`).
    """

    __slots__ = ("args", "conn", "data", "encode", "kind", "name", "respond")

    def __init__(self, kind: int, conn: ClientConn) -> None:
        self.kind = kind
        self.conn = conn
        self.encode: Callable[..., bytes] = conn.encode
        """The protocol of the request (a later HELLO does not change its reply's)."""
        self.data: bytes | None = None
        self.respond: Respond | None = None
        self.name: What = ""
        """The command, or its name (decoded only for an error reply), or the run it answers."""
        self.args: list[bytes] | None = None


WAIT = 0
"""Started: a write waiting to commit, or anything else the node will fill."""
READ = 1
"""Started: a read waiting for its ReadIndex round."""
LATER_READ = 2
"""Not started: a read behind unanswered commands (it must see their effects)."""
LATER_WRITE = 3
"""Not started: a write behind an unanswered read (which must not see it)."""
WRITE = 4
"""Started: a client write waiting to commit."""


def _reply_for(slot: Slot, result: Any, respond: Respond | None) -> bytes:
    """The encoded reply of a finished command (an error reply if it or ``respond`` failed)."""
    if isinstance(result, BaseException):
        return encode_error(result, command_name(slot.name))
    try:
        return slot.encode(respond(result) if respond is not None else result)
    except Exception as exc:
        return error_reply(exc, slot.name, slot.conn.addr)


def error_reply(exc: Exception, what: What, addr: str) -> bytes:
    """The error reply of a command that raised; an unexpected error (a bug) is logged too."""
    name = command_name(what)
    if not expected(exc):
        log.warning("command %r from %s failed: %r", name, addr, exc)
    return encode_error(exc, name)


def command_name(what: What) -> str:
    """The name error replies use: a command's name is only decoded when needed."""
    return what if type(what) is str else cast(Command, what).name


def answer(slots: list[Slot], results: list[Any] | None = None) -> None:
    """Answer started slots in order: a committed batch's writes with their
    ``results``, or a confirmed ReadIndex round's reads (``results`` None).

    Each connection's answered head of line is written out once for the
    whole batch rather than once per command.
    """
    if results is not None and len(results) != len(slots):
        results = _per_slot(slots, results)
    touched: dict[ClientConn, None] = {}
    for pos, slot in enumerate(slots):
        if slot.data is None:
            conn = slot.conn
            result = None if results is None else results[pos]
            conn._settle(slot, _reply_for(slot, result, slot.respond))
            touched[conn] = None
    for conn in touched:
        conn._drain()
        conn.server.mark_dirty(conn)


def _per_slot(slots: list[Slot], results: list[Any]) -> list[Any]:
    """``results`` (one per command) regrouped one per slot: a write run's slot gets a list."""
    grouped: list[Any] = []
    pos = 0
    for slot in slots:
        n = slot_commands(slot)
        grouped.append(results[pos] if n == 1 else results[pos : pos + n])
        pos += n
    return grouped


def slot_commands(slot: Slot) -> int:
    """How many logged commands ``slot`` answers (a write run's slot answers several)."""
    what = slot.name
    return what.count if type(what) is WriteRun else 1


class NoReply:
    """Returned by a command that must not be answered (peer traffic)."""


NO_REPLY = NoReply()

_ids = itertools.count(1)


class ClientConn(asyncio.Protocol):
    """One client (or incoming peer) connection; implements :class:`redraft.Conn`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.node = server.node
        self.id = next(_ids)
        self.addr = ""
        self.name = ""
        self.context: Any = None
        self.peer_id = ""
        self.authenticated = False
        opts = server.node.options
        self._parser = RequestParser(
            max_bulk_len=opts.max_bulk_len,
            max_multibulk_len=opts.max_multibulk_len,
            max_inline_len=opts.max_inline_len,
        )
        self._transport: asyncio.Transport | None = None
        self._out = bytearray()
        self._slots: deque[Slot] = deque()
        self._unfilled_reads = 0
        self._unfilled_writes = 0
        self._later_writes = 0
        self.encode: Callable[..., bytes] = encode
        """The reply encoder of the protocol this client speaks (HELLO switches it)."""
        self._close_when_drained = False
        self.closed = False

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.addr = f"{peer[0]}:{peer[1]}"
        server = self.server
        opts = self.node.options
        security = self.node.security
        self.authenticated = security.password is None
        self.guard = security.new_guard()
        self.query_limit = opts.max_query_buffer
        """Unparsed bytes this client may hold (less until it authenticates)."""
        if not self.authenticated:
            self.query_limit = min(opts.max_query_buffer, UNAUTHENTICATED_QUERY_BUFFER)
        self.last_active = time.monotonic()
        refusal = b""
        if len(server.conns) >= opts.max_clients:
            refusal = b"-ERR max number of clients reached\r\n"
        elif self.node.draining:
            refusal = b"-ERR the node is shutting down\r\n"
        if refusal:
            transport.write(refusal)
            transport.close()
            self.closed = True
            return
        server.conns.add(self)
        if opts.on_accept is not None:
            try:
                accepted = opts.on_accept(self)
            except Exception as exc:
                log.warning("on_accept hook failed for %s: %s", self.addr, exc)
                accepted = False
            if not accepted:
                transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        error: ProtocolError | None = None
        try:
            cmds = self._parser.parse(data)
        except ProtocolError as exc:
            error = exc
            cmds = exc.commands
        server = self.server
        dispatch = server.dispatch
        routes = server._routes
        m = server._applier
        encode = self.encode
        out = self._out
        out_limit = self.node.options.max_output_buffer
        read_now: bool | None = None  # asked once per run of plain reads
        run: list[tuple[Read, list[bytes], str]] | None = None
        # The open run of plain writes: its slot, route and the batch it feeds.
        wslot: Slot | None = None
        wroute: Route | None = None
        wrun: WriteRun | None = None  # once the open run holds two writes
        batch: list[list[bytes]] = []
        node = self.node
        run_max = node.options.max_batch_commands
        for args in cmds:
            route = routes.get(args[0])
            if wslot is None or route is not wroute:
                wslot = wrun = wroute = None  # a run ends at any other command
                if self._close_when_drained:
                    break
                kind = route[0] if route is not None and self.authenticated else ROUTE_MACHINE
                if kind == ROUTE_READ and not self._slots:
                    # The hot path: a plain read with nothing ahead of it on
                    # the connection, answered in place.  Checking the lease
                    # once for the run is as good as per read: nothing is
                    # applied until the loop turn ends, so every read of the
                    # run sees the state the lease vouched for.
                    assert route is not None
                    if read_now is None:
                        read_now = server._read_now()
                    if read_now:
                        try:
                            out += encode(route[1](m, args))
                        except Exception:
                            # The general path answers it again, with the error
                            # reply and the log line (a plain read changes nothing).
                            dispatch(self, args)
                    else:
                        # They must wait (a ReadIndex round, or a redirect): the
                        # run waits as one, with one reply slot and one token.
                        if run is None:
                            run = []
                        run.append((route[1], args, route[3]))
                else:
                    if run is not None:
                        server.read_run(self, run)
                        run = None
                    if kind != ROUTE_WRITE or self._unfilled_reads or node.core.role is not LEADER:
                        dispatch(self, args)
                        read_now = None
                        encode = self.encode  # HELLO may have switched the protocol
                    else:
                        wroute = route  # a plain write: it starts a run below
                if wroute is None:
                    if len(out) > out_limit:
                        # Checked per command: one read of small requests (GET
                        # of a big value, many times) must not build an
                        # unbounded reply.
                        log.warning("closing %s: replies over the output buffer limit", self.addr)
                        if self._transport is not None:
                            self._transport.abort()
                        self.closed = True
                        return
                    continue
            # The hot write path: what dispatch, ClientApplier.write and
            # Node.client_write do for a plain write, inline, with one reply
            # slot for a run of them (see WriteRun).  A run goes on only
            # while writes of its route come, so nothing checked above when
            # it began can have changed since.
            assert route is not None
            write = route[1]
            if write.check is not None:
                try:
                    write.check(args)
                except Exception as exc:
                    self.reply_bytes(error_reply(exc, route[3], self.addr))
                    wslot = wrun = None
                    continue
            if wslot is None:
                wslot = self.new_slot(WRITE)
                wslot.name = route[3]
                batch = node._batch
                node._batch_waiters.append(wslot)
                node.schedule_process()
                count = 1
            elif wrun is None:
                # The second write of the run: its slot becomes the run's.
                wrun = WriteRun(route[3], wslot.encode, self.addr)
                wrun.count = count = 2
                wslot.name = wrun
                wslot.respond = wrun
                wslot.encode = _as_is
            else:
                wrun.count = count = wrun.count + 1
            if count >= run_max:
                wslot = wrun = None  # a run never spans two log entries
            batch.append(args)
        if run is not None:
            server.read_run(self, run)
        if error is not None:
            # Redis answers the bad request and hangs up; commands that came
            # before it in the same read still get their replies.
            log.info("protocol error from %s: %s", self.addr, error)
            self.reply_bytes(b"-ERR " + str(error).encode() + b"\r\n")
            self._close_when_drained = True
        if self._parser.buffered > self.query_limit:
            # A request that never ends must not hold memory without bound.
            log.warning(
                "closing %s: %d bytes of unfinished request, over the query buffer limit",
                self.addr,
                self._parser.buffered,
            )
            self.flush()
            t = self._transport
            if t is not None and not self.closed:
                t.write(b"-ERR max query buffer length reached: closing the connection\r\n")
                t.close()
            self.closed = True
            return
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.conns.discard(self)
        self._slots.clear()
        self._unfilled_reads = 0
        self._unfilled_writes = 0
        self._later_writes = 0
        hook = self.node.options.on_closed
        if hook is not None:
            try:
                hook(self, exc)
            except Exception as e:
                log.warning("on_closed hook failed for %s: %s", self.addr, e)

    # --- redraft.Conn

    def use_resp3(self, on: bool) -> None:
        """Speak RESP3 (after ``HELLO 3``) or RESP2 from now on."""
        self.encode = encode3 if on else encode

    def close(self) -> None:
        """Close once every pending reply is written."""
        self._close_when_drained = True
        self.server.mark_dirty(self)

    def abort(self) -> None:
        """Drop the connection now: what it sent and was not read is never acted on."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # --- replies
    #
    # A connection behaves as if its commands ran one after another: a read
    # waits for every reply before it (so it sees the connection's earlier
    # writes), and a write waits for every read before it to be served (so
    # those reads do not see it).  Writes behind writes pipeline freely.

    def has_pending(self) -> bool:
        return bool(self._slots)

    def reply_bytes(self, data: bytes) -> None:
        if self._slots:
            s = Slot(WAIT, self)
            s.data = data
            self._slots.append(s)
        else:
            self._out += data

    def new_slot(self, kind: int = WAIT) -> Slot:
        s = Slot(kind, self)
        if kind == READ:
            self._unfilled_reads += 1
        elif kind == WRITE:
            self._unfilled_writes += 1
        self._slots.append(s)
        return s

    def drop_slot(self, slot: Slot) -> None:
        """Forget a slot taken for a reply that will not come (the command failed at once)."""
        self._slots.remove(slot)
        if slot.kind == READ or slot.kind == LATER_READ:
            self._unfilled_reads -= 1
        elif slot.kind == WRITE or slot.kind == LATER_WRITE:
            self._unfilled_writes -= 1

    def later_read(self, respond: Respond | None, what: What) -> Slot:
        s = Slot(LATER_READ, self)
        s.respond = respond
        s.name = what
        self._unfilled_reads += 1
        self._slots.append(s)
        return s

    def later_write(self, args: list[bytes], respond: Respond | None, what: What) -> Slot:
        s = Slot(LATER_WRITE, self)
        self._later_writes += 1
        self._unfilled_writes += 1
        s.args = args
        s.respond = respond
        s.name = what
        self._slots.append(s)
        return s

    def fill_result(self, slot: Slot, result: Any, respond: Respond | None, what: What) -> None:
        """Answer ``slot`` with ``respond(result)`` (``what``: the command, for errors)."""
        slot.name = what
        self._fill(slot, _reply_for(slot, result, respond))

    def fill_error(self, slot: Slot, exc: BaseException, what: What) -> None:
        if isinstance(what, (ReadRun, WriteRun)):
            self._fill(slot, what.errors(exc))
        else:
            self._fill(slot, encode_error(exc, command_name(what)))

    def _settle(self, slot: Slot, data: bytes) -> bool:
        """Give ``slot`` its reply; False if it already had one."""
        if slot.data is not None:
            return False
        slot.data = data
        kind = slot.kind
        if kind == READ or kind == LATER_READ:
            self._unfilled_reads -= 1
        elif kind == WRITE or kind == LATER_WRITE:
            self._unfilled_writes -= 1
        return True

    def _fill(self, slot: Slot, data: bytes) -> None:
        if not self._settle(slot, data):
            return
        slots = self._slots
        if slots and (slots[0] is slot or slot.kind == READ or slot.kind == LATER_READ):
            self._drain()
            self.server.mark_dirty(self)

    def _drain(self) -> None:
        """Write out the answered head of the line and start what may start now."""
        slots = self._slots
        out = self._out
        node = self.node
        while slots:
            head = slots[0]
            if head.data is None:
                if head.kind != LATER_READ:
                    break
                head.kind = READ
                try:
                    value = node.client_read(self, head.respond, head.name, head)
                except Exception as exc:
                    self._unfilled_reads -= 1
                    head.data = error_reply(exc, head.name, self.addr)
                else:
                    if value is head:
                        break
                    self._unfilled_reads -= 1
                    try:
                        head.data = head.encode(value)
                    except Exception as exc:
                        head.data = encode_error(exc, command_name(head.name))
            out += head.data
            slots.popleft()
        if not self._later_writes:
            return
        # Start the writes that no unanswered read precedes any more.
        for s in slots:
            if s.data is None and (s.kind == READ or s.kind == LATER_READ):
                break
            if s.kind == LATER_WRITE:
                s.kind = WRITE
                self._later_writes -= 1
                assert s.args is not None
                try:
                    node.client_write(self, s.args, s.respond, s.name, s)
                except Exception as exc:
                    s.data = encode_error(exc, command_name(s.name))
        if slots and slots[0].data is not None:
            self._drain()

    def flush(self) -> None:
        t = self._transport
        if t is None or self.closed:
            return
        if self._out:
            data = bytes(self._out)
            self._out.clear()
            t.write(data)
            if t.get_write_buffer_size() > self.node.options.max_output_buffer:
                log.warning(
                    "closing %s: output buffer over the limit (client not reading)", self.addr
                )
                t.abort()
                return
        if self._close_when_drained and not self._slots:
            t.close()


ROUTE_BUILTIN = 0
ROUTE_READ = 1
ROUTE_WRITE = 2
ROUTE_MACHINE = 3
_ROUTE_CACHE = 4096
"""How many spellings of command names the server remembers the route of."""
_ROUTE_NAME_MAX = 32
"""Longer names are routed every time rather than remembered."""

Route = tuple[int, Any, bytes, str]
"""How a command name is served: its kind, the function, the lower-case name (bytes, str)."""


class Server:
    """Accepts connections and dispatches their commands."""

    def __init__(self, node: Node) -> None:
        from redraft.commands import builtin_commands

        self.node = node
        self.conns: set[ClientConn] = set()
        self._dirty: set[ClientConn] = set()
        self._server: asyncio.AbstractServer | None = None
        self.builtins = builtin_commands(node)
        self._command = node.machine.command
        self._applier = node.client_applier
        self._read_now = node.read_now
        self._plain: dict[bytes, tuple[int, Read | Write]] = {}
        machine = node.machine
        for kind, table in ((ROUTE_READ, machine.reads()), (ROUTE_WRITE, machine.writes())):
            for name, fn in table.items():
                key = name.lower().encode()
                if key not in self.builtins:
                    self._plain[key] = (kind, fn)
        self._routes: dict[bytes, Route] = {}
        for key in (*self.builtins, *self._plain):
            # The usual spellings up front: junk names cannot crowd them out.
            self.route(key)
            self.route(key.upper())

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientConn(self),
            host,
            port,
            reuse_address=True,
            backlog=511,
            ssl=self.node.security.server_ssl,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in list(self.conns):
            c.flush()
            if c._transport is not None:
                c._transport.close()
        if self._server is not None:
            await self._server.wait_closed()

    def mark_dirty(self, conn: ClientConn) -> None:
        self._dirty.add(conn)

    def flush_dirty(self) -> None:
        if self._dirty:
            dirty = self._dirty
            self._dirty = set()
            for c in dirty:
                c.flush()

    def route(self, name: bytes) -> Route:
        """How to serve a command name: built-ins first, then plain commands, then the machine."""
        route = self._routes.get(name)
        if route is not None:
            return route
        key = name.lower()
        handler = self.builtins.get(key)
        kind: int
        fn: Any
        if handler is not None:
            kind, fn = ROUTE_BUILTIN, handler
        else:
            kind, fn = self._plain.get(key, (ROUTE_MACHINE, None))
        route = (kind, fn, key, key.decode("latin-1"))
        # Remembered so that a request costs one lookup, not a lower() and
        # three; bounded, so that junk names cannot grow it.
        if len(name) <= _ROUTE_NAME_MAX and len(self._routes) < _ROUTE_CACHE:
            self._routes[name] = route
        return route

    def read_run(self, conn: ClientConn, run: list[tuple[Read, list[bytes], str]]) -> None:
        """Serve plain reads that cannot be answered at once as one (see :class:`ReadRun`)."""
        if len(run) == 1:
            self.dispatch(conn, run[0][1])
            return
        m = self._applier
        batch = ReadRun(m, run, conn.encode, conn.addr)
        what: Any = batch  # stands in for the command name in the slot
        try:
            value = m.read(conn, batch, what)
        except Exception as exc:
            conn.reply_bytes(batch.errors(exc))
            return
        if type(value) is Slot:
            value.encode = _as_is
        else:
            conn.reply_bytes(value)  # answered at once: the replies, encoded

    def dispatch(self, conn: ClientConn, args: list[bytes]) -> None:
        route = self._routes.get(args[0])
        if route is None:
            route = self.route(args[0])
        kind, fn, key, name = route
        if not conn.authenticated and key not in PRE_AUTH_COMMANDS:
            conn.reply_bytes(NOAUTH_REPLY)
            return
        try:
            if kind == ROUTE_READ:
                # What ClientConn.data_received could not answer in place:
                # served as the machine's own m.apply of a read would be.
                m = self._applier
                value = m.read(conn, _deferred(fn, m, args), name)
            elif kind == ROUTE_WRITE:
                if fn.check is not None:
                    fn.check(args)
                value = self._applier.write(conn, args, None, name)
            elif kind == ROUTE_BUILTIN:
                value = fn(conn, args)
            else:
                value = self._command(self._applier, conn, Command(args))
        except Exception as exc:
            conn.reply_bytes(error_reply(exc, name, conn.addr))
            return
        if type(value) is Slot or value is NO_REPLY:
            return
        try:
            data = conn.encode(value)
        except Exception as exc:
            log.warning("command %r returned an unencodable value: %r", name, exc)
            data = encode_error(exc, name)
        conn.reply_bytes(data)


class ReadRun:
    """Plain reads of one pipelined run that wait together (ReadIndex, redirect).

    It is their reply slot's ``respond`` and ``name``: one slot and one
    ReadIndex token serve them all, and their replies, each encoded in turn
    (an error for a read that raised), fill the slot joined.
    """

    __slots__ = ("addr", "encode", "m", "reads")

    def __init__(
        self,
        m: Applier,
        reads: list[tuple[Read, list[bytes], str]],
        encode: Callable[[Any], bytes],
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

    def errors(self, exc: BaseException) -> bytes:
        """One error reply per read: the run failed as a whole (a redirect, say)."""
        return b"".join(encode_error(exc, name) for _, _, name in self.reads)


class WriteRun:
    """Plain writes of one pipelined run on the leader, answered as one.

    Consecutive writes of one route in a client's read share one reply slot
    (this object is its ``respond`` and ``name``) while their commands go to
    the batch one by one, so a pipeline of SETs costs one slot, not one per
    SET.  The committed results come back as one list (see :func:`answer`),
    each encoded in turn: an error reply for a write whose apply failed.
    """

    __slots__ = ("addr", "count", "encode", "name")

    def __init__(self, name: str, encode: Callable[[Any], bytes], addr: str) -> None:
        self.name = name
        self.encode = encode
        self.addr = addr
        self.count = 0
        """How many commands of the batch it answers (consecutive ones)."""

    def __call__(self, results: list[Any]) -> bytes:
        encode = self.encode
        first = results[0]
        if not isinstance(first, BaseException) and len(set(map(id, results))) == 1:
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

    def errors(self, exc: BaseException) -> bytes:
        """One error reply per write: the run failed as a whole (leadership lost, say)."""
        return encode_error(exc, self.name) * self.count


def _as_is(replies: Any, cmd_name: str = "") -> bytes:
    """The encoder of a ReadRun's or WriteRun's slot: its replies come encoded."""
    return cast(bytes, replies)


def _deferred(read: Read, m: Applier, args: list[bytes]) -> Respond:
    """A plain read as the ``respond`` of a read that waits for its turn."""
    return lambda _: read(m, args)
