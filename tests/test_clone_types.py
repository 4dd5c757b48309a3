"""The clone's typed keyspace: lists, WRONGTYPE, blocking pops, WATCH and the snapshot format.

Driven directly through fake Appliers (as in ``test_clone_machine``): the
one here also plays the framework's part for blocking commands, parking a
request whose ``mutate`` raises :class:`~redraft.machine.Block` and trying
it again when a write calls ``key_ready`` for one of its keys.
"""

from __future__ import annotations

import io
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from redraft.examples.clone import SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_V1, Clone, keyspace
from redraft.examples.clone.keyspace import (
    WATCH_ANCHOR_BASE,
    WATCH_LOG_CAP,
    WATCH_TRIM_AT,
    WATCH_WINDOW,
)
from redraft.examples.clone.parsing import parse_timeout
from redraft.machine import NULL_ARRAY, OK, Block, Command, Conn, Mutate, Respond, Status
from tests.test_clone_machine import MS, SEC, T0, FakeApplier, Node, decode, fill, records

pytestmark = pytest.mark.timeout(60)

WRONGTYPE = ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")


@dataclass
class Waiter:
    """A request parked by :class:`BlockingApplier`."""

    block: Block
    mutate: Mutate
    result: Any = None
    done: bool = False


class BlockingApplier(FakeApplier):
    """A FakeApplier that parks blocked requests and wakes them on ``key_ready``, oldest first."""

    def __init__(self, now: int = T0) -> None:
        super().__init__(now)
        self.parked: list[Waiter] = []
        self.ready: list[bytes] = []

    def blocking(
        self, conn: Conn | None, cmd: Command, mutate: Mutate, respond: Respond | None
    ) -> Any:
        self.writes += 1
        try:
            return mutate()
        except Block as block:
            waiter = Waiter(block, mutate)
            self.parked.append(waiter)
            return waiter

    def key_ready(self, key: bytes) -> None:
        self.ready.append(key)

    def wake(self) -> None:
        """What the leader does after a write: retry the requests waiting on the ready keys."""
        while self.ready:
            key = self.ready.pop(0)
            for waiter in list(self.parked):
                if key in waiter.block.keys:
                    try:
                        waiter.result = waiter.mutate()
                    except Block:
                        continue
                    waiter.done = True
                    self.parked.remove(waiter)

    def time_out(self, waiter: Waiter) -> None:
        self.parked.remove(waiter)
        waiter.result = waiter.block.reply
        waiter.done = True


class BNode(Node):
    """A Node whose applier parks blocked requests."""

    m: BlockingApplier

    def __init__(self, now: int = T0) -> None:
        super().__init__(now)
        self.m = BlockingApplier(now)

    def __call__(self, *args: Any) -> Any:
        result = super().__call__(*args)
        self.m.wake()
        return result


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> BNode:
    n = BNode()
    # WATCH reads the node's wall clock: make it the fake one.
    monkeypatch.setattr(keyspace, "wall_clock", lambda: n.m.clock)
    return n


# -- lists ---------------------------------------------------------------------------------


def test_push_pop_and_range(node: BNode) -> None:
    assert node("RPUSH", "l", "a", "b", "c") == 3
    assert node("LPUSH", "l", "x", "y") == 5
    assert node("LRANGE", "l", 0, -1) == [b"y", b"x", b"a", b"b", b"c"]
    assert node("LLEN", "l") == 5
    assert node("LPOP", "l") == b"y"
    assert node("RPOP", "l") == b"c"
    assert node("LPOP", "l", 0) == []
    assert node("LPOP", "l", 2) == [b"x", b"a"]
    assert node("RPOP", "l", 5) == [b"b"]  # the last element deletes the key
    assert node("EXISTS", "l") == 0
    assert node("TYPE", "l") == Status("none")
    assert node("LPOP", "l") is None
    assert node("LPOP", "l", 0) is NULL_ARRAY
    assert node("LPOP", "l", 3) is NULL_ARRAY
    assert node("LLEN", "l") == 0
    assert node("LRANGE", "l", 0, -1) == []


