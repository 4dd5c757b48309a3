"""Tests for the history recorder and the linearizability checker of the fault suite."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import io
import itertools
import math
import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

from tests.jepsen import (
    History,
    Kind,
    Op,
    Outcome,
    Verdict,
    check_counter,
    check_final_value,
    check_history,
    check_key,
    dump_ops,
    load_ops,
    read_ops,
)

# --- building hand-made histories -------------------------------------------------------


def _op(
    client: int | str,
    kind: str,
    key: str,
    value: bytes | str | int | None,
    t0: float,
    t1: float,
    outcome: str = "ok",
    result: bytes | str | int | None = None,
) -> Op:
    return Op.of(client, kind, key, value, invoke=t0, complete=t1, outcome=outcome, result=result)


def w(c: int, value: str, t0: float, t1: float, outcome: str = "ok", key: str = "x") -> Op:
    return _op(c, "set", key, value, t0, t1, outcome)


def r(c: int, result: str | None, t0: float, t1: float, key: str = "x") -> Op:
    return _op(c, "get", key, None, t0, t1, "ok", result)


def d(c: int, result: int, t0: float, t1: float, outcome: str = "ok", key: str = "x") -> Op:
    return _op(c, "del", key, None, t0, t1, outcome, result if outcome == "ok" else None)


def inc(
    c: int,
    result: int | None,
    t0: float,
    t1: float,
    outcome: str = "ok",
    key: str = "n",
    by: int = 1,
) -> Op:
    return _op(c, "incr", key, by, t0, t1, outcome, result)


def verdict(ops: Iterable[Op]) -> Verdict:
    return check_history(list(ops), time_budget=10.0).verdict


# --- an independent reference: the definition of linearizability, searched exhaustively ---

_CANONICAL_INT = re.compile(rb"-?[1-9][0-9]*|0")


def _reference_step(op: Op, state: bytes | None) -> tuple[bool, bytes | None]:
    """Redis semantics on raw bytes, written separately from the checker's model."""
    known = op.outcome is Outcome.OK
    if op.kind is Kind.GET:
        return (not known or op.result == state), state
    if op.kind is Kind.SET:
        assert isinstance(op.value, bytes)
        return True, op.value
    if op.kind is Kind.DEL:
        deleted = 0 if state is None else 1
        return (not known or op.result == deleted), None
    if state is None:
        current = 0
    elif _CANONICAL_INT.fullmatch(state) and -(2**63) <= int(state) < 2**63:
        current = int(state)
    else:
        return False, state
    assert isinstance(op.value, int)
    new = current + op.value
    if not -(2**63) <= new < 2**63:
        return False, state
    return (not known or op.result == new), str(new).encode()


def reference_linearizable(ops: Sequence[Op]) -> bool:
    """Is there, per key, an order of all ok ops and some unknown ops that respects real
    time (an op that completed before another was invoked comes first) and is legal?"""
    by_key: dict[bytes, list[Op]] = {}
    for op in ops:
        if op.outcome is not Outcome.FAIL:
            by_key.setdefault(op.key, []).append(op)
    return all(_reference_key(key_ops) for key_ops in by_key.values())


def _reference_key(ops: list[Op]) -> bool:
    ok_mask = sum(1 << i for i, op in enumerate(ops) if op.outcome is Outcome.OK)
    # Bit j of before[i]: ok op j completed before op i was invoked, so it comes first.
    before = [
        sum(
            1 << j
            for j, other in enumerate(ops)
            if other.outcome is Outcome.OK and other.complete < op.invoke
        )
        for op in ops
    ]
    failed: set[tuple[int, bytes | None]] = set()
    # Explicit stack of (placed ops, state, next op to try) to stay clear of recursion limits.
    stack: list[tuple[int, bytes | None, int]] = [(0, None, 0)]
    while stack:
        placed, state, start = stack.pop()
        if placed & ok_mask == ok_mask:
            return True
        for i in range(start, len(ops)):
            if placed >> i & 1 or before[i] & ~placed:
                continue
            valid, after = _reference_step(ops[i], state)
            nxt = placed | 1 << i
            if valid and (nxt, after) not in failed:
                stack.append((placed, state, i + 1))
                stack.append((nxt, after, 0))
                break
        else:
            failed.add((placed, state))
    return False


