"""A read-only picture of a core, for the runtime's status commands and logs.

:meth:`RaftCore.status() <redraft.raft.core.RaftCore.status>` builds one on
demand: a frozen copy, so a runtime can keep it, print it or compare two of
them without reaching into the core's live state (and without being able to
change it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redraft.raft.types import Membership, NodeId, Role


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What a leader knows of one member's log (the leader has one for itself)."""

    match: int
    """The highest index known to be in the member's log."""
    next: int
    """The next index the leader will send it."""
    state: str
    """How the leader feeds it: ``"probe"``, ``"replicate"`` or ``"snapshot"``."""
    last_contact: int
    """The leader's tick when the member last answered (compare with :attr:`Status.ticks`)."""
    learner: bool


@dataclass(frozen=True, slots=True)
class Status:
    """One node's consensus state at one moment."""

    id: NodeId
    role: Role
    term: int
    leader: NodeId
    """The leader this node knows of ("" if none)."""
    vote: NodeId
    """The node voted for in ``term`` ("" if none)."""
    commit: int
    applied: int
    """The last index handed out for applying."""
    last_index: int
    last_term: int
    first_index: int
    """The first index still in the log (entries before it are in the snapshot)."""
    stable: int
    """The last index known durable."""
    snapshot_index: int
    """Index and term of the latest snapshot (0 if none)."""
    snapshot_term: int
    membership: Membership
    election_elapsed: int
    """Ticks since the leader was last heard from (on a leader: since the last check-quorum)."""
    ticks: int
    """The core's clock."""
    lead_transferee: NodeId
    """The node leadership is being handed to ("" if none)."""
    progress: Mapping[NodeId, PeerStatus]
    """Per member, on a leader; empty otherwise."""


__all__ = ["PeerStatus", "Status"]
