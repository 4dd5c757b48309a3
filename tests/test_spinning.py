"""Busy polling after logging entries: when a node spins, and when it must not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from redraft.options import Options
from redraft.spinning import (
    BATCH_LIMIT,
    PRESSURE_LIMIT,
    QUIET_FIRST,
    QUIET_MAX,
    SAMPLE_EVERY,
    CpuPressure,
    Spinner,
)

pytestmark = pytest.mark.timeout(30)


class FakeLoop:
    """Runs queued callbacks one at a time, as a loop's turns would."""

    def __init__(self) -> None:
        self.queue: list[Callable[[], None]] = []

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.queue.append(fn)

    def turn(self) -> None:
        queued, self.queue = self.queue, []
        for fn in queued:
            fn()


class World:
    """A clock, a pressure counter and a spinner wired to them."""

    def __init__(self, window: float = 0.001) -> None:
        self.now = 100.0
        self.stalled = 0
        self.entries = 0
        self.writes = 0
        self.loop = FakeLoop()
        self.spinner = Spinner(
            window, lambda: self.stalled, lambda: self.now, lambda: (self.entries, self.writes)
        )
        self.spinner.start(self.loop)  # type: ignore[arg-type]

    def run_for(self, seconds: float, pressure: float, step: float = 0.0001) -> None:
        """Let time pass, with tasks waiting for a CPU ``pressure`` of it; the loop turns."""
        end = self.now + seconds
        while self.now < end:
            self.now += step
            self.stalled += int(step * pressure * 1e6)
            self.loop.turn()


def test_spins_until_the_window_after_the_last_entries_passes() -> None:
    w = World(window=0.001)
    w.spinner.logged()
    assert w.spinner.spinning
    w.run_for(0.0005, pressure=0.0)
    assert w.spinner.spinning  # still within the window
    w.spinner.logged()  # more entries: the window starts again
    w.run_for(0.0008, pressure=0.0)
    assert w.spinner.spinning
    w.run_for(0.0005, pressure=0.0)
    assert not w.spinner.spinning
    assert w.loop.queue == []  # the loop may sleep


def test_time_spent_spinning_is_counted() -> None:
    w = World(window=0.001)
    w.spinner.logged()
    w.run_for(0.0005, pressure=0.0)
    assert 0.0004 <= w.spinner.seconds() <= 0.0006  # the spin under way counts
    w.run_for(0.002, pressure=0.0)
    assert not w.spinner.spinning
    assert 0.0009 <= w.spinner.seconds() <= 0.0012
    w.run_for(0.01, pressure=0.0)
    assert w.spinner.seconds() <= 0.0012  # no spinning, no time


def test_zero_window_or_no_pressure_figures_never_spins() -> None:
    for spinner in (Spinner(0.0, lambda: 0), Spinner(0.001, None)):
        loop = FakeLoop()
        spinner.start(loop)  # type: ignore[arg-type]
        spinner.logged()
        assert not spinner.spinning
        assert loop.queue == []


def press_then_time_the_quiet(w: World) -> float:
    """Spin while the CPU is pressed until the node stops; how long it then keeps from spinning."""
    w.spinner.logged()
    w.run_for(SAMPLE_EVERY, pressure=2 * PRESSURE_LIMIT, step=0.0005)
    w.spinner.logged()  # the reading that sees it
    w.loop.turn()
    assert not w.spinner.spinning
    start = w.now
    while not w.spinner.spinning:  # quiet: entries logged, no spinning
        w.run_for(0.01, pressure=0.0, step=0.005)
        w.spinner.logged()
    return w.now - start


def test_pressure_from_spinning_stops_it_and_the_quiet_doubles() -> None:
    w = World()
    quiets = [press_then_time_the_quiet(w) for _ in range(6)]
    assert w.spinner.quiets == 6
    assert QUIET_FIRST <= quiets[0] < 2 * QUIET_FIRST
    assert 2 * QUIET_FIRST <= quiets[1] < 4 * QUIET_FIRST
    assert 4 * QUIET_FIRST <= quiets[2] < 8 * QUIET_FIRST
    assert all(q <= QUIET_MAX + 2 * SAMPLE_EVERY for q in quiets)
    assert quiets[-1] >= QUIET_MAX


def test_a_clear_reading_halves_the_quiet_rather_than_resetting_it() -> None:
    w = World()
    for _ in range(4):
        press_then_time_the_quiet(w)  # quiet now 8 s
    # Spinning again, the CPU well clear of the limit for one reading.
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.0005)
    w.spinner.logged()
    assert w.spinner.spinning
    quiet = press_then_time_the_quiet(w)
    assert 4.0 <= quiet < QUIET_MAX  # halved from 8 s, not back to the first 0.5 s


