"""Hashes, lists and sorted sets under faults, each checked against what its writes allow.

Threads (``DataTypes``) work on a few keys of each family over plain
connections (:class:`~tests.jepsen.harness.Wire`, no retries), sticking to
the node they believe leads and following ``-TRY`` as the harness's clients
do, sometimes pipelining two or three commands:

* **lists** ``types:list:N``: ``RPUSH`` of a value no other op ever pushes,
  ``LPOP``, ``LRANGE 0 -1``;
* **hashes** ``types:hash:N``: ``HINCRBY`` of the counter field ``n``,
  ``HSET`` of a field no other op writes (its value derived from its name),
  ``HDEL`` of a field whose ``HSET`` this thread saw acknowledged (once),
  ``HGETALL``;
* **sorted sets** ``types:zset:N``: ``ZINCRBY`` of a counter member ``c0`` or
  ``c1``, ``ZADD`` of a member no other op adds (with a random integer
  score), ``ZREM`` of a member whose ``ZADD`` this thread saw acknowledged
  (once), ``ZRANGE 0 -1 WITHSCORES``.

Every op is recorded with its invocation and completion times and its
outcome (ok; fail: certainly not applied; unknown: may have been applied, at
any time after it was invoked).  :func:`check_ops` then checks the history
against the final values (read through the leader after healing) with rules
that hold whatever the unknown ops did:

Lists (a queue: pushes at the tail, pops at the head, nothing else touches
them):

* no value appears twice in the final list or in a read, and no value is
  returned by two acknowledged pops or both popped and still in the list;
* every value seen (final list, reads, pops) was pushed by an op that was
  not refused and that began before it was seen;
* the final list and every read keep real-time order: a value whose push
  was acknowledged before another's push began comes first;
* a value removed from the head (popped, or an acknowledged push no longer
  there) was pushed before everything still in the list, so its push did not
  begin after an acknowledged push of a remaining value had completed;
* acknowledged pushes missing from the final list and from the acknowledged
  pops' replies number no more than the pops of unknown outcome (the only
  ops that could have taken them);
* a read's values still in the final list are the read's tail and the final
  list's head, in the same order (the queue only grows at one end and
  shrinks at the other).

Counters (the hash field ``n`` via ``HINCRBY``, each ``c*`` member via
``ZINCRBY``; increments are positive):

* the final value lies between the acknowledged increments' sum and that
  plus the unknown increments;
* every acknowledged increment returned a different total, no more than the
  final value, at least its own increment plus those acknowledged before it
  began, and at most the increments begun before it completed;
* every read sees at most the increments begun before it completed (and,
  with linearizable reads, at least those acknowledged before it began).

Unique fields and members (``HSET``/``HDEL``, ``ZADD``/``ZREM``):

* an acknowledged write is present at the end with the value (score) it
  wrote, unless a removal that was not refused was sent; an acknowledged
  removal leaves it absent;
* nothing is present that was never written or whose write was refused, and
  nothing with another value than its write's;
* an acknowledged write of a new field (member) answered 1, and an
  acknowledged removal of one whose write had been acknowledged answered 1;
* reads see no such phantom either, and with linearizable reads they see
  every field acknowledged before they began unless its removal had begun;
* every sorted-set reply (the final one, reads) is in (score, member)
  order with no member twice.

The final values are also what every replica must hold (the runner compares
them with each node's machine state).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import redis

from .harness import Line, Plain, Wire, call, classify_error
from .history import Outcome

__all__ = [
    "COUNTER_FIELD",
    "COUNTER_MEMBERS",
    "KEY_PREFIX",
    "DataTypes",
    "TKind",
    "TOp",
    "check_ops",
    "hash_value",
    "parse_final",
    "read_command",
]

KEY_PREFIX = "types:"
COUNTER_FIELD = b"n"
"""The hash field every HINCRBY increments."""
COUNTER_MEMBERS = (b"c0", b"c1")
"""The sorted-set members ZINCRBY increments."""
MAX_INCREMENT = 5
MAX_SHOWN = 5
"""Failures shown per key and rule."""

_COMMAND_ERRORS = (
    "WRONGTYPE",
    "unknown command",
    "wrong number of arguments",
    "syntax error",
    "value is not",
    "hash value is not",
)
"""Error replies that say the command itself was wrong: never expected, whatever the faults."""


class TKind(StrEnum):
    RPUSH = "rpush"
    LPOP = "lpop"
    LRANGE = "lrange"
    HINCRBY = "hincrby"
    HSET = "hset"
    HDEL = "hdel"
    HGETALL = "hgetall"
    ZINCRBY = "zincrby"
    ZADD = "zadd"
    ZREM = "zrem"
    ZRANGE = "zrange"


READS = frozenset({TKind.LRANGE, TKind.HGETALL, TKind.ZRANGE})


def hash_value(name: bytes) -> bytes:
    """The value HSET writes to the unique field ``name``."""
    return b"v" + name


def family(key: bytes) -> str:
    """``list``, ``hash`` or ``zset``: what a workload key holds (from its name)."""
    return key.split(b":")[1].decode()


@dataclass(slots=True)
class TOp:
    """One recorded op; an unknown outcome keeps ``complete`` at ``inf``."""

    kind: TKind
    key: bytes
    arg: bytes = b""
    """The value pushed, the field, or the member (empty for LPOP and reads)."""
    amount: int = 0
    """HINCRBY's and ZINCRBY's increment, ZADD's score."""
    invoke: float = 0.0
    complete: float = math.inf
    outcome: Outcome = Outcome.UNKNOWN
    reply: Any = None
    """The parsed reply of an acknowledged op (see :func:`parse_reply`)."""
    thread: int = 0

    def command(self) -> list[Any]:
        k, key = self.kind, self.key
        if k is TKind.RPUSH:
            return ["RPUSH", key, self.arg]
        if k is TKind.LPOP:
            return ["LPOP", key]
        if k is TKind.HINCRBY:
            return ["HINCRBY", key, self.arg, self.amount]
        if k is TKind.HSET:
            return ["HSET", key, self.arg, hash_value(self.arg)]
        if k is TKind.HDEL:
            return ["HDEL", key, self.arg]
        if k is TKind.ZINCRBY:
            return ["ZINCRBY", key, self.amount, self.arg]
        if k is TKind.ZADD:
            return ["ZADD", key, self.amount, self.arg]
        if k is TKind.ZREM:
            return ["ZREM", key, self.arg]
        return read_command(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "thread": self.thread,
            "kind": self.kind.value,
            "key": self.key.decode(),
            "arg": self.arg.decode(),
            "amount": self.amount,
            "invoke": self.invoke,
            "complete": None if self.complete == math.inf else self.complete,
            "outcome": self.outcome.value,
            "reply": _jsonable(self.reply),
        }

    def at(self, t0: float) -> str:
        end = "?" if self.complete == math.inf else f"{self.complete - t0:.3f}"
        return f"{self.kind.value} by thread {self.thread} [+{self.invoke - t0:.3f}s, {end}]"


