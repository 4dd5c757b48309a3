"""The node end to end: real clone processes on loopback, real clients."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redraft.testing import LocalProcess, stop_all
from tests.cluster import ROOT, Cluster, free_ports, running_cluster, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), 3) as c:
        yield c


def raw(port: int, payload: bytes, expect_close: bool = False, timeout: float = 3.0) -> bytes:
    """Send raw bytes and collect what comes back (until close or a quiet moment)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        s.settimeout(0.5 if not expect_close else timeout)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_set_on_leader_then_get_everywhere_it_may_be_read(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.client() as c:
        assert c.set("greeting", "hello") is True
        assert c.get("greeting") == b"hello"
        assert c.incr("counter") == 1
        assert c.delete("greeting") == 1
        assert c.get("greeting") is None


def test_a_get_after_flushall_sees_the_new_empty_state(tmp_path: Path) -> None:
    # The parser answers GETs at the front of a read from the machine's
    # dicts, kept between applies; FLUSHALL replaces them: a GET after it
    # must not see the old ones.
    from redraft.resp import encode_command

    def send(*commands: str) -> bytes:
        return raw(port, b"".join(encode_command(c.split()) for c in commands))

    with running_cluster(tmp_path, 1) as one:
        port = one.wait_leader().port
        for _ in range(2):
            assert send("SET fk old") == b"+OK\r\n"
            assert send("GET fk", "GET fk") == b"$3\r\nold\r\n" * 2
            assert send("FLUSHALL") == b"+OK\r\n"
            assert send("GET fk", "GET fk") == b"$-1\r\n" * 2
            assert send("SET fk new") == b"+OK\r\n"
            assert send("GET fk", "GET fk") == b"$3\r\nnew\r\n" * 2


def test_follower_redirects_with_a_dialable_address(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = cluster.followers()[0]
    with follower.client() as c, pytest.raises(redis.ResponseError) as err:
        c.set("k", "v")
    assert str(err.value) == f"TRY {leader.addr}"
    host, port = str(err.value).split()[1].rsplit(":", 1)
    with redis.Redis(host=host, port=int(port), socket_timeout=5) as c:
        assert c.set("k", "v") is True


def test_follower_redirects_every_read_of_a_pipeline(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = cluster.followers()[0]
    reply = raw(follower.port, b"GET a\r\nGET b\r\nMGET a b\r\nPING\r\nGET c\r\n")
    try_leader = f"-TRY {leader.addr}\r\n".encode()
    assert reply == try_leader * 3 + b"+PONG\r\n" + try_leader


def test_followers_apply_the_same_writes(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.client() as c:
        for i in range(50):
            c.set(f"rep:{i}", i)
        applied = int(dict(_pairs(c.execute_command("RAFTSTATS")))[b"commit_index"])
    for f in cluster.followers():
        with f.client() as c:
            wait_until(
                lambda c=c: (
                    int(dict(_pairs(c.execute_command("RAFTSTATS")))[b"applied_index"]) >= applied
                ),
                10,
                "followers to apply",
            )


def _pairs(flat: list[bytes]) -> list[tuple[bytes, bytes]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def test_ten_thousand_pipelined_commands_answer_in_order(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.client(socket_timeout=30) as c:
        pipe = c.pipeline(transaction=False)
        for i in range(10_000):
            if i % 3 == 0:
                pipe.set(f"p:{i % 100}", i)
            elif i % 3 == 1:
                pipe.get(f"p:{(i - 1) % 100}")
            else:
                pipe.incr("p:counter")
        replies = pipe.execute()
    for i, reply in enumerate(replies):
        if i % 3 == 0:
            assert reply is True
        elif i % 3 == 1:
            # a read pipelined after a write on the same connection sees it
            assert reply == str(i - 1).encode()
        else:
            assert reply == i // 3 + 1


def resp(port: int, *args: str | bytes) -> bytes:
    """The raw reply to one command (exact bytes, for reply-shape checks)."""
    from redraft.resp import encode_command

    return raw(port, encode_command(list(args)))


def test_builtin_commands_reply_shapes(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    port = leader.port
    assert resp(port, "PING") == b"+PONG\r\n"
    assert resp(port, "PING", "hi") == b"$2\r\nhi\r\n"
    assert resp(port, "ECHO", "x") == b"$1\r\nx\r\n"
    assert resp(port, "SELECT", "0") == b"+OK\r\n"
    assert resp(port, "SELECT", "1") == b"-ERR DB index is out of range\r\n"
    assert resp(port, "RAFTLEADER") == b"$%d\r\n%s\r\n" % (len(leader.addr), leader.addr.encode())
    assert resp(port, "RAFTSTATE") == b"+Leader\r\n"
    assert resp(port, "QUIT") == b"+OK\r\n"
    with leader.client() as c:
        peers = c.execute_command("RAFTPEERS")
        assert len(peers) == 6
        assert dict(_pairs(peers)) == {
            n.addr.encode(): (b"Leader" if n is leader else b"Follower") for n in cluster.nodes
        }
        stats = dict(_pairs(c.execute_command("RAFTSTATS")))
        for key in (
            b"applied_index",
            b"commit_index",
            b"last_log_index",
            b"last_log_term",
            b"last_snapshot_index",
            b"last_snapshot_term",
            b"num_peers",
            b"state",
            b"term",
            b"last_contact",
        ):
            assert key in stats
        assert stats[b"state"] == b"Leader" and stats[b"num_peers"] == b"2"
        assert c.execute_command("RAFTSNAPSHOT") in (b"OK", True)
        stats = dict(_pairs(c.execute_command("RAFTSTATS")))
        assert int(stats[b"last_snapshot_index"]) > 0
        info = c.info()
        assert info["role"] == "master" and "redis_version" in info and "term" in info
        assert c.client_id() > 0
        assert c.client_setname("me") is True and c.client_getname() == "me"
    assert resp(port, "RAFTSNAPSHOT") == b"+OK\r\n"
    with leader.client() as c:
        c.set("digest-marker", "1")
        applied, digest = c.execute_command("RAFTDIGEST")
        assert applied > 0 and len(digest) == 64
    for f in cluster.followers():
        with f.client() as c:
            wait_until(
                lambda c=c: c.execute_command("RAFTDIGEST")[1] == digest, 10, "replicas to agree"
            )
    hello = resp(port, "HELLO", "2")
    assert hello.startswith(b"*14\r\n") and b"$5\r\nproto\r\n:2\r\n" in hello
    assert resp(port, "COMMAND", "DOCS").startswith(b"*")
    follower = cluster.followers()[0]
    assert resp(follower.port, "RAFTSTATE") == b"+Follower\r\n"
    assert resp(follower.port, "RAFTLEADER") == resp(port, "RAFTLEADER")
    assert resp(follower.port, "RAFTREMOVEPEER", "127.0.0.1:1") == b"-ERR peer is unknown\r\n"


def test_resp3_clients_get_resp3_replies(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    reply = raw(leader.port, b"HELLO 3\r\nGET no-such-key\r\nSET k3 v\r\nGET k3\r\n")
    assert reply.startswith(b"%7\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in reply
    assert reply.endswith(b"_\r\n+OK\r\n$1\r\nv\r\n")
    for protocol in (2, 3):
        with leader.client(protocol=protocol) as c:
            assert c.get("no-such-key") is None
            assert c.set("k3", "w") is True and c.get("k3") == b"w"


def test_unknown_command_and_wrong_arity(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.client() as c:
        with pytest.raises(redis.ResponseError) as err:
            c.execute_command("NOSUCHCMD", "a")
        # Redis's text: the name as sent and the start of the arguments.
        assert (
            str(err.value).strip() == "unknown command 'NOSUCHCMD', with args beginning with: 'a'"
        )
        with pytest.raises(redis.ResponseError) as err:
            c.execute_command("GET")
        assert str(err.value) == "wrong number of arguments for 'get' command"
        assert c.ping() is True


def test_raft_peer_commands_are_not_for_clients(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.client() as c:
        with pytest.raises(redis.ResponseError, match="only accepted on peer connections"):
            c.execute_command("RAFTMSG", b"\x00garbage")
        assert c.ping() is True


def test_protocol_error_closes_only_that_connection(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.client() as other:
        assert other.ping() is True
        reply = raw(leader.port, b"PING\r\n*1\r\n$x\r\n", expect_close=True)
        assert reply == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
        reply = raw(leader.port, b'SET a "unbalanced\r\n', expect_close=True)
        assert reply == b"-ERR Protocol error: unbalanced quotes in request\r\n"
        assert other.set("still", "serving") is True


def test_client_vanishing_mid_pipeline_leaves_the_node_serving(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    from redraft.resp import encode_command

    burst = b"".join(encode_command(["SET", f"gone:{i}", "x" * 100]) for i in range(5000))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", leader.port), timeout=3) as s:
            s.sendall(burst[: len(burst) // 2])  # cut off in the middle of a request
    with leader.client() as c:
        assert c.set("after-vanish", "ok") is True
        assert c.get("after-vanish") == b"ok"


def test_inline_commands_work_like_telnet(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    assert raw(leader.port, b'SET inline "two words"\r\nGET inline\r\n') == (
        b"+OK\r\n$9\r\ntwo words\r\n"
    )


def test_redis_cli_talks_to_the_cluster(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    out = subprocess.run(
        ["redis-cli", "-p", str(leader.port), "SET", "cli", "works"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.stdout.strip() == "OK"
    out = subprocess.run(
        ["redis-cli", "-p", str(leader.port)],
        input="GET cli\nRAFTSTATE\n",
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.stdout.split() == ['"works"', "Leader"] or out.stdout.split() == ["works", "Leader"]


def test_leader_killed_new_leader_elected_old_one_catches_up(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        old = cluster.wait_leader()
        with old.client() as c:
            for i in range(100):
                c.set(f"before:{i}", i)
        old.kill(signal.SIGKILL)
        started = time.monotonic()
        new = cluster.wait_leader(timeout=10, exclude=old)
        elected_after = time.monotonic() - started
        assert elected_after < 10
        with new.client() as c:
            assert c.get("before:99") == b"99"
            for i in range(100):
                c.set(f"after:{i}", i)
        old.start()
        wait_until(lambda: old.state() == b"Follower", 15, "the old leader to rejoin as follower")
        with new.client() as c:
            commit = int(dict(_pairs(c.execute_command("RAFTSTATS")))[b"commit_index"])
        with old.client() as c:
            wait_until(
                lambda: (
                    int(dict(_pairs(c.execute_command("RAFTSTATS")))[b"applied_index"]) >= commit
                ),
                15,
                "the old leader to catch up",
            )


def test_seed_readme_command_lines_run_as_written(tmp_path: Path) -> None:
    """`python -m redraft.examples.clone` with Finn's one-dash flags, as in Finn's README."""
    p1, p2, p3 = free_ports(3)
    procs: list[LocalProcess] = []
    try:
        for args in (
            ["-p", str(p1)],
            ["-p", str(p2), "-dir", "data2", "-join", f":{p1}"],
            ["-p", str(p3), "-dir", "data3", "-join", f":{p1}"],
        ):
            proc = LocalProcess(tmp_path / f"{args[1]}.log", cwd=tmp_path, env=_env())
            procs.append(proc)
            proc.launch(["python", "-m", "redraft.examples.clone", *args])
            time.sleep(0.3)

        def voters() -> bool:
            with redis.Redis(port=p1, socket_timeout=1) as c:
                flat = c.execute_command("RAFTPEERS")
            return sorted(flat[1::2]) == [b"Follower", b"Follower", b"Leader"]

        wait_until(voters, 30, "the three README nodes to form a cluster")
        out = subprocess.run(
            ["redis-cli", "-p", str(p1), "SET", "mykey", "my value"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout.strip() == "OK"
        out = subprocess.run(
            ["redis-cli", "-p", str(p1), "GET", "mykey"], capture_output=True, text=True, timeout=10
        )
        assert out.stdout.strip() == "my value"
        assert (tmp_path / "data").is_dir() and (tmp_path / "data2").is_dir()
    finally:
        stop_all(procs)


def _env() -> dict[str, str]:
    import os
    import sys

    env = dict(os.environ)
    # `python` must be the interpreter running the tests (the venv's).
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT / "src")
    return env
