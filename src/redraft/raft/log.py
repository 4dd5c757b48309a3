"""The in-memory Raft log of one node, with the bookkeeping of what is durable.

The log holds every entry after its compaction point.  Indexes are tracked
against four marks, always ``snap_index <= stable <= last_index`` and
``applied <= commit <= last_index``:

* ``prev_index``/``prev_term``: the entry just before the first one held
  (covered by a snapshot, or dropped by compaction);
* ``handed``: entries up to here were handed to the runtime to persist;
* ``stable``: entries up to here are durable (the runtime said so);
* ``commit`` / ``applied``: committed, and handed to the runtime to apply.

It also knows the node's latest snapshot (``snapshot``), which covers at
least the entries before the log and may cover some still in it (compaction
keeps a tail behind it for slightly lagging followers).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate
from operator import itemgetter
from typing import Final

from redraft.raft.types import Entry, SnapshotMeta

ENTRY_OVERHEAD: Final = 24
"""Bytes counted per entry on top of its data when sizing messages."""

_data_of = itemgetter(3)  # Entry.data, at C speed


class RaftLog:
    __slots__ = (
        "_cum",
        "_entries",
        "applied",
        "commit",
        "handed",
        "last_index",
        "offset",
        "prev_term",
        "snapshot",
        "stable",
    )

    def __init__(self, prev_index: int, prev_term: int, entries: list[Entry], commit: int) -> None:
        self.offset = prev_index + 1
        self.prev_term = prev_term
        self._entries: list[Entry] = list(entries)
        self.last_index = prev_index + len(entries)
        # _cum[k] is the data size of entries[0..k-1] (plus a base); it lets a
        # byte-bounded slice be found by bisection instead of a loop per entry.
        # Only a leader slices by size, so it is built on first use.
        self._cum: list[int] | None = None
        last = self.last_index
        self.stable = last
        self.handed = last
        self.commit = max(prev_index, min(commit, last))
        self.applied = prev_index
        self.snapshot: SnapshotMeta | None = None
        """The latest snapshot: restored, taken (:meth:`RaftCore.compact`) or installed."""

    @classmethod
    def restore(cls, snapshot: SnapshotMeta | None, entries: list[Entry], commit: int) -> RaftLog:
        """The log of a node starting from durable state: a snapshot and the entries after it.

        Entries the snapshot covers are skipped; the rest must be contiguous.
        """
        prev_index = snapshot.index if snapshot else 0
        ents = [e for e in entries if e.index > prev_index]
        for k, e in enumerate(ents):
            if e.index != prev_index + 1 + k:
                raise ValueError(f"restored entries are not contiguous at index {e.index}")
        log = cls(prev_index, snapshot.term if snapshot else 0, ents, max(commit, prev_index))
        log.snapshot = snapshot
        return log

    # --- positions

    @property
    def prev_index(self) -> int:
        return self.offset - 1

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.prev_term

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``, or None if it is not known."""
        k = index - self.offset
        if 0 <= k < len(self._entries):
            return self._entries[k].term
        if k == -1:
            return self.prev_term
        return None

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as new as ours."""
        lt = self.last_term
        return last_term > lt or (last_term == lt and last_index >= self.last_index)

    # --- reading

    def entry(self, index: int) -> Entry:
        return self._entries[index - self.offset]

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi); with ``max_bytes``, as many as fit (always at least one)."""
        a = lo - self.offset
        b = hi - self.offset
        if a < 0:
            raise IndexError(f"entry {lo} is compacted (log starts at {self.offset})")
        if max_bytes is not None and b - a > 1:
            cum = self._sizes()
            base = cum[a] + a * ENTRY_OVERHEAD
            if cum[b] + b * ENTRY_OVERHEAD - base > max_bytes:
                # The last k whose entries [a, k) fit, found by bisection.
                k = bisect_right(
                    range(a, b + 1),
                    max_bytes,
                    key=lambda k: cum[k] + k * ENTRY_OVERHEAD - base,
                )
                b = max(a + 1, a + k - 1)
        return self._entries[a:b]

    def size_between(self, lo: int, hi: int) -> int:
        """Byte size of entries [lo, hi), counting ENTRY_OVERHEAD each."""
        cum = self._sizes()
        return cum[hi - self.offset] - cum[lo - self.offset] + (hi - lo) * ENTRY_OVERHEAD

    def tail_start(self, last: int, max_bytes: int) -> int:
        """The lowest compaction point at which entries (point, ``last``] hold at
        most ``max_bytes`` (counting ENTRY_OVERHEAD each); ``last`` is in the log."""
        cum = self._sizes()
        b = last - self.offset + 1
        # Sizes shrink as the point moves up: the first point that fits, by bisection.
        a = bisect_left(
            range(b + 1),
            True,
            key=lambda k: cum[b] - cum[k] + (b - k) * ENTRY_OVERHEAD <= max_bytes,
        )
        return self.offset + a - 1

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest index <= ``index`` whose term is <= ``term`` (fast backtracking)."""
        index = min(index, self.last_index)
        while index >= self.offset:
            if self._entries[index - self.offset].term <= term:
                return index
            index -= 1
        return self.prev_index

    def compaction_point(self, index: int, tail: int, tail_bytes: int) -> int:
        """How far to compact for a snapshot at ``index``, keeping a tail behind it.

        The tail is ``tail`` entries, and at most ``tail_bytes`` bytes of them
        when that is set (entries are batches: 200 of them can hold
        gigabytes, all in memory).  Never past what is durable and applied.
        """
        upto = index - tail
        if tail_bytes and upto < index and index >= self.offset:
            upto = max(upto, self.tail_start(index, tail_bytes))
        return min(upto, self.stable, self.applied)

    # --- writing

    def extend(self, entries: list[Entry]) -> None:
        """Append entries that directly follow the last one."""
        if not entries:
            return
        self._entries.extend(entries)
        self.last_index += len(entries)
        cum = self._cum
        if cum is not None:
            # Running totals of data sizes.  A loop: a batch is a few entries,
            # and compiled, setting up accumulate(map(...), initial=...) cost
            # more than it saved.
            total = cum[-1]
            for e in entries:
                total += len(e.data)
                cum.append(total)

    def _sizes(self) -> list[int]:
        cum = self._cum
        if cum is None:
            cum = self._cum = list(accumulate(map(len, map(_data_of, self._entries)), initial=0))
        return cum

    def truncate_after(self, index: int) -> None:
        """Drop every entry after ``index`` (a conflicting suffix)."""
        if index < self.commit:
            raise AssertionError(f"truncating committed entries ({index} < commit {self.commit})")
        k = index + 1 - self.offset
        del self._entries[k:]
        if self._cum is not None:
            del self._cum[k + 1 :]
        self.last_index = index
        self.stable = min(self.stable, index)
        self.handed = min(self.handed, index)

    def find_conflict(self, entries: list[Entry]) -> int:
        """Position in ``entries`` of the first one our log lacks or contradicts.

        Matching is prefix-closed (log matching), so a bisection finds it.
        """
        lo, hi = 0, len(entries)
        if hi == 0 or self.match_term(entries[-1].index, entries[-1].term):
            return hi
        while lo < hi:
            mid = (lo + hi) // 2
            e = entries[mid]
            if self.match_term(e.index, e.term):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def stable_to(self, index: int, term: int) -> None:
        """The runtime made entries up to (index, term) durable."""
        if index > self.stable and self.term(index) == term:
            self.stable = index

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` (covered by a snapshot)."""
        if index < self.offset:
            return
        if index > self.stable or index > self.applied:
            raise AssertionError(f"compacting past stable/applied ({index})")
        term = self.term(index)
        assert term is not None
        k = index + 1 - self.offset
        del self._entries[:k]
        if self._cum is not None:
            del self._cum[:k]
        self.offset = index + 1
        self.prev_term = term

    def reset(self, index: int, term: int) -> None:
        """Replace the whole log by a snapshot ending at (index, term)."""
        self._entries = []
        self._cum = None
        self.last_index = index
        self.offset = index + 1
        self.prev_term = term
        self.stable = index
        self.handed = index
        self.commit = index
        self.applied = index

    def take_unhanded(self) -> list[Entry]:
        """Entries not yet handed to the runtime for persisting."""
        last = self.last_index
        if self.handed >= last:
            return []
        ents = self._entries[self.handed + 1 - self.offset :]
        self.handed = last
        return ents

    def take_committed(self) -> list[Entry]:
        """Committed entries not yet handed to the runtime for applying."""
        if self.applied >= self.commit:
            return []
        ents = self._entries[self.applied + 1 - self.offset : self.commit + 1 - self.offset]
        self.applied = self.commit
        return ents
