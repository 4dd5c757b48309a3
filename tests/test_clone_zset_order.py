"""The order of the clone's sorted sets: the C B+-tree (``_zorder.Order``) against the Python
order (``zset.PyOrder``), call for call.

Random sequences of every call ``ZSet`` makes (Hypothesis), with scores at the
awkward places (``-inf``, ``inf``, ``-0.0`` beside ``0.0``, the smallest
subnormal) and members with NUL bytes and shared prefixes, and sizes that grow
the tree by several levels and shrink it back.  Then what the C order owes the
interpreter: references (none leaked, none lost), memory that stays flat over
inserts and removals, errors raised and never a crash, iterators that notice a
change, and no part in the garbage collector (it holds bytes only).  Last,
the one place that picks the order: the Python one when forced
(``REDRAFT_PURE_PYTHON=1``) or when the extension cannot be imported.
"""

from __future__ import annotations

import gc
import math
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraft.examples.clone import zset
from redraft.examples.clone.zset import PyOrder, ZSet

try:
    from redraft.examples.clone._zorder import INNER_MAX, LEAF_MAX
    from redraft.examples.clone._zorder import Order as COrder
except ImportError:  # not built: only the fallback tests run
    COrder = None  # type: ignore[assignment,misc]
    LEAF_MAX = INNER_MAX = 0

needs_c = pytest.mark.skipif(COrder is None, reason="redraft.examples.clone._zorder not built")

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]

SCORES = [
    -math.inf,
    -1e300,
    -2.5,
    -1.0,
    -5e-324,
    -0.0,
    0.0,
    5e-324,
    1.0,
    math.nextafter(1.0, math.inf),
    3.0,
    1e300,
    math.inf,
]
MEMBERS = [b"", b"\x00", b"\x00\x00", b"a", b"a\x00", b"a\x00b", b"ab", b"b", b"\xff", b"\xff\x00"]


def _signed(pairs: Any) -> list[tuple[float, float, bytes]]:
    """Entries with the sign of their score made visible (``-0.0 == 0.0``)."""
    return [(s, math.copysign(1.0, s), m) for s, m in pairs]


def _signed_items(items: list[tuple[bytes, float]]) -> list[tuple[bytes, float, float]]:
    return [(m, s, math.copysign(1.0, s)) for m, s in items]


def _outcome(call: Callable[[], Any]) -> Any:
    """A call's result, or the type of what it raised."""
    try:
        return ("ok", call())
    except (ValueError, IndexError) as e:
        return ("raised", type(e))


def _random_pair(rng: random.Random) -> tuple[float, bytes]:
    score = rng.choice(SCORES) if rng.random() < 0.3 else float(rng.randrange(-50, 50))
    member = rng.choice(MEMBERS) if rng.random() < 0.2 else b"m%d\x00%d" % (rng.randrange(400), 7)
    return score, member


score_st = st.one_of(
    st.sampled_from(SCORES), st.floats(allow_nan=False), st.integers(-5, 5).map(float)
)
member_st = st.one_of(st.sampled_from(MEMBERS), st.binary(max_size=6))
index_st = st.integers(-5000, 5000)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("put"), score_st, member_st),
        st.tuples(st.just("drop"), score_st, member_st),
        st.tuples(st.just("drop_some"), st.integers(0, 10**9)),
        st.tuples(st.just("rank"), score_st, member_st),
        st.tuples(st.just("bisect_pair"), score_st, member_st, st.booleans()),
        st.tuples(st.just("bisect_score"), score_st, st.booleans()),
        st.tuples(st.just("items"), index_st, index_st, st.booleans()),
        st.tuples(st.just("cut"), index_st, index_st),
        st.tuples(st.just("getitem"), index_st),
        st.tuples(st.just("fill"), st.integers(0, 10**6), st.integers(1, 6000)),
        st.tuples(st.just("copy")),
    ),
    max_size=40,
)


