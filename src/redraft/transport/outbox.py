"""Raft messages on their way to peers: queued during a pass, one RAFTMSG per peer, one write.

The peer links (:class:`~redraft.transport.peers.PeerLink`) are made on first
use and kept; they belong to the process, not to a Raft group.
"""

from __future__ import annotations

from collections.abc import Callable

from redraft.raft.types import Message
from redraft.transport.codec import SharedEntries, encode_message_parts
from redraft.transport.forward import Relay
from redraft.transport.peers import PeerLink, raftmsg_parts


class Outbox:
    """Per-peer queues of messages and the links that carry them."""

    def __init__(
        self,
        self_id: str,
        dial: Callable[[str, Callable[[str], None]], PeerLink],
        on_unreachable: Callable[[str], None],
    ) -> None:
        self.self_id = self_id
        self._dial = dial
        self._on_unreachable = on_unreachable
        self.links: dict[str, PeerLink] = {}
        self._queued: dict[str, list[Message]] = {}

    def queue(self, msgs: list[Message]) -> None:
        """Queue messages; :meth:`flush` writes them."""
        queued = self._queued
        for m in msgs:
            lst = queued.get(m.to)
            if lst is None:
                queued[m.to] = [m]
            else:
                lst.append(m)

    def flush(self) -> None:
        """Write what is queued: one RAFTMSG, in one write, per peer."""
        if not self._queued:
            return
        queued = self._queued
        self._queued = {}
        shared: SharedEntries = {}  # large entry lists are packed once for every peer
        for peer, batch in queued.items():
            link = self.links.get(peer)
            if link is None:
                link = self.links[peer] = self._dial(peer, self._on_unreachable)
                link.start()
            link.send(raftmsg_parts(encode_message_parts(batch, shared)))

    def forward(
        self, peer: str, commands: bytes, relay: Relay, count: int = 1, resp3: bool = False
    ) -> bool:
        """Send client requests to ``peer`` on this node's link to it (see :class:`PeerLink`).

        False when it could not be sent (no link up yet, or too many waiting).
        """
        link = self.links.get(peer)
        if link is None:
            link = self.links[peer] = self._dial(peer, self._on_unreachable)
            link.start()
        return link.forward(commands, relay, count, resp3)

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
