"""Committed entries applied to the machine, on every node alike.

A NORMAL entry holds a batch of commands (:func:`~redraft.proposals.decode_batch`).
Each is applied by the machine's plain :class:`~redraft.machine.Write` when it
declared one for the name, else by calling its ``command`` again with an
:class:`ApplyingApplier` (``conn`` None), whose ``apply`` runs ``mutate``.
On the node that proposed the entry, the results then answer the clients.

Framework commands are applied here too, before the machine sees
anything: ``RAFTSESSION`` opens and closes client sessions, ``RAFTSEQ``
runs the command it wraps at most once per session and sequence
(:mod:`redraft.dedup`), ``RAFTTICK``, which only a leader logs, runs the
machine's :meth:`~redraft.machine.Machine.tick`, and ``RAFTWOKEN``, which
only a leader logs, runs a woken blocking request again with the keys that
woke it (:mod:`redraft.waiting`, :meth:`~redraft.machine.Applier.woken_by`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, Final

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
from redraft.machine import OK, Applier, Block, Command, Conn, Machine, Mutate, Respond
from redraft.proposals import TICK_COMMAND, Proposal, Proposer, Stamps, decode_batch
from redraft.raft.types import Entry, EntryKind, Membership
from redraft.registry import READ, WRITE, Registry
from redraft.replies import Parked
from redraft.resp import run_end
from redraft.transaction import EXEC_COMMAND, run_exec
from redraft.waiting import WOKEN_COMMAND, Waiters, unwrap_woken

log = logging.getLogger("redraft")

_NORMAL: Final = EntryKind.NORMAL


class ApplyingApplier(Applier):
    """``m`` while a committed entry is applied: runs ``mutate`` deterministically."""

    __slots__ = ("in_tx", "index", "pos", "rng", "stamp", "sub", "waiters", "woken")

    def __init__(self, waiters: Waiters | None = None) -> None:
        self.stamp = 0
        self.index = 0
        self.pos = 0
        self.sub = 0
        """The command's place inside a transaction (0 outside one)."""
        self.rng: random.Random | None = None
        self.in_tx = False
        """Applying a transaction's commands: a blocking one answers at once."""
        self.waiters = waiters
        """The requests this node parked (None: nothing ever parks, as in tests)."""
        self.woken: tuple[bytes, ...] = ()
        """While a ``RAFTWOKEN`` applies: the keys that woke its request."""

    def apply(
        self, conn: Conn | None, cmd: Command, mutate: Mutate | None, respond: Respond | None
    ) -> Any:
        if self.in_tx:
            # No slot waits for this command's reply: EXEC's array does.
            value = mutate() if mutate is not None else None
            return respond(value) if respond is not None else value
        if mutate is None:
            return None
        return mutate()

    def blocking(
        self, conn: Conn | None, cmd: Command, mutate: Mutate, respond: Respond | None
    ) -> Any:
        try:
            value = mutate()
        except Block as block:
            waiters = self.waiters
            if self.in_tx:
                return block.multi_reply  # inside MULTI nothing waits, as in Redis
            if waiters is None:
                return block.reply
            return waiters.parked(block)
        return respond(value) if self.in_tx and respond is not None else value

    def key_ready(self, key: bytes) -> None:
        waiters = self.waiters
        if waiters is not None:
            waiters.ready(key)

    def woken_by(self) -> tuple[bytes, ...]:
        return self.woken

    def now_ns(self) -> int:
        return self.stamp

    def random(self) -> random.Random:
        rng = self.rng
        if rng is None:
            # Seeded by the command's place in the log: the same on every node.
            rng = self.rng = random.Random(((self.index << 24) | self.pos) + (self.sub << 48))
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
        waiters: Waiters | None = None,
    ) -> None:
        self.machine = machine
        self.sessions = sessions
        """Client sessions, applied here and kept in every snapshot."""
        self.proposer = proposer
        self.stamps = stamps
        self._registry = registry
        self._m = ApplyingApplier(waiters)
        self.applied = applied
        """The index of the last entry applied (or restored from a snapshot)."""
        self.bytes_since_snapshot = 0
        """Log bytes applied since the last snapshot (a trigger for the next one)."""
        self.entries = 0
        self.commands = 0
        self.ticks = 0
        """Ticks applied (for RAFTSTATS)."""
        self._tick_failures = 0
        self.framework: dict[bytes, Callable[[list[bytes]], Any]] = {
            SEQ_COMMAND: self._sequenced,
            SESSION_COMMAND: self._session,
            TICK_COMMAND: self._tick,
            EXEC_COMMAND: self._exec,
            WOKEN_COMMAND: self._woken,
        }
        """The framework's own logged commands (built-in names), applied here, by name."""

    def apply(self, entries: list[Entry]) -> None:
        """Apply committed ``entries`` in order."""
        take = self.proposer.take
        pending = self.proposer.pending
        try:
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
        finally:
            # Whatever ran may have replaced the machine's dicts (FLUSHALL).
            self._registry.state_changed()
        self.entries += len(entries)

    def restored(self) -> None:
        """The machine was restored from a snapshot: it holds new state."""
        self._registry.state_changed()

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
        n = len(cmds)
        pos = 0
        while pos < n:
            args = cmds[pos]
            m.pos = pos
            m.rng = None
            route = routes.get(args[0])
            if route is not None and route.kind is WRITE:
                # A plain write is applied by its Write, on every node alike:
                # a run of them (a pipeline of SETs) in one go.
                end = run_end(cmds, pos + 1, n, routes, route)
                if end - pos > 1 and route.fn.apply_many is not None:
                    results += _apply_run(route.fn.apply_many, m, cmds[pos:end], index)
                else:
                    _apply_each(route.fn.apply, m, cmds, pos, end, results)
                pos = end
                continue
            pos += 1
            try:
                # Anything else by the machine's command (or the framework's).
                result = self._other(args)
                if type(result) is Parked and not result.args:
                    result.args = args  # logged again, as it is, when woken
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
        framework = self.framework.get(route.key)
        if framework is not None:
            return framework(args)
        return self.machine.command(self._m, None, Command(args))

    def _tick(self, args: list[bytes]) -> None:
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

    def _exec(self, args: list[bytes]) -> Any:
        """A transaction (MULTI/EXEC): every command applied in turn, with nothing between."""
        m = self._m
        m.in_tx = True
        try:
            return run_exec(args, self.machine, self._in_tx)
        finally:
            m.in_tx = False
            m.sub = 0
            m.rng = None

    def _in_tx(self, cmd: list[bytes]) -> Any:
        """One command of a transaction: a plain read as well as anything logged."""
        m = self._m
        m.sub += 1
        m.rng = None
        route = self._registry.route(cmd[0])
        if route.kind is READ:
            return route.fn(m, cmd)
        if route.key in _NOT_IN_TX:
            raise ValueError(f"ERR '{route.name}' cannot run inside a transaction")
        return self._other(cmd)

    def _woken(self, args: list[bytes]) -> Any:
        """``RAFTWOKEN n key... command...``: a woken request, run with ``m.woken_by()`` its keys."""
        keys, inner = unwrap_woken(args)
        route = self._registry.route(inner[0])
        if route.key in _NOT_WOKEN:
            raise ValueError(f"ERR '{route.name}' cannot run inside RAFTWOKEN")
        m = self._m
        m.woken = keys
        try:
            result = self._other(inner)
        finally:
            m.woken = ()
        if type(result) is Parked:
            result.args = inner  # woken again, it is logged with the keys that woke it then
        return result

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
            if route.key in (SEQ_COMMAND, SESSION_COMMAND, TICK_COMMAND, WOKEN_COMMAND):
                raise ValueError(f"ERR '{route.name}' cannot run inside RAFTSEQ")
            result = self._other(inner)
        except Exception as exc:
            result = error_as_reply(exc, route.name)
        if type(result) is Parked:
            return result  # not answered yet: it runs again, under the same sequence
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