@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, -1), (-100, 100), (3, 1), (-2, -1), (5, 10), (1, -1), (-3, -3), (0, 0), (2, 6), (-7, -5)],
)
def test_lrange_indexes_like_python_slices_with_redis_clamping(
    node: BNode, start: int, stop: int
) -> None:
    items = [str(i).encode() for i in range(7)]
    node("RPUSH", "l", *items)
    size = len(items)
    lo = max(start + size if start < 0 else start, 0)
    hi = min(stop + size if stop < 0 else stop, size - 1)
    assert node("LRANGE", "l", start, stop) == items[lo : hi + 1]


def test_lrange_walks_a_long_list_from_the_nearer_end(node: BNode) -> None:
    items = [b"%d" % i for i in range(10_000)]
    node("RPUSH", "l", *items)
    assert node("LRANGE", "l", -3, -1) == items[-3:]
    assert node("LRANGE", "l", 9990, 9995) == items[9990:9996]
    assert node("LRANGE", "l", 4999, 5001) == items[4999:5002]


def test_lmove(node: BNode) -> None:
    node("RPUSH", "src", "a", "b", "c")
    assert node("LMOVE", "src", "dst", "LEFT", "RIGHT") == b"a"
    assert node("LMOVE", "src", "dst", "right", "left") == b"c"
    assert node("LRANGE", "dst", 0, -1) == [b"c", b"a"]
    assert node("LMOVE", "dst", "dst", "LEFT", "RIGHT") == b"c"  # a rotation
    assert node("LRANGE", "dst", 0, -1) == [b"a", b"c"]
    assert node("LMOVE", "src", "src", "LEFT", "LEFT") == b"b"  # one element, in place
    assert node("LMOVE", "src", "dst", "LEFT", "LEFT") == b"b"
    assert node("EXISTS", "src") == 0
    assert node("LMOVE", "src", "dst", "LEFT", "LEFT") is None
    assert node.rejected("LMOVE", "src", "dst", "LEFT", "up") == "ERR syntax error"
    assert node.rejected("LMOVE", "src", "dst", "LEFT") == (
        "ERR wrong number of arguments for 'lmove' command"
    )


def test_pop_counts_are_refused_before_the_log(node: BNode) -> None:
    for bad in ("-1", "abc", "01", "+1", "99999999999999999999"):
        assert node.rejected("LPOP", "l", bad) == "ERR value is out of range, must be positive"
    assert (
        node.rejected("LPOP", "l", "1", "2") == "ERR wrong number of arguments for 'lpop' command"
    )
    assert node.rejected("RPUSH", "l") == "ERR wrong number of arguments for 'rpush' command"


def test_an_expired_list_is_a_missing_key(node: BNode) -> None:
    node("RPUSH", "l", "a", "b")
    node("PEXPIRE", "l", 10)
    node.advance(10 * MS)
    assert node("LLEN", "l") == 0
    assert node("TYPE", "l") == Status("none")
    assert node("RPUSH", "l", "c") == 1  # a new list, without the old expiry
    assert node("TTL", "l") == -1
    node("SET", "s", "v", "PX", 5)
    node.advance(5 * MS)
    assert node("LPUSH", "s", "x") == 1
    assert node("TYPE", "s") == Status("list")


def test_lists_expire_through_the_tick(node: BNode) -> None:
    node("RPUSH", "l", "a")
    node("PEXPIRE", "l", 10)
    node("SET", "keep", "v")
    node.advance(20 * MS)
    assert node.clone.wants_tick(node.m.clock)
    node.clone.tick(node.m)
    assert set(records(node.snapshot())) == {b"keep"}
    assert node.clone.info() == {"Keyspace": {"db0": "keys=1,expires=0,avg_ttl=0"}}


def test_keys_scan_type_and_counts_see_every_type(node: BNode) -> None:
    node("SET", "s", "v")
    node("RPUSH", "l", "a")
    node("RPUSH", "m", "a")
    assert sorted(node("KEYS", "*")) == [b"l", b"m", b"s"]
    assert node("DBSIZE") == 3
    assert node("SCAN", 0, "TYPE", "list")[1] == [b"l", b"m"]
    assert node("SCAN", 0, "TYPE", "LIST")[1] == [b"l", b"m"]
    assert node("SCAN", 0, "TYPE", "string")[1] == [b"s"]
    assert node("SCAN", 0, "TYPE", "hash")[1] == []
    assert node("EXISTS", "s", "l", "nope") == 2
    assert node.clone.info() == {"Keyspace": {"db0": "keys=3,expires=0,avg_ttl=0"}}
    assert node("DEL", "l", "s") == 2
    assert node("KEYS", "*") == [b"m"]
    assert node("FLUSHDB") == OK
    assert node("DBSIZE") == 0


