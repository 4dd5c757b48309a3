"""ReadIndex reads and the leader lease (Raft dissertation §6.4).

A leader proves it still leads by a heartbeat round that a majority
acknowledges.  Rounds are numbered; each follower echoes the round of the
heartbeat it answers, and the leader remembers the tick each round was sent
at.  The two uses:

* ReadIndex: reads wait for the next round; once a majority acknowledged it
  (or a later one), they may be served at the commit index the round started
  at.
* Lease: the newest round a majority acknowledged was sent at some tick; no
  other leader can be elected within an election timeout of it (followers
  that acked it refuse to vote that long), so until then reads may be served
  without a round trip.

This object keeps the numbering, the ticks and the reads; the progress
tracker knows which round each follower acknowledged.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Final

from redraft.raft.types import ReadState

_FAR_PAST: Final = -(1 << 62)


class ReadOnly:
    """Heartbeat rounds, their ticks, and the ReadIndex reads waiting on them."""

    __slots__ = (
        "_base",
        "_pending",
        "_ticks",
        "dropped",
        "lease_forfeited",
        "ready",
        "round",
        "waiting",
    )

    def __init__(self) -> None:
        self.round = 0
        """The latest heartbeat round sent."""
        # The tick each round was sent at: rounds are consecutive, so round r
        # is at _ticks[r - _base].  Old rounds are dropped from the front, in bulk.
        self._ticks: list[int] = []
        self._base = 1
        self.waiting: list[object] = []
        """Reads that wait for the next round to start."""
        # (round, commit index when it started, its reads), oldest first
        self._pending: deque[tuple[int, int, list[object]]] = deque()
        self.ready: list[ReadState] = []
        """Reads confirmed since the last Ready."""
        self.dropped: list[object] = []
        """Reads given up since the last Ready (leadership lost)."""
        self.lease_forfeited = False
        """This leadership's lease proves nothing any more (see the core's transfer)."""

    # ----------------------------------------------------------------- rounds

    def new_round(self, now: int, keep_after: int) -> int:
        """Number a heartbeat round sent at tick ``now``; returns its number.

        Rounds sent before tick ``keep_after`` may be forgotten: they can no
        longer give a lease.
        """
        self.round += 1
        rnd = self.round
        rt = self._ticks
        if not rt:
            self._base = rnd
        rt.append(now)
        if len(rt) > 4096:
            drop = bisect_left(rt, keep_after)
            if drop:
                del rt[:drop]
                self._base += drop
        return rnd

    def round_tick(self, rnd: int) -> int:
        """The tick round ``rnd`` was sent at (far in the past if unknown)."""
        k = rnd - self._base
        rt = self._ticks
        return rt[k] if 0 <= k < len(rt) else _FAR_PAST

    # ------------------------------------------------------------------ reads

    @property
    def in_flight(self) -> bool:
        """Whether a round carrying reads awaits its quorum."""
        return bool(self._pending)

    def start(self, index: int) -> None:
        """The waiting reads ride on the round just sent, which started at commit ``index``."""
        self._pending.append((self.round, index, self.waiting))
        self.waiting = []

    def release_waiting(self, index: int) -> None:
        """Confirm every waiting read at ``index`` now (a single voter needs no round)."""
        if self.waiting:
            self.ready.append(ReadState(self.waiting, index))
        self.waiting = []

    def acknowledged(self, rnd: int) -> None:
        """A majority acknowledged round ``rnd``: release the reads of every round up to it."""
        pending = self._pending
        while pending and pending[0][0] <= rnd:
            _, index, tokens = pending.popleft()
            if tokens:
                self.ready.append(ReadState(tokens, index))

    def reset(self) -> None:
        """Leadership ended (or changed hands): give up every read, forget the forfeit."""
        dropped = self.dropped
        for _, _, tokens in self._pending:
            dropped.extend(tokens)
        self._pending.clear()
        dropped.extend(self.waiting)
        self.waiting = []
        self.lease_forfeited = False

    def take(self) -> tuple[list[ReadState], list[object]]:
        """The reads confirmed and dropped since the last call (for a Ready)."""
        ready, dropped = self.ready, self.dropped
        self.ready = []
        self.dropped = []
        return ready, dropped


__all__ = ["ReadOnly"]