def _apply(order: Any, op: tuple[Any, ...]) -> Any:
    name = op[0]
    if name == "put":
        return _outcome(lambda: order.put(op[1], op[2]))
    if name == "drop":
        return _outcome(lambda: order.drop(op[1], op[2]))
    if name == "drop_some":  # entries that are there, chosen by rank
        rng = random.Random(op[1])
        got = []
        for _ in range(min(len(order), rng.randrange(1, 3000))):
            score, member = order[rng.randrange(len(order))]
            got.append(order.rank(score, member))
            order.drop(score, member)
        return got
    if name == "rank":
        return _outcome(lambda: order.rank(op[1], op[2]))
    if name == "bisect_pair":
        return order.bisect_pair(op[1], op[2], op[3])
    if name == "bisect_score":
        return order.bisect_score(op[1], op[2])
    if name == "items":
        return _signed_items(order.items(op[1], op[2], op[3]))
    if name == "cut":
        return order.cut(op[1], op[2])
    if name == "getitem":
        return _outcome(lambda: _signed([order[op[1]]]))
    if name == "fill":
        rng = random.Random(op[1])
        for _ in range(op[2]):
            order.put(*_random_pair(rng))
        return None
    raise AssertionError(name)


@needs_c
@settings(max_examples=300, deadline=None)
@given(start=st.lists(st.tuples(score_st, member_st), max_size=300), ops=ops_st)
def test_the_c_order_answers_every_call_as_the_python_one(
    start: list[tuple[float, bytes]], ops: list[tuple[Any, ...]]
) -> None:
    c, py = COrder(start), PyOrder(start)
    for op in ops:
        if op[0] == "copy":
            c, py = c.copy(), py.copy()
        else:
            assert _apply(c, op) == _apply(py, op), op
        assert len(c) == len(py)
        c._check()
    assert _signed(c) == _signed(py)
    assert [_signed([c[i]]) for i in range(-len(c), len(c), 97)] == [
        _signed([py[i]]) for i in range(-len(py), len(py), 97)
    ]


@needs_c
def test_a_long_run_grows_and_shrinks_the_tree_through_every_shape() -> None:
    """Up to some 40,000 entries (128-entry leaves under two levels of 32-way nodes) and
    back to none, the tree checked as it goes."""
    rng = random.Random(19)
    c, py = COrder(), PyOrder()
    there: list[tuple[float, bytes]] = []
    for step in range(160_000):
        grow = step < 80_000
        if there and rng.random() < (0.3 if grow else 0.75):
            k = rng.randrange(len(there))
            there[k], there[-1] = there[-1], there[k]
            score, member = there.pop()
            assert c.rank(score, member) == py.rank(score, member)
            c.drop(score, member)
            py.drop(score, member)
        else:
            pair = (float(rng.randrange(1000)), b"m%d" % rng.randrange(10**9))
            c.put(*pair)
            py.put(*pair)
            there.append(pair)
        if step % 8000 == 0:
            c._check()
            assert list(c) == list(py)
    assert len(c) == len(py) == len(there)
    c._check()
    assert list(c) == list(py)
    assert LEAF_MAX * INNER_MAX < 40_000


@needs_c
def test_sets_filled_in_order_or_backwards_keep_their_nodes_full() -> None:
    """An ascending fill keeps its leaves full; a descending one, half full; a bulk build
    from pairs, full; slices and cuts across many leaves."""
    n = 50_000
    pairs = [(float(i), b"m%06d" % i) for i in range(n)]
    up, down, built = COrder(), COrder(), COrder(reversed(pairs))
    for s, m in pairs:
        up.put(s, m)
    for s, m in reversed(pairs):
        down.put(s, m)
    for order in (up, down, built):
        order._check()
        assert list(order) == pairs
        assert order.items(-3, n + 5, True) == [(m, s) for s, m in pairs[-3:]][::-1]
    entry = 16
    assert up.__sizeof__() < n * entry * 1.1
    assert built.__sizeof__() < n * entry * 1.1
    assert down.__sizeof__() < n * entry * 2.2
    assert up.cut(100, n - 100) == [m for _, m in pairs[100:-100]]
    up._check()
    assert list(up) == pairs[:100] + pairs[-100:]
    assert built.cut(-n * 2, n * 2) == [m for _, m in pairs]
    assert len(built) == 0 and list(built) == [] and built.items(0, 5) == []
    built._check()


