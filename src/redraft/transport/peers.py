"""Outgoing links to peers: one persistent, pipelined connection per peer.

Each link dials the peer's client port, introduces itself with ``RAFTPEER``
(proving, when a peer secret is set, that both ends know it: see
:mod:`redraft.security`) and from then on writes ``RAFTMSG`` commands,
which the peer never answers (its own replies to us travel on its own link
to us), and, in proxy mode, client requests forwarded to the leader, which
it does answer (:mod:`redraft.transport.forward`).  A link that
drops reconnects with exponential backoff.  Messages written while a link is
down are dropped: Raft tolerates loss and the core re-sends what matters.
Those written before a link first comes up are kept (a bounded few) and sent
when it does: the first message to a peer is often a vote request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from ssl import SSLContext, SSLError
from typing import Final, cast

from redraft.addr import split_hostport
from redraft.resp import encode_command
from redraft.security import DialerHandshake, HandshakeError
from redraft.transport.forward import Forwarded, Relay

log = logging.getLogger("redraft.transport")

_RAFTMSG_HEAD: Final = b"*2\r\n$7\r\nRAFTMSG\r\n$"


def raftmsg_command(payload: bytes) -> bytes:
    """The RESP bytes of ``RAFTMSG <payload>``."""
    return b"".join((_RAFTMSG_HEAD, str(len(payload)).encode(), b"\r\n", payload, b"\r\n"))


def raftmsg_parts(payload: list[bytes]) -> list[bytes]:
    """``RAFTMSG`` of the payload whose pieces are ``payload``, as pieces to write in order."""
    if len(payload) == 1:
        return [raftmsg_command(payload[0])]
    size = sum(map(len, payload))
    return [_RAFTMSG_HEAD + b"%d\r\n" % size, *payload, b"\r\n"]


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, link: PeerLink) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self._greeted = False
        self._buf = b""
        self._handshake = DialerHandshake(link.self_id, link.secret, link.peer)
        self.forwarded = Forwarded(link.forward_limit, link.peer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        transport.write(self._handshake.first() if self.link.secret else self.link.hello)

    def data_received(self, data: bytes) -> None:
        if self._greeted:
            # After the handshake, only forwarded requests are answered.
            try:
                self.forwarded.feed(data)
            except ValueError as exc:
                log.warning("link to peer %s out of step, dropping it: %s", self.link.peer, exc)
                assert self.transport is not None
                self.transport.close()
            return
        if len(self._buf) + len(data) > 4096:
            self._refused("oversized handshake reply")
            return
        self._buf += data
        while not self._greeted and b"\r\n" in self._buf:
            line, _, self._buf = self._buf.partition(b"\r\n")
            try:
                request = self._handshake.step(line)
            except HandshakeError as exc:
                self._refused(str(exc))
                return
            if request is None:
                self._greeted = True
                self._buf = b""
                self._authenticate()
                self.link._on_ready(self)
            else:
                assert self.transport is not None
                self.transport.write(request)

    def _authenticate(self) -> None:
        """Prove the client password, which forwarded requests need at a leader that asks for it."""
        password = self.link.password
        if password is None:
            return
        assert self.transport is not None
        peer = self.link.peer

        def checked(reply: bytes | None) -> None:
            if reply is not None and reply.startswith(b"-"):
                log.warning("peer %s refused this node's AUTH: %r", peer, reply.strip())

        self.forwarded.expect(checked)
        self.transport.write(encode_command([b"AUTH", password]))

    def _refused(self, why: str) -> None:
        self._greeted = True
        self._buf = b""
        log.warning("link to peer %s refused: %s", self.link.peer, why)
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._on_lost(self)
        self.forwarded.lost()


_EARLY_MAX: Final = 64
_EARLY_BYTES: Final = 8 << 20
"""Messages (and bytes) a link keeps while it first connects; beyond them, they are dropped."""


class PeerLink:
    """The connection from this node to one peer."""

    def __init__(
        self,
        peer: str,
        self_id: str,
        hello_args: list[bytes],
        on_unreachable: Callable[[str], None],
        max_buffer: int = 64 << 20,
        ssl: SSLContext | None = None,
        dial: str = "",
        secret: bytes | None = None,
        password: bytes | None = None,
        forward_limit: int = 10_000,
    ) -> None:
        self.peer = peer
        self.secret = secret
        self.password = password
        """The client password, sent once the link is up when requests may be forwarded on it."""
        self.forward_limit = forward_limit
        """Forwarded requests that may wait for their replies at once."""
        """The peer secret both ends prove they know (None: no peer authentication)."""
        self.dial = dial or peer
        self.self_id = self_id
        self.hello = encode_command(hello_args)
        self._on_unreachable = on_unreachable
        self._max_buffer = max_buffer
        self._ssl = ssl
        self._proto: _LinkProtocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._backoff = 0.05
        self._tls_warned = False
        # Written before the link first came up: sent once it does. A node's
        # first message to a peer is often a vote request (a leader handing
        # over to a follower that never spoke to the others); dropping it
        # would cost the election a whole timeout.
        self._early: list[list[bytes]] | None = []
        self._early_bytes = 0

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._dial_loop())

    def send(self, parts: list[bytes]) -> bool:
        """Write one encoded command, given as pieces to write in order without
        joining them; False (and dropped) if the link is down or full."""
        proto = self._proto
        if proto is None or proto.transport is None:
            return self._keep_early(parts)
        t = proto.transport
        if t.get_write_buffer_size() > self._max_buffer:
            # The peer is not reading: dropping lets Raft's retransmission
            # take over instead of buffering without bound.
            self._on_unreachable(self.peer)
            return False
        if len(parts) == 1:
            t.write(parts[0])
        else:
            t.writelines(parts)  # one writev: a batch of large values is not copied to join it
        return True

    def forward(self, commands: bytes, relay: Relay, count: int = 1, resp3: bool = False) -> bool:
        """Send ``count`` client requests (their RESP bytes, one after the other) to the
        peer in one write; ``relay`` gets each reply in turn.

        ``resp3``: the client speaks RESP3, and the peer is to answer in it
        (the link is switched with a HELLO first if it speaks the other:
        :meth:`Forwarded.switch`).  False when the link is down, or too
        many forwarded requests wait already: nothing was sent, so nothing ran.
        """
        proto = self._proto
        if proto is None or proto.transport is None:
            return False
        t = proto.transport
        if t.get_write_buffer_size() > self._max_buffer:
            return False
        forwarded = proto.forwarded
        if resp3 is not forwarded.resp3:
            hello = forwarded.switch(resp3, count)
            if hello is None:
                return False
            if hello:
                commands = hello + commands
        if not forwarded.expect(relay, count):
            return False
        t.write(commands)
        return True

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None

    def _keep_early(self, parts: list[bytes]) -> bool:
        """Keep a message written before the link first came up (up to a bound)."""
        early = self._early
        if early is None or len(early) >= _EARLY_MAX:
            return False
        size = sum(len(p) for p in parts)
        if self._early_bytes + size > min(self._max_buffer, _EARLY_BYTES):
            return False
        early.append(parts)
        self._early_bytes += size
        return True

    def _on_ready(self, proto: _LinkProtocol) -> None:
        self._proto = proto
        self._backoff = 0.05
        log.debug("link to %s up", self.peer)
        early, self._early = self._early, None
        self._early_bytes = 0
        for parts in early or ():
            self.send(parts)

    def _on_lost(self, proto: _LinkProtocol) -> None:
        if self._proto is proto:
            self._proto = None
            self._on_unreachable(self.peer)
            log.debug("link to %s lost", self.peer)
        self._lost.set()

    async def _dial_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        host, port = split_hostport(self.dial)
        while not self._closed:
            self._lost.clear()
            try:
                ssl = self._ssl
                await asyncio.wait_for(
                    loop.create_connection(
                        lambda: _LinkProtocol(self),
                        host,
                        port,
                        ssl=ssl,
                        server_hostname=host if ssl is not None else None,
                    ),
                    timeout=2.0,
                )
            except (TimeoutError, OSError) as exc:
                if isinstance(exc, SSLError) and not self._tls_warned:
                    self._tls_warned = True  # once per link: it retries for ever
                    log.warning("TLS with peer %s failed: %s", self.peer, exc)
                else:
                    log.debug("dialing %s failed: %s", self.peer, exc)
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, 1.0)
                continue
            await self._lost.wait()
            if not self._closed:
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, 1.0)
