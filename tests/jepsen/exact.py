"""Counters incremented through :mod:`redraft.client`, whose final values must be exact.

Each thread increments a key of its own with a client that retries across
kills, pauses and partitions.  With client sessions on, a retried increment
is applied once, so after healing each counter equals the increments the
client saw acknowledged (plus at most those whose outcome it was told is
unknown).  With sessions off (``exactly_once=False``) a retry after a lost
reply applies the increment again, and the check catches the surplus.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from redraft.client import Client

KEY_PREFIX = "exact:"


@dataclass
class Tally:
    """What one counting thread saw."""

    key: str
    acked: int = 0
    unknown: int = 0
    """Increments that ended in an error: each may or may not have been applied."""


class ExactCounters:
    """``threads`` clients, each incrementing its own counter until ``stop`` is set."""

    def __init__(
        self,
        addresses: list[str],
        threads: int,
        stop: threading.Event,
        *,
        exactly_once: bool = True,
        timeout: float = 1.0,
    ) -> None:
        self.addresses = addresses
        self.stop = stop
        self.exactly_once = exactly_once
        self.timeout = timeout
        self.tallies = [Tally(f"{KEY_PREFIX}{i}") for i in range(threads)]
        self._threads = [
            threading.Thread(target=self._count, args=(t,), name=f"exact-{i}", daemon=True)
            for i, t in enumerate(self.tallies)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> None:
        for t in self._threads:
            t.join(timeout)

    def _count(self, tally: Tally) -> None:
        client = Client(
            *self.addresses,
            retry_timeout=8.0,
            exactly_once=self.exactly_once,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        with client:
            while not self.stop.is_set():
                try:
                    client.incr(tally.key)
                except (redis.RedisError, OSError):
                    tally.unknown += 1
                else:
                    tally.acked += 1

    def check(self, final: dict[str, int | None]) -> tuple[list[str], list[str]]:
        """(failures, notes) for the counters' final values, read after healing."""
        failures: list[str] = []
        notes: list[str] = []
        for t in self.tallies:
            value = final.get(t.key)
            seen = f"{t.key}: {t.acked} acknowledged, {t.unknown} unknown, final {value}"
            notes.append(seen)
            if value is None:
                if t.acked:
                    failures.append(f"exact counter lost: {seen}")
            elif not t.acked <= value <= t.acked + t.unknown:
                what = "applied twice" if value > t.acked else "lost"
                failures.append(f"exact counter {what}: {seen}")
        return failures, notes


__all__ = ["KEY_PREFIX", "ExactCounters", "Tally"]
