"""The clone's sorted-set commands against a real redis-server 7.0: the same commands, the same bytes.

Focused scripts (every discrepancy the random runs found is one of them),
large sets (a skip list in Redis, past 128 members or with a member over 64
bytes), blocking pops woken by a write on another connection or timing out,
WATCH, MULTI, and ZRANDMEMBER's random forms checked for what is
deterministic (shape, count, membership, errors).

A random test (Hypothesis) over sorted-set, string and keyspace commands on
the shared keys; a bounded budget in CI (``REDRAFT_DIFF_EXAMPLES`` raises it).
"""

from __future__ import annotations

import os
import time
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
    RedisServer,
    waiters_served,
    watch_replies,
)
from tests.differential.strategies import Cmd, keyspace, strings
from tests.differential.strategies_zsets import (
    blocking_zsets,
    filled_zset,
    random_zsets,
    zsets,
)

pytestmark = pytest.mark.timeout(300)

EXAMPLES = int(os.environ.get("REDRAFT_DIFF_EXAMPLES", "60"))
"""How many random sequences a run tries (CI: a few seconds)."""


def parse(reply: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


def script(d: Differ, text: str) -> None:
    """Run each line (``#`` starts a comment, ``''`` is an empty argument) on both servers."""
    for line in text.strip().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            d.check(*[a if a != "''" else "" for a in line.split()])


# -- focused scripts ------------------------------------------------------------------


ZADD_FLAGS = """
ZADD z 1 a 2 b 3 c
ZADD z NX 10 a 4 d            # only d
ZADD z XX 10 a 5 e            # only a's score
ZADD z XX CH 11 a 5 e
ZADD z GT 5 a 20 b            # b only
ZADD z LT 5 a 30 b            # a only
ZADD z GT CH 5 a 30 b 7 f     # f is new: GT does not stop an add
ZADD z GT XX CH 100 f 1 c
ZADD z LT XX CH 1 c 0 b
ZADD z CH 1 a 1 b 1 c
ZRANGE z 0 -1 WITHSCORES
ZADD z NX XX 1 a
ZADD z XX NX 1 a
ZADD z GT LT 1 a
ZADD z NX GT 1 a
ZADD z NX LT 1 a
ZADD z nx gt lt 1 a
ZADD z INCR 1 a 2 b
ZADD z NX
ZADD z 1
ZADD z 1 a 2
ZADD z CH
ZADD z x a
ZADD z 1 a x b                # the bad score refuses the whole command
ZADD z nan a
ZADD z '' a
ZADD z 1e400 a
ZADD z -1e400 a
ZADD z 1e-400 a
ZADD z 1e-310 a
ZADD z 1_0 a
ZADD z 0x1p3 a
ZADD z infinity a
ZADD z -INF b
ZADD z +inf c
ZRANGE z 0 -1 WITHSCORES
ZADD nokey XX 1 a
EXISTS nokey
ZADD nokey XX INCR 1 a
EXISTS nokey
ZADD nokey GT 1 a
ZRANGE nokey 0 -1 WITHSCORES
"""

INCR = """
ZADD z INCR 1 a
ZADD z INCR 2.5 a
ZINCRBY z 1 a
ZINCRBY z -3.5 a
ZINCRBY z 1 new
ZADD z INCR NX 1 a            # NX stops it: nil
ZADD z INCR XX 1 nope
ZADD z INCR GT -1 a
ZADD z INCR LT 1 a
ZADD z INCR GT 1 a
ZADD z INCR LT -1 a
ZADD z INCR CH 0 a
ZINCRBY z inf a
ZINCRBY z -inf a              # inf + -inf
ZSCORE z a
ZINCRBY z x a
ZINCRBY z nx a
ZINCRBY z incr a
ZINCRBY z 1
ZINCRBY z 1 a b
ZINCRBY nokey -0.0 m
ZSCORE nokey m
SET s v
ZINCRBY s 1 a
ZADD s INCR 1 a
"""

FORMATS = """
ZADD f 0.1 a 1e100 b 1.5 c -0.0 d inf e -inf f 1e16 g 1e17 h 123456789012345678 i
ZADD f 0.0001 j 1e-5 k 3.0000000000000004 l 0x10 m 1e-310 n -2.5e-3 o 1e300 p
ZRANGE f 0 -1 WITHSCORES
ZSCORE f a
ZMSCORE f a b c d e f g h i j k l m n o p nope
ZSCAN f 0
ZSCAN f 0 COUNT 1
ZPOPMIN f 3
ZPOPMAX f 2
ZRANGEBYSCORE f -inf +inf WITHSCORES
ZINCRBY f 0.2 a
ZADD f INCR 1e17 h
ZRANGE f 0 -1 WITHSCORES
"""

NEGATIVE_ZERO = """
ZADD a -0.0 m
ZSCORE a m
ZADD a -0 m2
ZRANGE a 0 -1 WITHSCORES
ZINCRBY a -0.0 x
ZSCORE a x
ZADD a 5 y
ZADD a -0.0 y
ZSCORE a y
ZUNION 1 a WEIGHTS -1 WITHSCORES
ZUNION 1 a WEIGHTS -0.0 WITHSCORES
ZINTER 2 a a WEIGHTS -1 -0.0 AGGREGATE MIN WITHSCORES
ZUNIONSTORE d 1 a WEIGHTS -1
ZRANGE d 0 -1 WITHSCORES
ZRANGESTORE d2 a 0 -1
ZRANGE d2 0 -1 WITHSCORES
ZRANGEBYSCORE a -0.0 0 WITHSCORES
ZRANGEBYSCORE a (-0.0 (0
ZCOUNT a 0 -0
"""

RANK_RANGES = """
ZADD z 1 a 2 b 3 c 4 d 5 e
ZRANGE z 0 -1
ZRANGE z 0 -1 WITHSCORES
ZRANGE z -100 100
ZRANGE z 3 1
ZRANGE z -2 -1
ZRANGE z 5 10
ZRANGE z 1 -1 REV
ZRANGE z -1 -1 REV WITHSCORES
ZRANGE z 0 0 REV
ZRANGE z -9223372036854775808 9223372036854775807
ZRANGE z x 1
ZRANGE z 0 1 LIMIT 0 1        # LIMIT needs BYSCORE or BYLEX
ZRANGE z 0 1 LIMIT 5 -1       # ... unless its count is -1
ZRANGE z 0 1 LIMIT 1
ZRANGE z 0 1 withscore
ZRANGE z 0 1 REV REV
ZREVRANGE z 0 1
ZREVRANGE z 0 -1 WITHSCORES
ZREVRANGE z 0 -1 REV
ZREVRANGE z 0 -1 LIMIT 0 1
ZREVRANGE z 0 -1 BYSCORE
ZRANK z a
ZRANK z e
ZRANK z nope
ZREVRANK z a
ZREVRANK z e
ZRANK nokey a
ZREVRANK nokey a
ZCARD z
ZCARD nokey
"""

SCORE_RANGES = """
ZADD z -inf ninf 1 a 2 b 2 bb 3 c 4.5 d inf pinf
ZRANGEBYSCORE z -inf +inf
ZRANGEBYSCORE z -inf +inf WITHSCORES
ZRANGEBYSCORE z (-inf (+inf
ZRANGEBYSCORE z inf inf
ZRANGEBYSCORE z (inf inf
ZRANGEBYSCORE z -inf (-inf
ZRANGEBYSCORE z 2 2
ZRANGEBYSCORE z (2 2
ZRANGEBYSCORE z (1 (3
ZRANGEBYSCORE z 3 1
ZRANGEBYSCORE z '' 1           # an empty end is 0
ZRANGEBYSCORE z ( 5
ZRANGEBYSCORE z 1e400 inf
ZRANGEBYSCORE z -1e400 0
ZRANGEBYSCORE z 0x1 0x3
ZRANGEBYSCORE z nan 5
ZRANGEBYSCORE z (nan 5
ZRANGEBYSCORE z 1 x
ZRANGEBYSCORE z 1 2x
ZRANGEBYSCORE z 1 '2 '
ZRANGEBYSCORE z -inf +inf LIMIT 1 2
ZRANGEBYSCORE z -inf +inf LIMIT 1 -1
ZRANGEBYSCORE z -inf +inf LIMIT 1 -5
ZRANGEBYSCORE z -inf +inf LIMIT 0 0
ZRANGEBYSCORE z -inf +inf LIMIT -1 2
ZRANGEBYSCORE z -inf +inf LIMIT 7 2
ZRANGEBYSCORE z -inf +inf LIMIT 8 2
ZRANGEBYSCORE z -inf +inf LIMIT 2
ZRANGEBYSCORE z -inf +inf LIMIT x 1
ZRANGEBYSCORE z 0 5 WITHSCORES LIMIT 1 2 WITHSCORES
ZRANGEBYSCORE z 0 1 BYSCORE
ZRANGEBYSCORE z 0 1 REV
ZREVRANGEBYSCORE z +inf -inf
ZREVRANGEBYSCORE z 3 (1 WITHSCORES
ZREVRANGEBYSCORE z (3 1
ZREVRANGEBYSCORE z 1 3
ZREVRANGEBYSCORE z +inf -inf LIMIT 1 3
ZREVRANGEBYSCORE z +inf -inf LIMIT 2 -1
ZRANGE z 1 3 BYSCORE
ZRANGE z (1 3 BYSCORE LIMIT 1 1 WITHSCORES
ZRANGE z 3 1 BYSCORE REV
ZRANGE z +inf -inf BYSCORE REV LIMIT 0 2
ZRANGE z 1 3 BYSCORE BYLEX
ZRANGE z 1 3 BYSCORE BYSCORE
ZCOUNT z -inf +inf
ZCOUNT z (1 3
ZCOUNT z 2 2
ZCOUNT z (2 (2
ZCOUNT z inf inf
ZCOUNT z x 1
ZCOUNT nokey (1 (1
ZCOUNT nokey x 1
"""

LEX_RANGES = """
ZADD w 0 a 0 b 0 c 0 d 0 e 0 '' 0 bb
ZRANGEBYLEX w - +
ZRANGEBYLEX w [b (d
ZRANGEBYLEX w (b [d
ZRANGEBYLEX w [bb [bb
ZRANGEBYLEX w (bb [bb
ZRANGEBYLEX w [ (b            # '[' alone: the empty member
ZRANGEBYLEX w ( +
ZRANGEBYLEX w + -
ZRANGEBYLEX w - -
ZRANGEBYLEX w + +
ZRANGEBYLEX w [z +
ZRANGEBYLEX w - + LIMIT 1 2
ZRANGEBYLEX w - + LIMIT 1 -1
ZRANGEBYLEX w - + LIMIT -1 1
ZRANGEBYLEX w - + WITHSCORES
ZRANGEBYLEX w a b
ZRANGEBYLEX w '' +
ZRANGEBYLEX w +x +
ZRANGEBYLEX w -x +
ZREVRANGEBYLEX w + -
ZREVRANGEBYLEX w (d [b
ZREVRANGEBYLEX w [b (d
ZREVRANGEBYLEX w + - LIMIT 1 2
ZRANGE w + - BYLEX REV LIMIT 0 -1
ZRANGE w [c - BYLEX REV
ZRANGE w - + BYLEX WITHSCORES
ZLEXCOUNT w - +
ZLEXCOUNT w [b (d
ZLEXCOUNT w (d [b
ZLEXCOUNT w a b
ZLEXCOUNT nokey - +
ZLEXCOUNT nokey a b
ZREMRANGEBYLEX w (a [c
ZRANGE w 0 -1
ZREMRANGEBYLEX w - +
EXISTS w
ZADD m 0 a 1 b 2 c 3 d 0 e    # mixed scores: Redis walks its listpack
ZRANGEBYLEX m [b [d
ZLEXCOUNT m [b [d
ZREVRANGEBYLEX m [d [b
ZRANGEBYLEX m - (c
ZRANGEBYLEX m [a +
ZREVRANGEBYLEX m + [c
ZREVRANGEBYLEX m (b -
ZRANGE m + [b BYLEX REV LIMIT 2 -5    # OFFSET passes members outside the range unchecked
ZRANGE m [b + BYLEX LIMIT 1 2
ZRANGE m - (c BYLEX LIMIT 1 3
ZRANGEBYLEX m [a + LIMIT 0 0
ZRANGEBYLEX m [a + LIMIT -1 2
ZREVRANGEBYLEX m [d - LIMIT 3 10
ZREMRANGEBYLEX m [a [b
ZRANGE m 0 -1
ZADD n 0.1 '' -1 1 7 zz        # found by the random runs
ZRANGE n + [1 BYLEX REV LIMIT 2 -5
"""

REMOVALS = """
ZADD z 1 a 2 b 3 c 4 d 5 e 6 f
ZREM z a zz
ZREM z zz
ZREM z b b c
ZREM nokey a
ZREM z
ZREMRANGEBYRANK z 5 10
ZREMRANGEBYRANK z -1 -1
ZREMRANGEBYRANK z 2 1
ZREMRANGEBYRANK z x 1
ZREMRANGEBYRANK nokey 0 -1
ZRANGE z 0 -1 WITHSCORES
ZADD z 1 a 2 b 3 c
ZREMRANGEBYSCORE z (1 2
ZREMRANGEBYSCORE z x 1
ZREMRANGEBYSCORE z 1 0
ZREMRANGEBYSCORE nokey -inf +inf
ZRANGE z 0 -1 WITHSCORES
ZREMRANGEBYSCORE z -inf +inf
EXISTS z
ZADD z 1 a
ZREMRANGEBYRANK z 0 -1
EXISTS z
ZREMRANGEBYLEX nokey - +
ZREMRANGEBYLEX z x +
ZREMRANGEBYRANK z 0
"""

POPS = """
ZADD z 1 a 2 b 3 c 4 d 5 e
ZPOPMIN z
ZPOPMAX z
ZPOPMIN z 2
ZPOPMAX z 0
ZPOPMIN z -1
ZPOPMIN z x
ZPOPMIN z 1 2
ZPOPMAX z 10
EXISTS z
ZPOPMIN z
ZPOPMIN z 0
ZPOPMAX nokey 3
ZADD z 1 a 2 b 3 c 4 d 5 e
ZMPOP 1 z MIN
ZMPOP 1 z MAX COUNT 2
ZMPOP 2 nokey z min COUNT 10
ZMPOP 1 z MIN
ZMPOP 1 nokey MIN
ZMPOP 0 z MIN
ZMPOP -1 z MIN
ZMPOP x z MIN
ZMPOP 5 z MIN
ZMPOP 1 z MIN COUNT 0
ZMPOP 1 z MIN COUNT -1
ZMPOP 1 z MIN COUNT x
ZMPOP 1 z MIN COUNT 1 COUNT 2
ZMPOP 1 z MIN COUNT
ZMPOP 1 z BAD
ZMPOP 1 z MIN EXTRA
ZMPOP 1 z
SET s v
ZMPOP 1 s MIN
ZMPOP 2 nokey s MIN
ZADD z 1 a
ZMPOP 2 z s MIN
ZPOPMIN s
ZPOPMAX s 0
"""

SET_OPERATIONS = """
ZADD z1 1 a 2 b 3 c
ZADD z2 10 b 20 c 30 d
SADD s a x c
ZUNION 2 z1 z2
ZUNION 2 z1 z2 WITHSCORES
ZUNION 3 z1 z2 s WITHSCORES
ZUNION 2 z1 z2 WEIGHTS 2 0.5 WITHSCORES
ZUNION 2 z1 z2 AGGREGATE MIN WITHSCORES
ZUNION 2 z1 z2 AGGREGATE max WITHSCORES
ZUNION 2 z1 s WEIGHTS inf 0 WITHSCORES
ZUNION 2 z1 s WEIGHTS inf -inf WITHSCORES
ZUNION 2 z1 s WEIGHTS 0 inf AGGREGATE MAX WITHSCORES
ZUNION 2 z1 nokey WITHSCORES
ZUNION 2 z1 z1 WITHSCORES
ZINTER 2 z1 z2 WITHSCORES
ZINTER 3 z1 z2 s WITHSCORES
ZINTER 2 z1 s WEIGHTS inf 0 WITHSCORES
ZINTER 2 z1 s WEIGHTS -inf inf WITHSCORES
ZINTER 2 z1 z2 AGGREGATE MIN WITHSCORES
ZINTER 2 z1 z1 AGGREGATE SUM
ZINTER 2 z1 nokey
ZINTER 1 s WITHSCORES
ZDIFF 2 z1 z2 WITHSCORES
ZDIFF 2 z1 s
ZDIFF 2 s z1 WITHSCORES
ZDIFF 2 z1 z1
ZDIFF 1 nokey
ZDIFF 2 z1 s WEIGHTS 1 1
ZDIFF 2 z1 s AGGREGATE SUM
ZINTERCARD 2 z1 z2
ZINTERCARD 3 z1 z2 s
ZINTERCARD 2 z1 z2 LIMIT 1
ZINTERCARD 2 z1 z2 LIMIT 0
ZINTERCARD 2 z1 z2 LIMIT -1
ZINTERCARD 2 z1 z2 LIMIT x
ZINTERCARD 2 z1 z2 LIMIT
ZINTERCARD 2 z1 z2 WITHSCORES
ZINTERCARD 2 z1 z2 WEIGHTS 1 1
ZINTERCARD 1 nokey
ZUNION 0 z1
ZUNION -1 z1
ZUNION x z1
ZUNION 3 z1 z2
ZINTER 2 z1 z2 WEIGHTS 1
ZINTER 2 z1 z2 WEIGHTS 1 x
ZINTER 2 z1 z2 WEIGHTS 1 nan
ZINTER 2 z1 z2 AGGREGATE avg
ZINTER 2 z1 z2 AGGREGATE
ZINTER 2 z1 z2 WITHSCORES WITHSCORES
ZINTER 2 z1 z2 FOO
ZINTERCARD 0 z1
ZUNIONSTORE d 0 z1
ZUNIONSTORE d 2 z1 z2 WITHSCORES
ZUNIONSTORE d 2 z1 z2 WEIGHTS 1 2 AGGREGATE MAX
ZRANGE d 0 -1 WITHSCORES
ZINTERSTORE d 3 z1 z2 s
ZRANGE d 0 -1 WITHSCORES
ZDIFFSTORE d 2 z1 s
ZRANGE d 0 -1 WITHSCORES
ZDIFFSTORE d 2 z1 z1
EXISTS d
ZINTERSTORE d 2 z1 nokey
ZUNIONSTORE z1 2 z1 z2
ZRANGE z1 0 -1 WITHSCORES
SET str v
ZUNION 2 z1 str
ZUNION 1 str WEIGHTS x
ZUNIONSTORE d 1 str WEIGHTS x
ZINTERCARD 2 z1 str
ZDIFF 2 nokey str
ZUNIONSTORE str 1 z2
TYPE str
ZINTERSTORE z2 1 nokey
EXISTS z2
"""

STORES = """
ZADD z 1 a 2 b 3 c 4 d
ZRANGESTORE d z 0 1
ZRANGE d 0 -1 WITHSCORES
ZRANGESTORE d z (1 +inf BYSCORE LIMIT 1 1
ZRANGE d 0 -1 WITHSCORES
ZRANGESTORE d z [b + BYLEX REV
ZRANGE d 0 -1 WITHSCORES
ZRANGESTORE d z + [b BYLEX REV
ZRANGE d 0 -1 WITHSCORES
ZRANGESTORE d z 0 -1 REV
ZRANGE d 0 -1
ZRANGESTORE d z 5 10
EXISTS d
ZRANGESTORE d nokey 0 -1
ZRANGESTORE d z 0 -1 WITHSCORES
ZRANGESTORE d z 0 -1 LIMIT 0 1
ZRANGESTORE d z x 1
ZRANGESTORE d z
ZRANGESTORE z z 1 2
ZRANGE z 0 -1 WITHSCORES
SET str v
ZRANGESTORE str z 0 -1
TYPE str
SET str v
ZRANGESTORE d str 0 -1
ZADD ex 1 a
EXPIRE ex 100
ZUNIONSTORE ex 1 z
TTL ex
EXPIRE ex 100
ZRANGESTORE ex z 0 0
TTL ex
ZINTERSTORE ex 2 z nokey
EXISTS ex
"""

RANDOM_WHOLE = """
ZADD z 1 a 2 b 3 c
ZRANDMEMBER z 3
ZRANDMEMBER z 100 WITHSCORES
ZRANDMEMBER z 0
ZRANDMEMBER z 0 WITHSCORES
ZRANDMEMBER z -9223372036854775808
ZRANDMEMBER z 9223372036854775807 WITHSCORES
ZRANDMEMBER z 4611686018427387903 WITHSCORES
ZRANDMEMBER z 4611686018427387904 WITHSCORES
ZRANDMEMBER z -4611686018427387904 WITHSCORES
ZRANDMEMBER nokey 4611686018427387904 WITHSCORES
ZRANDMEMBER z 9223372036854775807
ZRANDMEMBER z 1 WITHSCORES x
ZRANDMEMBER z 1 scores
ZRANDMEMBER z x WITHSCORES
ZRANDMEMBER z 01
ZRANDMEMBER nokey
ZRANDMEMBER nokey 5
ZRANDMEMBER nokey 5 WITHSCORES
ZRANDMEMBER nokey x
ZADD one 7 m
ZRANDMEMBER one
ZRANDMEMBER one -3 WITHSCORES
ZRANDMEMBER one 1
SET s v
ZRANDMEMBER s
ZRANDMEMBER s 0
"""

SCANS = """
ZADD z 1 a 2 b 3 c 1.5 ab 0.1 x
ZSCAN z 0
ZSCAN z 5                      # a listpack is answered whole, whatever the cursor
ZSCAN z 0 COUNT 1
ZSCAN z 0 MATCH a*
ZSCAN z 0 MATCH a* COUNT 2
ZSCAN z 0 MATCH [ab]
ZSCAN z 0 COUNT 0
ZSCAN z 0 COUNT -1
ZSCAN z 0 COUNT x
ZSCAN z 0 TYPE zset
ZSCAN z 0 MATCH
ZSCAN z 0 FOO bar
ZSCAN z x
ZSCAN z -1
ZSCAN z ''
ZSCAN z 18446744073709551616
ZSCAN nokey 0
ZSCAN nokey 0 BADOPT
ZSCAN nokey x
SET s v
ZSCAN s 0
ZSCAN z
"""

WRONG_TYPES = """
SET s v
RPUSH l x
ZADD s 1 a
ZINCRBY l 1 a
ZREM s a
ZCARD s
ZSCORE s a
ZMSCORE l a
ZRANK s a
ZREVRANK s a
ZCOUNT s 0 1
ZCOUNT s x 1                   # the range's error comes first
ZLEXCOUNT s - +
ZRANGE s 0 -1
ZRANGE s x 1
ZRANGEBYSCORE l 0 1
ZREVRANGEBYSCORE s 1 0
ZRANGEBYLEX s - +
ZREVRANGEBYLEX s + -
ZREVRANGE s 0 1
ZRANGESTORE d s 0 -1
ZREMRANGEBYRANK s 0 1
ZREMRANGEBYSCORE s 0 1
ZREMRANGEBYLEX s - +
ZPOPMIN s
ZPOPMAX l 2
ZMPOP 1 s MIN
ZRANDMEMBER s
ZRANDMEMBER s 2
ZUNION 1 s
ZINTER 2 l s
ZDIFF 1 s
ZUNIONSTORE d 1 s
ZINTERSTORE d 1 l
ZDIFFSTORE d 1 s
ZINTERCARD 1 s
ZSCAN s 0
BZPOPMIN s 0.01
BZPOPMAX nokey l 0.01
BZMPOP 0.01 1 s MIN
TYPE s
TYPE l
"""


@pytest.mark.parametrize(
    "text",
    [
        ZADD_FLAGS,
        INCR,
        FORMATS,
        NEGATIVE_ZERO,
        RANK_RANGES,
        SCORE_RANGES,
        LEX_RANGES,
        REMOVALS,
        POPS,
        SET_OPERATIONS,
        STORES,
        RANDOM_WHOLE,
        SCANS,
        WRONG_TYPES,
    ],
    ids=[
        "zadd-flags",
        "incr",
        "formats",
        "negative-zero",
        "rank-ranges",
        "score-ranges",
        "lex-ranges",
        "removals",
        "pops",
        "set-operations",
        "stores",
        "random-whole",
        "scans",
        "wrongtype",
    ],
)
def test_zset_scripts_match(differ: Differ, text: str) -> None:
    script(differ, text)


def test_expired_sorted_sets_are_gone_for_every_command(differ: Differ) -> None:
    for line in ["ZADD z 1 a 2 b", "ZADD y 1 a", "PEXPIRE z 1", "PEXPIRE y 1"]:
        differ.check(*line.split())
    time.sleep(0.02)
    script(
        differ,
        """
        ZCARD z
        ZSCORE z a
        ZRANGE z 0 -1
        ZUNION 1 z
        ZPOPMIN z
        ZADD z XX 5 a
        EXISTS z
        ZRANGESTORE d y 0 -1
        EXISTS d
        ZADD y 3 c
        ZRANGE y 0 -1 WITHSCORES
        TTL y
        """,
    )


def test_members_with_odd_bytes_match(differ: Differ) -> None:
    odd = [b"", b" ", b"\x00", b"\xff\xfe", b"a b", b"[a", b"(a", b"-", b"+", b"\r\n", b"*"]
    differ.check("ZADD", "z", *(x for m in odd for x in (b"0", m)))
    differ.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    differ.check("ZRANGEBYLEX", "z", b"[\x00", b"(\xff")
    differ.check("ZRANGEBYLEX", "z", b"(", b"[\xff\xff")
    differ.check("ZLEXCOUNT", "z", b"[[a", b"+")
    differ.check("ZSCAN", "z", "0", "MATCH", "\\*")
    differ.check("ZRANGEBYSCORE", "z", b"0\x00junk", b"(1")
    differ.check("ZLEXCOUNT", "z", b"-\x00junk", b"+")
    differ.check("ZMSCORE", "z", *odd, b"nope")


# -- large sets: a skip list in Redis -----------------------------------------------


def test_large_sets_range_alike(differ: Differ) -> None:
    pairs = [x for i in range(300) for x in (str(i % 37 - 10), f"m{i:03d}")]
    differ.check("ZADD", "big", *pairs)
    differ.check("ZADD", "lex", *(x for i in range(200) for x in ("0", f"k{i:03d}")))
    script(
        differ,
        """
        ZCARD big
        ZRANGE big 0 9 WITHSCORES
        ZRANGE big -10 -1 REV WITHSCORES
        ZRANGE big 100 120
        ZRANGEBYSCORE big (3 5 WITHSCORES
        ZRANGEBYSCORE big -inf +inf LIMIT 150 10
        ZREVRANGEBYSCORE big +inf (20 LIMIT 3 5 WITHSCORES
        ZCOUNT big (0 10
        ZRANK big m150
        ZREVRANK big m150
        ZRANGEBYLEX lex [k050 (k060
        ZREVRANGEBYLEX lex (k150 - LIMIT 5 5
        ZLEXCOUNT lex (k010 +
        ZREMRANGEBYLEX lex - [k010
        ZREMRANGEBYRANK big 0 49
        ZREMRANGEBYSCORE big (20 +inf
        ZCARD big
        ZADD big -0.0 negzero
        ZSCORE big negzero
        ZPOPMIN big 5
        ZPOPMAX big 3
        ZUNIONSTORE u 2 big lex WEIGHTS 2 1
        ZRANGE u 0 20 WITHSCORES
        ZINTERCARD 2 big u
        ZDIFFSTORE d 2 big lex
        ZCARD d
        ZRANGESTORE r big 0 199
        ZCARD r
        ZRANDMEMBER lex 500 WITHSCORES
        ZUNION 2 big big AGGREGATE MAX WITHSCORES
        """,
    )


def test_a_long_member_makes_a_skip_list_alike(differ: Differ) -> None:
    long = "x" * 65
    script(
        differ,
        f"""
        ZADD z 1 {long} -0.0 a
        ZSCORE z a
        ZADD z -0.0 b
        ZSCORE z b
        ZRANGE z 0 -1 WITHSCORES
        ZADD y -0.0 a 1 {long} -0.0 b
        ZRANGE y 0 -1 WITHSCORES
        """,
    )


def walk(
    conn: Conn, key: str, *opts: str | int, limit: int = 10_000
) -> tuple[dict[bytes, bytes], int]:
    """A whole ZSCAN walk: every member and score returned, and how many calls it took."""
    cursor = b"0"
    seen: dict[bytes, bytes] = {}
    for calls in range(1, limit + 1):
        reply = parse(conn.call("ZSCAN", key, cursor, *opts))
        assert isinstance(reply, list), reply
        cursor, page = reply
        for member, score in zip(page[::2], page[1::2], strict=True):
            assert member not in seen, "a member came twice in a walk of an unchanging set"
            seen[member] = score
        if cursor == b"0":
            return seen, calls
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("opts", [(), ("COUNT", 7), ("COUNT", 7, "MATCH", "m1*"), ("COUNT", 1000)])
def test_a_walk_over_a_large_set_returns_the_same_members(
    differ: Differ, opts: tuple[Any, ...]
) -> None:
    differ.check("ZADD", "big", *(x for i in range(300) for x in (f"{i / 7}", f"m{i}")))
    theirs, _ = walk(differ.redis, "big", *opts)
    ours, calls = walk(differ.clone, "big", *opts)
    assert theirs == ours
    count = int(opts[1]) if opts[:1] == ("COUNT",) else 10
    assert calls == max(1, -(-300 // count))


# -- random by nature ----------------------------------------------------------------


def check_random(d: Differ, *args: bytes | str | int) -> None:
    """ZRANDMEMBER: the same errors and shape; members (and their scores) from the set."""
    theirs, ours = d.redis.call(*args), d.clone.call(*args)
    d.history.append((args, theirs, ours))
    fail = f"{d.report()}\n!! {args!r}\n   redis {theirs!r}\n   clone {ours!r}"
    settled = (b"-", b"$-1", b"_", b"*0\r\n")
    if theirs.startswith(settled) or ours.startswith(settled):
        assert theirs == ours, fail
        return
    key = args[1]
    scores = dict(_pairs(parse(d.clone.call("ZRANGE", key, "0", "-1", "WITHSCORES"))))
    got = [parse(theirs), parse(ours)]
    assert type(got[0]) is type(got[1]), fail
    if not isinstance(got[1], list):
        assert got[1] in scores, fail
        return
    assert len(got[0]) == len(got[1]), fail
    withscores = len(args) == 4
    if withscores:  # RESP3 nests each member and score, RESP2 does not
        assert type(got[0][0]) is type(got[1][0]), fail
    picks = _pairs(got[1]) if withscores else [(m, scores.get(m)) for m in got[1]]
    assert all(scores.get(m) == s for m, s in picks), fail
    if int(args[2]) > 0:
        assert len({m for m, _ in picks}) == len(picks), fail


def _pairs(reply: list[Any]) -> list[tuple[Any, Any]]:
    """``(member, score)`` of a WITHSCORES reply: flat in RESP2, ``[member, score]`` arrays
    (scores as doubles) in RESP3."""
    if reply and isinstance(reply[0], list):
        return [(member, score) for member, score in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))


def test_random_forms_match_in_what_is_deterministic(differ: Differ) -> None:
    differ.check("ZADD", "z", *(x for i in range(30) for x in (str(i), f"m{i}")))
    differ.check("ZADD", "big", *(x for i in range(200) for x in (f"{i}.5", f"m{i}")))
    for key in ("z", "big"):
        for args in ([], [1], [2], [5], [20], [29], [-1], [-5], [-100], [150]):
            check_random(differ, "ZRANDMEMBER", key, *args)
            if args:
                check_random(differ, "ZRANDMEMBER", key, *args, "WITHSCORES")
    check_random(differ, "ZRANDMEMBER", "nokey", 3)


# -- RESP3 ---------------------------------------------------------------------------------


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


def test_resp3_replies_without_scores_match(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    """Members, counts, ranks and nulls (``_``) are the same in RESP3."""
    commands = [
        line.split()
        for line in [
            "ZADD z 1 a 2 b 3 c",
            "ZCARD z",
            "ZRANK z b",
            "ZRANK z nope",
            "ZSCORE z nope",
            "ZSCORE nokey a",
            "ZMSCORE nokey a b",
            "ZRANGE z 0 -1",
            "ZRANGEBYLEX z - +",
            "ZRANDMEMBER z 5",
            "ZRANDMEMBER nokey",
            "ZMPOP 1 nokey MIN",
            "ZPOPMIN nokey",
            "ZSCAN z 0",
            "ZUNION 1 z",
            "ZREM z a",
        ]
    ]
    assert resp3_replies(redis_server.port, commands) == resp3_replies(clone_server.port, commands)


@pytest.mark.parametrize(
    "command",
    ["ZSCORE z a", "ZINCRBY z 1 a", "ZRANGE z 0 -1 WITHSCORES", "ZPOPMIN z 1"],
)
def test_resp3_scores_are_doubles(
    redis_server: RedisServer, clone_server: CloneServer, command: str
) -> None:
    commands = [["ZADD", "z", "0.1", "a", "2", "b"], command.split()]
    assert resp3_replies(redis_server.port, commands) == resp3_replies(clone_server.port, commands)


RESP3_SCORES = """
ZADD z 0.1 a 2 b 3 c
ZSCORE z a
ZSCORE z nope
ZMSCORE z a nope c
ZMSCORE nokey a
ZINCRBY z 1 a
ZINCRBY z 0.2 new
ZADD z INCR 1 b
ZADD z XX INCR 1 nope
ZADD z NX INCR 1 a
ZADD z GT INCR -1 b
ZRANGE z 0 -1 WITHSCORES
ZRANGE z 0 -1
ZRANGE z (1 +inf BYSCORE LIMIT 0 2 WITHSCORES
ZRANGE z 0 -1 REV WITHSCORES
ZRANGEBYSCORE z -inf +inf WITHSCORES
ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 1 1
ZREVRANGE z 0 1 WITHSCORES
ZRANGE nokey 0 -1 WITHSCORES
ZRANGE z 5 9 WITHSCORES
ZUNION 2 z nokey WITHSCORES
ZINTER 1 z WEIGHTS 2 WITHSCORES
ZDIFF 1 z WITHSCORES
ZUNION 1 z
ZRANDMEMBER z 10 WITHSCORES   # the whole set: no draw
ZSCAN z 0                     # scores stay bulk strings
ZRANGESTORE d z 0 -1
ZPOPMIN z                     # no count: flat, a double
ZPOPMAX z 1                   # a count: pairs
ZPOPMIN z 2
ZPOPMIN nokey
ZPOPMIN nokey 1
ZPOPMAX z 0
ZADD z inf top -inf bottom 1e17 big 123456789.123 odd 5 e 6 f
ZRANGE z 0 -1 WITHSCORES
ZMPOP 1 z MIN
ZMPOP 2 nokey z MAX COUNT 2
ZMPOP 1 nokey MIN
BZPOPMIN z 0
BZPOPMAX nokey z 0
BZMPOP 0 1 z MIN COUNT 5
BZPOPMIN nokey 0.01
BZMPOP 0.01 1 nokey MAX
ZADD z 1.5 a 2.5 b
MULTI
ZSCORE z a
ZMSCORE z a b
ZRANGE z 0 -1 WITHSCORES
ZINCRBY z 1 a
ZPOPMIN z 1
BZPOPMAX z 0
BZPOPMIN nokey 0
ZPOPMIN z
EXEC
"""


def test_resp3_scores_and_pairs_match(differ3: Differ) -> None:
    """Every sorted-set reply with a score, byte for byte over RESP3: scores are doubles, members
    with scores ``[member, score]`` arrays (flat for ZPOPMIN without a count and BZPOP*), ZSCAN's
    scores bulk strings, in MULTI too."""
    script(differ3, RESP3_SCORES)


def test_resp3_waiting_pops_are_woken_with_doubles(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    """A blocked pop's reply, sent when a later write wakes it, takes RESP3's form too."""
    replies = []
    for port in (redis_server.port, clone_server.port):
        pop, mpop, writer = Conn(port), Conn(port), Conn(port)
        try:
            for conn in (pop, mpop):
                assert conn.call("HELLO", "3").startswith(b"%")
            writer.call("FLUSHALL")
            pop.send(["BZPOPMIN", "q", "5"])
            mpop.send(["BZMPOP", "5", "1", "q2", "MAX", "COUNT", "5"])
            with pytest.raises(TimeoutError):
                mpop.reply(timeout=0.1)
            writer.call("ZINCRBY", "q", "0.1", "x")
            writer.call("ZADD", "q2", "2", "x", "1e-7", "y")
            replies.append([pop.reply(timeout=5), mpop.reply(timeout=5)])
        finally:
            for conn in (pop, mpop, writer):
                conn.close()
    assert (
        replies[0]
        == replies[1]
        == [
            b"*3\r\n$1\r\nq\r\n$1\r\nx\r\n,0.10000000000000001\r\n",
            b"*2\r\n$2\r\nq2\r\n*2\r\n*2\r\n$1\r\nx\r\n,2\r\n*2\r\n$1\r\ny\r\n,9.9999999999999995e-08\r\n",
        ]
    )


# -- blocking ----------------------------------------------------------------------------


def test_blocking_pops_time_out_alike(differ: Differ) -> None:
    script(
        differ,
        """
        BZPOPMIN nokey 0.05
        BZPOPMAX a b 0.05
        BZMPOP 0.05 2 a b MIN
        BZMPOP 0.05 1 a MAX COUNT 3
        BZPOPMIN nokey 1e-10
        BZPOPMIN nokey x
        BZPOPMIN nokey -1
        BZPOPMIN nokey inf
        BZMPOP x 1 a MIN
        BZMPOP x 0 a MIN
        BZMPOP x 1 a MIN COUNT 0
        BZMPOP 0 1 a
        BZMPOP 0 2 a MIN
        ZADD z 1 a 2 b 3 c
        BZPOPMIN nokey z 0
        BZPOPMAX z 0
        BZMPOP 0 2 nokey z MIN COUNT 5
        EXISTS z
        """,
    )


@pytest.mark.parametrize(
    ("wait", "wake", "woken"),
    [
        (["BZPOPMIN", "q", "q2", "5"], ["ZADD", "q2", "2", "x", "1", "y"], [b"q2", b"y", b"1"]),
        (["BZPOPMAX", "q", "5"], ["ZADD", "q", "2", "x", "1", "y"], [b"q", b"x", b"2"]),
        (
            ["BZPOPMIN", "q", "5"],
            ["ZINCRBY", "q", "0.1", "x"],
            [b"q", b"x", b"0.10000000000000001"],
        ),
        (
            ["BZMPOP", "5", "2", "q", "q2", "MAX", "COUNT", "5"],
            ["ZADD", "q", "2", "x", "1", "y"],
            [b"q", [[b"x", b"2"], [b"y", b"1"]]],
        ),
        (["BZPOPMIN", "q", "5"], ["ZUNIONSTORE", "q", "1", "src"], [b"q", b"s", b"1"]),
        (["BZPOPMIN", "q", "5"], ["ZRANGESTORE", "q", "src", "0", "0"], [b"q", b"s", b"1"]),
    ],
    ids=["bzpopmin", "bzpopmax", "zincrby", "bzmpop", "zunionstore", "zrangestore"],
)
def test_a_waiting_pop_is_woken_alike(
    redis_server: RedisServer,
    clone_server: CloneServer,
    wait: list[str],
    wake: list[str],
    woken: list[Any],
) -> None:
    for port in (redis_server.port, clone_server.port):
        waiter, writer = Conn(port), Conn(port)
        try:
            writer.call("FLUSHALL")
            writer.call("ZADD", "src", "1", "s")
            waiter.send(wait)
            waiter.send(["ZCARD", "q"])
            with pytest.raises(TimeoutError):
                waiter.reply(timeout=0.2)
            writer.call(*wake)
            assert parse(waiter.reply(timeout=5)) == woken, port
            assert waiter.reply(timeout=5) == writer.call("ZCARD", "q")
        finally:
            waiter.close()
            writer.close()


READY_FIRST_CASES = [
    # (waiting, in order; writes; in one MULTI/EXEC; read after; the waiters' replies)
    (
        ["BZPOPMAX z1 z2 5"],
        ["ZADD z2 1 a 2 b", "ZADD z1 3 c"],
        True,
        ["ZRANGE z1 0 -1"],
        [[b"z2", b"b", b"2"]],
    ),
    (
        ["BZPOPMIN z1 z2 5", "BZMPOP 5 2 z1 z2 MAX"],
        ["ZADD z2 1 a 2 b", "ZADD z1 3 c"],
        True,
        ["ZRANGE z1 0 -1", "EXISTS z2"],
        [[b"z2", b"a", b"1"], [b"z2", [[b"b", b"2"]]]],
    ),
    # The key made ready first emptied by the waiter before: the next one made ready serves.
    (
        ["BZMPOP 5 3 z1 z2 z3 MIN COUNT 5", "BZPOPMIN z1 z3 z2 5"],
        ["ZADD z3 1 a", "ZADD z2 2 b 3 c", "ZADD z1 4 d"],
        True,
        ["ZRANGE z1 0 -1", "ZRANGE z2 0 -1", "EXISTS z3"],
        [[b"z3", [[b"a", b"1"]]], [b"z2", b"b", b"2"]],
    ),
    # Writes one by one: the first wakes the waiter, which takes from it, as before.
    (
        ["BZPOPMIN z1 z2 5"],
        ["ZADD z2 1 a", "ZADD z1 3 c"],
        False,
        ["ZRANGE z1 0 -1"],
        [[b"z2", b"a", b"1"]],
    ),
]


@pytest.mark.parametrize(
    ("waiting", "writes", "multi", "after", "served"),
    READY_FIRST_CASES,
    ids=["bzpopmax-exec", "bzpopmin-and-bzmpop-exec", "ready-key-emptied", "separate-writes"],
)
def test_waiters_are_served_from_the_key_made_ready_first_alike(
    redis_server: RedisServer,
    clone_server: CloneServer,
    waiting: list[str],
    writes: list[str],
    multi: bool,
    after: list[str],
    served: list[Any],
) -> None:
    """Redis 7.0 serves a waiter from the key made ready first, not from its first key."""
    theirs, ours = (
        waiters_served(
            port,
            [line.split() for line in waiting],
            [line.split() for line in writes],
            multi=multi,
            after=[line.split() for line in after],
        )
        for port in (redis_server.port, clone_server.port)
    )
    first = 1 if multi else len(writes)
    assert [parse(r) for r in theirs[first : first + len(waiting)]] == served  # redis-server's
    assert ours == theirs


def test_a_pop_waits_through_writes_that_add_nothing_alike(
    redis_server: RedisServer, clone_server: CloneServer
) -> None:
    for port in (redis_server.port, clone_server.port):
        waiter, writer = Conn(port), Conn(port)
        try:
            writer.call("FLUSHALL")
            waiter.send(["BZPOPMIN", "q", "0.5"])
            assert writer.call("ZADD", "q", "XX", "1", "a") == b":0\r\n"
            assert writer.call("ZINTERSTORE", "q", "1", "nokey") == b":0\r\n"
            assert waiter.reply(timeout=5) == b"*-1\r\n"
        finally:
            waiter.close()
            writer.close()


def test_blocking_pops_inside_multi_do_not_wait(differ: Differ) -> None:
    script(
        differ,
        """
        MULTI
        BZPOPMIN nokey 0
        BZMPOP 0 1 nokey MIN
        ZADD z 1 a
        BZPOPMAX z 0
        BZPOPMAX z 0
        EXEC
        """,
    )


# -- transactions --------------------------------------------------------------------


ZSET_WATCH_CASES = [
    # (what the other connection does between WATCH k and EXEC, setup before WATCH)
    ("ZADD k 1 a", "ZADD k 1 a"),  # nothing changed
    ("ZADD k 2 a", "ZADD k 1 a"),
    ("ZADD k 1 b", "ZADD k 1 a"),
    ("ZADD k 1 a", ""),
    ("ZADD k NX 2 a", "ZADD k 1 a"),
    ("ZADD k XX 1 b", "ZADD k 1 a"),
    ("ZADD k XX 1 b", ""),
    ("ZADD k GT 0 a", "ZADD k 1 a"),
    ("ZADD k -0.0 a", "ZADD k 0 a"),  # equal scores
    ("ZINCRBY k 0 a", "ZADD k 1 a"),
    ("ZINCRBY k 1 a", "ZADD k 1 a"),
    ("ZADD k INCR 0 a", "ZADD k 1 a"),
    ("ZREM k x", "ZADD k 1 a"),
    ("ZREM k a", "ZADD k 1 a 2 b"),
    ("ZREM k a", "ZADD k 1 a"),
    ("ZREM k a", ""),
    ("ZREMRANGEBYRANK k 5 10", "ZADD k 1 a"),
    ("ZREMRANGEBYRANK k 0 0", "ZADD k 1 a 2 b"),
    ("ZREMRANGEBYSCORE k 5 10", "ZADD k 1 a"),
    ("ZREMRANGEBYSCORE k 1 1", "ZADD k 1 a"),
    ("ZREMRANGEBYLEX k [x +", "ZADD k 0 a"),
    ("ZREMRANGEBYLEX k - +", "ZADD k 0 a 0 b"),
    ("ZPOPMIN k", "ZADD k 1 a"),
    ("ZPOPMAX k 0", "ZADD k 1 a"),
    ("ZPOPMIN k", ""),
    ("ZMPOP 1 k MIN", "ZADD k 1 a 2 b"),
    ("ZMPOP 2 other k MIN", "ZADD other 1 a;ZADD k 1 a"),
    ("BZPOPMIN k 0.01", "ZADD k 1 a"),
    ("BZPOPMIN k 0.01", ""),
    ("ZRANGE k 0 -1", "ZADD k 1 a"),
    ("ZSCAN k 0", "ZADD k 1 a"),
    ("ZRANDMEMBER k", "ZADD k 1 a"),
    ("ZUNION 1 k", "ZADD k 1 a"),
    ("ZRANGESTORE k src 0 -1", "ZADD src 1 a;ZADD k 1 a"),  # the same members still count
    ("ZRANGESTORE k src 5 10", "ZADD src 1 a"),  # k missing, stays so
    ("ZRANGESTORE k src 5 10", "SET k v"),  # deleted
    ("ZRANGESTORE other k 0 -1", "ZADD k 1 a"),
    ("ZUNIONSTORE k 1 src", "ZADD src 1 a;ZADD k 1 a"),
    ("ZINTERSTORE k 2 src nokey", "ZADD src 1 a"),
    ("ZINTERSTORE k 2 src nokey", "ZADD k 1 a"),
    ("ZDIFFSTORE k 1 src", "SADD src a"),
    ("ZUNIONSTORE other 1 k", "ZADD k 1 a"),
    ("ZUNIONSTORE k 1 src WEIGHTS x", "ZADD src 1 a;ZADD k 1 a"),  # an error changes nothing
]


@pytest.mark.parametrize(("between", "setup"), ZSET_WATCH_CASES)
def test_exec_aborts_when_redis_does(
    redis_server: RedisServer, clone_server: CloneServer, between: str, setup: str
) -> None:
    replies = [
        watch_replies(port, between, setup, ("ZCARD", "k"))
        for port in (redis_server.port, clone_server.port)
    ]
    assert replies[0] == replies[1], (between, setup, replies)


def test_zset_commands_inside_multi_match(differ: Differ) -> None:
    script(
        differ,
        """
        ZADD z 1 a 2 b
        MULTI
        ZADD z 3 c
        ZADD z NX XX 1 a
        ZADD z x a
        ZINCRBY z 1 a
        ZREM z b
        ZRANGE z 0 -1 WITHSCORES
        ZRANGE z 0 1 LIMIT 0 1
        ZRANGEBYSCORE z x 1
        ZPOPMIN z x
        ZPOPMIN z 1 2
        ZMPOP 0 z MIN
        ZUNIONSTORE d 1 z WEIGHTS x
        ZUNIONSTORE d 1 z
        ZSCAN z x
        ZSCAN z 0 COUNT 0
        ZRANDMEMBER z 0
        ZCARD d
        EXEC
        MULTI
        ZADD z 1
        EXEC
        MULTI
        ZRANGE z 0
        EXEC
        ZRANGE z 0 -1 WITHSCORES
        """,
    )


# -- random sequences -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer, clone_server: CloneServer) -> Differ:
    """One connection to each server for the whole module (the random test resets it)."""
    return Differ(redis_server.port, clone_server.port)


def is_random(args: Args) -> bool:
    """Whether the reply of ZRANDMEMBER ``args`` depends on a draw."""
    if str(args[0]).upper() != "ZRANDMEMBER" or len(args) < 2:
        return False
    if len(args) == 2:
        return True
    try:
        count = int(str(args[2]))
    except ValueError:
        return False
    return -100 < count < 100 and count != 0 and str(count) == str(args[2])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_zset_sequences_match(data: st.DataObject, shared: Differ) -> None:
    random_sequence(data, shared)


@settings(
    max_examples=max(1, EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_zset_sequences_match_in_resp3(data: st.DataObject, shared3: Differ) -> None:
    """The same over RESP3: scores are doubles, WITHSCORES and counted pops ``[member, score]``
    arrays, nulls ``_``."""
    random_sequence(data, shared3)


def random_sequence(data: st.DataObject, d: Differ) -> None:
    d.reset()
    family = st.one_of(
        zsets(), zsets(), zsets(), random_zsets(), blocking_zsets(), strings(), keyspace()
    )
    sequence: list[Cmd] = data.draw(st.lists(filled_zset(), min_size=1, max_size=3), label="setup")
    sequence += data.draw(st.lists(family, min_size=1, max_size=40), label="commands")
    for args in sequence:
        if is_random(args):
            check_random(d, *args)
        else:
            d.check(*args)
    for key in ("a", "b", "c", "l1", "l2"):
        d.check("TYPE", key)
        d.check("ZRANGE", key, "0", "-1", "WITHSCORES")


def test_a_retried_write_keeps_resp3_form(clone_server: CloneServer) -> None:
    """A sequenced write sent again is answered from the session table: with a double and
    pairs still (the clone's own; Redis has no RAFTSEQ)."""
    conn = Conn(clone_server.port)
    try:
        assert conn.call("HELLO", "3").startswith(b"%")
        sid = conn.call("RAFTSESSION", "NEW")[1:-2]
        for _ in range(2):
            assert conn.call("RAFTSEQ", sid, "1", "0", "ZINCRBY", "retried", "0.1", "a") == (
                b",0.10000000000000001\r\n"
            )
            assert conn.call("RAFTSEQ", sid, "2", "0", "ZPOPMIN", "retried", "5") == (
                b"*1\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n"
            )
        assert conn.call("RAFTSESSION", "END", sid) == b"+OK\r\n"
    finally:
        conn.close()
