"""The clone's snapshots: captured cheaply on the event loop, written in a worker thread.

Format 2 (:data:`SNAPSHOT_MAGIC`, ``RDCLONE\\x02``) is the magic, then a
msgpack stream:

1. a header ``[key count, WATCH base serial, WATCH exact, WATCH entry count]``;
2. arrays of about 64 KiB each holding ``key, value, expiry`` triples laid
   end to end: the strings, then the keys of the other types, each in the
   keyspace's order.  A string's value is its bytes; any other type is an
   array whose first item is its tag: :data:`LIST_TAG` ``[1, element, ...]``
   (head first), :data:`HASH_TAG` ``[2, field, value, ...]``,
   :data:`SET_TAG` ``[3, member, ...]``, :data:`ZSET_TAG` ``[4, member,
   score, ...]`` (lowest first; scores are doubles).  The expiry is nil
   for a key without one;
3. arrays of WATCH log entries (see :mod:`.keyspace`), oldest first: a key
   (bin), ``[key]`` for an expired key's removal, nil for a flush.

Format 1 (``RDCLONE\\x01``, strings only, no WATCH log: the magic, the key
count, then the triples) still loads; the WATCH log then starts unanchored
(every WATCH answers "changed" until the first EXEC with a WATCH starts it
afresh on every node alike).

The capture copies the dictionary of strings and that of expiries (bytes
are immutable, so a shallow copy is a consistent picture), freezes every
other value into a tuple (lists change in place, and the writer must not
see that) and takes the WATCH log as a tuple.  The writer then works on
those alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import IO, Any

import msgpack

from .keyspace import WATCH_LOG_CAP, Container, Touch
from .zset import ZSet

__all__ = [
    "HASH_TAG",
    "LIST_TAG",
    "SET_TAG",
    "SNAPSHOT_MAGIC",
    "SNAPSHOT_MAGIC_V1",
    "ZSET_TAG",
    "Capture",
    "Picture",
    "read_snapshot",
]

SNAPSHOT_MAGIC = b"RDCLONE\x02"
"""The first bytes of a snapshot; the last one is the format version."""

SNAPSHOT_MAGIC_V1 = b"RDCLONE\x01"
"""The magic of format 1 (strings only), which still loads."""

LIST_TAG = 1
"""The tag of a list value in a snapshot."""
HASH_TAG = 2
SET_TAG = 3
ZSET_TAG = 4

_CHUNK_BYTES = 1 << 16
_WATCH_CHUNK = 4096
_BYTES = frozenset((bytes,))
_INT_OR_NONE = frozenset((int, type(None)))

Frozen = tuple[Any, ...]
"""A captured value of a type other than string: its snapshot array (tag first), as a tuple."""


@dataclass(slots=True)
class Picture:
    """A whole keyspace, as a snapshot holds it (what :func:`read_snapshot` returns)."""

    data: dict[bytes, bytes]
    objects: dict[bytes, Container]
    expires: dict[bytes, int]
    watch_base: int
    watch_exact: bool
    watch_log: deque[Touch]


class Capture:
    """A keyspace captured by the clone's ``snapshot``, written later off the event loop."""

    __slots__ = ("_data", "_expires", "_objects", "_watch_base", "_watch_exact", "_watch_log")

    def __init__(
        self,
        data: dict[bytes, bytes],
        objects: dict[bytes, Frozen],
        expires: dict[bytes, int],
        watch_base: int,
        watch_exact: bool,
        watch_log: tuple[Touch, ...],
    ) -> None:
        self._data = data
        self._objects = objects
        self._expires = expires
        self._watch_base = watch_base
        self._watch_exact = watch_exact
        self._watch_log = watch_log

    @staticmethod
    def take(
        data: dict[bytes, bytes],
        objects: dict[bytes, Container],
        expires: dict[bytes, int],
        watch_base: int,
        watch_exact: bool,
        watch_log: deque[Touch],
    ) -> Capture:
        """Capture the state now (on the event loop): copies of what may change later."""
        frozen = {key: freeze(value) for key, value in objects.items()}
        return Capture(
            data.copy(), frozen, expires.copy(), watch_base, watch_exact, tuple(watch_log)
        )

    def write(self, wr: IO[bytes]) -> None:
        """Stream the captured state to ``wr``, one chunk of about 64 KiB at a time."""
        pack = msgpack.Packer(use_bin_type=True).pack
        expiry = self._expires.get
        wr.write(SNAPSHOT_MAGIC)
        count = len(self._data) + len(self._objects)
        wr.write(pack([count, self._watch_base, self._watch_exact, len(self._watch_log)]))
        chunk: list[Any] = []
        size = 0
        for key, value in self._data.items():
            chunk += (key, value, expiry(key))
            # The constant bounds the records per chunk even for empty strings.
            size += len(key) + len(value) + 16
            if size >= _CHUNK_BYTES:
                wr.write(pack(chunk))
                chunk = []
                size = 0
        for key, items in self._objects.items():
            chunk += (key, items, expiry(key))
            size += len(key) + sum(len(i) if type(i) is bytes else 8 for i in items) + 16
            size += 8 * len(items)
            if size >= _CHUNK_BYTES:
                wr.write(pack(chunk))
                chunk = []
                size = 0
        if chunk:
            wr.write(pack(chunk))
        log = self._watch_log
        for i in range(0, len(log), _WATCH_CHUNK):
            wr.write(pack([_pack_touch(t) for t in log[i : i + _WATCH_CHUNK]]))


