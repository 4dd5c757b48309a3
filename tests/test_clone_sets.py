"""The clone's set commands, driven directly through the fake Applier of ``test_clone_machine``.

Replies and errors as redis-server 7.0 gives them (``tests/differential``
checks the same against a real one), Redis's member order where it is
fixed, what reaches the log and what is refused before it, the WATCH log,
SSCAN's cursors, snapshots, and SPOP drawing the same members on every node
whatever the process's hash seed.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from redraft.examples.clone import Clone, keyspace
from redraft.examples.clone.scanning import parse_scan_cursor
from redraft.examples.clone.set_ops import (
    SetReply,
    is_int_member,
    ordered,
)
from redraft.examples.clone.sets import MAX_RANDOM_REPLY
from redraft.machine import Status
from tests.test_clone_machine import MS, T0, FakeApplier, Node

pytestmark = pytest.mark.timeout(60)

WRONGTYPE = ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Node:
    n = Node()
    # WATCH reads the node's wall clock: make it the fake one.
    monkeypatch.setattr(keyspace, "wall_clock", lambda: n.m.clock)
    return n


def members(node: Node, key: str) -> list[bytes]:
    reply = node("SMEMBERS", key)
    assert isinstance(reply, SetReply)
    return list(reply)


# -- the basics -------------------------------------------------------------------------------


def test_add_remove_and_ask(node: Node) -> None:
    assert node("SADD", "s", "a", "b", "c") == 3
    assert node("SADD", "s", "a", "d", "d") == 1
    assert node("SCARD", "s") == 4
    assert node("SISMEMBER", "s", "a") == 1
    assert node("SISMEMBER", "s", "zz") == 0
    assert node("SMISMEMBER", "s", "a", "zz", "a") == [1, 0, 1]
    assert node("SMISMEMBER", "nokey", "a", "b") == [0, 0]
    assert sorted(members(node, "s")) == [b"a", b"b", b"c", b"d"]
    assert node("TYPE", "s") == Status("set")
    assert node("SREM", "s", "a", "zz", "a") == 1
    assert node("SREM", "s", "b", "c", "d") == 3  # the last member deletes the key
    assert node("EXISTS", "s") == 0
    assert node("SCARD", "s") == 0
    assert members(node, "s") == []
    assert node("SREM", "s", "a") == 0


def test_the_hot_commands_are_plain() -> None:
    clone = Clone()
    assert {"sadd", "srem", "spop", "smove", "sinterstore"} <= set(clone.writes())
    assert {"sismember", "scard", "smembers", "srandmember", "sinter"} <= set(clone.reads())
    assert b"sscan" in clone._handlers


def test_a_set_is_a_python_set(node: Node) -> None:
    node("SADD", "s", "a")
    assert type(node.clone._objects[b"s"]) is set
    assert b"s" not in node.clone._data


def test_intsets_answer_in_numeric_order_and_other_sets_as_they_are(node: Node) -> None:
    node("SADD", "i", "10", "-3", "2", "0", "9223372036854775807", "-9223372036854775808")
    expected = [b"-9223372036854775808", b"-3", b"0", b"2", b"10", b"9223372036854775807"]
    assert members(node, "i") == expected
    assert node("SRANDMEMBER", "i", 100) == expected
    assert list(node("SUNION", "i")) == expected
    assert node("SSCAN", "i", "0", "COUNT", "1") == [b"0", expected]
    node("SADD", "i", "01")  # not canonical: Redis makes a hash table of it
    assert sorted(members(node, "i")) == sorted([*expected, b"01"])
    table = [str(n).encode() for n in range(513, 0, -1)]  # 513 integers: a hash table
    assert ordered(table) == table
    assert ordered([b"3", b"1", b"2"]) == [b"1", b"2", b"3"]


@pytest.mark.parametrize(
    ("raw", "is_int"),
    [
        (b"0", True),
        (b"-1", True),
        (b"123", True),
        (b"9223372036854775807", True),
        (b"-9223372036854775808", True),
        (b"9223372036854775808", False),
        (b"-9223372036854775809", False),
        (b"-0", False),
        (b"01", False),
        (b"+1", False),
        (b" 1", False),
        (b"1 ", False),
        (b"", False),
        (b"-", False),
        (b"1.0", False),
        (b"\xd9\xa1", False),  # a non-ASCII digit
        (b"00000000000000000000001", False),
    ],
)
def test_intset_members_are_redis_integers(raw: bytes, is_int: bool) -> None:
    assert is_int_member(raw) is is_int


@pytest.mark.parametrize(
    ("raw", "cursor"),
    [
        (b"0", 0),
        (b"", 0),
        (b"7", 7),
        (b"007", 7),
        (b"+5", 5),
        (b"-1", 2**64 - 1),
        (b"-18446744073709551615", 1),
        (b"18446744073709551615", 2**64 - 1),
        (b"5\x00junk", 5),
        (b"\x00", 0),
        (b"18446744073709551616", None),
        (b" 1", None),
        (b"1 ", None),
        (b"1x", None),
        (b"+", None),
        (b"-", None),
        (b"0x10", None),
    ],
)
def test_sscan_cursors_are_read_as_strtoul(raw: bytes, cursor: int | None) -> None:
    if cursor is None:
        with pytest.raises(ValueError, match="invalid cursor"):
            parse_scan_cursor(raw)
    else:
        assert parse_scan_cursor(raw) == cursor


# -- errors -----------------------------------------------------------------------------------


SET_COMMANDS = [
    ("SADD", "k", "a"),
    ("SREM", "k", "a"),
    ("SMEMBERS", "k"),
    ("SISMEMBER", "k", "a"),
    ("SMISMEMBER", "k", "a"),
    ("SCARD", "k"),
    ("SPOP", "k"),
    ("SPOP", "k", 0),
    ("SPOP", "k", 2),
    ("SRANDMEMBER", "k"),
    ("SRANDMEMBER", "k", 0),
    ("SRANDMEMBER", "k", -2),
    ("SMOVE", "k", "s", "a"),
    ("SMOVE", "s", "k", "a"),
    ("SMOVE", "s", "k", "zz"),
    ("SINTER", "k"),
    ("SINTER", "nokey", "k"),
    ("SINTERCARD", 2, "nokey", "k"),
    ("SUNION", "s", "k"),
    ("SDIFF", "nokey", "k"),
    ("SINTERSTORE", "d", "k"),
    ("SUNIONSTORE", "d", "s", "k"),
    ("SDIFFSTORE", "d", "nokey", "k"),
    ("SSCAN", "k", 0),
    ("SSCAN", "k", 0, "COUNT", "x"),
]


@pytest.mark.parametrize("kind", ["string", "list"])
@pytest.mark.parametrize("cmd", SET_COMMANDS, ids=lambda c: " ".join(map(str, c)))
def test_set_commands_on_another_type_are_wrongtype(
    node: Node, kind: str, cmd: tuple[Any, ...]
) -> None:
    node("SADD", "s", "a")
    node("SET", "k", "v") if kind == "string" else node("RPUSH", "k", "v")
    before = node.snapshot()
    assert node.reply(*cmd) == WRONGTYPE
    assert node.snapshot() == before


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (("SADD", "s"), "ERR wrong number of arguments for 'sadd' command"),
        (("SREM", "s"), "ERR wrong number of arguments for 'srem' command"),
        (("SPOP",), "ERR wrong number of arguments for 'spop' command"),
        (("SPOP", "s", 1, 2), "ERR syntax error"),
        (("SPOP", "s", -1), "ERR value is out of range, must be positive"),
        (("SPOP", "s", "x"), "ERR value is out of range, must be positive"),
        (("SMOVE", "s", "d"), "ERR wrong number of arguments for 'smove' command"),
        (("SINTERSTORE", "d"), "ERR wrong number of arguments for 'sinterstore' command"),
        (("SUNIONSTORE", "d"), "ERR wrong number of arguments for 'sunionstore' command"),
        (("SDIFFSTORE", "d"), "ERR wrong number of arguments for 'sdiffstore' command"),
    ],
)
def test_bad_writes_are_refused_before_the_log(
    node: Node, cmd: tuple[Any, ...], error: str
) -> None:
    assert node.rejected(*cmd) == error


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (("SMEMBERS", "s", "t"), "ERR wrong number of arguments for 'smembers' command"),
        (("SISMEMBER", "s"), "ERR wrong number of arguments for 'sismember' command"),
        (("SMISMEMBER", "s"), "ERR wrong number of arguments for 'smismember' command"),
        (("SCARD",), "ERR wrong number of arguments for 'scard' command"),
        (("SRANDMEMBER",), "ERR wrong number of arguments for 'srandmember' command"),
        (("SRANDMEMBER", "s", 1, 2), "ERR syntax error"),
        (("SRANDMEMBER", "s", "x"), "ERR value is not an integer or out of range"),
        (
            ("SRANDMEMBER", "s", -(2**63)),
            "ERR value is out of range, value must between"
            " -9223372036854775807 and 9223372036854775807",
        ),
        (("SINTER",), "ERR wrong number of arguments for 'sinter' command"),
        (("SINTERCARD", 1), "ERR wrong number of arguments for 'sintercard' command"),
        (("SINTERCARD", 0, "s"), "ERR numkeys should be greater than 0"),
        (("SINTERCARD", "x", "s"), "ERR numkeys should be greater than 0"),
        (("SINTERCARD", 2, "s"), "ERR Number of keys can't be greater than number of args"),
        (("SINTERCARD", 1, "s", "LIMIT", -1), "ERR LIMIT can't be negative"),
        (("SINTERCARD", 1, "s", "LIMIT"), "ERR syntax error"),
        (("SINTERCARD", 1, "s", "t"), "ERR syntax error"),
        (("SSCAN", "s"), "ERR wrong number of arguments for 'sscan' command"),
        (("SSCAN", "s", "x"), "ERR invalid cursor"),
        (("SSCAN", "s", 0, "COUNT", 0), "ERR syntax error"),
        (("SSCAN", "s", 0, "COUNT", "x"), "ERR value is not an integer or out of range"),
        (("SSCAN", "s", 0, "TYPE", "set"), "ERR syntax error"),
        (("SSCAN", "s", 0, "MATCH"), "ERR syntax error"),
    ],
)
def test_bad_reads_answer_redis_errors(node: Node, cmd: tuple[Any, ...], error: str) -> None:
    node("SADD", "s", "a")
    assert node.reply(*cmd) == ("error", error)


def test_sscan_options_are_read_only_for_a_set(node: Node) -> None:
    """As in Redis: a missing key answers an empty scan before the options are looked at."""
    assert node("SSCAN", "nokey", "0", "COUNT", "x", "TYPE", "y") == [b"0", []]
    assert node.reply("SSCAN", "nokey", "x") == ("error", "ERR invalid cursor")


def test_failed_store_writes_change_nothing(node: Node) -> None:
    node("SADD", "s", "a")
    node("SET", "str", "v")
    node("SET", "d", "old")
    for cmd in [
        ("SINTERSTORE", "d", "s", "str"),
        ("SUNIONSTORE", "d", "str"),
        ("SDIFFSTORE", "d", "nokey", "str"),
        ("SMOVE", "s", "str", "a"),
        ("SPOP", "str", 1),
    ]:
        assert node.failed_write(*cmd).startswith("WRONGTYPE"), cmd


# -- the algebra ------------------------------------------------------------------------------


def test_intersections_unions_and_differences(node: Node) -> None:
    node("SADD", "a", "1", "2", "3", "x")
    node("SADD", "b", "2", "3", "4", "x")
    node("SADD", "c", "3", "x", "y")
    assert sorted(node("SINTER", "a", "b", "c")) == [b"3", b"x"]
    assert sorted(node("SINTER", "a", "b")) == [b"2", b"3", b"x"]
    assert node("SINTER", "a", "nokey") == SetReply([])
    assert sorted(node("SUNION", "a", "nokey", "c")) == [b"1", b"2", b"3", b"x", b"y"]
    assert list(node("SDIFF", "a", "b")) == [b"1"]
    assert node("SDIFF", "nokey", "a") == SetReply([])
    assert node("SINTERCARD", 3, "a", "b", "c") == 2
    assert node("SINTERCARD", 3, "a", "b", "c", "LIMIT", 1) == 1
    assert node("SINTERCARD", 3, "a", "b", "c", "LIMIT", 0) == 2
    assert node("SINTERCARD", 2, "a", "nokey") == 0
    assert node("SINTERSTORE", "d", "a", "b") == 3
    assert node("SUNIONSTORE", "u", "a", "b") == 5
    assert node("SDIFFSTORE", "a", "a", "b") == 1  # the destination may be a source
    assert list(node("SMEMBERS", "a")) == [b"1"]
    assert sorted(members(node, "d")) == [b"2", b"3", b"x"]


def test_a_store_result_is_a_new_set(node: Node) -> None:
    node("SADD", "a", "1")
    node("SUNIONSTORE", "copy", "a")
    node("SINTERSTORE", "copy2", "a")
    node("SDIFFSTORE", "copy3", "a")
    node("SADD", "a", "2")
    for key in (b"copy", b"copy2", b"copy3"):
        assert node.clone._objects[key] == {b"1"}
        assert node.clone._objects[key] is not node.clone._objects[b"a"]


def test_stores_replace_any_type_drop_the_expiry_and_delete_when_empty(node: Node) -> None:
    node("SADD", "a", "x")
    node("SET", "d", "v", "EX", 100)
    assert node("SUNIONSTORE", "d", "a") == 1
    assert node("TYPE", "d") == Status("set")
    assert node("TTL", "d") == -1
    assert b"d" not in node.clone._data
    node("RPUSH", "l", "x")
    assert node("SINTERSTORE", "l", "a", "a") == 1
    assert node("TYPE", "l") == Status("set")
    assert node("SDIFFSTORE", "l", "a", "a") == 0
    assert node("EXISTS", "l") == 0
    assert node("SINTERSTORE", "missing", "a", "nokey") == 0
    assert node("EXISTS", "missing") == 0


def test_smove(node: Node) -> None:
    node("SADD", "src", "a", "b")
    assert node("SMOVE", "src", "dst", "a") == 1
    assert node("SMOVE", "src", "dst", "zz") == 0
    assert node("SMOVE", "src", "src", "b") == 1
    assert node("SMOVE", "nokey", "dst", "a") == 0
    node("SET", "str", "v")
    assert node("SMOVE", "nokey", "str", "a") == 0  # the source is looked at first
    assert node("SMOVE", "src", "dst", "b") == 1
    assert node("EXISTS", "src") == 0
    assert sorted(members(node, "dst")) == [b"a", b"b"]


# -- random draws -----------------------------------------------------------------------------


def test_spop_draws_and_removes(node: Node) -> None:
    node("SADD", "s", *[f"m{i}" for i in range(20)])
    one = node("SPOP", "s")
    assert isinstance(one, bytes) and node("SISMEMBER", "s", one) == 0
    some = node("SPOP", "s", 5)
    assert isinstance(some, SetReply) and len(some) == 5
    assert node("SMISMEMBER", "s", *some) == [0] * 5
    assert node("SCARD", "s") == 14
    assert node("SPOP", "s", 0) == SetReply([])
    rest = node("SPOP", "s", 100)
    assert len(rest) == 14 and node("EXISTS", "s") == 0
    assert node("SPOP", "s") is None
    assert node("SPOP", "s", 3) == SetReply([])
    node("SADD", "one", "x")
    assert node("SPOP", "one") == b"x"
    assert node("EXISTS", "one") == 0


def test_srandmember(node: Node) -> None:
    node("SADD", "s", *[f"m{i}" for i in range(20)])
    everything = set(node.clone._objects[b"s"])
    assert node("SRANDMEMBER", "s") in everything
    some = node("SRANDMEMBER", "s", 5)
    assert type(some) is list and len(set(some)) == 5 and set(some) <= everything
    repeats = node("SRANDMEMBER", "s", -50)
    assert len(repeats) == 50 and set(repeats) <= everything
    assert sorted(node("SRANDMEMBER", "s", 20)) == sorted(everything)
    assert node("SRANDMEMBER", "s", 0) == []
    assert node("SRANDMEMBER", "nokey") is None
    assert node("SRANDMEMBER", "nokey", -5) == []
    assert node("SCARD", "s") == 20
    error = node.reply("SRANDMEMBER", "s", -(MAX_RANDOM_REPLY + 1))
    assert error[0] == "error"


_DRAWS = """
import json, random, sys
from redraft.examples.clone import Clone
from redraft.machine import Applier, Command

