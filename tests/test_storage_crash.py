"""Crash safety of the fastlog backend: torn tails, bit flips, holes and kill -9."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from redraft.raft.types import Entry, HardState
from redraft.storage import CorruptLogError
from redraft.storage.fastlog import FILE_HEADER_SIZE, LOG_NAME, FastLogStore
from redraft.storage.memory import MemoryStore
from tests.test_storage import snapshot_of

State = tuple[HardState, int, int, list[tuple[int, int, int, bytes]]]


def ents(first: int, count: int, term: int) -> list[Entry]:
    return [
        Entry(term, i, 0, b"v%d@%d" % (i, term) * (1 + i % 3)) for i in range(first, first + count)
    ]


@dataclass
class Recorded:
    """A log file and, for every record in it, where it ends and the state it leads to."""

    data: bytes
    bounds: list[int]  # bounds[k] = file size after k records
    states: list[State]  # states[k] = log state after k records

    def state_at_cut(self, size: int) -> State:
        k = max(i for i, b in enumerate(self.bounds) if b <= size)
        return self.states[k]

    def record_start(self, pos: int) -> int:
        return max(b for b in self.bounds if b <= pos)


def record_log(directory: Path, syncs: list[bool]) -> Recorded:
    """Write one record per step: saves (with hard state, a conflict) and a compaction."""
    store = FastLogStore(directory)
    model = MemoryStore()
    bounds = [store.file_size]
    states = [snapshot_of(model)]
    index = 1
    for step, sync in enumerate(syncs):
        if step == 4:
            store.compact(3, 1)
            model.compact(3, 1)
        else:
            start = index - 2 if step == 6 else index  # step 6 replaces a suffix
            term = 1 if step < 6 else 2
            batch = ents(start, 1 + step % 3, term)
            hs = HardState(term, "n1", start - 1) if step % 2 == 0 else None
            for s in (store, model):
                s.save(hs, batch, sync=sync)
            index = batch[-1].index + 1
        bounds.append(store.file_size)
        states.append(snapshot_of(model))
    assert store.fsyncs >= 1
    path = store.path
    # Closing syncs only if the last step did not; tests pass syncs ending in True.
    store.close()
    data = path.read_bytes()
    # The records, then the zeros the file was grown by ahead of them.
    assert len(data) > bounds[-1] and not data[bounds[-1] :].strip(b"\0")
    assert bounds[0] == FILE_HEADER_SIZE
    return Recorded(data[: bounds[-1]], bounds, states)


@pytest.fixture
def recorded(tmp_path: Path) -> Recorded:
    # Every step synced, except the compaction (step 4), which never is.
    return record_log(tmp_path / "ref", [True] * 4 + [False] + [True] * 4)


def reopen_with(directory: Path, data: bytes) -> FastLogStore:
    directory.mkdir(exist_ok=True)
    marker = directory / "REDRAFT_STORE"
    if not marker.exists():
        marker.write_text("redraft log store\nbackend: fastlog\nformat: 1\n")
    (directory / LOG_NAME).write_bytes(data)
    return FastLogStore(directory)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("zeros", [0, 4096], ids=["cut", "cut-then-zeros"])
def test_truncation_at_every_offset_gives_a_clean_prefix(
    recorded: Recorded, tmp_path: Path, zeros: int
) -> None:
    """A crash may leave any prefix of what was written, before the zeros grown ahead or not."""
    work = tmp_path / "work"
    data = recorded.data
    for size in range(len(data) + 1):
        if size < FILE_HEADER_SIZE:
            # The header is written whole (temp file + rename): a short one is damage.
            with pytest.raises(CorruptLogError):
                reopen_with(work, data[:size]).close()
            continue
        store = reopen_with(work, data[:size] + bytes(zeros))
        assert snapshot_of(store) == recorded.state_at_cut(size), size
        if size % 5 == 0:
            # The torn tail is gone from the file, so new writes follow valid data.
            last = store.last_index()
            store.save(None, ents(last + 1, 1, 9), sync=True)
            store.close()
            store = FastLogStore(work)
            assert store.last_index() == last + 1
        store.close()


@pytest.mark.timeout(60)
def test_bit_flips(recorded: Recorded, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    work = tmp_path / "work"
    data = recorded.data
    last_start = recorded.bounds[-2]
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << (pos % 8)
        caplog.clear()
        if pos >= last_start:
            with caplog.at_level(logging.WARNING, logger="redraft.storage.fastlog"):
                store = reopen_with(work, bytes(flipped))
            assert snapshot_of(store) == recorded.states[-2], pos
            assert f"byte offset {last_start}" in caplog.text
            store.close()
            continue
        with pytest.raises(CorruptLogError) as info:
            reopen_with(work, bytes(flipped))
        expected = 0 if pos < FILE_HEADER_SIZE else recorded.record_start(pos)
        assert info.value.offset == expected, pos
        assert str(work / LOG_NAME) in str(info.value)
        assert f"byte offset {expected}" in str(info.value)
        # Nothing was cut from a file that could not be trusted.
        assert (work / LOG_NAME).read_bytes() == bytes(flipped)


# Steps 3..7 are never synced (4 is the compaction); step 8 syncs itself.
HOLE_SYNCS = [True, True, True, False, False, False, False, False, True]


def test_hole_before_only_unsynced_records_is_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Unsynced writes may reach the disk out of order: a hole among them is a crash."""
    rec = record_log(tmp_path / "ref", HOLE_SYNCS)
    # The crash came before step 8; step 5's bytes never reached the disk.
    data = rec.data[: rec.bounds[8]]
    start, end = rec.bounds[5], rec.bounds[6]
    holed = data[:start] + bytes(end - start) + data[end:]
    with caplog.at_level(logging.WARNING, logger="redraft.storage.fastlog"):
        store = reopen_with(tmp_path / "work", holed)
    assert snapshot_of(store) == rec.states[5]
    assert "never fsynced" in caplog.text
    assert store.file_size == start
    store.close()


