"""The rest of the string and keyspace commands against a real redis-server 7.0, byte for byte.

SETEX, PSETEX, SETRANGE, GETRANGE, SUBSTR, GETDEL, GETEX, INCRBYFLOAT,
MSETNX, LCS; RENAME, RENAMENX, COPY, TOUCH, UNLINK, RANDOMKEY, OBJECT,
EXPIRETIME, PEXPIRETIME.  Focused scripts pin the errors and edges (every
discrepancy the random runs found is one of them), WATCH cases check that
EXEC aborts exactly when Redis's does, and random sequences (Hypothesis)
mix these commands with the older string, list and keyspace ones; a bounded
budget in CI (``REDRAFT_DIFF_EXAMPLES`` raises it).
"""

from __future__ import annotations

import os

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
    settle,
    watch_replies,
)
from tests.differential.strategies import (
    Cmd,
    key,
    keyspace,
    lists,
    malformed,
    set_command,
    strings,
    value,
)
from tests.differential.strategies_more import (
    expiry_times,
    keyspace_more,
    malformed_more,
    objects,
    strings_more,
)

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("REDRAFT_DIFF_EXAMPLES", "60"))
"""How many random sequences a random test tries (CI: a few seconds)."""

_SLACK = {b"expiretime": 1, b"pexpiretime": 1000}  # seconds, milliseconds


def same_more(args: Args, theirs: bytes, ours: bytes) -> bool:
    """:func:`harness.same`, and EXPIRETIME/PEXPIRETIME of relative expiries within a second."""
    if same(args, theirs, ours):
        return True
    first = args[0]
    name = (first if isinstance(first, bytes) else str(first).encode()).lower()
    slack = _SLACK.get(name)
    if slack is None or not (theirs.startswith(b":") and ours.startswith(b":")):
        return False
    a, b = int(theirs[1:-2]), int(ours[1:-2])
    return a >= 0 and b >= 0 and abs(a - b) <= slack


class MoreDiffer(Differ):
    """A :class:`Differ` that compares with :func:`same_more`."""

    def check(self, *args: bytes | str | int) -> bytes:
        theirs, ours = self.both(*args)
        if not same_more(args, theirs, ours):
            raise Mismatch(self.report())
        return ours


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer, clone_server: CloneServer) -> MoreDiffer:
    """One connection to each server for the whole module (each test resets it)."""
    return MoreDiffer(redis_server.port, clone_server.port)


def run_script(differ: Differ, script: str) -> None:
    """One command a line; ``''`` is the empty argument."""
    for line in script.strip().splitlines():
        if line.strip() and not line.startswith("#"):
            differ.check(*["" if word == "''" else word for word in line.split()])


def supports(differ: Differ, *args: str) -> bool:
    """Whether the clone knows a command yet (other helpers add hashes, sets, sorted sets)."""
    return not differ.clone.call(*args).startswith(b"-ERR unknown command")


# -- strings ---------------------------------------------------------------------------------

STRINGS_SCRIPT = """
SETEX k 0 v
SETEX k -1 v
SETEX k x v
SETEX k 01 v
SETEX k 9223372036854775807 v
SETEX k 100
SETEX k 100 v
TTL k
GET k
PSETEX k 0 v
PSETEX k 100000 w
PTTL k
PSETEX k 9223372036854775807 v
RPUSH l a
SETEX l 100 v
TYPE l
TTL l
SETRANGE k -1 x
SETRANGE k x x
SETRANGE k 536870911 xx
SETRANGE k 536870912 ''
SETRANGE nokey 536870912 ''
EXISTS nokey
SETRANGE nokey 536870912 x
SETRANGE k 5 abc
GET k
TTL k
SETRANGE k 0 ''
SETRANGE k 1 Z
GET k
SETRANGE k 9223372036854775807 x
SETRANGE k 9223372036854775808 x
SETRANGE new 3 x
GET new
RPUSH l2 a
SETRANGE l2 0 ''
SETRANGE l2 0 a
SETRANGE l2 -1 a
GETRANGE k 0 -1
GETRANGE k -100 -5
GETRANGE k -1 -5
GETRANGE k 5 -100
GETRANGE k 2 1
GETRANGE k 100 200
GETRANGE nokey 0 -1
GETRANGE l2 0 -1
GETRANGE l2 x 0
GETRANGE nokey 0 x
GETRANGE k 0 9223372036854775807
GETRANGE k -9223372036854775808 -9223372036854775808
GETRANGE k 0
SUBSTR k 0 2
SUBSTR k -3 -1
SET e ''
GETRANGE e 0 -1
GETRANGE e 0 0
GETRANGE e -1 0
SET n 12345
GETRANGE n 1 3
GETDEL l2
GETDEL k
GETDEL k
GETDEL
GETDEL a b
"""


