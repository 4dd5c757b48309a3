"""The snapshot file store: writing, verification, retention and streamed receipt."""

from __future__ import annotations

import io
import logging
import os
import random
import stat
from pathlib import Path

import pytest

from redraft.raft.types import Membership, SnapshotMeta
from redraft.storage import (
    CorruptSnapshotError,
    SnapshotMissingError,
    SnapshotOffsetError,
    SnapshotStore,
)

MEMBERS = Membership(frozenset({"127.0.0.1:7481", "127.0.0.1:7482"}), frozenset({"127.0.0.1:7483"}))


def meta(index: int, term: int = 1) -> SnapshotMeta:
    return SnapshotMeta(index, term, MEMBERS)


def write_snapshot(store: SnapshotStore, index: int, payload: bytes, term: int = 1) -> SnapshotMeta:
    wr = store.begin(meta(index, term))
    # Writes of assorted sizes, crossing the writer's buffer.
    view = memoryview(payload)
    rng = random.Random(index)
    while view:
        n = rng.choice([1, 7, 4096, 70_000, 1 << 20])
        wr.write(view[:n])
        view = view[n:]
    return wr.commit()


def snapshot_files(store: SnapshotStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir())


def whole_file(store: SnapshotStore, m: SnapshotMeta, chunk: int = 65536) -> bytes:
    parts = []
    offset = 0
    while offset < m.size:
        parts.append(store.read_chunk(m, offset, chunk))
        offset += len(parts[-1])
    return b"".join(parts)


