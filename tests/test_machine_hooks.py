"""A machine's optional hooks: the replicated tick, role and readiness callbacks, INFO sections.

The tick is a ``RAFTTICK`` command the leader appends to a batch: the tests
build entries with the real :class:`~redraft.proposals.Proposer`, apply them
with the real :class:`~redraft.applying.Applying` on two machines, and run
nodes in a thread of this process (:class:`tests.test_fuzz_server.ThreadNode`)
to see what reaches the log and the callbacks.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redraft.applying import Applying
from redraft.builtins import HANDLERS
from redraft.cli import build_parser, options_from_args
from redraft.cli import main as cli_main
from redraft.dedup import ClientSessions
from redraft.examples.clone import Clone
from redraft.machine import OK, Applier, Command, Conn, Machine, Write, defines_tick
from redraft.options import Options
from redraft.proposals import Proposer, Stamps, decode_batch, encode_batch
from redraft.raft.core import RaftConfig, RaftCore
from redraft.raft.types import Entry, EntryKind, Message, MsgType, Role
from redraft.registry import MachineConflict, Registry
from redraft.replies import WAIT, Slot, SlotKind
from redraft.resp import encode
from tests.test_builtins import FakeCluster
from tests.test_builtins import run as run_builtin
from tests.test_core_readd import Net
from tests.test_fuzz_server import Recorder, ThreadNode
from tests.test_plain_commands import replies

pytestmark = pytest.mark.timeout(60)

TICK = [b"RAFTTICK"]


class Ticking(Clone):
    """The clone, recording its ticks and callbacks; ``want`` is its ``wants_tick``."""

    def __init__(self, want: bool = True) -> None:
        super().__init__()
        self.want = want
        self.ticks: list[tuple[int, int]] = []
        """(now_ns, a draw from m.random()) of every tick applied."""
        self.events: list[str] = []

    def tick(self, m: Applier) -> None:
        super().tick(m)
        self.ticks.append((m.now_ns(), m.random().getrandbits(64)))

    def wants_tick(self, now_ns: int) -> bool:
        return self.want

    def on_leader(self) -> None:
        self.events.append("leader")

    def on_follower(self, leader: str) -> None:
        self.events.append(f"follower {leader}")

    def on_ready(self) -> None:
        self.events.append("ready")


class NoTick(Clone):
    """The clone without a tick (the default of Machine)."""

    tick = Machine.tick  # type: ignore[assignment]


class Failing(Ticking):
    """Every hook raises."""

    def tick(self, m: Applier) -> None:
        self.ticks.append((m.now_ns(), 0))
        raise RuntimeError("the tick broke")

    def on_leader(self) -> None:
        raise RuntimeError("on_leader broke")

    def on_ready(self) -> None:
        raise RuntimeError("on_ready broke")

    def info(self) -> dict[str, dict[str, str]]:
        raise RuntimeError("info broke")


class TickNamed(Ticking):
    """A machine whose own commands are named ``tick`` (general form) and ``tock`` (plain write)."""

    def __init__(self) -> None:
        super().__init__(want=False)
        self.named: list[bytes] = []

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if cmd.name == "tick":

            def mutate() -> int:
                self.named.append(cmd.args[1])
                return len(self.named)

            return m.apply(conn, cmd, mutate, None)
        if cmd.name == "forge":  # logging a tick of its own: refused
            return m.apply(conn, Command([b"RAFTTICK"]), lambda: None, None)
        return super().command(m, conn, cmd)

    def writes(self) -> dict[str, Write]:
        return {**super().writes(), "tock": Write(lambda m, args: b"tocked")}


# -- the entry format ------------------------------------------------------------


class FakeLine:
    """A connection's line of replies that keeps what its slots were answered."""

    addr = "127.0.0.1:9"
    redirect = "try"

    def __init__(self) -> None:
        self.encode = encode

    def new_slot(self, kind: SlotKind = WAIT) -> Slot:
        return Slot(kind, self)

    def settle(self, slot: Slot, data: bytes) -> bool:
        slot.data = data
        return True

    def advance(self) -> None:
        pass

    def fill_error(self, slot: Slot, exc: BaseException) -> None:
        slot.data = slot.error(exc)


def leader_core() -> RaftCore:
    core = RaftCore(RaftConfig("a:1"), random.Random(1), RaftCore.bootstrap(["a:1"]))
    core.campaign()  # alone: leads at once
    assert core.role == Role.LEADER
    return core


def proposer(core: RaftCore, **opts: Any) -> Proposer:
    return Proposer(core, Options(log_level="warning", **opts), Stamps(), lambda: None)


