"""The in-memory log, used on its own as the non-persistent ``memory`` backend
and as the working copy of the ``fastlog`` backend (so it is compiled with
the hot modules: fastlog calls it on every save)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from mypy_extensions import mypyc_attr

from redraft.raft.types import Entry, HardState
from redraft.storage.base import LoadedLog, LogStore


class MemLog:
    """A log held in a Python list, with the compaction point and hard state.

    Entries are kept by reference: callers must not mutate an entry once it
    has been handed over.
    """

    __slots__ = ("entries", "hard_state", "prev_index", "prev_term")

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.prev_index = 0
        self.prev_term = 0
        self.entries: list[Entry] = []

    @property
    def last_index(self) -> int:
        return self.prev_index + len(self.entries)

    def append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries``, first truncating any stored suffix they overlap."""
        if not entries:
            return
        k = entries[0].index - self.prev_index - 1
        if k < len(self.entries):
            del self.entries[k:]
        self.entries.extend(entries)

    def compact(self, upto: int, term: int) -> None:
        k = upto - self.prev_index
        if k <= 0:
            return
        del self.entries[:k]
        self.prev_index = upto
        self.prev_term = term

    def reset(self, index: int, term: int) -> None:
        self.entries = []
        self.prev_index = index
        self.prev_term = term

    def term(self, index: int) -> int | None:
        k = index - self.prev_index - 1
        if 0 <= k < len(self.entries):
            return self.entries[k].term
        if k == -1:
            return self.prev_term
        return None

    def slice(self, lo: int, hi: int) -> list[Entry]:
        base = self.prev_index + 1
        return self.entries[lo - base : hi - base]

    def loaded(self) -> LoadedLog:
        return LoadedLog(self.hard_state, self.prev_index, self.prev_term, list(self.entries))


@mypyc_attr(allow_interpreted_subclasses=True)  # tests' stand-ins
class MemoryStore(LogStore):
    """Keeps the log in memory only: everything is lost on restart."""

    name: ClassVar[str] = "memory"
    persistent: ClassVar[bool] = False

    def __init__(self) -> None:
        self._log = MemLog()
        self.fsyncs = 0

    def load(self) -> LoadedLog:
        return self._log.loaded()

    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        self._check_batch(entries)
        if hard_state is not None:
            self._log.hard_state = hard_state
        self._log.append(entries)

    def sync(self) -> None:
        pass

    def compact(self, upto: int, term: int) -> None:
        if self._check_compact(upto):
            self._log.compact(upto, term)

    def reset(self, index: int, term: int) -> None:
        self._log.reset(index, term)

    def first_index(self) -> int:
        return self._log.prev_index + 1

    def last_index(self) -> int:
        return self._log.last_index

    def term(self, index: int) -> int | None:
        return self._log.term(index)

    def entries(self, lo: int, hi: int) -> list[Entry]:
        self._check_range(lo, hi)
        return self._log.slice(lo, hi)

    def close(self) -> None:
        pass
