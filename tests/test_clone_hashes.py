"""The clone's hash commands, driven directly through the fake Applier of ``test_clone_machine``.

Replies and errors as redis-server 7.0 gives them (``tests/differential``
checks the same against a real one), field order, what reaches the log and
what is refused before it, the WATCH log, HSCAN's cursors, HINCRBYFLOAT's
long double arithmetic, HRANDFIELD's draws, and snapshots.
"""

from __future__ import annotations

import io
import random
from fractions import Fraction
from typing import Any

import pytest

from redraft.examples.clone import Clone, keyspace
from redraft.examples.clone.hash_ops import (
    LISTPACK_ENTRIES,
    MAX_RANDOM_REPLY,
    format_long_double,
    listpack_like,
    string2ld,
)
from redraft.examples.clone.scanning import parse_scan_cursor
from redraft.machine import OK, Pairs, Status
from tests.test_clone_machine import MS, T0, FakeApplier, Node

pytestmark = pytest.mark.timeout(60)

WRONGTYPE = ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Node:
    n = Node()
    # WATCH reads the node's wall clock: make it the fake one.
    monkeypatch.setattr(keyspace, "wall_clock", lambda: n.m.clock)
    return n


def flat(*pairs: tuple[str, str]) -> list[str]:
    return [x for pair in pairs for x in pair]


# -- the basics -------------------------------------------------------------------------------


def test_set_get_and_ask(node: Node) -> None:
    assert node("HSET", "h", "a", "1", "b", "2", "c", "3") == 3
    assert node("HSET", "h", "a", "1") == 0
    assert node("HSET", "h", "a", "10", "d", "4", "d", "5") == 1
    assert node("HGET", "h", "a") == b"10"
    assert node("HGET", "h", "d") == b"5"
    assert node("HGET", "h", "zz") is None
    assert node("HGET", "nokey", "a") is None
    assert node("HMGET", "h", "a", "zz", "b") == [b"10", None, b"2"]
    assert node("HMGET", "nokey", "a", "b") == [None, None]
    assert node("HLEN", "h") == 4
    assert node("HLEN", "nokey") == 0
    assert node("HEXISTS", "h", "a") == 1
    assert node("HEXISTS", "h", "zz") == 0
    assert node("HEXISTS", "nokey", "a") == 0
    assert node("HSTRLEN", "h", "a") == 2
    assert node("HSTRLEN", "h", "zz") == 0
    assert node("HSTRLEN", "nokey", "zz") == 0
    assert node("TYPE", "h") == Status("hash")
    assert node("HSETNX", "h", "a", "x") == 0
    assert node("HSETNX", "h", "e", "5") == 1
    assert node("HSETNX", "new", "f", "v") == 1
    assert node("HGETALL", "new") == {b"f": b"v"}
    assert node("HMSET", "h", "a", "1", "f", "6") is OK
    assert node("HDEL", "h", "zz") == 0
    assert node("HDEL", "h", "a", "zz", "a") == 1
    assert node("HDEL", "nokey", "a") == 0
    assert node("HDEL", "h", "b", "c", "d", "e", "f") == 5  # the last field deletes the key
    assert node("EXISTS", "h") == 0
    assert node("HGETALL", "h") == {}
    assert node("HKEYS", "h") == []
    assert node("HVALS", "h") == []


def test_the_hot_commands_are_plain() -> None:
    clone = Clone()
    assert {"hset", "hmset", "hsetnx", "hdel", "hincrby", "hincrbyfloat"} <= set(clone.writes())
    assert {"hget", "hmget", "hexists", "hlen", "hstrlen", "hkeys", "hvals", "hgetall"} <= set(
        clone.reads()
    )
    assert "hrandfield" in clone.reads()
    assert b"hscan" in clone._handlers
    assert b"HSCAN" in clone._handlers


