"""``leveldb``: the log in a LevelDB database through plyvel.

Same layout as the lmdb backend in one key space: ``e`` + big-endian u64
index for entries (``u64 term | u8 kind | data``), ``m`` + name for the hard
state and the compaction point.  Every save is one WriteBatch.  plyvel has
no standalone fsync: a batch saved with ``sync=True`` is written with
LevelDB's ``sync`` option, and :meth:`sync` writes a tiny marker key with
it (LevelDB syncs its write-ahead log, which covers every earlier write).

LevelDB creates its files under the process umask; the store directory is
owner-only, which is what keeps them private.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import plyvel

from redraft.raft.types import Entry, HardState
from redraft.storage.base import (
    CorruptLogError,
    LoadedLog,
    LogStore,
    StorageError,
    gc_paused,
)
from redraft.storage.files import FILE_MODE, MARKER_NAME, claim_directory

FORMAT_VERSION = 1
_KEY = struct.Struct(">Q")
_VAL = struct.Struct("<QB")
_PREV = struct.Struct("<QQ")
_E = b"e"
_E_END = b"f"
_HS_KEY = b"mhard_state"
_PREV_KEY = b"mprev"
_SYNC_KEY = b"msync"
_PURGE_BATCH = 4096


def _key(index: int) -> bytes:
    return _E + _KEY.pack(index)


def _index(key: bytes) -> int:
    index: int = _KEY.unpack_from(key, 1)[0]
    return index


class LevelDbStore(LogStore):
    """Log store backed by LevelDB; handles logs larger than memory."""

    name: ClassVar[str] = "leveldb"
    persistent: ClassVar[bool] = True

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._dir_lock = claim_directory(self.directory, self.name, FORMAT_VERSION)
        try:
            self._open()
        except BaseException:
            self._dir_lock.release()
            raise

    def _open(self) -> None:
        self.fsyncs = 0
        try:
            self._db: Any = plyvel.DB(str(self.directory), create_if_missing=True)
        except plyvel.Error as exc:
            raise StorageError(f"cannot open LevelDB in {self.directory}: {exc}") from exc
        for entry in os.scandir(self.directory):
            if entry.is_file() and entry.name != MARKER_NAME:
                os.chmod(entry.path, FILE_MODE)
        self._dirty = False
        self._closed = False
        db = self._db
        raw_hs = db.get(_HS_KEY)
        raw_prev = db.get(_PREV_KEY)
        self._hard_state = HardState()
        if raw_hs is not None:
            term, vote, commit = msgpack.unpackb(raw_hs)
            self._hard_state = HardState(term, vote, commit)
        self._prev_index: int = 0
        self._prev_term: int = 0
        if raw_prev:
            self._prev_index, self._prev_term = _PREV.unpack(raw_prev)
        last_key = next(db.iterator(start=_E, stop=_E_END, reverse=True, include_value=False), None)
        first_key = next(db.iterator(start=_E, stop=_E_END, include_value=False), None)
        self._last: int = max(_index(last_key) if last_key else 0, self._prev_index)
        self._purge_pending = first_key is not None and _index(first_key) <= self._prev_index
        # Lowest index that may still have a stored entry below the compaction point.
        self._purge_from = _index(first_key) if first_key is not None else 0
        self._purge_next = self._purge_from

    def _batch(self, sync: bool) -> Any:
        if self._closed:
            raise StorageError(f"{self.directory} is closed")
        return self._db.write_batch(transaction=True, sync=sync)

    def _written(self, sync: bool) -> None:
        if sync:
            self.fsyncs += 1
            self._dirty = False
        else:
            self._dirty = True

    def _purge(self, wb: Any, upto: int) -> bool:
        """Delete up to a batch of entries at or below ``upto``; True when none are left."""
        # Start after what earlier purges deleted: a LevelDB iterator walks
        # over deletion tombstones, so scanning from the first key would
        # cost more with every purge.
        keys = self._db.iterator(
            start=_key(self._purge_from), stop=_key(upto + 1), include_value=False
        )
        for n, key in enumerate(keys):
            if n == _PURGE_BATCH:
                self._purge_next = _index(key)
                return False
            wb.delete(key)
        self._purge_next = upto + 1
        return True

    # --- LogStore

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        self._check_batch(entries)
        if hard_state is None and not entries:
            if sync:
                self.sync()
            return
        with self._batch(sync) as wb:
            if hard_state is not None:
                hs = msgpack.packb((hard_state.term, hard_state.vote, hard_state.commit))
                wb.put(_HS_KEY, hs)
            if entries:
                for i in range(entries[0].index, self._last + 1):
                    wb.delete(_key(i))
                pack = _VAL.pack
                for e in entries:
                    wb.put(_key(e.index), pack(e.term, e.kind) + e.data)
            purged = self._purge(wb, self._prev_index) if self._purge_pending else True
        self._written(sync)
        self._purge_pending = not purged
        self._purge_from = self._purge_next
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            self._last = entries[-1].index

    def sync(self) -> None:
        if self._dirty:
            # Cleared first: a save racing with this sync (the durability
            # MEDIUM flusher runs in another thread) marks the store dirty again.
            self._dirty = False
            try:
                self._db.put(_SYNC_KEY, b"", sync=True)
            except BaseException:
                self._dirty = True
                raise
            self.fsyncs += 1

    def compact(self, upto: int, term: int) -> None:
        if not self._check_compact(upto):
            return
        with self._batch(False) as wb:
            wb.put(_PREV_KEY, _PREV.pack(upto, term))
            purged = self._purge(wb, upto)
        self._written(False)
        self._prev_index, self._prev_term = upto, term
        self._purge_pending = not purged
        self._purge_from = self._purge_next

    def reset(self, index: int, term: int) -> None:
        with self._batch(True) as wb:
            wb.put(_PREV_KEY, _PREV.pack(index, term))
            # Entries above the new point must go now; those below are
            # invisible and purged a batch at a time by later writes.
            for key in self._db.iterator(start=_key(index + 1), stop=_E_END, include_value=False):
                wb.delete(key)
        self._written(True)
        self._prev_index, self._prev_term, self._last = index, term, index
        self._purge_pending = True

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
        raw = self._db.get(_key(index))
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
        index = lo
        for key, raw in self._db.iterator(start=_key(lo), stop=_key(hi)):
            if _index(key) != index:
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
            self.sync()
        finally:
            self._closed = True
            self._db.close()
            self._dir_lock.release()

    def _missing(self, index: int) -> StorageError:
        return CorruptLogError(str(self.directory), None, f"entry {index} is missing")