def test_strings_match(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, STRINGS_SCRIPT)


GETEX_SCRIPT = """
GETEX
GETEX nokey
GETEX nokey EX abc
RPUSH l a
GETEX l EX abc
GETEX l
SET k v
GETEX k
GETEX k EX abc
GETEX k EX 0
GETEX k EX -1
GETEX k PX 0
GETEX k EX 100 PX 100
GETEX k EX 100 EX 200
TTL k
GETEX k PERSIST
TTL k
GETEX k PERSIST EX 10
GETEX k EX 10 PERSIST
GETEX k NX
GETEX k KEEPTTL
GETEX k GET
GETEX k EX
GETEX k PXAT 4102444800500
PTTL k
PEXPIRETIME k
EXPIRETIME k
GETEX k EXAT 4102444801
EXPIRETIME k
GETEX k PERSIST PERSIST
TTL k
GETEX k px 100000
PTTL k
GETEX k EXAT 1
EXISTS k
SET k v
GETEX k PXAT 1
GET k
SET k v
GETEX k PX 9223372036854775807
GETEX k EXAT 9223372036854775808
"""


def test_getex_matches(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, GETEX_SCRIPT)


INCRBYFLOAT_SCRIPT = """
INCRBYFLOAT f 0.1
INCRBYFLOAT f 0.2
INCRBYFLOAT f 1e300
INCRBYFLOAT g 3.0e3
INCRBYFLOAT g -3000
INCRBYFLOAT g -0.0
INCRBYFLOAT g -1e-20
INCRBYFLOAT g 0.000003814697265625
INCRBYFLOAT h 0x10
INCRBYFLOAT h 0X1P-3
INCRBYFLOAT h 0x.8p1
INCRBYFLOAT h inf
INCRBYFLOAT h -Infinity
INCRBYFLOAT h nan
INCRBYFLOAT h NaN(123)
INCRBYFLOAT h 1e5000
INCRBYFLOAT h 1e-5000
INCRBYFLOAT h 1e-4940
INCRBYFLOAT h ''
INCRBYFLOAT h 1.5
INCRBYFLOAT h abc
INCRBYFLOAT h 1e
INCRBYFLOAT h 1_0
INCRBYFLOAT h 1.5.
INCRBYFLOAT h 0x
GET h
SET s abc
INCRBYFLOAT s 1
INCRBYFLOAT s abc
SET s inf
INCRBYFLOAT s 1
INCRBYFLOAT s -inf
SET s 1e4932
INCRBYFLOAT s 1
SET s 1.18973149535723176502e4932
INCRBYFLOAT s 0
SET s 01
INCRBYFLOAT s 1
SET s 9223372036854775807
INCRBYFLOAT s 1
RPUSH l a
INCRBYFLOAT l abc
INCRBYFLOAT l 1
INCRBYFLOAT
INCRBYFLOAT i
INCRBYFLOAT i 1 2
INCRBYFLOAT i 1.1e4931
INCRBYFLOAT i 1.1e4931
INCRBYFLOAT i -1.1e4931
INCRBYFLOAT j 5.0e-324
INCRBYFLOAT j 1.23456789012345678901234567890
INCRBYFLOAT k +.5
INCRBYFLOAT k 5.
INCRBYFLOAT k 3.4e38
INCRBYFLOAT m -1.1
INCRBYFLOAT m 123456789.123456789
INCRBYFLOAT o 1e17
INCRBYFLOAT o 0.5
INCRBYFLOAT p 0.1
INCRBYFLOAT p -0.1
INCRBYFLOAT q 1e-17
INCRBYFLOAT q 5e-18
INCRBYFLOAT r 1e20
INCRBYFLOAT r 1
SET ttl 1 EX 1000
INCRBYFLOAT ttl 1
TTL ttl
"""


