"""What a node does while it leads: replicate, commit, confirm reads, change membership.

A :class:`Leader` exists for one leadership (one term): the core creates it
when the node wins an election and drops it when the node steps down, so
state that only means something while leading (heartbeat and transfer
timers, the target of a transfer, whether the node has resigned) lives and
dies with it.  It shares with the core the log, the progress tracker, the
ReadIndex state and the outbox.

It never changes the node's role itself: when its own removal commits it
sets :attr:`Leader.resigned`, and :meth:`Leader.new_quorum_period` says
whether a majority is still in touch; the core steps down on either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from redraft.raft.config import RaftConfig
from redraft.raft.log import RaftLog
from redraft.raft.outbox import Outbox
from redraft.raft.progress import PeerState, Progress
from redraft.raft.readonly import ReadOnly
from redraft.raft.tracker import ProgressTracker, apply_change
from redraft.raft.types import (
    ChangeInProgress,
    ChangeType,
    Entry,
    EntryKind,
    InvalidChange,
    Membership,
    Message,
    MsgType,
    NodeId,
    ProposalDropped,
    make_entries,
)

# Class attribute lookups on enums are slow in Python 3.11: compare with aliases.
_APP: Final = MsgType.APP
_APP_RESP: Final = MsgType.APP_RESP
_HEARTBEAT_RESP: Final = MsgType.HEARTBEAT_RESP
_SNAP_RESP: Final = MsgType.SNAP_RESP
_HEARTBEAT: Final = MsgType.HEARTBEAT
_SNAP: Final = MsgType.SNAP
_TIMEOUT_NOW: Final = MsgType.TIMEOUT_NOW
_NORMAL: Final = EntryKind.NORMAL
_PROBE: Final = PeerState.PROBE
_REPLICATE: Final = PeerState.REPLICATE
_SNAPSHOT: Final = PeerState.SNAPSHOT

_FOREVER: Final = 1 << 62
_LIGHT_BACKLOG: Final = 64 << 10
"""A follower held back under light load gets its entries at once past this many bytes."""


class Leader:
    """One leadership of one node.  See the module docstring."""

    __slots__ = (
        "_deep",
        "_heartbeat_elapsed",
        "_near",
        "_transfer_elapsed",
        "cfg",
        "id",
        "log",
        "need_bcast",
        "now",
        "out",
        "reads",
        "resigned",
        "term",
        "tracker",
        "transferee",
    )

    def __init__(
        self,
        cfg: RaftConfig,
        term: int,
        log: RaftLog,
        tracker: ProgressTracker,
        reads: ReadOnly,
        out: Outbox,
        now: int,
    ) -> None:
        self.cfg = cfg
        self.id: NodeId = cfg.id
        self.term = term
        self.log = log
        self.tracker = tracker
        self.reads = reads
        self.out = out
        self.now = now
        """The core's tick count, as of the last tick."""
        self.transferee: NodeId = ""
        """The node leadership is being handed to ("" if none)."""
        self.need_bcast = True
        """New entries await sending to the followers (at the next Ready)."""
        self.resigned = False
        """This node's removal committed: the core must step down."""
        self._heartbeat_elapsed = 0
        self._transfer_elapsed = 0
        self._near: frozenset[NodeId] | None = None
        """The voters that get new entries at once under light load (None: all do)."""
        self._deep = False
        """An entry was proposed while earlier ones were uncommitted (since the last Ready)."""
        tracker.sync(log.last_index + 1, now)
        tracker.progress[self.id].match = log.stable
        # The no-op commits every entry of earlier terms (§3.6.2, §6.4).
        log.extend([Entry(term, log.last_index + 1, EntryKind.NOOP, b"")])
        tracker.pending_conf_index = log.last_index

    # ----------------------------------------------------------------- inputs

    def propose(self, data: Sequence[bytes]) -> int:
        """Append NORMAL entries; the index of the first."""
        if self.transferee:
            raise ProposalDropped("leadership transfer in progress")
        log = self.log
        start = log.last_index + 1
        if log.commit < start - 1:
            self._deep = True
        log.extend(make_entries(self.term, start, _NORMAL, data))
        self.need_bcast = True
        return start

    def committed_in_term(self) -> bool:
        """Whether an entry of this term (the no-op) has committed."""
        return self.log.term(self.log.commit) == self.term

    def lease_deadline(self) -> int:
        """The tick before which the lease holds (-1: no lease).  See RaftCore.lease_deadline."""
        if self.transferee or self.reads.lease_forfeited or not self.committed_in_term():
            return -1
        voters = self.tracker.membership.voters
        if self.id not in voters:
            return -1
        if len(voters) == 1:
            return _FOREVER
        sent = self.tracker.acked_tick(self.id, self.now, self.reads.round_tick)
        return sent + self.cfg.election_tick - self.cfg.lease_margin_ticks

    def transfer(self, to: NodeId | None) -> NodeId:
        """Hand leadership to ``to`` (default: the most caught-up voter)."""
        tracker = self.tracker
        prs = tracker.progress
        if to is None:
            candidates = tracker.by_match(exclude=self.id)
            if not candidates:
                raise InvalidChange("there is no other voter to hand leadership to")
            to = candidates[0]
        if to == self.id:
            raise InvalidChange("this node already leads")
        if to not in tracker.membership.voters or to not in prs:
            raise InvalidChange(f"{to} is not a voter")
        if self.transferee == to:
            return to
        self.transferee = to
        self._transfer_elapsed = 0
        if prs[to].match == self.log.last_index:
            self._send_timeout_now(to)
        else:
            self._send_append(to, prs[to])
        return to

    def change(self, change: ChangeType, node: NodeId) -> int:
        """Append a single-server membership change; its log index."""
        if self.tracker.pending_conf_index > self.log.commit:
            raise ChangeInProgress("a membership change is already in progress")
        if self.transferee:
            raise ProposalDropped("leadership transfer in progress")
        if not node:
            raise InvalidChange("empty node id")
        return self._append_config(apply_change(self.tracker.membership, change, node))

    def new_quorum_period(self) -> bool:
        """An election timeout passed: False if a majority was not heard from in it."""
        tracker = self.tracker
        if self.cfg.check_quorum and not tracker.quorum_active(self.id):
            return False
        tracker.mark_inactive()
        tracker.expire_departing(self.log.commit)
        return True

    def tick(self, now: int) -> None:
        """One tick of the core's clock, now at ``now``."""
        self.now = now
        cfg = self.cfg
        self._heartbeat_elapsed += 1
        if self.transferee:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= cfg.election_tick:
                self.transferee = ""  # the target did not take over in time
        if self._heartbeat_elapsed >= cfg.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._bcast_heartbeat()
        self._maybe_promote()

    def prepare(self) -> None:
        """Before a Ready: start a ReadIndex round for waiting reads, send new entries."""
        reads = self.reads
        if reads.waiting and not reads.in_flight:
            # One ReadIndex round in flight at a time: reads that arrive
            # meanwhile share the next one (fewer heartbeats per read under
            # load, no added wait when idle).
            self._start_read_round()
        if self.need_bcast:
            self.need_bcast = False
            deep = self._deep
            self._deep = False
            me = self.id
            for n, pr in self.tracker.progress.items():
                if n != me and (deep or not self._lazy(n) or self._backlog(pr) >= _LIGHT_BACKLOG):
                    self._send_append(n, pr)

    def stable(self, index: int) -> None:
        """This node's own log is durable up to ``index``: it counts towards commits."""
        me = self.tracker.progress.get(self.id)
        if me is not None and index > me.match:
            me.match = index
            me.next = index + 1
            if index > self.log.commit:  # else the commit index cannot move
                self._maybe_commit()

    # --------------------------------------------------------------- answers

    def on_append_resp(self, m: Message) -> None:
        """A follower answered an APP (or told a probe where its log matches)."""
        pr = self.tracker.progress.get(m.frm)
        if pr is None:
            return
        pr.heard(self.now)
        if m.reject:
            if pr.rejected(m.index, m.hint_index, m.hint_term, self.log):
                if pr.state == _REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm, pr)
            return
        log = self.log
        if pr.update(m.index) or (pr.match == m.index and pr.state == _PROBE):
            if pr.state == _PROBE:
                pr.become_replicate()
            elif (
                pr.state == _SNAPSHOT
                and pr.snapshot is not None
                and pr.match >= pr.snapshot.meta.index
            ):
                pr.become_probe()
            if pr.match > log.commit:  # else the commit index cannot move
                self._maybe_commit()
            # A leader that just resigned (its removal committed) still
            # feeds this follower: they are entries of its own term, which
            # the follower may take from it until a new leader speaks.
            if not self.resigned:
                if m.frm == self.transferee and pr.match == log.last_index:
                    self._send_timeout_now(m.frm)
                tracker = self.tracker
                if tracker.departing and tracker.departed(m.frm, log.commit):
                    return
        if pr.next <= log.last_index and (
            not self._lazy(m.frm) or self._backlog(pr) >= self.cfg.max_msg_bytes
        ):
            self._send_append(m.frm, pr)

    def _lazy(self, n: NodeId) -> bool:
        """Whether voter ``n`` is outside the quorum that gets new entries at once.

        Under light load (a lone client: each write proposed once the one
        before it committed) an entry goes only to as many followers as make
        a quorum with the leader; the others get their backlog with each
        heartbeat, so a write wakes one follower and one ack, not two of
        each.  Under load every entry goes to everyone: the first ack of two
        commits sooner.  Transfer targets and learners are never held back.
        """
        near = self._near
        return (
            near is not None
            and n not in near
            and n != self.transferee
            and n in self.tracker.membership.voters
        )

    def _backlog(self, pr: Progress) -> int:
        """Bytes of entries the follower of ``pr`` has not been sent yet."""
        log = self.log
        if pr.next > log.last_index:
            return 0
        if pr.next < log.offset:
            return _FOREVER  # compacted away: a snapshot is due
        return log.size_between(pr.next, log.last_index + 1)

    def on_heartbeat_resp(self, m: Message) -> None:
        """A follower answered a heartbeat: it is alive, and acked a round."""
        tracker = self.tracker
        pr = tracker.progress.get(m.frm)
        if pr is None:
            return
        pr.heartbeat_acked(self.now, m.round, self.cfg.election_tick)
        if pr.match < self.log.last_index and (pr.state != _REPLICATE or not self._lazy(m.frm)):
            self._send_append(m.frm, pr)
        reads = self.reads
        if reads.in_flight:
            reads.acknowledged(tracker.acked_round(self.id, reads.round))

    def on_snapshot_resp(self, m: Message) -> None:
        """A follower answered a snapshot chunk, or reports the snapshot installed."""
        pr = self.tracker.progress.get(m.frm)
        if pr is None:
            return
        pr.heard(self.now)
        if m.installed:
            # Installed (or the follower already had everything up to m.index).
            if pr.state == _SNAPSHOT:
                pr.update(m.index)
                pr.become_probe()
            elif m.index > pr.match:
                pr.update(m.index)
            self._maybe_commit()
            self._send_append(m.frm, pr)  # even if just resigned, as in on_append_resp
            return
        snap = pr.snapshot
        if pr.state != _SNAPSHOT or snap is None or m.index != snap.meta.index:
            return
        snap.answered(m.snap_offset, m.reject, self.now)
        self._send_chunks(m.frm, pr)

    # ------------------------------------------------------------ replication

    def _send_append(self, to: NodeId, pr: Progress) -> None:
        """Send the follower what it lacks, as far as its window allows.

        Nothing is sent just to move a replicating follower's commit index:
        heartbeats carry it every tick, which saves a message and an ack per
        batch.  A follower being probed gets an empty APP when it has
        everything we know of: its answer says where its log matches.
        """
        if pr.state == _SNAPSHOT:
            self._send_chunks(to, pr)
            return
        log = self.log
        cfg = self.cfg
        max_msgs = cfg.max_inflight_msgs
        max_bytes = cfg.max_inflight_bytes
        me = self.id
        term = self.term
        msgs = self.out.now
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
                    msgs.append(Message(_APP, to, me, term, prev_term, prev, [], commit))
                    pr.probe_sent = True
                return
            ents = log.slice(pr.next, last + 1, cfg.max_msg_bytes)
            end = ents[-1].index
            nbytes = log.size_between(pr.next, end + 1)
            msgs.append(Message(_APP, to, me, term, prev_term, prev, ents, commit))
            pr.sent_entries(end, nbytes, self.now)

    def _bcast_heartbeat(self) -> None:
        me = self.id
        tracker = self.tracker
        # The followers that answered the latest rounds; one that missed the
        # last round (down, cut off) is passed over from now on.
        self._near = frozenset(tracker.round_quorum(me))
        self._send_heartbeats([n for n in tracker.progress if n != me])
        last = self.log.last_index
        for n, pr in tracker.progress.items():
            if n != me and pr.next <= last and self._lazy(n):
                self._send_append(n, pr)

    def _send_heartbeats(self, targets: list[NodeId]) -> None:
        """A new heartbeat round, sent to ``targets``."""
        # Rounds older than two election timeouts can no longer give a lease.
        rnd = self.reads.new_round(self.now, self.now - 2 * self.cfg.election_tick)
        commit = self.log.commit
        me = self.id
        term = self.term
        msgs = self.out.now
        progress = self.tracker.progress
        for n in targets:
            pr = progress[n]
            c = pr.match if pr.match < commit else commit
            msgs.append(Message(_HEARTBEAT, n, me, term, index=commit, commit=c, round=rnd))

    def _send_timeout_now(self, to: NodeId) -> None:
        # The target will campaign past its peers' loyalty to us, so from
        # now on this term's lease proves nothing, even if the transfer is
        # called off: the message may still arrive and win an election.
        self.reads.lease_forfeited = True
        self.out.now.append(Message(_TIMEOUT_NOW, to, self.id, self.term))

    def _start_snapshot(self, to: NodeId, pr: Progress) -> None:
        snap = self.log.snapshot
        if snap is None:
            raise AssertionError(f"{to} needs compacted entries but there is no snapshot")
        pr.become_snapshot(snap, self.now)
        self._send_chunks(to, pr)

    def _send_chunks(self, to: NodeId, pr: Progress) -> None:
        snap = pr.snapshot
        if snap is None:
            return
        cfg = self.cfg
        msgs = self.out.now
        for piece in snap.next_chunks(cfg.snapshot_chunk_size, cfg.max_snapshot_inflight):
            msgs.append(Message(_SNAP, to, self.id, self.term, snap=piece))

    # ----------------------------------------------------------------- commit

    def _maybe_commit(self) -> bool:
        """Move the commit index to what a majority holds, if that is of this term."""
        idx = self.tracker.committed()
        log = self.log
        if idx > log.commit and log.term(idx) == self.term:
            log.commit = idx
            self._after_commit()
            return True
        return False

    def _after_commit(self) -> None:
        reads = self.reads
        if reads.waiting and self.committed_in_term() and self._single_voter():
            reads.release_waiting(self.log.commit)
        tracker = self.tracker
        commit = self.log.commit
        if tracker.pending_conf_index <= commit:
            if tracker.departing:
                tracker.departed_all(commit)
            if self.id not in tracker.membership.voters:
                self._hand_over()

    def _hand_over(self) -> None:
        """This leader's removal is committed: wake the best voter and resign."""
        best = self.tracker.by_match(exclude=self.id)
        if best and self.tracker.progress[best[0]].match == self.log.last_index:
            self._send_timeout_now(best[0])
        self.resigned = True

    # -------------------------------------------------------------- ReadIndex

    def _single_voter(self) -> bool:
        voters = self.tracker.membership.voters
        return len(voters) == 1 and self.id in voters

    def _start_read_round(self) -> None:
        if not self.committed_in_term():
            return  # wait for the no-op: only then is the commit index current (§6.4)
        if self._single_voter():
            self.reads.release_waiting(self.log.commit)
            return
        # Only as many followers as make a quorum with us: a heartbeat wakes
        # a follower, the dearest part of a round on a busy machine.  Should
        # one not answer, the periodic heartbeat, sent to all, confirms the
        # round instead, and the next round passes it over.
        self._send_heartbeats(self.tracker.round_quorum(self.id))
        self.reads.start(self.log.commit)

    # ------------------------------------------------------------- membership

    def _append_config(self, new: Membership) -> int:
        log = self.log
        tracker = self.tracker
        index = log.last_index + 1
        log.extend([Entry(self.term, index, EntryKind.CONFIG, new.encode())])
        old = tracker.appended(index, new)
        tracker.changed(self.id, index, old, new)
        if self.transferee and self.transferee not in new.voters:
            self.transferee = ""
        tracker.sync(log.last_index + 1, self.now)
        tracker.pending_conf_index = index
        self.need_bcast = True
        return index

    def _maybe_promote(self) -> None:
        tracker = self.tracker
        promoting = tracker.membership.promoting
        if not promoting or tracker.pending_conf_index > self.log.commit or self.transferee:
            return
        threshold = self.log.last_index - self.cfg.catch_up_margin
        for n in sorted(promoting):
            pr = tracker.progress.get(n)
            if pr is not None and pr.match > 0 and pr.match >= threshold:
                self._append_config(apply_change(tracker.membership, ChangeType.PROMOTE, n))
                return


LEADER_HANDLERS: Final[dict[int, Callable[[Leader, Message], None]]] = {
    _APP_RESP: Leader.on_append_resp,
    _HEARTBEAT_RESP: Leader.on_heartbeat_resp,
    _SNAP_RESP: Leader.on_snapshot_resp,
}
"""What a leader does with each message type it answers to (it ignores the others)."""

__all__ = ["LEADER_HANDLERS", "Leader"]