def test_a_hash_is_a_python_dict(node: Node) -> None:
    node("HSET", "h", "a", "1")
    assert type(node.clone._objects[b"h"]) is dict
    assert b"h" not in node.clone._data


def test_fields_answer_in_insertion_order(node: Node) -> None:
    node("HSET", "o", "c", "1", "a", "2", "b", "3")
    assert node("HKEYS", "o") == [b"c", b"a", b"b"]
    node("HSET", "o", "a", "20")  # an update keeps its place
    node("HINCRBY", "o", "c", "1")
    node("HINCRBYFLOAT", "o", "b", "0.5")
    assert node("HVALS", "o") == [b"2", b"20", b"3.5"]
    node("HDEL", "o", "c")
    node("HSET", "o", "c", "4")  # deleted and added again: at the end
    assert list(node("HGETALL", "o").items()) == [(b"a", b"20"), (b"b", b"3.5"), (b"c", b"4")]


def test_hgetall_answers_a_copy(node: Node) -> None:
    node("HSET", "h", "a", "1")
    reply = node("HGETALL", "h")
    node("HSET", "h", "b", "2")
    assert reply == {b"a": b"1"}


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd",
    [
        ("HSET", "s", "a", "1"),
        ("HMSET", "s", "a", "1"),
        ("HSETNX", "s", "a", "1"),
        ("HGET", "s", "a"),
        ("HMGET", "s", "a"),
        ("HDEL", "s", "a"),
        ("HEXISTS", "s", "a"),
        ("HLEN", "s"),
        ("HSTRLEN", "s", "a"),
        ("HKEYS", "s"),
        ("HVALS", "s"),
        ("HGETALL", "s"),
        ("HINCRBY", "s", "a", "1"),
        ("HINCRBYFLOAT", "s", "a", "1"),
        ("HRANDFIELD", "s"),
        ("HRANDFIELD", "s", "0"),
        ("HRANDFIELD", "s", "2", "WITHVALUES"),
        ("HSCAN", "s", "0"),
        ("HSCAN", "s", "0", "COUNT", "x"),
        ("HSET", "l", "a", "1"),
        ("HGET", "l", "a"),
        ("HSCAN", "l", "0"),
    ],
)
def test_hash_commands_on_another_type_are_wrongtype(node: Node, cmd: tuple[Any, ...]) -> None:
    node("SET", "s", "v")
    node("RPUSH", "l", "x")
    before = node.snapshot()
    assert node.reply(*cmd) == WRONGTYPE
    assert node.snapshot() == before


