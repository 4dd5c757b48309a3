"""MEMORY USAGE, DOCTOR, MALLOC-STATS, PURGE, STATS and HELP: Redis 7.0's answers, made plausible.

The clone's values are Python objects, whose sizes say nothing about what
Redis would allocate, so MEMORY USAGE estimates the bytes Redis 7.0 (with
jemalloc and its default configuration) would use for the key and its
value, from the encoding :func:`.key_object.encoding` judges it would have:
the structures' sizes as Redis counts them in ``objectComputeSize``, and
each allocation rounded up to jemalloc's size class.  Like Redis, it counts
a listpack or an intset whole and extrapolates a list, a hash table or a
skip list from ``SAMPLES`` elements (5 by default, 0 for all of them).  The
numbers come close to Redis's for small values; they are an estimate, not
a measure.

The arguments are checked as Redis checks them (the subcommand's arity,
then ``SAMPLES``: an integer, not negative, before the key is looked up).
DOCTOR answers one of Redis's texts: the empty instance's for an empty
keyspace, else "no memory issue", a verbatim string in RESP3 as Redis's;
MALLOC-STATS answers what a Redis built without jemalloc answers, a bulk
string in both protocols (only jemalloc's report is a verbatim string);
PURGE has nothing to purge; STATS, a report of allocator figures the clone
does not have, is refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice

from redraft.machine import Status, Verbatim

from .key_object import encoding
from .keyspace import Value
from .parsing import INT64_MAX, SYNTAX_ERROR, check_subcommand, parse_int
from .zset import ZSet

__all__ = [
    "DOCTOR_EMPTY",
    "DOCTOR_FINE",
    "MALLOC_STATS",
    "MEMORY_HELP",
    "STATS_REFUSED",
    "check_memory",
    "usage",
    "usage_samples",
]

MEMORY_HELP = [
    Status(line)
    for line in (
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    )
]
"""MEMORY HELP's lines, as Redis 7.0 prints them."""

DOCTOR_EMPTY = Verbatim(
    b"Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
    b"be used in these conditions. Please, leave for your mission on Earth and fill it with "
    b"some data. The new Sam and I will be back to our programming as soon as I finished "
    b"rebooting.\n"
)
"""MEMORY DOCTOR's text for an instance using little memory (Redis 7.0's)."""

DOCTOR_FINE = Verbatim(
    b"Hi Sam, I can't find any memory issue in your instance. "
    b"I can only account for what occurs on this base.\n"
)
"""MEMORY DOCTOR's text when it finds nothing to report (Redis 7.0's)."""

MALLOC_STATS = b"Stats not supported for the current allocator"
"""MEMORY MALLOC-STATS of a Redis built without jemalloc: a bulk string even in RESP3."""

STATS_REFUSED = "ERR MEMORY STATS is not supported by redraft"

DEFAULT_SAMPLES = 5  # OBJ_COMPUTE_SIZE_DEF_SAMPLES

_ARITIES = {b"usage": -3, b"help": 2, b"doctor": 2, b"malloc-stats": 2, b"purge": 2, b"stats": 2}
"""MEMORY's subcommands and their arity (see :func:`.parsing.check_subcommand`)."""

# Sizes of Redis 7.0's structures on a 64-bit build.
_ROBJ = 16
_DICT_ENTRY = 24
_DICT = 56
_POINTER = 8
_QUICKLIST = 40
_QUICKLIST_NODE = 32
_ZSET = 16
_SKIPLIST = 32
_SKIPLIST_HEADER = 24 + 32 * 16  # a node with ZSKIPLIST_MAXLEVEL levels
_SKIPLIST_NODE = 24 + 16  # with one level (most nodes; the average is 4/3)
_LISTPACK_NODE_BYTES = 8192  # list-max-listpack-size -2
_LISTPACK_EMPTY = 7  # header and end byte


def check_memory(args: list[bytes]) -> bytes:
    """MEMORY's subcommand (lower case) once the arity passes Redis's checks."""
    return check_subcommand(args, "MEMORY", _ARITIES)


def usage_samples(opts: list[bytes]) -> int:
    """MEMORY USAGE's ``[SAMPLES count]`` (``opts`` after the key): how many to sample."""
    samples = DEFAULT_SAMPLES
    i = 0
    while i < len(opts):
        if opts[i].lower() != b"samples" or i + 1 >= len(opts):
            raise ValueError(SYNTAX_ERROR)
        samples = parse_int(opts[i + 1])
        if samples < 0:
            raise ValueError(SYNTAX_ERROR)
        i += 2  # a later SAMPLES wins, as in Redis
    return samples or INT64_MAX