# --- a simulated atomic register, to generate large linearizable histories --------------


@dataclasses.dataclass
class _Planned:
    invoke: float
    client: int
    kind: str
    key: str
    value: bytes | int | None
    effect: float  # when it takes effect; inf if never
    complete: float
    outcome: str
    result: bytes | int | None = None


def simulate(
    seed: int,
    *,
    n_ops: int,
    clients: int,
    registers: Sequence[str] = ("r",),
    counters: Sequence[str] = (),
    p_unknown: float = 0.02,
    p_fail: float = 0.01,
    p_del: float = 0.05,
    p_read: float = 0.5,
) -> list[Op]:
    """Concurrent clients against a truly atomic store with random delays.

    Each op takes effect at one instant between its invocation and its
    completion. A failed op never takes effect; an unknown op takes effect
    with probability 1/2, possibly long after its client gave up on it.
    Register writes carry unique values.
    """
    rng = random.Random(seed)
    free = [(1000.0 + rng.random() * 0.001, c) for c in range(clients)]
    heapq.heapify(free)
    keys = [(k, False) for k in registers] + [(k, True) for k in counters]
    plan: list[_Planned] = []
    for n in range(n_ops):
        now, client = heapq.heappop(free)
        invoke = now + rng.expovariate(1 / 0.0002)
        key, is_counter = rng.choice(keys)
        roll = rng.random()
        kind: str
        value: bytes | int | None = None
        if is_counter:
            kind = "get" if roll < p_read / 2 else "incr"
            value = rng.choice((1, 1, 2)) if kind == "incr" else None
        elif roll < p_read:
            kind = "get"
        elif roll < p_read + p_del:
            kind = "del"
        else:
            kind, value = "set", f"{client}:{n}".encode()
        effect = invoke + rng.expovariate(1 / 0.001)
        complete = effect + rng.expovariate(1 / 0.001)
        fate = rng.random()
        if fate < p_fail:
            outcome, effect = "fail", math.inf
        elif fate < p_fail + p_unknown:
            outcome = "unknown"
            # The client times out; the command may still land much later, or never.
            complete = invoke + 0.02
            effect = invoke + rng.expovariate(1 / 0.01) if rng.random() < 0.5 else math.inf
        else:
            outcome = "ok"
        plan.append(_Planned(invoke, client, kind, key, value, effect, complete, outcome))
        heapq.heappush(free, (complete, client))

    store: dict[str, bytes] = {}
    for p in sorted((p for p in plan if p.effect < math.inf), key=lambda p: p.effect):
        if p.kind == "get":
            p.result = store.get(p.key)
        elif p.kind == "set":
            assert isinstance(p.value, bytes)
            store[p.key] = p.value
        elif p.kind == "del":
            p.result = 1 if store.pop(p.key, None) is not None else 0
        else:
            assert isinstance(p.value, int)
            p.result = int(store.get(p.key, b"0")) + p.value
            store[p.key] = str(p.result).encode()
    plan.sort(key=lambda p: p.invoke)
    return [
        Op.of(
            p.client,
            p.kind,
            p.key,
            p.value,
            invoke=p.invoke,
            complete=p.complete,
            outcome=p.outcome,
            result=p.result,
            id=n,
        )
        for n, p in enumerate(plan)
    ]


