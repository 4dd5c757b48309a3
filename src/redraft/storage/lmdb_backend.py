"""``lmdb``: the log in an LMDB environment (the counterpart of Finn's Bolt store).

Entries live in the ``entries`` database keyed by big-endian u64 index (so
keys sort by index and appends use LMDB's fast append path), valued
``u64 term | u8 kind | data``.  The ``meta`` database holds the hard state
and the compaction point.  Nothing is cached: the log may exceed memory.

The environment is opened without sync-on-commit; batches saved with
``sync=True`` and :meth:`sync` call ``env.sync(True)``.  Per LMDB's docs, a
*system* crash (not a process crash) between syncs may lose the last
transactions or, on file systems that reorder writes, damage the
environment: that is the price of durability levels below ``high``.

Compacted entries are deleted a bounded number at a time by later writes
so that a big compaction does not stall the writer.

A full disk.  A commit that cannot grow ``data.mdb`` is aborted by LMDB,
leaving the environment as it was; it raises :class:`DiskFullError` and may
be made again.  LMDB reports a full disk as ``ENOSPC`` (:class:`lmdb.DiskError`)
when nothing could be written, but as ``EIO`` after a short write; an EIO is
taken for a full disk only when the file system confirms it has no room.  A
failed ``env.sync``, whatever its cause, makes the store refuse every later
write.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import lmdb
import msgpack

from redraft.raft.types import Entry, HardState
from redraft.storage.base import (
    CorruptLogError,
    DiskFullError,
    FsyncError,
    LoadedLog,
    LogStore,
    StorageError,
    gc_paused,
)
from redraft.storage.files import FILE_MODE, claim_directory, no_room

FORMAT_VERSION = 1
_KEY = struct.Struct(">Q")
_VAL = struct.Struct("<QB")
_PREV = struct.Struct("<QQ")
_HS_KEY = b"hard_state"
_PREV_KEY = b"prev"
_PURGE_BATCH = 4096
_MiB = 1 << 20
_TXN_SLACK = 64 << 10
"""Bytes a transaction writes besides its data (branch pages, free list, meta), about."""


class LmdbStore(LogStore):
    """Log store backed by LMDB; handles logs larger than memory."""

    name: ClassVar[str] = "lmdb"
    persistent: ClassVar[bool] = True

    def __init__(self, directory: Path, *, map_size: int = 256 * _MiB) -> None:
        self.directory = Path(directory)
        self._dir_lock = claim_directory(self.directory, self.name, FORMAT_VERSION)
        try:
            self._open(map_size)
        except BaseException:
            self._dir_lock.release()
            raise

    def _open(self, map_size: int) -> None:
        data_file = self.directory / "data.mdb"
        self._data_path = os.fspath(data_file)
        existing = data_file.stat().st_size if data_file.exists() else 0
        self.fsyncs = 0
        self._failed: BaseException | None = None
        self._map_size = max(map_size, 2 * existing)
        # Not writemap=True, and it must stay so: LMDB would then write
        # through a shared mapping of a sparse data.mdb, and a page the file
        # system has no block for (a full disk, a tmpfs at its size) kills
        # the process with SIGBUS instead of failing a call.  Written with
        # pwrite, a commit fails with ENOSPC (or EIO) and is aborted.
        self._env = lmdb.open(
            str(self.directory),
            map_size=self._map_size,
            max_dbs=2,
            sync=False,
            mode=FILE_MODE,
        )
        self._entries_db = self._env.open_db(b"entries")
        self._meta_db = self._env.open_db(b"meta")
        self._dirty = False
        self._closed = False
        with self._env.begin() as txn:
            raw_hs = txn.get(_HS_KEY, db=self._meta_db)
            raw_prev = txn.get(_PREV_KEY, db=self._meta_db)
            cur = txn.cursor(self._entries_db)
            last_key = _KEY.unpack(cur.key())[0] if cur.last() else 0
            first_key = _KEY.unpack(cur.key())[0] if cur.first() else 0
        self._hard_state = HardState()
        if raw_hs is not None:
            term, vote, commit = msgpack.unpackb(raw_hs)
            self._hard_state = HardState(term, vote, commit)
        self._prev_index: int = 0
        self._prev_term: int = 0
        if raw_prev:
            self._prev_index, self._prev_term = _PREV.unpack(raw_prev)
        self._last: int = max(last_key, self._prev_index)
        self._purge_pending = first_key != 0 and first_key <= self._prev_index

    # --- transactions

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"{self.directory} is closed")
        if self._failed is not None:
            raise StorageError(
                f"{self._data_path} is unusable after an earlier failure: {self._failed}"
            )

    def _write(self, body: Callable[[lmdb.Transaction[bytes]], None], size: int = 0) -> None:
        """Run ``body`` in one write transaction, growing the map when it is full.

        ``size`` is about how many bytes of data the transaction stores.
        """
        self._check_usable()
        while True:
            failure: lmdb.Error | None = None
            try:
                with self._env.begin(write=True) as txn:
                    body(txn)
                self._dirty = True
                return
            except lmdb.MapFullError:
                # The transaction was aborted; grow and replay it.
                self._map_size *= 2
                self._env.set_mapsize(self._map_size)
                continue
            except lmdb.Error as exc:
                # Aborted too: by LMDB when the commit failed, by the
                # context manager when a put did (spilling dirty pages).
                failure = exc
            raise self._write_failed(failure, size + _TXN_SLACK) from failure

    def _write_failed(self, exc: lmdb.Error, need: int) -> StorageError:
        """The error to raise for a failed write transaction: disk full, or fatal."""
        full = self._lack_of_space(exc, need)
        if full is None:
            self._failed = exc
            return StorageError(f"write to {self._data_path} failed: {exc}")
        try:
            # The environment must take the same call again: a failed meta
            # page write (MDB_PANIC) would refuse every transaction from now on.
            self._env.begin(write=True).abort()
        except lmdb.Error as broken:
            self._failed = broken
            return StorageError(
                f"write to {self._data_path} failed for lack of space ({exc}), "
                f"and the environment is unusable since: {broken}"
            )
        return DiskFullError(self._data_path, full)

    def _lack_of_space(self, exc: lmdb.Error, need: int) -> BaseException | None:
        """What shows that ``exc`` is a lack of space (``exc`` itself or the file system's answer)."""
        text = str(exc)
        if isinstance(exc, lmdb.DiskError) or os.strerror(errno.EDQUOT) in text:
            return exc
        if os.strerror(errno.EIO) in text:
            # LMDB turns a short write into EIO ("short write, filesystem
            # full?"): after one, the file system is full.  A disk that
            # fails while it has room stays a fatal error.
            return no_room(self.directory, need)
        return None

    def _env_sync(self) -> None:
        # Cleared first: a save racing with this sync (the durability MEDIUM
        # flusher runs in another thread) marks the store dirty again.
        self._dirty = False
        failure: lmdb.Error | None = None
        try:
            self._env.sync(True)
        except lmdb.Error as exc:
            failure = exc
        except BaseException:
            self._dirty = True
            raise
        if failure is not None:
            # Fatal whatever the cause, a lack of space included: the pages
            # the kernel failed to write may be gone from its cache.
            self._dirty = True
            self._failed = failure
            raise FsyncError(self._data_path, failure)
        self.fsyncs += 1

    def _purge(self, txn: lmdb.Transaction[bytes], upto: int) -> bool:
        """Delete up to a batch of entries at or below ``upto``; True when none are left."""
        cur = txn.cursor(self._entries_db)
        stop = _KEY.pack(upto)
        for _ in range(_PURGE_BATCH):
            if not cur.first() or cur.key() > stop:
                return True
            cur.delete()
        return not cur.first() or cur.key() > stop

    # --- LogStore

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        self._check_batch(entries)
        if hard_state is None and not entries:
            if sync:
                self.sync()
            return
        last = self._last
        items = [(_KEY.pack(e.index), _VAL.pack(e.term, e.kind) + e.data) for e in entries]
        size = sum(len(k) + len(v) for k, v in items)
        done = [True]  # whether the purge of compacted entries finished

        def body(txn: lmdb.Transaction[bytes]) -> None:
            if hard_state is not None:
                hs = msgpack.packb((hard_state.term, hard_state.vote, hard_state.commit))
                txn.put(_HS_KEY, hs, db=self._meta_db)
            if entries:
                for i in range(entries[0].index, last + 1):
                    txn.delete(_KEY.pack(i), db=self._entries_db)
                txn.cursor(self._entries_db).putmulti(items, append=True)
            if self._purge_pending:
                done[0] = self._purge(txn, self._prev_index)

        self._write(body, size)
        self._purge_pending = not done[0]
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            self._last = entries[-1].index
        if sync:
            self._env_sync()

    def sync(self) -> None:
        self._check_usable()
        if self._dirty:
            self._env_sync()

    def compact(self, upto: int, term: int) -> None:
        if not self._check_compact(upto):
            return
        done = [True]

        def body(txn: lmdb.Transaction[bytes]) -> None:
            txn.put(_PREV_KEY, _PREV.pack(upto, term), db=self._meta_db)
            done[0] = self._purge(txn, upto)

        self._write(body)
        self._prev_index, self._prev_term = upto, term
        self._purge_pending = not done[0]

    def reset(self, index: int, term: int) -> None:
        def body(txn: lmdb.Transaction[bytes]) -> None:
            txn.drop(self._entries_db, delete=False)
            txn.put(_PREV_KEY, _PREV.pack(index, term), db=self._meta_db)

        self._write(body)
        self._prev_index, self._prev_term, self._last = index, term, index
        self._purge_pending = False
        self._env_sync()

    def load(self) -> LoadedLog:
        with gc_paused():
            entries = self.entries(self._prev_index + 1, self._last + 1)
        return LoadedLog(self._hard_state, self._prev_index, self._prev_term, entries)

    def first_index(self) -> int:
        return self._prev_index + 1

    def last_index(self) -> int:
        return self._last

    def term(self, index: int) -> int | None:
        if index == self._prev_index:
            return self._prev_term
        if not self._prev_index < index <= self._last:
            return None
        with self._env.begin(db=self._entries_db) as txn:
            raw = txn.get(_KEY.pack(index))
        if raw is None:
            raise self._missing(index)
        term: int = _VAL.unpack_from(raw)[0]
        return term

    def entries(self, lo: int, hi: int) -> list[Entry]:
        self._check_range(lo, hi)
        out: list[Entry] = []
        if lo == hi:
            return out
        unpack = _VAL.unpack_from
        skip = _VAL.size
        with self._env.begin(db=self._entries_db) as txn:
            cur = txn.cursor()
            cur.set_range(_KEY.pack(lo))
            index = lo
            for key, raw in cur:
                if index == hi:
                    break
                if _KEY.unpack(key)[0] != index:
                    raise self._missing(index)
                term, kind = unpack(raw)
                out.append(Entry(term, index, kind, raw[skip:]))
                index += 1
        if index != hi:
            raise self._missing(index)
        return out

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._failed is None:
                self.sync()
        finally:
            self._closed = True
            self._env.close()
            self._dir_lock.release()

    def _missing(self, index: int) -> StorageError:
        return CorruptLogError(
            os.fspath(self.directory / "data.mdb"), None, f"entry {index} is missing"
        )
