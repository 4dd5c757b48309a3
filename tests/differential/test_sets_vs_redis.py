"""The clone's set commands against a real redis-server 7.0: the same commands, the same bytes.

Where Redis's member order is fixed (an intset: at most 512 members, every
one a canonical integer, answered in numeric order) the clone's reply must
be the same bytes; where it is a hash table's (a seed drawn at start) the
members compare sorted.  SPOP and SRANDMEMBER are random by nature: their
replies are checked for what is deterministic (shape, count, membership,
errors), and what SPOP took is put back on each side so that the two
keyspaces stay equal.

A random test (Hypothesis) over set, string and keyspace commands on the
shared keys; a bounded budget in CI (``REDRAFT_DIFF_EXAMPLES`` raises it).
"""

from __future__ import annotations

import os
from typing import Any

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.differential.harness import (
    Args,
    CloneServer,
    Conn,
    Differ,
    Mismatch,
    RedisServer,
    same,
    watch_replies,
)
from tests.differential.strategies import Cmd, keyspace, strings
from tests.differential.strategies_sets import (
    random_sets,
    sets,
    sorted_members,
)

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("REDRAFT_DIFF_EXAMPLES", "60"))
"""How many random sequences a run tries (CI: a few seconds)."""

_ORDERED = {b"smembers", b"sinter", b"sunion", b"sdiff", b"spop", b"srandmember", b"sscan"}


