"""LCS: the longest common subsequence of two strings, as Redis 7.0 computes and reports it.

Redis fills the whole ``(len(a) + 1) x (len(b) + 1)`` table of prefix LCS
lengths, then walks back from the corner to spell the subsequence and the
matching ranges.  The walk's choices (which way to step when the two
neighbours tie) decide which of several equally long subsequences comes out,
so this module walks exactly as Redis does.  The table is kept compactly:
one bit-parallel row per character of the shorter string (Hyyrö's
bit-vector LCS), a Python int whose bit ``k`` is 0 where the row's LCS
length grows at column ``k``; an entry of the table is then a popcount.
Filling it costs ``O(len(a) * len(b) / 64)`` machine-word operations.
"""

from __future__ import annotations

from typing import Any

from .parsing import SYNTAX_ERROR, parse_int

__all__ = ["LcsOptions", "LcsTable", "lcs_reply"]

TRANSIENT_LIMIT = 512 * 1024 * 1024
"""Redis's proto-max-bulk-len: the largest table (4 bytes an entry) LCS may allocate."""


class LcsTable:
    """The prefix LCS lengths of ``a`` and ``b``: :meth:`length` ``(i, j)`` for ``a[:i]``, ``b[:j]``."""

    __slots__ = ("_cols", "_rows", "_swapped")

    def __init__(self, a: bytes, b: bytes) -> None:
        # The rows run over the shorter string: fewer (Python-level) steps.
        self._swapped = len(a) > len(b)
        rows_of, cols_of = (b, a) if self._swapped else (a, b)
        masks: dict[int, int] = {}
        for k, ch in enumerate(cols_of):
            masks[ch] = masks.get(ch, 0) | (1 << k)
        full = (1 << len(cols_of)) - 1
        v = full
        rows = [v]
        for ch in rows_of:
            u = v & masks.get(ch, 0)
            v = ((v + u) | (v - u)) & full
            rows.append(v)
        self._rows = rows
        self._cols = len(cols_of)

    def length(self, i: int, j: int) -> int:
        """The LCS length of ``a[:i]`` and ``b[:j]``."""
        if self._swapped:
            i, j = j, i
        return j - (self._rows[i] & ((1 << j) - 1)).bit_count()


class LcsOptions:
    """LCS's options: ``LEN``, ``IDX``, ``MINMATCHLEN n``, ``WITHMATCHLEN``."""

    __slots__ = ("idx", "length", "min_match_len", "with_match_len")

    def __init__(self, length: bool, idx: bool, min_match_len: int, with_match_len: bool) -> None:
        self.length = length
        self.idx = idx
        self.min_match_len = min_match_len
        self.with_match_len = with_match_len

    @staticmethod
    def parse(args: list[bytes]) -> LcsOptions:
        """The options after the two keys, with Redis's errors (checked after the keys' types)."""
        length = idx = with_match_len = False
        min_match_len = 0
        i = 3
        while i < len(args):
            opt = args[i].lower()
            if opt == b"idx":
                idx = True
            elif opt == b"len":
                length = True
            elif opt == b"withmatchlen":
                with_match_len = True
            elif opt == b"minmatchlen" and i + 1 < len(args):
                min_match_len = max(parse_int(args[i + 1]), 0)
                i += 1
            else:
                raise ValueError(SYNTAX_ERROR)
            i += 1
        if idx and length:
            raise ValueError("If you want both the length and indexes, please just use IDX.")
        return LcsOptions(length, idx, min_match_len, with_match_len)


def lcs_reply(a: bytes, b: bytes, opts: LcsOptions) -> Any:
    """LCS's reply for the strings ``a`` and ``b``: the subsequence, its length, or the ranges."""
    if (len(a) + 1) * (len(b) + 1) * 4 > TRANSIENT_LIMIT:
        raise ValueError("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    table = LcsTable(a, b)
    total = table.length(len(a), len(b))
    if opts.length and not opts.idx:
        return total
    subsequence, matches = _walk_back(a, b, table, total, opts)
    if not opts.idx:
        return subsequence
    return {b"matches": matches, b"len": total}  # a flat array in RESP2, a map in RESP3


def _walk_back(
    a: bytes, b: bytes, table: LcsTable, total: int, opts: LcsOptions
) -> tuple[bytes, list[Any]]:
    """Redis's walk from the table's corner: the subsequence and the matching ranges."""
    out = bytearray(total)
    matches: list[Any] = []
    left = total
    i, j = len(a), len(b)
    start: tuple[int, int] | None = None  # (a's, b's) start of the open range
    end = (0, 0)
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[left - 1] = a[i - 1]
            if start is None:
                start = end = (i - 1, j - 1)
            elif start == (i, j):  # extends the open range backwards
                start = (i - 1, j - 1)
            else:
                emit = True
            if 0 in start:
                emit = True
            left, i, j = left - 1, i - 1, j - 1
        else:
            if table.length(i - 1, j) > table.length(i, j - 1):
                i -= 1
            else:
                j -= 1
            emit = start is not None
        if emit and start is not None:
            _emit(matches, start, end, opts)
            start = None
    return bytes(out), matches


def _emit(
    matches: list[Any], start: tuple[int, int], end: tuple[int, int], opts: LcsOptions
) -> None:
    match_len = end[0] - start[0] + 1
    if match_len >= opts.min_match_len:
        entry: list[Any] = [[start[0], end[0]], [start[1], end[1]]]
        if opts.with_match_len:
            entry.append(match_len)
        matches.append(entry)
