"""The clone against a real redis-server 7: the same commands, the same reply bytes.

Random sequences (Hypothesis) of string, list and keyspace commands over a
few shared keys, with expiries far from the clock; a bounded budget in CI
(``REDRAFT_DIFF_EXAMPLES`` raises it for longer runs, e.g. 5000).  Every
discrepancy the random runs found is a focused test below.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.differential.harness import CloneServer, Conn, Differ, RedisServer, watch_replies
from tests.differential.strategies import KEYS, Cmd, commands, key, set_command, value

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("REDRAFT_DIFF_EXAMPLES", "60"))
"""How many random sequences a run tries (CI: a few seconds)."""

RANDOM = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer, clone_server: CloneServer) -> Differ:
    """One connection to each server for the whole module (the random test resets it)."""
    return Differ(redis_server.port, clone_server.port)


@RANDOM
@given(data=st.data())
def test_random_sequences_match(data: st.DataObject, shared: Differ) -> None:
    shared.reset()
    sequence: list[Cmd] = data.draw(
        st.lists(commands(blocking=True), min_size=1, max_size=40), label="commands"
    )
    shared.run(sequence)


PLAIN_SET = st.builds(lambda k, v: ["SET", k, v], key, value)


@RANDOM
@given(data=st.data())
def test_random_pipelines_match(data: st.DataObject, shared: Differ) -> None:
    # One write of many commands: the clone takes runs of one command (a
    # pipeline of SETs, plain or not, some malformed) whole, checked and
    # applied as runs; the replies must still be Redis's, one by one.
    shared.reset()
    runs = st.lists(st.one_of(PLAIN_SET, PLAIN_SET, set_command()), min_size=2, max_size=8)
    others = st.lists(commands(), min_size=1, max_size=3)
    chunks = data.draw(st.lists(st.one_of(runs, others), min_size=1, max_size=10), label="chunks")
    shared.pipeline([cmd for chunk in chunks for cmd in chunk])
    shared.run([["MGET", *KEYS], *(["TYPE", k] for k in KEYS)])


SET_RUNS_PIPELINE = """
RPUSH l1 a b
SET a 1 EX 100
GET a
SET b 1
SET l1 v
SET a 2
SET c 3 GET
TYPE l1
LPUSH l1 z
TTL a
SET a 3 EX 100
SET b 2
SET a 4 KEEPTTL
SET c 4 NX
SET c 5 XX
SET c
SET c 6 EX 0
SET c 7 PX x
SET c 8
TTL a
MGET a b c l1
"""


def test_runs_of_sets_in_one_write_replace_types_and_expiries(differ: Differ) -> None:
    # A SET in a run (plain ones first, then options, then malformed ones)
    # replaces a list and clears an expiry as a lone SET does.
    differ.pipeline([line.split() for line in SET_RUNS_PIPELINE.strip().splitlines()])


# -- focused: what the random runs found, and the edges worth pinning --------------------


LIST_SCRIPT = """
RPUSH l a b c
LPUSH l x y
LRANGE l 0 -1
LRANGE l -100 100
LRANGE l 3 1
LRANGE l -2 -1
LRANGE l 5 10
LRANGE l 1 -1
LRANGE l -3 -3
LRANGE l a 1
LRANGE l 01 1
LRANGE l 0 99999999999999999999
LRANGE l -9223372036854775808 9223372036854775807
LLEN l
LPOP l
RPOP l
LPOP l 0
LPOP l 2
RPOP l 10
EXISTS l
LPOP l
LPOP l 0
LPOP l 2
LPOP l -1
LPOP l abc
LPOP l 01
LPOP l 99999999999999999999
LPOP l 1 2
RPUSH l a
LPOP l 9223372036854775807
SET s v
LPUSH s x
RPUSH s x
LPOP s
LPOP s 0
LPOP s -1
LLEN s
LRANGE s 0 1
LRANGE s x 1
LRANGE nokey 0 1
LLEN nokey
RPUSH l a b c
TYPE l
TYPE s
GET l
GETSET l x
APPEND l x
STRLEN l
INCR l
INCRBY l 1
DECR l
DECRBY l 1
MGET l s nokey
SET l v GET
SET l v NX GET
SET l v NX
SETNX l v
LRANGE l 0 -1
SET s2 w XX GET
EXPIRE l 100
TTL l
PERSIST l
TTL l
LMOVE l l LEFT RIGHT
LRANGE l 0 -1
LMOVE l dst left right
LMOVE l dst RIGHT LEFT
LRANGE dst 0 -1
LMOVE l dst LEFT up
LMOVE nokey dst LEFT LEFT
LMOVE nokey s LEFT LEFT
LMOVE l s LEFT LEFT
LMOVE s l LEFT LEFT
LMOVE l dst
RPUSH single a
LMOVE single single LEFT LEFT
LMOVE single other RIGHT LEFT
EXISTS single
LRANGE other 0 -1
BLPOP other 1
BLPOP s other 1
BLPOP nokey s 1
BRPOP dst 1
BLMOVE dst dst2 LEFT RIGHT 1
BLMOVE dst2 s LEFT LEFT 1
BLPOP nokey -1
BLPOP nokey abc
BLPOP nokey 0.1x
BLPOP nokey inf
BLPOP nokey -inf
BLPOP nokey nan
BLPOP nokey 1e400
BLPOP nokey 9223372036854776
BLPOP nokey 1.5e16
BLPOP nokey infinity
BLMOVE nokey dst LEFT LEFT -1
BLMOVE nokey dst LEFT up 1
BLMOVE nokey dst LEFT up -1
BLMOVE l dst LEFT LEFT x
BLPOP nokey
BLPOP
BLMOVE l dst LEFT LEFT 1 2
LPUSH l
RPUSH l
LLEN
LLEN a b
LRANGE l 0
LPOP
RPOP
KEYS *
DBSIZE
SCAN 0 TYPE list COUNT 100
SCAN 0 TYPE LIST COUNT 100
SCAN 0 TYPE string COUNT 100
SCAN 0 TYPE nosuchtype COUNT 100
DEL l dst s nokey
DBSIZE
"""


def test_list_commands_and_wrong_types_match(differ: Differ) -> None:
    for line in LIST_SCRIPT.strip().splitlines():
        differ.check(*line.split())


def test_expired_lists_are_gone_for_every_command(differ: Differ) -> None:
    """A list past its (absolute, long past) expiry answers as a missing key everywhere."""
    for line in [
        "RPUSH l a b",
        "PEXPIREAT l 1",
        "LLEN l",
        "TYPE l",
        "LRANGE l 0 -1",
        "LPOP l",
        "RPUSH l c",
        "TTL l",
        "LRANGE l 0 -1",
        "SET s v",
        "EXPIREAT s 1",
        "LPUSH s x",
        "TYPE s",
        "RPUSH e x",
        "EXPIREAT e 4102444800",
        "SET e str KEEPTTL",
        "TYPE e",
        "TTL e",
    ]:
        differ.check(*line.split())


# -- blocking -----------------------------------


def test_blocking_pops_time_out_alike(differ: Differ) -> None:
    for line in [
        "BLPOP nokey 0.05",
        "BRPOP a b 0.05",
        "BLMOVE nokey dst LEFT LEFT 0.05",
        "SET s v",
        "BLMOVE nokey s LEFT LEFT 0.05",
        "BLPOP nokey 1e-10",
    ]:
        differ.check(*line.split())


def test_a_waiting_pop_is_woken_by_a_push_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    for port in (redis_server.port, clone_server.port):
        waiter, pusher = Conn(port), Conn(port)
        try:
            assert pusher.call("DEL", "q", "q2") in (b":0\r\n", b":1\r\n", b":2\r\n")
            waiter.send(["BLPOP", "q", "q2", "5"])
            waiter.send(["BLMOVE", "q", "moved", "LEFT", "RIGHT", "5"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            assert pusher.call("RPUSH", "q2", "x") == b":1\r\n"
            assert waiter.reply(timeout=5) == b"*2\r\n$2\r\nq2\r\n$1\r\nx\r\n"
            assert pusher.call("LPUSH", "q", "y", "z") == b":2\r\n"
            assert waiter.reply(timeout=5) == b"$1\r\nz\r\n"
            assert pusher.call("LRANGE", "moved", "0", "-1") == b"*1\r\n$1\r\nz\r\n"
            assert pusher.call("LRANGE", "q", "0", "-1") == b"*1\r\n$1\r\ny\r\n"
        finally:
            waiter.close()
            pusher.close()


# -- WATCH -----------------------------------------------


WATCH_CASES = [
    # (what the other connection does between WATCH k and EXEC, setup before WATCH)
    ("SET k v", "SET k v"),  # the same value still counts
    ("SET k w", ""),  # a key created
    ("DEL k", "SET k v"),
    ("DEL k", ""),  # deleting a missing key is no change
    ("SET other v", "SET k v"),
    ("SET k v2 NX", "SET k v"),  # a SET that does nothing
    ("EXPIRE k 100 GT", "SET k v EX 1000"),  # an EXPIRE that does nothing
    ("PERSIST k", "SET k v"),  # no TTL to remove
    ("PERSIST k", "SET k v EX 1000"),
    ("INCRBY k 0", "SET k 1"),
    ("APPEND k ''", "SET k v"),
    ("FLUSHALL", "SET k v"),
    ("FLUSHALL", "SET other v"),  # a flush of a missing key
    ("FLUSHDB", ""),
    ("LPOP k", ""),
    ("LPOP k 0", "RPUSH k a"),
    ("LRANGE k 0 -1", "RPUSH k a"),
    ("RPUSH k b", "RPUSH k a"),
    ("LMOVE k k LEFT RIGHT", "RPUSH k a"),
    ("LMOVE k other LEFT RIGHT", "RPUSH k a"),
    ("LMOVE other k LEFT RIGHT", "RPUSH other a"),
    ("EXPIRE k -1", "SET k v"),
    ("PEXPIREAT k 1", "RPUSH k a"),
    ("EXPIREAT k 1", "EXPIREAT k 1"),  # on a missing key
]


@pytest.mark.parametrize(("between", "setup"), WATCH_CASES)
def test_exec_aborts_when_redis_does(
    redis_server: RedisServer,
    clone_server: CloneServer,
    between: str,
    setup: str,
) -> None:
    replies = [
        watch_replies(port, between, setup, ("PING",))
        for port in (redis_server.port, clone_server.port)
    ]
    assert replies[0] == replies[1], (between, setup, replies)


def test_a_closed_waiter_takes_nothing_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    """A client that closed while blocked is forgotten: the next push stays for the others."""
    for port in (redis_server.port, clone_server.port):
        gone, waiter, pusher = Conn(port), Conn(port), Conn(port)
        try:
            pusher.call("DEL", "cq")
            gone.send(["BLPOP", "cq", "0"])
            waiter.send(["BLPOP", "cq", "0"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            gone.close()
            time.sleep(0.1)  # the server notices the close
            assert pusher.call("RPUSH", "cq", "a", "b") == b":2\r\n"
            assert waiter.reply(timeout=5) == b"*2\r\n$2\r\ncq\r\n$1\r\na\r\n"
            assert pusher.call("LRANGE", "cq", "0", "-1") == b"*1\r\n$1\r\nb\r\n"
        finally:
            waiter.close()
            pusher.close()


GETS = [
    ["GET", k] for k in ("s", "nope", "s", "empty", "l", "s", "e", "nope", "big", "s", "gone", "s")
] + [["get", "s"], ["GeT", "nope"], ["GET"], ["GET", "s", "x"], ["GET", "s"]]


@pytest.mark.parametrize("protocol", ["differ", "differ3"])
def test_pipelined_gets_match_in_both_protocols(
    protocol: str, request: pytest.FixtureRequest
) -> None:
    # A pipeline of GETs the clone's parser answers itself (strings, missing
    # keys: nil, RESP3's _ after HELLO 3) and ones it leaves to GET (a list,
    # a key with an expiry, one that just expired, the wrong arity).
    d: Differ = request.getfixturevalue(protocol)
    d.run(
        [
            ["SET", "s", "v"],
            ["SET", "empty", ""],
            ["SET", "big", "x" * 5000],
            ["RPUSH", "l", "a"],
            ["SET", "e", "1", "EX", "100"],
            ["SET", "gone", "1", "PX", "1"],
        ]
    )
    time.sleep(0.01)
    d.pipeline(GETS)
    d.pipeline([["GET", "s"]] * 40 + [["DEL", "s"]] + [["GET", "s"]] * 3)
