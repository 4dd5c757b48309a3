"""Set commands (SADD and the rest of the family), Redis 7.0's replies and errors."""

from __future__ import annotations

from redraft.machine import Read, Write

from .keyspace import Handler, Keyspace

__all__ = ["SetCommands"]


class SetCommands(Keyspace):
    """The set commands, over the shared keyspace."""

    def _set_handlers(self) -> dict[bytes, Handler]:
        return {}

    def _set_reads(self) -> dict[str, Read]:
        return {}

    def _set_writes(self) -> dict[str, Write]:
        return {}
