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

import re
from decimal import Decimal
from fractions import Fraction
from itertools import islice
from random import Random

from .parsing import INT64_MAX, SYNTAX_ERROR, parse_int

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
) -> list[bytes]:
    """HRANDFIELD's reply for a non-zero ``count`` on a non-empty hash (flat with values).

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
    out: list[bytes] = []
    for field in picked:
        out += (field, fields[field])
    return out


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


# -- HINCRBYFLOAT: C's long double on x86-64, exactly --------------------------------------

_MANT_BITS = 64  # the x87 extended format's significand, explicit leading bit included
_EMIN = -16382  # the exponent of the least normal value
_QMIN = _EMIN - (_MANT_BITS - 1)  # -16445: the least subnormal is 2**_QMIN
_OVERFLOW_BITS = 16384  # values of 2**16384 and more are infinite
_MAX_LONG_DOUBLE_CHARS = 5 * 1024  # Redis's buffer for a long double's text

# What C's strtold reads as a whole string (no leading space: Redis refuses it).
_STRTOLD = re.compile(
    rb"([+-]?)(?:"
    rb"(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?"
    rb"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP]([+-]?\d+))?"
    rb"|((?i:inf(?:inity)?))"
    rb"|((?i:nan(?:\([0-9A-Za-z_]*\))?))"
    rb")"
)

_INF = float("inf")
LongDouble = Fraction | float
"""A long double: a :class:`~fractions.Fraction` when finite, ``±inf`` as a float."""


def _exponent(raw: bytes | None) -> int:
    """A decimal exponent's value, clamped far beyond any long double's range."""
    if not raw:
        return 0
    sign = -1 if raw[:1] == b"-" else 1
    digits = raw.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 9:
        return sign * 10**9
    return sign * int(digits or b"0")


def _round(x: Fraction) -> Fraction | None:
    """``x`` rounded to the nearest long double (ties to even); None if that overflows."""
    if not x:
        return Fraction(0)
    num, den = abs(x.numerator), x.denominator
    e = num.bit_length() - den.bit_length()  # 2**(e-1) < |x| < 2**(e+1)
    if (num << -e if e < 0 else num) < (den << e if e > 0 else den):
        e -= 1
    q = max(e, _EMIN) - (_MANT_BITS - 1)  # the unit in the last place
    big, div = (num, den << q) if q >= 0 else (num << -q, den)
    n, r = divmod(big, div)
    if 2 * r > div or (2 * r == div and n & 1):
        n += 1
    if n.bit_length() + q > _OVERFLOW_BITS:
        return None
    value = Fraction(n << q) if q >= 0 else Fraction(n, 1 << -q)
    return -value if x < 0 else value


def string2ld(raw: bytes) -> LongDouble | None:
    """A long double as Redis's ``string2ld`` reads one; None where it refuses the text.

    Refused: empty or too long text, a leading space, anything ``strtold``
    does not read whole (an embedded NUL too), NaN, and a number that
    overflows or rounds to zero from a non-zero value (``ERANGE``).
    """
    if not raw or len(raw) >= _MAX_LONG_DOUBLE_CHARS:
        return None
    found = _STRTOLD.fullmatch(raw)
    if found is None:
        return None
    sign, mantissa, exp10, hex_mantissa, exp2, inf, _nan = found.groups()
    negative = sign == b"-"
    if inf is not None:
        return -_INF if negative else _INF
    if mantissa is not None:
        exact = _decimal_value(mantissa, exp10)
    elif hex_mantissa is not None:
        exact = _hex_value(hex_mantissa, exp2)
    else:
        return None  # NaN
    if exact is None:
        return None
    if not exact:
        return exact
    value = _round(exact)
    if not value:  # overflow (None), or underflow to zero
        return None
    return -value if negative else value


def _decimal_value(mantissa: bytes, exp10: bytes | None) -> Fraction | None:
    """The exact value of a decimal's digits (None when far out of a long double's range)."""
    digits = Decimal(mantissa.decode("ascii"))
    if not digits:
        return Fraction(0)
    exp = _exponent(exp10)
    magnitude = digits.adjusted() + exp
    if magnitude > 4940 or magnitude < -4960:  # beyond 1.19e4932, below 3.6e-4951 / 2
        return None
    return Fraction(digits) * Fraction(10) ** exp


def _hex_value(mantissa: bytes, exp2: bytes | None) -> Fraction | None:
    """The exact value of a hexadecimal float (None when far out of a long double's range)."""
    whole, _, frac = mantissa.partition(b".")
    digits = int((whole + frac) or b"0", 16)
    if not digits:
        return Fraction(0)
    exp = _exponent(exp2) - 4 * len(frac)
    top = digits.bit_length() + exp
    if top > _OVERFLOW_BITS + 2 or top < _QMIN - 2:
        return None
    return Fraction(digits << exp) if exp >= 0 else Fraction(digits, 1 << -exp)


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
    total = None if isinstance(value, float) else _round(value + incr)
    if total is None:
        raise ValueError("increment would produce NaN or Infinity")
    return format_long_double(total)


def format_long_double(value: Fraction) -> bytes:
    """``%.17Lf`` of a finite long double, trailing zeros (and a bare point) removed, as Redis's
    ``ld2string`` in human mode prints it (``-0`` prints as ``0``)."""
    scaled = abs(value) * 10**17
    n, r = divmod(scaled.numerator, scaled.denominator)
    if 2 * r > scaled.denominator or (2 * r == scaled.denominator and n & 1):
        n += 1
    # Through Decimal, exact: n may have thousands of digits (past int's str limit).
    digits = format(Decimal(n), "f").rjust(18, "0")
    text = (digits[:-17] + "." + digits[-17:]).rstrip("0").rstrip(".")
    if text == "0" or value >= 0:
        return text.encode()
    return b"-" + text.encode()
