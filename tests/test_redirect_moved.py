"""``--redirect moved``: a redraft cluster as Redis Cluster clients see it.

In moved mode a node that may not serve a command answers Redis Cluster's
``MOVED <slot> <leader>`` (the slot of that command's own key) or
``CLUSTERDOWN``, and ``CLUSTER SLOTS``/``SHARDS``/``NODES``/``INFO`` describe
one shard of every slot whose master is the leader.  The tests go from the
parts (hash slots, the error of each command of a pipelined run, the
CLUSTER replies, compared with a real Redis where one is installed) to real
processes driven by real cluster clients: ``redis-cli -c``, redis-py's
``RedisCluster`` and ioredis's ``Cluster``, through a leader's death.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from redraft.builtins import keyspecs
from redraft.builtins.cluster import DISABLED
from redraft.cli import build_parser, options_from_args
from redraft.errors import Redirect
from redraft.join import redirected_to
from redraft.keyslot import crc16, key_slot
from redraft.options import Options
from redraft.replies import fail
from redraft.resp import ErrorReply, ReplyParser, encode_command
from redraft.testing import LocalProcess, free_ports, request, wait_for
from tests.cluster import ROOT, Cluster, running_cluster
from tests.test_builtins import FakeCluster, run
from tests.test_session import FakeGroup, req, session

pytestmark = pytest.mark.timeout(90)

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
NODE = shutil.which("node")
JS = ROOT / "tests" / "js"

KEYS = [
    b"foo",
    b"bar",
    b"",
    b"123456789",
    b"{user1000}.following",
    b"{user1000}.followers",
    b"foo{}{bar}",
    b"foo{{bar}}zap",
    b"foo{bar}{zap}",
    b"{",
    b"}",
    b"{}",
    b"}{a}",
    b"a{b",
    b"{a}b",
    b"\xff\x00{\x01}\xfe",
    b"k" * 300,
]
"""Keys of every hashtag case of Redis's ``keyHashSlot``, and binary ones."""

KNOWN = {b"foo": 12182, b"bar": 5061, b"": 0, b"123456789": 12739, b"{a}b": 15495}
"""Slots real Redis gives (``CLUSTER KEYSLOT``), for machines without redis-server."""


def moved(key: bytes, leader: str = "127.0.0.1:2") -> bytes:
    return b"-MOVED %d %s\r\n" % (key_slot(key), leader.encode())


# --- hash slots -------------------------------------------------------------------


def test_crc16_is_xmodem_and_hashtags_follow_redis() -> None:
    assert crc16(b"123456789") == 0x31C3  # the XMODEM check value Redis's crc16.c cites
    for key, slot in KNOWN.items():
        assert key_slot(key) == slot
    # Redis's documented cases: the first "{", the first "}" after it, non-empty between.
    assert key_slot(b"{user1000}.following") == key_slot(b"user1000")
    assert key_slot(b"foo{}{bar}") == crc16(b"foo{}{bar}") % 16384
    assert key_slot(b"foo{{bar}}zap") == key_slot(b"{bar")
    assert key_slot(b"foo{bar}{zap}") == key_slot(b"bar")


# --- a follower's replies, command by command -------------------------------------------


def test_a_follower_answers_each_of_16_pipelined_sets_with_its_own_keys_slot() -> None:
    s, group = session(redirect="moved")
    group.leader = group.lease = False
    keys = [f"key:{i}".encode() for i in range(16)]
    s.feed(req(*[["SET", k.decode(), "v"] for k in keys]))
    assert s.take_output() == b"".join(moved(k) for k in keys)
    assert len({key_slot(k) for k in keys}) > 1  # the slots differ: each is its own
    # A command without arguments is routed by slot 0; a pipelined run of reads, per read.
    s.feed(req(["DBSIZE"], ["GET", "a"], ["MGET", "b", "c"], ["GET", "{a}x"]))
    assert s.take_output() == (
        b"-MOVED 0 127.0.0.1:2\r\n" + moved(b"a") + moved(b"b") + moved(b"{a}x")
    )


