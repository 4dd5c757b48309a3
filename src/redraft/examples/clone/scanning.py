"""SCAN's options and the node-local key lists behind its cursors.

``SCAN 0`` takes a list of the keys as they are now, kept on this node, and
the cursors it returns walk that list.  Guarantees: every key present from
the start of a scan to its end is returned exactly once; a key added or
removed meanwhile may or may not be.  Cursors belong to the node that issued
them, and at most :data:`MAX_OPEN_SCANS` scans stay open (the least recently
used is dropped); a cursor this node does not know is answered ``ERR invalid
cursor`` rather than silently skipping keys.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redraft.examples.globmatch import compile_glob

from .parsing import SYNTAX_ERROR, parse_int

__all__ = ["MAX_OPEN_SCANS", "SCAN_POS_BITS", "SCAN_POS_MASK", "ScanLists", "ScanOptions"]

MAX_OPEN_SCANS = 16
"""How many SCAN cursors a node keeps alive at once."""

SCAN_POS_BITS = 32
SCAN_POS_MASK = (1 << SCAN_POS_BITS) - 1
_SCAN_ID_SPACE = 1 << 31
_TYPE_NAMES = frozenset((b"string", b"list", b"set", b"zset", b"hash", b"stream"))


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
                if arg.lower() not in _TYPE_NAMES:
                    raise ValueError(f"unknown type name '{arg.decode('utf-8', 'replace')}'")
                type_name = arg.lower().decode()
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
