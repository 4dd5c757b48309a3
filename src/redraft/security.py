"""Who may talk to a node, and how: client AUTH, peer proofs, TLS and connection guards.

* **Client AUTH**: with a password set, a connection may only ``AUTH``,
  ``HELLO ... AUTH``, ``PING`` and ``QUIT`` until it gives the password.
  Passwords are compared in constant time and a wrong one is answered only
  after a delay (per connection, one failure after another).
* **Peer proof**: with a peer secret set (by default the password), a
  connection becomes a peer link only after a challenge-response handshake
  in which both ends prove they know the secret without sending it::

      dialer -> RAFTPEER <dialer-id> CHALLENGE <dialer-nonce>
      server -> +CHALLENGE <server-id> <server-nonce> <server-proof>
      dialer -> RAFTPEER <dialer-id> PROOF <dialer-proof>
      server -> +OK

  Each proof is an HMAC-SHA256 under the secret over a role label, both
  fresh nonces and both node ids, so a recorded handshake proves nothing on
  another connection and a proof cannot be reflected back to its sender.
  Raft messages, joins and snapshots are only accepted on such links; the
  admin commands (``RAFTADDPEER`` ...) need a peer link or a client that
  gave the password or the peer secret to ``AUTH``.
* **TLS**: one context for the listening port (clients and peers alike) and
  one for dialing peers, verified against the configured CA.
* **Guards**: the per-connection state of what it proved, and the exposure
  warning for a node reachable from the network with no credentials at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redraft.addr import split_hostport
from redraft.resp import ErrorReply, ReplyParser, encode_command

if TYPE_CHECKING:
    from redraft.options import Options

log = logging.getLogger("redraft.security")

PRE_AUTH_COMMANDS = frozenset({b"auth", b"hello", b"ping", b"quit", b"raftpeer", b"reset"})
"""Commands a connection may send before it has authenticated."""

NOAUTH_REPLY = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NO_PASSWORD_SET = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
HELLO_NOAUTH = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time"
)
NOPERM_ADMIN = (
    "NOPERM this command changes the cluster: AUTH with the password or the peer secret first"
)
UNAUTHENTICATED_QUERY_BUFFER = 64 << 10
"""Unparsed bytes an unauthenticated client may hold (a password is set): enough
for any AUTH, far too little to make the node buffer a huge request for a stranger."""

ENV_AUTH = "REDRAFT_AUTH"
ENV_PEER_SECRET = "REDRAFT_PEER_SECRET"

_PROTO_LABEL = b"redraft-peer-auth-v1"
_NONCE_BYTES = 16


class SecurityError(ValueError):
    """A security setting that cannot be used (unreadable file, bad certificate)."""


class HandshakeError(Exception):
    """The other end of a peer link did not prove it knows the peer secret."""


# ------------------------------------------------------------------ secrets


def read_secret(value: str = "", path: str = "", env: str = "") -> str:
    """A secret from, in order of precedence, ``value``, the file ``path`` or ``$env``.

    A file holds the secret on its first line (a trailing newline is not part
    of it); files and environment variables keep secrets out of ``ps``.
    """
    if value:
        return value
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SecurityError(f"cannot read secret file {path}: {exc.strerror}") from None
        secret = text.splitlines()[0] if text else ""
        if not secret:
            raise SecurityError(f"secret file {path} is empty")
        return secret
    if env:
        return os.environ.get(env, "")
    return ""


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def secrets_equal(given: bytes, expected: bytes) -> bool:
    """Constant-time equality that does not leak the expected length either."""
    return hmac.compare_digest(_digest(given), _digest(expected))


# ---------------------------------------------------------------------- TLS


def server_tls_context(
    cert: str, key: str = "", ca: str = "", client_auth: bool = False
) -> ssl.SSLContext:
    """The context of the listening port (clients and incoming peer links)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key or None)
        if ca:
            ctx.load_verify_locations(ca)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityError(f"cannot load TLS certificate/key/CA: {exc}") from None
    if client_auth:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_tls_context(cert: str, key: str = "", ca: str = "") -> ssl.SSLContext:
    """The context for dialing peers: verifies them against ``ca`` by host name or IP.

    It also carries this node's certificate, which peers requiring client
    certificates (mutual TLS) check.
    """
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityError(f"cannot load TLS certificate/key/CA: {exc}") from None
    return ctx


# ---------------------------------------------------------- peer handshake


def new_nonce() -> str:
    return secrets.token_hex(_NONCE_BYTES)


