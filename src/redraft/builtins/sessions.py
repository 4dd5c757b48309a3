"""Exactly-once writes: ``RAFTSESSION`` opens a client session, ``RAFTSEQ`` runs a command in it.

These check their arguments and log the command; what makes a write run
only once is decided where it is applied (:mod:`redraft.dedup`), on every
node alike.  :mod:`redraft.client` speaks them for the application.
"""

from __future__ import annotations

from typing import Any

from redraft.builtins.context import Cluster, arity
from redraft.dedup import MAX_TTL_MS, SEQ_COMMAND, SESSION_COMMAND
from redraft.session import NO_REPLY, Session

_MAX_COUNTER = (1 << 63) - 1


def raftsession(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """``RAFTSESSION NEW [ttl-ms]`` -> the new session's id; ``RAFTSESSION END id`` -> OK."""
    arity(args, 2, 3)
    sub = args[1].lower()
    if sub == b"new":
        if len(args) == 3:
            ttl = _counter(args[2], "ttl")
            if not 1 <= ttl <= MAX_TTL_MS:
                raise ValueError(f"ERR ttl must be between 1 and {MAX_TTL_MS} milliseconds")
        return conn.write([b"RAFTSESSION", *args[1:]], None, "raftsession")
    if sub == b"end" and len(args) == 3:
        _counter(args[2], "session id")
        return conn.write([b"RAFTSESSION", *args[1:]], None, "raftsession")
    raise ValueError("ERR syntax error: RAFTSESSION NEW [ttl-ms] | RAFTSESSION END id")


def raftseq(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """``RAFTSEQ session seq ack command [arg ...]``: ``command``'s reply; its write logged once.

    ``ack`` tells the cluster that every reply below that sequence has
    arrived, so it may forget them.
    """
    arity(args, 5)
    _counter(args[1], "session id")
    _counter(args[2], "sequence")
    _counter(args[3], "ack")
    key = args[4].lower()
    if key in (SEQ_COMMAND, SESSION_COMMAND):
        raise ValueError(f"ERR '{key.decode()}' cannot run inside RAFTSEQ")
    leader = ctx.leader
    if conn.redirect == "proxy" and leader and leader != ctx.id:
        # Forwarded whole: the leader must log it under its session and sequence.
        conn.forward([args], "raftseq", leader)
    else:
        conn.sequenced(args[:4], args[4:])
    return NO_REPLY


def _counter(raw: bytes, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= _MAX_COUNTER or raw != str(value).encode():
        raise ValueError(f"ERR {what} is not a non-negative integer")
    return value


__all__ = ["raftseq", "raftsession"]