class M(Applier):
    def __init__(self): self.n = 0
    def apply(self, conn, cmd, mutate, respond): return mutate() if mutate else respond(None)
    def now_ns(self): return 1_700_000_000 * 10**9
    def random(self): return random.Random(self.n)

clone, m = Clone(), M()
writes = clone.writes()
def run(*args):
    m.n += 1
    args = [a.encode() for a in args]
    return writes[args[0].decode().lower()].apply(m, args)
out = []
run("SADD", "s", *[f"member-{i}" for i in range(200)])
run("SADD", "i", *[str(i) for i in range(50)])
for _ in range(30):
    out.append(run("SPOP", "s").decode())
    out.append(sorted(x.decode() for x in run("SPOP", "s", "3")))
    out.append(run("SPOP", "i").decode())
out.append(sorted(x.decode() for x in clone._objects[b"s"]))
print(json.dumps(out))
"""


def test_spop_draws_the_same_members_whatever_the_hash_seed() -> None:
    """A set iterates in an order that depends on the process's hash seed; SPOP must not."""
    root = Path(__file__).resolve().parent.parent
    outs = []
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root / "src")}
        done = subprocess.run(
            [sys.executable, "-c", _DRAWS], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outs.append(json.loads(done.stdout))
    assert outs[0] == outs[1] == outs[2]


# -- SSCAN ------------------------------------------------------------------------------------


def walk(node: Node, key: str, *opts: Any) -> list[bytes]:
    cursor: Any = "0"
    seen: list[bytes] = []
    for _ in range(10_000):
        cursor, page = node("SSCAN", key, cursor, *opts)
        seen += page
        if cursor == b"0":
            return seen
    raise AssertionError("the walk did not end")


def test_a_small_set_comes_whole(node: Node) -> None:
    node("SADD", "s", "a", "b", "c")
    cursor, page = node("SSCAN", "s", "0", "COUNT", "3")
    assert cursor == b"0" and sorted(page) == [b"a", b"b", b"c"]
    assert node("SSCAN", "s", "0", "MATCH", "[ab]")[1] in ([b"a", b"b"], [b"b", b"a"])
    assert node("SSCAN", "s", "12345")[0] == b"0"  # any cursor: the whole set


def test_a_large_set_is_walked_with_cursors(node: Node) -> None:
    node("SADD", "big", *[f"m{i}" for i in range(95)])
    cursor, page = node("SSCAN", "big", "0")
    assert cursor != b"0" and len(page) == 10
    seen = walk(node, "big", "COUNT", "10")
    assert sorted(seen) == sorted(f"m{i}".encode() for i in range(95))
    assert sorted(walk(node, "big", "MATCH", "m1*", "COUNT", "7")) == sorted(
        f"m{i}".encode() for i in range(95) if str(i).startswith("1")
    )
    node("SADD", "other", *[f"o{i}" for i in range(50)])
    assert node.reply("SSCAN", "other", cursor) == ("error", "ERR invalid cursor")
    assert node.reply("SSCAN", "big", "99999999999") == ("error", "ERR invalid cursor")


def test_a_walk_leaves_out_removed_members_and_survives_a_delete(node: Node) -> None:
    node("SADD", "big", *[f"m{i}" for i in range(40)])
    cursor, page = node("SSCAN", "big", "0")
    node("SREM", "big", *[f"m{i}" for i in range(40) if f"m{i}".encode() not in page][:20])
    rest: list[bytes] = []
    while cursor != b"0":
        cursor, more = node("SSCAN", "big", cursor)
        rest += more
    assert set(rest) <= node.clone._objects[b"big"]
    cursor, _ = node("SSCAN", "big", "0", "COUNT", "5")
    node("DEL", "big")
    assert node("SSCAN", "big", cursor) == [b"0", []]


def test_a_walk_goes_on_after_the_set_shrinks(node: Node) -> None:
    # As Redis's hash table, which never turns back into an intset: the walk's next
    # steps, not the whole (now small) set.
    node("SADD", "w", *[f"m{i}" for i in range(100)])
    cursor, page = node("SSCAN", "w", "0", "COUNT", "10")
    node("SREM", "w", *[f"m{i}" for i in range(100) if f"m{i}".encode() not in page][:85])
    cursor, more = node("SSCAN", "w", cursor, "COUNT", "20")  # 15 members: whole at cursor 0
    assert cursor != b"0" and len(more) <= 20
    rest = more + walk_from(node, "w", cursor, "COUNT", "20")
    assert not set(rest) & set(page)
    assert set(page) | set(rest) == node.clone._objects[b"w"]
    assert node("SSCAN", "w", "0", "COUNT", "20")[0] == b"0"  # small: whole again


def walk_from(node: Node, key: str, cursor: Any, *opts: Any) -> list[bytes]:
    seen: list[bytes] = []
    while cursor != b"0":
        cursor, page = node("SSCAN", key, cursor, *opts)
        seen += page
    return seen


# -- WATCH ------------------------------------------------------------------------------------


def changed(node: Node, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]]) -> bool:
    node("FLUSHALL")
    for cmd in setup:
        node(*cmd)
    token = node.clone.watch(b"k")
    for cmd in between:
        node(*cmd)
    return node.clone.watch_changed(b"k", token)


