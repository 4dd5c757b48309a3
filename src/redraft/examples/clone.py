"""A Redis clone: the flagship redraft machine.

It keeps one database of string keys and speaks the common string and
keyspace commands with Redis's replies and error texts: GET, SET (EX, PX,
EXAT, PXAT, NX, XX, GET, KEEPTTL), DEL, EXISTS, MGET, MSET, INCR, INCRBY,
DECR, DECRBY, APPEND, STRLEN, GETSET, SETNX, EXPIRE, PEXPIRE, EXPIREAT,
PEXPIREAT (each with NX, XX, GT, LT), TTL, PTTL, PERSIST, TYPE, KEYS, SCAN,
DBSIZE, FLUSHDB and FLUSHALL, and the ``Keyspace`` section of INFO.

How a redraft machine is written, as this one shows:

* ``command`` checks the arguments first and raises for anything malformed,
  so a bad request never reaches the log.
* A write passes ``mutate``: it runs once per node when the entry is applied,
  reads the time only through ``m.now_ns()`` (the leader's stamp) and leaves
  the state untouched when it raises.  Its return value is the reply.  SET,
  the hottest write, is declared in :meth:`Clone.writes` instead: a check
  run before the log and a function applied on every node, the fast way.
* A read looks at the state and never changes it.  The plain ones (GET,
  MGET, EXISTS, ...) are declared in :meth:`Clone.reads`, functions of the
  arguments that redraft calls at the configured consistency, which is
  the fast way; KEYS and SCAN show the general form, ``m.apply`` with
  ``mutate=None`` and a ``respond``.

Expiry.  A key carries an absolute expiry in nanoseconds since the epoch,
computed in ``mutate`` from the entry's time stamp, so every node agrees on
it.  A key whose expiry is at or before "now" is gone for every command;
reads skip it, writes that touch it delete it first.  Expired keys leave
memory without waiting for a client: the machine defines redraft's
replicated tick (:meth:`Clone.tick`), which deletes up to
:data:`ACTIVE_EXPIRE_KEYS` expired keys per tick, the earliest expiries
first, at the tick entry's time, and asks for the next tick
(:meth:`Clone.wants_tick`) only while some key is due, so an idle cluster
logs nothing.  It is Redis's active expiry without the sampling: the
expiry heap finds the due keys directly, and a backlog larger than one
tick's bound is worked off tick after tick.  Every write also deletes up to
:data:`PURGE_BATCH` expired keys the same way.  Every node does the same at
the same log position, so their states stay identical.  Expiry times are
int64 nanoseconds (up to the year 2262); a later one is refused as an
invalid expire time, as Redis refuses times past its int64 milliseconds.

INFO.  :meth:`Clone.info` gives the ``Keyspace`` section as Redis prints it:
``db0:keys=N,expires=M,avg_ttl=0`` counting the keys stored (expired ones
not deleted yet included, as Redis counts them), and no line when there are
none.

Listing.  KEYS and SCAN list keys in insertion order; DBSIZE, KEYS and SCAN
leave out expired keys the purge has not reached yet (finding them walks only
the due part of the expiry heap).

SCAN.  ``SCAN 0`` takes a list of the keys as they are now, kept on this
node, and the cursors it returns walk that list.  Guarantees: every key
present from the start of a scan to its end is returned exactly once; a key
added or removed meanwhile may or may not be.  Cursors belong to the node
that issued them, and at most :data:`MAX_OPEN_SCANS` scans stay open (the
least recently used is dropped); a cursor this node does not know is
answered ``ERR invalid cursor`` rather than silently skipping keys.

Snapshots are two-phase: :meth:`Clone.snapshot` copies the two dicts (values
are immutable bytes, so a shallow copy is a consistent picture) and the
returned capture writes them later, in a worker thread, in a compact binary
form: the magic ``RDCLONE\\x01``, then a msgpack stream: the key count,
then arrays of about 64 KiB each holding ``key, value, expiry`` triples laid
end to end (the expiry is nil for a key without one).
"""

from __future__ import annotations

import heapq
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

import msgpack

