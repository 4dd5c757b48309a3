"""The clone's hash commands against a real redis-server 7.0: the same commands, the same bytes.

A small hash (a listpack in Redis: at most 512 fields, none and no value
longer than 64 bytes, redis-server's defaults without a configuration file) answers in insertion order, which the clone keeps, so
its replies must be the same bytes; a large one Redis answers in its hash
table's order, so where redis-server reports ``OBJECT ENCODING hashtable``
the listing replies (HGETALL, HKEYS, HVALS, a whole HSCAN, HRANDFIELD of the
whole hash) compare sorted, and HSCAN walks compare by what they return.
HRANDFIELD's random forms are checked for what is deterministic (shape,
count, membership, values, errors).  HINCRBYFLOAT is compared byte for byte,
C's ``long double`` and its ``%.17Lf`` print included.

A random test (Hypothesis) over hash, string and keyspace commands on the
shared keys; a bounded budget in CI (``REDRAFT_DIFF_EXAMPLES`` raises it).
Like every random test, it leaves DBSIZE out (see ``strategies.keyspace``).
"""

from __future__ import annotations

import os
import random
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
from tests.differential.strategies import KEYS, Cmd, keyspace, strings
from tests.differential.strategies_hashes import hashes, random_hashes

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("REDRAFT_DIFF_EXAMPLES", "60"))
"""How many random sequences a run tries (CI: a few seconds)."""

_LISTING = {b"hgetall", b"hkeys", b"hvals", b"hscan", b"hrandfield"}


