"""``leveldb``: the log in a LevelDB database through plyvel.

Same layout as the lmdb backend in one key space: ``e`` + big-endian u64
index for entries (``u64 term | u8 kind | data``), ``m`` + name for the hard
state and the compaction point.  Every save is one WriteBatch, written
without LevelDB's ``sync`` option: a batch saved with ``sync=True`` and
:meth:`LevelDbStore.sync` fdatasync LevelDB's write-ahead logs (``*.log``)
themselves, and the directory when a new one appeared.  LevelDB writes each
batch to the OS before it returns and syncs its tables and manifest itself,
so that covers every earlier write; doing it here, rather than through the
``sync`` option, keeps a failed fsync apart from a failed write, which
LevelDB reports alike.

A full disk.  A write LevelDB fails for lack of space (its ``IOError`` names
the strerror) raises :class:`DiskFullError` and stores nothing, but LevelDB
must not take another write: its log writer has moved past the torn record,
and a failed background compaction fails every later write.  So the next
write first reopens the database, once the file system has room for the
recovery (until then it raises :class:`DiskFullError` again and reads go on
through the old handle), and checks that the reopened database holds exactly
what had been saved.  A failed fsync, whatever its errno, makes the store
refuse every later write.

LevelDB creates its files under the process umask; the store directory is
owner-only, which is what keeps them private.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import msgpack
import plyvel

from redraft.raft.types import Entry, HardState
from redraft.storage.base import (
    DISK_FULL_ERRNOS,
    CorruptLogError,
    DiskFullError,
    FsyncError,
    LoadedLog,
    LogStore,
    StorageError,
    gc_paused,
)
from redraft.storage.files import (
    FILE_MODE,
    MARKER_NAME,
    claim_directory,
    fsync_dir,
    fsync_file,
    no_room,
)

FORMAT_VERSION = 1
_KEY = struct.Struct(">Q")
_VAL = struct.Struct("<QB")
_PREV = struct.Struct("<QQ")
_E = b"e"
_E_END = b"f"
_HS_KEY = b"mhard_state"
_PREV_KEY = b"mprev"
_PURGE_BATCH = 4096
_REOPEN_SLACK = 1 << 20
"""Room wanted to reopen besides the logs' size (the tables they become, a new manifest)."""
_IO_ERROR = re.compile(r"IO error: (.*): ([^:]*)")


def _key(index: int) -> bytes:
    return _E + _KEY.pack(index)


def _index(key: bytes) -> int:
    index: int = _KEY.unpack_from(key, 1)[0]
    return index


def _text(exc: BaseException) -> str:
    """A plyvel error's message (plyvel gives it as bytes)."""
    arg = exc.args[0] if exc.args else None
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(exc)


def _lack_of_space(exc: BaseException) -> tuple[str, OSError] | None:
    """The file and the error, when LevelDB failed for lack of space."""
    text = _text(exc)
    for code in DISK_FULL_ERRNOS:
        if os.strerror(code) in text:
            match = _IO_ERROR.search(text)
            return (match[1] if match else ""), OSError(code, os.strerror(code))
    return None


class _View(NamedTuple):
    """What the store knows of the database without reading the entries."""

    hard_state: HardState
    prev_index: int
    prev_term: int
    last: int
    first_key: int | None


