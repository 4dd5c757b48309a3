"""Pub/sub and server push: sessions on their own, a differential run against redis-server, a cluster.

* Sessions with a fake group (writes wait until the test commits them):
  subscribing, RESP2's subscribed mode, RESP3 push frames and where they go
  among the replies owed, a SUBSCRIBE pipelined behind a PUBLISH taking
  effect in its place, the output-buffer limit for slow subscribers,
  ``Conn.push`` from a machine, RESET and closed connections.
* The same random sequences of (un)subscribe/publish/PUBSUB commands over
  three connections sent to a redraft node and to a real redis-server,
  RESP2 and RESP3, replies compared byte for byte (where Redis's order is
  its hash tables', as a set).
* A real 3-node cluster: a subscriber on a follower receives in order what
  was published at the leader, PUBLISH answers the leader's receivers, and
  a subscriber that does not read is dropped while the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

import pytest

from redraft.builtins import HANDLERS
from redraft.errors import ErrDisabled, ErrUnknownCommand, ErrWrongNumberOfArguments
from redraft.machine import OK, Applier, Command, Conn, Machine, Respond, Write
from redraft.node import Node
from redraft.options import Options
from redraft.pubsub import PUBLISH, SPUBLISH, PubSub
from redraft.registry import Registry
from redraft.replies import WRITE, Line, Slot, answer
from redraft.resp import encode_command
from redraft.security import Security
from redraft.session import Ending, Requests, Session, Shared
from redraft.testing import free_ports, wait_for
from tests.cluster import running_cluster

pytestmark = pytest.mark.timeout(60)


class KV(Machine):
    """A tiny machine: GET/SET, and SHOUT, which pushes its arguments to the caller."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def reads(self) -> dict[str, Any]:
        return {"get": self._get}

    def writes(self) -> dict[str, Write]:
        return {"set": Write(self._set, _two_args)}

    def _get(self, m: Applier, args: list[bytes]) -> Any:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        return self.data.get(args[1])

    def _set(self, m: Applier, args: list[bytes]) -> Any:
        self.data[args[1]] = args[2]
        return OK

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if cmd.name == "shout" and conn is not None:
            conn.push([b"shout", *cmd.args[1:]])  # out of band, then the reply
            return OK
        raise ErrUnknownCommand()

    def snapshot(self, wr: IO[bytes]) -> None:
        raise ErrDisabled("no snapshots")

    def restore(self, rd: IO[bytes]) -> None:
        raise ErrDisabled("no snapshots")


def _two_args(args: list[bytes]) -> None:
    if len(args) != 3:
        raise ErrWrongNumberOfArguments()


# --------------------------------------------------------------------- sessions


class FakeGroup:
    """Keeps writes until :meth:`commit` applies them as a log entry would, on this node."""

    def __init__(self, machine: KV, pubsub: PubSub) -> None:
        self.machine = machine
        self.pubsub = pubsub
        self.leader = True
        self.writes: list[tuple[Slot, list[bytes]]] = []
        self.batch: list[list[bytes]] = []
        self.runs: list[Slot] = []

    def read(self, conn: Line, slot: Slot | None, respond: Respond | None, name: str) -> Any:
        return respond(None) if respond is not None else None

    def write(
        self, conn: Line, slot: Slot | None, args: list[bytes], respond: Respond | None, name: str
    ) -> Slot:
        slot = slot or conn.new_slot(WRITE)
        slot.respond = respond
        slot.name = name
        self.writes.append((slot, args))
        return slot

    def open_run(self, slot: Slot) -> list[list[bytes]]:
        self.runs.append(slot)
        return self.batch

    def requests(self) -> Requests:
        return Requests(
            lambda: True,
            self.read,
            self.write,
            self.open_run,
            lambda: 0,
            lambda *a: False,
            lambda: "",
        )

    def commit(self) -> None:
        """Apply every write so far, in order, each answered as it is applied."""
        for slot, args in self.writes:
            if args[0] == PUBLISH:
                result = self.pubsub.publish(args)
            elif args[0] == SPUBLISH:
                result = self.pubsub.spublish(args)
            else:
                result = self.machine._set(_NoApplier(), args)
            answer([slot], [result])
        self.writes = []
        results = [self.machine._set(_NoApplier(), a) for a in self.batch]
        answer(self.runs, results)
        self.batch, self.runs = [], []


