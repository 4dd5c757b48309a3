"""Carries out the persistence half of each Ready, honouring the durability level.

At durability LOW and MEDIUM a Ready is written on the event loop thread
(one ``write`` to the OS, no fsync) and is "durable" at once; MEDIUM also
fsyncs in the background once a second.  At HIGH, Readies queue up while a
worker thread writes and fsyncs the previous group; the next group holds
every Ready that arrived meanwhile and costs one fsync (group commit).
A follower's Ready that finds the writer idle is written and fsynced on the
loop thread instead (``inline``): a follower has nothing else to do before
it acknowledges, and it saves two thread hand-offs per batch; what arrives
during the fsync waits in the socket and makes the next group.  A leader
does the same while its fsyncs are quick (:attr:`LogWriter.disk_fast`):
with one batch in flight at HIGH it has nothing to do during the fsync but
gather the next batch, which waits anyway.  Once its fsyncs slow down it
hands them to the thread, so that its heartbeats go on through a slow one.
Term and vote changes are fsynced before acknowledgement at every level.

A full disk is not fatal.  When a store reports :class:`DiskFullError` (the
failed call stored nothing), the writer keeps that very call and everything
queued behind it, tells the group (``on_full``), and tries the same call
again with a short backoff until it succeeds; what was written before the
failure is reported durable only after the next successful fsync.  Nothing
is acknowledged meanwhile, so nothing acknowledged can be lost.  Every other
storage error, a failed fsync above all, still stops the node (``on_fatal``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, NamedTuple

from redraft.options import Level
from redraft.raft.types import Ready, SnapChunk, SnapshotMeta
from redraft.storage.base import DiskFullError, LogStore, is_disk_full
from redraft.storage.snapshots import IncomingSnapshot, SnapshotStore

log = logging.getLogger("redraft.persist")

Task = Callable[[], Any]

_HIGH: Final = Level.HIGH
_MEDIUM: Final = Level.MEDIUM

INLINE_FSYNC_MAX: Final = 0.002
"""Seconds an fsync may take on average for a leader to make it on its loop.

