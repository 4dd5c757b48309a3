"""Log storage backends and the snapshot file store.

:func:`open_store` opens a backend by the name given on the command line;
:class:`~redraft.storage.snapshots.SnapshotStore` keeps snapshot files.
"""

from __future__ import annotations

from pathlib import Path

from redraft.storage.base import (
    CorruptLogError,
    DiskFullError,
    FsyncError,
    LoadedLog,
    LogStore,
    StorageError,
    is_disk_full,
)
from redraft.storage.fastlog import FastLogStore
from redraft.storage.leveldb_backend import LevelDbStore
from redraft.storage.lmdb_backend import LmdbStore
from redraft.storage.memory import MemoryStore
from redraft.storage.snapshots import (
    CorruptSnapshotError,
    IncomingSnapshot,
    SnapshotMissingError,
    SnapshotOffsetError,
    SnapshotPayload,
    SnapshotStore,
    SnapshotWriter,
)

BACKENDS: tuple[str, ...] = ("fastlog", "lmdb", "leveldb", "memory")
"""Backend names, the default first."""


def open_store(backend: str, directory: Path) -> LogStore:
    """Open (creating if needed) the ``backend`` log store kept in ``directory``.

    ``memory`` ignores ``directory``.  Raises :class:`StorageError` for an
    unknown backend or a directory another backend wrote.
    """
    if backend == "fastlog":
        return FastLogStore(directory)
    if backend == "lmdb":
        return LmdbStore(directory)
    if backend == "leveldb":
        return LevelDbStore(directory)
    if backend == "memory":
        return MemoryStore()
    raise StorageError(f"unknown storage backend {backend!r}; choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "CorruptLogError",
    "CorruptSnapshotError",
    "DiskFullError",
    "FastLogStore",
    "FsyncError",
    "IncomingSnapshot",
    "LevelDbStore",
    "LmdbStore",
    "LoadedLog",
    "LogStore",
    "MemoryStore",
    "SnapshotMissingError",
    "SnapshotOffsetError",
    "SnapshotPayload",
    "SnapshotStore",
    "SnapshotWriter",
    "StorageError",
    "is_disk_full",
    "open_store",
]
