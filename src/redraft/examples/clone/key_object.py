"""OBJECT ENCODING, REFCOUNT, IDLETIME, FREQ and HELP: Redis 7.0's answers, made plausible.

The clone keeps no internal encodings, reference counts or access clocks,
so OBJECT answers what Redis 7.0 (with its default configuration) would
answer for a value like this one, judged from the value alone:

* a string is ``int`` if it reads as a 64-bit integer in Redis's strict
  form, ``embstr`` up to 44 bytes, ``raw`` beyond (Redis also says ``raw``
  for a short string APPEND or SETRANGE built, and ``embstr`` for an
  INCRBYFLOAT result: the clone does not track how a string was made);
* a list is always a ``quicklist`` (7.0 has no listpack lists);
* a hash is a ``listpack`` up to 512 fields with every field and value at
  most 64 bytes, else a ``hashtable``;
* a set is an ``intset`` up to 512 members that are all integers, else a
  ``hashtable`` (7.0 has no listpack sets);
* a sorted set is a ``listpack`` up to 128 members of at most 64 bytes, else
  a ``skiplist``.

Redis never converts back to the compact encoding when a value shrinks; the
clone, judging by the value, does.  REFCOUNT is 1, except for the integers
0 to 9999 Redis shares (``2147483647``, its ``OBJ_SHARED_REFCOUNT``);
IDLETIME is 0; FREQ is refused as it is without an LFU maxmemory policy.
"""

from __future__ import annotations

from collections import deque

from redraft.machine import Status

from .keyspace import Value
from .parsing import check_subcommand, parse_int
from .zset import ZSet

__all__ = ["OBJECT_HELP", "answer", "check_object", "encoding", "refcount"]

HASH_LISTPACK_ENTRIES = 512  # hash-max-listpack-entries
ZSET_LISTPACK_ENTRIES = 128  # zset-max-listpack-entries
LISTPACK_VALUE = 64  # hash-max-listpack-value, zset-max-listpack-value
INTSET_ENTRIES = 512  # set-max-intset-entries
EMBSTR_LIMIT = 44  # OBJ_ENCODING_EMBSTR_SIZE_LIMIT
SHARED_INTEGERS = 10000  # OBJ_SHARED_INTEGERS
SHARED_REFCOUNT = 2**31 - 1  # OBJ_SHARED_REFCOUNT

FREQ_REFUSED = (
    "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that "
    "when switching between policies at runtime LRU and LFU data will take some time to adjust."
)

OBJECT_HELP = [
    Status(line)
    for line in (
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    )
]
"""OBJECT HELP's lines, as Redis 7.0 prints them."""

_ARITIES = {b"help": 2, b"encoding": 3, b"refcount": 3, b"idletime": 3, b"freq": 3}


def check_object(args: list[bytes]) -> bytes:
    """OBJECT's subcommand (lower case) once the arguments pass Redis's checks; help: ``b"help"``."""
    return check_subcommand(args, "OBJECT", _ARITIES)


def answer(sub: bytes, value: Value) -> bytes | int:
    """What OBJECT ``sub`` answers for a live key holding ``value``."""
    if sub == b"encoding":
        return encoding(value)
    if sub == b"refcount":
        return refcount(value)
    if sub == b"idletime":
        return 0
    raise ValueError(FREQ_REFUSED)


def _is_int(raw: bytes) -> bool:
    try:
        parse_int(raw)
    except ValueError:
        return False
    return True


def encoding(value: Value) -> bytes:
    """The encoding Redis 7.0 would most likely use for ``value`` (see the module notes)."""
    if type(value) is bytes:
        if _is_int(value):
            return b"int"
        return b"embstr" if len(value) <= EMBSTR_LIMIT else b"raw"
    if type(value) is deque:
        return b"quicklist"
    if type(value) is dict:
        small = len(value) <= HASH_LISTPACK_ENTRIES and all(
            len(f) <= LISTPACK_VALUE and len(v) <= LISTPACK_VALUE for f, v in value.items()
        )
        return b"listpack" if small else b"hashtable"
    if type(value) is set:
        small = len(value) <= INTSET_ENTRIES and all(_is_int(member) for member in value)
        return b"intset" if small else b"hashtable"
    assert isinstance(value, ZSet)
    small = len(value) <= ZSET_LISTPACK_ENTRIES and all(
        len(member) <= LISTPACK_VALUE for member in value.scores
    )
    return b"listpack" if small else b"skiplist"


def refcount(value: Value) -> int:
    """1, or Redis's shared-object count for the small integers it shares."""
    if type(value) is bytes and _is_int(value) and 0 <= int(value) < SHARED_INTEGERS:
        return SHARED_REFCOUNT
    return 1
