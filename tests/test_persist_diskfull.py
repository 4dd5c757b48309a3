"""The log writer on a full disk: the failed write is kept and retried, nothing is reported
durable before it is, order is kept, and only a lack of space is survived."""

from __future__ import annotations

import asyncio
import errno
import functools
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest

from redraft.group import newest_heartbeat_replies
from redraft.options import Level
from redraft.persist import LogWriter
from redraft.raft.types import Entry, HardState, Message, MsgType, Ready
from redraft.storage import DiskFullError, MemoryStore, SnapshotStore, StorageError

pytestmark = pytest.mark.timeout(30)


class FillingStore(MemoryStore):
    """A store whose disk is full while ``full`` is set (and whose fsync may fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.fsync_fails = False
        self.attempts = 0

    def _space(self) -> None:
        self.attempts += 1
        if self.full:
            cause = OSError(errno.ENOSPC, "No space left on device")
            raise DiskFullError("/data/log", cause)

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        self._space()
        super().save(hard_state, entries, sync)
        if sync:
            self.sync()

    def compact(self, upto: int, term: int) -> None:
        self._space()
        super().compact(upto, term)

    def sync(self) -> None:
        if self.fsync_fails:
            raise StorageError("fsync of /data/log failed: [Errno 5] Input/output error")
        super().sync()


def ready(index: int) -> Ready:
    return Ready(entries=[Entry(1, index, 0, b"%d" % index)])


class Harness:
    def __init__(self, tmp: Path, durability: Level) -> None:
        self.store = FillingStore()
        self.durable: list[int] = []
        self.fatal: list[BaseException] = []
        self.full: list[DiskFullError | None] = []
        self.writer = LogWriter(
            self.store,
            SnapshotStore(tmp / "snapshots"),
            durability,
            lambda rds: self.durable.extend(r.entries[0].index for r in rds if r.entries),
            self.fatal.append,
            self.full.append,
        )

    def submit(self, index: int, inline: bool = False) -> None:
        if self.writer.submit(ready(index), inline):
            self.durable.append(index)


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the async test body on a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


async def until(predicate: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("durability", [Level.LOW, Level.MEDIUM, Level.HIGH])
@run_async
async def test_a_full_disk_holds_writes_in_order_and_retries_until_space_returns(
    tmp_path: Path, durability: Level
) -> None:
    h = Harness(tmp_path, durability)
    h.writer.start()
    h.submit(1, inline=True)
    await until(lambda: h.durable == [1])
    h.store.full = True
    for i in (2, 3, 4):
        h.submit(i, inline=True)
    await until(lambda: h.full)
    assert isinstance(h.full[0], DiskFullError)
    assert h.writer.full is not None
    tried = h.store.attempts
    await until(lambda: h.store.attempts >= tried + 3)  # it keeps trying, on its own
    assert h.durable == [1], "nothing may be reported durable while the disk is full"
    assert not h.writer.idle
    h.store.full = False
    await until(lambda: h.durable == [1, 2, 3, 4])
    assert h.full[-1] is None and h.writer.full is None
    assert [e.index for e in h.store.entries(1, 5)] == [1, 2, 3, 4]
    assert not h.fatal
    h.submit(5, inline=True)
    await until(lambda: h.durable[-1] == 5)
    await h.writer.close()


@run_async
async def test_readies_written_before_a_failure_wait_for_the_next_fsync(tmp_path: Path) -> None:
    h = Harness(tmp_path, Level.HIGH)
    h.writer.start()
    h.submit(1)  # the thread takes it; 2 and 3 queue behind as one group
    h.submit(2)
    h.submit(3)
    await until(lambda: h.durable == [1, 2, 3])

    class Trip:
        def __call__(self) -> None:
            h.store.full = True

    h.submit(4)  # the thread takes 4 alone; the rest queue behind it as one group
    h.submit(5)
    h.writer.run(Trip())  # a storage task, in order with the writes: the disk fills after 5
    h.submit(6)
    h.submit(7)
    await until(lambda: h.full)
    assert h.durable == [1, 2, 3, 4], "5 was written, but its group's fsync never came"
    h.store.full = False
    await until(lambda: h.durable == [1, 2, 3, 4, 5, 6, 7])
    await h.writer.close()


@run_async
async def test_a_failed_fsync_is_fatal_not_a_full_disk(tmp_path: Path) -> None:
    h = Harness(tmp_path, Level.HIGH)
    h.writer.start()
    h.store.fsync_fails = True
    h.submit(1)
    await until(lambda: h.fatal)
    assert "fsync" in str(h.fatal[0]) and not h.full
    assert h.durable == []


@run_async
async def test_a_storage_task_that_finds_the_disk_full_is_retried(tmp_path: Path) -> None:
    h = Harness(tmp_path, Level.MEDIUM)
    h.writer.start()
    for i in (1, 2, 3):
        h.submit(i, inline=True)
    h.store.full = True
    h.writer.run(lambda: h.store.compact(2, 1))
    await until(lambda: h.full)
    assert h.store.first_index() == 1
    h.store.full = False
    await until(lambda: h.store.first_index() == 3)
    await h.writer.close()


@pytest.mark.parametrize("durability", [Level.MEDIUM, Level.HIGH])
@run_async
async def test_a_task_that_comes_after_closing_is_dropped_not_fatal(
    tmp_path: Path, durability: Level
) -> None:
    # A snapshot that finishes while the node stops asks to compact the log
    # after the writer closed (and the store with it).
    h = Harness(tmp_path, durability)
    h.writer.start()
    h.submit(1, inline=True)
    await h.writer.close()
    ran: list[int] = []
    h.writer.run(lambda: ran.append(1))
    await asyncio.sleep(0.05)
    assert ran == [] and h.fatal == []


@run_async
async def test_closing_on_a_full_disk_does_not_hang(tmp_path: Path) -> None:
    h = Harness(tmp_path, Level.MEDIUM)
    h.writer.start()
    h.store.full = True
    h.submit(1, inline=True)
    await until(lambda: h.full)
    await asyncio.wait_for(h.writer.close(), 5)
    assert h.durable == []


@run_async
async def test_an_inline_write_that_fails_stops_the_node_and_nothing_after_it_is_durable(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, Level.MEDIUM)
    h.writer.start()
    h.submit(1, inline=True)
    h.store.fsync_fails = True
    ready_2 = Ready(
        entries=[Entry(1, 2, 0, b"2")], hard_state=HardState(2, "n1", 1), must_sync=True
    )
    assert not h.writer.submit(ready_2, inline=True)  # no exception through the driver
    assert len(h.fatal) == 1 and "fsync" in str(h.fatal[0])
    h.store.fsync_fails = False
    h.submit(3, inline=True)
    assert h.durable == [1], "nothing after a fatal failure may be reported durable"
    assert not h.writer.idle  # so the driver keeps Readies in order behind it
    await asyncio.wait_for(h.writer.close(), 5)
    assert len(h.fatal) == 1


def test_readies_released_together_send_only_the_newest_heartbeat_reply_per_peer() -> None:
    def reply(to: str, rnd: int) -> Message:
        return Message(MsgType.HEARTBEAT_RESP, to, "me", 3, round=rnd)

    ack = Message(MsgType.APP_RESP, "a", "me", 3, index=9)
    readies = [
        Ready(messages_after_persist=[reply("a", 1), reply("b", 1)]),
        Ready(messages_after_persist=[ack, reply("a", 2)]),
        Ready(messages_after_persist=[reply("a", 3)]),
    ]
    newest_heartbeat_replies(readies)
    sent = [m for rd in readies for m in rd.messages_after_persist]
    assert sent == [reply("b", 1), ack, reply("a", 3)]
