"""CLUSTER, READONLY, READWRITE, ASKING: the node as a Redis Cluster of one shard (``--redirect moved``).

Redis Cluster clients (``redis-cli -c``, redis-py's ``RedisCluster``,
ioredis's ``Cluster``, ...) learn from ``CLUSTER SLOTS`` (or ``SHARDS``,
``NODES``) which node serves each of the 16384 hash slots, send each
command there, and follow ``MOVED``.  A redraft cluster is one shard that
holds every slot: the leader is its master, every other member (voter or
learner) a replica of it.  While no leader is known no slot is served:
each member shows as a master of no slots, and ``cluster_state`` is
``fail``.

A member's node id is the SHA-1 of its advertised address, so every node
names every member alike without agreeing on anything.  Raft's term stands
for the config epoch.  Formats are Redis 7.0's, ``CLUSTER INFO`` and
``NODES`` verbatim strings in RESP3 as Redis sends them.

In any other redirect mode the node is a standalone Redis as far as
clients can tell: these commands answer what Redis answers with cluster
support disabled, except ``CLUSTER KEYSLOT`` (a pure function, handy
anywhere).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redraft.addr import split_hostport
from redraft.builtins.context import Cluster, arity, text
from redraft.keyslot import SLOTS, key_slot
from redraft.machine import OK, Status, Verbatim
from redraft.session import Session

DISABLED = "ERR This instance has cluster support disabled"
"""What Redis answers a cluster command when it runs standalone."""


def node_id(addr: str) -> str:
    """The Redis Cluster node id of the member at ``addr``: 40 hex digits, the same on every node."""
    return hashlib.sha1(addr.encode()).hexdigest()


def enabled(ctx: Cluster) -> bool:
    """Whether the node answers as a Redis Cluster node (``--redirect moved``)."""
    return ctx.options.redirect == "moved"


@dataclass(frozen=True)
class Member:
    """One member as the cluster map shows it."""

    id: str
    host: str
    port: int
    master: bool
    """Whether it serves the slots: it leads."""
    myself: bool
    offset: int
    """Its replication offset: the log index it is known to hold (0 when not known here)."""
    contact_ms: int | None


def members(ctx: Cluster) -> list[Member]:
    """Every member, the leader (if one is known) first and the only master."""
    leader = ctx.leader
    out: list[Member] = []
    for peer in ctx.peers():
        host, port = split_hostport(peer.address)
        out.append(
            Member(
                node_id(peer.address),
                host,
                port,
                bool(leader) and peer.address == leader,
                peer.address == ctx.id,
                peer.match_index or 0,
                peer.last_contact_ms,
            )
        )
    out.sort(key=lambda m: not m.master)
    return out


def _served(shard: list[Member]) -> bool:
    return bool(shard) and shard[0].master


def slots(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER SLOTS: ``[[0, 16383, master, replica...]]``, each node ``[host, port, id, {}]``."""
    shard = members(ctx)
    if not _served(shard):
        return []
    # The empty map is Redis 7's "more networking metadata" (none here).
    nodes = [[m.host.encode(), m.port, m.id.encode(), {}] for m in shard]
    return [[0, SLOTS - 1, *nodes]]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _shard_node(m: Member, tls: bool, served: bool) -> dict[bytes, Any]:
    host = m.host.encode()
    node: dict[bytes, Any] = {
        b"id": m.id.encode(),
        # One port serves clients: TLS when the node has a certificate.
        b"tls-port" if tls else b"port": m.port,
        b"ip": host,
        b"endpoint": host,
    }
    if not _is_ip(m.host):
        node[b"hostname"] = host
    node[b"role"] = b"master" if m.master or not served else b"replica"
    node[b"replication-offset"] = m.offset
    node[b"health"] = b"online"
    return node