def test_hole_before_a_record_that_synced_it_is_corruption(tmp_path: Path) -> None:
    """Once a later fsync covered the bytes, damage there is corruption, not a lost write."""
    rec = record_log(tmp_path / "ref", HOLE_SYNCS)
    start, end = rec.bounds[5], rec.bounds[6]
    holed = rec.data[:start] + bytes(end - start) + rec.data[end:]
    with pytest.raises(CorruptLogError) as info:
        reopen_with(tmp_path / "work", holed)
    assert info.value.offset == start


# --- kill -9 in the middle of saves and of background rewrites

WRITER = r"""
import os, sys, time
from pathlib import Path
from redraft.raft.types import Entry, HardState
from redraft.storage.fastlog import FastLogStore

def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())

directory, mode, target = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "saves":
    store = FastLogStore(Path(directory))
else:
    store = FastLogStore(Path(directory), rewrite_min_bytes=4096, rewrite_ratio=1.5)
    def hook(step):
        say("hook", step)
        if step == target:
            time.sleep(60)
    store.rewrite_hook = hook
index = 1
batch_no = 0
while True:
    n = 1 + batch_no % 5
    term = 1 + batch_no // 10
    batch = [Entry(term, i, 0, b"%d:%d;" % (i, term) * (1 + i % 7)) for i in range(index, index + n)]
    index += n
    store.save(HardState(term, "n1", index - 1), batch, sync=True)
    say("ack", batch_no, index - 1)
    if mode == "rewrite" and batch_no % 4 == 3:
        store.compact(index - 3, term)
    batch_no += 1
"""


def expected_batches(upto: int) -> Iterator[list[Entry]]:
    index, batch_no = 1, 0
    while index <= upto:
        n = 1 + batch_no % 5
        term = 1 + batch_no // 10
        yield [
            Entry(term, i, 0, b"%d:%d;" % (i, term) * (1 + i % 7)) for i in range(index, index + n)
        ]
        index += n
        batch_no += 1


def run_and_kill(
    tmp_path: Path, mode: str, target: str, kill_after_acks: int, rng: random.Random
) -> int:
    """Run the writer until the kill condition; return the last index a synced save acknowledged."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "log"), mode, target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    acked = 0
    acks = 0
    try:
        for raw in proc.stdout:
            words = raw.split()
            if words[0] == b"ack":
                acked = int(words[2])
                acks += 1
                if acks == kill_after_acks:
                    time.sleep(rng.random() * 0.004)  # land anywhere in the next saves
                    break
            elif words[:2] == [b"hook", target.encode()]:
                break
        else:
            raise AssertionError(f"writer exited early: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    for line in rest.splitlines():
        words = line.split()
        if words and words[0] == b"ack":
            acked = int(words[2])
    assert proc.returncode == -signal.SIGKILL
    return acked


def check_recovered(directory: Path, acked: int) -> None:
    store = FastLogStore(directory)
    loaded = store.load()
    last = loaded.last_index
    assert last >= acked, "a save that returned was lost"
    expected: dict[int, Entry] = {}
    ends = {0}
    for batch in expected_batches(last):
        for e in batch:
            expected[e.index] = e
        ends.add(batch[-1].index)
    assert last in ends, "a batch is partially present"
    assert loaded.entries == [expected[i] for i in range(loaded.prev_index + 1, last + 1)]
    if loaded.prev_index:
        assert loaded.prev_term == expected[loaded.prev_index].term
    assert loaded.hard_state.commit == last
    assert not (directory / (LOG_NAME + ".rewrite")).exists()
    # The store keeps working, rewrites included, and reopens identically.
    store.save(None, [Entry(99, last + 1, 0, b"after")], sync=True)
    store.start_rewrite()
    store.wait_rewrite(30)
    before = snapshot_of(store)
    store.close()
    again = FastLogStore(directory)
    assert snapshot_of(again) == before
    again.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", range(4))
def test_kill_during_saves(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    acked = run_and_kill(tmp_path, "saves", "-", rng.randint(5, 300), rng)
    check_recovered(tmp_path / "log", acked)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("step", ["begin", "written", "copied", "renamed"])
def test_kill_during_rewrite_step(tmp_path: Path, step: str) -> None:
    acked = run_and_kill(tmp_path, "rewrite", step, 10**9, random.Random(0))
    check_recovered(tmp_path / "log", acked)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", range(4))
def test_kill_at_random_with_frequent_rewrites(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    acked = run_and_kill(tmp_path, "rewrite", "-", rng.randint(50, 600), rng)
    check_recovered(tmp_path / "log", acked)
