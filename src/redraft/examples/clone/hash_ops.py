"""The pieces of the hash commands that need no keyspace: Redis 7.0's argument parsing for
HSCAN and HRANDFIELD, its hash encodings' limits, the random picks, and HINCRBYFLOAT's
arithmetic.

Encodings.  Redis 7.0 keeps a hash as a *listpack* (fields in insertion
order) while it holds at most :data:`LISTPACK_ENTRIES` fields and no field or
value longer than :data:`LISTPACK_VALUE` bytes, and as a hash table
otherwise.  A listpack answers HGETALL, HKEYS and HVALS in insertion order,
which a Python dict keeps, and HSCAN whole with cursor 0 whatever COUNT says
(:func:`listpack_like`); a hash table answers in an order of its own.  Redis
never turns a hash table back into a listpack, so a hash that once was large
keeps its hash table's order after it shrinks; the clone looks only at what
the hash holds now.

HINCRBYFLOAT.  Redis adds in C's ``long double``, which on the x86-64
machines it runs on is the x87 80-bit extended format (a 64-bit significand,
exponents down to 2**-16382, subnormals down to 2**-16445), reads numbers with
``strtold`` and prints the sum with ``%.17Lf`` less its trailing zeros (its
``ld2string`` in ``LD_STR_HUMAN`` mode).  :func:`incr_by_float` does the same
exactly, in rationals, so that every node (whatever its hardware) stores the
same bytes Redis does: each number read and each sum is rounded to the nearest
extended value (ties to even), and the print is the exact decimal expansion
rounded to 17 places (ties to even, as glibc's ``printf``).
"""

from __future__ import annotations

from fractions import Fraction
from itertools import islice
from random import Random

from redraft.machine import Pairs

from .parsing import INT64_MAX, SYNTAX_ERROR, parse_int
from .string_float import LongDouble, add_long_doubles, format_long_double, parse_long_double

__all__ = [
    "LISTPACK_ENTRIES",
    "LISTPACK_VALUE",
    "MAX_RANDOM_REPLY",
    "LongDouble",
    "format_long_double",
    "incr_by_float",
    "incr_by_int",
    "listpack_like",
    "parse_float_increment",
    "parse_hrandfield",
    "random_field",
    "random_fields",
    "string2ld",
]

LISTPACK_ENTRIES = 512
"""Redis's hash-max-listpack-entries as redis-server 7.0 has it without a configuration file
(the ``redis.conf`` it ships sets 128): a hash of more fields is a hash table."""

LISTPACK_VALUE = 64
"""Redis's default hash-max-listpack-value: a longer field or value makes a hash table."""

MAX_RANDOM_REPLY = 1 << 24
"""The most fields one HRANDFIELD with a negative count answers (Redis has no bound and
would build a reply of any length; here a node must not hang building one)."""

_LONG_MAX = INT64_MAX


def listpack_like(fields: dict[bytes, bytes]) -> bool:
    """Whether Redis would keep a hash holding these fields as a listpack."""
    if len(fields) > LISTPACK_ENTRIES:
        return False
    limit = LISTPACK_VALUE
    return all(len(f) <= limit and len(v) <= limit for f, v in fields.items())


# -- HSCAN ---------------------------------------------------------------------------------


# -- HRANDFIELD ----------------------------------------------------------------------------


def parse_hrandfield(args: list[bytes]) -> tuple[int | None, bool]:
    """``HRANDFIELD key [count [WITHVALUES]]`` (the whole command): count (None: no count)
    and whether values come too, with Redis's errors in its order."""
    if len(args) < 3:
        return None, False
    count = parse_int(args[2])
    if count < -_LONG_MAX:
        raise ValueError(f"value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}")
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withvalues"):
        raise ValueError(SYNTAX_ERROR)
    withvalues = len(args) == 4
    if withvalues and not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
        raise ValueError("value is out of range")
    return count, withvalues


def random_field(fields: dict[bytes, bytes], rng: Random) -> bytes:
    """One field of a non-empty hash, at random."""
    return next(islice(fields, rng.randrange(len(fields)), None))


def random_fields(
    fields: dict[bytes, bytes], count: int, withvalues: bool, rng: Random
) -> list[bytes] | Pairs:
    """HRANDFIELD's reply for a non-zero ``count`` on a non-empty hash (with values: pairs,
    flat in RESP2 and ``[field, value]`` arrays in RESP3, as Redis 7.0 answers).

    A negative count picks that many with repeats, in random order; a
    count that takes the whole hash answers it in its own order (as Redis
    does); a smaller one picks distinct fields in random order.
    """
    size = len(fields)
    if count < 0:
        if -count > MAX_RANDOM_REPLY:
            raise ValueError(f"count is out of range, must be at least {-MAX_RANDOM_REPLY}")
        picked = rng.choices(list(fields), k=-count)
    elif count == 1:
        picked = [random_field(fields, rng)]
    elif count >= size:
        picked = list(fields)
    else:
        picked = rng.sample(list(fields), count)
    if not withvalues:
        return picked
    return Pairs([(field, fields[field]) for field in picked])


# -- HINCRBY -------------------------------------------------------------------------------


def incr_by_int(old: bytes | None, delta: int) -> int:
    """HINCRBY's new value of a field holding ``old`` (None: no such field)."""
    value = 0
    if old is not None:
        try:
            value = parse_int(old)  # Redis's string2ll, exactly
        except ValueError:
            raise ValueError("hash value is not an integer") from None
    result = value + delta
    if result > INT64_MAX or result < -INT64_MAX - 1:
        raise ValueError("increment or decrement would overflow")
    return result


# -- HINCRBYFLOAT: C's long double on x86-64, as INCRBYFLOAT (.string_float) has it -----


def string2ld(raw: bytes) -> LongDouble | None:
    """A long double as Redis's ``string2ld`` reads one; None where it refuses the text."""
    try:
        return parse_long_double(raw)
    except ValueError:
        return None


def parse_float_increment(raw: bytes) -> Fraction:
    """HINCRBYFLOAT's increment: a finite long double."""
    value = string2ld(raw)
    if value is None:
        raise ValueError("value is not a valid float")
    if isinstance(value, float):
        raise ValueError("value is NaN or Infinity")
    return value


def incr_by_float(old: bytes | None, incr: Fraction) -> bytes:
    """HINCRBYFLOAT's new value of a field holding ``old`` (None: no such field), as text."""
    value: LongDouble = Fraction(0)
    if old is not None:
        read = string2ld(old)
        if read is None:
            raise ValueError("hash value is not a float")
        value = read
    return format_long_double(add_long_doubles(value, incr))
