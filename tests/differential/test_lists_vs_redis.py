"""The rest of the clone's list commands against a real redis-server 7.0: the same bytes.

LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LPUSHX, RPUSHX, RPOPLPUSH, LMPOP
and the blocking BRPOPLPUSH and BLMPOP: focused scripts (errors in Redis's
order, edge indexes, RANK's and COUNT's corners, MULTI), blocking waiters
woken by a push from another connection or timing out, WATCH, and a random
test (Hypothesis) over list, string and keyspace commands on the shared keys
(a bounded budget in CI; ``REDRAFT_DIFF_EXAMPLES`` raises it).
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.differential import strategies_lists
from tests.differential.harness import (
    CloneServer,
    Conn,
    Differ,
    RedisServer,
    waiters_served,
    watch_replies,
)
from tests.differential.strategies import Cmd, blocking_without_waiting, keyspace, lists, strings

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("REDRAFT_DIFF_EXAMPLES", "60"))
"""How many random sequences a run tries (CI: a few seconds)."""

READ_SCRIPT = """
LINDEX nokey x
LINDEX nokey 0
SET s v
LINDEX s x
LINDEX s 0
RPUSH l a b c
LINDEX l 0
LINDEX l 2
LINDEX l 3
LINDEX l -1
LINDEX l -3
LINDEX l -4
LINDEX l x
LINDEX l 01
LINDEX l 9223372036854775807
LINDEX l -9223372036854775808
LINDEX l 9223372036854775808
LINDEX l
LINDEX l 0 1
DEL l
RPUSH l a b a c a b a
LPOS l a
LPOS l a RANK 2
LPOS l a RANK -1
LPOS l a RANK -2
LPOS l a RANK 5
LPOS l a RANK -5
LPOS l b RANK -9223372036854775807
LPOS l b RANK 9223372036854775807
LPOS l a COUNT 0
LPOS l a COUNT 2
LPOS l a COUNT 2 RANK -1
LPOS l a COUNT 0 RANK 2 MAXLEN 3
LPOS l a COUNT 0 RANK -1 MAXLEN 3
LPOS l a MAXLEN 1
LPOS l a MAXLEN 1 RANK 2
LPOS l a MAXLEN 1 RANK -1
LPOS l a MAXLEN 2 RANK -1
LPOS l a MAXLEN 0
LPOS l a COUNT 1 COUNT 2
LPOS l a count 9223372036854775807
LPOS l q COUNT 3
LPOS l q
LPOS l a RANK -9223372036854775808
LPOS l a RANK -9223372036854775808 COUNT 0
LPOS l a RANK -9223372036854775808 COUNT 1
LPOS l a RANK -9223372036854775808 COUNT 2
LPOS l a RANK -9223372036854775808 MAXLEN 3 COUNT 0
LPOS l a RANK -9223372036854775808 MAXLEN 3
LPOS l a RANK -9223372036854775807 COUNT 0
LPOS l a RANK 9223372036854775807 COUNT 0
LPOS l a RANK 0
LPOS l a RANK 1 RANK 0
LPOS l a rank 0 FOO
LPOS l a FOO 1 RANK 0
LPOS l a RANK x
LPOS l a RANK -0
LPOS l a RANK 9223372036854775808
LPOS l a RANK
LPOS l a COUNT -1
LPOS l a COUNT x
LPOS l a COUNT 01
LPOS l a COUNT -0
LPOS l a COUNT 0 MAXLEN
LPOS l a MAXLEN -1
LPOS l a MAXLEN x
LPOS l a FOO
LPOS nokey a
LPOS nokey a COUNT 0
LPOS nokey a RANK 0
LPOS nokey a COUNT x
LPOS nokey a RANK -9223372036854775808
LPOS s a
LPOS s a COUNT 0
LPOS s a RANK 0
LPOS s a FOO
LPOS l
LPOS
"""

WRITE_SCRIPT = """
SET s v
RPUSH l a b c
LSET nokey x v
LSET nokey 0 v
LSET s x v
LSET s 0 v
LSET l x v
LSET l 3 v
LSET l -4 v
LSET l 9223372036854775807 v
LSET l -9223372036854775808 v
LSET l -1 z
LSET l 0 ''
LSET l 1 b
LRANGE l 0 -1
LSET l 0
LSET l 0 v w
LINSERT nokey before a x
LINSERT nokey middle a x
LINSERT s before a x
LINSERT s middle a x
LINSERT l middle a x
LINSERT l BeFoRe '' x
LINSERT l after z y
LINSERT l AFTER q y
LINSERT l before x x
LINSERT l after y y
LRANGE l 0 -1
LINSERT l before a
EXISTS nokey
DEL l
RPUSH l a b a c a b a
LREM l 2 a
LRANGE l 0 -1
LREM l -1 a
LRANGE l 0 -1
LREM l 0 b
LRANGE l 0 -1
LREM l 0 q
LREM l -9223372036854775808 a
LRANGE l 0 -1
LREM l 5 c
EXISTS l
RPUSH l a a a b a a
LREM l -2 a
LRANGE l 0 -1
LREM l 9223372036854775807 a
LRANGE l 0 -1
LREM l x a
LREM l 01 a
LREM nokey x a
LREM nokey 1 a
LREM s x a
LREM s 1 a
LREM l 1
DEL l
RPUSH l a b c d e
LTRIM l 1 -2
LRANGE l 0 -1
LTRIM l -9223372036854775808 9223372036854775807
LRANGE l 0 -1
LTRIM l 0 0
LRANGE l 0 -1
LTRIM l 2 1
EXISTS l
RPUSH l a b c d e f g h
LTRIM l -2 -1
LRANGE l 0 -1
LTRIM l -100 -3
EXISTS l
RPUSH l a b c d e f g h
LTRIM l 3 4
LRANGE l 0 -1
LTRIM l 5 10
EXISTS l
LTRIM l x 1
LTRIM l 0 x
LTRIM nokey x 1
LTRIM nokey 0 1
LTRIM s 0 1
LTRIM s 0 x
LTRIM l 0
LPUSHX l a
RPUSHX l a
EXISTS l
LPUSHX s a
RPUSHX s a
RPUSH l x
LPUSHX l a b c
RPUSHX l d e
LRANGE l 0 -1
LPUSHX l
RPUSHX
RPOPLPUSH l l
LRANGE l 0 -1
RPOPLPUSH l m
LRANGE m 0 -1
RPOPLPUSH nokey m
RPOPLPUSH nokey s
RPOPLPUSH s m
RPOPLPUSH l s
RPUSH one a
RPOPLPUSH one one
RPOPLPUSH one other
EXISTS one
RPOPLPUSH l
RPOPLPUSH l m x
TYPE m
KEYS *
"""

MPOP_SCRIPT = """
RPUSH l a b c d
SET s v
LMPOP 1 nokey LEFT
LMPOP 2 nokey l LEFT
LMPOP 2 nokey l RIGHT COUNT 2
LMPOP 1 l left count 10
EXISTS l
LMPOP 0 l LEFT
LMPOP -1 l LEFT
LMPOP x l LEFT
LMPOP 01 l LEFT
LMPOP 2 l LEFT
LMPOP 3 l LEFT
LMPOP 1 l UP
LMPOP 1 l LEFT COUNT
LMPOP 1 l LEFT COUNT 0
LMPOP 1 l LEFT COUNT -1
LMPOP 1 l LEFT COUNT x
LMPOP 1 l LEFT COUNT 1 COUNT 1
LMPOP 1 l LEFT FOO
LMPOP 1 l UP COUNT 0
LMPOP 1 l LEFT COUNT 0 FOO
LMPOP 1 l LEFT COUNT 9223372036854775807
LMPOP 1 l LEFT COUNT 9223372036854775808
LMPOP 9223372036854775807 l LEFT
LMPOP 9223372036854775806 l LEFT
LMPOP 2 s l LEFT
LMPOP 2 nokey s LEFT
RPUSH l a
LMPOP 2 l s LEFT
LMPOP 1 l
LMPOP 1
LMPOP
BLMPOP x 0 l LEFT
BLMPOP x 1 l UP
BLMPOP -1 1 l LEFT COUNT 0
BLMPOP -1 1 l LEFT
BLMPOP x 1 l LEFT
BLMPOP 0.01 1 nokey LEFT
BLMPOP 0.01 1 nokey LEFT COUNT 3
BLMPOP 0.01 1 s LEFT
BLMPOP 0.01 2 nokey s LEFT
BLMPOP 0.01 1 l
BLMPOP 0.01 1 l LEFT COUNT 2 FOO
RPUSH l a b c
BLMPOP 0 2 nokey l RIGHT COUNT 2
BLMPOP 0 2 nokey l RIGHT
EXISTS l
BRPOPLPUSH nokey dst x
BRPOPLPUSH nokey dst -1
BRPOPLPUSH nokey dst inf
BRPOPLPUSH nokey dst 0.01
BRPOPLPUSH nokey s 0.01
BRPOPLPUSH s dst 0.01
RPUSH l a b
BRPOPLPUSH l s 0
BRPOPLPUSH l dst 0
BRPOPLPUSH l l 0
BRPOPLPUSH l dst
BRPOPLPUSH l dst 0 0
LRANGE dst 0 -1
LRANGE l 0 -1
"""

MULTI_SCRIPT = """
RPUSH l a b
MULTI
BRPOPLPUSH nokey dst 0
BLMPOP 0 1 nokey LEFT
BLMPOP 0 1 nokey LEFT COUNT 3
BRPOPLPUSH l dst 0
BLMPOP 0 1 dst LEFT COUNT 3
BLMPOP x 1 dst LEFT
BRPOPLPUSH nokey dst x
BLMPOP 0 0 l LEFT
LMPOP 0 l LEFT
LMPOP 1 l UP
LPOS l a RANK 0
LSET nokey 0 v
LSET l x v
LTRIM l x 0
LINSERT l x a b
LREM l x a
LPUSHX l a
LINDEX l x
RPOPLPUSH l dst
LMPOP 1 l RIGHT
EXEC
MULTI
LINDEX l
EXEC
MULTI
LMPOP 1 l
EXEC
MULTI
BLMPOP 0 1 l
EXEC
"""

SCRIPTS = {
    "reads": READ_SCRIPT,
    "writes": WRITE_SCRIPT,
    "mpop": MPOP_SCRIPT,
    "multi": MULTI_SCRIPT,
}


def _args(line: str) -> list[str]:
    return [a if a != "''" else "" for a in line.split()]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_list_scripts_match(differ: Differ, name: str) -> None:
    for line in SCRIPTS[name].strip().splitlines():
        differ.check(*_args(line))


def test_expired_lists_are_missing_keys_for_the_new_commands(differ: Differ) -> None:
    for line in [
        "RPUSH l a b",
        "PEXPIREAT l 1",
        "LINDEX l 0",
        "LPOS l a",
        "LPOS l a COUNT 0",
        "LSET l 0 x",
        "LINSERT l BEFORE a x",
        "LREM l 0 a",
        "LTRIM l 0 -1",
        "LPUSHX l x",
        "RPUSHX l x",
        "RPOPLPUSH l m",
        "LMPOP 1 l LEFT",
        "BRPOPLPUSH l m 0.01",
        "BLMPOP 0.01 1 l LEFT",
        "RPUSH d x",
        "PEXPIREAT d 1",
        "RPUSH l2 y",
        "RPOPLPUSH l2 d",
        "LRANGE d 0 -1",
        "TTL d",
        "DBSIZE",
    ]:
        differ.check(*_args(line))


def test_long_lists_match(differ: Differ) -> None:
    """Work on lists long enough that LTRIM and LREM take their other paths."""
    elements = [str(i % 7) for i in range(300)]
    differ.check("RPUSH", "long", *elements)
    for line in [
        "LTRIM long 2 -3",
        "LTRIM long 100 120",
        "LRANGE long 0 -1",
        "LREM long 2 3",
        "LREM long -2 4",
        "LRANGE long 0 -1",
        "LPOS long 5 COUNT 0",
        "LPOS long 5 RANK -2 COUNT 3 MAXLEN 10",
        "LINDEX long 10",
        "LINDEX long -10",
        "LSET long -2 x",
        "LINSERT long AFTER x y",
        "LRANGE long 0 -1",
        "LMPOP 1 long RIGHT COUNT 7",
        "LLEN long",
    ]:
        differ.check(*_args(line))


# -- blocking ------------------------------------------------------------------------------


def test_blocking_list_commands_time_out_alike(differ: Differ) -> None:
    for line in [
        "BRPOPLPUSH nokey dst 0.05",
        "BLMPOP 0.05 2 a b LEFT",
        "BLMPOP 0.05 1 a RIGHT COUNT 3",
        "SET s v",
        "BRPOPLPUSH nokey s 0.05",
        "EXISTS dst",
    ]:
        differ.check(*_args(line))


def _both(redis_server: RedisServer, clone_server: CloneServer) -> tuple[int, int]:
    return redis_server.port, clone_server.port


def test_brpoplpush_is_woken_by_a_push_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    for port in _both(redis_server, clone_server):
        waiter, pusher = Conn(port), Conn(port)
        try:
            assert pusher.call("FLUSHALL") == b"+OK\r\n"
            waiter.send(["BRPOPLPUSH", "q", "dst", "5"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            assert pusher.call("RPUSH", "q", "a", "b") == b":2\r\n"
            assert waiter.reply(timeout=5) == b"$1\r\nb\r\n"
            assert pusher.call("LRANGE", "dst", "0", "-1") == b"*1\r\n$1\r\nb\r\n"
            assert pusher.call("LRANGE", "q", "0", "-1") == b"*1\r\n$1\r\na\r\n"
        finally:
            waiter.close()
            pusher.close()


def test_blmpop_is_woken_by_a_push_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    for port in _both(redis_server, clone_server):
        waiter, pusher = Conn(port), Conn(port)
        try:
            assert pusher.call("FLUSHALL") == b"+OK\r\n"
            waiter.send(["BLMPOP", "5", "2", "q1", "q2", "RIGHT", "COUNT", "2"])
            waiter.send(["BLMPOP", "5", "1", "q1", "LEFT"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            assert pusher.call("RPUSH", "q2", "a", "b", "c") == b":3\r\n"
            assert waiter.reply(timeout=5) == b"*2\r\n$2\r\nq2\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n"
            # RPOPLPUSH's destination wakes the second one.
            assert pusher.call("RPOPLPUSH", "q2", "q1") == b"$1\r\na\r\n"
            assert waiter.reply(timeout=5) == b"*2\r\n$2\r\nq1\r\n*1\r\n$1\r\na\r\n"
            assert pusher.call("DBSIZE") == b":0\r\n"
        finally:
            waiter.close()
            pusher.close()


def test_waiters_on_a_chain_of_brpoplpush_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    """One push moves an element down a chain of waiters, each woken by the one before."""
    for port in _both(redis_server, clone_server):
        first, second, pusher = Conn(port), Conn(port), Conn(port)
        try:
            assert pusher.call("FLUSHALL") == b"+OK\r\n"
            first.send(["BRPOPLPUSH", "c1", "c2", "5"])
            second.send(["BRPOPLPUSH", "c2", "c3", "5"])
            with pytest.raises(TimeoutError):
                second.reply(timeout=0.2)
            assert pusher.call("LPUSH", "c1", "z") == b":1\r\n"
            assert first.reply(timeout=5) == b"$1\r\nz\r\n"
            assert second.reply(timeout=5) == b"$1\r\nz\r\n"
            assert pusher.call("KEYS", "*") == b"*1\r\n$2\r\nc3\r\n"
        finally:
            first.close()
            second.close()
            pusher.close()


def test_a_woken_brpoplpush_onto_a_string_is_wrongtype_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    for port in _both(redis_server, clone_server):
        waiter, pusher = Conn(port), Conn(port)
        try:
            assert pusher.call("FLUSHALL") == b"+OK\r\n"
            assert pusher.call("SET", "dst", "v") == b"+OK\r\n"
            waiter.send(["BRPOPLPUSH", "q", "dst", "5"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            assert pusher.call("RPUSH", "q", "a") == b":1\r\n"
            assert waiter.reply(timeout=5).startswith(b"-WRONGTYPE")
            assert pusher.call("LRANGE", "q", "0", "-1") == b"*1\r\n$1\r\na\r\n"
        finally:
            waiter.close()
            pusher.close()


def test_a_push_emptied_again_in_the_same_exec_wakes_nobody_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    for port in _both(redis_server, clone_server):
        waiter, pusher = Conn(port), Conn(port)
        try:
            assert pusher.call("FLUSHALL") == b"+OK\r\n"
            waiter.send(["BLMPOP", "0.5", "1", "t", "LEFT"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.1)
            assert pusher.call("MULTI") == b"+OK\r\n"
            pusher.call("RPUSH", "t", "a", "b")
            pusher.call("LTRIM", "t", "1", "0")
            assert pusher.call("EXEC") == b"*2\r\n:2\r\n+OK\r\n"
            assert waiter.reply(timeout=5) == b"*-1\r\n"
        finally:
            waiter.close()
            pusher.close()


def test_a_waiter_on_two_keys_made_ready_by_one_exec(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    """Redis 7.0 serves the waiter from the key made ready first, not its first key."""
    replies = []
    for port in _both(redis_server, clone_server):
        waiter, pusher = Conn(port), Conn(port)
        try:
            assert pusher.call("FLUSHALL") == b"+OK\r\n"
            waiter.send(["BLMPOP", "5", "2", "k1", "k2", "LEFT"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            pusher.call("MULTI")
            pusher.call("RPUSH", "k2", "x")
            pusher.call("RPUSH", "k1", "y")
            assert pusher.call("EXEC") == b"*2\r\n:1\r\n:1\r\n"
            replies.append(waiter.reply(timeout=5))
        finally:
            waiter.close()
            pusher.close()
    assert replies[0] == b"*2\r\n$2\r\nk2\r\n*1\r\n$1\r\nx\r\n"  # redis-server
    assert replies[1] == replies[0]


def _bulk_pair(key: str, item: str) -> bytes:
    """``[key, item]``, a BLPOP's reply."""
    return b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key.encode(), len(item), item.encode())