# (setup, between, does EXEC abort?): what redis-server 7.0.15 does (the same cases run
# against a real one in tests/differential/test_sets_vs_redis.py).
WATCH_CASES = [
    ([("SADD", "k", "a")], [("SADD", "k", "a")], False),
    ([("SADD", "k", "a")], [("SADD", "k", "b")], True),
    ([], [("SADD", "k", "a")], True),
    ([("SADD", "k", "a")], [("SREM", "k", "x")], False),
    ([("SADD", "k", "a", "b")], [("SREM", "k", "a")], True),
    ([("SADD", "k", "a")], [("SREM", "k", "a")], True),
    ([("SADD", "k", "a")], [("SPOP", "k")], True),
    ([("SADD", "k", "a")], [("SPOP", "k", 0)], False),
    ([], [("SPOP", "k")], False),
    ([("SADD", "k", "a")], [("SMEMBERS", "k"), ("SRANDMEMBER", "k"), ("SSCAN", "k", 0)], False),
    ([("SADD", "k", "a")], [("SMOVE", "k", "o", "a")], True),
    ([("SADD", "o", "a")], [("SMOVE", "o", "k", "a")], True),
    ([("SADD", "o", "a"), ("SADD", "k", "a")], [("SMOVE", "o", "k", "a")], False),
    ([("SADD", "k", "a")], [("SMOVE", "k", "k", "a")], False),
    ([("SADD", "s", "a")], [("SINTERSTORE", "k", "s")], True),
    ([("SADD", "s", "a"), ("SADD", "k", "a")], [("SUNIONSTORE", "k", "s")], True),
    ([("SADD", "s", "a")], [("SDIFFSTORE", "k", "s", "s")], False),
    ([("SET", "k", "v")], [("SDIFFSTORE", "k", "nokey")], True),
    ([("SADD", "k", "a")], [("SUNIONSTORE", "o", "k")], False),
]


