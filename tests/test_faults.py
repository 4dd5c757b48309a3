"""The Jepsen-style fault suite: a real 3-node cluster under each nemesis, checked.

Every run starts a fresh cluster of clone processes (consistency and
durability high), runs 15 clients for ``JEPSEN_TIME`` seconds (default 18)
while the nemesis injects faults, heals everything, and then checks that the
history is linearizable, that no acknowledged write was lost, that the
counter is within its bounds, that bank transfers (MULTI/EXEC) conserved
the total in every snapshot read and at the end, that every replica holds
the same state and that no node crashed (see :mod:`tests.jepsen.runner`).  A failure prints the
seed, the nemesis schedule, the smallest failing key history, the node log
tails and the directory holding the full history and logs.  Set
``JEPSEN_SEED`` to replay a seed's schedule; run ``python -m tests.jepsen``
for longer and larger runs.

The ``disk`` nemesis (fill, then free, nodes' volumes) runs for a shorter
budget, ``JEPSEN_DISK_TIME`` seconds (default 10), and only where tmpfs
volumes can be mounted (as root, as in CI); it is skipped elsewhere, and
``mixed`` then picks among the other nemeses.

The proxy tests at the end check the partition machinery itself.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from redraft.examples.clone.zset import ZSet
from tests import tmpfs
from tests.jepsen.datatypes import TKind, TOp, check_ops, parse_final
from tests.jepsen.harness import JCluster, MachineState, classify_error, plain
from tests.jepsen.history import Outcome
from tests.jepsen.nemesis import NEMESES
from tests.jepsen.proxy import Mode, ProxyNet
from tests.jepsen.runner import RunConfig, _state_diff, run

RUN_TIME = float(os.environ.get("JEPSEN_TIME", "18"))
DISK_TIME = float(os.environ.get("JEPSEN_DISK_TIME", "10"))
SEED = int(os.environ["JEPSEN_SEED"]) if os.environ.get("JEPSEN_SEED") else None


@pytest.mark.slow
@pytest.mark.timeout(int(RUN_TIME) + 200)
@pytest.mark.parametrize("nemesis", list(NEMESES))
def test_cluster_stays_correct_under(nemesis: str, tmp_path: Path) -> None:
    budget = RUN_TIME
    if nemesis == "disk":
        if (reason := tmpfs.unavailable()) is not None:
            pytest.skip(reason)
        budget = min(RUN_TIME, DISK_TIME)
    result = run(RunConfig(nemesis=nemesis, time=budget, seed=SEED, base=tmp_path / nemesis))
    print(result.report)
    assert result.ok, result.report
    # A run that injected nothing or served nothing proved nothing.
    assert result.faults > 0, result.report
    assert result.ops > 0, result.report


# ------------------------------------------------------------ the machinery


def test_only_guaranteed_errors_count_as_failed_writes() -> None:
    assert classify_error("TRY 127.0.0.1:7481") == (Outcome.FAIL, "127.0.0.1:7481")
    assert classify_error("leader not known") == (Outcome.FAIL, "")
    assert classify_error(
        "leadership changed before the command committed; it was not applied"
    ) == (Outcome.FAIL, "")
    assert (
        classify_error("TIMEOUT the command did not commit in time; it may still be applied")[0]
        is Outcome.UNKNOWN
    )
    assert classify_error("something unexpected")[0] is Outcome.UNKNOWN
    # A leader with a full disk and no one to hand over to refuses before proposing.
    assert classify_error(
        "MISCONF disk full on 127.0.0.1:7481: disk full: write to /d/log failed: "
        "[Errno 28] No space left on device; writes are refused until space returns"
    ) == (Outcome.FAIL, "")


@pytest.mark.timeout(60)
def test_volumes_are_filled_freed_kept_through_a_wipe_and_unmounted(tmp_path: Path) -> None:
    if (reason := tmpfs.unavailable()) is not None:
        pytest.skip(reason)
    cluster = JCluster(tmp_path, 2, volume_size=4 << 20)
    node = cluster.nodes[0]
    try:
        cluster._mount_volumes(4 << 20)
        assert node.volume is not None and os.path.ismount(node.dir)
        (node.dir / "log").mkdir()
        (node.dir / "log" / "wal").write_bytes(b"x" * 10_000)
        assert node.fill_disk() > 0
        assert node.volume.free_bytes() == 0
        with pytest.raises(OSError):
            (node.dir / "more").write_bytes(b"y" * 10_000)
        # A wiped node (it lost its data) restarts on the same volume, still full.
        node.wipe()
        assert [p.name for p in node.dir.iterdir()] == [tmpfs.FILLER]
        assert node.top_up_disk() > 0 and node.volume.free_bytes() == 0
        (node.dir / "snapshots").mkdir()
        assert node.free_disk() and not node.free_disk()
        (node.dir / "snapshots" / "snap").write_bytes(b"z" * 10_000)
    finally:
        cluster.stop(keep_data=True)
    assert cluster.unmount_errors == []
    assert not any(os.path.ismount(n.dir) for n in cluster.nodes)
    # A failed run keeps what the nodes wrote, in their data dirs.
    assert (node.dir / "snapshots" / "snap").read_bytes() == b"z" * 10_000


# ------------------------------------------------ the data types' checker

LIST = b"types:list:0"
HASH = b"types:hash:0"
ZKEY = b"types:zset:0"


def _op(
    kind: TKind,
    key: bytes,
    arg: bytes = b"",
    amount: int = 0,
    *,
    at: tuple[float, float] = (0.0, 1.0),
    outcome: str = "ok",
    reply: object = None,
) -> TOp:
    out = Outcome(outcome)
    done = math.inf if out is Outcome.UNKNOWN else at[1]
    return TOp(kind, key, arg, amount, at[0], done, out, reply)


def _push(value: bytes, at: tuple[float, float], outcome: str = "ok") -> TOp:
    return _op(TKind.RPUSH, LIST, value, at=at, outcome=outcome, reply=1)


def _list(*items: bytes) -> dict[bytes, object]:
    return {LIST: ("list", items) if items else None}


def _failures(ops: list[TOp], final: dict[bytes, object], linearizable: bool = True) -> str:
    return "\n".join(check_ops(ops, final, linearizable=linearizable))  # type: ignore[arg-type]


def test_types_list_check_passes_a_queue_and_allows_unknown_outcomes() -> None:
    ops = [
        _push(b"a", (0, 1)),
        _push(b"b", (2, 3)),
        _push(b"c", (4, math.inf), "unknown"),
        _push(b"d", (5, 6)),
        _push(b"x", (5, 6), "fail"),
        _op(TKind.LPOP, LIST, at=(7, 8), reply=b"a"),
        _op(TKind.LPOP, LIST, at=(9, 10), outcome="unknown"),
        _op(TKind.LRANGE, LIST, at=(6.5, 6.6), reply=(b"a", b"b", b"d")),
    ]
    # The unknown pop took b, the unknown push never applied.
    assert _failures(ops, _list(b"d")) == ""
    # ... or the unknown push applied (late, after d) and the unknown pop did not.
    assert _failures(ops, _list(b"b", b"d", b"c")) == ""


def test_types_list_check_catches_a_lost_acknowledged_push() -> None:
    ops = [_push(b"a", (0, 1)), _push(b"b", (2, 3)), _op(TKind.LPOP, LIST, at=(4, 5), reply=b"a")]
    assert "acknowledged pushes lost" in _failures(ops, _list())
    # An LPOP of unknown outcome could have taken it: no failure.
    unknown = _op(TKind.LPOP, LIST, at=(6, 7), outcome="unknown")
    assert _failures([*ops, unknown], _list()) == ""
    # ... but not if it was pushed after a value that is still there.
    ops = [_push(b"a", (0, 1)), _push(b"b", (2, 3)), unknown]
    assert "removed from the head behind one that remains" in _failures(ops, _list(b"a"))


def test_types_list_check_catches_reordering_duplicates_and_refused_pushes() -> None:
    ops = [_push(b"a", (0, 1)), _push(b"b", (2, 3)), _push(b"c", (2, 3), "fail")]
    assert "out of push order" in _failures(ops, _list(b"b", b"a"))
    assert "twice in a list" in _failures(ops, _list(b"a", b"b", b"b"))
    assert "whose push was refused" in _failures(ops, _list(b"a", b"b", b"c"))
    assert "never pushed" in _failures(ops, _list(b"a", b"b", b"z"))
    popped = _op(TKind.LPOP, LIST, at=(4, 5), reply=b"a")
    assert "popped value still in the list" in _failures([*ops, popped], _list(b"a", b"b"))
    # A read whose surviving values are not the final list's head.
    read = _op(TKind.LRANGE, LIST, at=(4, 5), reply=(b"a", b"b"))
    assert "does not continue" in _failures([*ops, read], _list(b"b", b"a"))


def _hash(fields: dict[bytes, bytes]) -> dict[bytes, object]:
    return {HASH: ("hash", fields) if fields else None}


def test_types_hash_check_bounds_the_counter_and_keeps_acknowledged_fields() -> None:
    incr = [
        _op(TKind.HINCRBY, HASH, b"n", 2, at=(0, 1), reply=2),
        _op(TKind.HINCRBY, HASH, b"n", 3, at=(2, 3), reply=5),
        _op(TKind.HINCRBY, HASH, b"n", 4, at=(4, 5), outcome="unknown"),
    ]
    hset = _op(TKind.HSET, HASH, b"f1", at=(0, 1), reply=1)
    ok = {b"n": b"5", b"f1": b"vf1"}
    assert _failures([*incr, hset], _hash(ok)) == ""
    assert _failures([*incr, hset], _hash({**ok, b"n": b"9"})) == ""
    assert "final value out of bounds" in _failures([*incr, hset], _hash({**ok, b"n": b"4"}))
    assert "final value out of bounds" in _failures([*incr, hset], _hash({**ok, b"n": b"10"}))
    twice = [*incr[:1], _op(TKind.HINCRBY, HASH, b"n", 2, at=(2, 3), reply=2)]
    assert "one total returned twice" in _failures(twice, _hash({b"n": b"4"}))
    # The acknowledged HSET lost, or holding another value.
    assert "acknowledged field lost" in _failures([*incr, hset], _hash({b"n": b"5"}))
    assert "another value" in _failures([*incr, hset], _hash({**ok, b"f1": b"x"}))
    # An HDEL of unknown outcome may have removed it; an acknowledged one must have.
    maybe = _op(TKind.HDEL, HASH, b"f1", at=(2, 3), outcome="unknown")
    assert _failures([*incr, hset, maybe], _hash({b"n": b"5"})) == ""
    gone = _op(TKind.HDEL, HASH, b"f1", at=(2, 3), reply=1)
    assert "back after its removal" in _failures([*incr, hset, gone], _hash(ok))
    missed = _op(TKind.HDEL, HASH, b"f1", at=(2, 3), reply=0)
    assert "did not find its field" in _failures([*incr, hset, missed], _hash({b"n": b"5"}))


def test_types_hash_reads_must_be_recent_only_when_linearizable() -> None:
    hset = _op(TKind.HSET, HASH, b"f1", at=(0, 1), reply=1)
    stale = _op(TKind.HGETALL, HASH, at=(2, 3), reply={})
    final = _hash({b"f1": b"vf1"})
    assert "acknowledged field lost" in _failures([hset, stale], final, linearizable=True)
    assert _failures([hset, stale], final, linearizable=False) == ""
    phantom = _op(TKind.HGETALL, HASH, at=(2, 3), reply={b"f9": b"vf9"})
    assert "no write explains" in _failures([hset, phantom], final, linearizable=False)


def test_types_zset_check() -> None:
    ops = [
        _op(TKind.ZINCRBY, ZKEY, b"c0", 2, at=(0, 1), reply=2.0),
        _op(TKind.ZADD, ZKEY, b"m1", -5, at=(0, 1), reply=1),
        _op(TKind.ZADD, ZKEY, b"m2", 7, at=(0, 1), reply=1),
        _op(TKind.ZREM, ZKEY, b"m2", at=(2, 3), reply=1),
    ]
    good = {ZKEY: ("zset", ((b"m1", -5.0), (b"c0", 2.0)))}
    assert _failures(ops, good) == ""
    assert "out of order" in _failures(ops, {ZKEY: ("zset", ((b"c0", 2.0), (b"m1", -5.0)))})
    assert "another value" in _failures(ops, {ZKEY: ("zset", ((b"m1", -4.0), (b"c0", 2.0)))})
    assert "acknowledged member lost" in _failures(ops, {ZKEY: ("zset", ((b"c0", 2.0),))})
    assert "final value out of bounds" in _failures(ops, {ZKEY: ("zset", ((b"m1", -5.0),))})
    back = {ZKEY: ("zset", ((b"m1", -5.0), (b"c0", 2.0), (b"m2", 7.0)))}
    assert "back after its removal" in _failures(ops, back)
    assert parse_final("zset", [b"m1", b"-5", b"c0", b"2"]) == good[ZKEY]


def test_replica_comparison_covers_every_type() -> None:
    z = ZSet()
    z.add(b"m", 1.5)
    values = {b"l": deque([b"a", b"b"]), b"h": {b"f": b"v"}, b"s": {b"x", b"y"}, b"z": z}
    objects = {k: plain(v) for k, v in values.items()}
    assert objects[b"z"] == ("zset", ((b"m", 1.5),))
    a = MachineState("n1", 5, 1, {b"k": b"v"}, {}, objects)
    assert _state_diff(a, MachineState("n2", 5, 1, {b"k": b"v"}, {}, dict(objects))) == ""
    for key, other in [
        (b"l", deque([b"b", b"a"])),
        (b"h", {b"f": b"w"}),
        (b"s", {b"x"}),
        (b"z", ZSet()),
    ]:
        changed = {**objects, key: plain(other)}
        assert repr(key.decode()) in _state_diff(
            a, MachineState("n2", 5, 1, {b"k": b"v"}, {}, changed)
        )
    # And a list against the same items held as another type.
    assert _state_diff(
        a,
        MachineState(
            "n2", 5, 1, {b"k": b"v"}, {}, {**objects, b"l": ("set", frozenset([b"a", b"b"]))}
        ),
    )


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A loopback echo server."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


@pytest.fixture
def net() -> Iterator[ProxyNet]:
    n = ProxyNet()
    yield n
    n.close()


def _roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.timeout(30)
def test_proxy_forwards_then_drop_resets_and_refuses(echo_port: int, net: ProxyNet) -> None:
    port = net.add(("a", "b"), echo_port)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert _roundtrip(s, b"hello") == b"hello"
        net.cut([("a", "b")])
        with pytest.raises(OSError):
            s.sendall(b"more")
            if not s.recv(10):
                raise ConnectionResetError("closed")
    # Accepted, then reset at once: nothing ever comes back.
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s, pytest.raises(OSError):
        s.sendall(b"x")
        if not s.recv(10):
            raise ConnectionResetError("closed")
    net.heal()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert _roundtrip(s, b"again") == b"again"


@pytest.mark.timeout(30)
def test_proxy_stall_holds_bytes_and_delivers_them_on_heal(echo_port: int, net: ProxyNet) -> None:
    port = net.add(("a", "b"), echo_port)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert _roundtrip(s, b"one") == b"one"
        net.cut([("a", "b")], stall=True)
        s.sendall(b"late")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(10)
        late = socket.create_connection(("127.0.0.1", port), timeout=2)
        late.sendall(b"new")
        net.heal()
        s.settimeout(2)
        assert s.recv(10) == b"late"
        with late:
            late.settimeout(2)
            assert late.recv(10) == b"new"


@pytest.mark.timeout(30)
def test_proxy_links_are_independent_so_cuts_can_be_one_way(echo_port: int, net: ProxyNet) -> None:
    ab = net.add(("a", "b"), echo_port)
    ba = net.add(("b", "a"), echo_port)
    net.cut([("a", "b")])
    assert net.modes() == {("a", "b"): Mode.DROP, ("b", "a"): Mode.OPEN}
    with socket.create_connection(("127.0.0.1", ba), timeout=2) as s:
        assert _roundtrip(s, b"still") == b"still"
    deadline = time.monotonic() + 2
    with socket.create_connection(("127.0.0.1", ab), timeout=2) as s:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        with pytest.raises(OSError):
            s.sendall(b"x")
            if not s.recv(10):
                raise ConnectionResetError("closed")
