"""The clone's other string and keyspace commands, driven directly (no server).

SETEX, PSETEX, SETRANGE, GETRANGE, SUBSTR, GETDEL, GETEX, INCRBYFLOAT, MSETNX,
LCS; RENAME, RENAMENX, COPY, TOUCH, UNLINK, RANDOMKEY, OBJECT, MEMORY, TIME, EXPIRETIME,
PEXPIRETIME.  The replies were taken from redis-server 7.0.15 (the
differential tests in ``tests/differential/test_more_vs_redis.py`` compare
them live); here are the parts a server test cannot see: what is refused
before the log, that a failed write leaves the state as it was, the WATCH
log, deep copies, blocked clients woken by RENAME and COPY, determinism,
and the long double arithmetic and the LCS table against slow references.
Hashes, sets and sorted sets are built directly in the keyspace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections import deque
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraft.examples.clone import keyspace
from redraft.examples.clone.string_float import (
    NAN_OR_INFINITY,
    NOT_A_FLOAT,
    add_long_doubles,
    format_long_double,
    parse_long_double,
    round_long_double,
)
from redraft.examples.clone.string_lcs import LcsOptions, LcsTable, lcs_reply
from redraft.examples.clone.zset import ZSet
from redraft.machine import OK, Status
from tests.test_clone_machine import MS, SEC, T0
from tests.test_clone_types import BNode

pytestmark = pytest.mark.timeout(120)

WRONGTYPE = ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> BNode:
    n = BNode()
    monkeypatch.setattr(keyspace, "wall_clock", lambda: n.m.clock)
    return n


def put_objects(node: BNode) -> None:
    """A hash, a set and a sorted set, built in the keyspace (their commands are elsewhere)."""
    node.clone._objects[b"h"] = {b"f": b"v", b"g": b"w"}
    node.clone._objects[b"s"] = {b"1", b"2"}
    node.clone._objects[b"z"] = ZSet.from_pairs([(b"a", 1.0), (b"b", 2.0)])
    node.clone._extras = True


# -- strings -----------------------------------------------------------------------------------


def test_setex_and_psetex(node: BNode) -> None:
    node("RPUSH", "k", "x")
    assert node("SETEX", "k", 10, "v") == OK  # any type is replaced
    assert node("GET", "k") == b"v"
    assert node("PTTL", "k") == 10_000
    assert node("PSETEX", "k", 1500, "w") == OK
    assert node("PTTL", "k") == 1500
    node.advance(1500 * MS)
    assert node("GET", "k") is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("SETEX", "k", 0, "v"), "ERR invalid expire time in 'setex' command"),
        (("SETEX", "k", -1, "v"), "ERR invalid expire time in 'setex' command"),
        (("setex", "k", "x", "v"), "ERR value is not an integer or out of range"),
        (("PSETEX", "k", 0, "v"), "ERR invalid expire time in 'psetex' command"),
        (("PSETEX", "k", 2**63 - 1, "v"), "ERR invalid expire time in 'psetex' command"),
        (("SETEX", "k", 10), "ERR wrong number of arguments for 'setex' command"),
        (("SETRANGE", "k", -1, "x"), "ERR offset is out of range"),
        (("SETRANGE", "k", "x", "x"), "ERR value is not an integer or out of range"),
        (("SETRANGE", "k", 0), "ERR wrong number of arguments for 'setrange' command"),
        (("GETDEL", "k", "j"), "ERR wrong number of arguments for 'getdel' command"),
        (("GETEX", "k", "EX", 1, "PX", 1), "ERR syntax error"),
        (("GETEX", "k", "PERSIST", "EX", 1), "ERR syntax error"),
        (("GETEX", "k", "EX"), "ERR syntax error"),
        (("GETEX", "k", "KEEPTTL"), "ERR syntax error"),
        (("GETEX",), "ERR wrong number of arguments for 'getex' command"),
        (("INCRBYFLOAT", "k"), "ERR wrong number of arguments for 'incrbyfloat' command"),
        (("MSETNX", "a", "1", "b"), "ERR wrong number of arguments for 'msetnx' command"),
        (("RENAME", "a"), "ERR wrong number of arguments for 'rename' command"),
        (("COPY", "a", "a"), "ERR source and destination objects are the same"),
        (("COPY", "a", "b", "DB", 1), "ERR DB index is out of range"),
        (("COPY", "a", "b", "DB", "x"), "ERR value is not an integer or out of range"),
        (
            ("COPY", "a", "b", "DB", 2**31),
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ),
        (("COPY", "a", "b", "DB"), "ERR syntax error"),
        (("COPY", "a", "b", "REPLACE", "X"), "ERR syntax error"),
    ],
)
def test_malformed_writes_are_refused_before_the_log(
    node: BNode, args: tuple[Any, ...], error: str
) -> None:
    assert node.rejected(*args) == error


def test_failed_writes_leave_the_state_as_it_was(node: BNode) -> None:
    node("SET", "s", "abc")
    node("RPUSH", "l", "x")
    node("SET", "k", "1.5", "PX", 100)
    assert node.failed_write("INCRBYFLOAT", "s", "1") == "ERR value is not a valid float"
    assert node.failed_write("INCRBYFLOAT", "l", "x") == WRONGTYPE[1]
    assert node.failed_write("INCRBYFLOAT", "k", "inf") == "ERR " + NAN_OR_INFINITY
    assert node.failed_write("SETRANGE", "s", 2**29, "x") == (
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    )
    assert node.failed_write("SETRANGE", "l", 0, "") == WRONGTYPE[1]
    assert node.failed_write("GETEX", "s", "EX", "x") == (
        "ERR value is not an integer or out of range"
    )
    assert node.failed_write("GETEX", "s", "EX", 0) == "ERR invalid expire time in 'getex' command"
    assert node.failed_write("GETDEL", "l") == WRONGTYPE[1]
    assert node.failed_write("RENAME", "nokey", "x") == "ERR no such key"
    assert node.failed_write("RENAMENX", "nokey", "nokey") == "ERR no such key"


def test_setrange(node: BNode) -> None:
    assert node("SETRANGE", "k", 3, "") == 0
    assert node("EXISTS", "k") == 0  # nothing written, no key made
    assert node("SETRANGE", "k", 3, "ab") == 5
    assert node("GET", "k") == b"\x00\x00\x00ab"
    assert node("SETRANGE", "k", 1, "XYZW") == 5
    assert node("GET", "k") == b"\x00XYZW"
    assert node("SETRANGE", "k", 0, "") == 5
    node("EXPIRE", "k", 100)
    assert node("SETRANGE", "k", 7, "!") == 8
    assert node("TTL", "k") == 100  # the expiry stays


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, -1, b"abcdef"),
        (-100, -5, b"ab"),  # both negative, start clamped to 0: Redis's quirk
        (-1, -5, b""),
        (5, -100, b""),
        (2, 1, b""),
        (100, 200, b""),
        (4, 100, b"ef"),
        (-(2**63), -(2**63), b"a"),
        (0, 2**63 - 1, b"abcdef"),
    ],
)
def test_getrange_indexes(node: BNode, start: int, end: int, expected: bytes) -> None:
    node("SET", "k", "abcdef")
    assert node("GETRANGE", "k", start, end) == expected
    assert node("SUBSTR", "k", start, end) == expected


def test_getrange_of_missing_and_empty(node: BNode) -> None:
    assert node("GETRANGE", "nokey", 0, -1) == b""
    node("SET", "e", "")
    assert node("GETRANGE", "e", 0, -1) == b""
    assert node("GETRANGE", "e", -1, 0) == b""
    assert node.reply("GETRANGE", "nokey", "x", 0) == (
        "error",
        "ERR value is not an integer or out of range",
    )


def test_getdel_and_getex(node: BNode) -> None:
    node("SET", "k", "v", "EX", 100)
    assert node("GETEX", "k") == b"v"
    assert node("TTL", "k") == 100
    assert node("GETEX", "k", "PX", 5000, "px", 7000) == b"v"
    assert node("PTTL", "k") == 7000
    assert node("GETEX", "k", "PERSIST", "persist") == b"v"
    assert node("TTL", "k") == -1
    at = T0 // MS + 2000
    assert node("GETEX", "k", "PXAT", at) == b"v"
    assert node("PEXPIRETIME", "k") == at
    assert node("GETEX", "k", "EXAT", T0 // SEC) == b"v"  # already past: deleted
    assert node("EXISTS", "k") == 0
    assert node("GETEX", "k", "EX", "bad") is None  # a missing key: no check of the time
    node("SET", "k", "v")
    assert node("GETDEL", "k") == b"v"
    assert node("GETDEL", "k") is None
    node("RPUSH", "l", "a")
    assert node.reply("GETEX", "l", "EX", "bad") == WRONGTYPE


def test_expiries_past_the_nanosecond_clock_are_invalid(node: BNode) -> None:
    """The clone keeps expiries in int64 nanoseconds (to 2262): later ones are refused."""
    node("SET", "k", "v")
    assert node.rejected("SETEX", "k", 10**10, "v") == "ERR invalid expire time in 'setex' command"
    assert node.reply("GETEX", "k", "EXAT", 10**10) == (
        "error",
        "ERR invalid expire time in 'getex' command",
    )


def test_msetnx(node: BNode) -> None:
    assert node("MSETNX", "a", 1, "b", 2) == 1
    assert node("MSETNX", "a", 3, "c", 4) == 0
    assert node("EXISTS", "c") == 0
    assert node("MSETNX", "c", 1, "c", 2) == 1
    assert node("GET", "c") == b"2"
    node("RPUSH", "l", "x")
    assert node("MSETNX", "l", 1) == 0
    node("SET", "gone", "v", "PX", 1)
    node.advance(MS)
    assert node("MSETNX", "gone", "again") == 1
    assert node("TTL", "gone") == -1


def test_incrbyfloat(node: BNode) -> None:
    assert node("INCRBYFLOAT", "f", "0.1") == b"0.1"
    assert node("INCRBYFLOAT", "f", "0.2") == b"0.3"
    assert node("INCRBYFLOAT", "f", "-0.3") == b"0"
    node("SET", "t", "1", "EX", 100)
    assert node("INCRBYFLOAT", "t", "1.5") == b"2.5"
    assert node("TTL", "t") == 100
    node("SET", "t", "1", "PX", 1)
    node.advance(MS)
    assert node("INCRBYFLOAT", "t", "1") == b"1"
    assert node("TTL", "t") == -1


# -- the long double -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (b"0.1", b"0.2", b"0.3"),
        (b"0", b"0.000003814697265625", b"0.00000381469726562"),  # an exact tie: to even
        (b"0", b"-1e-20", b"0"),  # "-0" shows as "0"
        (b"0", b"5.0e-324", b"0"),
        (b"0", b"1.23456789012345678901234567890", b"1.23456789012345679"),
        (b"9223372036854775807", b"1", b"9223372036854775808"),
        (b"0", b"+.5", b"0.5"),
        (b"0.5", b"5.", b"5.5"),
        (b"5.5", b"0x1p-3", b"5.625"),
        (b"0", b"0X10", b"16"),
        (b"0", b"3.4e38", b"339999999999999999997662841525237710848"),
        (b"0", b"123456789.123456789", b"123456789.12345678899873747"),
        (b"1e17", b"0.5", b"100000000000000000.5"),
        (b"16", b"1e-4940", b"16"),  # a subnormal is a number
    ],
)
def test_long_double_sums_print_as_redis_prints_them(a: bytes, b: bytes, expected: bytes) -> None:
    assert format_long_double(add_long_doubles(parse_long_double(a), parse_long_double(b))) == (
        expected
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" 1",
        b"1 ",
        b"1e",
        b"abc",
        b"nan",
        b"-NaN(1)",
        b"1e5000",
        b"1e-5000",
        b"0x",
        b"1_0",
        b".",
        b"1" * 5120,
        b"1e" + b"9" * 3000,
        b"1\x00",
    ],
)
def test_what_is_not_a_valid_float(raw: bytes) -> None:
    with pytest.raises(ValueError, match=NOT_A_FLOAT):
        parse_long_double(raw)


def test_infinities_parse_and_refuse_the_sum() -> None:
    for raw in (b"inf", b"-Infinity", b"+INF"):
        with pytest.raises(ValueError, match=NAN_OR_INFINITY):
            add_long_doubles(parse_long_double(raw), Fraction(1))
    largest = parse_long_double(b"1.18973149535723176502e4932")
    with pytest.raises(ValueError, match=NAN_OR_INFINITY):
        add_long_doubles(largest, largest)
    assert parse_long_double(b"0e" + b"9" * 3000) == 0
    assert len(format_long_double(largest)) == 4933


def _x87_bits(value: Fraction) -> bytes:
    """The 10 bytes of an x87 extended-precision number equal to ``value`` (a long double)."""
    if value == 0:
        return bytes(10)
    a = abs(value)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    if e < -16382:
        biased, significand = 0, a * Fraction(2) ** (16382 + 63)
    else:
        biased, significand = e + 16383, a * Fraction(2) ** (63 - e)
    assert significand.denominator == 1
    top = biased | (0x8000 if value < 0 else 0)
    return int(significand).to_bytes(8, "little") + top.to_bytes(2, "little")


_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if platform.machine() == "x86_64" else None


def _strtold_bits(raw: bytes) -> bytes:
    assert _LIBC is not None
    out = ctypes.create_string_buffer(16)
    assert _LIBC.sscanf(raw, b"%Lf", out) == 1
    return out.raw[:10]


def _printf(bits: bytes) -> bytes:
    assert _LIBC is not None
    value = ctypes.c_longdouble.from_buffer_copy(bits + bytes(6))
    buf = ctypes.create_string_buffer(6000)
    n = _LIBC.snprintf(buf, 6000, b"%.17Lf", value)
    return buf.raw[:n]


@pytest.mark.skipif(_LIBC is None, reason="the C long double is x87's only on x86_64")
@settings(max_examples=300, deadline=None)
@given(
    raw=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.builds(
            lambda m, e: f"{m}e{e}", st.integers(-(10**25), 10**25), st.integers(-4960, 4935)
        ),
        st.builds(lambda m, e: f"{m:#x}p{e}", st.integers(0, 2**70), st.integers(-16500, 16300)),
    ).map(str.encode)
)
def test_parsing_and_printing_agree_with_glibc(raw: bytes) -> None:
    """The emulation against the C library's own strtold and printf("%.17Lf")."""
    try:
        value = parse_long_double(raw)
    except ValueError:
        return  # out of range: glibc's ERANGE cases, which Redis refuses
    assert isinstance(value, Fraction)
    bits = _strtold_bits(raw)
    if value == 0:  # -0: the clone keeps no sign on zero (it prints as 0 anyway)
        bits = bits[:9] + bytes([bits[9] & 0x7F])
    assert _x87_bits(value) == bits
    printed = _printf(bits).decode()
    if "." in printed:
        printed = printed.rstrip("0").rstrip(".")
    if printed == "-0":
        printed = "0"
    assert format_long_double(value).decode() == printed


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_is_a_long_double(x: float) -> None:
    assert round_long_double(Fraction(x)) == Fraction(x)


