"""INFO: the sections redis-cli and monitoring tools read, redraft's own, and the machine's.

The machine's sections (``Machine.info``: the clone's ``Keyspace``, say)
come after the node's; one named like a node's section adds its lines to it.

``CONFIG RESETSTAT`` (:func:`reset_stats`) zeroes the counters of ``# Stats``,
what Redis's resets: here the pub/sub messages applied and delivered.  The
gauges beside them (channels, patterns) are not statistics and stay, as in
Redis; so do the ``# Raft`` section's counters (fsyncs, persist groups,
proposals, commands and ticks applied, disk-full episodes), which are
Raft's, not Redis's statistics, and which RAFTSTATS and the metrics
(Prometheus counters never go down) read too.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

from redraft.builtins.context import Cluster, text
from redraft.machine import Verbatim
from redraft.session import Session
from redraft.version import REDIS_COMPAT_VERSION, VERSION

Section = tuple[str, list[tuple[str, Any]]]
"""One INFO section: its name and its fields in order."""


def info(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """INFO [section ...]: a verbatim string in RESP3, as Redis 7.0 answers."""
    sections = {text(a).lower() for a in args[1:]}
    return Verbatim(render(ctx, sections).encode())


def render(ctx: Cluster, sections: set[str]) -> str:
    """The INFO text of ``sections`` (all of them when empty, ``all`` or ``everything``),
    a blank line between two sections, as Redis prints them."""
    everything = not sections or "all" in sections or "everything" in sections
    parts: list[str] = []
    for name, fields in _with_machine(_sections(ctx), ctx):
        if everything or name.lower() in sections or "default" in sections:
            parts.append(f"# {name}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in fields))
    return "\r\n".join(parts)


def _sections(ctx: Cluster) -> list[Section]:
    opts = ctx.options
    # A Redis Cluster node says so (redis_mode, cluster_enabled); redraft does
    # only where it answers as one (moved redirects, the CLUSTER command).
    cluster = 1 if opts.redirect == "moved" else 0
    server = [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("redraft_version", VERSION),
        ("redis_mode", "cluster" if cluster else "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("python_version", platform.python_version()),
        ("process_id", os.getpid()),
        ("tcp_port", ctx.port),
        ("uptime_in_seconds", int(time.time() - ctx.started)),
        ("executable", sys.executable),
    ]
    replication = [
        ("role", "master" if ctx.is_leader else "slave"),
        ("connected_slaves", max(0, len(ctx.membership.members()) - 1)),
    ]
    raft = [
        ("node_id", ctx.id),
        *ctx.raft_stats().items(),
        ("durability", opts.durability.name.lower()),
        ("consistency", opts.consistency.name.lower()),
        ("backend", opts.backend),
    ]
    return [
        ("Server", server),
        ("Clients", [("connected_clients", len(ctx.sessions()))]),
        ("Stats", _pubsub_stats(ctx)),
        ("Replication", replication),
        ("Cluster", [("cluster_enabled", cluster)]),
        ("Raft", raft),
        ("Security", ctx.security.describe()),
    ]


def _pubsub_stats(ctx: Cluster) -> list[tuple[str, Any]]:
    """Redis's pub/sub fields of ``# Stats`` (this node's), and the messages it handled."""
    ps = ctx.pubsub
    return [
        ("pubsub_channels", len(ps.channels)),
        ("pubsub_patterns", len(ps.patterns)),
        ("pubsubshard_channels", len(ps.shard)),
        ("pubsub_messages_applied", ps.published),
        ("pubsub_messages_delivered", ps.delivered),
    ]


def reset_stats(ctx: Cluster) -> None:
    """CONFIG RESETSTAT: zero the counters of INFO's ``# Stats`` section (see the module)."""
    ctx.pubsub.reset_stats()


def _with_machine(sections: list[Section], ctx: Cluster) -> list[Section]:
    """The node's sections, then the machine's (merged into a node's of the same name)."""
    out = [(name, list(fields)) for name, fields in sections]
    by_name = {name.lower(): fields for name, fields in out}
    for name, fields in ctx.machine_info().items():
        mine = by_name.get(name.lower())
        if mine is None:
            mine = by_name[name.lower()] = []
            out.append((name, mine))
        mine.extend(fields.items())
    return out
