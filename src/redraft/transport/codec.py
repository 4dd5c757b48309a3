"""The compact binary form of Raft messages carried between nodes.

A batch of messages for one peer travels as the payload of one ``RAFTMSG``
command.  The payload is msgpack: a list of messages, each a flat list of
fields; entries are ``[term, kind, data]`` triples after the index of the
first (they are contiguous).  Decoding validates every field so a malformed
or hostile payload is rejected as a whole with :class:`CodecError`.

Two wire slots are shared by fields that never occur in the same message
type (version 1 of the format had one overloaded field for them):

* slot 8 carries ``snap_offset`` on SNAP_RESP and ``hint_index`` otherwise;
* slot 10 carries ``round`` on HEARTBEAT and HEARTBEAT_RESP, ``transfer`` (as
  1 or 0) on VOTE and PRE_VOTE, ``installed`` (as 1 or 0) on SNAP_RESP, and
  0 otherwise; on decoding, a flag is set by 1 exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgpack

from redraft.raft.types import Entry, Membership, Message, MsgType, SnapChunk, SnapshotMeta

_VERSION: Final = 1
_MAX_TYPE: Final = 11

# What the shared wire slots 8 and 10 carry, by message type (index).
_NONE, _ROUND, _TRANSFER, _INSTALLED = 0, 1, 2, 3
_SHARED_SLOTS: Final = tuple(
    {
        MsgType.VOTE: _TRANSFER,
        MsgType.PRE_VOTE: _TRANSFER,
        MsgType.HEARTBEAT: _ROUND,
        MsgType.HEARTBEAT_RESP: _ROUND,
        MsgType.SNAP_RESP: _INSTALLED,
    }.get(MsgType(t), _NONE)
    if 1 <= t <= _MAX_TYPE
    else _NONE
    for t in range(_MAX_TYPE + 1)
)


class CodecError(ValueError):
    """A peer payload that is not a valid batch of messages."""


def encode_messages(msgs: Sequence[Message]) -> bytes:
    """The payload of one ``RAFTMSG`` carrying ``msgs``."""
    return b"".join(encode_message_parts(msgs))


SharedEntries = dict[tuple[int, int, int], bytes]
"""Packed entry lists by identity, shared by the batches of one round of sends."""

_SHARE_BYTES: Final = 32 << 10
"""Entry lists holding at least this much data are packed apart and shared."""
_FIELDS_TO_MESSAGE: Final = b"\x9e"
"""msgpack fixarray(14): the first 12 fields, packed as an array, become a message's head."""
_NO_SNAPSHOT: Final = b"\xc0"


def encode_message_parts(
    msgs: Sequence[Message], shared: SharedEntries | None = None
) -> list[bytes]:
    """The payload of ``msgs`` as pieces to write in order (their join is the payload).

    A large entry list is packed once into a piece of its own and kept in
    ``shared``, so that the batches for every follower of a round reuse it
    instead of copying the same values again (msgpack is a stream: an
    array's header followed by its packed elements).
    """
    # The usual batch (no large entry list): one list packed in one call,
    # built by a loop rather than map and a starred list (compiled, each of
    # those went back through the interpreter's call machinery).
    whole: list[Any] = [_VERSION]
    for m in msgs:
        if _shares(m):
            break
        whole.append(_message_fields(m))
    else:
        return [_pack(whole)]
    parts = [_pack_array_header(1 + len(msgs)), _pack(_VERSION)]
    for m in msgs:
        ents = m.entries
        if _shares(m):
            key = (id(ents[0]), id(ents[-1]), len(ents))
            packed = None if shared is None else shared.get(key)
            if packed is None:
                packed = _pack(_wire_entries(ents))
                if shared is not None:
                    shared[key] = packed
            head = _pack(_message_fields(m, entries=False))
            parts += (_FIELDS_TO_MESSAGE, head[1:], packed, _NO_SNAPSHOT)
        else:
            parts.append(_pack(_message_fields(m)))
    return parts


def _shares(m: Message) -> bool:
    """Whether ``m``'s entries are packed apart, to be shared (see :func:`encode_message_parts`)."""
    ents = m.entries
    return bool(ents) and m.snap is None and _data_bytes(ents) >= _SHARE_BYTES


