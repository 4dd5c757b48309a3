"""The errors redraft answers clients with, and how an exception becomes a reply line.

Near the bottom: everything that raises or answers an error imports it, and
it imports nothing of redraft's but leaves (the core's error base, ``addr``,
``keyslot``: a redirect in moved mode names the slot of the command's key).
"""

from __future__ import annotations

from collections.abc import Sequence

from redraft.addr import split_hostport
from redraft.keyslot import command_slot
from redraft.raft.types import RaftError


class RedraftError(Exception):
    """Base of redraft's errors that map to a fixed Redis reply."""


class ErrUnknownCommand(RedraftError):
    """Raise from ``command`` for a command the machine does not know."""


class ErrWrongNumberOfArguments(RedraftError):
    """Raise from ``command`` when the argument count is wrong."""


class ErrDisabled(RedraftError):
    """Raise from ``snapshot`` to turn snapshots off."""


CLUSTER_DOWN = "CLUSTERDOWN The cluster is down"
"""Redis Cluster's answer when it cannot serve a slot; its clients retry it."""


class Redirect(Exception):
    """This node may not serve the request: answered ``-TRY host:port`` (or ``-ERR leader not known``).

    Its text is the ``try`` redirect (``Options.redirect``); a node in
    ``moved`` mode answers :meth:`moved_text` instead, which needs the
    command's arguments.
    """

    def __init__(self, leader: str) -> None:
        super().__init__(f"TRY {leader}" if leader else "ERR leader not known")
        self.leader = leader

    def moved_text(self, args: Sequence[bytes] | None) -> str:
        """Redis Cluster's redirect of the command ``args``: ``MOVED <slot> <host:port>``.

        The slot is that of the command's key (:func:`redraft.keyslot.command_slot`);
        the host goes without IPv6 brackets, as Redis writes it.  With no
        leader known: ``CLUSTERDOWN``, which cluster clients retry.
        """
        if not self.leader:
            return CLUSTER_DOWN
        host, port = split_hostport(self.leader)
        return f"MOVED {command_slot(args)} {host}:{port}"


class DiskFull(Exception):
    """Writes are refused: this node's disk is full and it leads with no one to hand over to.

    Answered as Redis answers when it cannot write its AOF: ``-MISCONF ...``.
    """

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(
            f"MISCONF disk full on {node}: {reason}; writes are refused until space returns"
        )


class Uncertain(Exception):
    """The outcome of a write is unknown to this node (it may still commit)."""


NOT_APPLIED = "ERR leadership changed before the command committed; it was not applied"
TIMED_OUT = "TIMEOUT the command did not commit in time; it may still be applied"
REPLACED_BY_SNAPSHOT = "TIMEOUT outcome unknown: replaced by a snapshot"


def error_text(exc: BaseException, cmd_name: str) -> str:
    """The RESP error line (without ``-`` and CRLF) for an exception.

    The first word of a message that is all capitals passes through as the
    error code (``WRONGTYPE ...``); any other message is prefixed with ``ERR``.
    """
    if isinstance(exc, ErrUnknownCommand):
        return f"ERR unknown command '{cmd_name}'"
    if isinstance(exc, ErrWrongNumberOfArguments):
        return f"ERR wrong number of arguments for '{cmd_name}' command"
    msg = str(exc) or type(exc).__name__
    msg = msg.replace("\r", " ").replace("\n", " ")
    first = msg.split(" ", 1)[0]
    if len(first) > 1 and first.isupper() and first.isalpha():
        return msg
    return "ERR " + msg


def unknown_command_text(args: Sequence[bytes]) -> str:
    """Redis's error for an unknown command: its name and the start of its arguments."""
    shown = ""
    for arg in args[1:]:
        if len(shown) >= 128:
            break
        shown += "'" + arg[: 128 - len(shown)].decode("utf-8", "replace") + "' "
    name = args[0][:128].decode("utf-8", "replace") if args else ""
    text = f"ERR unknown command '{name}', with args beginning with: {shown}"
    return text.replace("\r", " ").replace("\n", " ")


def expected(exc: BaseException) -> bool:
    """Errors that are ordinary answers, not faults worth a warning in the log."""
    return isinstance(exc, (RedraftError, Redirect, RaftError, ValueError, DiskFull))
