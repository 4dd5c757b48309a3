"""Generic keyspace commands, for keys of every type: DEL, UNLINK, EXISTS, TOUCH, TYPE,
EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (each with NX, XX, GT, LT), TTL, PTTL,
EXPIRETIME, PEXPIRETIME, PERSIST, RENAME, RENAMENX, COPY, RANDOMKEY, OBJECT, MEMORY,
KEYS, SCAN, DBSIZE, FLUSHDB and FLUSHALL.

RENAME and COPY move or copy a value of any type with its expiry; a copy is
a deep copy (the two keys never share a container).  Moving a list or a
sorted set onto a key calls ``m.key_ready`` for it, as Redis wakes the
clients blocked there.  RANDOMKEY is a read but draws from ``m.random()``;
OBJECT's answers are in :mod:`.key_object`, MEMORY's in :mod:`.key_memory`.

KEYS and SCAN list the strings in insertion order, then the keys of the
other types in theirs (Redis's order is its hash table's); DBSIZE, KEYS and SCAN leave out
expired keys the purge has not reached yet (finding them walks only the due
part of the expiry heap).  KEYS and SCAN show the general form of a read,
``m.apply`` with ``mutate=None`` and a ``respond``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import chain, islice
from typing import Any

from redraft.examples.globmatch import compile_glob
from redraft.machine import (
    OK,
    Applier,
    Command,
    Conn,
    ErrWrongNumberOfArguments,
    Read,
    Status,
)

from .key_memory import (
    DOCTOR_EMPTY,
    DOCTOR_FINE,
    MALLOC_STATS,
    MEMORY_HELP,
    STATS_REFUSED,
    check_memory,
    usage,
    usage_samples,
)
from .key_object import OBJECT_HELP, answer, check_object
from .keyspace import TYPE_NAMES, Handler, Keyspace, Value, expired_keys
from .parsing import (
    INT64_MAX,
    INT64_MIN,
    NS_PER_MS,
    NS_PER_S,
    SYNTAX_ERROR,
    parse_int,
)
from .scanning import SCAN_POS_BITS, ScanLists, ScanOptions, next_page, parse_scan_cursor
from .zset import ZSet

__all__ = ["KeyCommands"]

_NONE = Status("none")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class KeyCommands(Keyspace):
    """The keyspace commands, over the shared keyspace."""

    _scans: ScanLists  # node-local: set by the machine

    def _key_handlers(self) -> dict[bytes, Handler]:
        return {
            b"del": self._del,
            b"unlink": self._del,
            b"rename": self._rename,
            b"renamenx": self._rename,
            b"copy": self._copy,
            b"expire": self._expire,
            b"pexpire": self._expire,
            b"expireat": self._expire,
            b"pexpireat": self._expire,
            b"persist": self._persist,
            b"keys": self._keys,
            b"scan": self._scan,
            b"flushdb": self._flushdb,
            b"flushall": self._flushdb,
        }

    def _key_reads(self) -> dict[str, Read]:
        return {
            "exists": self._exists,
            "type": self._type,
            "ttl": self._ttl,
            "pttl": self._pttl,
            "expiretime": self._expiretime,
            "pexpiretime": self._pexpiretime,
            "dbsize": self._dbsize,
            "touch": self._exists,
            "randomkey": self._randomkey,
            "object": self._object,
            "memory": self._memory,
        }

    # -- existence -----------------------------------------------------------------------

    def _del(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        keys = args[1:]

        def op(now: int) -> int:
            removed = 0
            for key in keys:
                if self._live(key, now) is not None:
                    removed += 1
                    self._delete(key)
                else:
                    self._drop_if_expired(key, now)
            return removed

        return self._write(m, conn, cmd, op)

    def _exists(self, m: Applier, args: list[bytes]) -> int:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        return sum(self._read(m, key) is not None for key in args[1:])

    def _type(self, m: Applier, args: list[bytes]) -> Status:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        value = self._read(m, args[1])
        return _NONE if value is None else TYPE_NAMES[type(value)]

    # -- expiry ----------------------------------------------------------------------------

    def _expire(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT, with Redis 7's NX | XX | GT | LT."""
        args = cmd.args
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        name = cmd.name
        nx, xx, gt, lt = _parse_expire_flags(args[3:])
        amount = parse_int(args[2])
        invalid = f"invalid expire time in '{name}' command"
        in_seconds = name in ("expire", "expireat")
        if in_seconds and not -(-INT64_MIN // 1000) <= amount <= INT64_MAX // 1000:
            raise ValueError(invalid)
        offset = amount * (NS_PER_S if in_seconds else NS_PER_MS)
        if offset > INT64_MAX:
            raise ValueError(invalid)
        absolute = name.endswith("at")
        key = args[1]

        def op(now: int) -> int:
            at = offset if absolute else now + offset
            if at > INT64_MAX:
                raise ValueError(invalid)
            if self._live(key, now) is None:
                self._drop_if_expired(key, now)
                return 0
            current = self._expires.get(key)
            if (
                (nx and current is not None)
                or (xx and current is None)
                or (gt and (current is None or at <= current))
                or (lt and current is not None and at >= current)
            ):
                return 0
            if at <= now:
                self._delete(key)
            else:
                self._expire_at(key, at)
                self._touched.append(key)
            return 1

        return self._write(m, conn, cmd, op)

    def _ttl(self, m: Applier, args: list[bytes]) -> int:
        """TTL: seconds left, -2 for a missing key, -1 for one without an expiry."""
        ms = self._ms_left(m, args)
        # Rounded to the nearest second from the milliseconds, as Redis does.
        return ms if ms < 0 else (ms + 500) // 1000

    def _pttl(self, m: Applier, args: list[bytes]) -> int:
        """PTTL: milliseconds left, -2 for a missing key, -1 for one without an expiry."""
        return self._ms_left(m, args)

    def _ms_left(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        key = args[1]
        now = m.now_ns()
        if self._live(key, now) is None:
            return -2
        at = self._expires.get(key)
        if at is None:
            return -1
        # Round up so that a live key never shows 0 ms left.
        return -((now - at) // NS_PER_MS)

    def _persist(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        key = args[1]

        def op(now: int) -> int:
            if self._live(key, now) is None:
                self._drop_if_expired(key, now)
                return 0
            if not self._clear_expiry(key):
                return 0
            self._touched.append(key)
            return 1

        return self._write(m, conn, cmd, op)

    def _expiretime(self, m: Applier, args: list[bytes]) -> int:
        """EXPIRETIME: the absolute expiry in seconds (rounded), -2 missing, -1 without one."""
        ms = self._expiry_ms(m, args)
        return ms if ms < 0 else (ms + 500) // 1000

    def _pexpiretime(self, m: Applier, args: list[bytes]) -> int:
        """PEXPIRETIME: the absolute expiry in milliseconds, -2 missing, -1 without one."""
        return self._expiry_ms(m, args)

    def _expiry_ms(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        key = args[1]
        if self._read(m, key) is None:
            return -2
        at = self._expires.get(key)
        return -1 if at is None else at // NS_PER_MS

    # -- RENAME / COPY -----------------------------------------------------------------------

    def _rename(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """RENAME and RENAMENX: the value and its expiry move; both keys change for WATCH."""
        args = cmd.args
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        src, dst = args[1], args[2]
        nx = cmd.name == "renamenx"

        def op(now: int) -> Any:
            value = self._live(src, now)
            if value is None:
                raise ValueError("no such key")
            if src == dst:
                return 0 if nx else OK
            if self._live(dst, now) is not None:
                if nx:
                    return 0
                self._delete(dst)
            else:
                self._drop_if_expired(dst, now)
            at = self._expires.get(src)
            self._delete(src)
            self._place(m, dst, value, at)
            return 1 if nx else OK

        return self._write(m, conn, cmd, op)

    def _copy(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """COPY source destination [DB 0] [REPLACE]: a deep copy, with the source's expiry."""
        args = cmd.args
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        replace = _copy_replaces(args)
        src, dst = args[1], args[2]
        if src == dst:
            raise ValueError("source and destination objects are the same")

        def op(now: int) -> int:
            value = self._live(src, now)
            if value is None:
                self._drop_if_expired(src, now)
                return 0
            if self._live(dst, now) is not None:
                if not replace:
                    return 0
                self._delete(dst)
            else:
                self._drop_if_expired(dst, now)
            self._place(m, dst, _deep_copy(value), self._expires.get(src))
            return 1

        return self._write(m, conn, cmd, op)

    def _place(self, m: Applier, key: bytes, value: Value, at: int | None) -> None:
        """Store ``value`` (any type) at the free ``key``, with the expiry ``at``: a change."""
        if isinstance(value, bytes):
            self._data[key] = value
        else:
            self._objects[key] = value
            self._extras = True
            if type(value) is deque or type(value) is ZSet:
                m.key_ready(key)  # clients blocked on the key may pop now
        if at is not None:
            self._expire_at(key, at)
        self._touched.append(key)

    # -- RANDOMKEY / OBJECT ------------------------------------------------------------------

    def _randomkey(self, m: Applier, args: list[bytes]) -> bytes | None:
        """RANDOMKEY: a live key drawn with ``m.random()``, nil when there is none."""
        if len(args) != 1:
            raise ErrWrongNumberOfArguments()
        total = self._key_count()
        if not total:
            return None
        rng = m.random()
        expired = expired_keys(self._heap, self._expires, m.now_ns()) if self._heap else None
        if expired:
            live = [key for key in chain(self._data, self._objects) if key not in expired]
            return rng.choice(live) if live else None
        i = rng.randrange(total)
        if i < len(self._data):
            return next(islice(self._data, i, None))
        return next(islice(self._objects, i - len(self._data), None))

    def _object(self, m: Applier, args: list[bytes]) -> Any:
        """OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key, OBJECT HELP; see :mod:`.key_object`."""
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        sub = check_object(args)
        if sub == b"help":
            return OBJECT_HELP
        value = self._read(m, args[2])
        return None if value is None else answer(sub, value)

    def _memory(self, m: Applier, args: list[bytes]) -> Any:
        """MEMORY USAGE key [SAMPLES n], DOCTOR, MALLOC-STATS, PURGE, STATS, HELP; see
        :mod:`.key_memory`."""
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        sub = check_memory(args)
        if sub == b"usage":
            samples = usage_samples(args[3:])  # checked before the key, as Redis does
            value = self._read(m, args[2])
            return None if value is None else usage(args[2], value, samples)
        if sub == b"help":
            return MEMORY_HELP
        if sub == b"doctor":
            return DOCTOR_FINE if self._key_count() else DOCTOR_EMPTY
        if sub == b"malloc-stats":
            return MALLOC_STATS
        if sub == b"purge":
            return OK
        raise ValueError(STATS_REFUSED)

    # -- listing ---------------------------------------------------------------------------

    def _keys(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        pattern = args[1]
        # A lone '*' lists everything, even the empty key (as in Redis).
        match = None if pattern == b"*" else compile_glob(pattern)

        def respond(_: Any) -> list[bytes]:
            every = chain(self._data, self._objects)
            keys: Iterable[bytes] = every if match is None else filter(match, every)
            expired = expired_keys(self._heap, self._expires, m.now_ns()) if self._heap else None
            if expired:
                return [key for key in keys if key not in expired]
            return list(keys)

        return m.apply(conn, cmd, None, respond)

    def _scan(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]; see :mod:`.scanning`."""
        args = cmd.args
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        cursor = parse_scan_cursor(args[1])
        opts = ScanOptions.parse(args)

        def respond(_: Any) -> list[Any]:
            if cursor == 0:
                keys = [*self._data, *self._objects]
            else:
                keys = self._scans.get(cursor >> SCAN_POS_BITS)
            next_cursor, step = next_page(self._scans, keys, cursor, opts.count)
            return [next_cursor, self._scan_step(m, step, opts)]

        return m.apply(conn, cmd, None, respond)

    def _scan_step(self, m: Applier, keys: list[bytes], opts: ScanOptions) -> list[bytes]:
        """The keys of one SCAN step that are live and pass its MATCH and TYPE."""
        want = opts.type_name
        found = []
        for key in keys:
            value = self._read(m, key)
            if value is not None and (want is None or TYPE_NAMES[type(value)].text == want):
                found.append(key)
        if opts.match is not None:
            found = [key for key in found if opts.match(key)]
        return found

    def _dbsize(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 1:
            raise ErrWrongNumberOfArguments()
        if not self._heap:
            return self._key_count()
        return self._key_count() - len(expired_keys(self._heap, self._expires, m.now_ns()))

    def _flushdb(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """FLUSHDB and FLUSHALL [ASYNC | SYNC]: one database, so the same (and never lazy)."""
        args = cmd.args
        if len(args) > 2 or (len(args) == 2 and args[1].lower() not in (b"sync", b"async")):
            raise ValueError(SYNTAX_ERROR)

        def op(now: int) -> Status:
            self._clear()
            return OK

        return self._write(m, conn, cmd, op)


def _copy_replaces(args: list[bytes]) -> bool:
    """COPY's options: whether REPLACE is given (DB must name database 0, the only one)."""
    replace = False
    i = 3
    while i < len(args):
        opt = args[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(args):
            db = parse_int(args[i + 1])
            if not INT32_MIN <= db <= INT32_MAX:
                raise ValueError(
                    f"value is out of range, value must between {INT32_MIN} and {INT32_MAX}"
                )
            if db != 0:
                raise ValueError("ERR DB index is out of range")  # "DB" would pass as a code
            i += 1
        else:
            raise ValueError(SYNTAX_ERROR)
        i += 1
    return replace


def _deep_copy(value: Value) -> Value:
    """A copy of ``value`` that shares no container with it (strings are immutable)."""
    if type(value) is deque:
        return deque(value)
    if type(value) is dict:
        return dict(value)
    if type(value) is set:
        return set(value)
    if type(value) is ZSet:
        return ZSet.from_pairs(list(value))
    return value


def _parse_expire_flags(opts: list[bytes]) -> tuple[bool, bool, bool, bool]:
    """EXPIRE's NX, XX, GT and LT, with Redis's texts for bad combinations."""
    seen: set[bytes] = set()
    for opt in opts:
        name = opt.lower()
        if name not in (b"nx", b"xx", b"gt", b"lt"):
            raise ValueError(f"Unsupported option {opt.decode('utf-8', 'replace')}")
        seen.add(name)
    nx, xx, gt, lt = (flag in seen for flag in (b"nx", b"xx", b"gt", b"lt"))
    if nx and (xx or gt or lt):
        raise ValueError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise ValueError("ERR GT and LT options at the same time are not compatible")
    return nx, xx, gt, lt
