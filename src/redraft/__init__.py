"""redraft: a fast Raft framework for Python that speaks the Redis protocol.

Write a :class:`Machine` (``command``, ``snapshot``, ``restore``), call
:func:`open` and :meth:`Node.run`, and any Redis client can use the result,
replicated by Raft over as many nodes as you start.
"""

from redraft.machine import (
    NULL_ARRAY,
    OK,
    Applier,
    Block,
    Command,
    CommandSpec,
    Conn,
    Double,
    ErrDisabled,
    ErrUnknownCommand,
    ErrWrongNumberOfArguments,
    KeyRead,
    Machine,
    Pairs,
    Read,
    RedraftError,
    SnapshotCapture,
    Status,
    Verbatim,
    Write,
)
from redraft.node import Node, open, serve
from redraft.options import Level, Options
from redraft.version import VERSION

__version__ = VERSION

__all__ = [
    "NULL_ARRAY",
    "OK",
    "Applier",
    "Block",
    "Command",
    "CommandSpec",
    "Conn",
    "Double",
    "ErrDisabled",
    "ErrUnknownCommand",
    "ErrWrongNumberOfArguments",
    "KeyRead",
    "Level",
    "Machine",
    "Node",
    "Options",
    "Pairs",
    "Read",
    "RedraftError",
    "SnapshotCapture",
    "Status",
    "Verbatim",
    "Write",
    "__version__",
    "open",
    "serve",
]
