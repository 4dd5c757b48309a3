"""Per-link TCP proxies on loopback, so the fault suite can cut peer traffic.

Node ``i`` reaches node ``j`` through its own proxy port for the ordered link
``(i, j)``: the node dials it (``--peer-route``) and the proxy forwards to
``j``'s real port.  Raft traffic on that connection flows one way (``i``'s
messages to ``j``; ``j`` answers on its own link to ``i``), so cutting the
link ``(i, j)`` alone is a one-way partition and cutting both directions is a
symmetric one.

A link is in one of three modes (:class:`Mode`):

* ``OPEN`` forwards bytes both ways;
* ``DROP`` resets every connection on the link and resets new ones as soon as
  they are accepted, like a peer that refuses connections;
* ``STALL`` stops forwarding without closing anything, like a network that
  swallows packets: bytes wait in socket buffers, and new connections are
  accepted but not forwarded.  On heal the stalled bytes are delivered late,
  as TCP would after a partition heals, and stalled new connections are
  connected through.

Every proxy of a :class:`ProxyNet` runs on one asyncio loop in a background
thread; the public methods are thread-safe and wait until the change took
effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

__all__ = ["Link", "Mode", "ProxyNet"]

_T = TypeVar("_T")
# Pause reading from one side once this much waits to be written to the other.
_HIGH_WATER = 4 << 20


class Mode(enum.Enum):
    """What a link does with traffic; see the module docstring."""

    OPEN = "open"
    DROP = "drop"
    STALL = "stall"


Link = tuple[str, str]
"""An ordered pair of labels: traffic from the first to the second."""


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; forwards what it reads to its twin."""

    def __init__(self, pair: _Pair, downstream: bool) -> None:
        self.pair = pair
        self.downstream = downstream
        self.transport: asyncio.Transport | None = None
        self.paused_by_peer = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.downstream:
            self.pair.on_accepted(self)

    def data_received(self, data: bytes) -> None:
        self.pair.forward(self, data)

    def eof_received(self) -> bool | None:
        self.pair.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.close()

    def pause_writing(self) -> None:
        self.pair.twin(self).pause_reading_for_peer()

    def resume_writing(self) -> None:
        self.pair.twin(self).resume_reading_for_peer()

    def pause_reading_for_peer(self) -> None:
        self.paused_by_peer = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading_for_peer(self) -> None:
        self.paused_by_peer = False
        t = self.transport
        if not self.pair.proxy.stalled and t is not None and not t.is_closing():
            t.resume_reading()


