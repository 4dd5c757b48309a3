"""The clone's sorted sets: the :class:`ZSet` structure, Redis 7.0's argument reading and score
formatting, and the commands driven directly through the fake Applier of ``test_clone_machine``.

Replies and errors as redis-server 7.0.15 gives them (``tests/differential``
checks the same against a real one), what reaches the log and what is
refused before it, the WATCH log, ZSCAN's cursors, blocking pops, snapshots,
and the same state on every node whatever the process's hash seed.
"""

from __future__ import annotations

import io
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sortedcontainers import SortedList

from redraft.examples.clone import Clone, keyspace
from redraft.examples.clone.zset import SMALL_ORDER, LexBound, PyOrder, SmallOrder, ZSet
from redraft.examples.clone.zset_args import (
    format_score,
    parse_lex_bound,
    parse_score,
    parse_score_bound,
    scan_score,
)
from redraft.machine import NULL_ARRAY, Block, Command, Double, Pairs, Status
from redraft.resp import encode, encode3
from tests.test_clone_machine import MS, T0, FakeApplier, Node

pytestmark = pytest.mark.timeout(60)

WRONGTYPE = ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")
INF = math.inf


def resp2(value: Any) -> Any:
    """A reply as a RESP2 client reads it: a :class:`Double` as its digits, :class:`Pairs` flat."""
    if isinstance(value, Double):
        return value.text
    if isinstance(value, Pairs):
        return [resp2(half) for pair in value for half in pair]
    if isinstance(value, list):
        return [resp2(item) for item in value]
    return value


class Resp2Node(Node):
    """A :class:`Node` whose replies come as a RESP2 client reads them (:func:`resp2`)."""

    def run(self, cmd: Command) -> Any:
        return resp2(super().run(cmd))


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Node:
    n = Resp2Node()
    # WATCH reads the node's wall clock: make it the fake one.
    monkeypatch.setattr(keyspace, "wall_clock", lambda: n.m.clock)
    return n


def zset_of(pairs: list[tuple[str, float]]) -> ZSet:
    z = ZSet()
    for member, score in pairs:
        z.add(member.encode(), score)
    return z


# -- the structure -------------------------------------------------------------------------


def test_order_is_by_score_then_member() -> None:
    z = zset_of([("b", 1), ("a", 1), ("c", 0), ("", 1), ("d", -INF), ("e", INF)])
    assert [m for m, _ in z] == [b"d", b"c", b"", b"a", b"b", b"e"]
    assert z.rank(b"a") == 3
    assert z.rank(b"nope") is None
    assert z.add(b"a", 5) is False  # an update
    assert z.add(b"a", 5) is False
    assert z.rank(b"a") == 4
    assert z.score(b"a") == 5
    assert z.discard(b"a") and not z.discard(b"a")
    assert len(z) == 5
    assert z.by_rank(1, 2) == [(b"c", 0), (b"", 1)]
    assert z.items(1, 3, reverse=True) == [(b"", 1), (b"c", 0)]


@pytest.mark.parametrize(
    ("lo", "lo_ex", "hi", "hi_ex", "members"),
    [
        (-INF, False, INF, False, "nabcdp"),
        (-INF, True, INF, True, "abcd"),
        (INF, False, INF, False, "p"),
        (INF, True, INF, False, ""),
        (-INF, False, -INF, False, "n"),
        (-INF, False, -INF, True, ""),
        (1, False, 2, False, "abc"),
        (1, True, 2, False, "bc"),
        (1, False, 2, True, "a"),
        (2, True, 2, False, ""),
        (2, False, 2, False, "bc"),
        (3, False, 1, False, ""),
        (0, False, 0, False, "z"),
    ],
)
def test_score_spans(lo: float, lo_ex: bool, hi: float, hi_ex: bool, members: str) -> None:
    z = zset_of([("n", -INF), ("a", 1), ("b", 2), ("c", 2), ("d", 3.5), ("p", INF)])
    if members == "z":
        z = ZSet.from_pairs([(b"y", -0.0), (b"z", 0.0)])  # -0 as a skip list keeps it
        members = "yz"
    i, j = z.score_span(lo, lo_ex, hi, hi_ex)
    assert [m for m, _ in z.items(i, j)] == [x.encode() for x in members]