def random_small_history(rng: random.Random, n: int, *, registers_only: bool = False) -> list[Op]:
    """Arbitrary (mostly not linearizable) ops on one key, for cross-checking.

    ``registers_only`` leaves out INCR and DELs that report a deletion, the
    shape of key for which the checker takes extra shortcuts.
    """
    ops: list[Op] = []
    values = ["1", "2", "a", "3"]
    for i in range(n):
        t0 = rng.uniform(0, 10)
        t1 = t0 + rng.uniform(0, rng.choice([1, 4]))
        outcome = rng.choices(["ok", "unknown", "fail"], [6, 3, 1])[0]
        kinds = ["get", "set", "del", "get", "set"]
        kind = rng.choice(kinds if registers_only else [*kinds, "incr"])
        value: str | int | None = None
        result: str | int | None = None
        if kind == "set":
            value = rng.choice(values)
        elif kind == "incr":
            value = rng.choice([1, 1, 2])
            result = rng.randint(1, 5)
        elif kind == "del":
            result = 0 if registers_only else rng.randint(0, 1)
        else:
            result = rng.choice([*values, None])
        ops.append(
            Op.of(
                i % 3,
                kind,
                "k",
                value,
                invoke=t0,
                complete=t1,
                outcome=outcome,
                result=result,
                id=i,
            )
        )
    return ops


# --- anomalies injected into generated histories --------------------------------------


def _middle(ops: Sequence[Op]) -> float:
    return ops[len(ops) // 2].invoke


def inject_stale_read(ops: list[Op]) -> list[Op]:
    """A read after the middle returns a value that was definitely overwritten before it began."""
    writes = [op for op in ops if op.kind is Kind.SET and op.outcome is Outcome.OK]
    for read_at, read in enumerate(ops):
        if (
            read.invoke < _middle(ops)
            or read.kind is not Kind.GET
            or read.outcome is not Outcome.OK
        ):
            continue
        done = [w2 for w2 in writes if w2.key == read.key and w2.complete < read.invoke]
        for w2 in reversed(done):
            older = [w1 for w1 in done if w1.complete < w2.invoke and w1.value != read.result]
            if older:
                out = list(ops)
                out[read_at] = dataclasses.replace(read, result=older[-1].value)
                return out
    raise AssertionError("no stale read to inject")


def inject_phantom_read(ops: list[Op]) -> list[Op]:
    """A read after the middle returns a value nobody wrote."""
    for at, op in enumerate(ops):
        if op.invoke > _middle(ops) and op.kind is Kind.GET and op.outcome is Outcome.OK:
            out = list(ops)
            out[at] = dataclasses.replace(op, result=b"never written")
            return out
    raise AssertionError("no read to corrupt")


def inject_failed_write_seen(ops: list[Op]) -> list[Op]:
    """An acknowledged write whose value is read later is recorded as failed instead."""
    seen = {op.result for op in ops if op.kind is Kind.GET and op.outcome is Outcome.OK}
    for at, op in enumerate(ops):
        if (
            op.invoke > _middle(ops)
            and op.kind is Kind.SET
            and op.outcome is Outcome.OK
            and op.value in seen
        ):
            out = list(ops)
            out[at] = dataclasses.replace(op, outcome=Outcome.FAIL)
            return out
    raise AssertionError("no observed write to fail")


def inject_double_increment(ops: list[Op]) -> list[Op]:
    """One increment in the middle is applied twice: every later counter value is one higher."""
    middle = _middle(ops)
    out: list[Op] = []
    for op in ops:
        if op.invoke > middle and op.outcome is Outcome.OK and op.kind is Kind.INCR:
            assert isinstance(op.result, int)
            op = dataclasses.replace(op, result=op.result + 1)
        elif op.invoke > middle and op.outcome is Outcome.OK and op.kind is Kind.GET:
            assert op.result is not None
            op = dataclasses.replace(op, result=str(int(op.result) + 1).encode())
        out.append(op)
    return out


# --- hand-made registers -------------------------------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    ops = [
        r(1, None, 0, 1),
        w(1, "a", 2, 3),
        r(2, "a", 4, 5),
        w(2, "b", 6, 7),
        r(1, "b", 8, 9),
    ]
    assert verdict(ops) is Verdict.OK


def test_read_concurrent_with_write_may_see_either_value() -> None:
    old = [w(1, "a", 0, 1), w(2, "b", 2, 6), r(3, "a", 3, 4), r(3, "b", 7, 8)]
    new = [w(1, "a", 0, 1), w(2, "b", 2, 6), r(3, "b", 3, 4), r(3, "b", 7, 8)]
    assert verdict(old) is Verdict.OK
    assert verdict(new) is Verdict.OK


