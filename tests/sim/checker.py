"""Raft's safety properties, checked incrementally as a simulated run unfolds.

Every check is cheap enough to run after each simulator step: the checker
keeps global records (every leader per term, every log entry ever appended
anywhere keyed by (index, term), the global applied sequence) and compares
each new fact against them instead of rescanning logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from redraft.raft.core import RaftCore
from redraft.raft.types import Entry, HardState, NodeId


class Violation(Exception):
    """A safety or liveness property failed."""

    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _LogId:
    prev_term: int | None
    kind: int
    data: bytes
    node: NodeId


class Checker:
    """Global records of a run and the property checks over them."""

    def __init__(self) -> None:
        self.leaders: dict[int, NodeId] = {}
        # (index, term) -> the entry's predecessor term and content, the first time seen
        self.log_ids: dict[tuple[int, int], _LogId] = {}
        self.applied: dict[int, Entry] = {}
        self.states: dict[int, bytes] = {}
        # index -> an upper bound of the term in which the entry was committed
        self.commit_term: dict[int, int] = {}
        self.max_applied = 0
        self.votes: dict[tuple[NodeId, int], NodeId] = {}

    # ------------------------------------------------------------ elections

    def leader_elected(self, node: NodeId, term: int) -> None:
        """Election safety: at most one leader per term."""
        other = self.leaders.setdefault(term, node)
        if other != node:
            raise Violation("election safety", f"{other} and {node} both lead term {term}")

    def vote_sent(self, voter: NodeId, term: int, candidate: NodeId, durable: HardState) -> None:
        """A vote (or a candidate's own vote, with its request) leaves ``voter``."""
        prior = self.votes.setdefault((voter, term), candidate)
        if prior != candidate:
            raise Violation(
                "single vote per term",
                f"{voter} voted for {prior} and then for {candidate} in term {term}",
            )
        if durable.term != term or durable.vote != candidate:
            raise Violation(
                "durability",
                f"{voter} sent its vote for {candidate} in term {term} while its durable "
                f"hard state is term {durable.term} vote {durable.vote!r}",
            )

    def leader_complete(self, node: NodeId, term: int, core: RaftCore) -> None:
        """Leader completeness: a leader holds every entry committed in an earlier term.

        It is enough to check the newest such entry: log matching (checked
        separately) makes the leader's log agree with it on everything before.
        """
        applied = self.applied
        commit_term = self.commit_term
        i = self.max_applied
        while i > 0 and commit_term.get(i, 0) >= term:
            i -= 1
        if i > 0:
            self._holds(node, term, core, i, applied[i])

    def leader_holds(self, node: NodeId, term: int, core: RaftCore, index: int) -> None:
        """A leader of ``term`` holds the entry at ``index`` if it was committed earlier."""
        if self.commit_term.get(index, term) < term:
            self._holds(node, term, core, index, self.applied[index])

    @staticmethod
    def _holds(node: NodeId, term: int, core: RaftCore, index: int, e: Entry) -> None:
        t = core.term_at(index)
        if t == e.term:
            return
        if t is None and index < core.first_index:
            return  # covered by the leader's snapshot
        raise Violation(
            "leader completeness",
            f"leader {node} of term {term} has term {t} at index {index}, "
            f"where term {e.term} was committed",
        )

    # ------------------------------------------------------------------- logs

    def appended(
        self, node: NodeId, node_term: int, prev_term: int | None, ents: list[Entry]
    ) -> None:
        """Entries entered ``node``'s log (a Ready's entries): log matching, incrementally.

        Each (index, term) names one entry created by one leader, so all logs
        holding it must agree on its content and on its predecessor's term;
        by induction that makes them identical up to it.
        """
        log_ids = self.log_ids
        expect = ents[0].index
        for e in ents:
            if e.index != expect:
                raise Violation("log matching", f"{node} appended non-contiguous entry {e.index}")
            expect += 1
            if e.term > node_term:
                raise Violation(
                    "log matching",
                    f"{node} in term {node_term} appended entry {e.index} of term {e.term}",
                )
            if prev_term is not None and e.term < prev_term:
                raise Violation(
                    "log matching",
                    f"{node}'s entry {e.index} has term {e.term} after term {prev_term}",
                )
            key = (e.index, e.term)
            seen = log_ids.get(key)
            if seen is None:
                log_ids[key] = _LogId(prev_term, e.kind, e.data, node)
            elif seen.kind != e.kind or seen.data != e.data:
                raise Violation(
                    "log matching",
                    f"entry {e.index}/{e.term} differs between {seen.node} and {node}",
                )
            elif (
                prev_term is not None and seen.prev_term is not None and seen.prev_term != prev_term
            ):
                raise Violation(
                    "log matching",
                    f"entry {e.index}/{e.term} follows term {seen.prev_term} on {seen.node} "
                    f"but term {prev_term} on {node}",
                )
            prev_term = e.term

    def known_entry(self, node: NodeId, index: int, term: int) -> None:
        """An entry in ``node``'s in-memory log must have been handed out for persisting."""
        if (index, term) not in self.log_ids:
            raise Violation(
                "log matching",
                f"{node} holds entry {index}/{term} that no Ready ever handed out",
            )

    def full_log(self, node: NodeId, core: RaftCore) -> None:
        """Check ``node``'s whole in-memory log against every entry seen so far."""
        first, last = core.first_index, core.last_index
        if last < first:
            return
        prev = core.term_at(first - 1)
        log_ids = self.log_ids
        for e in core.log_entries(first, last + 1):
            seen = log_ids.get((e.index, e.term))
            if seen is None:
                self.known_entry(node, e.index, e.term)
            elif (
                seen.kind != e.kind
                or seen.data != e.data
                or (prev is not None and seen.prev_term is not None and seen.prev_term != prev)
            ):
                raise Violation(
                    "log matching",
                    f"{node}'s in-memory entry {e.index}/{e.term} differs from {seen.node}'s",
                )
            prev = e.term

    # --------------------------------------------------------------- applying

    def apply(self, node: NodeId, node_term: int, e: Entry, state: bytes) -> bool:
        """State machine safety: ``node`` applied ``e`` reaching ``state``; True if first anywhere."""
        i = e.index
        g = self.applied.get(i)
        if g is None:
            self.applied[i] = e
            self.states[i] = state
            self.commit_term[i] = node_term
            if i > self.max_applied:
                self.max_applied = i
            return True
        if g is not e and (g.term != e.term or g.kind != e.kind or g.data != e.data):
            raise Violation(
                "state machine safety",
                f"{node} applied {e.index}/{e.term} where {g.index}/{g.term} was applied before",
            )
        if self.states[i] != state:
            raise Violation("state machine safety", f"{node}'s machine diverged at index {i}")
        return False

    def restored(self, node: NodeId, index: int, state: bytes) -> None:
        """``node``'s machine was restored from a snapshot at ``index``."""
        if index == 0:
            return
        g = self.states.get(index)
        if g is None:
            raise Violation(
                "state machine safety", f"{node} restored a snapshot at {index}, never applied"
            )
        if g != state:
            raise Violation(
                "state machine safety", f"{node} restored a snapshot at {index} that differs"
            )
