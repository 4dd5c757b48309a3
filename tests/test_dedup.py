"""The replicated table of client sessions: what makes a write run once (redraft.dedup)."""

from __future__ import annotations

import io

import pytest

from redraft.dedup import (
    MAX_UNACKED,
    ClientSessions,
    SessionError,
    Unknown,
    pack_reply,
    unpack_reply,
)
from redraft.machine import NULL_ARRAY, OK, Double, Pairs, Status, Verbatim
from redraft.resp import ErrorReply, encode, encode3

SECOND = 1_000_000_000


def test_a_sequence_runs_once_and_its_copy_gets_the_same_reply() -> None:
    t = ClientSessions()
    sid = t.open(stamp=0, ttl_ms=60_000)
    assert t.begin(1, sid, seq=0, ack=0) is None  # run it
    t.record(sid, 0, pack_reply(7, "incr"))
    stored = t.begin(2, sid, seq=0, ack=0)
    assert stored is not None and unpack_reply(stored) == 7


def test_sessions_get_distinct_ids_and_unknown_ones_are_refused() -> None:
    t = ClientSessions()
    a, b = t.open(0, 1000), t.open(0, 1000)
    assert a != b
    with pytest.raises(Unknown, match="NOSESSION client session 99"):
        t.begin(0, 99, 0, 0)


def test_an_acknowledged_sequence_cannot_run_again() -> None:
    t = ClientSessions()
    sid = t.open(0, 60_000)
    for seq in range(3):
        assert t.begin(0, sid, seq, ack=seq) is None
        t.record(sid, seq, pack_reply(seq, "x"))
    with pytest.raises(SessionError, match="below the acknowledged 2"):
        t.begin(0, sid, 1, ack=2)
    stored = t.begin(0, sid, 2, ack=2)  # not acknowledged yet: still answerable
    assert stored is not None and unpack_reply(stored) == 2


def test_sequences_may_arrive_out_of_order_above_the_floor() -> None:
    # Several requests of one client in flight at once reach the log in any order.
    t = ClientSessions()
    sid = t.open(0, 60_000)
    assert t.begin(0, sid, 5, ack=3) is None
    t.record(sid, 5, pack_reply(b"five", "x"))
    assert t.begin(0, sid, 4, ack=3) is None


def test_a_session_expires_by_the_log_time_after_its_ttl() -> None:
    t = ClientSessions()
    sid = t.open(0, ttl_ms=2000)
    t.begin(1 * SECOND, sid, 0, 0)
    t.begin(int(2.5 * SECOND), sid, 1, 0)  # traffic keeps it alive
    with pytest.raises(Unknown):
        t.begin(int(5.6 * SECOND), sid, 2, 0)
    assert len(t) == 0


def test_unacknowledged_replies_are_bounded() -> None:
    t = ClientSessions()
    sid = t.open(0, 60_000)
    for seq in range(MAX_UNACKED):
        t.begin(0, sid, seq, ack=0)
        t.record(sid, seq, b"\xc0")
    with pytest.raises(SessionError, match="unacknowledged"):
        t.begin(0, sid, MAX_UNACKED, ack=0)
    assert t.begin(0, sid, MAX_UNACKED, ack=MAX_UNACKED) is None


def test_the_table_survives_a_snapshot_round_trip() -> None:
    t = ClientSessions()
    sid = t.open(0, 60_000)
    t.begin(0, sid, 3, 1)
    t.record(sid, 3, pack_reply([b"a", 1, None], "x"))
    buf = io.BytesIO()
    t.dump(buf)
    buf.write(b"machine state follows")
    buf.seek(0)
    u = ClientSessions()
    u.load(buf)
    assert buf.read() == b"machine state follows"
    stored = u.begin(0, sid, 3, 1)
    assert stored is not None and unpack_reply(stored) == [b"a", 1, None]
    assert u.open(0, 1000) == sid + 1  # ids keep counting where they were
    with pytest.raises(SessionError):
        u.begin(0, sid, 0, 1)


def test_a_truncated_block_is_refused() -> None:
    t = ClientSessions()
    t.open(0, 1000)
    buf = io.BytesIO()
    t.dump(buf)
    with pytest.raises(ValueError, match="client-session block"):
        ClientSessions().load(io.BytesIO(buf.getvalue()[:-3]))


@pytest.mark.parametrize(
    "value",
    [
        OK,
        Status("QUEUED"),
        ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value"),
        None,
        12,
        -3,
        1.5,
        b"bytes",
        "text",
        [b"a", [1, None]],
        {b"k": b"v"},
        True,
        NULL_ARRAY,
        Double(b"0.10000000000000001"),
        Pairs([(b"a", Double(b"inf")), (b"b", [Double(b"2"), None, Pairs()])]),
        Verbatim(b"# Server\r\nredis_version:7.0.15\r\n"),
        [Verbatim(b"", b"mkd"), Pairs([(b"k", Verbatim(b"v\n"))])],
    ],
)
def test_a_kept_reply_encodes_as_the_original(value: object) -> None:
    kept = unpack_reply(pack_reply(value, "x"))
    assert encode(kept) == encode(value)
    assert encode3(kept) == encode3(value)  # a retry after HELLO 3 gets RESP3's form


def test_an_exception_is_kept_as_its_error_reply() -> None:
    kept = unpack_reply(pack_reply(ValueError("ERR no such key"), "x"))
    assert encode(kept) == b"-ERR no such key\r\n"


def test_a_reply_that_cannot_be_kept_becomes_an_error_on_every_node() -> None:
    kept = unpack_reply(pack_reply(object(), "odd"))
    assert isinstance(kept, ErrorReply) and "'odd'" in kept.text
