"""Writes on their way into the log: this turn's batch, and proposals waiting to commit.

Everything written in one turn of the event loop goes into the log as one
entry (or a few, when there are many: ``max_batch_commands`` each), which
costs one append, one fsync and one message per follower.  Adaptive
batching holds new writes while earlier batches are uncommitted: under
light load a write is proposed at once, under heavy load writes pile up for
one round trip and go out together.

A proposal remembers the reply slots of its commands until the entry is
applied (:meth:`Proposer.take`) or times out, or the leadership it was
proposed under is lost.

A machine's tick (:meth:`redraft.machine.Machine.tick`) is logged the same
way: a ``RAFTTICK`` command appended after the turn's client writes, in the
same entry (or alone when there are none), stamped like them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any, Final

import msgpack

from redraft.errors import Redirect, Uncertain
from redraft.machine import Respond
from redraft.options import Options
from redraft.raft.core import RaftCore
from redraft.raft.types import ChangeType, NotLeader, ProposalDropped, Role
from redraft.replies import WRITE, Line, Slot, answer, fail

log = logging.getLogger("redraft")

_LEADER: Final = Role.LEADER

Done = Callable[[BaseException | None], None]


class Stamps:
    """The leader's clock as the log carries it: a stamp is never earlier than any before it."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0
        """The newest stamp proposed or applied on this node."""

    def next(self) -> int:
        """A stamp for a batch proposed now."""
        now = time.time_ns()
        if now > self.last:
            self.last = now
        return self.last

    def seen(self, stamp: int) -> None:
        """An entry stamped ``stamp`` was applied."""
        if stamp > self.last:
            self.last = stamp


TICK_COMMAND: Final = b"rafttick"
"""The command a leader logs as a machine's tick, ``[b"RAFTTICK"]``: a built-in's name, so
no machine may declare it and a client that sends it is refused (only the leader logs it)."""


def _fast_packer() -> Callable[[int, list[list[bytes]]], bytes | None] | None:
    """The C batch packer, or None (built without a C compiler, or REDRAFT_PURE_PYTHON set)."""
    if os.environ.get("REDRAFT_PURE_PYTHON"):
        return None
    try:
        from redraft._cbatch import pack_batch
    except ImportError:
        return None
    return pack_batch


def encode_batch(stamp_ns: int, cmds: list[list[bytes]]) -> bytes:
    """A NORMAL entry's data: ``[stamp_ns, [args, args, ...]]`` in msgpack."""
    if _pack_batch is not None:
        fast = _pack_batch(stamp_ns, cmds)
        if fast is not None:
            return fast
    data: bytes = _pack((stamp_ns, cmds))
    return data


# Shared rather than one Packer (and buffer) per call, as in transport.codec.
_pack: Final = msgpack.Packer(use_bin_type=True).pack

# The same bytes for a batch of lists of bytes, without msgpack's dispatch on
# the type of every argument (about a tenth of a leader's instructions per write).
_pack_batch: Final[Callable[[int, list[list[bytes]]], bytes | None] | None] = _fast_packer()


def decode_batch(data: bytes) -> tuple[int, list[list[bytes]]]:
    """The stamp and commands of a NORMAL entry."""
    stamp, cmds = msgpack.unpackb(data, raw=True, use_list=True)
    return stamp, cmds