READY_FIRST_CASES = [
    # (waiting, in order; writes; in one MULTI/EXEC; read after; the waiters' replies)
    (
        ["BRPOP k1 k2 5"],
        ["RPUSH k2 x w", "RPUSH k1 y"],
        True,
        ["LRANGE k1 0 -1", "LRANGE k2 0 -1"],
        [_bulk_pair("k2", "w")],
    ),
    (
        ["BLMPOP 5 3 k1 k2 k3 RIGHT COUNT 5"],
        ["RPUSH k3 a b", "RPUSH k2 c"],
        True,
        ["LRANGE k2 0 -1", "EXISTS k3"],
        [b"*2\r\n$2\r\nk3\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n"],
    ),
    # The key made ready first emptied by the waiter before: the next one made ready serves.
    (
        ["BLPOP k2 5", "BLPOP k1 k2 5"],
        ["RPUSH k2 x", "RPUSH k1 y"],
        True,
        ["EXISTS k1 k2"],
        [_bulk_pair("k2", "x"), _bulk_pair("k1", "y")],
    ),
    (
        ["BLPOP k2 5", "BLPOP k1 k2 k3 5"],
        ["RPUSH k2 x", "RPUSH k3 z", "RPUSH k1 y"],
        True,
        ["LRANGE k1 0 -1", "EXISTS k2 k3"],
        [_bulk_pair("k2", "x"), _bulk_pair("k3", "z")],
    ),
    # The waiter on both keys came first: it takes the key made ready first, the other waits.
    (
        ["BLPOP k1 k2 5", "BLPOP k2 0.5"],
        ["RPUSH k2 x", "RPUSH k1 y"],
        True,
        ["LRANGE k1 0 -1", "EXISTS k2"],
        [_bulk_pair("k2", "x"), b"*-1\r\n"],
    ),
    # A first key of another type: Redis serves from the ready key, and never with WRONGTYPE.
    (
        ["BLPOP k2 5", "BLPOP k1 k2 0.5"],
        ["SET k1 s", "RPUSH k2 x"],
        True,
        ["TYPE k1", "EXISTS k2"],
        [_bulk_pair("k2", "x"), b"*-1\r\n"],
    ),
    # A key moved onto later in the same EXEC is made ready after the pushed one.
    (
        ["BLPOP k1 k2 5"],
        ["RPUSH src q", "RPUSH k1 y", "LMOVE src k2 LEFT LEFT"],
        True,
        ["LRANGE k2 0 -1", "EXISTS k1 src"],
        [_bulk_pair("k1", "y")],
    ),
    # Writes one by one: the first wakes the waiter, which takes from it, as before.
    (
        ["BLPOP k1 k2 5"],
        ["RPUSH k2 x", "RPUSH k1 y"],
        False,
        ["LRANGE k1 0 -1", "EXISTS k2"],
        [_bulk_pair("k2", "x")],
    ),
    (
        ["BLMPOP 5 2 k1 k2 LEFT COUNT 2", "BRPOP k1 5"],
        ["RPUSH k2 x w", "RPUSH k1 y"],
        False,
        ["EXISTS k1 k2"],
        [b"*2\r\n$2\r\nk2\r\n*2\r\n$1\r\nx\r\n$1\r\nw\r\n", _bulk_pair("k1", "y")],
    ),
]


