"""Linearizability checker for recorded key-value histories.

Each key is a register with Redis semantics (GET, SET, DEL, INCR). Keys are
independent, so the history is split per key and each part is checked on its
own (P-compositionality, as Porcupine does).

The per-key search is Wing & Gong's with Lowe's refinements: call and return
events sit in a doubly linked list sorted by time; the search linearizes a
call whose op may take effect now, lifts it out of the list and carries on,
and backtracks when it reaches a return event whose op it could not place. A
cache of (set of linearized ops, model state) stops it from exploring the same
configuration twice.

Failed ops are dropped: they did not happen. Unknown ops have no return event,
so they may take effect at any point after their invocation, or never; the
search succeeds as soon as every acknowledged op is placed.

Before searching, a linear pass looks for reads no write can explain (a
value never written, or overwritten by an op that definitely came between
its write and the read): stale reads and lost writes are reported at once,
with the three ops that prove them. On top of Lowe's algorithm, the search
prunes with rules that each keep the verdict exact (see ``_KeySearch``):
reads that agree with the state are placed at once; unknown ops are never
placed where their effect is lost; ops with the same effect are tried once;
present values no remaining read needs are treated as one state; and a move
after which some read can never be satisfied is not made.

The search is bounded by a per-key time and step budget; a key whose budget
runs out is reported as ``unknown``, never as a violation.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .history import Kind, Op, Outcome

__all__ = [
    "CheckResult",
    "CounterCheck",
    "Counterexample",
    "FinalValueCheck",
    "KeyResult",
    "Verdict",
    "check_counter",
    "check_final_value",
    "check_history",
    "check_key",
]

State = int | bytes | None
"""Model state of one key: None when absent, int for canonical int64 text, else bytes."""

_GET, _SET, _DEL, _INCR = 0, 1, 2, 3
_KIND_CODE = {Kind.GET: _GET, Kind.SET: _SET, Kind.DEL: _DEL, Kind.INCR: _INCR}
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# How often (in model steps) the search looks at its budget.
_CHECK_EVERY = 4096
# How many ops of the longest linearizable prefix a counterexample shows.
_PREFIX_TAIL = 8
# Upper bound on the rows of a counterexample table.
_MAX_ROWS = 40
# How many ops after a write the stale-read pre-check looks at per read.
_GAP_SCAN = 256


def _normalise(value: bytes | int | None) -> State:
    """Map stored bytes to the model state: Redis treats canonical int64 text as an integer."""
    if not isinstance(value, bytes):
        return value
    if 0 < len(value) <= 20 and (value[0] == 0x2D or 0x30 <= value[0] <= 0x39):
        try:
            number = int(value)
        except ValueError:
            return value
        # Redis's string2ll rejects "+1", "01", "-0", " 1" and out-of-range values.
        if str(number).encode() == value and _INT64_MIN <= number <= _INT64_MAX:
            return number
    return value


def _show(value: State | bytes) -> str:
    if value is None:
        return "nil"
    if isinstance(value, int):
        return str(value)
    try:
        return repr(value.decode())
    except UnicodeDecodeError:
        return repr(value)


class Verdict(StrEnum):
    """The outcome of checking one key, or a whole history."""

    OK = "ok"
    VIOLATION = "violation"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Counterexample:
    """Why one key has no linearization, and the ops that show it.

    ``summary`` says what went wrong, ``stuck`` is the acknowledged op that
    cannot be placed, and ``involved`` pairs every op worth looking at with
    its role. When the search found the violation, ``prefix_length`` counts
    the acknowledged ops of the longest linearizable prefix it found and
    ``state`` is the key's value after that prefix.
    """

    key: bytes
    summary: str
    stuck: Op
    involved: tuple[tuple[Op, str], ...]
    prefix_length: int = 0
    state: bytes | None = None

    def ops(self) -> list[Op]:
        """The ops involved, sorted by invocation time."""
        return sorted({id(op): op for op, _ in self.involved}.values(), key=_by_invoke)

    def role(self, op: Op) -> str:
        """The role of ``op`` in this counterexample ("" if it is not involved)."""
        return next((role for other, role in self.involved if other is op), "")

    def format(self, start: float | None = None) -> str:
        """A readable table of the ops involved, with times relative to ``start``."""
        ops = self.ops()
        base = min(op.invoke for op in ops) if start is None else start
        lines = [
            f"key {_show(self.key)}: not linearizable: {self.summary}",
            f"stuck on {_describe(self.stuck, base)}",
        ]
        header = ("id", "client", "op", "value", "outcome", "result", "invoke", "complete", "role")
        rows = [header]
        shown = ops if len(ops) <= _MAX_ROWS else _closest(ops, self.stuck, _MAX_ROWS)
        for op in shown:
            rows.append(
                (
                    str(op.id),
                    str(op.client),
                    op.kind.value,
                    "" if op.value is None else _show(op.value),
                    op.outcome.value,
                    _show(op.result) if _has_result(op) else "",
                    f"{op.invoke - base:.6f}",
                    "?" if op.complete == math.inf else f"{op.complete - base:.6f}",
                    self.role(op),
                )
            )
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            lines.append("  " + "  ".join(cells))
        if len(shown) < len(ops):
            lines.append(f"  ({len(ops) - len(shown)} more ops involved, not shown)")
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.format()


def _by_invoke(op: Op) -> tuple[float, int]:
    return (op.invoke, op.id)


def _has_result(op: Op) -> bool:
    return op.outcome is Outcome.OK and op.kind is not Kind.SET


def _closest(ops: list[Op], anchor: Op, limit: int) -> list[Op]:
    ranked = sorted(ops, key=lambda op: abs(op.invoke - anchor.invoke))[:limit]
    return sorted(ranked, key=_by_invoke)


def _describe(op: Op, base: float) -> str:
    what = op.kind.value
    if op.value is not None:
        what += f" {_show(op.value)}"
    if _has_result(op):
        what += f" -> {_show(op.result)}"
    end = "?" if op.complete == math.inf else f"{op.complete - base:.6f}"
    return (
        f"op {op.id} (client {op.client}: {what}, {op.outcome.value}, "
        f"{op.invoke - base:.6f}..{end})"
    )


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key.

    ``ops`` counts the ops the search had to consider (failed ops, unknown
    reads and unknown writes nobody could observe are left out), ``steps`` the
    model transitions it tried. ``reason`` explains an ``unknown`` verdict.
    """

    key: bytes
    verdict: Verdict
    ops: int
    steps: int
    elapsed: float
    reason: str = ""
    counterexample: Counterexample | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Per-key verdicts for a whole history."""

    keys: dict[bytes, KeyResult]
    start: float = 0.0
    elapsed: float = 0.0

    @property
    def verdict(self) -> Verdict:
        """VIOLATION if any key has one, else UNKNOWN if any key ran out of budget, else OK."""
        verdicts = {r.verdict for r in self.keys.values()}
        if Verdict.VIOLATION in verdicts:
            return Verdict.VIOLATION
        if Verdict.UNKNOWN in verdicts:
            return Verdict.UNKNOWN
        return Verdict.OK

    @property
    def ok(self) -> bool:
        """True when every key was proven linearizable."""
        return self.verdict is Verdict.OK

    @property
    def violations(self) -> list[KeyResult]:
        """Keys proven not linearizable."""
        return [r for r in self.keys.values() if r.verdict is Verdict.VIOLATION]

    @property
    def undecided(self) -> list[KeyResult]:
        """Keys whose search ran out of budget."""
        return [r for r in self.keys.values() if r.verdict is Verdict.UNKNOWN]

    def format(self) -> str:
        """A summary line, then every violation's counterexample and every undecided key."""
        counts = {v: 0 for v in Verdict}
        for r in self.keys.values():
            counts[r.verdict] += 1
        lines = [
            f"{self.verdict.value}: {len(self.keys)} keys, {counts[Verdict.OK]} ok, "
            f"{counts[Verdict.VIOLATION]} violations, {counts[Verdict.UNKNOWN]} unknown "
            f"(checked in {self.elapsed:.2f}s)"
        ]
        for r in self.violations:
            assert r.counterexample is not None
            lines.append(r.counterexample.format(self.start))
        for r in self.undecided:
            lines.append(f"key {_show(r.key)}: unknown: {r.reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def check_history(
    ops: Iterable[Op],
    *,
    time_budget: float = 10.0,
    step_budget: int | None = 5_000_000,
    initial: Mapping[bytes, bytes | None] | None = None,
) -> CheckResult:
    """Check every key of a history for linearizability, each key on its own.

    ``time_budget`` (seconds) and ``step_budget`` (model transitions tried)
    bound the search for each key; a key that exhausts either is reported as
    ``unknown``. ``initial`` gives a key's value before the history (absent by
    default).
    """
    began = time.perf_counter()
    by_key: dict[bytes, list[Op]] = {}
    start = math.inf
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
        start = min(start, op.invoke)
    initial = initial or {}
    results = {
        key: check_key(
            key_ops,
            time_budget=time_budget,
            step_budget=step_budget,
            initial=initial.get(key),
        )
        for key, key_ops in by_key.items()
    }
    return CheckResult(
        keys=results,
        start=0.0 if start == math.inf else start,
        elapsed=time.perf_counter() - began,
    )


