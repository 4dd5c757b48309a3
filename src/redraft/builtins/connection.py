"""Built-ins about the connection itself: AUTH, HELLO, PING, ECHO, QUIT, SELECT, CLIENT, COMMAND, CONFIG."""

from __future__ import annotations

import logging
import time
from typing import Any

from redraft.builtins import keyspecs
from redraft.builtins.context import Cluster, arity, text
from redraft.builtins.info import reset_stats
from redraft.machine import OK, Status, Verbatim
from redraft.replies import Slot
from redraft.resp import encode
from redraft.security import (
    HELLO_NOAUTH,
    NO_PASSWORD_SET,
    UNAUTHENTICATED_QUERY_BUFFER,
    WRONGPASS,
)
from redraft.session import NO_REPLY, Session
from redraft.version import REDIS_COMPAT_VERSION

log = logging.getLogger("redraft.commands")


def deny(ctx: Cluster, conn: Session, name: str) -> Slot:
    """Answer WRONGPASS after a delay, one failure after another on a connection."""
    guard = conn.guard
    guard.failures += 1
    if guard.failures == 1:
        log.warning("wrong password from %s", conn.addr)
    slot = conn.new_slot()
    slot.name = name
    now = time.monotonic()
    due = max(now, guard.penalty_until) + ctx.security.failure_delay
    guard.penalty_until = due
    ctx.call_later(due - now, lambda: conn.fill_error(slot, ValueError(WRONGPASS)))
    return slot


def authenticate(
    ctx: Cluster, conn: Session, user: bytes, password: bytes, name: str
) -> Slot | None:
    """None when ``user``/``password`` are right; else the slot WRONGPASS will fill."""
    security = ctx.security
    if security.password is None and security.peer_secret is None:
        if user == b"default":
            return None  # no password: the default user needs none, as in Redis
        return deny(ctx, conn, name)
    if security.check_password(user, password):
        conn.authenticate()
        return None
    return deny(ctx, conn, name)


def auth(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2, 3)
    security = ctx.security
    if len(args) == 2 and security.password is None and security.peer_secret is None:
        raise ValueError(NO_PASSWORD_SET)
    user = args[1] if len(args) == 3 else b"default"
    pending = authenticate(ctx, conn, user, args[-1], "auth")
    return OK if pending is None else pending


def ping(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 2)
    return args[1] if len(args) == 2 else Status("PONG")


def echo(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2, 2)
    return args[1]