def test_lex_spans_bisect_when_scores_are_equal_and_walk_when_not() -> None:
    z = zset_of([(m, 0) for m in ["a", "b", "bb", "c", ""]])
    assert z.uniform
    span = z.lex_span(LexBound(0, b"b", False), LexBound(0, b"c", True))
    assert z.items(*span) == [(b"b", 0), (b"bb", 0)]
    assert z.lex_span(LexBound(-1), LexBound(1)) == (0, 5)
    assert z.lex_span(LexBound(1), LexBound(1)) == (0, 0)
    assert z.lex_span(LexBound(0, b"b", True), LexBound(0, b"b", False)) == (0, 0)
    mixed = zset_of([("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 0)])  # a e b c d
    assert not mixed.uniform
    lo, hi = LexBound(0, b"b", False), LexBound(0, b"d", False)
    assert mixed.lex_span(lo, hi) == (1, 1)  # e is past b, and past d: nothing
    assert mixed.items(*mixed.lex_span(lo, hi, reverse=True)) == [
        (b"e", 0),
        (b"b", 1),
        (b"c", 2),
        (b"d", 3),
    ]


def test_removals_and_pops() -> None:
    z = zset_of([(m, i) for i, m in enumerate("abcdef")])
    assert z.remove_span(1, 3) == 2
    assert [m for m, _ in z] == [b"a", b"d", b"e", b"f"]
    assert z.remove_span(3, 3) == 0
    assert z.pop(2, highest=True) == [(b"f", 5), (b"e", 4)]
    assert z.pop(5, highest=False) == [(b"a", 0), (b"d", 3)]
    assert not z and not z.scores


def test_compact_follows_redis_listpack_limits() -> None:
    z = zset_of([(f"m{i}", i) for i in range(128)])
    assert z.compact
    z.add(b"one-more", 1)
    assert not z.compact
    z.discard(b"one-more")
    assert z.compact
    z.add(b"x" * 65, 0)
    assert not z.compact
    z.remove_span(0, len(z))
    assert z.compact and z._long == 0
    assert not ZSet.from_pairs([(b"x" * 65, 1.0)]).compact


def test_a_compact_set_stores_no_negative_zero() -> None:
    z = ZSet()
    z.add(b"a", -0.0)
    assert math.copysign(1, z.scores[b"a"]) == 1
    long = ZSet()
    long.add(b"x" * 65, 1)
    long.add(b"a", -0.0)  # a skip list keeps the sign
    assert math.copysign(1, long.scores[b"a"]) == -1
    exact = ZSet.from_pairs([(b"a", -0.0)])
    assert math.copysign(1, exact.scores[b"a"]) == -1
    assert math.copysign(1, exact.compacted().scores[b"a"]) == 1


def test_copy_is_independent() -> None:
    z = zset_of([("a", 1), ("b", 2)])
    c = z.copy()
    c.add(b"c", 3)
    c.discard(b"a")
    assert list(z) == [(b"a", 1), (b"b", 2)]
    assert list(c) == [(b"b", 2), (b"c", 3)]


def test_small_order_answers_as_sortedlist_does() -> None:
    """SmallOrder stands in for SortedList: the same answers to every call PyOrder makes."""
    rng = random.Random(7)
    small, ref = SmallOrder(), SortedList()
    for _ in range(3000):
        pair = (float(rng.randrange(-5, 5)), b"m%d" % rng.randrange(60))
        if pair in ref:
            assert small.index(pair) == ref.index(pair)
            small.remove(pair)
            ref.remove(pair)
        else:
            small.add(pair)
            ref.add(pair)
            with pytest.raises(ValueError):
                small.remove((pair[0] + 0.5, pair[1]))
        assert small == list(ref)
        assert small.bisect_left(pair) == ref.bisect_left(pair)
        assert small.bisect_right(pair) == ref.bisect_right(pair)
        lo, hi = rng.randrange(-70, 70), rng.randrange(-70, 70)
        for reverse in (False, True):
            assert list(small.islice(lo, hi, reverse)) == list(ref.islice(lo, hi, reverse))
            assert list(small.islice(None, hi, reverse)) == list(ref.islice(None, hi, reverse))
    assert type(small.copy()) is SmallOrder and small.copy() == small


def test_a_growing_python_order_moves_to_a_sortedlist_and_answers_alike() -> None:
    z, pairs = ZSet(), []
    z.order = order = PyOrder()
    for i in range(SMALL_ORDER + 200):
        member, score = b"m%05d" % (i * 7919 % 5000), float(i % 13)
        z.add(member, score)
        pairs.append((member, score))
        if i in (SMALL_ORDER - 1, SMALL_ORDER + 199):
            assert type(order.sorted) is (SmallOrder if i < SMALL_ORDER else SortedList)
            assert list(z) == sorted(pairs, key=lambda p: (p[1], p[0]))
            assert z.rank(member) == list(z).index((member, score))
            assert z.items(3, 9, reverse=True) == list(z)[3:9][::-1]
    assert type(PyOrder([(s, m) for m, s in pairs]).sorted) is SortedList
    assert type(PyOrder([(s, m) for m, s in pairs[:10]]).sorted) is SmallOrder


def test_ranges_cost_log_n_plus_k() -> None:
    """A narrow range of a large set is answered without walking the set."""
    big = ZSet.from_pairs([(b"m%07d" % i, float(i % 1000)) for i in range(200_000)])
    start = time.perf_counter()
    for _ in range(2000):
        i, j = big.score_span(500, True, 501, False)
        assert j - i == 200
        assert len(big.items(i, i + 10)) == 10
        assert big.rank(b"m0100000") == 100  # the 101st of score 0
    assert time.perf_counter() - start < 2.0


# -- arguments and formatting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (0.1, b"0.10000000000000001"),
        (1e100, b"1e+100"),
        (1.5, b"1.5"),
        (-0.0, b"-0"),
        (0.0, b"0"),
        (INF, b"inf"),
        (-INF, b"-inf"),
        (1e16, b"10000000000000000"),
        (1e17, b"1e+17"),
        (1e-5, b"1.0000000000000001e-05"),
        (3.0000000000000004, b"3.0000000000000004"),
        (1e-310, b"9.9999999999999694e-311"),
    ],
)
def test_scores_are_written_as_redis_7_0_writes_them(score: float, text: bytes) -> None:
    assert format_score(score) == text
    assert encode(format_score(score)) == b"$%d\r\n%b\r\n" % (len(text), text)


def test_zscan_writes_scores_as_a_listpack_holds_them() -> None:
    assert scan_score(1e17) == b"100000000000000000"
    assert scan_score(2.0**62) == b"4611686018427387904"
    assert scan_score(2.0**63) == b"9.2233720368547758e+18"
    assert scan_score(0.1) == b"0.10000000000000001"
    assert scan_score(-0.0) == b"0"
    assert scan_score(INF) == b"inf"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"1", 1.0),
        (b"-1.5", -1.5),
        (b"+2", 2.0),
        (b".5", 0.5),
        (b"5.", 5.0),
        (b"1e3", 1000.0),
        (b"0x10", 16.0),
        (b"0x1p-2", 0.25),
        (b"inf", INF),
        (b"-Infinity", -INF),
        (b"1e-310", 1e-310),
        (b"0e-400", 0.0),
        (b"-0.0", -0.0),
    ],
)
def test_scores_read_as_string2d(raw: bytes, value: float) -> None:
    assert parse_score(raw) == value
    assert math.copysign(1, parse_score(raw)) == math.copysign(1, value)


