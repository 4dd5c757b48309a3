"""MULTI/EXEC/WATCH: a connection's transaction, queued here and applied as one log entry.

Between ``MULTI`` and ``EXEC`` a connection's commands are checked and
queued, each answered ``+QUEUED`` (:class:`Transaction`, which holds the
session through :attr:`redraft.session.Session.hold`).  ``EXEC`` logs them
as one entry, ``[b"exec", watches, commands]`` (both msgpack), so no other
write interleaves and every node applies all of them or none
(:func:`run_exec`); each command's reply takes its place in EXEC's array.

What is checked when a command is queued, as Redis does: an unknown command
or a wrong number of arguments makes EXEC answer ``EXECABORT``; anything
else that fails (a syntax error, a wrong type) is that command's error in
EXEC's array.  A command whose reply does not depend on the state (PING,
ECHO, a machine command that never calls ``m.apply``, a plain write its
``check`` refused) is answered when queued and logged as its reply.

WATCH asks the machine for a token of each key's state (:meth:`Machine.watch`)
as a read at the configured consistency; the tokens travel in the entry, and
every node asks :meth:`Machine.watch_changed` before running anything, so all
of them abort together.  In proxy mode a follower takes the tokens from its
own state (a prefix of the leader's: at worst an abort that was not needed)
and forwards the whole transaction as ``RAFTEXEC``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import msgpack

from redraft.dedup import error_as_reply, pack_reply, unpack_reply
from redraft.errors import ErrUnknownCommand, ErrWrongNumberOfArguments, error_text
from redraft.machine import (
    NULL_ARRAY,
    OK,
    Applier,
    Command,
    Conn,
    Machine,
    Mutate,
    Respond,
)
from redraft.registry import BUILTIN, READ, WRITE, Route
from redraft.replies import command_error
from redraft.session import Session

EXEC_COMMAND = b"exec"
"""The name a transaction is logged under: ``[b"exec", watches, commands]``."""

RAFTEXEC = b"raftexec"
"""``RAFTEXEC watches commands``: a whole transaction in one request (what proxy mode forwards)."""

ANSWERED = b""
"""A queued command answered when it was queued is logged as ``[b"", its packed reply]``."""

QUEUED_REPLY = b"+QUEUED\r\n"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
NOT_ALLOWED = "ERR Command not allowed inside a transaction"

_RUN_AT_ONCE = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset", b"raftexec"))
"""Inside MULTI these run when sent (the rest is queued), as in Redis."""
_ANSWERED_BUILTINS = frozenset(
    (
        b"ping",
        b"echo",
        b"info",
        b"command",
        b"select",
        b"pubsub",
        b"raftleader",
        b"raftstate",
        b"raftstats",
        b"raftpeers",
    )
)
"""Built-ins whose reply does not depend on the machine's state: answered when queued."""
_LOGGED_BUILTINS = {b"publish": 3, b"spublish": 3}
"""Built-ins a transaction logs as they are, by name: their argument count."""


class _Queued:
    """What :class:`QueueingApplier` hands back: the command touches the state and is logged."""


QUEUED = _Queued()


class QueueingApplier(Applier):
    """``m`` for a machine command queued inside MULTI: it checks its arguments, nothing runs."""

    __slots__ = ("_last_stamp",)

    def __init__(self, last_stamp: Callable[[], int]) -> None:
        self._last_stamp = last_stamp

    def apply(
        self, conn: Conn | None, cmd: Command, mutate: Mutate | None, respond: Respond | None
    ) -> Any:
        return QUEUED

    def now_ns(self) -> int:
        now = time.time_ns()
        stamp = self._last_stamp()
        return now if now > stamp else stamp

    def random(self) -> random.Random:
        return random.Random()


