"""The sorted set: members with float scores, ordered by (score, member) as Redis orders them.

A dict maps each member to its score (ZSCORE, membership in O(1)); an
*order* keeps ``(score, member)`` entries sorted, so ranks and score or
lexicographic ranges cost O(log n + k).  The order is the C extension
``_zorder.Order`` (a counted B+-tree of doubles and member pointers, see
``_zorder.c``) when it was built, else :class:`PyOrder`: a plain Python list
of pairs kept sorted by bisection (:class:`SmallOrder`) up to
:data:`SMALL_ORDER` members and a ``sortedcontainers.SortedList`` past that
(the latter's instance costs about 400 bytes, twice what a one-member sorted
set costs without it, and inserts in a plain list of that size are as
quick).  Both answer the same calls (:class:`Order`); :data:`new_order` is the
one place that picks, and ``REDRAFT_PURE_PYTHON=1`` forces the Python one, as
it does the RESP codec's.  Scores are Python floats (IEEE doubles, as
Redis's); NaN never gets in (the commands refuse it, as Redis does, and the C
order refuses it too).

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
import os
import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import islice
from operator import index as as_index
from typing import Final, NamedTuple, Protocol, SupportsIndex

from sortedcontainers import SortedList

__all__ = [
    "LISTPACK_ENTRIES",
    "LISTPACK_VALUE",
    "SMALL_ORDER",
    "SPEEDUPS",
    "LexBound",
    "Order",
    "PyOrder",
    "SmallOrder",
    "ZSet",
    "new_order",
]

LISTPACK_ENTRIES = 128
"""Redis's zset-max-listpack-entries: a larger sorted set is a skip list."""

LISTPACK_VALUE = 64
"""Redis's zset-max-listpack-value: a sorted set with a longer member is a skip list."""

SMALL_ORDER = 1000
"""The most members a :class:`PyOrder` keeps in a :class:`SmallOrder` (SortedList's own
sublist size): one more turns it into a ``SortedList`` for good."""

_INF = math.inf

Pair = tuple[float, bytes]
"""``(score, member)``: the order's entries."""


class SmallOrder(list[Pair]):
    """A plain list of ``(score, member)`` pairs kept sorted: the SortedList methods
    :class:`PyOrder` calls, by bisection (see the module notes)."""

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


class Order(Protocol):
    """What a sorted set's order answers: ``(score, member)`` entries in Redis's order
    (by score, then by member's bytes), equal entries allowed.  Ranks are 0-based."""

    def __len__(self) -> int: ...

    def __getitem__(self, rank: int, /) -> Pair:
        """The entry of ``rank`` (negative: from the end)."""
        ...

    def __iter__(self) -> Iterator[Pair]: ...

    def put(self, score: float, member: bytes, /) -> None:
        """Insert an entry."""

    def drop(self, score: float, member: bytes, /) -> None:
        """Remove an entry; ValueError if it is not there."""

    def rank(self, score: float, member: bytes, /) -> int:
        """An entry's rank; ValueError if it is not there."""
        ...

    def bisect_pair(self, score: float, member: bytes, right: bool = False, /) -> int:
        """How many entries sort before ``(score, member)`` (``right``: not after it)."""
        ...

    def bisect_score(self, score: float, above: bool = False, /) -> int:
        """How many entries score below ``score`` (``above``: at most ``score``)."""
        ...

    def items(self, lo: int, hi: int, reverse: bool = False, /) -> list[tuple[bytes, float]]:
        """``(member, score)`` of the ranks ``[lo:hi]`` (a slice's bounds), highest first
        if ``reverse``."""
        ...

    def cut(self, lo: int, hi: int, /) -> list[bytes]:
        """Remove the ranks ``[lo:hi]`` (a slice's bounds); their members, lowest first."""
        ...

    def copy(self) -> Order: ...


