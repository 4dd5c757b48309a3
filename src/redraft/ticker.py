"""The core's logical clock, driven by the wall clock.

The core counts time in ticks (``tick_ms`` each).  A busy event loop may
fire late; the ticker then catches up one tick per loop turn (so messages
that arrived meanwhile are read between ticks, and a busy node does not
time out on peers it has not listened to), and it can say how many ticks of
real time are due and when a given tick begins, which is what a lease must
be measured in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import Final

_MAX_BACKLOG: Final = 1000
"""Ticks a very long stall may leave to catch up; beyond that they are skipped."""


class Ticker:
    """Calls ``on_tick`` once per tick of real time, on the event loop."""

    def __init__(self, tick_ms: int, on_tick: Callable[[], None]) -> None:
        self.interval = tick_ms / 1000.0
        self._on_tick = on_tick
        self.base = monotonic()
        self.done = 0
        """Ticks fired so far."""
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.base = monotonic()
        self.done = 0
        self._timer = self._loop.call_later(self.interval, self._fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None

    def due(self) -> int:
        """Ticks of real time since the start (the ticks fired may lag it)."""
        return int((monotonic() - self.base) / self.interval)

    def time_of(self, tick: int) -> float:
        """The monotonic time at which ``tick`` begins."""
        return self.base + tick * self.interval

    def _fire(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self.done += 1
        due = self.due()
        if due - self.done > _MAX_BACKLOG:
            self.done = due - _MAX_BACKLOG
        if due > self.done:
            self._timer = loop.call_later(0, self._fire)
        else:
            nxt = self.time_of(self.done + 1)
            self._timer = loop.call_at(loop.time() + max(0.0, nxt - monotonic()), self._fire)
        self._on_tick()
