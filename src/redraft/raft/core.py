"""The Raft consensus algorithm as a pure object.

:class:`RaftCore` never touches a socket, a file or a clock and draws its
randomness from an injected generator.  The runtime (or a simulator) feeds it
inputs (:meth:`~RaftCore.tick`, :meth:`~RaftCore.step`,
:meth:`~RaftCore.propose`, :meth:`~RaftCore.read_index`, ...) and collects
what must be done as data with :meth:`~RaftCore.ready`, in the manner of
etcd-io/raft's ``Ready``; :class:`~redraft.raft.driver.ReadyDriver` carries
the Readies out in the right order.  The layout follows the Raft
dissertation (Ongaro, 2014): §3 for the core, §4 for single-server
membership changes, §5 for snapshots, §6 for ReadIndex and leases, §9.6 for
PreVote.

The core is the coordinator of a few parts, each in its own module:

* :mod:`~redraft.raft.config`: :class:`RaftConfig`, the tuning (also importable from here);
* :mod:`~redraft.raft.log`: the entries, and what is durable, committed, applied;
* :mod:`~redraft.raft.tracker`: membership and its history, and each member's
  progress (:mod:`~redraft.raft.progress`) while leading;
* :mod:`~redraft.raft.quorum`: majority arithmetic;
* :mod:`~redraft.raft.leader`: replication, commit, reads and membership
  changes, for one leadership;
* :mod:`~redraft.raft.follower`: the follower's side of replication;
* :mod:`~redraft.raft.readonly`: heartbeat rounds, ReadIndex reads, the lease;
* :mod:`~redraft.raft.snapshot`: a follower's incoming snapshot;
* :mod:`~redraft.raft.outbox`: the messages for the next Ready;
* :mod:`~redraft.raft.handout`: gathering all of it into Readies.

The core itself keeps the term, vote and role, runs elections, routes each
message to the part that handles it, and does the Ready bookkeeping.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from redraft.raft.config import RaftConfig
from redraft.raft.follower import Follower
from redraft.raft.handout import Handout
from redraft.raft.leader import LEADER_HANDLERS, Leader
from redraft.raft.log import ENTRY_OVERHEAD, RaftLog
from redraft.raft.outbox import Outbox
from redraft.raft.progress import PeerState
from redraft.raft.quorum import VoteResult, vote_result
from redraft.raft.readonly import ReadOnly
from redraft.raft.snapshot import SnapshotReceiver
from redraft.raft.status import Status
from redraft.raft.tracker import ProgressTracker
from redraft.raft.types import (
    ChangeType,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MsgType,
    NodeId,
    NotLeader,
    Ready,
    Role,
    SnapshotMeta,
)

_APP: Final = MsgType.APP
_APP_RESP: Final = MsgType.APP_RESP
_VOTE: Final = MsgType.VOTE
_VOTE_RESP: Final = MsgType.VOTE_RESP
_PRE_VOTE: Final = MsgType.PRE_VOTE
_PRE_VOTE_RESP: Final = MsgType.PRE_VOTE_RESP
_HEARTBEAT: Final = MsgType.HEARTBEAT
_HEARTBEAT_RESP: Final = MsgType.HEARTBEAT_RESP
_SNAP: Final = MsgType.SNAP
_SNAP_RESP: Final = MsgType.SNAP_RESP
_TIMEOUT_NOW: Final = MsgType.TIMEOUT_NOW
_CONFIG: Final = EntryKind.CONFIG
# Class attribute lookups on enums are slow in Python 3.11: compare with aliases.
_LEADER: Final = Role.LEADER
_FOLLOWER: Final = Role.FOLLOWER
_CANDIDATE: Final = Role.CANDIDATE
_PRE_CANDIDATE: Final = Role.PRE_CANDIDATE
_REPLICATE: Final = PeerState.REPLICATE
_WON: Final = VoteResult.WON
_LOST: Final = VoteResult.LOST


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
        hs = r.hard_state
        self.log = RaftLog.restore(snap, r.entries, hs.commit)
        self.term = hs.term
        self.vote: NodeId = hs.vote
        self._tracker = ProgressTracker(
            snap.membership if snap else Membership(),
            [
                (e.index, Membership.decode(e.data))
                for e in r.entries
                if e.kind == _CONFIG and e.index >= self.log.offset
            ],
        )

        self.role = Role.FOLLOWER
        self.leader: NodeId = ""
        self.leader_commit = 0
        """The highest commit index another node, leading, has announced to this
        one since it started: how far a follower that catches up has to go.
        Only informative: the log's commit index moves by Raft's rules alone."""
        self.ticks = 0
        self.election_elapsed = 0
        self._randomized_timeout = 0
        self._reset_randomized_timeout()
        # Until it has sat out one election timeout, a freshly started node
        # refuses votes as if it still followed a leader: it may have acked a
        # heartbeat just before crashing, and that leader's lease still runs.
        self._boot_guard = True
        self._votes: dict[NodeId, bool] = {}
        self.may_campaign = True
        """Cleared by a runtime that cannot persist for now (its disk is full): the
        node then starts no election, not even when a leader hands over to it
        (TimeoutNow), since it could neither record its vote nor append as leader.
        It still answers votes; it cannot persist its own, so they wait with it."""

        # Present exactly while this node leads (role == LEADER).
        self._lead: Leader | None = None
        self._reads = ReadOnly()
        self._incoming = SnapshotReceiver()
        self._out = Outbox()
        self._follower = Follower(self.id, self.log, self._tracker, self._incoming, self._out)
        self._handout = Handout(
            HardState(self.term, self.vote, self.log.commit),
            self.log,
            self._tracker,
            self._out,
            self._reads,
            self._incoming,
        )

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
        """The highest index known committed."""
        return self.log.commit

    @property
    def last_index(self) -> int:
        """The index of the last entry in the log (durable or not)."""
        return self.log.last_index

    @property
    def first_index(self) -> int:
        """The index of the first entry still in the log."""
        return self.log.offset

    @property
    def membership(self) -> Membership:
        """The membership in force (the last one appended, committed or not)."""
        return self._tracker.membership

    @property
    def last_snapshot(self) -> SnapshotMeta | None:
        """The latest snapshot this node has (restored, taken or installed)."""
        return self.log.snapshot

    @property
    def lead_transferee(self) -> NodeId:
        """The node this leader is handing leadership to ("" if none)."""
        lead = self._lead
        return lead.transferee if lead is not None else ""

    @property
    def pending_conf_index(self) -> int:
        """The index of the latest membership change this node appended as leader."""
        return self._tracker.pending_conf_index

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index`` (None if it is not in the log)."""
        return self.log.term(index)

    def log_entries(self, lo: int, hi: int) -> list[Entry]:
        """The entries [lo, hi) (all in the log)."""
        return self.log.slice(lo, hi)

    def is_voter(self) -> bool:
        """Whether this node votes in the membership in force."""
        return self.id in self._tracker.membership.voters

    def committed_in_term(self) -> bool:
        """Whether this leader has committed an entry of its own term (its no-op)."""
        return self.log.term(self.log.commit) == self.term

    def snapshots_in_use(self) -> set[int]:
        """Indexes of snapshots being streamed to followers (keep their files)."""
        return self._tracker.snapshots_in_use()

    def snapshot_meta_at(self, index: int) -> SnapshotMeta:
        """Term and membership at ``index`` (which must be committed); size 0."""
        if index > self.log.commit:
            raise ValueError(f"index {index} is not committed (commit {self.log.commit})")
        term = self.log.term(index)
        if term is None:
            raise ValueError(f"index {index} is no longer in the log")
        return SnapshotMeta(index, term, self._tracker.membership_at(index))

    def status(self) -> Status:
        """A frozen picture of this node's state (for status commands and logs)."""
        log = self.log
        snap = log.snapshot
        return Status(
            id=self.id,
            role=self.role,
            term=self.term,
            leader=self.leader,
            vote=self.vote,
            commit=log.commit,
            applied=log.applied,
            last_index=log.last_index,
            last_term=log.last_term,
            first_index=log.offset,
            stable=log.stable,
            snapshot_index=snap.index if snap is not None else 0,
            snapshot_term=snap.term if snap is not None else 0,
            membership=self._tracker.membership,
            election_elapsed=self.election_elapsed,
            ticks=self.ticks,
            lead_transferee=self.lead_transferee,
            progress=self._tracker.peer_status(),
        )

    # ---------------------------------------------------------------- inputs

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        self.ticks += 1
        lead = self._lead
        if lead is None:
            self._tick_election()
            return
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if not lead.new_quorum_period():
                self._become_follower(self.term, "")
                return
        lead.tick(self.ticks)

    def propose(self, data: Sequence[bytes]) -> int:
        """Append NORMAL entries; returns the index of the first.  Leader only."""
        lead = self._lead
        if lead is None:
            raise NotLeader(self.leader)
        return lead.propose(data)

    def read_index(self, token: object) -> None:
        """Ask for a linearizable read; its ReadState comes in a later Ready."""
        if self._lead is None:
            raise NotLeader(self.leader)
        self._reads.waiting.append(token)

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
        lead = self._lead
        return -1 if lead is None else lead.lease_deadline()

    def campaign(self) -> bool:
        """Start an election now (voters only); False if this node may not.

        A follower that heard from its leader within the last election timeout
        (or that has just started, and may have acked a heartbeat before it
        stopped) lent that leader a lease: campaigning now could elect a new
        leader while the old one still serves reads from its lease. It waits
        for its own timeout instead; to move leadership at once, ask the
        leader for :meth:`transfer_leadership`.
        """
        if self.role == _LEADER or not self.is_voter() or not self.may_campaign:
            return False
        if self._in_lease() and self._tracker.membership.voters != {self.id}:
            return False
        self._campaign(pre=self.cfg.pre_vote, transfer=False)
        return True

    def transfer_candidates(self) -> list[NodeId]:
        """The voters a leader could hand over to, most caught-up first (empty if not leading)."""
        if self._lead is None:
            return []
        return self._tracker.by_match(exclude=self.id)

    def transfer_leadership(self, to: NodeId | None = None) -> NodeId:
        """Hand leadership to ``to`` (default: the most caught-up voter)."""
        lead = self._lead
        if lead is None:
            raise NotLeader(self.leader)
        return lead.transfer(to)

    def change_membership(self, change: ChangeType, node: NodeId) -> int:
        """Propose a single-server membership change; returns its log index."""
        lead = self._lead
        if lead is None:
            raise NotLeader(self.leader)
        return lead.change(change, node)

    def report_unreachable(self, peer: NodeId) -> None:
        """The runtime lost its link to ``peer``: stop pipelining to it, probe once it is back."""
        if self._lead is None:
            return
        pr = self._tracker.progress.get(peer)
        if pr is not None and pr.state == _REPLICATE:
            pr.become_probe()

    def compact(self, meta: SnapshotMeta) -> None:
        """A snapshot file up to ``meta.index`` exists: forget the log before it."""
        log = self.log
        if meta.index > log.applied:
            raise ValueError(f"snapshot at {meta.index} is past the applied index")
        if log.snapshot is None or meta.index > log.snapshot.index:
            log.snapshot = meta
        cfg = self.cfg
        upto = log.compaction_point(meta.index, cfg.compaction_tail, cfg.compaction_tail_bytes)
        if upto < log.offset:
            return
        log.compact(upto)
        self._tracker.compacted(upto)

    # ----------------------------------------------------------------- output

    def ready(self) -> Ready | None:
        """Everything the runtime must do since the last call, or None."""
        lead = self._lead
        reads = self._reads
        if lead is not None and (lead.need_bcast or reads.waiting):
            lead.prepare()
        return self._handout.ready(self.term, self.vote)

    def advance(self, rd: Ready) -> None:
        """``rd``'s persistence is durable."""
        entries = rd.entries
        if entries:
            log = self.log
            last = entries[-1]
            log.stable_to(last.index, last.term)
            lead = self._lead
            # Only new entries move a leader's own durable index.
            if lead is not None:
                lead.stable(log.stable)
                if lead.resigned:
                    self._become_follower(self.term, "")

    # ------------------------------------------------------------------ step

    def step(self, m: Message) -> None:
        """Handle one message from another node."""
        if m.to != self.id or (m.term != self.term and not self._step_term(m)):
            return
        t = m.type
        if t == _VOTE or t == _PRE_VOTE:
            self._handle_vote(m)
            return
        lead = self._lead
        if lead is not None:
            handler = LEADER_HANDLERS.get(t)
            if handler is not None:
                handler(lead, m)
            if lead.resigned:
                self._become_follower(self.term, "")
            return
        if self.role != _FOLLOWER and not self._step_candidate(m):
            return
        # A leader's message of this very term (m.term == self.term).
        if t == _APP:
            self.election_elapsed = 0
            self.leader = m.frm
            if m.commit > self.leader_commit:
                self.leader_commit = m.commit
            self._follower.on_append(m)
        elif t == _HEARTBEAT:
            self.election_elapsed = 0
            self.leader = m.frm
            # ``commit`` is capped at what the leader knows we hold; ``index``
            # is its own (0 from a leader that predates it).
            announced = m.index if m.index > m.commit else m.commit
            if announced > self.leader_commit:
                self.leader_commit = announced
            self._follower.on_heartbeat(m)
        elif t == _SNAP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._follower.on_snapshot(m)
        elif t == _TIMEOUT_NOW and self.is_voter() and self.may_campaign:
            self._campaign(pre=False, transfer=True)

    def _step_term(self, m: Message) -> bool:
        """``m`` is of another term: settle ours.  False if that is all ``m`` calls for."""
        t = m.type
        if m.term > self.term:
            if (t == _VOTE or t == _PRE_VOTE) and not m.transfer and self._in_lease():
                # A follower that hears from its leader ignores campaigns (§4.2.3).
                return False
            if t == _PRE_VOTE or (t == _PRE_VOTE_RESP and not m.reject):
                return True  # a pre-vote changes no term
            if t == _APP or t == _HEARTBEAT or t == _SNAP:
                self._become_follower(m.term, m.frm)
            else:
                self._become_follower(m.term, "")
            return True
        if (self.cfg.check_quorum or self.cfg.pre_vote) and (t == _APP or t == _HEARTBEAT):
            # Tell a stale leader about the newer term so it steps down.
            self._send(Message(_APP_RESP, m.frm, self.id, self.term))
        elif t == _PRE_VOTE:
            self._send(Message(_PRE_VOTE_RESP, m.frm, self.id, self.term, reject=True))
        return False

    def _step_candidate(self, m: Message) -> bool:
        """A (pre-)candidate's share of ``m``; True if it now follows and ``m`` is for that."""
        t = m.type
        if t == _APP or t == _HEARTBEAT or t == _SNAP:
            self._become_follower(self.term, m.frm)
            return True
        role = self.role
        if (t == _VOTE_RESP and role == _CANDIDATE) or (
            t == _PRE_VOTE_RESP and role == _PRE_CANDIDATE
        ):
            self._poll(m)
        return False

    def _send(self, m: Message) -> None:
        self._out.send(m)

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
            if self.may_campaign:
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
        for v in sorted(self._tracker.membership.voters):
            if v != self.id:
                self._send(
                    Message(mtype, v, self.id, term, last_term, last_index, transfer=transfer)
                )

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
        if m.frm in self._tracker.membership.voters and m.frm not in self._votes:
            self._votes[m.frm] = not m.reject
        self._tally()

    def _tally(self) -> bool:
        """Act on the votes so far; True if the campaign is decided."""
        result = vote_result(self._tracker.membership.voters, self._votes)
        if result is _WON:
            if self.role == _PRE_CANDIDATE:
                self._campaign(pre=False, transfer=False)
            else:
                self._become_leader()
            return True
        if result is _LOST:
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
        self._reset_randomized_timeout()
        self._votes = {}
        self._lead = None
        self._tracker.reset()
        self._reads.reset()

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
        self._lead = Leader(
            self.cfg, self.term, self.log, self._tracker, self._reads, self._out, self.ticks
        )


__all__ = ["ENTRY_OVERHEAD", "RaftConfig", "RaftCore", "Restored"]