def _valid_nonce(nonce: str) -> bool:
    if not 2 * _NONCE_BYTES <= len(nonce) <= 128:
        return False
    try:
        bytes.fromhex(nonce)
    except ValueError:
        return False
    return True


def peer_proof(
    secret: bytes, role: bytes, dialer_nonce: str, server_nonce: str, dialer: str, server: str
) -> str:
    """HMAC-SHA256 (hex) binding a handshake's role, nonces and node ids to the secret."""
    fields = (
        _PROTO_LABEL,
        role,
        dialer_nonce.encode(),
        server_nonce.encode(),
        dialer.encode(),
        server.encode(),
    )
    msg = b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


class DialerHandshake:
    """The dialing end of the peer handshake, fed the reply lines it receives.

    ``expect_server`` is the id of the node being dialed, checked against the
    one it announces (None accepts any, as when joining through an address).
    Without a secret the handshake is the bare ``RAFTPEER <id>``; with one,
    a server that does not challenge is refused: it cannot prove anything.
    """

    def __init__(self, self_id: str, secret: bytes | None, expect_server: str | None) -> None:
        self.self_id = self_id
        self.secret = secret
        self.expect_server = expect_server
        self.server_id = expect_server or ""
        self._nonce = new_nonce() if secret is not None else ""
        self._proved = False

    def first(self) -> bytes:
        """The request that opens the handshake."""
        if self.secret is None:
            return encode_command([b"RAFTPEER", self.self_id.encode()])
        return encode_command(
            [b"RAFTPEER", self.self_id.encode(), b"CHALLENGE", self._nonce.encode()]
        )

    def step(self, line: bytes) -> bytes | None:
        """Consume one reply line; the next request to send, or None once the link is up.

        Raises :class:`HandshakeError` when the peer refuses or fails to prove itself.
        """
        text = line.decode("utf-8", "replace")
        if text.startswith("-"):
            raise HandshakeError(f"refused: {text[1:]}")
        if self.secret is None or self._proved:
            if text == "+OK" or (self.secret is None and text.startswith("+")):
                return None
            raise HandshakeError(f"unexpected reply {text[:80]!r}")
        parts = text.split(" ")
        if parts[0] != "+CHALLENGE" or len(parts) != 4:
            raise HandshakeError(
                "the peer does not authenticate peers (is its peer secret configured?)"
            )
        _, server_id, server_nonce, server_proof = parts
        if self.expect_server is not None and server_id != self.expect_server:
            raise HandshakeError(f"dialed {self.expect_server} but {server_id} answered")
        if not _valid_nonce(server_nonce):
            raise HandshakeError("malformed challenge")
        expected = peer_proof(
            self.secret, b"server", self._nonce, server_nonce, self.self_id, server_id
        )
        if not hmac.compare_digest(expected.encode(), server_proof.encode()):
            raise HandshakeError("the peer does not know the peer secret")
        self.server_id = server_id
        self._proved = True
        proof = peer_proof(
            self.secret, b"dialer", self._nonce, server_nonce, self.self_id, server_id
        )
        return encode_command([b"RAFTPEER", self.self_id.encode(), b"PROOF", proof.encode()])


# ------------------------------------------------------ per-connection state


class ConnGuard:
    """What a connection has proved so far, and its pending handshake."""

    __slots__ = ("admin", "challenge", "failures", "penalty_until")

    def __init__(self, admin: bool) -> None:
        self.admin = admin
        """May run the commands that change the cluster (RAFTADDPEER ...)."""
        self.challenge: tuple[str, str, str] | None = None
        """(dialer id, dialer nonce, server nonce) of a handshake in progress."""
        self.failures = 0
        self.penalty_until = 0.0


# --------------------------------------------------------- node-wide setup


