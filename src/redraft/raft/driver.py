"""The one place that decides in what order a Ready's parts are carried out.

A core hands out :class:`~redraft.raft.types.Ready` bundles; what a runtime
does with each part (write to disk, put on the wire, apply to the machine)
is its own business, but the *order* is Raft's, and getting it wrong loses
safety in ways that only show under crashes.  :class:`ReadyDriver` owns that
order; a runtime implements :class:`ReadyIO` and calls :meth:`ReadyDriver.run`
after feeding the core.  The node and the deterministic simulator share this
driver, so the simulator checks the node's ordering, not a copy of it.

The order, for each Ready in turn:

1. ``messages`` are queued at once: they depend on nothing unwritten (a
   leader's replication traffic; it writes its own log in parallel).
2. If the Ready has something to persist, or earlier ones are still being
   persisted (Readies become durable in order), queued messages are flushed
   first (followers start on the entries while the leader writes them) and
   persistence starts.  Once it is durable (at once, or later through
   :meth:`ReadyDriver.durable`): ``messages_after_persist`` are queued (votes
   and acknowledgements must not outlive a crash that forgot them), the
   snapshot is installed into the machine, and the core is told
   (:meth:`RaftCore.advance <redraft.raft.core.RaftCore.advance>`).
3. ``committed`` entries are applied, after a flush (acknowledgements go out
   before the machine works).  While a snapshot to install has been handed
   out and is not installed yet, committed entries are held: applying them
   to the machine as it was before the snapshot would apply them to the
   wrong state, and the install would then throw them away.  They are
   applied right after the install (those past its index).
4. Confirmed reads and dropped reads are reported.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

from redraft.raft.types import Entry, Message, ReadState, Ready, SnapshotMeta

if TYPE_CHECKING:
    from redraft.raft.core import RaftCore


class ReadyIO(Protocol):
    """What a runtime does with the parts of a Ready; the driver calls these in Raft's order."""

    @property
    def persisting(self) -> bool:
        """Whether earlier Readies are still being persisted."""
        ...

    def send(self, msgs: list[Message]) -> None:
        """Queue messages to send."""
        ...

    def flush(self) -> None:
        """Write queued messages out now (a hint: may do nothing)."""
        ...

    def persist(self, rd: Ready) -> bool:
        """Start persisting ``rd`` (hard state, chunks, install, entries); True if already durable.

        When it returns False, the runtime calls :meth:`ReadyDriver.durable`
        once ``rd`` is durable (Readies in the order they were persisted),
        then :meth:`ReadyDriver.run`.
        """
        ...

    def install(self, meta: SnapshotMeta) -> None:
        """``rd.install_snapshot`` is durable: restore the machine from it."""
        ...

    def apply(self, entries: list[Entry]) -> None:
        """Apply committed entries, in order."""
        ...

    def reads_ready(self, reads: list[ReadState]) -> None:
        """Serve each read once the machine has applied its index."""
        ...

    def reads_dropped(self, tokens: list[object]) -> None:
        """Fail these reads: this node stopped leading before confirming them."""
        ...


class ReadyDriver:
    """Carries out a core's Readies through a :class:`ReadyIO`.  See the module docstring."""

    __slots__ = ("_installs", "core", "io")

    def __init__(self, core: RaftCore, io: ReadyIO) -> None:
        self.core = core
        self.io = io
        # Snapshots handed out and not yet installed, oldest first, each with
        # the committed entries held until it is (those handed out after it).
        self._installs: deque[tuple[SnapshotMeta, list[Entry]]] = deque()

    @property
    def installing(self) -> bool:
        """Whether a snapshot was handed out and is not installed yet (applies are held)."""
        return bool(self._installs)

    def run(self) -> None:
        """Carry out every Ready the core has now.

        Messages queued by :meth:`ReadyIO.send` may still be queued when this
        returns; the runtime writes them out at the end of its turn.
        """
        io = self.io
        ready = self.core.ready
        installs = self._installs
        while (rd := ready()) is not None:
            if rd.messages:
                io.send(rd.messages)
            if rd.install_snapshot is not None:
                installs.append((rd.install_snapshot, []))
            if rd.needs_persist() or io.persisting:
                io.flush()
                if io.persist(rd):
                    self.durable(rd)
            else:
                self.durable(rd)
            if rd.committed:
                io.flush()  # acknowledgements before the apply
                if installs:
                    installs[-1][1].extend(rd.committed)
                else:
                    io.apply(rd.committed)
            if rd.reads:
                io.reads_ready(rd.reads)
            if rd.dropped_reads:
                io.reads_dropped(rd.dropped_reads)

    def durable(self, rd: Ready) -> None:
        """``rd`` is durable (its :meth:`ReadyIO.persist` returned False earlier).

        Readies must be reported in the order they were persisted.  Call
        :meth:`run` afterwards: the core may have more to do.
        """
        io = self.io
        if rd.messages_after_persist:
            io.send(rd.messages_after_persist)
        meta = rd.install_snapshot
        if meta is not None:
            io.install(meta)
            installed, held = self._installs.popleft()
            assert installed is meta, "Readies must be reported durable in order"
            after = [e for e in held if e.index > meta.index]
            if after:
                io.apply(after)
        self.core.advance(rd)


__all__ = ["ReadyDriver", "ReadyIO"]
