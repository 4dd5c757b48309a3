"""Deliberately broken variants of core methods, to prove the simulator catches bugs.

Each mutation monkeypatches one method of the core (:class:`RaftCore` or one
of its parts) or of the :class:`ReadyDriver` that the node and the simulator
share, in-process, for the duration of a ``with mutated(name):`` block.  The
source is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from redraft.raft.core import RaftCore
from redraft.raft.driver import ReadyDriver
from redraft.raft.leader import Leader
from redraft.raft.log import RaftLog
from redraft.raft.outbox import Outbox
from redraft.raft.types import Entry, Message, MsgType, Role


def _grant_vote_twice(self: RaftCore, m: Message) -> None:
    # The bug: a vote already cast in this term (or loyalty to a live leader)
    # does not stop a second one.
    pre = m.type == MsgType.PRE_VOTE
    resp = MsgType.PRE_VOTE_RESP if pre else MsgType.VOTE_RESP
    if self.log.is_up_to_date(m.index, m.log_term):
        if not pre:
            self.election_elapsed = 0
            self.vote = m.frm
        self._send(Message(resp, m.frm, self.id, m.term))
    else:
        self._send(Message(resp, m.frm, self.id, self.term, reject=True))


def _vote_for_stale_log(self: RaftCore, m: Message) -> None:
    # The bug: the candidate's log is not required to be at least as up to date.
    pre = m.type == MsgType.PRE_VOTE
    resp = MsgType.PRE_VOTE_RESP if pre else MsgType.VOTE_RESP
    can_vote = (
        self.vote == m.frm
        or (self.vote == "" and self.leader == "")
        or (pre and m.term > self.term)
    )
    if can_vote:
        if not pre:
            self.election_elapsed = 0
            self.vote = m.frm
        self._send(Message(resp, m.frm, self.id, m.term))
    else:
        self._send(Message(resp, m.frm, self.id, self.term, reject=True))


def _commit_by_counting_old_terms(self: Leader) -> bool:
    # The bug: an entry of an earlier term is committed by counting replicas
    # (the Figure 8 hazard of the Raft paper).
    idx = self.tracker.committed()
    if idx > self.log.commit:
        self.log.commit = idx
        self._after_commit()
        return True
    return False


def _apply_before_commit(self: RaftLog) -> list[Entry]:
    # The bug: every entry in the log is handed out for applying, committed or not.
    last = self.last_index
    if self.applied >= last:
        return []
    ents = self.slice(self.applied + 1, last + 1)
    self.applied = last
    return ents


def _send_before_persist(self: Outbox, m: Message) -> None:
    # The bug: votes and acks go out before the state they promise is durable.
    self.now.append(m)


def _read_without_quorum(self: Leader) -> None:
    # The bug: a ReadIndex read is answered at once, without the heartbeat
    # round that proves this node still leads.
    if self.committed_in_term():
        self.reads.release_waiting(self.log.commit)


def _lease_without_quorum(self: RaftCore, now: int | None = None) -> bool:
    # The bug: a leader trusts its lease without a quorum's recent heartbeat acks.
    return self.role == Role.LEADER and not self.lead_transferee and self.committed_in_term()


def _apply_while_installing(self: ReadyDriver) -> None:
    # The bug: committed entries are applied while a snapshot that was handed
    # out is still being persisted, to the machine as it was before the
    # snapshot (the install then throws them away).
    io = self.io
    while (rd := self.core.ready()) is not None:
        if rd.messages:
            io.send(rd.messages)
        if rd.install_snapshot is not None:
            self._installs.append((rd.install_snapshot, []))
        if rd.needs_persist() or io.persisting:
            io.flush()
            if io.persist(rd):
                self.durable(rd)
        else:
            self.durable(rd)
        if rd.committed:
            io.flush()
            io.apply(rd.committed)
        if rd.reads:
            io.reads_ready(rd.reads)
        if rd.dropped_reads:
            io.reads_dropped(rd.dropped_reads)


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    owner: type
    method: str
    replacement: Callable[..., object]


MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        Mutation(
            "vote_twice",
            "grant a vote without checking the vote already cast in this term",
            RaftCore,
            "_handle_vote",
            _grant_vote_twice,
        ),
        Mutation(
            "stale_log_vote",
            "grant a vote without the log up-to-date check",
            RaftCore,
            "_handle_vote",
            _vote_for_stale_log,
        ),
        Mutation(
            "commit_old_term",
            "commit by counting replicas of a previous term's entry",
            Leader,
            "_maybe_commit",
            _commit_by_counting_old_terms,
        ),
        Mutation(
            "apply_before_commit",
            "hand out entries for applying before they are committed",
            RaftLog,
            "take_committed",
            _apply_before_commit,
        ),
        Mutation(
            "ack_before_persist",
            "send votes and acks before their Ready is durable",
            Outbox,
            "send",
            _send_before_persist,
        ),
        Mutation(
            "read_without_quorum",
            "answer ReadIndex reads without a heartbeat quorum round",
            Leader,
            "_start_read_round",
            _read_without_quorum,
        ),
        Mutation(
            "lease_without_quorum",
            "trust the lease without recent heartbeat acks from a quorum",
            RaftCore,
            "lease_valid",
            _lease_without_quorum,
        ),
        Mutation(
            "apply_while_installing",
            "apply committed entries while a snapshot handed out awaits its install",
            ReadyDriver,
            "run",
            _apply_while_installing,
        ),
    )
}


@contextmanager
def mutated(name: str) -> Iterator[Mutation]:
    """Run the block with mutation ``name`` patched into the core."""
    mut = MUTATIONS[name]
    original = mut.owner.__dict__[mut.method]
    setattr(mut.owner, mut.method, mut.replacement)
    try:
        yield mut
    finally:
        setattr(mut.owner, mut.method, original)