def test_a_busy_machine_without_our_spinning_is_left_alone() -> None:
    w = World(window=0.0001)
    w.spinner.logged()
    w.run_for(0.001, pressure=0.0)
    assert not w.spinner.spinning
    # Others keep the CPUs busy, for many readings, while this node logs now and then.
    for _ in range(40):
        w.run_for(SAMPLE_EVERY, pressure=0.9, step=0.01)
        w.spinner.logged()
        assert not w.spinner.spinning
    # Only the first reading could blame its spin; later ones saw none: no growing quiet.
    assert w.spinner.quiets == 1
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.01)
    w.spinner.logged()
    assert w.spinner.spinning  # the pressure went: spinning again


def test_low_pressure_keeps_spinning_allowed() -> None:
    w = World()
    for _ in range(5):
        w.spinner.logged()
        w.run_for(SAMPLE_EVERY, pressure=PRESSURE_LIMIT / 2, step=0.0005)
    w.spinner.logged()
    assert w.spinner.spinning and w.spinner.quiets == 0


def apply_batches(w: World, entries: int, writes_each: float) -> None:
    w.entries += entries
    w.writes += int(entries * writes_each)


def test_no_spinning_while_the_batches_applied_are_full_and_again_once_they_are_small() -> None:
    w = World()
    w.spinner.logged()
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.0005)
    apply_batches(w, 40, 1)  # a lone client
    w.spinner.logged()
    assert w.spinner.spinning
    # Many clients: entries of 25 writes, the CPU not (yet) pressed.
    for _ in range(5):
        apply_batches(w, 40, 25)
        w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.0005)
        w.spinner.logged()
        w.loop.turn()
        assert not w.spinner.spinning
        assert w.loop.queue == []
    assert w.spinner.quiets == 0  # not the CPU's doing: no quiet to sit out
    # The load falls to a few clients: spinning at the next reading.
    apply_batches(w, 40, BATCH_LIMIT)
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.0005)
    w.spinner.logged()
    assert w.spinner.spinning


def test_nothing_applied_since_the_last_reading_counts_as_light_load() -> None:
    w = World()
    apply_batches(w, 10, 100)
    w.spinner.logged()  # the first reading
    assert not w.spinner.spinning
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.0005)  # entries logged, none applied yet
    w.spinner.logged()
    assert w.spinner.spinning


def test_pressure_figures_that_fail_to_read_end_spinning_quietly() -> None:
    w = World()
    w.spinner.logged()
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.001)

    def unreadable() -> int:
        raise OSError("gone")

    w.spinner._stalled_us = unreadable
    w.spinner.logged()  # must not raise into the node's pass
    w.loop.turn()
    assert not w.spinner.spinning
    w.run_for(SAMPLE_EVERY, pressure=0.0, step=0.001)
    w.spinner.logged()
    assert not w.spinner.spinning and w.loop.queue == []


def test_stop_ends_spinning() -> None:
    w = World()
    w.spinner.logged()
    w.spinner.stop()
    w.loop.turn()
    assert not w.spinner.spinning and w.loop.queue == []
    w.spinner.logged()
    assert not w.spinner.spinning


def test_cpu_pressure_reads_the_some_total(tmp_path: Path) -> None:
    psi = tmp_path / "cpu"
    psi.write_text(
        "some avg10=1.00 avg60=2.00 avg300=3.00 total=123456\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    reader = CpuPressure.open(str(psi))
    assert reader is not None
    assert reader.stalled_us() == 123456
    psi.write_text("some avg10=1.00 avg60=2.00 avg300=3.00 total=123999\n")
    assert reader.stalled_us() == 123999  # read afresh each time
    reader.close()


def test_cpu_pressure_absent_or_unreadable(tmp_path: Path) -> None:
    assert CpuPressure.open(str(tmp_path / "missing")) is None
    bad = tmp_path / "bad"
    bad.write_text("no figures here\n")
    assert CpuPressure.open(str(bad)) is None


def test_spin_option_bounds() -> None:
    assert Options(spin_us=0).spin_us == 0
    with pytest.raises(ValueError, match="spin_us"):
        Options(spin_us=-1)


def test_spinning_on_a_real_loop_turns_it_and_then_lets_it_sleep() -> None:
    async def main() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        turns = 0

        def count() -> None:
            nonlocal turns
            turns += 1

        spinner = Spinner(0.02, lambda: 0)
        spinner.start(loop)
        spinner.logged()
        # A reader of the loop's turns: each spin step is one.
        handle = loop.call_soon(count)
        await asyncio.sleep(0.05)
        handle.cancel()
        return turns, spinner.spinning

    turns, spinning = asyncio.run(main())
    assert turns == 1
    assert not spinning