# -- LCS ---------------------------------------------------------------------------------------


def _naive_table(a: bytes, b: bytes) -> list[list[int]]:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                t[i][j] = t[i - 1][j - 1] + 1
            else:
                t[i][j] = max(t[i - 1][j], t[i][j - 1])
    return t


short = st.binary(max_size=25).map(lambda b: bytes(x % 3 + 97 for x in b))


@settings(max_examples=200, deadline=None)
@given(a=short, b=short)
def test_the_bit_parallel_table_is_the_lcs_table(a: bytes, b: bytes) -> None:
    table, naive = LcsTable(a, b), _naive_table(a, b)
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            assert table.length(i, j) == naive[i][j]


def test_lcs_replies(node: BNode) -> None:
    node("MSET", "a", "ohmytext", "b", "mynewtext")
    assert node("LCS", "a", "b") == b"mytext"
    assert node("LCS", "a", "b", "LEN") == 6
    assert node("LCS", "a", "b", "IDX", "MINMATCHLEN", 4, "WITHMATCHLEN") == {
        b"matches": [[[4, 7], [5, 8], 4]],
        b"len": 6,
    }  # a flat array in RESP2, a map in RESP3
    assert node("LCS", "nokey", "b", "IDX") == {b"matches": [], b"len": 0}
    node("RPUSH", "l", "x")
    assert node.reply("LCS", "l", "b", "FOO") == (
        "error",
        "ERR The specified keys must contain string values",
    )
    assert node.reply("LCS", "a", "b", "LEN", "IDX") == (
        "error",
        "ERR If you want both the length and indexes, please just use IDX.",
    )


