"""Pub/sub built-ins: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.

Subscribing is served by the node the client is connected to, any node
(:class:`redraft.pubsub.PubSub` holds its subscriptions); it takes effect in
its place in line (:meth:`redraft.session.Session.wait_turn`), as in Redis
where a command runs when read: a SUBSCRIBE pipelined behind a PUBLISH still
being logged does not receive that message.  PUBLISH is a write: logged,
then delivered by every node as it applies it, answered with the number of
receivers on the node that logged it (the leader); a follower redirects it
like any write (or forwards it, in proxy mode).  Replies are Redis 7.0's.
"""

from __future__ import annotations

from typing import Any

from redraft.builtins.context import Cluster, arity, text
from redraft.machine import Status
from redraft.pubsub import CHANNELS, PATTERNS, PUBLISH, SHARD, SPUBLISH
from redraft.session import NO_REPLY, Session

HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]
"""PUBSUB HELP, as Redis 7.0 words it."""


def subscribe(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2)
    if not conn.wait_turn(args):
        ctx.pubsub.subscribe(conn, args[1:], CHANNELS)
    return NO_REPLY


def psubscribe(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2)
    if not conn.wait_turn(args):
        ctx.pubsub.subscribe(conn, args[1:], PATTERNS)
    return NO_REPLY


def ssubscribe(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2)
    if not conn.wait_turn(args):
        ctx.pubsub.subscribe(conn, args[1:], SHARD)
    return NO_REPLY


def unsubscribe(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    if not conn.wait_turn(args):
        ctx.pubsub.unsubscribe(conn, args[1:], CHANNELS)
    return NO_REPLY


def punsubscribe(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    if not conn.wait_turn(args):
        ctx.pubsub.unsubscribe(conn, args[1:], PATTERNS)
    return NO_REPLY


def sunsubscribe(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    if not conn.wait_turn(args):
        ctx.pubsub.unsubscribe(conn, args[1:], SHARD)
    return NO_REPLY


def publish(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """Logged as ``[b"publish", channel, message]``; the leader's receivers answer it."""
    arity(args, 3, 3)
    return conn.write([PUBLISH, args[1], args[2]], None, "publish")


def spublish(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 3, 3)
    return conn.write([SPUBLISH, args[1], args[2]], None, "spublish")


def pubsub(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2)
    sub = args[1].lower()
    registry = ctx.pubsub
    if sub in (b"channels", b"shardchannels"):
        if len(args) > 3:
            raise ValueError(
                f"ERR unknown subcommand or wrong number of arguments for '{text(args[1])}'. "
                "Try PUBSUB HELP."
            )
        kind = CHANNELS if sub == b"channels" else SHARD
        return registry.active(args[2] if len(args) == 3 else None, kind)
    if sub == b"numsub":
        return registry.numsub(args[2:], CHANNELS)
    if sub == b"shardnumsub":
        return registry.numsub(args[2:], SHARD)
    if sub == b"numpat":
        _exactly(args, "numpat")
        return registry.numpat()
    if sub == b"help":
        _exactly(args, "help")
        return [Status(line) for line in HELP]
    raise ValueError(f"ERR unknown subcommand '{text(args[1])}'. Try PUBSUB HELP.")


def _exactly(args: list[bytes], sub: str) -> None:
    if len(args) != 2:
        raise ValueError(f"ERR wrong number of arguments for 'pubsub|{sub}' command")


__all__ = [
    "HELP",
    "psubscribe",
    "publish",
    "pubsub",
    "punsubscribe",
    "spublish",
    "ssubscribe",
    "subscribe",
    "sunsubscribe",
    "unsubscribe",
]
