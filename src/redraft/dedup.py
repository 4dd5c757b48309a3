"""Client sessions in the replicated state: each write applied once, however often it is sent.

A client that cannot tell whether a write was applied (its connection broke
before the reply came) may only send it again if the cluster recognises the
second copy.  The Raft dissertation's answer (section 6.3) is kept here:
a client registers a session (a log entry, so every node knows it), tags
each write with the session and a sequence number, and the state machine
records the reply of every sequence it applied.  A copy that arrives again
is answered from that record instead of being applied a second time.

Everything here runs at apply time, from the log alone, so every node
decides the same: a session's age is measured by the time stamps the leader
wrote into the log, never by a local clock.  The table is written into
every snapshot beside the machine's state.

The client acknowledges replies it has received (``ack``: every sequence
below it), so the table keeps only the replies a client may still ask for
again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import IO, Any

import msgpack

from redraft.errors import error_text
from redraft.machine import NULL_ARRAY, Double, Pairs, Status, Verbatim
from redraft.resp import ErrorReply

SEQ_COMMAND = b"raftseq"
"""``RAFTSEQ session seq ack command [arg ...]``: run ``command`` at most once."""
SESSION_COMMAND = b"raftsession"
"""``RAFTSESSION NEW [ttl-ms]`` / ``RAFTSESSION END id``: open or close a session."""

DEFAULT_TTL_MS = 3_600_000
"""How long a session lives with no traffic, unless its client asks otherwise."""
MAX_TTL_MS = 30 * 86_400_000
MAX_SESSIONS = 100_000
"""Registered sessions at most; more are refused (expired ones are swept first)."""
MAX_UNACKED = 10_000
"""Replies one session may hold that its client has not acknowledged."""
SWEEP_EVERY_NS = 1_000_000_000

_BLOCK = struct.Struct("<8sQ")
_MAGIC = b"RDSESS1\n"
_EXT_STATUS = 1
_EXT_ERROR = 2
_EXT_NULL_ARRAY = 3
_EXT_DOUBLE = 4
_EXT_PAIRS = 5
_EXT_VERBATIM = 6
"""A :class:`Verbatim`: its three-byte format, then its text."""


class SessionError(ValueError):
    """A sequenced write that cannot be run: an unknown session, a sequence out of order."""


class Unknown(SessionError):
    """The session was never registered, was ended or expired."""

    def __init__(self, sid: int) -> None:
        super().__init__(f"NOSESSION client session {sid} is unknown or expired")


@dataclass(slots=True)
class _Session:
    ttl_ns: int
    last_ns: int
    floor: int = 0
    """Every sequence below it is acknowledged: its reply is gone and it may not come again."""
    replies: dict[int, bytes] = field(default_factory=dict)
    """Packed reply of each sequence applied and not yet acknowledged."""


class ClientSessions:
    """The table of client sessions, as every node holds it."""

    def __init__(self) -> None:
        self._sessions: dict[int, _Session] = {}
        self._next_id = 1
        self._next_sweep = 0

    def reset(self) -> None:
        """Forget every session (a snapshot without a table was restored)."""
        self._sessions = {}
        self._next_id = 1
        self._next_sweep = 0

    def __len__(self) -> int:
        return len(self._sessions)

    # --- applied commands

    def open(self, stamp: int, ttl_ms: int) -> int:
        """Register a session at log time ``stamp``; its id."""
        self._sweep(stamp)
        if len(self._sessions) >= MAX_SESSIONS:
            raise SessionError("ERR too many client sessions: wait for idle ones to expire")
        sid = self._next_id
        self._next_id += 1
        self._sessions[sid] = _Session(ttl_ms * 1_000_000, stamp)
        return sid

    def close(self, sid: int) -> bool:
        """Forget a session; whether it existed."""
        return self._sessions.pop(sid, None) is not None

    def begin(self, stamp: int, sid: int, seq: int, ack: int) -> bytes | None:
        """Start a sequenced write: its stored reply if it ran already, else None (run it).

        ``ack`` drops the replies of every sequence below it.  Raises
        :class:`SessionError` for an unknown session or an acknowledged
        sequence: running it again would apply it twice.
        """
        self._sweep(stamp)
        s = self._sessions.get(sid)
        if s is None:
            raise Unknown(sid)
        s.last_ns = stamp
        if ack > s.floor:
            s.floor = ack
            s.replies = {q: r for q, r in s.replies.items() if q >= ack}
        stored = s.replies.get(seq)
        if stored is not None:
            return stored
        if seq < s.floor:
            raise SessionError(
                f"ERR client session {sid}: sequence {seq} is below the acknowledged {s.floor}: "
                "it was answered already and cannot run again"
            )
        if len(s.replies) >= MAX_UNACKED:
            raise SessionError(
                f"ERR client session {sid} holds {MAX_UNACKED} unacknowledged replies: "
                "acknowledge them (ack) before sending more"
            )
        return None

    def record(self, sid: int, seq: int, packed: bytes) -> None:
        """Keep the reply of a sequenced write that just ran."""
        s = self._sessions.get(sid)
        if s is not None:
            s.replies[seq] = packed

    def _sweep(self, stamp: int) -> None:
        if stamp < self._next_sweep:
            return
        self._next_sweep = stamp + SWEEP_EVERY_NS
        gone = [sid for sid, s in self._sessions.items() if stamp - s.last_ns > s.ttl_ns]
        for sid in gone:
            del self._sessions[sid]

    # --- snapshots

    def dump(self, wr: IO[bytes]) -> None:
        """Write the table as one block at the start of a snapshot's payload."""
        body: bytes = msgpack.packb(
            [
                self._next_id,
                self._next_sweep,
                [
                    [sid, s.ttl_ns, s.last_ns, s.floor, list(s.replies.items())]
                    for sid, s in self._sessions.items()
                ],
            ]
        )
        wr.write(_BLOCK.pack(_MAGIC, len(body)))
        wr.write(body)

    def load(self, rd: IO[bytes]) -> None:
        """Replace the table with the block at ``rd``'s position (left just after it)."""
        head = rd.read(_BLOCK.size)
        if len(head) != _BLOCK.size:
            raise ValueError("snapshot payload ends inside its client-session block")
        magic, size = _BLOCK.unpack(head)
        if magic != _MAGIC:
            raise ValueError("snapshot payload does not start with a client-session block")
        body = rd.read(size)
        if len(body) != size:
            raise ValueError("snapshot payload ends inside its client-session block")
        next_id, next_sweep, rows = msgpack.unpackb(body, strict_map_key=False)
        self._next_id = next_id
        self._next_sweep = next_sweep
        self._sessions = {
            sid: _Session(ttl, last, floor, {q: bytes(r) for q, r in replies})
            for sid, ttl, last, floor, replies in rows
        }