def parse(reply: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


def _name(args: Args) -> bytes:
    first = args[0]
    return (first if isinstance(first, bytes) else str(first).encode()).lower()


def _flat(pairs: list[Any]) -> list[Any]:
    """Fields and values taking turns, as RESP2 answers them: RESP3 nests each pair."""
    if pairs and isinstance(pairs[0], list):
        return [half for pair in pairs for half in pair]
    return pairs


def _sorted_pairs(pairs: list[Any]) -> list[tuple[bytes, bytes]]:
    flat = _flat(pairs)
    return sorted(zip(flat[0::2], flat[1::2], strict=True))


def unordered(args: Args, reply: bytes) -> Any:
    """A listing reply of a hash-table hash in a comparable form (its order is Redis's own;
    a RESP3 map is a dict, whose equality ignores it)."""
    value = parse(reply)
    if not isinstance(value, list):
        return value
    name = _name(args)
    withvalues = name == b"hrandfield" and len(args) == 4
    if name == b"hgetall" or withvalues:
        return _sorted_pairs(value)
    if name == b"hscan":
        cursor, page = value
        return (cursor, _sorted_pairs(page)) if cursor == b"0" else value
    return sorted(value)


def hash_same(d: Differ, args: Args, theirs: bytes, ours: bytes) -> bool:
    """:func:`harness.same`, with listings of a hash table compared sorted."""
    if theirs == ours or same(args, theirs, ours):
        return True
    if _name(args) not in _LISTING or len(args) < 2:
        return False
    if d.redis.call("OBJECT", "ENCODING", args[1]) != b"$9\r\nhashtable\r\n":
        return False  # a listpack: its order is insertion order, which the clone keeps
    return bool(unordered(args, theirs) == unordered(args, ours))


def check(d: Differ, *args: bytes | str | int) -> bytes:
    theirs, ours = d.both(*args)
    if not hash_same(d, args, theirs, ours):
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
    """HRANDFIELD: the same errors and shape; fields of the hash, with their values."""
    theirs, ours = _call_each(d, args)
    fail = f"{d.report()}\n!! {args!r}\n   redis {theirs!r}\n   clone {ours!r}"
    settled = (b"-", b"$-1", b"_", b"*0\r\n")
    if theirs.startswith(settled) or ours.startswith(settled):
        assert theirs == ours, fail
        return
    key = args[1]
    withvalues = len(args) == 4
    got = [parse(theirs), parse(ours)]
    assert type(got[0]) is type(got[1]), fail
    assert not isinstance(got[0], list) or len(got[0]) == len(got[1]), fail
    if withvalues:  # RESP3 nests each field and value, RESP2 does not
        assert type(got[0][0]) is type(got[1][0]), fail
    count = int(args[2]) if len(args) > 2 else 1
    for conn, reply in zip((d.redis, d.clone), got, strict=True):
        flat = _flat(reply) if isinstance(reply, list) else [reply]
        picked = flat[0::2] if withvalues else flat
        if count > 0:
            assert len(set(picked)) == len(picked), fail
        values = parse(conn.call("HMGET", key, *picked))
        assert None not in values, fail
        if withvalues:
            assert values == flat[1::2], fail


# -- focused scripts ----------------------------------------------------------------------


BASICS = """
HSET h a 1 b 2 c 3
HSET h a 1
HSET h a 10 d 4 d 5
HGET h a
HGET h d
HGET h zz
HGET nokey a
HMGET h a zz b a
HMGET nokey a b
HLEN h
HLEN nokey
HEXISTS h a
HEXISTS h zz
HEXISTS nokey a
HSTRLEN h a
HSTRLEN h zz
HSTRLEN nokey a
HKEYS h
HVALS h
HGETALL h
HKEYS nokey
HVALS nokey
HGETALL nokey
TYPE h
HSETNX h a x
HSETNX h e 5
HSETNX new f v
HGETALL new
HMSET h a 1 f 6
HGETALL h
HDEL h zz
HDEL h a zz a
HDEL nokey a
HGETALL h
HDEL h b c d e f
EXISTS h
TYPE h
HSET e '' ''
HGET e ''
HGETALL e
HSTRLEN e ''
HDEL e ''
EXISTS e
"""

ORDER = """
HSET o c 1 a 2 b 3
HKEYS o
HSET o a 20
HKEYS o
HVALS o
HDEL o c
HSET o c 4
HGETALL o
HSETNX o d 5
HINCRBY o a 1
HINCRBYFLOAT o b 0.5
HGETALL o
HMSET o e 1 a 2
HGETALL o
"""

WRONG_TYPES = """
SET str v
HSET str a 1
HMSET str a 1
HSETNX str a 1
HGET str a
HMGET str a
HDEL str a
HEXISTS str a
HLEN str
HSTRLEN str a
HKEYS str
HVALS str
HGETALL str
HINCRBY str a 1
HINCRBY str a x
HINCRBYFLOAT str a 1
HINCRBYFLOAT str a x
HINCRBYFLOAT str a inf
HRANDFIELD str
HRANDFIELD str 0
HRANDFIELD str 3 WITHVALUES
HRANDFIELD str x
HRANDFIELD str 1 FOO
HSCAN str 0
HSCAN str x
HSCAN str 0 COUNT x
HSET str a
HSET str a 1 b
RPUSH list a
HSET list a 1
HGET list a
HSET h a 1
GET h
LPUSH h a
SADD h a
INCR h
APPEND h x
STRLEN h
LRANGE h 0 -1
MGET h str
"""

INCRS = """
HINCRBY h a 5
HINCRBY h a -3
HINCRBY h a 0
HGET h a
HINCRBY h a x
HINCRBY h a 01
HINCRBY h a +1
HINCRBY h a ''
HINCRBY h a 9223372036854775808
HINCRBY nokey a x
EXISTS nokey
HSET h big 9223372036854775806
HINCRBY h big 1
HINCRBY h big 1
HINCRBY h big -9223372036854775808
HSET h small -9223372036854775807
HINCRBY h small -1
HINCRBY h small -1
HSET h f 1.5 z 01 m -0 s ''
HINCRBY h f 1
HINCRBY h z 1
HINCRBY h m 1
HINCRBY h s 1
HSET h sp 12345678901234567890
HINCRBY h sp 1
HGETALL h
"""

FLOATS = """
HINCRBYFLOAT f a 10.5
HINCRBYFLOAT f a 0.1
HINCRBYFLOAT f a -5.0e3
HINCRBYFLOAT f a 5e3
HINCRBYFLOAT f b 1
HINCRBYFLOAT f b 0.1
HINCRBYFLOAT f b 0.2
HINCRBYFLOAT f b -1.3
HINCRBYFLOAT f c 0.000003814697265625
HINCRBYFLOAT f d 0.000011444091796875
HINCRBYFLOAT f e 1e-20
HINCRBYFLOAT f e -1e-20
HINCRBYFLOAT f g -0
HINCRBYFLOAT f g -0.0
HINCRBYFLOAT f h 1e20
HINCRBYFLOAT f h 0.1
HINCRBYFLOAT f i 9223372036854775807
HINCRBYFLOAT f i 1
HINCRBYFLOAT f j 0x10
HINCRBYFLOAT f j 0x1.8p1
HINCRBYFLOAT f j 1.e2
HINCRBYFLOAT f j .5
HINCRBYFLOAT f j +1
HINCRBYFLOAT f j 1E2
HINCRBYFLOAT f k 3.0
HINCRBYFLOAT f k 2.5
HINCRBYFLOAT f l 0e-5000
HINCRBYFLOAT f l 0x1p-16445
HINCRBYFLOAT f l 0x1.8p-16446
HINCRBYFLOAT f l 0x1p-16446
HINCRBYFLOAT f l 1e-5000
HINCRBYFLOAT f l 3.6e-4951
HINCRBYFLOAT f l 1.8e-4951
HINCRBYFLOAT f m 1.19e4932
HINCRBYFLOAT f m 1e4933
HINCRBYFLOAT f m 0x1p16384
HINCRBYFLOAT f m 1e999999999999
HINCRBYFLOAT f m 1e-999999999999
HINCRBYFLOAT f m 0e999999999999
HINCRBYFLOAT f x x
HINCRBYFLOAT f x ''
HINCRBYFLOAT f x 1e
HINCRBYFLOAT f x 1e+
HINCRBYFLOAT f x 0x
HINCRBYFLOAT f x 0x1p
HINCRBYFLOAT f x .
HINCRBYFLOAT f x +
HINCRBYFLOAT f x -
HINCRBYFLOAT f x 1.5.
HINCRBYFLOAT f x 1_0
HINCRBYFLOAT f x inf
HINCRBYFLOAT f x -inf
HINCRBYFLOAT f x Infinity
HINCRBYFLOAT f x infinit
HINCRBYFLOAT f x nan
HINCRBYFLOAT f x NaN(1)
HINCRBYFLOAT f x -nan
HEXISTS f x
HSET f s inf t -Infinity u nan v x w 1e w2 '' w3 1.5 w4 10
HINCRBYFLOAT f s 1
HINCRBYFLOAT f t 1
HINCRBYFLOAT f u 1
HINCRBYFLOAT f v 1
HINCRBYFLOAT f w 1
HINCRBYFLOAT f w2 1
HINCRBYFLOAT f w3 1
HINCRBYFLOAT f w4 1
HINCRBY f w3 1
HINCRBYFLOAT nokey a x
HINCRBYFLOAT nokey a inf
EXISTS nokey
HGETALL f
"""

RANDFIELD = """
HRANDFIELD nokey
HRANDFIELD nokey 0
HRANDFIELD nokey 5
HRANDFIELD nokey -5
HRANDFIELD nokey 5 WITHVALUES
HRANDFIELD nokey x
HRANDFIELD nokey 1 FOO
HRANDFIELD nokey -9223372036854775808
HRANDFIELD nokey -9223372036854775807
HRANDFIELD nokey -4611686018427387903 WITHVALUES
HRANDFIELD nokey -4611686018427387904 WITHVALUES
HRANDFIELD nokey 4611686018427387904 withvalues
HSET h a 1 b 2 c 3
HRANDFIELD h 0
HRANDFIELD h 0 WITHVALUES
HRANDFIELD h 3
HRANDFIELD h 3 WITHVALUES
HRANDFIELD h 100 withvalues
HRANDFIELD h 9223372036854775807
HRANDFIELD h 9223372036854775807 WITHVALUES
HRANDFIELD h x
HRANDFIELD h 01
HRANDFIELD h +1
HRANDFIELD h ''
HRANDFIELD h 1 WITHVALUE
HRANDFIELD h 1 WITHVALUES x
HRANDFIELD h -9223372036854775808 WITHVALUES
HSET one k v
HRANDFIELD one
HRANDFIELD one 1
HRANDFIELD one -3
HRANDFIELD one -2 WITHVALUES
HRANDFIELD one 1 WITHVALUES
"""

SCANS = """
HSET s a 1 b 2 c 3 d 4 e 5 f1 6 f2 7
HSCAN s 0
HSCAN s 0 COUNT 1
HSCAN s 0 COUNT 100 MATCH *
HSCAN s 0 MATCH [ab]
HSCAN s 0 MATCH f*
HSCAN s 0 MATCH ''
HSCAN s 0 match ? count 2
HSCAN s 5
HSCAN s -1
HSCAN s ''
HSCAN s 18446744073709551615
HSCAN s 18446744073709551616
HSCAN s +0
HSCAN s 007
HSCAN s 0 COUNT 0
HSCAN s 0 COUNT -1
HSCAN s 0 COUNT x
HSCAN s 0 COUNT 01
HSCAN s 0 COUNT
HSCAN s 0 MATCH
HSCAN s 0 TYPE hash
HSCAN s 0 NOVALUES
HSCAN s 0 FOO bar
HSCAN s x
HSCAN s ' 1'
HSCAN s 1x
HSCAN s +
HSCAN s -
HSCAN nokey 0
HSCAN nokey 0 COUNT x
HSCAN nokey 0 TYPE x
HSCAN nokey x
HSCAN nokey 5
"""

ARITY = """
HSET
HSET h
HSET h a
HSET h a 1 b
HMSET h
HMSET h a
HMSET h a 1 b
HSETNX h a
HSETNX h a 1 2
HGET h
HGET h a b
HMGET h
HDEL h
HEXISTS h
HEXISTS h a b
HLEN
HLEN h a
HSTRLEN h
HKEYS
HKEYS h a
HVALS
HGETALL
HGETALL h a
HINCRBY h a
HINCRBY h a 1 2
HINCRBYFLOAT h a
HINCRBYFLOAT h a 1 2
HRANDFIELD
HSCAN h
HSCAN
EXISTS h
"""

EXPIRY = """
HSET e a 1 b 2
PEXPIREAT e 1
HLEN e
HGETALL e
HGET e a
HEXISTS e a
HDEL e a
HRANDFIELD e
HSCAN e 0
HINCRBY e a 1
TTL e
HGETALL e
HSET t a 1
EXPIRE t 100
HSET t b 2
HDEL t a
HINCRBY t c 1
HINCRBYFLOAT t c 1.5
HSETNX t d 1
HMSET t e 1
TTL t
HDEL t b c d e
EXISTS t
HSET x a 1
EXPIREAT x 4102444800
HSET x a 2
TTL x
PERSIST x
TTL x
HSET gone a 1
EXPIREAT gone 100
HSETNX gone a 2
HGET gone a
TTL gone
"""


@pytest.mark.parametrize(
    "text",
    [BASICS, ORDER, WRONG_TYPES, INCRS, FLOATS, RANDFIELD, SCANS, ARITY, EXPIRY],
    ids=[
        "basics",
        "order",
        "wrongtype",
        "incrs",
        "floats",
        "randfield",
        "scans",
        "arity",
        "expiry",
    ],
)
def test_hash_scripts_match(differ: Differ, text: str) -> None:
    script(differ, text)


def test_fields_and_values_with_odd_bytes_match(differ: Differ) -> None:
    odd = [b"", b" ", b"\x00", b"\xff\xfe", b"a b", b"1 ", b" 1", b"\r\n", b"*", b"x" * 64]
    flat = [x for i, f in enumerate(odd) for x in (f, odd[-1 - i])]
    check(differ, "HSET", "h", *flat)
    check(differ, "HGETALL", "h")
    check(differ, "HMGET", "h", *odd, b"nope")
    check(differ, "HSCAN", "h", "0", "COUNT", "100", "MATCH", "*")
    check(differ, "HSCAN", "h", "0", "MATCH", "\\*")
    check(differ, "HSCAN", "h", "0", "MATCH", "? ")
    check(differ, "HSCAN", "h", b"\x00garbage")
    check(differ, "HSCAN", "h", b"0\x00garbage")
    check(differ, "HDEL", "h", *odd[:5])
    check(differ, "HGETALL", "h")
    for raw in [b"1.5\x00abc", b"\x00", b"\x001", b"1\x00", b" 1", b"1 ", b"\t1", b"\xd9\xa1"]:
        check(differ, "HINCRBYFLOAT", "f", "x", raw)
        check(differ, "HINCRBY", "f", "y", raw)
        check(differ, "HSET", "f", "v", raw)
        check(differ, "HINCRBYFLOAT", "f", "v", "1")
        check(differ, "HINCRBY", "f", "v", "1")
    check(differ, "HGETALL", "f")


def test_hincrbyfloat_matches_long_double_arithmetic(differ: Differ) -> None:
    """Random increments of every shape, accumulated: C's long double, exactly."""
    rng = random.Random(19)

    def number() -> str:
        kind = rng.randrange(8)
        if kind == 0:
            return str(rng.randrange(-(10**6), 10**6))
        if kind == 1:
            return repr(rng.uniform(-1e6, 1e6))
        if kind == 2:
            return f"{rng.randrange(-999, 999)}e{rng.randrange(-4960, 4940)}"
        if kind == 3:
            return f"{rng.uniform(-10, 10):.{rng.randrange(0, 30)}f}"
        if kind == 4:
            return f"0x{rng.randrange(1, 1 << 70):x}p{rng.randrange(-16600, 16400)}"
        if kind == 5:
            return f"{rng.uniform(-1e-15, 1e-15):.25g}"
        if kind == 6:
            return str(rng.randrange(-(2**70), 2**70))
        return repr(rng.random() * 10 ** rng.randrange(-20, 20))

    for _ in range(400):
        field = f"f{rng.randrange(4)}"
        if rng.random() < 0.15:
            check(differ, "HDEL", "h", field)
        check(differ, "HINCRBYFLOAT", "h", field, number())
    check(differ, "HLEN", "h")


def test_random_forms_match_in_what_is_deterministic(differ: Differ) -> None:
    check(differ, "HSET", "h", *[x for i in range(30) for x in (f"f{i}", f"v{i}")])
    check(differ, "HSET", "big", *[x for i in range(600) for x in (f"f{i}", f"v{i}")])
    for key in ("h", "big"):
        for args in ([], [1], [2], [5], [20], [29], [-1], [-5], [-100]):
            check_random(differ, "HRANDFIELD", key, *args)
        for args in ([1], [3], [10], [-1], [-7], [-50]):
            check_random(differ, "HRANDFIELD", key, *args, "WITHVALUES")
    check(differ, "HRANDFIELD", "h", 30, "WITHVALUES")  # the whole hash, in its order
    check(differ, "HRANDFIELD", "big", 600)  # a hash table's: compared sorted
    check(differ, "HRANDFIELD", "big", 1000, "WITHVALUES")


# -- the listpack boundary and large hashes ----------------------------------------------------


def test_the_listpack_boundary(differ: Differ) -> None:
    """512 short fields keep insertion order; the 513th, or a long value, makes a hash table."""
    flat = [x for i in range(512, 0, -1) for x in (f"f{i}", str(i))]
    check(differ, "HSET", "n", *flat)
    assert differ.redis.call("OBJECT", "ENCODING", "n") == b"$8\r\nlistpack\r\n"
    for cmd in ("HKEYS", "HVALS", "HGETALL"):
        check(differ, cmd, "n")
    check(differ, "HSCAN", "n", "0", "COUNT", "3")  # a listpack comes whole whatever COUNT says
    check(differ, "HSCAN", "n", "0", "MATCH", "f1*")
    check(differ, "HRANDFIELD", "n", "512", "WITHVALUES")
    check(differ, "HSET", "n", "f0", "0")  # 513 fields: a hash table
    assert differ.redis.call("OBJECT", "ENCODING", "n") == b"$9\r\nhashtable\r\n"
    check(differ, "HGETALL", "n")
    check(differ, "HLEN", "n")
    check(differ, "HSET", "v", "a", "1", "b", "x" * 64)
    check(differ, "HGETALL", "v")
    check(differ, "HSCAN", "v", "0", "COUNT", "1")
    check(differ, "HSET", "v", "c", "x" * 65)
    check(differ, "HGETALL", "v")
    check(differ, "HSET", "w", "y" * 65, "1", "a", "2")
    check(differ, "HKEYS", "w")
    check(differ, "HSET", "z", "a", "1")
    check(differ, "HINCRBYFLOAT", "z", "a", "1e100")  # a long value: a hash table too
    check(differ, "HGETALL", "z")


def walk(conn: Conn, key: str, *opts: str | int, limit: int = 10_000) -> tuple[list[bytes], int]:
    """A whole HSCAN walk: every field and value returned (flat), and how many calls it took."""
    cursor = b"0"
    seen: list[bytes] = []
    for calls in range(1, limit + 1):
        reply = parse(conn.call("HSCAN", key, cursor, *opts))
        assert isinstance(reply, list), reply
        cursor, page = reply
        seen += page
        if cursor == b"0":
            return seen, calls
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize(
    ("size", "opts"),
    [
        (600, ()),
        (600, ("COUNT", 7)),
        (600, ("COUNT", 7, "MATCH", "f1*")),
        (2000, ("COUNT", 50)),
        (513, ("COUNT", 1000)),
    ],
    ids=["default", "count", "match", "1000", "one-page"],
)
def test_a_walk_over_a_large_hash_returns_the_same_fields(
    differ: Differ, size: int, opts: tuple[Any, ...]
) -> None:
    check(differ, "HSET", "big", *[x for i in range(size) for x in (f"f{i}", f"v{i}")])
    theirs, _ = walk(differ.redis, "big", *opts)
    ours, calls = walk(differ.clone, "big", *opts)
    assert len(ours[0::2]) == len(set(ours[0::2])), "a field came twice in an unchanging hash"
    assert sorted(set(_sorted_pairs(theirs))) == _sorted_pairs(ours)
    count = int(opts[1]) if opts[:1] == ("COUNT",) else 10
    assert calls == -(-size // count)  # one page per COUNT fields


def test_a_walk_survives_changes_to_the_hash(clone_server: CloneServer) -> None:
    """Fields there all along come exactly once, with their values now; removed ones do not."""
    conn = Conn(clone_server.port)
    try:
        conn.call("DEL", "w")
        conn.call("HSET", "w", *[x for i in range(1000) for x in (f"f{i}", "old")])
        cursor, page = parse(conn.call("HSCAN", "w", "0", "COUNT", "10"))
        seen = list(page)
        conn.call("HDEL", "w", *[f"f{i}" for i in range(100, 1000)])
        conn.call("HSET", "w", *[x for i in range(100) for x in (f"f{i}", "new")])
        while cursor != b"0":
            cursor, page = parse(conn.call("HSCAN", "w", cursor, "COUNT", "10"))
            seen += page
        fields = seen[0::2]
        assert set(fields) == {f"f{i}".encode() for i in range(100)}
        assert len(fields) == len(set(fields))
        assert seen[21::2] == [b"new"] * (len(fields) - 10)
        # A small hash comes whole whatever the cursor; a large one's must be a known walk's.
        assert parse(conn.call("HSCAN", "w", "123456789"))[0] == b"0"
        conn.call("HSET", "w", *[x for i in range(600) for x in (f"g{i}", "v")])
        assert conn.call("HSCAN", "w", "123456789") == b"-ERR invalid cursor\r\n"
    finally:
        conn.close()


# -- RESP3 ------------------------------------------------------------------------------------


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


def test_resp3_hash_replies_match(redis_server: RedisServer, clone_server: CloneServer) -> None:
    """HGETALL is a map (``%``), a missing field ``_``, the rest arrays as in RESP2."""
    commands = [
        line.split()
        for line in [
            "HSET h a 1 b 2",
            "HGETALL h",
            "HGETALL nokey",
            "HGET h zz",
            "HMGET h a zz",
            "HKEYS h",
            "HVALS nokey",
            "HRANDFIELD nokey",
            "HRANDFIELD nokey 2",
            "HRANDFIELD h 5",
            "HSCAN h 0",
            "HINCRBYFLOAT h c 1.5",
            "HSTRLEN h c",
        ]
    ]
    assert resp3_replies(redis_server.port, commands) == resp3_replies(clone_server.port, commands)


def test_resp3_hrandfield_withvalues_nests_pairs(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    commands = [["HSET", "h", "a", "1", "b", "2"], ["HRANDFIELD", "h", "5", "WITHVALUES"]]
    assert resp3_replies(redis_server.port, commands) == resp3_replies(clone_server.port, commands)


def test_resp3_pairs_and_floats_match(differ3: Differ) -> None:
    """HRANDFIELD WITHVALUES nests its pairs in RESP3 (in MULTI too); HINCRBYFLOAT and
    INCRBYFLOAT stay bulk strings."""
    script(
        differ3,
        """
        HSET h a 1 b 2 c 3
        HRANDFIELD h 3 WITHVALUES
        HRANDFIELD h 10 WITHVALUES
        HRANDFIELD h 0 WITHVALUES
        HRANDFIELD nokey 2 WITHVALUES
        HRANDFIELD h -1 x
        HINCRBYFLOAT h a 0.1
        HINCRBYFLOAT h new 1.5e3
        HGETALL h
        SET f 1
        INCRBYFLOAT f 0.1
        MULTI
        HRANDFIELD h 10 WITHVALUES
        HGETALL h
        HINCRBYFLOAT h a 1
        EXEC
        """,
    )


# -- MULTI and WATCH --------------------------------------------------------------------------


def test_hash_commands_inside_multi_match(differ: Differ) -> None:
    script(
        differ,
        """
        HSET h a 1
        MULTI
        HSET h b 2
        HSET h c 3 d
        HMSET h c
        HINCRBY h a x
        HINCRBY h b 1
        HINCRBYFLOAT h a inf
        HINCRBYFLOAT h a 0.5
        HRANDFIELD h x
        HRANDFIELD h 0
        HSCAN h x
        HSCAN h 0 COUNT 0
        HGETALL h
        HDEL h a
        HLEN h
        EXEC
        MULTI
        HSET h a
        EXEC
        HGETALL h
        """,
    )


HASH_WATCH_CASES = [
    # (what the other connection does between WATCH k and EXEC, setup before WATCH)
    ("HSET k a 1", "HSET k a 1"),  # the same value: still a change
    ("HSET k b 2", "HSET k a 1"),
    ("HSET k a 1", ""),
    ("HMSET k a 1", "HSET k a 1"),
    ("HSET k a 1 b", "HSET k a 1"),  # refused: no change
    ("HSETNX k a 2", "HSET k a 1"),  # not set
    ("HSETNX k b 2", "HSET k a 1"),
    ("HSETNX k a 1", ""),
    ("HDEL k zz", "HSET k a 1"),  # nothing removed
    ("HDEL k a", "HSET k a 1 b 2"),
    ("HDEL k a", "HSET k a 1"),  # the last field: deleted
    ("HDEL k a", ""),
    ("HINCRBY k a 1", "HSET k a 1"),
    ("HINCRBY k a 0", "HSET k a 1"),
    ("HINCRBY k a 1", "HSET k a x"),  # refused
    ("HINCRBY k a 1", ""),
    ("HINCRBYFLOAT k a 1.5", "HSET k a 1"),
    ("HINCRBYFLOAT k a 1", "HSET k a inf"),  # refused
    ("HINCRBYFLOAT k a x", "HSET k a 1"),
    ("HGETALL k", "HSET k a 1"),
    ("HRANDFIELD k", "HSET k a 1"),
    ("HSCAN k 0", "HSET k a 1"),
    ("HINCRBY other a 1", "HSET k a 1"),
]


@pytest.mark.parametrize(("between", "setup"), HASH_WATCH_CASES)
def test_exec_aborts_when_redis_does(
    redis_server: RedisServer, clone_server: CloneServer, between: str, setup: str
) -> None:
    replies = [
        watch_replies(port, between, setup, ("HLEN", "k"))
        for port in (redis_server.port, clone_server.port)
    ]
    assert replies[0] == replies[1], (between, setup, replies)


# -- random sequences -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer, clone_server: CloneServer) -> Differ:
    """One connection to each server for the whole module (the random test resets it)."""
    return Differ(redis_server.port, clone_server.port)


def is_random(args: Cmd) -> bool:
    """Whether the reply of HRANDFIELD ``args`` depends on a draw."""
    if str(args[0]).upper() != "HRANDFIELD" or len(args) < 2:
        return False
    if len(args) == 2:
        return True
    try:
        count = int(str(args[2]))
    except ValueError:
        return False
    return count != 0 and count < 6  # 6 fields at most: a larger count takes them all


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_hash_sequences_match(data: st.DataObject, shared: Differ) -> None:
    random_sequence(data, shared)


@settings(
    max_examples=max(1, EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_hash_sequences_match_in_resp3(data: st.DataObject, shared3: Differ) -> None:
    """The same over RESP3: HGETALL a map, HRANDFIELD WITHVALUES ``[field, value]`` arrays,
    nulls ``_``."""
    random_sequence(data, shared3)


def random_sequence(data: st.DataObject, shared: Differ) -> None:
    shared.reset()
    family = st.one_of(hashes(), hashes(), random_hashes(), strings(), keyspace())
    sequence: list[Cmd] = data.draw(st.lists(family, min_size=1, max_size=40), label="commands")
    for args in sequence:
        if is_random(args):
            check_random(shared, *args)
        else:
            check(shared, *args)
    for key in KEYS:
        check(shared, "TYPE", key)
        check(shared, "HGETALL", key)


def test_unordered_normaliser() -> None:
    hgetall = ("HGETALL", "h")
    assert unordered(hgetall, b"*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n") == [
        (b"a", b"1"),
        (b"b", b"2"),
    ]
    assert unordered(("HKEYS", "h"), b"*2\r\n$1\r\nb\r\n$1\r\na\r\n") == [b"a", b"b"]
    assert unordered(("HKEYS", "h"), b"$-1\r\n") is None
    page = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert unordered(("HSCAN", "h", "0"), page) == (b"0", [(b"a", b"1")])
    # RESP3: HGETALL is a map, HRANDFIELD WITHVALUES nests its pairs.
    assert unordered(hgetall, b"%2\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n") == {
        b"a": b"1",
        b"b": b"2",
    }
    nested = b"*2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert unordered(("HRANDFIELD", "h", "5", "WITHVALUES"), nested) == [(b"a", b"1"), (b"b", b"2")]
