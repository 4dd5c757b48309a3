"""Committed entries applied to the machine, on every node alike.

A NORMAL entry holds a batch of commands (:func:`~redraft.proposals.decode_batch`).
Each is applied by the machine's plain :class:`~redraft.machine.Write` when it
declared one for the name, else by calling its ``command`` again with an
:class:`ApplyingApplier` (``conn`` None), whose ``apply`` runs ``mutate``.
On the node that proposed the entry, the results then answer the clients.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from redraft.machine import Applier, Command, Conn, Machine, Mutate, Respond
from redraft.proposals import Proposal, Proposer, Stamps, decode_batch
from redraft.raft.types import Entry, EntryKind, Membership
from redraft.registry import WRITE, Registry

log = logging.getLogger("redraft")

_NORMAL = EntryKind.NORMAL


class ApplyingApplier(Applier):
    """``m`` while a committed entry is applied: runs ``mutate`` deterministically."""

    __slots__ = ("index", "pos", "rng", "stamp")

    def __init__(self) -> None:
        self.stamp = 0
        self.index = 0
        self.pos = 0
        self.rng: random.Random | None = None

    def apply(
        self, conn: Conn | None, cmd: Command, mutate: Mutate | None, respond: Respond | None
    ) -> Any:
        if mutate is None:
            return None
        return mutate()

    def now_ns(self) -> int:
        return self.stamp

    def random(self) -> random.Random:
        rng = self.rng
        if rng is None:
            # Seeded by the command's place in the log: the same on every node.
            rng = self.rng = random.Random((self.index << 24) | self.pos)
        return rng


class Applying:
    """Applies committed entries to the machine and hands results to their proposals."""

    def __init__(
        self,
        machine: Machine,
        proposer: Proposer,
        stamps: Stamps,
        registry: Registry,
        applied: int,
    ) -> None:
        self.machine = machine
        self.proposer = proposer
        self.stamps = stamps
        self._registry = registry
        self._m = ApplyingApplier()
        self.applied = applied
        """The index of the last entry applied (or restored from a snapshot)."""
        self.bytes_since_snapshot = 0
        """Log bytes applied since the last snapshot (a trigger for the next one)."""
        self.entries = 0
        self.commands = 0

    def apply(self, entries: list[Entry]) -> None:
        """Apply committed ``entries`` in order."""
        take = self.proposer.take
        pending = self.proposer.pending
        for e in entries:
            p = take(e.index, e.term) if pending else None
            if e.kind == _NORMAL:
                self._apply_batch(e, p)
            else:
                if e.kind == EntryKind.CONFIG:
                    _log_membership(e)
                if p is not None:
                    p.finish([None], None)
            self.applied = e.index
        self.entries += len(entries)

    def _apply_batch(self, e: Entry, p: Proposal | None) -> None:
        try:
            if p is not None and p.cmds is not None:
                stamp, cmds = p.stamp, p.cmds
            else:
                stamp, cmds = decode_batch(e.data)
        except Exception as exc:
            # Every node decodes the same bytes the same way, so skipping
            # keeps them identical; it can only come from a member writing
            # garbage, which is worth shouting about.
            log.error("skipping undecodable entry %d: %s", e.index, exc)
            if p is not None:
                p.finish(None, Exception("ERR the command could not be decoded"))
            return
        self.stamps.seen(stamp)
        results = self._run(stamp, e.index, cmds)
        self.commands += len(cmds)
        self.bytes_since_snapshot += len(e.data)
        if p is not None:
            p.finish(results, None)

    def _run(self, stamp: int, index: int, cmds: list[list[bytes]]) -> list[Any]:
        machine = self.machine
        routes = self._registry.routes
        route_of = self._registry.route
        m = self._m
        m.stamp = stamp
        m.index = index
        results: list[Any] = []
        for pos, args in enumerate(cmds):
            m.pos = pos
            m.rng = None
            try:
                # A plain write is applied by its Write, anything else by the
                # machine's command, on every node alike.
                route = routes.get(args[0]) or route_of(args[0])
                if route.kind is WRITE:
                    result = route.fn.apply(m, args)
                else:
                    result = machine.command(m, None, Command(args))
            except Exception as exc:
                log.debug("command %r failed at index %d: %s", args[:1], index, exc)
                result = exc
            results.append(result)
        m.rng = None
        return results


def _log_membership(e: Entry) -> None:
    mem = Membership.decode(e.data)
    log.info(
        "membership at index %d: voters %s%s",
        e.index,
        ", ".join(sorted(mem.voters)) or "-",
        f"; learners {', '.join(sorted(mem.learners))}" if mem.learners else "",
    )
