"""The listening socket and the asyncio side of client connections.

All request handling is in :class:`redraft.session.Session`, which does no
I/O; a :class:`ClientProtocol` feeds it what the socket reads, writes what
it has ready (one ``write`` per read and per batch of replies) and closes
the socket when the session says so.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Final, cast

from redraft.options import Options
from redraft.security import Security
from redraft.session import Ending, Session, Shared

log = logging.getLogger("redraft.server")

# Enum members looked up on their class cost ~0.1 us each in Python 3.11;
# flush runs twice per request, so it compares with aliases.
_ABORT: Final = Ending.ABORT
_NOW: Final = Ending.NOW
_NO_END: Final = Ending.NO


def _drop(data: bytes) -> None:
    pass


def _empty() -> int:
    return 0


class ClientProtocol(asyncio.Protocol):
    """The asyncio protocol of one connection: a thin adapter around its :class:`Session`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.session: Session | None = None
        self.transport: asyncio.Transport | None = None
        # The transport's methods, bound once: flush runs once per reply.
        self._write: Callable[[bytes], object] = _drop
        self._buffered: Callable[[], int] = _empty
        self._out_limit = server.options.max_output_buffer
        self.reads = 0
        """Reads so far: :meth:`Server.reap_idle` tells activity by its change (a counter
        costs less per read than a clock)."""
        self.last_active = time.monotonic()
        """When :meth:`Server.reap_idle` last saw :attr:`reads` change."""
        self.reads_seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        self._write = transport.write
        self._buffered = transport.get_write_buffer_size
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
        server = self.server
        refusal = server.refusal()
        if refusal:
            transport.write(refusal)
            transport.close()
            return
        session = self.session = Session(server.shared, addr)
        session.on_output = partial(server.mark_dirty, self)
        session.unsent = transport.get_write_buffer_size
        server.protocols[session] = self
        hook = server.options.on_accept
        if hook is not None:
            try:
                accepted = hook(session)
            except Exception as exc:
                log.warning("on_accept hook failed for %s: %s", addr, exc)
                accepted = False
            if not accepted:
                transport.close()

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            return
        self.reads += 1
        session.feed(data)
        if session.out or session.ending is not _NO_END:
            # Written at the end of the loop turn with every other
            # connection's: see Server.mark_dirty.
            self.server.mark_dirty(self)

    def connection_lost(self, exc: Exception | None) -> None:
        session = self.session
        if session is None:
            return
        session.lost()
        self.server.protocols.pop(session, None)
        hook = self.server.options.on_closed
        if hook is not None:
            try:
                hook(session, exc)
            except Exception as e:
                log.warning("on_closed hook failed for %s: %s", session.addr, e)

    def flush(self) -> None:
        """Write what the session has ready; close or abort when it says so."""
        t = self.transport
        session = self.session
        if t is None or session is None or session.closed:
            return
        ending = session.ending
        if ending is _ABORT:
            self._abort(t, session)
            return
        out = session.out
        if out:
            # A copy: the transport may keep what it could not send yet.
            self._write(bytes(out))
            out.clear()
            if self._buffered() > self._out_limit:
                log.warning(
                    "closing %s: output buffer over the limit (client not reading)", session.addr
                )
                self._abort(t, session)
                return
        if ending is not _NO_END and (ending is _NOW or not session.has_pending()):
            session.closed = True
            t.close()

    @staticmethod
    def _abort(t: asyncio.Transport, session: Session) -> None:
        session.closed = True
        t.abort()


class Server:
    """Accepts connections on the node's port (clients and peers alike)."""

    def __init__(self, shared: Shared, options: Options, security: Security) -> None:
        self.shared = shared
        self.options = options
        self.security = security
        self.protocols: dict[Session, ClientProtocol] = {}
        self.draining = False
        """Stopping gracefully: new connections are refused."""
        self._dirty: set[ClientProtocol] = set()
        self._flush_scheduled = False
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the server runs on, once started (asking for it costs a
        ``getpid`` system call per ask on Python 3.11)."""

    @property
    def sessions(self) -> list[Session]:
        """The open connections, oldest first."""
        return sorted(self.protocols, key=lambda s: s.id)

    def refusal(self) -> bytes:
        """The reply that turns a new connection away, or b"" to accept it."""
        if len(self.protocols) >= self.options.max_clients:
            return b"-ERR max number of clients reached\r\n"
        if self.draining:
            return b"-ERR the node is shutting down\r\n"
        return b""

    async def start(self, host: str, port: int) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientProtocol(self),
            host,
            port,
            reuse_address=True,
            backlog=511,
            ssl=self.security.server_ssl,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for proto in list(self.protocols.values()):
            proto.flush()
            if proto.transport is not None:
                proto.transport.close()
        if self._server is not None:
            await self._server.wait_closed()

    def mark_dirty(self, proto: ClientProtocol) -> None:
        """``proto``'s session has replies to send: they are written at the end of the loop turn.

        Every connection's replies of a turn go out together: each write
        wakes a client waiting in ``epoll``, and a burst of writes wakes it
        once instead of once per connection.
        """
        self._dirty.add(proto)
        if not self._flush_scheduled:
            # The node flushes at the end of each pass over the core's work;
            # this catches replies filled anywhere else (reads, timers, futures).
            self._flush_scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush_dirty()

    def flush_dirty(self) -> None:
        """Write out every connection's replies that became ready since the last flush."""
        if self._dirty:
            dirty = self._dirty
            self._dirty = set()
            for proto in dirty:
                proto.flush()

    def owes_replies(self) -> bool:
        """Whether any connection is still owed a reply."""
        return any(s.has_pending() for s in self.protocols)

    async def reap_idle(self, timeout: float) -> None:
        """Close client connections idle longer than ``timeout`` seconds, for ever.

        Peer links and clients waiting for a reply (a write committing) are
        never idle in this sense.
        """
        period = min(max(timeout / 4, 0.05), 1.0)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for session, proto in list(self.protocols.items()):
                if proto.reads != proto.reads_seen:
                    proto.reads_seen = proto.reads
                    proto.last_active = now
                    continue
                if session.peer_id or session.has_pending():
                    continue
                if now - proto.last_active > timeout:
                    log.debug("closing %s: idle for more than %.1fs", session.addr, timeout)
                    session.close()