def test_concurrent_writes_may_take_effect_in_either_order() -> None:
    ops = [w(1, "a", 0, 5), w(2, "b", 0, 5), r(3, "b", 1, 2), r(3, "a", 3, 4), r(4, "a", 6, 7)]
    assert verdict(ops) is Verdict.OK


def test_reads_must_agree_on_the_order_of_concurrent_writes() -> None:
    # One reader sees a then b, another sees b then a, all after both writes completed.
    ops = [
        w(1, "a", 0, 1),
        w(2, "b", 0, 1),
        r(3, "a", 2, 3),
        r(3, "b", 4, 5),
        r(4, "a", 6, 7),
    ]
    result = check_history(ops)
    assert result.verdict is Verdict.VIOLATION


def test_stale_read_is_a_violation() -> None:
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3), r(3, "a", 4, 5)]
    result = check_history(ops)
    assert result.verdict is Verdict.VIOLATION
    (bad,) = result.violations
    assert bad.counterexample is not None
    assert bad.counterexample.stuck is ops[2]


def test_lost_write_is_a_violation() -> None:
    # b was acknowledged, but a later read still sees the value before it.
    ops = [w(1, "a", 0, 1), r(2, "a", 1.5, 2), w(1, "b", 3, 4), r(2, "a", 5, 6), r(3, "a", 7, 8)]
    assert verdict(ops) is Verdict.VIOLATION


def test_read_of_a_value_never_written_is_a_violation() -> None:
    ops = [w(1, "a", 0, 1), r(2, "zzz", 2, 3)]
    result = check_history(ops)
    assert result.verdict is Verdict.VIOLATION
    counterexample = result.violations[0].counterexample
    assert counterexample is not None
    assert "'zzz'" in counterexample.format()


def test_read_before_the_write_was_invoked_is_a_violation() -> None:
    assert verdict([r(1, "a", 0, 1), w(2, "a", 2, 3)]) is Verdict.VIOLATION


def test_unknown_write_that_later_appears_is_fine() -> None:
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3, outcome="unknown"), r(3, "a", 4, 5), r(3, "b", 9, 10)]
    assert verdict(ops) is Verdict.OK


def test_unknown_write_that_never_appears_is_fine() -> None:
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3, outcome="unknown"), r(3, "a", 4, 5), r(3, "a", 9, 10)]
    assert verdict(ops) is Verdict.OK


def test_unknown_write_takes_effect_at_most_once() -> None:
    # b may land late, but it cannot land twice around a later acknowledged write.
    ops = [
        w(1, "b", 0, 1, outcome="unknown"),
        r(2, "b", 2, 3),
        w(3, "c", 4, 5),
        r(2, "b", 6, 7),
    ]
    assert verdict(ops) is Verdict.VIOLATION


def test_unknown_write_cannot_take_effect_before_it_is_invoked() -> None:
    ops = [r(1, "b", 0, 1), w(2, "b", 2, 3, outcome="unknown")]
    assert verdict(ops) is Verdict.VIOLATION


def test_failed_write_that_appears_is_a_violation() -> None:
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3, outcome="fail"), r(3, "b", 4, 5)]
    result = check_history(ops)
    assert result.verdict is Verdict.VIOLATION
    counterexample = result.violations[0].counterexample
    assert counterexample is not None
    assert counterexample.role(ops[1]) == "failed write of that value"


def test_failed_write_that_never_appears_is_fine() -> None:
    ops = [w(1, "a", 0, 1), w(2, "b", 2, 3, outcome="fail"), r(3, "a", 4, 5)]
    assert verdict(ops) is Verdict.OK


# --- DEL and INCR --------------------------------------------------------------------------


def test_del_reports_whether_the_key_existed() -> None:
    ops = [d(1, 0, 0, 1), w(1, "a", 2, 3), d(2, 1, 4, 5), r(3, None, 6, 7), d(3, 0, 8, 9)]
    assert verdict(ops) is Verdict.OK


def test_del_of_a_missing_key_cannot_return_1() -> None:
    assert verdict([d(1, 1, 0, 1)]) is Verdict.VIOLATION
    assert verdict([w(1, "a", 0, 1), d(2, 1, 2, 3), d(3, 1, 4, 5)]) is Verdict.VIOLATION