class _NoApplier(Applier):
    def apply(self, conn: Any, cmd: Any, mutate: Any, respond: Any) -> Any:
        return None if mutate is None else mutate()

    def now_ns(self) -> int:
        return 1

    def random(self) -> Any:
        raise AssertionError("not used")


class Fixture:
    """A node's worth of sessions over a fake group, with the real built-ins."""

    def __init__(self, **limits: Any) -> None:
        self.pubsub = PubSub()
        machine = KV()
        self.group = FakeGroup(machine, self.pubsub)
        opts = Options(log_level="warning", **limits)
        security = Security.from_options(opts, "127.0.0.1")
        ctx = SimpleNamespace(pubsub=self.pubsub, security=security, options=opts)
        builtins = {name: partial(h, ctx) for name, h in HANDLERS.items()}
        self.shared = Shared(
            Registry(builtins, machine), self.group.requests(), machine, opts, security
        )
        self.shared.forget.append(self.pubsub.forget)

    def session(self) -> Session:
        return Session(self.shared, "127.0.0.1:1")


def req(*commands: list[str]) -> bytes:
    return b"".join(encode_command(c) for c in commands)


def frame(*items: bytes | int | None, push: bool = False) -> bytes:
    out = b"%s%d\r\n" % (b">" if push else b"*", len(items))
    for item in items:
        if item is None:
            out += b"_\r\n" if push else b"$-1\r\n"
        elif isinstance(item, int):
            out += b":%d\r\n" % item
        else:
            out += b"$%d\r\n%s\r\n" % (len(item), item)
    return out


def test_a_subscriber_receives_what_is_published_once_applied() -> None:
    f = Fixture()
    sub, pub = f.session(), f.session()
    sub.feed(req(["SUBSCRIBE", "news", "weather"], ["PSUBSCRIBE", "n*"]))
    assert sub.take_output() == (
        frame(b"subscribe", b"news", 1)
        + frame(b"subscribe", b"weather", 2)
        + frame(b"psubscribe", b"n*", 3)
    )
    pub.feed(req(["PUBLISH", "news", "hello"], ["PUBLISH", "sports", "goal"]))
    assert pub.take_output() == b"" and sub.take_output() == b""  # logged, not applied yet
    f.group.commit()
    assert pub.take_output() == b":2\r\n:0\r\n"
    assert sub.take_output() == (
        frame(b"message", b"news", b"hello") + frame(b"pmessage", b"n*", b"news", b"hello")
    )
    assert f.pubsub.numsub([b"news", b"none"]) == [b"news", 1, b"none", 0]
    pub.feed(req(["PUBSUB", "NUMPAT"], ["PUBSUB", "CHANNELS", "w*"]))
    assert pub.take_output() == b":1\r\n*1\r\n$7\r\nweather\r\n"


def test_resp2_subscribed_mode_allows_only_subscribing_ping_quit_reset() -> None:
    f = Fixture()
    s = f.session()
    s.feed(req(["SUBSCRIBE", "a"], ["GET", "k"], ["PING"], ["PING", "x"], ["CLIENT", "ID"]))
    not_allowed = (
        b"-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
    )
    assert s.take_output() == (
        frame(b"subscribe", b"a", 1)
        + not_allowed % b"get"
        + frame(b"pong", b"")
        + frame(b"pong", b"x")
        + not_allowed % b"client|id"
    )
    s.feed(req(["UNSUBSCRIBE"], ["GET", "k"], ["PING"]))
    assert s.take_output() == frame(b"unsubscribe", b"a", 0) + b"$-1\r\n+PONG\r\n"
    assert s.hold is None