@pytest.mark.parametrize(
    ("waiting", "writes", "multi", "after", "served"),
    READY_FIRST_CASES,
    ids=[
        "brpop-exec",
        "blmpop-count-exec",
        "ready-key-emptied-by-the-waiter-before",
        "ready-key-emptied-then-the-next-ready",
        "waiter-on-both-first",
        "wrongtype-first-key",
        "lmove-onto-a-waited-key",
        "separate-writes",
        "separate-writes-two-waiters",
    ],
)
def test_waiters_are_served_from_the_key_made_ready_first_alike(
    redis_server: RedisServer,
    clone_server: CloneServer,
    waiting: list[str],
    writes: list[str],
    multi: bool,
    after: list[str],
    served: list[bytes],
) -> None:
    theirs, ours = (
        waiters_served(
            port,
            [_args(line) for line in waiting],
            [_args(line) for line in writes],
            multi=multi,
            after=[_args(line) for line in after],
        )
        for port in _both(redis_server, clone_server)
    )
    first = 1 if multi else len(writes)
    assert theirs[first : first + len(waiting)] == served  # what redis-server answers
    assert ours == theirs


# -- WATCH ---------------------------------------------------------------------------------


WATCH_CASES = [
    # (what the other connection does between WATCH k and EXEC, setup before WATCH: commands
    # separated by ";")
    ("LSET k 0 x", "RPUSH k a"),
    ("LSET k 0 a", "RPUSH k a"),  # the same value still counts
    ("LSET k 5 x", "RPUSH k a"),  # out of range: no change
    ("LSET k 0 x", ""),
    ("LINSERT k BEFORE a x", "RPUSH k a"),
    ("LINSERT k AFTER q x", "RPUSH k a"),  # no pivot
    ("LINSERT k BEFORE a x", ""),
    ("LREM k 0 a", "RPUSH k a b"),
    ("LREM k 0 a", "RPUSH k a"),  # the list emptied
    ("LREM k 0 q", "RPUSH k a"),  # nothing removed
    ("LREM k 1 a", ""),
    ("LTRIM k 0 -1", "RPUSH k a"),  # keeps everything, still a change in Redis
    ("LTRIM k 1 0", "RPUSH k a"),
    ("LTRIM k 0 -1", ""),
    ("LPUSHX k a", "RPUSH k a"),
    ("RPUSHX k a", "RPUSH k a"),
    ("RPUSHX k a", ""),
    ("RPOPLPUSH k other", "RPUSH k a"),
    ("RPOPLPUSH other k", "RPUSH other a"),
    ("RPOPLPUSH other k", ""),
    ("RPOPLPUSH k k", "RPUSH k a"),
    ("LMPOP 2 other k LEFT", "RPUSH k a"),
    ("LMPOP 2 k other LEFT COUNT 5", "RPUSH other a"),
    ("LMPOP 1 k LEFT", ""),
    ("BLMPOP 0 1 k LEFT", "RPUSH k a b"),
    ("BRPOPLPUSH k k 0", "RPUSH k a"),
    ("BRPOPLPUSH other k 0", "RPUSH other a"),
    ("LINDEX k 0", "RPUSH k a"),
    ("LPOS k a COUNT 0", "RPUSH k a"),
    ("LTRIM k 0 -1", "RPUSH k a; PEXPIREAT k 1"),  # expired before WATCH: not a change
    ("LPUSHX k a", "RPUSH k a; PEXPIREAT k 1"),
]


