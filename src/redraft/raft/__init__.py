"""The Raft consensus core: a pure object with no I/O (see :mod:`redraft.raft.core`).

Nothing in this package imports the rest of redraft, and nothing in it does
I/O, reads a clock or draws randomness it was not given.
"""

from redraft.raft.driver import ReadyDriver, ReadyIO
from redraft.raft.status import PeerStatus, Status
from redraft.raft.types import (
    ChangeInProgress,
    ChangeType,
    Entry,
    EntryKind,
    HardState,
    InvalidChange,
    Membership,
    Message,
    MsgType,
    NodeId,
    NotLeader,
    ProposalDropped,
    RaftError,
    ReadState,
    Ready,
    Role,
    SnapChunk,
    SnapshotMeta,
)

__all__ = [
    "ChangeInProgress",
    "ChangeType",
    "Entry",
    "EntryKind",
    "HardState",
    "InvalidChange",
    "Membership",
    "Message",
    "MsgType",
    "NodeId",
    "NotLeader",
    "PeerStatus",
    "ProposalDropped",
    "RaftError",
    "ReadState",
    "Ready",
    "ReadyDriver",
    "ReadyIO",
    "Role",
    "SnapChunk",
    "SnapshotMeta",
    "Status",
]
