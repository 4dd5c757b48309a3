"""The Ready driver's ordering of persist, send, install and apply (redraft.raft.driver)."""

from __future__ import annotations

import random
from collections import deque
from typing import Any, cast

import pytest

from redraft.raft.core import RaftConfig, RaftCore
from redraft.raft.driver import ReadyDriver
from redraft.raft.types import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MsgType,
    ReadState,
    Ready,
    SnapshotMeta,
)

Event = tuple[Any, ...]


class FakeCore:
    """Hands out scripted Readies; records advances into the shared event log."""

    def __init__(self, events: list[Event], readies: list[Ready]) -> None:
        self.events = events
        self.readies = deque(readies)

    def ready(self) -> Ready | None:
        return self.readies.popleft() if self.readies else None

    def advance(self, rd: Ready) -> None:
        self.events.append(("advance", rd))


class RecordingIO:
    """A ReadyIO that records every call; persistence is durable at once unless ``slow``."""

    def __init__(self, events: list[Event], slow: bool = False) -> None:
        self.events = events
        self.slow = slow
        self.queued: list[Ready] = []

    @property
    def persisting(self) -> bool:
        return bool(self.queued)

    def send(self, msgs: list[Message]) -> None:
        self.events.append(("send", [m.to for m in msgs]))

    def flush(self) -> None:
        self.events.append(("flush",))

    def persist(self, rd: Ready) -> bool:
        self.events.append(("persist", rd))
        if self.slow:
            self.queued.append(rd)
            return False
        return True

    def install(self, meta: SnapshotMeta) -> None:
        self.events.append(("install", meta.index))

    def apply(self, entries: list[Entry]) -> None:
        self.events.append(("apply", [e.index for e in entries]))

    def reads_ready(self, reads: list[ReadState]) -> None:
        self.events.append(("reads", [r.index for r in reads]))

    def reads_dropped(self, tokens: list[object]) -> None:
        self.events.append(("dropped", list(tokens)))


def msg(to: str) -> Message:
    return Message(MsgType.APP_RESP, to, "me", 1)


def ents(lo: int, hi: int) -> list[Entry]:
    return [Entry(1, i, EntryKind.NORMAL, b"") for i in range(lo, hi + 1)]


def snap(index: int) -> SnapshotMeta:
    return SnapshotMeta(index, 1, Membership(frozenset({"me"})), 10)


def setup(readies: list[Ready], slow: bool = False) -> tuple[ReadyDriver, RecordingIO, list[Event]]:
    events: list[Event] = []
    io = RecordingIO(events, slow)
    driver = ReadyDriver(cast(RaftCore, FakeCore(events, readies)), io)
    return driver, io, events


def names(events: list[Event]) -> list[str]:
    return [e[0] for e in events]


# --------------------------------------------------------------- ordering


def test_full_ready_in_raft_order_when_durable_at_once() -> None:
    rd = Ready(
        hard_state=HardState(2, "me", 3),
        entries=ents(4, 5),
        committed=ents(2, 3),
        messages=[msg("a")],
        messages_after_persist=[msg("b")],
        reads=[ReadState(["t"], 3)],
        dropped_reads=["u"],
    )
    driver, _, events = setup([rd])
    driver.run()
    assert events == [
        ("send", ["a"]),  # the leader's traffic goes before its own write
        ("flush",),
        ("persist", rd),
        ("send", ["b"]),  # acknowledgements only once durable
        ("advance", rd),
        ("flush",),  # acknowledgements out before the machine works
        ("apply", [2, 3]),
        ("reads", [3]),
        ("dropped", ["u"]),
    ]


def test_slow_persistence_holds_acks_and_advance_until_durable() -> None:
    rd = Ready(entries=ents(4, 5), committed=ents(2, 3), messages_after_persist=[msg("b")])
    driver, io, events = setup([rd], slow=True)
    driver.run()
    # Committed entries are committed on a majority: applying need not wait
    # for this node's own write.
    assert names(events) == ["flush", "persist", "flush", "apply"]
    events.clear()
    driver.durable(io.queued.pop(0))
    assert events == [("send", ["b"]), ("advance", rd)]