def check_key(
    ops: Iterable[Op],
    *,
    time_budget: float = 10.0,
    step_budget: int | None = 5_000_000,
    initial: bytes | None = None,
) -> KeyResult:
    """Check the ops of a single key (they must all share one key)."""
    began = time.perf_counter()
    listed = list(ops)
    keys = {op.key for op in listed}
    if len(keys) > 1:
        raise ValueError(f"check_key needs ops of one key, got {len(keys)} keys")
    key = keys.pop() if keys else b""
    problem = _prepare(key, listed)
    start_state = _normalise(initial)
    if problem.acknowledged == 0:
        return KeyResult(key, Verdict.OK, len(problem.ops), 0, time.perf_counter() - began)
    early = _unsupported_read(problem, start_state, listed)
    if early is not None:
        return KeyResult(
            key,
            Verdict.VIOLATION,
            len(problem.ops),
            0,
            time.perf_counter() - began,
            counterexample=early,
        )
    search = _KeySearch(problem, start_state)
    verdict = search.run(
        deadline=began + time_budget,
        max_steps=math.inf if step_budget is None else step_budget,
    )
    elapsed = time.perf_counter() - began
    reason = ""
    if verdict is Verdict.UNKNOWN:
        reason = (
            f"search budget exhausted after {search.steps} steps in {elapsed:.2f}s "
            f"(time budget {time_budget}s, step budget {step_budget}); "
            f"longest linearizable prefix placed {search.best_placed} of "
            f"{problem.acknowledged} acknowledged ops"
        )
    return KeyResult(
        key=key,
        verdict=verdict,
        ops=len(problem.ops),
        steps=search.steps,
        elapsed=elapsed,
        reason=reason,
        counterexample=search.counterexample(listed) if verdict is Verdict.VIOLATION else None,
    )


@dataclass(slots=True)
class _Problem:
    """The ops of one key that the search must consider, as parallel arrays."""

    key: bytes
    ops: list[Op]
    kind: list[int] = field(default_factory=list)
    arg: list[State] = field(default_factory=list)
    res: list[State] = field(default_factory=list)
    known: list[bool] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return sum(self.known)