def applying(machine: Machine, prop: Proposer | None = None) -> Applying:
    prop = prop or proposer(leader_core())
    registry = Registry({name: (lambda *a: None) for name in HANDLERS}, machine)
    return Applying(machine, prop, Stamps(), registry, 0, ClientSessions())


def entries(core: RaftCore, first: int) -> list[Entry]:
    return core.log_entries(first, core.last_index + 1)


def test_a_tick_goes_last_in_its_batch_and_answers_nobody() -> None:
    core = leader_core()
    prop = proposer(core)
    line = FakeLine()
    slot = prop.write(line, None, [b"SET", b"k", b"v"], None, "set")
    prop.add_tick()
    prop.add_tick()  # at most one per batch
    first = core.last_index + 1
    prop.flush()
    assert not prop.tick
    (entry,) = entries(core, first)
    stamp, cmds = decode_batch(entry.data)
    assert cmds == [[b"SET", b"k", b"v"], TICK]
    assert prop.pending[entry.index].tick
    machine = Ticking()
    applying(machine, prop).apply([entry])
    assert slot.data == b"+OK\r\n"  # the tick's result went to no one
    assert machine.ticks == [(stamp, machine.ticks[0][1])]
    assert machine._data == {b"k": b"v"}


def test_a_tick_alone_and_a_tick_past_a_full_entry_are_entries_of_their_own() -> None:
    core = leader_core()
    prop = proposer(core, max_batch_commands=2)
    line = FakeLine()
    slots = [prop.write(line, None, [b"SET", b"k%d" % i, b"v"], None, "set") for i in range(2)]
    prop.add_tick()
    first = core.last_index + 1
    prop.flush()
    full, alone = entries(core, first)
    assert decode_batch(full.data)[1] == [[b"SET", b"k0", b"v"], [b"SET", b"k1", b"v"]]
    assert decode_batch(alone.data)[1] == [TICK]
    assert not prop.pending[full.index].tick and prop.pending[alone.index].tick
    prop.add_tick()
    prop.flush()
    assert decode_batch(core.log_entries(core.last_index, core.last_index + 1)[0].data)[1] == [TICK]
    applying(Ticking(), prop).apply(entries(core, first))
    assert [s.data for s in slots] == [b"+OK\r\n", b"+OK\r\n"]


def test_a_tick_is_applied_alike_on_every_node() -> None:
    """Two machines applying the same entries reach the same state, ticks included."""
    t0 = 1_700_000_000 * 10**9
    ms = 10**6
    log = [
        encode_batch(t0, [[b"SET", b"a", b"1", b"PX", b"100"], [b"SET", b"b", b"2"]]),
        encode_batch(t0 + 50 * ms, [[b"SET", b"c", b"3", b"PX", b"90"], TICK]),
        encode_batch(t0 + 150 * ms, [TICK]),  # a and c are due: the tick deletes them
        encode_batch(t0 + 160 * ms, [[b"GETSET", b"d", b"4"], TICK]),
    ]
    log_entries = [Entry(2, i + 10, EntryKind.NORMAL, data) for i, data in enumerate(log)]
    machines = [Ticking(), Ticking()]
    for machine in machines:
        applying(machine).apply(log_entries)
    a, b = machines
    assert a._data == b._data == {b"b": b"2", b"d": b"4"}
    assert a._expires == b._expires == {}
    assert a.ticks == b.ticks
    assert [now for now, _ in a.ticks] == [t0 + 50 * ms, t0 + 150 * ms, t0 + 160 * ms]
    assert len({draw for _, draw in a.ticks}) == 3  # seeded by the place in the log


def test_entries_without_ticks_apply_as_before() -> None:
    """The entry format is unchanged: a batch of a data dir written before ticks existed."""
    data = encode_batch(5, [[b"SET", b"k", b"v"], [b"tick", b"x"]])
    assert decode_batch(data) == (5, [[b"SET", b"k", b"v"], [b"tick", b"x"]])
    machine = TickNamed()
    applying(machine).apply([Entry(1, 3, EntryKind.NORMAL, data)])
    assert machine._data == {b"k": b"v"}
    assert machine.named == [b"x"]  # the machine's own "tick" command, not a tick
    assert machine.ticks == []


def test_rafttick_is_a_builtin_no_machine_may_declare() -> None:
    class Declares(Clone):
        def writes(self) -> dict[str, Write]:
            return {"RaftTick": Write(lambda m, args: OK)}

    with pytest.raises(MachineConflict, match="rafttick"):
        Registry(dict.fromkeys(HANDLERS, lambda *a: None), Declares())
    assert defines_tick(Clone()) and defines_tick(Ticking())
    assert not defines_tick(NoTick())


