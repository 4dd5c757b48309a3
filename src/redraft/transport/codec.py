"""The compact binary form of Raft messages carried between nodes.

A batch of messages for one peer travels as the payload of one ``RAFTMSG``
command.  The payload is msgpack: a list of messages, each a flat list of
fields; entries are ``[term, kind, data]`` triples after the index of the
first (they are contiguous).  Decoding validates every field so a malformed
or hostile payload is rejected as a whole with :class:`CodecError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import msgpack

from redraft.raft.types import Entry, Membership, Message, SnapChunk, SnapshotMeta

_VERSION = 1
_MAX_TYPE = 11


class CodecError(ValueError):
    """A peer payload that is not a valid batch of messages."""


def encode_messages(msgs: Sequence[Message]) -> bytes:
    """The payload of one ``RAFTMSG`` carrying ``msgs``."""
    return b"".join(encode_message_parts(msgs))


SharedEntries = dict[tuple[int, int, int], bytes]
"""Packed entry lists by identity, shared by the batches of one round of sends."""

_SHARE_BYTES = 32 << 10
"""Entry lists holding at least this much data are packed apart and shared."""
_FIELDS_TO_MESSAGE = b"\x9e"
"""msgpack fixarray(14): the first 12 fields, packed as an array, become a message's head."""
_NO_SNAPSHOT = b"\xc0"


def encode_message_parts(
    msgs: Sequence[Message], shared: SharedEntries | None = None
) -> list[bytes]:
    """The payload of ``msgs`` as pieces to write in order (their join is the payload).

    A large entry list is packed once into a piece of its own and kept in
    ``shared``, so that the batches for every follower of a round reuse it
    instead of copying the same values again (msgpack is a stream: an
    array's header followed by its packed elements).
    """
    shares = [
        bool(m.entries) and m.snap is None and _data_bytes(m.entries) >= _SHARE_BYTES for m in msgs
    ]
    if not any(shares):
        return [_pack([_VERSION, *map(_message_fields, msgs)])]
    parts = [_pack_array_header(1 + len(msgs)), _pack(_VERSION)]
    for m, share in zip(msgs, shares, strict=True):
        ents = m.entries
        if share:
            key = (id(ents[0]), id(ents[-1]), len(ents))
            packed = None if shared is None else shared.get(key)
            if packed is None:
                packed = _pack([(e.term, e.kind, e.data) for e in ents])
                if shared is not None:
                    shared[key] = packed
            head = _pack(_message_fields(m, entries=False))
            parts += (_FIELDS_TO_MESSAGE, head[1:], packed, _NO_SNAPSHOT)
        else:
            parts.append(_pack(_message_fields(m)))
    return parts


_data_attr = attrgetter("data")


def _data_bytes(ents: Sequence[Entry]) -> int:
    return sum(map(len, map(_data_attr, ents)))


def _message_fields(m: Message, entries: bool = True) -> list[Any]:
    """The fields of ``m`` in wire order (without the last two unless ``entries``)."""
    ents = m.entries
    fields: list[Any] = [
        m.type,
        m.to,
        m.frm,
        m.term,
        m.log_term,
        m.index,
        m.commit,
        m.reject,
        m.hint_index,
        m.hint_term,
        m.context,
        ents[0].index if ents else 0,
    ]
    if not entries:
        return fields
    snap = m.snap
    fields.append([(e.term, e.kind, e.data) for e in ents] if ents else None)
    fields.append(
        None
        if snap is None
        else (
            snap.meta.index,
            snap.meta.term,
            snap.meta.membership.encode(),
            snap.meta.size,
            snap.offset,
            snap.length,
            snap.data,
            snap.done,
        )
    )
    return fields


# One Packer for every call: msgpack.packb sets up a new one, with its own
# 256 KiB buffer, per call.  Sharing is safe: pack() runs in C under the
# GIL from start to end (no default hook calls back into Python).
_packer = msgpack.Packer(use_bin_type=True)
_pack = _packer.pack
_pack_array_header = _packer.pack_array_header


_MAX_INT = (1 << 63) - 1  # what the log stores can hold (terms, indexes, offsets)


def _int(v: Any) -> int:
    if type(v) is not int or not 0 <= v <= _MAX_INT:
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
        raw = msgpack.unpackb(payload, use_list=True, raw=False, strict_map_key=True)
    except Exception as exc:
        raise CodecError(f"undecodable payload: {exc}") from None
    if type(raw) is not list or not raw or raw[0] != _VERSION:
        raise CodecError("not a version 1 message batch")
    msgs: list[Message] = []
    for item in raw[1:]:
        if type(item) is not list or len(item) != 14:
            raise CodecError("malformed message")
        mtype = _int(item[0])
        if not 1 <= mtype <= _MAX_TYPE:
            raise CodecError(f"unknown message type {mtype}")
        if type(item[7]) is not bool:
            raise CodecError("malformed reject flag")
        entries: list[Entry] = []
        raw_ents = item[12]
        if raw_ents is not None:
            if type(raw_ents) is not list or len(raw_ents) > max_entries:
                raise CodecError("malformed entries")
            idx = _int(item[11])
            if idx == 0 and raw_ents:
                raise CodecError("entries start at index 0")
            for k, e in enumerate(raw_ents):
                if type(e) is not list or len(e) != 3:
                    raise CodecError("malformed entry")
                kind = _int(e[1])
                if kind > 2:
                    raise CodecError(f"unknown entry kind {kind}")
                entries.append(Entry(_int(e[0]), idx + k, kind, _bytes(e[2])))
        snap: SnapChunk | None = None
        raw_snap = item[13]
        if raw_snap is not None:
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
            snap = SnapChunk(meta, _int(raw_snap[4]), _int(raw_snap[5]), data, raw_snap[7])
        msgs.append(
            Message(
                mtype,
                _str(item[1]),
                _str(item[2]),
                _int(item[3]),
                _int(item[4]),
                _int(item[5]),
                entries,
                _int(item[6]),
                item[7],
                _int(item[8]),
                _int(item[9]),
                _int(item[10]),
                snap,
            )
        )
    return msgs