def _effect_state(op: Op) -> State:
    """The state an unknown SET or DEL leaves behind, whatever came before."""
    return _normalise(op.value) if op.kind is Kind.SET else None


class _Acceptors:
    """Which states some op among a set could be linearized right after.

    Only ops whose validity depends on the prior state matter here: reads, DEL
    (its result says whether the key existed) and INCR (it needs an integer).
    """

    __slots__ = ("absent", "any_int", "exact", "present")

    def __init__(self) -> None:
        self.exact: set[State] = set()
        self.present = False
        self.absent = False
        self.any_int = False

    def add(self, kind: int, known: bool, arg: State, res: State) -> None:
        if kind == _GET:
            self.exact.add(res)
        elif kind == _DEL:
            if known:
                if res:
                    self.present = True
                else:
                    self.absent = True
        elif kind == _INCR:
            if known:
                assert isinstance(res, int) and isinstance(arg, int)
                before = res - arg
                self.exact.add(before)
                if before == 0:
                    self.exact.add(None)
            else:
                self.any_int = True

    def accepts(self, state: State, was_absent: bool = True) -> bool:
        """Whether some op could follow a move to ``state``.

        A DEL that returns 1 only needs the key to exist, so it only justifies
        an unknown write when the key did not exist before (``was_absent``).
        """
        if state in self.exact:
            return True
        if state is None:
            return self.absent or self.any_int
        return (self.present and was_absent) or (self.any_int and isinstance(state, int))


def _prepare(key: bytes, ops: list[Op]) -> _Problem:
    """Drop ops that cannot matter and encode the rest for the search."""
    acceptors = _Acceptors()
    kept: list[Op] = []
    unknown_blind: list[Op] = []
    for op in ops:
        if op.outcome is Outcome.FAIL:
            continue
        known = op.outcome is Outcome.OK
        if not known and op.kind is Kind.GET:
            # A read nobody saw the answer of constrains nothing.
            continue
        if not known and op.kind is Kind.INCR and op.value == 0:
            continue
        if not known and op.kind in (Kind.SET, Kind.DEL):
            unknown_blind.append(op)
            continue
        kept.append(op)
        if op.kind is not Kind.SET:
            acceptors.add(
                _KIND_CODE[op.kind], known, op.value, _normalise(op.result) if known else None
            )
    # An unknown SET or DEL whose resulting state no op could ever follow can only
    # ever be the last op placed, where it changes nothing; leave it out.
    kept.extend(op for op in unknown_blind if acceptors.accepts(_effect_state(op)))
    kept.sort(key=lambda op: (op.invoke, op.id))
    problem = _Problem(key=key, ops=kept)
    for op in kept:
        known = op.outcome is Outcome.OK
        problem.kind.append(_KIND_CODE[op.kind])
        problem.arg.append(_normalise(op.value))
        problem.res.append(_normalise(op.result) if known else None)
        problem.known.append(known)
    return problem


def _apply(kind: int, known: bool, arg: State, res: State, state: State) -> tuple[bool, State]:
    """One model transition: (is the op valid in ``state``, the state after it)."""
    if kind == _GET:
        return res == state, state
    if kind == _SET:
        return True, arg
    if kind == _DEL:
        if known and res != (0 if state is None else 1):
            return False, state
        return True, None
    if state is None:
        current = 0
    elif isinstance(state, int):
        current = state
    else:
        return False, state
    assert isinstance(arg, int)
    new = current + arg
    if not _INT64_MIN <= new <= _INT64_MAX:
        return False, state
    if known and res != new:
        return False, state
    return True, new


def _written(p: _Problem, o: int) -> tuple[bool, State]:
    """Whether op ``o`` can set the key to some state whatever came before, and which."""
    kind = p.kind[o]
    if kind == _SET:
        return True, p.arg[o]
    if kind == _DEL and not (p.known[o] and p.res[o] == 0):
        return True, None
    if kind == _INCR and p.known[o]:
        return True, p.res[o]
    return False, None


def _unsupported_read(p: _Problem, initial: State, listed: list[Op]) -> Counterexample | None:
    """Find a read that no write can explain, without searching.

    A read of v needs a write of v (or the initial state) that is invoked
    before the read returns and that no acknowledged op incompatible with v
    definitely follows (invoked after the write completed, completed before
    the read began). Of the writes of v invoked in time, the one completing
    last leaves the smallest gap, so only that one is examined. This catches
    stale reads, lost writes and reads of values never written at once.
    """
    n = len(p.ops)
    # An unknown INCR may have produced any integer.
    wild_ints = any(p.kind[o] == _INCR and not p.known[o] for o in range(n))
    invokes = [op.invoke for op in p.ops]
    writers: dict[State, list[int]] = {}
    for o in range(n):
        writes, value = _written(p, o)
        if writes:
            writers.setdefault(value, []).append(o)
    # For each value: writers sorted by invocation, and the latest completion so far.
    writer_invokes: dict[State, list[float]] = {}
    latest: dict[State, list[int]] = {}
    for value, group in writers.items():
        writer_invokes[value] = [invokes[o] for o in group]
        best: list[int] = []
        for o in group:
            if not best or p.ops[o].complete > p.ops[best[-1]].complete:
                best.append(o)
            else:
                best.append(best[-1])
        latest[value] = best

    for r in range(n):
        if not (p.known[r] and (p.kind[r] == _GET or (p.kind[r] == _DEL and p.res[r] == 0))):
            continue
        value = p.res[r] if p.kind[r] == _GET else None
        if wild_ints and isinstance(value, int):
            continue
        read = p.ops[r]
        usable = bisect.bisect_right(writer_invokes.get(value, []), read.complete)
        if usable:
            source = latest[value][usable - 1]
            since = p.ops[source].complete
        elif value == initial:
            source, since = -1, -math.inf
        else:
            return _no_writer(p, r, value, listed)
        if since >= read.invoke:
            continue
        # An acknowledged op that falls entirely between the write and the read
        # must be linearized between them, so it must leave the value alone.
        at = bisect.bisect_right(invokes, since)
        limit = min(n, at + _GAP_SCAN)
        while at < limit and invokes[at] < read.invoke:
            op = p.ops[at]
            if p.known[at] and op.complete < read.invoke:
                valid, after = _apply(p.kind[at], True, p.arg[at], p.res[at], value)
                if not valid or after != value:
                    return _overwritten(p, r, source, at, value)
            at += 1
    return None