def test_lcs_refuses_a_table_past_512_mb() -> None:
    with pytest.raises(ValueError, match="transient memory for LCS exceeds"):
        lcs_reply(b"x" * 12000, b"y" * 12000, LcsOptions(True, False, 0, False))


def test_a_long_lcs_is_quick() -> None:
    a = bytes((i * 7919) % 251 % 7 + 97 for i in range(11000))
    b = bytes((i * 104729) % 241 % 7 + 97 for i in range(11000))
    reply = lcs_reply(a, b, LcsOptions(False, True, 5, True))
    assert reply[b"len"] > 5000


# -- keyspace ------------------------------------------------------------------------------------


def test_rename_moves_value_and_expiry(node: BNode) -> None:
    node("SET", "a", "v", "PX", 5000)
    node("SET", "b", "old", "EX", 100)
    assert node("RENAME", "a", "b") == OK
    assert node("GET", "b") == b"v"
    assert node("PTTL", "b") == 5000
    assert node("EXISTS", "a") == 0
    node("SET", "a", "w")
    assert node("RENAME", "a", "b") == OK
    assert node("TTL", "b") == -1
    assert node("RENAME", "b", "b") == OK
    assert node("RENAMENX", "b", "b") == 0
    node("SET", "c", "x")
    assert node("RENAMENX", "b", "c") == 0
    assert node("RENAMENX", "b", "d") == 1
    assert node.clone._key_count() == 2