def test_resp3_pushes_and_runs_anything_while_subscribed() -> None:
    f = Fixture()
    s, pub = f.session(), f.session()
    s.feed(req(["HELLO", "3"]))
    s.take_output()
    s.feed(req(["SUBSCRIBE", "a"], ["GET", "k"], ["PING"]))
    assert s.take_output() == frame(b"subscribe", b"a", 1, push=True) + b"_\r\n+PONG\r\n"
    # A push goes out as it happens: ahead of a reply still owed, whose command has
    # not run yet (the SET runs when its entry is applied).
    s.feed(req(["SET", "k", "v"]))
    f.pubsub.publish([PUBLISH, b"a", b"first"])  # an entry applied before the SET's
    assert s.take_output() == frame(b"message", b"a", b"first", push=True)
    f.group.commit()
    assert s.take_output() == b"+OK\r\n"
    pub.feed(req(["PUBLISH", "a", "m"]))
    f.group.commit()
    assert s.take_output() == frame(b"message", b"a", b"m", push=True)
    assert pub.take_output() == b":1\r\n"


def test_resp2_pushes_never_pass_a_reply_owed() -> None:
    f = Fixture()
    s = f.session()
    s.feed(req(["SET", "k", "v"]))
    s.push([b"note", 1])  # what a machine's Conn.push does
    assert s.take_output() == b""
    f.group.commit()
    assert s.take_output() == b"+OK\r\n" + frame(b"note", 1)


def test_a_machine_pushes_with_conn_push() -> None:
    f = Fixture()
    s = f.session()
    assert isinstance(s, Conn)
    s.feed(req(["SHOUT", "hi"]))
    assert s.take_output() == frame(b"shout", b"hi") + b"+OK\r\n"
    s.feed(req(["HELLO", "3"]))
    s.take_output()
    s.feed(req(["SHOUT", "hi"]))
    assert s.take_output() == frame(b"shout", b"hi", push=True) + b"+OK\r\n"


def test_a_subscribe_behind_a_publish_takes_effect_in_its_place() -> None:
    f = Fixture()
    s = f.session()
    s.feed(req(["PUBLISH", "c", "before"], ["SUBSCRIBE", "c"], ["PING"]))
    assert s.take_output() == b""  # the SUBSCRIBE waits for the PUBLISH ahead of it
    assert f.pubsub.numsub([b"c"]) == [b"c", 0]
    f.group.commit()
    # As Redis: the PUBLISH found no one; then the subscription, then PING in subscribed mode.
    assert s.take_output() == b":0\r\n" + frame(b"subscribe", b"c", 1) + frame(b"pong", b"")
    s.feed(req(["PUBLISH", "c", "after"]))  # refused in RESP2 subscribed mode
    assert s.take_output().startswith(b"-ERR Can't execute 'publish'")


def test_held_requests_count_against_the_query_buffer() -> None:
    f = Fixture(max_query_buffer=4096)
    s = f.session()
    s.feed(req(["SET", "k", "v"], ["SUBSCRIBE", "c"]))
    s.feed(req(*[["PING", "x" * 100]] * 50))
    assert s.ending is Ending.NOW
    assert s.take_output().startswith(b"-ERR max query buffer length reached")


def test_a_slow_subscriber_is_dropped_and_the_others_keep_receiving() -> None:
    f = Fixture(max_output_buffer=10_000)
    slow, fast = f.session(), f.session()
    unsent = [0]
    slow.unsent = lambda: unsent[0]  # what the socket still holds, as the server reports it
    for s in (slow, fast):
        s.feed(req(["SUBSCRIBE", "c"]))
        s.take_output()
    big = b"x" * 3000
    for _ in range(3):
        assert f.pubsub.publish([PUBLISH, b"c", big]) == 2
        fast.take_output()
        slow.take_output()  # written to the socket...
        unsent[0] += 3000  # ...and not read by the client
    assert slow.ending is Ending.NO
    f.pubsub.publish([PUBLISH, b"c", big])
    assert slow.ending is Ending.ABORT
    assert f.pubsub.publish([PUBLISH, b"c", b"more"]) == 2  # until the socket is closed
    assert fast.take_output().endswith(frame(b"message", b"c", b"more"))
    assert slow.take_output() == b""  # nothing more goes to a dropped connection
    slow.lost()
    assert f.pubsub.publish([PUBLISH, b"c", b"last"]) == 1