def _no_writer(p: _Problem, r: int, value: State, listed: list[Op]) -> Counterexample:
    read = p.ops[r]
    involved = [(read, "STUCK")]
    failed = [
        op
        for op in listed
        if op.outcome is Outcome.FAIL
        and op.kind is Kind.SET
        and op.value is not None
        and _normalise(op.value) == value
    ]
    involved.extend((op, "failed write of that value") for op in failed)
    late = [
        op
        for op in p.ops
        if op.kind is Kind.SET and _normalise(op.value) == value and op.invoke > read.complete
    ]
    involved.extend((op, "writes it, but after STUCK returned") for op in late)
    summary = (
        f"op {read.id} reads {_show(value)}, which no acknowledged or unknown op "
        "invoked before it returned could have written"
    )
    if failed:
        summary += " (failed writes did not happen)"
    return Counterexample(key=p.key, summary=summary, stuck=read, involved=tuple(involved))


def _overwritten(p: _Problem, r: int, source: int, x: int, value: State) -> Counterexample:
    read, later = p.ops[r], p.ops[x]
    involved = [(read, "STUCK"), (later, "changes the value in between")]
    if source >= 0:
        write = p.ops[source]
        involved.append((write, "last write of that value to complete"))
        summary = (
            f"op {read.id} reads {_show(value)}, but op {later.id} changed the value "
            f"after op {write.id} (the last write of {_show(value)}) completed and "
            f"before op {read.id} began"
        )
    else:
        summary = (
            f"op {read.id} reads the initial value {_show(value)}, but op {later.id} "
            f"changed the value before op {read.id} began"
        )
    return Counterexample(key=p.key, summary=summary, stuck=read, involved=tuple(involved))


class _Witnesses:
    """Detects moves that leave a state some unplaced read can then never see.

    A read of value v (GET, or DEL returning 0 for "absent") must be placed
    while the state is v, before its return event. Once the state leaves v,
    that needs an unplaced op able to write v and invoked before the read
    returns. It is enough to compare the unplaced read that returns first
    with the unplaced writer invoked first.
    """

    def __init__(self, p: _Problem, call_entry: list[int], ret_entry: list[int]) -> None:
        n = len(p.ops)
        self.call_entry = call_entry
        self.ret_entry = ret_entry
        self.vid: dict[State, int] = {}
        self.rvid = [-1] * n
        self.wvid = [-1] * n
        self.unknown_incr = [p.kind[o] == _INCR and not p.known[o] for o in range(n)]
        # Unplaced unknown INCRs: any of them may bring back any integer.
        self.wild = sum(self.unknown_incr)
        for o in range(n):
            if p.known[o] and p.kind[o] == _GET:
                self.rvid[o] = self.vid.setdefault(p.res[o], len(self.vid))
            elif p.known[o] and p.kind[o] == _DEL and p.res[o] == 0:
                self.rvid[o] = self.vid.setdefault(None, len(self.vid))
        self.readers: list[list[int]] = [[] for _ in self.vid]
        self.writers: list[list[int]] = [[] for _ in self.vid]
        for o in range(n):
            writes, written = _written(p, o)
            if writes:
                self.wvid[o] = self.vid.get(written, -1)
        for o in range(n):
            if self.rvid[o] >= 0:
                self.readers[self.rvid[o]].append(o)
            if self.wvid[o] >= 0:
                self.writers[self.wvid[o]].append(o)
        for group in self.readers:
            group.sort(key=ret_entry.__getitem__)
        for group in self.writers:
            group.sort(key=call_entry.__getitem__)
        self.index = [0] * n
        for groups in (self.readers, self.writers):
            for group in groups:
                for at, o in enumerate(group):
                    self.index[o] = at
        # First unplaced reader (by return) and writer (by invocation) of each value.
        self.rlo = [0] * len(self.vid)
        self.wlo = [0] * len(self.vid)
        self.placed = bytearray(n)

    def _unreachable(self, x: int, state: State, wild: int) -> bool:
        readers, writers = self.readers[x], self.writers[x]
        r = self.rlo[x]
        if r == len(readers) or (wild and isinstance(state, int)):
            return False
        w = self.wlo[x]
        return w == len(writers) or (self.call_entry[writers[w]] > self.ret_entry[readers[r]])

    def observed(self, value: State, ignoring: int = -1) -> bool:
        """Whether an unplaced read (other than ``ignoring``) still needs ``value``."""
        x = self.vid.get(value, -1)
        if x < 0:
            return False
        readers, r = self.readers[x], self.rlo[x]
        while r < len(readers) and (self.placed[readers[r]] or readers[r] == ignoring):
            r += 1
        return r < len(readers)

    def blocks(self, o: int, state: State, after: State) -> bool:
        """Whether placing ``o`` (state -> after) strands a read of ``state``."""
        if after == state:
            return False
        x = self.vid.get(state, -1)
        if x < 0:
            return False
        return self._unreachable(x, state, self.wild - self.unknown_incr[o])

    def place(self, o: int) -> None:
        self.placed[o] = 1
        self.wild -= self.unknown_incr[o]
        x = self.rvid[o]
        if x >= 0:
            group, lo = self.readers[x], self.rlo[x]
            while lo < len(group) and self.placed[group[lo]]:
                lo += 1
            self.rlo[x] = lo
        x = self.wvid[o]
        if x >= 0:
            group, lo = self.writers[x], self.wlo[x]
            while lo < len(group) and self.placed[group[lo]]:
                lo += 1
            self.wlo[x] = lo

    def unplace(self, o: int) -> None:
        self.placed[o] = 0
        self.wild += self.unknown_incr[o]
        x = self.rvid[o]
        if x >= 0:
            self.rlo[x] = min(self.rlo[x], self.index[o])
        x = self.wvid[o]
        if x >= 0:
            self.wlo[x] = min(self.wlo[x], self.index[o])