def test_incrbyfloat_matches(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, INCRBYFLOAT_SCRIPT)


def test_incrbyfloat_long_inputs_match(shared: MoreDiffer) -> None:
    shared.reset()
    for raw in [
        "1" * 4000,
        "1" * 4933,
        "1" * 4932,
        "0." + "0" * 5000 + "1",
        "0." + "0" * 5200 + "1",
        "1e" + "9" * 3000,
        "1e-" + "9" * 3000,
        "0e" + "9" * 3000,
        "9" * 5119,
        "0x" + "f" * 4000,
    ]:
        shared.check("DEL", "big")
        shared.check("INCRBYFLOAT", "big", raw)
        shared.check("SET", "big", raw)
        shared.check("INCRBYFLOAT", "big", "0")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False).map(repr),
            st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
            st.integers(-(2**70), 2**70).map(str),
            st.builds(
                lambda m, e: f"{m}e{e}",
                st.integers(-(10**20), 10**20),
                st.integers(-4960, 4940),
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_random_increments_match(steps: list[str], shared: MoreDiffer) -> None:
    """INCRBYFLOAT's long double arithmetic and printing, on random numbers."""
    shared.reset()
    for step in steps:
        shared.check("INCRBYFLOAT", "f", step)


MSETNX_SCRIPT = """
MSETNX a 1 b 2
MGET a b
MSETNX a 1 c 2
EXISTS c
MSETNX c 1 c 2
GET c
MSETNX c
MSETNX c 1 d
RPUSH l x
MSETNX l 1 z 2
EXISTS z
SET gone v PX 1
"""


def test_msetnx_matches(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, MSETNX_SCRIPT)
    settle(0.01)  # the key set with PX 1 expires on both
    shared.check("MSETNX", "gone", "again", "fresh", "x")
    shared.check("MGET", "gone", "fresh")
    shared.check("TTL", "gone")


LCS_SCRIPT = """
MSET key1 ohmytext key2 mynewtext
LCS key1 key2
LCS key1 key2 LEN
LCS key1 key2 len
LCS key1 key2 IDX
LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN
LCS key1 key2 IDX WITHMATCHLEN
LCS key1 key2 idx minmatchlen 3
LCS key1 key2 IDX MINMATCHLEN 100
LCS key1 key2 LEN IDX
LCS key1 key2 IDX LEN
LCS key1 key2 FOO
LCS key1 key2 MINMATCHLEN
LCS key1 key2 MINMATCHLEN x
LCS key1 key2 MINMATCHLEN -5 IDX
LCS key1 key2 WITHMATCHLEN
LCS key1 key2 LEN WITHMATCHLEN
LCS key1 key2 LEN MINMATCHLEN 2
LCS nokey key2
LCS nokey key2 IDX
LCS nokey nokey2 LEN
LCS key2 nokey IDX WITHMATCHLEN
RPUSH l a
LCS l key2 FOO
LCS key1 l
LCS l nokey
LCS key1
LCS key1 key1 idx withmatchlen
MSET x aaaaaaa y aa
LCS x y IDX WITHMATCHLEN
LCS y x IDX WITHMATCHLEN
MSET x abcabcabc y cbacbacba
LCS x y
LCS y x
LCS x y IDX WITHMATCHLEN
LCS y x IDX
MSET x 12345 y 54321
LCS x y IDX
MSET x '' y abc
LCS x y IDX
LCS x y
"""


def test_lcs_matches(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, LCS_SCRIPT)


def test_lcs_matches_in_resp3(differ3: Differ) -> None:
    """LCS ... IDX is a map in RESP3 (``%2 matches ... len ...``)."""
    run_script(differ3, LCS_SCRIPT)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    a=st.binary(max_size=40).map(lambda b: bytes(x % 4 + 97 for x in b)),
    b=st.binary(max_size=40).map(lambda b: bytes(x % 4 + 97 for x in b)),
    min_len=st.integers(0, 4),
)
def test_random_lcs_match(a: bytes, b: bytes, min_len: int, shared: MoreDiffer) -> None:
    """Which subsequence and which ranges come out, when many are equally long."""
    shared.check("MSET", "a", a, "b", b)
    shared.check("LCS", "a", "b")
    shared.check("LCS", "a", "b", "LEN")
    shared.check("LCS", "a", "b", "IDX", "MINMATCHLEN", min_len, "WITHMATCHLEN")


