"""Online backups: a fresh snapshot of the applied state, read out by a client in pieces.

``RAFTBACKUP`` takes a snapshot now (in the background, as any snapshot:
writes keep flowing) and pins its file so that compaction cannot delete it
while it is read; ``RAFTBACKUP READ`` hands out its bytes, ``RAFTBACKUP END``
lets it go (so does the connection closing).  The file is the snapshot
file itself: its header holds the index, term and membership, and a CRC-32
seals it, so the client can check what it wrote (``python -m redraft
backup`` does, then renames it into place) and ``--restore`` can refuse a
damaged one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redraft.errors import ErrDisabled
from redraft.raft.types import SnapshotMeta
from redraft.snapshotting import Snapshotter
from redraft.storage.snapshots import SnapshotStore

MAX_CHUNK = 4 << 20
"""The most bytes one ``RAFTBACKUP READ`` returns."""

Started = Callable[[SnapshotMeta | None, BaseException | None], None]


class Backups:
    """The backups being read from this node, by connection."""

    def __init__(self, snapshotter: Snapshotter, snapshots: SnapshotStore) -> None:
        self._snapshotter = snapshotter
        self._snapshots = snapshots
        self._pinned: dict[Any, dict[int, SnapshotMeta]] = {}
        """Per connection: the snapshots it is reading, by index."""

    def begin(self, conn: Any, started: Started) -> None:
        """Take a snapshot now; ``started(meta, None)`` once it is on disk and pinned."""

        def done(exc: BaseException | None) -> None:
            if exc is not None:
                if isinstance(exc, ErrDisabled):
                    exc = ValueError("ERR snapshots are disabled by the machine: no backup")
                started(None, exc)
                return
            meta = self._snapshots.latest()
            if meta is None:
                started(None, ValueError("ERR no snapshot was written"))
                return
            mine = self._pinned.setdefault(conn, {})
            if meta.index not in mine:
                self._snapshots.pin_index(meta.index)
                mine[meta.index] = meta
            started(meta, None)

        self._snapshotter.now(done)

    def read(self, conn: Any, index: int, offset: int, length: int) -> bytes:
        """Bytes ``offset`` to ``offset + length`` of a backup this connection began."""
        meta = self._pinned.get(conn, {}).get(index)
        if meta is None:
            raise ValueError(f"ERR no backup at index {index} was begun on this connection")
        if offset < 0 or length < 0 or offset > meta.size:
            raise ValueError("ERR offset or length out of range")
        return self._snapshots.read_chunk(meta, offset, min(length, MAX_CHUNK, meta.size - offset))

    def end(self, conn: Any, index: int) -> None:
        """The connection has read the backup at ``index``: its file may go."""
        mine = self._pinned.get(conn)
        if mine is not None and mine.pop(index, None) is not None:
            self._snapshots.unpin_index(index)
            if not mine:
                del self._pinned[conn]

    def forget(self, conn: Any) -> None:
        """The connection closed: let go of everything it pinned."""
        for index in list(self._pinned.get(conn, {})):
            self.end(conn, index)


__all__ = ["MAX_CHUNK", "Backups"]
