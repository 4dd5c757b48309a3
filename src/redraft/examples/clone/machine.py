"""The :class:`Clone` machine: the command families put together, TIME, snapshots, tick and INFO."""

from __future__ import annotations

import heapq
from typing import IO, Any

from redraft.machine import (
    Applier,
    Command,
    CommandSpec,
    Conn,
    ErrUnknownCommand,
    ErrWrongNumberOfArguments,
    Machine,
    Read,
    Write,
)

from .commands import command_table
from .hashes import HashCommands
from .keys import KeyCommands
from .keyspace import ACTIVE_EXPIRE_KEYS, WATCH_TRIM_AT, Handler
from .lists import ListCommands
from .scanning import ScanLists
from .sets import SetCommands
from .snapshot import Capture, read_snapshot
from .strings import StringCommands
from .zsets import ZSetCommands

__all__ = ["Clone", "server_time"]

_NS_PER_US = 1000
_US_PER_S = 1_000_000


def server_time(m: Applier, args: list[bytes]) -> list[bytes]:
    """TIME: this node's clock as Redis answers it, unix seconds and microseconds (two bulk
    strings).  A read, never logged: each node answers from its own clock."""
    if len(args) != 1:
        raise ErrWrongNumberOfArguments()
    seconds, micros = divmod(m.now_ns() // _NS_PER_US, _US_PER_S)
    return [b"%d" % seconds, b"%d" % micros]


class Clone(
    StringCommands,
    ListCommands,
    HashCommands,
    SetCommands,
    ZSetCommands,
    KeyCommands,
    Machine,
):
    """An in-memory Redis keyspace (strings, lists, hashes, sets, sorted sets), replicated."""

    def __init__(self) -> None:
        super().__init__()
        self._scans = ScanLists()
        handlers: dict[bytes, Handler] = {
            **self._string_handlers(),
            **self._list_handlers(),
            **self._hash_handlers(),
            **self._set_handlers(),
            **self._zset_handlers(),
            **self._key_handlers(),
        }
        # Upper-case twins spare a .lower() on the requests most clients send.
        self._handlers = handlers | {name.upper(): h for name, h in handlers.items()}
        self._command_table: dict[str, CommandSpec] | None = None

    # -- the Machine interface -------------------------------------------------------------

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """Dispatch one command to its handler."""
        args = cmd.args
        if not args:
            raise ErrUnknownCommand()
        handler = self._handlers.get(args[0]) or self._handlers.get(args[0].lower())
        if handler is None:
            raise ErrUnknownCommand()
        return handler(m, conn, cmd)

    def reads(self) -> dict[str, Read]:
        """The commands that only read, served without :meth:`command`."""
        return {
            "time": server_time,
            **self._string_reads(),
            **self._list_reads(),
            **self._hash_reads(),
            **self._set_reads(),
            **self._zset_reads(),
            **self._key_reads(),
        }

    def writes(self) -> dict[str, Write]:
        """The writes applied without :meth:`command`: SET, the hottest, and the list writes."""
        return {
            **self._string_writes(),
            **self._list_writes(),
            **self._hash_writes(),
            **self._set_writes(),
            **self._zset_writes(),
        }

    def command_table(self) -> dict[str, CommandSpec]:
        """What ``COMMAND`` describes: Redis's entry for every command the clone serves."""
        if self._command_table is None:
            # Built on first use: a subclass may serve other reads and writes.
            served = [n.decode().lower() for n in self._handlers]
            self._command_table = command_table([*served, *self.reads(), *self.writes()])
        return self._command_table

    def snapshot(self, wr: IO[bytes]) -> Capture:
        """Capture the keyspace now; the returned object writes it later."""
        return Capture.take(
            self._data,
            self._objects,
            self._expires,
            self._touched_base,
            self._watch_exact,
            self._touched,
        )

    def restore(self, rd: IO[bytes]) -> None:
        """Replace the whole keyspace with a snapshot; on a bad snapshot keep the old one."""
        picture = read_snapshot(rd)
        self._data = picture.data
        self._objects = picture.objects
        self._expires = picture.expires
        self._heap = [(at, key) for key, at in picture.expires.items()]
        heapq.heapify(self._heap)
        self._extras = bool(self._expires or self._objects)
        self._touched = picture.watch_log
        self._touched_base = picture.watch_base
        self._watch_exact = picture.watch_exact
        self._scans.clear()

    def tick(self, m: Applier) -> None:
        """Active expiry, on every node at the tick's place in the log: delete due keys."""
        now = m.now_ns()
        self._purge(now, ACTIVE_EXPIRE_KEYS)
        self._after_write(m, now)

    def wants_tick(self, now_ns: int) -> bool:
        """A tick while some expiry is due (maybe a stale pair), or the WATCH log wants trimming."""
        heap = self._heap
        return (bool(heap) and heap[0][0] <= now_ns) or len(self._touched) > WATCH_TRIM_AT

    def info(self) -> dict[str, dict[str, str]]:
        """INFO's Keyspace section, as Redis prints it (no line for an empty database)."""
        count = self._key_count()
        if not count:
            return {"Keyspace": {}}
        line = f"keys={count},expires={len(self._expires)},avg_ttl=0"
        return {"Keyspace": {"db0": line}}