@pytest.mark.parametrize(
    "raw",
    [
        *[b"", b" 1", b"1 ", b"x", b"nan", b"-nan", b"1e400", b"-1e400", b"1e-400", b"1_0"],
        *[b"1e", b"0x", b"0x1p99999", b"1\x00", b"inf inity", b"\xd9\xa1"],  # an Arabic 1
    ],
)
def test_scores_refused_as_string2d_refuses_them(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"^value is not a valid float$"):
        parse_score(raw)


@pytest.mark.parametrize(
    ("raw", "bound"),
    [
        (b"1", (1.0, False)),
        (b"(1", (1.0, True)),
        (b"", (0.0, False)),
        (b"(", (0.0, True)),
        (b"  2", (2.0, False)),
        (b"3\x00junk", (3.0, False)),
        (b"1e400", (INF, False)),
        (b"(-inf", (-INF, True)),
        (b"0x1p1", (2.0, False)),
    ],
)
def test_range_ends_read_as_strtod(raw: bytes, bound: tuple[float, bool]) -> None:
    assert parse_score_bound(raw) == bound


@pytest.mark.parametrize("raw", [b"x", b"nan", b"(nan", b"1 ", b" ", b"((1", b"[1", b"1x"])
def test_bad_range_ends(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"^min or max is not a float$"):
        parse_score_bound(raw)


def test_lex_range_ends() -> None:
    assert parse_lex_bound(b"-") == LexBound(-1)
    assert parse_lex_bound(b"+") == LexBound(1)
    assert parse_lex_bound(b"+\x00junk") == LexBound(1)
    assert parse_lex_bound(b"[a") == LexBound(0, b"a", False)
    assert parse_lex_bound(b"(") == LexBound(0, b"", True)
    for raw in (b"a", b"", b"+a", b"-a", b"]a"):
        with pytest.raises(ValueError, match=r"^min or max not valid string range item$"):
            parse_lex_bound(raw)


# -- the commands ------------------------------------------------------------------------


def test_the_hot_commands_are_plain() -> None:
    clone = Clone()
    writes, reads = set(clone.writes()), set(clone.reads())
    assert {"zadd", "zincrby", "zrem", "zpopmin", "zrangestore", "zunionstore"} <= writes
    assert {"zscore", "zcard", "zrange", "zrangebyscore", "zrank", "zunion"} <= reads
    assert {b"bzpopmin", b"bzpopmax", b"bzmpop", b"zscan"} <= set(clone._handlers)


def test_add_range_and_remove(node: Node) -> None:
    assert node("ZADD", "z", 1, "a", 2, "b", "0.1", "c") == 3
    assert node("ZADD", "z", "CH", 1, "a", 3, "b", 4, "d") == 2
    assert node("ZRANGE", "z", 0, -1, "WITHSCORES") == [
        b"c",
        b"0.10000000000000001",
        b"a",
        b"1",
        b"b",
        b"3",
        b"d",
        b"4",
    ]
    assert node("ZSCORE", "z", "c") == b"0.10000000000000001"
    assert node("ZMSCORE", "z", "a", "nope") == [b"1", None]
    assert node("ZRANGEBYSCORE", "z", "(1", "+inf") == [b"b", b"d"]
    assert node("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", 1, 2) == [b"b", b"a"]
    assert node("ZRANGE", "z", "+inf", "(1", "BYSCORE", "REV", "LIMIT", 0, 1) == [b"d"]
    assert node("ZRANGE", "z", "(1", "+inf", "BYSCORE", "REV") == []  # REV takes max first
    assert node("ZCOUNT", "z", "-inf", "(3") == 2
    assert node("ZRANK", "z", "b") == 2
    assert node("ZREVRANK", "z", "b") == 1
    assert node("TYPE", "z") == Status("zset")
    assert node("ZREM", "z", "a", "nope") == 1
    assert node("ZREMRANGEBYSCORE", "z", "-inf", "+inf") == 3
    assert node("EXISTS", "z") == 0


