"""Hypothesis strategies: sorted-set commands (ZADD, ZRANGE, ...), over :mod:`.strategies`' keys and pools.

Members come from a small pool, so a sorted set stays small: Redis keeps it
as a listpack, whose order (by score, then member) is fixed, so every reply
compares byte for byte, ZSCAN's too.  Scores include the edges (``inf``,
``-inf``, ``-0.0``, ``0.1``'s seventeen digits, ``1e17``, hexadecimal) and
values that are not floats; range ends include exclusive ones, infinities,
an empty string and NaN.

:func:`zsets` draws only commands whose replies are deterministic:
ZRANDMEMBER only with a count of 0, one that takes the whole set (which
Redis answers highest first) or a bad one.  :func:`random_zsets` adds the
truly random forms, for a runner that checks them by what is deterministic
(``test_zsets_vs_redis.py``).  The blocking pops take a 0.01 s timeout: they
wait only while every key is empty, and both servers then answer a null
array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.differential.strategies import KEYS, Cmd, index

Arg = int | str
# The shared keys, two of them drawn more often: sorted sets pile up there.
key = st.sampled_from([*KEYS, "a", "a", "b", "b"])
keys = st.lists(key, min_size=1, max_size=3)
MEMBERS = ["a", "b", "c", "d", "", "zz", "1"]
member = st.sampled_from(MEMBERS)
members = st.lists(member, min_size=1, max_size=4)
score: st.SearchStrategy[Arg] = st.sampled_from(
    [0, 1, 2, -1, 3, 1, 2, 0, "1.5", "0.1", "-0.0", "inf", "-inf", "+inf", "1e17", "0x10"]
)
bad_score: st.SearchStrategy[Arg] = st.sampled_from(["x", "nan", "", " 1", "1e400", "1e-400"])
any_score = st.one_of(score, score, score, bad_score)
score_bound: st.SearchStrategy[Arg] = st.sampled_from(
    [
        *["-inf", "+inf", "inf", 0, 1, 2, "(0", "(1", "(2", "1.5", "(1.5", "(inf", "(-inf"],
        *["-1", "x", "", "(", "nan", "0x1", " 1", "1e400"],
    ]
)
lex_bound: st.SearchStrategy[Arg] = st.sampled_from(
    [
        *["-", "+", "[a", "(a", "[b", "(b", "[c", "(c", "[d", "(zz", "[", "(", "[1"] * 3,
        *["a", "", "+x"],
    ]
)
offset: st.SearchStrategy[Arg] = st.sampled_from([0, 0, 1, 2, -1, 5, "x"])
limit_count: st.SearchStrategy[Arg] = st.sampled_from([1, 2, 3, 0, -1, -5, "x"])
weight: st.SearchStrategy[Arg] = st.sampled_from(
    [1, 2, 0, -1, "0.5", "inf", "-0.0", 1, 2, 3, "0.1", "x"]
)
aggregate = st.sampled_from(["SUM", "MIN", "MAX", "sum", "Max", "avg"])
count: st.SearchStrategy[Arg] = st.sampled_from([1, 2, 3, 10, 0, -1, "x"])
cursor = st.sampled_from(["0", "0", "x", " 1", "1x", "+", "", "7"])
scan_count: st.SearchStrategy[Arg] = st.sampled_from([10, 1, 100, 0, -1, "x"])
pattern = st.sampled_from(["*", "a*", "?", "[ab]", "z*", ""])
zadd_flag = st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR", "nx", "ch"])
short_timeout = st.just("0.01")


def _cmd(*parts: Any) -> Cmd:
    return list(parts)


@st.composite
def zadd(draw: st.DrawFn) -> Cmd:
    """ZADD with flags (compatible or not) and one to three pairs (a bad score at times)."""
    cmd: Cmd = ["ZADD", draw(key), *draw(st.lists(zadd_flag, max_size=2, unique=True))]
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        cmd += [draw(any_score), draw(member)]
    if draw(st.integers(0, 19)) == 0:
        cmd.pop()  # an odd count: a syntax error
    return cmd


@st.composite
def zrange(draw: st.DrawFn) -> Cmd:
    """ZRANGE or ZRANGESTORE in any of its forms, options in any order."""
    kind = draw(st.sampled_from(["rank", "rank", "BYSCORE", "BYLEX"]))
    store = draw(st.integers(0, 4)) == 0
    if kind == "rank":
        lo, hi = draw(index), draw(index)
    elif kind == "BYSCORE":
        lo, hi = draw(score_bound), draw(score_bound)
    else:
        lo, hi = draw(lex_bound), draw(lex_bound)
    opts: list[Cmd] = [] if kind == "rank" else [[kind]]
    if draw(st.booleans()):
        opts.append(["REV"])
    if not store and draw(st.integers(0, 7 if kind == "BYLEX" else 1)) == 0:
        opts.append(["WITHSCORES"])
    if draw(st.integers(0, 2)) == 0:
        opts.append(["LIMIT", draw(offset), draw(limit_count)])
    opts = draw(st.permutations(opts))
    head: Cmd = ["ZRANGESTORE", draw(key), draw(key)] if store else ["ZRANGE", draw(key)]
    return [*head, lo, hi, *(x for opt in opts for x in opt)]


@st.composite
def older_ranges(draw: st.DrawFn) -> Cmd:
    """ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE."""
    name = draw(
        st.sampled_from(
            ["ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZREVRANGE"]
        )
    )
    bound = {"ZREVRANGE": index}.get(name, lex_bound if "LEX" in name else score_bound)
    cmd: Cmd = [name, draw(key), draw(bound), draw(bound)]
    if draw(st.integers(0, 7 if "LEX" in name else 1)) == 0:
        cmd.append("WITHSCORES")
    if draw(st.integers(0, 2)) == 0:
        cmd += ["LIMIT", draw(offset), draw(limit_count)]
    return cmd


@st.composite
def set_operation(draw: st.DrawFn) -> Cmd:
    """ZUNION, ZINTER, ZDIFF (and STORE forms), ZINTERCARD, with options good and bad."""
    name = draw(
        st.sampled_from(
            ["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZINTERCARD"]
        )
    )
    ks = draw(keys)
    numkeys: Arg = draw(st.sampled_from([len(ks)] * 12 + [0, len(ks) + 1, "x"]))
    store = name.endswith("STORE")
    cmd: Cmd = [name, draw(key)] if store else [name]
    cmd += [numkeys, *ks]
    if name == "ZINTERCARD":
        fitting = ["LIMIT"]
    elif name.startswith("ZDIFF"):
        fitting = [] if store else ["WITHSCORES"]
    else:
        fitting = ["WEIGHTS", "AGGREGATE"] + ([] if store else ["WITHSCORES"] * 2)
    others = ["WEIGHTS", "AGGREGATE", "WITHSCORES", "LIMIT"]
    chosen = draw(st.lists(st.sampled_from(fitting), max_size=3)) if fitting else []
    if draw(st.integers(0, 9)) == 0:
        chosen.append(draw(st.sampled_from(others)))
    for opt in chosen:
        if opt == "WEIGHTS":
            cmd += ["WEIGHTS", *draw(st.lists(weight, min_size=len(ks), max_size=len(ks)))]
        elif opt == "AGGREGATE":
            cmd += ["AGGREGATE", draw(aggregate)]
        elif opt == "LIMIT":
            cmd += ["LIMIT", draw(st.sampled_from([0, 1, 2, -1, "x"]))]
        else:
            cmd.append(opt)
    return cmd


@st.composite
def zmpop(draw: st.DrawFn, blocking: bool = False) -> Cmd:
    ks = draw(keys)
    numkeys: Arg = draw(st.sampled_from([len(ks)] * 12 + [0, len(ks) + 1, "x"]))
    cmd: Cmd = ["BZMPOP", draw(short_timeout)] if blocking else ["ZMPOP"]
    cmd += [numkeys, *ks, draw(st.sampled_from(["MIN", "MAX", "min", "max"] * 3 + ["mid"]))]
    if draw(st.booleans()):
        cmd += ["COUNT", draw(count)]
    return cmd


@st.composite
def zscan(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["ZSCAN", draw(key), draw(cursor)]
    for opt in draw(st.lists(st.sampled_from(["MATCH", "COUNT", "BAD"]), max_size=2)):
        if opt == "MATCH":
            cmd += ["MATCH", draw(pattern)]
        elif opt == "COUNT":
            cmd += ["COUNT", draw(scan_count)]
        else:
            cmd += draw(st.sampled_from([["TYPE", "zset"], ["COUNT"], ["NOPE", "1"]]))
    return cmd


def zsets() -> st.SearchStrategy[Cmd]:
    """Sorted-set commands whose replies compare byte for byte."""
    return st.one_of(
        zadd(),
        zadd(),
        st.builds(_cmd, st.just("ZINCRBY"), key, any_score, member),
        st.builds(lambda k, ms: ["ZREM", k, *ms], key, members),
        st.builds(_cmd, st.just("ZCARD"), key),
        st.builds(_cmd, st.just("ZSCORE"), key, member),
        st.builds(lambda k, ms: ["ZMSCORE", k, *ms], key, members),
        st.builds(_cmd, st.sampled_from(["ZRANK", "ZREVRANK"]), key, member),
        st.builds(_cmd, st.just("ZCOUNT"), key, score_bound, score_bound),
        st.builds(_cmd, st.just("ZLEXCOUNT"), key, lex_bound, lex_bound),
        zrange(),
        older_ranges(),
        st.builds(_cmd, st.just("ZREMRANGEBYRANK"), key, index, index),
        st.builds(_cmd, st.just("ZREMRANGEBYSCORE"), key, score_bound, score_bound),
        st.builds(_cmd, st.just("ZREMRANGEBYLEX"), key, lex_bound, lex_bound),
        st.builds(_cmd, st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), key),
        st.builds(_cmd, st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), key, count),
        zmpop(),
        st.builds(
            _cmd,
            st.just("ZRANDMEMBER"),
            key,
            st.sampled_from([0, 100, "x", "-9223372036854775808", "01"]),
        ),
        st.builds(_cmd, st.just("ZRANDMEMBER"), key, st.just(100), st.just("WITHSCORES")),
        set_operation(),
        zscan(),
        malformed_zsets(),
    )


def blocking_zsets() -> st.SearchStrategy[Cmd]:
    """BZPOPMIN, BZPOPMAX and BZMPOP with a 0.01 s timeout."""
    return st.one_of(
        st.builds(
            lambda name, ks: [name, *ks, "0.01"], st.sampled_from(["BZPOPMIN", "BZPOPMAX"]), keys
        ),
        zmpop(blocking=True),
    )


def filled_zset() -> st.SearchStrategy[Cmd]:
    """A ZADD of several members, so that a sequence starts with a set worth ranging over."""
    return st.builds(
        lambda k, pairs: ["ZADD", k, *(x for pair in pairs for x in pair)],
        key,
        st.lists(st.tuples(score, member), min_size=2, max_size=7),
    )


def malformed_zsets() -> st.SearchStrategy[Cmd]:
    """Sorted-set commands with the wrong number of arguments."""
    return st.sampled_from(
        [
            ["ZADD", "a", "1"],
            ["ZADD", "a", "NX"],
            ["ZINCRBY", "a", "1"],
            ["ZREM", "a"],
            ["ZCARD"],
            ["ZSCORE", "a"],
            ["ZMSCORE", "a"],
            ["ZRANK", "a", "b", "c"],
            ["ZCOUNT", "a", "0"],
            ["ZLEXCOUNT", "a", "-"],
            ["ZRANGE", "a", "0"],
            ["ZRANGESTORE", "a", "b", "0"],
            ["ZREMRANGEBYRANK", "a", "0"],
            ["ZPOPMIN"],
            ["ZPOPMAX", "a", "1", "2"],
            ["BZPOPMIN", "a"],
            ["ZMPOP", "1", "a"],
            ["BZMPOP", "0.01", "1", "a"],
            ["ZRANDMEMBER"],
            ["ZUNION", "1"],
            ["ZUNIONSTORE", "d", "1"],
            ["ZINTERCARD", "1"],
            ["ZSCAN", "a"],
        ]
    )


def random_zsets() -> st.SearchStrategy[Cmd]:
    """ZRANDMEMBER in its random forms (its replies need a runner that knows)."""
    return st.one_of(
        st.builds(_cmd, st.just("ZRANDMEMBER"), key),
        st.builds(_cmd, st.just("ZRANDMEMBER"), key, st.sampled_from([1, 2, 3, -1, -3, -8])),
        st.builds(
            _cmd, st.just("ZRANDMEMBER"), key, st.sampled_from([1, 2, -4]), st.just("WITHSCORES")
        ),
    )


FAMILIES: list[Callable[[], st.SearchStrategy[Cmd]]] = [zsets, blocking_zsets]
"""This module's families of commands; :func:`.strategies.all_families` adds them."""
