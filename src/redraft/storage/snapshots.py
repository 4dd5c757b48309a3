"""Snapshot files: written locally or received from a leader, verified, kept N deep.

File layout (integers little-endian)::

    "RDSNAP\\r\\n" | u16 format | u32 meta length | meta | payload | u64 payload length | u32 crc | "RDSNEND\\n"

``meta`` is msgpack ``[index, term, membership]`` (membership as
:meth:`Membership.encode`).  The CRC-32 covers every byte before it.  The
whole file is what a leader streams to a follower, so the receiver checks
exactly what the sender wrote.  Files are named ``snap-<term>-<index>.rsnap``;
a file becomes visible under that name only once complete and fsynced.

Thread use: a :class:`SnapshotWriter` may run in a worker thread while the
event loop reads chunks and pins snapshots; the store's own bookkeeping is
locked.

A full disk.  A write that fails for lack of space leaves the published
snapshots as they were: an aborted writer or incoming snapshot deletes its
temporary file, and :meth:`IncomingSnapshot.write` raises
:class:`DiskFullError` without moving its offset, so the same chunk can be
written again once there is room.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import secrets
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from redraft.raft.types import Membership, SnapshotMeta
from redraft.storage.base import DISK_FULL_ERRNOS, DiskFullError, StorageError
from redraft.storage.files import (
    FILE_MODE,
    ensure_private_dir,
    fsync_dir,
    remove_quietly,
    write_all,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""1: the payload is the machine's alone; 2: the node's own block comes first (see :attr:`SnapshotPayload.format`)."""
_MAGIC = b"RDSNAP\r\n"
_END = b"RDSNEND\n"
_HEAD = struct.Struct("<8sHI")
_PAYLOAD_LEN = struct.Struct("<Q")
_SEAL = struct.Struct("<I8s")
TRAILER_SIZE = _PAYLOAD_LEN.size + _SEAL.size
_MAX_META = 1 << 20
_BUFFER = 1 << 20
_NAME = re.compile(r"snap-(\d+)-(\d+)\.rsnap")
_TMP_PREFIX = ".tmp-"
CORRUPT_SUFFIX = ".corrupt"


class CorruptSnapshotError(StorageError):
    """A snapshot file (or one being received) fails verification."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"snapshot {where} is corrupt: {reason}")
        self.where = where
        self.reason = reason


class SnapshotOffsetError(StorageError):
    """A received chunk does not start where the previous one ended."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"snapshot chunk at offset {got}, expected {expected} (or 0 to restart)")
        self.expected = expected
        self.got = got


class SnapshotMissingError(StorageError):
    """The snapshot file was deleted or replaced (it was not pinned)."""


def snapshot_name(index: int, term: int) -> str:
    return f"snap-{term}-{index}.rsnap"


def _encode_head(meta: SnapshotMeta, fmt: int = FORMAT_VERSION) -> bytes:
    body: bytes = msgpack.packb((meta.index, meta.term, meta.membership.encode()))
    return _HEAD.pack(_MAGIC, fmt, len(body)) + body


def _parse_head(
    read: Callable[[int, int], bytes], size: int, where: str
) -> tuple[SnapshotMeta, int, int]:
    """The meta (with ``size``), the payload offset and the format, from a file's first bytes."""
    if size < _HEAD.size + TRAILER_SIZE:
        raise CorruptSnapshotError(where, f"only {size} bytes long")
    magic, version, meta_len = _HEAD.unpack(read(0, _HEAD.size))
    if magic != _MAGIC:
        raise CorruptSnapshotError(where, "not a redraft snapshot (bad magic)")
    if version > FORMAT_VERSION:
        raise StorageError(
            f"snapshot {where} uses format {version}; this redraft reads up to {FORMAT_VERSION}"
        )
    start = _HEAD.size + meta_len
    if meta_len > _MAX_META or start + TRAILER_SIZE > size:
        raise CorruptSnapshotError(where, f"impossible meta length {meta_len}")
    try:
        index, term, membership = msgpack.unpackb(read(_HEAD.size, meta_len))
        meta = SnapshotMeta(index, term, Membership.decode(membership), size)
    except Exception as exc:
        raise CorruptSnapshotError(where, f"undecodable meta: {exc}") from exc
    return meta, start, version


