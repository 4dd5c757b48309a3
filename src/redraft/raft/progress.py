"""What a leader knows about each follower's log, and how it feeds it."""

from __future__ import annotations

from collections import deque
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from redraft.raft.types import SnapChunk, SnapshotMeta

if TYPE_CHECKING:
    from redraft.raft.log import RaftLog


class PeerState(IntEnum):
    PROBE = 0
    """Where the follower's log matches is unknown: one APP at a time."""
    REPLICATE = 1
    """The follower is matched: APPs are pipelined up to the in-flight window."""
    SNAPSHOT = 2
    """The follower needs entries we compacted away: a snapshot is streaming."""


# Class attribute lookups on enums are slow in Python 3.11: compare with aliases.
_PROBE: Final = PeerState.PROBE
_REPLICATE: Final = PeerState.REPLICATE
_SNAPSHOT: Final = PeerState.SNAPSHOT


class OutgoingSnapshot:
    """A snapshot being streamed to one follower in chunks."""

    __slots__ = ("acked", "meta", "progress_tick", "sent")

    def __init__(self, meta: SnapshotMeta, now: int) -> None:
        self.meta = meta
        self.sent = 0
        self.acked = 0
        self.progress_tick = now

    def next_chunks(self, chunk_size: int, max_inflight: int) -> list[SnapChunk]:
        """The chunks to send now, at most ``max_inflight`` chunks beyond the acked offset.

        Their ``data`` is empty: the runtime reads it from the snapshot file.
        """
        size = self.meta.size
        window = chunk_size * max_inflight
        out: list[SnapChunk] = []
        while self.sent < size and self.sent - self.acked < window:
            length = min(chunk_size, size - self.sent)
            out.append(SnapChunk(self.meta, self.sent, length, b"", self.sent + length >= size))
            self.sent += length
        return out

    def answered(self, offset: int, reject: bool, now: int) -> None:
        """The follower expects ``offset`` next (after an out-of-order chunk if ``reject``)."""
        self.progress_tick = now
        offset = min(max(offset, 0), self.meta.size)
        if reject:
            self.sent = self.acked = offset
        elif offset > self.acked:
            self.acked = offset

    def resend_if_stalled(self, now: int, timeout: int) -> None:
        """Nothing was acked for ``timeout`` ticks: chunks were lost, send again from the ack."""
        if now - self.progress_tick >= timeout:
            self.sent = self.acked
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

    def rejected(self, rejected: int, hint_index: int, hint_term: int, log: RaftLog) -> bool:
        """The follower rejected an APP at ``rejected``; back off.  False if stale.

        ``hint_index``/``hint_term`` are the follower's guess of where the
        logs agree; ``log`` is the leader's, to skip a whole divergent term at once.
        """
        if hint_index < self.match and rejected >= self.match:
            # A fresh rejection says the follower's log ends before what it
            # acknowledged: it lost its log (a new, empty process under the
            # same id, credited by its predecessor's late acks).  A rejection
            # at match itself says so too: a follower that kept its log holds
            # the entry it acknowledged, and the new process answers the
            # leader's APP after match exactly there.  Believe it; lowering
            # match only delays commits.
            self.match = hint_index
            self.become_probe()
            self.next = hint_index + 1
            return True
        if self.state == _REPLICATE:
            return rejected > self.match
        if self.next - 1 != rejected:
            return False
        probe = hint_index
        if hint_term > 0:
            probe = log.find_conflict_by_term(hint_index, hint_term)
        self.next = max(min(rejected, probe + 1), self.match + 1)
        self.probe_sent = False
        return True

    def heard(self, now: int) -> None:
        """The follower answered something at tick ``now``: it is alive."""
        self.recent_active = True
        self.last_contact = now

    def heartbeat_acked(self, now: int, rnd: int, election_tick: int) -> None:
        """The follower answered the heartbeat of round ``rnd`` at tick ``now``."""
        self.heard(now)
        if rnd > self.acked_round:
            self.acked_round = rnd
        self.probe_sent = False
        if self.state == _REPLICATE and self.inflight:
            # An APP in flight for long was most likely lost: probe again.
            if now - self.inflight[0][2] >= max(2, election_tick // 2):
                self.become_probe()
        elif self.state == _SNAPSHOT and self.snapshot is not None:
            self.snapshot.resend_if_stalled(now, election_tick)

    def is_paused(self, max_msgs: int, max_bytes: int) -> bool:
        if self.state == _PROBE:
            return self.probe_sent
        if self.state == _REPLICATE:
            return len(self.inflight) >= max_msgs or self.inflight_bytes >= max_bytes
        return True
