"""The Raft consensus algorithm as a pure object.

:class:`RaftCore` never touches a socket, a file or a clock and draws its
randomness from an injected generator.  The runtime (or a simulator) feeds it
inputs (:meth:`~RaftCore.tick`, :meth:`~RaftCore.step`,
:meth:`~RaftCore.propose`, :meth:`~RaftCore.read_index`, ...) and collects
what must be done as data with :meth:`~RaftCore.ready`, in the manner of
etcd-io/raft's ``Ready``.  The layout follows the Raft dissertation (Ongaro,
2014): §3 for the core, §4 for single-server membership changes, §5 for
snapshots, §6 for ReadIndex and leases, §9.6 for PreVote.

The persistence contract, which the runtime must honour:

* ``Ready.messages`` may be sent before anything in the same Ready is
  durable.  They are only ever a leader's replication traffic: the leader's
  term and vote became durable before it could win, and the leader counts its
  own log towards a commit only once :meth:`~RaftCore.advance` says it is
  durable, so it may write its log in parallel with replication.
* ``Ready.messages_after_persist`` (votes, acknowledgements, campaigns) may be
  sent only once that Ready's hard state, entries and snapshot are durable:
  a vote or an ack must never outlive a crash that forgot it.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from redraft.raft.log import ENTRY_OVERHEAD, RaftLog
from redraft.raft.progress import PeerState, Progress
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
    ReadState,
    Ready,
    Role,
    SnapChunk,
    SnapshotMeta,
    make_entries,
)

_APP = MsgType.APP
_APP_RESP = MsgType.APP_RESP
_VOTE = MsgType.VOTE
_VOTE_RESP = MsgType.VOTE_RESP
_PRE_VOTE = MsgType.PRE_VOTE
_PRE_VOTE_RESP = MsgType.PRE_VOTE_RESP
_HEARTBEAT = MsgType.HEARTBEAT
_HEARTBEAT_RESP = MsgType.HEARTBEAT_RESP
_SNAP = MsgType.SNAP
_SNAP_RESP = MsgType.SNAP_RESP
_TIMEOUT_NOW = MsgType.TIMEOUT_NOW
_CONFIG = EntryKind.CONFIG
# Class attribute lookups on enums are slow in Python 3.11: compare with aliases.
_LEADER = Role.LEADER
_FOLLOWER = Role.FOLLOWER
_CANDIDATE = Role.CANDIDATE
_PRE_CANDIDATE = Role.PRE_CANDIDATE
_PROBE = PeerState.PROBE
_REPLICATE = PeerState.REPLICATE
_SNAPSHOT = PeerState.SNAPSHOT
_kind_of = itemgetter(2)  # Entry.kind, at C speed

# A leader's own traffic depends on nothing that is not already durable;
# pre-votes change no state.  Everything else waits for persistence.
_SEND_AT_ONCE_AS_LEADER = frozenset({_APP, _HEARTBEAT, _SNAP, _TIMEOUT_NOW})
_SEND_AT_ONCE = frozenset({_PRE_VOTE, _PRE_VOTE_RESP})


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


@dataclass
class Restored:
    """The durable state a core starts from."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: SnapshotMeta | None = None
    entries: list[Entry] = field(default_factory=list)
    """Contiguous, starting right after ``snapshot.index`` (or at 1)."""