def test_lcs_of_long_strings_matches(shared: MoreDiffer) -> None:
    shared.reset()
    a = bytes((i * 7919) % 251 % 5 + 97 for i in range(3000))
    b = bytes((i * 104729) % 241 % 5 + 97 for i in range(2500))
    shared.check("MSET", "a", a, "b", b)
    shared.check("LCS", "a", "b", "LEN")
    shared.check("LCS", "a", "b")
    shared.check("LCS", "a", "b", "IDX", "MINMATCHLEN", 3, "WITHMATCHLEN")
    # Past the transient-memory limit: (12000 + 1) ** 2 * 4 bytes > 512 MB.
    shared.check("MSET", "a", b"x" * 12000, "b", b"y" * 12000)
    shared.check("LCS", "a", "b", "LEN")


# -- keyspace --------------------------------------------------------------------------------

KEYSPACE_SCRIPT = """
RENAME nokey x
RENAMENX nokey x
RENAME nokey nokey
SET k v
RENAME k k
RENAMENX k k
RENAME k k2
GET k
GET k2
SET k3 w EX 1000
RENAME k3 k2
TTL k2
GET k2
RENAME k2 k
TTL k
SET other x
RENAMENX k other
RENAMENX k fresh
TTL fresh
RPUSH l a b c
RENAME l fresh
TYPE fresh
LRANGE fresh 0 -1
TTL fresh
RENAME fresh other
TYPE other
RENAME
RENAME a
RENAMENX a b c
COPY other other
COPY nokey dst
COPY other dst
LRANGE dst 0 -1
RPUSH dst d
LRANGE dst 0 -1
LRANGE other 0 -1
COPY other dst
COPY other dst REPLACE
LRANGE dst 0 -1
COPY other dst replace DB 0
COPY other dst DB 0 DB 0 REPLACE
COPY other dst DB 16
COPY other dst DB -1
COPY other dst DB x
COPY other dst DB 99999999999
COPY other dst DB
COPY other dst FOO
COPY other dst REPLACE FOO
COPY nokey nokey
COPY nokey nokey FOO
COPY a
SET s v PX 100000
COPY s s2
PTTL s2
GET s2
SET s2 x
GET s
TOUCH s s2 nokey s
TOUCH
UNLINK s nokey s2
UNLINK
EXISTS s s2
EXPIRETIME nokey
PEXPIRETIME nokey
SET t v
EXPIRETIME t
PEXPIRETIME t
PEXPIREAT t 4102444800500
EXPIRETIME t
PEXPIRETIME t
PEXPIREAT t 4102444800499
EXPIRETIME t
EXPIREAT t 4102444800
PEXPIRETIME t
EXPIRETIME
PEXPIRETIME a b
DBSIZE
"""


def test_keyspace_matches(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, KEYSPACE_SCRIPT)