@needs_c
def test_negative_zero_sorts_with_zero_and_keeps_its_sign() -> None:
    c = COrder([(0.0, b"b"), (-0.0, b"a"), (-0.0, b"c")])
    assert _signed(c) == [(0.0, -1.0, b"a"), (0.0, 1.0, b"b"), (0.0, -1.0, b"c")]
    assert c.rank(0.0, b"a") == 0 and c.rank(-0.0, b"b") == 1
    assert c.bisect_score(-0.0) == 0 and c.bisect_score(0.0, True) == 3
    c.drop(0.0, b"c")
    assert [m for _, m in c] == [b"a", b"b"]


@needs_c
def test_members_compare_as_bytes_with_nul_bytes_inside() -> None:
    members = [b"a\x00b", b"a", b"", b"a\x00", b"\x00", b"a\x00\x00", b"ab"]
    c = COrder([(1.0, m) for m in members])
    assert [m for _, m in c] == sorted(members)
    for m in members:
        assert c.rank(1.0, m) == sorted(members).index(m)
    with pytest.raises(ValueError):
        c.rank(1.0, b"a\x00c")


@needs_c
def test_references_are_taken_once_and_all_given_back() -> None:
    members = [b"member:%d" % i for i in range(5000)]
    before = [sys.getrefcount(m) for m in members]
    c = COrder()
    for i in range(len(members)):
        c.put(float(i % 7), members[i])
    assert [sys.getrefcount(m) for m in members] == [r + 1 for r in before]
    d = c.copy()
    assert [sys.getrefcount(m) for m in members] == [r + 2 for r in before]
    del d
    for i in range(0, len(members), 2):
        c.drop(float(i % 7), members[i])
    gone = c.cut(10, 1000)
    del gone
    items = c.items(0, len(c))
    walked = list(c)
    del items, walked
    last = c[-1]
    assert c.rank(*last) == len(c) - 1
    del last
    del c
    assert [sys.getrefcount(m) for m in members] == before