@pytest.mark.parametrize(("setup", "between", "aborts"), WATCH_CASES)
def test_watch_sees_what_redis_sees(
    node: Node, setup: list[tuple[Any, ...]], between: list[tuple[Any, ...]], aborts: bool
) -> None:
    assert changed(node, setup, between) is aborts


# -- expiry and snapshots ---------------------------------------------------------------------


def test_an_expired_set_is_a_missing_key(node: Node) -> None:
    node("SADD", "s", "a", "b")
    node("PEXPIRE", "s", 100)
    node.advance(100 * MS)
    assert node("SCARD", "s") == 0
    assert node("SMEMBERS", "s") == SetReply([])
    assert node("SPOP", "s") is None
    assert node("SADD", "s", "c") == 1
    assert node("TTL", "s") == -1
    assert list(node("SMEMBERS", "s")) == [b"c"]


def test_a_set_keeps_its_expiry_through_changes(node: Node) -> None:
    node("SADD", "s", "a", "b")
    node("EXPIRE", "s", 100)
    node("SADD", "s", "c")
    node("SREM", "s", "a")
    node("SPOP", "s")
    assert node("TTL", "s") == 100


def test_snapshot_round_trip_of_sets(node: Node) -> None:
    node("SADD", "s", "a", b"", b"\x00\xff")
    node("SADD", "i", "3", "1", "2")
    node("SADD", "big", *[f"m{i}" for i in range(20_000)])  # spans chunks
    node("SADD", "ttl", "x")
    node("PEXPIRE", "ttl", 5000)
    data = node.snapshot()
    other = Node(now=node.m.clock)
    other("SADD", "unrelated", "x")
    other.clone.restore(io.BytesIO(data))
    assert other("EXISTS", "unrelated") == 0
    for key in ("s", "i", "big", "ttl"):
        assert other("TYPE", key) == Status("set")
        assert sorted(other("SMEMBERS", key)) == sorted(node("SMEMBERS", key))
    assert list(other("SMEMBERS", "i")) == [b"1", b"2", b"3"]
    assert other("SCARD", "big") == 20_000
    assert other("PTTL", "ttl") == 5000
    assert other("SISMEMBER", "s", b"\x00\xff") == 1
    assert type(other.clone._objects[b"s"]) is set
    # The restored node draws what this one draws.
    assert other("SPOP", "big", 5) == node("SPOP", "big", 5)


