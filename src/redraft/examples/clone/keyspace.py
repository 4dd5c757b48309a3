"""The clone's replicated state: typed values with expiry, the expiry heap, the WATCH log.

Every command family (:mod:`.strings`, :mod:`.lists`, :mod:`.keys`) is a
mixin over :class:`Keyspace`, so the hot commands reach the dictionaries as
plain attributes.

Values.  A key holds ``bytes`` (a string), a ``collections.deque`` of
bytes (a list), a ``dict`` of bytes to bytes (a hash), a ``set`` of bytes
(a set) or a :class:`~.zset.ZSet` (a sorted set).  A container is never
empty: the command that takes its last element deletes the key.  A command on a
key of another type answers ``WRONGTYPE``.  :data:`TYPE_NAMES` maps the
Python type of a value to the name ``TYPE`` answers.  Strings live in
``_data`` and every other type in ``_objects``, two dictionaries that never
share a key: GET, the hottest read, then finds a string with one lookup and
no type check (it looks in ``_objects`` only on a miss).

Expiry.  ``_expires`` holds the absolute expiry (ns since the epoch) of the
keys that have one; ``_heap`` holds ``(expiry, key)`` for each, plus stale
pairs left by overwrites (a pair is live only while ``_expires[key]`` equals
its expiry).  A key whose expiry is at or before "now" is gone for every
command; :meth:`Keyspace._purge` deletes due keys, earliest first.

WATCH.  Every write appends what it did to ``_touched``, the WATCH log: the
key for a change (a write, a deletion, an emptied list), ``(key,)`` for the
deletion of a key that had expired, ``None`` for FLUSHDB/FLUSHALL.  Entry
``i`` of the log has the serial ``_touched_base + i``; a WATCH token is the
serial of the next entry and whether the key was live then
(:meth:`Keyspace.watch`).  At EXEC, :meth:`Keyspace.watch_changed` looks for
the key in the log after its token, which is Redis's rule exactly: a change
of the key (even to the same value), its deletion, its expiry since the
WATCH, a flush of a key that existed; not the removal of a key that had
expired already at WATCH time.  The log keeps at least
:data:`WATCH_WINDOW` entries: writes trim it back to that size once it holds
twice as many (at the same place in the log on every node, so it stays
replicated state, and it is in every snapshot); a token older than the
window answers "changed", erring as Redis's contract allows.  The hottest
write, a plain SET, only appends (no length check); the tick trims when
plain SETs alone have grown the log, and a hard cap
(:data:`WATCH_LOG_CAP`, a bounded deque) keeps memory bounded even with
ticks turned off: past it positions are no longer known, and every token
issued before answers "changed" until the next trim starts afresh.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any, TypeVar

from redraft.machine import Applier, Command, Conn, Status

from .parsing import WRONGTYPE
from .zset import ZSet

__all__ = [
    "ACTIVE_EXPIRE_KEYS",
    "PURGE_BATCH",
    "TYPE_NAMES",
    "WATCH_ANCHOR_BASE",
    "WATCH_LOG_CAP",
    "WATCH_TRIM_AT",
    "WATCH_WINDOW",
    "Container",
    "Handler",
    "Keyspace",
    "Touch",
    "Value",
    "expired_keys",
]

PURGE_BATCH = 16
"""The most expired keys one write deletes besides the keys it touches."""

ACTIVE_EXPIRE_KEYS = 1000
"""The most expired keys one tick deletes (at the default 100 ms interval,
10,000 a second; a larger backlog takes the next ticks)."""

WATCH_WINDOW = 1 << 16
"""The WATCH log keeps at least this many of the latest writes."""

WATCH_LOG_CAP = 4 * WATCH_WINDOW
"""The most entries the WATCH log ever holds (a hard bound on its memory)."""

WATCH_TRIM_AT = 2 * WATCH_WINDOW
"""Writes and ticks trim the WATCH log back to :data:`WATCH_WINDOW` entries past this."""

WATCH_ANCHOR_BASE = 1 << 62
"""The serial the WATCH log restarts from after a snapshot without one (format 1)."""

Container = deque[bytes] | dict[bytes, bytes] | set[bytes] | ZSet
"""A value of a type other than string: a list, a hash, a set or a sorted set."""

Value = bytes | Container
"""What a key holds."""

Touch = bytes | tuple[bytes] | None
"""A WATCH log entry: a changed key, ``(key,)`` for an expired key removed, None for a flush."""

TYPE_NAMES: dict[type, Status] = {
    bytes: Status("string"),
    deque: Status("list"),
    dict: Status("hash"),
    set: Status("set"),
    ZSet: Status("zset"),
}
"""TYPE's answer for each kind of value."""