def test_other_commands_on_a_hash_are_wrongtype(node: Node) -> None:
    node("HSET", "h", "a", "1")
    for cmd in [("GET", "h"), ("LPUSH", "h", "a"), ("INCR", "h"), ("SADD", "h", "a")]:
        assert node.reply(*cmd) == WRONGTYPE
    assert node("MGET", "h") == [None]


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (("HSET", "h"), "ERR wrong number of arguments for 'hset' command"),
        (("HSET", "h", "a"), "ERR wrong number of arguments for 'hset' command"),
        (("HMSET", "h", "a"), "ERR wrong number of arguments for 'hmset' command"),
        (("HSETNX", "h", "a"), "ERR wrong number of arguments for 'hsetnx' command"),
        (("HSETNX", "h", "a", "1", "2"), "ERR wrong number of arguments for 'hsetnx' command"),
        (("HDEL", "h"), "ERR wrong number of arguments for 'hdel' command"),
        (("HINCRBY", "h", "a"), "ERR wrong number of arguments for 'hincrby' command"),
        (("HINCRBY", "h", "a", "x"), "ERR value is not an integer or out of range"),
        (("HINCRBY", "h", "a", "01"), "ERR value is not an integer or out of range"),
        (
            ("HINCRBY", "h", "a", "9223372036854775808"),
            "ERR value is not an integer or out of range",
        ),
        (("HINCRBYFLOAT", "h", "a"), "ERR wrong number of arguments for 'hincrbyfloat' command"),
        (("HINCRBYFLOAT", "h", "a", "x"), "ERR value is not a valid float"),
        (("HINCRBYFLOAT", "h", "a", ""), "ERR value is not a valid float"),
        (("HINCRBYFLOAT", "h", "a", "nan"), "ERR value is not a valid float"),
        (("HINCRBYFLOAT", "h", "a", "1e5000"), "ERR value is not a valid float"),
        (("HINCRBYFLOAT", "h", "a", "inf"), "ERR value is NaN or Infinity"),
        (("HINCRBYFLOAT", "h", "a", "-Infinity"), "ERR value is NaN or Infinity"),
    ],
)
def test_bad_writes_are_refused_before_the_log(
    node: Node, cmd: tuple[Any, ...], error: str
) -> None:
    assert node.rejected(*cmd) == error


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (("HSET", "h", "a", "1", "b"), "ERR wrong number of arguments for 'hset' command"),
        (("HMSET", "h", "a", "1", "b"), "ERR wrong number of arguments for 'hmset' command"),
        (("HINCRBY", "h", "s", "1"), "ERR hash value is not an integer"),
        (("HINCRBY", "h", "max", "1"), "ERR increment or decrement would overflow"),
        (("HINCRBY", "h", "min", "-1"), "ERR increment or decrement would overflow"),
        (("HINCRBYFLOAT", "h", "s", "1"), "ERR hash value is not a float"),
        (("HINCRBYFLOAT", "h", "inf", "1"), "ERR increment would produce NaN or Infinity"),
        (("HINCRBYFLOAT", "h", "big", "1e4932"), "ERR increment would produce NaN or Infinity"),
    ],
)
def test_writes_refused_when_applied_change_nothing(
    node: Node, cmd: tuple[Any, ...], error: str
) -> None:
    """Errors that depend on the state, and HSET's odd count (queued by MULTI, as in Redis)."""
    node("HSET", "h", "s", "x", "max", str(2**63 - 1), "min", str(-(2**63)), "inf", "inf")
    node("HINCRBYFLOAT", "h", "big", "1e4932")
    assert node.failed_write(*cmd) == error


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (("HGET", "h"), "ERR wrong number of arguments for 'hget' command"),
        (("HMGET", "h"), "ERR wrong number of arguments for 'hmget' command"),
        (("HLEN",), "ERR wrong number of arguments for 'hlen' command"),
        (("HKEYS", "h", "x"), "ERR wrong number of arguments for 'hkeys' command"),
        (("HGETALL",), "ERR wrong number of arguments for 'hgetall' command"),
        (("HRANDFIELD",), "ERR wrong number of arguments for 'hrandfield' command"),
        (("HRANDFIELD", "h", "x"), "ERR value is not an integer or out of range"),
        (("HRANDFIELD", "h", "1", "FOO"), "ERR syntax error"),
        (("HRANDFIELD", "h", "1", "WITHVALUES", "x"), "ERR syntax error"),
        (
            ("HRANDFIELD", "h", "-9223372036854775808"),
            "ERR value is out of range, value must between -9223372036854775807 and "
            "9223372036854775807",
        ),
        (("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"), "ERR value is out of range"),
        (("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"), "ERR value is out of range"),
        (("HSCAN", "h"), "ERR wrong number of arguments for 'hscan' command"),
        (("HSCAN", "h", "x"), "ERR invalid cursor"),
        (("HSCAN", "h", "0", "COUNT", "0"), "ERR syntax error"),
        (("HSCAN", "h", "0", "COUNT", "x"), "ERR value is not an integer or out of range"),
        (("HSCAN", "h", "0", "TYPE", "hash"), "ERR syntax error"),
        (("HSCAN", "h", "0", "NOVALUES"), "ERR syntax error"),
        (("HSCAN", "h", "0", "MATCH"), "ERR syntax error"),
    ],
)
def test_bad_reads_answer_redis_errors(node: Node, cmd: tuple[Any, ...], error: str) -> None:
    node("HSET", "h", "a", "1")
    assert node.reply(*cmd) == ("error", error)


