"""Carries out the persistence half of each Ready, honouring the durability level.

At durability LOW and MEDIUM a Ready is written on the event loop thread
(one ``write`` to the OS, no fsync) and is "durable" at once; MEDIUM also
fsyncs in the background once a second.  At HIGH, Readies queue up while a
worker thread writes and fsyncs the previous group; the next group holds
every Ready that arrived meanwhile and costs one fsync (group commit).
A follower's Ready that finds the writer idle is written and fsynced on the
loop thread instead (``inline``): a follower has nothing else to do before
it acknowledges, and it saves two thread hand-offs per batch; what arrives
during the fsync waits in the socket and makes the next group.  The leader
keeps the thread, so its heartbeats go on while it fsyncs.
Term and vote changes are fsynced before acknowledgement at every level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redraft.options import Level
from redraft.raft.types import Ready
from redraft.storage.base import LogStore
from redraft.storage.snapshots import IncomingSnapshot, SnapshotStore

log = logging.getLogger("redraft.persist")

Task = Callable[[], Any]


class LogWriter:
    """Persists Readies in order and reports when each group is durable."""

    def __init__(
        self,
        store: LogStore,
        snapshots: SnapshotStore,
        durability: Level,
        on_durable: Callable[[list[Ready]], None],
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.durability = durability
        self.threaded = durability == Level.HIGH
        self._on_durable = on_durable
        self._on_fatal = on_fatal
        self._queue: list[Ready | Task] = []
        self._busy = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="redraft-log")
        self._incoming: IncomingSnapshot | None = None
        self._dirty = False
        self._flusher: asyncio.Task[None] | None = None
        self.groups = 0
        self.on_fsync: Callable[[float], None] | None = None
        """Called with the seconds each fsync of the log took (the metrics set it), from
        whichever thread made it; None (the default) times nothing."""

    @property
    def fsyncs(self) -> int:
        return self.store.fsyncs

    def start(self) -> None:
        if self.durability == Level.MEDIUM:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_every_second())

    @property
    def idle(self) -> bool:
        return not self._busy and not self._queue

    def submit(self, rd: Ready, inline: bool = False) -> bool:
        """Persist ``rd``; True if it is already durable (written inline).

        ``inline``: at HIGH, write and fsync on this thread when nothing is
        queued (a follower's entries; see the module docstring).
        """
        if self.idle and (not self.threaded or (inline and rd.entries)):
            self._write(rd, sync=rd.must_sync or self.durability == Level.HIGH)
            self.groups += 1
            return True
        self._queue.append(rd)
        if not self._busy:
            self._kick()
        return False

    def run(self, task: Task) -> None:
        """Run a storage task in order with the writes (now if nothing is queued)."""
        if not self.threaded and self.idle:
            task()
            return
        self._queue.append(task)
        if not self._busy:
            self._kick()

    async def drain(self) -> None:
        """Wait until everything submitted is durable."""
        while not self.idle:
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        await self.drain()
        if self._flusher is not None:
            self._flusher.cancel()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.store.sync)
        self._executor.shutdown(wait=True)

    # --- internals

    def _kick(self) -> None:
        group = self._queue
        self._queue = []
        self._busy = True
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, self._write_group, group)
        fut.add_done_callback(lambda f: self._done(group, f))

    def _write_group(self, group: list[Ready | Task]) -> None:
        # One fsync for the whole group, and only when something in it must
        # be durable before it is acknowledged: entries at HIGH, or a term,
        # vote or membership change at any level.
        need_sync = False
        for item in group:
            if isinstance(item, Ready):
                self._write(item, sync=False)
                if item.must_sync or (self.threaded and item.entries):
                    need_sync = True
            else:
                item()
        if need_sync:
            self._sync()

    def _done(self, group: list[Ready | Task], fut: asyncio.Future[None]) -> None:
        self._busy = False
        exc = fut.exception()
        if exc is not None:
            self._on_fatal(exc)
            return
        self.groups += 1
        readies = [r for r in group if isinstance(r, Ready)]
        if self._queue:
            self._kick()
        if readies:
            self._on_durable(readies)

    def _write(self, rd: Ready, sync: bool) -> None:
        for chunk in rd.snapshot_chunks:
            if chunk.offset == 0 or self._incoming is None:
                if self._incoming is not None:
                    self._incoming.abort()
                self._incoming = self.snapshots.incoming(chunk.meta)
            self._incoming.write(chunk.offset, chunk.data)
        if rd.install_snapshot is not None:
            incoming = self._incoming
            if incoming is None:
                raise RuntimeError("snapshot install without an incoming snapshot")
            self._incoming = None
            meta = incoming.finish()
            self.store.reset(meta.index, meta.term)
        if rd.hard_state is not None or rd.entries:
            if sync and self.on_fsync is not None:
                self._save_timed(rd)
            else:
                self.store.save(rd.hard_state, rd.entries, sync)
            self._dirty = not sync

    def _sync(self) -> None:
        """fsync the log; timed only when someone listens (two clock reads per fsync)."""
        observe = self.on_fsync
        if observe is None:
            self.store.sync()
            return
        store = self.store
        before = store.fsyncs
        start = time.perf_counter()
        store.sync()
        if store.fsyncs != before:  # nothing was pending: no fsync to count
            observe(time.perf_counter() - start)

    def _save_timed(self, rd: Ready) -> None:
        # A store writes and fsyncs a durable save in one call: its time is
        # the fsync's plus a write to the page cache, which is small beside it.
        store = self.store
        before = store.fsyncs
        start = time.perf_counter()
        store.save(rd.hard_state, rd.entries, True)
        if store.fsyncs != before and self.on_fsync is not None:
            self.on_fsync(time.perf_counter() - start)

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
            except Exception as exc:
                self._on_fatal(exc)
                return
            took = time.monotonic() - start
            if took > 1.0:
                log.warning("background fsync took %.1fs", took)
