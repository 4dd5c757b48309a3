"""String commands: GET, SET (EX, PX, EXAT, PXAT, NX, XX, GET, KEEPTTL), MGET, MSET,
MSETNX, INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT, APPEND, STRLEN, GETSET, SETNX, SETEX,
PSETEX, SETRANGE, GETRANGE, SUBSTR, GETDEL, GETEX (EX, PX, EXAT, PXAT, PERSIST) and LCS.

INCRBYFLOAT's long double arithmetic is in :mod:`.string_float`, LCS's table
and walk in :mod:`.string_lcs`.

GET and SET are the hottest commands of every benchmark: GET is a plain read
and SET a plain write (:class:`~redraft.machine.Write`), and their common
forms are kept lean.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from redraft.machine import (
    OK,
    Applier,
    Command,
    Conn,
    ErrWrongNumberOfArguments,
    KeyRead,
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
from .string_float import add_long_doubles, format_long_double, parse_long_double
from .string_lcs import LcsOptions, lcs_reply

__all__ = ["MAX_STRING_LEN", "StringCommands", "check_set"]

MAX_STRING_LEN = 512 * 1024 * 1024
"""Redis's default proto-max-bulk-len: APPEND and SETRANGE refuse to grow a string past it."""

TOO_LONG = "string exceeds maximum allowed size (proto-max-bulk-len)"
NOT_STRINGS = "The specified keys must contain string values"

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
        return {
            "get": KeyRead(self._get, self._get_tables),
            "mget": self._mget,
            "strlen": self._strlen,
            "getrange": self._getrange,
            "substr": self._getrange,
            "lcs": self._lcs,
        }

    def _string_writes(self) -> dict[str, Write]:
        return {
            "set": Write(self._set, check_set, apply_many=self._set_many, check_many=check_sets),
            "setex": Write(self._setex, _check_setex),
            "psetex": Write(self._setex, _check_setex),
            "setrange": Write(self._setrange, _check_setrange),
            "getdel": Write(self._getdel, _check_getdel),
            "getex": Write(self._getex, _check_getex),
            "incrbyfloat": Write(self._incrbyfloat, _check_incrbyfloat),
            "msetnx": Write(self._msetnx, _check_msetnx),
        }

    # -- GET / SET -------------------------------------------------------------------

    def _get_tables(self) -> tuple[dict[bytes, Any], ...]:
        # GET answers a string as it is and a missing key with nil; a key
        # with an expiry (_get compares it with the clock) or of another
        # type (WRONGTYPE) is _get's.
        return self._data, self._expires, self._objects

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

    def _set_many(self, m: Applier, cmds: list[list[bytes]]) -> list[Any]:
        """A run of SETs, applied in order: the plain form without a call each."""
        done = 0
        if not self._extras:  # no key has an expiry or another type
            data = self._data
            touch = self._touched.append
            for args in cmds:
                if len(args) != 3:
                    break
                key = args[1]
                data[key] = args[2]
                touch(key)
            else:
                return [OK] * len(cmds)
            done = next(k for k, one in enumerate(cmds) if one is args)
        results: list[Any] = [OK] * done
        for args in cmds[done:]:
            try:
                results.append(self._set(m, args))
            except Exception as exc:
                results.append(exc)
        return results

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

    # -- SETEX / PSETEX / MSETNX / INCRBYFLOAT -------------------------------------------

    def _setex(self, m: Applier, args: list[bytes]) -> Status:
        """SETEX and PSETEX, applied (checked by :func:`_check_setex` before the log)."""
        now = m.now_ns()
        at = _setex_expiry(args).deadline(now)
        key = args[1]
        self._drop_if_expired(key, now)
        self._put(key, args[3])
        self._expire_at(key, at)
        self._after_write(m, now)
        return OK

    def _msetnx(self, m: Applier, args: list[bytes]) -> int:
        """MSETNX: every pair, or none if any key exists (of any type)."""
        now = m.now_ns()
        keys = args[1::2]
        done = 0
        for key in keys:
            # Redis stops at the first live key (expired ones before it are deleted).
            if self._live(key, now) is not None:
                break
            self._drop_if_expired(key, now)
        else:
            for key, value in zip(keys, args[2::2], strict=True):
                self._put(key, value)
            done = 1
        self._after_write(m, now)
        return done

    def _incrbyfloat(self, m: Applier, args: list[bytes]) -> bytes:
        """INCRBYFLOAT: long double arithmetic, Redis's printing (see :mod:`.string_float`)."""
        key = args[1]
        now = m.now_ns()
        old = self._string_at(key, now)
        start = Fraction(0) if old is None else parse_long_double(old)
        new = format_long_double(add_long_doubles(start, parse_long_double(args[2])))
        if old is None:
            self._drop_if_expired(key, now)
        self._put(key, new)  # the expiry, if any, stays
        self._after_write(m, now)
        return new

    # -- SETRANGE / GETRANGE -----------------------------------------------------------------

    def _setrange(self, m: Applier, args: list[bytes]) -> int:
        """SETRANGE key offset value: overwrite from ``offset``, padding with zero bytes."""
        key, piece = args[1], args[3]
        offset = _setrange_offset(args)
        now = m.now_ns()
        old = self._string_at(key, now)
        if piece and offset + len(piece) > MAX_STRING_LEN:
            raise ValueError(TOO_LONG)
        if old is None:
            self._drop_if_expired(key, now)
        result: int
        if not piece:  # nothing to write: no change, not even a new key
            result = 0 if old is None else len(old)
        else:
            base = old or b""
            head = base[:offset] if len(base) >= offset else base + bytes(offset - len(base))
            new = head + piece + base[offset + len(piece) :]
            self._put(key, new)
            result = len(new)
        self._after_write(m, now)
        return result

    def _getrange(self, m: Applier, args: list[bytes]) -> bytes:
        """GETRANGE (and its old name SUBSTR) key start end."""
        if len(args) != 4:
            raise ErrWrongNumberOfArguments()
        start, end = parse_int(args[2]), parse_int(args[3])
        value = self._read(m, args[1])
        if value is None:
            return b""
        if type(value) is not bytes:
            raise ValueError(WRONGTYPE)
        return _substring(value, start, end)

    # -- GETDEL / GETEX ------------------------------------------------------------------------

    def _getdel(self, m: Applier, args: list[bytes]) -> bytes | None:
        key = args[1]
        now = m.now_ns()
        value = self._string_at(key, now)
        if value is None:
            self._drop_if_expired(key, now)
        else:
            self._delete(key)
        self._after_write(m, now)
        return value

    def _getex(self, m: Applier, args: list[bytes]) -> bytes | None:
        """GETEX key [EX | PX | EXAT | PXAT n | PERSIST]: the value, its expiry changed."""
        key = args[1]
        kind, raw = _getex_option(args)
        now = m.now_ns()
        value = self._string_at(key, now)
        if value is None:
            self._drop_if_expired(key, now)
        elif kind == b"persist":
            if self._clear_expiry(key):
                self._touched.append(key)
        elif kind is not None:
            at = parse_expiry(kind, raw, "getex").deadline(now)
            if at <= now:  # an absolute time already past: the key goes at once
                self._delete(key)
            else:
                self._expire_at(key, at)
                self._touched.append(key)
        self._after_write(m, now)
        return value

    # -- LCS -----------------------------------------------------------------------------------

    def _lcs(self, m: Applier, args: list[bytes]) -> Any:
        """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]; see :mod:`.string_lcs`."""
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        a, b = self._read(m, args[1]), self._read(m, args[2])
        if a is None:
            a = b""
        if b is None:
            b = b""
        if type(a) is not bytes or type(b) is not bytes:
            raise ValueError(NOT_STRINGS)
        return lcs_reply(a, b, LcsOptions.parse(args))


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


