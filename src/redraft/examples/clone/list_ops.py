"""The list commands' argument rules and list algorithms, as plain functions.

:class:`~.lists.ListCommands` calls them: LPOS's options and search, LMPOP's
and BLMPOP's ``numkeys key ... LEFT|RIGHT [COUNT count]``, LINSERT's
BEFORE/AFTER, LREM's removal and LTRIM's trim, each with Redis 7.0's error
texts (read in Redis's order: every option before the key is looked at).
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from redraft.machine import ErrWrongNumberOfArguments

from .parsing import INT64_MIN, SYNTAX_ERROR, parse_count, parse_int, parse_side

__all__ = [
    "RANK_ZERO",
    "check_linsert",
    "check_lmpop",
    "check_lrem",
    "check_ltrim",
    "lpos",
    "parse_before",
    "parse_lpos",
    "parse_mpop",
    "remove_matches",
    "trim",
]

RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
COUNT_NEGATIVE = "ERR COUNT can't be negative"
MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
NUMKEYS_NOT_POSITIVE = "numkeys should be greater than 0"
COUNT_NOT_POSITIVE = "count should be greater than 0"

# -- LPOS ---------------------------------------------------------------------------


def _non_negative(raw: bytes, error: str) -> int:
    """COUNT's and MAXLEN's reading: any failure (not a number, negative) is ``error``."""
    try:
        return parse_count(raw)
    except ValueError:
        raise ValueError(error) from None


def parse_lpos(args: list[bytes]) -> tuple[int, int | None, int]:
    """LPOS key element [RANK rank] [COUNT num] [MAXLEN len]: ``(rank, count, maxlen)``.

    ``count`` is None without COUNT (the reply is then one index or nil).
    Options are read left to right, the last of a repeated one winning; the
    first bad one answers.
    """
    rank, count, maxlen = 1, None, 0
    j = 3
    while j < len(args):
        opt = args[j].lower()
        more = j + 1 < len(args)
        if opt == b"rank" and more:
            j += 1
            rank = parse_int(args[j])
            if rank == 0:
                raise ValueError(RANK_ZERO)
        elif opt == b"count" and more:
            j += 1
            count = _non_negative(args[j], COUNT_NEGATIVE)
        elif opt == b"maxlen" and more:
            j += 1
            maxlen = _non_negative(args[j], MAXLEN_NEGATIVE)
        else:
            raise ValueError(SYNTAX_ERROR)
        j += 1
    return rank, count, maxlen


def lpos(
    lst: deque[bytes], element: bytes, rank: int, count: int | None, maxlen: int
) -> int | list[int] | None:
    """LPOS's answer on a list: the index of the ``rank``-th match, or with a count a list.

    A negative rank counts matches from the tail (indexes stay from the
    head); MAXLEN bounds how many elements are compared (0: all); COUNT 0
    means every match.  RANK -9223372036854775808 is what Redis 7.0 makes of
    it: negating it leaves it negative, so every match from the tail
    qualifies and COUNT never stops the search.
    """
    forward = rank > 0
    unbounded = rank == INT64_MIN
    skip = 0 if unbounded else abs(rank) - 1
    seq = lst if forward else reversed(lst)
    window = islice(seq, maxlen) if maxlen else seq
    last = len(lst) - 1
    found: list[int] = []
    matches = 0
    for i, item in enumerate(window):
        if item != element:
            continue
        matches += 1
        if matches <= skip:
            continue
        at = i if forward else last - i
        if count is None:
            return at
        found.append(at)
        if count and len(found) >= count and not unbounded:
            break
    return None if count is None else found


# -- LMPOP, BLMPOP -----------------------------------------------------------------


def _positive(raw: bytes, error: str) -> int:
    """numkeys's and COUNT's reading: 1 or more, any failure is ``error``."""
    try:
        value = parse_int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(error)
    return value


def parse_mpop(args: list[bytes], at: int) -> tuple[list[bytes], bool, int]:
    """``numkeys key [key ...] LEFT|RIGHT [COUNT count]`` from ``args[at]``.

    Returns the keys, whether to pop from the left, and the count (1
    without COUNT).  COUNT may be given once.
    """
    numkeys = _positive(args[at], NUMKEYS_NOT_POSITIVE)
    where = at + 1 + numkeys
    if where >= len(args):
        raise ValueError(SYNTAX_ERROR)
    left = parse_side(args[where])
    count: int | None = None
    j = where + 1
    while j < len(args):
        if count is None and args[j].lower() == b"count" and j + 1 < len(args):
            j += 1
            count = _positive(args[j], COUNT_NOT_POSITIVE)
        else:
            raise ValueError(SYNTAX_ERROR)
        j += 1
    return args[at + 1 : where], left, 1 if count is None else count


def check_lmpop(args: list[bytes]) -> None:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count], refused before the log."""
    if len(args) < 4:
        raise ErrWrongNumberOfArguments()
    parse_mpop(args, 1)


# -- LINSERT, LREM, LTRIM ----------------------------------------------------------------


def parse_before(raw: bytes) -> bool:
    """LINSERT's BEFORE (True) or AFTER (False), in any case."""
    where = raw.lower()
    if where == b"before":
        return True
    if where == b"after":
        return False
    raise ValueError(SYNTAX_ERROR)


def check_linsert(args: list[bytes]) -> None:
    if len(args) != 5:
        raise ErrWrongNumberOfArguments()
    parse_before(args[2])


def check_lrem(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
    parse_int(args[2])


def check_ltrim(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
    parse_int(args[2])
    parse_int(args[3])


def remove_matches(lst: deque[bytes], count: int, element: bytes) -> int:
    """LREM's effect: remove up to ``|count|`` elements equal to ``element`` (0: all).

    From the head for a positive count, from the tail for a negative one.
    Returns how many were removed; the list is changed in place.
    """
    if element not in lst:
        return 0
    limit = abs(count)
    if count == 0 or limit >= len(lst):
        kept = [item for item in lst if item != element]
        removed = len(lst) - len(kept)
    else:
        kept = []
        removed = 0
        for item in lst if count > 0 else reversed(lst):
            if removed < limit and item == element:
                removed += 1
            else:
                kept.append(item)
        if count < 0:
            kept.reverse()
    lst.clear()
    lst.extend(kept)
    return removed


def trim(lst: deque[bytes], start: int, stop: int) -> None:
    """LTRIM's effect: keep ``lst[start..stop]`` (inclusive, Redis's negative indexes)."""
    size = len(lst)
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    start = max(start, 0)
    if start > stop or start >= size:
        lst.clear()
        return
    stop = min(stop, size - 1)
    drop_left, drop_right = start, size - 1 - stop
    if drop_left + drop_right <= stop - start + 1:
        for _ in range(drop_left):
            lst.popleft()
        for _ in range(drop_right):
            lst.pop()
    else:
        kept = list(islice(lst, start, stop + 1))
        lst.clear()
        lst.extend(kept)
