"""SCAN's options and the node-local key lists behind its cursors, and the one walk
HSCAN, SSCAN and ZSCAN share.

``SCAN 0`` takes a list of the keys as they are now, kept on this node, and
the cursors it returns walk that list.  Guarantees: every key present from
the start of a scan to its end is returned exactly once; a key added or
removed meanwhile may or may not be.  Cursors belong to the node that issued
them, and at most :data:`MAX_OPEN_SCANS` scans stay open (the least recently
used is dropped); a cursor this node does not know is answered ``ERR invalid
cursor`` rather than silently skipping keys.

HSCAN, SSCAN and ZSCAN (:func:`member_scan`) answer a container Redis would
keep compact (a listpack or an intset), or one of at most COUNT elements,
whole with cursor 0, as Redis does; a larger one is walked the same way,
from a list ``[key, element, ...]`` taken on this node at cursor 0,
leaving out the elements removed since.  A walk goes on to its end even if
the container shrinks meanwhile to a size answered whole, as Redis's hash
table, which never turns back into a listpack or an intset, does.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redraft.examples.globmatch import compile_glob

from .parsing import SYNTAX_ERROR, parse_int

__all__ = [
    "MAX_OPEN_SCANS",
    "SCAN_POS_BITS",
    "SCAN_POS_MASK",
    "ScanLists",
    "ScanOptions",
    "member_scan",
    "next_page",
    "parse_member_scan_options",
    "parse_scan_cursor",
]

MAX_OPEN_SCANS = 16
"""How many SCAN cursors a node keeps alive at once."""

SCAN_POS_BITS = 32
SCAN_POS_MASK = (1 << SCAN_POS_BITS) - 1
_SCAN_ID_SPACE = 1 << 31


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """``SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]``, parsed."""

    count: int
    match: Callable[[bytes], bool] | None
    type_name: str | None  # lower case (string, list, hash, set, zset, stream); None: all

    @staticmethod
    def parse(args: list[bytes]) -> ScanOptions:
        count = 10
        match = None
        type_name = None
        i = 2
        while i < len(args):
            opt = args[i].lower()
            if i + 1 >= len(args):
                raise ValueError(SYNTAX_ERROR)
            arg = args[i + 1]
            if opt == b"count":
                count = parse_int(arg)
                if count < 1:
                    raise ValueError(SYNTAX_ERROR)
            elif opt == b"match":
                match = None if arg == b"*" else compile_glob(arg)
            elif opt == b"type":
                # An unknown name matches no key (Redis 7.0; 7.2 made it an error).
                type_name = arg.lower().decode("utf-8", "replace")
            else:
                raise ValueError(SYNTAX_ERROR)
            i += 2
        return ScanOptions(count, match, type_name)


class ScanLists:
    """The key lists behind this node's open SCAN cursors, least recently used first."""

    def __init__(self) -> None:
        self._lists: OrderedDict[int, list[bytes]] = OrderedDict()
        # A random first id keeps a cursor from a previous run of the node
        # from landing in an unrelated list.
        self._last_id = secrets.randbelow(_SCAN_ID_SPACE)

    def open(self, keys: list[bytes]) -> int:
        self._last_id = self._last_id % (_SCAN_ID_SPACE - 1) + 1
        self._lists[self._last_id] = keys
        while len(self._lists) > MAX_OPEN_SCANS:
            self._lists.popitem(last=False)
        return self._last_id

    def get(self, scan_id: int) -> list[bytes]:
        keys = self._lists.get(scan_id)
        if keys is None:
            raise ValueError("invalid cursor")
        self._lists.move_to_end(scan_id)
        return keys

    def close(self, scan_id: int) -> None:
        self._lists.pop(scan_id, None)

    def clear(self) -> None:
        self._lists.clear()

    def walk_of(self, key: bytes, cursor: int) -> list[bytes] | None:
        """The list ``[key, element, ...]`` of the walk over ``key`` that ``cursor`` continues,
        if this node has it."""
        walk = self._lists.get(cursor >> SCAN_POS_BITS)
        if walk is None or walk[0] != key:
            return None
        self._lists.move_to_end(cursor >> SCAN_POS_BITS)
        return walk


