"""Where a leader's fsyncs run at durability high: on its loop while they are quick, in
the writer's thread once they slow down (so that a slow disk cannot stall its heartbeats)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from redraft.options import Level
from redraft.persist import INLINE_FSYNC_MAX, LogWriter
from redraft.raft.types import Entry, HardState, Ready
from redraft.storage import MemoryStore, SnapshotStore
from tests.test_persist_diskfull import ready, run_async, until

pytestmark = pytest.mark.timeout(30)


class TimedStore(MemoryStore):
    """A store whose fsync takes ``delay`` seconds, and which counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        super().save(hard_state, entries, sync)
        if sync:
            self.sync()

    def sync(self) -> None:
        time.sleep(self.delay)
        self.fsyncs += 1


@run_async
async def test_fsyncs_move_off_the_loop_while_slow_and_come_back_when_quick(
    tmp_path: Path,
) -> None:
    store = TimedStore()
    durable: list[Ready] = []
    writer = LogWriter(
        store, SnapshotStore(tmp_path / "snapshots"), Level.HIGH, durable.extend, print
    )
    assert writer.disk_fast, "nothing measured yet: the loop may fsync"
    for i in range(1, 4):
        assert writer.submit(ready(i), True), "written and fsynced on this thread"
    assert writer.disk_fast

    store.delay = 5 * INLINE_FSYNC_MAX
    assert writer.submit(ready(4), True)
    assert not writer.disk_fast, "one fsync far over the bound marks the disk slow"

    # The group now hands a leader's Readies to the thread, which keeps timing them.
    store.delay = 0.0
    index = 5
    while not writer.disk_fast:
        assert not writer.submit(ready(index), False)
        await until(lambda n=index - 4: len(durable) == n)
        index += 1
    assert 5 < index < 20, "quick fsyncs bring the average back within a few"
    assert store.fsyncs == index - 1
    await writer.close()