def test_zadd_flags_and_incr(node: Node) -> None:
    assert node("ZADD", "z", "XX", 1, "a") == 0
    assert node("EXISTS", "z") == 0
    assert node("ZADD", "z", "XX", "INCR", 1, "a") is None
    assert node("ZADD", "z", "INCR", 2, "a") == b"2"
    assert node("ZADD", "z", "NX", "INCR", 2, "a") is None
    assert node("ZADD", "z", "GT", "INCR", -1, "a") is None
    assert node("ZADD", "z", "LT", "CH", 1, "a", 5, "b") == 2  # a lowered, b added
    assert node("ZINCRBY", "z", "inf", "a") == b"inf"
    assert node.failed_write("ZINCRBY", "z", "-inf", "a") == (
        "ERR resulting score is not a number (NaN)"
    )
    assert node("ZINCRBY", "nokey", "-0.0", "m") == b"-0"  # the reply keeps the sign
    assert node("ZSCORE", "nokey", "m") == b"0"  # a listpack does not


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (("ZADD", "z", 1), "ERR wrong number of arguments for 'zadd' command"),
        (
            ("ZADD", "z", "NX", "XX", 1, "a"),
            "ERR XX and NX options at the same time are not compatible",
        ),
        (
            ("ZADD", "z", "GT", "LT", 1, "a"),
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            ("ZADD", "z", "INCR", 1, "a", 2, "b"),
            "ERR INCR option supports a single increment-element pair",
        ),
        (("ZADD", "z", "NX", 1), "ERR syntax error"),
        (("ZADD", "z", "x", "a"), "ERR value is not a valid float"),
        (("ZINCRBY", "z", 1), "ERR wrong number of arguments for 'zincrby' command"),
        (("ZINCRBY", "z", "nx", "a"), "ERR syntax error"),
        (("ZREM", "z"), "ERR wrong number of arguments for 'zrem' command"),
        (("ZPOPMIN", "z", 1, 2), "ERR syntax error"),
        (("ZPOPMIN", "z", "x"), "ERR value is out of range, must be positive"),
        (("ZMPOP", 0, "z", "MIN"), "ERR numkeys should be greater than 0"),
        (("ZMPOP", 1, "z", "MIN", "COUNT", 0), "ERR count should be greater than 0"),
        (("ZMPOP", 2, "z", "MIN"), "ERR syntax error"),
        (("ZRANGESTORE", "d", "z", 0, -1, "WITHSCORES"), "ERR syntax error"),
        (("ZREMRANGEBYSCORE", "z", "x", 1), "ERR min or max is not a float"),
        (("ZREMRANGEBYLEX", "z", "x", "+"), "ERR min or max not valid string range item"),
        (("ZREMRANGEBYRANK", "z", "x", 1), "ERR value is not an integer or out of range"),
        (
            ("ZUNIONSTORE", "d", 0, "z"),
            "ERR at least 1 input key is needed for 'zunionstore' command",
        ),
        (("ZINTERSTORE", "d", 2, "z"), "ERR syntax error"),
    ],
)
def test_bad_writes_are_refused_before_the_log(
    node: Node, cmd: tuple[Any, ...], error: str
) -> None:
    assert node.rejected(*cmd) == error


def test_options_after_the_keys_fail_when_applied_and_change_nothing(node: Node) -> None:
    node("ZADD", "z", 1, "a")
    node("SET", "s", "v")
    assert node.failed_write("ZUNIONSTORE", "d", 1, "z", "WEIGHTS", "x") == (
        "ERR weight value is not a float"
    )
    assert node.failed_write("ZUNIONSTORE", "d", 1, "s", "WEIGHTS", "x") == WRONGTYPE[1]
    assert node.failed_write("ZDIFFSTORE", "d", 1, "z", "AGGREGATE", "SUM") == "ERR syntax error"


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (
            ("ZRANGE", "z", 0, 1, "LIMIT", 0, 1),
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            ("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"),
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (("ZRANGE", "z", 0, 1, "REV", "REV"), "ERR syntax error"),
        (("ZRANGEBYSCORE", "z", "x", 1), "ERR min or max is not a float"),
        (("ZRANGEBYLEX", "z", "a", "+"), "ERR min or max not valid string range item"),
        (("ZRANDMEMBER", "z", 1, "WITHSCORES", "x"), "ERR syntax error"),
        (
            ("ZRANDMEMBER", "z", -(2**63)),
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ),
        (("ZRANDMEMBER", "z", 2**62, "WITHSCORES"), "ERR value is out of range"),
        (("ZRANDMEMBER", "z", -(2**25)), "ERR count is out of range, must be at least -16777216"),
        (("ZUNION", 0, "z"), "ERR at least 1 input key is needed for 'zunion' command"),
        (("ZINTERCARD", 1, "z", "LIMIT", -1), "ERR LIMIT can't be negative"),
        (("ZSCAN", "z", "x"), "ERR invalid cursor"),
        (("ZSCAN", "z", 0, "COUNT", 0), "ERR syntax error"),
        (("ZSCAN", "z", 0, "TYPE", "zset"), "ERR syntax error"),
        (("ZCARD",), "ERR wrong number of arguments for 'zcard' command"),
        (("ZRANK", "z", "a", "b"), "ERR wrong number of arguments for 'zrank' command"),
    ],
)
def test_bad_reads_answer_redis_errors(node: Node, cmd: tuple[Any, ...], error: str) -> None:
    node("ZADD", "z", 1, "a")
    assert node.reply(*cmd) == ("error", error)