def next_page(
    scans: ScanLists, listed: list[bytes], cursor: int, count: int, start: int = 0
) -> tuple[bytes, list[bytes]]:
    """One step of a walk over ``listed`` (its entries from ``start`` on): the cursor to
    answer and the step's entries.  Cursor 0 starts a walk, kept in ``scans`` once it
    needs more than one step; the last step forgets it."""
    scan_id, pos = cursor >> SCAN_POS_BITS, cursor & SCAN_POS_MASK
    end = pos + count
    page = listed[start + pos : start + end]
    if start + end >= len(listed):
        scans.close(scan_id)
        return b"0", page
    if scan_id == 0:
        scan_id = scans.open(listed)
    return b"%d" % (scan_id << SCAN_POS_BITS | end), page


def member_scan(
    scans: ScanLists,
    key: bytes,
    cursor: int,
    count: int,
    elements: Iterable[bytes],
    whole: Callable[[], list[Any] | None],
    found: Callable[[list[bytes]], list[Any]],
) -> list[Any]:
    """HSCAN's, SSCAN's, ZSCAN's reply for the container at ``key`` (see the module notes).

    ``elements`` lists its fields or members (taken at cursor 0), ``whole()``
    is the whole reply for a container Redis answers whole (None for one it
    walks), and ``found(names)`` the reply for one step's names: those still
    in the container that pass MATCH, with their values or scores.
    """
    walk = scans.walk_of(key, cursor) if cursor else None
    if walk is None:
        reply = whole()
        if reply is not None:
            return [b"0", reply]
        if cursor:
            raise ValueError("invalid cursor")
        walk = [key, *elements]
    next_cursor, names = next_page(scans, walk, cursor, count, 1)
    return [next_cursor, found(names)]


_ULONG_MAX = (1 << 64) - 1
_C_SPACE = frozenset(b" \t\n\v\f\r")


def parse_scan_cursor(raw: bytes) -> int:
    """A scan cursor as Redis reads it: C's ``strtoul`` in base 10, over the whole argument.

    So a sign is allowed (``-1`` wraps to 2**64-1), an empty cursor is 0,
    and a leading space, trailing garbage or more than 64 bits is "invalid
    cursor".  The argument ends at a NUL byte, as C strings do.
    """
    if raw[:1] and raw[0] in _C_SPACE:
        raise ValueError("invalid cursor")
    text = raw.split(b"\0", 1)[0]
    if not text:
        return 0
    digits = text[1:] if text[:1] in (b"-", b"+") else text
    if not digits.isdigit():
        raise ValueError("invalid cursor")
    value = int(digits)
    if value > _ULONG_MAX:
        raise ValueError("invalid cursor")
    return (-value) & _ULONG_MAX if text[:1] == b"-" else value


def parse_member_scan_options(args: list[bytes]) -> tuple[int, Callable[[bytes], bool] | None]:
    """HSCAN's, SSCAN's ``[MATCH pattern] [COUNT count]`` (``args`` after the cursor).

    Redis reads these only once the key is known to hold the right type,
    so a missing key answers an empty scan whatever the options say; TYPE
    is SCAN's alone (a syntax error here), as is NOVALUES before 7.4.
    """
    count = 10
    match: Callable[[bytes], bool] | None = None
    i = 0
    while i < len(args):
        opt = args[i].lower()
        if opt == b"count" and len(args) - i >= 2:
            count = parse_int(args[i + 1])
            if count < 1:
                raise ValueError(SYNTAX_ERROR)
        elif opt == b"match" and len(args) - i >= 2:
            pattern = args[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
        else:
            raise ValueError(SYNTAX_ERROR)
        i += 2
    return count, match