def test_rename_and_copy_of_every_type(node: BNode) -> None:
    put_objects(node)
    node("RPUSH", "l", "x", "y")
    for name, kind in [(b"h", "hash"), (b"s", "set"), (b"z", "zset"), (b"l", "list")]:
        original = node.clone._objects[name]
        assert node("COPY", name, name + b"2") == 1
        copy = node.clone._objects[name + b"2"]
        assert copy is not original
        assert type(copy) is type(original)
        assert list(copy) == list(original) if kind in ("list", "zset") else copy == original
        assert node("RENAME", name + b"2", name + b"3") == OK
        assert node("TYPE", name + b"3") == Status(kind)
    node.clone._objects[b"h3"][b"new"] = b"x"  # type: ignore[index]
    assert b"new" not in node.clone._objects[b"h"]  # type: ignore[operator]
    node.clone._objects[b"s3"].add(b"9")  # type: ignore[union-attr]
    assert b"9" not in node.clone._objects[b"s"]  # type: ignore[operator]
    z3 = node.clone._objects[b"z3"]
    assert isinstance(z3, ZSet)
    z3.add(b"c", 3.0)
    assert len(node.clone._objects[b"z"]) == 2
    assert node("RPUSH", "l3", "z") == 3
    assert node("LRANGE", "l", 0, -1) == [b"x", b"y"]
    assert node("SCAN", 0, "TYPE", "zset", "COUNT", 100)[1] == [b"z", b"z3"]
    assert node("SCAN", 0, "TYPE", "hash", "COUNT", 100)[1] == [b"h", b"h3"]
    assert node("SCAN", 0, "TYPE", "set", "COUNT", 100)[1] == [b"s", b"s3"]


