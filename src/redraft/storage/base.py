"""The interface every log storage backend implements, and the storage errors.

A store holds the Raft log since the last compaction plus the hard state.
The runtime drives it from one writer thread at a time, with one
exception: :meth:`LogStore.sync` may run in another thread while ``save`` is
called (the once-a-second flusher of durability MEDIUM), so ``sync`` must be
safe against a concurrent ``save`` and must never lose a save that raced
with it.  Stores may run background work (see
:mod:`redraft.storage.fastlog`) and must not assume they run on the event
loop thread.
"""

from __future__ import annotations

import contextlib
import errno
import gc
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from mypy_extensions import mypyc_attr

from redraft.raft.types import Entry, HardState


class StorageError(Exception):
    """A storage problem the node cannot work around by itself."""


DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
"""The errors that mean "no space": the device is full or the user's quota is used up."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a lack of space."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DiskFullError):
            return True
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class DiskFullError(StorageError):
    """A write failed for lack of space (ENOSPC, EDQUOT), and the store is as it was before.

    Unlike every other :class:`StorageError`, this one is not fatal: nothing of
    the failed call is stored, earlier writes are intact, and the same call may
    be made again once space returns.  ``path`` names the file that could not
    grow.  A failed *fsync* is never reported this way, whatever its errno:
    after one, the kernel may have dropped the dirty pages, so the node stops.
    """

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"disk full: write to {path} failed: {cause}")
        self.path = path
        self.cause = cause

    @property
    def reason(self) -> str:
        """What failed, without the leading "disk full": ``write to <path> failed: <error>``."""
        return f"write to {self.path} failed: {self.cause}"


class FsyncError(StorageError):
    """An fsync failed: always fatal, whatever its errno, and never a lack of space.

    After a failed fsync the kernel may have dropped the dirty pages (and
    cleared the error), so a later fsync that succeeds proves nothing: the
    store refuses further writes and the node stops.  ``cause`` is the
    failure, kept as an attribute but deliberately not chained: raised with
    ``from`` an ``OSError(ENOSPC)`` (as a thin-provisioned or network disk may
    report), :func:`is_disk_full` would take it for a full disk.  Raise it
    outside the ``except`` clause that caught the failure, or the failure
    becomes its implicit ``__context__`` and :func:`is_disk_full` sees it there.
    """

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"fsync of {path} failed: {cause}")
        self.path = path
        self.cause = cause


class CorruptLogError(StorageError):
    """The stored log is damaged somewhere other than a torn tail.

    Raised instead of dropping data: an operator has to look at ``path``
    (around byte ``offset`` when known) before the node may start again.
    """

    def __init__(self, path: str, offset: int | None, reason: str) -> None:
        where = f"{path} at byte offset {offset}" if offset is not None else path
        super().__init__(f"corrupt log {where}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a log is loaded.

    Building millions of entries triggers collections that rescan the ever
    growing heap; none of those objects is garbage, and pausing halves the
    load time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(slots=True)
class LoadedLog:
    """What a store holds at startup.

    ``prev_index``/``prev_term`` identify the entry just before the first one
    held: ``(0, 0)`` for a log never compacted, otherwise the point covered by
    a snapshot (after :meth:`LogStore.compact` or :meth:`LogStore.reset`).
    ``entries`` are every stored entry, contiguous from ``prev_index + 1``.
    """

    hard_state: HardState
    prev_index: int
    prev_term: int
    entries: list[Entry] = field(default_factory=list)

    @property
    def first_index(self) -> int:
        return self.prev_index + 1

    @property
    def last_index(self) -> int:
        return self.prev_index + len(self.entries)


@mypyc_attr(allow_interpreted_subclasses=True)  # the other backends, and tests' stand-ins
class LogStore(ABC):
    """Durable storage for the Raft log and hard state.

    Index conventions: an empty log has ``first_index() == last_index() + 1``;
    :meth:`term` also answers for ``first_index() - 1`` (the compaction point),
    whose term is remembered after the entry itself is gone.
    """

    name: ClassVar[str]
    """The backend name used on the command line (``--backend``)."""
    persistent: ClassVar[bool]
    """False for stores that keep nothing across restarts."""

    fsyncs: int
    """How many fsync-equivalent calls this store made (for benchmarks)."""

    @abstractmethod
    def load(self) -> LoadedLog:
        """Everything stored, as it was found when the store was opened or since."""

    @abstractmethod
    def save(self, hard_state: HardState | None, entries: Sequence[Entry], sync: bool) -> None:
        """Persist one batch as atomically as the backend allows.

        ``entries`` must be contiguous.  If the first one's index is at or
        below :meth:`last_index`, the stored log is first truncated from that
        index (a conflicting suffix is replaced).  Its index must lie in
        ``first_index() .. last_index() + 1``.  When ``sync`` is true,
        everything written so far is durable when this returns.
        """

    @abstractmethod
    def sync(self) -> None:
        """Make everything written so far durable (no-op when nothing is pending)."""

    @abstractmethod
    def compact(self, upto: int, term: int) -> None:
        """Forget entries up to and including ``upto`` (covered by a snapshot).

        ``term`` is the term of entry ``upto``.  The entries disappear from
        this store's view at once; the space may be reclaimed later.  Made
        durable by the next sync.  A no-op if ``upto`` is below the first
        index; ``upto`` may not exceed :meth:`last_index`.
        """

    @abstractmethod
    def reset(self, index: int, term: int) -> None:
        """Drop the whole log after installing a snapshot at ``(index, term)``.

        The next entry saved must be ``index + 1``.  Durable on return.
        """

    @abstractmethod
    def first_index(self) -> int:
        """Index of the first stored entry (``last_index() + 1`` when empty)."""

    @abstractmethod
    def last_index(self) -> int:
        """Index of the last stored entry (the compaction point when empty)."""

    @abstractmethod
    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``; None outside ``first_index()-1 .. last_index()``."""

    @abstractmethod
    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries ``lo <= index < hi``; the range must lie within the stored log."""

    @abstractmethod
    def close(self) -> None:
        """Flush what is pending and release files; the store is unusable afterwards."""

    # --- helpers shared by the backends

    def _check_range(self, lo: int, hi: int) -> None:
        first, last = self.first_index(), self.last_index()
        if not first <= lo <= hi <= last + 1:
            raise IndexError(f"entries [{lo}, {hi}) outside the stored log [{first}, {last + 1})")

    def _check_batch(self, entries: Sequence[Entry]) -> None:
        """Reject a batch that would leave a gap or rewrite compacted entries."""
        if not entries:
            return
        start = entries[0].index
        if entries[-1].index != start + len(entries) - 1:
            raise ValueError(
                f"entries are not contiguous: {len(entries)} entries "
                f"from {start} to {entries[-1].index}"
            )
        first, last = self.first_index(), self.last_index()
        if start < first:
            raise ValueError(
                f"entry {start} is at or below the compaction point {first - 1}; "
                "compacted entries cannot be rewritten"
            )
        if start > last + 1:
            raise ValueError(f"entry {start} would leave a gap after the last index {last}")

    def _check_compact(self, upto: int) -> bool:
        """Whether compacting to ``upto`` has anything to do; raise if it is beyond the log."""
        if upto > self.last_index():
            raise ValueError(f"cannot compact to {upto}: the log ends at {self.last_index()}")
        return upto >= self.first_index()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