def test_hrandfield_and_hscan_options_of_a_missing_key(node: Node) -> None:
    # HRANDFIELD reads its count before the key; HSCAN its options only for a hash.
    assert node.reply("HRANDFIELD", "nokey", "x") == (
        "error",
        "ERR value is not an integer or out of range",
    )
    assert node("HRANDFIELD", "nokey", "-4611686018427387903", "WITHVALUES") == []
    assert node("HSCAN", "nokey", "0", "COUNT", "x") == [b"0", []]
    assert node.reply("HSCAN", "nokey", "x") == ("error", "ERR invalid cursor")


# -- counters ---------------------------------------------------------------------------------


def test_hincrby(node: Node) -> None:
    assert node("HINCRBY", "h", "a", "5") == 5
    assert node("HINCRBY", "h", "a", "-7") == -2
    assert node("HGET", "h", "a") == b"-2"
    node("HSET", "h", "b", str(2**63 - 2))
    assert node("HINCRBY", "h", "b", "1") == 2**63 - 1
    for bad in ("1.5", "01", "-0", "", " 1", "1e3", "12345678901234567890"):
        node("HSET", "h", "c", bad)
        assert node.reply("HINCRBY", "h", "c", "1") == ("error", "ERR hash value is not an integer")


@pytest.mark.parametrize(
    ("old", "incr", "new"),
    [
        (None, "10.5", b"10.5"),
        (b"10.5", "0.1", b"10.6"),
        (b"1", "0.1", b"1.1"),
        (b"1.1", "0.2", b"1.3"),
        (None, "0.000003814697265625", b"0.00000381469726562"),  # a tie: to even
        (None, "0.000011444091796875", b"0.00001144409179688"),
        (None, "1e-20", b"0"),
        (None, "-1e-20", b"0"),
        (None, "-0", b"0"),
        (b"5000", "-5.0e3", b"0"),
        (None, "1e20", b"100000000000000000000"),
        (b"100000000000000000000", "0.1", b"100000000000000000000"),  # below its precision
        (b"10000000000", "0.1", b"10000000000.09999999962747097"),
        (b"9223372036854775807", "1", b"9223372036854775808"),
        (None, "0x10", b"16"),
        (b"16", "0x1.8p1", b"19"),
        (None, "1.e2", b"100"),
        (None, ".5", b"0.5"),
        (None, "+1", b"1"),
        (None, "0e-5000", b"0"),
        (None, "0x1p-16445", b"0"),
        (b"01", "1", b"2"),
        (b"-0", "1", b"1"),
        (
            None,
            "1e100",
            b"9999999999999999999669353532207342619498699019828496079271391541752018669482644324418977840117055488",
        ),
    ],
)
def test_hincrbyfloat_is_long_double_arithmetic(
    node: Node, old: bytes | None, incr: str, new: bytes
) -> None:
    if old is not None:
        node("HSET", "h", "f", old)
    assert node("HINCRBYFLOAT", "h", "f", incr) == new
    assert node("HGET", "h", "f") == new


