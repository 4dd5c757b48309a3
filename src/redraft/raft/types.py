"""Plain data exchanged between the consensus core and the runtime.

Nothing here does I/O.  The runtime persists :class:`Entry` and
:class:`HardState`, carries :class:`Message` between nodes and acts on
:class:`Ready`, the bundle of work the core hands out after each input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any, Final, NamedTuple

import msgpack

NodeId = str
"""A node's identity: by convention its advertised ``host:port``."""


class EntryKind(IntEnum):
    """What a log entry carries."""

    NORMAL = 0
    """Application data, opaque to the core."""
    NOOP = 1
    """The empty entry a new leader appends to commit its predecessors' entries."""
    CONFIG = 2
    """A full membership (:meth:`Membership.encode`); takes effect when appended."""


class Entry(NamedTuple):
    """One log entry (immutable).

    A named tuple so that batches of entries can be built and measured at C
    speed (see :func:`make_entries`): the core handles millions per second.
    """

    term: int
    index: int  # type: ignore[assignment]  # shadows tuple.index(), which entries never need
    kind: int
    data: bytes


_new_entry: Final = partial(tuple.__new__, Entry)


def make_entries(term: int, start: int, kind: int, datas: Sequence[bytes]) -> list[Entry]:
    """Entries of one term and kind for ``datas``, indexed from ``start``."""
    # A loop, not map over zip(repeat, range, ...): a proposal is a few
    # entries, and compiled, the loop makes one in ~230 ns where setting up
    # the five iterators alone took ~1 us; past ~300 entries map wins by 7 %.
    new = _new_entry
    out: list[Entry] = []
    index = start
    for data in datas:
        out.append(new((term, index, kind, data)))
        index += 1
    return out


@dataclass(slots=True, init=False, unsafe_hash=True)
class HardState:
    """What must survive a crash for Raft to stay safe (immutable).

    ``term`` and ``vote`` must be durable (fsynced) before any message that
    depends on them is sent; ``commit`` may ride along with the next write.
    """

    # The hot data classes here write their own ``__init__``: the compiled
    # build compiles a hand-written one, while the one ``dataclass``
    # generates stays interpreted (4,000-8,000 instructions a call for the
    # wider ones, several per log entry).  ``Final`` fields keep these
    # immutable to the type checker, which is what ``frozen`` was for
    # (``frozen`` forbids the assignments such an ``__init__`` makes).
    term: Final[int]
    vote: Final[NodeId]
    commit: Final[int]

    def __init__(self, term: int = 0, vote: NodeId = "", commit: int = 0) -> None:
        self.term = term
        self.vote = vote
        self.commit = commit