def test_a_closed_connection_leaves_its_subscriptions() -> None:
    f = Fixture()
    s = f.session()
    s.feed(req(["SUBSCRIBE", "a", "b"], ["PSUBSCRIBE", "*"], ["SSUBSCRIBE", "s"]))
    s.lost()
    assert f.pubsub.numsub([b"a", b"b"]) == [b"a", 0, b"b", 0]
    assert f.pubsub.numpat() == 0 and f.pubsub.active(None) == [] and not f.pubsub.subscribers


def test_reset_unsubscribes_and_returns_to_resp2() -> None:
    f = Fixture()
    s = f.session()
    s.feed(req(["HELLO", "3"], ["CLIENT", "SETNAME", "me"]))
    s.take_output()
    s.feed(req(["SUBSCRIBE", "a"], ["PSUBSCRIBE", "p*"], ["RESET"], ["GET", "k"]))
    out = s.take_output()
    assert out.endswith(b"+RESET\r\n$-1\r\n") and s.name == ""
    assert f.pubsub.subscribers == {} and s.hold is None


def test_reset_deauthenticates_when_a_password_is_set() -> None:
    f = Fixture(auth="secret")
    s = f.session()
    s.feed(req(["AUTH", "secret"], ["RESET"], ["GET", "k"]))
    assert s.take_output() == b"+OK\r\n+RESET\r\n-NOAUTH Authentication required.\r\n"


def test_shard_channels_are_a_namespace_of_their_own() -> None:
    f = Fixture()
    s = f.session()
    s.feed(req(["SSUBSCRIBE", "x"], ["SUBSCRIBE", "x"], ["SUNSUBSCRIBE"], ["UNSUBSCRIBE"]))
    assert s.take_output() == (
        frame(b"ssubscribe", b"x", 1)
        + frame(b"subscribe", b"x", 1)
        + frame(b"sunsubscribe", b"x", 0)
        + frame(b"unsubscribe", b"x", 0)
    )
    s.feed(req(["SSUBSCRIBE", "x"]))
    s.take_output()
    assert f.pubsub.spublish([SPUBLISH, b"x", b"m"]) == 1
    assert f.pubsub.publish([PUBLISH, b"x", b"m"]) == 0
    assert s.take_output() == frame(b"smessage", b"x", b"m")


# -------------------------------------------------------- a node beside redis-server


class ThreadNode:
    """A redraft node of :class:`KV` serving from a thread of the test process."""

    def __init__(self, base: Path) -> None:
        self.port = free_ports(1)[0]
        self.node = Node(
            base / "node", f"127.0.0.1:{self.port}", "", KV(), Options(log_level="warning")
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.node.serve())

    def start(self) -> None:
        self.thread.start()

        def ready() -> bool:
            with RawConn(self.port) as c:
                c.send([b"SET", b"seed", b"v"])
                return c.frame() == b"+OK\r\n"

        wait_for(ready, 15, "the node to serve", retry_on=(OSError,))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.node.close(), self.loop).result(15)
        self.thread.join(15)
        self.loop.close()


