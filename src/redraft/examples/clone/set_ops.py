"""The pieces of the set commands that need no keyspace: Redis 7.0's member order, its
argument parsing for SSCAN, SRANDMEMBER and SINTERCARD, and the set reply type.

Member order.  Redis 7.0 keeps a set as an *intset* (a sorted array of
integers) while every member is an integer in its canonical form and there
are at most :data:`MAX_INTSET_ENTRIES` of them, and as a hash table
otherwise (7.0 has no listpack sets; those came with 7.2).  An intset
answers in numeric order; a hash table in an order that depends on a hash
seed Redis draws at start, so no two redis-servers agree on it.  The clone
answers every set that would be an intset in numeric order (:func:`ordered`)
and any other set in Python's own set order: byte for byte where Redis's
order is deterministic, a permutation where it is not.

One difference is left: Redis never turns a hash table back into an intset,
so a set that once held a non-integer (or more than 512 members) answers in
hash order even after it holds only integers again; the clone sorts it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator

from .parsing import INT64_MAX, INT64_MIN, SYNTAX_ERROR, parse_int

__all__ = [
    "MAX_INTSET_ENTRIES",
    "SetReply",
    "intersection_size",
    "is_int_member",
    "matching",
    "ordered",
    "parse_sintercard",
    "parse_srandmember_count",
    "set_reply",
]

MAX_INTSET_ENTRIES = 512
"""Redis's default set-max-intset-entries: a larger set of integers is a hash table."""

_LONG_MAX = INT64_MAX


def is_int_member(member: bytes) -> bool:
    """Whether Redis stores ``member`` in an intset: a 64-bit integer in canonical form.

    As Redis's ``string2ll``: an optional ``-``, no ``+``, no spaces, no
    leading zeros, and ``-0`` is not an integer.
    """
    digits = member[1:] if member[:1] == b"-" else member
    if not digits.isdigit() or len(member) > 20:  # bytes.isdigit(): ASCII, not empty
        return False
    if digits[0] == 0x30:
        return member == b"0"
    return INT64_MIN <= int(member) <= INT64_MAX


def ordered(members: Collection[bytes]) -> list[bytes]:
    """The members in the order Redis 7.0 answers them where that order is fixed.

    Numeric order for what Redis keeps as an intset (at most 512 members,
    every one an integer); Python's set order for the rest, which Redis keeps
    in a hash table (whose order is a random seed's).
    """
    if len(members) <= MAX_INTSET_ENTRIES and all(map(is_int_member, members)):
        return sorted(members, key=int)
    return list(members)


class SetReply(frozenset[bytes]):
    """A set reply (RESP3 ``~``, RESP2 an array) whose members come out in a given order.

    The RESP encoders iterate a set reply, so iterating in a chosen order is
    all it takes to answer an intset's members in numeric order.
    """

    __slots__ = ("_order",)

    _order: list[bytes]

    def __new__(cls, members: list[bytes]) -> SetReply:
        reply = super().__new__(cls, members)
        reply._order = members
        return reply

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._order)

    def __repr__(self) -> str:
        return f"SetReply({self._order!r})"


def set_reply(members: Collection[bytes]) -> SetReply:
    """A set reply holding ``members`` in Redis's order (see :func:`ordered`)."""
    return SetReply(ordered(members))


def parse_srandmember_count(raw: bytes) -> int:
    """SRANDMEMBER's count: a long between -LONG_MAX and LONG_MAX."""
    value = parse_int(raw)
    if value < -_LONG_MAX:
        raise ValueError(f"value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}")
    return value


def parse_sintercard(args: list[bytes]) -> tuple[list[bytes], int]:
    """``SINTERCARD numkeys key [key ...] [LIMIT limit]`` (the whole command): keys and limit.

    A limit of 0 means none.  Errors and their order are Redis's.
    """
    try:
        numkeys = parse_int(args[1])
    except ValueError:
        numkeys = 0
    if numkeys < 1:
        raise ValueError("numkeys should be greater than 0")
    if numkeys > len(args) - 2:
        raise ValueError("Number of keys can't be greater than number of args")
    limit = 0
    i = 2 + numkeys
    while i < len(args):
        if args[i].lower() == b"limit" and i + 1 < len(args):
            try:
                limit = parse_int(args[i + 1])
            except ValueError:
                limit = -1
            if limit < 0:
                raise ValueError("ERR LIMIT can't be negative")  # 'LIMIT' is no error code
            i += 2
        else:
            raise ValueError(SYNTAX_ERROR)
    return args[2 : 2 + numkeys], limit


def intersection_size(sets: list[set[bytes]], limit: int) -> int:
    """How many members every one of ``sets`` holds, counting no further than ``limit`` (0: all)."""
    sets = sorted(sets, key=len)
    first, rest = sets[0], sets[1:]
    if not limit:
        return len(first.intersection(*rest))
    found = 0
    for member in first:
        if all(member in other for other in rest):
            found += 1
            if found >= limit:
                break
    return found


def matching(members: Iterable[bytes], match: Callable[[bytes], bool] | None) -> list[bytes]:
    """The members that pass SSCAN's MATCH (all of them without one)."""
    return list(members) if match is None else [m for m in members if match(m)]