_NEG_INF = -math.inf
# Cache stand-in for any present value that no unplaced read needs: no later op can
# tell two such values apart, unless both are integers and the key sees INCRs.
_UNREAD = object()


class _Monotone:
    """Dead-end detection for counters that only ever grow.

    When a key sees only GET and INCR with positive increments, its value
    never decreases, so once it passes the value some unplaced op needs
    (a GET's result, or the value before an acknowledged INCR) that op can
    never be placed.
    """

    def __init__(self, p: _Problem) -> None:
        n = len(p.ops)
        needs: list[float | None] = [None] * n
        for o in range(n):
            if not p.known[o]:
                continue
            if p.kind[o] == _GET:
                value = p.res[o]
                if value is None:
                    needs[o] = _NEG_INF
                elif isinstance(value, int):
                    needs[o] = value
            else:
                res, arg = p.res[o], p.arg[o]
                assert isinstance(res, int) and isinstance(arg, int)
                needs[o] = res - arg
        self.keys: list[float] = sorted({v for v in needs if v is not None})
        position = {v: at for at, v in enumerate(self.keys)}
        self.need = [-1 if v is None else position[v] for v in needs]
        self.count = [0] * len(self.keys)
        for at in self.need:
            if at >= 0:
                self.count[at] += 1
        self.lo = 0
        self._advance()

    @staticmethod
    def applies(p: _Problem, initial: State) -> bool:
        if initial is not None and not isinstance(initial, int):
            return False
        return all(
            k == _GET or (k == _INCR and isinstance(a, int) and a > 0)
            for k, a in zip(p.kind, p.arg, strict=True)
        )

    def _advance(self) -> None:
        while self.lo < len(self.count) and not self.count[self.lo]:
            self.lo += 1

    def blocks(self, o: int, after: State) -> bool:
        """Whether placing ``o`` moves the counter past what another unplaced op needs."""
        lowest = self.lo
        if lowest < len(self.count) and lowest == self.need[o] and self.count[lowest] == 1:
            lowest += 1
            while lowest < len(self.count) and not self.count[lowest]:
                lowest += 1
        if lowest == len(self.count):
            return False
        floor = _NEG_INF if after is None else after
        assert not isinstance(floor, bytes)
        return self.keys[lowest] < floor

    def place(self, o: int) -> None:
        at = self.need[o]
        if at >= 0:
            self.count[at] -= 1
            if at == self.lo:
                self._advance()

    def unplace(self, o: int) -> None:
        at = self.need[o]
        if at >= 0:
            self.count[at] += 1
            self.lo = min(self.lo, at)


