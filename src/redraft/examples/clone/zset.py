"""The sorted set: members with float scores, ordered by (score, member) as Redis orders them.

A dict maps each member to its score (ZSCORE, membership in O(1)); a sorted
list of ``(score, member)`` pairs keeps the order, so ranks and score or
lexicographic ranges cost O(log n + k).  The list is a plain Python list
kept sorted by bisection (:class:`SmallOrder`) up to :data:`SMALL_ORDER`
members and a ``sortedcontainers.SortedList`` past that: the latter's
instance costs about 400 bytes, twice what a one-member sorted set costs
without it, and inserts in a plain list of that size are as quick.  Scores
are Python floats (IEEE doubles, as Redis's); NaN never gets in (the commands
refuse it, as Redis does).

Encoding.  Redis 7.0 keeps a sorted set of at most :data:`LISTPACK_ENTRIES`
members, none longer than :data:`LISTPACK_VALUE` bytes, as a *listpack*
(scores written out as text) and a larger one as a skip list.  Two things
clients can see depend on it: a listpack cannot hold a negative zero (a
score of ``-0`` is stored as ``0``), and ZSCAN answers a listpack whole.
:attr:`ZSet.compact` says whether Redis would hold these members as a
listpack; it is a function of the members alone (Redis never turns a skip
list back into a listpack as it shrinks, so a set that was once large
differs there, in the sign of a zero score written later and in how ZSCAN
pages it), which keeps it the same on every node, a restored one too.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import islice
from operator import index as as_index
from typing import NamedTuple, SupportsIndex

from sortedcontainers import SortedList

__all__ = ["LISTPACK_ENTRIES", "LISTPACK_VALUE", "SMALL_ORDER", "LexBound", "SmallOrder", "ZSet"]

LISTPACK_ENTRIES = 128
"""Redis's zset-max-listpack-entries: a larger sorted set is a skip list."""

LISTPACK_VALUE = 64
"""Redis's zset-max-listpack-value: a sorted set with a longer member is a skip list."""

SMALL_ORDER = 1000
"""The most members a sorted set keeps in a :class:`SmallOrder` (SortedList's own sublist
size): one more turns it into a ``SortedList`` for good."""

_INF = math.inf

Pair = tuple[float, bytes]
"""``(score, member)``: the order's entries."""


class SmallOrder(list[Pair]):
    """A plain list of ``(score, member)`` pairs kept sorted: the SortedList methods
    :class:`ZSet` calls, by bisection (see the module notes)."""

    __slots__ = ()

    def add(self, value: Pair) -> None:
        insort(self, value)

    def remove(self, value: Pair, /) -> None:
        i = bisect_left(self, value)
        if i == len(self) or self[i] != value:
            raise ValueError(f"{value!r} not in list")
        del self[i]

    def index(
        self, value: Pair, start: SupportsIndex = 0, stop: SupportsIndex = sys.maxsize, /
    ) -> int:
        i = bisect_left(self, value, as_index(start), min(as_index(stop), len(self)))
        if i == len(self) or self[i] != value:
            raise ValueError(f"{value!r} is not in list")
        return i

    def bisect_left(self, value: Pair) -> int:
        return bisect_left(self, value)

    def bisect_right(self, value: Pair) -> int:
        return bisect_right(self, value)

    def islice(
        self, start: int | None = None, stop: int | None = None, reverse: bool = False
    ) -> Iterator[Pair]:
        """The entries of ranks ``start`` to ``stop - 1``, as SortedList.islice answers them."""
        lo, hi, _ = slice(start, stop).indices(len(self))
        if lo >= hi:
            return iter(())
        if reverse:
            return islice(reversed(self), len(self) - hi, len(self) - lo)
        return islice(self, lo, hi)

    def copy(self) -> SmallOrder:
        return SmallOrder(self)


Order = SortedList[Pair] | SmallOrder