# -- WRONGTYPE --------------------------------------------------------------------------------

ON_A_LIST = [
    ("GET", "k"),
    ("GETSET", "k", "v"),
    ("APPEND", "k", "v"),
    ("STRLEN", "k"),
    ("INCR", "k"),
    ("DECR", "k"),
    ("INCRBY", "k", 1),
    ("DECRBY", "k", 1),
    ("SET", "k", "v", "GET"),
    ("SET", "k", "v", "NX", "GET"),
]
ON_A_STRING = [
    ("LPUSH", "k", "x"),
    ("RPUSH", "k", "x"),
    ("LPOP", "k"),
    ("RPOP", "k", 0),
    ("LLEN", "k"),
    ("LRANGE", "k", 0, -1),
    ("LMOVE", "k", "other", "LEFT", "LEFT"),
    ("LMOVE", "full", "k", "LEFT", "LEFT"),  # the destination's type, before anything moves
    ("BLPOP", "k", 0),
    ("BRPOP", "empty", "k", 0),
    ("BLMOVE", "k", "other", "LEFT", "LEFT", 0),
    ("BLMOVE", "full", "k", "LEFT", "LEFT", 0),
]


@pytest.mark.parametrize("cmd", ON_A_LIST)
def test_string_commands_on_a_list_are_wrongtype(node: BNode, cmd: tuple[Any, ...]) -> None:
    node("RPUSH", "k", "a")
    before = node.snapshot()
    assert node.reply(*cmd) == WRONGTYPE
    assert node.snapshot() == before


@pytest.mark.parametrize("cmd", ON_A_STRING)
def test_list_commands_on_a_string_are_wrongtype(node: BNode, cmd: tuple[Any, ...]) -> None:
    node("SET", "k", "v")
    node("RPUSH", "full", "a")
    before = node.snapshot()
    assert node.reply(*cmd) == WRONGTYPE
    assert node.snapshot() == before


def test_type_blind_commands_overwrite_or_ignore_other_types(node: BNode) -> None:
    node("RPUSH", "l", "a")
    assert node("MGET", "l", "nope") == [None, None]
    assert node("SETNX", "l", "v") == 0
    assert node("SET", "l", "v", "NX") is None
    node("EXPIRE", "l", 100)
    assert node("SET", "l", "v", "KEEPTTL") == OK  # a string now, the TTL kept
    assert node("TYPE", "l") == Status("string")
    assert node("TTL", "l") == 100
    node("RPUSH", "m", "a")
    assert node("MSET", "m", "1") == OK
    assert node("INCR", "m") == 2
    node("RPUSH", "n", "a")
    assert node("SET", "n", "plain") == OK
    assert node("GET", "n") == b"plain"
    assert node.reply("LLEN", "n") == WRONGTYPE
    # Strings and other types never share a key.
    clone = node.clone
    assert not set(clone._data) & set(clone._objects)


# -- blocking ---------------------------------------------------------------------------------


def test_a_blocking_pop_with_data_answers_at_once(node: BNode) -> None:
    node("RPUSH", "b", "1", "2")
    assert node("BLPOP", "a", "b", 0) == [b"b", b"1"]
    assert node("BRPOP", "a", "b", 0) == [b"b", b"2"]
    assert node("EXISTS", "b") == 0
    node("RPUSH", "src", "x")
    assert node("BLMOVE", "src", "dst", "LEFT", "RIGHT", 0) == b"x"
    assert node("LRANGE", "dst", 0, -1) == [b"x"]


