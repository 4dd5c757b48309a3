"""Reads at the configured consistency: from local state, within the leader's lease, or by ReadIndex.

* LOW: any node answers from its own state.
* MEDIUM: the leader answers while its lease holds (a quorum heard from it
  within the election timeout, less a margin); followers redirect.
* HIGH: the leader confirms it still leads with a heartbeat round (ReadIndex,
  shared by every read that arrived meanwhile), then answers once its
  machine has applied the commit index the round started at.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from time import monotonic
from typing import Any, Final

from redraft.errors import Redirect
from redraft.machine import Respond
from redraft.options import Level
from redraft.raft.core import RaftCore
from redraft.raft.types import ReadState, Role
from redraft.replies import READ, Line, Slot, answer, fail
from redraft.ticker import Ticker

_LEADER: Final = Role.LEADER
_LOW: Final = Level.LOW
_MEDIUM: Final = Level.MEDIUM


class ReadGate:
    """Decides when a read may be served, and serves the ones that had to wait."""

    def __init__(
        self, core: RaftCore, consistency: Level, clock: Ticker, wake: Callable[[], None]
    ) -> None:
        self.core = core
        self.level = consistency
        self.clock = clock
        self._wake = wake
        self._lease_until = -1.0
        self._waiting: list[tuple[int, int, list[Slot]]] = []
        """Confirmed reads waiting for the machine to reach their read index (a heap)."""
        self._seq = 0

    def invalidate(self) -> None:
        """The core took an input: the cached lease deadline may have moved."""
        self._lease_until = -1.0

    def read_now(self) -> bool:
        """Whether a read may be answered from this node's state right now.

        True at consistency low, and at medium on the leader within its
        lease; otherwise a read must be redirected or wait for a ReadIndex
        round (:meth:`read`).
        """
        level = self.level
        if level == _LOW:
            return True
        if level == _MEDIUM and self.core.role == _LEADER:
            now = monotonic()
            return now < self._lease_until or now < self._refresh_lease()
        return False

    def _refresh_lease(self) -> float:
        # The deadline only moves when the core takes an input, and every
        # input path clears this cache: reads between inputs just compare.
        # "The ticks due now are before the deadline" is "now is before the
        # deadline's tick begins".
        self._lease_until = until = self.clock.time_of(self.core.lease_deadline())
        return until

    def read(self, conn: Line, slot: Slot | None, respond: Respond | None, name: str) -> Any:
        """Serve a read now if the level allows (its reply value), else defer it (its slot)."""
        if self.read_now():
            return respond(None) if respond is not None else None
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        # ReadIndex: confirm leadership with a heartbeat round shared by every
        # read of this turn, then serve once the machine caught up.
        if slot is None:
            slot = conn.new_slot(READ)
        # The slot is the core's token for the read: it holds all that
        # serving it takes.
        slot.respond = respond
        slot.name = name
        core.read_index(slot)
        self._wake()
        return slot

    def confirmed(self, reads: list[ReadState], applied: int) -> None:
        """ReadIndex rounds confirmed: serve their reads once ``applied`` reaches their index."""
        for rs in reads:
            if rs.index <= applied:
                answer(rs.tokens)
            else:
                self._seq += 1
                heapq.heappush(self._waiting, (rs.index, self._seq, rs.tokens))

    def caught_up(self, applied: int) -> None:
        """The machine applied up to ``applied``: serve the confirmed reads it covers."""
        waiting = self._waiting
        while waiting and waiting[0][0] <= applied:
            answer(heapq.heappop(waiting)[2])

    def dropped(self, tokens: list[object]) -> None:
        """Reads whose round leadership loss cancelled: redirect them."""
        fail([t for t in tokens if isinstance(t, Slot)], Redirect(self.core.leader))
