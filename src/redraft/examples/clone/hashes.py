"""Hash commands: HSET, HSETNX, HGET, HMGET, HMSET, HDEL, HEXISTS, HLEN, HSTRLEN, HKEYS,
HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD and HSCAN, with Redis 7.0's replies and
errors.

A hash is a Python ``dict`` of bytes to bytes; it is never empty (the HDEL
that takes its last field deletes the key).  A dict keeps insertion order,
and an updated field keeps its place, which is the order Redis answers a
small (listpack) hash in; a large one Redis answers in its hash table's
order (see :mod:`.hash_ops`).

Every command but HSCAN is a plain read or write; HSET and HGET, the hot
ones, are kept lean.  HSET and HMSET with an odd number of arguments pass
their ``check`` and fail when applied, because Redis refuses them from the
command itself, not from its arity: inside MULTI they are queued and fail in
EXEC's array.  HINCRBYFLOAT computes in C's ``long double``, exactly as
Redis on x86-64 does (:func:`.hash_ops.incr_by_float`).  HRANDFIELD is a
read and draws with ``m.random()``; with WITHVALUES it answers
:class:`~redraft.machine.Pairs` (``[field, value]`` arrays in RESP3), and
HGETALL a ``dict`` (a map in RESP3), as Redis 7.0 does.

WATCH: a command changes a key (and logs it) exactly where Redis signals a
modified key: HSET and HMSET always (even to the same values), HSETNX when it
set the field, HDEL when it removed one, HINCRBY and HINCRBYFLOAT when they
succeed.

HSCAN answers a hash Redis would keep as a listpack, or one of at most COUNT
fields, whole with cursor 0 (Redis does, for such hashes); a larger one is
walked as :func:`.scanning.member_scan` walks every container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redraft.machine import OK, Applier, Command, Conn, ErrWrongNumberOfArguments, Read, Write

from .hash_ops import (
    incr_by_float,
    incr_by_int,
    listpack_like,
    parse_float_increment,
    parse_hrandfield,
    random_field,
    random_fields,
)
from .keyspace import Handler, Keyspace
from .parsing import parse_int
from .scanning import ScanLists, member_scan, parse_member_scan_options, parse_scan_cursor

__all__ = ["HashCommands"]


class HashCommands(Keyspace):
    """The hash commands, over the shared keyspace."""

    def __init__(self) -> None:
        super().__init__()
        # HSCAN's field lists, node-local: each is [key, field, ...].
        self._hash_scans = ScanLists()

    def _hash_handlers(self) -> dict[bytes, Handler]:
        return {b"hscan": self._hscan}

    def _hash_reads(self) -> dict[str, Read]:
        return {
            "hget": self._hget,
            "hmget": self._hmget,
            "hexists": self._hexists,
            "hlen": self._hlen,
            "hstrlen": self._hstrlen,
            "hkeys": self._hkeys,
            "hvals": self._hvals,
            "hgetall": self._hgetall,
            "hrandfield": self._hrandfield,
        }

    def _hash_writes(self) -> dict[str, Write]:
        return {
            "hset": Write(self._hset, _check_hset),
            "hmset": Write(self._hmset, _check_hset),
            "hsetnx": Write(self._hsetnx, _check_hsetnx),
            "hdel": Write(self._hdel, _check_hdel),
            "hincrby": Write(self._hincrby, _check_hincrby),
            "hincrbyfloat": Write(self._hincrbyfloat, _check_hincrbyfloat),
        }

    # -- writes ----------------------------------------------------------------------

    def _hset(self, m: Applier, args: list[bytes]) -> int:
        """HSET key field value [field value ...]: how many fields it created."""
        n = len(args)
        if n & 1:
            raise ErrWrongNumberOfArguments()
        key = args[1]
        now = m.now_ns()
        # _object_at inlined for a live hash: HSET is the hottest hash write.
        fields = self._objects.get(key)
        if type(fields) is not dict or (
            self._expires and (at := self._expires.get(key)) is not None and at <= now
        ):
            fields = self._object_at(key, now, dict)
            if fields is None:
                fields = self._new_object(key, now, {})
        if n == 4:  # one field: every benchmark's HSET
            created = 0 if args[2] in fields else 1
            fields[args[2]] = args[3]
        else:
            before = len(fields)
            fields.update(zip(args[2::2], args[3::2], strict=True))
            created = len(fields) - before
        self._touched.append(key)
        self._after_write(m, now)
        return created

    def _hmset(self, m: Applier, args: list[bytes]) -> Any:
        self._hset(m, args)
        return OK

    def _hsetnx(self, m: Applier, args: list[bytes]) -> int:
        key, field = args[1], args[2]
        now = m.now_ns()
        fields = self._object_at(key, now, dict)
        done = 0
        if fields is None:
            self._new_object(key, now, {field: args[3]})
            done = 1
        elif field not in fields:
            fields[field] = args[3]
            done = 1
        if done:
            self._touched.append(key)
        self._after_write(m, now)
        return done

    def _hdel(self, m: Applier, args: list[bytes]) -> int:
        key = args[1]
        now = m.now_ns()
        fields = self._object_at(key, now, dict)
        removed = 0
        if fields is None:
            self._drop_if_expired(key, now)
        else:
            for field in args[2:]:
                if fields.pop(field, None) is not None:
                    removed += 1
            if not fields:
                self._delete(key)
            elif removed:
                self._touched.append(key)
        self._after_write(m, now)
        return removed

    def _hincrby(self, m: Applier, args: list[bytes]) -> int:
        delta = parse_int(args[3])
        key, field = args[1], args[2]
        now = m.now_ns()
        fields = self._object_at(key, now, dict)
        result = incr_by_int(None if fields is None else fields.get(field), delta)
        self._store_field(key, field, b"%d" % result, fields, now)
        self._after_write(m, now)
        return result

    def _hincrbyfloat(self, m: Applier, args: list[bytes]) -> bytes:
        incr = parse_float_increment(args[3])
        key, field = args[1], args[2]
        now = m.now_ns()
        fields = self._object_at(key, now, dict)
        result = incr_by_float(None if fields is None else fields.get(field), incr)
        self._store_field(key, field, result, fields, now)
        self._after_write(m, now)
        return result

    def _store_field(
        self, key: bytes, field: bytes, value: bytes, fields: dict[bytes, bytes] | None, now: int
    ) -> None:
        """Set one field of the hash ``fields`` at ``key`` (None: a new hash there)."""
        if fields is None:
            self._new_object(key, now, {field: value})
        else:
            fields[field] = value
        self._touched.append(key)

    # -- reads ---------------------------------------------------------------------------

    def _hget(self, m: Applier, args: list[bytes]) -> bytes | None:
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        key = args[1]
        fields = self._objects.get(key)
        if type(fields) is not dict:
            fields = self._read_object(m, key, dict)  # a string's WRONGTYPE, or None
            return None if fields is None else fields.get(args[2])
        if self._expires:
            at = self._expires.get(key)
            if at is not None and at <= m.now_ns():
                return None
        return fields.get(args[2])

    def _hmget(self, m: Applier, args: list[bytes]) -> list[bytes | None]:
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        if fields is None:
            return [None] * (len(args) - 2)
        return [fields.get(field) for field in args[2:]]

    def _hexists(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        return 1 if fields is not None and args[2] in fields else 0

    def _hlen(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        return 0 if fields is None else len(fields)

    def _hstrlen(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        value = None if fields is None else fields.get(args[2])
        return 0 if value is None else len(value)

    def _hkeys(self, m: Applier, args: list[bytes]) -> list[bytes]:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        return [] if fields is None else list(fields)

    def _hvals(self, m: Applier, args: list[bytes]) -> list[bytes]:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        return [] if fields is None else list(fields.values())

    def _hgetall(self, m: Applier, args: list[bytes]) -> dict[bytes, bytes]:
        """HGETALL: a flat array in RESP2, a map in RESP3 (a dict reply is both)."""
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        fields = self._read_object(m, args[1], dict)
        return {} if fields is None else dict(fields)  # a copy: the reply may be sent later

    def _hrandfield(self, m: Applier, args: list[bytes]) -> Any:
        """HRANDFIELD key [count [WITHVALUES]]: a random field, or an array of them."""
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        count, withvalues = parse_hrandfield(args)
        fields = self._read_object(m, args[1], dict)
        if count is None:
            return None if fields is None else random_field(fields, m.random())
        if fields is None or count == 0:
            return []
        return random_fields(fields, count, withvalues, m.random())

    # -- HSCAN ---------------------------------------------------------------------------

    def _hscan(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """HSCAN key cursor [MATCH pattern] [COUNT count]."""
        args = cmd.args
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        key = args[1]
        cursor = parse_scan_cursor(args[2])

        def respond(_: Any) -> list[Any]:
            fields = self._read_object(m, key, dict)
            if fields is None:
                return [b"0", []]
            count, match = parse_member_scan_options(args[3:])
            return member_scan(
                self._hash_scans, key, cursor, count, fields,
                lambda: _whole(fields, count, match),
                lambda names: _pairs(names, fields, match),
            )  # fmt: skip

        return m.apply(conn, cmd, None, respond)


def _whole(
    fields: dict[bytes, bytes], count: int, match: Callable[[bytes], bool] | None
) -> list[bytes] | None:
    """HSCAN's reply for a hash Redis answers whole (a listpack, or at most COUNT fields)."""
    if len(fields) <= count or listpack_like(fields):
        return _pairs(fields, fields, match)
    return None


def _pairs(
    names: Any, fields: dict[bytes, bytes], match: Callable[[bytes], bool] | None
) -> list[bytes]:
    """``field, value, ...`` for the ``names`` still in ``fields`` that pass MATCH."""
    out: list[bytes] = []
    for name in names:
        value = fields.get(name)
        if value is not None and (match is None or match(name)):
            out += (name, value)
    return out


# -- checks run before a write is logged ---------------------------------------------------


def _check_hset(args: list[bytes]) -> None:
    # An odd count of 4 or more is HSET's own error, after MULTI queued it: see the notes.
    if len(args) < 4:
        raise ErrWrongNumberOfArguments()


def _check_hsetnx(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()


def _check_hdel(args: list[bytes]) -> None:
    if len(args) < 3:
        raise ErrWrongNumberOfArguments()


def _check_hincrby(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
    parse_int(args[3])


def _check_hincrbyfloat(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
    parse_float_increment(args[3])