def test_a_blocked_pop_raises_block_before_changing_anything(node: BNode) -> None:
    node("SET", "s", "v", "PX", 5)
    node.advance(5 * MS)  # an expired key to be left alone
    before = node.snapshot()
    waiter = node("BLPOP", "a", "s", "1.5")
    assert isinstance(waiter, Waiter)
    assert waiter.block.keys == [b"a", b"s"]
    assert waiter.block.timeout_ms == 1500
    assert waiter.block.reply is NULL_ARRAY
    assert node.snapshot() == before
    move = node("BLMOVE", "src", "dst", "RIGHT", "LEFT", 0)
    assert move.block.keys == [b"src"] and move.block.timeout_ms == 0
    assert move.block.reply is NULL_ARRAY  # Redis's BLMOVE answers a null array at its timeout


def test_a_push_wakes_the_waiters_in_order(node: BNode) -> None:
    first = node("BLPOP", "q", "q2", 0)
    second = node("BRPOP", "q", 0)
    mover = node("BLMOVE", "q2", "out", "LEFT", "RIGHT", 0)
    assert node("RPUSH", "q2", "x") == 1
    assert first.done and first.result == [b"q2", b"x"]
    assert not mover.done  # q2 is empty again
    assert node("RPUSH", "q", "a", "b") == 2
    assert second.done and second.result == [b"q", b"b"]
    assert node("LRANGE", "q", 0, -1) == [b"a"]
    assert node("LMOVE", "q", "q2", "LEFT", "LEFT") == b"a"  # LMOVE's destination is ready
    assert mover.done and mover.result == b"a"
    assert node("LRANGE", "out", 0, -1) == [b"a"]
    assert node("DBSIZE") == 1


def test_a_timed_out_waiter_gets_the_block_reply(node: BNode) -> None:
    waiter = node("BLPOP", "q", "0.01")
    node.m.time_out(waiter)
    assert waiter.result is NULL_ARRAY
    node("RPUSH", "q", "x")
    assert node("LLEN", "q") == 1  # nobody took it


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        ("0", 0),
        ("-0", 0),
        ("0.0", 0),
        ("1", 1000),
        ("1.5", 1500),
        (".5", 500),
        ("5.", 5000),
        ("+1", 1000),
        ("1e2", 100_000),
        ("1e-10", 1),  # rounded up: a tiny timeout is not "for ever"
        ("-1e-10", 0),  # rounded up to zero: for ever, as in Redis
        ("-0.0001", 0),
        ("0x10", 16_000),
        ("0.0011", 2),
        ("9223372036854775", 0),  # past any real deadline: waits for ever
    ],
)
def test_timeouts_are_parsed_as_redis_does(raw: str, ms: int) -> None:
    assert parse_timeout(raw.encode()) == ms


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("-1", "timeout is negative"),
        ("-0.5", "timeout is negative"),
        ("inf", "timeout is negative"),
        ("-inf", "timeout is negative"),
        ("Infinity", "timeout is negative"),
        ("1e400", "timeout is negative"),
        ("9223372036854776", "timeout is negative"),
        ("1.5e16", "timeout is negative"),
        ("abc", "timeout is not a float or out of range"),
        ("", "timeout is not a float or out of range"),
        (" 1", "timeout is not a float or out of range"),
        ("1 ", "timeout is not a float or out of range"),
        ("0.1x", "timeout is not a float or out of range"),
        ("nan", "timeout is not a float or out of range"),
        ("1e", "timeout is not a float or out of range"),
        ("1e99999", "timeout is not a float or out of range"),
        ("1" * 6000, "timeout is not a float or out of range"),
    ],
)
def test_bad_timeouts_are_refused_before_the_log(node: BNode, raw: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_timeout(raw.encode())
    assert node.rejected("BLPOP", "q", raw) == f"ERR {error}"


def test_blocking_arity_and_sides(node: BNode) -> None:
    assert node.rejected("BLPOP", "q") == "ERR wrong number of arguments for 'blpop' command"
    assert node.rejected("BLMOVE", "a", "b", "LEFT", "LEFT") == (
        "ERR wrong number of arguments for 'blmove' command"
    )
    # The sides are read before the timeout, as Redis does.
    assert node.rejected("BLMOVE", "a", "b", "LEFT", "up", "-1") == "ERR syntax error"


# -- WATCH ------------------------------------------------------------------------------------


def changed(
    node: BNode, key: str, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]]
) -> bool:
    for cmd in setup:
        node(*cmd)
    token = node.clone.watch(key.encode())
    for cmd in between:
        node(*cmd)
    return node.clone.watch_changed(key.encode(), token)