def test_hincrbyfloat_prints_huge_values_whole(node: Node) -> None:
    value = node("HINCRBYFLOAT", "h", "f", "1.1e4932")
    assert len(value) == 4933
    assert value.startswith(b"10999999999999999999743731075282418176590308692790434077349880")
    assert node("HINCRBYFLOAT", "h", "f", "0.1") == value  # far below its precision
    assert node("HINCRBYFLOAT", "h", "f", "-1.1e4932") == b"0"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"1", Fraction(1)),
        (b"-2.5", Fraction(-5, 2)),
        (b"0x1p-16445", Fraction(1, 2**16445)),  # the least subnormal
        (b"0x1.8p-16446", Fraction(1, 2**16445)),  # rounds up to it
        (b"inf", float("inf")),
        (b"-INFINITY", float("-inf")),
        (b"0x1p-16446", None),  # a tie, to even: zero, an underflow
        (b"1e-5000", None),
        (b"1.19e4932", None),
        (b"0x1p16384", None),
        (b"1e999999999999", None),
        (b"nan", None),
        (b"", None),
        (b" 1", None),
        (b"1 ", None),
        (b"1.5\x00abc", None),
        (b"\x00", None),
        (b"1_0", None),
        (b"1e", None),
        (b"0x", None),
        (b"infinit", None),
        (b"\xd9\xa1", None),
        (b"1" * 5120, None),
    ],
)
def test_string2ld_reads_as_redis(raw: bytes, value: Fraction | float | None) -> None:
    assert string2ld(raw) == value


def test_long_doubles_print_as_redis() -> None:
    assert format_long_double(Fraction(0.1)) == b"0.10000000000000001"  # a double's 0.1, exactly
    assert format_long_double(Fraction(1, 10)) == b"0.1"
    assert format_long_double(Fraction(-1, 10**30)) == b"0"
    assert format_long_double(Fraction(-3, 2)) == b"-1.5"
    assert format_long_double(Fraction(10**4000)) == b"1" + b"0" * 4000


# -- HRANDFIELD -------------------------------------------------------------------------------


def test_hrandfield(node: Node) -> None:
    pairs = [(f"f{i}".encode(), f"v{i}".encode()) for i in range(10)]
    node("HSET", "h", *[x for pair in pairs for x in pair])
    fields = [f for f, _ in pairs]
    assert node("HRANDFIELD", "h") in fields
    assert node("HRANDFIELD", "h", "0") == []
    assert node("HRANDFIELD", "h", "0", "WITHVALUES") == []
    assert node("HRANDFIELD", "h", "10") == fields  # the whole hash, in its order
    # Pairs: flat in RESP2, [field, value] arrays in RESP3.
    assert node("HRANDFIELD", "h", "100", "withvalues") == Pairs(pairs)
    some = node("HRANDFIELD", "h", "4")
    assert len(some) == len(set(some)) == 4 and set(some) <= set(fields)
    one = node("HRANDFIELD", "h", "1", "WITHVALUES")
    assert isinstance(one, Pairs) and len(one) == 1 and one.pairs[0] in pairs
    many = node("HRANDFIELD", "h", "-25")
    assert len(many) == 25 and set(many) <= set(fields)
    with_values = node("HRANDFIELD", "h", "-7", "WITHVALUES")
    assert isinstance(with_values, Pairs) and len(with_values) == 7
    assert all(p in pairs for p in with_values)
    assert node("HRANDFIELD", "nokey") is None
    assert node("HRANDFIELD", "nokey", "5") == []
    assert node.reply("HRANDFIELD", "h", str(-MAX_RANDOM_REPLY - 1)) == (
        "error",
        f"ERR count is out of range, must be at least {-MAX_RANDOM_REPLY}",
    )
    assert node("HRANDFIELD", "nokey", str(-MAX_RANDOM_REPLY - 1)) == []


def test_hrandfield_is_a_read(node: Node) -> None:
    node("HSET", "h", "a", "1", "b", "2")
    before = (node.m.writes, node.snapshot())
    node("HRANDFIELD", "h", "-5", "WITHVALUES")
    assert (node.m.writes, node.snapshot()) == before