A loop blocked for that long delays nothing that matters (a heartbeat is due
every 50 ms); an average over it means a slow or busy disk, on which one
fsync could stall the loop past an election timeout."""
_AVERAGE_WEIGHT: Final = 0.2
"""Weight of the newest fsync in the moving average of their durations."""

RETRY_FIRST: Final = 0.05
RETRY_MAX: Final = 1.0
"""Seconds between attempts to write on a full disk: doubling from the first to the most."""


class _Outcome(NamedTuple):
    """How a group went: the items written, whether they still need an fsync, and why it stopped."""

    done: int
    need_sync: bool
    full: DiskFullError | None


class LogWriter:
    """Persists Readies in order and reports when each group is durable."""

    def __init__(
        self,
        store: LogStore,
        snapshots: SnapshotStore,
        durability: Level,
        on_durable: Callable[[list[Ready]], None],
        on_fatal: Callable[[BaseException], None],
        on_full: Callable[[DiskFullError | None], None] | None = None,
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.durability = durability
        self.threaded = durability == _HIGH
        self._on_durable = on_durable
        self._on_fatal = on_fatal
        self._on_full = on_full
        self._queue: list[Ready | Task] = []
        self._busy = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="redraft-log")
        self._incoming: IncomingSnapshot | None = None
        self._dirty = False
        self._flusher: asyncio.Task[None] | None = None
        self.groups = 0
        self.on_fsync: Callable[[float], None] | None = None
        """Called with the seconds each fsync of the log took (the metrics set it), from
        whichever thread made it."""
        self.fsync_average = 0.0
        """Moving average of the seconds the log's fsyncs took (0 before the first)."""
        self.full: DiskFullError | None = None
        """The write that failed for lack of space, while the writer waits for space."""
        self.failed: BaseException | None = None
        """The error that stopped the writer for good (the node is stopping)."""
        self.full_since = 0.0
        """When (``time.time()``) the disk last filled; 0 before it ever did."""
        self._retry: asyncio.TimerHandle | None = None
        self._backoff = RETRY_FIRST
        self._closing = False
        # Readies written before a write failed: durable after the next fsync.
        self._written: list[Ready] = []
        self._written_sync = False
        # How far the Ready at the head of the queue got before a write failed:
        # its snapshot chunks written, and the snapshot it finished receiving.
        self._chunks_done = 0
        self._finished: SnapshotMeta | None = None

    @property
    def fsyncs(self) -> int:
        return self.store.fsyncs

    def start(self) -> None:
        if self.durability == _MEDIUM:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_every_second())

    @property
    def disk_fast(self) -> bool:
        """Whether fsyncs have been quick enough to make on the loop (see the module docstring)."""
        return self.fsync_average < INLINE_FSYNC_MAX

    @property
    def idle(self) -> bool:
        # Never idle once failed: later Readies must not be reported durable
        # ahead of the ones that never will be.
        return not self._busy and not self._queue and self.failed is None

    def submit(self, rd: Ready, inline: bool = False) -> bool:
        """Persist ``rd``; True if it is already durable (written inline).

        ``inline``: at HIGH, write and fsync on this thread when nothing is
        queued (a follower's entries; see the module docstring).
        """
        if self.failed is not None:
            return False  # never durable: the node is stopping
        if self.idle and (not self.threaded or (inline and rd.entries)):
            try:
                self._write(rd, sync=rd.must_sync or self.durability == _HIGH)
            except DiskFullError as full:
                self._queue.append(rd)  # tried again, from where it stopped
                self._filled(full)
                return False
            except Exception as exc:
                self._fail(exc)
                return False
            self.groups += 1
            return True
        self._queue.append(rd)
        if not self._busy and self.full is None:
            self._kick()
        return False

    def run(self, task: Task) -> None:
        """Run a storage task in order with the writes (now if nothing is queued).

        Dropped once the writer is closing: a snapshot that finishes during
        shutdown must not compact a store that is closed (the next start
        compacts behind the snapshot anyway).
        """
        if self.failed is not None or self._closing:
            return
        if not self.threaded and self.idle:
            try:
                task()
            except DiskFullError as full:
                self._queue.append(task)
                self._filled(full)
            except Exception as exc:
                self._fail(exc)
            return
        self._queue.append(task)
        if not self._busy and self.full is None:
            self._kick()

    async def drain(self) -> None:
        """Wait until everything submitted is durable, or the disk is full, or writing failed."""
        while not self.idle and self.failed is None and (self.full is None or self._busy):
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        await self.drain()
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._flusher is not None:
            self._flusher.cancel()
        if self.full is not None:
            # Never acknowledged: Raft sends it again after the restart.
            log.warning("stopping with %d writes the full disk did not take", len(self._queue))
        loop = asyncio.get_running_loop()
        if self.failed is None:
            try:
                await loop.run_in_executor(self._executor, self.store.sync)
            except DiskFullError as exc:
                log.warning("final sync on a full disk: %s", exc)
        self._executor.shutdown(wait=True)

    # --- internals

    def _kick(self) -> None:
        group = self._queue
        self._queue = []
        self._busy = True
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, self._write_group, group, self._written_sync)
        fut.add_done_callback(lambda f: self._done(group, f))

    def _write_group(self, group: list[Ready | Task], need_sync: bool) -> _Outcome:
        # One fsync for the whole group, and only when something in it must
        # be durable before it is acknowledged: entries at HIGH, or a term,
        # vote or membership change at any level (or what a failed group
        # wrote before it failed, ``need_sync`` on entry).
        for done, item in enumerate(group):
            try:
                if isinstance(item, Ready):
                    self._write(item, sync=False)
                    if item.must_sync or (self.threaded and item.entries):
                        need_sync = True
                else:
                    item()
            except DiskFullError as exc:
                return _Outcome(done, need_sync, exc)
        if need_sync:
            self._sync()
        return _Outcome(len(group), False, None)

    def _done(self, group: list[Ready | Task], fut: asyncio.Future[_Outcome]) -> None:
        self._busy = False
        exc = fut.exception()
        if exc is not None:
            self._fail(exc)
            return
        outcome = fut.result()
        readies = [r for r in group[: outcome.done] if isinstance(r, Ready)]
        if outcome.full is not None:
            self._queue[:0] = group[outcome.done :]
            self._written.extend(readies)
            self._written_sync = outcome.need_sync
            self._filled(outcome.full)
            return
        self.groups += 1
        if self._written:
            readies[:0] = self._written
            self._written = []
            self._written_sync = False
        if self.full is not None:
            self._space_back()
        if self._queue:
            self._kick()
        if readies:
            self._on_durable(readies)

    def _fail(self, exc: BaseException) -> None:
        """Writing failed for good: report nothing durable from now on and stop the node."""
        # Raised through the Raft driver instead, it would leave the Ready it
        # was carrying out half done (entries committed in it never applied).
        if self.failed is None:
            self.failed = exc
            self._queue.clear()
            self._on_fatal(exc)

    # --- a full disk

    def _filled(self, exc: DiskFullError) -> None:
        """A write failed for lack of space: say so once, and try it again later."""
        if self.full is None:
            self.full_since = time.time()
            log.error(
                "DISK FULL: %s; writes are refused on this node until space returns "
                "(trying again every %.0f ms at most)",
                exc.reason,
                RETRY_MAX * 1000,
            )
            self.full = exc
            if self._on_full is not None:
                self._on_full(exc)
        self.full = exc
        if self._closing:
            return
        delay = self._backoff
        self._backoff = min(RETRY_MAX, delay * 2)
        self._retry = asyncio.get_running_loop().call_later(delay, self._try_again)

    def _try_again(self) -> None:
        self._retry = None
        if not self._busy and not self._closing and self._queue and self.failed is None:
            self._kick()

    def _space_back(self) -> None:
        log.warning(
            "disk space is back after %.1f s: writes resume on this node",
            time.time() - self.full_since,
        )
        self.full = None
        self._backoff = RETRY_FIRST
        if self._on_full is not None:
            self._on_full(None)

    def _write(self, rd: Ready, sync: bool) -> None:
        """Write one Ready; after a :class:`DiskFullError`, a call again resumes where it stopped."""
        chunks = rd.snapshot_chunks
        while self._chunks_done < len(chunks):
            self._receive(chunks[self._chunks_done])
            self._chunks_done += 1
        if rd.install_snapshot is not None:
            meta = self._finished
            if meta is None:
                incoming = self._incoming
                if incoming is None:
                    raise RuntimeError("snapshot install without an incoming snapshot")
                self._incoming = None
                meta = self._finished = incoming.finish()
            self.store.reset(meta.index, meta.term)
        if rd.hard_state is not None or rd.entries:
            if sync:
                self._save_synced(rd)
            else:
                self.store.save(rd.hard_state, rd.entries, sync)
            self._dirty = not sync
        self._chunks_done = 0
        self._finished = None

    def _receive(self, chunk: SnapChunk) -> None:
        if chunk.offset == 0 or self._incoming is None:
            if self._incoming is not None:
                self._incoming.abort()
            self._incoming = self.snapshots.incoming(chunk.meta)
        try:
            self._incoming.write(chunk.offset, chunk.data)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(str(self.snapshots.directory), exc) from exc
            raise

    def _sync(self) -> None:
        """fsync the log, timing it."""
        self._timed(self.store.sync)

    def _save_synced(self, rd: Ready) -> None:
        # A store writes and fsyncs a durable save in one call: its time is
        # the fsync's plus a write to the page cache, which is small beside it.
        self._timed(self.store.save, rd.hard_state, rd.entries, True)

    def _timed(self, call: Callable[..., None], *args: Any) -> None:
        """Run a store call that may fsync; time it if it did (nothing pending: no fsync)."""
        store = self.store
        before = store.fsyncs
        start = time.perf_counter()
        call(*args)
        if store.fsyncs != before:
            self._fsynced(time.perf_counter() - start)

    def _fsynced(self, seconds: float) -> None:
        # From the loop or the worker thread, never both at once: the loop
        # writes only while the thread has nothing.
        self.fsync_average += (seconds - self.fsync_average) * _AVERAGE_WEIGHT
        if self.on_fsync is not None:
            self.on_fsync(seconds)

    async def _flush_every_second(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            if not self._dirty:
                continue
            self._dirty = False
            start = time.monotonic()
            try:
                await loop.run_in_executor(None, self._sync)
            except DiskFullError as full:
                self._dirty = True  # the next second tries again
                log.warning("background fsync: %s", full)
                continue
            except Exception as exc:
                self._fail(exc)
                return
            took = time.monotonic() - start
            if took > 1.0:
                log.warning("background fsync took %.1fs", took)