def freeze(value: Container) -> Frozen:
    """A container as its snapshot array: a tuple, so later changes do not reach it."""
    if type(value) is deque:
        return (LIST_TAG, *value)
    if type(value) is dict:
        return (HASH_TAG, *(x for pair in value.items() for x in pair))
    if type(value) is set:
        # Sorted: set order follows the process's hash seed, which differs between nodes.
        return (SET_TAG, *sorted(value))
    if type(value) is ZSet:
        return (ZSET_TAG, *(x for pair in value for x in pair))
    raise TypeError(f"cannot snapshot a {type(value).__name__}")


def _pack_touch(entry: Touch) -> Any:
    return [entry[0]] if type(entry) is tuple else entry


def read_snapshot(rd: IO[bytes]) -> Picture:
    """Parse a snapshot of either format, checking its shape as it goes (ValueError if bad)."""
    magic = rd.read(len(SNAPSHOT_MAGIC))
    if magic not in (SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_V1):
        raise ValueError("not a redraft clone snapshot (bad magic)")
    # max_buffer_size=0 admits values up to 4 GiB; a chunk holds a few
    # thousand records, but one list may be long.
    unpacker = msgpack.Unpacker(
        rd,
        read_size=1 << 16,
        max_buffer_size=0,
        max_array_len=1 << 31,
        max_map_len=0,
        use_list=False,
    )
    read = _read_v1 if magic == SNAPSHOT_MAGIC_V1 else _read_v2
    try:
        picture = read(unpacker)
    except msgpack.OutOfData:
        raise ValueError("truncated clone snapshot") from None
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        return picture
    raise ValueError("corrupt clone snapshot: data after the last record")


def _read_v1(unpacker: msgpack.Unpacker) -> Picture:
    count = unpacker.unpack()
    if type(count) is not int or count < 0:
        raise ValueError("corrupt clone snapshot: bad key count")
    data: dict[bytes, bytes] = {}
    expires: dict[bytes, int] = {}
    loaded = 0
    while loaded < count:
        chunk = unpacker.unpack()
        if type(chunk) is not tuple or not chunk or len(chunk) % 3:
            raise ValueError("corrupt clone snapshot: bad chunk")
        keys, values, expiries = chunk[0::3], chunk[1::3], chunk[2::3]
        if not (
            set(map(type, keys)) <= _BYTES
            and set(map(type, values)) <= _BYTES
            and set(map(type, expiries)) <= _INT_OR_NONE
        ):
            raise ValueError("corrupt clone snapshot: a record has the wrong types")
        data.update(zip(keys, values, strict=True))
        for key, at in zip(keys, expiries, strict=True):
            if at is not None:
                expires[key] = at
        loaded += len(keys)
    if loaded != count or len(data) != count:
        raise ValueError("corrupt clone snapshot: the records do not match the key count")
    return Picture(data, {}, expires, 0, False, deque(maxlen=WATCH_LOG_CAP))