# -- batches in flight -------------------------------------------------------------


def batches_proposed_before_a_commit(**opts: Any) -> int:
    """Writes arrive one per turn while none commits: how many batches go out."""
    core = leader_core()
    while (rd := core.ready()) is not None:  # the leader's no-op commits
        core.advance(rd)
    prop = proposer(core, **opts)
    line = FakeLine()
    proposed = 0
    for i in range(4):
        prop.write(line, None, [b"SET", b"k%d" % i, b"v"], None, "set")
        if prop.may_propose():
            prop.flush()
            proposed += 1
    assert core.commit_index < core.last_index
    return proposed


@pytest.mark.parametrize(
    ("opts", "batches"),
    [
        ({}, 2),
        ({"durability": "low"}, 2),
        ({"durability": "high"}, 1),  # every batch costs an fsync on each node
        ({"durability": "high", "max_inflight_batches": 3}, 3),
        ({"max_inflight_batches": 1}, 1),
    ],
)
def test_batches_in_flight_follow_the_durability_unless_set(
    opts: dict[str, Any], batches: int
) -> None:
    assert batches_proposed_before_a_commit(**opts) == batches


def test_a_negative_number_of_batches_in_flight_is_refused() -> None:
    with pytest.raises(ValueError, match="max_inflight_batches"):
        Options(max_inflight_batches=-1)


# -- nodes -------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    logger = logging.getLogger("redraft")
    logger.addHandler(rec)
    try:
        yield rec
    finally:
        logger.removeHandler(rec)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """``serve(machine, **options)``: a started node, stopped at the end."""
    nodes: list[ThreadNode] = []

    def start(machine: Machine, **opts: Any) -> ThreadNode:
        base = tmp_path / f"n{len(nodes)}"
        tn = ThreadNode(base, Options(log_level="warning", **opts), machine)
        nodes.append(tn)
        tn.start()
        return tn

    try:
        yield start
    finally:
        for tn in nodes:
            tn.stop()


def logged_ticks(tn: ThreadNode) -> list[tuple[int, int]]:
    """(index, stamp) of every committed entry holding a tick (always its last command)."""
    found = []
    for e in tn.committed():
        if e.kind == EntryKind.NORMAL:
            stamp, cmds = decode_batch(e.data)
            assert TICK not in cmds[:-1]
            if cmds and cmds[-1] == TICK:
                found.append((e.index, stamp))
    return found


