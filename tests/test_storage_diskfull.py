"""Every persistent store on a full disk: a write that finds no room raises
DiskFullError and stores nothing, the same call works once space returns, and
a failed fsync is fatal whatever its errno.

The disk-full tests run on small tmpfs volumes (mounting needs root, as in
CI; elsewhere they skip and say why).  The fsync tests inject the failure.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest

from redraft.raft.types import Entry, HardState, Membership, SnapshotMeta
from redraft.storage import (
    DiskFullError,
    LogStore,
    MemoryStore,
    SnapshotStore,
    StorageError,
    fastlog,
    is_disk_full,
    leveldb_backend,
    open_store,
)
from redraft.storage.fastlog import REWRITE_SUFFIX, FastLogStore
from redraft.storage.files import SPACE_PROBE
from redraft.storage.leveldb_backend import LevelDbStore
from redraft.storage.lmdb_backend import LmdbStore
from tests import tmpfs
from tests.test_storage import snapshot_of

pytestmark = pytest.mark.timeout(60)

needs_tmpfs = pytest.mark.skipif(tmpfs.unavailable() is not None, reason=str(tmpfs.unavailable()))

PERSISTENT = ["fastlog", "lmdb", "leveldb"]
VOLUME = 8 << 20
MEMBERS = Membership(frozenset({"127.0.0.1:7481"}), frozenset())

Call = Callable[[LogStore], None]


def ents(first: int, count: int, term: int, size: int) -> list[Entry]:
    return [
        Entry(term, i, 0, (b"%d@%d:" % (i, term)).ljust(size, b"x"))
        for i in range(first, first + count)
    ]


@pytest.fixture
def vol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tmpfs.Volume]:
    reason = tmpfs.unavailable()
    if reason is not None:
        pytest.skip(reason)
    # A MiB of zeros grown ahead would hold some of these tests' writes
    # whole; a page of them keeps their disks filling after a few records.
    monkeypatch.setattr(fastlog, "PREALLOCATE", 4096)
    with tmpfs.volume(tmp_path / "vol", VOLUME) as volume:
        yield volume


@pytest.fixture
def stores() -> Iterator[list[LogStore]]:
    """Stores to close at the end (before the volume is unmounted)."""
    opened: list[LogStore] = []
    yield opened
    for store in opened:
        with contextlib.suppress(StorageError):
            store.close()


def both(store: LogStore, model: MemoryStore, call: Call) -> None:
    call(store)
    call(model)


def until_full(
    store: LogStore, model: MemoryStore, calls: Iterable[Call]
) -> tuple[Call, DiskFullError]:
    """Make ``calls`` on ``store`` (and the model) until one fails for lack of space."""
    for call in calls:
        try:
            call(store)
        except DiskFullError as exc:
            return call, exc
        call(model)
    pytest.fail("the disk never filled up")


def saves(first: int, size: int, sync_every: int = 3) -> Iterator[Call]:
    """Batches of 8 entries, a new hard state with each, every ``sync_every``-th one synced."""
    index, step = first, 0
    while True:
        batch = ents(index, 8, 2, size)
        hs = HardState(2, "n1", index - 1)
        sync = step % sync_every == 0

        def call(
            s: LogStore, hs: HardState = hs, batch: list[Entry] = batch, sync: bool = sync
        ) -> None:
            s.save(hs, batch, sync)

        yield call
        index += 8
        step += 1


def filled(
    store: LogStore, model: MemoryStore, vol: tmpfs.Volume, leave: int
) -> tuple[Call, DiskFullError]:
    """Fill the volume but ``leave`` bytes, then save until a save finds no room."""
    both(store, model, lambda s: s.save(HardState(1, "n1", 0), ents(1, 8, 1, 1000), True))
    vol.fill(leave)
    call, exc = until_full(store, model, saves(9, 4000))
    assert is_disk_full(exc) and exc.path
    return call, exc


# --- saves on a full disk


@needs_tmpfs
@pytest.mark.parametrize("leave", [0, 5000, 200_000])
@pytest.mark.parametrize("backend", PERSISTENT)
def test_full_disk_save_is_kept_out_and_retried(
    backend: str, leave: int, vol: tmpfs.Volume, stores: list[LogStore]
) -> None:
    directory = vol.path / "log"
    store = open_store(backend, directory)
    stores.append(store)
    model = MemoryStore()
    failed, _ = filled(store, model, vol, leave)
    # Reads answer for everything saved before.
    assert snapshot_of(store) == snapshot_of(model)
    assert store.term(store.last_index()) == model.term(model.last_index())
    # Still full: the same call fails again, and changes nothing.
    with pytest.raises(DiskFullError):
        failed(store)
    assert snapshot_of(store) == snapshot_of(model)
    vol.free()
    both(store, model, failed)
    assert snapshot_of(store) == snapshot_of(model)
    both(store, model, next(saves(store.last_index() + 1, 100)))
    store.close()
    store = open_store(backend, directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)
    assert not (directory / SPACE_PROBE).exists()


@needs_tmpfs
@pytest.mark.parametrize("backend", PERSISTENT)
def test_closed_while_full_reopens_without_the_failed_call(
    backend: str, vol: tmpfs.Volume, stores: list[LogStore]
) -> None:
    directory = vol.path / "log"
    store = open_store(backend, directory)
    stores.append(store)
    model = MemoryStore()
    failed, _ = filled(store, model, vol, 100_000)
    store.close()  # on the full disk
    vol.free()
    store = open_store(backend, directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)  # nothing of the failed call
    both(store, model, failed)
    store.close()
    store = open_store(backend, directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)


@contextlib.contextmanager
def no_page_reuse(store: LogStore) -> Iterator[None]:
    """For LMDB, a reader that keeps the pages later commits free from being reused.

    Otherwise small transactions may recycle the same free pages forever and
    never need the disk to grow.
    """
    if not isinstance(store, LmdbStore):
        yield
        return
    txn = store._env.begin()
    try:
        yield
    finally:
        txn.abort()


def compacts(first: int) -> Iterator[Call]:
    upto = first
    while True:

        def call(s: LogStore, upto: int = upto) -> None:
            s.compact(upto, 1 if upto <= 8 else 2)

        yield call
        upto += 1


def resets(first: int) -> Iterator[Call]:
    index = first
    while True:

        def call(s: LogStore, index: int = index) -> None:
            s.reset(index, 3)

        yield call
        index += 1


@needs_tmpfs
@pytest.mark.parametrize("what", ["compact", "reset"])
@pytest.mark.parametrize("backend", PERSISTENT)
def test_compact_and_reset_on_a_full_disk(
    backend: str, what: str, vol: tmpfs.Volume, stores: list[LogStore]
) -> None:
    directory = vol.path / "log"
    store = open_store(backend, directory)
    stores.append(store)
    model = MemoryStore()
    both(store, model, lambda s: s.save(HardState(1, "n1", 0), ents(1, 400, 1, 50), True))
    vol.fill(0)
    calls = compacts(1) if what == "compact" else resets(1000)
    with no_page_reuse(store):
        failed, exc = until_full(store, model, calls)
        assert is_disk_full(exc)
        assert snapshot_of(store) == snapshot_of(model)
        with pytest.raises(DiskFullError):
            failed(store)
    assert snapshot_of(store) == snapshot_of(model)
    vol.free()
    both(store, model, failed)
    both(store, model, next(saves(model.last_index() + 1, 100)))
    assert snapshot_of(store) == snapshot_of(model)
    store.close()
    store = open_store(backend, directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)


def tiny_saves(first: int) -> Iterator[Call]:
    index = first
    while True:

        def call(s: LogStore, index: int = index) -> None:
            s.save(None, [Entry(1, index, 0, b"t" * 40)], False)

        yield call
        index += 1


@needs_tmpfs
@pytest.mark.parametrize("backend", PERSISTENT)
def test_sync_on_a_full_disk(
    backend: str, vol: tmpfs.Volume, stores: list[LogStore], caplog: pytest.LogCaptureFixture
) -> None:
    directory = vol.path / "log"
    store = open_store(backend, directory)
    stores.append(store)
    model = MemoryStore()
    both(store, model, lambda s: s.save(HardState(1, "n1", 0), ents(1, 5, 1, 100), False))
    vol.fill(0)
    with no_page_reuse(store):
        until_full(store, model, tiny_saves(6))  # not even a few bytes fit now
    fsyncs = store.fsyncs
    store.sync()  # fastlog's SYNC record may not fit: it fsyncs without it then
    assert store.fsyncs == fsyncs + 1
    if isinstance(store, FastLogStore):
        assert store._synced == store.file_size
    store.close()
    vol.free()
    store = open_store(backend, directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)


# --- LevelDB: reads while it waits to reopen, and the reopen's checks


@needs_tmpfs
def test_leveldb_reads_while_it_cannot_reopen(
    vol: tmpfs.Volume, stores: list[LogStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = vol.path / "log"
    store = LevelDbStore(directory)
    stores.append(store)
    model = MemoryStore()
    failed, _ = filled(store, model, vol, 50_000)
    # The old handle serves reads while the disk is full.
    assert snapshot_of(store) == snapshot_of(model)
    vol.fill(0)
    # Pretend there is room, so that the reopen is tried (and fails) on the full disk.
    monkeypatch.setattr(leveldb_backend, "no_room", lambda directory, nbytes: None)
    with pytest.raises(DiskFullError):
        failed(store)
    with pytest.raises(StorageError, match="closed until there is room to reopen it"):
        store.entries(1, 2)
    with pytest.raises(StorageError, match="closed until there is room"):
        store.load()
    assert store.last_index() == model.last_index()
    with pytest.raises(DiskFullError):
        failed(store)  # tries the reopen first, again
    vol.free()
    both(store, model, failed)
    assert snapshot_of(store) == snapshot_of(model)
    store.close()
    store = LevelDbStore(directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)


@needs_tmpfs
def test_leveldb_failed_compaction_on_a_full_disk(
    vol: tmpfs.Volume, stores: list[LogStore]
) -> None:
    # Past 4 MiB LevelDB turns its log into a table in the background; when
    # that fails for lack of space, every later write fails until a reopen.
    vol.resize(12 << 20)
    directory = vol.path / "log"
    store = LevelDbStore(directory)
    stores.append(store)
    model = MemoryStore()
    vol.fill(6 << 20)  # room for the 4 MiB log, not for the table it becomes
    index = 1

    def batch() -> Call:
        nonlocal index
        entries = [Entry(1, i, 0, os.urandom(4000)) for i in range(index, index + 8)]
        index += 8
        return lambda s: s.save(None, entries, False)

    while len([n for n in os.listdir(directory) if n.endswith(".log")]) < 2:
        both(store, model, batch())  # until LevelDB starts a new log
    deadline = time.monotonic() + 10
    while "No space left on device" not in (directory / "LOG").read_text("utf-8", "replace"):
        assert time.monotonic() < deadline, "the background compaction did not fail"
        time.sleep(0.01)
    failed = batch()
    with pytest.raises(DiskFullError) as info:
        failed(store)
    assert info.value.path.endswith(".ldb")  # the table, not the log
    assert snapshot_of(store) == snapshot_of(model)
    with pytest.raises(DiskFullError):
        failed(store)  # no room to reopen yet
    vol.free()
    both(store, model, failed)
    assert snapshot_of(store) == snapshot_of(model)
    store.close()
    store = LevelDbStore(directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)


def test_leveldb_reopen_refuses_to_forget_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cannot happen in practice (LevelDB hands every record to the OS before
    # a write returns, so a reopen in the same process reads it back), but
    # if a reopen ever came back short, the node must stop, not forget.
    store = LevelDbStore(tmp_path / "log")
    store.save(HardState(1, "n1", 0), ents(1, 10, 1, 100), sync=False)
    store._reopen = DiskFullError(str(tmp_path), OSError(errno.ENOSPC, "No space left on device"))
    real = leveldb_backend._read_view

    def short(db: Any) -> Any:
        return real(db)._replace(last=8)

    monkeypatch.setattr(leveldb_backend, "_read_view", short)
    with pytest.raises(StorageError, match=r"entries 9\.\.10, saved but not yet fsynced") as info:
        store.save(None, ents(11, 1, 1, 100), sync=False)
    assert not is_disk_full(info.value)
    with pytest.raises(StorageError, match="unusable"):
        store.save(None, ents(11, 1, 1, 100), sync=False)
    store.close()


# --- the background rewrite of fastlog


def tens(i: int) -> Call:
    """Saves the ``i``-th ten entries of 1000 bytes."""
    batch = ents(1 + 10 * i, 10, 1, 1000)
    return lambda s: s.save(None, batch, False)


@needs_tmpfs
def test_fastlog_rewrite_on_a_full_disk_keeps_the_old_file(
    vol: tmpfs.Volume, stores: list[LogStore], caplog: pytest.LogCaptureFixture
) -> None:
    directory = vol.path / "log"
    store = FastLogStore(directory, rewrite_min_bytes=256 << 10, rewrite_ratio=2.0)
    stores.append(store)
    steps: list[str] = []
    store.rewrite_hook = steps.append
    model = MemoryStore()
    for i in range(40):
        both(store, model, tens(i))
    store.wait_rewrite()
    vol.fill(0)
    with caplog.at_level(logging.WARNING):
        assert store.start_rewrite()
        store.wait_rewrite(10)
    assert "out of space" in caplog.text
    assert store.rewrites == 0 and steps.count("begin") == 1
    assert not (directory / ("fastlog.wal" + REWRITE_SUFFIX)).exists()
    assert snapshot_of(store) == snapshot_of(model)
    vol.free()
    # Not retried at once: only after the file has grown by another threshold.
    both(store, model, lambda s: s.compact(390, 1))
    both(store, model, lambda s: s.save(None, ents(401, 10, 1, 1000), True))
    store.wait_rewrite()
    assert steps.count("begin") == 1
    for i in range(41, 80):
        both(store, model, tens(i))
        store.wait_rewrite()
    assert store.rewrites == 1
    assert snapshot_of(store) == snapshot_of(model)
    store.close()
    store = FastLogStore(directory)
    stores.append(store)
    assert snapshot_of(store) == snapshot_of(model)


# --- failed fsyncs are fatal, whatever the errno


class FailingEnv:
    """An LMDB environment whose sync fails."""

    def __init__(self, env: Any, error: lmdb.Error) -> None:
        self._env = env
        self._error = error

    def sync(self, force: bool = False) -> None:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
@pytest.mark.parametrize("backend", PERSISTENT)
def test_failed_fsync_is_fatal_whatever_the_errno(
    backend: str, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(backend, tmp_path / "log")
    store.save(HardState(1, "n1", 0), ents(1, 3, 1, 10), sync=True)
    if isinstance(store, LmdbStore):
        error = lmdb.DiskError if code == errno.ENOSPC else lmdb.Error
        env = store._env
        store._env = FailingEnv(env, error(f"mdb_env_sync: {os.strerror(code)}"))  # type: ignore[assignment]
        names = "data.mdb"
    else:

        def failing(fd: int) -> None:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "fdatasync", failing)
        names = "fastlog.wal" if backend == "fastlog" else ".log"
    with pytest.raises(StorageError, match="fsync of") as info:
        store.save(None, ents(4, 1, 1, 10), sync=True)
    assert not isinstance(info.value, DiskFullError)
    assert not is_disk_full(info.value)
    assert names in str(info.value)
    monkeypatch.undo()
    if isinstance(store, LmdbStore):
        store._env = env
    # The page cache cannot be trusted any more: every later write is refused.
    calls: list[Callable[[], None]] = [
        lambda: store.save(None, ents(4, 1, 1, 10), sync=True),
        lambda: store.save(None, ents(4, 1, 1, 10), sync=False),
        lambda: store.compact(1, 1),
        lambda: store.reset(10, 2),
        store.sync,
    ]
    for call in calls:
        with pytest.raises(StorageError, match="unusable") as refused:
            call()
        assert not is_disk_full(refused.value)
    store.close()


def test_fastlog_syncs_without_its_sync_record_when_there_is_no_room_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = FastLogStore(tmp_path / "log")
    store.save(None, ents(1, 3, 1, 10), sync=False)
    fsyncs = store.fsyncs

    def no_room(fd: int, parts: list[bytes], offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
        patch.setattr("redraft.storage.fastlog.writev_all", no_room)
        store.sync()
    assert "syncing without it" in caplog.text
    assert store.fsyncs == fsyncs + 1
    store.save(None, ents(4, 1, 1, 10), sync=False)
    store.close()
    store = FastLogStore(tmp_path / "log")
    assert store.last_index() == 4
    store.close()


def test_fastlog_failed_fsync_after_a_full_sync_record_is_not_disk_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sync() fsyncs even when its SYNC record finds no room: if that fsync
    # then fails, the ENOSPC of the record must not make it look like a full disk.
    store = FastLogStore(tmp_path / "log")
    store.save(None, ents(1, 3, 1, 10), sync=False)

    def no_room(fd: int, parts: list[bytes], offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("redraft.storage.fastlog.writev_all", no_room)
    monkeypatch.setattr(os, "fdatasync", eio)
    with pytest.raises(StorageError, match=r"fsync of .*fastlog\.wal") as info:
        store.sync()
    assert not is_disk_full(info.value)
    monkeypatch.undo()
    store.close()


def test_lmdb_tells_a_failing_disk_from_a_full_one(tmp_path: Path) -> None:
    # LMDB reports a short write as EIO: with room on the file system, an
    # EIO is a failing disk, and fatal.
    store = LmdbStore(tmp_path / "log")
    store.save(None, ents(1, 3, 1, 10), sync=True)
    error = store._write_failed(lmdb.Error("mdb_txn_commit: Input/output error"), 4096)
    assert not isinstance(error, DiskFullError) and not is_disk_full(error)
    with pytest.raises(StorageError, match="unusable"):
        store.save(None, ents(4, 1, 1, 10), sync=True)
    store.close()


# --- snapshots


def meta(index: int) -> SnapshotMeta:
    return SnapshotMeta(index, 1, MEMBERS)


def temp_files(store: SnapshotStore) -> list[str]:
    return [p.name for p in store.directory.iterdir() if p.name.startswith(".tmp-")]


@needs_tmpfs
def test_snapshot_writer_on_a_full_disk(vol: tmpfs.Volume) -> None:
    store = SnapshotStore(vol.path / "snaps")
    with store.begin(meta(10)) as writer:
        writer.write(b"a" * 100_000)
        first = writer.commit()
    vol.fill(200_000)
    writer = store.begin(meta(20))
    with pytest.raises(OSError) as info:
        for _ in range(64):
            writer.write(os.urandom(64 << 10))
        writer.commit()
    assert is_disk_full(info.value)
    writer.abort()
    assert temp_files(store) == []
    assert store.latest() == first
    vol.free()
    with store.begin(meta(20)) as writer:
        writer.write(b"b" * 100_000)
        second = writer.commit()
    assert store.latest() == second


@needs_tmpfs
def test_incoming_snapshot_retried_at_the_same_offset(vol: tmpfs.Volume, tmp_path: Path) -> None:
    source = SnapshotStore(tmp_path / "source")
    with source.begin(meta(30)) as writer:
        writer.write(os.urandom(1 << 20))
        sent = writer.commit()
    store = SnapshotStore(vol.path / "snaps")
    with store.begin(meta(10)) as writer:
        writer.write(b"a" * 1000)
        first = writer.commit()
    vol.fill(300_000)
    incoming = store.incoming(sent)
    chunk = 64 << 10
    full = 0
    offset = 0
    while offset < sent.size:
        data = source.read_chunk(sent, offset, chunk)
        try:
            incoming.write(offset, data)
        except DiskFullError as exc:
            full += 1
            assert is_disk_full(exc) and incoming.offset == offset
            with pytest.raises(DiskFullError):
                incoming.write(offset, data)
            assert incoming.offset == offset
            assert store.latest() == first
            vol.free()
            continue
        offset += len(data)
    assert full == 1
    received = incoming.finish()
    assert received == sent
    assert store.latest() == sent
    assert temp_files(store) == []


@needs_tmpfs
def test_incoming_snapshot_aborted_on_a_full_disk(vol: tmpfs.Volume, tmp_path: Path) -> None:
    store = SnapshotStore(vol.path / "snaps")
    with store.begin(meta(10)) as writer:
        writer.write(b"a" * 1000)
        first = writer.commit()
    vol.fill(100_000)
    incoming = store.incoming(meta(30))
    with pytest.raises(DiskFullError):
        for n in range(100):
            incoming.write(n * 65536, os.urandom(65536))
    incoming.abort()
    assert temp_files(store) == []
    assert store.latest() == first