def test_copy(node: BNode) -> None:
    assert node("COPY", "nokey", "b") == 0
    node("SET", "a", "v", "EX", 100)
    node("SET", "b", "x")
    assert node("COPY", "a", "b") == 0
    assert node("COPY", "a", "b", "replace", "db", 0) == 1
    assert node("GET", "b") == b"v"
    assert node("TTL", "b") == 100
    node.advance(100 * SEC)
    assert node("COPY", "a", "c") == 0  # the source expired


def test_rename_and_copy_wake_clients_blocked_on_the_destination(node: BNode) -> None:
    for move in (("RENAME", "src", "q"), ("COPY", "src", "q")):
        node("DEL", "q")
        waiter = node("BLPOP", "q", 0)
        assert not waiter.done
        node("RPUSH", "src", "x", "y")
        node(*move)
        assert waiter.done
        assert waiter.result == [b"q", b"x"]
        node("DEL", "src")


def _changed(node: BNode, key: str, *command: Any) -> bool:
    token = node.clone.watch(key.encode())
    node(*command)
    return node.clone.watch_changed(key.encode(), token)


@pytest.mark.parametrize(
    ("setup", "command", "watched", "changed"),
    [
        (("SET", "a", "v"), ("RENAME", "a", "b"), "a", True),
        (("SET", "a", "v"), ("RENAME", "a", "b"), "b", True),
        (("SET", "a", "v"), ("RENAME", "a", "a"), "a", False),
        (("SET", "a", "v"), ("RENAMENX", "a", "a"), "a", False),
        (("MSET", "a", "v", "b", "w"), ("RENAMENX", "a", "b"), "b", False),
        (("SET", "a", "v"), ("COPY", "a", "b"), "b", True),
        (("SET", "a", "v"), ("COPY", "a", "b"), "a", False),
        (("MSET", "a", "v", "b", "w"), ("COPY", "a", "b"), "b", False),
        (("SET", "a", "v"), ("GETDEL", "a"), "a", True),
        (("SET", "a", "v"), ("GETEX", "a"), "a", False),
        (("SET", "a", "v"), ("GETEX", "a", "PERSIST"), "a", False),
        (("SET", "a", "v", "EX", 9), ("GETEX", "a", "PERSIST"), "a", True),
        (("SET", "a", "v"), ("GETEX", "a", "EX", 9), "a", True),
        (("SET", "a", "v"), ("SETRANGE", "a", 0, ""), "a", False),
        (("SET", "a", "v"), ("SETRANGE", "a", 0, "v"), "a", True),
        (("SET", "a", "1"), ("INCRBYFLOAT", "a", "0"), "a", True),
        (("SET", "b", "v"), ("MSETNX", "a", "1", "b", "2"), "a", False),
        (("SET", "x", "v"), ("MSETNX", "a", "1", "b", "2"), "b", True),
        (("SET", "a", "v"), ("UNLINK", "a"), "a", True),
        (("SET", "a", "v"), ("TOUCH", "a"), "a", False),
        (("SET", "x", "v"), ("SETEX", "a", 5, "v"), "a", True),
    ],
)
def test_the_watch_log(
    node: BNode, setup: tuple[Any, ...], command: tuple[Any, ...], watched: str, changed: bool
) -> None:
    node(*setup)
    assert _changed(node, watched, *command) is changed