# (setup, between, does EXEC abort?) -- what redis-server 7.0.15 does (see
# tests/differential for the same cases against a real server).
WATCH_CASES = [
    ([("SET", "k", "v")], [("SET", "k", "v")], True),
    ([], [("SET", "k", "w")], True),
    ([("SET", "k", "v")], [("DEL", "k")], True),
    ([], [("DEL", "k")], False),
    ([("SET", "k", "v")], [("SET", "other", "v")], False),
    ([("SET", "k", "v")], [("SET", "k", "v2", "NX")], False),
    ([("SET", "k", "v", "EX", 1000)], [("EXPIRE", "k", 100, "GT")], False),
    ([("SET", "k", "v")], [("PERSIST", "k")], False),
    ([("SET", "k", "v", "EX", 1000)], [("PERSIST", "k")], True),
    ([("SET", "k", "1")], [("INCRBY", "k", 0)], True),
    ([("SET", "k", "v")], [("APPEND", "k", "")], True),
    ([("SET", "k", "v")], [("FLUSHALL",)], True),
    ([("SET", "other", "v")], [("FLUSHALL",)], False),
    ([], [("LPOP", "k")], False),
    ([("RPUSH", "k", "a")], [("LPOP", "k", 0)], False),
    ([("RPUSH", "k", "a")], [("LRANGE", "k", 0, -1), ("LLEN", "k"), ("GET", "other")], False),
    ([("RPUSH", "k", "a")], [("RPUSH", "k", "b")], True),
    ([("RPUSH", "k", "a")], [("LMOVE", "k", "k", "LEFT", "RIGHT")], True),
    ([("RPUSH", "k", "a")], [("LMOVE", "k", "other", "LEFT", "RIGHT")], True),
    ([("RPUSH", "other", "a")], [("LMOVE", "other", "k", "LEFT", "RIGHT")], True),
    ([("RPUSH", "k", "a", "b")], [("BLPOP", "k", 0)], True),
    ([("SET", "k", "v")], [("EXPIRE", "k", -1)], True),
    ([("RPUSH", "k", "a")], [("PEXPIREAT", "k", 1)], True),
    ([], [("EXPIREAT", "k", 1)], False),
    ([("SET", "k", "v")], [("MSET", "a", "1", "k", "2")], True),
    ([("SET", "k", "v")], [("GETSET", "k", "v")], True),
    ([], [("SETNX", "k", "v")], True),
    ([("SET", "k", "v")], [("SETNX", "k", "v")], False),
]


@pytest.mark.parametrize(("setup", "between", "aborts"), WATCH_CASES)
def test_watch_sees_what_redis_sees(
    node: BNode, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]], aborts: bool
) -> None:
    assert changed(node, "k", setup, between) is aborts


def test_watch_and_expiry(node: BNode) -> None:
    # Live when watched, expired by EXEC (not purged yet): changed.
    assert changed(node, "k", [("SET", "k", "v", "PX", 100)], []) is False
    node("FLUSHALL")
    node("SET", "k", "v", "PX", 100)
    token = node.clone.watch(b"k")
    node.advance(100 * MS)
    node("SET", "unrelated", "v")  # the time the EXEC entry is applied at
    assert node.clone.watch_changed(b"k", token) is True
    # Live when watched, expired and purged by the tick since: changed.
    node("FLUSHALL")
    node("SET", "k", "v", "PX", 100)
    token = node.clone.watch(b"k")
    node.advance(100 * MS)
    node.clone.tick(node.m)
    assert node("EXISTS", "k") == 0
    assert node.clone.watch_changed(b"k", token) is True


def test_watching_a_key_that_had_expired_already(node: BNode) -> None:
    """Redis: its removal (lazy, active, DEL, FLUSHALL) is no change; a write is."""
    for between, aborts in [
        ([], False),
        ([("GET", "k")], False),
        ("tick", False),
        ([("DEL", "k")], False),
        ([("FLUSHALL",)], False),
        ([("SET", "k", "w")], True),
        ([("RPUSH", "k", "w")], True),
    ]:
        node("FLUSHALL")
        node("SET", "k", "v", "PX", 10)
        node.advance(20 * MS)
        token = node.clone.watch(b"k")
        assert token[1] is False
        if between == "tick":
            node.clone.tick(node.m)
        else:
            for cmd in between:
                node(*cmd)
        assert node.clone.watch_changed(b"k", token) is aborts, between