@dataclass(slots=True, init=False)
class Proposal:
    """A log entry this node proposed, waiting to be applied."""

    term: int
    deadline: float
    waiters: list[Slot] | None
    """The reply slots of the batch's client commands, in order."""
    on_done: Done | None
    cmds: list[list[bytes]] | None
    """The batch's commands as decoding the entry would give them, when known."""
    stamp: int
    tick: bool
    """The entry ends with a tick, which no one waits for."""

    def __init__(
        self,
        term: int,
        deadline: float,
        waiters: list[Slot] | None,
        on_done: Done | None = None,
        cmds: list[list[bytes]] | None = None,
        stamp: int = 0,
        tick: bool = False,
    ) -> None:
        # Written out, not generated: see raft.types.HardState.
        self.term = term
        self.deadline = deadline
        self.waiters = waiters
        self.on_done = on_done
        self.cmds = cmds
        self.stamp = stamp
        self.tick = tick

    def finish(self, results: list[Any] | None, exc: BaseException | None) -> None:
        """Answer whoever waits: the results, one per command, or the error ``exc``."""
        if self.on_done is not None:
            self.on_done(exc)
        if self.waiters is None:
            return
        if self.tick and results:
            results = results[:-1]
        if exc is None:
            answer(self.waiters, results)
        else:
            fail(self.waiters, exc)


