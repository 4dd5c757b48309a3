"""Client requests a follower forwards to the leader over its peer link, and their replies.

In ``--redirect proxy`` mode a follower writes a request it may not serve
on its link to the leader as an ordinary command.  The leader runs it as it
would any client's and answers on the same connection; ``RAFTMSG`` never
answers, so the replies that come back on a link are exactly those of the
forwarded requests, in the order they were sent.  :class:`Forwarded` keeps
the callbacks waiting for them and cuts the byte stream into replies,
handing each on as the bytes the leader sent (a client at the follower gets
what it would have got at the leader, byte for byte).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

Relay = Callable[[bytes | None], None]
"""Called with one reply's bytes, or None when the link was lost before it came."""

_SIMPLE = frozenset(b"+-:_,#(")
_COUNTED = frozenset(b"*~>%|")


class Forwarded:
    """The forwarded requests of one peer connection still waiting for their replies."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """How many may wait at once; more are refused (the link is not a queue without end)."""
        self._waiting: deque[Relay] = deque()
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, relay: Relay, count: int = 1) -> bool:
        """Wait for the next ``count`` replies, each handed to ``relay``; False if that
        would make too many waiting."""
        if len(self._waiting) + count > self.limit:
            return False
        if count == 1:
            self._waiting.append(relay)
        else:
            self._waiting.extend([relay] * count)
        return True

    def feed(self, data: bytes) -> None:
        """Bytes read from the link: hand each complete reply to the request it answers.

        Raises ValueError for bytes that are not RESP, or a reply nobody
        waits for (the link is then out of step and must be dropped).
        """
        buf = self._buf
        buf += data
        start = 0
        while start < len(buf):
            end = reply_end(buf, start)
            if end < 0:
                break
            if not self._waiting:
                raise ValueError("a reply on a peer link that no forwarded request waits for")
            self._waiting.popleft()(bytes(buf[start:end]))
            start = end
        del buf[:start]

    def lost(self) -> None:
        """The connection is gone: every request still waiting gets None."""
        waiting, self._waiting = self._waiting, deque()
        self._buf.clear()
        for relay in waiting:
            relay(None)


def reply_end(buf: bytes | bytearray, pos: int) -> int:
    """The index just past the RESP reply starting at ``buf[pos]``; -1 if it is incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return -1
    kind = buf[pos]
    if kind in _SIMPLE:
        return nl + 2
    try:
        n = int(buf[pos + 1 : nl])
    except ValueError:
        raise ValueError(f"not a RESP reply: {bytes(buf[pos : pos + 16])!r}") from None
    if kind == 0x24 or kind == 0x21 or kind == 0x3D:  # $ ! =: bulk strings
        if n < 0:
            return nl + 2
        end = nl + 2 + n + 2
        return end if end <= len(buf) else -1
    if kind not in _COUNTED:
        raise ValueError(f"not a RESP reply: {bytes(buf[pos : pos + 16])!r}")
    items = 2 * n if kind in (0x25, 0x7C) else n  # % and |: maps hold pairs
    p = nl + 2
    for _ in range(max(items, 0)):
        p = reply_end(buf, p)
        if p < 0:
            return -1
    return p


__all__ = ["Forwarded", "Relay", "reply_end"]
