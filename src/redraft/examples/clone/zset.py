"""The sorted set: members with float scores, ordered by (score, member) as Redis orders them.

A dict maps each member to its score (ZSCORE, membership in O(1)); a
``sortedcontainers.SortedList`` of ``(score, member)`` pairs keeps the order,
so ranks and score or lexicographic ranges cost O(log n + k).  Scores are
Python floats (IEEE doubles, as Redis's); NaN never gets in (the commands
refuse it, as Redis does).
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

__all__ = ["ZSet"]


class ZSet:
    """A sorted set (see the module notes)."""

    __slots__ = ("order", "scores")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order: SortedList[tuple[float, bytes]] = SortedList()
        """``(score, member)`` pairs in Redis's order."""

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[tuple[bytes, float]]:
        """``(member, score)`` pairs, lowest first."""
        for score, member in self.order:
            yield member, score

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score; whether it is new."""
        old = self.scores.get(member)
        if old is not None:
            if old == score:
                return False
            self.order.remove((old, member))
        self.scores[member] = score
        self.order.add((score, member))
        return old is None

    def discard(self, member: bytes) -> bool:
        """Remove ``member``; whether it was there."""
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.order.remove((old, member))
        return True

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        """``member``'s 0-based rank, lowest score first; None if absent."""
        score = self.scores.get(member)
        if score is None:
            return None
        rank: int = self.order.index((score, member))
        return rank

    def by_rank(self, start: int, stop: int) -> list[tuple[bytes, float]]:
        """``(member, score)`` for ranks ``start`` to ``stop`` inclusive (non-negative, clamped)."""
        return [(m, s) for s, m in self.order.islice(start, stop + 1)]

    @staticmethod
    def from_pairs(pairs: list[tuple[bytes, float]]) -> ZSet:
        """A sorted set of ``(member, score)`` pairs (distinct members)."""
        z = ZSet()
        z.scores = dict(pairs)
        z.order = SortedList((s, m) for m, s in z.scores.items())
        return z
