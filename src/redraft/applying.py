"""Committed entries applied to the machine, on every node alike.

A NORMAL entry holds a batch of commands (:func:`~redraft.proposals.decode_batch`).
Each is applied by the machine's plain :class:`~redraft.machine.Write` when it
declared one for the name, else by calling its ``command`` again with an
:class:`ApplyingApplier` (``conn`` None), whose ``apply`` runs ``mutate``.
On the node that proposed the entry, the results then answer the clients.

Three framework commands are applied here too, before the machine sees
anything: ``RAFTSESSION`` opens and closes client sessions, ``RAFTSEQ``
runs the command it wraps at most once per session and sequence
(:mod:`redraft.dedup`), and ``RAFTTICK``, which only a leader logs, runs the
machine's :meth:`~redraft.machine.Machine.tick`.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from redraft.dedup import (
    DEFAULT_TTL_MS,
    MAX_TTL_MS,
    SEQ_COMMAND,
    SESSION_COMMAND,
    ClientSessions,
    error_as_reply,
    pack_reply,
    unpack_reply,
)
from redraft.machine import OK, Applier, Command, Conn, Machine, Mutate, Respond
from redraft.proposals import TICK_COMMAND, Proposal, Proposer, Stamps, decode_batch
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
        sessions: ClientSessions,
    ) -> None:
        self.machine = machine
        self.sessions = sessions
        """Client sessions, applied here and kept in every snapshot."""
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
        self.ticks = 0
        """Ticks applied (for RAFTSTATS)."""
        self._tick_failures = 0

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
        routes = self._registry.routes
        m = self._m
        m.stamp = stamp
        m.index = index
        results: list[Any] = []
        for pos, args in enumerate(cmds):
            m.pos = pos
            m.rng = None
            route = routes.get(args[0])
            try:
                # A plain write is applied by its Write, anything else by the
                # machine's command, on every node alike.
                if route is not None and route.kind is WRITE:
                    result = route.fn.apply(m, args)
                else:
                    result = self._other(args)
            except Exception as exc:
                log.debug("command %r failed at index %d: %s", args[:1], index, exc)
                result = exc
            results.append(result)
        m.rng = None
        return results

    def _other(self, args: list[bytes]) -> Any:
        """Apply a command that is not a plain write of the machine's."""
        route = self._registry.route(args[0])
        if route.kind is WRITE:
            return route.fn.apply(self._m, args)
        if route.key == SEQ_COMMAND:
            return self._sequenced(args)
        if route.key == SESSION_COMMAND:
            return self._session(args)
        if route.key == TICK_COMMAND:
            return self._tick()
        return self.machine.command(self._m, None, Command(args))

    def _tick(self) -> None:
        """``RAFTTICK``: the machine's time-driven work, at this entry's time."""
        self.ticks += 1
        try:
            self.machine.tick(self._m)
        except Exception:
            # No one is answered: say it, but not ten times a second.
            self._tick_failures += 1
            n = self._tick_failures
            if n & (n - 1) == 0:
                log.exception("the machine's tick failed (%d times so far)", n)

    def _sequenced(self, args: list[bytes]) -> Any:
        """``RAFTSEQ sid seq ack command...``: the command's reply, applying it only once."""
        sid, seq, ack = int(args[1]), int(args[2]), int(args[3])
        inner = args[4:]
        sessions = self.sessions
        stored = sessions.begin(self._m.stamp, sid, seq, ack)
        if stored is not None:
            return unpack_reply(stored)
        route = self._registry.route(inner[0])
        try:
            if route.key in (SEQ_COMMAND, SESSION_COMMAND, TICK_COMMAND):
                raise ValueError(f"ERR '{route.name}' cannot run inside RAFTSEQ")
            result = self._other(inner)
        except Exception as exc:
            result = error_as_reply(exc, route.name)
        if isinstance(result, BaseException):
            result = error_as_reply(result, route.name)
        sessions.record(sid, seq, pack_reply(result, route.name))
        return result

    def _session(self, args: list[bytes]) -> Any:
        """``RAFTSESSION NEW [ttl-ms]`` (the new id) or ``RAFTSESSION END id``."""
        sub = args[1].lower()
        if sub == b"new":
            ttl = int(args[2]) if len(args) > 2 else DEFAULT_TTL_MS
            return self.sessions.open(self._m.stamp, min(max(ttl, 1), MAX_TTL_MS))
        self.sessions.close(int(args[2]))
        return OK


def _log_membership(e: Entry) -> None:
    mem = Membership.decode(e.data)
    log.info(
        "membership at index %d: voters %s%s",
        e.index,
        ", ".join(sorted(mem.voters)) or "-",
        f"; learners {', '.join(sorted(mem.learners))}" if mem.learners else "",
    )
