"""Hypothesis strategies: the rest of the string and keyspace commands (issue 19), over
:mod:`.strategies`' keys and pools.

Strings: SETEX, PSETEX, SETRANGE, GETRANGE, SUBSTR, GETDEL, GETEX, INCRBYFLOAT,
MSETNX, LCS.  Keyspace: RENAME, RENAMENX, COPY, TOUCH, UNLINK.

Left out of :data:`FAMILIES` (which the shared random test draws from) are
the commands whose replies are not comparable there: RANDOMKEY (random),
OBJECT (its string encodings depend on how a value was made, which the
clone does not track: APPEND's results are ``raw`` in Redis), EXPIRETIME and
PEXPIRETIME (absolute times of relative expiries, a few milliseconds apart
on the two servers).  ``test_more_vs_redis.py`` draws those from
:func:`objects` and :func:`expiry_times` with the care they need.

SETRANGE's offsets never build a string near 512 MB: the large ones are
past the limit (refused by both servers before allocating anything).
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from tests.differential.strategies import (
    Cmd,
    absolute_ms,
    absolute_s,
    index,
    key,
    keys,
    relative_ms,
    relative_s,
    value,
)

offset = st.sampled_from([0, 1, 2, 5, 10, -1, "x", "01", 536870912, "9223372036854775807"])
piece = st.sampled_from(["", "v", "xyz", "12", "\x00"])
wide_index = st.one_of(
    index, st.sampled_from(["9223372036854775807", "-9223372036854775808", -5, 5])
)
increment = st.sampled_from(
    [
        "0.1",
        "-1.5",
        "1",
        "3.0e3",
        "1e300",
        "-0",
        "0x10",
        "+.5",
        "5.",
        "1e-20",
        "5e-324",
        "1.23456789012345678901234567890",
        "abc",
        "",
        " 1",
        "1e",
        "inf",
        "-inf",
        "nan",
        "1e5000",
        "1e-5000",
    ]
)
bad_expiry = st.sampled_from([0, -1, "x", "01"])
lcs_option = st.sampled_from(["LEN", "IDX", "WITHMATCHLEN", "MINMATCHLEN", "FOO"])
min_match_len = st.sampled_from([0, 1, 2, 4, -1, "x"])


@st.composite
def getex_command(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["GETEX", draw(key)]
    for _ in range(draw(st.integers(0, 2))):
        cmd += draw(
            st.one_of(
                st.tuples(st.just("EX"), relative_s),
                st.tuples(st.just("PX"), relative_ms),
                st.tuples(st.just("EXAT"), absolute_s),
                st.tuples(st.just("PXAT"), absolute_ms),
                st.tuples(st.sampled_from(["EX", "PXAT"]), bad_expiry),
                st.just(("PERSIST",)),
                st.sampled_from([("EX",), ("KEEPTTL",), ("NX",)]),
            )
        )
    return cmd


@st.composite
def lcs_command(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["LCS", draw(key), draw(key)]
    for opt in draw(st.lists(lcs_option, max_size=3)):
        cmd.append(opt)
        if opt == "MINMATCHLEN" and draw(st.integers(0, 5)):
            cmd.append(draw(min_match_len))
    return cmd


def strings_more() -> st.SearchStrategy[Cmd]:
    """SETEX, PSETEX, SETRANGE, GETRANGE, SUBSTR, GETDEL, GETEX, INCRBYFLOAT, MSETNX, LCS."""
    return st.one_of(
        st.tuples(st.just("SETEX"), key, st.one_of(relative_s, bad_expiry), value).map(list),
        st.tuples(st.just("PSETEX"), key, st.one_of(relative_ms, bad_expiry), value).map(list),
        st.tuples(st.just("SETRANGE"), key, offset, piece).map(list),
        st.tuples(st.sampled_from(["GETRANGE", "SUBSTR"]), key, wide_index, wide_index).map(list),
        st.tuples(st.just("GETDEL"), key).map(list),
        getex_command(),
        st.tuples(st.just("INCRBYFLOAT"), key, increment).map(list),
        st.builds(
            lambda pairs: ["MSETNX", *[x for p in pairs for x in p]],
            st.lists(st.tuples(key, value), min_size=1, max_size=3),
        ),
        lcs_command(),
    )


def keyspace_more() -> st.SearchStrategy[Cmd]:
    """RENAME, RENAMENX, COPY, TOUCH, UNLINK."""
    return st.one_of(
        st.tuples(st.sampled_from(["RENAME", "RENAMENX"]), key, key).map(list),
        st.builds(
            lambda src, dst, opts: ["COPY", src, dst, *opts],
            key,
            key,
            st.lists(st.sampled_from(["REPLACE", "DB 0", "FOO"]), max_size=2).map(
                lambda opts: [word for opt in opts for word in opt.split()]
            ),
        ),
        st.builds(lambda ks: ["TOUCH", *ks], keys),
        st.builds(lambda ks: ["UNLINK", *ks], keys),
    )


def malformed_more() -> st.SearchStrategy[Cmd]:
    """This module's commands with the wrong number of arguments."""
    return st.sampled_from(
        [
            ["SETEX", "a", "10"],
            ["PSETEX", "a"],
            ["SETRANGE", "a", "0"],
            ["GETRANGE", "a", "0"],
            ["SUBSTR", "a"],
            ["GETDEL"],
            ["GETDEL", "a", "b"],
            ["GETEX"],
            ["INCRBYFLOAT", "a"],
            ["MSETNX", "a"],
            ["MSETNX", "a", "1", "b"],
            ["LCS", "a"],
            ["RENAME", "a"],
            ["RENAMENX", "a", "b", "c"],
            ["COPY", "a"],
            ["TOUCH"],
            ["UNLINK"],
        ]
    )


def objects() -> st.SearchStrategy[Cmd]:
    """OBJECT's subcommands (for sequences whose strings are all made by SET-like commands)."""
    return st.one_of(
        st.tuples(
            st.just("OBJECT"), st.sampled_from(["ENCODING", "REFCOUNT", "encoding", "FREQ"]), key
        ).map(list),
        st.sampled_from(
            [
                ["OBJECT", "HELP"],
                ["OBJECT", "help", "x"],
                ["OBJECT"],
                ["OBJECT", "FOO"],
                ["OBJECT", "ENCODING"],
                ["OBJECT", "REFCOUNT", "a", "b"],
            ]
        ),
    )


def expiry_times() -> st.SearchStrategy[Cmd]:
    """EXPIRETIME and PEXPIRETIME (compared with a tolerance)."""
    return st.tuples(st.sampled_from(["EXPIRETIME", "PEXPIRETIME"]), key).map(list)


FAMILIES: list[Callable[[], st.SearchStrategy[Cmd]]] = [
    strings_more,
    keyspace_more,
    malformed_more,
]
"""This module's families of commands; :func:`.strategies.all_families` adds them."""