def test_bad_tokens_err_towards_aborting(node: BNode) -> None:
    node("SET", "k", "v")
    for token in (None, 5, [1], [1, 2], ["x", True], [10**9, True], [-1, True]):
        assert node.clone.watch_changed(b"k", token) is True


def test_the_watch_log_is_trimmed_at_the_same_place_everywhere(node: BNode) -> None:
    clone = node.clone
    early = clone.watch(b"k")
    for i in range(WATCH_TRIM_AT):
        node("SET", b"k%d" % (i % 100), "v")  # plain SETs only append
    late = clone.watch(b"k")
    assert len(clone._touched) == WATCH_TRIM_AT
    node("SET", "x", "y")
    assert clone.wants_tick(node.m.clock)  # the tick would trim
    node("INCR", "n")  # any other write trims
    assert len(clone._touched) == WATCH_WINDOW
    assert not clone.wants_tick(node.m.clock)
    assert clone.watch_changed(b"k", early) is True  # older than the window: errs
    assert clone.watch_changed(b"k", late) is False
    node("SET", "k", "v")
    assert clone.watch_changed(b"k", late) is True


def test_a_full_watch_log_forgets_positions_but_stays_bounded(node: BNode) -> None:
    clone = node.clone
    token = clone.watch(b"k")
    clone._touched.extend([b"x"] * (WATCH_LOG_CAP + 5))  # as if plain SETs, with ticks off
    assert len(clone._touched) == WATCH_LOG_CAP
    assert clone.watch(b"k")[0] == -1
    assert clone.watch_changed(b"k", token) is True
    node("INCR", "n")  # the next trim starts afresh past every old position
    assert clone.watch_changed(b"k", token) is True
    fresh = clone.watch(b"k")
    assert fresh[0] >= WATCH_LOG_CAP
    assert clone.watch_changed(b"k", fresh) is False


def test_watch_answers_survive_a_snapshot(node: BNode) -> None:
    node("SET", "k", "v")
    node("RPUSH", "l", "a")
    tokens = {key: node.clone.watch(key) for key in (b"k", b"l", b"m")}
    node("SET", "k", "w")
    node("DEL", "m")
    restored = BNode(now=node.m.clock)
    restored.clone.restore(io.BytesIO(node.snapshot()))
    for key, token in tokens.items():
        assert restored.clone.watch_changed(key, token) is node.clone.watch_changed(key, token)
    assert [node.clone.watch_changed(k, t) for k, t in tokens.items()] == [True, False, False]


# -- snapshots --------------------------------------------------------------------------------


def fill_types(node: BNode) -> None:
    fill(node)
    node("RPUSH", "list", "a", b"", b"\x00\xff")
    node("RPUSH", "big list", *[b"e%d" % i for i in range(20_000)])  # spans chunks
    node("RPUSH", "ttl list", "x")
    node("PEXPIRE", "ttl list", 5000)
    node("DEL", "k1")


def test_snapshot_round_trip_of_every_type(node: BNode) -> None:
    fill_types(node)
    data = node.snapshot()
    other = BNode(now=node.m.clock)
    other("RPUSH", "unrelated", "x")
    other.clone.restore(io.BytesIO(data))
    assert other.snapshot() == data
    assert other("EXISTS", "unrelated") == 0
    assert other("LRANGE", "list", 0, -1) == [b"a", b"", b"\x00\xff"]
    assert other("LLEN", "big list") == 20_000
    assert other("PTTL", "ttl list") == 5000
    assert other("TYPE", "big list") == Status("list")
    assert other("GET", "k2") == b"2"
    assert other.reply("LPUSH", "k2", "x") == WRONGTYPE
    rec, header, log = decode(data)
    assert rec[b"list"] == ([1, b"a", b"", b"\x00\xff"], None)
    assert rec[b"ttl list"] == ([1, b"x"], T0 + 5000 * MS)
    assert header[0] == len(rec) and header[2] is True
    assert log[-1] == b"k1" and len(log) == header[3]


