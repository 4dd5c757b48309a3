"""Security end to end: client AUTH, authenticated peers, TLS, safe defaults, graceful stop.

Real clone processes on loopback.  The outsider tests speak raw RESP to a
node's port, as someone who found the port would, and check that the
cluster's membership, term and data are exactly as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
import trustme

from redraft.options import Options
from redraft.raft.types import (
    Entry,
    EntryKind,
    Membership,
    Message,
    MsgType,
    SnapChunk,
    SnapshotMeta,
)
from redraft.resp import encode_command
from redraft.security import (
    DialerHandshake,
    HandshakeError,
    Security,
    is_loopback,
    new_nonce,
    peer_proof,
)
from redraft.transport.codec import encode_messages
from tests.cluster import NO_RETRY, Cluster, NodeProc, running_cluster, started, wait_until

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct horse battery staple"


# ----------------------------------------------------------------- helpers


class SecureNode(NodeProc):
    """A NodeProc whose clients carry the cluster's credentials (password, TLS)."""

    client_kw: ClassVar[dict[str, Any]] = {}

    def client(self, **kw: Any) -> redis.Redis:
        return super().client(**{**self.client_kw, **kw})


def secure_cluster(base: Path, size: int, flags: list[str], client_kw: dict[str, Any]) -> Cluster:
    cluster = Cluster(base, size, flags)
    node_cls = type("Node", (SecureNode,), {"client_kw": client_kw})
    cluster.nodes = [node_cls(cluster, n.index, n.port) for n in cluster.nodes]
    return cluster


