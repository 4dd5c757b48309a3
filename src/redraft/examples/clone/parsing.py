"""Arguments as Redis 7.0 reads them, and the error texts it answers.

Integers are read as Redis's ``string2ll`` does (no ``+``, no spaces, no
leading zeros); blocking timeouts as its ``getTimeoutFromObjectOrReply``
does: a C ``long double`` in seconds, multiplied by 1000 and rounded up to
whole milliseconds, where 0 means "wait for ever" and anything that does not
fit a signed 64-bit integer comes out negative.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

SYNTAX_ERROR = "syntax error"
NOT_AN_INTEGER = "value is not an integer or out of range"
MUST_BE_POSITIVE = "value is out of range, must be positive"
OVERFLOW = "increment or decrement would overflow"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
TIMEOUT_NOT_A_FLOAT = "timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "timeout is negative"

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

MAX_BLOCK_MS = 10**12
"""Longer timeouts (some 31 years) wait for ever, as they do in Redis in practice."""

# What C's strtold accepts as a whole string: decimal and hexadecimal floats,
# inf, infinity and nan (refused later), an optional sign.  No spaces.
_STRTOLD = re.compile(
    rb"[+-]?(?:"
    rb"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    rb"|(?i:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)"
    rb")"
)
_MAX_FLOAT_CHARS = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS
# The range of an x86 long double: larger overflows (ERANGE, refused), smaller
# than the least subnormal underflows to zero (ERANGE, refused).
_LONG_DOUBLE_MAX = Decimal("1.18973149535723176502e4932")
_LONG_DOUBLE_TINY = Decimal("3.6e-4951")


def parse_int(raw: bytes) -> int:
    """A signed 64-bit integer in Redis's strict form: no sign '+', spaces or leading zeros."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if (
        digits.isdigit()  # ASCII digits only, and not empty
        and len(raw) <= 20
        and (digits[0] != 0x30 or raw == b"0")
    ):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise ValueError(NOT_AN_INTEGER)


def parse_count(raw: bytes) -> int:
    """A count that must be 0 or more (LPOP's): any failure is "out of range, must be positive"."""
    try:
        value = parse_int(raw)
    except ValueError:
        raise ValueError(MUST_BE_POSITIVE) from None
    if value < 0:
        raise ValueError(MUST_BE_POSITIVE)
    return value


def check_subcommand(args: list[bytes], command: str, arities: dict[bytes, int]) -> bytes:
    """``args[1]`` in lower case, once Redis's checks of a container command pass.

    ``arities`` maps each subcommand to its arity as Redis's ``COMMAND`` gives
    it (the arguments with the command's name: ``n`` exactly, ``-n`` at
    least ``n``); anything else is an unknown subcommand.
    """
    sub = args[1].lower()
    want = arities.get(sub)
    if want is None:
        name = args[1][:128].decode("utf-8", "replace")
        raise ValueError(f"unknown subcommand '{name}'. Try {command} HELP.")
    if len(args) < -want if want < 0 else len(args) != want:
        name = f"{command.lower()}|{sub.decode()}"
        raise ValueError(f"wrong number of arguments for '{name}' command")
    return sub


def parse_side(raw: bytes) -> bool:
    """LEFT (True) or RIGHT (False), in any case, as LMOVE's arguments."""
    side = raw.lower()
    if side == b"left":
        return True
    if side == b"right":
        return False
    raise ValueError(SYNTAX_ERROR)


def parse_timeout(raw: bytes) -> int:
    """A blocking command's timeout in seconds, as whole milliseconds (0: wait for ever)."""
    if not raw or len(raw) >= _MAX_FLOAT_CHARS or not _STRTOLD.fullmatch(raw):
        raise ValueError(TIMEOUT_NOT_A_FLOAT)
    text = raw.decode("ascii").lower()
    body = text.lstrip("+-")
    if body.startswith("nan"):
        raise ValueError(TIMEOUT_NOT_A_FLOAT)
    if body.startswith("inf"):
        # (long long) of an infinity is LLONG_MIN on the machines Redis runs on.
        raise ValueError(TIMEOUT_NEGATIVE)
    if body.startswith("0x"):
        try:
            value = Decimal(float.fromhex(text))
        except OverflowError:
            raise ValueError(TIMEOUT_NEGATIVE) from None
    else:
        try:
            value = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            raise ValueError(TIMEOUT_NOT_A_FLOAT) from None
    magnitude = abs(value)
    if magnitude > _LONG_DOUBLE_MAX or (magnitude and magnitude < _LONG_DOUBLE_TINY):
        raise ValueError(TIMEOUT_NOT_A_FLOAT)
    ms = value.scaleb(3).to_integral_value(rounding=ROUND_CEILING)
    if not INT64_MIN <= ms <= INT64_MAX:
        raise ValueError(TIMEOUT_NEGATIVE)  # the cast overflows to LLONG_MIN
    if ms < 0:
        raise ValueError(TIMEOUT_NEGATIVE)
    whole = int(ms)
    return 0 if whole > MAX_BLOCK_MS else whole