def test_nothing_to_persist_and_nothing_pending_is_durable_at_once() -> None:
    rd = Ready(committed=ents(2, 2), messages_after_persist=[msg("b")])
    driver, _, events = setup([rd])
    driver.run()
    assert events == [("send", ["b"]), ("advance", rd), ("flush",), ("apply", [2])]


def test_nothing_to_persist_still_waits_behind_earlier_persistence() -> None:
    first = Ready(entries=ents(4, 4))
    second = Ready(messages_after_persist=[msg("b")])  # e.g. an ack of entry 4
    driver, io, events = setup([first, second], slow=True)
    driver.run()
    assert names(events) == ["flush", "persist", "flush", "persist"]
    assert io.queued == [first, second]
    events.clear()
    driver.durable(io.queued.pop(0))
    driver.durable(io.queued.pop(0))
    assert events == [("advance", first), ("send", ["b"]), ("advance", second)]


def test_empty_parts_are_not_reported() -> None:
    rd = Ready(hard_state=HardState(2, "", 0))
    driver, _, events = setup([rd])
    driver.run()
    assert names(events) == ["flush", "persist", "advance"]


# ------------------------------------------------------- install and hold


def test_committed_entries_wait_for_a_pending_install() -> None:
    install = Ready(install_snapshot=snap(10), messages_after_persist=[msg("leader")])
    later = Ready(entries=ents(11, 12), committed=ents(11, 12))
    driver, io, events = setup([install, later], slow=True)
    driver.run()
    assert "apply" not in names(events), "entries applied to the pre-snapshot machine"
    assert driver.installing
    events.clear()
    driver.durable(io.queued.pop(0))
    assert events == [
        ("send", ["leader"]),
        ("install", 10),
        ("apply", [11, 12]),  # right after the install, before anything else
        ("advance", install),
    ]
    assert not driver.installing
    events.clear()
    driver.durable(io.queued.pop(0))
    assert events == [("advance", later)]


def test_held_entries_the_snapshot_covers_are_not_applied() -> None:
    install = Ready(install_snapshot=snap(10))
    later = Ready(committed=ents(9, 12))
    driver, io, events = setup([install, later], slow=True)
    driver.run()
    events.clear()
    driver.durable(io.queued.pop(0))
    assert ("apply", [11, 12]) in events


def test_two_pending_installs_each_release_their_own_entries() -> None:
    a = Ready(install_snapshot=snap(10))
    between = Ready(committed=ents(11, 12))
    b = Ready(install_snapshot=snap(20))
    after = Ready(committed=ents(21, 21))
    driver, io, events = setup([a, between, b, after], slow=True)
    driver.run()
    assert "apply" not in names(events)
    events.clear()
    driver.durable(io.queued.pop(0))  # a
    assert [e for e in events if e[0] in ("install", "apply")] == [
        ("install", 10),
        ("apply", [11, 12]),
    ]
    events.clear()
    driver.durable(io.queued.pop(0))  # between
    driver.durable(io.queued.pop(0))  # b
    assert [e for e in events if e[0] in ("install", "apply")] == [
        ("install", 20),
        ("apply", [21]),
    ]


def test_an_install_durable_at_once_holds_nothing() -> None:
    install = Ready(install_snapshot=snap(10))
    later = Ready(committed=ents(11, 11))
    driver, _, events = setup([install, later])
    driver.run()
    assert [e for e in events if e[0] in ("install", "apply")] == [
        ("install", 10),
        ("apply", [11]),
    ]


def test_durable_out_of_order_is_refused() -> None:
    a = Ready(install_snapshot=snap(10))
    b = Ready(install_snapshot=snap(20))
    driver, _, _ = setup([a, b], slow=True)
    driver.run()
    with pytest.raises(AssertionError):
        driver.durable(b)


