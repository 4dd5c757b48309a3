"""The rest of the clone's list commands, driven through a fake Applier.

LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LPUSHX, RPUSHX, RPOPLPUSH, LMPOP,
BRPOPLPUSH and BLMPOP: their replies and error texts (as redis-server 7.0.15
answers them; ``tests/differential/test_lists_vs_redis.py`` compares the
same against a real server), what is refused before the log, what leaves
the state alone, the blocking ones parked and woken, WATCH, and LREM, LTRIM
and LPOS against simple models of them.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from redraft.examples.clone import keyspace
from redraft.examples.clone.list_ops import RANK_ZERO, lpos, remove_matches, trim
from redraft.machine import NULL_ARRAY, OK, Status
from tests.test_clone_machine import MS
from tests.test_clone_types import WRONGTYPE, BNode, Waiter, changed

pytestmark = pytest.mark.timeout(60)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NOT_AN_INTEGER = "ERR value is not an integer or out of range"


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> BNode:
    n = BNode()
    monkeypatch.setattr(keyspace, "wall_clock", lambda: n.m.clock)
    return n


def items(node: BNode, key: str = "l") -> list[bytes]:
    result: list[bytes] = node("LRANGE", key, 0, -1)
    return result


# -- LINDEX, LPOS ------------------------------------------------------------------------------


def test_lindex(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "c")
    assert [node("LINDEX", "l", i) for i in (0, 1, 2, 3, -1, -3, -4)] == [
        b"a",
        b"b",
        b"c",
        None,
        b"c",
        b"a",
        None,
    ]
    assert node("LINDEX", "l", INT64_MAX) is None
    assert node("LINDEX", "l", INT64_MIN) is None
    assert node.reply("LINDEX", "l", "x") == ("error", NOT_AN_INTEGER)
    # A missing key answers nil before the index is read, as in Redis.
    assert node("LINDEX", "nokey", "x") is None
    node("SET", "s", "v")
    assert node.reply("LINDEX", "s", "x") == WRONGTYPE
    assert node.rejected("LINDEX", "l") == "ERR wrong number of arguments for 'lindex' command"
    assert node.m.writes == 2  # a plain read


def test_lpos(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")
    assert node("LPOS", "l", "a") == 0
    assert node("LPOS", "l", "a", "RANK", 2) == 2
    assert node("LPOS", "l", "a", "RANK", -2) == 4
    assert node("LPOS", "l", "a", "RANK", 5) is None
    assert node("LPOS", "l", "q") is None
    assert node("LPOS", "l", "a", "COUNT", 0) == [0, 2, 4, 6]
    assert node("LPOS", "l", "a", "COUNT", 2, "RANK", -1) == [6, 4]
    assert node("LPOS", "l", "a", "COUNT", 0, "RANK", 2, "MAXLEN", 3) == [2]
    assert node("LPOS", "l", "a", "COUNT", 0, "RANK", -1, "MAXLEN", 3) == [6, 4]
    assert node("LPOS", "l", "a", "MAXLEN", 1, "RANK", 2) is None
    assert node("LPOS", "l", "q", "COUNT", 3) == []
    assert node("LPOS", "l", "a", "COUNT", 1, "COUNT", 2) == [0, 2]  # the last one wins
    assert node("LPOS", "nokey", "a") is None
    assert node("LPOS", "nokey", "a", "COUNT", 0) == []


def test_lpos_rank_int64_min_is_what_redis_makes_of_it(node: BNode) -> None:
    """-LONG_MIN stays negative in Redis: every match from the tail, COUNT never stops it."""
    node("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")
    assert node("LPOS", "l", "a", "RANK", INT64_MIN) == 6
    assert node("LPOS", "l", "a", "RANK", INT64_MIN, "COUNT", 1) == [6, 4, 2, 0]
    assert node("LPOS", "l", "a", "RANK", INT64_MIN, "MAXLEN", 3, "COUNT", 0) == [6, 4]
    assert node("LPOS", "l", "a", "RANK", -INT64_MAX, "COUNT", 0) == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("RANK", 0), RANK_ZERO),
        (("RANK", 1, "RANK", 0), RANK_ZERO),
        (("RANK", 0, "FOO"), RANK_ZERO),  # read left to right: RANK answers first
        (("FOO", 1, "RANK", 0), "ERR syntax error"),
        (("RANK", "x"), NOT_AN_INTEGER),
        (("RANK", "-0"), NOT_AN_INTEGER),
        (("RANK", "9223372036854775808"), NOT_AN_INTEGER),
        (("RANK",), "ERR syntax error"),
        (("COUNT", -1), "ERR COUNT can't be negative"),
        (("COUNT", "x"), "ERR COUNT can't be negative"),
        (("COUNT", "-0"), "ERR COUNT can't be negative"),
        (("MAXLEN", -1), "ERR MAXLEN can't be negative"),
        (("MAXLEN", "01"), "ERR MAXLEN can't be negative"),
        (("COUNT", 0, "MAXLEN"), "ERR syntax error"),
    ],
)
def test_lpos_errors(node: BNode, args: tuple[Any, ...], error: str) -> None:
    node("SET", "s", "v")
    node("RPUSH", "l", "a")
    for key in ("l", "nokey", "s"):  # options are read before the key is looked at
        assert node.reply("LPOS", key, "a", *args) == ("error", error)
    assert node.reply("LPOS", "s", "a") == WRONGTYPE
    assert node.rejected("LPOS", "l") == "ERR wrong number of arguments for 'lpos' command"


def test_lpos_error_texts_keep_redis_err_code() -> None:
    """The text starts with a capital word (RANK, COUNT): it must carry ERR itself."""
    assert RANK_ZERO.startswith("ERR RANK can't be zero: use 1 to start from the first match")


# -- LSET, LINSERT ----------------------------------------------------------------------------


def test_lset(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "c")
    assert node("LSET", "l", -1, "z") == OK
    assert node("LSET", "l", 0, "") == OK
    assert items(node) == [b"", b"b", b"z"]
    assert node.failed_write("LSET", "l", 3, "v") == "ERR index out of range"
    assert node.failed_write("LSET", "l", -4, "v") == "ERR index out of range"
    assert node.failed_write("LSET", "l", "x", "v") == NOT_AN_INTEGER
    # The key is looked at first: a missing one is "no such key" whatever the index.
    assert node.failed_write("LSET", "nokey", "x", "v") == "ERR no such key"
    node("SET", "s", "v")
    assert node.failed_write("LSET", "s", "x", "v") == WRONGTYPE[1]
    assert node.rejected("LSET", "l", 0) == "ERR wrong number of arguments for 'lset' command"


def test_linsert(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "a")
    assert node("LINSERT", "l", "BeFoRe", "a", "x") == 4  # the first pivot from the head
    assert node("LINSERT", "l", "after", "a", "y") == 5
    assert node("LINSERT", "l", "AFTER", "q", "y") == -1
    assert items(node) == [b"x", b"a", b"y", b"b", b"a"]
    assert node("LINSERT", "nokey", "BEFORE", "a", "x") == 0
    assert node("EXISTS", "nokey") == 0
    node("SET", "s", "v")
    assert node.reply("LINSERT", "s", "BEFORE", "a", "x") == WRONGTYPE
    # The side is read first, so a bad one is refused before the log, for any key.
    for key in ("l", "nokey", "s"):
        assert node.rejected("LINSERT", key, "middle", "a", "x") == "ERR syntax error"
    assert node.rejected("LINSERT", "l", "BEFORE", "a") == (
        "ERR wrong number of arguments for 'linsert' command"
    )


# -- LREM, LTRIM -------------------------------------------------------------------------------


def test_lrem(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")
    assert node("LREM", "l", 2, "a") == 2
    assert items(node) == [b"b", b"c", b"a", b"b", b"a"]
    assert node("LREM", "l", -1, "a") == 1
    assert items(node) == [b"b", b"c", b"a", b"b"]
    assert node("LREM", "l", 0, "b") == 2
    assert node("LREM", "l", 0, "q") == 0
    assert node("LREM", "l", INT64_MIN, "a") == 1
    assert node("LREM", "l", 5, "c") == 1  # the last element deletes the key
    assert node("EXISTS", "l") == 0
    assert node("LREM", "l", 1, "a") == 0
    for bad in ("x", "01", "9223372036854775808"):
        assert node.rejected("LREM", "l", bad, "a") == NOT_AN_INTEGER
    node("SET", "s", "v")
    assert node.reply("LREM", "s", 1, "a") == WRONGTYPE


def test_ltrim(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "c", "d", "e")
    assert node("LTRIM", "l", 1, -2) == OK
    assert items(node) == [b"b", b"c", b"d"]
    assert node("LTRIM", "l", INT64_MIN, INT64_MAX) == OK
    assert items(node) == [b"b", b"c", b"d"]
    assert node("LTRIM", "l", 2, 1) == OK
    assert node("EXISTS", "l") == 0
    assert node("LTRIM", "l", 0, 1) == OK
    assert node("EXISTS", "l") == 0
    for start, stop in [("x", 1), (0, "x")]:
        assert node.rejected("LTRIM", "nokey", start, stop) == NOT_AN_INTEGER
    node("SET", "s", "v")
    assert node.reply("LTRIM", "s", 0, 1) == WRONGTYPE


def test_remove_matches_is_lrem() -> None:
    """Against a model on a Python list."""
    rng = random.Random(19)
    for _ in range(500):
        values = [rng.choice(b"abc") for _ in range(rng.randrange(0, 12))]
        lst = deque(bytes([v]) for v in values)
        model = list(lst)
        count = rng.choice([0, 1, 2, 3, -1, -2, -3, 50, -50, INT64_MIN])
        element = rng.choice([b"a", b"b", b"q"])
        limit = abs(count) if count else len(model)
        order = range(len(model)) if count >= 0 else range(len(model) - 1, -1, -1)
        drop = [i for i in order if model[i] == element][:limit]
        expected = [x for i, x in enumerate(model) if i not in drop]
        assert remove_matches(lst, count, element) == len(drop)
        assert list(lst) == expected


def test_trim_is_ltrim() -> None:
    for size in range(0, 9):
        for start in range(-11, 11):
            for stop in range(-11, 11):
                model = [b"%d" % i for i in range(size)]
                lo = max(start + size if start < 0 else start, 0)
                hi = min(stop + size if stop < 0 else stop, size - 1)
                expected = model[lo : hi + 1] if lo <= hi else []
                lst = deque(model)
                trim(lst, start, stop)
                assert list(lst) == expected, (size, start, stop)


def test_lpos_is_a_scan() -> None:
    rng = random.Random(7)
    for _ in range(500):
        lst = deque(rng.choice([b"a", b"b"]) for _ in range(rng.randrange(0, 10)))
        rank = rng.choice([1, 2, 3, -1, -2, -3])
        count = rng.choice([None, 0, 1, 2])
        maxlen = rng.choice([0, 1, 3, 20])
        order = list(range(len(lst))) if rank > 0 else list(range(len(lst) - 1, -1, -1))
        if maxlen:
            order = order[:maxlen]
        hits = [i for i in order if lst[i] == b"a"][abs(rank) - 1 :]
        if count is None:
            assert lpos(lst, b"a", rank, None, maxlen) == (hits[0] if hits else None)
        else:
            assert lpos(lst, b"a", rank, count, maxlen) == (hits[:count] if count else hits)


# -- LPUSHX, RPUSHX, RPOPLPUSH ---------------------------------------------------------------


def test_pushx(node: BNode) -> None:
    assert node("LPUSHX", "l", "a") == 0
    assert node("RPUSHX", "l", "a") == 0
    assert node("EXISTS", "l") == 0
    node("RPUSH", "l", "x")
    assert node("LPUSHX", "l", "a", "b", "c") == 4
    assert node("RPUSHX", "l", "d", "e") == 6
    assert items(node) == [b"c", b"b", b"a", b"x", b"d", b"e"]
    node("SET", "s", "v")
    assert node.reply("LPUSHX", "s", "a") == WRONGTYPE
    assert node.rejected("RPUSHX", "l") == "ERR wrong number of arguments for 'rpushx' command"


def test_pushx_on_an_expired_list(node: BNode) -> None:
    node("RPUSH", "l", "a")
    node("PEXPIRE", "l", 10)
    node.advance(10 * MS)
    assert node("LPUSHX", "l", "b") == 0
    assert node("EXISTS", "l") == 0
    assert b"l" not in node.clone._objects  # the write dropped it, as Redis's lookup does


def test_rpoplpush(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "c")
    assert node("RPOPLPUSH", "l", "l") == b"c"  # a rotation
    assert items(node) == [b"c", b"a", b"b"]
    assert node("RPOPLPUSH", "l", "m") == b"b"
    assert items(node, "m") == [b"b"]
    assert node("RPOPLPUSH", "nokey", "m") is None
    node("SET", "s", "v")
    assert node("RPOPLPUSH", "nokey", "s") is None  # the source is looked at first
    assert node.reply("RPOPLPUSH", "s", "m") == WRONGTYPE
    assert node.reply("RPOPLPUSH", "l", "s") == WRONGTYPE
    assert items(node) == [b"c", b"a"]
    assert node.rejected("RPOPLPUSH", "l") == (
        "ERR wrong number of arguments for 'rpoplpush' command"
    )


# -- LMPOP ------------------------------------------------------------------------------------


def test_lmpop(node: BNode) -> None:
    node("RPUSH", "l", "a", "b", "c", "d")
    node("SET", "s", "v")
    assert node("LMPOP", 1, "nokey", "LEFT") is NULL_ARRAY
    assert node("LMPOP", 2, "nokey", "l", "LEFT") == [b"l", [b"a"]]
    assert node("LMPOP", 2, "nokey", "l", "right", "count", 2) == [b"l", [b"d", b"c"]]
    assert node("LMPOP", 1, "l", "LEFT", "COUNT", INT64_MAX) == [b"l", [b"b"]]
    assert node("EXISTS", "l") == 0
    assert node.reply("LMPOP", 2, "nokey", "s", "LEFT") == WRONGTYPE
    node("RPUSH", "l", "a")
    assert node("LMPOP", 2, "l", "s", "LEFT") == [b"l", [b"a"]]  # s is never looked at


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, "l", "LEFT"), "ERR numkeys should be greater than 0"),
        ((-1, "l", "LEFT"), "ERR numkeys should be greater than 0"),
        (("x", "l", "LEFT"), "ERR numkeys should be greater than 0"),
        (("01", "l", "LEFT"), "ERR numkeys should be greater than 0"),
        ((2, "l", "LEFT"), "ERR syntax error"),
        ((INT64_MAX, "l", "LEFT"), "ERR syntax error"),
        ((1, "l", "UP"), "ERR syntax error"),
        ((1, "l", "UP", "COUNT", 0), "ERR syntax error"),
        ((1, "l", "LEFT", "COUNT"), "ERR syntax error"),
        ((1, "l", "LEFT", "COUNT", 0), "ERR count should be greater than 0"),
        ((1, "l", "LEFT", "COUNT", "x"), "ERR count should be greater than 0"),
        ((1, "l", "LEFT", "COUNT", 0, "FOO"), "ERR count should be greater than 0"),
        ((1, "l", "LEFT", "COUNT", 1, "COUNT", 1), "ERR syntax error"),
        ((1, "l", "LEFT", "FOO"), "ERR syntax error"),
        ((1, "l"), "ERR wrong number of arguments for 'lmpop' command"),
    ],
)
def test_lmpop_errors_are_refused_before_the_log(
    node: BNode, args: tuple[Any, ...], error: str
) -> None:
    assert node.rejected("LMPOP", *args) == error


# -- BRPOPLPUSH, BLMPOP --------------------------------------------------------------------


def test_blocking_ones_with_data_answer_at_once(node: BNode) -> None:
    node("RPUSH", "q", "a", "b", "c")
    assert node("BRPOPLPUSH", "q", "dst", 0) == b"c"
    assert node("BLMPOP", 0, 2, "nokey", "q", "LEFT", "COUNT", 5) == [b"q", [b"a", b"b"]]
    assert node("KEYS", "*") == [b"dst"]


def test_blocked_ones_raise_block_before_changing_anything(node: BNode) -> None:
    node("SET", "s", "v", "PX", 5)
    node.advance(5 * MS)  # an expired key to be left alone
    before = node.snapshot()
    move = node("BRPOPLPUSH", "s", "dst", "1.5")
    assert isinstance(move, Waiter)
    assert move.block.keys == [b"s"] and move.block.timeout_ms == 1500
    assert move.block.reply is NULL_ARRAY  # at the timeout
    assert move.block.multi_reply is None  # inside MULTI: a nil, as in Redis
    mpop = node("BLMPOP", "0.25", 2, "a", "s", "RIGHT")
    assert mpop.block.keys == [b"a", b"s"] and mpop.block.timeout_ms == 250
    assert mpop.block.reply is NULL_ARRAY and mpop.block.multi_reply is NULL_ARRAY
    assert node.snapshot() == before


def test_a_push_wakes_brpoplpush_and_blmpop(node: BNode) -> None:
    mover = node("BRPOPLPUSH", "q", "out", 0)
    popper = node("BLMPOP", 0, 2, "q", "out", "RIGHT", "COUNT", 2)
    assert node("RPUSH", "q", "a", "b") == 2
    assert mover.done and mover.result == b"b"
    # out became a list (RPOPLPUSH's destination signals it ready): the popper takes it.
    assert popper.done and popper.result == [b"q", [b"a"]]
    assert node("LRANGE", "out", 0, -1) == [b"b"]
    assert not node.m.parked


def test_pushx_linsert_and_lset_do_not_signal_ready(
    node: BNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    signalled: list[bytes] = []
    monkeypatch.setattr(node.m, "key_ready", signalled.append)
    node("RPUSH", "l", "a")
    assert signalled == [b"l"]
    node("LPUSHX", "l", "b")
    node("RPUSHX", "nokey", "b")
    node("LINSERT", "l", "BEFORE", "a", "x")
    node("LSET", "l", 0, "y")
    node("LREM", "l", 0, "q")
    node("LTRIM", "l", 0, -1)
    node("LMPOP", 1, "l", "LEFT")
    assert signalled == [b"l"]
    node("RPOPLPUSH", "l", "m")
    assert signalled == [b"l", b"m"]


def test_blocking_errors_are_refused_before_the_log(node: BNode) -> None:
    assert node.rejected("BRPOPLPUSH", "q", "dst", "-1") == "ERR timeout is negative"
    assert node.rejected("BRPOPLPUSH", "q", "dst", "x") == (
        "ERR timeout is not a float or out of range"
    )
    assert node.rejected("BRPOPLPUSH", "q", "dst") == (
        "ERR wrong number of arguments for 'brpoplpush' command"
    )
    # BLMPOP reads its timeout last, as Redis does.
    assert node.rejected("BLMPOP", "x", 0, "l", "LEFT") == "ERR numkeys should be greater than 0"
    assert node.rejected("BLMPOP", "x", 1, "l", "UP") == "ERR syntax error"
    assert node.rejected("BLMPOP", -1, 1, "l", "LEFT", "COUNT", 0) == (
        "ERR count should be greater than 0"
    )
    assert node.rejected("BLMPOP", -1, 1, "l", "LEFT") == "ERR timeout is negative"
    assert node.rejected("BLMPOP", 0, 1, "l") == (
        "ERR wrong number of arguments for 'blmpop' command"
    )


def test_a_timed_out_blmpop_gets_a_null_array(node: BNode) -> None:
    waiter = node("BLMPOP", "0.01", 1, "q", "LEFT")
    node.m.time_out(waiter)
    assert waiter.result is NULL_ARRAY
    node("RPUSH", "q", "x")
    assert node("LLEN", "q") == 1


# -- WRONGTYPE and WATCH ---------------------------------------------------------------------

ON_A_STRING = [
    ("LINDEX", "k", 0),
    ("LPOS", "k", "a"),
    ("LSET", "k", 0, "v"),
    ("LINSERT", "k", "BEFORE", "a", "b"),
    ("LREM", "k", 0, "a"),
    ("LTRIM", "k", 0, 1),
    ("LPUSHX", "k", "a"),
    ("RPUSHX", "k", "a"),
    ("RPOPLPUSH", "k", "other"),
    ("RPOPLPUSH", "full", "k"),
    ("BRPOPLPUSH", "k", "other", 0),
    ("BRPOPLPUSH", "full", "k", 0),
    ("LMPOP", 2, "empty", "k", "LEFT"),
    ("BLMPOP", 0, 2, "empty", "k", "LEFT"),
]


@pytest.mark.parametrize("cmd", ON_A_STRING)
def test_list_commands_on_a_string_are_wrongtype(node: BNode, cmd: tuple[Any, ...]) -> None:
    node("SET", "k", "v")
    node("RPUSH", "full", "a")
    before = node.snapshot()
    assert node.reply(*cmd) == WRONGTYPE
    assert node.snapshot() == before


# (setup, between, does EXEC abort?) -- what redis-server 7.0.15 does.
WATCH_CASES = [
    ([("RPUSH", "k", "a")], [("LSET", "k", 0, "a")], True),
    ([("RPUSH", "k", "a")], [("LINSERT", "k", "BEFORE", "a", "x")], True),
    ([("RPUSH", "k", "a")], [("LINSERT", "k", "AFTER", "q", "x")], False),
    ([], [("LINSERT", "k", "BEFORE", "a", "x")], False),
    ([("RPUSH", "k", "a", "b")], [("LREM", "k", 0, "a")], True),
    ([("RPUSH", "k", "a")], [("LREM", "k", 0, "q")], False),
    ([("RPUSH", "k", "a")], [("LTRIM", "k", 0, -1)], True),
    ([], [("LTRIM", "k", 0, -1)], False),
    ([("RPUSH", "k", "a")], [("LPUSHX", "k", "a")], True),
    ([], [("RPUSHX", "k", "a")], False),
    ([("RPUSH", "other", "a")], [("RPOPLPUSH", "other", "k")], True),
    ([("RPUSH", "k", "a")], [("RPOPLPUSH", "k", "k")], True),
    ([], [("RPOPLPUSH", "other", "k")], False),
    ([("RPUSH", "k", "a")], [("LMPOP", 2, "other", "k", "LEFT")], True),
    ([("RPUSH", "other", "a")], [("LMPOP", 2, "k", "other", "LEFT")], False),
    ([("RPUSH", "k", "a", "b")], [("BLMPOP", 0, 1, "k", "LEFT")], True),
    ([("RPUSH", "k", "a")], [("LINDEX", "k", 0), ("LPOS", "k", "a")], False),
]


@pytest.mark.parametrize(("setup", "between", "aborts"), WATCH_CASES)
def test_watch_sees_what_redis_sees(
    node: BNode, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]], aborts: bool
) -> None:
    assert changed(node, "k", setup, between) is aborts


def test_the_new_commands_are_typed_as_lists(node: BNode) -> None:
    node("RPUSH", "src", "a")
    node("RPOPLPUSH", "src", "dst")
    assert node("TYPE", "dst") == Status("list")
    assert isinstance(node.clone._objects[b"dst"], deque)