def test_a_capture_is_not_changed_by_later_list_writes(node: BNode) -> None:
    fill_types(node)
    expected = node.snapshot()
    buf = io.BytesIO()
    capture = node.clone.snapshot(buf)
    node("RPUSH", "list", "more")
    node("LPOP", "big list", 100)
    node("LMOVE", "list", "new", "LEFT", "LEFT")
    node("SET", "list", "now a string")
    node("FLUSHALL")
    capture.write(buf)
    assert buf.getvalue() == expected


def v1_snapshot(triples: list[tuple[bytes, bytes, int | None]]) -> bytes:
    """A snapshot in format 1, as the clone wrote it before lists: magic, count, triples."""
    flat = [item for triple in triples for item in triple]
    return bytes(SNAPSHOT_MAGIC_V1 + msgpack.packb(len(triples)) + msgpack.packb(flat))


def test_a_format_1_snapshot_still_loads(node: BNode) -> None:
    data = v1_snapshot([(b"a", b"1", None), (b"t", b"v", T0 + 10 * SEC), (b"", b"empty", None)])
    node.clone.restore(io.BytesIO(data))
    assert node("GET", "a") == b"1"
    assert node("TTL", "t") == 10
    assert node("KEYS", "*") == [b"a", b"t", b""]
    # Its WATCH serials are this node's own: the first EXEC with a WATCH aborts
    # and restarts them where every node agrees.
    token = node.clone.watch(b"a")
    assert node.clone.watch_changed(b"a", token) is True
    assert node.clone._touched_base == WATCH_ANCHOR_BASE
    token = node.clone.watch(b"a")
    assert node.clone.watch_changed(b"a", token) is False
    node("SET", "a", "2")
    assert node.clone.watch_changed(b"a", token) is True
    # And a node restored from the same file later agrees from then on.
    assert SNAPSHOT_MAGIC != SNAPSHOT_MAGIC_V1


def test_two_nodes_restored_from_format_1_at_different_points_agree() -> None:
    a, b = BNode(), BNode()
    data = v1_snapshot([(b"k", b"v", None)])
    a.clone.restore(io.BytesIO(data))
    a("SET", "x", "1")
    a("SET", "y", "1")  # b restores later, after these
    b.clone.restore(io.BytesIO(a.snapshot()))
    token = a.clone.watch(b"k")
    for n in (a, b):
        n("SET", "z", "1")
    assert a.clone.watch_changed(b"k", token) is b.clone.watch_changed(b"k", token) is True
    token = b.clone.watch(b"k")
    for n in (a, b):
        n("SET", "w", "1")
    assert a.clone.watch_changed(b"k", token) is b.clone.watch_changed(b"k", token) is False


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: SNAPSHOT_MAGIC + msgpack.packb([1, 0, True]),
        lambda d: (
            SNAPSHOT_MAGIC + msgpack.packb([1, 0, "yes", 0]) + msgpack.packb([b"k", b"v", None])
        ),
        lambda d: (
            SNAPSHOT_MAGIC + msgpack.packb([1, 0, True, 0]) + msgpack.packb([b"k", [1], None])
        ),
        lambda d: (
            SNAPSHOT_MAGIC + msgpack.packb([1, 0, True, 0]) + msgpack.packb([b"k", [2, b"a"], None])
        ),
        lambda d: (
            SNAPSHOT_MAGIC + msgpack.packb([1, 0, True, 0]) + msgpack.packb([b"k", [1, "a"], None])
        ),
        lambda d: (
            SNAPSHOT_MAGIC
            + msgpack.packb([2, 0, True, 0])
            + msgpack.packb([b"k", b"v", None, b"k", [1, b"a"], None])
        ),
        lambda d: SNAPSHOT_MAGIC + msgpack.packb([0, 0, True, 1]) + msgpack.packb([5]),
        lambda d: SNAPSHOT_MAGIC + msgpack.packb([0, 0, True, 1]) + msgpack.packb([[b"k", b"x"]]),
        lambda d: SNAPSHOT_MAGIC + msgpack.packb([0, 0, True, 1]) + msgpack.packb([b"k", b"l"]),
        lambda d: SNAPSHOT_MAGIC + msgpack.packb([0, 0, True, WATCH_LOG_CAP + 1]),
        lambda d: SNAPSHOT_MAGIC_V1 + msgpack.packb(1) + msgpack.packb([b"k", [1, b"a"], None]),
        lambda d: d[:-3],
        lambda d: d + msgpack.packb(None),
    ],
)
def test_a_bad_snapshot_is_refused_and_the_state_kept(node: BNode, corrupt: Any) -> None:
    fill_types(node)
    data = node.snapshot()
    target = BNode()
    target("RPUSH", "mine", "1")
    with pytest.raises(ValueError):
        target.clone.restore(io.BytesIO(corrupt(data)))
    assert target("LRANGE", "mine", 0, -1) == [b"1"]
    assert target("DBSIZE") == 1


