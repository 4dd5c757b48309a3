"""A woken blocking request learns the keys that woke it: ``m.woken_by()`` and ``RAFTWOKEN``.

The leader logs a woken request again as ``RAFTWOKEN n key... command...``
(the keys it waits on that writes made ready, in the order they were made
ready); every node applies it with those keys as ``m.woken_by()``, and the
clone's blocking pops take from them first, as Redis 7.0 serves a waiter.
The tests build entries with the real :class:`~redraft.proposals.Proposer`,
park and wake requests with the real :class:`~redraft.waiting.Waiters`, and
apply with the real :class:`~redraft.applying.Applying`; a second machine
applying the same log shows that followers agree.  The differential tests
(``tests/differential/``) check the replies against redis-server.
"""

from __future__ import annotations

from typing import Any

import pytest

from redraft.applying import Applying
from redraft.builtins import HANDLERS
from redraft.dedup import ClientSessions
from redraft.examples.clone import Clone
from redraft.machine import NULL_ARRAY, Applier, Block, Command, Conn
from redraft.proposals import Proposer, Stamps, decode_batch, encode_batch
from redraft.raft.core import RaftCore
from redraft.raft.types import Entry, EntryKind
from redraft.registry import Registry
from redraft.replies import Slot
from redraft.waiting import Waiters, unwrap_woken, woken_form
from tests.test_builtins import FakeCluster
from tests.test_builtins import run as run_builtin
from tests.test_machine_hooks import FakeLine, leader_core, proposer

pytestmark = pytest.mark.timeout(30)


def applying(machine: Clone, prop: Proposer, waiters: Waiters | None = None) -> Applying:
    registry = Registry({name: (lambda *a: None) for name in HANDLERS}, machine)
    return Applying(machine, prop, Stamps(), registry, 0, ClientSessions(), waiters)


class Leader:
    """One leader's proposer, waiters and applied clone."""

    def __init__(self) -> None:
        self.core: RaftCore = leader_core()
        self.prop = proposer(self.core)
        self.waiters = Waiters(lambda: True, lambda: "a:1", self.prop.write)
        self.machine = Clone()
        self.app = applying(self.machine, self.prop, self.waiters)
        self.line = FakeLine()
        self.applied = self.core.last_index

    def write(self, *args: str) -> Slot:
        return self.prop.write(self.line, None, [a.encode() for a in args], None, args[0].lower())

    def turn(self) -> None:
        """Log this turn's writes, apply them, then let the waiters log again what woke."""
        self.prop.flush()
        entries = self.core.log_entries(self.applied + 1, self.core.last_index + 1)
        self.applied = self.core.last_index
        self.app.apply(entries)
        self.waiters.applied()

    def log(self) -> list[Entry]:
        return self.core.log_entries(1, self.core.last_index + 1)


def state(machine: Clone) -> dict[bytes, Any]:
    """The clone's containers, comparable: lists as lists, sorted sets in order."""
    return {key: list(value) for key, value in machine._objects.items()}


def follow(log: list[Entry]) -> Clone:
    """A follower's machine: the same entries applied from their bytes alone."""
    machine = Clone()
    applying(machine, proposer(leader_core())).apply(log)
    return machine


def test_a_waiter_is_logged_again_with_the_keys_that_woke_it_in_order() -> None:
    node = Leader()
    slot = node.write("BLPOP", "k1", "k2", "k3", "0")
    node.turn()
    assert slot.data is None and len(node.waiters) == 1
    node.write("RPUSH", "k2", "x")
    node.write("RPUSH", "other", "o")
    node.write("RPUSH", "k1", "y")
    node.write("RPUSH", "k2", "z")  # made ready once, where it first was
    node.prop.flush()
    node.app.apply(node.core.log_entries(node.applied + 1, node.core.last_index + 1))
    node.applied = node.core.last_index
    node.waiters.applied()
    assert node.prop.batch == [
        [b"RAFTWOKEN", b"2", b"k2", b"k1", b"BLPOP", b"k1", b"k2", b"k3", b"0"]
    ]
    node.turn()
    assert slot.data == b"*2\r\n$2\r\nk2\r\n$1\r\nx\r\n"  # not k1, the first key it names
    assert len(node.waiters) == 0
    follower = follow(node.log())
    assert (
        state(follower) == state(node.machine) == {b"k1": [b"y"], b"other": [b"o"], b"k2": [b"z"]}
    )


def test_a_waiter_blocked_again_is_logged_with_the_keys_of_its_latest_wake() -> None:
    node = Leader()
    first = node.write("BLPOP", "k2", "0")
    second = node.write("BLMPOP", "0", "2", "k1", "k2", "LEFT")
    node.turn()
    node.write("LPUSH", "k2", "x")
    node.turn()  # both woken by k2; the first takes x, the second blocks again
    node.turn()
    assert first.data == b"*2\r\n$2\r\nk2\r\n$1\r\nx\r\n"
    assert second.data is None and len(node.waiters) == 1
    node.write("RPUSH", "k1", "y")
    node.write("RPUSH", "k2", "z")
    node.prop.flush()
    node.app.apply(node.core.log_entries(node.applied + 1, node.core.last_index + 1))
    node.applied = node.core.last_index
    node.waiters.applied()
    assert node.prop.batch == [
        [b"RAFTWOKEN", b"2", b"k1", b"k2", b"BLMPOP", b"0", b"2", b"k1", b"k2", b"LEFT"]
    ]
    node.turn()
    assert second.data == b"*2\r\n$2\r\nk1\r\n*1\r\n$1\r\ny\r\n"
    assert state(follow(node.log())) == state(node.machine) == {b"k2": [b"z"]}


def batch(*cmds: list[bytes]) -> bytes:
    return encode_batch(1_700_000_000_000_000_000, list(cmds))


