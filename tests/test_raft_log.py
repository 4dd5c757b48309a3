"""The in-memory Raft log: conflict detection, byte-bounded slices, compaction."""

import pytest

from redraft.raft.log import ENTRY_OVERHEAD, RaftLog
from redraft.raft.types import Entry, EntryKind, Membership, SnapshotMeta


def ents(start: int, terms: list[int], size: int = 10) -> list[Entry]:
    return [Entry(t, start + k, EntryKind.NORMAL, b"x" * size) for k, t in enumerate(terms)]


def test_positions_and_terms() -> None:
    log = RaftLog(4, 2, ents(5, [2, 3, 3]), commit=5)
    assert (log.prev_index, log.last_index, log.last_term) == (4, 7, 3)
    assert [log.term(i) for i in range(3, 9)] == [None, 2, 2, 3, 3, None]
    assert log.commit == 5
    assert log.applied == 4


def test_find_conflict_bisects_to_first_mismatch() -> None:
    log = RaftLog(0, 0, ents(1, [1, 1, 2, 2, 2]), commit=0)
    assert log.find_conflict(ents(1, [1, 1, 2])) == 3  # all present
    assert log.find_conflict(ents(2, [1, 2, 3, 3])) == 2  # index 4 has term 2, not 3
    assert log.find_conflict(ents(6, [3])) == 0  # beyond the end
    assert log.find_conflict([]) == 0


def test_truncate_moves_durability_marks_back() -> None:
    log = RaftLog(0, 0, ents(1, [1, 1, 1, 1]), commit=1)
    assert log.stable == 4
    log.truncate_after(2)
    assert (log.last_index, log.stable, log.handed) == (2, 2, 2)
    with pytest.raises(AssertionError):
        log.truncate_after(0)


def test_slice_respects_byte_budget_but_sends_at_least_one() -> None:
    log = RaftLog(0, 0, ents(1, [1] * 10, size=100), commit=0)
    per = 100 + ENTRY_OVERHEAD
    assert [e.index for e in log.slice(1, 11, per * 3)] == [1, 2, 3]
    assert [e.index for e in log.slice(4, 11, per * 3 + per // 2)] == [4, 5, 6]
    assert [e.index for e in log.slice(2, 11, 1)] == [2]
    assert len(log.slice(1, 11)) == 10
    assert log.size_between(2, 5) == 3 * per


def test_tail_start_keeps_at_most_the_bytes_asked_for() -> None:
    log = RaftLog(0, 0, ents(1, [1] * 10, size=100), commit=0)
    per = 100 + ENTRY_OVERHEAD
    assert log.tail_start(10, 3 * per) == 7  # entries 8-10 fit
    assert log.tail_start(10, 3 * per - 1) == 8
    assert log.tail_start(10, 0) == 10
    assert log.tail_start(10, 100 * per) == 0
    assert log.tail_start(5, 2 * per) == 3
    log.applied = 4
    log.compact(4)
    log.extend(ents(11, [1, 1], size=1000))
    assert log.tail_start(12, 1000 + ENTRY_OVERHEAD) == 11
    assert log.tail_start(10, 2 * per) == 8
    assert log.tail_start(10, 10 * per) == 4  # never below what the log holds


def test_fast_backtracking_target() -> None:
    log = RaftLog(0, 0, ents(1, [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]), commit=0)
    # A follower whose log has term 2 at the conflict point: skip all of term 4-6.
    assert log.find_conflict_by_term(10, 2) == 3
    assert log.find_conflict_by_term(10, 5) == 7
    assert log.find_conflict_by_term(2, 9) == 2


def test_stable_to_ignores_an_overwritten_entry() -> None:
    log = RaftLog(0, 0, [], commit=0)
    log.extend(ents(1, [1, 1, 1]))
    log.stable = 0
    log.truncate_after(1)
    log.extend(ents(2, [2, 2]))
    log.stable_to(3, 1)  # the write of the old (term 1) entry 3 finished late
    assert log.stable == 0
    log.stable_to(3, 2)
    assert log.stable == 3


def test_compaction_keeps_terms_and_sizes_consistent() -> None:
    log = RaftLog(0, 0, ents(1, [1, 1, 2, 2, 3], size=50), commit=5)
    log.take_committed()
    log.compact(3)
    assert (log.prev_index, log.term(3), log.term(2), log.last_index) == (3, 2, None, 5)
    assert log.size_between(4, 6) == 2 * (50 + ENTRY_OVERHEAD)
    log.extend(ents(6, [3], size=50))
    assert [e.index for e in log.slice(4, 7, 2 * (50 + ENTRY_OVERHEAD))] == [4, 5]
    with pytest.raises(IndexError):
        log.slice(3, 5)


def test_reset_to_snapshot() -> None:
    log = RaftLog(0, 0, ents(1, [1, 1]), commit=1)
    log.reset(100, 7)
    assert (log.prev_index, log.last_index, log.last_term, log.commit, log.applied) == (
        100,
        100,
        7,
        100,
        100,
    )
    assert log.take_committed() == [] and log.take_unhanded() == []


def test_restore_from_a_snapshot_and_the_entries_after_it() -> None:
    meta = SnapshotMeta(4, 2, Membership(frozenset({"a"})))
    log = RaftLog.restore(meta, ents(3, [2, 2, 3, 3]), commit=2)
    assert (log.prev_index, log.prev_term, log.last_index) == (4, 2, 6)  # 3 and 4 covered
    assert (log.commit, log.applied, log.stable) == (4, 4, 6)
    assert log.snapshot is meta
    with pytest.raises(ValueError, match="not contiguous at index 7"):
        RaftLog.restore(None, [*ents(1, [1, 1]), *ents(7, [1])], commit=0)


def test_compaction_point_keeps_a_tail_bounded_in_entries_and_bytes() -> None:
    log = RaftLog(0, 0, ents(1, [1] * 10, size=100), commit=10)
    log.take_committed()  # applied 10
    assert log.compaction_point(8, tail=0, tail_bytes=0) == 8
    assert log.compaction_point(8, tail=5, tail_bytes=0) == 3
    # five entries of 124 bytes do not fit in 300: keep two
    assert log.compaction_point(8, tail=5, tail_bytes=300) == 6
    log.extend(ents(11, [1, 1]))  # not yet durable: stable stays at 10
    log.commit = 12
    log.take_committed()
    assert log.compaction_point(12, tail=0, tail_bytes=0) == 10
