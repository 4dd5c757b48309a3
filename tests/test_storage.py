"""Conformance suite run against every log storage backend."""

from __future__ import annotations

import logging
import os
import random
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redraft.raft.types import Entry, HardState
from redraft.storage import BACKENDS, LogStore, StorageError, fastlog, open_store
from redraft.storage.fastlog import FastLogStore
from redraft.storage.lmdb_backend import LmdbStore
from redraft.storage.memory import MemoryStore

PERSISTENT = [b for b in BACKENDS if b != "memory"]

Opener = Callable[[], LogStore]


def ents(first: int, count: int, term: int, tag: str = "") -> list[Entry]:
    return [
        Entry(term, i, i % 3, f"{tag}{i}@{term}".encode() * (1 + i % 4))
        for i in range(first, first + count)
    ]


def snapshot_of(store: LogStore) -> tuple[HardState, int, int, list[tuple[int, int, int, bytes]]]:
    loaded = store.load()
    return (
        loaded.hard_state,
        loaded.prev_index,
        loaded.prev_term,
        [(e.term, e.index, e.kind, e.data) for e in loaded.entries],
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def opener(backend: str, tmp_path: Path) -> Iterator[Opener]:
    """Opens the backend's store; reopening a persistent one reads the same directory."""
    opened: list[LogStore] = []
    memory = MemoryStore()

    def open_() -> LogStore:
        store = memory if backend == "memory" else open_store(backend, tmp_path / "log")
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def reopen(store: LogStore, opener: Opener) -> LogStore:
    if not store.persistent:
        return store
    store.close()
    return opener()


def test_append_and_read_ranges(opener: Opener) -> None:
    s = opener()
    assert (s.first_index(), s.last_index()) == (1, 0)
    assert s.entries(1, 1) == []
    batch = ents(1, 20, 1)
    s.save(None, batch[:5], sync=False)
    s.save(None, batch[5:], sync=True)
    assert (s.first_index(), s.last_index()) == (1, 20)
    assert s.entries(1, 21) == batch
    assert s.entries(5, 9) == batch[4:8]
    assert s.entries(7, 7) == []
    for lo, hi in [(0, 3), (1, 22), (21, 22), (5, 4)]:
        with pytest.raises(IndexError):
            s.entries(lo, hi)


def test_term_lookup(opener: Opener) -> None:
    s = opener()
    assert s.term(0) == 0
    assert s.term(1) is None
    s.save(None, ents(1, 3, 1) + ents(4, 3, 2), sync=False)
    assert [s.term(i) for i in range(0, 8)] == [0, 1, 1, 1, 2, 2, 2, None]


def test_truncate_on_conflict(opener: Opener) -> None:
    s = opener()
    s.save(None, ents(1, 10, 1), sync=True)
    replacement = ents(6, 3, 2, tag="new")
    s.save(None, replacement, sync=True)
    assert s.last_index() == 8
    assert s.term(9) is None
    assert s.entries(1, 9) == ents(1, 5, 1) + replacement
    # Appending right after the replaced suffix continues from it.
    s.save(None, ents(9, 2, 2), sync=False)
    s = reopen(s, opener)
    assert s.load().entries == ents(1, 5, 1) + replacement + ents(9, 2, 2)


def test_replace_whole_log(opener: Opener) -> None:
    s = opener()
    s.save(None, ents(1, 4, 1), sync=False)
    s.save(None, ents(1, 2, 3, tag="x"), sync=False)
    s = reopen(s, opener)
    assert s.load().entries == ents(1, 2, 3, tag="x")


def test_hard_state_round_trip(opener: Opener) -> None:
    s = opener()
    assert s.load().hard_state == HardState()
    s.save(HardState(3, "127.0.0.1:7481", 0), [], sync=True)
    s.save(HardState(4, "", 2), ents(1, 2, 4), sync=True)
    s.save(None, ents(3, 1, 4), sync=False)
    s = reopen(s, opener)
    loaded = s.load()
    assert loaded.hard_state == HardState(4, "", 2)
    assert loaded.entries == ents(1, 3, 4)


def test_compact(opener: Opener) -> None:
    s = opener()
    s.save(None, ents(1, 10, 1) + ents(11, 5, 2), sync=True)
    s.compact(12, 2)
    assert (s.first_index(), s.last_index()) == (13, 15)
    assert s.term(12) == 2
    assert s.term(11) is None
    assert s.entries(13, 16) == ents(13, 3, 2)
    with pytest.raises(IndexError):
        s.entries(12, 14)
    s.compact(5, 1)  # already covered: nothing to do
    assert s.first_index() == 13
    with pytest.raises(ValueError):
        s.compact(16, 2)
    with pytest.raises(ValueError):
        s.save(None, ents(12, 2, 3), sync=False)
    s.save(None, ents(13, 4, 3), sync=True)  # may replace everything after the point
    s = reopen(s, opener)
    loaded = s.load()
    assert (loaded.prev_index, loaded.prev_term) == (12, 2)
    assert loaded.entries == ents(13, 4, 3)
    assert s.term(12) == 2


def test_compact_everything(opener: Opener) -> None:
    s = opener()
    s.save(None, ents(1, 5, 1), sync=False)
    s.compact(5, 1)
    assert (s.first_index(), s.last_index()) == (6, 5)
    s.save(None, ents(6, 1, 1), sync=True)
    s = reopen(s, opener)
    assert s.load().entries == ents(6, 1, 1)
    assert s.term(5) == 1


def test_reset(opener: Opener) -> None:
    s = opener()
    s.save(HardState(2, "a", 5), ents(1, 8, 2), sync=False)
    s.reset(100, 7)
    assert (s.first_index(), s.last_index()) == (101, 100)
    assert s.term(100) == 7
    assert s.term(5) is None
    with pytest.raises(ValueError):
        s.save(None, ents(102, 1, 7), sync=False)
    s.save(None, ents(101, 2, 7), sync=False)
    s = reopen(s, opener)
    loaded = s.load()
    assert (loaded.prev_index, loaded.prev_term) == (100, 7)
    assert loaded.entries == ents(101, 2, 7)
    assert loaded.hard_state == HardState(2, "a", 5)


def test_reset_below_stored_entries(opener: Opener) -> None:
    """A snapshot older than a stale suffix still replaces the whole log."""
    s = opener()
    s.save(None, ents(1, 30, 1), sync=False)
    s.reset(10, 3)
    s.save(None, ents(11, 2, 3, tag="n"), sync=False)
    s = reopen(s, opener)
    assert s.load().entries == ents(11, 2, 3, tag="n")
    assert s.last_index() == 12


def test_invalid_batches_change_nothing(opener: Opener) -> None:
    s = opener()
    s.save(None, ents(1, 3, 1), sync=False)
    with pytest.raises(ValueError):
        s.save(None, ents(5, 2, 1), sync=False)  # gap
    with pytest.raises(ValueError):
        s.save(None, [Entry(1, 4, 0, b""), Entry(1, 6, 0, b"")], sync=False)
    assert s.load().entries == ents(1, 3, 1)


def test_empty_save_and_sync(opener: Opener) -> None:
    s = opener()
    s.save(None, [], sync=True)
    s.sync()
    s.save(None, ents(1, 1, 1), sync=False)
    before = s.fsyncs
    s.sync()
    assert s.fsyncs == before + (1 if s.persistent else 0)
    s.sync()  # nothing new: no extra fsync
    assert s.fsyncs == before + (1 if s.persistent else 0)
    s.save(None, ents(2, 1, 1), sync=True)
    assert s.fsyncs == before + (2 if s.persistent else 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_workload_matches_model(opener: Opener, seed: int) -> None:
    """Random saves, conflicts, compactions and resets; reopening restores exactly."""
    rng = random.Random(seed)
    s = opener()
    model = MemoryStore()
    term = 1
    for step in range(250):
        op = rng.random()
        last = model.last_index()
        if op < 0.65:
            start = last + 1
            if model.first_index() <= last and rng.random() < 0.25:
                start = rng.randint(model.first_index(), last)
                term += 1
            batch = ents(start, rng.randint(1, 6), term, tag=str(step))
            hs = HardState(term, "n1", min(last, start - 1)) if rng.random() < 0.5 else None
            for store in (s, model):
                store.save(hs, batch, sync=rng.random() < 0.3)
        elif op < 0.85 and last >= model.first_index():
            upto = rng.randint(model.first_index(), last)
            upto_term = model.term(upto)
            assert upto_term is not None
            for store in (s, model):
                store.compact(upto, upto_term)
        elif op < 0.9:
            index = last + rng.randint(-3, 20)
            index = max(index, model.first_index() - 1)
            term += 1
            for store in (s, model):
                store.reset(index, term)
        else:
            s = reopen(s, opener)
        assert snapshot_of(s) == snapshot_of(model)
    s = reopen(s, opener)
    assert snapshot_of(s) == snapshot_of(model)
    first, last = model.first_index(), model.last_index()
    for i in range(first - 1, last + 2):
        assert s.term(i) == model.term(i)


@pytest.mark.parametrize("backend", PERSISTENT)
def test_compaction_larger_than_a_purge_batch(opener: Opener) -> None:
    """Compacted entries removed a batch at a time stay invisible across reopen."""
    s = opener()
    for start in range(1, 20001, 1000):
        s.save(None, ents(start, 1000, 1), sync=False)
    s.compact(15000, 1)
    s.save(None, ents(20001, 1, 2), sync=True)
    s = reopen(s, opener)
    loaded = s.load()
    assert loaded.prev_index == 15000
    assert [e.index for e in loaded.entries] == list(range(15001, 20002))
    for start in range(20002, 20012):
        s.save(None, ents(start, 1, 2), sync=False)  # each write purges another batch
    s = reopen(s, opener)
    assert s.load().entries == ents(15001, 5000, 1) + ents(20001, 11, 2)


@pytest.mark.parametrize(
    ("backend", "other"), [(b, o) for b in PERSISTENT for o in PERSISTENT if b != o]
)
def test_wrong_backend_is_refused(backend: str, other: str, tmp_path: Path) -> None:
    directory = tmp_path / "log"
    s = open_store(backend, directory)
    s.save(None, ents(1, 1, 1), sync=True)
    s.close()
    with pytest.raises(StorageError) as info:
        open_store(other, directory)
    assert str(info.value) == (
        f"data dir {directory} was written by the {backend} backend; open it with --backend {backend}"
    )
    # The refused open left the data alone.
    s = open_store(backend, directory)
    assert s.load().entries == ents(1, 1, 1)
    s.close()


@pytest.mark.parametrize("backend", PERSISTENT)
def test_wrong_backend_detected_without_marker(backend: str, tmp_path: Path) -> None:
    directory = tmp_path / "log"
    open_store(backend, directory).close()
    (directory / "REDRAFT_STORE").unlink()
    other = next(b for b in PERSISTENT if b != backend)
    with pytest.raises(StorageError, match=f"--backend {backend}"):
        open_store(other, directory)


@pytest.mark.parametrize("backend", PERSISTENT)
def test_directory_in_use_is_refused(backend: str, tmp_path: Path) -> None:
    first = open_store(backend, tmp_path / "log")
    with pytest.raises(StorageError, match="in use"):
        open_store(backend, tmp_path / "log")
    first.save(None, ents(1, 1, 1), sync=True)
    first.close()
    second = open_store(backend, tmp_path / "log")
    assert second.last_index() == 1
    second.close()


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="unknown storage backend 'bolt'"):
        open_store("bolt", tmp_path)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    open_store("fastlog", directory).close()
    (directory / "REDRAFT_STORE").write_text("redraft log store\nbackend: fastlog\nformat: 99\n")
    with pytest.raises(StorageError, match="format 99"):
        open_store("fastlog", directory)


@pytest.mark.timeout(60)
def test_lmdb_log_larger_than_initial_map(tmp_path: Path) -> None:
    s = LmdbStore(tmp_path / "log", map_size=1 << 20)
    payload = os.urandom(2000)
    total = 3000  # about 6 MB of entries, six times the initial map
    for start in range(1, total + 1, 100):
        s.save(None, [Entry(1, i, 0, payload) for i in range(start, start + 100)], sync=False)
    assert s.last_index() == total
    s.close()
    s = LmdbStore(tmp_path / "log", map_size=1 << 20)
    assert s.entries(total - 1, total + 1) == [Entry(1, i, 0, payload) for i in (total - 1, total)]
    assert len(s.load().entries) == total
    s.close()


@pytest.mark.parametrize("backend", PERSISTENT)
def test_permissions(backend: str, tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b" / "log"
    s = open_store(backend, directory)
    s.save(HardState(1, "x", 0), ents(1, 5, 1), sync=True)
    s.close()
    s = open_store(backend, directory)
    s.close()
    for d in (tmp_path / "a", tmp_path / "a" / "b", directory):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    files = [p for p in directory.iterdir() if p.is_file()]
    assert files
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


def test_memory_store_is_not_persistent(tmp_path: Path) -> None:
    s = open_store("memory", tmp_path / "unused")
    assert not s.persistent
    assert not (tmp_path / "unused").exists()


# --- fastlog specifics


def test_fastlog_rewrite_shrinks_file_and_keeps_state(tmp_path: Path) -> None:
    s = FastLogStore(tmp_path / "log", rewrite_min_bytes=20_000, rewrite_ratio=2.0)
    model = MemoryStore()
    for start in range(1, 3001, 10):
        batch = ents(start, 10, 1)
        s.save(HardState(1, "a", start - 1), batch, sync=False)
        model.save(HardState(1, "a", start - 1), batch, sync=False)
        if start % 200 == 1 and start > 50:
            s.compact(start - 50, 1)
            model.compact(start - 50, 1)
        s.wait_rewrite(10)
    assert s.rewrites > 0
    assert s.file_size < 60_000
    assert snapshot_of(s) == snapshot_of(model)
    s.close()
    s = FastLogStore(tmp_path / "log")
    assert snapshot_of(s) == snapshot_of(model)
    assert not (tmp_path / "log" / "fastlog.wal.rewrite").exists()
    s.close()


@pytest.mark.timeout(60)
def test_fastlog_saves_during_rewrite_are_kept(tmp_path: Path) -> None:
    """Records written while the rewrite runs are carried into the new file."""
    s = FastLogStore(tmp_path / "log", rewrite_min_bytes=1 << 40)
    model = MemoryStore()

    def both(hs: HardState | None, batch: list[Entry]) -> None:
        s.save(hs, batch, sync=True)
        model.save(hs, batch, sync=True)

    for start in range(1, 501, 5):
        both(None, ents(start, 5, 1))
    s.compact(400, 1)
    model.compact(400, 1)
    steps: list[str] = []
    next_index = [501]

    def hook(step: str) -> None:
        # Runs on the rewrite thread; the writer keeps writing meanwhile
        # (except in "renamed", where the rewrite holds the store's lock).
        steps.append(step)
        if step in ("written", "copied"):
            for _ in range(20):
                both(HardState(2, "b", next_index[0] - 1), ents(next_index[0], 3, 2))
                next_index[0] += 3

    s.rewrite_hook = hook
    assert s.start_rewrite()
    s.wait_rewrite(30)
    assert steps == ["begin", "written", "copied", "renamed"]
    assert s.rewrites == 1
    s.save(None, ents(next_index[0], 1, 2), sync=True)
    model.save(None, ents(next_index[0], 1, 2), sync=True)
    assert snapshot_of(s) == snapshot_of(model)
    s.close()
    s = FastLogStore(tmp_path / "log")
    assert snapshot_of(s) == snapshot_of(model)
    s.close()


def test_fastlog_close_during_rewrite(tmp_path: Path) -> None:
    s = FastLogStore(tmp_path / "log", rewrite_min_bytes=1 << 40)
    for start in range(1, 20001, 500):
        s.save(None, ents(start, 500, 1), sync=False)
    s.compact(10000, 1)
    expected = snapshot_of(s)
    started = threading.Event()

    def hook(step: str) -> None:
        if step == "begin":
            started.set()
            time.sleep(0.05)  # let close() arrive while the rewrite is under way

    s.rewrite_hook = hook
    assert s.start_rewrite()
    assert started.wait(10)
    s.close()
    assert s.rewrites == 0
    assert not (tmp_path / "log" / "fastlog.wal.rewrite").exists()
    s = FastLogStore(tmp_path / "log")
    assert snapshot_of(s) == expected
    s.close()


def test_fastlog_synced_saves_overwrite_zeros_and_leave_the_file_length_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What makes its fsync cheap: records go over zeros written ahead, not past the end."""
    s = FastLogStore(tmp_path / "log")
    s.save(HardState(1, "a", 0), ents(1, 5, 1), sync=True)
    length = os.stat(s.path).st_size
    assert length >= s.file_size + fastlog.PREALLOCATE
    for start in range(6, 206, 5):
        s.save(HardState(1, "a", start - 1), ents(start, 5, 1), sync=True)
    assert os.stat(s.path).st_size == length
    s.close()
    # The zeros are room, not a torn record: nothing is cut, nothing said.
    with caplog.at_level(logging.WARNING, logger="redraft.storage.fastlog"):
        s = FastLogStore(tmp_path / "log")
    assert caplog.text == ""
    assert os.stat(s.path).st_size == length
    s.save(None, ents(206, 5, 2), sync=True)
    s.close()
    s = FastLogStore(tmp_path / "log")
    assert s.load().entries == ents(1, 205, 1) + ents(206, 5, 2)
    s.close()


def test_fastlog_grows_its_zeros_ahead_as_records_reach_them(tmp_path: Path) -> None:
    s = FastLogStore(tmp_path / "log")
    data = b"x" * (fastlog.PREALLOCATE // 2)
    lengths = []
    for index in range(1, 8):
        s.save(None, [Entry(1, index, 0, data)], sync=False)
        lengths.append(os.stat(s.path).st_size)
        assert lengths[-1] > s.file_size  # always some zeros ahead
    assert len(set(lengths)) < len(lengths)  # grown a step at a time, not per record
    s.close()
    s = FastLogStore(tmp_path / "log")
    assert s.load().entries == [Entry(1, index, 0, data) for index in range(1, 8)]
    s.close()


def test_fastlog_failed_write_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = FastLogStore(tmp_path / "log")
    s.save(None, ents(1, 3, 1), sync=True)

    def disk_full(fd: int, parts: list[bytes], offset: int) -> int:
        data = b"".join(parts)
        os.pwrite(fd, data[: len(data) // 2], offset)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("redraft.storage.fastlog.writev_all", disk_full)
    with pytest.raises(StorageError, match="No space left"):
        s.save(None, ents(4, 3, 1), sync=True)
    assert s.last_index() == 3
    monkeypatch.undo()
    s.save(None, ents(4, 2, 2), sync=True)
    s.close()
    s = FastLogStore(tmp_path / "log")
    assert s.load().entries == ents(1, 3, 1) + ents(4, 2, 2)
    s.close()


def test_fastlog_failed_fsync_makes_store_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = FastLogStore(tmp_path / "log")
    s.save(None, ents(1, 1, 1), sync=True)

    def eio(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", eio)
    with pytest.raises(StorageError, match="fsync"):
        s.save(None, ents(2, 1, 1), sync=True)
    monkeypatch.undo()
    # The page cache cannot be trusted after a failed fsync: refuse to go on.
    with pytest.raises(StorageError, match="unusable"):
        s.save(None, ents(2, 1, 1), sync=True)
    with pytest.raises(StorageError, match="unusable"):
        s.sync()
    s.close()


def test_fastlog_records_survive_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk near full (or a signal) may take part of a write; the record
    # must still land whole, header and body, in order.
    real_writev, real_write = os.writev, os.write

    def short_writev(fd: int, parts: list[bytes]) -> int:
        data = b"".join(parts)
        return real_writev(fd, [data[: max(1, len(data) // 3)]])

    def short_write(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data)[: max(1, len(data) // 2)])

    big = Entry(1, 4, 0, b"v" * 100_000)
    s = FastLogStore(tmp_path / "log")
    monkeypatch.setattr(os, "writev", short_writev)
    monkeypatch.setattr(os, "write", short_write)
    s.save(None, ents(1, 3, 1), sync=True)
    s.save(None, [big], sync=True)
    monkeypatch.undo()
    s.close()
    s = FastLogStore(tmp_path / "log")
    assert s.load().entries == [*ents(1, 3, 1), big]
    s.close()