@dataclass(frozen=True, slots=True)
class Membership:
    """The members of the cluster.

    ``learners`` receive the log but neither vote nor count towards a quorum.
    ``promoting`` is the subset of learners that the leader promotes to voter
    once they have caught up (how ``add voter`` works: join as a learner first).
    """

    voters: frozenset[NodeId] = frozenset()
    learners: frozenset[NodeId] = frozenset()
    promoting: frozenset[NodeId] = frozenset()

    def members(self) -> frozenset[NodeId]:
        return self.voters | self.learners

    def encode(self) -> bytes:
        data: bytes = msgpack.packb(
            [sorted(self.voters), sorted(self.learners), sorted(self.promoting)]
        )
        return data

    @staticmethod
    def decode(data: bytes) -> Membership:
        raw = msgpack.unpackb(data)
        if not (
            isinstance(raw, list)
            and len(raw) == 3
            and all(isinstance(part, list) for part in raw)
            and all(isinstance(n, str) for part in raw for n in part)
        ):
            raise ValueError("malformed membership")
        voters, learners, promoting = raw
        return Membership(frozenset(voters), frozenset(learners), frozenset(promoting))


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Describes a snapshot of the state machine.

    ``index``/``term`` identify the last entry the snapshot includes;
    ``membership`` is the configuration in force at ``index``; ``size`` is the
    length in bytes of the snapshot file the runtime wrote (chunks of it are
    streamed to followers).
    """

    index: int
    term: int
    membership: Membership
    size: int = 0


@dataclass(slots=True)
class SnapChunk:
    """A piece of a snapshot in flight.

    On the leader's outgoing messages ``data`` is empty: the runtime fills in
    ``length`` bytes read from the snapshot file at ``offset`` just before the
    message goes on the wire.  ``done`` marks the last chunk.
    """

    meta: SnapshotMeta
    offset: int
    length: int
    data: bytes = b""
    done: bool = False


class MsgType(IntEnum):
    APP = 1
    APP_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    PRE_VOTE = 5
    PRE_VOTE_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    SNAP = 9
    SNAP_RESP = 10
    TIMEOUT_NOW = 11


@dataclass(slots=True, init=False)
class Message:
    """A message between two cores.

    Field meaning by type:

    * APP: ``index``/``log_term`` are the index and term of the entry just
      before ``entries``; ``commit`` is the leader's commit index.
    * APP_RESP: ``index`` is the follower's last matching index on success;
      on ``reject`` it is the rejected ``index`` and ``hint_index``/``hint_term``
      point the leader at where the logs may agree.
    * VOTE/PRE_VOTE: ``index``/``log_term`` describe the candidate's last
      entry; ``transfer`` is set when the campaign comes from a leadership
      transfer (which overrides a follower's loyalty to its current leader).
    * HEARTBEAT: ``commit`` as in APP, but capped at the follower's match
      index (the most it may commit from it); ``index`` is the leader's own
      commit index, which a follower only notes (how far it has to catch
      up); ``round`` is the leader's heartbeat (read-index) round, which
      HEARTBEAT_RESP echoes.
    * SNAP: ``snap`` is one chunk.  SNAP_RESP: ``index`` is the snapshot
      index; ``snap_offset`` the next byte offset the follower expects;
      ``reject`` is set when the chunk was out of order; ``installed`` on the
      final answer (the snapshot is installed, or was not needed up to ``index``).

    The peer codec carries ``round``, ``transfer`` and ``installed`` in one
    wire slot and ``hint_index``/``snap_offset`` in another, chosen by type:
    a field outside its types is not sent.
    """

    type: int
    to: NodeId
    frm: NodeId
    term: int
    log_term: int
    index: int
    entries: list[Entry]
    commit: int
    reject: bool
    hint_index: int
    hint_term: int
    round: int
    transfer: bool
    installed: bool
    snap_offset: int
    snap: SnapChunk | None

    def __init__(
        self,
        type: int,
        to: NodeId,
        frm: NodeId,
        term: int,
        log_term: int = 0,
        index: int = 0,
        entries: list[Entry] | None = None,
        commit: int = 0,
        reject: bool = False,
        hint_index: int = 0,
        hint_term: int = 0,
        round: int = 0,
        transfer: bool = False,
        installed: bool = False,
        snap_offset: int = 0,
        snap: SnapChunk | None = None,
    ) -> None:
        self.type = type
        self.to = to
        self.frm = frm
        self.term = term
        self.log_term = log_term
        self.index = index
        self.entries = [] if entries is None else entries
        self.commit = commit
        self.reject = reject
        self.hint_index = hint_index
        self.hint_term = hint_term
        self.round = round
        self.transfer = transfer
        self.installed = installed
        self.snap_offset = snap_offset
        self.snap = snap


class Role(IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3

    @property
    def title(self) -> str:
        """The name Finn's RAFTSTATE uses."""
        return "Candidate" if self is Role.PRE_CANDIDATE else self.name.title()


@dataclass(slots=True, init=False, unsafe_hash=True)
class ReadState:
    """Read-index reads that may now be served once ``index`` is applied.

    One per confirmed round, carrying every read the round confirmed (their
    tokens in the order they were asked), so a round of many reads costs one
    object rather than one each.
    """

    tokens: Final[list[Any]]
    index: Final[int]

    def __init__(self, tokens: list[Any], index: int) -> None:
        self.tokens = tokens
        self.index = index


@dataclass(slots=True, init=False)
class Ready:
    """Work the runtime must carry out, in this order of constraints.

    1. Persist, in this order: ``hard_state``; ``snapshot_chunks`` (write to
       the incoming snapshot file; a chunk at offset 0 starts it anew);
       ``install_snapshot`` when set (the incoming file is complete: it becomes
       the node's snapshot, every stored entry is dropped and the log goes on
       after ``install_snapshot.index``); then ``entries`` (append; if the
       first one's index is at or below the stored last index, first truncate
       the stored log from that index).  Fsync when ``must_sync`` (the term or
       vote changed, or a membership entry is among ``entries``), whatever the
       durability level.
    2. ``messages`` may be sent at once, in parallel with persisting.
    3. ``messages_after_persist`` may be sent only once step 1 is durable.
    4. Restore the machine from ``install_snapshot`` once it is durable, then
       apply ``committed`` in order (entries committed while an install is
       pending wait for it); serve each of ``reads`` once the machine has
       applied its index; fail each of ``dropped_reads`` (leadership lost).
    5. Call :meth:`RaftCore.advance` with this Ready once step 1 is durable.
       Readies must be advanced in the order they were handed out.

    :class:`~redraft.raft.driver.ReadyDriver` carries all of this out; a
    runtime only says how to persist, send and apply.
    """

    hard_state: HardState | None
    must_sync: bool
    entries: list[Entry]
    snapshot_chunks: list[SnapChunk]
    install_snapshot: SnapshotMeta | None
    committed: list[Entry]
    messages: list[Message]
    messages_after_persist: list[Message]
    reads: list[ReadState]
    dropped_reads: list[object]

    def __init__(
        self,
        hard_state: HardState | None = None,
        must_sync: bool = False,
        entries: list[Entry] | None = None,
        snapshot_chunks: list[SnapChunk] | None = None,
        install_snapshot: SnapshotMeta | None = None,
        committed: list[Entry] | None = None,
        messages: list[Message] | None = None,
        messages_after_persist: list[Message] | None = None,
        reads: list[ReadState] | None = None,
        dropped_reads: list[object] | None = None,
    ) -> None:
        self.hard_state = hard_state
        self.must_sync = must_sync
        self.entries = [] if entries is None else entries
        self.snapshot_chunks = [] if snapshot_chunks is None else snapshot_chunks
        self.install_snapshot = install_snapshot
        self.committed = [] if committed is None else committed
        self.messages = [] if messages is None else messages
        self.messages_after_persist = (
            [] if messages_after_persist is None else messages_after_persist
        )
        self.reads = [] if reads is None else reads
        self.dropped_reads = [] if dropped_reads is None else dropped_reads

    def needs_persist(self) -> bool:
        """Whether step 1 has anything to write."""
        return bool(
            self.hard_state is not None
            or self.entries
            or self.snapshot_chunks
            or self.install_snapshot is not None
        )


class ChangeType(IntEnum):
    """A single-server membership change."""

    ADD_LEARNER = 0
    """Join as a non-voting learner and stay one."""
    ADD_VOTER = 1
    """Join as a learner, promoted to voter by the leader once caught up."""
    PROMOTE = 2
    """Make an existing learner a voter now."""
    REMOVE = 3


class RaftError(Exception):
    """Base of the errors the core raises to the runtime."""


class NotLeader(RaftError):
    """The input needs a leader and this node is not one.

    ``leader`` is the node this one believes leads (empty if unknown).
    """

    def __init__(self, leader: NodeId) -> None:
        super().__init__(f"not the leader (leader: {leader or 'unknown'})")
        self.leader = leader


class ProposalDropped(RaftError):
    """The leader refuses proposals for now (for example during a leadership transfer)."""


class ChangeInProgress(RaftError):
    """A membership change is already pending; changes go one at a time."""


class InvalidChange(RaftError):
    """The membership change makes no sense (unknown node, removing the last voter, ...)."""
