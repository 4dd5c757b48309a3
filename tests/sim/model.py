"""What one simulated node keeps besides its core: a durable store and a state machine.

The state machine is a hash chain over every applied entry, so two machines
agree at an index exactly when they applied the same entries up to it, and a
snapshot (the chain value at an index, plus deterministic filler so that it
spans several chunks) can be checked byte for byte when it is restored.
"""

from __future__ import annotations

from hashlib import blake2b

from redraft.raft.core import Restored
from redraft.raft.types import Entry, HardState, SnapshotMeta

ZERO_HASH = bytes(16)
_MAGIC = b"SIMS"
_HEADER = len(_MAGIC) + 8 + 16


def chain(prev: bytes, e: Entry) -> bytes:
    """The machine state after applying ``e`` to the state ``prev``."""
    head = e.index.to_bytes(8, "little") + e.term.to_bytes(8, "little") + bytes((e.kind,))
    return blake2b(prev + head + e.data, digest_size=16).digest()


def encode_snapshot(index: int, state: bytes) -> bytes:
    """The snapshot file of the machine state ``state`` at ``index``."""
    filler_len = 8 + (index * 37) % 150
    filler = (state * (filler_len // 16 + 1))[:filler_len]
    return _MAGIC + index.to_bytes(8, "little") + state + filler


def decode_snapshot(data: bytes) -> tuple[int, bytes]:
    """(index, state) of a snapshot file; ValueError if it is torn or corrupt."""
    if len(data) < _HEADER or data[:4] != _MAGIC:
        raise ValueError(f"not a snapshot file ({len(data)} bytes)")
    index = int.from_bytes(data[4:12], "little")
    state = data[12:28]
    if data != encode_snapshot(index, state):
        raise ValueError(f"snapshot file at index {index} is corrupt ({len(data)} bytes)")
    return index, state


class Machine:
    """A node's applied state: the hash chain and its recent history."""

    __slots__ = ("applied", "base", "history", "state")

    def __init__(self, index: int = 0, state: bytes = ZERO_HASH) -> None:
        self.applied = index
        self.state = state
        self.base = index
        # history[k] is the state at index base + k (for snapshots at past indexes)
        self.history: list[bytes] = [state]

    def push(self, index: int, state: bytes) -> None:
        self.applied = index
        self.state = state
        self.history.append(state)

    def state_at(self, index: int) -> bytes | None:
        k = index - self.base
        if 0 <= k < len(self.history):
            return self.history[k]
        return None

    def trim(self, index: int) -> None:
        """Forget the history before ``index`` (a snapshot now covers it)."""
        k = index - self.base
        if k > 0:
            del self.history[:k]
            self.base = index


class Store:
    """A node's durable state: what survives a crash."""

    __slots__ = ("entries", "files", "hard", "snap", "snap_data")

    def __init__(self, restored: Restored | None = None) -> None:
        r = restored or Restored()
        self.hard: HardState = r.hard_state
        self.snap: SnapshotMeta | None = r.snapshot
        self.snap_data = b""
        # every snapshot file this node ever wrote or installed, by (index, term)
        self.files: dict[tuple[int, int], bytes] = {}
        self.entries: list[Entry] = list(r.entries)

    @property
    def offset(self) -> int:
        return self.snap.index + 1 if self.snap is not None else 1

    @property
    def last_index(self) -> int:
        return self.offset + len(self.entries) - 1

    def term_at(self, index: int) -> int | None:
        k = index - self.offset
        if 0 <= k < len(self.entries):
            return self.entries[k].term
        if k == -1 and self.snap is not None:
            return self.snap.term
        return None

    def covers(self, index: int, term: int | None) -> bool:
        """Whether the durable log (or snapshot) holds the entry at ``index`` with ``term``."""
        if self.snap is not None and index <= self.snap.index:
            return index < self.snap.index or term is None or term == self.snap.term
        t = self.term_at(index)
        return t is not None and (term is None or t == term)

    def append(self, entries: list[Entry]) -> str | None:
        """Persist entries (truncating a conflicting suffix); an error text if they leave a gap."""
        floor = self.offset
        if entries[0].index < floor:
            entries = [e for e in entries if e.index >= floor]
            if not entries:
                return None
        first = entries[0].index
        k = first - floor
        if k > len(self.entries):
            return f"entries from {first} leave a gap after the stored last index {self.last_index}"
        del self.entries[k:]
        self.entries.extend(entries)
        return None

    def install(self, meta: SnapshotMeta, data: bytes, *, keep_tail: bool) -> None:
        """Make a complete snapshot the node's snapshot.

        A snapshot received from a leader replaces the whole log; one the node
        took itself (``keep_tail``) only drops the entries it covers.
        """
        self.files[(meta.index, meta.term)] = data
        if self.snap is not None and meta.index <= self.snap.index:
            return  # a newer snapshot (taken locally meanwhile) already covers it
        keep = meta.index + 1 - self.offset
        # The stored tail is kept only if it continues from the snapshot's entry.
        if keep_tail and 0 <= keep <= len(self.entries) and self.term_at(meta.index) == meta.term:
            del self.entries[:keep]
        else:
            self.entries = []
        self.snap = meta
        self.snap_data = data

    def restored(self) -> Restored:
        return Restored(self.hard, self.snap, list(self.entries))