def _check_seal(
    where: str, size: int, start: int, crc: int, payload_len_raw: bytes, seal: bytes
) -> None:
    (payload_len,) = _PAYLOAD_LEN.unpack(payload_len_raw)
    stored_crc, end = _SEAL.unpack(seal)
    if end != _END:
        raise CorruptSnapshotError(where, "trailer missing (incomplete file)")
    if stored_crc != crc:
        raise CorruptSnapshotError(where, "checksum mismatch")
    if payload_len != size - start - TRAILER_SIZE:
        raise CorruptSnapshotError(where, "payload length does not match the file size")


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while length > 0:
        part = os.pread(fd, length, offset)
        if not part:
            break
        parts.append(part)
        length -= len(part)
        offset += len(part)
    return b"".join(parts)


def verify_file(path: Path) -> SnapshotMeta:
    """Check a snapshot file end to end and return its meta (with its size)."""
    where = str(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size

        def read(off: int, n: int) -> bytes:
            return _pread_all(fd, n, off)

        meta, start, _ = _parse_head(read, size, where)
        crc = 0
        pos = 0
        sealed_at = size - _SEAL.size
        while pos < sealed_at:
            block = os.pread(fd, min(_BUFFER, sealed_at - pos), pos)
            if not block:
                raise CorruptSnapshotError(where, "file shrank while being read")
            crc = zlib.crc32(block, crc)
            pos += len(block)
        _check_seal(
            where,
            size,
            start,
            crc,
            read(sealed_at - _PAYLOAD_LEN.size, 8),
            read(sealed_at, _SEAL.size),
        )
    finally:
        os.close(fd)
    match = _NAME.fullmatch(path.name)
    if match and (int(match[1]), int(match[2])) != (meta.term, meta.index):
        raise CorruptSnapshotError(where, f"the file holds index {meta.index} term {meta.term}")
    return meta


def adopt_file(store: SnapshotStore, path: Path, membership: Membership) -> SnapshotMeta:
    """Make a snapshot file from elsewhere (a backup) ``store``'s newest, under ``membership``.

    The file is checked end to end first (CorruptSnapshotError, naming it,
    if it is damaged or truncated); its payload is copied as it is, with its
    index, term and format, into a new file sealed and published as usual.
    """
    meta = verify_file(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        _, start, fmt = _parse_head(lambda off, n: _pread_all(fd, n, off), size, str(path))
        writer = SnapshotWriter(store, SnapshotMeta(meta.index, meta.term, membership), fmt)
        try:
            pos, end = start, size - TRAILER_SIZE
            while pos < end:
                block = os.pread(fd, min(_BUFFER, end - pos), pos)
                if not block:
                    raise CorruptSnapshotError(str(path), "file shrank while being read")
                writer.write(block)
                pos += len(block)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise
    finally:
        os.close(fd)


class _HashingRaw(io.RawIOBase):
    """Writes to a file descriptor, keeping a running CRC-32 of what it wrote."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.crc = 0
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = os.write(self.fd, view)
        self.crc = zlib.crc32(view[:n], self.crc)
        self.pos += n
        return n


class SnapshotWriter(io.BufferedWriter):
    """A binary file to write one snapshot's payload into, then :meth:`commit` or :meth:`abort`.

    ``close()`` only flushes: a snapshot is finished by :meth:`commit` alone,
    so a machine that closes the stream it was handed does no harm.  Used as
    a context manager, it aborts unless committed inside the block.
    """

    def __init__(self, store: SnapshotStore, meta: SnapshotMeta, fmt: int = FORMAT_VERSION) -> None:
        self._store = store
        self._meta = SnapshotMeta(meta.index, meta.term, meta.membership)
        self._tmp, fd = store._temp_file()
        self._raw = _HashingRaw(fd)
        self._finished = False
        super().__init__(self._raw, buffer_size=_BUFFER)
        head = _encode_head(self._meta, fmt)
        self.write(head)
        self._payload_start = len(head)

    def close(self) -> None:
        if self._finished:
            super().close()
        elif not self.closed:
            self.flush()

    def commit(self) -> SnapshotMeta:
        """Seal, fsync and publish the snapshot; return its meta with the file size."""
        if self._finished:
            raise StorageError("snapshot writer already finished")
        try:
            self.flush()
            raw = self._raw
            # Through the hashing layer: the CRC covers the payload length.
            view = memoryview(_PAYLOAD_LEN.pack(raw.pos - self._payload_start))
            while view:
                view = view[raw.write(view) :]
            write_all(raw.fd, _SEAL.pack(raw.crc, _END))
            size = raw.pos + _SEAL.size
            os.fsync(raw.fd)
            self._finish()
        except BaseException:
            self.abort()
            raise
        m = self._meta
        return self._store._publish(self._tmp, SnapshotMeta(m.index, m.term, m.membership, size))

    def abort(self) -> None:
        """Throw the snapshot away (idempotent)."""
        if not self._finished:
            with contextlib.suppress(OSError, ValueError):
                self._finish()
        remove_quietly(self._tmp)

    def _finish(self) -> None:
        self._finished = True
        try:
            super().close()
        finally:
            os.close(self._raw.fd)

    def __exit__(self, *exc: object) -> None:
        self.abort()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._finished:
                self.abort()


class IncomingSnapshot:
    """A snapshot file arriving from the leader in chunks.

    Chunks must come in order; a chunk at offset 0 starts the file afresh.
    :meth:`finish` verifies the whole file and publishes it like a local one.
    """

    def __init__(self, store: SnapshotStore, expected: SnapshotMeta | None = None) -> None:
        self._store = store
        self._expected = expected
        self._tmp, self._fd = store._temp_file()
        self._size = 0
        self._crc = 0
        self._held = b""  # the last bytes seen, possibly the CRC and end magic
        self._finished = False

    @property
    def offset(self) -> int:
        """The offset the next chunk must start at."""
        return self._size

    def write(self, offset: int, data: bytes) -> None:
        """Store a chunk that starts at ``offset`` of the file.

        Raises :class:`DiskFullError` when there is no room for it; the
        offset stays where it was, and the same chunk may be written again.
        """
        if self._finished:
            raise StorageError("incoming snapshot already finished")
        if offset == 0 and self._size:
            self._restart()
        elif offset != self._size:
            raise SnapshotOffsetError(self._size, offset)
        view = memoryview(data)
        pos = offset
        try:
            while view:
                n = os.pwrite(self._fd, view, pos)
                view = view[n:]
                pos += n
        except OSError as exc:
            # What did land past the offset is overwritten by the next
            # write, or cut off by finish().
            if exc.errno in DISK_FULL_ERRNOS:
                raise DiskFullError(str(self._tmp), exc) from exc
            raise
        self._size += len(data)
        # Hash everything except the last bytes, which may turn out to be
        # the seal (CRC and end magic) that the CRC does not cover.
        held = self._held
        hashable = len(held) + len(data) - _SEAL.size
        if hashable <= 0:
            self._held = held + data
        elif hashable <= len(held):
            self._crc = zlib.crc32(held[:hashable], self._crc)
            self._held = held[hashable:] + data
        else:
            self._crc = zlib.crc32(held, self._crc)
            self._crc = zlib.crc32(memoryview(data)[: hashable - len(held)], self._crc)
            self._held = bytes(data[-_SEAL.size :])

    def finish(self, expected: SnapshotMeta | None = None) -> SnapshotMeta:
        """Verify the received file and publish it.

        The file's meta must match ``expected``, or the meta given to
        :meth:`SnapshotStore.incoming` (``size`` is checked when non-zero).
        On :class:`CorruptSnapshotError` the transfer starts over from offset 0.
        """
        if self._finished:
            raise StorageError("incoming snapshot already finished")
        expected = expected or self._expected
        where = f"received into {self._tmp.name}"
        try:
            size = self._size

            def read(off: int, n: int) -> bytes:
                return _pread_all(self._fd, n, off)

            meta, start, _ = _parse_head(read, size, where)
            sealed_at = size - _SEAL.size
            _check_seal(where, size, start, self._crc, read(sealed_at - 8, 8), self._held)
            if expected is not None and (
                (expected.index, expected.term, expected.membership)
                != (meta.index, meta.term, meta.membership)
                or (expected.size and expected.size != size)
            ):
                raise CorruptSnapshotError(where, f"expected {expected}, received {meta}")
        except CorruptSnapshotError:
            self._restart()
            raise
        # A failed write may have left bytes past the end that was retried.
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)
        self._finished = True
        os.close(self._fd)
        return self._store._publish(self._tmp, meta)

    def abort(self) -> None:
        """Drop what was received (idempotent)."""
        if not self._finished:
            self._finished = True
            os.close(self._fd)
        remove_quietly(self._tmp)

    def _restart(self) -> None:
        os.ftruncate(self._fd, 0)
        self._size = 0
        self._crc = 0
        self._held = b""


class _PayloadRaw(io.RawIOBase):
    """A read-only window onto the payload of a snapshot file."""

    def __init__(self, fd: int, start: int, length: int) -> None:
        super().__init__()
        self._fd = fd
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = min(len(view), self._length - self._pos)
        if n <= 0:
            return 0
        got = os.preadv(self._fd, [view[:n]], self._start + self._pos)
        self._pos += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class SnapshotPayload(io.BufferedReader):
    """The payload of a snapshot as a binary file; ``length`` is its size in bytes."""

    def __init__(self, raw: _PayloadRaw, length: int, meta: SnapshotMeta, fmt: int) -> None:
        super().__init__(raw, buffer_size=_BUFFER)
        self.length = length
        self.meta = meta
        self.format = fmt
        """The file's format: from 2 on, the payload begins with the node's own state."""


class SnapshotStore:
    """The snapshot files of one node, newest ``keep`` retained (plus pinned ones)."""

    def __init__(self, directory: Path, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.directory = Path(directory)
        self.keep = keep
        ensure_private_dir(self.directory)
        for entry in os.scandir(self.directory):
            if entry.name.startswith(_TMP_PREFIX):
                # Left by a snapshot that a crash interrupted.
                remove_quietly(Path(entry.path))
        self._lock = threading.Lock()
        # Pins are by index: a committed index has a single term.
        self._pins: dict[int, int] = {}
        # name -> (size, mtime_ns, meta) of files known to be valid
        self._valid: dict[str, tuple[int, int, SnapshotMeta]] = {}

    def path(self, meta: SnapshotMeta) -> Path:
        """Where the snapshot described by ``meta`` lives."""
        return self.directory / snapshot_name(meta.index, meta.term)

    # --- writing

    def begin(self, meta: SnapshotMeta) -> SnapshotWriter:
        """Start writing a local snapshot (``meta.size`` is ignored)."""
        return SnapshotWriter(self, meta)

    def incoming(self, expected: SnapshotMeta | None = None) -> IncomingSnapshot:
        """Start receiving a snapshot file streamed by the leader (described by ``expected``)."""
        return IncomingSnapshot(self, expected)

    def _temp_file(self) -> tuple[Path, int]:
        path = self.directory / f"{_TMP_PREFIX}{secrets.token_hex(8)}.rsnap"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        return path, fd

    def _publish(self, tmp: Path, meta: SnapshotMeta) -> SnapshotMeta:
        final = self.path(meta)
        with self._lock:
            if final.exists() and self._pins.get(meta.index):
                # Being streamed to a follower: swapping it now would mix two
                # files' bytes in one transfer.  The content is the same state.
                remove_quietly(tmp)
                return verify_file(final)
            try:
                os.replace(tmp, final)
                fsync_dir(self.directory)
            except BaseException:
                remove_quietly(tmp)
                raise
            st = final.stat()
            self._valid[final.name] = (st.st_size, st.st_mtime_ns, meta)
            self._cleanup_locked()
        return meta

    # --- reading

    def latest(self) -> SnapshotMeta | None:
        """The newest snapshot whose checksum verifies, or None.

        Corrupt files are logged and moved aside (``*.corrupt``) so that an
        older good one is used and kept.
        """
        corrupt = 0
        for name in self._names():
            path = self.directory / name
            try:
                meta = self._verified(path)
            except FileNotFoundError:
                continue
            except CorruptSnapshotError as exc:
                corrupt += 1
                self._quarantine(path, exc)
                continue
            return meta
        if corrupt:
            log.error(
                "no valid snapshot in %s: all %d snapshot file(s) failed verification "
                "(moved aside with the %s suffix)",
                self.directory,
                corrupt,
                CORRUPT_SUFFIX,
            )
        return None

    def _verified(self, path: Path) -> SnapshotMeta:
        st = path.stat()
        with self._lock:
            known = self._valid.get(path.name)
        if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
            return known[2]
        meta = verify_file(path)
        with self._lock:
            self._valid[path.name] = (st.st_size, st.st_mtime_ns, meta)
        return meta

    def _quarantine(self, path: Path, exc: CorruptSnapshotError) -> None:
        with self._lock:
            self._valid.pop(path.name, None)
            match = _NAME.fullmatch(path.name)
            pinned = match is not None and self._pins.get(int(match[2]))
            if pinned:
                log.warning("%s (pinned; left in place)", exc)
                return
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, path.with_name(path.name + CORRUPT_SUFFIX))
        log.warning("%s; moved aside to %s%s", exc, path.name, CORRUPT_SUFFIX)

    def open_payload(self, meta: SnapshotMeta) -> SnapshotPayload:
        """The payload of ``meta``'s snapshot as a readable binary file (close it after use)."""
        path = self.path(meta)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SnapshotMissingError(f"snapshot {path} does not exist") from None
        try:
            size = os.fstat(fd).st_size

            def read(off: int, n: int) -> bytes:
                return _pread_all(fd, n, off)

            found, start, version = _parse_head(read, size, str(path))
        except BaseException:
            os.close(fd)
            raise
        length = size - start - TRAILER_SIZE
        return SnapshotPayload(_PayloadRaw(fd, start, length), length, found, version)

    def read_chunk(self, meta: SnapshotMeta, offset: int, length: int) -> bytes:
        """``length`` bytes of the snapshot file at ``offset`` (fewer at its end)."""
        path = self.path(meta)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SnapshotMissingError(f"snapshot {path} no longer exists") from None
        try:
            if meta.size and os.fstat(fd).st_size != meta.size:
                raise SnapshotMissingError(f"snapshot {path} was replaced")
            return _pread_all(fd, length, offset)
        finally:
            os.close(fd)

    # --- retention

    def pin(self, meta: SnapshotMeta) -> None:
        """Keep ``meta``'s file from cleanup until a matching :meth:`unpin`.

        Pins count: each pin needs its own unpin.
        """
        self.pin_index(meta.index)

    def unpin(self, meta: SnapshotMeta) -> None:
        self.unpin_index(meta.index)

    def pin_index(self, index: int) -> None:
        """:meth:`pin` the snapshot at ``index``."""
        with self._lock:
            self._pins[index] = self._pins.get(index, 0) + 1

    def unpin_index(self, index: int) -> None:
        """:meth:`unpin` the snapshot at ``index``; cleanup runs once it is unpinned."""
        with self._lock:
            count = self._pins.get(index, 0) - 1
            if count > 0:
                self._pins[index] = count
                return
            self._pins.pop(index, None)
            self._cleanup_locked()

    def _names(self) -> list[str]:
        """Snapshot file names, newest first."""
        found: list[tuple[int, int, str]] = []
        for entry in os.scandir(self.directory):
            match = _NAME.fullmatch(entry.name)
            if match:
                found.append((int(match[2]), int(match[1]), entry.name))
        found.sort(reverse=True)
        return [name for _, _, name in found]

    def _cleanup_locked(self) -> None:
        for name in self._names()[self.keep :]:
            match = _NAME.fullmatch(name)
            assert match is not None
            if self._pins.get(int(match[2])):
                continue
            remove_quietly(self.directory / name)
            self._valid.pop(name, None)