# --- replies, stored


def pack_reply(value: Any, cmd_name: str) -> bytes:
    """A command's reply as the table keeps it: what any node can give back unchanged.

    An exception is kept as its error text; a reply the codec cannot keep is
    kept as an error saying so (every node fails the same way).
    """
    try:
        packed: bytes = msgpack.packb(value, default=_to_ext)
    except (TypeError, ValueError, OverflowError):
        packed = msgpack.packb(
            ErrorReply(f"ERR the reply of '{cmd_name}' cannot be kept for a retry"),
            default=_to_ext,
        )
    return packed


def unpack_reply(packed: bytes) -> Any:
    """The reply :func:`pack_reply` kept."""
    return msgpack.unpackb(packed, ext_hook=_from_ext, strict_map_key=False)


def error_as_reply(exc: BaseException, cmd_name: str) -> ErrorReply:
    """An exception a command raised, as the error reply it answers."""
    return ErrorReply(error_text(exc, cmd_name))


def _to_ext(value: Any) -> Any:
    if isinstance(value, Status):
        return msgpack.ExtType(_EXT_STATUS, value.text.encode())
    if isinstance(value, ErrorReply):
        return msgpack.ExtType(_EXT_ERROR, value.text.encode())
    if isinstance(value, BaseException):
        return msgpack.ExtType(_EXT_ERROR, error_text(value, "").encode())
    if value is NULL_ARRAY:
        return msgpack.ExtType(_EXT_NULL_ARRAY, b"")
    if isinstance(value, Double):
        return msgpack.ExtType(_EXT_DOUBLE, value.text)
    if isinstance(value, Pairs):
        halves: list[Any] = []
        for first, second in value.pairs:  # ValueError: not a pair
            halves += (first, second)
        return msgpack.ExtType(_EXT_PAIRS, msgpack.packb(halves, default=_to_ext))
    if isinstance(value, Verbatim):
        return msgpack.ExtType(_EXT_VERBATIM, value.format + value.text)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"cannot keep {type(value).__name__}")


def _from_ext(code: int, data: bytes) -> Any:
    if code == _EXT_STATUS:
        return Status(data.decode())
    if code == _EXT_ERROR:
        return ErrorReply(data.decode())
    if code == _EXT_NULL_ARRAY:
        return NULL_ARRAY
    if code == _EXT_DOUBLE:
        return Double(data)
    if code == _EXT_PAIRS:
        halves = unpack_reply(data)
        return Pairs(zip(halves[::2], halves[1::2], strict=True))
    if code == _EXT_VERBATIM:
        return Verbatim(data[3:], data[:3])
    return msgpack.ExtType(code, data)


__all__ = [
    "DEFAULT_TTL_MS",
    "MAX_TTL_MS",
    "SEQ_COMMAND",
    "SESSION_COMMAND",
    "ClientSessions",
    "SessionError",
    "Unknown",
    "error_as_reply",
    "pack_reply",
    "unpack_reply",
]