class _KeySearch:
    """Lowe's variant of the Wing & Gong search over the ops of one key.

    Pruning rules on top of the cache, each of which keeps the answer exact:

    * Reads (GET, and DEL that returns 0) change nothing, so if one agrees
      with the current state, placing it now is at least as good as placing
      it later: it is the only candidate tried.
    * An unknown op never has to be placed. Placing one where it changes
      nothing, or right before a blind overwrite (SET, unknown DEL), or where
      no op that could follow accepts its resulting state, is dominated by
      not placing it, so those placements are skipped.
    * Unknown ops with the same effect are interchangeable once invoked, so
      only the earliest not yet placed is tried. Acknowledged ops with the
      same effect and result differ only in their deadline, so only the one
      that returns first is tried.
    * A present value that no unplaced read needs can never be told apart
      from another such value (unless both are integers and the key sees
      INCR): the cache stores them as one state (``_UNREAD``), and SETs of
      such values count as having the same effect.
    * Where no DEL reports a deletion and there is no INCR, replacing one
      such unread value by another is invisible, so it is done at once, like
      a read.
    * A move after which some unplaced op can never be placed is not made
      (``_Witnesses``, ``_Monotone``).

    The test suite checks all of this against an exhaustive search that
    follows the definition of linearizability.
    """

    def __init__(self, problem: _Problem, initial: State) -> None:
        self.problem = problem
        self.initial = initial
        self.steps = 0
        n = len(problem.ops)
        self.best_placed = 0
        self._best_remaining = problem.acknowledged + 1
        self._best: tuple[State, list[int], list[int], int] | None = None

        kinds, known = problem.kind, problem.known
        self.blind = [kinds[i] == _SET or (kinds[i] == _DEL and not known[i]) for i in range(n)]
        self.readlike = [
            known[i] and (kinds[i] == _GET or (kinds[i] == _DEL and problem.res[i] == 0))
            for i in range(n)
        ]
        self.group_of = [-1] * n
        self.members: list[list[int]] = []
        groups: dict[tuple[int, State], int] = {}
        for i in range(n):
            if not known[i]:
                sig = (kinds[i], problem.arg[i])
                g = groups.setdefault(sig, len(self.members))
                if g == len(self.members):
                    self.members.append([])
                self.members[g].append(i)
                self.group_of[i] = g

        # Events: calls before returns at equal times, so touching ops count as concurrent.
        events = sorted(
            [(op.invoke, 0, i) for i, op in enumerate(problem.ops)]
            + [(op.complete, 1, i) for i, op in enumerate(problem.ops) if known[i]]
        )
        count = len(events)
        self.head = count
        self.tail = count + 1
        self.op_of = [i for _, _, i in events] + [-1, -1]
        self.is_call = [kind == 0 for _, kind, _ in events] + [False, False]
        self.call_entry = [0] * n
        self.ret_entry = [-1] * n
        for e, (_, kind, i) in enumerate(events):
            if kind == 0:
                self.call_entry[i] = e
            else:
                self.ret_entry[i] = e
        self.nxt = [self.tail] * (count + 2)
        self.prv = [self.head] * (count + 2)
        order = [self.head, *range(count), self.tail]
        for a, b in itertools.pairwise(order):
            self.nxt[a] = b
            self.prv[b] = a
        self.witnesses = _Witnesses(problem, self.call_entry, self.ret_entry)
        self.monotone = _Monotone(problem) if _Monotone.applies(problem, initial) else None
        # Without INCR and without DELs that report a deletion, no op needs the
        # presence an unread value provides, so one can replace another at any time.
        self.plain = not any(
            k == _INCR or (k == _DEL and kn and r)
            for k, kn, r in zip(kinds, known, problem.res, strict=True)
        )
        self.no_incr = _INCR not in kinds
        self.masks = [1 << i for i in range(n)]
        self.used = [0] * len(self.members)
        """Per group of interchangeable unknown ops, how many are placed."""
        self.callable_now: list[int] = []
        self.blocking = -1
        """The op of the first return entry left: no op called after it can go first."""
        self._stack: list[tuple[list[int], int, State, int]] = []
        self._seen: set[tuple[int, object]] = set()
        self._seen_restricted: set[tuple[int, object]] = set()

    def run(self, deadline: float, max_steps: float) -> Verdict:
        """Search for a linearization; OK, VIOLATION, or UNKNOWN if over budget."""
        p = self.problem
        known, masks = p.known, self.masks
        remaining = p.acknowledged
        if remaining == 0:
            return Verdict.OK
        # Configurations already explored, as (linearized ops, state). Right after an
        # unknown op fewer moves are tried, so those get a cache of their own: a
        # configuration explored in full also covers its restricted exploration.
        self._seen: set[tuple[int, object]] = set()
        self._seen_restricted: set[tuple[int, object]] = set()
        # Frames: (candidates, next candidate index, state before, op placed).
        stack: list[tuple[list[int], int, State, int]] = []
        self._stack = stack
        state = self.initial
        bits = 0
        cands = self._candidates(state, False)
        self._note_progress(remaining, state)
        i = 0
        steps = 0
        next_check = min(_CHECK_EVERY, max_steps)
        while True:
            if steps >= next_check:
                next_check = min(steps + _CHECK_EVERY, max_steps)
                if steps >= max_steps or time.perf_counter() > deadline:
                    self.steps = steps
                    return Verdict.UNKNOWN
            o, after, i, tried = self._next_move(cands, i, state, bits)
            steps += tried
            if o >= 0:
                stack.append((cands, i, state, o))
                remaining -= self._lift(o)
                bits |= masks[o]
                state = after
                if remaining == 0:
                    self.steps = steps
                    return Verdict.OK
                cands = self._candidates(state, not known[o])
                i = 0
                self._note_progress(remaining, state)
                continue
            if not stack:
                self.steps = steps
                return Verdict.VIOLATION
            cands, i, state, o = stack.pop()
            remaining += self._relink(o)
            bits ^= masks[o]

    def _next_move(
        self, cands: list[int], i: int, state: State, bits: int
    ) -> tuple[int, State, int, int]:
        """The first of ``cands[i:]`` that can be placed now, in a configuration not yet
        explored: (op, state after it, index of the next candidate, candidates tried);
        op -1 if there is none."""
        p = self.problem
        kind, arg, res, known = p.kind, p.arg, p.res, p.known
        witnesses, monotone, observed = self.witnesses, self.monotone, self.witnesses.observed
        masks, no_incr = self.masks, self.no_incr
        seen, seen_restricted = self._seen, self._seen_restricted
        apply = _apply
        tried = 0
        while i < len(cands):
            o = cands[i]
            i += 1
            tried += 1
            valid, after = apply(kind[o], known[o], arg[o], res[o], state)
            if not valid or witnesses.blocks(o, state, after):
                continue
            if monotone is not None and monotone.blocks(o, after):
                continue
            nbits = bits | masks[o]
            config: tuple[int, object] = (nbits, after)
            if (
                after is not None
                and (no_incr or isinstance(after, bytes))
                and not observed(after, o)
            ):
                config = (nbits, _UNREAD)
            if config in seen:
                continue
            if known[o]:
                seen.add(config)
            else:
                if config in seen_restricted:
                    continue
                seen_restricted.add(config)
            return o, after, i, tried
        return -1, state, i, tried

    def _lift(self, o: int) -> int:
        """Take op ``o``'s call and return entries out of the list; 1 if it was acknowledged."""
        nxt, prv = self.nxt, self.prv
        e = self.call_entry[o]
        nxt[prv[e]] = nxt[e]
        prv[nxt[e]] = prv[e]
        e = self.ret_entry[o]
        acked = 0
        if e >= 0:
            nxt[prv[e]] = nxt[e]
            prv[nxt[e]] = prv[e]
            acked = 1
        else:
            self.used[self.group_of[o]] += 1
        self.witnesses.place(o)
        if self.monotone is not None:
            self.monotone.place(o)
        return acked

    def _relink(self, o: int) -> int:
        """Undo :meth:`_lift` (in the reverse order: lifted entries kept their links)."""
        nxt, prv = self.nxt, self.prv
        e = self.ret_entry[o]
        acked = 0
        if e >= 0:
            nxt[prv[e]] = e
            prv[nxt[e]] = e
            acked = 1
        else:
            self.used[self.group_of[o]] -= 1
        e = self.call_entry[o]
        nxt[prv[e]] = e
        prv[nxt[e]] = e
        self.witnesses.unplace(o)
        if self.monotone is not None:
            self.monotone.unplace(o)
        return acked

    def _note_progress(self, remaining: int, state: State) -> None:
        if remaining < self._best_remaining:
            self._best_remaining = remaining
            self.best_placed = self.problem.acknowledged - remaining
            tail = [frame[3] for frame in self._stack[-_PREFIX_TAIL:]]
            self._best = (state, tail, list(self.callable_now), self.blocking)

    def _candidates(self, state: State, after_unknown: bool) -> list[int]:
        """The ops to try next from ``state``, most promising first (see the class doc)."""
        p = self.problem
        kind, res = p.kind, p.res
        now = self._callable_ops()
        for o in now:
            if self.readlike[o] and (res[o] == state if kind[o] == _GET else state is None):
                return [o]
        first = self._first_of_each_effect(now, state, after_unknown)
        unread = first.get(_UNREAD, -1)
        if unread >= 0 and self.plain and state is not None and not self.witnesses.observed(state):
            # Replacing one unread value by another changes nothing a later op can
            # see, so like a read it can happen right now.
            return [unread]
        reads: set[State] = {res[o] for o in now if kind[o] == _GET}
        hot: list[int] = []
        cold: list[int] = []
        for o in first.values():
            if (kind[o] == _SET and p.arg[o] in reads) or (kind[o] == _INCR and res[o] in reads):
                hot.append(o)
            else:
                cold.append(o)
        # Unknown ops come last: they are optional, and spending one early
        # can strand a read far ahead, which the search then finds out late.
        hot.extend(cold)
        hot.extend(self._unknown_candidates(now, state, after_unknown))
        return hot

    def _callable_ops(self) -> list[int]:
        """The ops whose call comes before any pending return (and note the op of
        that return, the one blocking the rest)."""
        nxt, is_call, op_of = self.nxt, self.is_call, self.op_of
        now = self.callable_now
        now.clear()
        e = nxt[self.head]
        while is_call[e]:
            now.append(op_of[e])
            e = nxt[e]
        self.blocking = op_of[e]
        return now

    def _first_of_each_effect(
        self, now: list[int], state: State, after_unknown: bool
    ) -> dict[object, int]:
        """Acknowledged ops with the same effect and result are interchangeable but
        for the time they must happen by, so only the one that returns first is
        tried. SETs of values no unplaced read needs count as the same: no later
        op can tell such values apart."""
        p = self.problem
        kind, arg, res, known = p.kind, p.arg, p.res, p.known
        readlike, blind, ret_entry = self.readlike, self.blind, self.ret_entry
        observed, no_incr = self.witnesses.observed, self.no_incr
        first: dict[object, int] = {}
        for o in now:
            if not known[o] or readlike[o] or (after_unknown and blind[o]):
                continue
            k = kind[o]
            if k == _DEL and state is None:
                continue
            sig: object = (k, arg[o], res[o])
            if k == _SET and (no_incr or isinstance(arg[o], bytes)) and not observed(arg[o]):
                sig = _UNREAD
            best = first.get(sig, -1)
            if best < 0 or ret_entry[o] < ret_entry[best]:
                first[sig] = o
        return first

    def _unknown_candidates(self, now: list[int], state: State, after_unknown: bool) -> list[int]:
        """The unknown ops worth placing now (see the class doc for what is skipped)."""
        p = self.problem
        kind, arg, known = p.kind, p.arg, p.known
        blind, group_of, members, used = self.blind, self.group_of, self.members, self.used
        observed, no_incr = self.witnesses.observed, self.no_incr
        out: list[int] = []
        acceptors: _Acceptors | None = None
        unread_unknown = False
        for o in now:
            if known[o] or (after_unknown and blind[o]):
                continue
            g = group_of[o]
            if members[g][used[g]] != o:
                continue
            k = kind[o]
            if k != _SET and k != _DEL:
                out.append(o)
                continue
            after: State = arg[o] if k == _SET else None
            if after == state:
                continue  # a SET of the value there, or a DEL of nothing
            if k == _SET and (no_incr or isinstance(after, bytes)) and not observed(after):
                # Interchangeable with any other unknown SET of an unread value.
                if unread_unknown:
                    continue
                unread_unknown = True
            if acceptors is None:
                acceptors = self._acceptors(now)
            if acceptors.accepts(after, state is None):
                out.append(o)
        return out

    def _acceptors(self, now: list[int]) -> _Acceptors:
        p = self.problem
        acceptors = _Acceptors()
        for c in now:
            if not self.blind[c]:
                acceptors.add(p.kind[c], p.known[c], p.arg[c], p.res[c])
        return acceptors

    def counterexample(self, all_ops: list[Op]) -> Counterexample:
        """Describe the longest linearizable prefix found and the op that could not follow it."""
        assert self._best is not None
        state, tail, callable_ops, blocking = self._best
        ops = self.problem.ops
        stuck = ops[blocking]
        involved: list[tuple[Op, str]] = [(stuck, "STUCK")]
        for n, o in enumerate(tail):
            involved.append((ops[o], f"prefix[{n - len(tail)}]"))
        involved.extend((ops[o], "could go next") for o in callable_ops if o != blocking)
        # Acknowledged ops overlapping the stuck one, and unknown ops invoked during it
        # (older unknown ops that could still take effect are among "could go next").
        involved.extend(
            (op, "overlaps STUCK")
            for op in all_ops
            if op is not stuck
            and op.invoke <= stuck.complete
            and (
                op.complete >= stuck.invoke
                if op.outcome is Outcome.OK
                else op.outcome is Outcome.UNKNOWN and op.invoke >= stuck.invoke
            )
        )
        unique: dict[int, tuple[Op, str]] = {}
        for op, role in involved:
            unique.setdefault(id(op), (op, role))
        shown = str(state).encode() if isinstance(state, int) else state
        summary = (
            f"the longest linearizable prefix found places {self.best_placed} of "
            f"{self.problem.acknowledged} acknowledged ops and leaves the value "
            f"{_show(shown)}; op {stuck.id} cannot be placed after it"
        )
        return Counterexample(
            key=self.problem.key,
            summary=summary,
            stuck=stuck,
            involved=tuple(unique.values()),
            prefix_length=self.best_placed,
            state=shown,
        )


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """Bounds on a counter's final value: ``lower <= final <= upper``."""

    key: bytes | None
    final: int
    ok_sum: int
    lower: int
    upper: int

    @property
    def ok(self) -> bool:
        """True when the final value lies within the bounds."""
        return self.lower <= self.final <= self.upper

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "VIOLATION"
        name = "" if self.key is None else f"counter {_show(self.key)}: "
        return (
            f"{name}{verdict}: final value {self.final}, acknowledged increments sum to "
            f"{self.ok_sum}, so it must lie in [{self.lower}, {self.upper}]"
        )