from redraft.examples.globmatch import compile_glob
from redraft.machine import (
    OK,
    Applier,
    Command,
    Conn,
    ErrUnknownCommand,
    ErrWrongNumberOfArguments,
    Machine,
    Read,
    Status,
    Write,
)

__all__ = ["ACTIVE_EXPIRE_KEYS", "MAX_OPEN_SCANS", "PURGE_BATCH", "SNAPSHOT_MAGIC", "Clone"]

PURGE_BATCH = 16
"""The most expired keys one write deletes besides the keys it touches."""

ACTIVE_EXPIRE_KEYS = 1000
"""The most expired keys one tick deletes (at the default 100 ms interval,
10,000 a second; a larger backlog takes the next ticks)."""

MAX_OPEN_SCANS = 16
"""How many SCAN cursors a node keeps alive at once."""

SNAPSHOT_MAGIC = b"RDCLONE\x01"
"""The first bytes of a snapshot; the last one is the format version."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_STRING_LEN = 512 * 1024 * 1024  # Redis's default proto-max-bulk-len

SYNTAX_ERROR = "syntax error"
NOT_AN_INTEGER = "value is not an integer or out of range"
OVERFLOW = "increment or decrement would overflow"

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000
_SET_EXPIRY_UNITS = {  # option -> (nanoseconds per unit, absolute time?)
    b"ex": (_NS_PER_S, False),
    b"px": (_NS_PER_MS, False),
    b"exat": (_NS_PER_S, True),
    b"pxat": (_NS_PER_MS, True),
}
_TYPE_NAMES = frozenset((b"string", b"list", b"set", b"zset", b"hash", b"stream"))
_STRING = Status("string")
_NONE = Status("none")
_SNAPSHOT_CHUNK_BYTES = 1 << 16
_BYTES = frozenset((bytes,))
_INT_OR_NONE = frozenset((int, type(None)))
_SCAN_POS_BITS = 32
_SCAN_POS_MASK = (1 << _SCAN_POS_BITS) - 1
_SCAN_ID_SPACE = 1 << 31

Handler = Callable[[Applier, Conn | None, Command], Any]


class Clone(Machine):
    """An in-memory Redis keyspace of strings, replicated by redraft."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._expires: dict[bytes, int] = {}
        # (expiry, key) for every key in _expires, plus stale pairs left by
        # overwrites; a pair is live only while _expires[key] == expiry.
        self._heap: list[tuple[int, bytes]] = []
        self._scans = _ScanLists()
        handlers: dict[bytes, Handler] = {
            b"del": self._del,
            b"mset": self._mset,
            b"incr": self._incr,
            b"incrby": self._incrby,
            b"decr": self._decr,
            b"decrby": self._decrby,
            b"append": self._append,
            b"getset": self._getset,
            b"setnx": self._setnx,
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
        # Upper-case twins spare a .lower() on the requests most clients send.
        self._handlers = handlers | {name.upper(): h for name, h in handlers.items()}

    # -- the Machine interface -------------------------------------------------

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """Dispatch one command to its handler."""
        args = cmd.args
        if not args:
            raise ErrUnknownCommand()
        handler = self._handlers.get(args[0]) or self._handlers.get(args[0].lower())
        if handler is None:
            raise ErrUnknownCommand()
        return handler(m, conn, cmd)

    def reads(self) -> dict[str, Read]:
        """The commands that only read, served without :meth:`command`."""
        return {
            "get": self._get,
            "mget": self._mget,
            "strlen": self._strlen,
            "exists": self._exists,
            "type": self._type,
            "ttl": self._ttl,
            "pttl": self._pttl,
            "dbsize": self._dbsize,
        }

    def writes(self) -> dict[str, Write]:
        """The writes applied without :meth:`command`: SET, the hottest."""
        return {"set": Write(self._set, _check_set)}

    def snapshot(self, wr: IO[bytes]) -> _Capture:
        """Capture the keyspace now; the returned object writes it later."""
        return _Capture(self._data.copy(), self._expires.copy())

    def restore(self, rd: IO[bytes]) -> None:
        """Replace the whole keyspace with a snapshot; on a bad snapshot keep the old one."""
        data, expires = _read_snapshot(rd)
        self._data = data
        self._expires = expires
        self._heap = [(at, key) for key, at in expires.items()]
        heapq.heapify(self._heap)
        self._scans.clear()

    def tick(self, m: Applier) -> None:
        """Active expiry, on every node at the tick's place in the log: delete due keys."""
        self._purge(m.now_ns(), ACTIVE_EXPIRE_KEYS)

    def wants_tick(self, now_ns: int) -> bool:
        """A tick only while some expiry is due (the earliest may be a stale pair, cleared then)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now_ns

    def info(self) -> dict[str, dict[str, str]]:
        """INFO's Keyspace section, as Redis prints it (no line for an empty database)."""
        data = self._data
        if not data:
            return {"Keyspace": {}}
        line = f"keys={len(data)},expires={len(self._expires)},avg_ttl=0"
        return {"Keyspace": {"db0": line}}

    # -- state helpers ---------------------------------------------------------

    def _live(self, key: bytes, now: int) -> bytes | None:
        """The value of ``key`` unless it is missing or expired at ``now``."""
        value = self._data.get(key)
        if value is not None and self._expires:
            at = self._expires.get(key)
            if at is not None and at <= now:
                return None
        return value

    def _read(self, m: Applier, key: bytes) -> bytes | None:
        """:meth:`_live` for reads: the clock is consulted only for keys with an expiry."""
        value = self._data.get(key)
        if value is not None and self._expires:
            at = self._expires.get(key)
            if at is not None and at <= m.now_ns():
                return None
        return value

    def _delete(self, key: bytes) -> None:
        if self._data.pop(key, None) is not None:
            self._expires.pop(key, None)

    def _drop_if_expired(self, key: bytes, now: int) -> None:
        at = self._expires.get(key)
        if at is not None and at <= now:
            self._delete(key)

    def _expire_at(self, key: bytes, at: int) -> None:
        if self._expires.get(key) == at:
            return
        self._expires[key] = at
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
        expires, data = self._expires, self._data
        removed = 0
        while heap and heap[0][0] <= now and removed < limit:
            at, key = heapq.heappop(heap)
            if expires.get(key) == at:
                del expires[key]
                del data[key]
                removed += 1

    def _write(self, m: Applier, conn: Conn | None, cmd: Command, op: Callable[[int], Any]) -> Any:
        """Log a write whose effect is ``op(now)``; its result is the reply."""

        def mutate() -> Any:
            now = m.now_ns()
            result = op(now)
            self._purge(now)
            return result

        return m.apply(conn, cmd, mutate, None)

    # -- strings ---------------------------------------------------------------

    def _get(self, m: Applier, args: list[bytes]) -> bytes | None:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        # _read inlined: GET is the hottest read.
        key = args[1]
        value = self._data.get(key)
        if value is not None and self._expires:
            at = self._expires.get(key)
            if at is not None and at <= m.now_ns():
                return None
        return value

    def _set(self, m: Applier, args: list[bytes]) -> Any:
        """SET, applied (its arguments passed :func:`_check_set` before the log)."""
        key, value = args[1], args[2]
        if len(args) == 3:
            # The plain form is every benchmark's write: keep it lean.
            self._data[key] = value
            if self._expires:
                self._expires.pop(key, None)
                self._purge(m.now_ns())
            return OK
        opts = _SetOptions.parse(args)
        now = m.now_ns()
        at = opts.expiry.deadline(now) if opts.expiry else None
        old = self._live(key, now)
        result: Any
        if (opts.nx and old is not None) or (opts.xx and old is None):
            self._drop_if_expired(key, now)
            result = old if opts.get else None
        else:
            self._data[key] = value
            if at is not None:
                self._expire_at(key, at)
            elif not opts.keepttl or old is None:
                self._clear_expiry(key)
            result = old if opts.get else OK
        self._purge(now)
        return result

    def _getset(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        key, value = args[1], args[2]

        def op(now: int) -> bytes | None:
            old = self._live(key, now)
            self._data[key] = value
            self._clear_expiry(key)
            return old

        return self._write(m, conn, cmd, op)

    def _setnx(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        key, value = args[1], args[2]

        def op(now: int) -> int:
            if self._live(key, now) is not None:
                return 0
            self._data[key] = value
            self._clear_expiry(key)
            return 1

        return self._write(m, conn, cmd, op)

    def _mget(self, m: Applier, args: list[bytes]) -> list[bytes | None]:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        return [self._read(m, key) for key in args[1:]]

    def _mset(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) < 3 or len(args) % 2 == 0:
            raise ErrWrongNumberOfArguments()
        pairs = list(zip(args[1::2], args[2::2], strict=True))

        def op(now: int) -> Status:
            for key, value in pairs:
                self._data[key] = value
                self._clear_expiry(key)
            return OK

        return self._write(m, conn, cmd, op)

    def _incr(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if len(cmd.args) != 2:
            raise ErrWrongNumberOfArguments()
        return self._add(m, conn, cmd, 1)

    def _decr(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if len(cmd.args) != 2:
            raise ErrWrongNumberOfArguments()
        return self._add(m, conn, cmd, -1)

    def _incrby(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if len(cmd.args) != 3:
            raise ErrWrongNumberOfArguments()
        return self._add(m, conn, cmd, _parse_int(cmd.args[2]))

    def _decrby(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if len(cmd.args) != 3:
            raise ErrWrongNumberOfArguments()
        delta = _parse_int(cmd.args[2])
        if delta == INT64_MIN:
            raise ValueError("decrement would overflow")
        return self._add(m, conn, cmd, -delta)

    def _add(self, m: Applier, conn: Conn | None, cmd: Command, delta: int) -> Any:
        key = cmd.args[1]

        def op(now: int) -> int:
            old = self._live(key, now)
            result = delta if old is None else _parse_int(old) + delta
            if not INT64_MIN <= result <= INT64_MAX:
                raise ValueError(OVERFLOW)
            self._data[key] = b"%d" % result
            if old is None:
                self._clear_expiry(key)  # an expired predecessor's expiry
            return result

        return self._write(m, conn, cmd, op)

    def _append(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        key, suffix = args[1], args[2]

        def op(now: int) -> int:
            old = self._live(key, now)
            if old is None:
                self._data[key] = suffix
                self._clear_expiry(key)
                return len(suffix)
            if len(old) + len(suffix) > MAX_STRING_LEN:
                raise ValueError("string exceeds maximum allowed size (proto-max-bulk-len)")
            new = old + suffix
            self._data[key] = new
            return len(new)

        return self._write(m, conn, cmd, op)

    def _strlen(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        return len(self._read(m, args[1]) or b"")

    # -- keyspace --------------------------------------------------------------

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
            return removed

        return self._write(m, conn, cmd, op)

    def _exists(self, m: Applier, args: list[bytes]) -> int:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        return sum(self._read(m, key) is not None for key in args[1:])

    def _type(self, m: Applier, args: list[bytes]) -> Status:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        return _NONE if self._read(m, args[1]) is None else _STRING

    def _expire(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT, with Redis 7's NX | XX | GT | LT."""
        args = cmd.args
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        name = cmd.name
        nx, xx, gt, lt = _parse_expire_flags(args[3:])
        amount = _parse_int(args[2])
        invalid = f"invalid expire time in '{name}' command"
        in_seconds = name in ("expire", "expireat")
        if in_seconds and not -(-INT64_MIN // 1000) <= amount <= INT64_MAX // 1000:
            raise ValueError(invalid)
        offset = amount * (_NS_PER_S if in_seconds else _NS_PER_MS)
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
        return -((now - at) // _NS_PER_MS)

    def _persist(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        key = args[1]

        def op(now: int) -> int:
            if self._live(key, now) is None:
                self._drop_if_expired(key, now)
                return 0
            return 1 if self._clear_expiry(key) else 0

        return self._write(m, conn, cmd, op)

    def _keys(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        pattern = args[1]
        # A lone '*' lists everything, even the empty key (as in Redis).
        match = None if pattern == b"*" else compile_glob(pattern)

        def respond(_: Any) -> list[bytes]:
            keys: Iterable[bytes] = self._data if match is None else filter(match, self._data)
            expired = _expired_keys(self._heap, self._expires, m.now_ns()) if self._heap else None
            if expired:
                return [key for key in keys if key not in expired]
            return list(keys)

        return m.apply(conn, cmd, None, respond)

    def _scan(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]; see the module notes."""
        args = cmd.args
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        cursor = _parse_cursor(args[1])
        opts = _ScanOptions.parse(args)

        def respond(_: Any) -> list[Any]:
            if cursor == 0:
                scan_id, pos, keys = 0, 0, list(self._data)
            else:
                scan_id, pos = cursor >> _SCAN_POS_BITS, cursor & _SCAN_POS_MASK
                keys = self._scans.get(scan_id)
            end = pos + opts.count
            found: list[bytes] = []
            if opts.strings:
                found = [key for key in keys[pos:end] if self._read(m, key) is not None]
                if opts.match is not None:
                    found = [key for key in found if opts.match(key)]
            if end >= len(keys):
                self._scans.close(scan_id)
                return [b"0", found]
            if scan_id == 0:
                scan_id = self._scans.open(keys)
            return [b"%d" % (scan_id << _SCAN_POS_BITS | end), found]

        return m.apply(conn, cmd, None, respond)

    def _dbsize(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 1:
            raise ErrWrongNumberOfArguments()
        if not self._heap:
            return len(self._data)
        return len(self._data) - len(_expired_keys(self._heap, self._expires, m.now_ns()))

    def _flushdb(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """FLUSHDB and FLUSHALL [ASYNC | SYNC]: one database, so the same (and never lazy)."""
        args = cmd.args
        if len(args) > 2 or (len(args) == 2 and args[1].lower() not in (b"sync", b"async")):
            raise ValueError(SYNTAX_ERROR)

        def op(now: int) -> Status:
            self._data = {}
            self._expires = {}
            self._heap = []
            return OK

        return self._write(m, conn, cmd, op)


# -- expiry ----------------------------------------------------------------------


def _expired_keys(heap: list[tuple[int, bytes]], expires: dict[bytes, int], now: int) -> set[bytes]:
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


# -- argument parsing ------------------------------------------------------------


def _parse_int(raw: bytes) -> int:
    """A signed 64-bit integer in Redis's strict form: no sign '+', spaces or leading zeros."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if (
        digits.isdigit()  # ASCII digits only, and not empty
        and len(raw) <= 20
        and (digits[0] != 0x30 or raw == b"0")
    ):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise ValueError(NOT_AN_INTEGER)


def _parse_cursor(raw: bytes) -> int:
    if raw.isdigit() and len(raw) <= 20:
        cursor = int(raw)
        if cursor < 1 << 64:
            return cursor
    raise ValueError("invalid cursor")


@dataclass(frozen=True, slots=True)
class _Expiry:
    """An expiry given as an offset from the entry's time, or as an absolute time."""

    ns: int
    absolute: bool
    command: str

    def deadline(self, now: int) -> int:
        at = self.ns if self.absolute else now + self.ns
        if at > INT64_MAX:
            raise ValueError(f"invalid expire time in '{self.command}' command")
        return at


def _check_set(args: list[bytes]) -> None:
    """Refuse a malformed SET before it is logged."""
    if len(args) < 3:
        raise ErrWrongNumberOfArguments()
    if len(args) > 3:
        _SetOptions.parse(args)


@dataclass(frozen=True, slots=True)
class _SetOptions:
    nx: bool
    xx: bool
    get: bool
    keepttl: bool
    expiry: _Expiry | None

    @staticmethod
    def parse(args: list[bytes]) -> _SetOptions:
        """Parse SET's options (from the fourth argument) with Redis's compatibility rules."""
        nx = xx = get = keepttl = False
        unit: bytes | None = None
        raw = b""
        i = 3
        while i < len(args):
            opt = args[i].lower()
            if opt == b"nx" and not xx:
                nx = True
            elif opt == b"xx" and not nx:
                xx = True
            elif opt == b"get":
                get = True
            elif opt == b"keepttl" and unit is None:
                keepttl = True
            elif (
                opt in _SET_EXPIRY_UNITS
                and not keepttl
                and unit in (None, opt)
                and i + 1 < len(args)
            ):
                unit, raw = opt, args[i + 1]
                i += 1
            else:
                raise ValueError(SYNTAX_ERROR)
            i += 1
        expiry = None
        if unit is not None:
            scale, absolute = _SET_EXPIRY_UNITS[unit]
            amount = _parse_int(raw)
            ns = amount * scale
            if amount <= 0 or ns > INT64_MAX:
                raise ValueError("invalid expire time in 'set' command")
            expiry = _Expiry(ns, absolute, "set")
        return _SetOptions(nx, xx, get, keepttl, expiry)


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


@dataclass(frozen=True, slots=True)
class _ScanOptions:
    count: int
    match: Callable[[bytes], bool] | None
    strings: bool  # False when TYPE names another type: nothing can match

    @staticmethod
    def parse(args: list[bytes]) -> _ScanOptions:
        count = 10
        match = None
        strings = True
        i = 2
        while i < len(args):
            opt = args[i].lower()
            if i + 1 >= len(args):
                raise ValueError(SYNTAX_ERROR)
            arg = args[i + 1]
            if opt == b"count":
                count = _parse_int(arg)
                if count < 1:
                    raise ValueError(SYNTAX_ERROR)
            elif opt == b"match":
                match = None if arg == b"*" else compile_glob(arg)
            elif opt == b"type":
                if arg.lower() not in _TYPE_NAMES:
                    raise ValueError(f"unknown type name '{arg.decode('utf-8', 'replace')}'")
                strings = arg.lower() == b"string"
            else:
                raise ValueError(SYNTAX_ERROR)
            i += 2
        return _ScanOptions(count, match, strings)


# -- SCAN cursors ----------------------------------------------------------------


class _ScanLists:
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


# -- snapshots -------------------------------------------------------------------


class _Capture:
    """A keyspace captured by :meth:`Clone.snapshot`, written later off the event loop."""

    __slots__ = ("_data", "_expires")

    def __init__(self, data: dict[bytes, bytes], expires: dict[bytes, int]) -> None:
        self._data = data
        self._expires = expires

    def write(self, wr: IO[bytes]) -> None:
        """Stream the captured keys to ``wr``, one chunk of about 64 KiB at a time."""
        pack = msgpack.Packer(use_bin_type=True).pack
        expiry = self._expires.get
        wr.write(SNAPSHOT_MAGIC)
        wr.write(pack(len(self._data)))
        chunk: list[bytes | int | None] = []
        size = 0
        for key, value in self._data.items():
            chunk += (key, value, expiry(key))
            # The constant bounds the records per chunk even for empty strings.
            size += len(key) + len(value) + 16
            if size >= _SNAPSHOT_CHUNK_BYTES:
                wr.write(pack(chunk))
                chunk = []
                size = 0
        if chunk:
            wr.write(pack(chunk))


def _read_snapshot(rd: IO[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, int]]:
    """Parse a snapshot written by :class:`_Capture`, checking its shape as it goes."""
    if rd.read(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
        raise ValueError("not a redraft clone snapshot (bad magic)")
    # max_buffer_size=0 admits values up to 4 GiB; chunks hold at most 3 * 4096 items.
    unpacker = msgpack.Unpacker(
        rd,
        read_size=1 << 16,
        max_buffer_size=0,
        max_array_len=1 << 16,
        max_map_len=0,
        use_list=False,
    )
    data: dict[bytes, bytes] = {}
    expires: dict[bytes, int] = {}
    loaded = 0
    try:
        count = unpacker.unpack()
        if type(count) is not int or count < 0:
            raise ValueError("corrupt clone snapshot: bad key count")
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
    except msgpack.OutOfData:
        raise ValueError("truncated clone snapshot") from None
    if loaded != count or len(data) != count:
        raise ValueError("corrupt clone snapshot: the records do not match the key count")
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        return data, expires
    raise ValueError("corrupt clone snapshot: data after the last record")


def main(argv: list[str] | None = None) -> None:
    """``python -m redraft.examples.clone`` / ``redraft-clone``: serve a clone node."""
    from redraft.cli import main as serve_machine

    serve_machine(
        Clone,
        argv,
        prog="redraft-clone",
        description="A Redis clone replicated by Raft (redraft's example).",
    )


if __name__ == "__main__":
    main()
