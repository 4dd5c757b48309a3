"""Blocking requests (BLPOP and the like): parked on the leader until a later write answers them.

A blocking command is logged like any write (:meth:`redraft.machine.Applier.blocking`).
When it is applied and its ``mutate`` raises :class:`~redraft.machine.Block`,
every node leaves the state as it was; on the leader that logged it the
result is a :class:`Parked`, and :func:`redraft.replies.answer` hands its
reply slot here instead of answering it.  The slot keeps its connection's
place in line (what the client pipelined behind it waits, as in Redis).

A later write that calls :meth:`~redraft.machine.Applier.key_ready` for one
of the keys wakes the requests parked on it: after the pass of applied
entries they are logged again, longest-waiting first, in one batch; one that
blocks again keeps its place.  Each is logged as ``RAFTWOKEN n key...
command...`` (:data:`WOKEN_COMMAND`): the keys it waits on that the pass made
ready, in the order they were first made ready, before the command as it was
first logged.  Every node applies it with those keys as
:meth:`~redraft.machine.Applier.woken_by`, so a command can serve the waiter
from the key that woke it, as Redis 7.0 does.  A log written before this form
holds the bare command, which applies as a first try (no keys).  A timeout
is measured on the leader's clock from when the request first parked, and
answers it with ``Block.reply``.

Parked requests live only on the leader: when it steps down they are
answered with a redirect (the client retries at the new leader, where the
request waits afresh).  A closed connection forgets its requests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from redraft.errors import Redirect
from redraft.machine import Block, Respond
from redraft.replies import Line, Parked, Slot
from redraft.session import Session

Write = Callable[[Line, Slot | None, list[bytes], Respond | None, str], Slot]


PROXY_BLOCKING = (
    "ERR proxy mode: a blocking command that has to wait is served only on a connection "
    "to the leader"
)
"""A request forwarded by a follower may not wait: the link it came on carries every
request that follower forwards (and its Raft messages), in order."""


WOKEN_COMMAND = b"raftwoken"
"""A woken request logged again, ``RAFTWOKEN n key... command...``: a built-in's name, so no
machine may declare it and a client that sends it is refused (only the leader logs it)."""


def woken_form(keys: Sequence[bytes], args: list[bytes]) -> list[bytes]:
    """What a request woken by ``keys`` (in the order they were made ready) is logged again as."""
    return [b"RAFTWOKEN", b"%d" % len(keys), *keys, *args]


def unwrap_woken(args: list[bytes]) -> tuple[tuple[bytes, ...], list[bytes]]:
    """The keys and the command of a logged ``RAFTWOKEN`` (:func:`woken_form`)."""
    n = int(args[1]) if len(args) > 1 and args[1].isdigit() else -1
    if n < 1 or len(args) < n + 3:
        raise ValueError("ERR malformed RAFTWOKEN: RAFTWOKEN n key [key ...] command [arg ...]")
    return tuple(args[2 : 2 + n]), args[2 + n :]


def _forwarded(slot: Slot) -> bool:
    conn = slot.conn
    return isinstance(conn, Session) and bool(conn.peer_id)


class _Waiter:
    __slots__ = ("args", "deadline", "expired", "flying", "keys", "reply", "seq", "slot")

    def __init__(self, slot: Slot, parked: Parked, seq: int, now: float) -> None:
        block = parked.block
        self.slot = slot
        self.args = parked.args
        self.keys = block.keys
        self.reply = block.reply
        self.seq = seq
        self.deadline = now + block.timeout_ms / 1000.0 if block.timeout_ms > 0 else 0.0
        self.expired = False
        self.flying = False
        """Logged again, its entry not applied yet."""

    @property
    def gone(self) -> bool:
        """Answered some other way, or its connection closed."""
        conn = self.slot.conn
        return self.slot.data is not None or (isinstance(conn, Session) and conn.closed)


class Waiters:
    """The requests parked on this node (it leads), by key, in the order they came."""

    def __init__(self, leads: Callable[[], bool], leader: Callable[[], str], write: Write) -> None:
        self._leads = leads
        self._leader = leader
        self._write = write
        """Logs a woken request again (the proposer's write)."""
        self._of_slot: dict[Slot, _Waiter] = {}
        self._by_key: dict[bytes, list[_Waiter]] = {}
        self._woken: dict[bytes, None] = {}
        self._flying: list[_Waiter] = []
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._of_slot)

    def parked(self, block: Block) -> Parked:
        """The result of a blocking command that raised ``block`` while applied."""
        return Parked(block, self.park)

    def park(self, slot: Slot, parked: Parked) -> None:
        """A request of this node's blocked when applied: keep it, or answer it if it cannot wait."""
        if slot.data is not None:
            return
        w = self._of_slot.get(slot)
        if w is None:
            if not self._leads():
                slot.conn.fill_error(slot, Redirect(self._leader()))
                return
            if _forwarded(slot):
                slot.conn.fill_error(slot, ValueError(PROXY_BLOCKING))
                return
            w = _Waiter(slot, parked, next(self._seq), time.monotonic())
            self._of_slot[slot] = w
            for key in w.keys:
                self._by_key.setdefault(key, []).append(w)
            if w.deadline:
                self._add_deadline(w)
        w.flying = False
        if w.expired:
            self._answer(w, w.reply)

    def ready(self, key: bytes) -> None:
        """A write being applied may answer what waits on ``key``.

        Every key is noted, not only those waited on now: a request blocked
        earlier in the same pass is parked only when its entry is finished.
        """
        self._woken[key] = None

    def applied(self) -> None:
        """After a pass of applied entries: forget what was answered, log again what was woken."""
        if self._flying:
            self._flying = [w for w in self._flying if w.flying and not self._drop_gone(w)]
        if not self._woken:
            return
        if not self._by_key:
            self._woken.clear()  # a follower, or nothing waits
            return
        keys = list(self._woken)
        self._woken.clear()
        woken: dict[_Waiter, list[bytes]] = {}
        for key in keys:  # in the order they were made ready
            for w in self._by_key.get(key, ()):
                by = woken.get(w)
                if by is not None:
                    if key not in by:  # a request may name a key twice
                        by.append(key)
                elif not w.flying and not w.gone:
                    woken[w] = [key]
        batch = sorted(woken, key=lambda w: w.seq)
        for w in batch:
            w.flying = True
        for w in batch:
            self._relog(w, woken[w])

    def _relog(self, w: _Waiter, keys: list[bytes]) -> None:
        """Log ``w`` again, with the ``keys`` that woke it (:func:`woken_form`)."""
        slot = w.slot
        try:
            self._write(slot.conn, slot, woken_form(keys, w.args), slot.respond, slot.name)
        except Exception as exc:
            self._forget(w)
            slot.conn.fill_error(slot, exc)
            return
        self._flying.append(w)

    def stepped_down(self) -> None:
        """This node no longer leads: every parked request is answered with a redirect.

        One logged again and still in flight is answered by its proposal.
        """
        waiting = list(self._of_slot.values())
        self._of_slot.clear()
        self._by_key.clear()
        self._woken.clear()
        self._flying = []
        self._deadlines = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        redirect = Redirect(self._leader())
        for w in waiting:
            if not w.flying and not w.gone:
                w.slot.conn.fill_error(w.slot, redirect)

    def forget(self, conn: Session) -> None:
        """``conn`` closed (or was RESET): its parked requests go."""
        for w in [w for w in self._of_slot.values() if w.slot.conn is conn]:
            self._forget(w)

    # --- timeouts

    def _add_deadline(self, w: _Waiter) -> None:
        heap = self._deadlines
        if len(heap) > 2 * len(self._of_slot) + 64:
            # Mostly requests answered before their timeout: drop them.
            live = self._of_slot
            heap[:] = [e for e in heap if live.get(e[2].slot) is e[2]]
            heapq.heapify(heap)
        heapq.heappush(heap, (w.deadline, w.seq, w))
        self._arm()

    def _arm(self) -> None:
        """Have :meth:`_expire` run at the earliest deadline (sooner than armed, if need be)."""
        if not self._deadlines:
            return
        first = self._deadlines[0][0]
        if self._timer is not None:
            if self._timer_at <= first:
                return
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = first
        self._timer = loop.call_later(max(0.0, first - time.monotonic()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = time.monotonic()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, w = heapq.heappop(heap)
            if self._of_slot.get(w.slot) is not w or w.gone:
                continue
            if w.flying:
                w.expired = True  # answered when its entry applies, unless it is served then
            else:
                self._answer(w, w.reply)
        self._arm()

    # --- bookkeeping

    def _answer(self, w: _Waiter, value: Any) -> None:
        self._forget(w)
        conn = w.slot.conn
        if isinstance(conn, Session):
            conn.fill(w.slot, value)

    def _drop_gone(self, w: _Waiter) -> bool:
        if w.gone:
            self._forget(w)
            return True
        return False

    def _forget(self, w: _Waiter) -> None:
        if self._of_slot.pop(w.slot, None) is None:
            return
        for key in w.keys:
            queue = self._by_key.get(key)
            if queue is not None:
                queue.remove(w)
                if not queue:
                    del self._by_key[key]


__all__ = ["WOKEN_COMMAND", "Waiters", "unwrap_woken", "woken_form"]