def test_read_after_an_acknowledged_del_sees_nothing() -> None:
    assert verdict([w(1, "a", 0, 1), d(2, 1, 2, 3), r(3, "a", 4, 5)]) is Verdict.VIOLATION


def test_concurrent_dels_only_one_deletes() -> None:
    ok = [w(1, "a", 0, 1), d(2, 1, 2, 5), d(3, 0, 2, 5)]
    both = [w(1, "a", 0, 1), d(2, 1, 2, 5), d(3, 1, 2, 5)]
    assert verdict(ok) is Verdict.OK
    assert verdict(both) is Verdict.VIOLATION


def test_unknown_del_may_explain_a_missing_key() -> None:
    ops = [w(1, "a", 0, 1), d(2, 0, 2, 3, outcome="unknown"), r(3, None, 4, 5)]
    assert verdict(ops) is Verdict.OK


def test_incr_counts_from_zero_and_returns_the_new_value() -> None:
    ops = [inc(1, 1, 0, 1), inc(2, 2, 2, 3), inc(1, 5, 4, 5, by=3), r(3, "5", 6, 7, key="n")]
    assert verdict(ops) is Verdict.OK


def test_concurrent_incrs_return_distinct_values() -> None:
    assert verdict([inc(1, 2, 0, 5), inc(2, 1, 0, 5), inc(3, 3, 1, 6)]) is Verdict.OK
    assert verdict([inc(1, 1, 0, 5), inc(2, 1, 0, 5)]) is Verdict.VIOLATION


def test_increment_applied_twice_is_a_violation() -> None:
    assert verdict([inc(1, 1, 0, 1), inc(2, 3, 2, 3)]) is Verdict.VIOLATION
    ops = [inc(1, 1, 0, 1), inc(2, 2, 2, 3), r(3, "3", 4, 5, key="n")]
    assert verdict(ops) is Verdict.VIOLATION


def test_unknown_increment_may_explain_a_gap_once() -> None:
    once = [inc(1, 1, 0, 1), inc(2, None, 2, 3, outcome="unknown"), inc(1, 3, 4, 5)]
    twice = [inc(1, 1, 0, 1), inc(2, None, 2, 3, outcome="unknown"), inc(1, 4, 4, 5)]
    assert verdict(once) is Verdict.OK
    assert verdict(twice) is Verdict.VIOLATION


def test_incr_works_on_integer_text_written_by_set() -> None:
    ops = [w(1, "41", 0, 1, key="n"), inc(2, 42, 2, 3), r(3, "42", 4, 5, key="n")]
    assert verdict(ops) is Verdict.OK


def test_incr_cannot_succeed_on_non_integer_text() -> None:
    assert verdict([w(1, "x", 0, 1, key="n"), inc(2, 1, 2, 3)]) is Verdict.VIOLATION
    # Redis rejects leading zeros and plus signs as integers.
    assert verdict([w(1, "07", 0, 1, key="n"), inc(2, 8, 2, 3)]) is Verdict.VIOLATION


def test_incr_starts_from_the_initial_value() -> None:
    result = check_history([inc(1, 11, 0, 1)], initial={b"n": b"10"})
    assert result.verdict is Verdict.OK


# --- partitioning and results --------------------------------------------------------------


def test_keys_are_checked_independently() -> None:
    x = [w(1, "a", 0, 10, key="x"), r(2, "a", 1, 2, key="x")]
    # The same real-time shape is fine on another key with its own writes.
    y = [w(3, "b", 0, 10, key="y"), r(4, "b", 1, 2, key="y"), r(4, None, 3, 4, key="z")]
    stale = [w(5, "c", 0, 1, key="s"), w(5, "d", 2, 3, key="s"), r(6, "c", 4, 5, key="s")]
    result = check_history(x + y + stale)
    assert set(result.keys) == {b"x", b"y", b"z", b"s"}
    assert result.verdict is Verdict.VIOLATION
    assert [k.key for k in result.violations] == [b"s"]
    assert result.keys[b"x"].verdict is Verdict.OK
    assert result.keys[b"y"].verdict is Verdict.OK


