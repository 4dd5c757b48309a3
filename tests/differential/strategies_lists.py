"""Hypothesis strategies: the rest of the list commands (LINDEX, LSET, LINSERT, ...), over
:mod:`.strategies`' keys and pools.

The blocking ones (BRPOPLPUSH, BLMPOP) take a 0.01 s timeout: they wait only
while every key is empty, and both servers then answer the same null array.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from tests.differential.strategies import Cmd, element, index, key, keys

Arg = int | str
# Mostly valid values (so that the searches and pops do something), a few bad ones.
rank: st.SearchStrategy[Arg] = st.sampled_from(
    [1, 1, 2, 3, -1, -1, -2, 0, "x", "-0", "-9223372036854775808", "9223372036854775807"]
)
matches: st.SearchStrategy[Arg] = st.sampled_from([0, 0, 1, 2, 5, -1, "x"])
maxlen: st.SearchStrategy[Arg] = st.sampled_from([0, 0, 1, 2, 3, 10, -1, "x"])
lrem_count: st.SearchStrategy[Arg] = st.sampled_from(
    [0, 1, 2, -1, -2, 100, -100, "x", "-9223372036854775808"]
)
where = st.sampled_from(["BEFORE", "AFTER", "before", "After", "middle"])
pop_side = st.sampled_from(["LEFT", "RIGHT", "left", "Right", "LEFT", "RIGHT", "up"])
numkeys_slack: st.SearchStrategy[Arg] = st.sampled_from([0] * 8 + [1, -1, "x"])
mpop_count: st.SearchStrategy[Arg | None] = st.sampled_from([None, None, 1, 2, 3, 10, 0, "x"])
lpos_option = st.sampled_from(["RANK", "COUNT", "MAXLEN"] * 4 + ["FOO"])
short_timeout = st.just("0.01")


@st.composite
def lpos_command(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["LPOS", draw(key), draw(element)]
    for opt in draw(st.lists(lpos_option, max_size=3)):
        if opt == "RANK":
            cmd += [opt, draw(rank)]
        elif opt == "COUNT":
            cmd += [opt, draw(matches)]
        elif opt == "MAXLEN":
            cmd += [opt, draw(maxlen)]
        else:
            cmd.append(opt)
    return cmd


def _mpop_tail(draw: st.DrawFn) -> Cmd:
    """``numkeys key ... LEFT|RIGHT [COUNT n]``, the numkeys sometimes wrong or malformed."""
    ks = draw(keys)
    slack = draw(numkeys_slack)
    numkeys: int | str = slack if isinstance(slack, str) else len(ks) + slack
    tail: Cmd = [numkeys, *ks, draw(pop_side)]
    count = draw(mpop_count)
    if count is not None:
        tail += ["COUNT", count]
    if draw(st.integers(0, 19)) == 0:
        tail.append(draw(st.sampled_from(["COUNT", "FOO"])))
    return tail


@st.composite
def lmpop_command(draw: st.DrawFn) -> Cmd:
    return ["LMPOP", *_mpop_tail(draw)]


@st.composite
def blmpop_command(draw: st.DrawFn) -> Cmd:
    return ["BLMPOP", draw(short_timeout), *_mpop_tail(draw)]


def more_lists() -> st.SearchStrategy[Cmd]:
    """LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LPUSHX, RPUSHX, RPOPLPUSH, LMPOP."""
    return st.one_of(
        st.tuples(st.just("LINDEX"), key, index).map(list),
        st.tuples(st.just("LSET"), key, index, element).map(list),
        st.tuples(st.just("LINSERT"), key, where, element, element).map(list),
        st.tuples(st.just("LREM"), key, lrem_count, element).map(list),
        st.tuples(st.just("LTRIM"), key, index, index).map(list),
        lpos_command(),
        st.builds(
            lambda name, k, es: [name, k, *es],
            st.sampled_from(["LPUSHX", "RPUSHX"]),
            key,
            st.lists(element, min_size=1, max_size=3),
        ),
        st.tuples(st.just("RPOPLPUSH"), key, key).map(list),
        lmpop_command(),
    )


def filled_list() -> st.SearchStrategy[Cmd]:
    """RPUSH of several elements, so that a sequence starts with lists worth searching."""
    return st.builds(
        lambda k, es: ["RPUSH", k, *es], key, st.lists(element, min_size=2, max_size=8)
    )


def blocking_lists() -> st.SearchStrategy[Cmd]:
    """BRPOPLPUSH and BLMPOP with a 0.01 s timeout (they wait only while every key is empty)."""
    return st.one_of(
        st.tuples(st.just("BRPOPLPUSH"), key, key, short_timeout).map(list),
        blmpop_command(),
    )


def malformed_lists() -> st.SearchStrategy[Cmd]:
    """This module's commands with the wrong number of arguments."""
    return st.sampled_from(
        [
            ["LINDEX", "a"],
            ["LINDEX", "a", "0", "1"],
            ["LSET", "a", "0"],
            ["LINSERT", "a", "BEFORE", "x"],
            ["LREM", "a", "0"],
            ["LTRIM", "a", "0"],
            ["LPOS", "a"],
            ["LPUSHX", "a"],
            ["RPUSHX"],
            ["RPOPLPUSH", "a"],
            ["BRPOPLPUSH", "a", "b"],
            ["LMPOP", "1", "a"],
            ["BLMPOP", "0.01", "1", "a"],
        ]
    )


FAMILIES: list[Callable[[], st.SearchStrategy[Cmd]]] = [
    more_lists,
    blocking_lists,
    malformed_lists,
]
"""This module's families of commands; :func:`.strategies.all_families` adds them."""