def check_counter(
    ops: Iterable[Op],
    final: bytes | int | None,
    *,
    key: bytes | str | None = None,
    initial: int = 0,
) -> CounterCheck:
    """Check a counter's final value (read after healing) against its INCRs.

    Every acknowledged INCR took effect exactly once and every unknown one at
    most once, so ``initial + ok_sum <= final <= initial + ok_sum + unknown_sum``
    (negative unknown increments widen the lower bound instead). Failed INCRs
    are ignored; ``key`` restricts ``ops`` to one key; other kinds are ignored.
    """
    wanted = key.encode() if isinstance(key, str) else key
    ok_sum = low = high = 0
    for op in ops:
        if op.kind is not Kind.INCR or (wanted is not None and op.key != wanted):
            continue
        assert isinstance(op.value, int)
        if op.outcome is Outcome.OK:
            ok_sum += op.value
        elif op.outcome is Outcome.UNKNOWN:
            if op.value < 0:
                low += op.value
            else:
                high += op.value
    value = _normalise(final)
    if value is None:
        value = 0
    if not isinstance(value, int):
        raise ValueError(f"counter's final value is not an integer: {final!r}")
    return CounterCheck(
        key=wanted,
        final=value,
        ok_sum=ok_sum,
        lower=initial + ok_sum + low,
        upper=initial + ok_sum + high,
    )