def entries(*data: bytes) -> list[Entry]:
    return [Entry(1, i + 1, EntryKind.NORMAL, d) for i, d in enumerate(data)]


PUSHES = batch([b"RPUSH", b"k2", b"x"], [b"RPUSH", b"k1", b"y"], [b"ZADD", b"z2", b"1", b"a"])


@pytest.mark.parametrize(
    ("logged", "popped"),  # popped: the key the command takes from
    [
        # A log written before RAFTWOKEN: the bare command, a first try.
        ([b"BLPOP", b"k1", b"k2", b"0"], b"k1"),
        (woken_form([b"k2", b"k1"], [b"BLPOP", b"k1", b"k2", b"0"]), b"k2"),
        (woken_form([b"k2"], [b"BRPOP", b"k1", b"k2", b"0"]), b"k2"),
        (woken_form([b"k3", b"k1"], [b"BLPOP", b"k2", b"k3", b"k1", b"0"]), b"k1"),
        (woken_form([b"z2"], [b"BZPOPMIN", b"z1", b"z2", b"0"]), b"z2"),
    ],
    ids=["old-log", "blpop", "brpop", "emptied-key-passed-over", "bzpopmin"],
)
def test_every_node_applies_a_logged_wake_alike(logged: list[bytes], popped: bytes) -> None:
    log = entries(PUSHES, batch(logged))
    first, second = follow(log), follow(log)
    assert state(first) == state(second)
    pushed = state(follow(entries(PUSHES)))
    assert state(first) == {key: v for key, v in pushed.items() if key != popped}


def test_a_woken_request_of_another_type_than_its_key_waits_instead_of_wrongtype() -> None:
    m = Clone()
    app = applying(m, proposer(leader_core()))
    app.apply(entries(batch([b"SET", b"k1", b"s"])))
    first_try = batch([b"BLPOP", b"k1", b"k2", b"0"])
    woken = batch(woken_form([b"k2"], [b"BLPOP", b"k1", b"k2", b"0"]))
    results = [app._run(1, 2, decode_batch(first_try)[1]), app._run(1, 3, decode_batch(woken)[1])]
    assert isinstance(results[0][0], ValueError) and "WRONGTYPE" in str(results[0][0])
    assert results[1] == [NULL_ARRAY]  # no one parks here: Block's reply


def test_raftwoken_wraps_raftseq_and_is_applied_once() -> None:
    m = Clone()
    app = applying(m, proposer(leader_core()))
    app.apply(entries(batch([b"RAFTSESSION", b"NEW"]), PUSHES))
    seq = [b"RAFTSEQ", b"1", b"1", b"0", b"LPOP", b"k2"]
    wrapped = woken_form([b"k1"], [b"RAFTSEQ", b"1", b"2", b"0", b"BLPOP", b"k2", b"k1", b"0"])
    got = app._run(1, 3, [seq, wrapped, wrapped])
    assert got == [b"x", [b"k1", b"y"], [b"k1", b"y"]]  # the retry answered from the table
    assert b"k1" not in m._objects and b"k2" not in m._objects


@pytest.mark.parametrize(
    "args",
    [
        [b"RAFTWOKEN"],
        [b"RAFTWOKEN", b"0", b"BLPOP", b"k", b"0"],
        [b"RAFTWOKEN", b"x", b"k", b"BLPOP", b"k", b"0"],
        [b"RAFTWOKEN", b"2", b"k", b"BLPOP"],
        [b"RAFTWOKEN", b"1", b"k", b"RAFTTICK"],
        [b"RAFTWOKEN", b"1", b"k", b"RAFTWOKEN", b"1", b"k", b"BLPOP", b"k", b"0"],
        [b"RAFTSEQ", b"1", b"1", b"0", b"RAFTWOKEN", b"1", b"k", b"BLPOP", b"k", b"0"],
    ],
)
def test_a_malformed_raftwoken_is_an_error_that_changes_nothing(args: list[bytes]) -> None:
    m = Clone()
    app = applying(m, proposer(leader_core()))
    app.apply(entries(batch([b"RAFTSESSION", b"NEW"]), batch([b"RPUSH", b"k", b"v"])))
    (result,) = app._run(1, 3, [args])
    assert str(result).startswith("ERR")  # an exception, or RAFTSEQ's recorded error reply
    assert list(m._objects[b"k"]) == [b"v"]


def test_unwrap_woken_undoes_woken_form() -> None:
    args = [b"RAFTSEQ", b"1", b"2", b"0", b"BLPOP", b"a", b"b", b"0"]
    assert unwrap_woken(woken_form([b"b", b"a"], args)) == ((b"b", b"a"), args)


def test_a_client_cannot_send_raftwoken() -> None:
    out = run_builtin(FakeCluster(), ["RAFTWOKEN", "1", "k", "BLPOP", "k", "0"])
    assert out.startswith(b"-ERR RAFTWOKEN is logged by the leader")


class WokenBy(Clone):
    """Records ``m.woken_by()`` as every blocking command's ``mutate`` sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, ...]] = []

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if cmd.name == "wait":

            def mutate() -> Any:
                self.seen.append(tuple(m.woken_by()))
                raise Block(cmd.args[1:], 0, NULL_ARRAY)

            return m.blocking(conn, cmd, mutate, None)
        return super().command(m, conn, cmd)


def test_woken_by_is_empty_but_in_a_woken_request() -> None:
    m = WokenBy()
    app = applying(m, proposer(leader_core()))
    app._run(1, 1, [[b"WAIT", b"a", b"b"], woken_form([b"b"], [b"WAIT", b"a", b"b"])])
    app._run(1, 2, [[b"WAIT", b"a"]])
    assert m.seen == [(), (b"b",), ()]
