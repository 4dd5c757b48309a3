"""Messages a core has produced since its last Ready."""

from __future__ import annotations

from typing import Final

from redraft.raft.types import Message, MsgType

# Pre-votes change no state, so they may go before persistence.
_SEND_AT_ONCE: Final = frozenset({MsgType.PRE_VOTE, MsgType.PRE_VOTE_RESP})


class Outbox:
    """The two queues of a Ready: messages that may go at once, and those that wait.

    ``now`` holds what depends on nothing not yet durable (a leader's own
    traffic, pre-votes); ``after`` what may leave only once the Ready's
    persistence is durable (votes, acknowledgements, campaigns).  The core
    hands both lists to the next Ready and starts new ones.

    A leader appends its own replication traffic (APP, HEARTBEAT, SNAP,
    TIMEOUT_NOW) to ``now`` directly; every other message goes through
    :meth:`send`.
    """

    __slots__ = ("after", "now")

    def __init__(self) -> None:
        self.now: list[Message] = []
        self.after: list[Message] = []

    def send(self, m: Message) -> None:
        """Queue ``m``: at once if it promises nothing durable, else after persistence."""
        if m.type in _SEND_AT_ONCE:
            self.now.append(m)
        else:
            self.after.append(m)


__all__ = ["Outbox"]
