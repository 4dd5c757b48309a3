"""Redis Cluster's hash slots: which of the 16384 slots a key belongs to.

A leaf module (pure, no imports of redraft's).  Redis Cluster clients route
a command by the slot of its key, and a node that cannot serve the command
answers ``MOVED <slot> <host:port>``: the client then sends that slot's
commands to the address.  The slot must be the one the client computes, so
this follows Redis's ``keyHashSlot`` exactly: CRC16 (XMODEM) of the key, or
of its hashtag (the text between the first ``{`` and the first ``}`` after
it, when that text is not empty), modulo 16384.
"""

from __future__ import annotations

from collections.abc import Sequence

SLOTS = 16384
"""Hash slots in a Redis Cluster."""


def _crc16_table() -> list[int]:
    """CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0) by table, one entry per byte."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16 as Redis Cluster computes it (XMODEM); ``crc16(b"123456789") == 0x31C3``."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def key_slot(key: bytes) -> int:
    """The hash slot of ``key`` (Redis's ``CLUSTER KEYSLOT``), hashtags included."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        # "{}" or no closing brace: the whole key is hashed, as in Redis.
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) & (SLOTS - 1)


def command_slot(args: Sequence[bytes] | None) -> int:
    """The slot a command is routed by: its first argument's (the key of most commands), else 0.

    A client that gets ``MOVED <slot> <addr>`` points that slot at
    ``addr`` and retries the command by the slot it computes itself; were
    the two to differ, the retry would go back where it came from.  A node
    does not know the machine's command table, so it takes the first
    argument, the key of nearly every command clients route by key.
    """
    if args is None or len(args) < 2:
        return 0
    first = args[1]
    if not isinstance(first, bytes):
        first = str(first).encode()
    return key_slot(first)


__all__ = ["SLOTS", "command_slot", "crc16", "key_slot"]