# -- HSCAN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cursor"),
    [
        (b"0", 0),
        (b"", 0),
        (b"5", 5),
        (b"+7", 7),
        (b"-1", 2**64 - 1),
        (b"18446744073709551615", 2**64 - 1),
        (b"0\x00garbage", 0),
        (b"18446744073709551616", None),
        (b" 1", None),
        (b"1x", None),
        (b"+", None),
        (b"x", None),
    ],
)
def test_hscan_cursors_are_read_as_strtoul(raw: bytes, cursor: int | None) -> None:
    if cursor is None:
        with pytest.raises(ValueError, match="invalid cursor"):
            parse_scan_cursor(raw)
    else:
        assert parse_scan_cursor(raw) == cursor


def test_a_small_hash_comes_whole(node: Node) -> None:
    node("HSET", "h", "a", "1", "b", "2", "c", "3")
    whole = [b"0", [b"a", b"1", b"b", b"2", b"c", b"3"]]
    assert node("HSCAN", "h", "0") == whole
    assert node("HSCAN", "h", "0", "COUNT", "1") == whole
    assert node("HSCAN", "h", "12345") == whole
    assert node("HSCAN", "h", "0", "MATCH", "[ab]") == [b"0", [b"a", b"1", b"b", b"2"]]
    assert node("HSCAN", "nokey", "0") == [b"0", []]


def test_the_listpack_limits() -> None:
    short = {str(i).encode(): b"v" for i in range(LISTPACK_ENTRIES)}
    assert listpack_like(short)
    assert not listpack_like({**short, b"one-more": b"v"})
    assert listpack_like({b"a": b"x" * 64})
    assert not listpack_like({b"a": b"x" * 65})
    assert not listpack_like({b"y" * 65: b"1"})


def walk(node: Node, key: str, *opts: Any) -> tuple[list[bytes], int]:
    cursor = b"0"
    seen: list[bytes] = []
    for calls in range(1, 10_000):
        cursor, page = node("HSCAN", key, cursor, *opts)
        seen += page
        if cursor == b"0":
            return seen, calls
    raise AssertionError("the walk did not end")


def test_a_large_hash_is_walked_with_cursors(node: Node) -> None:
    pairs = [(f"f{i}".encode(), f"v{i}".encode()) for i in range(1000)]
    node("HSET", "big", *[x for pair in pairs for x in pair])
    seen, calls = walk(node, "big", "COUNT", "100")
    assert calls == 10
    assert seen == [x for pair in pairs for x in pair]  # this node walks in insertion order
    seen, calls = walk(node, "big", "MATCH", "f1*", "COUNT", "250")
    assert calls == 4
    assert seen[0::2] == [f for f, _ in pairs if f.startswith(b"f1")]
    first = node("HSCAN", "big", "0", "COUNT", "10")[0]
    node("HSET", "big2", *flat(*[(f"f{i}", "v") for i in range(1000)]))
    assert node.reply("HSCAN", "big2", first) == ("error", "ERR invalid cursor")  # big's walk
    assert node.reply("HSCAN", "big", "999") == ("error", "ERR invalid cursor")


def test_a_walk_leaves_out_removed_fields_and_goes_on_after_a_shrink(node: Node) -> None:
    node("HSET", "w", *flat(*[(f"f{i}", "old") for i in range(1000)]))
    cursor, page = node("HSCAN", "w", "0", "COUNT", "10")
    assert len(page) == 20
    node("HDEL", "w", *[f"f{i}" for i in range(100, 1000)])  # small now
    node("HSET", "w", *flat(*[(f"f{i}", "new") for i in range(100)]))
    seen = list(page)
    while cursor != b"0":
        cursor, page = node("HSCAN", "w", cursor, "COUNT", "10")
        seen += page
    assert sorted(seen[0::2]) == sorted(f"f{i}".encode() for i in range(100))
    assert seen[21::2] == [b"new"] * 90
    # The walk is over: its cursor is forgotten, and the hash is small again.
    assert node("HSCAN", "w", "0", "COUNT", "1")[0] == b"0"