def _read_view(db: Any) -> _View:
    raw_hs = db.get(_HS_KEY)
    raw_prev = db.get(_PREV_KEY)
    hard_state = HardState()
    if raw_hs is not None:
        term, vote, commit = msgpack.unpackb(raw_hs)
        hard_state = HardState(term, vote, commit)
    prev_index, prev_term = _PREV.unpack(raw_prev) if raw_prev else (0, 0)
    last_key = next(db.iterator(start=_E, stop=_E_END, reverse=True, include_value=False), None)
    first_key = next(db.iterator(start=_E, stop=_E_END, include_value=False), None)
    last = max(_index(last_key) if last_key else 0, prev_index)
    first = _index(first_key) if first_key is not None else None
    return _View(hard_state, prev_index, prev_term, last, first)


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
        self._failed: BaseException | None = None
        # Set when a write failed for lack of space: the database is reopened
        # before the next write.  ``_db`` is None while it cannot be.
        self._reopen: DiskFullError | None = None
        self._logs: set[str] = set()  # the write-ahead logs the last sync saw
        try:
            self._db: Any = self._connect(paranoid=False)
        except plyvel.Error as exc:
            raise StorageError(f"cannot open LevelDB in {self.directory}: {_text(exc)}") from exc
        self._dirty = False
        self._closed = False
        self._adopt(_read_view(self._db))

    def _connect(self, paranoid: bool) -> Any:
        db = plyvel.DB(str(self.directory), create_if_missing=True, paranoid_checks=paranoid)
        for entry in os.scandir(self.directory):
            if entry.is_file() and entry.name != MARKER_NAME:
                # LevelDB's background work may have deleted it meanwhile.
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(entry.path, FILE_MODE)
        return db

    def _adopt(self, view: _View) -> None:
        self._hard_state = view.hard_state
        self._prev_index, self._prev_term = view.prev_index, view.prev_term
        self._last = view.last
        first = view.first_key
        self._purge_pending = first is not None and first <= self._prev_index
        # Lowest index that may still have a stored entry below the compaction point.
        self._purge_from = first if first is not None else 0
        self._purge_next = self._purge_from

    # --- writing

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"{self.directory} is closed")
        if self._failed is not None:
            raise StorageError(
                f"LevelDB in {self.directory} is unusable after an earlier failure: {self._failed}"
            )

    def _commit(self, fill: Callable[[Any], None], sync: bool) -> None:
        """Write one batch that ``fill`` puts together (reading ``self._db``), then sync if asked."""
        self._check_usable()
        if self._reopen is not None:
            self._reopen_db()
        failure: plyvel.Error | None = None
        try:
            with self._db.write_batch(transaction=True) as wb:
                fill(wb)
        except plyvel.Error as exc:
            failure = exc
        if failure is not None:
            raise self._write_failed(failure) from failure
        if sync:
            self._sync_now()
        else:
            self._dirty = True

    def _write_failed(self, exc: plyvel.Error) -> StorageError:
        # A lack of space may also come from LevelDB's own fsyncs, of a new
        # table or of the manifest in its background work.  A reopen is safe
        # after those: the table is discarded, the edit not applied, and the
        # logs they were to replace are kept and replayed.  The log itself
        # is only ever fsynced here (_sync_logs), where a failure is fatal.
        full = _lack_of_space(exc)
        if full is None:
            self._failed = exc
            return StorageError(f"write to LevelDB in {self.directory} failed: {_text(exc)}")
        error = DiskFullError(full[0] or str(self.directory), full[1])
        self._reopen = error
        return error

    def _reopen_db(self) -> None:
        """Reopen LevelDB after a write failed for lack of space, once there is room to."""
        short = no_room(self.directory, _REOPEN_SLACK + self._logs_size())
        if short is not None:
            # The old handle stays open for reads; LevelDB takes no write.
            raise DiskFullError(str(self.directory), short) from short
        if self._db is not None:
            self._db.close()
            self._db = None
        failure: plyvel.Error | None = None
        try:
            # Paranoid: the torn record the failed write left at a log's end
            # is dropped all the same, but in a process that did not crash
            # any other record LevelDB cannot read back is data lost, and
            # must fail the reopen rather than be skipped.
            db = self._connect(paranoid=True)
        except plyvel.Error as exc:
            failure = exc
        if failure is not None:
            full = _lack_of_space(failure)
            if full is None:
                self._failed = failure
                raise StorageError(
                    f"cannot reopen LevelDB in {self.directory} after a full disk: {_text(failure)}"
                ) from failure
            raise DiskFullError(full[0] or str(self.directory), full[1]) from failure
        self._db = db
        try:
            view = _read_view(db)
        except plyvel.Error as exc:
            failure = exc
        if failure is not None:
            self._failed = failure
            raise StorageError(
                f"LevelDB in {self.directory}, reopened after a full disk, is unreadable: "
                f"{_text(failure)}"
            ) from failure
        self._check_view(view)
        self._reopen = None

    def _logs_size(self) -> int:
        """Bytes in the write-ahead logs: about what a reopen writes into tables."""
        size = 0
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".log"):
                with contextlib.suppress(FileNotFoundError):
                    size += entry.stat().st_size
        return size

    def _check_view(self, view: _View) -> None:
        """Refuse to go on if the reopened database is not what had been saved."""
        if view.last < self._last:
            problem = (
                f"entries {view.last + 1}..{self._last}, saved but not yet fsynced, are missing"
            )
        elif view[:4] != (self._hard_state, self._prev_index, self._prev_term, self._last):
            problem = (
                f"it holds {view.hard_state}, log ({view.prev_index}, {view.prev_term}]..{view.last}"
                f" where {self._hard_state}, log ({self._prev_index}, {self._prev_term}]"
                f"..{self._last} had been saved"
            )
        else:
            self._adopt(view)
            return
        error = StorageError(
            f"LevelDB in {self.directory}, reopened after a write failed for lack of space: "
            f"{problem}; refusing to go on"
        )
        self._failed = error
        raise error

    def _sync_now(self) -> None:
        # Cleared first: a save racing with this sync (the durability MEDIUM
        # flusher runs in another thread) marks the store dirty again.
        self._dirty = False
        try:
            self._sync_logs()
        except BaseException:
            self._dirty = True
            raise
        self.fsyncs += 1

    def _sync_logs(self) -> None:
        """fdatasync every write-ahead log, and the directory if a new one appeared.

        A log that vanished was compacted into a table LevelDB synced itself.
        """
        names = {name for name in os.listdir(self.directory) if name.endswith(".log")}
        for name in sorted(names):
            path = self.directory / name
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fsync_file(fd, path)
            except FsyncError as exc:
                self._failed = exc
                raise
            finally:
                os.close(fd)
        if names - self._logs:
            failure: OSError | None = None
            try:
                fsync_dir(self.directory)
            except OSError as exc:
                failure = exc
            if failure is not None:
                self._failed = FsyncError(str(self.directory), failure)
                raise self._failed
        self._logs = names

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
        purged = [True]

        def fill(wb: Any) -> None:
            if hard_state is not None:
                hs = msgpack.packb((hard_state.term, hard_state.vote, hard_state.commit))
                wb.put(_HS_KEY, hs)
            if entries:
                for i in range(entries[0].index, self._last + 1):
                    wb.delete(_key(i))
                pack = _VAL.pack
                for e in entries:
                    wb.put(_key(e.index), pack(e.term, e.kind) + e.data)
            if self._purge_pending:
                purged[0] = self._purge(wb, self._prev_index)

        self._commit(fill, sync)
        self._purge_pending = not purged[0]
        self._purge_from = self._purge_next
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            self._last = entries[-1].index

    def sync(self) -> None:
        self._check_usable()
        if self._dirty:
            self._sync_now()

    def compact(self, upto: int, term: int) -> None:
        if not self._check_compact(upto):
            return
        purged = [True]

        def fill(wb: Any) -> None:
            wb.put(_PREV_KEY, _PREV.pack(upto, term))
            purged[0] = self._purge(wb, upto)

        self._commit(fill, False)
        self._prev_index, self._prev_term = upto, term
        self._purge_pending = not purged[0]
        self._purge_from = self._purge_next

    def reset(self, index: int, term: int) -> None:
        def fill(wb: Any) -> None:
            wb.put(_PREV_KEY, _PREV.pack(index, term))
            # Entries above the new point must go now; those below are
            # invisible and purged a batch at a time by later writes.
            for key in self._db.iterator(start=_key(index + 1), stop=_E_END, include_value=False):
                wb.delete(key)

        self._commit(fill, True)
        self._prev_index, self._prev_term, self._last = index, term, index
        self._purge_pending = True

    # --- reading

    def _reader(self) -> Any:
        db = self._db
        if db is None:
            raise StorageError(
                f"LevelDB in {self.directory} is closed until there is room to reopen it "
                f"({self._reopen})"
            )
        return db

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
        raw = self._reader().get(_key(index))
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
        for key, raw in self._reader().iterator(start=_key(lo), stop=_key(hi)):
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
            if self._failed is None:
                self.sync()
        finally:
            self._closed = True
            if self._db is not None:
                self._db.close()
            self._dir_lock.release()

    def _missing(self, index: int) -> StorageError:
        return CorruptLogError(str(self.directory), None, f"entry {index} is missing")