# ------------------------------------------------------------ a real core


def test_a_single_voter_commits_through_the_driver() -> None:
    boot = RaftCore.bootstrap(["me"])
    core = RaftCore(RaftConfig("me", election_tick=5), random.Random(1), boot)
    events: list[Event] = []
    io = RecordingIO(events, slow=True)
    driver = ReadyDriver(core, io)
    assert core.campaign()
    driver.run()
    while io.queued:
        driver.durable(io.queued.pop(0))
        driver.run()
    assert core.role.name == "LEADER"
    first = core.propose([b"x", b"y"])
    driver.run()
    assert ("apply", [first, first + 1]) not in events  # not durable on the only voter yet
    while io.queued:
        driver.durable(io.queued.pop(0))
        driver.run()
    assert ("apply", [first, first + 1]) in events


# ----------------------------------------- what the runtime reads of the core


class WireIO(RecordingIO):
    """Durable at once; sent messages go onto a shared wire."""

    def __init__(self, wire: list[Message]) -> None:
        super().__init__([])
        self.wire = wire

    def send(self, msgs: list[Message]) -> None:
        self.wire.extend(msgs)


def three_nodes() -> tuple[dict[str, RaftCore], dict[str, ReadyDriver], list[Message]]:
    ids = ["a", "b", "c"]
    boot = RaftCore.bootstrap(ids)
    wire: list[Message] = []
    cores = {
        n: RaftCore(RaftConfig(n, election_tick=5), random.Random(k), boot)
        for k, n in enumerate(ids)
    }
    drivers = {n: ReadyDriver(core, WireIO(wire)) for n, core in cores.items()}
    return cores, drivers, wire


def pump(cores: dict[str, RaftCore], drivers: dict[str, ReadyDriver], wire: list[Message]) -> None:
    for _ in range(100):
        for d in drivers.values():
            d.run()
        if not wire:
            return
        batch = wire[:]
        wire.clear()
        for m in batch:
            cores[m.to].step(m)


def elect(
    cores: dict[str, RaftCore], drivers: dict[str, ReadyDriver], wire: list[Message]
) -> RaftCore:
    for _ in range(100):
        for core in cores.values():
            core.tick()
        pump(cores, drivers, wire)
        for core in cores.values():
            if core.role.name == "LEADER" and core.committed_in_term():
                return core
    raise AssertionError("no leader")


def test_status_is_a_frozen_picture_of_the_leader() -> None:
    cores, drivers, wire = three_nodes()
    lead = elect(cores, drivers, wire)
    lid = lead.id
    other, third = sorted(n for n in cores if n != lid)
    lead.propose([b"x"])
    pump(cores, drivers, wire)
    st = lead.status()
    assert (st.id, st.role, st.leader, st.term) == (lid, lead.role, lid, lead.term)
    assert st.commit == st.last_index == st.stable == lead.last_index
    assert st.applied == st.commit and st.first_index == 1 and st.snapshot_index == 0
    assert set(st.progress) == {"a", "b", "c"}
    peer = st.progress[other]
    assert peer.match == lead.last_index and peer.state == "replicate"
    assert not peer.learner and peer.last_contact <= st.ticks
    with pytest.raises(TypeError):
        st.progress[other] = st.progress[third]  # type: ignore[index]
    follower = cores[other].status()
    assert follower.leader == lid and follower.progress == {}


def test_report_unreachable_sends_a_replicating_peer_back_to_probing() -> None:
    cores, drivers, wire = three_nodes()
    lead = elect(cores, drivers, wire)
    other = min(n for n in cores if n != lead.id)
    assert lead.status().progress[other].state == "replicate"
    lead.report_unreachable(other)
    lead.report_unreachable("nobody")
    assert lead.status().progress[other].state == "probe"
    cores[other].report_unreachable(lead.id)  # a follower tracks no one: nothing to do