def _wire_entries(ents: Sequence[Entry]) -> list[tuple[int, int, bytes]]:
    """Entries as the wire carries them, (term, kind, data) (their indexes are implied)."""
    return [(e.term, e.kind, e.data) for e in ents]


def _data_bytes(ents: Sequence[Entry]) -> int:
    total = 0
    for e in ents:  # a loop, not sum(map(len, ...)): compiled, it is native code
        total += len(e.data)
    return total


def _message_fields(m: Message, entries: bool = True) -> list[Any]:
    """The fields of ``m`` in wire order (without the last two unless ``entries``)."""
    ents = m.entries
    t = m.type
    # The shared slots (see the module docstring): a table lookup, so that
    # the common messages (APP, APP_RESP) pay for no comparisons.
    try:
        kind = _SHARED_SLOTS[t]
    except IndexError:
        kind = _NONE  # not a message type: the decoder rejects it anyway
    if kind == _NONE:
        hint = m.hint_index
        extra = 0
    elif kind == _ROUND:
        hint = m.hint_index
        extra = m.round
    elif kind == _TRANSFER:
        hint = m.hint_index
        extra = 1 if m.transfer else 0
    else:
        hint = m.snap_offset
        extra = 1 if m.installed else 0
    first = ents[0].index if ents else 0
    if not entries:
        return [
            t,
            m.to,
            m.frm,
            m.term,
            m.log_term,
            m.index,
            m.commit,
            m.reject,
            hint,
            m.hint_term,
            extra,
            first,
        ]
    snap = m.snap
    # One list literal: appending the last two fields would cost two calls.
    return [
        t,
        m.to,
        m.frm,
        m.term,
        m.log_term,
        m.index,
        m.commit,
        m.reject,
        hint,
        m.hint_term,
        extra,
        first,
        _wire_entries(ents) if ents else None,
        None if snap is None else _snap_fields(snap),
    ]


def _snap_fields(snap: SnapChunk) -> tuple[Any, ...]:
    meta = snap.meta
    return (
        meta.index,
        meta.term,
        meta.membership.encode(),
        meta.size,
        snap.offset,
        snap.length,
        snap.data,
        snap.done,
    )


# One Packer for every call: msgpack.packb sets up a new one, with its own
# 256 KiB buffer, per call.  Sharing is safe: pack() runs in C under the
# GIL from start to end (no default hook calls back into Python).
_packer = msgpack.Packer(use_bin_type=True)
_pack: Final = _packer.pack
_pack_array_header: Final = _packer.pack_array_header
_unpackb: Final = msgpack.unpackb


_new_tuple: Final = tuple.__new__
_MAX_INT: Final = (1 << 63) - 1  # what the log stores can hold (terms, indexes, offsets)
_SHORT_MAX: Final = (1 << 62) - 1
"""The largest int the compiled build keeps unboxed: a comparison with it is
two instructions, with ``_MAX_INT`` (boxed) ~150, so the range checks below
try it first."""


def _int(v: Any) -> int:
    if type(v) is not int or not (v >= 0 and (v <= _SHORT_MAX or v <= _MAX_INT)):
        raise CodecError(f"expected an integer in [0, 2**63), got {v!r}")
    return v


def _str(v: Any) -> str:
    if type(v) is not str or len(v) > 1024:
        raise CodecError(f"expected a node id, got {v!r}")
    return v


def _bytes(v: Any) -> bytes:
    if type(v) is not bytes:
        raise CodecError(f"expected bytes, got {type(v).__name__}")
    return v