def _frame_end(buf: bytes, i: int) -> int:
    """Where the RESP2/RESP3 frame starting at ``buf[i]`` ends; -1 if incomplete."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        return -1
    kind, head = buf[i : i + 1], buf[i + 1 : nl]
    end = nl + 2
    if kind == b"$" or kind == b"=" or kind == b"!":
        n = int(head)
        if n < 0:
            return end
        return end + n + 2 if len(buf) >= end + n + 2 else -1
    if kind in (b"*", b">", b"~", b"%", b"|"):
        n = int(head)
        if kind in (b"%", b"|"):
            n *= 2
        for _ in range(max(n, 0)):
            end = _frame_end(buf, end)
            if end < 0:
                return -1
        return end
    return end  # + - : _ , # (


class RawConn:
    """A socket speaking raw RESP: requests out, whole reply frames (their bytes) in."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def __enter__(self) -> RawConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, args: list[bytes]) -> None:
        self.sock.sendall(encode_command(args))

    def frame(self) -> bytes:
        while True:
            end = _frame_end(self.buf, 0) if self.buf else -1
            if end >= 0:
                data, self.buf = self.buf[:end], self.buf[end:]
                return data
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def until(self, token: bytes) -> list[bytes]:
        """The frames before the one that carries ``token`` (a PING's), that one left out."""
        got: list[bytes] = []
        while True:
            f = self.frame()
            if token in f:
                return got
            got.append(f)


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_ports(1)[0]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None,
            10,
            "redis-server to listen",
            retry_on=(OSError,),
        )
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def redraft_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    node = ThreadNode(tmp_path_factory.mktemp("pubsub"))
    node.start()
    try:
        yield node.port
    finally:
        node.stop()


CHANNELS = [b"a", b"b", b"ab", b"news.x", b"news.y", b""]
PATTERNS = [b"a*", b"news.*", b"*", b"?", b"[ab]", b"n*s.?"]


def _random_command(rng: random.Random) -> list[bytes]:
    def some(pool: list[bytes]) -> list[bytes]:
        return [rng.choice(pool) for _ in range(rng.randint(1, 3))]

    def maybe(pool: list[bytes]) -> list[bytes]:
        return some(pool) if rng.random() < 0.6 else []

    def one(pool: list[bytes]) -> list[bytes]:
        return [rng.choice(pool)] if rng.random() < 0.5 else []

    choices: list[tuple[int, Callable[[], list[bytes]]]] = [
        (14, lambda: [b"SUBSCRIBE", *some(CHANNELS)]),
        (10, lambda: [b"UNSUBSCRIBE", *maybe(CHANNELS)]),
        (10, lambda: [b"PSUBSCRIBE", *some(PATTERNS)]),
        (8, lambda: [b"PUNSUBSCRIBE", *maybe(PATTERNS)]),
        (4, lambda: [b"SSUBSCRIBE", *some(CHANNELS)]),
        (3, lambda: [b"SUNSUBSCRIBE", *maybe(CHANNELS)]),
        (23, lambda: [b"PUBLISH", rng.choice(CHANNELS), b"m%d" % rng.randint(0, 99)]),
        (3, lambda: [b"SPUBLISH", rng.choice(CHANNELS), b"s%d" % rng.randint(0, 99)]),
        (4, lambda: [b"PUBSUB", b"NUMSUB", *some(CHANNELS)]),
        (3, lambda: [b"PUBSUB", b"NUMPAT"]),
        (4, lambda: [b"PUBSUB", b"CHANNELS", *one(PATTERNS)]),
        (2, lambda: [b"PUBSUB", b"SHARDNUMSUB", *some(CHANNELS)]),
        (4, lambda: [b"GET", b"k"]),
        (3, lambda: [b"PING", *one([b"hi"])]),
        (2, lambda: [b"RESET"]),
        (1, lambda: [b"PUBSUB", b"CHANNELS", b"x", b"y"]),
    ]
    weights = [w for w, _ in choices]
    (build,) = rng.choices([b for _, b in choices], weights)
    return build()


def _unordered(cmd: list[bytes]) -> bool:
    """Whether Redis answers ``cmd`` in the order of its hash tables (compare as a set)."""
    name = cmd[0].upper()
    if name in (b"UNSUBSCRIBE", b"SUNSUBSCRIBE") and len(cmd) == 1:
        return True  # all of the connection's channels: Redis walks a dict
    return name == b"PUBSUB" and len(cmd) > 1 and cmd[1].upper() in (b"CHANNELS", b"SHARDCHANNELS")


