"""MULTI, EXEC, DISCARD, WATCH, UNWATCH (and RAFTEXEC, what proxy mode forwards).

The queueing and the logged form live in :mod:`redraft.transaction`; these
handlers open and close a transaction and log it.  Replies and errors are
Redis 7.0's: ``EXEC without MULTI``, ``MULTI calls can not be nested``,
``WATCH inside MULTI is not allowed``, ``EXECABORT`` after a command was
refused while queued (an unknown command, a wrong number of arguments,
including one of these commands' own).
"""

from __future__ import annotations

from typing import Any

from redraft.builtins.context import Cluster, arity
from redraft.dedup import unpack_reply
from redraft.errors import ErrWrongNumberOfArguments, Redirect
from redraft.machine import OK
from redraft.replies import Slot
from redraft.session import NO_REPLY, Session
from redraft.transaction import (
    ANSWERED,
    EXEC_COMMAND,
    EXECABORT,
    RAFTEXEC,
    Transaction,
    pack_exec,
    transaction_of,
    unpack_exec,
)


def multi(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    tx = _checked(conn, args, 1, 1)
    if tx.active:
        raise ValueError("ERR MULTI calls can not be nested")
    tx.begin()
    return OK


def discard(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    tx = _checked(conn, args, 1, 1)
    if not tx.active:
        raise ValueError("ERR DISCARD without MULTI")
    tx.end()
    return OK


def exec_(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """Log the queued commands as one entry; EXEC's reply is their replies (nil: a watch fired)."""
    tx = transaction_of(conn)
    if tx.active and len(args) != 1:
        tx.end()
        raise ValueError(
            "EXECABORT Transaction discarded because of: "
            "wrong number of arguments for 'exec' command"
        )
    arity(args, 1, 1)
    if not tx.active:
        raise ValueError("ERR EXEC without MULTI")
    watches, queued, dirty = tx.watches, tx.queued, tx.dirty
    tx.end()
    if dirty:
        raise ValueError(EXECABORT)
    if not watches and all(cmd[0] == ANSWERED for cmd in queued):
        return [unpack_reply(cmd[1]) for cmd in queued]  # nothing to log
    return _log(conn, pack_exec(watches, queued))


def raftexec(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """``RAFTEXEC watches commands``: a whole transaction in one request, as a follower forwards it."""
    arity(args, 3, 3)
    unpack_exec(args)  # refuses a malformed one before it is logged
    return _log(conn, args[1:])


def _log(conn: Session, packed: list[bytes]) -> Any:
    try:
        return conn.write([EXEC_COMMAND, *packed], None, "exec")
    except Redirect as exc:
        if conn.redirect == "proxy" and exc.leader:
            conn.forward([[RAFTEXEC, *packed]], "exec", exc.leader)
            return NO_REPLY
        raise


def watch(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """Take a token of each key's state, as a read at the node's consistency level."""
    tx = _checked(conn, args, 2)
    if tx.active:
        raise ValueError("ERR WATCH inside MULTI is not allowed")
    keys = args[1:]
    machine = conn.shared.machine

    def respond(_: Any) -> Any:
        for key in keys:
            if key not in tx.watches:
                tx.watches[key] = machine.watch(key)
        return OK

    try:
        value = conn.read(respond, "watch")
    except Redirect as exc:
        if conn.redirect != "proxy" or not exc.leader:
            raise
        # Proxy mode: the tokens come from this node's state, a prefix of
        # the leader's (at worst EXEC aborts when it need not have).
        return respond(None)
    if type(value) is Slot:
        conn.hold_behind()  # a MULTI/EXEC behind it must see the tokens
    return value


def unwatch(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    tx = _checked(conn, args, 1, 1)
    tx.watches = {}
    return OK


def _checked(conn: Session, args: list[bytes], lo: int, hi: int | None = None) -> Transaction:
    """The connection's transaction, after the arity check (a failed one inside MULTI aborts it)."""
    tx = transaction_of(conn)
    try:
        arity(args, lo, hi)
    except ErrWrongNumberOfArguments:
        if tx.active:
            tx.dirty = True
        raise
    return tx


def forget(conn: Session) -> None:
    """RESET or a closed connection: no transaction, no watches."""
    tx = conn.transaction
    if isinstance(tx, Transaction):
        tx.end()


__all__ = ["discard", "exec_", "forget", "multi", "raftexec", "unwatch", "watch"]
