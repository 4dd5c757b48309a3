"""The commands of peer links: RAFTPEER (the handshake) and RAFTMSG (Raft's messages).

The handshake is described in :mod:`redraft.security`.  Neither command is
ever reachable by a machine: they are built-ins.
"""

from __future__ import annotations

import logging
from typing import Any

from redraft.builtins.context import Cluster, arity, text
from redraft.errors import ErrWrongNumberOfArguments
from redraft.machine import OK, Status
from redraft.session import NO_REPLY, Session

log = logging.getLogger("redraft.commands")


def raftpeer(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """RAFTPEER <id> | RAFTPEER <id> CHALLENGE <nonce> | RAFTPEER <id> PROOF <proof>."""
    if len(args) not in (2, 4):
        raise ErrWrongNumberOfArguments()
    dialer = text(args[1])
    security = ctx.security
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
        server_nonce, reply = security.challenge(ctx.id, dialer, dialer_nonce)
        guard.challenge = (dialer, dialer_nonce, server_nonce)
        return Status(reply)
    if step == b"proof" and guard.challenge is not None and guard.challenge[0] == dialer:
        _, dialer_nonce, server_nonce = guard.challenge
        guard.challenge = None  # one proof per challenge
        if security.proof_ok(ctx.id, dialer, dialer_nonce, server_nonce, args[3]):
            conn.peer_id = dialer
            conn.authenticate()
            return OK
    guard.challenge = None
    log.warning("peer authentication failed for %s (claiming to be %s)", conn.addr, dialer)
    conn.reply_bytes(b"-WRONGPASS peer authentication failed\r\n")
    conn.close()
    return NO_REPLY


def raftmsg(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    if not conn.peer_id:
        raise ValueError("ERR RAFTMSG is only accepted on peer connections")
    arity(args, 2, 2)
    payload = args[1]
    limit = ctx.options.max_peer_message
    if len(payload) > limit:
        log.warning(
            "dropping a %d-byte message batch from %s: over the %d-byte limit",
            len(payload),
            conn.peer_id,
            limit,
        )
        return NO_REPLY
    ctx.on_peer_messages(payload, conn.peer_id)
    return NO_REPLY