def test_touch_unlink_expiretime(node: BNode) -> None:
    node("MSET", "a", "1", "b", "2")
    assert node("TOUCH", "a", "b", "c", "a") == 3
    assert node("UNLINK", "a", "c") == 1
    assert node("EXPIRETIME", "b") == -1
    assert node("PEXPIRETIME", "nokey") == -2
    node("PEXPIREAT", "b", 4102444800500)
    assert node("EXPIRETIME", "b") == 4102444801  # rounded, as Redis does
    assert node("PEXPIRETIME", "b") == 4102444800500
    node("PEXPIRE", "b", 1000)
    assert node("PEXPIRETIME", "b") == T0 // MS + 1000


def test_randomkey(node: BNode) -> None:
    assert node("RANDOMKEY") is None
    node("SET", "dead", "v", "PX", 1)
    node.advance(MS)
    assert node("RANDOMKEY") is None  # only an expired key, not purged yet
    node("SET", "a", "1")
    node("RPUSH", "l", "x")
    picks = {node("RANDOMKEY") for _ in range(20)}
    assert picks <= {b"a", b"l"}
    node.m.seed = 1
    first = node("RANDOMKEY")
    assert all(node("RANDOMKEY") == first for _ in range(5))  # the same draw, the same key
    seen = set()
    for seed in range(40):
        node.m.seed = seed
        seen.add(node("RANDOMKEY"))
    assert seen == {b"a", b"l"}
    assert node.reply("RANDOMKEY", "x") == (
        "error",
        "ERR wrong number of arguments for 'randomkey' command",
    )


