"""A follower's side of a snapshot transfer: chunks in, a snapshot to install out.

The leader streams a snapshot file in chunks (see
:class:`~redraft.raft.progress.OutgoingSnapshot` for its side).  The
follower accepts them strictly in order, hands each one out to be written
to its incoming file, and once the last one arrives with the file complete,
hands out the snapshot to install.  Anything out of order is answered with
the offset it expects instead, so the leader resends from there.
"""

from __future__ import annotations

from typing import NamedTuple

from redraft.raft.types import SnapChunk, SnapshotMeta


class Answer(NamedTuple):
    """How to answer one chunk."""

    accepted: bool
    """False: out of order, or a torn file (start again from ``offset``)."""
    offset: int
    """The next offset expected."""
    complete: bool
    """The file is complete: install the snapshot."""


class SnapshotReceiver:
    """The incoming snapshot of one follower, and what its next Ready must persist."""

    __slots__ = ("_incoming", "_next", "chunks", "install")

    def __init__(self) -> None:
        self._incoming: SnapshotMeta | None = None
        self._next = 0
        self.chunks: list[SnapChunk] = []
        """Accepted chunks not yet handed out (to write to the incoming file)."""
        self.install: SnapshotMeta | None = None
        """A complete snapshot not yet handed out (to install)."""

    def cancel(self) -> None:
        """Give up the transfer in progress (the log already has what it holds)."""
        self._incoming = None

    def receive(self, chunk: SnapChunk) -> Answer:
        """Take one chunk of ``chunk.meta``'s file; how to answer it."""
        meta = chunk.meta
        inc = self._incoming
        if chunk.offset == 0 and inc != meta:
            # A new transfer (or a newer snapshot) starts over.
            self._incoming = inc = meta
            self._next = 0
        if inc != meta or chunk.offset != self._next:
            return Answer(False, self._next if inc == meta else 0, False)
        self.chunks.append(chunk)
        self._next += len(chunk.data)
        if not chunk.done:
            return Answer(True, self._next, False)
        self._incoming = None
        if self._next != meta.size:
            # A short final chunk: start over rather than install a torn file.
            return Answer(False, 0, False)
        self.install = meta
        return Answer(True, self._next, True)

    def take(self) -> tuple[list[SnapChunk], SnapshotMeta | None]:
        """The chunks and the install for the next Ready."""
        chunks, install = self.chunks, self.install
        self.chunks = []
        self.install = None
        return chunks, install

    @property
    def has_work(self) -> bool:
        """Whether :meth:`take` has something to hand out."""
        return bool(self.chunks) or self.install is not None


__all__ = ["Answer", "SnapshotReceiver"]
