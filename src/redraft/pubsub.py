"""Pub/sub on one node: who is subscribed to what here, and delivering what is published.

Subscriptions are the node's own state: a client subscribes at the node it
is connected to, any node (:class:`PubSub`, one per node, keyed by session).
Messages go through the Raft log: ``PUBLISH channel message`` is logged as
a write, and every node, applying it, delivers the message to its own
subscribers (:meth:`PubSub.publish`, which :class:`~redraft.applying.Applying`
calls by name), so a subscriber connected to any node receives what was
published, in log order.  The number of receivers on the node that logged
it (the leader) answers the publisher.  ``SPUBLISH`` and shard channels
(``SSUBSCRIBE``) are the same in a namespace of their own, with no patterns.

As in Redis 7.0: a connection receives one message per channel it
subscribed and one per pattern of its that matches (:mod:`redraft.globmatch`):
channel subscribers first, in the order they subscribed, then each pattern
in the order it was first subscribed.  A RESP2 connection with any
subscription may only (un)subscribe, PING, QUIT and RESET
(:meth:`Subscriber.hold`); a RESP3 one runs anything and gets messages as
push frames (:meth:`redraft.session.Session.push_bytes`).  A connection
that does not read its messages is dropped at the output-buffer limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redraft.errors import ErrWrongNumberOfArguments
from redraft.globmatch import Matcher, compile_glob
from redraft.registry import Route
from redraft.resp import encode3
from redraft.session import Session

PUBLISH = b"publish"
"""What a PUBLISH is logged as: ``[b"publish", channel, message]``."""
SPUBLISH = b"spublish"
"""What an SPUBLISH is logged as: ``[b"spublish", shardchannel, message]``."""

_ALLOWED_SUBSCRIBED = frozenset(
    (
        b"subscribe",
        b"psubscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"punsubscribe",
        b"sunsubscribe",
        b"quit",
        b"reset",
    )
)
"""What a RESP2 connection in subscribed mode may run (PING is answered by the hold)."""

_CONTAINERS = frozenset(
    b"acl client cluster command config function latency memory module object pubsub script "
    b"slowlog xgroup xinfo".split()
)
"""Redis's commands with subcommands: its errors name them ``client|id``."""

_NOT_IN_CONTEXT = (
    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
    "are allowed in this context"
)


@dataclass(frozen=True)
class _Kind:
    """One namespace of subscriptions: channels, patterns or shard channels."""

    attr: str
    """The name of the :class:`PubSub` and :class:`Subscriber` dicts that hold it."""
    subscribed: bytes
    unsubscribed: bytes
    shard: bool = False
    """Counted apart (SSUBSCRIBE's count is of shard channels only)."""


CHANNELS = _Kind("channels", b"subscribe", b"unsubscribe")
PATTERNS = _Kind("patterns", b"psubscribe", b"punsubscribe")
SHARD = _Kind("shard", b"ssubscribe", b"sunsubscribe", shard=True)


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


class Subscriber:
    """One connection's subscriptions, in the order it made them."""

    __slots__ = ("channels", "patterns", "session", "shard")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard: dict[bytes, None] = {}

    def count(self, kind: _Kind) -> int:
        """What a (un)subscribe of ``kind`` answers with: shard channels, or channels and patterns."""
        if kind.shard:
            return len(self.shard)
        return len(self.channels) + len(self.patterns)

    @property
    def total(self) -> int:
        """Every subscription: the connection is in subscribed mode while there is one."""
        return len(self.channels) + len(self.patterns) + len(self.shard)

    def hold(self, args: list[bytes], route: Route) -> bool:
        """The session's hook while subscribed: in RESP2 only (un)subscribing, PING, QUIT, RESET.

        True when it answered the request itself (PING, or the refusal).
        """
        session = self.session
        if session.encode is encode3:
            return False  # RESP3: pushes are told apart from replies, anything goes
        key = route.key
        if key in _ALLOWED_SUBSCRIBED:
            return False
        if key == b"ping":
            if len(args) > 2:
                session.reply_bytes(b"-ERR wrong number of arguments for 'ping' command\r\n")
            else:
                payload = args[1] if len(args) == 2 else b""
                session.reply_bytes(b"*2\r\n$4\r\npong\r\n" + _bulk(payload))
            return True
        name = route.name
        if key in _CONTAINERS and len(args) > 1:
            name = f"{name}|{args[1].decode('latin-1').lower()}"
        text = _NOT_IN_CONTEXT % name
        session.reply_bytes(b"-" + text.encode("utf-8", "replace") + b"\r\n")
        return True