class Proposer:
    """This turn's batch of writes and the proposals not yet applied (leader side)."""

    def __init__(
        self, core: RaftCore, options: Options, stamps: Stamps, wake: Callable[[], None]
    ) -> None:
        self.core = core
        self.options = options
        self._inflight = options.inflight_batches()
        self.stamps = stamps
        self._wake = wake
        """Asks for a pass at the end of this loop turn (which calls :meth:`flush`)."""
        self.batch: list[list[bytes]] = []
        self.waiters: list[Slot] = []
        # Whether every command of the batch is a list of bytes (what the
        # parser makes), so that the leader may apply it without decoding.
        self._exact = True
        self.tick = False
        """A tick is to be logged with this turn's batch (see :meth:`add_tick`)."""
        self.pending: dict[int, Proposal] = {}
        self.last_proposed = 0
        self.proposals = 0
        """Entries proposed (for RAFTSTATS)."""
        self.refused: BaseException | None = None
        """Set while this node may not append (its disk is full): the turn's writes are
        answered with it, unless a leadership transfer holds them for the next leader."""

    # --- writes

    def write(
        self, conn: Line, slot: Slot | None, args: list[bytes], respond: Respond | None, name: str
    ) -> Slot:
        """Queue a client's write for this turn's batch; the slot its reply will fill."""
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        if slot is None:
            slot = conn.new_slot(WRITE)
        slot.respond = respond
        slot.name = name
        self.batch.append(args)
        self.waiters.append(slot)
        # A machine's own m.apply may log arguments of other types (str,
        # int), which only decoding the entry turns into what every node sees.
        self._exact = False
        self._wake()
        return slot

    def open_run(self, slot: Slot) -> list[list[bytes]] | None:
        """Queue ``slot`` for the batch; the list a run of plain writes appends to.

        None if this node does not lead (``slot`` is not queued).
        """
        if self.core.role is not _LEADER:
            return None
        self.waiters.append(slot)
        self._wake()
        return self.batch

    def add_tick(self) -> None:
        """Log a tick with this turn's batch (at most one per batch); nothing if this node does not lead."""
        if self.core.role is _LEADER and not self.tick:
            self.tick = True
            self._wake()

    def may_propose(self) -> bool:
        """Adaptive batching: hold new writes while earlier batches are uncommitted.

        A refusal is answered at once, whatever is in flight.
        """
        if self.refused is not None:
            return True
        return self.core.commit_index + self._inflight > self.last_proposed

    def flush(self) -> None:
        """Propose this turn's writes (and tick) as one entry (or a few, when many)."""
        cmds = self.batch
        tick = self.tick
        if not cmds and not tick:
            return
        core = self.core
        if core.role != _LEADER:
            self.fail_batch(Redirect(core.leader))
            return
        if self.refused is not None and not core.lead_transferee:
            self.fail_batch(self.refused)
            return
        stamp = self.stamps.next()
        parts = self._parts(cmds, self.waiters) if cmds else []
        if tick:
            self._add_tick(parts)
        payloads = [encode_batch(stamp, part) for part, _ in parts]
        try:
            first = core.propose(payloads)
        except ProposalDropped:
            return  # held until the leadership transfer ends (the next tick retries)
        except NotLeader as exc:
            self.fail_batch(Redirect(exc.leader))
            return
        exact = self._exact
        self.batch = []
        self.waiters = []
        self._exact = True
        self.tick = False
        deadline = monotonic() + self.options.write_timeout
        term = core.term
        last = len(parts) - 1
        for k, (part, group) in enumerate(parts):
            # The leader applies its own proposal from these lists rather
            # than decoding the entry, when they are what decoding gives.
            self.pending[first + k] = Proposal(
                term, deadline, group, None, part if exact else None, stamp, tick and k == last
            )
        self.last_proposed = first + len(payloads) - 1
        self.proposals += len(payloads)

    def _parts(
        self, cmds: list[list[bytes]], waiters: list[Slot]
    ) -> list[tuple[list[list[bytes]], list[Slot]]]:
        """The batch cut into entries of at most ``max_batch_commands`` commands."""
        step = self.options.max_batch_commands
        if len(waiters) == len(cmds):
            return [(cmds[k : k + step], waiters[k : k + step]) for k in range(0, len(cmds), step)]
        # Some slots answer a run of writes (at most ``step`` of them),
        # which one entry must hold whole: cut between slots only.
        parts: list[tuple[list[list[bytes]], list[Slot]]] = []
        lo = 0
        group: list[Slot] = []
        size = 0
        for slot in waiters:
            n = slot.commands
            if size + n > step and group:
                parts.append((cmds[lo : lo + size], group))
                lo += size
                group = []
                size = 0
            group.append(slot)
            size += n
        parts.append((cmds[lo : lo + size], group))
        return parts

    def _add_tick(self, parts: list[tuple[list[list[bytes]], list[Slot]]]) -> None:
        """Append the tick to the last entry of ``parts``, or as an entry of its own when full."""
        # Last, so that the slots' commands keep their places (a write run
        # knows its commands by their position in the batch).
        if parts and len(parts[-1][0]) < self.options.max_batch_commands:
            parts[-1][0].append([b"RAFTTICK"])  # a slice of the batch: ours to extend
        else:
            parts.append(([[b"RAFTTICK"]], []))

    def fail_batch(self, exc: BaseException) -> None:
        """Answer every write of this turn's batch with ``exc`` (it will not be proposed)."""
        waiters = self.waiters
        self.batch = []
        self.waiters = []
        self._exact = True
        self.tick = False
        fail(waiters, exc)

    # --- membership changes

    def propose_config(self, change: ChangeType, node: str, on_done: Done) -> None:
        """Propose a membership change; ``on_done`` runs once it commits or fails."""
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        if self.refused is not None:
            raise self.refused
        index = core.change_membership(change, node)
        self.pending[index] = Proposal(
            core.term, monotonic() + self.options.write_timeout, None, on_done
        )
        self._wake()

    # --- proposals leaving

    def take(self, index: int, term: int) -> Proposal | None:
        """The proposal at ``index``, now being applied; None if it was not ours (or was replaced)."""
        p = self.pending.pop(index, None)
        if p is not None and p.term != term:
            p.finish(
                None,
                Exception(
                    "ERR leadership changed before the command committed; it was not applied"
                ),
            )
            return None
        return p

    def expire(self, now: float) -> None:
        """Fail the proposals past their deadline: their outcome is unknown."""
        expired = [i for i, p in self.pending.items() if p.deadline <= now]
        for i in expired:
            self.pending.pop(i).finish(
                None,
                Uncertain("TIMEOUT the command did not commit in time; it may still be applied"),
            )

    def replaced(self, upto: int) -> None:
        """A snapshot up to ``upto`` replaced the log: proposals at or below it will never be applied here."""
        for idx in [i for i in self.pending if i <= upto]:
            self.pending.pop(idx).finish(
                None, Uncertain("TIMEOUT outcome unknown: replaced by a snapshot")
            )