# -- OBJECT ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoding", "refcount"),
    [
        (b"1", b"int", 2**31 - 1),
        (b"9999", b"int", 2**31 - 1),
        (b"10000", b"int", 1),
        (b"-1", b"int", 1),
        (b"01", b"embstr", 1),
        (b"", b"embstr", 1),
        (b"9223372036854775808", b"embstr", 1),
        (b"x" * 44, b"embstr", 1),
        (b"x" * 45, b"raw", 1),
    ],
)
def test_object_of_strings(node: BNode, value: bytes, encoding: bytes, refcount: int) -> None:
    node("SET", "k", value)
    assert node("OBJECT", "ENCODING", "k") == encoding
    assert node("OBJECT", "refcount", "k") == refcount
    assert node("OBJECT", "IDLETIME", "k") == 0


def test_object_encodings_of_containers(node: BNode) -> None:
    objects = node.clone._objects
    node("RPUSH", "l", "x")
    objects[b"h"] = {b"f%d" % i: b"v" for i in range(512)}
    objects[b"h2"] = {b"f%d" % i: b"v" for i in range(513)}
    objects[b"h3"] = {b"f": b"v" * 65}
    objects[b"s"] = {b"%d" % i for i in range(512)}
    objects[b"s2"] = {b"%d" % i for i in range(513)}
    objects[b"s3"] = {b"1", b"01"}
    objects[b"z"] = ZSet.from_pairs([(b"m%d" % i, float(i)) for i in range(128)])
    objects[b"z2"] = ZSet.from_pairs([(b"m%d" % i, float(i)) for i in range(129)])
    objects[b"z3"] = ZSet.from_pairs([(b"m" * 65, 1.0)])
    expected = {
        "l": b"quicklist",
        "h": b"listpack",
        "h2": b"hashtable",
        "h3": b"hashtable",
        "s": b"intset",
        "s2": b"hashtable",
        "s3": b"hashtable",
        "z": b"listpack",
        "z2": b"skiplist",
        "z3": b"skiplist",
    }
    for key, encoding in expected.items():
        assert node("OBJECT", "ENCODING", key) == encoding
        assert node("OBJECT", "REFCOUNT", key) == 1


def test_object_errors_and_help(node: BNode) -> None:
    node("SET", "k", "v")
    assert node("OBJECT", "ENCODING", "nokey") is None
    assert node("OBJECT", "FREQ", "nokey") is None
    assert node.reply("OBJECT", "FREQ", "k")[1].startswith(
        "ERR An LFU maxmemory policy is not selected"
    )
    assert node.reply("OBJECT", "foo") == (
        "error",
        "ERR unknown subcommand 'foo'. Try OBJECT HELP.",
    )
    assert node.reply("OBJECT", "ENCODING") == (
        "error",
        "ERR wrong number of arguments for 'object|encoding' command",
    )
    assert node.reply("OBJECT", "help", "x") == (
        "error",
        "ERR wrong number of arguments for 'object|help' command",
    )
    assert node.reply("OBJECT") == ("error", "ERR wrong number of arguments for 'object' command")
    help_lines = node("OBJECT", "HELP")
    assert len(help_lines) == 15
    assert help_lines[-1] == Status("    Prints this help.")


def test_wrongtype_everywhere(node: BNode) -> None:
    put_objects(node)
    node("RPUSH", "l", "x")
    node("SET", "str", "v")
    for key in ("h", "s", "z", "l"):
        for command in [
            ("SETRANGE", key, 0, "x"),
            ("SETRANGE", key, 0, ""),
            ("GETRANGE", key, 0, -1),
            ("SUBSTR", key, 0, -1),
            ("GETDEL", key),
            ("GETEX", key),
            ("GETEX", key, "PERSIST"),
            ("INCRBYFLOAT", key, "1"),
        ]:
            assert node.reply(*command) == WRONGTYPE, command
        assert node.reply("LCS", key, "str") == (
            "error",
            "ERR The specified keys must contain string values",
        )
        assert node("MSETNX", key, "v") == 0
    # What replaces a value of any type.
    assert node("SETEX", "h", 10, "v") == OK
    assert node("TYPE", "h") == Status("string")


def test_unchanged_deque_after_failed_copy(node: BNode) -> None:
    node("RPUSH", "l", "a")
    node("SET", "d", "x")
    before = node.snapshot()
    assert node("COPY", "l", "d") == 0
    assert node.snapshot() == before
    assert isinstance(node.clone._objects[b"l"], deque)


# -- TIME, MEMORY, scan cursors ------------------------------------------------------------------