def _order(pairs: Iterable[Pair]) -> Order:
    """A sorted order of ``pairs``, of the kind their number calls for."""
    small = SmallOrder(sorted(pairs))
    return small if len(small) <= SMALL_ORDER else SortedList(small)


class LexBound(NamedTuple):
    """One end of a lexicographic range: ``-`` (``kind`` -1), ``+`` (1) or a member (0)."""

    kind: int
    value: bytes = b""
    exclusive: bool = True

    def at_least(self, member: bytes) -> bool:
        """Whether ``member`` is above this lower end."""
        if self.kind:
            return self.kind < 0
        return member > self.value if self.exclusive else member >= self.value

    def at_most(self, member: bytes) -> bool:
        """Whether ``member`` is below this upper end."""
        if self.kind:
            return self.kind > 0
        return member < self.value if self.exclusive else member <= self.value


def lex_range_empty(lo: LexBound, hi: LexBound) -> bool:
    """Whether no member can lie in ``[lo, hi]`` (Redis's test before it looks at any)."""
    a, b = (lo.kind, lo.value), (hi.kind, hi.value)
    return a > b or (a == b and (lo.exclusive or hi.exclusive))


class ZSet:
    """A sorted set (see the module notes)."""

    __slots__ = ("_long", "order", "scores")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order: Order = SmallOrder()
        """``(score, member)`` pairs in Redis's order."""
        self._long = 0  # members longer than LISTPACK_VALUE

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[tuple[bytes, float]]:
        """``(member, score)`` pairs, lowest first."""
        for score, member in self.order:
            yield member, score

    @property
    def uniform(self) -> bool:
        """Whether every member has the same score (members then sort by bytes alone)."""
        order = self.order
        return not order or order[0][0] == order[-1][0]

    @property
    def compact(self) -> bool:
        """Whether Redis would hold these members as a listpack (see the module notes)."""
        return len(self.scores) <= LISTPACK_ENTRIES and not self._long

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score; whether it is new.

        A zero score is stored as ``+0`` when the set is compact once
        ``member`` is in, as a listpack stores it.
        """
        scores = self.scores
        old = scores.get(member)
        if old is not None:
            if old == score:
                return False
            if score == 0.0 and not self._long and len(scores) <= LISTPACK_ENTRIES:
                score = 0.0
            self.order.remove((old, member))
        elif len(member) > LISTPACK_VALUE:
            self._long += 1
        elif score == 0.0 and not self._long and len(scores) < LISTPACK_ENTRIES:
            score = 0.0
        scores[member] = score
        order = self.order
        order.add((score, member))
        if len(order) > SMALL_ORDER and type(order) is SmallOrder:
            self.order = SortedList(order)
        return old is None

    def discard(self, member: bytes) -> bool:
        """Remove ``member``; whether it was there."""
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.order.remove((old, member))
        if len(member) > LISTPACK_VALUE:
            self._long -= 1
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

    def items(self, lo: int, hi: int, reverse: bool = False) -> list[tuple[bytes, float]]:
        """``(member, score)`` for ranks ``lo`` to ``hi - 1`` (clamped), highest first if ``reverse``."""
        return [(m, s) for s, m in self.order.islice(lo, hi, reverse=reverse)]

    # -- ranges, as index spans [i, j) of the order ------------------------------------

    def score_span(self, lo: float, lo_ex: bool, hi: float, hi_ex: bool) -> tuple[int, int]:
        """The ranks ``[i, j)`` of the members whose score lies between ``lo`` and ``hi``.

        ``lo_ex``/``hi_ex`` make an end exclusive.  A probe ``(x, b"")`` sorts
        before every ``(x, member)`` but the empty member's, and the next
        double up turns "above x" into "at least next(x)".
        """
        order = self.order
        n = len(order)
        if lo_ex:
            i = n if lo == _INF else order.bisect_left((math.nextafter(lo, _INF), b""))
        else:
            i = order.bisect_left((lo, b""))
        if hi_ex:
            j = order.bisect_left((hi, b""))
        else:
            j = n if hi == _INF else order.bisect_left((math.nextafter(hi, _INF), b""))
        return i, max(i, j)

    def lex_span(self, lo: LexBound, hi: LexBound, reverse: bool = False) -> tuple[int, int]:
        """The ranks ``[i, j)`` a lexicographic range takes, as Redis walks it.

        When every score is equal (the use Redis documents) the members are in
        byte order and the ends are found by bisection.  With mixed scores
        Redis's answer is a walk: from the first member (the last, in
        ``reverse``) inside the range's near end, on while members stay
        inside its far end; this does the same walk, in O(n).
        """
        order = self.order
        n = len(order)
        if not n or lex_range_empty(lo, hi):
            return 0, 0
        if self.uniform:
            return self._lex_bisect(order[0][0], lo, hi)
        if not (lo.at_least(order[-1][1]) and hi.at_most(order[0][1])):
            return 0, 0
        if reverse:
            j = n
            while j and not hi.at_most(order[j - 1][1]):
                j -= 1
            i = j
            while i and lo.at_least(order[i - 1][1]):
                i -= 1
            return i, j
        i = 0
        while i < n and not lo.at_least(order[i][1]):
            i += 1
        j = i
        while j < n and hi.at_most(order[j][1]):
            j += 1
        return i, j

    def _lex_bisect(self, score: float, lo: LexBound, hi: LexBound) -> tuple[int, int]:
        order = self.order
        n = len(order)
        if lo.kind:
            i = 0 if lo.kind < 0 else n
        elif lo.exclusive:
            i = order.bisect_right((score, lo.value))
        else:
            i = order.bisect_left((score, lo.value))
        if hi.kind:
            j = n if hi.kind > 0 else 0
        elif hi.exclusive:
            j = order.bisect_left((score, hi.value))
        else:
            j = order.bisect_right((score, hi.value))
        return i, max(i, j)

    # -- removal of many -----------------------------------------------------------------

    def remove_span(self, i: int, j: int) -> int:
        """Remove the members of ranks ``[i, j)``; how many went."""
        order = self.order
        gone = order[i:j]
        if not gone:
            return 0
        del order[i:j]
        scores = self.scores
        for _, member in gone:
            del scores[member]
            if len(member) > LISTPACK_VALUE:
                self._long -= 1
        return len(gone)

    def pop(self, count: int, highest: bool) -> list[tuple[bytes, float]]:
        """Remove and return up to ``count`` members from the low end (or the high end)."""
        n = len(self.order)
        count = min(count, n)
        if highest:
            taken = self.items(n - count, n, reverse=True)
            self.remove_span(n - count, n)
        else:
            taken = self.items(0, count)
            self.remove_span(0, count)
        return taken

    # -- building ------------------------------------------------------------------------

    def compacted(self) -> ZSet:
        """This set, its zero scores made ``+0`` if it is compact (Redis's conversion to a
        listpack, which a ``*STORE`` command's result goes through)."""
        if self.compact and any(
            s == 0.0 and math.copysign(1.0, s) < 0 for s in self.scores.values()
        ):
            return ZSet.from_pairs([(m, 0.0 if s == 0.0 else s) for m, s in self.scores.items()])
        return self

    def copy(self) -> ZSet:
        """An independent copy."""
        z = ZSet()
        z.scores = dict(self.scores)
        z.order = self.order.copy()
        z._long = self._long
        return z

    @staticmethod
    def from_pairs(pairs: list[tuple[bytes, float]]) -> ZSet:
        """A sorted set of ``(member, score)`` pairs (distinct members), scores as given."""
        z = ZSet()
        z.scores = dict(pairs)
        z.order = _order((s, m) for m, s in z.scores.items())
        z._long = sum(1 for m in z.scores if len(m) > LISTPACK_VALUE)
        return z
