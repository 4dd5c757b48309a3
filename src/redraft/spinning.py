"""Busy polling: the event loop stays awake for a moment after this node logs entries.

A replicated write wakes three processes in turn (the leader, a follower,
the leader again), and on a virtual machine waking one that sleeps in
``epoll_wait`` costs tens of microseconds on each side, as much as the
work itself.  Go servers (Finn, Uhaha) avoid it because the Go runtime
spins a while before it parks a thread; an asyncio loop sleeps at once.

So, after logging entries, a node keeps its loop turning (a callback that
re-queues itself, so the loop polls without blocking) until ``window``
seconds pass with no new entries: the acknowledgement, the next request
or the next append is then read as soon as it arrives.  Spinning only
pays while the CPU it burns is idle anyway.  Where other processes wait
for a CPU it slows them, so it is allowed only while the kernel's
pressure stall information (``/proc/pressure/cpu``) shows tasks waiting
for a CPU less than :data:`PRESSURE_LIMIT` of the time; a node whose
spinning pushes that over the limit stops and stays quiet for a while
(doubling each time it happens again, halved by a reading well clear of
the limit while it spins).  Without the file there is no spinning.

Nor does a node spin while the entries it applies carry many writes each
(more than :data:`BATCH_LIMIT` on average since the last reading): that
many clients keep its loop busy anyway, a wake-up saved is shared by all
of their writes, and the polling in between takes a CPU the other nodes
and the clients need.  Under such a load the pressure can hover just
under the limit (50 clients on a 2-CPU VM: 0.24-0.30), and spinning came
and went with it, up to 40 % of a run (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Final

PRESSURE_LIMIT: Final = 0.3
"""Spin only while tasks waited for a CPU less than this share of the time (PSI "some")."""

SAMPLE_EVERY: Final = 0.1
"""Seconds between two readings of the pressure (at most; only while logging)."""

CLEAR_SHARE: Final = 0.7
"""A reading under this share of the limit, taken while spinning, shortens the next quiet."""

QUIET_FIRST: Final = 0.5
QUIET_MAX: Final = 8.0
"""Seconds without spinning after spinning was seen to press the CPU: the first time, and
at most (the quiet doubles each time in a row)."""

BATCH_LIMIT: Final = 4.0
"""Spin only while the entries applied since the last reading carried at most this many
writes each, on average (a lone client's carry one)."""

_PSI_PATH: Final = "/proc/pressure/cpu"


class CpuPressure:
    """The kernel's count of microseconds some task waited for a CPU (PSI ``some total``)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls, path: str = _PSI_PATH) -> CpuPressure | None:
        """The reader of ``path``; None where the kernel keeps no pressure figures."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        reader = cls(fd)
        try:
            reader.stalled_us()
        except (OSError, ValueError):
            reader.close()
            return None
        return reader

    def stalled_us(self) -> int:
        """The total so far (it only grows)."""
        raw = os.pread(self._fd, 256, 0)
        start = raw.index(b"total=") + 6
        end = raw.find(b"\n", start)
        return int(raw[start : end if end >= 0 else len(raw)])

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Spinner:
    """Keeps a loop polling for ``window`` seconds after each :meth:`logged`, while the CPU is free."""

    def __init__(
        self,
        window: float,
        stalled_us: Callable[[], int] | None,
        clock: Callable[[], float] = time.monotonic,
        applied: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        """``applied`` gives the node's totals of entries and of writes applied so far."""
        self.window = window if stalled_us is not None else 0.0
        """0: never spin (switched off, or no pressure figures)."""
        self._stalled_us = stalled_us
        self._applied = applied
        self._entries = 0
        self._writes = 0
        self.light = True
        """The entries applied since the last reading carried few writes each."""
        self._clock = clock
        self._call_soon: Callable[[Callable[[], None]], object] | None = None
        self._until = 0.0
        self.spinning = False
        self.allowed = True
        """The last reading of the pressure allows spinning."""
        self._quiet_until = 0.0
        self._quiet = QUIET_FIRST
        self._spun = False  # spun since the last reading
        self._sampled_at = -1.0
        self._stalled = 0
        self.quiets = 0
        """Times spinning was stopped because it pressed the CPU."""
        self._seconds = 0.0  # spent in spins that ended
        self._started = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Spin on ``loop`` from now on."""
        self._call_soon = loop.call_soon

    def logged(self) -> None:
        """This node just logged entries: more work (an ack, a request, an append) is near."""
        if not self.window or self._call_soon is None:
            return
        now = self._clock()
        if now - self._sampled_at >= SAMPLE_EVERY:
            self._sample(now)
        self._until = now + self.window
        if self.spinning or not (self.allowed and self.light) or now < self._quiet_until:
            return
        self.spinning = self._spun = True
        self._started = now
        self._call_soon(self._step)

    def _step(self) -> None:
        now = self._clock()
        if now < self._until and self.allowed and self.light and self._call_soon is not None:
            self._call_soon(self._step)
        else:
            self._end(now)

    def _end(self, now: float) -> None:
        if self.spinning:
            self.spinning = False
            self._seconds += now - self._started

    def _sample(self, now: float) -> None:
        assert self._stalled_us is not None
        try:
            stalled = self._stalled_us()
        except (OSError, ValueError):
            self.window = 0.0  # the figures went away: spin no more
            self.allowed = False
            return
        self._weigh_batches()
        span = now - self._sampled_at
        share = (stalled - self._stalled) / 1e6 / span
        fresh = self._sampled_at < 0 or span > 10 * SAMPLE_EVERY
        self._sampled_at = now
        self._stalled = stalled
        spun, self._spun = self._spun, self.spinning
        if fresh:
            return  # an idle gap: no recent share to judge by
        self.allowed = share <= PRESSURE_LIMIT
        if not spun:
            return
        if share <= CLEAR_SHARE * PRESSURE_LIMIT:
            # Well clear of the limit while spinning: the next quiet, if
            # any, may be shorter.  Halved, not reset, so that a lucky
            # reading on a loaded machine does not bring probing back.
            self._quiet = max(self._quiet / 2, QUIET_FIRST)
        elif not self.allowed:
            self.quiets += 1
            self._quiet_until = now + self._quiet
            self._quiet = min(2 * self._quiet, QUIET_MAX)

    def _weigh_batches(self) -> None:
        if self._applied is None:
            return
        entries, writes = self._applied()
        if entries > self._entries:
            self.light = writes - self._writes <= BATCH_LIMIT * (entries - self._entries)
        else:
            self.light = True  # nothing applied: no load to speak of
        self._entries, self._writes = entries, writes

    def seconds(self) -> float:
        """Time spent spinning (polling instead of sleeping) over the node's life, up to now."""
        if self.spinning:
            return self._seconds + self._clock() - self._started
        return self._seconds

    def stop(self) -> None:
        """Spin no more (the node closes)."""
        self._call_soon = None
        self._end(self._clock())
