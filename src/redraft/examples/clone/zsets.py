"""ZSet commands (ZADD and the rest of the family), Redis 7.0's replies and errors."""

from __future__ import annotations

from redraft.machine import Read, Write

from .keyspace import Handler, Keyspace

__all__ = ["ZSetCommands"]


class ZSetCommands(Keyspace):
    """The zset commands, over the shared keyspace."""

    def _zset_handlers(self) -> dict[bytes, Handler]:
        return {}

    def _zset_reads(self) -> dict[str, Read]:
        return {}

    def _zset_writes(self) -> dict[str, Write]:
        return {}