def test_a_walk_survives_the_hash_being_deleted(node: Node) -> None:
    node("HSET", "w", *flat(*[(f"f{i}", "v") for i in range(1000)]))
    cursor, _ = node("HSCAN", "w", "0")
    node("DEL", "w")
    assert node("HSCAN", "w", cursor) == [b"0", []]
    node("HSET", "w", *flat(*[(f"g{i}", "v") for i in range(1000)]))
    _, page = node("HSCAN", "w", cursor)
    assert page == []  # none of the walk's fields is there any more


# -- WATCH ------------------------------------------------------------------------------------


def changed(node: Node, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]]) -> bool:
    for cmd in setup:
        node(*cmd)
    token = node.clone.watch(b"k")
    for cmd in between:
        node.reply(*cmd)
    return node.clone.watch_changed(b"k", token)


# (setup, between, does EXEC abort?): what redis-server 7.0.15 does (the same cases run
# against a real one in tests/differential/test_hashes_vs_redis.py).
WATCH_CASES = [
    ([("HSET", "k", "a", "1")], [("HSET", "k", "a", "1")], True),
    ([("HSET", "k", "a", "1")], [("HSET", "k", "b", "2")], True),
    ([], [("HSET", "k", "a", "1")], True),
    ([("HSET", "k", "a", "1")], [("HMSET", "k", "a", "1")], True),
    ([("HSET", "k", "a", "1")], [("HSET", "k", "a", "1", "b")], False),
    ([("HSET", "k", "a", "1")], [("HSETNX", "k", "a", "2")], False),
    ([("HSET", "k", "a", "1")], [("HSETNX", "k", "b", "2")], True),
    ([], [("HSETNX", "k", "a", "1")], True),
    ([("HSET", "k", "a", "1")], [("HDEL", "k", "zz")], False),
    ([("HSET", "k", "a", "1", "b", "2")], [("HDEL", "k", "a")], True),
    ([("HSET", "k", "a", "1")], [("HDEL", "k", "a")], True),
    ([], [("HDEL", "k", "a")], False),
    ([("HSET", "k", "a", "1")], [("HINCRBY", "k", "a", "0")], True),
    ([("HSET", "k", "a", "x")], [("HINCRBY", "k", "a", "1")], False),
    ([], [("HINCRBY", "k", "a", "1")], True),
    ([("HSET", "k", "a", "1")], [("HINCRBYFLOAT", "k", "a", "1.5")], True),
    ([("HSET", "k", "a", "inf")], [("HINCRBYFLOAT", "k", "a", "1")], False),
    ([("HSET", "k", "a", "1")], [("HINCRBYFLOAT", "k", "a", "x")], False),
    (
        [("HSET", "k", "a", "1")],
        [("HGETALL", "k"), ("HRANDFIELD", "k"), ("HSCAN", "k", "0"), ("HGET", "k", "a")],
        False,
    ),
    ([("HSET", "k", "a", "1")], [("HINCRBY", "other", "a", "1")], False),
]


@pytest.mark.parametrize(("setup", "between", "aborts"), WATCH_CASES)
def test_watch_sees_what_redis_sees(
    node: Node, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]], aborts: bool
) -> None:
    assert changed(node, setup, between) is aborts


# -- expiry and snapshots ---------------------------------------------------------------------


def test_an_expired_hash_is_a_missing_key(node: Node) -> None:
    node("HSET", "h", "a", "1", "b", "2")
    node("PEXPIRE", "h", 100)
    node.advance(100 * MS)
    assert node("HLEN", "h") == 0
    assert node("HGETALL", "h") == {}
    assert node("HGET", "h", "a") is None
    assert node("HRANDFIELD", "h") is None
    assert node("HSCAN", "h", "0") == [b"0", []]
    assert node("HDEL", "h", "a") == 0
    assert node("HINCRBY", "h", "a", "1") == 1  # a new hash, without the old one's expiry
    assert node("TTL", "h") == -1
    assert node("HGETALL", "h") == {b"a": b"1"}