def _normalize(cmd: list[bytes], frames: list[bytes]) -> Any:
    if not _unordered(cmd) and cmd[0].upper() != b"PUBLISH":
        return frames
    if cmd[0].upper() == b"PUBSUB":
        # One array: its elements as a set (every element is a bulk string).
        return [sorted(f.split(b"\r\n")[1:]) if f[:1] == b"*" else f for f in frames]
    if cmd[0].upper() == b"PUBLISH":
        # On a subscriber: the message first, then one per matching pattern (Redis: dict order).
        return sorted(frames)
    # Unsubscribing from all: the names as a set, the counts in order.
    return (sorted(f.split(b"\r\n")[4] for f in frames), [f.rsplit(b":", 1)[1] for f in frames])


def _run(port: int, script: list[tuple[int, list[bytes]]], resp3: list[int]) -> list[Any]:
    """Run ``script`` over three connections; each step's frames on each connection."""
    conns = [RawConn(port) for _ in range(3)]
    try:
        for i in resp3:
            conns[i].send([b"HELLO", b"3"])
            conns[i].frame()  # the servers' descriptions differ
        steps: list[Any] = []
        for n, (who, cmd) in enumerate(script):
            conns[who].send(cmd)
            seen = []
            # The actor's own replies first, then everyone's pushes: a PING with a token
            # on each connection marks where this step's output ends.
            for k in [who] + [k for k in range(3) if k != who]:
                token = b"sync-%d-%d" % (n, k)
                conns[k].send([b"PING", token])
                frames = conns[k].until(token)
                seen.append(_normalize(cmd, frames))
            steps.append((who, cmd, seen))
        return steps
    finally:
        for c in conns:
            c.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("seed", "resp3"), [(1, []), (2, []), (3, [0, 1, 2]), (4, [1]), (5, [0, 2])]
)
def test_pubsub_replies_match_redis_byte_for_byte(
    redis_port: int, redraft_port: int, seed: int, resp3: list[int]
) -> None:
    rng = random.Random(seed)
    script = [(rng.randrange(3), _random_command(rng)) for _ in range(150)]
    ours = _run(redraft_port, script, resp3)
    theirs = _run(redis_port, script, resp3)
    for mine, real in zip(ours, theirs, strict=True):
        assert mine == real, f"step {script.index((mine[0], mine[1]))}: {mine[1]!r}"


def test_pubsub_help_and_errors_match_redis(redis_port: int, redraft_port: int) -> None:
    cmds = [
        [b"PUBSUB", b"HELP"],
        [b"PUBSUB", b"help", b"x"],
        [b"PUBSUB"],
        [b"PUBSUB", b"nope"],
        [b"PUBSUB", b"NUMPAT", b"x"],
        [b"PUBSUB", b"channels", b"a", b"b"],
        [b"PUBLISH", b"a"],
        [b"SUBSCRIBE"],
        [b"PSUBSCRIBE"],
        [b"SSUBSCRIBE"],
        [b"UNSUBSCRIBE"],
        [b"PUNSUBSCRIBE"],
        [b"SUNSUBSCRIBE"],
        [b"RESET", b"x"],
        [b"RESET"],
    ]
    script = [(0, c) for c in cmds]
    assert _run(redraft_port, script, []) == _run(redis_port, script, [])
    assert _run(redraft_port, script, [0]) == _run(redis_port, script, [0])


# -------------------------------------------------------------------- a cluster