ZSET_COMMANDS = [
    ("ZADD", "k", 1, "a"),
    ("ZINCRBY", "k", 1, "a"),
    ("ZREM", "k", "a"),
    ("ZCARD", "k"),
    ("ZSCORE", "k", "a"),
    ("ZMSCORE", "k", "a"),
    ("ZRANK", "k", "a"),
    ("ZREVRANK", "k", "a"),
    ("ZCOUNT", "k", 0, 1),
    ("ZLEXCOUNT", "k", "-", "+"),
    ("ZRANGE", "k", 0, -1),
    ("ZRANGEBYSCORE", "k", 0, 1),
    ("ZREVRANGEBYSCORE", "k", 1, 0),
    ("ZRANGEBYLEX", "k", "-", "+"),
    ("ZREVRANGEBYLEX", "k", "+", "-"),
    ("ZREVRANGE", "k", 0, -1),
    ("ZRANGESTORE", "d", "k", 0, -1),
    ("ZREMRANGEBYRANK", "k", 0, 1),
    ("ZREMRANGEBYSCORE", "k", 0, 1),
    ("ZREMRANGEBYLEX", "k", "-", "+"),
    ("ZPOPMIN", "k"),
    ("ZPOPMAX", "k", 2),
    ("ZMPOP", 2, "nokey", "k", "MIN"),
    ("ZRANDMEMBER", "k"),
    ("ZRANDMEMBER", "k", 0),
    ("ZUNION", 2, "z", "k"),
    ("ZINTER", 1, "k"),
    ("ZDIFF", 1, "k"),
    ("ZUNIONSTORE", "d", 1, "k"),
    ("ZINTERSTORE", "d", 1, "k"),
    ("ZDIFFSTORE", "d", 1, "k"),
    ("ZINTERCARD", 1, "k"),
    ("ZSCAN", "k", 0),
    ("BZPOPMIN", "nokey", "k", 0),
    ("BZPOPMAX", "k", 0),
    ("BZMPOP", 0, 1, "k", "MAX"),
]


@pytest.mark.parametrize("kind", ["string", "list"])
@pytest.mark.parametrize("cmd", ZSET_COMMANDS, ids=lambda c: " ".join(map(str, c)))
def test_zset_commands_on_another_type_are_wrongtype(
    node: Node, kind: str, cmd: tuple[Any, ...]
) -> None:
    node("ZADD", "z", 1, "a")
    node("SET", "k", "v") if kind == "string" else node("RPUSH", "k", "v")
    before = node.snapshot()
    assert node.reply(*cmd) == WRONGTYPE
    assert node.snapshot() == before


def test_set_operations_take_plain_sets_with_score_one(node: Node) -> None:
    node("ZADD", "z", 1, "a", 2, "b")
    node("SADD", "s", "b", "c")
    assert node("ZUNION", 2, "z", "s", "WITHSCORES") == [b"a", b"1", b"c", b"1", b"b", b"3"]
    assert node("ZINTER", 2, "z", "s", "WEIGHTS", 2, 10, "WITHSCORES") == [b"b", b"14"]
    assert node("ZDIFF", 2, "s", "z", "WITHSCORES") == [b"c", b"1"]
    assert node("ZINTERCARD", 2, "z", "s", "LIMIT", 5) == 1
    assert node("ZUNION", 2, "z", "s", "WEIGHTS", "inf", 0, "WITHSCORES") == [
        b"c",
        b"0",  # inf * 0 is NaN, taken as 0
        b"a",
        b"inf",
        b"b",
        b"inf",
    ]
    assert node("ZUNIONSTORE", "d", 2, "z", "s", "AGGREGATE", "MAX") == 3
    assert node("ZRANGE", "d", 0, -1, "WITHSCORES") == [b"a", b"1", b"c", b"1", b"b", b"2"]


def test_stores_replace_any_type_drop_the_expiry_and_delete_when_empty(node: Node) -> None:
    node("ZADD", "z", 1, "a", 2, "b")
    node("SET", "d", "v", "EX", 100)
    assert node("ZRANGESTORE", "d", "z", 0, 0) == 1
    assert node("TYPE", "d") == Status("zset")
    assert node("TTL", "d") == -1
    assert node("ZINTERSTORE", "d", 2, "z", "nokey") == 0
    assert node("EXISTS", "d") == 0


def test_zrandmember(node: Node) -> None:
    node("ZADD", "z", *(x for i in range(20) for x in (i, f"m{i}")))
    assert node("ZRANDMEMBER", "nokey") is None
    assert node("ZRANDMEMBER", "nokey", 3) == []
    assert node("ZRANDMEMBER", "z") in {b"m%d" % i for i in range(20)}
    picked = node("ZRANDMEMBER", "z", 5, "WITHSCORES")
    pairs = list(zip(picked[::2], picked[1::2], strict=True))
    assert len({m for m, _ in pairs}) == 5
    assert all(m == b"m" + s for m, s in pairs)
    assert len(node("ZRANDMEMBER", "z", -50)) == 50
    assert node("ZRANDMEMBER", "z", 100)[:2] == [b"m19", b"m18"]  # all of it, highest first


