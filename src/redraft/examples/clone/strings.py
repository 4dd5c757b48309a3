"""String commands: GET, SET (EX, PX, EXAT, PXAT, NX, XX, GET, KEEPTTL), MGET, MSET,
INCR, INCRBY, DECR, DECRBY, APPEND, STRLEN, GETSET, SETNX.

GET and SET are the hottest commands of every benchmark: GET is a plain read
and SET a plain write (:class:`~redraft.machine.Write`), and their common
forms are kept lean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redraft.machine import (
    OK,
    Applier,
    Command,
    Conn,
    ErrWrongNumberOfArguments,
    Read,
    Status,
    Write,
)

from .keyspace import Handler, Keyspace
from .parsing import (
    INT64_MAX,
    INT64_MIN,
    NS_PER_MS,
    NS_PER_S,
    OVERFLOW,
    SYNTAX_ERROR,
    WRONGTYPE,
    parse_int,
)

__all__ = ["MAX_STRING_LEN", "StringCommands", "check_set"]

MAX_STRING_LEN = 512 * 1024 * 1024
"""Redis's default proto-max-bulk-len: APPEND refuses to grow a string past it."""

_SET_EXPIRY_UNITS = {  # option -> (nanoseconds per unit, absolute time?)
    b"ex": (NS_PER_S, False),
    b"px": (NS_PER_MS, False),
    b"exat": (NS_PER_S, True),
    b"pxat": (NS_PER_MS, True),
}


class StringCommands(Keyspace):
    """The string commands, over the shared keyspace."""

    def _string_handlers(self) -> dict[bytes, Handler]:
        return {
            b"mset": self._mset,
            b"incr": self._incr,
            b"incrby": self._incrby,
            b"decr": self._decr,
            b"decrby": self._decrby,
            b"append": self._append,
            b"getset": self._getset,
            b"setnx": self._setnx,
        }

    def _string_reads(self) -> dict[str, Read]:
        return {"get": self._get, "mget": self._mget, "strlen": self._strlen}

    def _string_writes(self) -> dict[str, Write]:
        return {"set": Write(self._set, check_set)}

    # -- GET / SET -------------------------------------------------------------------

    def _get(self, m: Applier, args: list[bytes]) -> bytes | None:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        # _read inlined: GET is the hottest read.
        key = args[1]
        value = self._data.get(key)
        if value is not None:
            if self._expires:
                at = self._expires.get(key)
                if at is not None and at <= m.now_ns():
                    return None
            return value
        if self._objects and self._read(m, key) is not None:
            raise ValueError(WRONGTYPE)
        return None

    def _set(self, m: Applier, args: list[bytes]) -> Any:
        """SET, applied (its arguments passed :func:`check_set` before the log)."""
        key, value = args[1], args[2]
        if len(args) == 3:
            # The plain form is every benchmark's write: keep it lean.
            self._data[key] = value
            self._touched.append(key)
            if self._extras:  # some key has an expiry or another type
                if self._objects:
                    self._objects.pop(key, None)
                if self._expires:
                    self._expires.pop(key, None)
                    self._purge(m.now_ns())
            return OK
        return self._set_with_options(m, key, value, _SetOptions.parse(args))

    def _set_with_options(self, m: Applier, key: bytes, value: bytes, opts: _SetOptions) -> Any:
        now = m.now_ns()
        at = opts.expiry.deadline(now) if opts.expiry else None
        old = self._live(key, now)
        if opts.get and old is not None and type(old) is not bytes:
            raise ValueError(WRONGTYPE)
        result: Any
        if (opts.nx and old is not None) or (opts.xx and old is None):
            self._drop_if_expired(key, now)
            result = old if opts.get else None
        else:
            self._put(key, value)
            if at is not None:
                self._expire_at(key, at)
            elif not opts.keepttl or old is None:
                self._clear_expiry(key)
            result = old if opts.get else OK
        self._after_write(m, now)
        return result

    def _getset(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        key, value = args[1], args[2]

        def op(now: int) -> bytes | None:
            old = self._string_at(key, now)
            self._put(key, value)
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
            self._put(key, value)
            self._clear_expiry(key)
            return 1

        return self._write(m, conn, cmd, op)

    def _mget(self, m: Applier, args: list[bytes]) -> list[bytes | None]:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        # A key of another type reads as nil, as in Redis.
        return [v if type(v := self._read(m, key)) is bytes else None for key in args[1:]]

    def _mset(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) < 3 or len(args) % 2 == 0:
            raise ErrWrongNumberOfArguments()
        pairs = list(zip(args[1::2], args[2::2], strict=True))

        def op(now: int) -> Status:
            for key, value in pairs:
                self._put(key, value)
                self._clear_expiry(key)
            return OK

        return self._write(m, conn, cmd, op)

    # -- counters ----------------------------------------------------------------------

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
        return self._add(m, conn, cmd, parse_int(cmd.args[2]))

    def _decrby(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if len(cmd.args) != 3:
            raise ErrWrongNumberOfArguments()
        delta = parse_int(cmd.args[2])
        if delta == INT64_MIN:
            raise ValueError("decrement would overflow")
        return self._add(m, conn, cmd, -delta)

    def _add(self, m: Applier, conn: Conn | None, cmd: Command, delta: int) -> Any:
        key = cmd.args[1]

        def op(now: int) -> int:
            old = self._string_at(key, now)
            result = delta if old is None else parse_int(old) + delta
            if not INT64_MIN <= result <= INT64_MAX:
                raise ValueError(OVERFLOW)
            self._put(key, b"%d" % result)
            if old is None:
                self._clear_expiry(key)  # an expired predecessor's expiry
            return result

        return self._write(m, conn, cmd, op)

    # -- APPEND / STRLEN -----------------------------------------------------------------

    def _append(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        args = cmd.args
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        key, suffix = args[1], args[2]

        def op(now: int) -> int:
            old = self._string_at(key, now)
            if old is None:
                self._put(key, suffix)
                self._clear_expiry(key)
                return len(suffix)
            if len(old) + len(suffix) > MAX_STRING_LEN:
                raise ValueError("string exceeds maximum allowed size (proto-max-bulk-len)")
            new = old + suffix
            self._put(key, new)
            return len(new)

        return self._write(m, conn, cmd, op)

    def _strlen(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        value = self._read(m, args[1])
        if value is None:
            return 0
        if type(value) is not bytes:
            raise ValueError(WRONGTYPE)
        return len(value)


# -- SET's options -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expiry:
    """An expiry given as an offset from the entry's time, or as an absolute time."""

    ns: int
    absolute: bool
    command: str

    def deadline(self, now: int) -> int:
        at = self.ns if self.absolute else now + self.ns
        if at > INT64_MAX:
            raise ValueError(f"invalid expire time in '{self.command}' command")
        return at


def check_set(args: list[bytes]) -> None:
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
    expiry: Expiry | None

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
            amount = parse_int(raw)
            ns = amount * scale
            if amount <= 0 or ns > INT64_MAX:
                raise ValueError("invalid expire time in 'set' command")
            expiry = Expiry(ns, absolute, "set")
        return _SetOptions(nx, xx, get, keepttl, expiry)