class Transaction:
    """A connection's WATCHed keys and, between MULTI and EXEC, its queued commands."""

    __slots__ = ("active", "dirty", "queued", "session", "size", "watches")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.active = False
        """Between MULTI and EXEC/DISCARD."""
        self.dirty = False
        """A command was refused while queueing: EXEC answers EXECABORT."""
        self.queued: list[list[bytes]] = []
        self.size = 0
        """Bytes queued: held under the connection's query buffer limit."""
        self.watches: dict[bytes, Any] = {}
        """Watched keys and the machine's token of each, from when it was watched."""

    def begin(self) -> None:
        """MULTI: queue what comes next."""
        self.active = True
        self.session.hold = self.hold

    def end(self) -> None:
        """EXEC or DISCARD: the queue is gone, and so are the watches."""
        self.active = False
        self.dirty = False
        self.queued = []
        self.size = 0
        self.watches = {}
        if self.session.hold == self.hold:
            self.session.hold = None

    def hold(self, args: list[bytes], route: Route) -> bool:
        """Session hook while MULTI is open: queue ``args`` (True), or let it run now (False)."""
        if route.key in _RUN_AT_ONCE:
            return False
        session = self.session
        try:
            entry = self._entry(args, route)
        except Exception as exc:
            if _aborts(exc):
                self.dirty = True
                session.reply_bytes(command_error(session, exc, route.name, args))
                return True
            entry = answered(error_as_reply(exc, route.name), route.name)
        self.size += sum(map(len, entry)) + 16 * len(entry)
        if self.size > session.query_limit:
            self.dirty = True
            self.queued = []
            session.reply_bytes(b"-ERR transaction too large: over the query buffer limit\r\n")
            return True
        self.queued.append(entry)
        session.reply_bytes(QUEUED_REPLY)
        return True

    def _entry(self, args: list[bytes], route: Route) -> list[bytes]:
        """What the transaction logs for ``args``; raises what refuses it now."""
        kind = route.kind
        shared = self.session.shared
        if kind is BUILTIN:
            return self._builtin(args, route)
        if kind is READ:
            try:
                route.fn(shared.applier, args)  # its argument checks; it changes nothing
            except Exception as exc:
                if _aborts(exc):
                    raise
            return args  # run again at EXEC, on the state as it is then
        if kind is WRITE:
            if route.check is not None:
                route.check(args)
            return args
        value = shared.machine.command(
            QueueingApplier(shared.requests.last_stamp), self.session, Command(args, route.name)
        )
        return args if value is QUEUED else answered(value, route.name)

    def _builtin(self, args: list[bytes], route: Route) -> list[bytes]:
        key = route.key
        if key in _ANSWERED_BUILTINS:
            return answered(route.fn(self.session, args), route.name)
        if key == b"unwatch":
            return answered(OK, route.name)
        arity = _LOGGED_BUILTINS.get(key)
        if arity is None:
            raise ValueError(NOT_ALLOWED)
        if len(args) != arity:
            raise ErrWrongNumberOfArguments()
        return args


def answered(value: Any, name: str) -> list[bytes]:
    """A queued command's entry when its reply is known at queue time."""
    return [ANSWERED, pack_reply(value, name)]


def _aborts(exc: BaseException) -> bool:
    """Whether a refusal at queue time aborts the transaction (Redis: unknown command, arity)."""
    if isinstance(exc, ErrUnknownCommand | ErrWrongNumberOfArguments):
        return True
    text = error_text(exc, "")
    return text.startswith(("ERR unknown command", "ERR wrong number of arguments"))


def transaction_of(session: Session) -> Transaction:
    """The session's transaction state (made on first use)."""
    tx = session.transaction
    if tx is None:
        tx = session.transaction = Transaction(session)
    assert isinstance(tx, Transaction)
    return tx


def pack_exec(watches: dict[bytes, Any], queued: list[list[bytes]]) -> list[bytes]:
    """The logged arguments of a transaction (after its name)."""
    pack = msgpack.Packer(use_bin_type=True).pack
    return [pack([[k, t] for k, t in watches.items()]), pack(queued)]


def unpack_exec(args: list[bytes]) -> tuple[list[tuple[bytes, Any]], list[list[bytes]]]:
    """The watches and commands of ``[name, watches, commands]``; ValueError if malformed."""
    if len(args) != 3:
        raise ErrWrongNumberOfArguments()
    try:
        watches = msgpack.unpackb(args[1], raw=False, use_list=True)
        cmds = msgpack.unpackb(args[2], raw=False, use_list=True)
    except Exception as exc:
        raise ValueError("ERR malformed transaction") from exc
    if (
        not isinstance(watches, list)
        or not all(isinstance(w, list) and len(w) == 2 and type(w[0]) is bytes for w in watches)
        or not isinstance(cmds, list)
        or not all(isinstance(c, list) and c and all(type(a) is bytes for a in c) for c in cmds)
    ):
        raise ValueError("ERR malformed transaction")
    return [(k, t) for k, t in watches], cmds


def run_exec(args: list[bytes], machine: Machine, run: Callable[[list[bytes]], Any]) -> Any:
    """Apply a logged transaction: its replies, or :data:`NULL_ARRAY` if a watched key changed.

    ``run`` applies one command and returns its result (raising for an error).
    """
    watches, cmds = unpack_exec(args)
    for key, token in watches:
        try:
            changed = machine.watch_changed(key, token)
        except Exception:
            changed = True  # err towards aborting, as watch_changed may
        if changed:
            return NULL_ARRAY
    replies: list[Any] = []
    for cmd in cmds:
        if cmd[0] == ANSWERED:
            replies.append(unpack_reply(cmd[1]) if len(cmd) == 2 else None)
            continue
        name = cmd[0].decode("latin-1").lower()
        try:
            value = run(cmd)
        except Exception as exc:
            value = exc
        if isinstance(value, BaseException):
            value = error_as_reply(value, name)
        replies.append(value)
    return replies


__all__ = [
    "ANSWERED",
    "EXECABORT",
    "EXEC_COMMAND",
    "NOT_ALLOWED",
    "QUEUED",
    "RAFTEXEC",
    "QueueingApplier",
    "Transaction",
    "answered",
    "pack_exec",
    "run_exec",
    "transaction_of",
    "unpack_exec",
]