_NOT_IN_TX: Final = frozenset(
    (SEQ_COMMAND, SESSION_COMMAND, TICK_COMMAND, EXEC_COMMAND, WOKEN_COMMAND)
)
_NOT_WOKEN: Final = _NOT_IN_TX - {SEQ_COMMAND}
"""What a woken request cannot be: only a client's command parks, bare or in ``RAFTSEQ``."""


def _apply_each(
    apply: Callable[[Applier, list[bytes]], Any],
    m: ApplyingApplier,
    cmds: list[list[bytes]],
    pos: int,
    end: int,
    results: list[Any],
) -> None:
    """Apply ``cmds[pos:end]``, one write's, one by one; each result (or exception) to ``results``."""
    for i in range(pos, end):
        m.pos = i
        m.rng = None
        try:
            results.append(apply(m, cmds[i]))
        except Exception as exc:
            log.debug("command %r failed at index %d: %s", cmds[i][:1], m.index, exc)
            results.append(exc)


def _apply_run(
    apply_many: Callable[[Applier, list[list[bytes]]], list[Any]],
    m: Applier,
    run: list[list[bytes]],
    index: int,
) -> list[Any]:
    """A machine's ``apply_many`` of ``run``: one result per command, whatever it does."""
    try:
        results = apply_many(m, run)
    except Exception as exc:
        log.debug("a run of %r failed at index %d: %s", run[0][:1], index, exc)
        return [exc] * len(run)
    if type(results) is not list or len(results) != len(run):
        # Each reply must reach its own client: answer none rather than misplace one.
        log.error(
            "apply_many of %r gave %s results for %d commands (index %d)",
            run[0][:1],
            len(results) if isinstance(results, list) else type(results).__name__,
            len(run),
            index,
        )
        return [
            RuntimeError("ERR the machine's apply_many gave the wrong number of results")
        ] * len(run)
    return results


def _log_membership(e: Entry) -> None:
    mem = Membership.decode(e.data)
    log.info(
        "membership at index %d: voters %s%s",
        e.index,
        ", ".join(sorted(mem.voters)) or "-",
        f"; learners {', '.join(sorted(mem.learners))}" if mem.learners else "",
    )
