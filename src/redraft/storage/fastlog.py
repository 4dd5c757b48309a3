"""``fastlog``: the whole log in memory, persisted as one append-only file.

File layout (all integers little-endian)::

    file header  magic "RDFASTLG" | u32 format | u32 salt | u32 crc32(previous 16 bytes)
    record*      u32 body length | u8 kind | u64 durable | u32 body crc | u32 header crc | body

Both record checksums are CRC-32 seeded with the file's random salt, so a
record embedded in entry data (say, a log file stored as a value) cannot
pass for a real one.  The header crc covers the first 17 header bytes and
lets recovery test any byte position cheaply.  Record kinds:

* SAVE: one ``save()`` call, msgpack ``[hard_state | nil, first_index,
  [term, kind, data, term, kind, data, ...]]``.  A batch is one record, so it
  is atomic; a first index at or below the last one truncates the suffix.
* COMPACT ``[upto, term]``, RESET ``[index, term]``, and SYNC (empty), which
  ``sync()`` appends so that the fsync it is about to do is on record.

``durable`` is the file offset below which every byte is known to be on
disk when the record is written: the record's own end when it is followed
by an fsync, else the end of the last fsync.  Recovery uses it to tell a
torn tail from corruption.  A bad record (short, or failing a checksum) is
cut off with a warning when no valid record follows it, or when the valid
records that follow never claimed it durable (writes that were never
fsynced may reach the disk out of order, so a power loss can leave a hole
before them).  If a valid later record claims the bad bytes were durable,
they were damaged after the fact: :class:`CorruptLogError` is raised naming
the file and offset, and nothing is dropped.

Rewriting.  Compacted entries and overwritten hard states are dead weight.
When the file is at least ``rewrite_min_bytes`` and ``rewrite_ratio`` times
the live data, a background thread writes the live state to
``fastlog.wal.rewrite``: first, without holding the store's lock, everything
up to the file size it saw when it started, then records appended since,
copied over in two catch-up rounds. Only the last round runs under the lock
(it must not miss a ``save``): it copies the few records written
meanwhile, fsyncs, renames the new file over the old one and fsyncs the
directory, so ``save`` waits at most about two fsyncs.  A crash at any
point leaves either the complete old file (the temporary one is deleted on
open) or the complete new one.

Zeros ahead.  The file is grown ``PREALLOCATE`` bytes of zeros at a time
and records overwrite them.  An ``fdatasync`` of blocks that are already
allocated and written changes no file metadata, so it needs no journal
commit on ext4 or XFS: on this project's machines a synced save costs two
thirds of one that grows the file (``bench/bench_storage.py`` shows both).
Recovery reads a tail of zeros after the last record as that room, not as
a torn record; the zeros are never claimed durable, so a crash may leave
the file shorter or longer.

A full disk.  A record that cannot be written for lack of space is cut off
again and the call raises :class:`DiskFullError`, the store as it was, so
the same call can be made again later (when there is no room for more
zeros, a record is written past them as before, so the disk fills to the
same byte); :meth:`FastLogStore.sync` then fsyncs without its SYNC record.
A rewrite that runs out of space is abandoned (the old file stays in use)
until the file has grown by another threshold.  A failed fsync, whatever
its errno, makes the store refuse every later write.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, NoReturn
from zlib import crc32

import msgpack

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
    is_disk_full,
)
from redraft.storage.files import (
    FILE_MODE,
    claim_directory,
    fsync_dir,
    fsync_file,
    remove_quietly,
    write_all,
    write_file_atomic,
    writev_all,
)
from redraft.storage.memory import MemLog

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
LOG_NAME: Final = "fastlog.wal"
REWRITE_SUFFIX: Final = ".rewrite"

_MAGIC: Final = b"RDFASTLG"
_FILE_HEAD: Final = struct.Struct("<8sII")
_FILE_CRC: Final = struct.Struct("<I")
FILE_HEADER_SIZE: Final = _FILE_HEAD.size + _FILE_CRC.size

_REC_PREFIX: Final = struct.Struct("<IBQI")  # length, kind, durable, body crc
_REC_CRC: Final = struct.Struct("<I")
# Bound once: a record's header is packed on every save.
_pack_prefix: Final = _REC_PREFIX.pack
_pack_crc: Final = _REC_CRC.pack
RECORD_HEADER_SIZE: Final = _REC_PREFIX.size + _REC_CRC.size
_MAX_BODY: Final = 1 << 31

SAVE, COMPACT, RESET, SYNC = 1, 2, 3, 4
_KINDS: Final = frozenset((SAVE, COMPACT, RESET, SYNC))
_CANDIDATE: Final = re.compile(rb"(?=[\x00-\x7f][\x01-\x04])")

PREALLOCATE = 1 << 20
"""Bytes of zeros the log file is grown by ahead of its records (see "Zeros ahead")."""

_ENTRY_OVERHEAD: Final = 12
"""Approximate bytes of a stored entry besides its data (to size rewrite chunks)."""
_REWRITE_CHUNK: Final = 1 << 20


class _Cancelled(Exception):
    pass


def _frame(salt: int, kind: int, body: bytes, durable: int) -> bytes:
    return _frame_header(salt, kind, body, durable) + body


def _frame_header(salt: int, kind: int, body: bytes, durable: int) -> bytes:
    """The header that goes before ``body`` in its record."""
    prefix = _pack_prefix(len(body), kind, durable, crc32(body, salt))
    return prefix + _pack_crc(crc32(prefix, salt))


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while length > 0:
        part = os.pread(fd, min(length, 1 << 30), offset)
        if not part:
            raise StorageError(f"unexpected end of file at byte offset {offset}")
        parts.append(part)
        length -= len(part)
        offset += len(part)
    return b"".join(parts)


def _file_header(salt: int) -> bytes:
    head = _FILE_HEAD.pack(_MAGIC, FORMAT_VERSION, salt)
    return head + _FILE_CRC.pack(zlib.crc32(head))


def _parse_record(data: bytes, off: int, salt: int) -> tuple[int, int, int, int] | str:
    """(kind, durable, body start, body end) of a valid record at ``off``, else why not."""
    end = len(data)
    if off + RECORD_HEADER_SIZE > end:
        return "short record header"
    length, kind, durable, body_crc = _REC_PREFIX.unpack_from(data, off)
    (head_crc,) = _REC_CRC.unpack_from(data, off + _REC_PREFIX.size)
    if zlib.crc32(memoryview(data)[off : off + _REC_PREFIX.size], salt) != head_crc:
        return "record header checksum mismatch"
    start = off + RECORD_HEADER_SIZE
    if kind not in _KINDS or length > _MAX_BODY:
        return f"unknown record kind {kind}"
    if start + length > end:
        return "record shorter than its length"
    if zlib.crc32(memoryview(data)[start : start + length], salt) != body_crc:
        return "record body checksum mismatch"
    return kind, durable, start, start + length


def _zeros_from(data: bytes, off: int) -> bool:
    """Whether every byte of ``data`` from ``off`` on is zero (the room grown ahead)."""
    return data.count(0, off) == len(data) - off


def _next_valid(data: bytes, start: int, salt: int) -> int | None:
    # Only positions whose length's top byte and kind byte are plausible are
    # worth a checksum; that skips most bytes of zeros or random garbage.
    for m in _CANDIDATE.finditer(data, start + 3):
        p = m.start() - 3
        if not isinstance(_parse_record(data, p, salt), str):
            return p
    return None


def _claims_after(data: bytes, start: int, salt: int) -> int:
    """The highest ``durable`` claimed by any valid record from ``start`` on."""
    best = 0
    off: int | None = start
    while off is not None and off < len(data):
        rec = _parse_record(data, off, salt)
        if isinstance(rec, str):
            off = _next_valid(data, off + 1, salt)
            continue
        best = max(best, rec[1])
        off = rec[3]
    return best


def _encode_save(packer: Any, hard_state: HardState | None, entries: Sequence[Entry]) -> bytes:
    hs = None if hard_state is None else (hard_state.term, hard_state.vote, hard_state.commit)
    flat: list[object] = []
    for e in entries:  # appends, not a bound extend: compiled, these are native calls
        flat.append(e.term)
        flat.append(e.kind)
        flat.append(e.data)
    body: bytes = packer.pack((hs, entries[0].index if entries else 0, flat))
    return body


class FastLogStore(LogStore):
    """The default backend: memory-speed reads, one write (and fsync) per batch."""

    name: ClassVar[str] = "fastlog"
    persistent: ClassVar[bool] = True

    rewrite_hook: Callable[[str], None] | None = None
    """Called at each step of a rewrite ("begin", "written", "copied", "renamed");
    lets crash tests kill the process at a known point."""

    def __init__(
        self,
        directory: Path,
        *,
        rewrite_min_bytes: int = 64 << 20,
        rewrite_ratio: float = 2.0,
    ) -> None:
        self.directory = Path(directory)
        self._dir_lock = claim_directory(self.directory, self.name, FORMAT_VERSION)
        try:
            self._open(rewrite_min_bytes, rewrite_ratio)
        except BaseException:
            self._dir_lock.release()
            raise

    def _open(self, rewrite_min_bytes: int, rewrite_ratio: float) -> None:
        self.path = self.directory / LOG_NAME
        self._tmp_path = self.directory / (LOG_NAME + REWRITE_SUFFIX)
        # Left by a rewrite that a crash interrupted; the log file is whole.
        remove_quietly(self._tmp_path)
        self.fsyncs = 0
        self.rewrites = 0
        """Completed background rewrites (for tests and metrics)."""
        self._log = MemLog()
        self._lock = threading.Lock()
        self._packer = msgpack.Packer()
        self._failed: BaseException | None = None
        self._closed = False
        self._rewrite_min = rewrite_min_bytes
        self._rewrite_ratio = rewrite_ratio
        self._rewrite_after = 0
        self._rewriter: threading.Thread | None = None
        self._cancel = threading.Event()
        self._saved_bytes = 0
        self._saved_entries = 0
        if self.path.exists():
            with gc_paused():
                self._salt, size, allocated = self._replay()
        else:
            self._salt = secrets.randbits(32)
            write_file_atomic(self.path, _file_header(self._salt))
            size = allocated = FILE_HEADER_SIZE
        # Not O_APPEND: records are written at their offset, over the zeros ahead.
        self._fd = os.open(self.path, os.O_WRONLY)
        # What was read may sit only in the page cache (the previous process
        # may have died unsynced); claims of durability start from a real fsync.
        os.fsync(self._fd)
        self.fsyncs += 1
        self._size = size
        self._synced = size
        self._allocated = allocated
        """The file's length: ``_size`` bytes of records, then zeros."""

    # --- recovery

    def _replay(self) -> tuple[int, int, int]:
        """Rebuild the in-memory log from the file; return (salt, valid length, file length)."""
        data = self.path.read_bytes()
        where = str(self.path)
        if len(data) < FILE_HEADER_SIZE:
            raise CorruptLogError(where, 0, "file header is truncated")
        magic, version, salt = _FILE_HEAD.unpack_from(data, 0)
        if magic != _MAGIC:
            raise CorruptLogError(where, 0, "not a fastlog file (bad magic)")
        (crc,) = _FILE_CRC.unpack_from(data, _FILE_HEAD.size)
        if zlib.crc32(data[: _FILE_HEAD.size]) != crc:
            raise CorruptLogError(where, 0, "file header checksum mismatch")
        if version > FORMAT_VERSION:
            raise StorageError(
                f"{where} uses fastlog format {version}; this redraft reads up to {FORMAT_VERSION}"
            )
        off = FILE_HEADER_SIZE
        while off < len(data):
            rec = _parse_record(data, off, salt)
            if isinstance(rec, str):
                if _zeros_from(data, off):
                    return salt, off, len(data)  # the room grown ahead of the records
                self._cut_tail(data, off, rec, salt)
                return salt, off, off
            kind, _durable, start, end = rec
            try:
                self._apply(kind, data[start:end])
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise CorruptLogError(where, off, f"undecodable record: {exc}") from exc
            off = end
        return salt, off, off

    def _cut_tail(self, data: bytes, off: int, reason: str, salt: int) -> None:
        nxt = _next_valid(data, off + 1, salt)
        if nxt is not None and _claims_after(data, nxt, salt) > off:
            raise CorruptLogError(
                str(self.path),
                off,
                f"{reason}, yet a later record (at byte offset {nxt}) shows the data here "
                "had been fsynced; refusing to drop it",
            )
        if nxt is None:
            log.warning(
                "%s: cutting off a torn record at byte offset %d (%s, %d bytes): "
                "a write interrupted by a crash",
                self.path,
                off,
                reason,
                len(data) - off,
            )
        else:
            log.warning(
                "%s: writes from byte offset %d on were never fsynced and are incomplete "
                "(%s); cutting off %d bytes",
                self.path,
                off,
                reason,
                len(data) - off,
            )
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, off)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _apply(self, kind: int, body: bytes) -> None:
        mem = self._log
        if kind == SYNC:
            return
        obj = msgpack.unpackb(body)
        if kind == SAVE:
            hs, first, flat = obj
            if hs is not None:
                term, vote, commit = hs
                mem.hard_state = HardState(term, vote, commit)
            if flat:
                if not mem.prev_index < first <= mem.last_index + 1:
                    raise ValueError(
                        f"batch at {first} does not fit the log ending at {mem.last_index}"
                    )
                self._saved_bytes += len(body)
                self._saved_entries += len(flat) // 3
                it = iter(flat)
                mem.append(
                    [
                        Entry(t, first + i, k, d)
                        for i, (t, k, d) in enumerate(zip(it, it, it, strict=True))
                    ]
                )
        elif kind == COMPACT:
            upto, term = obj
            if upto > mem.last_index:
                raise ValueError(f"compaction to {upto} beyond the log end {mem.last_index}")
            mem.compact(upto, term)
        else:
            index, term = obj
            mem.reset(index, term)

    # --- writing

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"{self.path} is closed")
        if self._failed is not None:
            raise StorageError(f"{self.path} is unusable after an earlier failure: {self._failed}")

    def _append(self, kind: int, body: bytes, sync: bool) -> None:
        """Write one record (and fsync when ``sync``); caller holds the lock.

        Raises :class:`DiskFullError` when the record could not be written for
        lack of space and was cut off again: the file is as it was.
        """
        size = self._size
        end = size + RECORD_HEADER_SIZE + len(body)
        if end > self._allocated:
            self._grow(end)
        header = _frame_header(self._salt, kind, body, end if sync else self._synced)
        failure: OSError | None = None
        try:
            # Header and body in one writev: a batch of large values is not
            # copied once more just to frame it.
            writev_all(self._fd, [header, body], size)
        except OSError as exc:
            failure = exc
        if failure is not None:
            self._cut_back(size, failure)
        self._size = end
        if end > self._allocated:
            self._allocated = end
        if sync:
            self._fsync()

    def _grow(self, end: int) -> None:
        """Write ``PREALLOCATE`` zeros after ``end``, where the record about to be written ends.

        The record fills the file from its end to ``end`` itself.  Without
        room for the zeros the file is left as it was: the record is then
        written past its end, as it would be without zeros ahead.
        """
        start = self._allocated
        target = end + PREALLOCATE
        failure: OSError | None = None
        try:
            write_all(self._fd, bytes(PREALLOCATE), end)
        except OSError as exc:
            failure = exc
        if failure is None:
            self._allocated = target
            return
        if failure.errno not in DISK_FULL_ERRNOS:
            self._cut_back(start, failure)
        self._truncate(start, failure)

    def _cut_back(self, size: int, failure: OSError) -> NoReturn:
        """Cut off what a failed write left of its record, then raise the error to report."""
        # Leave no partial record behind, or the next write would follow garbage.
        self._truncate(size, failure)
        if failure.errno in DISK_FULL_ERRNOS:
            raise DiskFullError(str(self.path), failure) from failure
        raise StorageError(f"write to {self.path} failed: {failure}") from failure

    def _truncate(self, size: int, failure: OSError) -> None:
        """Cut the file back to ``size`` bytes after ``failure``; failing to is fatal."""
        cut: OSError | None = None
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            cut = exc
        if cut is not None:
            self._failed = failure
            # Fatal whatever the errno, so not chained to a possible ENOSPC.
            raise StorageError(
                f"write to {self.path} failed: {failure}; "
                f"cutting off the partial record failed too: {cut}"
            )
        self._allocated = size

    def _fsync(self) -> None:
        try:
            fsync_file(self._fd, self.path)
        except FsyncError as exc:
            # After a failed fsync the page cache can no longer be trusted.
            self._failed = exc
            raise
        self.fsyncs += 1
        self._synced = self._size

    def _sync_locked(self) -> None:
        """Make everything written durable, on record with a SYNC record if there is room."""
        try:
            self._append(SYNC, b"", True)
            return
        except DiskFullError as exc:
            log.warning("%s: no room for a sync record (%s); syncing without it", self.path, exc)
        # Outside the except clause: a failed fsync must not look like the
        # ENOSPC above.  Records written later claim this fsync in their turn.
        self._fsync()

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        self._check_batch(entries)
        if hard_state is None and not entries:
            if sync:
                self.sync()
            return
        body = _encode_save(self._packer, hard_state, entries)
        with self._lock:
            self._check_usable()
            self._append(SAVE, body, sync)
            self._saved_bytes += len(body)
            self._saved_entries += len(entries)
            if hard_state is not None:
                self._log.hard_state = hard_state
            self._log.append(entries)
        self._maybe_rewrite()

    def sync(self) -> None:
        with self._lock:
            self._check_usable()
            if self._synced < self._size:
                self._sync_locked()

    def compact(self, upto: int, term: int) -> None:
        if not self._check_compact(upto):
            return
        with self._lock:
            self._check_usable()
            self._append(COMPACT, self._packer.pack((upto, term)), False)
            self._log.compact(upto, term)
        self._maybe_rewrite()

    def reset(self, index: int, term: int) -> None:
        with self._lock:
            self._check_usable()
            self._append(RESET, self._packer.pack((index, term)), True)
            self._log.reset(index, term)
        self._maybe_rewrite()

    # --- reading

    def load(self) -> LoadedLog:
        return self._log.loaded()

    def first_index(self) -> int:
        return self._log.prev_index + 1

    def last_index(self) -> int:
        return self._log.last_index

    def term(self, index: int) -> int | None:
        return self._log.term(index)

    def entries(self, lo: int, hi: int) -> list[Entry]:
        self._check_range(lo, hi)
        return self._log.slice(lo, hi)

    @property
    def file_size(self) -> int:
        """Bytes of records in the log file, dead ones included (not the zeros ahead)."""
        return self._size

    def close(self) -> None:
        if self._closed:
            return
        self._cancel.set()
        self.wait_rewrite()
        with self._lock:
            try:
                if self._failed is None and self._synced < self._size:
                    self._sync_locked()
            finally:
                self._closed = True
                os.close(self._fd)
                self._dir_lock.release()

    # --- background rewrite

    def _maybe_rewrite(self) -> None:
        size = self._size
        if self._rewriter is not None or size < self._rewrite_min or size < self._rewrite_after:
            return
        # Live bytes estimated from the average stored entry: exact sizes
        # would cost a pass over every entry appended, truncated or compacted.
        per_entry = self._saved_bytes / max(1, self._saved_entries)
        live = FILE_HEADER_SIZE + 256 + per_entry * len(self._log.entries)
        if size >= live * self._rewrite_ratio:
            self.start_rewrite()

    def start_rewrite(self) -> bool:
        """Start a background rewrite now; False if one is already running."""
        if self._rewriter is not None or self._closed:
            return False
        self._cancel.clear()
        thread = threading.Thread(target=self._rewrite_main, name="fastlog-rewrite", daemon=True)
        self._rewriter = thread
        thread.start()
        return True

    def wait_rewrite(self, timeout: float | None = None) -> None:
        """Wait for a running rewrite to finish."""
        thread = self._rewriter
        if thread is not None:
            thread.join(timeout)

    def _hook(self, step: str) -> None:
        if self.rewrite_hook is not None:
            self.rewrite_hook(step)
        if self._cancel.is_set():
            raise _Cancelled

    def _rewrite_main(self) -> None:
        try:
            self._rewrite()
        except _Cancelled:
            remove_quietly(self._tmp_path)
        except Exception as exc:
            if is_disk_full(exc):
                log.warning(
                    "rewriting %s: out of space (%s); the old file stays in use", self.path, exc
                )
            else:
                log.exception("rewriting %s failed; the old file stays in use", self.path)
            remove_quietly(self._tmp_path)
            # Try again only once the file has grown by another threshold
            # (a full disk is not retried in a loop).
            self._rewrite_after = self._size + self._rewrite_min
        finally:
            self._rewriter = None

    def _rewrite(self) -> None:
        with self._lock:
            if self._closed or self._failed is not None:
                raise _Cancelled
            mem = self._log
            hard_state, prev_index, prev_term = mem.hard_state, mem.prev_index, mem.prev_term
            entries = list(mem.entries)
            copied = self._size
        self._hook("begin")
        src = os.open(self.path, os.O_RDONLY)
        # Not O_APPEND: it becomes the log, whose records are written at their offset.
        dst = os.open(self._tmp_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        swapped = False
        try:
            out = _Output(dst, self._salt)
            out.add_raw(_file_header(self._salt))
            out.add(RESET, msgpack.packb((prev_index, prev_term)))
            packer = msgpack.Packer()
            out.add(SAVE, _encode_save(packer, hard_state, ()))
            chunk: list[Entry] = []
            chunk_bytes = 0
            for e in entries:
                chunk.append(e)
                chunk_bytes += len(e.data) + _ENTRY_OVERHEAD
                if chunk_bytes >= _REWRITE_CHUNK:
                    out.add(SAVE, _encode_save(packer, None, chunk))
                    chunk, chunk_bytes = [], 0
                    out.flush()
                    self._hook("writing")
            if chunk:
                out.add(SAVE, _encode_save(packer, None, chunk))
            out.flush()
            self._hook("written")
            # Catch up outside the lock first so the locked round is short.
            copied = self._copy_records(src, out, copied, self._size)
            os.fdatasync(dst)
            fsyncs = 1
            self._hook("copied")
            with self._lock:
                if self._cancel.is_set() or self._failed is not None:
                    raise _Cancelled
                if self._size > copied:
                    copied = self._copy_records(src, out, copied, self._size)
                    os.fdatasync(dst)
                    fsyncs += 1
                os.replace(self._tmp_path, self.path)
                # From here on the new file is the log, whatever fails next.
                old, self._fd = self._fd, dst
                swapped = True
                self._size = self._synced = self._allocated = out.size
                os.close(old)
                if self.rewrite_hook is not None:
                    self.rewrite_hook("renamed")
                try:
                    fsync_dir(self.directory)
                except OSError as exc:
                    # The rename may not survive a power loss, and writes
                    # now go to the new file: stop rather than risk them.
                    self._failed = exc
                    raise
                self.fsyncs += fsyncs + 1
                self.rewrites += 1
            self._rewrite_after = 0
        finally:
            os.close(src)
            if not swapped:
                os.close(dst)

    def _copy_records(self, src: int, out: _Output, lo: int, hi: int) -> int:
        """Re-frame the records in ``[lo, hi)`` of the old file into ``out``; return ``hi``."""
        if hi <= lo:
            return lo
        data = _pread_all(src, hi - lo, lo)
        off = 0
        while off < len(data):
            rec = _parse_record(data, off, self._salt)
            if isinstance(rec, str):
                raise StorageError(
                    f"{self.path}: record at {lo + off} unreadable during rewrite ({rec})"
                )
            kind, _durable, start, end = rec
            out.add(kind, data[start:end])
            off = end
        out.flush()
        return hi


class _Output:
    """Buffers records for a rewritten file, each claiming itself durable.

    The claim holds because the file is fsynced before it replaces the log.
    """

    def __init__(self, fd: int, salt: int) -> None:
        self._fd = fd
        self._salt = salt
        self._parts: list[bytes] = []
        self.size = 0

    def add_raw(self, data: bytes) -> None:
        self._parts.append(data)
        self.size += len(data)

    def add(self, kind: int, body: bytes) -> None:
        self.add_raw(_frame(self._salt, kind, body, self.size + RECORD_HEADER_SIZE + len(body)))

    def flush(self) -> None:
        if self._parts:
            write_all(self._fd, b"".join(self._parts))
            self._parts.clear()
