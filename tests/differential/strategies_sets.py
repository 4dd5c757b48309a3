"""Hypothesis strategies: set commands (SADD, SINTER, ...), over :mod:`.strategies`' keys and pools.

Members come from a pool of nine (integers and not, the empty string, a
non-canonical ``01``), so that a set holds at most nine members: fewer than
SSCAN's default COUNT of 10, which redis-server then answers whole with
cursor 0 (as the clone does), whatever its encoding.

Redis 7.0 keeps a set of anything but integers in a hash table whose order
comes from a hash seed drawn at start, so replies listing members compare
as sorted lists: this module adds :data:`NORMALISERS` to the harness's when
it is imported (the shared random test imports it through
:func:`.strategies.all_families`).  The focused tests in
``test_sets_vs_redis.py`` check the order too where Redis's is fixed (an
intset's numeric order).

:func:`sets` draws only commands whose replies compare that way: SPOP and
SRANDMEMBER only with counts that take the whole set (or none).
:func:`random_sets` adds the truly random forms, for a runner that checks
them by what is deterministic (``test_sets_vs_redis.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.differential import harness
from tests.differential.harness import reply_end
from tests.differential.strategies import Cmd, key, keys

MEMBERS = ["1", "2", "10", "-3", "0", "a", "b", "", "01"]
member = st.sampled_from(MEMBERS)
members = st.lists(member, min_size=1, max_size=4)
set_count = st.sampled_from([0, 100, "x", -1, "01", "9223372036854775807"])
numkeys = st.sampled_from([1, 2, 3, 0, -1, "x", 5])
limit = st.sampled_from([0, 1, 2, 100, -1, "x"])
cursor = st.sampled_from(["0", "0", "x", " 1", "1x", "+", ""])
scan_count = st.sampled_from([10, 100, 0, -1, "x"])
pattern = st.sampled_from(["*", "1*", "?", "[ab]", "-*", ""])


def _elements(reply: bytes) -> tuple[bytes, list[bytes]] | None:
    """An array reply's header and raw elements (None for anything else)."""
    if not reply.startswith(b"*") or reply.startswith(b"*-1"):
        return None
    head = reply.index(b"\r\n") + 2
    items = []
    at = head
    while at < len(reply):
        end = reply_end(reply, at)
        assert end is not None
        items.append(reply[at:end])
        at = end
    return reply[:head], items


def sorted_members(reply: bytes) -> Any:
    """A member array in sorted order (Redis's own is its hash table's)."""
    parts = _elements(reply)
    if parts is None:
        return reply
    head, items = parts
    return (head, sorted(items))


def sorted_scan(reply: bytes) -> Any:
    """An SSCAN page: the cursor, and the members in sorted order."""
    parts = _elements(reply)
    if parts is None or len(parts[1]) != 2:
        return reply
    cursor_bulk, page = parts[1]
    return (cursor_bulk, sorted_members(page))


NORMALISERS: dict[bytes, harness.Normaliser] = {
    b"smembers": sorted_members,
    b"sinter": sorted_members,
    b"sunion": sorted_members,
    b"sdiff": sorted_members,
    b"spop": sorted_members,
    b"srandmember": sorted_members,
    b"sscan": sorted_scan,
}
"""How set replies are compared: as sorted lists (see the module notes)."""

harness.NORMALISERS.update(NORMALISERS)


def _cmd(*parts: Any) -> Cmd:
    return list(parts)


def sets() -> st.SearchStrategy[Cmd]:
    """Set commands whose replies compare deterministically (after :data:`NORMALISERS`)."""
    return st.one_of(
        st.builds(lambda k, ms: ["SADD", k, *ms], key, members),
        st.builds(lambda k, ms: ["SREM", k, *ms], key, members),
        st.builds(_cmd, st.just("SMEMBERS"), key),
        st.builds(_cmd, st.just("SISMEMBER"), key, member),
        st.builds(lambda k, ms: ["SMISMEMBER", k, *ms], key, members),
        st.builds(_cmd, st.just("SCARD"), key),
        st.builds(_cmd, st.just("SPOP"), key, set_count),
        st.builds(
            _cmd,
            st.just("SRANDMEMBER"),
            key,
            st.sampled_from([0, 100, "x", "-9223372036854775808", "01", "+1"]),
        ),
        st.builds(_cmd, st.just("SMOVE"), key, key, member),
        st.builds(
            lambda name, ks: [name, *ks], st.sampled_from(["SINTER", "SUNION", "SDIFF"]), keys
        ),
        st.builds(
            lambda name, d, ks: [name, d, *ks],
            st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
            key,
            keys,
        ),
        sintercard(),
        sscan(),
        malformed_sets(),
    )


@st.composite
def sintercard(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["SINTERCARD", draw(numkeys), *draw(keys)]
    if draw(st.booleans()):
        cmd += ["LIMIT", draw(limit)]
    if draw(st.integers(0, 9)) == 0:
        cmd += draw(st.sampled_from([["LIMIT"], ["FOO"], ["LIMIT", 1, "x"]]))
    return cmd


@st.composite
def sscan(draw: st.DrawFn) -> Cmd:
    cmd: Cmd = ["SSCAN", draw(key), draw(cursor)]
    for opt in draw(st.lists(st.sampled_from(["MATCH", "COUNT", "BAD"]), max_size=2)):
        if opt == "MATCH":
            cmd += ["MATCH", draw(pattern)]
        elif opt == "COUNT":
            cmd += ["COUNT", draw(scan_count)]
        else:
            cmd += draw(st.sampled_from([["TYPE", "set"], ["COUNT"], ["NOPE", "1"]]))
    return cmd


def malformed_sets() -> st.SearchStrategy[Cmd]:
    """Set commands with the wrong number of arguments, or one too many."""
    return st.sampled_from(
        [
            ["SADD", "a"],
            ["SREM", "a"],
            ["SMEMBERS"],
            ["SMEMBERS", "a", "b"],
            ["SISMEMBER", "a"],
            ["SMISMEMBER", "a"],
            ["SCARD"],
            ["SPOP"],
            ["SPOP", "a", "1", "2"],
            ["SRANDMEMBER"],
            ["SRANDMEMBER", "a", "1", "2"],
            ["SMOVE", "a", "b"],
            ["SINTER"],
            ["SINTERCARD", "1"],
            ["SINTERSTORE", "a"],
            ["SUNIONSTORE", "a"],
            ["SDIFFSTORE", "a"],
            ["SSCAN", "a"],
        ]
    )


def random_sets() -> st.SearchStrategy[Cmd]:
    """SPOP and SRANDMEMBER in their random forms (their replies need a runner that knows)."""
    return st.one_of(
        st.builds(_cmd, st.just("SPOP"), key),
        st.builds(_cmd, st.just("SPOP"), key, st.sampled_from([1, 2, 3, 5, 8])),
        st.builds(_cmd, st.just("SRANDMEMBER"), key),
        st.builds(_cmd, st.just("SRANDMEMBER"), key, st.sampled_from([1, 2, 3, 5, -1, -3, -12])),
    )


FAMILIES: list[Callable[[], st.SearchStrategy[Cmd]]] = [sets]
"""This module's families of commands; :func:`.strategies.all_families` adds them."""