def read_command(key: bytes) -> list[Any]:
    """The command reading the whole value of a workload key."""
    kind = family(key)
    if kind == "list":
        return ["LRANGE", key, 0, -1]
    if kind == "hash":
        return ["HGETALL", key]
    return ["ZRANGE", key, 0, -1, "WITHSCORES"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_jsonable(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def parse_reply(kind: TKind, raw: Any) -> Any:
    """An acknowledged reply in the form the checks use (ValueError if malformed).

    LRANGE: a tuple of values; HGETALL: a dict; ZRANGE: a tuple of
    ``(member, score)``; ZINCRBY: the score as a float; LPOP: bytes or None;
    the others an int.
    """
    if kind is TKind.LPOP:
        if raw is None or type(raw) is bytes:
            return raw
    elif kind in READS:
        return parse_final(kind, raw)[1]
    elif kind is TKind.ZINCRBY:
        if type(raw) is bytes:
            return float(raw)
    elif type(raw) is int:
        return raw
    raise ValueError(f"{kind.value} replied {raw!r}")


def parse_final(kind: TKind | str, raw: Any) -> Plain:
    """A read's reply as the harness's plain form of a value (``(type name, payload)``)."""
    if not isinstance(raw, list) or not all(type(x) is bytes for x in raw):
        raise ValueError(f"{kind} replied {raw!r}")
    if kind in (TKind.LRANGE, "list"):
        return ("list", tuple(raw))
    if len(raw) % 2:
        raise ValueError(f"{kind} replied an odd number of items: {raw!r}")
    if kind in (TKind.HGETALL, "hash"):
        return ("hash", dict(zip(raw[0::2], raw[1::2], strict=True)))
    return ("zset", tuple((m, float(s)) for m, s in zip(raw[0::2], raw[1::2], strict=True)))


# ------------------------------------------------------------------ threads


@dataclass
class _Stats:
    redirects: int = 0
    connect_errors: int = 0
    bad: list[str] = field(default_factory=list)
    """Anomalies seen while running: malformed replies, errors no fault explains."""
    errors: Counter[str] = field(default_factory=Counter)
    """Error replies that left an outcome unknown, by their first word."""


class _Line(Line):
    """One connection, stuck to the node it believes leads; follows ``-TRY``."""

    def __init__(self, ports: list[int], timeout: float, rng: random.Random, stats: _Stats) -> None:
        super().__init__(ports, timeout, rng, stats)
        self.stats = stats

    def run(self, conn: Wire, ops: list[TOp]) -> None:
        """Send ``ops`` at once (a pipeline) and record each one's outcome in place."""
        now = time.monotonic()
        for op in ops:
            op.invoke = now
        try:
            conn.send([op.command() for op in ops])
        except (redis.RedisError, OSError):
            self.retarget()
            return
        leader: str | None = None
        for op in ops:
            try:
                raw = conn.read()
            except (redis.RedisError, OSError):
                # Timeouts, lost connections, garbled replies: this op and the
                # rest may have been applied (they stay unknown).
                self.retarget()
                return
            named = self._record(op, raw)
            if named is not None:
                leader = named
        if leader is None:
            return
        if leader:
            self.stats.redirects += 1
            port = int(leader.rpartition(":")[2])
            if port == self.target:
                time.sleep(self.rng.uniform(0.005, 0.02))
            self.retarget(port)
        else:
            self.retarget()
            time.sleep(self.rng.uniform(0.03, 0.1))

    def _record(self, op: TOp, raw: Any) -> str | None:
        """Record one reply; returns the leader a -TRY named, "" if none is known, else None."""
        done = time.monotonic()
        if not isinstance(raw, redis.ResponseError):
            try:
                op.reply = parse_reply(op.kind, raw)
            except ValueError as exc:
                self.stats.bad.append(f"{op.at(0.0)} on {op.key!r}: {exc}")
                return None
            op.complete = done
            op.outcome = Outcome.OK
            return None
        message = str(raw)
        if message.startswith(_COMMAND_ERRORS):
            self.stats.bad.append(f"{op.kind.value} {op.key!r}: error {message[:80]!r}")
            return None
        outcome, leader = classify_error(message)
        if outcome is Outcome.UNKNOWN:
            self.stats.errors[message.split(" ", 1)[0]] += 1
            self.retarget()
            return None
        op.complete = done
        op.outcome = Outcome.FAIL
        # No leader named ("leader not known", a leadership change, a leader's
        # full disk): back off and try elsewhere.
        return leader


class _Chooser:
    """One thread's choice of ops, and the fields and members it may remove."""

    def __init__(self, index: int, rng: random.Random, keys: dict[str, list[bytes]]) -> None:
        self.index = index
        self.rng = rng
        self.keys = keys
        self.seq = itertools.count(1)
        self.owned: dict[bytes, list[bytes]] = defaultdict(list)
        """Per key: fields (members) whose write this thread saw acknowledged, not yet removed."""

    def unique(self, prefix: bytes) -> bytes:
        return b"%s%d-%d" % (prefix, self.index, next(self.seq))

    def choose(self) -> TOp:
        rng = self.rng
        kind = rng.choice(("list", "hash", "zset"))
        key = rng.choice(self.keys[kind])
        r = rng.random()
        if kind == "list":
            if r < 0.45:
                return TOp(TKind.RPUSH, key, self.unique(b"e"))
            return TOp(TKind.LPOP if r < 0.8 else TKind.LRANGE, key)
        counter = kind == "hash"
        incr, write, remove, read = (
            (TKind.HINCRBY, TKind.HSET, TKind.HDEL, TKind.HGETALL)
            if counter
            else (TKind.ZINCRBY, TKind.ZADD, TKind.ZREM, TKind.ZRANGE)
        )
        amount = rng.randint(1, MAX_INCREMENT)
        if r < 0.3:
            name = COUNTER_FIELD if counter else rng.choice(COUNTER_MEMBERS)
            return TOp(incr, key, name, amount)
        owned = self.owned[key]
        if r < 0.65 or (r < 0.8 and not owned):
            name = self.unique(b"f" if counter else b"m")
            return TOp(write, key, name, 0 if counter else rng.randint(-100, 100))
        if r < 0.8:
            # Each removed once, and only after its write was acknowledged.
            return TOp(remove, key, owned.pop(rng.randrange(len(owned))))
        return TOp(read, key)

    def done(self, op: TOp) -> None:
        if op.outcome is Outcome.OK and op.kind in (TKind.HSET, TKind.ZADD):
            self.owned[op.key].append(op.arg)


class DataTypes:
    """``threads`` threads working on lists, hashes and sorted sets until ``stop`` is set."""

    def __init__(
        self,
        ports: list[int],
        threads: int,
        stop: threading.Event,
        *,
        seed: int = 0,
        timeout: float = 1.0,
        per_family: int = 2,
        pipeline_depth: int = 3,
    ) -> None:
        self.ports = ports
        self.stop = stop
        self.timeout = timeout
        self.pipeline_depth = pipeline_depth
        self.keys = {
            kind: [f"{KEY_PREFIX}{kind}:{i}".encode() for i in range(per_family)]
            for kind in ("list", "hash", "zset")
        }
        self.logs: list[list[TOp]] = [[] for _ in range(threads)]
        self.stats = [_Stats() for _ in range(threads)]
        rng = random.Random(seed)
        self._seeds = [rng.randrange(2**63) for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"types-{i}", daemon=True)
            for i in range(threads)
        ]

    def all_keys(self) -> list[bytes]:
        return [k for keys in self.keys.values() for k in keys]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> None:
        for t in self._threads:
            t.join(timeout)

    def ops(self) -> list[TOp]:
        return [op for log in self.logs for op in log]

    def _run(self, index: int) -> None:
        rng = random.Random(self._seeds[index])
        line = _Line(self.ports, self.timeout, rng, self.stats[index])
        chooser = _Chooser(index, rng, self.keys)
        log = self.logs[index]
        try:
            while not self.stop.is_set():
                conn = line.connected()
                if conn is None:
                    continue
                batch = [chooser.choose() for _ in range(rng.randint(1, self.pipeline_depth))]
                for op in batch:
                    op.thread = index
                # Recorded before it is sent: an op still in flight at the
                # check counts as unknown.
                log.extend(batch)
                line.run(conn, batch)
                for op in batch:
                    chooser.done(op)
        finally:
            line.close()

    def read_final(
        self, port: Callable[[], int], timeout: float = 15.0
    ) -> tuple[dict[bytes, Plain | None], list[str]]:
        """Every key's final value, read through ``port()`` (the leader); and what failed."""
        final: dict[bytes, Plain | None] = {}
        failures: list[str] = []
        for key in self.all_keys():
            deadline = time.monotonic() + timeout
            while True:
                try:
                    raw = call(port(), *read_command(key), timeout=2.0)
                    value = parse_final(family(key), raw)
                except (redis.RedisError, OSError):
                    pass
                except ValueError as exc:
                    failures.append(f"types: final read of {key!r}: {exc}")
                    break
                else:
                    final[key] = value if value[1] else None
                    break
                if time.monotonic() > deadline:
                    failures.append(f"liveness: no final read of {key!r} succeeded in {timeout:g}s")
                    break
                time.sleep(0.1)
        return final, failures

    def check(
        self, final: dict[bytes, Plain | None], *, linearizable: bool, t0: float = 0.0
    ) -> tuple[list[str], list[str]]:
        """(failures, notes) for the history and the final values (keys missing are skipped)."""
        ops = self.ops()
        failures = check_ops(ops, final, linearizable=linearizable, t0=t0)
        bad = [b for s in self.stats for b in s.bad]
        if bad:
            failures.insert(
                0, f"types: {len(bad)} anomalies while running: " + "; ".join(bad[:MAX_SHOWN])
            )
        by_family: dict[str, Counter[str]] = defaultdict(Counter)
        for op in ops:
            by_family[family(op.key)][op.outcome.value] += 1
        if not any(op.outcome is Outcome.OK and op.kind not in READS for op in ops):
            failures.append("types: no write was acknowledged: the checks proved nothing")
        errors: Counter[str] = Counter()
        for s in self.stats:
            errors.update(s.errors)
        notes = [
            f"{kind} ops " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
            for kind, c in sorted(by_family.items())
        ]
        notes.append(
            "final sizes "
            + ", ".join(
                f"{k.decode()} {len(v[1]) if v is not None else 0}" for k, v in final.items()
            )
        )
        if errors:
            notes.append(
                "unknown-outcome errors " + ", ".join(f"{k} x{v}" for k, v in errors.items())
            )
        return failures, notes

    def save(self, path: Path) -> None:
        with path.open("w") as f:
            for op in sorted(self.ops(), key=lambda o: o.invoke):
                f.write(json.dumps(op.to_json()) + "\n")


# ------------------------------------------------------------------- checks


def check_ops(
    ops: Iterable[TOp],
    final: dict[bytes, Plain | None],
    *,
    linearizable: bool,
    t0: float = 0.0,
) -> list[str]:
    """Failures of the history ``ops`` against the final values (see the module notes).

    ``final`` maps a key to its plain value (None: the key is gone); a key
    missing from it (its final read failed) is checked without its final
    value.  ``linearizable`` says reads must also see every write
    acknowledged before they began (consistency high).
    """
    by_key: dict[bytes, list[TOp]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    failures: list[str] = []
    for key in sorted(set(by_key) | set(final)):
        kind = family(key)
        key_ops = by_key.get(key, [])
        known = key in final
        value = final.get(key)
        if value is not None and value[0] != kind:
            failures.append(f"types: {key!r} should hold a {kind} but holds a {value[0]}")
            continue
        payload: Any = value[1] if value is not None else None
        if kind == "list":
            found = _check_list(key_ops, list(payload or ()) if known else None, t0)
        elif kind == "hash":
            found = _check_hash(key_ops, dict(payload or {}) if known else None, linearizable, t0)
        else:
            found = _check_zset(key_ops, list(payload or ()) if known else None, linearizable, t0)
        failures += [f"types: {key.decode()}: {f}" for f in found]
    return failures


class _Found:
    """Failures of one key, at most :data:`MAX_SHOWN` per rule (with a count of the rest)."""

    def __init__(self) -> None:
        self.by_rule: dict[str, list[str]] = defaultdict(list)

    def add(self, rule: str, detail: str) -> None:
        self.by_rule[rule].append(detail)

    def lines(self) -> list[str]:
        out = []
        for rule, details in self.by_rule.items():
            more = f" (+{len(details) - MAX_SHOWN} more)" if len(details) > MAX_SHOWN else ""
            out.append(f"{rule}: " + "; ".join(details[:MAX_SHOWN]) + more)
        return out


def _show(value: bytes | None) -> str:
    return "nil" if value is None else repr(value.decode("utf-8", "replace"))


# -- lists


def _check_list(ops: list[TOp], final: list[bytes] | None, t0: float) -> list[str]:
    check = _ListCheck(ops, t0)
    check.pops_and_reads()
    if final is not None:
        check.final(final)
    return check.found.lines()


class _ListCheck:
    """One list's history: its pushes (each of a value of its own), pops and reads."""

    def __init__(self, ops: list[TOp], t0: float) -> None:
        self.ops = ops
        self.t0 = t0
        self.found = found = _Found()
        self.pushes: dict[bytes, TOp] = {}
        for op in ops:
            if op.kind is not TKind.RPUSH:
                continue
            if op.arg in self.pushes:
                found.add("a value pushed twice (the workload's own bug)", _show(op.arg))
            self.pushes[op.arg] = op
            if op.outcome is Outcome.OK and not (isinstance(op.reply, int) and op.reply >= 1):
                found.add("an acknowledged RPUSH answered a length below 1", f"{op.reply!r}")
        self.pops = [op for op in ops if op.kind is TKind.LPOP]
        self.popped: Counter[bytes] = Counter(
            op.reply for op in self.pops if op.outcome is Outcome.OK and op.reply is not None
        )
        self.reads = [op for op in ops if op.kind is TKind.LRANGE and op.outcome is Outcome.OK]

    def pushed(self, value: bytes, by: float, what: str) -> TOp | None:
        """The push of ``value`` if one that was not refused began by ``by`` (else a failure)."""
        push = self.pushes.get(value)
        if push is not None and push.outcome is not Outcome.FAIL and push.invoke <= by:
            return push
        why = (
            "never pushed"
            if push is None
            else "whose push was refused"
            if push.outcome is Outcome.FAIL
            else f"pushed only at +{push.invoke - self.t0:.3f}s"
        )
        self.found.add("a value no push explains", f"{what} holds {_show(value)}, {why}")
        return None

    def pops_and_reads(self) -> None:
        for op in self.pops:
            if op.outcome is Outcome.OK and op.reply is not None:
                self.pushed(op.reply, op.complete, f"the {op.at(self.t0)}")
        for value, n in self.popped.items():
            if n > 1:
                self.found.add("a value popped twice", f"{_show(value)} x{n}")
        for read in self.reads:
            what = f"the {read.at(self.t0)}"
            _list_state(list(read.reply), what, read.complete, self.pushed, self.found, self.t0)

    def final(self, final: list[bytes]) -> None:
        found = self.found
        _list_state(final, "the final list", math.inf, self.pushed, found, self.t0)
        in_final = set(final)
        for value in self.popped.keys() & in_final:
            found.add("a popped value still in the list", _show(value))
        missing = [
            op
            for op in self.pushes.values()
            if op.outcome is Outcome.OK and op.arg not in in_final and op.arg not in self.popped
        ]
        unknown_pops = sum(1 for op in self.pops if op.outcome is Outcome.UNKNOWN)
        if len(missing) > unknown_pops:
            found.add(
                "acknowledged pushes lost",
                f"{len(missing)} acknowledged pushes are neither in the final list nor popped, "
                f"but only {unknown_pops} pops of unknown outcome could have taken them, e.g. "
                + ", ".join(_show(op.arg) for op in missing[:MAX_SHOWN]),
            )
        removed = [*self.popped, *(op.arg for op in missing)]
        _removed_first(final, self.pushes, removed, found, self.t0)
        for read in self.reads:
            items = list(read.reply)
            common = [v for v in items if v in in_final]
            if items[len(items) - len(common) :] != common or final[: len(common)] != common:
                found.add(
                    "a read that the final list does not continue",
                    f"the {read.at(self.t0)} holds {len(common)} values still in the final "
                    "list, but not as its own tail and the final list's head, in one order",
                )


def _list_state(
    items: list[bytes],
    what: str,
    by: float,
    pushed: Callable[[bytes, float, str], TOp | None],
    found: _Found,
    t0: float,
) -> None:
    """One observed list: no duplicates, every value pushed, in real-time order."""
    seen: Counter[bytes] = Counter(items)
    dups = [v for v, n in seen.items() if n > 1]
    if dups:
        found.add("a value twice in a list", f"{what}: " + ", ".join(map(_show, dups[:3])))
    latest: TOp | None = None  # the push begun latest among the values before
    for value in items:
        push = pushed(value, by, what)
        if push is None:
            continue
        if latest is not None and push.complete < latest.invoke:
            found.add(
                "a list out of push order",
                f"{what} holds {_show(latest.arg)} before {_show(value)}, but "
                f"{_show(value)}'s push was acknowledged at +{push.complete - t0:.3f}s, "
                f"before {_show(latest.arg)}'s began (+{latest.invoke - t0:.3f}s)",
            )
        if latest is None or push.invoke > latest.invoke:
            latest = push


def _removed_first(
    final: list[bytes], pushes: dict[bytes, TOp], removed: list[bytes], found: _Found, t0: float
) -> None:
    """Values taken from the head were pushed before every value still in the list."""
    remaining = [pushes[v] for v in final if v in pushes]
    if not remaining:
        return
    first = min(remaining, key=lambda op: op.complete)
    for value in removed:
        push = pushes.get(value)
        if push is not None and first.complete < push.invoke:
            found.add(
                "a value removed from the head behind one that remains",
                f"{_show(value)} is gone, but {_show(first.arg)}, still in the list, was "
                f"pushed (acknowledged at +{first.complete - t0:.3f}s) before "
                f"{_show(value)}'s push began (+{push.invoke - t0:.3f}s)",
            )


# -- counters and unique fields


class _Sums:
    """Sums of increments by time: begun before ``t``, acknowledged before ``t``."""

    def __init__(self, ops: list[TOp]) -> None:
        live = sorted((op.invoke, op.amount) for op in ops if op.outcome is not Outcome.FAIL)
        acked = sorted((op.complete, op.amount) for op in ops if op.outcome is Outcome.OK)
        self._begun = [t for t, _ in live]
        self._begun_sums = list(itertools.accumulate((a for _, a in live), initial=0))
        self._acked = [t for t, _ in acked]
        self._acked_sums = list(itertools.accumulate((a for _, a in acked), initial=0))

    def begun_before(self, t: float) -> int:
        return self._begun_sums[bisect.bisect_left(self._begun, t)]

    def acked_before(self, t: float) -> int:
        return self._acked_sums[bisect.bisect_left(self._acked, t)]

    @property
    def acked(self) -> int:
        return self._acked_sums[-1]

    @property
    def possible(self) -> int:
        return self._begun_sums[-1]


def _check_counter(
    what: str, ops: list[TOp], final: float | None, found: _Found, t0: float
) -> _Sums:
    """A counter's increments (positive) against its final value (None: not read)."""
    sums = _Sums(ops)
    acked = [op for op in ops if op.outcome is Outcome.OK]
    totals = Counter(op.reply for op in acked)
    for total, n in totals.items():
        if n > 1:
            found.add(
                f"{what}: one total returned twice",
                f"{n} acknowledged increments each returned {total:g}",
            )
    for op in acked:
        low = sums.acked_before(op.invoke) + op.amount
        high = sums.begun_before(op.complete)
        if not low <= op.reply <= high:
            found.add(
                f"{what}: an increment's total out of bounds",
                f"the {op.at(t0)} of {op.amount} returned {op.reply:g}, outside [{low}, {high}]",
            )
        if final is not None and op.reply > final:
            found.add(
                f"{what}: an increment's total above the final value",
                f"the {op.at(t0)} returned {op.reply:g}, the final value is {final:g}",
            )
    if final is not None and not sums.acked <= final <= sums.possible:
        found.add(
            f"{what}: final value out of bounds",
            f"{final:g}, but the acknowledged increments sum to {sums.acked} and the "
            f"unknown ones allow at most {sums.possible}",
        )
    return sums


def _counter_read(
    what: str, value: float, sums: _Sums, read: TOp, linearizable: bool, found: _Found, t0: float
) -> None:
    low = sums.acked_before(read.invoke) if linearizable else 0
    high = sums.begun_before(read.complete)
    if not low <= value <= high:
        found.add(
            f"{what}: a read out of bounds",
            f"the {read.at(t0)} saw {value:g}, outside [{low}, {high}]",
        )


@dataclass
class _Unique:
    """The writes and removals of one family's unique fields (or members) on one key."""

    noun: str
    expect: Callable[[TOp], Any]
    """What the write ``op`` stores (a hash value, a score)."""
    writes: dict[bytes, TOp] = field(default_factory=dict)
    removals: dict[bytes, list[TOp]] = field(default_factory=lambda: defaultdict(list))

    def removed_acked(self, name: bytes) -> TOp | None:
        return next((r for r in self.removals.get(name, ()) if r.outcome is Outcome.OK), None)

    def maybe_removed(self, name: bytes, by: float = math.inf) -> bool:
        return any(
            r.outcome is not Outcome.FAIL and r.invoke < by for r in self.removals.get(name, ())
        )

    def check_replies(self, found: _Found, t0: float) -> None:
        for name, w in self.writes.items():
            if w.outcome is Outcome.OK and w.reply != 1:
                found.add(
                    f"an acknowledged write of a new {self.noun} did not answer 1",
                    f"{_show(name)}: {w.at(t0)} answered {w.reply!r}",
                )
        for name, rs in self.removals.items():
            write = self.writes.get(name)
            for r in rs:
                if (
                    r.outcome is Outcome.OK
                    and r.reply != 1
                    and write is not None
                    and write.outcome is Outcome.OK
                    and write.complete < r.invoke
                    and not any(o is not r and o.outcome is not Outcome.FAIL for o in rs)
                ):
                    found.add(
                        f"an acknowledged removal did not find its {self.noun}",
                        f"{_show(name)}: {r.at(t0)} answered {r.reply!r} after the write "
                        f"was acknowledged (+{write.complete - t0:.3f}s)",
                    )

    def check_state(
        self,
        present: dict[bytes, Any],
        what: str,
        by: float,
        recent_from: float | None,
        found: _Found,
        t0: float,
    ) -> None:
        """One observed state (seen by ``by``); ``recent_from``: it must include every
        write acknowledged before then (the final state, and linearizable reads)."""
        for name, got in present.items():
            w = self.writes.get(name)
            if w is None or w.outcome is Outcome.FAIL or w.invoke > by:
                why = (
                    "never written"
                    if w is None
                    else "whose write was refused"
                    if w.outcome is Outcome.FAIL
                    else "written only later"
                )
                found.add(f"a {self.noun} no write explains", f"{what} holds {_show(name)}, {why}")
            elif got != self.expect(w):
                found.add(
                    f"a {self.noun} with another value than written",
                    f"{what} holds {_show(name)} = {got!r}, written as {self.expect(w)!r}",
                )
            elif (
                recent_from is not None
                and (r := self.removed_acked(name)) is not None
                and r.complete < recent_from
            ):
                found.add(
                    f"a {self.noun} back after its removal was acknowledged",
                    f"{what} holds {_show(name)}, removed by the {r.at(t0)}",
                )
        if recent_from is None:
            return
        for name, w in self.writes.items():
            if (
                w.outcome is Outcome.OK
                and w.complete < recent_from
                and name not in present
                and not self.maybe_removed(name, by)
            ):
                found.add(
                    f"an acknowledged {self.noun} lost",
                    f"{what} lacks {_show(name)}, written by the {w.at(t0)} and never removed",
                )


def _gather(ops: list[TOp], write: TKind, remove: TKind, unique: _Unique) -> None:
    for op in ops:
        if op.kind is write:
            if op.arg in unique.writes:
                raise ValueError(f"{unique.noun} {op.arg!r} written twice (the workload's bug)")
            unique.writes[op.arg] = op
        elif op.kind is remove:
            unique.removals[op.arg].append(op)


def _check_hash(
    ops: list[TOp], final: dict[bytes, bytes] | None, linearizable: bool, t0: float
) -> list[str]:
    found = _Found()
    unique = _Unique("field", lambda w: hash_value(w.arg))
    _gather(ops, TKind.HSET, TKind.HDEL, unique)
    unique.check_replies(found, t0)
    incrs = [op for op in ops if op.kind is TKind.HINCRBY]
    what = f"counter field {COUNTER_FIELD.decode()}"
    final_count = None if final is None else _int(final.get(COUNTER_FIELD, b"0"), found)
    sums = _check_counter(what, incrs, final_count, found, t0)
    for read in ops:
        if read.kind is TKind.HGETALL and read.outcome is Outcome.OK:
            fields = dict(read.reply)
            count = _int(fields.pop(COUNTER_FIELD, b"0"), found)
            if count is not None:
                _counter_read(what, count, sums, read, linearizable, found, t0)
            recent = read.invoke if linearizable else None
            unique.check_state(fields, f"the {read.at(t0)}", read.complete, recent, found, t0)
    if final is not None:
        rest = {k: v for k, v in final.items() if k != COUNTER_FIELD}
        unique.check_state(rest, "the final hash", math.inf, math.inf, found, t0)
    return found.lines()


def _int(raw: bytes, found: _Found) -> int | None:
    try:
        return int(raw)
    except ValueError:
        found.add("a counter that is no integer", repr(raw))
        return None


def _check_zset(
    ops: list[TOp], final: list[tuple[bytes, float]] | None, linearizable: bool, t0: float
) -> list[str]:
    found = _Found()
    unique = _Unique("member", lambda w: float(w.amount))
    _gather(ops, TKind.ZADD, TKind.ZREM, unique)
    unique.check_replies(found, t0)
    sums: dict[bytes, _Sums] = {}
    for member in COUNTER_MEMBERS:
        incrs = [op for op in ops if op.kind is TKind.ZINCRBY and op.arg == member]
        score = None if final is None else dict(final).get(member, 0.0)
        sums[member] = _check_counter(f"counter {_show(member)}", incrs, score, found, t0)
    for read in ops:
        if read.kind is TKind.ZRANGE and read.outcome is Outcome.OK:
            what = f"the {read.at(t0)}"
            members = _zset_state(list(read.reply), what, found)
            for member in COUNTER_MEMBERS:
                score = members.pop(member, 0.0)
                label = f"counter {_show(member)}"
                _counter_read(label, score, sums[member], read, linearizable, found, t0)
            recent = read.invoke if linearizable else None
            unique.check_state(members, what, read.complete, recent, found, t0)
    if final is not None:
        members = _zset_state(final, "the final sorted set", found)
        for member in COUNTER_MEMBERS:
            members.pop(member, None)
        unique.check_state(members, "the final sorted set", math.inf, math.inf, found, t0)
    return found.lines()


def _zset_state(pairs: list[tuple[bytes, float]], what: str, found: _Found) -> dict[bytes, float]:
    """A sorted set's reply as a dict, checking its order and that no member repeats."""
    if pairs != sorted(pairs, key=lambda p: (p[1], p[0])):
        found.add("a sorted set out of order", f"{what} is not in (score, member) order")
    members = dict(pairs)
    if len(members) != len(pairs):
        found.add("a member twice in a sorted set", what)
    return members