class RaftCore:
    """One Raft node's consensus state machine.  See the module docstring."""

    def __init__(
        self, config: RaftConfig, rng: random.Random, restored: Restored | None = None
    ) -> None:
        self.cfg = config
        self.id: NodeId = config.id
        self._rng = rng
        r = restored or Restored()
        snap = r.snapshot
        prev_index = snap.index if snap else 0
        prev_term = snap.term if snap else 0
        entries = [e for e in r.entries if e.index > prev_index]
        for k, e in enumerate(entries):
            if e.index != prev_index + 1 + k:
                raise ValueError(f"restored entries are not contiguous at index {e.index}")
        hs = r.hard_state
        self.log = RaftLog(prev_index, prev_term, entries, max(hs.commit, prev_index))
        self.term = hs.term
        self.vote: NodeId = hs.vote
        self.last_snapshot: SnapshotMeta | None = snap
        self._base_membership = snap.membership if snap else Membership()
        self._configs: list[tuple[int, Membership]] = [
            (e.index, Membership.decode(e.data)) for e in entries if e.kind == EntryKind.CONFIG
        ]
        self.membership = self._configs[-1][1] if self._configs else self._base_membership

        self.role = Role.FOLLOWER
        self.leader: NodeId = ""
        self.ticks = 0
        self.election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._transfer_elapsed = 0
        self._randomized_timeout = 0
        self._reset_randomized_timeout()
        # Until it has sat out one election timeout, a freshly started node
        # refuses votes as if it still followed a leader: it may have acked a
        # heartbeat just before crashing, and that leader's lease still runs.
        self._boot_guard = True

        self.prs: dict[NodeId, Progress] = {}
        self._departing: dict[NodeId, int] = {}
        self._departing_expiring: set[NodeId] = set()
        self._votes: dict[NodeId, bool] = {}
        self.lead_transferee: NodeId = ""
        self._lease_forfeited = False
        self.pending_conf_index = 0

        self._msgs: list[Message] = []
        self._msgs_after: list[Message] = []
        self._hs_handed = HardState(self.term, self.vote, self.log.commit)
        self._need_bcast = False

        # ReadIndex: reads wait for the next heartbeat round; a round is
        # released once a quorum acked it (or a later one).
        self._round = 0
        # The tick each heartbeat round was sent at: rounds are consecutive,
        # so round r is at _round_ticks[r - _round_base].  Old rounds are
        # dropped from the front, in bulk.
        self._round_ticks: list[int] = []
        self._round_base = 1
        self._reads_waiting: list[object] = []
        self._reads_pending: deque[tuple[int, int, list[object]]] = deque()
        self._reads_ready: list[ReadState] = []
        self._reads_dropped: list[object] = []

        self._config_unsynced = False
        self._chunks: list[SnapChunk] = []
        self._install: SnapshotMeta | None = None
        self._incoming: SnapshotMeta | None = None
        self._incoming_next = 0

    # ------------------------------------------------------------------ setup

    @staticmethod
    def bootstrap(voters: Iterable[NodeId]) -> Restored:
        """The state every founding member of a new cluster starts from."""
        members = Membership(voters=frozenset(voters))
        if not members.voters:
            raise ValueError("a cluster needs at least one voter")
        entry = Entry(1, 1, EntryKind.CONFIG, members.encode())
        return Restored(HardState(term=1, vote="", commit=1), None, [entry])

    # ------------------------------------------------------------ read access

    @property
    def commit_index(self) -> int:
        return self.log.commit

    @property
    def last_index(self) -> int:
        return self.log.last_index

    @property
    def first_index(self) -> int:
        return self.log.offset

    @property
    def progress(self) -> dict[NodeId, Progress]:
        """Per-member replication state (leader only; empty otherwise)."""
        return self.prs

    def term_at(self, index: int) -> int | None:
        return self.log.term(index)

    def log_entries(self, lo: int, hi: int) -> list[Entry]:
        return self.log.slice(lo, hi)

    def is_voter(self) -> bool:
        return self.id in self.membership.voters

    def committed_in_term(self) -> bool:
        """Whether this leader has committed an entry of its own term (its no-op)."""
        return self.log.term(self.log.commit) == self.term

    def snapshots_in_use(self) -> set[int]:
        """Indexes of snapshots being streamed to followers (keep their files)."""
        return {pr.snapshot.meta.index for pr in self.prs.values() if pr.snapshot is not None}

    def snapshot_meta_at(self, index: int) -> SnapshotMeta:
        """Term and membership at ``index`` (which must be committed); size 0."""
        if index > self.log.commit:
            raise ValueError(f"index {index} is not committed (commit {self.log.commit})")
        term = self.log.term(index)
        if term is None:
            raise ValueError(f"index {index} is no longer in the log")
        return SnapshotMeta(index, term, self._membership_at(index))

    # ---------------------------------------------------------------- inputs

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        self.ticks += 1
        if self.role == _LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def propose(self, data: Sequence[bytes]) -> int:
        """Append NORMAL entries; returns the index of the first.  Leader only."""
        if self.role != _LEADER:
            raise NotLeader(self.leader)
        if self.lead_transferee:
            raise ProposalDropped("leadership transfer in progress")
        start = self.log.last_index + 1
        self.log.extend(make_entries(self.term, start, EntryKind.NORMAL, data))
        self._need_bcast = True
        return start

    def read_index(self, token: object) -> None:
        """Ask for a linearizable read; its ReadState comes in a later Ready."""
        if self.role != _LEADER:
            raise NotLeader(self.leader)
        self._reads_waiting.append(token)

    def lease_valid(self, now: int | None = None) -> bool:
        """Whether this leader may serve a read from its state without a round trip.

        ``now`` is the current time in ticks when the runtime knows it better
        than the tick count (its ticks may lag the clock while it is busy):
        the lease must expire in real time, whatever the tick backlog.
        """
        t = self.ticks if now is None or now < self.ticks else now
        return t < self.lease_deadline()

    def lease_deadline(self) -> int:
        """The tick before which :meth:`lease_valid` holds, as things stand (-1: never).

        A runtime may cache it until the next input: serving a read then costs
        one comparison with the clock.
        """
        if (
            self.role != _LEADER
            or self.lead_transferee
            or self._lease_forfeited
            or not self.committed_in_term()
        ):
            return -1
        voters = self.membership.voters
        if self.id not in voters:
            return -1
        if len(voters) == 1:
            return 1 << 62
        sent = sorted(
            (self.ticks if v == self.id else self._round_tick(self.prs[v].acked_round))
            for v in voters
        )
        sent.reverse()
        return sent[len(voters) // 2] + self.cfg.election_tick - self.cfg.lease_margin_ticks

    def _round_tick(self, rnd: int) -> int:
        """The tick heartbeat round ``rnd`` was sent at (far past if unknown)."""
        k = rnd - self._round_base
        rt = self._round_ticks
        return rt[k] if 0 <= k < len(rt) else -(1 << 62)

    def campaign(self) -> bool:
        """Start an election now (voters only); False if this node may not.

        A follower that heard from its leader within the last election timeout
        (or that has just started, and may have acked a heartbeat before it
        stopped) lent that leader a lease: campaigning now could elect a new
        leader while the old one still serves reads from its lease. It waits
        for its own timeout instead; to move leadership at once, ask the
        leader for :meth:`transfer_leadership`.
        """
        if self.role == _LEADER or not self.is_voter():
            return False
        if self._in_lease() and self.membership.voters != {self.id}:
            return False
        self._campaign(pre=self.cfg.pre_vote, transfer=False)
        return True

    def transfer_leadership(self, to: NodeId | None = None) -> NodeId:
        """Hand leadership to ``to`` (default: the most caught-up voter)."""
        if self.role != _LEADER:
            raise NotLeader(self.leader)
        voters = self.membership.voters
        if to is None:
            candidates = sorted(
                (v for v in voters if v != self.id and v in self.prs),
                key=lambda v: (-self.prs[v].match, v),
            )
            if not candidates:
                raise InvalidChange("there is no other voter to hand leadership to")
            to = candidates[0]
        if to == self.id:
            raise InvalidChange("this node already leads")
        if to not in voters or to not in self.prs:
            raise InvalidChange(f"{to} is not a voter")
        if self.lead_transferee == to:
            return to
        self.lead_transferee = to
        self._transfer_elapsed = 0
        if self.prs[to].match == self.log.last_index:
            self._send_timeout_now(to)
        else:
            self._send_append(to, self.prs[to])
        return to

    def change_membership(self, change: ChangeType, node: NodeId) -> int:
        """Propose a single-server membership change; returns its log index."""
        if self.role != _LEADER:
            raise NotLeader(self.leader)
        if self.pending_conf_index > self.log.commit:
            raise ChangeInProgress("a membership change is already in progress")
        if self.lead_transferee:
            raise ProposalDropped("leadership transfer in progress")
        if not node:
            raise InvalidChange("empty node id")
        new = _changed(self.membership, change, node)
        return self._append_config(new)

    def compact(self, meta: SnapshotMeta) -> None:
        """A snapshot file up to ``meta.index`` exists: forget the log before it."""
        if meta.index > self.log.applied:
            raise ValueError(f"snapshot at {meta.index} is past the applied index")
        if self.last_snapshot is None or meta.index > self.last_snapshot.index:
            self.last_snapshot = meta
        upto = meta.index - self.cfg.compaction_tail
        tail_bytes = self.cfg.compaction_tail_bytes
        if tail_bytes and upto < meta.index and meta.index >= self.log.offset:
            # Entries are batches: 200 of them can hold gigabytes, all in memory.
            upto = max(upto, self.log.tail_start(meta.index, tail_bytes))
        upto = min(upto, self.log.stable, self.log.applied)
        if upto < self.log.offset:
            return
        self.log.compact(upto)
        base = self._base_membership
        keep: list[tuple[int, Membership]] = []
        for idx, mem in self._configs:
            if idx <= upto:
                base = mem
            else:
                keep.append((idx, mem))
        self._base_membership = base
        self._configs = keep

    # ----------------------------------------------------------------- output

    def ready(self) -> Ready | None:
        """Everything the runtime must do since the last call, or None."""
        if self.role == _LEADER:
            if self._reads_waiting and not self._reads_pending:
                # One ReadIndex round in flight at a time: reads that arrive
                # meanwhile share the next one (fewer heartbeats per read
                # under load, no added wait when idle).
                self._start_read_round()
            if self._need_bcast:
                self._need_bcast = False
                self._bcast_append()
        log = self.log
        hs = self._hs_handed
        hard_state: HardState | None = None
        must_sync = self.term != hs.term or self.vote != hs.vote
        entries = log.take_unhanded() if log.handed < log.last_index else []
        # A new commit index alone is not worth a write: nothing depends on
        # it being durable (a restarted node relearns it), so it rides along
        # with the next entries or term change.
        if must_sync or (entries and log.commit != hs.commit):
            hard_state = self._hs_handed = HardState(self.term, self.vote, log.commit)
        if self._config_unsynced and entries:
            # Membership is safety, not a speed knob: always fsynced.
            must_sync = True
            self._config_unsynced = False
        committed = log.take_committed() if log.applied < log.commit else []
        if not (
            hard_state
            or entries
            or committed
            or self._msgs
            or self._msgs_after
            or self._reads_ready
            or self._reads_dropped
            or self._chunks
            or self._install
        ):
            return None
        rd = Ready(
            hard_state,
            must_sync,
            entries,
            self._chunks,
            self._install,
            committed,
            self._msgs,
            self._msgs_after,
            self._reads_ready,
            self._reads_dropped,
        )
        self._chunks = []
        self._install = None
        self._msgs = []
        self._msgs_after = []
        self._reads_ready = []
        self._reads_dropped = []
        return rd

    def advance(self, rd: Ready) -> None:
        """``rd``'s persistence is durable."""
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if self.role == _LEADER:
            me = self.prs.get(self.id)
            if me is not None and self.log.stable > me.match:
                me.match = self.log.stable
                me.next = self.log.stable + 1
                self._maybe_commit()

    # ------------------------------------------------------------------ step

    def step(self, m: Message) -> None:
        """Handle one message from another node."""
        if m.to != self.id:
            return
        t = m.type
        if m.term > self.term:
            if (t == _VOTE or t == _PRE_VOTE) and m.context != 1 and self._in_lease():
                # A follower that hears from its leader ignores campaigns (§4.2.3).
                return
            if t == _PRE_VOTE or (t == _PRE_VOTE_RESP and not m.reject):
                pass
            elif t == _APP or t == _HEARTBEAT or t == _SNAP:
                self._become_follower(m.term, m.frm)
            else:
                self._become_follower(m.term, "")
        elif m.term < self.term:
            if (self.cfg.check_quorum or self.cfg.pre_vote) and (t == _APP or t == _HEARTBEAT):
                # Tell a stale leader about the newer term so it steps down.
                self._send(Message(_APP_RESP, m.frm, self.id, self.term))
            elif t == _PRE_VOTE:
                self._send(Message(_PRE_VOTE_RESP, m.frm, self.id, self.term, reject=True))
            return

        if t == _VOTE or t == _PRE_VOTE:
            self._handle_vote(m)
            return
        role = self.role
        if role == _LEADER:
            if t == _APP_RESP:
                self._handle_append_resp(m)
            elif t == _HEARTBEAT_RESP:
                self._handle_heartbeat_resp(m)
            elif t == _SNAP_RESP:
                self._handle_snapshot_resp(m)
            return
        if role != _FOLLOWER:
            if t == _APP or t == _HEARTBEAT or t == _SNAP:
                self._become_follower(self.term, m.frm)
            elif (t == _VOTE_RESP and role == _CANDIDATE) or (
                t == _PRE_VOTE_RESP and role == _PRE_CANDIDATE
            ):
                self._poll(m)
                return
            else:
                return
        if t == _APP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_append(m)
        elif t == _HEARTBEAT:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_heartbeat(m)
        elif t == _SNAP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_snapshot(m)
        elif t == _TIMEOUT_NOW and self.is_voter():
            self._campaign(pre=False, transfer=True)

    # ------------------------------------------------------------- elections

    def _in_lease(self) -> bool:
        return (
            self.cfg.check_quorum
            and self.election_elapsed < self.cfg.election_tick
            and (self.leader != "" or self._boot_guard)
        )

    def _reset_randomized_timeout(self) -> None:
        et = self.cfg.election_tick
        self._randomized_timeout = et + self._rng.randrange(et)

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_tick:
            self._boot_guard = False
        if self.election_elapsed >= self._randomized_timeout and self.is_voter():
            self.election_elapsed = 0
            self._campaign(pre=self.cfg.pre_vote, transfer=False)

    def _campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self._become_pre_candidate()
            mtype = _PRE_VOTE
            term = self.term + 1
        else:
            self._become_candidate()
            mtype = _VOTE
            term = self.term
        self._votes[self.id] = True
        if self._tally():
            return
        last_index = self.log.last_index
        last_term = self.log.last_term
        ctx = 1 if transfer else 0
        for v in sorted(self.membership.voters):
            if v != self.id:
                self._send(Message(mtype, v, self.id, term, last_term, last_index, context=ctx))

    def _handle_vote(self, m: Message) -> None:
        pre = m.type == _PRE_VOTE
        resp = _PRE_VOTE_RESP if pre else _VOTE_RESP
        can_vote = (
            self.vote == m.frm
            or (self.vote == "" and self.leader == "")
            or (pre and m.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            if not pre:
                self.election_elapsed = 0
                self.vote = m.frm
            self._send(Message(resp, m.frm, self.id, m.term))
        else:
            self._send(Message(resp, m.frm, self.id, self.term, reject=True))

    def _poll(self, m: Message) -> None:
        if m.frm in self.membership.voters and m.frm not in self._votes:
            self._votes[m.frm] = not m.reject
        self._tally()

    def _tally(self) -> bool:
        """Act on the votes so far; True if the campaign is decided."""
        voters = self.membership.voters
        quorum = len(voters) // 2 + 1
        granted = sum(1 for v, ok in self._votes.items() if ok and v in voters)
        if granted >= quorum:
            if self.role == _PRE_CANDIDATE:
                self._campaign(pre=False, transfer=False)
            else:
                self._become_leader()
            return True
        rejected = sum(1 for v, ok in self._votes.items() if not ok and v in voters)
        if len(voters) - rejected < quorum:
            self._become_follower(self.term, "")
            return True
        return False

    # ---------------------------------------------------------- role changes

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = ""
        self.leader = ""
        self.election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._reset_randomized_timeout()
        self._votes = {}
        self.lead_transferee = ""
        self._lease_forfeited = False
        self.prs = {}
        self._departing = {}
        self._departing_expiring = set()
        self._drop_reads()

    def _become_follower(self, term: int, leader: NodeId) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.leader = leader
        if leader:
            self._boot_guard = False

    def _become_pre_candidate(self) -> None:
        # A pre-candidate keeps its term and vote: the pre-vote changes nothing.
        self._votes = {}
        self.leader = ""
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = Role.LEADER
        self.leader = self.id
        self._boot_guard = False
        self._sync_progress()
        me = self.prs[self.id]
        me.match = self.log.stable
        # The no-op commits every entry of earlier terms (§3.6.2, §6.4).
        self.log.extend([Entry(self.term, self.log.last_index + 1, EntryKind.NOOP, b"")])
        self.pending_conf_index = self.log.last_index
        self._need_bcast = True

    def _sync_progress(self) -> None:
        """Make the progress map match the membership (plus departing members)."""
        members = self.membership.members()
        learners = self.membership.learners
        nxt = self.log.last_index + 1
        for n in members:
            pr = self.prs.get(n)
            if pr is None:
                self.prs[n] = Progress(nxt, n in learners, self.ticks)
            else:
                pr.learner = n in learners
        for n in list(self.prs):
            if n not in members and n not in self._departing:
                del self.prs[n]

    # ------------------------------------------------------------ membership

    def _membership_at(self, index: int) -> Membership:
        mem = self._base_membership
        for idx, m in self._configs:
            if idx > index:
                break
            mem = m
        return mem

    def _append_config(self, new: Membership) -> int:
        index = self.log.last_index + 1
        self.log.extend([Entry(self.term, index, EntryKind.CONFIG, new.encode())])
        self._on_config_appended(index, new)
        self.pending_conf_index = index
        self._need_bcast = True
        return index

    def _on_config_appended(self, index: int, new: Membership) -> None:
        old = self.membership
        self._config_unsynced = True
        self._configs.append((index, new))
        self.membership = new
        if self.role == _LEADER:
            # Removed members still get the log up to their removal so they
            # learn of it and stop campaigning.
            for n in old.members() - new.members():
                if n != self.id:
                    self._departing[n] = index
            for n in new.members() - old.members():
                # A member added (back) starts from nothing: under the same id
                # it may be a new process with an empty log, and must not
                # inherit what the leader knew of its predecessor.
                self._departing.pop(n, None)
                self._departing_expiring.discard(n)
                self.prs.pop(n, None)
            if self.lead_transferee and self.lead_transferee not in new.voters:
                self.lead_transferee = ""
            self._sync_progress()

    def _truncate(self, after: int) -> None:
        self.log.truncate_after(after)
        if self._configs and self._configs[-1][0] > after:
            while self._configs and self._configs[-1][0] > after:
                self._configs.pop()
            self.membership = self._configs[-1][1] if self._configs else self._base_membership

    def _after_commit(self) -> None:
        """Leader bookkeeping once the commit index moved."""
        commit = self.log.commit
        if self._reads_waiting and self.committed_in_term() and self._single_voter():
            self._release_single_voter_reads()
        if self.pending_conf_index <= commit:
            for n, idx in list(self._departing.items()):
                pr = self.prs.get(n)
                if pr is not None and pr.match >= idx:
                    del self._departing[n]
                    del self.prs[n]
            if self.id not in self.membership.voters and self.role == _LEADER:
                self._hand_over_and_step_down()

    def _hand_over_and_step_down(self) -> None:
        """This leader's removal is committed: wake the best voter and step down."""
        best = sorted(
            (v for v in self.membership.voters if v in self.prs),
            key=lambda v: (-self.prs[v].match, v),
        )
        if best and self.prs[best[0]].match == self.log.last_index:
            self._send_timeout_now(best[0])
        self._become_follower(self.term, "")

    def _expire_departing(self) -> None:
        """Stop feeding removed members that never acknowledged their removal.

        Called once per election timeout: a member is dropped at the second
        call after its removal committed, so it had a full timeout to hear.
        """
        commit = self.log.commit
        for n, idx in list(self._departing.items()):
            if idx > commit:
                continue
            if n in self._departing_expiring:
                del self._departing[n]
                self.prs.pop(n, None)
                self._departing_expiring.discard(n)
            else:
                self._departing_expiring.add(n)

    def _maybe_promote(self) -> None:
        promoting = self.membership.promoting
        if not promoting or self.pending_conf_index > self.log.commit or self.lead_transferee:
            return
        threshold = self.log.last_index - self.cfg.catch_up_margin
        for n in sorted(promoting):
            pr = self.prs.get(n)
            if pr is not None and pr.match > 0 and pr.match >= threshold:
                self._append_config(_changed(self.membership, ChangeType.PROMOTE, n))
                return

    # ------------------------------------------------------------ replication

    def _send(self, m: Message) -> None:
        t = m.type
        if t in _SEND_AT_ONCE or (self.role == _LEADER and t in _SEND_AT_ONCE_AS_LEADER):
            self._msgs.append(m)
        else:
            self._msgs_after.append(m)

    def _send_timeout_now(self, to: NodeId) -> None:
        # The target will campaign past its peers' loyalty to us, so from
        # now on this term's lease proves nothing, even if the transfer is
        # called off: the message may still arrive and win an election.
        self._lease_forfeited = True
        self._send(Message(_TIMEOUT_NOW, to, self.id, self.term))

    def _tick_leader(self) -> None:
        cfg = self.cfg
        self._heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= cfg.election_tick:
            self.election_elapsed = 0
            if cfg.check_quorum and not self._quorum_active():
                self._become_follower(self.term, "")
                return
            for pr in self.prs.values():
                pr.recent_active = False
            self._expire_departing()
        if self.lead_transferee:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= cfg.election_tick:
                self.lead_transferee = ""  # the target did not take over in time
        if self._heartbeat_elapsed >= cfg.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._bcast_heartbeat()
        self._maybe_promote()

    def _quorum_active(self) -> bool:
        voters = self.membership.voters
        active = sum(
            1 for v in voters if v == self.id or (v in self.prs and self.prs[v].recent_active)
        )
        return active >= len(voters) // 2 + 1

    def _bcast_heartbeat(self) -> None:
        self._round += 1
        rnd = self._round
        rt = self._round_ticks
        if not rt:
            self._round_base = rnd
        rt.append(self.ticks)
        if len(rt) > 4096:
            # Rounds older than two election timeouts can no longer give a lease.
            drop = bisect_left(rt, self.ticks - 2 * self.cfg.election_tick)
            if drop:
                del rt[:drop]
                self._round_base += drop
        commit = self.log.commit
        me = self.id
        term = self.term
        for n, pr in self.prs.items():
            if n != me:
                c = pr.match if pr.match < commit else commit
                self._msgs.append(Message(_HEARTBEAT, n, me, term, commit=c, context=rnd))

    def _bcast_append(self) -> None:
        me = self.id
        for n, pr in self.prs.items():
            if n != me:
                self._send_append(n, pr)

    def _send_append(self, to: NodeId, pr: Progress) -> None:
        """Send the follower what it lacks, as far as its window allows.

        Nothing is sent just to move a replicating follower's commit index:
        heartbeats carry it every tick, which saves a message and an ack per
        batch.  A follower being probed gets an empty APP when it has
        everything we know of: its answer says where its log matches.
        """
        if pr.state == _SNAPSHOT:
            self._send_snapshot_chunks(to, pr)
            return
        log = self.log
        cfg = self.cfg
        max_msgs = cfg.max_inflight_msgs
        max_bytes = cfg.max_inflight_bytes
        me = self.id
        term = self.term
        while not pr.is_paused(max_msgs, max_bytes):
            prev = pr.next - 1
            prev_term = log.term(prev)
            if prev_term is None:
                self._start_snapshot(to, pr)
                return
            last = log.last_index
            commit = log.commit
            if pr.next > last:
                if pr.state == _PROBE:
                    # An empty probe: finds where a new or lagging log matches.
                    self._msgs.append(Message(_APP, to, me, term, prev_term, prev, [], commit))
                    pr.probe_sent = True
                return
            ents = log.slice(pr.next, last + 1, cfg.max_msg_bytes)
            end = ents[-1].index
            nbytes = log.size_between(pr.next, end + 1)
            self._msgs.append(Message(_APP, to, me, term, prev_term, prev, ents, commit))
            pr.sent_entries(end, nbytes, self.ticks)

    def _handle_append(self, m: Message) -> None:
        log = self.log
        prev = m.index
        prev_term = m.log_term
        ents = m.entries
        if prev < log.commit:
            # Everything up to our commit index agrees with any leader's log,
            # so only the part after it needs checking.
            skip = log.commit - prev
            if len(ents) <= skip:
                self._send(Message(_APP_RESP, m.frm, self.id, self.term, index=log.commit))
                return
            ents = ents[skip:]
            prev = log.commit
            t = log.term(prev)
            assert t is not None
            prev_term = t
        if not log.match_term(prev, prev_term):
            hint = log.find_conflict_by_term(min(prev, log.last_index), prev_term)
            self._send(
                Message(
                    _APP_RESP,
                    m.frm,
                    self.id,
                    self.term,
                    index=m.index,
                    reject=True,
                    hint_index=hint,
                    hint_term=log.term(hint) or 0,
                )
            )
            return
        pos = log.find_conflict(ents)
        if pos < len(ents):
            first = ents[pos].index
            if first <= log.last_index:
                self._truncate(first - 1)
            new = ents[pos:] if pos else ents
            log.extend(new)
            if _CONFIG in map(_kind_of, new):
                for e in new:
                    if e.kind == _CONFIG:
                        self._on_config_appended(e.index, Membership.decode(e.data))
        last_new = prev + len(ents)
        commit = m.commit if m.commit < last_new else last_new
        if commit > log.commit:
            log.commit = commit
        self._send(Message(_APP_RESP, m.frm, self.id, self.term, index=last_new))

    def _handle_heartbeat(self, m: Message) -> None:
        log = self.log
        commit = min(m.commit, log.last_index)
        if commit > log.commit:
            log.commit = commit
        self._send(Message(_HEARTBEAT_RESP, m.frm, self.id, self.term, context=m.context))

    def _handle_append_resp(self, m: Message) -> None:
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        pr.last_contact = self.ticks
        if m.reject:
            if self._maybe_decrease(pr, m):
                if pr.state == _REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm, pr)
            return
        if pr.update(m.index) or (pr.match == m.index and pr.state == _PROBE):
            if pr.state == _PROBE:
                pr.become_replicate()
            elif (
                pr.state == _SNAPSHOT
                and pr.snapshot is not None
                and pr.match >= pr.snapshot.meta.index
            ):
                pr.become_probe()
            self._maybe_commit()
            if m.frm == self.lead_transferee and pr.match == self.log.last_index:
                self._send_timeout_now(m.frm)
            departed = self._departing.get(m.frm)
            if departed is not None and departed <= pr.match and departed <= self.log.commit:
                del self._departing[m.frm]
                del self.prs[m.frm]
                return
        if pr.next <= self.log.last_index:
            self._send_append(m.frm, pr)

    def _maybe_decrease(self, pr: Progress, m: Message) -> bool:
        """A follower rejected an APP at ``m.index``; back off.  False if stale."""
        rejected = m.index
        if m.hint_index < pr.match and rejected >= pr.match:
            # A fresh rejection says the follower's log ends before what it
            # acknowledged: it lost its log (a new, empty process under the
            # same id, credited by its predecessor's late acks).  A rejection
            # at match itself says so too: a follower that kept its log holds
            # the entry it acknowledged, and the new process answers the
            # leader's APP after match exactly there.  Believe it; lowering
            # match only delays commits.
            pr.match = m.hint_index
            pr.become_probe()
            pr.next = m.hint_index + 1
            return True
        if pr.state == _REPLICATE:
            return rejected > pr.match
        if pr.next - 1 != rejected:
            return False
        probe = m.hint_index
        if m.hint_term > 0:
            probe = self.log.find_conflict_by_term(m.hint_index, m.hint_term)
        pr.next = max(min(rejected, probe + 1), pr.match + 1)
        pr.probe_sent = False
        return True

    def _maybe_commit(self) -> bool:
        voters = self.membership.voters
        if not voters:
            return False
        prs = self.prs
        matches = [prs[v].match if v in prs else 0 for v in voters]
        matches.sort(reverse=True)
        idx = matches[len(voters) // 2]
        log = self.log
        if idx > log.commit and log.term(idx) == self.term:
            log.commit = idx
            self._after_commit()
            return True
        return False

    def _handle_heartbeat_resp(self, m: Message) -> None:
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        pr.last_contact = self.ticks
        if m.context > pr.acked_round:
            pr.acked_round = m.context
        pr.probe_sent = False
        if pr.state == _REPLICATE and pr.inflight:
            # An APP in flight for long was most likely lost: probe again.
            if self.ticks - pr.inflight[0][2] >= max(2, self.cfg.election_tick // 2):
                pr.become_probe()
        elif pr.state == _SNAPSHOT and pr.snapshot is not None:
            snap = pr.snapshot
            if self.ticks - snap.progress_tick >= self.cfg.election_tick:
                snap.sent = snap.acked
                snap.progress_tick = self.ticks
        if pr.match < self.log.last_index:
            self._send_append(m.frm, pr)
        if self._reads_pending:
            self._release_reads()

    # -------------------------------------------------------------- ReadIndex

    def _single_voter(self) -> bool:
        voters = self.membership.voters
        return len(voters) == 1 and self.id in voters

    def _release_single_voter_reads(self) -> None:
        index = self.log.commit
        if self._reads_waiting:
            self._reads_ready.append(ReadState(self._reads_waiting, index))
        self._reads_waiting = []

    def _start_read_round(self) -> None:
        if not self.committed_in_term():
            return  # wait for the no-op: only then is the commit index current (§6.4)
        if self._single_voter():
            self._release_single_voter_reads()
            return
        self._bcast_heartbeat()
        self._reads_pending.append((self._round, self.log.commit, self._reads_waiting))
        self._reads_waiting = []

    def _release_reads(self) -> None:
        voters = self.membership.voters
        prs = self.prs
        rounds = sorted(
            (self._round if v == self.id else (prs[v].acked_round if v in prs else 0))
            for v in voters
        )
        acked = rounds[len(rounds) - (len(voters) // 2 + 1)]
        pending = self._reads_pending
        while pending and pending[0][0] <= acked:
            _, index, tokens = pending.popleft()
            if tokens:
                self._reads_ready.append(ReadState(tokens, index))

    def _drop_reads(self) -> None:
        for _, _, tokens in self._reads_pending:
            self._reads_dropped.extend(tokens)
        self._reads_pending.clear()
        self._reads_dropped.extend(self._reads_waiting)
        self._reads_waiting = []

    # -------------------------------------------------------------- snapshots

    def _start_snapshot(self, to: NodeId, pr: Progress) -> None:
        snap = self.last_snapshot
        if snap is None:
            raise AssertionError(f"{to} needs compacted entries but there is no snapshot")
        pr.become_snapshot(snap, self.ticks)
        self._send_snapshot_chunks(to, pr)

    def _send_snapshot_chunks(self, to: NodeId, pr: Progress) -> None:
        snap = pr.snapshot
        if snap is None:
            return
        size = snap.meta.size
        chunk = self.cfg.snapshot_chunk_size
        window = chunk * self.cfg.max_snapshot_inflight
        while snap.sent < size and snap.sent - snap.acked < window:
            length = min(chunk, size - snap.sent)
            done = snap.sent + length >= size
            piece = SnapChunk(snap.meta, snap.sent, length, b"", done)
            self._msgs.append(Message(_SNAP, to, self.id, self.term, snap=piece))
            snap.sent += length

    def _handle_snapshot_resp(self, m: Message) -> None:
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        pr.last_contact = self.ticks
        if m.context == 1:
            # Installed (or the follower already had everything up to m.index).
            if pr.state == _SNAPSHOT:
                pr.update(m.index)
                pr.become_probe()
            elif m.index > pr.match:
                pr.update(m.index)
            self._maybe_commit()
            self._send_append(m.frm, pr)
            return
        snap = pr.snapshot
        if pr.state != _SNAPSHOT or snap is None or m.index != snap.meta.index:
            return
        snap.progress_tick = self.ticks
        offset = min(max(m.hint_index, 0), snap.meta.size)
        if m.reject:
            snap.sent = snap.acked = offset
        elif offset > snap.acked:
            snap.acked = offset
        self._send_snapshot_chunks(m.frm, pr)

    def _handle_snapshot(self, m: Message) -> None:
        chunk = m.snap
        if chunk is None:
            return
        meta = chunk.meta
        log = self.log
        if meta.index <= log.commit or log.match_term(meta.index, meta.term):
            # Nothing to install: we hold everything up to the snapshot (and
            # perhaps acknowledged entries after it, which must survive).
            # The snapshot's index is committed, so our commit may move there.
            self._incoming = None
            if meta.index > log.commit:
                log.commit = meta.index
            self._send(
                Message(
                    _SNAP_RESP,
                    m.frm,
                    self.id,
                    self.term,
                    index=max(meta.index, log.commit),
                    context=1,
                )
            )
            return
        inc = self._incoming
        if chunk.offset == 0 and inc != meta:
            self._incoming = inc = meta
            self._incoming_next = 0
        if inc != meta or chunk.offset != self._incoming_next:
            expect = self._incoming_next if inc == meta else 0
            self._send(
                Message(
                    _SNAP_RESP,
                    m.frm,
                    self.id,
                    self.term,
                    index=meta.index,
                    reject=True,
                    hint_index=expect,
                )
            )
            return
        self._chunks.append(chunk)
        self._incoming_next += len(chunk.data)
        if not chunk.done:
            self._send(
                Message(
                    _SNAP_RESP,
                    m.frm,
                    self.id,
                    self.term,
                    index=meta.index,
                    hint_index=self._incoming_next,
                )
            )
            return
        if self._incoming_next != meta.size:
            # A short final chunk: start over rather than install a torn file.
            self._incoming = None
            self._send(
                Message(_SNAP_RESP, m.frm, self.id, self.term, index=meta.index, reject=True)
            )
            return
        self._incoming = None
        self._install = meta
        log.reset(meta.index, meta.term)
        self.last_snapshot = meta
        self._base_membership = meta.membership
        self._configs = []
        self.membership = meta.membership
        self._send(Message(_SNAP_RESP, m.frm, self.id, self.term, index=meta.index, context=1))


def _changed(mem: Membership, change: ChangeType, node: NodeId) -> Membership:
    """The membership after one single-server change, or InvalidChange."""
    voters, learners, promoting = mem.voters, mem.learners, mem.promoting
    if change == ChangeType.ADD_LEARNER:
        if node in voters or node in learners:
            raise InvalidChange(f"{node} is already a member")
        return Membership(voters, learners | {node}, promoting)
    if change == ChangeType.ADD_VOTER:
        if node in voters:
            raise InvalidChange(f"{node} is already a voter")
        return Membership(voters, learners | {node}, promoting | {node})
    if change == ChangeType.PROMOTE:
        if node not in learners:
            raise InvalidChange(f"{node} is not a learner")
        return Membership(voters | {node}, learners - {node}, promoting - {node})
    if change == ChangeType.REMOVE:
        if node not in voters and node not in learners:
            raise InvalidChange(f"{node} is not a member")
        if voters == {node}:
            raise InvalidChange("cannot remove the last voter")
        return Membership(voters - {node}, learners - {node}, promoting - {node})
    raise InvalidChange(f"unknown change {change!r}")


__all__ = ["ENTRY_OVERHEAD", "RaftConfig", "RaftCore", "Restored"]