def test_a_read_of_another_keys_value_is_a_violation() -> None:
    ops = [w(1, "a", 0, 1, key="x"), r(2, "a", 2, 3, key="y")]
    result = check_history(ops)
    assert result.keys[b"x"].verdict is Verdict.OK
    assert result.keys[b"y"].verdict is Verdict.VIOLATION


def test_empty_history_and_history_of_failures_are_linearizable() -> None:
    assert check_history([]).verdict is Verdict.OK
    assert verdict([w(1, "a", 0, 1, outcome="fail"), w(2, "b", 0, 1, outcome="fail")]) is Verdict.OK
    assert verdict([w(1, "a", 0, 1, outcome="unknown")]) is Verdict.OK


def test_counterexample_shows_the_stuck_op_and_prefix() -> None:
    # a/b disagreement found by the search (every op overlaps another one).
    ops = [
        w(1, "a", 0, 2),
        w(2, "b", 0, 2),
        r(3, "a", 1, 3),
        r(4, "b", 1, 3),
        r(3, "a", 2.5, 4),
        r(4, "b", 2.5, 4),
    ]
    result = check_history(ops)
    assert result.verdict is Verdict.VIOLATION
    counterexample = result.violations[0].counterexample
    assert counterexample is not None
    text = result.format()
    assert "STUCK" in text
    assert "longest linearizable prefix" in text
    assert counterexample.stuck in ops
    # Rows are sorted by invocation and times are relative to the history start.
    shown = counterexample.ops()
    assert shown == sorted(shown, key=lambda op: op.invoke)
    assert "0.000000" in text


def test_budget_exhaustion_is_reported_as_unknown_not_as_violation() -> None:
    ops = simulate(7, n_ops=400, clients=10)
    result = check_history(ops, step_budget=1)
    assert result.verdict is Verdict.UNKNOWN
    (undecided,) = result.undecided
    assert "budget" in undecided.reason
    assert not result.violations
    assert check_history(ops).verdict is Verdict.OK


# --- agreement with the reference on small histories ----------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("registers_only", [False, True])
def test_checker_agrees_with_exhaustive_reference_on_random_small_histories(
    registers_only: bool,
) -> None:
    rng = random.Random(20240601)
    outcomes = {True: 0, False: 0}
    for _ in range(2000):
        ops = random_small_history(rng, rng.randint(1, 8), registers_only=registers_only)
        expected = reference_linearizable(ops)
        outcomes[expected] += 1
        assert (check_history(ops).verdict is Verdict.OK) == expected, ops
    # Both verdicts must be well represented for the comparison to mean anything.
    assert min(outcomes.values()) > 300


@pytest.mark.timeout(60)
def test_checker_agrees_with_reference_on_small_perturbed_simulations() -> None:
    rng = random.Random(7)
    outcomes = {True: 0, False: 0}
    for _ in range(600):
        ops = simulate(
            rng.randrange(2**32),
            n_ops=rng.randint(4, 10),
            clients=rng.randint(2, 4),
            registers=("r",),
            counters=("c",),
            p_unknown=0.2,
            p_fail=0.1,
            p_del=0.15,
        )
        at = rng.randrange(len(ops))
        op = ops[at]
        if op.outcome is Outcome.OK and op.kind is Kind.GET:
            written = [o.value for o in ops if o.kind is Kind.SET and o.key == op.key]
            ops[at] = dataclasses.replace(op, result=rng.choice([*written, None]))
        elif op.outcome is Outcome.OK and op.kind is Kind.INCR:
            assert isinstance(op.result, int)
            ops[at] = dataclasses.replace(op, result=op.result + rng.choice([-1, 1]))
        expected = reference_linearizable(ops)
        outcomes[expected] += 1
        assert (check_history(ops).verdict is Verdict.OK) == expected, ops
    assert min(outcomes.values()) > 50


# --- large generated histories ------------------------------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", [1, 2])
def test_large_generated_register_histories_pass(seed: int) -> None:
    ops = simulate(seed, n_ops=3000, clients=30, p_unknown=0.05, p_del=0.1)
    result = check_history(ops, time_budget=30)
    assert result.verdict is Verdict.OK, result.format()