def decode_messages(payload: bytes, max_entries: int = 1 << 20) -> list[Message]:
    """Decode a batch; raises :class:`CodecError` on any malformation."""
    try:
        raw = _unpackb(payload, use_list=True, raw=False, strict_map_key=True)
    except Exception as exc:
        raise CodecError(f"undecodable payload: {exc}") from None
    if type(raw) is not list or not raw or raw[0] != _VERSION:
        raise CodecError("not a version 1 message batch")
    msgs: list[Message] = []
    # Inline rather than a function per message: this runs for every
    # message a node receives.  (The validators are called by name, not
    # through locals: compiled, a name is a direct call, a local a lookup
    # in the module's globals and a generic call.)
    for item in raw[1:]:
        if type(item) is not list or len(item) != 14:
            raise CodecError("malformed message")
        mtype = _int(item[0])
        if not 1 <= mtype <= _MAX_TYPE:
            raise CodecError(f"unknown message type {mtype}")
        reject = item[7]
        if type(reject) is not bool:
            raise CodecError("malformed reject flag")
        raw_ents = item[12]
        entries = [] if raw_ents is None else _decode_entries(raw_ents, item[11], max_entries)
        raw_snap = item[13]
        snap = None if raw_snap is None else _decode_snapshot(raw_snap)
        # term, log_term, index, commit, slot 8, hint_term, slot 10: checked in one call
        term, log_term, index, commit = item[3], item[4], item[5], item[6]
        hint, hint_term, extra = item[8], item[9], item[10]
        if not _valid_ints(term, log_term, index, commit, hint, hint_term, extra):
            _check_ints((term, log_term, index, commit, hint, hint_term, extra))
        kind = _SHARED_SLOTS[mtype]
        m = Message(
            mtype,
            _str(item[1]),
            _str(item[2]),
            term,
            log_term,
            index,
            entries,
            commit,
            reject,
            hint,
            hint_term,
            extra if kind == _ROUND else 0,  # heartbeats, every tick
            False,
            False,
            0,
            snap,
        )
        if kind > _ROUND:
            _set_shared(m, kind, extra)
        msgs.append(m)
    return msgs


def _valid_ints(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any, g: Any) -> bool:
    """Whether all seven are integers :func:`_int` accepts below 2**62 (one call, not seven)."""
    return (
        type(a) is int
        and type(b) is int
        and type(c) is int
        and type(d) is int
        and type(e) is int
        and type(f) is int
        and type(g) is int
        and 0 <= a <= _SHORT_MAX
        and 0 <= b <= _SHORT_MAX
        and 0 <= c <= _SHORT_MAX
        and 0 <= d <= _SHORT_MAX
        and 0 <= e <= _SHORT_MAX
        and 0 <= f <= _SHORT_MAX
        and 0 <= g <= _SHORT_MAX
    )


def _check_ints(values: Sequence[Any]) -> None:
    """Raise the CodecError the first invalid one of ``values`` deserves, if any.

    The slow path of :func:`_valid_ints`, which says no to valid integers
    from 2**62 up as well.
    """
    for v in values:
        _int(v)


def _set_shared(m: Message, kind: int, extra: int) -> None:
    """Move what the shared slots carried (read as hint_index and ``extra``) to their fields."""
    if kind == _ROUND:
        m.round = extra
    elif kind == _TRANSFER:
        m.transfer = extra == 1
    else:
        m.installed = extra == 1
        m.snap_offset = m.hint_index
        m.hint_index = 0


def _decode_entries(raw_ents: Any, first: Any, max_entries: int) -> list[Entry]:
    if type(raw_ents) is not list or len(raw_ents) > max_entries:
        raise CodecError("malformed entries")
    idx = _int(first)
    if idx == 0 and raw_ents:
        raise CodecError("entries start at index 0")
    entries: list[Entry] = []
    # A plain loop with locals: compiled, enumerate(raw_ents, idx), a bound
    # append and the module's globals cost more than the entries themselves.
    entry = Entry
    new = _new_tuple
    k = idx
    for e in raw_ents:
        if type(e) is not list or len(e) != 3:
            raise CodecError("malformed entry")
        kind = _int(e[1])
        if kind > 2:
            raise CodecError(f"unknown entry kind {kind}")
        # tuple.__new__ directly: Entry(...) would run NamedTuple's __new__ in Python.
        entries.append(new(entry, (_int(e[0]), k, kind, _bytes(e[2]))))
        k += 1
    return entries


def _decode_snapshot(raw_snap: Any) -> SnapChunk:
    if type(raw_snap) is not list or len(raw_snap) != 8:
        raise CodecError("malformed snapshot chunk")
    try:
        membership = Membership.decode(_bytes(raw_snap[2]))
    except CodecError:
        raise
    except Exception:
        raise CodecError("malformed snapshot membership") from None
    if type(raw_snap[7]) is not bool:
        raise CodecError("malformed snapshot flag")
    meta = SnapshotMeta(_int(raw_snap[0]), _int(raw_snap[1]), membership, _int(raw_snap[3]))
    data = _bytes(raw_snap[6])
    return SnapChunk(meta, _int(raw_snap[4]), _int(raw_snap[5]), data, raw_snap[7])