@needs_c
def test_memory_stays_flat_over_inserts_and_removals() -> None:
    rng = random.Random(5)
    pairs = [(float(rng.randrange(100)), b"m%d" % i) for i in range(20_000)]
    c = COrder()

    def cycle() -> None:
        for s, m in pairs:
            c.put(s, m)
        for s, m in pairs[::2]:
            c.drop(s, m)
        c.cut(0, len(c) // 2)
        c.copy()
        list(c)
        for s, m in pairs[1::2]:
            if c.bisect_pair(s, m) < len(c) and c[c.bisect_pair(s, m)] == (s, m):
                c.drop(s, m)
        assert len(c) == 0

    cycle()
    gc.collect()
    tracemalloc.start()
    try:
        cycle()
        first = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            cycle()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - first < 4096


@needs_c
def test_errors_are_raised_and_leave_the_order_as_it_was() -> None:
    c = COrder([(1.0, b"a"), (2.0, b"b")])

    class Sub(bytes):
        pass

    with pytest.raises(ValueError):
        c.put(math.nan, b"x")
    with pytest.raises(ValueError):
        c.bisect_score(math.nan)
    with pytest.raises(TypeError):
        c.put(1.0, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.put(1.0, Sub(b"x"))
    with pytest.raises(TypeError):
        c.put("1", b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.put(1.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        c.items(0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        c.cut(0, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        c.drop(1.0, b"b")
    with pytest.raises(ValueError):
        COrder().rank(0.0, b"")
    with pytest.raises(IndexError):
        c[2]
    with pytest.raises(IndexError):
        c[-3]
    with pytest.raises(TypeError):
        c[0:1]  # type: ignore[index]
    for bad in ([(1.0,)], [(math.nan, b"x")], [(1.0, b"x"), "ab"], [(1.0, 7)], 5):
        with pytest.raises((TypeError, ValueError)):
            COrder(bad)  # type: ignore[arg-type]
    assert list(c) == [(1.0, b"a"), (2.0, b"b")]
    c.put(True, b"c")  # what float() takes, as a double
    assert c[1] == (1.0, b"c") and type(c[1][0]) is float
    c._check()


@needs_c
def test_arguments_that_change_the_order_as_they_are_read_do_no_harm() -> None:
    """``__index__``, ``__bool__`` and ``__float__`` run Python code: the order is looked at
    only after every argument has been read."""
    c = COrder([(float(i), b"m%d" % i) for i in range(1000)])

    class Emptying:
        def __index__(self) -> int:
            c.cut(0, len(c))
            return 900

        def __bool__(self) -> bool:
            c.cut(0, len(c))
            return True

        def __float__(self) -> float:
            c.cut(0, len(c))
            return 1.0

    assert c.items(Emptying(), 950) == []  # type: ignore[arg-type]
    c.put(1.0, b"a")
    assert c.items(0, 5, Emptying()) == []  # type: ignore[arg-type]
    c.put(1.0, b"a")
    assert c.cut(0, Emptying()) == []  # type: ignore[arg-type]
    c.put(1.0, b"a")
    assert c.bisect_pair(Emptying(), b"a", True) == 0  # type: ignore[arg-type]
    c.put(Emptying(), b"b")  # type: ignore[arg-type]
    assert list(c) == [(1.0, b"b")]
    c._check()


@needs_c
def test_an_iterator_notices_a_change_and_holds_its_order() -> None:
    c = COrder([(float(i), b"m%d" % i) for i in range(500)])
    it = iter(c)
    assert next(it) == (0.0, b"m0")
    c.put(0.5, b"x")
    with pytest.raises(RuntimeError):
        next(it)
    with pytest.raises(StopIteration):
        next(it)
    it = iter(c)
    del c
    assert len(list(it)) == 501


@needs_c
def test_the_order_is_not_tracked_by_the_garbage_collector() -> None:
    """It holds only exact bytes, which refer to nothing: no cycle can pass through it."""
    c = COrder([(1.0, b"a")])
    assert not gc.is_tracked(c)
    assert not gc.is_tracked(iter(c))
    with pytest.raises(TypeError):

        class Sub(COrder):  # type: ignore[valid-type,misc]
            pass


@needs_c
def test_the_c_order_is_the_one_in_use() -> None:
    assert zset.SPEEDUPS is (os.environ.get("REDRAFT_PURE_PYTHON") is None)
    if zset.SPEEDUPS:
        assert type(ZSet().order) is COrder
        assert type(ZSet.from_pairs([(b"a", 1.0)]).order) is COrder
        assert type(ZSet.from_pairs([(b"a", 1.0)]).copy().order) is COrder


@pytest.mark.parametrize(
    "setup",
    [
        "import os; os.environ['REDRAFT_PURE_PYTHON'] = '1'",
        "import sys; sys.modules['redraft.examples.clone._zorder'] = None",
    ],
    ids=["forced", "not-built"],
)
def test_the_python_order_serves_when_forced_or_missing(setup: str) -> None:
    script = f"""
{setup}
from redraft.examples.clone import zset
from redraft.examples.clone.zset import PyOrder, ZSet
assert zset.SPEEDUPS is False and zset.new_order is PyOrder
z = ZSet.from_pairs([(b"b", 2.0), (b"a", 1.0)])
z.add(b"c", 0.5)
assert type(z.order) is PyOrder and type(z.copy().order) is PyOrder
assert list(z) == [(b"c", 0.5), (b"a", 1.0), (b"b", 2.0)]
assert z.rank(b"a") == 1 and z.score_span(1.0, True, 2.0, False) == (2, 3)
print("python order")
"""
    env = {k: v for k, v in os.environ.items() if k != "REDRAFT_PURE_PYTHON"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "python order"