def test_a_capture_is_not_changed_by_later_set_writes(node: Node) -> None:
    node("SADD", "s", "a", "b")
    buf = io.BytesIO()
    capture = node.clone.snapshot(buf)
    node("SADD", "s", "c")
    node("SREM", "s", "a")
    capture.write(buf)
    other = Node()
    other.clone.restore(io.BytesIO(buf.getvalue()))
    assert sorted(other("SMEMBERS", "s")) == [b"a", b"b"]


def test_same_log_same_state_across_nodes() -> None:
    """Two nodes and one restored midway apply a random log of set writes alike."""
    rng = random.Random(19)
    keys = [f"k{i}" for i in range(6)]
    a, b = Node(), Node()
    late: Node | None = None
    for i in range(3000):
        if i == 1500:
            late = Node(now=a.m.clock)
            late.clone.restore(io.BytesIO(a.snapshot()))
        key, other = rng.choice(keys), rng.choice(keys)
        cmd = rng.choice(
            [
                ["SADD", key, *rng.sample("abcdefgh123", rng.randrange(1, 4))],
                ["SREM", key, rng.choice("abcdefgh123")],
                ["SPOP", key],
                ["SPOP", key, rng.randrange(4)],
                ["SMOVE", key, other, rng.choice("abc1")],
                ["SINTERSTORE", key, other, rng.choice(keys)],
                ["SUNIONSTORE", key, other, rng.choice(keys)],
                ["SDIFFSTORE", key, other, rng.choice(keys)],
                ["SET", key, "v"],
            ]
        )
        nodes = [a, b] if late is None else [a, b, late]
        for n in nodes:
            n.m = FakeApplier(T0, seed=i)
        replies = [n.reply(*cmd) for n in nodes]
        assert all(r == replies[0] for r in replies), (i, cmd, replies)
    assert late is not None
    for key in keys:
        assert sorted(a("SMEMBERS", key) if a("TYPE", key) == Status("set") else []) == sorted(
            late("SMEMBERS", key) if late("TYPE", key) == Status("set") else []
        )


_SNAPSHOT = """
import hashlib
from tests.test_clone_machine import Node
node = Node()
node("SADD", "s", *[f"member-{i}" for i in range(100)])
print(hashlib.sha256(node.snapshot()).hexdigest())
"""


def test_snapshot_bytes_do_not_depend_on_the_hash_seed() -> None:
    root = Path(__file__).resolve().parent.parent
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{root / 'src'}:{root}"}
        done = subprocess.run(
            [sys.executable, "-c", _SNAPSHOT], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout)
    assert len(digests) == 1