def shards(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER SHARDS: one shard of every slot, or one empty shard per member without a leader."""
    shard = members(ctx)
    tls = bool(ctx.options.tls_cert)
    if _served(shard):
        nodes = [_shard_node(m, tls, True) for m in shard]
        return [{b"slots": [0, SLOTS - 1], b"nodes": nodes}]
    return [{b"slots": [], b"nodes": [_shard_node(m, tls, False)]} for m in shard]


def nodes(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER NODES: ``<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> [slots]``
    lines (a verbatim string in RESP3, as CLUSTER INFO, as Redis 7.0 answers)."""
    shard = members(ctx)
    master = shard[0] if _served(shard) else None
    now_ms = int(time.time() * 1000)
    term = ctx.term
    lines = []
    for m in shard:
        replica = master is not None and m is not master
        flags = ("myself," if m.myself else "") + ("slave" if replica else "master")
        of = master.id if replica and master is not None else "-"
        pong = 0 if m.myself else now_ms - (m.contact_ms or 0)
        served = " 0-16383" if m is master else ""
        # Peers talk on the client port: it is the "cluster bus" port too.
        lines.append(
            f"{m.id} {m.host}:{m.port}@{m.port} {flags} {of} 0 {pong} {term} connected{served}\n"
        )
    return Verbatim("".join(lines).encode())


def info(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER INFO: Redis 7.0's fields, ``cluster_state:ok`` while a leader is known."""
    shard = members(ctx)
    served = _served(shard)
    term = ctx.term
    fields = [
        ("cluster_state", "ok" if served else "fail"),
        ("cluster_slots_assigned", SLOTS if served else 0),
        ("cluster_slots_ok", SLOTS if served else 0),
        ("cluster_slots_pfail", 0),
        ("cluster_slots_fail", 0),
        ("cluster_known_nodes", len(shard)),
        ("cluster_size", 1 if served else 0),
        ("cluster_current_epoch", term),
        ("cluster_my_epoch", term),
        ("cluster_stats_messages_sent", 0),
        ("cluster_stats_messages_received", 0),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return Verbatim("".join(f"{k}:{v}\r\n" for k, v in fields).encode())


def myid(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER MYID: this node's id."""
    return node_id(ctx.id).encode()


def keyslot(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER KEYSLOT key: the key's hash slot."""
    return key_slot(args[2])


_HELP = [
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings.",
    "HELP",
    "    Prints this help.",
]


def help_(ctx: Cluster, args: list[bytes]) -> Any:
    """CLUSTER HELP: the subcommands redraft answers, in Redis's layout."""
    return [Status(line) for line in _HELP]


Sub = Callable[[Cluster, list[bytes]], Any]

SUBCOMMANDS: dict[bytes, tuple[Sub, int]] = {
    b"slots": (slots, 2),
    b"shards": (shards, 2),
    b"nodes": (nodes, 2),
    b"info": (info, 2),
    b"myid": (myid, 2),
    b"keyslot": (keyslot, 3),
    b"help": (help_, 2),
}
"""The subcommands redraft answers, with the argument count each takes (the name included)."""

NOT_SUPPORTED = frozenset(
    b"addslots addslotsrange bumpepoch count-failure-reports countkeysinslot delslots "
    b"delslotsrange failover flushslots forget getkeysinslot links meet myshardid replicas "
    b"replicate reset saveconfig set-config-epoch setslot slaves".split()
)
"""Redis's other subcommands: they change a sharded cluster's layout, or list keys by slot."""


def cluster(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """CLUSTER <subcommand>: malformed requests get Redis's errors in every mode, first."""
    arity(args, 2)
    sub = args[1].lower()
    entry = SUBCOMMANDS.get(sub)
    if entry is None:
        if sub not in NOT_SUPPORTED:
            # Redis cuts the name at 128 characters.
            raise ValueError(f"ERR unknown subcommand '{text(args[1])[:128]}'. Try CLUSTER HELP.")
        if not enabled(ctx):
            raise ValueError(DISABLED)
        raise ValueError(
            f"ERR CLUSTER {text(args[1]).upper()} is not supported by redraft: members "
            "change with RAFTADDPEER and RAFTREMOVEPEER"
        )
    handler, count = entry
    if len(args) != count:
        raise ValueError(f"ERR wrong number of arguments for 'cluster|{sub.decode()}' command")
    if sub != b"keyslot" and not enabled(ctx):
        raise ValueError(DISABLED)
    return handler(ctx, args)


def connection_mode(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """READONLY, READWRITE, ASKING: +OK for a cluster client (a one-shard cluster never asks)."""
    arity(args, 1, 1)
    if not enabled(ctx):
        raise ValueError(DISABLED)
    return OK


__all__ = ["DISABLED", "SUBCOMMANDS", "Member", "cluster", "connection_mode", "node_id"]