Handler = Callable[[Applier, Conn | None, Command], Any]

C = TypeVar("C", deque[bytes], dict[bytes, bytes], set[bytes], ZSet)

wall_clock: Callable[[], int] = time.time_ns
"""This node's clock, for WATCH (whether the key is live when watched); tests replace it."""


class Keyspace:
    """The state every command family works on, and the helpers they share."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}  # the strings
        self._objects: dict[bytes, Container] = {}  # every other type
        self._expires: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []
        # Whether some key has an expiry or a type other than string, so
        # that the plain SET checks one flag: set by the only two places
        # that add either (_expire_at, _new_list), cleared by _after_write.
        self._extras = False
        self._touched: deque[Touch] = deque(maxlen=WATCH_LOG_CAP)
        self._touched_base = 0
        # False after restoring a snapshot without a WATCH log (format 1):
        # serials then count from this node's restore point, which differs
        # between nodes, until the first EXEC with a WATCH starts afresh.
        self._watch_exact = True
        # The Applier of the latest applied write: while an entry is applied
        # its now_ns() is that entry's time stamp (what watch_changed needs).
        self._clock: Applier | None = None

    # -- reading -------------------------------------------------------------------

    def _live(self, key: bytes, now: int) -> Value | None:
        """The value of ``key`` unless it is missing or expired at ``now``."""
        value: Value | None = self._data.get(key)
        if value is None and self._objects:
            value = self._objects.get(key)
        if value is not None and self._expires:
            at = self._expires.get(key)
            if at is not None and at <= now:
                return None
        return value

    def _read(self, m: Applier, key: bytes) -> Value | None:
        """:meth:`_live` for reads: the clock is consulted only for keys with an expiry."""
        value: Value | None = self._data.get(key)
        if value is None and self._objects:
            value = self._objects.get(key)
        if value is not None and self._expires:
            at = self._expires.get(key)
            if at is not None and at <= m.now_ns():
                return None
        return value

    def _string_at(self, key: bytes, now: int) -> bytes | None:
        """The live string at ``key``, None if there is none; WRONGTYPE for another type."""
        value = self._live(key, now)
        if value is None or type(value) is bytes:
            return value
        raise ValueError(WRONGTYPE)

    def _list_at(self, key: bytes, now: int) -> deque[bytes] | None:
        """The live list at ``key``, None if there is none; WRONGTYPE for another type."""
        return self._object_at(key, now, deque)

    def _read_list(self, m: Applier, key: bytes) -> deque[bytes] | None:
        """:meth:`_list_at` for reads."""
        value = self._read(m, key)
        if value is None or type(value) is deque:
            return value
        raise ValueError(WRONGTYPE)

    def _object_at(self, key: bytes, now: int, kind: type[C]) -> C | None:
        """The live value of type ``kind`` at ``key`` (for writes), None if there is none;
        WRONGTYPE for another type.

        :meth:`_live` inlined, ``_objects`` first: every write of a container
        type comes here, and mostly finds its container.
        """
        value: Value | None = self._objects.get(key)
        if value is None:
            value = self._data.get(key)
            if value is None:
                return None
        if self._expires:
            at = self._expires.get(key)
            if at is not None and at <= now:
                return None
        if type(value) is kind:
            return value
        raise ValueError(WRONGTYPE)

    def _waited_object(
        self, m: Applier, keys: list[bytes], now: int, kind: type[C]
    ) -> tuple[bytes, C] | None:
        """Where a blocking pop of ``kind`` takes from: the key and its value, or None.

        On a first try, the first of ``keys`` that holds one (WRONGTYPE at
        the first key of another type, Redis's scan).  Woken
        (:meth:`~redraft.machine.Applier.woken_by`), the keys made ready come
        first, in the order they were, then ``keys`` in order, and a key of
        another type is passed over: Redis 7.0 serves a waiter from each key
        made ready in turn, when it holds the waiter's type, and never
        answers it with an error.
        """
        woken = list(m.woken_by())
        if not woken:
            for key in keys:
                value = self._object_at(key, now, kind)
                if value is not None:
                    return key, value
            return None
        for key in woken + keys:
            found = self._live(key, now)
            if type(found) is kind:
                return key, found
        return None

    def _read_object(self, m: Applier, key: bytes, kind: type[C]) -> C | None:
        """:meth:`_object_at` for reads."""
        value = self._read(m, key)
        if value is None or type(value) is kind:
            return value
        raise ValueError(WRONGTYPE)

    # -- writing -------------------------------------------------------------------

    def _new_object(self, key: bytes, now: int, value: C) -> C:
        """Store the empty container ``value`` at ``key`` (missing or expired), to fill at once.

        The caller fills it in the same write (a container is never left
        empty) and appends ``key`` to the WATCH log, as every change does.
        """
        self._drop_if_expired(key, now)
        self._objects[key] = value
        self._extras = True
        return value

    def _put(self, key: bytes, value: bytes) -> None:
        """Store a string at ``key`` (replacing a value of any type): a change WATCH sees.

        The expiry is left as it is: the caller keeps or clears it.
        """
        self._data[key] = value
        if self._objects:
            self._objects.pop(key, None)
        self._touched.append(key)

    def _new_list(self, key: bytes, now: int) -> deque[bytes]:
        """An empty list stored at ``key`` (missing or expired), to push into at once."""
        self._drop_if_expired(key, now)
        lst: deque[bytes] = deque()
        self._objects[key] = lst
        self._extras = True
        return lst

    def _remove(self, key: bytes) -> None:
        if self._data.pop(key, None) is not None or self._objects.pop(key, None) is not None:
            self._expires.pop(key, None)

    def _key_count(self) -> int:
        return len(self._data) + len(self._objects)

    def _delete(self, key: bytes) -> None:
        """Delete a live key: a change WATCH sees."""
        self._remove(key)
        self._touched.append(key)

    def _drop_if_expired(self, key: bytes, now: int) -> None:
        """Delete ``key`` if it is stored but expired (not a change for a WATCH made since)."""
        at = self._expires.get(key)
        if at is not None and at <= now:
            self._remove(key)
            self._touched.append((key,))

    def _expire_at(self, key: bytes, at: int) -> None:
        if self._expires.get(key) == at:
            return
        self._expires[key] = at
        self._extras = True
        heap = self._heap
        heapq.heappush(heap, (at, key))
        if len(heap) > 2 * len(self._expires) + 1024:
            # Mostly stale pairs: rebuild so overwritten expiries cannot pile up.
            self._heap = [(t, k) for k, t in self._expires.items()]
            heapq.heapify(self._heap)

    def _clear_expiry(self, key: bytes) -> bool:
        return self._expires.pop(key, None) is not None

    def _purge(self, now: int, limit: int = PURGE_BATCH) -> None:
        """Delete up to ``limit`` expired keys, earliest (expiry, key) first.

        Stale heap pairs are skipped without counting, so the keys removed
        depend only on the keyspace, not on the heap's history: a node
        restored from a snapshot purges exactly what the others do.
        """
        heap = self._heap
        if not heap or heap[0][0] > now:
            return
        expires, data, touched = self._expires, self._data, self._touched
        removed = 0
        while heap and heap[0][0] <= now and removed < limit:
            at, key = heapq.heappop(heap)
            if expires.get(key) == at:
                del expires[key]
                if data.pop(key, None) is None:
                    del self._objects[key]
                touched.append((key,))
                removed += 1

    def _store_or_delete(self, m: Applier, dst: bytes, result: C, now: int, ready: bool) -> int:
        """Store a ``*STORE`` command's ``result`` at ``dst`` or delete ``dst`` if it is empty.

        The new value replaces a key of any type and drops its expiry, as
        Redis's ``setKey`` does; ``ready`` wakes clients blocked on ``dst``
        (a sorted set's pops can block, a set's cannot).  Returns the size
        stored, the reply of every such command.
        """
        if result:
            self._drop_if_expired(dst, now)
            if self._data:
                self._data.pop(dst, None)
            self._clear_expiry(dst)
            self._new_object(dst, now, result)
            self._touched.append(dst)
            if ready:
                m.key_ready(dst)
        elif self._live(dst, now) is not None:
            self._delete(dst)
        else:
            self._drop_if_expired(dst, now)
        self._after_write(m, now)
        return len(result)

    def _after_write(self, m: Applier, now: int) -> None:
        """What every applied write but the plain SET ends with: purge, trim the WATCH log."""
        self._clock = m
        heap = self._heap
        if heap and heap[0][0] <= now:  # _purge's own test, spared a call on most writes
            self._purge(now)
        if self._extras and not (self._expires or self._objects):
            self._extras = False
        if len(self._touched) > WATCH_TRIM_AT:
            self._trim_watch_log()

    def _write(self, m: Applier, conn: Conn | None, cmd: Command, op: Callable[[int], Any]) -> Any:
        """Log a write whose effect is ``op(now)``; its result is the reply."""

        def mutate() -> Any:
            now = m.now_ns()
            result = op(now)
            self._after_write(m, now)
            return result

        return m.apply(conn, cmd, mutate, None)

    def _clear(self) -> None:
        """FLUSHDB: drop every key (a flush, for the WATCH log)."""
        self._data = {}
        self._objects = {}
        self._expires = {}
        self._heap = []
        self._extras = False
        self._touched.append(None)

    # -- WATCH ---------------------------------------------------------------------

    def watch(self, key: bytes) -> Any:
        """WATCH's token for ``key``: ``[serial of the next write, whether the key is live]``."""
        log = self._touched
        serial = -1 if len(log) == log.maxlen else self._touched_base + len(log)
        now = wall_clock()
        clock = self._clock
        if clock is not None:
            now = max(now, clock.now_ns())
        return [serial, self._live(key, now) is not None]

    def watch_changed(self, key: bytes, token: Any) -> bool:
        """Whether EXEC must abort for ``key`` watched with ``token`` (see the module notes)."""
        if not (
            isinstance(token, list | tuple)
            and len(token) == 2
            and type(token[0]) is int
            and type(token[1]) is bool
        ):
            return True
        if not self._watch_exact:
            self._anchor_watch_log()
            return True
        serial, live = token
        log = self._touched
        start = serial - self._touched_base
        if start < 0 or start > len(log) or len(log) == log.maxlen:
            return True
        if _logged(log, key, start):
            return True
        if not live:
            return False  # absent or expired when watched: only a write counts
        if _logged(log, (key,), start) or _logged(log, None, start):
            return True
        at = self._expires.get(key)
        if at is None:
            return False
        clock = self._clock
        return clock is None or at <= clock.now_ns()

    def _trim_watch_log(self) -> None:
        """Keep the latest :data:`WATCH_WINDOW` entries (deterministic: called from writes)."""
        log = self._touched
        if len(log) == log.maxlen:
            # Entries may have fallen off the front: positions are unknown.
            self._touched_base += len(log)
            self._touched = deque(maxlen=WATCH_LOG_CAP)
            return
        drop = len(log) - WATCH_WINDOW
        if drop > 0:
            self._touched_base += drop
            self._touched = deque(islice(log, drop, None), maxlen=WATCH_LOG_CAP)

    def _anchor_watch_log(self) -> None:
        """Start the WATCH log afresh at a serial every node agrees on."""
        self._touched = deque(maxlen=WATCH_LOG_CAP)
        self._touched_base = WATCH_ANCHOR_BASE
        self._watch_exact = True


def _logged(log: deque[Touch], entry: Touch, start: int) -> bool:
    """Whether ``entry`` is in ``log`` at ``start`` or later."""
    try:
        log.index(entry, start)
    except ValueError:
        return False
    return True


def expired_keys(heap: list[tuple[int, bytes]], expires: dict[bytes, int], now: int) -> set[bytes]:
    """Keys still stored although expired at ``now`` (those not purged yet).

    Walks only the part of the expiry heap at or before ``now``, so it costs
    about the number of such keys, not the size of the keyspace.
    """
    found: set[bytes] = set()
    stack = [0]
    while stack:
        i = stack.pop()
        if i < len(heap) and heap[i][0] <= now:
            at, key = heap[i]
            if expires.get(key) == at:
                found.add(key)
            stack += (2 * i + 1, 2 * i + 2)
    return found