def parse(reply: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


def _canonical_int(raw: Any) -> bool:
    return isinstance(raw, bytes) and raw.lstrip(b"-").isdigit() and str(int(raw)).encode() == raw


def intset_ordered(name: bytes, reply: bytes) -> bool:
    """Whether redis-server answered in an intset's order: numbers only, ascending, <= 512."""
    if not reply.startswith(b"*"):
        return False
    value = parse(reply)
    if name == b"sscan":
        value = value[1]
    return (
        isinstance(value, list)
        and len(value) <= 512
        and all(_canonical_int(v) for v in value)
        and [int(v) for v in value] == sorted(int(v) for v in value)
    )


def set_same(args: Args, theirs: bytes, ours: bytes) -> bool:
    """:func:`harness.same`, but exact where Redis's order is an intset's."""
    if theirs == ours:
        return True
    name = (args[0] if isinstance(args[0], bytes) else str(args[0]).encode()).lower()
    if name in _ORDERED and intset_ordered(name, theirs):
        return False
    return same(args, theirs, ours)


def check(d: Differ, *args: bytes | str | int) -> bytes:
    theirs, ours = d.both(*args)
    if not set_same(args, theirs, ours):
        raise Mismatch(d.report() + f"\n!! {args!r}\n   redis {theirs!r}\n   clone {ours!r}")
    return ours


def script(d: Differ, text: str) -> None:
    for line in text.strip().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            check(d, *[a if a != "''" else "" for a in line.split()])


# -- random by nature -------------------------------------------------------------------


def _call_each(d: Differ, args: Args) -> tuple[bytes, bytes]:
    theirs, ours = d.redis.call(*args), d.clone.call(*args)
    d.history.append((args, theirs, ours))
    return theirs, ours


def check_random(d: Differ, *args: bytes | str | int) -> None:
    """SPOP / SRANDMEMBER: the same errors and shape; members of the set; SPOP's taken put back."""
    theirs, ours = _call_each(d, args)
    fail = f"{d.report()}\n!! {args!r}\n   redis {theirs!r}\n   clone {ours!r}"
    if theirs.startswith((b"-", b"$-1", b"*0\r\n")) or ours.startswith((b"-", b"$-1", b"*0\r\n")):
        assert theirs == ours, fail
        return
    name, key = str(args[0]).upper(), args[1]
    got = [parse(theirs), parse(ours)]
    assert type(got[0]) is type(got[1]), fail
    taken = [g if isinstance(g, list) else [g] for g in got]
    assert len(taken[0]) == len(taken[1]), fail
    count = int(args[2]) if len(args) > 2 else 1
    if name == "SPOP" or count > 0:
        assert all(len(set(t)) == len(t) for t in taken), fail
    for conn, items in zip((d.redis, d.clone), taken, strict=True):
        if name == "SPOP":
            # Put back what was taken: both keyspaces hold the same again.
            assert conn.call("SADD", key, *items) == b":%d\r\n" % len(items), fail
        else:
            flags = parse(conn.call("SMISMEMBER", key, *items))
            assert flags == [1] * len(items), fail


# -- focused scripts ----------------------------------------------------------------------


BASICS = """
SADD s a b c
SADD s a d
SADD s a a a
SCARD s
SISMEMBER s a
SISMEMBER s zz
SISMEMBER nokey a
SMISMEMBER s a zz b a
SMISMEMBER nokey a b
SMEMBERS s
SMEMBERS nokey
SREM s a zz a
SREM s zz
SREM nokey a
SCARD nokey
TYPE s
SREM s b c d
EXISTS s
TYPE s
SADD e ''
SMEMBERS e
SISMEMBER e ''
SREM e ''
EXISTS e
"""

INTSETS = """
SADD i 3 1 2 -5 10 0
SMEMBERS i
SADD i 7
SMEMBERS i
SADD i 01
SMEMBERS i
SREM i 01
SMEMBERS i
SADD j 9223372036854775807 -9223372036854775808 9223372036854775808 -0 +1
SMEMBERS j
SADD k2 -0
SMEMBERS k2
SADD k3 5 4 3 2 1
SPOP k3 100
EXISTS k3
SADD k3 5 4 3 2 1
SRANDMEMBER k3 5
SRANDMEMBER k3 100
SUNION k3 i
SINTER k3 i
SDIFF k3 i
SDIFF i k3
SSCAN k3 0
SSCAN k3 0 COUNT 1
SSCAN k3 0 MATCH 1*
SSCAN k3 -1
SSCAN k3 ''
SSCAN k3 18446744073709551615
SSCAN k3 18446744073709551616
SSCAN k3 -18446744073709551615
SSCAN k3 +0
SSCAN k3 007
SADD mixed 1 a
SREM mixed a
SUNION mixed k3
SUNIONSTORE u mixed k3
SMEMBERS u
"""

WRONG_TYPES = """
SET str v
SADD str a
SREM str a
SMEMBERS str
SISMEMBER str a
SMISMEMBER str a
SCARD str
SPOP str
SPOP str 0
SPOP str 1
SPOP str x
SRANDMEMBER str
SRANDMEMBER str 0
SRANDMEMBER str x
SMOVE str s a
SMOVE nokey str a
SADD s a
SMOVE s str a
SMOVE s str zz
SINTER str
SINTER nokey str
SINTER s str
SUNION s str
SDIFF nokey str
SDIFF s nokey str
SINTERCARD 2 nokey str
SINTERSTORE d str
SUNIONSTORE d s str
SDIFFSTORE d nokey str
SSCAN str 0
SSCAN str 0 COUNT x
SSCAN str x
RPUSH list a
SADD list a
GET s
LPUSH s a
INCR s
APPEND s x
LRANGE s 0 -1
"""

STORES = """
SADD a 1 2 3 x
SADD b 2 3 4 x
SADD c 3 x y
SINTERSTORE d a b c
SMEMBERS d
SUNIONSTORE d a b c
SMEMBERS d
SCARD d
SDIFFSTORE d a b
SMEMBERS d
SDIFFSTORE d a b c nokey
SMEMBERS d
SDIFFSTORE d nokey a
EXISTS d
SINTERSTORE d a nokey
EXISTS d
SUNIONSTORE d nokey
EXISTS d
SET str v EX 100
SINTERSTORE str a b
TYPE str
TTL str
SMEMBERS str
RPUSH list x
SUNIONSTORE list a
TYPE list
SET str2 v
SDIFFSTORE str2 a a
EXISTS str2
SADD a2 1
EXPIRE a2 100
SUNIONSTORE a2 a2 b
TTL a2
SINTERSTORE a a
SMEMBERS a
SINTERSTORE a a b
SMEMBERS a
SDIFFSTORE b b a
SMEMBERS b
SINTER a b c
SINTER a
SINTER a a
SUNION a nokey b
SDIFF a
SDIFF a a
SDIFF nokey a
SDIFF c a b
"""

MOVES = """
SADD src a b 1
SADD dst c
SMOVE src dst a
SMEMBERS src
SMEMBERS dst
SMOVE src dst zz
SMOVE src src b
SMOVE src src zz
SMOVE nokey dst a
SADD dst b
SMOVE src dst b
SMEMBERS dst
SMOVE src new 1
EXISTS src
SMEMBERS new
SADD one x
SMOVE one one x
SMOVE one other x
EXISTS one
SMEMBERS other
"""

POPS = """
SPOP nokey
SPOP nokey 0
SPOP nokey 5
SPOP nokey -1
SPOP nokey x
SPOP nokey 01
SPOP nokey 9223372036854775807
SPOP nokey 9223372036854775808
SRANDMEMBER nokey
SRANDMEMBER nokey 0
SRANDMEMBER nokey 5
SRANDMEMBER nokey -5
SRANDMEMBER nokey x
SRANDMEMBER nokey -9223372036854775808
SRANDMEMBER nokey -9223372036854775807
SRANDMEMBER nokey 9223372036854775807
SADD s a b c
SPOP s 0
SRANDMEMBER s 0
SRANDMEMBER s 3
SRANDMEMBER s 9223372036854775807
SRANDMEMBER s x
SRANDMEMBER s -9223372036854775808
SPOP s 1 2
SRANDMEMBER s 1 2
SPOP s 3
EXISTS s
SADD one only
SPOP one
EXISTS one
SADD one only
SRANDMEMBER one
SRANDMEMBER one 1
SRANDMEMBER one -3
SPOP one 1
EXISTS one
"""

CARDS = """
SADD a 1 2 3 4 5 x
SADD b 2 3 4 5 x y
SADD c 3 4 5 x z
SINTERCARD 3 a b c
SINTERCARD 3 a b c LIMIT 0
SINTERCARD 3 a b c LIMIT 2
SINTERCARD 3 a b c limit 100
SINTERCARD 3 a b c LIMIT 1 LIMIT 3
SINTERCARD 1 a
SINTERCARD 2 a nokey
SINTERCARD 2 nokey a
SINTERCARD 0 a
SINTERCARD -1 a
SINTERCARD x a
SINTERCARD 01 a
SINTERCARD 3 a b
SINTERCARD 9223372036854775808 a
SINTERCARD 1 a LIMIT
SINTERCARD 1 a LIMIT -1
SINTERCARD 1 a LIMIT x
SINTERCARD 1 a LIMIT 1 x
SINTERCARD 1 a FOO 1
SINTERCARD 1 a b
SINTERCARD 1 nokey LIMIT x
"""

SCANS = """
SADD s a b c 1 2
SSCAN s 0
SSCAN s 0 COUNT 10
SSCAN s 0 COUNT 100 MATCH *
SSCAN s 0 MATCH [ab]
SSCAN s 0 MATCH ''
SSCAN s 0 match ? count 50
SSCAN s 0 COUNT 0
SSCAN s 0 COUNT -1
SSCAN s 0 COUNT x
SSCAN s 0 COUNT 01
SSCAN s 0 COUNT
SSCAN s 0 MATCH
SSCAN s 0 TYPE set
SSCAN s 0 FOO bar
SSCAN s x
SSCAN s ' 1'
SSCAN s 1x
SSCAN s +
SSCAN s -
SSCAN nokey 0
SSCAN nokey 0 COUNT x
SSCAN nokey 0 TYPE x
SSCAN nokey x
SSCAN nokey 5
"""

ARITY = """
SADD s
SADD
SREM s
SMEMBERS
SMEMBERS s t
SISMEMBER s
SISMEMBER s a b
SMISMEMBER s
SCARD
SCARD s t
SPOP
SRANDMEMBER
SMOVE s t
SMOVE s t a b
SINTER
SUNION
SDIFF
SINTERCARD
SINTERCARD 1
SINTERSTORE d
SUNIONSTORE d
SDIFFSTORE d
SSCAN s
SSCAN
"""

EXPIRY = """
SADD e a b
PEXPIREAT e 1
SCARD e
SMEMBERS e
SISMEMBER e a
SPOP e
SADD e c
TTL e
SMEMBERS e
SADD t a
EXPIRE t 100
SADD t b
SREM t a
TTL t
SPOP t 0
TTL t
SREM t b
EXISTS t
SADD x 1
EXPIREAT x 4102444800
SMOVE x y 1
EXISTS x
TTL y
SADD z 1 2
EXPIRE z 100
SUNIONSTORE z z
TTL z
"""


@pytest.mark.parametrize(
    "text",
    [BASICS, INTSETS, WRONG_TYPES, STORES, MOVES, POPS, CARDS, SCANS, ARITY, EXPIRY],
    ids=[
        "basics",
        "intsets",
        "wrongtype",
        "stores",
        "moves",
        "pops",
        "cards",
        "scans",
        "arity",
        "expiry",
    ],
)
def test_set_scripts_match(differ: Differ, text: str) -> None:
    script(differ, text)


def test_members_with_odd_bytes_match(differ: Differ) -> None:
    odd = [b"", b" ", b"\x00", b"\xff\xfe", b"a b", b"1 ", b" 1", b"\r\n", b"*", b"x" * 1000]
    check(differ, "SADD", "s", *odd)
    check(differ, "SMEMBERS", "s")
    check(differ, "SMISMEMBER", "s", *odd, b"nope")
    check(differ, "SSCAN", "s", "0", "COUNT", "100", "MATCH", "*")
    check(differ, "SSCAN", "s", "0", "COUNT", "100", "MATCH", "\\*")
    check(differ, "SSCAN", "s", "0", "COUNT", "100", "MATCH", "? ")
    check(differ, "SREM", "s", *odd[:5])
    check(differ, "SMEMBERS", "s")
    check(differ, "SSCAN", "s", b"\x00garbage")
    check(differ, "SSCAN", "s", b"0\x00garbage")


def test_random_forms_match_in_what_is_deterministic(differ: Differ) -> None:
    check(differ, "SADD", "s", *[f"m{i}" for i in range(30)])
    check(differ, "SADD", "i", *range(40))
    for key in ("s", "i"):
        for args in (
            [],
            [1],
            [2],
            [5],
            [20],
            [29],
            [-1],
            [-5],
            [-100],
        ):
            check_random(differ, "SRANDMEMBER", key, *args)
        for args in ([], [1], [3], [10], [25]):
            check_random(differ, "SPOP", key, *args)
        check(differ, "SMEMBERS", key)
    check(differ, "SPOP", "s", 1000)
    check(differ, "SPOP", "i", 1000)
    check(differ, "EXISTS", "s", "i")


def resp3_replies(port: int, commands: list[list[str]]) -> list[bytes]:
    """Each command's raw RESP3 reply (after HELLO 3), framed by a PING sent behind it."""
    conn = Conn(port)
    pong = b"+PONG\r\n"
    try:
        replies = []
        for args in [["HELLO", "3"], ["FLUSHALL"], *commands]:
            conn.send(args)
            conn.send(["PING"])
            while not conn.buf.endswith(pong):
                conn.buf += conn.sock.recv(1 << 16)
            replies.append(bytes(conn.buf[: -len(pong)]))
            conn.buf.clear()
        return replies[2:]
    finally:
        conn.close()


def test_resp3_set_replies_match(redis_server: RedisServer, clone_server: CloneServer) -> None:
    """Set replies are RESP3 sets (``~``), SRANDMEMBER's an array, missing ones ``_``."""
    commands = [
        line.split()
        for line in [
            "SADD i 3 1 2",
            "SMEMBERS i",
            "SMEMBERS nokey",
            "SPOP i 0",
            "SPOP nokey 2",
            "SPOP nokey",
            "SINTER i nokey",
            "SINTER i i",
            "SUNION i nokey",
            "SDIFF i nokey",
            "SRANDMEMBER i 3",
            "SRANDMEMBER nokey 3",
            "SRANDMEMBER nokey",
            "SSCAN i 0",
            "SMISMEMBER i 1 9",
            "SPOP i 5",
        ]
    ]
    assert resp3_replies(redis_server.port, commands) == resp3_replies(clone_server.port, commands)


# -- intset boundaries and large sets ------------------------------------------------------


def test_the_intset_boundary(differ: Differ) -> None:
    """512 integers answer in numeric order; the 513th makes a hash table (order its own)."""
    numbers = [str(n) for n in range(1024, 0, -2)]  # 512, added in descending order
    check(differ, "SADD", "n", *numbers)
    check(differ, "SMEMBERS", "n")
    check(differ, "SSCAN", "n", "0", "COUNT", "3")  # an intset comes whole whatever COUNT says
    check(differ, "SSCAN", "n", "0", "MATCH", "1*")
    check(differ, "SRANDMEMBER", "n", "512")
    check(differ, "SUNION", "n")
    check(differ, "SUNIONSTORE", "n2", "n")
    check(differ, "SMEMBERS", "n2")
    check(differ, "SADD", "m", "-1")
    check(differ, "SUNION", "n", "m")  # 513 integers: a hash table
    check(differ, "SADD", "n", "5000")
    check(differ, "SMEMBERS", "n")
    check(differ, "SREM", "n", "5000")
    check(differ, "SMEMBERS", "n")  # Redis never goes back to an intset: compared sorted
    check(differ, "SCARD", "n")


def walk(conn: Conn, key: str, *opts: str | int, limit: int = 10_000) -> tuple[list[bytes], int]:
    """A whole SSCAN walk: every member returned, and how many calls it took."""
    cursor = b"0"
    seen: list[bytes] = []
    for calls in range(1, limit + 1):
        reply = parse(conn.call("SSCAN", key, cursor, *opts))
        assert isinstance(reply, list), reply
        cursor, page = reply
        seen += page
        if cursor == b"0":
            return seen, calls
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize(
    ("members", "opts"),
    [
        ([f"m{i}" for i in range(300)], ()),
        ([f"m{i}" for i in range(300)], ("COUNT", 7)),
        ([f"m{i}" for i in range(300)], ("COUNT", 7, "MATCH", "m1*")),
        ([str(i) for i in range(600)], ("COUNT", 50)),
        ([f"m{i}" for i in range(20)], ("COUNT", 5)),
    ],
    ids=["default", "count", "match", "600-integers", "small-table"],
)
def test_a_walk_over_a_large_set_returns_the_same_members(
    differ: Differ, members: list[str], opts: tuple[Any, ...]
) -> None:
    check(differ, "SADD", "big", *members)
    theirs, _ = walk(differ.redis, "big", *opts)
    ours, calls = walk(differ.clone, "big", *opts)
    assert len(ours) == len(set(ours)), "a member came twice in a walk of an unchanging set"
    assert sorted(set(theirs)) == sorted(ours)
    count = int(opts[1]) if opts[:1] == ("COUNT",) else 10
    assert calls == -(-len(members) // count)  # one page per COUNT members


def test_a_walk_survives_changes_to_the_set(clone_server: CloneServer) -> None:
    """Members there all along come exactly once; removed ones not after their removal."""
    conn = Conn(clone_server.port)
    try:
        conn.call("DEL", "w")
        conn.call("SADD", "w", *[f"m{i}" for i in range(100)])
        cursor, page = parse(conn.call("SSCAN", "w", "0", "COUNT", "10"))
        seen = list(page)
        conn.call("SREM", "w", *[f"m{i}" for i in range(50, 100)])
        conn.call("SADD", "w", *[f"n{i}" for i in range(20)])
        while cursor != b"0":
            cursor, page = parse(conn.call("SSCAN", "w", cursor, "COUNT", "10"))
            seen += page
        first = {f"m{i}".encode() for i in range(50)}
        assert first <= set(seen)
        assert len(seen) == len(set(seen))
        later = set(seen) - {x for x in seen[:10]}
        assert not later & {f"m{i}".encode() for i in range(50, 100)}
        assert conn.call("SSCAN", "w", "123456789") == b"-ERR invalid cursor\r\n"
    finally:
        conn.close()


# -- WATCH ------------------------------------------------------------------------------------


SET_WATCH_CASES = [
    # (what the other connection does between WATCH k and EXEC, setup before WATCH)
    ("SADD k a", "SADD k a"),  # nothing added
    ("SADD k b", "SADD k a"),
    ("SADD k a", ""),
    ("SREM k x", "SADD k a"),  # nothing removed
    ("SREM k a", "SADD k a b"),
    ("SREM k a", "SADD k a"),  # the last member: deleted
    ("SREM k a", ""),
    ("SPOP k", "SADD k a"),
    ("SPOP k", "SADD k a b"),
    ("SPOP k 0", "SADD k a"),
    ("SPOP k 5", "SADD k a b"),
    ("SPOP k", ""),
    ("SRANDMEMBER k", "SADD k a"),
    ("SMEMBERS k", "SADD k a"),
    ("SSCAN k 0", "SADD k a"),
    ("SINTERCARD 1 k", "SADD k a"),
    ("SMOVE k other a", "SADD k a"),
    ("SMOVE k other a", "SADD k a b"),
    ("SMOVE other k a", "SADD other a"),
    ("SMOVE other k a", "SADD other a;SADD k a"),  # k already had it
    ("SMOVE other k zz", "SADD other a;SADD k a"),
    ("SMOVE k k a", "SADD k a"),
    ("SMOVE k other zz", "SADD k a"),
    ("SINTERSTORE k s1 s2", "SADD s1 a;SADD s2 a"),
    ("SINTERSTORE k s1 missing", "SADD s1 a"),  # k missing, stays so
    ("SINTERSTORE k s1 missing", "SET k v"),  # deleted
    ("SUNIONSTORE k s1", "SADD s1 a;SADD k a"),  # the same members still count
    ("SDIFFSTORE k s1 s1", "SADD s1 a"),
    ("SDIFFSTORE k s1 s1", "SADD k a;SADD s1 a"),
    ("SUNIONSTORE other k", "SADD k a"),
    ("SINTERSTORE other k k", "SADD k a"),
]


@pytest.mark.parametrize(("between", "setup"), SET_WATCH_CASES)
def test_exec_aborts_when_redis_does(
    redis_server: RedisServer, clone_server: CloneServer, between: str, setup: str
) -> None:
    replies = [
        watch_replies(port, between, setup, ("SCARD", "k"))
        for port in (redis_server.port, clone_server.port)
    ]
    assert replies[0] == replies[1], (between, setup, replies)


def test_set_commands_inside_multi_match(differ: Differ) -> None:
    script(
        differ,
        """
        SADD s a b 1
        MULTI
        SADD s c
        SREM s a
        SPOP s x
        SPOP s 0
        SPOP s 1 2
        SMISMEMBER s a b c 1
        SINTERCARD 0 s
        SSCAN s x
        SSCAN s 0 COUNT 0
        SMOVE s t b
        SUNIONSTORE u s t
        SCARD u
        EXEC
        MULTI
        SADD s
        EXEC
        SMEMBERS s
        """,
    )


# -- random sequences -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer, clone_server: CloneServer) -> Differ:
    """One connection to each server for the whole module (the random test resets it)."""
    return Differ(redis_server.port, clone_server.port)


def is_random(args: Cmd) -> bool:
    """Whether the reply of SPOP / SRANDMEMBER ``args`` depends on a draw (on a large enough set)."""
    name = str(args[0]).upper()
    if name not in ("SPOP", "SRANDMEMBER") or not 2 <= len(args) <= 3:
        return False
    if len(args) == 2:
        return True
    try:
        count = int(str(args[2]))
    except ValueError:
        return False
    return 0 < count < 100 or (name == "SRANDMEMBER" and -100 < count < 0)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_set_sequences_match(data: st.DataObject, shared: Differ) -> None:
    shared.reset()
    family = st.one_of(sets(), sets(), random_sets(), strings(), keyspace())
    sequence: list[Cmd] = data.draw(st.lists(family, min_size=1, max_size=40), label="commands")
    for args in sequence:
        if is_random(args):
            check_random(shared, *args)
        else:
            check(shared, *args)
    for key in ("a", "b", "c", "l1", "l2"):
        check(shared, "TYPE", key)
        check(shared, "SMEMBERS", key)


def test_sorted_members_normaliser() -> None:
    assert sorted_members(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n") == sorted_members(
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    )
    assert sorted_members(b"$-1\r\n") == b"$-1\r\n"
    assert intset_ordered(b"smembers", b"*2\r\n$1\r\n1\r\n$2\r\n10\r\n")
    assert not intset_ordered(b"smembers", b"*2\r\n$2\r\n10\r\n$1\r\n1\r\n")
    assert not intset_ordered(b"smembers", b"*1\r\n$2\r\n01\r\n")