def quit_(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    conn.reply_bytes(b"+OK\r\n")
    conn.close()
    return NO_REPLY


def reset(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """RESET: the connection as new (Redis's): no subscriptions, RESP2, no name, and
    authenticated again only if no password is set."""
    arity(args, 1, 1)
    for forget in conn.shared.forget:
        forget(conn)
    conn.use_resp3(False)
    conn.name = ""
    security = ctx.security
    if security.password is not None or security.peer_secret is not None:
        conn.authenticated = security.password is None
        conn.guard.admin = security.peer_secret is None
        if not conn.authenticated:
            conn.query_limit = min(conn.query_limit, UNAUTHENTICATED_QUERY_BUFFER)
    return RESET


RESET = Status("RESET")


def select(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2, 2)
    try:
        db = int(args[1])
    except ValueError:
        raise ValueError("value is not an integer or out of range") from None
    if db != 0:
        raise ValueError("ERR DB index is out of range")
    return OK


def _hello_options(args: list[bytes]) -> tuple[str | None, tuple[bytes, bytes] | None]:
    """HELLO's SETNAME and AUTH options: (name, (user, password))."""
    i = 2
    name: str | None = None
    credentials: tuple[bytes, bytes] | None = None
    while i < len(args):
        opt = args[i].lower()
        if opt == b"setname" and i + 1 < len(args):
            name = text(args[i + 1])
            i += 2
        elif opt == b"auth" and i + 2 < len(args):
            credentials = (args[i + 1], args[i + 2])
            i += 3
        else:
            raise ValueError(f"syntax error in HELLO option '{text(args[i])}'")
    return name, credentials


def hello(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    proto = 0
    if len(args) >= 2:
        try:
            proto = int(args[1])
        except ValueError:
            raise ValueError("Protocol version is not an integer or out of range") from None
        if proto not in (2, 3):
            raise ValueError("NOPROTO unsupported protocol version")
    name, credentials = _hello_options(args)
    if credentials is not None:
        pending = authenticate(ctx, conn, credentials[0], credentials[1], "hello")
        if pending is not None:
            return pending
    elif not conn.authenticated:
        raise ValueError(HELLO_NOAUTH)
    if name is not None:
        conn.name = name
    if proto:
        conn.use_resp3(proto == 3)
    return {
        b"server": b"redraft",
        b"version": REDIS_COMPAT_VERSION.encode(),
        b"proto": 3 if conn.encode is not encode else 2,
        b"id": conn.id,
        # Cluster clients check the mode: "cluster" only where they can follow the redirects.
        b"mode": b"cluster" if ctx.options.redirect == "moved" else b"standalone",
        b"role": b"master" if ctx.is_leader else b"replica",
        b"modules": [],
    }


def client_line(conn: Session) -> str:
    """One connection as CLIENT INFO and CLIENT LIST show it."""
    return f"id={conn.id} addr={conn.addr} name={conn.name}"


def client(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2)
    sub = args[1].lower()
    if sub == b"setname":
        arity(args, 3, 3)
        name = text(args[2])
        if any(c in name for c in " \n\r"):
            raise ValueError("Client names cannot contain spaces, newlines or special characters.")
        conn.name = name
        return OK
    if sub == b"getname":
        return conn.name.encode() if conn.name else None
    if sub == b"id":
        return conn.id
    # Both are verbatim strings in RESP3, each line ended by LF, as Redis 7.0 answers.
    if sub == b"info":
        return Verbatim((client_line(conn) + "\n").encode())
    if sub == b"list":
        return Verbatim("".join(client_line(c) + "\n" for c in ctx.sessions()).encode())
    if sub in (b"setinfo", b"no-evict", b"no-touch", b"reply"):
        return OK
    raise ValueError(f"unknown subcommand '{text(args[1])}'. Try CLIENT HELP.")


def command(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """COMMAND, COMMAND COUNT, COMMAND INFO [name...], COMMAND LIST (others: empty)."""
    sub = args[1].lower() if len(args) >= 2 else b""
    moved = ctx.options.redirect == "moved"
    specs = conn.shared.machine.command_table()
    if not moved and not specs:
        return 0 if sub == b"count" else []
    # Cluster clients find the keys of commands here (see keyspecs).
    registry = conn.shared.registry
    table = keyspecs.table(registry.builtins, registry.plain(), specs, moved)
    if sub == b"count":
        return len(table)
    if sub == b"info":
        return (
            [table.get(name.lower()) for name in args[2:]] if len(args) > 2 else [*table.values()]
        )
    if sub == b"list":
        return [*table]
    return [*table.values()] if not sub else []


CONFIG_HELP = [
    Status(line)
    for line in (
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    )
]
"""CONFIG HELP's lines, as Redis 7.0 prints them."""

_CONFIG_ARITY = {b"get": -3, b"set": -4, b"resetstat": 2, b"rewrite": 2, b"help": 2}
"""CONFIG's subcommands and their arity as Redis 7.0's ``COMMAND`` gives it (-n: n or more)."""


def config(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """CONFIG GET answers no parameter (redraft has none of Redis's): an empty map, which
    RESP2 sends as an empty array and RESP3 as ``%0``, as Redis answers an unknown one.
    CONFIG RESETSTAT zeroes this node's INFO statistics (:func:`.info.reset_stats`) and
    answers ``+OK``.  CONFIG HELP is Redis's; SET and REWRITE are refused once their arity
    passes."""
    arity(args, 2)
    sub = args[1].lower()
    want = _CONFIG_ARITY.get(sub)
    if want is None:
        raise ValueError(f"unknown subcommand '{text(args[1][:128])}'. Try CONFIG HELP.")
    if len(args) < -want if want < 0 else len(args) != want:
        raise ValueError(f"wrong number of arguments for 'config|{sub.decode()}' command")
    if sub == b"get":
        return {}
    if sub == b"help":
        return CONFIG_HELP
    if sub == b"resetstat":
        reset_stats(ctx)
        return OK
    raise ValueError(f"ERR CONFIG {text(args[1])} is not supported by redraft")