@dataclass(frozen=True, slots=True)
class FinalValueCheck:
    """Whether a key's final value (read after healing) is one some write could have left."""

    key: bytes | None
    final: bytes | None
    allowed: frozenset[bytes | None]

    @property
    def ok(self) -> bool:
        """True when the final value is among the allowed ones."""
        return self.final in self.allowed

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "VIOLATION"
        name = "" if self.key is None else f"key {_show(self.key)}: "
        options = ", ".join(sorted(_show(v) for v in self.allowed)) or "none"
        return f"{name}{verdict}: final value {_show(self.final)}; possible: {options}"


def check_final_value(
    ops: Iterable[Op],
    final: bytes | str | None,
    *,
    key: bytes | str | None = None,
    initial: bytes | None = None,
) -> FinalValueCheck:
    """Check a SET/DEL key's final value against the writes that could have left it.

    The final value must have been written by an acknowledged or unknown SET
    (None: by a DEL, or the initial absence) that no acknowledged SET or DEL
    definitely followed, i.e. none was invoked after it completed. Failed
    writes are ignored; ``key`` restricts ``ops`` to one key; reads are ignored.
    """
    wanted = key.encode() if isinstance(key, str) else key
    writes: list[Op] = []
    for op in ops:
        if wanted is not None and op.key != wanted:
            continue
        if op.kind is Kind.INCR:
            raise ValueError("check_final_value handles SET/DEL keys; use check_counter")
        if op.kind in (Kind.SET, Kind.DEL) and op.outcome is not Outcome.FAIL:
            writes.append(op)
    acked = [w for w in writes if w.outcome is Outcome.OK]
    latest_invoke = max((w.invoke for w in acked), default=-math.inf)
    allowed: set[bytes | None] = set()
    if not acked:
        allowed.add(initial)
    for w in writes:
        # A write that completed before some acknowledged write began was overwritten.
        if w.complete >= latest_invoke:
            value = w.value if w.kind is Kind.SET else None
            assert value is None or isinstance(value, bytes)
            allowed.add(value)
    shown = final.encode() if isinstance(final, str) else final
    return FinalValueCheck(key=wanted, final=shown, allowed=frozenset(allowed))
