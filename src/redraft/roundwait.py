"""Requests kept unparsed through a ReadIndex round, so that the parser answers their reads.

At consistency high every read waits for a heartbeat round that confirms
this node still leads (ReadIndex).  Parsed on arrival, each read of a
pipeline would cost Python twice: once to queue it, once to serve it.  So a
connection whose bytes begin with a plain read, with nothing ahead of it in
line, keeps those bytes as they came: one place in line and one round token
stand for all of them.  Once the round confirms and the machine has applied
its index, the bytes go to the parser as they would at a leader inside its
lease: the reads at the front answered in C from the machine's tables (or,
failing that, by the machine's reads, still covered by the round), the rest
run in order behind them as if they had just arrived.

Bytes that arrive meanwhile join the held ones but take a round of their
own (a round covers only reads that came before its heartbeats went out):
the held bytes run when the latest round confirms.  A round that fails
(leadership lost) runs the held bytes as the node would now: redirected,
forwarded or waiting for a new round.  Bytes held by a connection that
closes are dropped unread, like bytes still in its socket.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from redraft.errors import Redirect
from redraft.machine import Applier, Respond
from redraft.registry import READ, Registry
from redraft.replies import WAIT, Line, ReadRun, Slot, SlotKind, as_is


class _Requests(Protocol):
    @property
    def read_now(self) -> Callable[[], bool]: ...

    @property
    def read(self) -> Callable[[Line, Slot | None, Respond | None, str], Any]: ...


class _Shared(Protocol):
    @property
    def registry(self) -> Registry: ...

    @property
    def requests(self) -> _Requests: ...

    @property
    def applier(self) -> Applier: ...


class Session(Line, Protocol):
    """What of :class:`redraft.session.Session` holding bytes takes."""

    round_wait: HeldForRound | None

    @property
    def shared(self) -> _Shared: ...

    @property
    def closed(self) -> bool: ...

    @property
    def query_limit(self) -> int: ...

    def new_slot(self, kind: SlotKind = WAIT) -> Slot: ...

    def overflow(self) -> None: ...

    def run_held(self, line: Slot, data: bytes, confirmed_round: bool) -> None: ...


def confirmed() -> bool:
    """The parser's gate for held bytes whose round confirmed: their reads may be answered."""
    return True


_FIRST = re.compile(rb"\*[0-9]{1,9}\r\n\$([0-9]{1,9})\r\n([^\r]{0,64})\r\n")


def first_name(data: bytes) -> bytes | None:
    """The name of the first request of ``data`` (RESP array form), or None if it is not whole."""
    found = _FIRST.match(data)
    if found is None or int(found[1]) != len(found[2]):
        return None
    return found[2]


def wait_round(session: Session, data: bytes) -> bool:
    """Hold ``data`` for a ReadIndex round if it begins with a plain read and has more; False: serve it now.

    The caller checked that nothing is ahead in line, no mode holds the
    connection, the client is authenticated, the parser is between requests
    and ``data`` holds more than one request, most likely (a lone one costs
    less queued as parsed).
    """
    name = first_name(data)
    if name is None:
        return False
    registry = session.shared.registry
    route = registry.routes.get(name) or registry.route(name)
    if route.kind is not READ or session.shared.requests.read_now():
        return False
    held = HeldForRound(session, data, route.name)
    if not held.new_round():
        return False  # not leading: the normal path redirects or forwards
    held.line = session.new_slot(WAIT)
    session.round_wait = held
    return True


class HeldForRound:
    """A connection's bytes waiting for their ReadIndex rounds; the respond of the rounds' tokens."""

    __slots__ = ("chunks", "done", "line", "name", "rounds", "session", "size")

    def __init__(self, session: Session, data: bytes, name: str) -> None:
        self.session = session
        self.chunks = [data]
        self.size = len(data)
        self.name = name
        self.line: Slot | None = None
        """The place in line of their replies: every reply after them waits behind it."""
        self.rounds = 0
        """Rounds asked for and not yet confirmed: the bytes run when none is left."""
        self.done = False

    @property
    def count(self) -> int:
        """What a slot's run tells: the token answers no command of its own."""
        return 1

    def new_round(self) -> bool:
        """Ask for a round covering every byte held so far; False if this node no longer leads."""
        session = self.session
        token = Slot(WAIT, session)  # the round's token, not in line
        token.run = self
        token.encode = as_is
        try:
            session.shared.requests.read(session, token, self, self.name)
        except Redirect:
            return False
        self.rounds += 1
        return True

    def more(self, data: bytes) -> None:
        """Bytes that arrived while held: they wait too, and for a round begun after them."""
        self.chunks.append(data)
        self.size += len(data)
        if self.size > self.session.query_limit:
            self.done = True
            self.session.round_wait = None
            self.session.overflow()
        elif not self.new_round():
            self._release(confirmed=False)

    def __call__(self, _: object) -> bytes:
        """A round confirmed and the machine caught up with it; the last one runs the bytes."""
        self.rounds -= 1
        if self.rounds == 0 and not self.done:
            self._release(confirmed=True)
        return b""

    def errors(self, exc: BaseException, mode: str = "try") -> bytes:
        """A round failed (leadership lost): the held bytes run as this node would serve them now."""
        if not self.done:
            self._release(confirmed=False)
        return b""

    def _release(self, confirmed: bool) -> None:
        self.done = True
        session = self.session
        session.round_wait = None
        if session.closed or self.line is None:
            return
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        session.run_held(self.line, data, confirmed)


def front_reads(session: Session, cmds: list[list[bytes]], out: bytearray) -> int:
    """Answer the plain reads at the front of ``cmds`` into ``out`` (a round covers them); how many."""
    if not cmds:
        return 0
    registry = session.shared.registry
    route = registry.routes.get(cmds[0][0]) or registry.route(cmds[0][0])
    if route.kind is not READ:
        return 0
    run = registry.read_run(cmds, 0, route)
    out += ReadRun(session.shared.applier, run, session.encode, session.addr)(None)
    return len(run)
