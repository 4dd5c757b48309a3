"""redraft: a fast Raft framework for Python that speaks the Redis protocol."""

from redraft.machine import (
    OK,
    Applier,
    Command,
    Conn,
    ErrDisabled,
    ErrUnknownCommand,
    ErrWrongNumberOfArguments,
    Machine,
    RedraftError,
    SnapshotCapture,
    Status,
)

__all__ = [
    "OK",
    "Applier",
    "Command",
    "Conn",
    "ErrDisabled",
    "ErrUnknownCommand",
    "ErrWrongNumberOfArguments",
    "Machine",
    "RedraftError",
    "SnapshotCapture",
    "Status",
]