def _read_v2(unpacker: msgpack.Unpacker) -> Picture:
    header = unpacker.unpack()
    if not (
        type(header) is tuple
        and len(header) == 4
        and all(type(n) is int and n >= 0 for n in (header[0], header[1], header[3]))
        and type(header[2]) is bool
        and header[3] <= WATCH_LOG_CAP
    ):
        raise ValueError("corrupt clone snapshot: bad header")
    count, watch_base, watch_exact, watch_count = header
    data: dict[bytes, bytes] = {}
    objects: dict[bytes, Container] = {}
    expires: dict[bytes, int] = {}
    loaded = 0
    while loaded < count:
        chunk = unpacker.unpack()
        if type(chunk) is not tuple or not chunk or len(chunk) % 3:
            raise ValueError("corrupt clone snapshot: bad chunk")
        keys, values, expiries = chunk[0::3], chunk[1::3], chunk[2::3]
        if not (set(map(type, keys)) <= _BYTES and set(map(type, expiries)) <= _INT_OR_NONE):
            raise ValueError("corrupt clone snapshot: a record has the wrong types")
        if set(map(type, values)) <= _BYTES:  # strings only: the common case, at C speed
            data.update(zip(keys, values, strict=True))
        else:
            for key, value in zip(keys, values, strict=True):
                if type(value) is bytes:
                    data[key] = value
                else:
                    objects[key] = _container(value)
        for key, at in zip(keys, expiries, strict=True):
            if at is not None:
                expires[key] = at
        loaded += len(keys)
    if loaded != count or len(data) + len(objects) != count or not data.keys().isdisjoint(objects):
        raise ValueError("corrupt clone snapshot: the records do not match the key count")
    log: deque[Touch] = deque(maxlen=WATCH_LOG_CAP)
    while len(log) < watch_count:
        entries = unpacker.unpack()
        if type(entries) is not tuple or not entries or len(log) + len(entries) > watch_count:
            raise ValueError("corrupt clone snapshot: bad WATCH log")
        log.extend(map(_touch, entries))
    return Picture(data, objects, expires, watch_base, watch_exact, log)


def _container(raw: Any) -> Container:
    """A container from its snapshot array (ValueError if it is not a well-formed one)."""
    if type(raw) is not tuple or len(raw) < 2 or type(raw[0]) is not int:
        raise ValueError("corrupt clone snapshot: a value of an unknown kind")
    tag, items = raw[0], raw[1:]
    if tag == ZSET_TAG:
        return _zset(items)
    if not set(map(type, items)) <= _BYTES:
        raise ValueError("corrupt clone snapshot: a container holds something but bytes")
    if tag == LIST_TAG:
        return deque(items)
    if tag == HASH_TAG and len(items) % 2 == 0:
        fields = dict(zip(items[0::2], items[1::2], strict=True))
        if len(fields) == len(items) // 2:
            return fields
    if tag == SET_TAG:
        members = set(items)
        if len(members) == len(items):
            return members
    raise ValueError("corrupt clone snapshot: a value of an unknown kind")


def _zset(items: tuple[Any, ...]) -> ZSet:
    members, scores = items[0::2], items[1::2]
    if (
        len(items) % 2 == 0
        and set(map(type, members)) <= _BYTES
        and set(map(type, scores)) <= {float}
        and all(s == s for s in scores)  # no NaN
        and len(set(members)) == len(members)
    ):
        return ZSet.from_pairs(list(zip(members, scores, strict=True)))
    raise ValueError("corrupt clone snapshot: a bad sorted set")


def _touch(raw: Any) -> Touch:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw
    if type(raw) is tuple and len(raw) == 1 and type(raw[0]) is bytes:
        return (raw[0],)
    raise ValueError("corrupt clone snapshot: a WATCH log entry of an unknown kind")