def check_sets(cmds: list[list[bytes]]) -> None:
    """Refuse a run of SETs if any is malformed: the plain form (three arguments) is not parsed."""
    for args in cmds:
        if len(args) != 3:
            check_set(args)


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
        expiry = None if unit is None else parse_expiry(unit, raw, "set")
        return _SetOptions(nx, xx, get, keepttl, expiry)


def parse_expiry(unit: bytes, raw: bytes, command: str) -> Expiry:
    """The expiry ``raw`` in ``unit`` (lower case: ex, px, exat or pxat) given to ``command``."""
    scale, absolute = _SET_EXPIRY_UNITS[unit]
    amount = parse_int(raw)
    ns = amount * scale
    if amount <= 0 or ns > INT64_MAX:
        raise ValueError(f"invalid expire time in '{command}' command")
    return Expiry(ns, absolute, command)


# -- the other writes' checks and options -------------------------------------------------


def _check_setex(args: list[bytes]) -> None:
    """SETEX and PSETEX: arity and the expiry, before the log."""
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
    _setex_expiry(args)


def _setex_expiry(args: list[bytes]) -> Expiry:
    seconds = args[0].lower() == b"setex"
    return parse_expiry(b"ex" if seconds else b"px", args[2], "setex" if seconds else "psetex")


def _check_setrange(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
    _setrange_offset(args)


def _setrange_offset(args: list[bytes]) -> int:
    offset = parse_int(args[2])
    if offset < 0:
        raise ValueError("offset is out of range")
    return offset


def _check_getdel(args: list[bytes]) -> None:
    if len(args) != 2:
        raise ErrWrongNumberOfArguments()


def _check_getex(args: list[bytes]) -> None:
    if len(args) < 2:
        raise ErrWrongNumberOfArguments()
    _getex_option(args)


def _getex_option(args: list[bytes]) -> tuple[bytes | None, bytes]:
    """GETEX's option: (``ex``/``px``/``exat``/``pxat`` and its argument) or ``persist``, or None.

    As in Redis, one kind of expiry may be repeated (the last one counts),
    PERSIST too, but two kinds, or an expiry and PERSIST, are a syntax error.
    """
    kind: bytes | None = None
    raw = b""
    i = 2
    while i < len(args):
        opt = args[i].lower()
        if opt == b"persist" and kind in (None, opt):
            kind = opt
        elif opt in _SET_EXPIRY_UNITS and kind in (None, opt) and i + 1 < len(args):
            kind, raw = opt, args[i + 1]
            i += 1
        else:
            raise ValueError(SYNTAX_ERROR)
        i += 1
    return kind, raw


def _check_incrbyfloat(args: list[bytes]) -> None:
    if len(args) != 3:
        raise ErrWrongNumberOfArguments()


def _check_msetnx(args: list[bytes]) -> None:
    if len(args) < 3 or len(args) % 2 == 0:
        raise ErrWrongNumberOfArguments()


def _substring(value: bytes, start: int, end: int) -> bytes:
    """GETRANGE's slice: inclusive indexes, negative from the end, with Redis's clamping."""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += n
    if end < 0:
        end += n
    start, end = max(start, 0), min(max(end, 0), n - 1)
    if start > end or n == 0:
        return b""
    return value[start : end + 1]