def test_try_mode_answers_as_before_byte_for_byte() -> None:
    s, group = session()
    group.leader = group.lease = False
    s.feed(req(*[["SET", f"key:{i}", "v"] for i in range(16)], ["GET", "a"], ["DBSIZE"]))
    assert s.take_output() == b"-TRY 127.0.0.1:2\r\n" * 18
    nobody = Redirect("")
    assert str(nobody) == "ERR leader not known"


class Leaderless(FakeGroup):
    """A follower that knows no leader (an election is under way)."""

    def write(self, *args: Any) -> Any:
        raise Redirect("")

    def read(self, *args: Any) -> Any:
        raise Redirect("")

    def open_run(self, slot: Any) -> None:
        return None


def test_without_a_leader_moved_mode_says_the_cluster_is_down() -> None:
    for mode, reply in [
        ("moved", b"-CLUSTERDOWN The cluster is down\r\n"),
        ("try", b"-ERR leader not known\r\n"),
    ]:
        s, group = session(redirect=mode)
        leaderless = Leaderless(group.machine)
        s.shared.requests = leaderless.requests()
        leaderless.lease = False
        s.feed(req(["SET", "a", "1"], ["SET", "b", "2"], ["GET", "a"], ["GET", "b"], ["DBSIZE"]))
        assert s.take_output() == reply * 5


def test_writes_queued_then_failed_with_a_redirect_name_their_own_slots() -> None:
    # What the node does with this turn's batch when it lost the leadership
    # before proposing it (Proposer.fail_batch): a run of SETs shares one
    # slot, INCR (the clone's command) has its own; each answers for its key.
    s, group = session(redirect="moved")
    s.feed(req(["SET", "k1", "v"], ["SET", "k2", "v"], ["SET", "k3", "v"], ["INCR", "n"]))
    s.feed(req(["SET", "k4", "v"]))
    slots = group.runs + [slot for slot, _ in group.writes]
    assert len(slots) == 3 and len(group.batch) == 4
    fail(slots, Redirect("127.0.0.1:9"))
    expected = b"".join(moved(k, "127.0.0.1:9") for k in [b"k1", b"k2", b"k3", b"n", b"k4"])
    assert s.take_output() == expected


def test_reads_and_writes_that_start_late_are_redirected_to_their_own_slots() -> None:
    s, group = session(redirect="moved")
    group.lease = False  # reads wait for a ReadIndex round
    # A round dropped by a leadership loss: a run of reads, one reply each.
    s.feed(req(["GET", "r1"], ["GET", "r2"], ["GET", "r3"]))
    fail(group.reads, Redirect("127.0.0.1:2"))
    group.reads = []
    assert s.take_output() == moved(b"r1") + moved(b"r2") + moved(b"r3")
    # A read behind a write starts once the write is answered: by then this
    # node follows.
    s.feed(req(["SET", "w", "1"], ["GET", "late"]))
    group.leader = False
    group.commit()
    assert s.take_output() == b"+OK\r\n" + moved(b"late")
    # A write behind a read starts once the read is served.
    group.leader = True
    s.feed(req(["GET", "first"], ["SET", "later", "1"]))
    group.leader = False
    group.confirm()
    assert s.take_output() == b"$-1\r\n" + moved(b"later")


def test_a_joining_node_follows_moved_as_it_follows_try() -> None:
    assert redirected_to("TRY 10.0.0.1:7481") == "10.0.0.1:7481"
    assert redirected_to("MOVED 3999 10.0.0.1:7481") == "10.0.0.1:7481"
    assert redirected_to("CLUSTERDOWN The cluster is down") is None
    assert redirected_to("ERR leader not known") is None