class _Pair:
    """An accepted connection and the one the proxy opened to the target."""

    def __init__(self, proxy: _Proxy) -> None:
        self.proxy = proxy
        self.down = _Side(self, downstream=True)
        self.up: _Side | None = None
        self.closed = False
        self._connecting = False
        # Bytes read from downstream before the upstream connection was up.
        self._early: list[bytes] = []

    def twin(self, side: _Side) -> _Side:
        if side is self.down:
            assert self.up is not None
            return self.up
        return self.down

    def on_accepted(self, side: _Side) -> None:
        proxy = self.proxy
        if proxy.mode is Mode.DROP:
            self.abort()
            return
        proxy.pairs.add(self)
        if proxy.stalled:
            self.pause()
            return
        self.connect_upstream()

    def connect_upstream(self) -> None:
        if self._connecting or self.closed:
            return
        self._connecting = True
        self.proxy.net.spawn(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        up = _Side(self, downstream=False)
        try:
            await loop.create_connection(lambda: up, "127.0.0.1", self.proxy.target_port)
        except OSError:
            self.abort()
            return
        self.up = up
        if self.closed:
            self.abort()
            return
        for chunk in self._early:
            self._write(up, chunk)
        self._early.clear()
        if self.proxy.stalled:
            self.pause()

    def forward(self, side: _Side, data: bytes) -> None:
        if self.closed:
            return
        if self.up is None:
            self._early.append(data)
            return
        self._write(self.twin(side), data)

    @staticmethod
    def _write(side: _Side, data: bytes) -> None:
        t = side.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def pause(self) -> None:
        for side in (self.down, self.up):
            if side is not None and side.transport is not None and not side.transport.is_closing():
                side.transport.pause_reading()

    def resume(self) -> None:
        if self.up is None:
            self.connect_upstream()
        for side in (self.down, self.up):
            if side is None or side.paused_by_peer:
                continue
            if side.transport is not None and not side.transport.is_closing():
                side.transport.resume_reading()

    def abort(self) -> None:
        for side in (self.down, self.up):
            if side is not None and side.transport is not None:
                side.transport.abort()
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        for side in (self.down, self.up):
            if side is not None and side.transport is not None:
                side.transport.close()


@dataclass(eq=False)
class _Proxy:
    net: ProxyNet
    link: Link
    target_port: int
    mode: Mode = Mode.OPEN
    server: asyncio.Server | None = None
    port: int = 0
    pairs: set[_Pair] = field(default_factory=set)

    @property
    def stalled(self) -> bool:
        return self.mode is Mode.STALL

    def set_mode(self, mode: Mode) -> None:
        old, self.mode = self.mode, mode
        if mode is old:
            return
        pairs = list(self.pairs)
        if mode is Mode.DROP:
            for pair in pairs:
                pair.abort()
        elif mode is Mode.STALL:
            for pair in pairs:
                pair.pause()
        else:
            for pair in pairs:
                pair.resume()


class ProxyNet:
    """A set of link proxies on 127.0.0.1, served from one background thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._proxies: dict[Link, _Proxy] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="jepsen-proxies", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T:
        async def wrapper() -> _T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=10)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the proxy loop (only call from the loop itself)."""
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def add(self, link: Link, target_port: int) -> int:
        """Start a proxy for ``link`` forwarding to ``target_port``; returns its port."""

        async def start() -> int:
            proxy = _Proxy(self, link, target_port)
            proxy.server = await self._loop.create_server(lambda: _Pair(proxy).down, "127.0.0.1", 0)
            proxy.port = proxy.server.sockets[0].getsockname()[1]
            self._proxies[link] = proxy
            return proxy.port

        return self._call(start)

    def port(self, link: Link) -> int:
        """The port a node dials for ``link``."""
        return self._proxies[link].port

    def links(self) -> list[Link]:
        """Every link with a proxy."""
        return list(self._proxies)

    def set(self, links: list[Link], mode: Mode) -> None:
        """Put every link of ``links`` in ``mode``."""

        async def apply() -> None:
            for link in links:
                self._proxies[link].set_mode(mode)

        self._call(apply)

    def modes(self) -> dict[Link, Mode]:
        """The current mode of every link."""
        return {link: p.mode for link, p in self._proxies.items()}

    def cut(self, links: list[Link], stall: bool = False) -> None:
        """Stop traffic on ``links`` (reset connections, or stall them if ``stall``)."""
        self.set(links, Mode.STALL if stall else Mode.DROP)

    def heal(self) -> None:
        """Open every link again."""
        self.set(list(self._proxies), Mode.OPEN)

    def reset(self, links: list[Link]) -> None:
        """Reset every connection on ``links`` without changing their mode."""

        async def apply() -> None:
            for link in links:
                for pair in list(self._proxies[link].pairs):
                    pair.abort()

        self._call(apply)

    def close(self) -> None:
        """Stop every proxy and the background thread."""
        if self._loop.is_closed():
            return

        async def stop() -> None:
            for proxy in self._proxies.values():
                for pair in list(proxy.pairs):
                    pair.abort()
                if proxy.server is not None:
                    proxy.server.close()
            for task in list(self._tasks):
                task.cancel()

        with contextlib.suppress(Exception):
            self._call(stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        with contextlib.suppress(RuntimeError):
            self._loop.close()