def wait(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_machine_without_tick_logs_no_ticks(serve: Any) -> None:
    tn = serve(NoTick(), tick_interval_ms=10)
    time.sleep(0.3)
    assert logged_ticks(tn) == []
    assert tn.on_loop(lambda: tn.node.group.applying.ticks) == 0


def test_the_leader_logs_ticks_while_the_machine_wants_them(serve: Any) -> None:
    machine = Ticking(want=True)
    tn = serve(machine, tick_interval_ms=20)
    wait(lambda: len(machine.ticks) >= 5)
    logged = logged_ticks(tn)
    # Each applied tick ran at its entry's stamp.
    applied = tn.on_loop(lambda: list(machine.ticks))
    assert [stamp for _, stamp in logged[: len(applied)]] == [now for now, _ in applied]
    stamps = [stamp for _, stamp in logged]
    assert stamps == sorted(stamps)
    tn.on_loop(lambda: setattr(machine, "want", False))
    time.sleep(0.1)  # one may be on its way
    quiet = len(logged_ticks(tn))
    time.sleep(0.3)
    assert len(logged_ticks(tn)) == quiet, "no ticks while the machine wants none"


def test_tick_interval_zero_turns_ticks_off(serve: Any) -> None:
    machine = Ticking(want=True)
    tn = serve(machine, tick_interval_ms=0)
    time.sleep(0.3)
    assert logged_ticks(tn) == [] and machine.ticks == []


def test_a_client_cannot_send_rafttick(serve: Any) -> None:
    machine = TickNamed()
    tn = serve(machine, tick_interval_ms=10)
    before = len(logged_ticks(tn))
    (sid,) = replies(tn.port, ["RAFTSESSION", "NEW"])
    got = replies(
        tn.port,
        ["RAFTTICK"],
        ["rafttick", "now"],
        ["RAFTSEQ", str(sid), "1", "0", "RAFTTICK"],
        ["TICK", "mine"],  # the machine's own commands named like it still work
        ["tock"],
        ["FORGE"],
    )
    refused = "ERR RAFTTICK is logged by the leader for the machine's tick; clients cannot send it"
    forged = "ERR 'rafttick' is a built-in command: command() must not log it"
    assert got == [refused, refused, refused, 1, b"tocked", forged]
    assert machine.named == [b"mine"]
    assert machine.ticks == [] and len(logged_ticks(tn)) == before


def test_callbacks_on_a_node_of_one(serve: Any) -> None:
    machine = Ticking(want=False)
    tn = serve(machine)
    wait(lambda: "ready" in machine.events)
    assert machine.events == ["leader", "ready"]
    assert tn.on_loop(lambda: tn.node.group.ready)


def test_a_failing_hook_is_logged_and_the_node_goes_on(serve: Any, recorder: Recorder) -> None:
    machine = Failing(want=True)
    tn = serve(machine, tick_interval_ms=10)
    wait(lambda: len(machine.ticks) >= 3)
    assert replies(tn.port, ["SET", "k", "v"], ["GET", "k"]) == [b"OK", b"v"]
    info = replies(tn.port, ["INFO"])[0]
    assert b"# Raft\r\n" in info and b"Keyspace" not in info
    messages = recorder.messages()
    for what in ("on_leader", "on_ready", "info"):
        assert f"the machine's {what} failed" in messages
    failed = [m for m in messages if m.startswith("the machine's tick failed")]
    assert failed and len(failed) < len(machine.ticks)  # not once per tick
    assert tn.on_loop(lambda: tn.node.group.ready)


def test_info_shows_the_machine_sections(serve: Any) -> None:
    tn = serve(Clone())
    # INFO is answered as it is read, before writes pipelined ahead of it commit.
    assert replies(tn.port, ["FLUSHALL"]) == [b"OK"]
    assert replies(tn.port, ["INFO", "keyspace"]) == [b"# Keyspace\r\n"]
    replies(tn.port, ["SET", "a", "1"], ["SET", "b", "2", "EX", "100"])
    keyspace = b"# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"
    assert replies(tn.port, ["INFO", "KEYSPACE"]) == [keyspace]
    assert replies(tn.port, ["INFO"])[0].endswith(keyspace)
    assert b"# Keyspace" not in replies(tn.port, ["INFO", "server"])[0]


def test_info_merges_a_section_named_like_the_nodes() -> None:
    ctx = FakeCluster(sections={"raft": {"extra": "1"}, "Mine": {"a": "b", "c": "d"}})
    mine = b"# Mine\r\na:b\r\nc:d\r\n"
    assert run_builtin(ctx, ["INFO", "mine"]) == b"$%d\r\n%s\r\n" % (len(mine), mine)
    raft = run_builtin(ctx, ["INFO", "raft"])
    assert raft.startswith(b"$") and raft.endswith(b"backend:fastlog\r\nextra:1\r\n\r\n")


# -- the option and the flag --------------------------------------------------------


def test_the_tick_interval_option_and_flag() -> None:
    parse = build_parser().parse_args
    assert Options().tick_interval_ms == 100
    assert options_from_args(parse([])).tick_interval_ms == 100
    assert options_from_args(parse(["--tick-interval", "250"])).tick_interval_ms == 250
    assert options_from_args(parse(["-tick-interval", "0"])).tick_interval_ms == 0
    with pytest.raises(ValueError, match="tick_interval_ms"):
        Options(tick_interval_ms=-1)
    with pytest.raises(SystemExit):
        cli_main(Clone, ["--tick-interval", "-5"])


# -- how far a follower has to catch up --------------------------------------------


def test_heartbeats_tell_followers_the_leaders_commit_index() -> None:
    net = Net()
    a, b, c = net.cores.values()
    net.ticks(40)
    leader = next(core for core in (a, b, c) if core.role == Role.LEADER)
    followers = [core for core in (a, b, c) if core is not leader]
    for _ in range(5):
        leader.propose([encode_batch(1, [[b"SET", b"k", b"v"]])])
        net.pump()
    net.ticks(3)
    assert leader.commit_index > 1
    for f in followers:
        assert f.leader_commit == leader.commit_index == f.commit_index
    # A heartbeat's own commit is capped at what the follower holds; its index is not.
    f = followers[0]
    f.step(Message(MsgType.HEARTBEAT, f.id, leader.id, leader.term, index=99, commit=2))
    assert f.leader_commit == 99 and f.commit_index == leader.commit_index