def usage(key: bytes, value: Value, samples: int) -> int:
    """The bytes Redis 7.0 would likely use for ``key`` and ``value`` (see the module notes)."""
    return _alloc(_sds(len(key))) + _DICT_ENTRY + _value_size(value, samples)


def _value_size(value: Value, samples: int) -> int:
    kind = encoding(value)
    if type(value) is bytes:
        if kind == b"int":
            return _ROBJ
        if kind == b"embstr":
            return _alloc(_ROBJ + _sds(len(value)))
        return _ROBJ + _alloc(_sds(len(value)))
    if type(value) is deque:
        return _list_size(value, samples)
    if type(value) is dict:
        if kind == b"listpack":
            return _ROBJ + _alloc(_listpack(b for pair in value.items() for b in pair))
        pairs = islice(value.items(), samples)
        per = [_DICT_ENTRY + _alloc(_sds(len(f))) + _alloc(_sds(len(v))) for f, v in pairs]
        return _ROBJ + _dict_size(len(value)) + _extrapolate(per, len(value))
    if type(value) is set:
        if kind == b"intset":
            width = max(_int_width(int(member)) for member in value)
            return _ROBJ + _alloc(8 + width * len(value))
        per = [_DICT_ENTRY + _alloc(_sds(len(m))) for m in islice(value, samples)]
        return _ROBJ + _dict_size(len(value)) + _extrapolate(per, len(value))
    assert isinstance(value, ZSet)
    if kind == b"listpack":
        return _ROBJ + _alloc(_listpack(b for m, s in value for b in (m, b"%.17g" % s)))
    per = [
        _alloc(_sds(len(m))) + _DICT_ENTRY + _alloc(_SKIPLIST_NODE)
        for m in islice(value.scores, samples)
    ]
    fixed = _ZSET + _SKIPLIST + _alloc(_SKIPLIST_HEADER) + _dict_size(len(value))
    return _ROBJ + fixed + _extrapolate(per, len(value))


def _list_size(value: deque[bytes], samples: int) -> int:
    """A quicklist: listpacks of up to 8 KiB, the bytes per element judged from a sample."""
    sampled = [_listpack_entry(e) for e in islice(value, samples)]
    total = _extrapolate(sampled, len(value))
    nodes = max(1, -(-total // _LISTPACK_NODE_BYTES))
    per_node = _QUICKLIST_NODE + _alloc(_LISTPACK_EMPTY + total // nodes)
    return _ROBJ + _QUICKLIST + nodes * per_node


def _extrapolate(sampled: list[int], count: int) -> int:
    """Redis's estimate of ``count`` elements from the sizes of the first few."""
    if not sampled:
        return 0
    return sum(sampled) * count // len(sampled)


def _dict_size(used: int) -> int:
    """A hash table holding ``used`` entries: the table and its buckets (a power of two)."""
    slots = 4
    while slots < used:
        slots *= 2
    return _DICT + _POINTER * slots


def _listpack(entries: Iterable[bytes]) -> int:
    """The bytes of a listpack holding ``entries``."""
    return _LISTPACK_EMPTY + sum(map(_listpack_entry, entries))


def _listpack_entry(raw: bytes) -> int:
    """One listpack entry: its encoding and data, then its length written backwards."""
    try:
        number = parse_int(raw)
    except ValueError:
        n = len(raw)
        size = n + (1 if n < 64 else 2 if n < 4096 else 5)
    else:
        size = 1 if 0 <= number < 128 else 1 + _int_width(number)
    return size + (1 if size < 128 else 2 if size < 16384 else 3)


def _int_width(number: int) -> int:
    """The bytes of the narrowest signed integer holding ``number`` (2, 4 or 8)."""
    if -(2**15) <= number < 2**15:
        return 2
    return 4 if -(2**31) <= number < 2**31 else 8


def _sds(length: int) -> int:
    """The bytes of an sds string of ``length`` bytes: header, data and the final NUL."""
    header = 3 if length < 2**8 else 5 if length < 2**16 else 9 if length < 2**32 else 17
    return header + length + 1


def _alloc(size: int) -> int:
    """``size`` rounded up to jemalloc's size class (what ``zmalloc_size`` reports)."""
    if size <= 8:
        return 8
    if size <= 128:
        return (size + 15) & ~15
    spacing = 1 << ((size - 1).bit_length() - 3)  # four classes per doubling
    return (size + spacing - 1) & ~(spacing - 1)