def test_the_redirect_mode_is_an_option_and_a_flag() -> None:
    assert Options().redirect == "try"
    with pytest.raises(ValueError, match="invalid redirect 'forward'"):
        Options(redirect="forward")
    parser = build_parser()
    assert options_from_args(parser.parse_args(["--redirect", "MOVED"])).redirect == "moved"
    assert options_from_args(parser.parse_args(["--redirect", "proxy"])).redirect == "proxy"
    assert options_from_args(parser.parse_args([])).redirect == "try"
    with pytest.raises(SystemExit):
        parser.parse_args(["--redirect", "forward"])


# --- CLUSTER and friends, with a fake node ----------------------------------------------


@dataclass
class Node(FakeCluster):
    """A node of two members (127.0.0.1:1 leads), in moved mode unless told otherwise."""

    options: Options = field(default_factory=lambda: Options(log_level="warning", redirect="moved"))


def ask(ctx: FakeCluster, *command: str | bytes) -> Any:
    """One command's reply, parsed (an error reply as its text)."""
    (reply,) = ReplyParser().parse(run(ctx, list(command)))
    return str(reply) if isinstance(reply, ErrorReply) else reply


def nid(addr: str) -> bytes:
    return sha1(addr.encode()).hexdigest().encode()


ERRORS = [
    (["CLUSTER"], "ERR wrong number of arguments for 'cluster' command"),
    (["CLUSTER", "KEYSLOT"], "ERR wrong number of arguments for 'cluster|keyslot' command"),
    (
        ["CLUSTER", "keyslot", "a", "b"],
        "ERR wrong number of arguments for 'cluster|keyslot' command",
    ),
    (["CLUSTER", "MYID", "x"], "ERR wrong number of arguments for 'cluster|myid' command"),
    (["CLUSTER", "SLOTS", "x"], "ERR wrong number of arguments for 'cluster|slots' command"),
    (["CLUSTER", "SHARDS", "x"], "ERR wrong number of arguments for 'cluster|shards' command"),
    (["CLUSTER", "NODES", "x"], "ERR wrong number of arguments for 'cluster|nodes' command"),
    (["CLUSTER", "INFO", "x"], "ERR wrong number of arguments for 'cluster|info' command"),
    (["CLUSTER", "nosuch"], "ERR unknown subcommand 'nosuch'. Try CLUSTER HELP."),
    (["READONLY", "x"], "ERR wrong number of arguments for 'readonly' command"),
    (["READWRITE", "x"], "ERR wrong number of arguments for 'readwrite' command"),
    (["ASKING", "x"], "ERR wrong number of arguments for 'asking' command"),
]
"""Malformed requests and Redis's answers, which come before any mode's."""

STANDALONE = [["CLUSTER", "SLOTS"], ["CLUSTER", "INFO"], ["READONLY"], ["READWRITE"], ["ASKING"]]
"""What a standalone Redis refuses: cluster support is disabled."""


@pytest.mark.parametrize(("command", "error"), ERRORS)
def test_malformed_cluster_commands_get_redis_errors_in_every_mode(
    command: list[str], error: str
) -> None:
    assert ask(Node(), *command) == error
    assert ask(Node(options=Options(log_level="warning")), *command) == error


def test_in_try_mode_the_node_is_standalone_but_keyslot_works() -> None:
    node = Node(options=Options(log_level="warning"))
    for command in STANDALONE:
        assert ask(node, *command) == DISABLED == "ERR This instance has cluster support disabled"
    assert ask(node, "CLUSTER", "KEYSLOT", "{a}b") == 15495
    moved_node = Node()
    for command in (["READONLY"], ["READWRITE"], ["ASKING"]):
        assert ask(moved_node, *command) == b"OK"
    assert ask(moved_node, "CLUSTER", "KEYSLOT", "{a}b") == 15495
    assert ask(moved_node, "CLUSTER", "MYID") == nid("127.0.0.1:1")
    assert ask(moved_node, "CLUSTER", "MEET", "127.0.0.1", "7000").startswith(
        "ERR CLUSTER MEET is not supported by redraft"
    )
    assert ask(node, "CLUSTER", "MEET", "127.0.0.1", "7000") == DISABLED


