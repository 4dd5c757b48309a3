"""INCRBYFLOAT's arithmetic: an x86 C ``long double``, emulated exactly.

Redis 7.0 reads both operands with ``strtold``, adds them as 80-bit
extended-precision numbers (a 64-bit significand) and prints the sum with
``"%.17Lf"``, trailing zeros (and a trailing point) removed, ``-0`` shown as
``0``.  Python has no such type, and a node's hardware must not decide what
a replicated write stores, so the numbers here are exact fractions rounded
to the nearest long double (ties to even) after every step, which is what
the hardware does: the results are the same bits on every node.

An operand is a :class:`~fractions.Fraction` (a finite long double) or a
float infinity (``inf`` and ``infinity`` parse, as in ``strtold``; the sum
is then refused).  NaN, overflow, an underflow to zero, spaces and anything
``strtold`` would not take as a whole are "not a valid float".
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "NAN_OR_INFINITY",
    "NOT_A_FLOAT",
    "add_long_doubles",
    "format_long_double",
    "parse_long_double",
]

NOT_A_FLOAT = "value is not a valid float"
NAN_OR_INFINITY = "increment would produce NaN or Infinity"

_SIGNIFICAND_BITS = 64
_LEAST_EXPONENT = -16382 - (_SIGNIFICAND_BITS - 1)  # the weight of the least subnormal's bit
_LARGEST = (2**_SIGNIFICAND_BITS - 1) * 2 ** (16383 - (_SIGNIFICAND_BITS - 1))
_MAX_CHARS = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS: longer input is refused
_FRACTION_DIGITS = 17  # "%.17Lf"
# Python refuses int <-> str conversions of more than 4300 digits by default:
# long numbers are converted a chunk of this many digits at a time.
_CHUNK_DIGITS = 4000

_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?")
_SPECIAL = re.compile(rb"([+-]?)(?i:(inf|infinity|nan(?:\([0-9A-Za-z_]*\))?))")

LongDouble = Fraction | float
"""A finite long double (exact) or an infinity."""


def parse_long_double(raw: bytes) -> LongDouble:
    """``raw`` read as Redis's ``string2ld`` does; ValueError :data:`NOT_A_FLOAT` if refused."""
    if not raw or len(raw) >= _MAX_CHARS:
        raise ValueError(NOT_A_FLOAT)
    special = _SPECIAL.fullmatch(raw)
    if special is not None:
        if special.group(2).lower().startswith(b"nan"):
            raise ValueError(NOT_A_FLOAT)
        return float("-inf") if special.group(1) == b"-" else float("inf")
    exact = _exact_value(raw)
    if exact is None:
        raise ValueError(NOT_A_FLOAT)
    value = round_long_double(exact)
    if value is None or (value == 0 and exact != 0):  # ERANGE: overflow or underflow to 0
        raise ValueError(NOT_A_FLOAT)
    return value


def add_long_doubles(a: LongDouble, b: LongDouble) -> Fraction:
    """``a + b`` in long double; ValueError :data:`NAN_OR_INFINITY` if not finite."""
    if isinstance(a, float) or isinstance(b, float):
        raise ValueError(NAN_OR_INFINITY)
    total = round_long_double(a + b)
    if total is None:
        raise ValueError(NAN_OR_INFINITY)
    return total


def format_long_double(value: Fraction) -> bytes:
    """``value`` as Redis's ``ld2string`` in human mode prints it."""
    scaled = value * 10**_FRACTION_DIGITS
    digits = _round_half_even(abs(scaled.numerator), scaled.denominator)
    text = _int_to_text(digits).rjust(_FRACTION_DIGITS + 1, "0")
    whole, fraction = text[:-_FRACTION_DIGITS], text[-_FRACTION_DIGITS:].rstrip("0")
    out = whole + "." + fraction if fraction else whole
    if value < 0 and out != "0":
        out = "-" + out
    return out.encode()


def round_long_double(exact: Fraction) -> Fraction | None:
    """``exact`` rounded to the nearest long double, ties to even; None if it overflows."""
    if exact == 0:
        return Fraction(0)
    n, d = abs(exact.numerator), exact.denominator
    # 2**e <= |exact| < 2**(e + 1)
    e = n.bit_length() - d.bit_length()
    if (n << max(0, -e)) < (d << max(0, e)):
        e -= 1
    unit = max(e - (_SIGNIFICAND_BITS - 1), _LEAST_EXPONENT)
    if unit >= 0:
        significand = _round_half_even(n, d << unit)
        rounded = Fraction(significand << unit)
    else:
        significand = _round_half_even(n << -unit, d)
        rounded = Fraction(significand, 1 << -unit)
    if rounded > _LARGEST:
        return None
    return rounded if exact > 0 else -rounded


def _round_half_even(n: int, d: int) -> int:
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    return q


def _exact_value(raw: bytes) -> Fraction | None:
    """The exact number a decimal or hexadecimal float spells, None if it is not one.

    Exponents far out of a long double's range give a value just as far out
    (without computing a gigantic power), which the rounding then refuses.
    """
    hexa = _HEX.fullmatch(raw)
    if hexa is not None:
        sign, whole, fraction, exponent = hexa.groups()
        base, bits_per_digit = 16, 4
        scale = 2
    else:
        dec = _DECIMAL.fullmatch(raw)
        if dec is None:
            return None
        sign, whole, fraction, exponent = dec.groups()
        base, bits_per_digit = 10, 0
        scale = 10
    fraction = fraction or b""
    if not whole and not fraction:
        return None
    digits = (whole + fraction).lstrip(b"0")
    if not digits:
        return Fraction(0)
    mantissa = _text_to_int(digits.decode(), base)
    power = _exponent(exponent) - (bits_per_digit or 1) * len(fraction)
    # Its magnitude, in powers of the scale: clamp what cannot be a long double.
    magnitude = power + len(digits) * (bits_per_digit or 1)
    limit = 20000 if scale == 2 else 6000
    if magnitude > limit:
        power = limit
    elif magnitude < -limit:
        power = -2 * limit
    value = Fraction(mantissa) * Fraction(scale) ** power
    return -value if sign == b"-" else value


def _exponent(raw: bytes | None) -> int:
    """An exponent's value, clamped far outside any long double's range (it may be very long)."""
    if raw is None:
        return 0
    negative = raw[:1] == b"-"
    digits = raw.lstrip(b"+-").lstrip(b"0")
    value = int(digits or b"0") if len(digits) <= 9 else 10**9
    return -value if negative else value


def _text_to_int(text: str, base: int) -> int:
    if base == 16 or len(text) <= _CHUNK_DIGITS:
        return int(text, base)
    value = 0
    for at in range(0, len(text), _CHUNK_DIGITS):
        chunk = text[at : at + _CHUNK_DIGITS]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _int_to_text(value: int) -> str:
    """``str(value)`` for a non-negative int of any length."""
    chunk = 10**_CHUNK_DIGITS
    if value < chunk:
        return str(value)
    parts = []
    while value >= chunk:
        value, low = divmod(value, chunk)
        parts.append(str(low).rjust(_CHUNK_DIGITS, "0"))
    parts.append(str(value))
    return "".join(reversed(parts))