class Raw:
    """A raw RESP connection, as an outsider (or a test) speaks it."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, *args: bytes | str) -> None:
        self.send_bytes(encode_command(list(args)))

    def send_bytes(self, data: bytes) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def line(self) -> bytes:
        """The next reply line (without CRLF); b"" once the server closed."""
        while b"\r\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return b""
            if not data:
                return b""
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def call(self, *args: bytes | str) -> bytes:
        self.send(*args)
        return self.line()

    def closed_by_server(self) -> bool:
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def peer_handshake(raw: Raw, self_id: str, secret: bytes) -> bytes:
    """Run the dialer's side of the peer handshake; the server's last reply line."""
    hs = DialerHandshake(self_id, secret, None)
    raw.sock.sendall(hs.first())
    while True:
        line = raw.line()
        if not line.startswith(b"+CHALLENGE"):
            return line
        nxt = hs.step(line)
        assert nxt is not None
        raw.sock.sendall(nxt)


stats = NodeProc.stats


def peers(node: NodeProc) -> list[bytes]:
    with node.client(socket_timeout=2) as c:
        flat: list[bytes] = c.execute_command("RAFTPEERS")
    return flat


def crafted(to: str, frm: str, term: int) -> list[bytes]:
    """Raft messages an attacker would send: a vote request, appends, a snapshot, a takeover."""
    mem = Membership(voters=frozenset({frm}))
    bogus = Entry(term, 1, EntryKind.NORMAL, b"\x00evil")
    return [
        encode_messages([Message(MsgType.VOTE, to, frm, term, log_term=term, index=10**6)]),
        encode_messages([Message(MsgType.PRE_VOTE, to, frm, term, log_term=term, index=10**6)]),
        encode_messages([Message(MsgType.APP, to, frm, term, index=0, entries=[bogus], commit=1)]),
        encode_messages([Message(MsgType.HEARTBEAT, to, frm, term, commit=10**6)]),
        encode_messages(
            [
                Message(
                    MsgType.SNAP,
                    to,
                    frm,
                    term,
                    snap=SnapChunk(SnapshotMeta(10**6, term, mem, 4), 0, 4, b"evil", True),
                )
            ]
        ),
        encode_messages([Message(MsgType.TIMEOUT_NOW, to, frm, term)]),
    ]


# ------------------------------------------------------- the AUTH cluster


@pytest.fixture(scope="module")
def auth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # The password comes from the environment (kept out of ps); --timeout 1
    # shows that the idle reaper leaves peer links alone.
    cluster = secure_cluster(
        tmp_path_factory.mktemp("auth"), 3, ["--timeout", "1"], {"password": PASSWORD}
    )
    old = os.environ.get("REDRAFT_AUTH")
    os.environ["REDRAFT_AUTH"] = PASSWORD  # inherited by the nodes as they start
    try:
        cluster.start()
    except BaseException:
        sys.stderr.write(cluster.logs() + "\n")
        cluster.stop()
        raise
    finally:
        if old is None:
            del os.environ["REDRAFT_AUTH"]
        else:
            os.environ["REDRAFT_AUTH"] = old
    try:
        yield cluster
    finally:
        cluster.stop()


def test_commands_need_auth_until_the_password_is_given(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()
    raw = Raw(leader.port)
    try:
        assert raw.call("GET", "k") == b"-NOAUTH Authentication required."
        assert raw.call("RAFTSTATS") == b"-NOAUTH Authentication required."
        assert raw.call("PING") == b"+PONG"
        assert raw.call("HELLO", "3").startswith(b"-NOAUTH HELLO must be called")
        assert raw.call("AUTH", "nope") == (
            b"-WRONGPASS invalid username-password pair or user is disabled."
        )
        assert raw.call("AUTH", "someone", PASSWORD) == (
            b"-WRONGPASS invalid username-password pair or user is disabled."
        )
        assert raw.call("SET", "k", "v") == b"-NOAUTH Authentication required."
        assert raw.call("AUTH", PASSWORD) == b"+OK"
        assert raw.call("SET", "k", "v") == b"+OK"
        assert raw.call("AUTH", "default", PASSWORD) == b"+OK"
        assert raw.call("QUIT") == b"+OK"
    finally:
        raw.close()
    # Pipelined behind a wrong password, a command still waits its turn and is refused.
    raw = Raw(leader.port)
    try:
        raw.sock.sendall(encode_command(["AUTH", "bad"]) + encode_command(["GET", "k"]))
        assert raw.line().startswith(b"-WRONGPASS")
        assert raw.line() == b"-NOAUTH Authentication required."
    finally:
        raw.close()


def test_real_clients_authenticate(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()
    with redis.Redis(port=leader.port, password=PASSWORD, socket_timeout=5) as c:
        assert c.set("client", "redis-py") is True
    with redis.Redis(port=leader.port, password=PASSWORD, protocol=3, socket_timeout=5) as c:
        assert c.get("client") == b"redis-py"  # HELLO 3 AUTH default <password>
    once: dict[str, Any] = {"socket_timeout": 5, "retry": NO_RETRY}
    with redis.Redis(port=leader.port, **once) as c, pytest.raises(redis.AuthenticationError):
        c.get("client")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=leader.port, password="wrong", **once).ping()
    env = dict(os.environ, REDISCLI_AUTH=PASSWORD)
    out = subprocess.run(
        ["redis-cli", "-p", str(leader.port), "GET", "client"],
        capture_output=True,
        text=True,
        timeout=10,
        env=env,
    )
    assert out.stdout.strip() == "redis-py"


def test_a_wrong_password_is_answered_late_without_stalling_anyone(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()
    guesser = Raw(leader.port)
    try:
        guesser.sock.sendall(b"".join(encode_command(["AUTH", f"guess{i}"]) for i in range(3)))
        # Meanwhile another client is served at once.
        with leader.client() as c:
            assert c.set("busy", "yes") is True
            assert c.get("busy") == b"yes"
        guesser.sock.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            guesser.buf += guesser.sock.recv(65536)
        assert guesser.buf.count(b"WRONGPASS") < 3  # failures are answered one after another
        guesser.sock.settimeout(10)
        assert all(guesser.line().startswith(b"-WRONGPASS") for _ in range(3))
    finally:
        guesser.close()


def test_an_unauthenticated_client_cannot_make_the_node_buffer_much(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()
    raw = Raw(leader.port)
    try:
        raw.sock.sendall(b"*2\r\n$4\r\nECHO\r\n$1000000\r\n" + b"x" * 200_000)
        assert raw.line().startswith(b"-ERR max query buffer length reached")
        assert raw.closed_by_server()
    finally:
        raw.close()


def test_outsider_cannot_join_vote_append_or_remove(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()
    followers = auth_cluster.followers()
    with leader.client() as c:
        c.set("precious", "data")
    wait_until(
        lambda: all(stats(n)["applied_index"] == stats(leader)["applied_index"] for n in followers),
        10,
        "followers to catch up",
    )
    before_peers = peers(leader)
    before = {n.addr: stats(n) for n in auth_cluster.nodes}
    stranger = "127.0.0.1:1"

    for node in auth_cluster.nodes:
        # Admin commands, straight.
        raw = Raw(node.port)
        try:
            assert raw.call("RAFTADDPEER", stranger).startswith(b"-NOAUTH")
            assert raw.call("RAFTREMOVEPEER", followers[0].addr).startswith(b"-NOAUTH")
            assert raw.call("RAFTTRANSFERLEADER").startswith(b"-NOAUTH")
            assert raw.call("RAFTSNAPSHOT").startswith(b"-NOAUTH")
            # Posing as a member, with no secret: no link, no messages.
            assert raw.call("RAFTPEER", leader.addr).startswith(b"-NOAUTH")
            for payload in crafted(node.addr, leader.addr, 10**6):
                assert raw.call("RAFTMSG", payload).startswith(b"-NOAUTH")
        finally:
            raw.close()
        # A handshake with a made-up proof is refused and the connection closed.
        raw = Raw(node.port)
        try:
            reply = raw.call("RAFTPEER", leader.addr, "CHALLENGE", new_nonce())
            assert reply.startswith(b"+CHALLENGE " + node.addr.encode())
            assert raw.call("RAFTPEER", leader.addr, "PROOF", "00" * 32).startswith(b"-WRONGPASS")
            assert raw.closed_by_server()
        finally:
            raw.close()
        # A proof without a challenge of its own is no proof.
        raw = Raw(node.port)
        try:
            assert raw.call("RAFTPEER", leader.addr, "PROOF", "00" * 32).startswith(b"-WRONGPASS")
        finally:
            raw.close()

    # A recorded handshake replayed on a new connection proves nothing: the
    # server's nonce is new every time.  (The recording is made with the
    # secret here, standing for an eavesdropper on a link without TLS.)
    secret = PASSWORD.encode()
    recorded = Raw(leader.port)
    try:
        dialer_nonce = new_nonce()
        _, server_id, server_nonce, _proof = (
            recorded.call("RAFTPEER", stranger, "CHALLENGE", dialer_nonce).decode().split(" ")
        )
        proof = peer_proof(secret, b"dialer", dialer_nonce, server_nonce, stranger, server_id)
        assert recorded.call("RAFTPEER", stranger, "PROOF", proof) == b"+OK"
    finally:
        recorded.close()
    replay = Raw(leader.port)
    try:
        assert replay.call("RAFTPEER", stranger, "CHALLENGE", dialer_nonce).startswith(
            b"+CHALLENGE"
        )
        assert replay.call("RAFTPEER", stranger, "PROOF", proof).startswith(b"-WRONGPASS")
        assert replay.call("RAFTMSG", crafted(leader.addr, stranger, 10**6)[0]) == b""
    finally:
        replay.close()

    # Everything is as it was.
    assert auth_cluster.wait_leader() is leader
    assert peers(leader) == before_peers
    for n in auth_cluster.nodes:
        now = stats(n)
        assert now["term"] == before[n.addr]["term"]
        assert now["last_snapshot_index"] == before[n.addr]["last_snapshot_index"]
        assert int(now["commit_index"]) >= int(before[n.addr]["commit_index"])
    with leader.client() as c:
        assert c.get("precious") == b"data"
        assert c.set("still", "writable") is True


def test_a_node_without_the_secret_cannot_join(auth_cluster: Cluster, tmp_path: Path) -> None:
    leader = auth_cluster.wait_leader()
    before = peers(leader)
    wrong = "not the password"
    intruder = secure_cluster(tmp_path, 1, ["--auth", wrong], {"password": wrong}).nodes[0]
    intruder.start(join=leader.addr)
    try:
        wait_until(
            lambda: "does not know the peer secret" in intruder.log_path.read_text(),
            15,
            "the intruder's join to fail",
        )
        assert intruder.addr.encode() not in peers(leader)
        assert peers(leader) == before
    finally:
        intruder.stop()


def test_with_only_a_peer_secret_clients_are_free_but_the_cluster_is_not(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 1, ["--peer-secret", "only-peers"]) as cluster:
        node = cluster.nodes[0]
        before, term = peers(node), stats(node)["term"]
        raw = Raw(node.port)
        try:
            assert raw.call("SET", "open", "to all") == b"+OK"
            assert raw.call("RAFTADDPEER", "127.0.0.1:1").startswith(b"-NOPERM")
            assert raw.call("RAFTREMOVEPEER", node.addr).startswith(b"-NOPERM")
            assert raw.call("RAFTSNAPSHOT").startswith(b"-NOPERM")
            assert raw.call("RAFTPEER", "127.0.0.1:1").startswith(b"-NOAUTH")
            msg = crafted(node.addr, "127.0.0.1:1", 10**6)[0]
            assert raw.call("RAFTMSG", msg).startswith(b"-ERR RAFTMSG is only accepted on peer")
            assert raw.call("AUTH", "only-peers") == b"+OK"  # the peer secret is the admin's key
            assert raw.call("RAFTSNAPSHOT") == b"+OK"
        finally:
            raw.close()
        assert peers(node) == before
        assert stats(node)["term"] == term


def test_admin_commands_work_once_authenticated(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()
    with leader.client() as c:
        assert c.execute_command("RAFTSNAPSHOT") == b"OK"
        info = c.info("security")
    assert info["auth"] == "yes" and info["peer_auth"] == "yes" and info["tls"] == "no"
    assert "warning" not in info  # bound to 127.0.0.1


def test_idle_clients_are_closed_but_peer_links_stay(auth_cluster: Cluster) -> None:
    leader = auth_cluster.wait_leader()

    def peer_conn_ids() -> set[int]:
        with leader.client() as c:
            me = c.client_id()
            return {int(x["id"]) for x in c.client_list() if int(x["id"]) != me}

    before = peer_conn_ids()
    assert len(before) >= 2  # the followers' links to the leader
    idle = Raw(leader.port)
    try:
        assert idle.call("PING") == b"+PONG"
        idle.sock.settimeout(10)
        assert idle.closed_by_server()  # --timeout 1
    finally:
        idle.close()
    assert before <= peer_conn_ids()  # the same peer connections, never reaped
    with leader.client() as c:
        assert c.set("after-idle", "ok") is True


def test_data_dirs_are_private(auth_cluster: Cluster) -> None:
    for n in auth_cluster.nodes:
        assert stat.S_IMODE(n.dir.stat().st_mode) == 0o700


# --------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example")
    files = {
        "ca": base / "ca.pem",
        "cert": base / "node.pem",
        "key": base / "node.key",
        "client_cert": base / "client.pem",
        "client_key": base / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    pw = base / "password"
    pw.write_text(PASSWORD + "\n")
    out = {k: str(v) for k, v in files.items()}
    out["password_file"] = str(pw)
    return out


@pytest.fixture(scope="module")
def tls_cluster(
    certs: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    # The README's secure setup: TLS with client certificates, a password and
    # (by default the same) peer secret.
    flags = [
        "--tls-cert", certs["cert"], "--tls-key", certs["key"], "--tls-ca", certs["ca"],
        "--tls-client-auth", "--auth-file", certs["password_file"],
    ]  # fmt: skip
    kw = {
        "ssl": True,
        "ssl_ca_certs": certs["ca"],
        "ssl_certfile": certs["client_cert"],
        "ssl_keyfile": certs["client_key"],
        "password": PASSWORD,
    }
    with started(secure_cluster(tmp_path_factory.mktemp("tls"), 3, flags, kw)) as c:
        yield c


def test_tls_cluster_replicates_over_encrypted_links(tls_cluster: Cluster) -> None:
    leader = tls_cluster.wait_leader()
    with leader.client() as c:
        assert c.set("secret-key", "secret-value") is True
        assert c.info("security")["tls"] == "yes"
    with leader.client(protocol=3) as c:
        assert c.get("secret-key") == b"secret-value"
    applied = int(stats(leader)["applied_index"])

    def caught_up() -> bool:
        return all(int(stats(f)["applied_index"]) >= applied for f in tls_cluster.followers())

    wait_until(caught_up, 10, "followers to apply the writes (over TLS links)")


def test_redis_cli_speaks_tls_with_client_certificates(
    tls_cluster: Cluster, certs: dict[str, str]
) -> None:
    leader = tls_cluster.wait_leader()
    base = ["redis-cli", "--tls", "--cacert", certs["ca"], "-p", str(leader.port)]
    mtls = ["--cert", certs["client_cert"], "--key", certs["client_key"]]
    env = dict(os.environ, REDISCLI_AUTH=PASSWORD)

    def cli(*args: str) -> str:
        out = subprocess.run([*base, *args], capture_output=True, text=True, timeout=10, env=env)
        return out.stdout.strip()

    assert cli(*mtls, "SET", "cli", "tls") == "OK"
    assert cli(*mtls, "GET", "cli") == "tls"
    assert cli("GET", "cli") != "tls"  # no client certificate: no session at all


def test_tls_port_refuses_plain_and_certificateless_clients(
    tls_cluster: Cluster, certs: dict[str, str]
) -> None:
    leader = tls_cluster.wait_leader()
    raw = Raw(leader.port, timeout=5)
    try:
        raw.sock.sendall(encode_command(["PING"]))
        assert not raw.line().startswith(b"+PONG")
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        raw.close()
    no_cert = redis.Redis(
        port=leader.port,
        ssl=True,
        ssl_ca_certs=certs["ca"],
        password=PASSWORD,
        socket_timeout=5,
        retry=NO_RETRY,  # redis-py retries failed connections by default
    )
    with pytest.raises(redis.ConnectionError):
        no_cert.ping()
    # A peer needs a certificate too: dialing with none gets no handshake at all.
    ctx = ssl.create_default_context(cafile=certs["ca"])
    with (
        socket.create_connection(("127.0.0.1", leader.port), timeout=5) as s,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
        ctx.wrap_socket(s, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(encode_command(["RAFTPEER", "127.0.0.1:1", "CHALLENGE", new_nonce()]))
        assert tls.recv(100) == b""
        raise ConnectionResetError


def test_tls_without_client_certificates(certs: dict[str, str], tmp_path: Path) -> None:
    flags = ["--tls-cert", certs["cert"], "--tls-key", certs["key"]]
    cluster = secure_cluster(tmp_path, 1, flags, {"ssl": True, "ssl_ca_certs": certs["ca"]})
    with started(cluster):
        node = cluster.nodes[0]
        with redis.Redis(port=node.port, ssl=True, ssl_ca_certs=certs["ca"], socket_timeout=5) as c:
            assert c.set("k", "v") is True
        out = subprocess.run(
            ["redis-cli", "--tls", "--cacert", certs["ca"], "-p", str(node.port), "GET", "k"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout.strip() == "v"


# ------------------------------------------------------------ safe defaults


def test_the_dialer_trusts_only_a_server_that_proves_the_secret() -> None:
    secret = b"s3cret"
    server = Security.from_options(Options(peer_secret="s3cret"), "127.0.0.1")
    impostor = Security.from_options(Options(peer_secret="guess"), "127.0.0.1")

    def challenge(hs: DialerHandshake, sec: Security, server_id: str) -> bytes:
        """What ``sec``'s node answers to the dialer's opening RAFTPEER ... CHALLENGE <nonce>."""
        parts = hs.first().split(b"\r\n")  # *4 $8 RAFTPEER $n <id> $9 CHALLENGE $n <nonce>
        dialer, nonce = parts[4].decode(), parts[8].decode()
        return b"+" + sec.challenge(server_id, dialer, nonce)[1].encode()

    good = DialerHandshake("a:1", secret, "b:2")
    proof = good.step(challenge(good, server, "b:2"))
    assert proof is not None and b"PROOF" in proof
    assert good.step(b"+OK") is None
    fooled = DialerHandshake("a:1", secret, "b:2")
    with pytest.raises(HandshakeError, match="does not know the peer secret"):
        fooled.step(challenge(fooled, impostor, "b:2"))
    for reply, why in [(b"+OK", "does not authenticate peers"), (b"-NOAUTH go away", "refused")]:
        with pytest.raises(HandshakeError, match=why):
            DialerHandshake("a:1", secret, "b:2").step(reply)
    misrouted = DialerHandshake("a:1", secret, "b:2")
    with pytest.raises(HandshakeError, match="but c:3 answered"):
        misrouted.step(challenge(misrouted, server, "c:3"))


def test_exposed_node_without_credentials_is_flagged() -> None:
    assert Security.from_options(Options(), "127.0.0.1").warning == ""
    assert Security.from_options(Options(), "::1").warning == ""
    exposed = Security.from_options(Options(), "0.0.0.0")
    assert "anyone who can reach this port" in exposed.warning
    assert ("warning", "INSECURE " + exposed.warning) in exposed.describe()
    assert Security.from_options(Options(auth="pw"), "0.0.0.0").warning == ""
    assert Security.from_options(Options(peer_secret="s"), "10.1.2.3").warning == ""
    assert not is_loopback("example.com") and is_loopback("localhost")


def test_an_existing_data_dir_open_to_others_is_tightened(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, 1)
    node = cluster.nodes[0]
    node.dir.mkdir(mode=0o755)
    node.dir.chmod(0o755)
    try:
        node.start()
        assert stat.S_IMODE(node.dir.stat().st_mode) == 0o700
        assert "now owner-only" in node.log_path.read_text()
        with node.client() as c:
            assert "warning" not in c.info("security")
    finally:
        node.stop()


# -------------------------------------------------------- graceful shutdown


def test_sigterm_on_the_leader_hands_over_and_loses_no_acknowledged_write(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as cluster:
        old = cluster.wait_leader()
        acked: dict[str, str] = {}
        stop = threading.Event()
        errors: list[BaseException] = []

        def writer() -> None:
            ports = [n.port for n in cluster.nodes]
            port = old.port
            i = 0
            while not stop.is_set():
                try:
                    with redis.Redis(
                        port=port, socket_timeout=2, socket_connect_timeout=1, retry=NO_RETRY
                    ) as c:
                        while not stop.is_set():
                            key, value = f"k{i}", f"v{i}"
                            i += 1
                            if c.set(key, value):
                                acked[key] = value
                            time.sleep(0.002)
                except redis.ResponseError as exc:
                    text = str(exc)
                    if text.startswith("TRY "):
                        port = int(text.rsplit(":", 1)[1])
                    time.sleep(0.01)
                except (redis.ConnectionError, redis.TimeoutError):
                    port = ports[(ports.index(port) + 1) % len(ports)]
                    time.sleep(0.01)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        wait_until(lambda: len(acked) >= 50, 10, "writes under way")
        assert old.proc is not None
        started_at = time.monotonic()
        os.kill(old.proc.pid, signal.SIGTERM)
        assert old.proc.wait(timeout=15) == 0
        stopped_in = time.monotonic() - started_at
        new = cluster.wait_leader(timeout=10, exclude=old)
        n_before = len(acked)
        wait_until(lambda: len(acked) >= n_before + 50, 10, "writes to resume on the new leader")
        stop.set()
        t.join(timeout=10)
        assert not errors
        log_text = old.log_path.read_text()
        assert "handing leadership to" in log_text
        assert "could not hand leadership over" not in log_text
        with new.client(socket_timeout=10) as c:
            keys = list(acked)
            values = c.mget(keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v != acked[k].encode()]
        assert not missing, f"acknowledged writes lost: {missing[:10]}"
        print(f"leader stopped in {stopped_in:.2f}s; {len(acked)} writes acknowledged")