def test_pops_and_blocking_pops(node: Node) -> None:
    node("ZADD", "z", 1, "a", 2, "b", 3, "c")
    assert node("ZPOPMIN", "z") == [b"a", b"1"]
    assert node("ZPOPMAX", "z", 0) == []
    assert node("ZMPOP", 2, "nokey", "z", "MAX", "COUNT", 5) == [b"z", [[b"c", b"3"], [b"b", b"2"]]]
    assert node("EXISTS", "z") == 0
    assert node("ZMPOP", 1, "z", "MIN") is NULL_ARRAY
    with pytest.raises(Block) as info:
        node("BZPOPMIN", "z", "y", "1.5")
    assert (info.value.keys, info.value.timeout_ms, info.value.reply) == (
        [b"z", b"y"],
        1500,
        NULL_ARRAY,
    )
    with pytest.raises(Block) as info:
        node("BZMPOP", 0, 1, "z", "MIN")
    assert info.value.reply is NULL_ARRAY
    node("ZADD", "y", 5, "e")
    assert node("BZPOPMIN", "z", "y", 0) == [b"y", b"e", b"5"]
    assert node("EXISTS", "y") == 0


def _both(value: Any) -> tuple[bytes, bytes]:
    return encode(value), encode3(value)


def test_scores_are_doubles_and_scored_members_pairs() -> None:
    """What RESP3 tells apart (redis-server 7.0.15's bytes): scores are doubles, members with
    scores ``[member, score]`` arrays, except ZPOPMIN without a count and the *MPOP/BZPOP
    replies, and ZSCAN's scores are bulk strings."""
    node = Node()  # the replies as the machine returns them
    node("ZADD", "z", "0.1", "a", 2, "b")
    assert node("ZSCORE", "z", "a") == Double(b"0.10000000000000001")
    assert _both(node("ZSCORE", "z", "a")) == (
        b"$19\r\n0.10000000000000001\r\n",
        b",0.10000000000000001\r\n",
    )
    assert _both(node("ZMSCORE", "z", "b", "x")) == (
        b"*2\r\n$1\r\n2\r\n$-1\r\n",
        b"*2\r\n,2\r\n_\r\n",
    )
    assert _both(node("ZINCRBY", "z", 1, "b")) == (b"$1\r\n3\r\n", b",3\r\n")
    assert _both(node("ZADD", "z", "INCR", "-inf", "b")) == (b"$4\r\n-inf\r\n", b",-inf\r\n")
    assert _both(node("ZADD", "z", "XX", "INCR", 1, "x")) == (b"$-1\r\n", b"_\r\n")
    assert node("ZRANGE", "z", 0, -1, "WITHSCORES") == Pairs(
        [(b"b", Double(b"-inf")), (b"a", Double(b"0.10000000000000001"))]
    )
    assert _both(node("ZRANGE", "z", 0, 0, "WITHSCORES")) == (
        b"*2\r\n$1\r\nb\r\n$4\r\n-inf\r\n",
        b"*1\r\n*2\r\n$1\r\nb\r\n,-inf\r\n",
    )
    assert _both(node("ZRANGE", "z", 0, 0)) == (b"*1\r\n$1\r\nb\r\n",) * 2
    assert _both(node("ZUNION", 1, "nokey", "WITHSCORES")) == (b"*0\r\n",) * 2
    assert (
        _both(node("ZSCAN", "z", 0))
        == (
            b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\nb\r\n$4\r\n-inf\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n",
        )
        * 2
    )
    assert _both(node("ZPOPMIN", "z")) == (
        b"*2\r\n$1\r\nb\r\n$4\r\n-inf\r\n",
        b"*2\r\n$1\r\nb\r\n,-inf\r\n",
    )
    assert _both(node("ZPOPMAX", "z", 1)) == (
        b"*2\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n",
        b"*1\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n",
    )
    assert _both(node("ZPOPMIN", "nokey")) == (b"*0\r\n",) * 2
    node("ZADD", "z", 1, "a", 2, "b")
    assert _both(node("ZMPOP", 1, "z", "MIN")) == (
        b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n",
        b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n",
    )
    assert _both(node("BZPOPMAX", "z", 0)) == (
        b"*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n",
        b"*3\r\n$1\r\nz\r\n$1\r\nb\r\n,2\r\n",
    )
    node("ZADD", "z", 1, "a")
    assert _both(node("ZRANDMEMBER", "z", -2, "WITHSCORES")) == (
        b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n1\r\n",
        b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\na\r\n,1\r\n",
    )