@pytest.mark.timeout(120)
def test_a_cluster_delivers_in_log_order_to_every_node(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3, ["--client-output-buffer-limit", "1mb"]) as cluster:
        leader = cluster.wait_leader()
        followers = [n for n in cluster.nodes if n is not leader]
        with contextlib.ExitStack() as stack:
            on_follower = stack.enter_context(RawConn(followers[0].port))
            on_other = stack.enter_context(RawConn(followers[1].port))
            on_leader = stack.enter_context(RawConn(leader.port))
            on_follower.send([b"SUBSCRIBE", b"news"])
            assert on_follower.frame() == frame(b"subscribe", b"news", 1)
            on_other.send([b"HELLO", b"3"])
            on_other.frame()
            on_other.send([b"PSUBSCRIBE", b"n*"])
            assert on_other.frame() == frame(b"psubscribe", b"n*", 1, push=True)
            on_leader.send([b"SUBSCRIBE", b"news"])
            on_leader.frame()

            # At a follower PUBLISH is a write like any other: redirected to the leader.
            with pytest.raises(Exception, match="TRY"):
                followers[0].call("PUBLISH", "news", "x")
            publisher = leader.client()
            # The count is the leader's own receivers (the follower's subscribers not counted).
            counts = [publisher.publish("news", f"m{i}") for i in range(200)]
            assert counts == [1] * 200
            expected = [frame(b"message", b"news", b"m%d" % i) for i in range(200)]
            assert [on_follower.frame() for _ in range(200)] == expected
            assert [on_leader.frame() for _ in range(200)] == expected
            assert [on_other.frame() for _ in range(200)] == [
                frame(b"pmessage", b"n*", b"news", b"m%d" % i, push=True) for i in range(200)
            ]
            assert followers[0].call("PUBSUB", "NUMSUB", "news") == [b"news", 1]
            assert leader.call("PUBSUB", "NUMPAT") == 0
            assert followers[1].call("PUBSUB", "NUMPAT") == 1
            on_leader.close()  # from here on only the follower's subscribers read
            on_other.close()
            _slow_subscriber(cluster, leader, followers[0], on_follower)


@pytest.mark.timeout(120)
def test_in_proxy_mode_a_follower_forwards_publish_to_the_leader(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3, ["--redirect", "proxy"]) as cluster:
        leader = cluster.wait_leader()
        one, two = [n for n in cluster.nodes if n is not leader]
        with RawConn(one.port) as sub, RawConn(leader.port) as at_leader:
            sub.send([b"SUBSCRIBE", b"c"])
            sub.frame()
            at_leader.send([b"PSUBSCRIBE", b"*"])
            at_leader.frame()
            # Published at either follower: logged by the leader, counted there (its one
            # pattern subscriber), delivered everywhere in log order.
            assert [two.call("PUBLISH", "c", f"m{i}") for i in range(10)] == [1] * 10
            assert [one.call("PUBLISH", "c", f"n{i}") for i in range(10)] == [1] * 10
            want = [b"m%d" % i for i in range(10)] + [b"n%d" % i for i in range(10)]
            assert [sub.frame() for _ in want] == [frame(b"message", b"c", m) for m in want]
            assert [at_leader.frame() for _ in want] == [
                frame(b"pmessage", b"*", b"c", m) for m in want
            ]


def _slow_subscriber(cluster: Any, leader: Any, follower: Any, reader: RawConn) -> None:
    """A subscriber that does not read is dropped at the limit (1mb); the others go on."""
    big = b"x" * 32768
    count = 200  # 6.4 MB: past the limit and any socket buffers
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.extend(reader.frame() for _ in range(count)))
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", follower.port))
    try:
        slow.sendall(encode_command([b"SUBSCRIBE", b"news"]))
        cluster.wait(
            lambda: follower.call("PUBSUB", "NUMSUB", "news") == [b"news", 2],
            5,
            "the slow subscriber to subscribe",
        )
        thread.start()  # the reader keeps up
        publisher = leader.client()
        for i in range(count):
            assert publisher.publish("news", big + b"%d" % i) == 0  # none on the leader now
        thread.join(30)
        assert got == [frame(b"message", b"news", big + b"%d" % i) for i in range(count)]
        cluster.wait(
            lambda: follower.call("PUBSUB", "NUMSUB", "news") == [b"news", 1],
            10,
            "the slow subscriber to be dropped",
        )
        assert "over the output buffer limit" in Path(follower.log_path).read_text()
        publisher.publish("news", "still")
        assert reader.frame() == frame(b"message", b"news", b"still")
    finally:
        slow.close()