class PyOrder:
    """The order in Python: a :class:`SmallOrder` up to :data:`SMALL_ORDER` entries, then a
    ``SortedList`` for good (see the module notes)."""

    __slots__ = ("_list",)

    def __init__(self, pairs: Iterable[Pair] = (), /) -> None:
        small = SmallOrder(sorted(pairs))
        self._list: SmallOrder | SortedList[Pair] = (
            small if len(small) <= SMALL_ORDER else SortedList(small)
        )

    @property
    def sorted(self) -> SmallOrder | SortedList[Pair]:
        """The list the entries are kept in."""
        return self._list

    def __len__(self) -> int:
        return len(self._list)

    def __getitem__(self, rank: int, /) -> Pair:
        return self._list[rank]

    def __iter__(self) -> Iterator[Pair]:
        return iter(self._list)

    def put(self, score: float, member: bytes, /) -> None:
        lst = self._list
        lst.add((score, member))
        if type(lst) is SmallOrder and len(lst) > SMALL_ORDER:
            self._list = SortedList(lst)

    def drop(self, score: float, member: bytes, /) -> None:
        self._list.remove((score, member))

    def rank(self, score: float, member: bytes, /) -> int:
        rank: int = self._list.index((score, member))
        return rank

    def bisect_pair(self, score: float, member: bytes, right: bool = False, /) -> int:
        lst = self._list
        return lst.bisect_right((score, member)) if right else lst.bisect_left((score, member))

    def bisect_score(self, score: float, above: bool = False, /) -> int:
        """A probe ``(x, b"")`` sorts before every ``(x, member)`` but the empty member's,
        and the next double up turns "at most x" into "below next(x)"."""
        if above:
            if score == _INF:
                return len(self._list)
            score = math.nextafter(score, _INF)
        return self._list.bisect_left((score, b""))

    def items(self, lo: int, hi: int, reverse: bool = False, /) -> list[tuple[bytes, float]]:
        return [(m, s) for s, m in self._list.islice(lo, hi, reverse=reverse)]

    def cut(self, lo: int, hi: int, /) -> list[bytes]:
        lst = self._list
        gone = lst[lo:hi]
        del lst[lo:hi]
        return [m for _, m in gone]

    def copy(self) -> PyOrder:
        c = PyOrder()
        c._list = self._list.copy()
        return c


class _NewOrder(Protocol):
    def __call__(self, pairs: Iterable[Pair] = (), /) -> Order: ...


def _c_order() -> _NewOrder | None:
    """The C order, unless it was not built or ``REDRAFT_PURE_PYTHON`` is set."""
    if os.environ.get("REDRAFT_PURE_PYTHON"):
        return None
    try:
        from ._zorder import Order as COrder
    except ImportError:  # built without a C compiler: the Python order serves alone
        return None
    return COrder


new_order: _NewOrder = _c_order() or PyOrder
"""A new order of the given pairs (in any order): the one place the kind is chosen."""

SPEEDUPS: Final = new_order is not PyOrder
"""Whether sorted sets keep their order in C (``_zorder``)."""


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
        self.order: Order = new_order()
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
            self.order.drop(old, member)
        elif len(member) > LISTPACK_VALUE:
            self._long += 1
        elif score == 0.0 and not self._long and len(scores) < LISTPACK_ENTRIES:
            score = 0.0
        scores[member] = score
        self.order.put(score, member)
        return old is None

    def discard(self, member: bytes) -> bool:
        """Remove ``member``; whether it was there."""
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.order.drop(old, member)
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
        return self.order.rank(score, member)

    def by_rank(self, start: int, stop: int) -> list[tuple[bytes, float]]:
        """``(member, score)`` for ranks ``start`` to ``stop`` inclusive (non-negative, clamped)."""
        return self.order.items(start, stop + 1)

    def items(self, lo: int, hi: int, reverse: bool = False) -> list[tuple[bytes, float]]:
        """``(member, score)`` for ranks ``lo`` to ``hi - 1`` (clamped), highest first if ``reverse``."""
        return self.order.items(lo, hi, reverse)

    # -- ranges, as index spans [i, j) of the order ------------------------------------

    def score_span(self, lo: float, lo_ex: bool, hi: float, hi_ex: bool) -> tuple[int, int]:
        """The ranks ``[i, j)`` of the members whose score lies between ``lo`` and ``hi``.

        ``lo_ex``/``hi_ex`` make an end exclusive.
        """
        order = self.order
        i = order.bisect_score(lo, lo_ex)
        j = order.bisect_score(hi, not hi_ex)
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
        else:
            i = order.bisect_pair(score, lo.value, lo.exclusive)
        if hi.kind:
            j = n if hi.kind > 0 else 0
        else:
            j = order.bisect_pair(score, hi.value, not hi.exclusive)
        return i, max(i, j)

    # -- removal of many -----------------------------------------------------------------

    def remove_span(self, i: int, j: int) -> int:
        """Remove the members of ranks ``[i, j)``; how many went."""
        gone = self.order.cut(i, j)
        scores = self.scores
        for member in gone:
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
        z.order = new_order([(s, m) for m, s in z.scores.items()])
        z._long = sum(1 for m in z.scores if len(m) > LISTPACK_VALUE)
        return z