@pytest.mark.parametrize(("between", "setup"), WATCH_CASES)
def test_exec_aborts_when_redis_does(
    redis_server: RedisServer, clone_server: CloneServer, between: str, setup: str
) -> None:
    replies = [
        watch_replies(port, between, setup, ("PING",)) for port in _both(redis_server, clone_server)
    ]
    assert replies[0] == replies[1], (between, setup, replies)


# -- random --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer, clone_server: CloneServer) -> Differ:
    """One connection to each server for the whole module (the random test resets it)."""
    return Differ(redis_server.port, clone_server.port)


def list_commands() -> st.SearchStrategy[Cmd]:
    """Every list command (the blocking ones with a short timeout), strings and the keyspace."""
    families = [f() for f in strategies_lists.FAMILIES]
    return st.one_of(
        *families,
        *families,
        lists(),
        lists(),
        strategies_lists.filled_list(),
        blocking_without_waiting(),
        strings(),
        keyspace(),
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_list_sequences_match(data: st.DataObject, shared: Differ) -> None:
    shared.reset()
    sequence: list[Cmd] = data.draw(
        st.lists(strategies_lists.filled_list(), min_size=1, max_size=4), label="lists"
    )
    sequence += data.draw(st.lists(list_commands(), min_size=1, max_size=40), label="commands")
    started = time.monotonic()
    shared.run(sequence)
    assert time.monotonic() - started < 60
