"""Client requests a follower forwards to the leader over its peer link, and their replies.

In ``--redirect proxy`` mode a follower writes a request it may not serve
on its link to the leader as an ordinary command.  The leader runs it as it
would any client's and answers on the same connection; ``RAFTMSG`` never
answers, so the replies that come back on a link are exactly those of the
forwarded requests, in the order they were sent.  :class:`Forwarded` keeps
the callbacks waiting for them and cuts the byte stream into replies,
handing each on as the bytes the leader sent (a client at the follower gets
what it would have got at the leader, byte for byte).

The leader encodes its replies in the protocol of the connection they come
on, so a link is switched to the protocol of the client whose requests it
carries next (:meth:`Forwarded.switch`): a ``HELLO 3`` ahead of the
requests of a RESP3 client while the link speaks RESP2, a ``HELLO 2`` ahead
of a RESP2 client's while it speaks RESP3, each HELLO's own reply
swallowed here.  A link starts in RESP2 and
one that carries only RESP2 clients' requests never sends a HELLO; only a
follower whose RESP3 and RESP2 clients take turns pays one per turn.  Any
leader since RESP3 came (before proxy mode did) understands HELLO; one that
refused it would leave the link in RESP2, and RESP3 clients at this node
would get RESP2's forms, as they did before links were switched (logged
once per connection).  A push (``>``) on a link answers no request and is
dropped: a leader never pushes on a peer's connection, but an older one
might have, had a machine pushed to it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

Relay = Callable[[bytes | None], None]
"""Called with one reply's bytes, or None when the link was lost before it came."""

log = logging.getLogger("redraft.transport")

HELLO = (b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n", b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
"""``HELLO 2`` and ``HELLO 3``, by whether the link is to speak RESP3."""

_SIMPLE = frozenset(b"+-:_,#(")
_COUNTED = frozenset(b"*~>%|")


class Forwarded:
    """The forwarded requests of one peer connection still waiting for their replies."""

    def __init__(self, limit: int, peer: str = "") -> None:
        self.limit = limit
        """How many may wait at once; more are refused (the link is not a queue without end)."""
        self.peer = peer
        self.resp3 = False
        """Whether the peer answers the next request sent in RESP3 (the last HELLO sent)."""
        self.refused = False
        """The peer refused a HELLO: the link stays in RESP2."""
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
            if buf[start] == 0x3E:  # >: a push answers no request
                log.debug("dropped a push on the link to %s", self.peer)
            elif not self._waiting:
                raise ValueError("a reply on a peer link that no forwarded request waits for")
            else:
                self._waiting.popleft()(bytes(buf[start:end]))
            start = end
        del buf[:start]

    def switch(self, resp3: bool, count: int) -> bytes | None:
        """What to send ahead of ``count`` requests of a client that speaks RESP3 (or RESP2),
        when the link speaks the other: the HELLO that switches it, its reply awaited here.

        Called only when ``resp3`` is not :attr:`resp3`.  b"" if the peer
        refused a HELLO (the requests go as they are), None if the HELLO and
        the requests would make too many waiting.
        """
        if self.refused:
            return b""
        if len(self._waiting) + count + 1 > self.limit:
            return None
        self.resp3 = resp3
        self._waiting.append(self._switched)
        return HELLO[resp3]

    def _switched(self, reply: bytes | None) -> None:
        """The reply to a HELLO this link sent: swallowed, unless it is a refusal."""
        if reply is not None and reply[:1] == b"-" and not self.refused:
            self.refused = True
            self.resp3 = False  # a HELLO refused changes nothing: the peer speaks RESP2
            log.warning(
                "peer %s refused HELLO (%r): RESP3 clients get RESP2 replies to the requests "
                "forwarded to it",
                self.peer,
                reply.strip(),
            )

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
    if kind == 0x7C:  # |: an attribute, followed by the reply it describes
        return reply_end(buf, p)
    return p


__all__ = ["HELLO", "Forwarded", "Relay", "reply_end"]
