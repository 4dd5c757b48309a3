"""A bounded record of a simulated run, formatted only when someone reads it."""

from __future__ import annotations

import sys
from collections import deque
from typing import TextIO

from redraft.raft.types import Message, MsgType

_VOTE_REQ = (MsgType.VOTE, MsgType.PRE_VOTE)
_VOTE_RESP = (MsgType.VOTE_RESP, MsgType.PRE_VOTE_RESP)


def format_message(m: Message) -> str:
    """One line describing a message."""
    try:
        name = MsgType(m.type).name
    except ValueError:
        name = f"type{m.type}"
    head = f"{name} {m.frm}->{m.to} t{m.term}"
    t = m.type
    if t == MsgType.APP:
        span = f"[{m.entries[0].index}..{m.entries[-1].index}]" if m.entries else "[]"
        return f"{head} prev={m.index}/{m.log_term} {span} commit={m.commit}"
    if t == MsgType.APP_RESP:
        if m.reject:
            return f"{head} REJECT {m.index} hint={m.hint_index}/{m.hint_term}"
        return f"{head} match={m.index}"
    if t in _VOTE_REQ:
        return f"{head} last={m.index}/{m.log_term}" + (" transfer" if m.transfer else "")
    if t in _VOTE_RESP:
        return f"{head} {'rejected' if m.reject else 'granted'}"
    if t == MsgType.HEARTBEAT:
        return f"{head} commit={m.commit} round={m.round}"
    if t == MsgType.HEARTBEAT_RESP:
        return f"{head} round={m.round}"
    if t == MsgType.SNAP and m.snap is not None:
        c = m.snap
        done = " done" if c.done else ""
        return f"{head} snap={c.meta.index}/{c.meta.term} off={c.offset} len={c.length}{done}"
    if t == MsgType.SNAP_RESP:
        tail = " REJECT" if m.reject else ""
        tail += " installed" if m.installed else ""
        return f"{head} snap={m.index} next={m.snap_offset}{tail}"
    return head


class Trace:
    """The last ``keep`` events of a run (every event when ``verbose``, printed as it happens)."""

    def __init__(self, keep: int = 200, verbose: bool = False, out: TextIO | None = None) -> None:
        self._events: deque[tuple[float, str, str, object]] = deque(maxlen=keep)
        self.verbose = verbose
        self._out = out or sys.stdout

    def add(self, time: float, what: str, who: str, detail: object = "") -> None:
        """Record an event; ``detail`` may be a Message (formatted lazily) or any object."""
        ev = (time, what, who, detail)
        self._events.append(ev)
        if self.verbose:
            print(_render(ev), file=self._out)

    def tail(self, n: int) -> list[str]:
        """The last ``n`` events as text lines."""
        evs = list(self._events)[-n:]
        return [_render(ev) for ev in evs]


def _render(ev: tuple[float, str, str, object]) -> str:
    time, what, who, detail = ev
    text = format_message(detail) if isinstance(detail, Message) else str(detail)
    return f"{time:10.3f}  {what:<9} {who:<5} {text}".rstrip()