class ReadyApplier(FakeApplier):
    """A fake Applier that remembers the keys written ready."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: list[bytes] = []

    def key_ready(self, key: bytes) -> None:
        self.ready.append(key)


def test_writes_that_add_members_wake_the_pops(node: Node) -> None:
    node.m = ReadyApplier()
    node("ZADD", "z", 1, "a")
    node("ZADD", "z", "XX", 1, "b")
    node("ZINCRBY", "y", 1, "a")
    node("ZRANGESTORE", "d", "z", 0, -1)
    node("ZUNIONSTORE", "u", 1, "z")
    node("ZINTERSTORE", "none", 2, "z", "nokey")
    assert node.m.ready == [b"z", b"y", b"d", b"u"]


def test_zscan(node: Node) -> None:
    node("ZADD", "z", 1, "a", 2, "b", "1e17", "c")
    assert node("ZSCAN", "z", 0) == [b"0", [b"a", b"1", b"b", b"2", b"c", b"100000000000000000"]]
    assert node("ZSCAN", "z", 5, "MATCH", "[ab]") == [b"0", [b"a", b"1", b"b", b"2"]]
    assert node("ZSCAN", "nokey", 0, "COUNT", "x") == [b"0", []]
    node("ZADD", "big", *(x for i in range(300) for x in (i, f"m{i}")))
    seen: dict[bytes, bytes] = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, page = node("ZSCAN", "big", cursor, "COUNT", 50)
        calls += 1
        seen.update(zip(page[::2], page[1::2], strict=True))
        if cursor == b"0":
            break
        if calls == 1:
            node("ZREM", "big", "m299")  # removed: left out
    assert calls == 6
    assert len(seen) == 299 and seen[b"m5"] == b"5"


def test_a_zscan_walk_goes_on_after_the_set_shrinks(node: Node) -> None:
    # As Redis's skip list, which never turns back into a listpack: the walk's next
    # steps (scores written %.17g), not the whole (now compact) set.
    node("ZADD", "w", *(x for i in range(300) for x in (i + 0.5, f"m{i}")))
    cursor, page = node("ZSCAN", "w", 0, "COUNT", 10)
    node("ZREMRANGEBYRANK", "w", 100, -1)
    seen = dict(zip(page[::2], page[1::2], strict=True))
    while cursor != b"0":
        cursor, page = node("ZSCAN", "w", cursor, "COUNT", 10)
        assert len(page) <= 20
        seen.update(zip(page[::2], page[1::2], strict=True))
    assert {m for m in seen if m not in node.clone._objects[b"w"].scores} <= set(list(seen)[:10])
    assert len(seen) >= 100 and seen[b"m5"] == b"5.5"
    assert node("ZSCAN", "w", 0, "COUNT", 10)[0] == b"0"  # compact: whole again


WATCH_CASES = [
    # (setup, between, does EXEC abort?): what redis-server 7.0.15 does (the same cases run
    # against a real one in tests/differential/test_zsets_vs_redis.py).
    ([("ZADD", "k", 1, "a")], [("ZADD", "k", 1, "a")], False),
    ([("ZADD", "k", 1, "a")], [("ZADD", "k", 2, "a")], True),
    ([], [("ZADD", "k", "XX", 1, "a")], False),
    ([("ZADD", "k", 0, "a")], [("ZADD", "k", "-0.0", "a")], False),
    ([("ZADD", "k", 1, "a")], [("ZINCRBY", "k", 0, "a")], False),
    ([("ZADD", "k", 1, "a")], [("ZREM", "k", "x")], False),
    ([("ZADD", "k", 1, "a")], [("ZREM", "k", "a")], True),
    ([("ZADD", "k", 1, "a")], [("ZREMRANGEBYSCORE", "k", 5, 10)], False),
    ([("ZADD", "k", 1, "a")], [("ZPOPMIN", "k", 0)], False),
    ([("ZADD", "k", 1, "a", 2, "b")], [("ZPOPMAX", "k")], True),
    ([("ZADD", "k", 1, "a")], [("ZRANGE", "k", 0, -1), ("ZSCAN", "k", 0)], False),
    ([("ZADD", "s", 1, "a"), ("ZADD", "k", 1, "a")], [("ZUNIONSTORE", "k", 1, "s")], True),
    ([("ZADD", "s", 1, "a")], [("ZINTERSTORE", "k", 2, "s", "nokey")], False),
    ([("SET", "k", "v")], [("ZINTERSTORE", "k", 2, "s", "nokey")], True),
    ([("ZADD", "k", 1, "a")], [("ZRANGESTORE", "o", "k", 0, -1)], False),
]


@pytest.mark.parametrize(("setup", "between", "aborts"), WATCH_CASES)
def test_watch_sees_what_redis_sees(
    node: Node, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]], aborts: bool
) -> None:
    node("FLUSHALL")
    for cmd in setup:
        node(*cmd)
    token = node.clone.watch(b"k")
    for cmd in between:
        node(*cmd)
    assert node.clone.watch_changed(b"k", token) is aborts


def test_an_expired_zset_is_a_missing_key(node: Node) -> None:
    node("ZADD", "z", 1, "a")
    node("PEXPIRE", "z", 100)
    node.advance(100 * MS)
    assert node("ZCARD", "z") == 0
    assert node("ZRANGE", "z", 0, -1) == []
    assert node("ZADD", "z", "XX", 1, "a") == 0
    assert node("ZADD", "z", 2, "b") == 1
    assert node("TTL", "z") == -1
    assert node("ZRANGE", "z", 0, -1) == [b"b"]


# -- snapshots and determinism ---------------------------------------------------------------


def test_snapshot_round_trip_of_sorted_sets(node: Node) -> None:
    node("ZADD", "z", "0.1", "a", "-inf", b"\x00\xff", "inf", "", "1e17", "b")
    node("ZADD", "big", *(x for i in range(20_000) for x in (i % 97, f"m{i}")))  # spans chunks
    node("ZADD", "long", 1, "x" * 65, "-0.0", "neg")
    node("ZADD", "ttl", 1, "x")
    node("PEXPIRE", "ttl", 5000)
    data = node.snapshot()
    other = Resp2Node(now=node.m.clock)
    other.clone.restore(io.BytesIO(data))
    for key in ("z", "big", "long", "ttl"):
        assert other("TYPE", key) == Status("zset")
        assert other("ZRANGE", key, 0, -1, "WITHSCORES") == node("ZRANGE", key, 0, -1, "WITHSCORES")
    assert other("ZSCORE", "long", "neg") == b"-0"
    assert other("PTTL", "ttl") == 5000
    restored = other.clone._objects[b"big"]
    assert type(restored) is ZSet and not restored.compact
    assert other("ZRANGEBYSCORE", "big", "(95", "+inf", "LIMIT", 3, 2) == node(
        "ZRANGEBYSCORE", "big", "(95", "+inf", "LIMIT", 3, 2
    )
    assert other("ZRANDMEMBER", "big", 5) == node("ZRANDMEMBER", "big", 5)


def test_a_capture_is_not_changed_by_later_zset_writes(node: Node) -> None:
    node("ZADD", "z", 1, "a", 2, "b")
    buf = io.BytesIO()
    capture = node.clone.snapshot(buf)
    node("ZADD", "z", 3, "c", 5, "a")
    node("ZREM", "z", "b")
    capture.write(buf)
    other = Resp2Node()
    other.clone.restore(io.BytesIO(buf.getvalue()))
    assert other("ZRANGE", "z", 0, -1, "WITHSCORES") == [b"a", b"1", b"b", b"2"]


def test_same_log_same_state_across_nodes() -> None:
    """Two nodes and one restored midway apply a random log of sorted-set writes alike."""
    rng = random.Random(23)
    keys = [f"k{i}" for i in range(5)]
    a, b = Node(), Node()
    late: Node | None = None
    scores = ["0", "1", "2.5", "-0.0", "0.1", "inf", "-inf", "7"]
    for i in range(3000):
        if i == 1500:
            late = Node(now=a.m.clock)
            late.clone.restore(io.BytesIO(a.snapshot()))
        key, other = rng.choice(keys), rng.choice(keys)
        cmd = rng.choice(
            [
                [
                    "ZADD",
                    key,
                    *(x for m in rng.sample("abcdef123", 3) for x in (rng.choice(scores), m)),
                ],
                ["ZINCRBY", key, rng.choice(scores), rng.choice("abc")],
                ["ZREM", key, rng.choice("abcdef123")],
                ["ZPOPMIN", key, rng.randrange(3)],
                ["ZMPOP", 2, key, other, "MAX"],
                ["ZREMRANGEBYRANK", key, 0, rng.randrange(-3, 3)],
                ["ZUNIONSTORE", key, 2, other, rng.choice(keys), "WEIGHTS", "0.1", "3"],
                ["ZINTERSTORE", key, 2, other, rng.choice(keys), "AGGREGATE", "MIN"],
                ["ZDIFFSTORE", key, 2, other, rng.choice(keys)],
                ["ZRANGESTORE", key, other, "(0", "+inf", "BYSCORE"],
                ["SADD", key, *rng.sample("abc", 2)],
                ["SET", key, "v"],
            ]
        )
        nodes = [a, b] if late is None else [a, b, late]
        for n in nodes:
            n.m = FakeApplier(T0, seed=i)
        replies = [n.reply(*cmd) for n in nodes]
        assert all(r == replies[0] for r in replies), (i, cmd, replies)
    assert late is not None
    assert a.snapshot() == b.snapshot()
    for key in keys:
        assert a.reply("ZRANGE", key, 0, -1, "WITHSCORES") == late.reply(
            "ZRANGE", key, 0, -1, "WITHSCORES"
        )


_SNAPSHOT = """
import hashlib
from tests.test_clone_machine import Node
node = Node()
node("SADD", "s", "m5", "m7", "x")
node("ZADD", "z", *(x for i in range(100) for x in (i % 7, f"member-{i}")))
node("ZUNIONSTORE", "u", 2, "z", "s", "WEIGHTS", "0.1", "3")
node("ZINTERSTORE", "i", 2, "s", "z")
node("DEL", "s")  # a plain set's snapshot order is its hash table's (test_clone_sets)
print(hashlib.sha256(node.snapshot()).hexdigest(), node("ZRANGE", "u", 0, -1, "WITHSCORES"))
"""


def test_sorted_sets_do_not_depend_on_the_hash_seed() -> None:
    root = Path(__file__).resolve().parent.parent
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{root / 'src'}:{root}"}
        done = subprocess.run(
            [sys.executable, "-c", _SNAPSHOT], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_zset_commands_inside_multi_are_checked_when_queued() -> None:
    clone = Clone()
    write = clone.writes()["zadd"]
    assert write.check is not None
    with pytest.raises(ValueError, match="syntax error"):
        write.check([b"zadd", b"z", b"nx", b"1"])
    command = Command([b"bzpopmin", b"z", b"x"])
    with pytest.raises(ValueError, match="timeout is not a float"):
        clone.command(FakeApplier(), None, command)