@dataclass(frozen=True)
class Security:
    """The credentials and TLS contexts of one node, built from its Options."""

    password: bytes | None = field(repr=False)
    peer_secret: bytes | None = field(repr=False)
    server_ssl: ssl.SSLContext | None
    peer_ssl: ssl.SSLContext | None
    client_auth: bool
    failure_delay: float
    warning: str
    """Why this node is exposed (empty when it is not), logged at start and shown in INFO."""

    @classmethod
    def from_options(cls, opts: Options, bind_host: str) -> Security:
        password = opts.auth.encode() if opts.auth else None
        peer = (opts.peer_secret or opts.auth).encode() or None
        server_ctx = peer_ctx = None
        if opts.tls_cert:
            server_ctx = server_tls_context(
                opts.tls_cert, opts.tls_key, opts.tls_ca, opts.tls_client_auth
            )
            peer_ctx = peer_tls_context(opts.tls_cert, opts.tls_key, opts.tls_ca)
        warning = ""
        if not is_loopback(bind_host) and peer is None and not opts.tls_client_auth:
            warning = (
                f"bound to {bind_host or 'every interface'} with no password (--auth), no peer "
                "secret (--peer-secret) and no client certificates: anyone who can reach this "
                "port can read and write the data and join or change the cluster"
            )
        return cls(
            password,
            peer,
            server_ctx,
            peer_ctx,
            opts.tls_client_auth,
            opts.auth_failure_delay,
            warning,
        )

    def new_guard(self) -> ConnGuard:
        return ConnGuard(admin=self.peer_secret is None)

    def check_password(self, user: bytes, password: bytes) -> bool:
        """Whether ``AUTH [user] password`` succeeds: the password or the peer secret.

        Both are always compared (in constant time), so the answer's timing
        tells nothing about which one was tried.
        """
        ok_pw = self.password is not None and secrets_equal(password, self.password)
        ok_peer = self.peer_secret is not None and secrets_equal(password, self.peer_secret)
        return user == b"default" and (ok_pw or ok_peer)

    def challenge(self, server_id: str, dialer_id: str, dialer_nonce: str) -> tuple[str, str]:
        """Answer a dialer's CHALLENGE: (server nonce, reply text)."""
        assert self.peer_secret is not None
        if not _valid_nonce(dialer_nonce):
            raise ValueError("malformed nonce")
        nonce = new_nonce()
        proof = peer_proof(self.peer_secret, b"server", dialer_nonce, nonce, dialer_id, server_id)
        return nonce, f"CHALLENGE {server_id} {nonce} {proof}"

    def proof_ok(
        self, server_id: str, dialer_id: str, dialer_nonce: str, server_nonce: str, proof: bytes
    ) -> bool:
        assert self.peer_secret is not None
        expected = peer_proof(
            self.peer_secret, b"dialer", dialer_nonce, server_nonce, dialer_id, server_id
        )
        return hmac.compare_digest(expected.encode(), proof)

    def describe(self) -> list[tuple[str, Any]]:
        """The INFO fields of the security section."""
        fields: list[tuple[str, Any]] = [
            ("auth", "yes" if self.password is not None else "no"),
            ("peer_auth", "yes" if self.peer_secret is not None else "no"),
            ("tls", "yes" if self.server_ssl is not None else "no"),
            ("tls_client_auth", "yes" if self.client_auth else "no"),
        ]
        if self.warning:
            fields.append(("warning", "INSECURE " + self.warning))
        return fields


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def private_dir(path: Path) -> None:
    """Create ``path`` readable by its owner only, or tighten an existing one that is not."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError as exc:
            log.warning(
                "data dir %s is accessible to other users (mode %o) and cannot be restricted: %s",
                path,
                mode,
                exc,
            )
        else:
            log.warning(
                "data dir %s was accessible to other users (mode %o): now owner-only", path, mode
            )


# ---------------------------------------------------------------- joining


async def peer_ask(
    addr: str,
    args: list[bytes],
    *,
    self_id: str,
    secret: bytes | None,
    ssl_context: ssl.SSLContext | None,
    timeout: float = 5.0,
) -> Any:
    """Send one command to ``addr`` over a peer-authenticated connection; return the reply.

    Used to ask a cluster to add this node: the handshake proves the node
    knows the peer secret without sending it.  An error reply comes back as
    an ``Exception`` carrying its text (``"TRY 127.0.0.1:7481"``); connection
    problems and a failed handshake raise.
    """
    host, port = split_hostport(addr)

    async def exchange() -> Any:
        reader, writer = await asyncio.open_connection(
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context is not None else None,
        )
        try:
            if secret is not None:
                hs = DialerHandshake(self_id, secret, None)
                request: bytes | None = hs.first()
                while request is not None:
                    writer.write(request)
                    line = await reader.readline()
                    if not line.endswith(b"\r\n"):
                        raise ConnectionError(f"{addr} closed the connection")
                    try:
                        request = hs.step(line[:-2])
                    except HandshakeError as exc:
                        raise ConnectionError(f"peer handshake with {addr}: {exc}") from None
            writer.write(encode_command(args))
            parser = ReplyParser()
            while True:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError(f"{addr} closed the connection")
                replies = parser.parse(data)
                if replies:
                    reply = replies[0]
                    if isinstance(reply, ErrorReply):
                        return Exception(reply.text)
                    return reply
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout)