def test_round_trip(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    assert store.latest() is None
    payload = os.urandom(3 << 20)
    m = write_snapshot(store, 120, payload, term=4)
    assert (m.index, m.term, m.membership) == (120, 4, MEMBERS)
    assert m.size == store.path(m).stat().st_size
    assert store.path(m).name == "snap-4-120.rsnap"
    assert store.latest() == m
    assert SnapshotStore(tmp_path / "snaps").latest() == m  # verified from disk
    with store.open_payload(m) as rd:
        assert rd.length == len(payload)
        assert rd.read(10) == payload[:10]
        rd.seek(len(payload) - 5)
        assert rd.read() == payload[-5:]
        assert rd.read() == b""
        rd.seek(0)
        assert rd.read() == payload
    assert whole_file(store, m) == store.path(m).read_bytes()
    assert store.read_chunk(m, m.size - 3, 100) == store.path(m).read_bytes()[-3:]


def test_empty_payload(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    m = store.begin(meta(1)).commit()
    assert store.latest() == m
    with store.open_payload(m) as rd:
        assert rd.length == 0
        assert rd.read() == b""


def test_writer_close_does_not_finish_and_exit_aborts(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    wr = store.begin(meta(5))
    wr.write(b"state")
    wr.close()  # a machine closing its stream must not break the snapshot
    m = wr.commit()
    with store.open_payload(m) as rd:
        assert rd.read() == b"state"
    with store.begin(meta(9)) as wr2:
        wr2.write(b"never committed")
    assert store.latest() == m
    assert snapshot_files(store) == ["snap-1-5.rsnap"]


def test_abort_and_leftover_temp_files(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    wr = store.begin(meta(3))
    wr.write(b"x" * 100)
    wr.abort()
    wr.abort()
    assert snapshot_files(store) == []
    # A writer interrupted by a crash leaves a temp file; the next open clears it.
    abandoned = store.begin(meta(4))
    abandoned.write(b"y" * 100)
    abandoned.flush()
    assert len(snapshot_files(store)) == 1
    SnapshotStore(tmp_path)
    assert snapshot_files(store) == []
    abandoned.abort()


def test_keep_n_cleanup(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=2)
    metas = [write_snapshot(store, i * 10, b"p%d" % i) for i in range(1, 5)]
    assert snapshot_files(store) == ["snap-1-30.rsnap", "snap-1-40.rsnap"]
    assert store.latest() == metas[-1]


def test_pinned_snapshot_survives_cleanup(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=1)
    old = write_snapshot(store, 10, b"old")
    store.pin(old)
    store.pin(old)
    write_snapshot(store, 20, b"a")
    new = write_snapshot(store, 30, b"b")
    assert snapshot_files(store) == ["snap-1-10.rsnap", "snap-1-30.rsnap"]
    assert store.read_chunk(old, 0, old.size) == store.path(old).read_bytes()
    store.unpin(old)
    assert "snap-1-10.rsnap" in snapshot_files(store)  # still pinned once
    store.unpin(old)
    assert snapshot_files(store) == ["snap-1-30.rsnap"]
    assert store.latest() == new
    with pytest.raises(SnapshotMissingError):
        store.read_chunk(old, 0, 10)


def corrupt(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


def test_corrupt_newest_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SnapshotStore(tmp_path, keep=3)
    older = write_snapshot(store, 10, b"older state" * 100)
    newest = write_snapshot(store, 20, b"newest state" * 100)
    corrupt(store.path(newest), newest.size // 2)
    reopened = SnapshotStore(tmp_path, keep=3)
    with caplog.at_level(logging.WARNING, logger="redraft.storage.snapshots"):
        assert reopened.latest() == older
    assert "snap-1-20.rsnap" in caplog.text
    assert "checksum mismatch" in caplog.text
    # Moved aside, so it neither shadows nor crowds out the good ones.
    assert snapshot_files(store) == ["snap-1-10.rsnap", "snap-1-20.rsnap.corrupt"]


@pytest.mark.parametrize("where", ["head", "meta", "payload", "trailer", "truncated"])
def test_all_corrupt_gives_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    store = SnapshotStore(tmp_path, keep=2)
    metas = [write_snapshot(store, i, b"z" * 5000) for i in (1, 2)]
    for m in metas:
        path = store.path(m)
        if where == "truncated":
            path.write_bytes(path.read_bytes()[:-7])
        else:
            at = {"head": 2, "meta": 16, "payload": 3000, "trailer": m.size - 15}[where]
            corrupt(path, at)
    with caplog.at_level(logging.WARNING, logger="redraft.storage.snapshots"):
        assert SnapshotStore(tmp_path).latest() is None
    assert "no valid snapshot" in caplog.text
    assert "all 2 snapshot file(s) failed verification" in caplog.text


def stream(src: SnapshotStore, m: SnapshotMeta, chunk: int) -> list[tuple[int, bytes]]:
    data = whole_file(src, m)
    return [(off, data[off : off + chunk]) for off in range(0, len(data), chunk)]


def test_incoming_in_chunks(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    follower = SnapshotStore(tmp_path / "follower")
    payload = os.urandom(300_000)
    m = write_snapshot(leader, 77, payload, term=3)
    inc = follower.incoming()
    for off, data in stream(leader, m, 8191):
        assert inc.offset == off
        inc.write(off, data)
    got = inc.finish(m)
    assert got == m
    assert follower.latest() == m
    with follower.open_payload(got) as rd:
        assert rd.read() == payload
    assert snapshot_files(follower) == ["snap-3-77.rsnap"]


def test_incoming_rejects_out_of_order_and_restarts_at_zero(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    follower = SnapshotStore(tmp_path / "follower")
    m = write_snapshot(leader, 5, os.urandom(50_000))
    chunks = stream(leader, m, 4096)
    inc = follower.incoming()
    inc.write(*chunks[0])
    inc.write(*chunks[1])
    with pytest.raises(SnapshotOffsetError) as info:
        inc.write(*chunks[3])
    assert info.value.expected == chunks[2][0]
    with pytest.raises(SnapshotOffsetError):
        inc.write(*chunks[1])  # a duplicate is out of order too
    # Leader restarts the transfer from the beginning.
    for off, data in chunks:
        inc.write(off, data)
    assert inc.finish(m) == m


def test_incoming_checks_the_meta_given_at_start(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    follower = SnapshotStore(tmp_path / "follower")
    m = write_snapshot(leader, 5, os.urandom(1000))
    data = whole_file(leader, m)
    inc = follower.incoming(SnapshotMeta(5, 2, MEMBERS, m.size))  # another term
    inc.write(0, data)
    with pytest.raises(CorruptSnapshotError, match="expected"):
        inc.finish()
    inc = follower.incoming(m)
    inc.write(0, data)
    assert inc.finish() == m


def test_pin_by_index(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=1)
    old = write_snapshot(store, 10, b"old")
    store.pin_index(10)
    write_snapshot(store, 20, b"new")
    assert store.read_chunk(old, 0, 3) == store.path(old).read_bytes()[:3]
    store.unpin_index(10)
    assert snapshot_files(store) == ["snap-1-20.rsnap"]


def test_incoming_bad_checksum_is_rejected(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    follower = SnapshotStore(tmp_path / "follower")
    m = write_snapshot(leader, 5, os.urandom(50_000))
    chunks = stream(leader, m, 10_000)
    inc = follower.incoming()
    for off, data in chunks:
        if off == 20_000:
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        inc.write(off, data)
    with pytest.raises(CorruptSnapshotError, match="checksum mismatch"):
        inc.finish(m)
    assert inc.offset == 0  # ready for a fresh transfer
    assert follower.latest() is None
    for off, data in chunks:
        inc.write(off, data)
    assert inc.finish(m) == m


@pytest.mark.parametrize("problem", ["short", "other meta", "not a snapshot"])
def test_incoming_other_defects(tmp_path: Path, problem: str) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    follower = SnapshotStore(tmp_path / "follower")
    m = write_snapshot(leader, 5, os.urandom(20_000))
    data = whole_file(leader, m)
    expected = m
    if problem == "short":
        data = data[:-1]
    elif problem == "other meta":
        expected = SnapshotMeta(6, 1, MEMBERS, m.size)
    else:
        data = b"*" + data[1:]
    inc = follower.incoming()
    inc.write(0, data)
    with pytest.raises(CorruptSnapshotError):
        inc.finish(expected)
    inc.abort()
    assert snapshot_files(follower) == []


def test_incoming_same_snapshot_as_pinned_local_one(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader")
    m = write_snapshot(leader, 5, b"state")
    leader.pin(m)
    before = leader.path(m).read_bytes()
    inc = leader.incoming()
    inc.write(0, before)
    assert inc.finish(m) == m
    assert leader.path(m).read_bytes() == before
    assert snapshot_files(leader) == ["snap-1-5.rsnap"]


def test_payload_works_with_standard_readers(tmp_path: Path) -> None:
    import pickle

    store = SnapshotStore(tmp_path)
    state = {f"k{i}": list(range(i % 50)) for i in range(5000)}
    wr = store.begin(meta(1))
    pickle.dump(state, wr)
    m = wr.commit()
    with store.open_payload(m) as rd:
        assert pickle.load(rd) == state
        assert isinstance(rd, io.BufferedReader)


def test_permissions(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "data" / "snaps")
    m = write_snapshot(store, 1, b"secret")
    for d in (tmp_path / "data", tmp_path / "data" / "snaps"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path(m).stat().st_mode) == 0o600


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SnapshotStore(tmp_path, keep=0)