@pytest.mark.timeout(90)
def test_violation_late_in_a_large_history_is_found_by_the_search() -> None:
    ops = simulate(8, n_ops=3000, clients=30, p_unknown=0.05, p_del=0.0)
    t = max(op.complete for op in ops if op.outcome is Outcome.OK) + 1
    # Two readers disagree on the order of two concurrent writes; everything overlaps,
    # so only the search can tell.
    tail = [
        w(1, "A", t, t + 2, key="r"),
        w(2, "B", t, t + 2, key="r"),
        r(3, "A", t + 1, t + 3, key="r"),
        r(4, "B", t + 1, t + 3, key="r"),
        r(3, "A", t + 2.5, t + 4, key="r"),
        r(4, "B", t + 2.5, t + 4, key="r"),
    ]
    result = check_history(ops + tail, time_budget=30)
    assert result.verdict is Verdict.VIOLATION
    counterexample = result.violations[0].counterexample
    assert counterexample is not None
    assert counterexample.stuck in tail
    assert counterexample.prefix_length >= len([op for op in ops if op.outcome is Outcome.OK])


@pytest.mark.timeout(90)
def test_large_generated_counter_and_mixed_histories_pass() -> None:
    counter = simulate(3, n_ops=3000, clients=30, registers=(), counters=("c",), p_unknown=0.05)
    mixed = simulate(4, n_ops=3000, clients=20, registers=("a", "b"), counters=("c",))
    assert check_history(counter, time_budget=30).verdict is Verdict.OK
    result = check_history(mixed, time_budget=30)
    assert result.verdict is Verdict.OK
    assert set(result.keys) == {b"a", b"b", b"c"}


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "inject", [inject_stale_read, inject_phantom_read, inject_failed_write_seen]
)
def test_one_injected_register_anomaly_is_flagged(
    inject: Callable[[list[Op]], list[Op]],
) -> None:
    ops = simulate(5, n_ops=3000, clients=30, p_unknown=0.05, p_del=0.1)
    bad = inject(ops)
    result = check_history(bad, time_budget=30)
    assert result.verdict is Verdict.VIOLATION
    (violation,) = result.violations
    assert violation.counterexample is not None


@pytest.mark.timeout(90)
@pytest.mark.parametrize("p_unknown", [0.0, 0.05])
def test_double_increment_in_a_large_counter_history_is_flagged(p_unknown: float) -> None:
    ops = simulate(6, n_ops=3000, clients=30, registers=(), counters=("c",), p_unknown=p_unknown)
    result = check_history(inject_double_increment(ops), time_budget=30)
    assert result.verdict is Verdict.VIOLATION


# --- counter and final-value helpers -------------------------------------------------------


def test_counter_bounds_use_ok_and_unknown_increments() -> None:
    ops = [
        inc(1, 1, 0, 1),
        inc(2, 3, 2, 3, by=2),
        inc(3, None, 4, 5, outcome="unknown", by=5),
        inc(4, None, 4, 5, outcome="fail", by=100),
        inc(5, 1, 0, 1, key="other"),
    ]
    assert check_counter(ops, b"3", key="n").ok
    assert check_counter(ops, b"8", key="n").ok
    low = check_counter(ops, b"2", key="n")
    assert not low.ok
    assert "[3, 8]" in str(low)
    assert not check_counter(ops, 9, key="n").ok
    assert check_counter([], None).ok


def test_final_value_must_come_from_a_write_not_definitely_overwritten() -> None:
    ops = [
        w(1, "a", 0, 1),
        w(2, "b", 2, 5),
        w(3, "c", 3, 4),
        w(4, "d", 6, 7, outcome="unknown"),
        w(5, "e", 6, 7, outcome="fail"),
        r(6, "b", 8, 9),
    ]
    assert check_final_value(ops, b"b").ok
    assert check_final_value(ops, b"c").ok
    assert check_final_value(ops, "d").ok
    assert not check_final_value(ops, b"a").ok  # overwritten by b and c
    assert not check_final_value(ops, b"e").ok  # failed
    assert not check_final_value(ops, None).ok  # acknowledged writes happened, no DEL
    with_del = [*ops, d(7, 1, 8, 9, outcome="unknown")]
    assert check_final_value(with_del, None).ok
    assert check_final_value([], None).ok


