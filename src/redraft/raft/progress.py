"""What a leader knows about each follower's log, and how it feeds it."""

from __future__ import annotations

from collections import deque
from enum import IntEnum

from redraft.raft.types import SnapshotMeta


class PeerState(IntEnum):
    PROBE = 0
    """Where the follower's log matches is unknown: one APP at a time."""
    REPLICATE = 1
    """The follower is matched: APPs are pipelined up to the in-flight window."""
    SNAPSHOT = 2
    """The follower needs entries we compacted away: a snapshot is streaming."""


# Class attribute lookups on enums are slow in Python 3.11: compare with aliases.
_PROBE = PeerState.PROBE
_REPLICATE = PeerState.REPLICATE


class OutgoingSnapshot:
    """A snapshot being streamed to one follower in chunks."""

    __slots__ = ("acked", "meta", "progress_tick", "sent")

    def __init__(self, meta: SnapshotMeta, now: int) -> None:
        self.meta = meta
        self.sent = 0
        self.acked = 0
        self.progress_tick = now


class Progress:
    """The leader's view of one member (the leader has one for itself too)."""

    __slots__ = (
        "acked_round",
        "inflight",
        "inflight_bytes",
        "last_contact",
        "learner",
        "match",
        "next",
        "probe_sent",
        "recent_active",
        "snapshot",
        "state",
    )

    def __init__(self, next_index: int, learner: bool, now: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = PeerState.PROBE
        self.probe_sent = False
        self.learner = learner
        # (last index, bytes, tick sent) of each APP in flight while replicating
        self.inflight: deque[tuple[int, int, int]] = deque()
        self.inflight_bytes = 0
        self.recent_active = False
        self.last_contact = now
        self.acked_round = 0
        self.snapshot: OutgoingSnapshot | None = None

    def __repr__(self) -> str:
        return (
            f"Progress(match={self.match}, next={self.next}, state={self.state.name}, "
            f"inflight={len(self.inflight)}, learner={self.learner})"
        )

    def become_probe(self) -> None:
        self.state = PeerState.PROBE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()
        self.inflight_bytes = 0
        self.snapshot = None

    def become_replicate(self) -> None:
        self.state = PeerState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()
        self.inflight_bytes = 0
        self.snapshot = None

    def become_snapshot(self, meta: SnapshotMeta, now: int) -> None:
        self.state = PeerState.SNAPSHOT
        self.probe_sent = False
        self.inflight.clear()
        self.inflight_bytes = 0
        self.snapshot = OutgoingSnapshot(meta, now)

    def update(self, index: int) -> bool:
        """The follower acknowledged everything up to ``index``; True if that is news."""
        news = index > self.match
        if news:
            self.match = index
            self.probe_sent = False
        if self.next <= index:
            self.next = index + 1
        inflight = self.inflight
        while inflight and inflight[0][0] <= index:
            self.inflight_bytes -= inflight.popleft()[1]
        return news

    def sent_entries(self, last: int, nbytes: int, now: int) -> None:
        """An APP carrying entries up to ``last`` went out at tick ``now``."""
        if self.state == _REPLICATE:
            self.next = last + 1
            self.inflight.append((last, nbytes, now))
            self.inflight_bytes += nbytes
        else:
            self.probe_sent = True

    def is_paused(self, max_msgs: int, max_bytes: int) -> bool:
        if self.state == _PROBE:
            return self.probe_sent
        if self.state == _REPLICATE:
            return len(self.inflight) >= max_msgs or self.inflight_bytes >= max_bytes
        return True