# -- determinism ------------------------------------------------------------------------------


KEYS = [b"k%d" % i for i in range(12)]


def random_command(rng: random.Random) -> list[Any]:
    key, other = rng.choice(KEYS), rng.choice(KEYS)
    choice = rng.randrange(14)
    if choice == 0:
        return [
            "SET",
            key,
            rng.choice(["1", "x"]),
            *rng.choice([[], ["PX", rng.randrange(1, 400)]]),
        ]
    if choice == 1:
        return [
            rng.choice(["LPUSH", "RPUSH"]),
            key,
            *rng.sample(["a", "b", "c"], rng.randrange(1, 3)),
        ]
    if choice == 2:
        return [rng.choice(["LPOP", "RPOP"]), key, *rng.choice([[], [rng.randrange(4)]])]
    if choice == 3:
        return ["LMOVE", key, other, rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])]
    if choice == 4:
        return [rng.choice(["BLPOP", "BRPOP"]), key, other, "0"]
    if choice == 5:
        return ["PEXPIRE", key, rng.randrange(-1, 300)]
    if choice == 6:
        return ["DEL", key]
    if choice == 7:
        return ["INCR", key]
    if choice == 8:
        return ["FLUSHDB"] if rng.random() < 0.05 else ["PERSIST", key]
    if choice == 9:
        return ["APPEND", key, "z"]
    return rng.choice([["LRANGE", key, 0, -1], ["TYPE", key], ["LLEN", key], ["GET", key]])


def test_same_log_same_state_and_same_watch_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node applies the same entries alike, a node restored midway included.

    A blocked pop raises Block alike everywhere and changes nothing (the
    leader's retry is a new entry, applied like any other).
    """
    rng = random.Random(20240612)
    a, b = Node(), Node()
    late: Node | None = None
    tokens: list[tuple[bytes, Any]] = []
    now = T0
    for i in range(4000):
        now += rng.choice([0, MS, 20 * MS, 200 * MS])
        if i == 2000:
            late = Node(now=now)
            late.clone.restore(io.BytesIO(a.snapshot()))
        nodes = [a, b] if late is None else [a, b, late]
        cmd = random_command(rng)
        tick = rng.random() < 0.05
        monkeypatch.setattr(keyspace, "wall_clock", lambda now=now: now)
        replies = []
        for n in nodes:
            n.m.clock = now
            replies.append(n.reply(*cmd))
            if tick:
                n.clone.tick(n.m)
        assert all(r == replies[0] for r in replies), (i, cmd, replies)
        if rng.random() < 0.1:
            key = rng.choice(KEYS)
            tokens.append((key, a.clone.watch(key)))
        answers = [[n.clone.watch_changed(k, t) for k, t in tokens[-20:]] for n in nodes]
        assert all(x == answers[0] for x in answers), (i, cmd)
        if late is not None:
            assert a.snapshot() == late.snapshot(), (i, cmd)
    assert late is not None
    assert a.snapshot() == b.snapshot() == late.snapshot()


def test_list_values_are_deques() -> None:
    clone = Clone()
    node = Node()
    node.clone = clone
    node.reads, node.writes = clone.reads(), clone.writes()
    node("RPUSH", "l", "a")
    assert type(clone._objects[b"l"]) is deque
    assert b"l" not in clone._data