def test_expired_keys_are_gone_for_the_new_commands(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(
        shared,
        """
        SET a v
        PEXPIREAT a 1
        RPUSH l x
        PEXPIREAT l 1
        SET live v
        GETRANGE a 0 -1
        GETDEL a
        GETEX a PERSIST
        SETRANGE a 2 x
        GET a
        TTL a
        PEXPIREAT a 1
        INCRBYFLOAT a 1.5
        TTL a
        RENAME l live2
        RENAMENX l live2
        COPY l live2
        TOUCH a l live
        RPUSH l y
        PEXPIREAT l 1
        RENAME live l
        GET l
        SET c v
        PEXPIREAT c 1
        COPY live c
        GET c
        EXPIRETIME c
        LCS live a
        OBJECT ENCODING a
        """.replace("        ", ""),
    )


OBJECT_SCRIPT = """
OBJECT
OBJECT HELP
OBJECT help
OBJECT HELP x
OBJECT FOO
OBJECT foo bar
OBJECT ENCODING
OBJECT ENCODING a b
OBJECT encoding nokey
OBJECT REFCOUNT nokey
OBJECT FREQ nokey
OBJECT IDLETIME nokey
SET k 1
OBJECT REFCOUNT k
OBJECT ENCODING k
OBJECT FREQ k
SET k 9999
OBJECT REFCOUNT k
SET k 10000
OBJECT REFCOUNT k
OBJECT ENCODING k
SET k -1
OBJECT REFCOUNT k
OBJECT ENCODING k
SET k 01
OBJECT ENCODING k
SET k 9223372036854775807
OBJECT ENCODING k
SET k 9223372036854775808
OBJECT ENCODING k
SET k ''
OBJECT ENCODING k
SET k 12345678901234567890123456789012345678901234
OBJECT ENCODING k
SET k 123456789012345678901234567890123456789012345
OBJECT ENCODING k
INCR n
OBJECT REFCOUNT n
OBJECT ENCODING n
MSET m 7 m2 abc
OBJECT REFCOUNT m
OBJECT ENCODING m2
SETEX se 100 5
OBJECT REFCOUNT se
RENAME se se2
OBJECT REFCOUNT se2
RPUSH l a
OBJECT ENCODING l
OBJECT REFCOUNT l
OBJECT FREQ l
"""


def test_object_matches(shared: MoreDiffer) -> None:
    shared.reset()
    run_script(shared, OBJECT_SCRIPT)


def test_object_encodings_of_other_types_match(shared: MoreDiffer) -> None:
    """Hashes, sets and sorted sets, with Redis 7.0's default thresholds (once the clone has them)."""
    shared.reset()
    long = "x" * 65
    cases = [
        ("HSET", ["HSET h a b"], ["HSET h2 a " + long], ["HSET h3 " + long + " b"]),
        ("SADD", ["SADD s 1 2 -3"], ["SADD s2 1 a"], ["SADD s3 01"]),
        ("ZADD", ["ZADD z 1 a"], ["ZADD z2 1 " + long], ["ZADD z3 1 a 2 " + "y" * 64]),
    ]
    for name, *scripts in cases:
        if not supports(shared, name, "probe:" + name, "1", "2"):
            continue
        shared.clone.call("DEL", "probe:" + name)
        for script in scripts:
            shared.check(*script[0].split())
            shared.check("OBJECT", "ENCODING", script[0].split()[1])
            shared.check("OBJECT", "REFCOUNT", script[0].split()[1])
    if supports(shared, "HSET", "probe", "a", "b"):
        shared.clone.call("DEL", "probe")
        big = ["HSET", "hbig"] + [w for i in range(513) for w in (f"f{i}", "v")]
        shared.check(*big[:-2])  # 512 fields: still a listpack
        shared.check("OBJECT", "ENCODING", "hbig")
        shared.check(*big)
        shared.check("OBJECT", "ENCODING", "hbig")
    if supports(shared, "SADD", "probe", "1"):
        shared.clone.call("DEL", "probe")
        shared.check("SADD", "sbig", *[str(i) for i in range(512)])
        shared.check("OBJECT", "ENCODING", "sbig")
        shared.check("SADD", "sbig", "512")
        shared.check("OBJECT", "ENCODING", "sbig")
    if supports(shared, "ZADD", "probe", "1", "a"):
        shared.clone.call("DEL", "probe")
        shared.check("ZADD", "zbig", *[w for i in range(128) for w in (str(i), f"m{i}")])
        shared.check("OBJECT", "ENCODING", "zbig")
        shared.check("ZADD", "zbig", "1", "m128")
        shared.check("OBJECT", "ENCODING", "zbig")


def test_copy_and_rename_of_other_types_match(shared: MoreDiffer) -> None:
    """A copy is independent of its source, for every type the clone serves."""
    shared.reset()
    for create, read, change in [
        ("HSET h a 1 b 2", "HGETALL {}", "HSET {} c 3"),
        ("SADD h 1 2 3", "SMEMBERS {}", "SADD {} 4"),
        ("ZADD h 1 a 2 b", "ZRANGE {} 0 -1 WITHSCORES", "ZADD {} 3 c"),
    ]:
        words = create.split()
        if not supports(shared, words[0], "probe", *words[2:]):
            continue
        shared.clone.call("DEL", "probe")
        shared.check("DEL", "h", "h2", "h3")
        shared.check(*words)
        shared.check("COPY", "h", "h2")
        shared.check(*change.format("h2").split())
        shared.check(*read.format("h").split())
        shared.check(*read.format("h2").split())
        shared.check("RENAME", "h2", "h3")
        shared.check("TYPE", "h3")
        shared.check(*read.format("h3").split())
        shared.check("SCAN", "0", "TYPE", shared.check("TYPE", "h3")[1:-2].decode(), "COUNT", "100")


def test_randomkey_alike(shared: MoreDiffer) -> None:
    """Nil on an empty keyspace, on one of only expired keys; else a live key."""
    shared.reset()
    shared.check("RANDOMKEY")
    shared.check("RANDOMKEY", "x")
    shared.check("SET", "dead", "v")
    shared.check("PEXPIREAT", "dead", "1")
    shared.check("RANDOMKEY")
    shared.check("SET", "only", "v")
    shared.check("RANDOMKEY")
    shared.check("MSET", "a", "1", "b", "2")
    shared.check("RPUSH", "l", "x")
    seen = set()
    for _ in range(60):
        theirs, ours = shared.both("RANDOMKEY")
        assert theirs in (b"$1\r\na\r\n", b"$1\r\nb\r\n", b"$1\r\nl\r\n", b"$4\r\nonly\r\n")
        assert ours in (b"$1\r\na\r\n", b"$1\r\nb\r\n", b"$1\r\nl\r\n", b"$4\r\nonly\r\n")
        seen.add(ours)
    assert len(seen) > 1


@pytest.mark.parametrize("move", ["RENAME src q", "RENAMENX src q", "COPY src q"])
def test_a_list_moved_onto_a_waited_key_wakes_the_waiter_alike(
    redis_server: RedisServer, clone_server: CloneServer, move: str
) -> None:
    replies = []
    for port in (redis_server.port, clone_server.port):
        waiter, other = Conn(port), Conn(port)
        try:
            assert other.call("FLUSHALL") == b"+OK\r\n"
            waiter.send(["BLPOP", "q", "5"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            got = [other.call("RPUSH", "src", "x", "y"), other.call(*move.split())]
            got += [waiter.reply(timeout=5), other.call("LRANGE", "q", "0", "-1")]
            got.append(other.call("EXISTS", "src"))
            replies.append(got)
        finally:
            waiter.close()
            other.close()
    assert replies[0] == replies[1], (move, replies)


# -- WATCH -----------------------------------------------------------------------------------

WATCH_CASES = [
    # (what another connection does between WATCH k and EXEC, the setup before WATCH)
    ("RENAME k other", "SET k v"),
    ("RENAME other k", "SET other v"),
    ("RENAME k k", "SET k v"),
    ("RENAMENX other k", "SET other v"),
    ("RENAMENX other k", "SET other v;SET k v"),
    ("RENAMENX k other", "SET other v;SET k v"),
    ("RENAME a b", "SET a v"),
    ("COPY k other", "SET k v"),
    ("COPY other k", "SET other v"),
    ("COPY other k", "SET other v;SET k v"),
    ("COPY other k REPLACE", "SET other v;SET k v"),
    ("COPY other k", "RPUSH other v"),
    ("GETDEL k", "SET k v"),
    ("GETDEL k", ""),
    ("GETEX k", "SET k v"),
    ("GETEX k PERSIST", "SET k v"),
    ("GETEX k PERSIST", "SET k v EX 1000"),
    ("GETEX k EX 100", "SET k v"),
    ("GETEX k EXAT 1", "SET k v"),
    ("SETRANGE k 0 ''", "SET k v"),
    ("SETRANGE k 0 v", "SET k v"),
    ("SETRANGE k 0 ''", ""),
    ("SETEX k 100 v", ""),
    ("PSETEX k 100000 v", "SET k v"),
    ("INCRBYFLOAT k 0", "SET k 1"),
    ("INCRBYFLOAT k x", "SET k 1"),
    ("MSETNX k 1 other 2", ""),
    ("MSETNX k 1 other 2", "SET other v"),
    ("UNLINK k", "SET k v"),
    ("TOUCH k", "SET k v"),
    ("LCS k other", "SET k v"),
    ("GETRANGE k 0 -1", "SET k v"),
    ("OBJECT ENCODING k", "SET k v"),
]


@pytest.mark.parametrize(("between", "setup"), WATCH_CASES)
def test_exec_aborts_when_redis_does(
    redis_server: RedisServer, clone_server: CloneServer, between: str, setup: str
) -> None:
    replies = [
        watch_replies(port, between, setup, ("PING",), keep_between=True)
        for port in (redis_server.port, clone_server.port)
    ]
    assert replies[0] == replies[1], (between, setup, replies)


# -- random sequences ------------------------------------------------------------------------


def _mine() -> st.SearchStrategy[Cmd]:
    return st.one_of(
        strings_more(),
        keyspace_more(),
        malformed_more(),
        strings(),
        keyspace(),
        lists(),
        malformed(),
        expiry_times(),
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_sequences_match(data: st.DataObject, shared: MoreDiffer) -> None:
    shared.reset()
    sequence: list[Cmd] = data.draw(st.lists(_mine(), min_size=1, max_size=40), label="commands")
    shared.run(sequence)


def _set_made() -> st.SearchStrategy[Cmd]:
    """Commands whose strings Redis encodes by value alone (no APPEND, SETRANGE, INCRBYFLOAT, COPY)."""
    return st.one_of(
        set_command(),
        st.builds(lambda k, v, k2, v2: ["MSET", k, v, k2, v2], key, value, key, value),
        st.tuples(st.sampled_from(["INCR", "DECR"]), key).map(list),
        st.tuples(st.just("SETEX"), key, st.just(100), value).map(list),
        st.tuples(st.just("GETSET"), key, value).map(list),
        st.tuples(st.sampled_from(["RENAME", "RENAMENX"]), key, key).map(list),
        st.tuples(st.just("GETDEL"), key).map(list),
        st.builds(lambda k, es: ["RPUSH", k, *es], key, st.lists(value, min_size=1, max_size=3)),
        st.tuples(st.just("LPOP"), key).map(list),
        objects(),
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_object_sequences_match(data: st.DataObject, shared: MoreDiffer) -> None:
    shared.reset()
    sequence: list[Cmd] = data.draw(
        st.lists(_set_made(), min_size=1, max_size=30), label="commands"
    )
    shared.run(sequence)
