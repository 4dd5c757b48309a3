"""Hypothesis strategies: random Redis commands over a small keyspace.

A few keys (:data:`KEYS`) shared by every type, so that commands collide:
a list pushed where a string was (WRONGTYPE), a key deleted, expired or
overwritten by another type.  Values and numbers come from small pools that
include the edge cases (empty strings, int64 bounds, non-numbers, leading
zeros).

Expiry never races the clock: relative expiries are at least 100 seconds
away, absolute ones are either long past (the key is gone at once) or in
the next century; the relative ones never take GT/LT (two servers a few
microseconds apart could compare them differently), the absolute ones do.

Each family is a strategy of one command (a list of arguments); issue 19's
types add theirs to :data:`FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

Cmd = list[bytes | str | int]

KEYS = ["a", "b", "c", "l1", "l2"]
key = st.sampled_from(KEYS)
keys = st.lists(key, min_size=1, max_size=3)
value = st.sampled_from(["", "v", "x", "1", "-5", "10", "9223372036854775807", "abc", "01"])
element = st.sampled_from(["a", "b", "c", "", "zz"])
integer = st.sampled_from(
    [0, 1, 2, 3, -1, -2, -100, 100, "x", "01", "+1", "9223372036854775807", "-9223372036854775808"]
)
index = st.sampled_from([0, 1, 2, -1, -2, -3, 3, 100, -100, "x", "01"])
count = st.sampled_from([0, 1, 2, 5, -1, "x", "01"])
side = st.sampled_from(["LEFT", "RIGHT", "left", "Right", "up"])

# Far from the clock: 100 s or more ahead, or long past, or in 2100.
relative_s = st.sampled_from([100, 1000, 10000])
relative_ms = st.sampled_from([100_000, 2_000_000])
absolute_s = st.sampled_from([1, 100, 4102444800, 4102444801, 4133980800])
absolute_ms = st.sampled_from([1, 4102444800000, 4102444800500, 4133980800000])
expire_flag = st.sampled_from(["NX", "XX"])
order_flag = st.sampled_from(["NX", "XX", "GT", "LT"])


@st.composite
def set_command(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["SET", draw(key), draw(value)]
    for opt in draw(
        st.lists(st.sampled_from(["NX", "XX", "GET", "KEEPTTL", "EXPIRY"]), max_size=3)
    ):
        if opt == "EXPIRY":
            cmd += draw(
                st.one_of(
                    st.tuples(st.just("EX"), relative_s),
                    st.tuples(st.just("PX"), relative_ms),
                    st.tuples(st.just("EXAT"), absolute_s),
                    st.tuples(st.just("PXAT"), absolute_ms),
                    st.tuples(st.just("EX"), st.sampled_from([0, -1, "x"])),
                )
            )
        else:
            cmd.append(opt)
    return cmd


def strings() -> st.SearchStrategy[Cmd]:
    return st.one_of(
        set_command(),
        st.tuples(st.just("GET"), key).map(list),
        st.builds(lambda ks: ["MGET", *ks], keys),
        st.builds(lambda k, v, k2, v2: ["MSET", k, v, k2, v2], key, value, key, value),
        st.tuples(st.sampled_from(["INCR", "DECR"]), key).map(list),
        st.tuples(st.sampled_from(["INCRBY", "DECRBY"]), key, integer).map(list),
        st.tuples(st.just("APPEND"), key, value).map(list),
        st.tuples(st.just("STRLEN"), key).map(list),
        st.tuples(st.just("GETSET"), key, value).map(list),
        st.tuples(st.just("SETNX"), key, value).map(list),
    )


def lists() -> st.SearchStrategy[Cmd]:
    return st.one_of(
        st.builds(
            lambda name, k, es: [name, k, *es],
            st.sampled_from(["LPUSH", "RPUSH"]),
            key,
            st.lists(element, min_size=1, max_size=4),
        ),
        st.tuples(st.sampled_from(["LPOP", "RPOP"]), key).map(list),
        st.tuples(st.sampled_from(["LPOP", "RPOP"]), key, count).map(list),
        st.tuples(st.just("LLEN"), key).map(list),
        st.tuples(st.just("LRANGE"), key, index, index).map(list),
        st.tuples(st.just("LMOVE"), key, key, side, side).map(list),
    )


def blocking_without_waiting() -> st.SearchStrategy[Cmd]:
    """Blocking pops with a short timeout (they wait only while every key is empty)."""
    return st.one_of(
        st.builds(
            lambda name, ks: [name, *ks, "0.01"],
            st.sampled_from(["BLPOP", "BRPOP"]),
            keys,
        ),
        st.tuples(st.just("BLMOVE"), key, key, side, side, st.just("0.01")).map(list),
    )


def keyspace() -> st.SearchStrategy[Cmd]:
    """Keyspace commands for random sequences.

    No DBSIZE: redis-server counts a key SET with a past EXAT/PXAT (which
    :func:`strings` makes) until its active expiry cycle (some 100 ms) or an
    access removes it, the clone never does: a timing race, not a reply
    format. DBSIZE has focused tests instead.
    """
    return st.one_of(
        st.builds(lambda ks: ["DEL", *ks], keys),
        st.builds(lambda ks: ["EXISTS", *ks], keys),
        st.tuples(st.just("TYPE"), key).map(list),
        st.tuples(st.sampled_from(["TTL", "PTTL"]), key).map(list),
        st.tuples(st.just("PERSIST"), key).map(list),
        st.just(["KEYS", "*"]),
        st.tuples(st.just("KEYS"), st.sampled_from(["l*", "[ab]", "?"])).map(list),
        st.tuples(st.just("EXPIRE"), key, relative_s).map(list),
        st.tuples(st.just("EXPIRE"), key, relative_s, expire_flag).map(list),
        st.tuples(st.sampled_from(["EXPIRE", "PEXPIRE"]), key, st.sampled_from([0, -1])).map(list),
        st.tuples(st.just("PEXPIRE"), key, relative_ms).map(list),
        st.tuples(st.just("EXPIREAT"), key, absolute_s).map(list),
        st.tuples(st.just("EXPIREAT"), key, absolute_s, order_flag).map(list),
        st.tuples(st.just("PEXPIREAT"), key, absolute_ms, order_flag).map(list),
        st.sampled_from([["FLUSHDB"], ["FLUSHALL"]]),
    )


def malformed() -> st.SearchStrategy[Cmd]:
    """Commands with the wrong number of arguments."""
    return st.sampled_from(
        [
            ["GET"],
            ["SET", "a"],
            ["LPUSH", "a"],
            ["LPOP"],
            ["LPOP", "a", "1", "2"],
            ["LRANGE", "a", "0"],
            ["LMOVE", "a", "b", "LEFT"],
            ["LLEN"],
            ["BLPOP", "a"],
            ["BLMOVE", "a", "b", "LEFT", "LEFT"],
            ["EXPIRE", "a"],
            ["TYPE"],
        ]
    )


FAMILIES = [strings, lists, keyspace, malformed]
"""Every family of non-blocking commands; the random sequences draw from all of them."""


def all_families() -> list[Callable[[], st.SearchStrategy[Cmd]]]:
    """:data:`FAMILIES` and those of the other types (each module holds one type's)."""
    # Imported here: those modules build on this one's pools.
    from tests.differential import (
        strategies_hashes,
        strategies_lists,
        strategies_more,
        strategies_sets,
        strategies_zsets,
    )

    return [
        *FAMILIES,
        *strategies_more.FAMILIES,
        *strategies_lists.FAMILIES,
        *strategies_hashes.FAMILIES,
        *strategies_sets.FAMILIES,
        *strategies_zsets.FAMILIES,
    ]


def commands(*, blocking: bool = False) -> st.SearchStrategy[Cmd]:
    """One command of any family (and the blocking pops that do not wait, if ``blocking``)."""
    families = [f() for f in all_families()]
    if blocking:
        families.append(blocking_without_waiting())
    return st.one_of(*families)
