"""Collecting a core's pending work into a :class:`~redraft.raft.types.Ready`.

The parts of a core each keep what they produced since the last Ready (the
log its unhanded and newly committed entries, the outbox its messages, the
ReadIndex state its confirmed and dropped reads, the snapshot receiver its
chunks and install).  A :class:`Handout` gathers them into one Ready and
remembers what it handed out: the hard state, so that an unchanged one is
not written again.
"""

from __future__ import annotations

from redraft.raft.log import RaftLog
from redraft.raft.outbox import Outbox
from redraft.raft.readonly import ReadOnly
from redraft.raft.snapshot import SnapshotReceiver
from redraft.raft.tracker import ProgressTracker
from redraft.raft.types import HardState, NodeId, Ready


class Handout:
    """Builds the Readies of one core.  See the module docstring."""

    __slots__ = ("_hs", "incoming", "log", "out", "reads", "tracker")

    def __init__(
        self,
        hard_state: HardState,
        log: RaftLog,
        tracker: ProgressTracker,
        out: Outbox,
        reads: ReadOnly,
        incoming: SnapshotReceiver,
    ) -> None:
        self._hs = hard_state
        self.log = log
        self.tracker = tracker
        self.out = out
        self.reads = reads
        self.incoming = incoming

    def ready(self, term: int, vote: NodeId) -> Ready | None:
        """Everything pending, for a node now at ``term`` having voted ``vote``; None if nothing."""
        log = self.log
        hs = self._hs
        hard_state: HardState | None = None
        must_sync = term != hs.term or vote != hs.vote
        entries = log.take_unhanded() if log.handed < log.last_index else []
        # A new commit index alone is not worth a write: nothing depends on
        # it being durable (a restarted node relearns it), so it rides along
        # with the next entries or term change.
        if must_sync or (entries and log.commit != hs.commit):
            hard_state = self._hs = HardState(term, vote, log.commit)
        tracker = self.tracker
        if tracker.config_unsynced and entries:
            # Membership is safety, not a speed knob: always fsynced.
            must_sync = True
            tracker.config_unsynced = False
        committed = log.take_committed() if log.applied < log.commit else []
        out = self.out
        reads = self.reads
        incoming = self.incoming
        if not (
            hard_state
            or entries
            or committed
            or out.now
            or out.after
            or reads.ready
            or reads.dropped
            or incoming.chunks
            or incoming.install
        ):
            return None
        rd = Ready(
            hard_state,
            must_sync,
            entries,
            incoming.chunks,
            incoming.install,
            committed,
            out.now,
            out.after,
            reads.ready,
            reads.dropped,
        )
        incoming.chunks = []
        incoming.install = None
        out.now = []
        out.after = []
        reads.ready = []
        reads.dropped = []
        return rd


__all__ = ["Handout"]