def test_the_map_is_one_shard_the_leader_its_master() -> None:
    node = Node(id="127.0.0.1:2", is_leader=False, state_name="Follower")
    one, two = nid("127.0.0.1:1"), nid("127.0.0.1:2")
    assert ask(node, "CLUSTER", "SLOTS") == [
        [0, 16383, [b"127.0.0.1", 1, one, []], [b"127.0.0.1", 2, two, []]]
    ]
    (shard,) = ask(node, "CLUSTER", "SHARDS")
    assert shard[:3] == [b"slots", [0, 16383], b"nodes"]
    master, replica = shard[3]
    assert master == [
        *[b"id", one, b"port", 1, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1"],
        *[b"role", b"master", b"replication-offset", 7, b"health", b"online"],
    ]
    assert replica[:2] == [b"id", two] and replica[9] == b"replica"
    lines = ask(node, "CLUSTER", "NODES").decode().splitlines()
    assert lines[0].split() == [
        *[one.decode(), "127.0.0.1:1@1", "master", "-", "0", lines[0].split()[5]],
        *["3", "connected", "0-16383"],
    ]
    assert lines[1].split()[1:] == [
        *["127.0.0.1:2@2", "myself,slave", one.decode(), "0", "0", "3", "connected"]
    ]
    info = ask(node, "CLUSTER", "INFO").decode()
    assert info.startswith("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n")
    assert "cluster_known_nodes:2\r\ncluster_size:1\r\ncluster_current_epoch:3\r\n" in info


def test_without_a_leader_no_slot_is_served() -> None:
    node = Node(leader="", is_leader=False, state_name="Candidate")
    assert ask(node, "CLUSTER", "SLOTS") == []
    shards = ask(node, "CLUSTER", "SHARDS")
    assert [s[:2] for s in shards] == [[b"slots", []]] * 2
    lines = ask(node, "CLUSTER", "NODES").decode().splitlines()
    assert [line.split()[2:4] for line in lines] == [["myself,master", "-"], ["master", "-"]]
    assert all(not line.endswith("0-16383") for line in lines)
    info = ask(node, "CLUSTER", "INFO").decode()
    assert "cluster_state:fail\r\ncluster_slots_assigned:0\r\n" in info


def test_info_and_hello_say_cluster_only_in_moved_mode() -> None:
    for options, mode, enabled in [
        (Options(log_level="warning", redirect="moved"), b"cluster", b"1"),
        (Options(log_level="warning"), b"standalone", b"0"),
    ]:
        node = Node(options=options)
        text = ask(node, "INFO")
        assert b"\r\nredis_mode:" + mode + b"\r\n" in text
        assert b"# Cluster\r\ncluster_enabled:" + enabled + b"\r\n" in text
        assert ask(node, "INFO", "cluster") == b"# Cluster\r\ncluster_enabled:" + enabled + b"\r\n"
        hello = ask(node, "HELLO", "2")
        assert dict(zip(hello[::2], hello[1::2], strict=True))[b"mode"] == mode


def test_command_tells_cluster_clients_where_keys_are() -> None:
    node = Node()
    table = {entry[0]: entry for entry in ask(node, "COMMAND")}
    assert ask(node, "COMMAND", "COUNT") == len(table)
    assert table[b"set"] == [b"set", -3, [b"write", b"denyoom"], 1, 1, 1]
    assert table[b"mset"][3:] == [1, -1, 2]  # MSET k v k v: every other argument
    assert table[b"cluster"][3:] == [0, 0, 0]  # a built-in: no keys
    assert ask(node, "COMMAND", "INFO", "GET", "nosuch") == [table[b"get"], None]
    # The clone has its own table (Machine.command_table): the same in every mode.
    try_node = Node(options=Options(log_level="warning"))
    assert ask(try_node, "COMMAND", "COUNT") == len(table)
    assert ask(try_node, "COMMAND", "INFO", "GET") == [table[b"get"]]


# --- the same against a real Redis ---------------------------------------------------


@contextlib.contextmanager
def redis_server(workdir: Path, *flags: str) -> Iterator[int]:
    """A real redis-server on a free loopback port (stopped by pid at the end)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    # In cluster mode redis also listens on a bus port, by default port + 10000,
    # which may be in the kernel's ephemeral range and taken: choose it too.
    port, bus = free_ports(2)
    if "--cluster-enabled" in flags:
        flags = (*flags, "--cluster-port", str(bus))
    log = workdir / "redis.log"
    proc = LocalProcess(log, cwd=workdir)
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc.launch([*argv, "--appendonly", "no", "--dir", str(workdir), *flags])
    try:
        try:
            wait_for(lambda: request(port, "PING") == b"PONG", 10, "redis-server to answer")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; its log:\n{log.read_text(errors='replace')}") from exc
        yield port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A one-node Redis Cluster holding every slot."""
    with redis_server(tmp_path_factory.mktemp("redis-cluster"), "--cluster-enabled", "yes") as p:
        assert request(p, "CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"OK"
        yield p


@pytest.fixture(scope="module")
def real_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with redis_server(tmp_path_factory.mktemp("redis-standalone")) as port:
        yield port


def real(port: int, *command: str | bytes) -> Any:
    reply = request(port, *command)
    return str(reply) if isinstance(reply, ErrorReply) else reply


def shape(value: Any) -> Any:
    """A reply with its scalars replaced by their types (lists kept)."""
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def test_keyslot_agrees_with_real_redis(real_cluster: int) -> None:
    for key in KEYS:
        theirs = real(real_cluster, "CLUSTER", "KEYSLOT", key)
        assert key_slot(key) == theirs, key
        assert ask(Node(), "CLUSTER", "KEYSLOT", key) == theirs, key
    for key, slot in KNOWN.items():
        assert real(real_cluster, "CLUSTER", "KEYSLOT", key) == slot


def test_errors_and_shapes_agree_with_real_redis(real_cluster: int, real_standalone: int) -> None:
    for command, _ in ERRORS:
        assert ask(Node(), *command) == real(real_cluster, *command), command
    try_node = Node(options=Options(log_level="warning"))
    for command in STANDALONE + [c for c, _ in ERRORS]:
        assert ask(try_node, *command) == real(real_standalone, *command), command
    for command in (["READONLY"], ["READWRITE"], ["ASKING"], ["CLUSTER", "MYID"]):
        assert shape(ask(Node(), *command)) == shape(real(real_cluster, *command))
    names = ["get", "set", "mset", "del", "incr", "lpush", "expire", "blpop"]
    ours, theirs = (
        ask(Node(), "COMMAND", "INFO", *names),
        real(real_cluster, "COMMAND", "INFO", *names),
    )
    assert ours == [entry[:6] for entry in theirs]  # name, arity, flags, first, last, step
    node = Node()
    ours, theirs = ask(node, "CLUSTER", "SLOTS"), real(real_cluster, "CLUSTER", "SLOTS")
    assert shape(ours[0][:3]) == shape(theirs[0])  # a range and its master
    ours, theirs = ask(node, "CLUSTER", "SHARDS"), real(real_cluster, "CLUSTER", "SHARDS")
    assert shape(ours[0][:3]) == shape(theirs[0][:3])
    assert ours[0][3][0][::2] == theirs[0][3][0][::2]  # the master's fields, in order
    assert shape(ours[0][3][0]) == shape(theirs[0][3][0])
    ours, theirs = ask(node, "CLUSTER", "INFO"), real(real_cluster, "CLUSTER", "INFO")
    assert [f.split(b":")[0] for f in ours.split(b"\r\n")] == [
        f.split(b":")[0] for f in theirs.split(b"\r\n")
    ]
    (theirs_line,) = real(real_cluster, "CLUSTER", "NODES").decode().splitlines()
    ours_line = ask(node, "CLUSTER", "NODES").decode().splitlines()[0]
    assert len(ours_line.split()) == len(theirs_line.split())
    assert ours_line.split()[2:4] == theirs_line.split()[2:4] == ["myself,master", "-"]
    assert ours_line.split()[-2:] == theirs_line.split()[-2:] == ["connected", "0-16383"]


def test_resp3_keeps_redis_shapes(real_cluster: int) -> None:
    # Each node of a range ends with its networking metadata: an empty map.
    ours = run(Node(), ["HELLO", "3"], ["CLUSTER", "SLOTS"])
    theirs = _raw(real_cluster, req(["HELLO", "3"], ["CLUSTER", "SLOTS"]), 2)
    assert theirs.endswith(b"\r\n%0\r\n")
    one = nid("127.0.0.1:1")
    assert b"*4\r\n$9\r\n127.0.0.1\r\n:1\r\n$40\r\n" + one + b"\r\n%0\r\n" in ours
    assert ours.endswith(b"%0\r\n") and ours.count(b"%0\r\n") == 2


def test_cluster_info_and_nodes_are_verbatim_strings_in_resp3(real_cluster: int) -> None:
    for sub in ("INFO", "NODES"):
        ours = run(Node(), ["HELLO", "3"], ["CLUSTER", sub])
        theirs = _raw(real_cluster, req(["HELLO", "3"], ["CLUSTER", sub]), 2)
        for reply in (ours, theirs):
            head, body = reply[reply.index(b"\r\n=") + 2 :].split(b"\r\n", 1)
            assert int(head[1:]) == len(body) - 2 and body.startswith(b"txt:"), reply
        assert run(Node(), ["CLUSTER", sub]).startswith(b"$")


def _raw(port: int, data: bytes, replies: int) -> bytes:
    """Send ``data``; the bytes of the first ``replies`` replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        got = b""
        parser = ReplyParser()
        count = 0
        while count < replies:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            count += len(parser.parse(chunk))
        return got


# --- real processes, real cluster clients -----------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("moved"), 3, ["--redirect", "moved"]) as c:
        yield c


def master_of(port: int) -> Any:
    """The master of the slots, as the node on ``port`` names it in CLUSTER SLOTS."""
    return request(port, "CLUSTER", "SLOTS")[0][2]


def follower(cluster: Cluster) -> Any:
    cluster.wait_leader()
    return cluster.followers()[0]


def test_16_pipelined_sets_at_a_follower_get_16_moved_replies(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    keys = [f"pipelined:{i}".encode() for i in range(16)]
    data = b"".join(encode_command([b"SET", k, b"v"]) for k in keys)
    got = _raw(follower(cluster).port, data, 16)
    assert got == b"".join(moved(k, leader.addr) for k in keys)


def test_redis_cli_in_cluster_mode_follows_moved(cluster: Cluster) -> None:
    if REDIS_CLI is None:
        pytest.skip("redis-cli is not installed (scripts/install-system-deps installs it)")
    port = str(follower(cluster).port)

    def cli(*args: str) -> str:
        out = subprocess.run(
            [REDIS_CLI, "-c", "-p", port, *args], capture_output=True, text=True, timeout=10
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert cli("SET", "cli:key", "from redis-cli") == "OK"
    assert cli("GET", "cli:key") == "from redis-cli"


def cluster_client(port: int) -> RedisCluster:
    return RedisCluster(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1)


def test_redis_py_cluster_client_through_a_follower(cluster: Cluster) -> None:
    with cluster_client(follower(cluster).port) as rc:
        assert rc.set("py:key", "value") is True
        assert rc.get("py:key") == b"value"
        assert rc.incr("py:counter") == 1
        assert rc.incr("py:counter") == 2
        # It found the leader from CLUSTER SLOTS and sends the writes there.
        assert rc.get_node_from_key("py:key").port == cluster.wait_leader().port


def node_js(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(JS / "cluster_client.js"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=JS,
    )


@pytest.fixture
def ioredis() -> None:
    if NODE is None:
        pytest.skip("node is not installed: the ioredis tests need Node.js")
    if not (JS / "node_modules" / "ioredis").is_dir():
        pytest.fail("ioredis is not installed: run `make setup` (scripts/install-js-deps)")


@pytest.mark.usefixtures("ioredis")
def test_ioredis_cluster_client_through_a_follower(cluster: Cluster) -> None:
    out = node_js("once", str(follower(cluster).port), "js:key", "from ioredis")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"set": "OK", "get": "from ioredis"}


def test_a_node_joins_through_a_follower_that_answers_moved(cluster: Cluster) -> None:
    via = follower(cluster)
    node = cluster.add_node()
    node.start(join=via.addr)  # --join follows MOVED to the leader as it follows TRY
    cluster.wait(lambda: cluster.voters() == len(cluster.nodes), 30, "the new node to vote")


@pytest.mark.usefixtures("ioredis")
def test_cluster_clients_keep_working_when_the_leader_dies(
    cluster: Cluster, tmp_path: Path
) -> None:
    leader = cluster.wait_leader()
    start = follower(cluster)
    marker = tmp_path / "leader-killed"
    loop = [str(marker), "40"]  # until 3 pairs succeed after the marker; 40 s at most
    js = subprocess.Popen(
        [str(NODE), str(JS / "cluster_client.js"), "until", str(start.port), "js:loop", *loop],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=JS,
    )
    try:
        with cluster_client(start.port) as rc:
            assert rc.set("py:loop", "0") is True  # its map now sends writes to the leader
            wait_for(marker.with_suffix(".running").exists, 15, "ioredis to be under way")
            leader.kill()  # SIGKILL, while ioredis writes and reads
            marker.touch()
            new = cluster.wait_leader(timeout=20, exclude=leader)
            # redis-py learns the new map from the nodes left (and MOVED).
            for i in range(1, 4):
                wait_for(
                    lambda i=i: rc.set("py:loop", i) and rc.get("py:loop") == b"%d" % i,
                    20,
                    f"redis-py's write {i} after the leader died",
                    interval=0.2,
                    retry_on=(redis.RedisError, RedisClusterException, OSError),
                )
            assert rc.get_node_from_key("py:loop").port == new.port
        out, err = js.communicate(timeout=45)
        assert js.returncode == 0, f"{out}\n{err}"
        assert json.loads(out)["after"] == 3
        # Every node left names the new leader (a follower hears of it within an election).
        want = [b"127.0.0.1", new.port, nid(new.addr), []]
        for n in cluster.nodes:
            if n.running:
                wait_for(lambda n=n: master_of(n.port) == want, 5, "every node's map to name it")
    finally:
        if js.poll() is None:
            js.kill()
            js.wait(timeout=10)


def test_a_machine_without_a_command_table_gets_redis_table_only_in_moved_mode() -> None:
    plain = {b"get": False, b"mycmd": True}
    moved = keyspecs.table([b"ping"], plain, {}, moved=True)
    standalone = keyspecs.table([b"ping"], plain, {}, moved=False)
    assert moved[b"zadd"][3:] == [1, 1, 1]  # Redis's keyed commands, for routing
    assert b"zadd" not in standalone
    assert moved[b"mycmd"] == [b"mycmd", -2, [b"write"], 1, 1, 1] == standalone[b"mycmd"]
    assert moved[b"ping"] == [b"ping", -1, [b"fast"], 0, 0, 0]