def test_a_hash_keeps_its_expiry_through_changes(node: Node) -> None:
    node("HSET", "h", "a", "1", "b", "2")
    node("EXPIRE", "h", 100)
    node("HSET", "h", "c", "3")
    node("HDEL", "h", "a")
    node("HINCRBY", "h", "b", "1")
    node("HINCRBYFLOAT", "h", "b", "1.5")
    node("HSETNX", "h", "d", "1")
    node("HMSET", "h", "e", "1")
    assert node("TTL", "h") == 100


def test_snapshot_round_trip_of_hashes(node: Node) -> None:
    node("HSET", "h", "c", "1", "a", b"", b"", b"\x00\xff")
    node("HSET", "big", *flat(*[(f"f{i}", f"v{i}") for i in range(20_000)]))  # spans chunks
    node("HINCRBYFLOAT", "f", "x", "1.1e4932")
    node("HSET", "ttl", "x", "1")
    node("PEXPIRE", "ttl", 5000)
    data = node.snapshot()
    other = Node(now=node.m.clock)
    other("HSET", "unrelated", "x", "1")
    other.clone.restore(io.BytesIO(data))
    assert other("EXISTS", "unrelated") == 0
    for key in ("h", "big", "f", "ttl"):
        assert other("TYPE", key) == Status("hash")
        assert list(other("HGETALL", key).items()) == list(node("HGETALL", key).items())
    assert other("HKEYS", "h") == [b"c", b"a", b""]
    assert other("HLEN", "big") == 20_000
    assert other("PTTL", "ttl") == 5000
    assert type(other.clone._objects[b"h"]) is dict
    # The restored node answers what this one answers.
    for cmd in [("HINCRBYFLOAT", "f", "x", "0.5"), ("HSCAN", "h", "0"), ("HRANDFIELD", "h", "-3")]:
        assert other(*cmd) == node(*cmd)


def test_a_capture_is_not_changed_by_later_hash_writes(node: Node) -> None:
    node("HSET", "h", "a", "1", "b", "2")
    buf = io.BytesIO()
    capture = node.clone.snapshot(buf)
    node("HSET", "h", "c", "3", "a", "10")
    node("HDEL", "h", "b")
    capture.write(buf)
    other = Node()
    other.clone.restore(io.BytesIO(buf.getvalue()))
    assert other("HGETALL", "h") == {b"a": b"1", b"b": b"2"}


def test_same_log_same_state_across_nodes() -> None:
    """Two nodes and one restored midway apply a random log of hash writes alike."""
    rng = random.Random(19)
    keys = [f"k{i}" for i in range(6)]
    fields = ["a", "b", "c", "d", ""]
    increments = ["1.5", "-0.1", "1e20", "3", "0x1p-3", "x", "inf"]
    a, b = Node(), Node()
    late: Node | None = None
    for i in range(3000):
        if i == 1500:
            late = Node(now=a.m.clock)
            late.clone.restore(io.BytesIO(a.snapshot()))
        key, field = rng.choice(keys), rng.choice(fields)
        cmd = rng.choice(
            [
                ["HSET", key, field, rng.choice(["1", "x", "2.5", ""])],
                ["HSET", key, *flat(*[(f, "v") for f in rng.sample(fields, 3)])],
                ["HSETNX", key, field, "n"],
                ["HDEL", key, field, rng.choice(fields)],
                ["HINCRBY", key, field, str(rng.randrange(-5, 5))],
                ["HINCRBYFLOAT", key, field, rng.choice(increments)],
                ["SET", key, "v"],
            ]
        )
        nodes = [a, b] if late is None else [a, b, late]
        for n in nodes:
            n.m = FakeApplier(T0, seed=i)
        replies = [n.reply(*cmd) for n in nodes]
        assert all(r == replies[0] for r in replies), (i, cmd, replies)
    assert late is not None
    assert a.snapshot() == late.snapshot() == b.snapshot()
