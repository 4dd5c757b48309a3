"""File-system helpers shared by the backends: private directories, fsync of
files and directories, atomic small files, the marker naming a directory's
backend, and asking the file system whether it has room."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Final

from redraft.storage.base import DISK_FULL_ERRNOS, FsyncError, StorageError

log = logging.getLogger(__name__)

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600

MARKER_NAME: Final = "REDRAFT_STORE"
"""Written first into every persistent store's directory."""

_MARKER_HEAD: Final = "redraft log store"

SPACE_PROBE: Final = ".space-probe"
"""The scratch file :func:`no_room` allocates and deletes (removed when a store opens)."""

# Files that betray a backend in a directory whose marker has gone missing.
_SIGNATURES: Final = {
    "fastlog.wal": "fastlog",
    "data.mdb": "lmdb",
    "CURRENT": "leveldb",
}


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` and any missing parents readable by the owner only.

    Existing directories are left as they are: they may be the user's own.
    """
    missing: list[Path] = []
    p = directory
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue
        # mkdir's mode is filtered by the umask; chmod is not.
        os.chmod(d, DIR_MODE)
    if not directory.is_dir():
        raise StorageError(f"{directory} is not a directory")


def fsync_dir(directory: Path) -> None:
    """Make renames and creations inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(fd: int, path: Path | str) -> None:
    """``fdatasync`` ``fd``; a failure raises :class:`FsyncError` naming ``path``.

    The error is raised outside the ``except`` clause, so it carries no
    ``OSError`` (not even as context) that :func:`is_disk_full` could take for
    a lack of space.  Callers must not call this from an ``except`` clause of
    their own for the same reason.
    """
    failure: OSError | None = None
    try:
        os.fdatasync(fd)
    except OSError as exc:
        failure = exc
    if failure is not None:
        raise FsyncError(os.fspath(path), failure)


def no_room(directory: Path, nbytes: int) -> OSError | None:
    """The error (ENOSPC, EDQUOT) saying ``directory``'s file system cannot give ``nbytes`` more.

    None when it can, or when it cannot tell.  The file system itself is
    asked, by allocating a scratch file that is deleted at once, rather than
    ``statvfs``: quotas and the blocks reserved for root count as they would
    for a real write.
    """
    path = directory / SPACE_PROBE
    fd = -1
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.posix_fallocate(fd, 0, max(1, nbytes))
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            return exc
        return None  # EOPNOTSUPP and the like: no answer
    finally:
        if fd >= 0:
            os.close(fd)
        remove_quietly(path)
    return None


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int | None = None) -> None:
    """Write every byte of ``data`` (short writes do happen on full disks).

    At the file position with ``os.write``, or at ``offset`` with ``os.pwrite``.
    """
    view = memoryview(data)
    while view:
        n = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[n:]
        if offset is not None:
            offset += n


def writev_all(fd: int, parts: list[bytes], offset: int) -> int:
    """Write ``parts`` in order at ``offset`` with ``os.pwritev`` (no joined copy).

    Returns the bytes written.
    """
    total = 0
    for part in parts:  # a loop, not sum(map(len, ...)): compiled, it is native code
        total += len(part)
    done = os.pwritev(fd, parts, offset)
    if done < total:
        # A short write: finish the rest part by part.
        left = done
        for part in parts:
            if left >= len(part):
                offset += len(part)
                left -= len(part)
                continue
            write_all(fd, memoryview(part)[left:], offset + left)
            offset += len(part)
            left = 0
    return total


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_marker(directory: Path) -> tuple[str, int] | None:
    """The (backend, format version) recorded in ``directory``, or None if unmarked."""
    try:
        text = (directory / MARKER_NAME).read_text("utf-8")
    except FileNotFoundError:
        return None
    fields: dict[str, str] = {}
    lines = text.splitlines()
    if not lines or lines[0] != _MARKER_HEAD:
        raise StorageError(f"{directory / MARKER_NAME} is not a redraft store marker")
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        return fields["backend"], int(fields["format"])
    except (KeyError, ValueError):
        raise StorageError(f"{directory / MARKER_NAME} is damaged: {text!r}") from None


class DirLock:
    """An exclusive lock on a store directory, held while the store is open.

    Two processes (or two stores in one process) writing one log would
    silently interleave their records; the second one is refused instead.
    """

    def __init__(self, directory: Path) -> None:
        self._fd: int | None = os.open(directory / MARKER_NAME, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise StorageError(f"data dir {directory} is in use by another store") from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim_directory(directory: Path, backend: str, version: int) -> DirLock:
    """Make ``directory`` a private store directory of ``backend`` and lock it, or refuse.

    Refuses a directory written by another backend, or by a newer format
    version of this one, rather than start with an empty log there; and one
    that another open store holds.
    """
    ensure_private_dir(directory)
    found = read_marker(directory)
    if found is None:
        other = _guess_backend(directory)
        if other is not None and other != backend:
            raise _wrong_backend(directory, other)
        if other == backend:
            log.warning(
                "%s has %s data but no %s marker; recreating it", directory, backend, MARKER_NAME
            )
        text = f"{_MARKER_HEAD}\nbackend: {backend}\nformat: {version}\n"
        write_file_atomic(directory / MARKER_NAME, text.encode("utf-8"))
        return DirLock(directory)
    found_backend, found_version = found
    if found_backend != backend:
        raise _wrong_backend(directory, found_backend)
    if found_version > version:
        raise StorageError(
            f"data dir {directory} was written in format {found_version} of the {backend} "
            f"backend; this version of redraft reads formats up to {version}"
        )
    lock = DirLock(directory)
    # Left by a space probe that a crash interrupted (it may hold many blocks).
    remove_quietly(directory / SPACE_PROBE)
    return lock


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _guess_backend(directory: Path) -> str | None:
    for name, backend in _SIGNATURES.items():
        if (directory / name).exists():
            return backend
    return None


def _wrong_backend(directory: Path, backend: str) -> StorageError:
    return StorageError(
        f"data dir {directory} was written by the {backend} backend; "
        f"open it with --backend {backend}"
    )