class PubSub:
    """The subscriptions of one node's connections, and the delivery of applied messages."""

    def __init__(self) -> None:
        self.channels: dict[bytes, dict[Session, None]] = {}
        """Each channel with a subscriber here: its subscribers, in the order they subscribed."""
        self.patterns: dict[bytes, dict[Session, None]] = {}
        """Each pattern with a subscriber here: its subscribers."""
        self.shard: dict[bytes, dict[Session, None]] = {}
        """Each shard channel with a subscriber here (SSUBSCRIBE)."""
        self.subscribers: dict[Session, Subscriber] = {}
        """Every connection with a subscription."""
        self._matchers: dict[bytes, Matcher] = {}
        self.published = 0
        """Messages applied on this node (PUBLISH and SPUBLISH)."""
        self.delivered = 0
        """Messages delivered to this node's connections."""

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: the message counters from zero (the subscriptions stay)."""
        self.published = 0
        self.delivered = 0

    # --- subscribing, from the built-in commands

    def subscribe(self, session: Session, names: Iterable[bytes], kind: _Kind = CHANNELS) -> None:
        """(P|S)SUBSCRIBE: each name confirmed in turn with the connection's count."""
        sub = self.subscribers.get(session)
        if sub is None:
            sub = self.subscribers[session] = Subscriber(session)
        mine: dict[bytes, None] = getattr(sub, kind.attr)
        registry: dict[bytes, dict[Session, None]] = getattr(self, kind.attr)
        for name in names:
            if name not in mine:
                mine[name] = None
                registry.setdefault(name, {})[session] = None
                if kind is PATTERNS and name not in self._matchers:
                    self._matchers[name] = compile_glob(name)
            _confirm(session, kind.subscribed, name, sub.count(kind))
        if session.hold is None:
            session.hold = sub.hold

    def unsubscribe(self, session: Session, names: list[bytes], kind: _Kind = CHANNELS) -> None:
        """(P|S)UNSUBSCRIBE: the names given (each confirmed), or every one the connection has."""
        sub = self.subscribers.get(session)
        if sub is None:
            for name in names:
                _confirm(session, kind.unsubscribed, name, 0)
            if not names:
                _confirm(session, kind.unsubscribed, None, 0)
            return
        mine: dict[bytes, None] = getattr(sub, kind.attr)
        if not names:
            names = list(mine)
            if not names:
                _confirm(session, kind.unsubscribed, None, sub.count(kind))
        for name in names:
            if name in mine:
                del mine[name]
                self._drop(kind, name, session)
            _confirm(session, kind.unsubscribed, name, sub.count(kind))
        if not sub.total:
            self._leave_mode(sub)

    def forget(self, session: Session) -> None:
        """Drop every subscription of ``session`` without a word (it closed, or sent RESET)."""
        sub = self.subscribers.get(session)
        if sub is None:
            return
        for kind in (CHANNELS, PATTERNS, SHARD):
            mine: dict[bytes, None] = getattr(sub, kind.attr)
            for name in mine:
                self._drop(kind, name, session)
            mine.clear()
        self._leave_mode(sub)

    def _drop(self, kind: _Kind, name: bytes, session: Session) -> None:
        registry: dict[bytes, dict[Session, None]] = getattr(self, kind.attr)
        subs = registry.get(name)
        if subs is None:
            return
        subs.pop(session, None)
        if not subs:
            del registry[name]
            if kind is PATTERNS:
                self._matchers.pop(name, None)

    def _leave_mode(self, sub: Subscriber) -> None:
        session = sub.session
        del self.subscribers[session]
        if session.hold == sub.hold:
            session.hold = None

    # --- delivery, as entries are applied

    def publish(self, args: list[bytes]) -> int:
        """Applied ``[b"publish", channel, message]``: deliver it here; how many received it."""
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        channel, message = args[1], args[2]
        self.published += 1
        n = 0
        tail = _bulk(channel) + _bulk(message)
        subs = self.channels.get(channel)
        if subs:
            body = b"$7\r\nmessage\r\n" + tail
            resp2, resp3 = b"*3\r\n" + body, b">3\r\n" + body
            for session in subs:
                session.push_bytes(resp2, resp3)
            n = len(subs)
        if self.patterns:
            matchers = self._matchers
            for pattern, subs in self.patterns.items():
                if not matchers[pattern](channel):
                    continue
                body = b"$8\r\npmessage\r\n" + _bulk(pattern) + tail
                resp2, resp3 = b"*4\r\n" + body, b">4\r\n" + body
                for session in subs:
                    session.push_bytes(resp2, resp3)
                n += len(subs)
        self.delivered += n
        return n

    def spublish(self, args: list[bytes]) -> int:
        """Applied ``[b"spublish", shardchannel, message]``: deliver it here; how many received it."""
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        self.published += 1
        subs = self.shard.get(args[1])
        if not subs:
            return 0
        body = b"$8\r\nsmessage\r\n" + _bulk(args[1]) + _bulk(args[2])
        resp2, resp3 = b"*3\r\n" + body, b">3\r\n" + body
        for session in subs:
            session.push_bytes(resp2, resp3)
        self.delivered += len(subs)
        return len(subs)

    # --- PUBSUB

    def active(self, pattern: bytes | None, kind: _Kind = CHANNELS) -> list[bytes]:
        """PUBSUB (SHARD)CHANNELS: the channels with a subscriber here, matching ``pattern``."""
        registry: dict[bytes, dict[Session, None]] = getattr(self, kind.attr)
        if pattern is None:
            return list(registry)
        match = compile_glob(pattern)
        return [ch for ch in registry if match(ch)]

    def numsub(self, channels: list[bytes], kind: _Kind = CHANNELS) -> list[Any]:
        """PUBSUB (SHARD)NUMSUB: each channel and its number of subscribers here, flat."""
        registry: dict[bytes, dict[Session, None]] = getattr(self, kind.attr)
        out: list[Any] = []
        for ch in channels:
            out += (ch, len(registry.get(ch, ())))
        return out

    def numpat(self) -> int:
        """PUBSUB NUMPAT: how many patterns have a subscriber here."""
        return len(self.patterns)


def _confirm(session: Session, kind: bytes, name: bytes | None, count: int) -> None:
    """One confirmation (``subscribe ch 1``): an array in RESP2, a push frame in RESP3."""
    if session.encode is encode3:
        head, null = b">3\r\n", b"_\r\n"
    else:
        head, null = b"*3\r\n", b"$-1\r\n"
    data = head + _bulk(kind) + (null if name is None else _bulk(name)) + b":%d\r\n" % count
    session.reply_bytes(data)


__all__ = ["CHANNELS", "PATTERNS", "PUBLISH", "SHARD", "SPUBLISH", "PubSub", "Subscriber"]
