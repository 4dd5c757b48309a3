"""Hypothesis strategies: hash commands (HSET, HGET, ...), over :mod:`.strategies`' keys and pools.

Fields come from a pool of six and values from the shared pool of short
values, so a hash stays small and short: Redis keeps it as a listpack, whose
order (insertion order, an updated field keeping its place) the clone's dict
keeps too, so every reply compares byte for byte with no normaliser.
HINCRBYFLOAT's increments are small enough that no sum grows past the 64
bytes that would make Redis convert the hash to a hash table (whose order is
its own); the focused tests in ``test_hashes_vs_redis.py`` cover those.

:func:`hashes` draws only commands whose replies are deterministic: HRANDFIELD
only with a count of 0 or one that takes the whole hash, and its errors.
:func:`random_hashes` adds the truly random forms, for a runner that checks
them by what is deterministic (``test_hashes_vs_redis.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.differential.strategies import Cmd, integer, key, value

FIELDS = ["f", "g", "h", "", "1", "x"]
field = st.sampled_from(FIELDS)
fields = st.lists(field, min_size=1, max_size=3)
pairs = st.lists(st.tuples(field, value), min_size=1, max_size=3)
float_increment = st.sampled_from(
    [
        "0.1",
        "-1.5",
        "1e3",
        "3",
        "-0",
        "5.0e-3",
        "1e20",
        "-1e20",
        ".5",
        "0x10",
        "+2.5",
        "inf",
        "-inf",
        "nan",
        "x",
        "",
        "1e",
        " 1",
        "1e5000",
    ]
)
cursor = st.sampled_from(["0", "0", "x", " 1", "1x", "", "5", "-1", "18446744073709551616"])
scan_count = st.sampled_from([10, 1, 100, 0, -1, "x"])
pattern = st.sampled_from(["*", "f*", "?", "[fg]", "", "\\*"])
whole_count = st.sampled_from([0, 6, 100, "9223372036854775807"])
bad_count = st.sampled_from(["x", "01", "+1", "-9223372036854775808", "4611686018427387904"])


def _cmd(*parts: Any) -> Cmd:
    return list(parts)


def _flat(name: str, k: str, ps: list[tuple[str, str]]) -> Cmd:
    return [name, k, *(x for pair in ps for x in pair)]


def hashes() -> st.SearchStrategy[Cmd]:
    """Hash commands whose replies compare byte for byte."""
    return st.one_of(
        st.builds(_flat, st.sampled_from(["HSET", "HMSET"]), key, pairs),
        st.builds(_cmd, st.just("HSETNX"), key, field, value),
        st.builds(_cmd, st.just("HGET"), key, field),
        st.builds(lambda k, fs: ["HMGET", k, *fs], key, fields),
        st.builds(lambda k, fs: ["HDEL", k, *fs], key, fields),
        st.builds(_cmd, st.sampled_from(["HEXISTS", "HSTRLEN"]), key, field),
        st.builds(_cmd, st.sampled_from(["HLEN", "HKEYS", "HVALS", "HGETALL"]), key),
        st.builds(_cmd, st.just("HINCRBY"), key, field, integer),
        st.builds(_cmd, st.just("HINCRBYFLOAT"), key, field, float_increment),
        hrandfield(),
        hscan(),
        malformed_hashes(),
    )


@st.composite
def hrandfield(draw: st.DrawFn) -> Cmd:
    """HRANDFIELD with a count whose reply is not random (0, the whole hash), or an error."""
    count = draw(st.one_of(whole_count, bad_count))
    cmd: Cmd = ["HRANDFIELD", draw(key), count]
    extra = draw(
        st.sampled_from([[], [], ["WITHVALUES"], ["withvalues"], ["FOO"], ["WITHVALUES", 1]])
    )
    return cmd + extra


@st.composite
def hscan(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["HSCAN", draw(key), draw(cursor)]
    for opt in draw(st.lists(st.sampled_from(["MATCH", "COUNT", "BAD"]), max_size=2)):
        if opt == "MATCH":
            cmd += ["MATCH", draw(pattern)]
        elif opt == "COUNT":
            cmd += ["COUNT", draw(scan_count)]
        else:
            cmd += draw(st.sampled_from([["TYPE", "hash"], ["COUNT"], ["NOVALUES"], ["NOPE", "1"]]))
    return cmd


def malformed_hashes() -> st.SearchStrategy[Cmd]:
    """Hash commands with the wrong number of arguments (HSET's odd count is its own error)."""
    return st.sampled_from(
        [
            ["HSET", "a"],
            ["HSET", "a", "f"],
            ["HSET", "a", "f", "v", "g"],
            ["HMSET", "a", "f"],
            ["HMSET", "a", "f", "v", "g"],
            ["HSETNX", "a", "f"],
            ["HGET", "a"],
            ["HGET", "a", "f", "g"],
            ["HMGET", "a"],
            ["HDEL", "a"],
            ["HEXISTS", "a"],
            ["HLEN"],
            ["HSTRLEN", "a"],
            ["HKEYS"],
            ["HVALS", "a", "b"],
            ["HGETALL"],
            ["HINCRBY", "a", "f"],
            ["HINCRBYFLOAT", "a", "f", "1", "2"],
            ["HRANDFIELD"],
            ["HSCAN", "a"],
        ]
    )


def random_hashes() -> st.SearchStrategy[Cmd]:
    """HRANDFIELD in its random forms (their replies need a runner that knows)."""
    return st.one_of(
        st.builds(_cmd, st.just("HRANDFIELD"), key),
        st.builds(_cmd, st.just("HRANDFIELD"), key, st.sampled_from([1, 2, 3, -1, -3, -12])),
        st.builds(
            _cmd,
            st.just("HRANDFIELD"),
            key,
            st.sampled_from([1, 2, -1, -5]),
            st.just("WITHVALUES"),
        ),
    )


FAMILIES: list[Callable[[], st.SearchStrategy[Cmd]]] = [hashes]
"""This module's families of commands; :func:`.strategies.all_families` adds them."""