# --- the recorder -------------------------------------------------------------------------


def test_history_records_outcomes_and_reports_pending_ops_as_unknown() -> None:
    ticks = iter(range(100))
    history = History(clock=lambda: float(next(ticks)))
    a = history.invoke(1, "set", "k", "v")
    b = history.invoke(2, Kind.GET, b"k")
    c = history.invoke(3, "incr", "n")
    history.ok(a)
    history.complete(b, "ok", "v")
    ops = history.ops()
    assert [op.id for op in ops] == [a, b, c]
    assert ops[0] == Op.of(1, "set", "k", b"v", invoke=0, complete=3, outcome="ok", id=a)
    assert ops[1].result == b"v" and ops[1].complete == 4
    assert ops[2].outcome is Outcome.UNKNOWN and ops[2].complete == math.inf
    assert ops[2].value == 1
    with pytest.raises(ValueError):
        history.ok(a)


def test_history_is_thread_safe() -> None:
    history = History()

    def client(n: int) -> None:
        for i in range(200):
            handle = history.invoke(n, "set", "k", f"{n}:{i}")
            history.ok(handle)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ops = history.ops()
    assert len(ops) == len(history) == 1600
    assert len({op.id for op in ops}) == 1600
    # Handles are handed out in invocation order.
    assert all(a.invoke <= b.invoke for a, b in itertools.pairwise(ops))
    assert check_history(ops).verdict is Verdict.OK


def test_recording_context_manager_works_with_asyncio() -> None:
    history = History()

    async def run() -> None:
        async with history.recording(1, "set", "k", "v") as rec:
            await asyncio.sleep(0)
            rec.ok()
        with pytest.raises(ConnectionError):
            async with history.recording(2, "get", "k"):
                raise ConnectionError("lost")
        with history.recording(3, "set", "k", "w") as rec:
            rec.fail()

    asyncio.run(run())
    ops = history.ops()
    assert [op.outcome for op in ops] == [Outcome.OK, Outcome.UNKNOWN, Outcome.FAIL]


def test_json_lines_round_trip(tmp_path: Path) -> None:
    ops = [
        _op(1, "set", "k", b"\xff\x00binary", 0.5, 1.5),
        _op(2, "get", "k", None, 1.0, 2.0, "ok", b"\xff\x00binary"),
        _op(3, "get", "k", None, 1.0, 2.0, "ok", None),
        _op("c4", "incr", "n", 5, 1.0, 9.0, "unknown"),
        _op(5, "del", "k", None, 3.0, 4.0, "ok", 1),
        _op(6, "set", "ключ", "значение", 3.0, 4.0, "fail"),
    ]
    buffer = io.StringIO()
    dump_ops(ops, buffer)
    assert len(buffer.getvalue().splitlines()) == len(ops)
    assert load_ops(io.StringIO(buffer.getvalue())) == ops
    history = History()
    history.ok(history.invoke(1, "set", "k", 7))
    history.invoke(2, "get", "k")
    path = tmp_path / "history.jsonl"
    history.save(path)
    loaded = read_ops(path)
    assert loaded == history.ops()
    assert loaded[0].value == b"7"
    assert check_key(loaded).verdict is Verdict.OK


def test_op_validation() -> None:
    with pytest.raises(ValueError):
        Op.of(1, "set", "k", None, invoke=0, complete=1)
    with pytest.raises(ValueError):
        Op.of(1, "get", "k", "v", invoke=0, complete=1)
    with pytest.raises(ValueError):
        Op.of(1, "get", "k", invoke=2, complete=1)
    with pytest.raises(ValueError):
        Op.of(1, "incr", "k", invoke=0, complete=1, result="not a number")
    with pytest.raises(ValueError):
        check_key([r(1, None, 0, 1, key="a"), r(1, None, 0, 1, key="b")])
