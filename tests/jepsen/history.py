"""Recorded client operations on a key-value store, for linearizability checks.

A fault-suite client calls :meth:`History.invoke` just before it sends a command
and :meth:`History.complete` once it knows the outcome. Operations are plain
:class:`Op` values, so a history can be saved as JSON lines next to the node
logs and checked again later with :func:`load_ops`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "History",
    "Kind",
    "Op",
    "Outcome",
    "Recording",
    "dump_ops",
    "load_ops",
    "read_ops",
    "write_ops",
]


class Kind(StrEnum):
    """The commands the checker models."""

    GET = "get"
    SET = "set"
    DEL = "del"
    INCR = "incr"


class Outcome(StrEnum):
    """What the client learned about an operation.

    ``FAIL`` means the server guaranteed the command was not applied (for
    example ``-TRY`` or "leader not known"); ``UNKNOWN`` means it may or may not
    have been applied, at any time after it was invoked (timeout, lost
    connection, or a client that never heard back).
    """

    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


Scalar = bytes | int | None
"""A value or result as recorded: bytes for strings, int for counts and counters."""

Loose = bytes | str | int | None
"""What callers may pass in; strings are UTF-8 encoded, as redis-py does."""


def _to_bytes(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    # redis-py sends integers as their decimal text.
    return str(value).encode()


def _normalise_value(kind: Kind, value: Loose) -> Scalar:
    if kind is Kind.SET:
        if value is None:
            raise ValueError("set needs a value")
        return _to_bytes(value)
    if kind is Kind.INCR:
        if value is None:
            return 1
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"incr increment must be an int, got {value!r}")
        return value
    if value is not None:
        raise ValueError(f"{kind} takes no value, got {value!r}")
    return None


def _normalise_result(kind: Kind, outcome: Outcome, result: Loose) -> Scalar:
    if outcome is not Outcome.OK or kind is Kind.SET:
        # Only acknowledged reads carry information; SET's reply is always OK.
        return None
    if kind is Kind.GET:
        return None if result is None else _to_bytes(result)
    if isinstance(result, bytes | str):
        result = int(result)
    if not isinstance(result, int) or isinstance(result, bool):
        raise ValueError(f"ok {kind} needs an integer result, got {result!r}")
    return result


@dataclass(frozen=True, slots=True)
class Op:
    """One client operation on one key.

    ``value`` is the bytes written by SET and the increment of INCR (None for
    GET and DEL). ``result`` is what an acknowledged operation returned: GET the
    bytes read or None, DEL the number of keys deleted, INCR the new value; it
    is None for SET and for operations that are not ``ok``. Times are
    monotonic seconds; ``complete`` is ``inf`` for unknown outcomes.
    """

    client: int | str
    kind: Kind
    key: bytes
    value: Scalar
    invoke: float
    complete: float
    outcome: Outcome
    result: Scalar = None
    id: int = -1

    def __post_init__(self) -> None:
        if self.outcome is Outcome.UNKNOWN and self.complete != math.inf:
            raise ValueError("an unknown outcome has complete=inf; use Op.of to build one")
        if not self.complete >= self.invoke:
            raise ValueError(f"op completes ({self.complete}) before it starts ({self.invoke})")

    @classmethod
    def of(
        cls,
        client: int | str,
        kind: Kind | str,
        key: bytes | str,
        value: Loose = None,
        *,
        invoke: float,
        complete: float = math.inf,
        outcome: Outcome | str = Outcome.OK,
        result: Loose = None,
        id: int = -1,
    ) -> Op:
        """Build an op from loosely typed parts (str keys and values are UTF-8 encoded).

        An unknown outcome's completion time is replaced by ``inf``.
        """
        k = Kind(kind)
        out = Outcome(outcome)
        return cls(
            client=client,
            kind=k,
            key=_to_bytes(key),
            value=_normalise_value(k, value),
            invoke=float(invoke),
            complete=math.inf if out is Outcome.UNKNOWN else float(complete),
            outcome=out,
            result=_normalise_result(k, out, result),
            id=id,
        )

    def to_json(self) -> dict[str, Any]:
        """This op as a JSON-compatible dict (bytes as text, or ``{"hex": ...}`` if not UTF-8)."""
        return {
            "id": self.id,
            "client": self.client,
            "kind": self.kind.value,
            "key": _encode_scalar(self.key),
            "value": _encode_scalar(self.value),
            "invoke": self.invoke,
            "complete": None if self.complete == math.inf else self.complete,
            "outcome": self.outcome.value,
            "result": _encode_scalar(self.result),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Op:
        """Inverse of :meth:`to_json`."""
        kind = Kind(data["kind"])
        complete = data.get("complete")
        return cls.of(
            data["client"],
            kind,
            _decode_bytes(data["key"]),
            _decode_scalar(data.get("value")),
            invoke=data["invoke"],
            complete=math.inf if complete is None else complete,
            outcome=data["outcome"],
            result=_decode_scalar(data.get("result")),
            id=data.get("id", -1),
        )


def _encode_scalar(value: Scalar) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"hex": value.hex()}
    return value


def _decode_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, dict) and isinstance(data.get("hex"), str):
        return bytes.fromhex(data["hex"])
    raise ValueError(f"expected text or {{'hex': ...}}, got {data!r}")


def _decode_scalar(data: Any) -> Scalar:
    if data is None or (isinstance(data, int) and not isinstance(data, bool)):
        return data
    return _decode_bytes(data)


def dump_ops(ops: Iterable[Op], fp: IO[str]) -> None:
    """Write ops as JSON lines, one op per line."""
    for op in ops:
        fp.write(json.dumps(op.to_json(), separators=(",", ":")))
        fp.write("\n")


def load_ops(fp: IO[str]) -> list[Op]:
    """Read ops written by :func:`dump_ops` (blank lines are ignored)."""
    return [Op.from_json(json.loads(line)) for line in fp if line.strip()]


def write_ops(ops: Iterable[Op], path: str | Path) -> None:
    """Save ops to a JSON-lines file."""
    with open(path, "w", encoding="utf-8") as fp:
        dump_ops(ops, fp)


def read_ops(path: str | Path) -> list[Op]:
    """Load ops from a JSON-lines file written by :func:`write_ops`."""
    with open(path, encoding="utf-8") as fp:
        return load_ops(fp)


@dataclass(frozen=True, slots=True)
class _Pending:
    client: int | str
    kind: Kind
    key: bytes
    value: Scalar
    invoke: float


class History:
    """A thread-safe recorder of client operations.

    Every method takes a lock for a few microseconds and never blocks on I/O,
    so it is safe to call from threads and from coroutines alike. Handles are
    op ids, assigned in invocation order.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._done: dict[int, Op] = {}
        self._next_id = 0

    def invoke(
        self, client: int | str, kind: Kind | str, key: bytes | str, value: Loose = None
    ) -> int:
        """Record that ``client`` is about to send a command; returns the op's handle."""
        k = Kind(kind)
        key_bytes = _to_bytes(key)
        written = _normalise_value(k, value)
        with self._lock:
            handle = self._next_id
            self._next_id += 1
            # Read the clock under the lock so invocation times follow handle order.
            self._pending[handle] = _Pending(client, k, key_bytes, written, self._clock())
        return handle

    def complete(self, handle: int, outcome: Outcome | str, result: Loose = None) -> Op:
        """Record the outcome of the op ``handle`` (each handle completes once)."""
        out = Outcome(outcome)
        now = self._clock()
        with self._lock:
            pending = self._pending.pop(handle, None)
            if pending is None:
                raise ValueError(f"op {handle} is not pending")
            op = Op.of(
                pending.client,
                pending.kind,
                pending.key,
                pending.value,
                invoke=pending.invoke,
                complete=max(now, pending.invoke),
                outcome=out,
                result=result,
                id=handle,
            )
            self._done[handle] = op
        return op

    def ok(self, handle: int, result: Loose = None) -> Op:
        """Shorthand for ``complete(handle, Outcome.OK, result)``."""
        return self.complete(handle, Outcome.OK, result)

    def fail(self, handle: int) -> Op:
        """Shorthand for ``complete(handle, Outcome.FAIL)``: definitely not applied."""
        return self.complete(handle, Outcome.FAIL)

    def unknown(self, handle: int) -> Op:
        """Shorthand for ``complete(handle, Outcome.UNKNOWN)``: may have been applied."""
        return self.complete(handle, Outcome.UNKNOWN)

    def recording(
        self, client: int | str, kind: Kind | str, key: bytes | str, value: Loose = None
    ) -> Recording:
        """A context manager (sync or async) around one op; see :class:`Recording`."""
        return Recording(self, self.invoke(client, kind, key, value))

    def ops(self) -> list[Op]:
        """All ops in invocation order; ops still pending are reported as unknown."""
        with self._lock:
            done = dict(self._done)
            pending = dict(self._pending)
        out = list(done.values())
        out.extend(
            Op.of(
                p.client,
                p.kind,
                p.key,
                p.value,
                invoke=p.invoke,
                outcome=Outcome.UNKNOWN,
                id=handle,
            )
            for handle, p in pending.items()
        )
        out.sort(key=lambda op: op.id)
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._done) + len(self._pending)

    def save(self, path: str | Path) -> None:
        """Write :meth:`ops` to a JSON-lines file."""
        write_ops(self.ops(), path)


class Recording:
    """Records one op; leaving the block without an outcome records it as unknown.

    Use ``with history.recording(c, "set", k, v) as rec: ...; rec.ok()`` (or
    ``async with``). Call :meth:`fail` only for errors that guarantee the
    command was not applied. Exceptions propagate unchanged.
    """

    def __init__(self, history: History, handle: int) -> None:
        self._history = history
        self.handle = handle
        self.op: Op | None = None

    def ok(self, result: Loose = None) -> Op:
        """The command was acknowledged with ``result``."""
        self.op = self._history.ok(self.handle, result)
        return self.op

    def fail(self) -> Op:
        """The command was definitely not applied."""
        self.op = self._history.fail(self.handle)
        return self.op

    def unknown(self) -> Op:
        """The command may or may not have been applied."""
        self.op = self._history.unknown(self.handle)
        return self.op

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.op is None:
            self.unknown()

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
