"""Hash commands (HSET and the rest of the family), Redis 7.0's replies and errors."""

from __future__ import annotations

from redraft.machine import Read, Write

from .keyspace import Handler, Keyspace

__all__ = ["HashCommands"]


class HashCommands(Keyspace):
    """The hash commands, over the shared keyspace."""

    def _hash_handlers(self) -> dict[bytes, Handler]:
        return {}

    def _hash_reads(self) -> dict[str, Read]:
        return {}

    def _hash_writes(self) -> dict[str, Write]:
        return {}
