"""Snapshots of the machine: taking them, compacting the log behind them, installing a leader's.

A snapshot is taken after ``snapshot_entries`` entries or ``snapshot_bytes``
of log since the last one, or on demand (RAFTSNAPSHOT).  The machine's
``snapshot`` runs on the event loop; a two-phase machine only captures there
and its capture is written in a worker thread while commands keep flowing.
Once the file is complete the log before it is compacted (keeping a tail for
followers that lag a little).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import IO, Any

from redraft.applying import Applying
from redraft.dedup import ClientSessions
from redraft.errors import ErrDisabled
from redraft.machine import Machine
from redraft.options import Options
from redraft.persist import LogWriter
from redraft.raft.core import RaftCore
from redraft.raft.types import Message, SnapshotMeta
from redraft.storage.base import LogStore, is_disk_full
from redraft.storage.snapshots import SnapshotPayload, SnapshotStore

log = logging.getLogger("redraft")

Done = Callable[[BaseException | None], None]

SNAPSHOT_RETRY = 10.0
"""Seconds before another automatic snapshot after one failed for lack of space."""


class Snapshotter:
    """Takes, compacts behind, streams and installs snapshots of one group's machine."""

    def __init__(
        self,
        core: RaftCore,
        applying: Applying,
        snapshots: SnapshotStore,
        store: LogStore,
        writer: LogWriter,
        options: Options,
    ) -> None:
        self.core = core
        self.applying = applying
        self.machine = applying.machine
        self.snapshots = snapshots
        self.store = store
        self.writer = writer
        self.options = options
        self.index = core.last_snapshot.index if core.last_snapshot else 0
        """The index of the newest snapshot on disk."""
        self.disabled = False
        """The machine raised ErrDisabled: the log is never compacted."""
        self._taking: asyncio.Future[SnapshotMeta | None] | None = None
        self._retry_at = 0.0
        """After a snapshot failed for lack of space: no automatic one before this (monotonic)."""
        self._pinned: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- taking

    def due(self) -> bool:
        """Whether the log since the last snapshot is long enough for a new one."""
        opts = self.options
        applying = self.applying
        return (
            applying.applied - self.index >= opts.snapshot_entries
            or applying.bytes_since_snapshot >= opts.snapshot_bytes
        )

    def maybe(self) -> None:
        """Start a snapshot in the background if one is due and none is being taken.

        Not while the log writer waits for disk space, nor for a while after a
        snapshot failed for lack of it: the file would not fit either.
        """
        if self.disabled or self._taking is not None or not self.due():
            return
        if self.writer.full is not None or (self._retry_at and time.monotonic() < self._retry_at):
            return
        self._start()

    def now(self, done: Done) -> None:
        """Take a snapshot now (or join the one being taken); ``done`` once it is on disk."""
        fut = self._taking if self._taking is not None else self._start()
        fut.add_done_callback(lambda f: done(f.exception()))

    def _start(self) -> asyncio.Future[SnapshotMeta | None]:
        loop = asyncio.get_running_loop()
        fut = self._taking = loop.create_future()
        task = loop.create_task(self._take(fut))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fut

    async def _take(self, fut: asyncio.Future[SnapshotMeta | None]) -> None:
        try:
            meta = await self._snapshot_once()
        except BaseException as exc:
            self._taking = None
            if not fut.done():
                fut.set_exception(exc)
            fut.exception()  # mark retrieved: a failed background snapshot is logged below
            if is_disk_full(exc):
                self._retry_at = time.monotonic() + SNAPSHOT_RETRY
                log.error(
                    "snapshot abandoned, the disk is full (%s); the previous one stays, "
                    "trying again in %.0f s",
                    exc,
                    SNAPSHOT_RETRY,
                )
            elif not isinstance(exc, ErrDisabled):
                log.error("snapshot failed: %s", exc, exc_info=exc)
            return
        self._retry_at = 0.0
        self._taking = None
        if not fut.done():
            fut.set_result(meta)

    async def _snapshot_once(self) -> SnapshotMeta | None:
        # The index is read where the state is captured: in one go, with no
        # entry applied in between.
        index = self.applying.applied
        if index <= self.index:
            return self.core.last_snapshot
        meta = self.core.snapshot_meta_at(index)
        start = time.monotonic()
        writer = self.snapshots.begin(meta)
        self.applying.sessions.dump(writer)
        capture = self._capture(writer)
        captured = time.monotonic()

        def persist() -> SnapshotMeta:
            try:
                if capture is not None:
                    capture.write(writer)
                return writer.commit()
            except BaseException:
                writer.abort()
                raise

        final = await asyncio.get_running_loop().run_in_executor(None, persist)
        self.index = final.index
        self.applying.bytes_since_snapshot = 0
        self._compact(final)
        log.info(
            "snapshot at index %d: %d bytes, captured in %.0f ms, written in %.0f ms",
            final.index,
            final.size,
            (captured - start) * 1000,
            (time.monotonic() - captured) * 1000,
        )
        return final

    def _capture(self, writer: Any) -> Any:
        """The machine's snapshot of its state (or a capture of it to write later)."""
        try:
            return self.machine.snapshot(writer)
        except ErrDisabled:
            writer.abort()
            self.disabled = True
            log.warning("snapshots are disabled by the machine: the log will never be compacted")
            raise
        except BaseException:
            writer.abort()
            raise

    def _compact(self, meta: SnapshotMeta) -> None:
        core = self.core
        if meta.index <= core.log.applied:
            core.compact(meta)
            upto = core.first_index - 1
            term = core.log.prev_term
            store = self.store
            self.writer.run(lambda: store.compact(upto, term))

    # --- a leader's snapshot, installed

    def install(self, meta: SnapshotMeta) -> None:
        """Restore the machine from the snapshot the leader sent (its file is durable)."""
        with self.snapshots.open_payload(meta) as rd:
            restore_payload(rd, self.machine, self.applying.sessions)
        self.applying.restored()
        self.index = meta.index
        self.applying.applied = meta.index
        self.applying.bytes_since_snapshot = 0
        log.info("installed snapshot at index %d (term %d) from the leader", meta.index, meta.term)

    # --- streaming to followers

    def fill(self, m: Message) -> bool:
        """Read the bytes of an outgoing snapshot chunk; False if the file cannot be read."""
        chunk = m.snap
        assert chunk is not None
        idx = chunk.meta.index
        if idx not in self._pinned:
            self._pinned.add(idx)
            self.snapshots.pin_index(idx)
        try:
            chunk.data = self.snapshots.read_chunk(chunk.meta, chunk.offset, chunk.length)
        except Exception as exc:
            log.warning("cannot read snapshot %d for %s: %s", idx, m.to, exc)
            return False
        return True

    def unpin_unused(self) -> None:
        """Let go of the files of snapshots no follower is being sent any more."""
        in_use = self.core.snapshots_in_use()
        for idx in list(self._pinned):
            if idx not in in_use:
                self._pinned.discard(idx)
                self.snapshots.unpin_index(idx)


def restore_payload(rd: SnapshotPayload, machine: Machine, sessions: ClientSessions) -> None:
    """Restore the client sessions and the machine from a snapshot's payload."""
    if rd.format >= 2:
        sessions.load(rd)
    else:
        sessions.reset()  # written before sessions existed: it had none
    machine.restore(rd)


def digest_of(machine: Machine, wr: IO[bytes]) -> None:
    """Write the machine's whole snapshot to ``wr`` now (raises ErrDisabled)."""
    capture = machine.snapshot(wr)
    if capture is not None:
        capture.write(wr)
