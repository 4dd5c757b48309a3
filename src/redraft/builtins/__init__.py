"""Built-in commands every redraft node answers before its machine sees anything.

Raft administration (``RAFT*``), peer traffic (``RAFTPEER``, ``RAFTMSG``,
never reachable by a machine), ``AUTH`` and the housekeeping commands Redis
clients expect (``PING``, ``INFO``, ``HELLO``, ``CLIENT``, ``COMMAND``, ...,
and ``CLUSTER`` for Redis Cluster clients).
Each is a function ``handler(cluster, session, args)``; :func:`builtins`
binds them to one node's :class:`~redraft.builtins.context.Cluster`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from redraft.builtins import (
    cluster,
    connection,
    info,
    peer,
    pubsub,
    raftadmin,
    sessions,
    transaction,
)
from redraft.builtins.context import Cluster
from redraft.registry import Builtin
from redraft.security import NOPERM_ADMIN
from redraft.session import Session

Handler = Callable[[Cluster, Session, list[bytes]], Any]

HANDLERS: dict[bytes, Handler] = {
    b"auth": connection.auth,
    b"ping": connection.ping,
    b"echo": connection.echo,
    b"quit": connection.quit_,
    b"reset": connection.reset,
    b"select": connection.select,
    b"hello": connection.hello,
    b"client": connection.client,
    b"command": connection.command,
    b"config": connection.config,
    b"info": info.info,
    b"subscribe": pubsub.subscribe,
    b"unsubscribe": pubsub.unsubscribe,
    b"psubscribe": pubsub.psubscribe,
    b"punsubscribe": pubsub.punsubscribe,
    b"ssubscribe": pubsub.ssubscribe,
    b"sunsubscribe": pubsub.sunsubscribe,
    b"publish": pubsub.publish,
    b"spublish": pubsub.spublish,
    b"pubsub": pubsub.pubsub,
    b"multi": transaction.multi,
    b"exec": transaction.exec_,
    b"discard": transaction.discard,
    b"watch": transaction.watch,
    b"unwatch": transaction.unwatch,
    b"raftexec": transaction.raftexec,
    b"cluster": cluster.cluster,
    b"readonly": cluster.connection_mode,
    b"readwrite": cluster.connection_mode,
    b"asking": cluster.connection_mode,
    b"raftleader": raftadmin.raftleader,
    b"raftstate": raftadmin.raftstate,
    b"raftstats": raftadmin.raftstats,
    b"raftpeers": raftadmin.raftpeers,
    b"raftdigest": raftadmin.raftdigest,
    b"raftaddpeer": raftadmin.raftaddpeer,
    b"raftjoin": raftadmin.raftjoin,
    b"raftaddlearner": raftadmin.raftaddlearner,
    b"raftremovepeer": raftadmin.raftremovepeer,
    b"raftsnapshot": raftadmin.raftsnapshot,
    b"raftbackup": raftadmin.raftbackup,
    b"rafttransferleader": raftadmin.rafttransferleader,
    b"rafttick": raftadmin.rafttick,
    b"raftwoken": raftadmin.raftwoken,
    b"raftsession": sessions.raftsession,
    b"raftseq": sessions.raftseq,
    b"raftpeer": peer.raftpeer,
    b"raftmsg": peer.raftmsg,
}
"""Every built-in, by lower-case name."""

ADMIN = frozenset(
    {
        b"raftaddpeer",
        b"raftaddlearner",
        b"raftjoin",
        b"raftremovepeer",
        b"raftsnapshot",
        b"rafttransferleader",
        b"raftbackup",
    }
)
"""The commands that change the cluster: only for a connection that proved a credential."""


def builtins(ctx: Cluster) -> dict[bytes, Builtin]:
    """The built-in commands bound to one node, keyed by lower-case name."""
    return {
        name: partial(_admin, handler, ctx) if name in ADMIN else partial(handler, ctx)
        for name, handler in HANDLERS.items()
    }


def _admin(handler: Handler, ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    if not conn.guard.admin:
        raise ValueError(NOPERM_ADMIN)
    return handler(ctx, conn, args)


__all__ = ["ADMIN", "HANDLERS", "Handler", "builtins"]
