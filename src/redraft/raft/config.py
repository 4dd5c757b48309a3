"""The tuning of one consensus core."""

from __future__ import annotations

from dataclasses import dataclass

from redraft.raft.types import NodeId


@dataclass
class RaftConfig:
    """Tuning of one core.  Times are in ticks of the runtime's clock."""

    id: NodeId
    election_tick: int = 10
    """A follower campaigns after a random timeout in [election_tick, 2*election_tick)."""
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_msg_bytes: int = 1 << 20
    """Entry bytes carried by one APP message (at least one entry is always sent)."""
    max_inflight_msgs: int = 64
    """Pipelining window per follower, in APP messages..."""
    max_inflight_bytes: int = 8 << 20
    """...and in bytes."""
    snapshot_chunk_size: int = 1 << 20
    max_snapshot_inflight: int = 4
    """Snapshot chunks in flight per follower."""
    lease_margin_ticks: int = 2
    """A lease lasts election_tick - lease_margin_ticks after the heartbeat round a quorum acked."""
    compaction_tail: int = 0
    """Entries kept behind a snapshot so slightly lagging followers need no snapshot."""
    compaction_tail_bytes: int = 0
    """...and at most this many bytes of them (0: no byte bound)."""
    catch_up_margin: int = 16
    """A promoting learner becomes a voter once its match is this close to the last index."""

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a node needs a non-empty id")
        if self.heartbeat_tick < 1 or self.election_tick <= self.heartbeat_tick:
            raise ValueError("need 1 <= heartbeat_tick < election_tick")
        if not 0 <= self.lease_margin_ticks < self.election_tick:
            raise ValueError("need 0 <= lease_margin_ticks < election_tick")


__all__ = ["RaftConfig"]
