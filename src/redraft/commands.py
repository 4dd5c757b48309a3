"""Built-in commands every redraft node answers before its machine sees anything.

Raft administration (``RAFT*``), peer traffic (``RAFTPEER``, ``RAFTMSG``,
never reachable by a machine), ``AUTH`` and the housekeeping commands redis
clients expect (``PING``, ``INFO``, ``HELLO``, ``CLIENT``, ``COMMAND``, ...).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redraft.addr import peer_address
from redraft.errors import ErrDisabled, Redirect
from redraft.machine import OK, ErrWrongNumberOfArguments, Status
from redraft.raft.types import ChangeInProgress, ChangeType, InvalidChange, Role
from redraft.resp import encode
from redraft.security import HELLO_NOAUTH, NO_PASSWORD_SET, NOPERM_ADMIN, WRONGPASS
from redraft.server import NO_REPLY, ClientConn, Slot

if TYPE_CHECKING:
    from redraft.node import Node

Handler = Callable[[ClientConn, list[bytes]], Any]

log = logging.getLogger("redraft.commands")

VERSION = "0.1.0"
REDIS_COMPAT_VERSION = "7.0.0"


def _arity(args: list[bytes], lo: int, hi: int | None = None) -> None:
    n = len(args)
    if n < lo or (hi is not None and n > hi):
        raise ErrWrongNumberOfArguments()


def builtin_commands(node: Node) -> dict[bytes, Handler]:
    """The table of built-in commands, keyed by lower-case name."""

    # --- authentication

    def grant(conn: ClientConn) -> None:
        conn.authenticated = True
        conn.guard.admin = True
        conn.query_limit = node.options.max_query_buffer

    def deny(conn: ClientConn, name: str) -> Slot:
        """Answer WRONGPASS after a delay, one failure after another on a connection."""
        guard = conn.guard
        guard.failures += 1
        if guard.failures == 1:
            log.warning("wrong password from %s", conn.addr)
        slot = conn.new_slot()
        loop = node.loop
        now = loop.time()
        due = max(now, guard.penalty_until) + node.security.failure_delay
        guard.penalty_until = due

        def answer() -> None:
            conn.fill_error(slot, ValueError(WRONGPASS), name)
            node.server.flush_dirty()

        loop.call_at(due, answer)
        return slot

    def authenticate(conn: ClientConn, user: bytes, password: bytes, name: str) -> Slot | None:
        """None when ``user``/``password`` are right; else the slot WRONGPASS will fill."""
        security = node.security
        if security.password is None and security.peer_secret is None:
            if user == b"default":
                return None  # no password: the default user needs none, as in Redis
            return deny(conn, name)
        if security.check_password(user, password):
            grant(conn)
            return None
        return deny(conn, name)

    def auth(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2, 3)
        security = node.security
        if len(args) == 2 and security.password is None and security.peer_secret is None:
            raise ValueError(NO_PASSWORD_SET)
        user = args[1] if len(args) == 3 else b"default"
        pending = authenticate(conn, user, args[-1], "auth")
        return OK if pending is None else pending

    def admin(handler: Handler) -> Handler:
        """Only for clients that proved a credential, when the cluster has one."""

        def guarded(conn: ClientConn, args: list[bytes]) -> Any:
            if not conn.guard.admin:
                raise ValueError(NOPERM_ADMIN)
            return handler(conn, args)

        return guarded

    def ping(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 2)
        return args[1] if len(args) == 2 else Status("PONG")

    def echo(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2, 2)
        return args[1]

    def quit_(conn: ClientConn, args: list[bytes]) -> Any:
        conn.reply_bytes(b"+OK\r\n")
        conn.close()
        return NO_REPLY

    def select(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2, 2)
        try:
            db = int(args[1])
        except ValueError:
            raise ValueError("value is not an integer or out of range") from None
        if db != 0:
            raise ValueError("ERR DB index is out of range")
        return OK

    def hello(conn: ClientConn, args: list[bytes]) -> Any:
        proto = 0
        if len(args) >= 2:
            try:
                proto = int(args[1])
            except ValueError:
                raise ValueError("Protocol version is not an integer or out of range") from None
            if proto not in (2, 3):
                raise ValueError("NOPROTO unsupported protocol version")
        i = 2
        name: str | None = None
        credentials: tuple[bytes, bytes] | None = None
        while i < len(args):
            opt = args[i].lower()
            if opt == b"setname" and i + 1 < len(args):
                name = args[i + 1].decode("utf-8", "replace")
                i += 2
            elif opt == b"auth" and i + 2 < len(args):
                credentials = (args[i + 1], args[i + 2])
                i += 3
            else:
                raise ValueError(
                    f"syntax error in HELLO option '{args[i].decode('utf-8', 'replace')}'"
                )
        if credentials is not None:
            pending = authenticate(conn, credentials[0], credentials[1], "hello")
            if pending is not None:
                return pending
        elif not conn.authenticated:
            raise ValueError(HELLO_NOAUTH)
        if name is not None:
            conn.name = name
        if proto:
            conn.use_resp3(proto == 3)
        role = "master" if node.core.role == Role.LEADER else "replica"
        return {
            b"server": b"redraft",
            b"version": REDIS_COMPAT_VERSION.encode(),
            b"proto": 3 if conn.encode is not encode else 2,
            b"id": conn.id,
            b"mode": b"cluster",
            b"role": role.encode(),
            b"modules": [],
        }

    def client(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2)
        sub = args[1].lower()
        if sub == b"setname":
            _arity(args, 3, 3)
            name = args[2].decode("utf-8", "replace")
            if any(c in name for c in " \n\r"):
                raise ValueError(
                    "Client names cannot contain spaces, newlines or special characters."
                )
            conn.name = name
            return OK
        if sub == b"getname":
            return conn.name.encode() if conn.name else None
        if sub == b"id":
            return conn.id
        if sub == b"info":
            return _client_line(conn).encode()
        if sub == b"list":
            return "".join(
                _client_line(c) + "\n" for c in sorted(node.server.conns, key=lambda c: c.id)
            ).encode()
        if sub in (b"setinfo", b"no-evict", b"no-touch", b"reply"):
            return OK
        raise ValueError(
            f"unknown subcommand '{args[1].decode('utf-8', 'replace')}'. Try CLIENT HELP."
        )

    def command(conn: ClientConn, args: list[bytes]) -> Any:
        if len(args) >= 2 and args[1].lower() == b"count":
            return 0
        return []

    def info(conn: ClientConn, args: list[bytes]) -> Any:
        sections = {a.decode("utf-8", "replace").lower() for a in args[1:]}
        return _info(node, sections).encode()

    # --- raft administration

    def raftleader(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 1)
        leader = node.core.leader
        return leader.encode() if leader else None

    def raftstate(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 1)
        return Status(node.state_name)

    def raftstats(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 1)
        flat: list[Any] = []
        for k, v in node.raft_stats().items():
            flat.append(k.encode())
            flat.append(str(v).encode())
        return flat

    def raftpeers(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 2)
        verbose = len(args) == 2
        if verbose and args[1].lower() != b"verbose":
            raise ValueError("ERR syntax error: RAFTPEERS [VERBOSE]")
        core = node.core
        mem = core.membership
        tick_ms = node.options.tick_ms
        out: list[Any] = []
        for peer in sorted(mem.members(), key=lambda p: (p != core.leader, p)):
            if peer == core.leader:
                state = "Leader"
            elif peer in mem.learners:
                state = "Learner"
            else:
                state = "Follower"
            if not verbose:
                out += [peer.encode(), state.encode()]
                continue
            pr = core.prs.get(peer)
            info: dict[bytes, Any] = {
                b"address": peer.encode(),
                b"role": b"voter" if peer in mem.voters else b"learner",
                b"state": state.encode(),
                b"promoting": 1 if peer in mem.promoting else 0,
            }
            if peer == node.id:
                info[b"match_index"] = core.log.stable
                info[b"last_contact_ms"] = 0
            elif pr is not None:
                info[b"match_index"] = pr.match
                info[b"last_contact_ms"] = (core.ticks - pr.last_contact) * tick_ms
                info[b"replication"] = pr.state.name.lower().encode()
            out.append(info)
        return out

    def rafttransferleader(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 2)
        target = peer_address(args[1].decode("utf-8", "replace")) if len(args) == 2 else None
        slot = conn.new_slot()

        def done(exc: BaseException | None) -> None:
            if exc is None:
                conn.fill_result(slot, OK, None, "rafttransferleader")
            else:
                conn.fill_error(slot, exc, "rafttransferleader")

        try:
            node.transfer_leadership(target, done)
        except InvalidChange as exc:
            conn.drop_slot(slot)
            raise ValueError(str(exc)) from None
        except BaseException:
            conn.drop_slot(slot)
            raise
        return slot

    def config(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2)
        sub = args[1].lower()
        if sub == b"get":
            return []
        raise ValueError(
            f"ERR CONFIG {args[1].decode('utf-8', 'replace')} is not supported by redraft"
        )

    def _membership_change(
        conn: ClientConn, change: ChangeType, addr: str, then: BaseException | None = None
    ) -> Any:
        """Propose ``change``; reply OK once it commits (or ``then``, an error reply)."""
        slot = conn.new_slot()

        def done(exc: BaseException | None) -> None:
            err = exc if exc is not None else then
            if err is None:
                conn.fill_result(slot, OK, None, "raft")
            else:
                conn.fill_error(slot, err, "raft")

        try:
            node.propose_config(change, addr, done)
        except ChangeInProgress:
            conn.drop_slot(slot)
            raise ValueError("a membership change is already in progress; try again") from None
        except BaseException:
            conn.drop_slot(slot)
            raise
        return slot

    def raftaddpeer(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2, 2)
        addr = peer_address(args[1].decode("utf-8", "replace"))
        mem = node.core.membership
        if addr in mem.voters or addr in mem.learners:
            if node.core.role != Role.LEADER:
                raise Redirect(node.core.leader)
            return OK
        try:
            return _membership_change(conn, ChangeType.ADD_VOTER, addr)
        except InvalidChange as exc:
            raise ValueError(str(exc)) from None

    def raftjoin(conn: ClientConn, args: list[bytes]) -> Any:
        """RAFTJOIN addr: a node with an empty data dir asks to join as ``addr``.

        What ``--join`` sends.  Unlike RAFTADDPEER, which answers OK for an
        address that is already a member, the sender says it holds nothing.
        If ``addr`` is a member, whatever it stored and the votes it cast are
        gone: counted as that member it could elect a leader that lacks
        committed entries.  So the leader first removes it (the reply says
        so, and the node asks again); the next request adds it anew as a
        learner, which votes only once it has caught up.
        """
        _arity(args, 2, 2)
        addr = peer_address(args[1].decode("utf-8", "replace"))
        if conn.peer_id and conn.peer_id != addr:
            raise ValueError(f"ERR a node joins as itself: {conn.peer_id} cannot join as {addr}")
        if node.joining:
            # Without this it would answer "leader not known", and two nodes
            # joining through each other would wait on each other for good.
            raise ValueError(
                "ERR this node is itself still joining the cluster: ask another member"
            )
        core = node.core
        if core.role != Role.LEADER:
            raise Redirect(core.leader)
        # The address's previous process may have left peer connections whose
        # messages are still on the way (acks for entries the new, empty
        # process lacks): whatever they carry is its predecessor's word.
        for other in [c for c in conn.server.conns if c.peer_id == addr and c is not conn]:
            log.info("closing a peer connection of %s's previous process", addr)
            other.abort()
        if addr not in core.membership.members():
            return raftaddpeer(conn, args)
        if addr == node.id:
            raise ValueError("ERR the leader cannot rejoin itself")
        log.warning(
            "%s asks to join with an empty data dir but is a member: its data is lost, "
            "so it is removed first and joins again as a new learner",
            addr,
        )
        try:
            return _membership_change(
                conn,
                ChangeType.REMOVE,
                addr,
                then=ValueError(
                    f"ERR {addr} was a member and lost its data: removed; ask to join again"
                ),
            )
        except InvalidChange as exc:
            raise ValueError(str(exc)) from None

    def raftremovepeer(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 2, 2)
        addr = peer_address(args[1].decode("utf-8", "replace"))
        if addr not in node.core.membership.members():
            raise ValueError("peer is unknown")
        try:
            return _membership_change(conn, ChangeType.REMOVE, addr)
        except InvalidChange as exc:
            raise ValueError(str(exc)) from None

    def raftdigest(conn: ClientConn, args: list[bytes]) -> Any:
        """[applied index, SHA-256 of the machine's snapshot bytes]: compare replicas.

        Runs the machine's snapshot on the event loop, so it is a debugging
        and verification tool, not something to call in a hot loop.
        """
        _arity(args, 1, 1)
        buf = io.BytesIO()
        try:
            capture = node.machine.snapshot(buf)
            if capture is not None:
                capture.write(buf)
        except ErrDisabled:
            raise ValueError("ERR snapshots are disabled, so there is no digest") from None
        return [node.applied_index, hashlib.sha256(buf.getvalue()).hexdigest().encode()]

    def raftsnapshot(conn: ClientConn, args: list[bytes]) -> Any:
        _arity(args, 1, 1)
        slot = conn.new_slot()
        fut = node.snapshot_now()

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is None:
                conn.fill_result(slot, OK, None, "raftsnapshot")
            else:
                if isinstance(exc, ErrDisabled):
                    exc = ValueError("snapshots are disabled")
                conn.fill_error(slot, exc, "raftsnapshot")
            node.server.flush_dirty()

        fut.add_done_callback(done)
        return slot

    # --- peer traffic

    def raftpeer(conn: ClientConn, args: list[bytes]) -> Any:
        # RAFTPEER <id> | RAFTPEER <id> CHALLENGE <nonce> | RAFTPEER <id> PROOF <proof>
        # (the handshake is described in redraft.security)
        if len(args) not in (2, 4):
            raise ErrWrongNumberOfArguments()
        dialer = args[1].decode("utf-8", "replace")
        security = node.security
        guard = conn.guard
        if security.peer_secret is None:
            conn.peer_id = dialer
            return OK
        if len(args) == 2:
            log.warning("%s tried to link as %s with no peer secret", conn.addr, dialer)
            raise ValueError("NOAUTH this cluster authenticates its peers: set the peer secret")
        step = args[2].lower()
        if step == b"challenge":
            dialer_nonce = args[3].decode("ascii", "replace")
            server_nonce, reply = security.challenge(node.id, dialer, dialer_nonce)
            guard.challenge = (dialer, dialer_nonce, server_nonce)
            return Status(reply)
        if step == b"proof" and guard.challenge is not None and guard.challenge[0] == dialer:
            _, dialer_nonce, server_nonce = guard.challenge
            guard.challenge = None  # one proof per challenge
            if security.proof_ok(node.id, dialer, dialer_nonce, server_nonce, args[3]):
                conn.peer_id = dialer
                grant(conn)
                return OK
        guard.challenge = None
        log.warning("peer authentication failed for %s (claiming to be %s)", conn.addr, dialer)
        conn.reply_bytes(b"-WRONGPASS peer authentication failed\r\n")
        conn.close()
        return NO_REPLY

    max_peer_message = node.options.max_peer_message

    def raftmsg(conn: ClientConn, args: list[bytes]) -> Any:
        if not conn.peer_id:
            raise ValueError("ERR RAFTMSG is only accepted on peer connections")
        _arity(args, 2, 2)
        payload = args[1]
        if len(payload) > max_peer_message:
            log.warning(
                "dropping a %d-byte message batch from %s: over the %d-byte limit",
                len(payload),
                conn.peer_id,
                max_peer_message,
            )
            return NO_REPLY
        node.on_peer_messages(payload, conn.peer_id)
        return NO_REPLY

    table: dict[bytes, Handler] = {
        b"auth": auth,
        b"ping": ping,
        b"echo": echo,
        b"quit": quit_,
        b"select": select,
        b"hello": hello,
        b"client": client,
        b"command": command,
        b"info": info,
        b"raftleader": raftleader,
        b"raftstate": raftstate,
        b"raftstats": raftstats,
        b"raftpeers": raftpeers,
        b"raftaddpeer": admin(raftaddpeer),
        b"raftjoin": admin(raftjoin),
        b"raftremovepeer": admin(raftremovepeer),
        b"raftsnapshot": admin(raftsnapshot),
        b"raftdigest": raftdigest,
        b"rafttransferleader": admin(rafttransferleader),
        b"config": config,
        b"raftpeer": raftpeer,
        b"raftmsg": raftmsg,
    }
    return table


def _client_line(conn: ClientConn) -> str:
    return f"id={conn.id} addr={conn.addr} name={conn.name}"


def _info(node: Node, sections: set[str]) -> str:
    everything = not sections or "all" in sections or "everything" in sections
    core = node.core
    parts: list[str] = []

    def section(name: str, fields: list[tuple[str, Any]]) -> None:
        if everything or name.lower() in sections or "default" in sections:
            parts.append(f"# {name}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in fields))

    section(
        "Server",
        [
            ("redis_version", REDIS_COMPAT_VERSION),
            ("redraft_version", VERSION),
            ("redis_mode", "cluster"),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("python_version", platform.python_version()),
            ("process_id", os.getpid()),
            ("tcp_port", node.port),
            ("uptime_in_seconds", int(time.time() - node.started)),
            ("executable", sys.executable),
        ],
    )
    section("Clients", [("connected_clients", len(node.server.conns))])
    role = "master" if core.role == Role.LEADER else "slave"
    section(
        "Replication",
        [("role", role), ("connected_slaves", max(0, len(core.membership.members()) - 1))],
    )
    stats = node.raft_stats()
    section(
        "Raft",
        [
            ("node_id", node.id),
            *list(stats.items()),
            ("durability", node.options.durability.name.lower()),
            ("consistency", node.options.consistency.name.lower()),
            ("backend", node.options.backend),
        ],
    )
    section("Security", node.security.describe())
    return "".join(parts)


__all__ = ["builtin_commands"]

_ = Slot