def test_time_reads_the_node_clock_without_the_log(node: BNode) -> None:
    node.m.clock = T0 + 1 * SEC + 500_007_000
    writes = node.m.writes
    assert node("TIME") == [b"%d" % (T0 // SEC + 1), b"500007"]
    node.advance(2 * MS)
    assert node("TIME") == [b"%d" % (T0 // SEC + 1), b"502007"]
    assert node.m.writes == writes
    assert "time" in node.clone.reads()  # served by the node that is asked, never logged
    assert node.reply("TIME", "x") == ("error", "ERR wrong number of arguments for 'time' command")


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        # What redis-server 7.0.15 answers for these (jemalloc, default configuration).
        (("SET", "k", "v"), 64),
        (("SET", "k", "12345"), 48),
        (("SET", "k", "x" * 100), 160),
        (("HSET", "k", "a", "1", "b", "2"), 80),
        (("SADD", "k", "1", "2", "3"), 64),
        (("SADD", "k", "a", "b", "c"), 232),
        (("ZADD", "k", "1", "a", "2", "b"), 80),
    ],
)
def test_memory_usage_estimates_redis_bytes(
    node: BNode, command: tuple[str, ...], usage: int
) -> None:
    node(*command)
    assert node("MEMORY", "USAGE", "k") == usage


def test_memory_usage_grows_with_the_value_and_samples_extrapolate(node: BNode) -> None:
    node("SET", "short", "x" * 10)
    node("SET", "long", "x" * 10_000)
    assert node("MEMORY", "USAGE", "long") > 10_000
    assert node("MEMORY", "USAGE", "short") < node("MEMORY", "USAGE", "long")
    node("RPUSH", "l", *["x" * 100] * 1000)
    assert 100_000 < node("MEMORY", "USAGE", "l") < 120_000
    node.clone._objects[b"h"] = {b"f%d" % i: b"v" * 10 for i in range(1000)}
    node.clone._extras = True
    assert node("MEMORY", "USAGE", "h") == node("MEMORY", "USAGE", "h", "SAMPLES", 0)
    # Samples of the first elements stand for the rest: a set of short members, then long ones.
    node.clone._objects[b"s"] = {b"m%d" % i for i in range(5)} | {
        b"x" * 90 + b"%d" % i for i in range(995)
    }
    assert node("MEMORY", "USAGE", "s", "SAMPLES", 0) != node("MEMORY", "USAGE", "s", "SAMPLES", 1)


def test_memory_usage_of_an_expired_key_is_nil(node: BNode) -> None:
    node("SET", "k", "v", "PX", 100)
    assert isinstance(node("MEMORY", "USAGE", "k"), int)
    node.advance(100 * MS)
    assert node("MEMORY", "USAGE", "k") is None


def test_memory_subcommands(node: BNode) -> None:
    assert node("MEMORY", "DOCTOR").text.startswith(b"Hi Sam, this instance is empty")
    node("SET", "k", "v")
    assert node("MEMORY", "doctor").text.startswith(b"Hi Sam, I can't find any memory issue")
    assert node("MEMORY", "PURGE") == OK
    assert node("MEMORY", "MALLOC-STATS") == b"Stats not supported for the current allocator"
    assert node.reply("MEMORY", "STATS") == (
        "error",
        "ERR MEMORY STATS is not supported by redraft",
    )
    help_lines = node("MEMORY", "HELP")
    assert len(help_lines) == 14 and help_lines[-1] == Status("    Prints this help.")


def test_a_scan_cursor_reads_as_strtoul(node: BNode) -> None:
    for i in range(5):
        node("SET", f"k{i}", "v")
    cursor, page = node("SCAN", "", "COUNT", 2)
    assert page == [b"k0", b"k1"]
    following = node("SCAN", cursor, "COUNT", 2)
    assert following[1] == [b"k2", b"k3"]
    wrapped = b"-%d" % (2**64 - int(cursor))
    for spelled in (b"+" + cursor, b"00" + cursor, wrapped, cursor + b"\0junk"):
        assert node("SCAN", spelled, "COUNT", 2) == following, spelled
    for refused in (b" " + cursor, cursor + b" ", b"+-" + cursor, b"%d" % 2**64):
        assert node.reply("SCAN", refused) == ("error", "ERR invalid cursor"), refused
