"""Who the members are, and (on a leader) how far each one's log has come.

Membership takes effect when its CONFIG entry is appended, not when it
commits (single-server changes, Raft dissertation §4.1), so an entry that is
truncated away takes its membership with it.  The tracker therefore keeps the
history: the membership in force at the compaction point (``base``) and every
CONFIG entry still in the log after it.

A leader also keeps one :class:`~redraft.raft.progress.Progress` per member
(itself included) and per *departing* member: one removed by a change that
still gets the log up to its removal, so that it learns of it and stops
campaigning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from redraft.raft.progress import Progress
from redraft.raft.quorum import VoteResult, committed_index, majority, vote_result
from redraft.raft.status import PeerStatus
from redraft.raft.types import ChangeType, InvalidChange, Membership, NodeId

_WON: Final = VoteResult.WON


class ProgressTracker:
    """Membership with its history, and the leader's progress map."""

    __slots__ = (
        "_base",
        "_configs",
        "_expiring",
        "config_unsynced",
        "departing",
        "membership",
        "pending_conf_index",
        "progress",
    )

    def __init__(self, base: Membership, configs: list[tuple[int, Membership]]) -> None:
        self._base = base
        self._configs = configs
        self.membership: Membership = configs[-1][1] if configs else base
        """The membership in force: the last one appended."""
        self.pending_conf_index = 0
        """The index of the latest CONFIG entry a leader appended (one change at a time)."""
        self.config_unsynced = False
        """A CONFIG entry was appended since the last Ready handed out entries."""
        self.progress: dict[NodeId, Progress] = {}
        """Per member (and departing member), while leading; empty otherwise.

        The same dict for the tracker's whole life, so it may be aliased.
        """
        self.departing: dict[NodeId, int] = {}
        """Removed members still fed the log: each to the index of the CONFIG entry removing it."""
        self._expiring: set[NodeId] = set()

    # ----------------------------------------------------------------- history

    def membership_at(self, index: int) -> Membership:
        """The membership in force at log ``index`` (not before the compaction point)."""
        mem = self._base
        for idx, m in self._configs:
            if idx > index:
                break
            mem = m
        return mem

    def appended(self, index: int, new: Membership) -> Membership:
        """A CONFIG entry for ``new`` entered the log at ``index``; returns the old membership."""
        old = self.membership
        self.config_unsynced = True
        self._configs.append((index, new))
        self.membership = new
        return old

    def truncated(self, after: int) -> None:
        """The log lost its entries after ``after``, and the memberships they held."""
        configs = self._configs
        if configs and configs[-1][0] > after:
            while configs and configs[-1][0] > after:
                configs.pop()
            self.membership = configs[-1][1] if configs else self._base

    def compacted(self, upto: int) -> None:
        """The log forgot its entries up to ``upto``: fold their memberships into the base."""
        base = self._base
        keep: list[tuple[int, Membership]] = []
        for idx, mem in self._configs:
            if idx <= upto:
                base = mem
            else:
                keep.append((idx, mem))
        self._base = base
        self._configs = keep

    def restored(self, membership: Membership) -> None:
        """A snapshot replaced the whole log."""
        self._base = membership
        self._configs = []
        self.membership = membership

    # ---------------------------------------------------------------- progress

    def reset(self) -> None:
        """Leadership ended or began: forget every member's progress."""
        self.progress.clear()
        self.departing.clear()
        self._expiring.clear()

    def sync(self, next_index: int, now: int) -> None:
        """Make the progress map match the membership (plus departing members).

        A new member starts probing at ``next_index``.
        """
        mem = self.membership
        members = mem.members()
        learners = mem.learners
        prs = self.progress
        for n in members:
            pr = prs.get(n)
            if pr is None:
                prs[n] = Progress(next_index, n in learners, now)
            else:
                pr.learner = n in learners
        departing = self.departing
        for n in [n for n in prs if n not in members and n not in departing]:
            del prs[n]

    def changed(self, me: NodeId, index: int, old: Membership, new: Membership) -> None:
        """The leader ``me`` appended a change from ``old`` to ``new`` at ``index``."""
        # Removed members still get the log up to their removal so they
        # learn of it and stop campaigning.
        for n in old.members() - new.members():
            if n != me:
                self.departing[n] = index
        for n in new.members() - old.members():
            # A member added (back) starts from nothing: under the same id
            # it may be a new process with an empty log, and must not
            # inherit what the leader knew of its predecessor.
            self.departing.pop(n, None)
            self._expiring.discard(n)
            self.progress.pop(n, None)

    def departed(self, n: NodeId, commit: int) -> bool:
        """Stop tracking ``n`` if it is departing and has the (committed) entry removing it."""
        idx = self.departing.get(n)
        if idx is None or idx > commit:
            return False
        pr = self.progress.get(n)
        if pr is None or pr.match < idx:
            return False
        del self.departing[n]
        del self.progress[n]
        return True

    def departed_all(self, commit: int) -> None:
        """:meth:`departed` for every departing member."""
        for n in list(self.departing):
            self.departed(n, commit)

    def expire_departing(self, commit: int) -> None:
        """Stop feeding removed members that never acknowledged their removal.

        Called once per election timeout: a member is dropped at the second
        call after its removal committed, so it had a full timeout to hear.
        """
        for n, idx in list(self.departing.items()):
            if idx > commit:
                continue
            if n in self._expiring:
                del self.departing[n]
                self.progress.pop(n, None)
                self._expiring.discard(n)
            else:
                self._expiring.add(n)

    def by_match(self, exclude: NodeId) -> list[NodeId]:
        """Tracked voters but ``exclude``, most caught-up first (ties by id)."""
        return self._voters_by(exclude, lambda pr: pr.match)

    def _voters_by(self, exclude: NodeId, rank: Callable[[Progress], int]) -> list[NodeId]:
        """Tracked voters but ``exclude``, highest ``rank`` first (ties by id)."""
        prs = self.progress
        return sorted(
            (v for v in self.membership.voters if v != exclude and v in prs),
            key=lambda v: (-rank(prs[v]), v),
        )

    def peer_status(self) -> Mapping[NodeId, PeerStatus]:
        """A frozen copy of the progress map."""
        return MappingProxyType(
            {
                n: PeerStatus(pr.match, pr.next, pr.state.name.lower(), pr.last_contact, pr.learner)
                for n, pr in self.progress.items()
            }
        )

    def snapshots_in_use(self) -> set[int]:
        """Indexes of snapshots being streamed to followers."""
        return {pr.snapshot.meta.index for pr in self.progress.values() if pr.snapshot is not None}

    # ------------------------------------------------------------------ quorum

    def committed(self) -> int:
        """The highest log index a majority of voters holds (0 without voters)."""
        prs = self.progress
        return committed_index([prs[v].match if v in prs else 0 for v in self.membership.voters])

    def acked_round(self, me: NodeId, own: int) -> int:
        """The highest heartbeat round a majority acknowledged (``me`` counts as ``own``)."""
        prs = self.progress
        return committed_index(
            own if v == me else (prs[v].acked_round if v in prs else 0)
            for v in self.membership.voters
        )

    def round_quorum(self, me: NodeId) -> list[NodeId]:
        """The fewest other voters whose acks, with ``me``'s own, confirm a heartbeat round.

        Those that acknowledged the latest rounds, ties to the lowest id: the
        same followers round after round while they answer, and one that
        stopped answering falls behind the others and is passed over.
        """
        voters = self.membership.voters
        others = self._voters_by(me, lambda pr: pr.acked_round)
        return others[: majority(len(voters)) - (me in voters)]

    def acked_tick(self, me: NodeId, now: int, round_tick: Callable[[int], int]) -> int:
        """The latest tick by which a majority of voters had acknowledged a heartbeat sent then.

        ``me`` counts as acknowledging at ``now``; ``round_tick`` gives the
        tick each heartbeat round was sent at.
        """
        prs = self.progress
        return committed_index(
            now if v == me else round_tick(prs[v].acked_round if v in prs else 0)
            for v in self.membership.voters
        )

    def quorum_active(self, me: NodeId) -> bool:
        """Whether a majority of voters (``me`` included) was heard from recently."""
        prs = self.progress
        voters = self.membership.voters
        heard = {v: True for v in voters if v == me or (v in prs and prs[v].recent_active)}
        return vote_result(self.membership.voters, heard) is _WON

    def mark_inactive(self) -> None:
        """Start a new check-quorum period: nobody has been heard from in it yet."""
        for pr in self.progress.values():
            pr.recent_active = False


def apply_change(mem: Membership, change: ChangeType, node: NodeId) -> Membership:
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


__all__ = ["ProgressTracker", "apply_change"]
