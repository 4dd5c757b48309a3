"""Sorted-set arguments as Redis 7.0 reads them, and scores as it writes them.

Scores.  A score argument (ZADD, ZINCRBY, WEIGHTS) is read as Redis's
``string2d``: C's ``strtod`` over the whole argument, no leading space, and
refused when it is NaN or overflows or underflows to zero.  A range end
(ZRANGEBYSCORE, ZCOUNT, ...) is read as ``zslParseRange`` does: ``(`` for an
exclusive end, then ``strtod`` up to the first NUL byte, which skips leading
spaces, lets an overflow be an infinity and an empty string be 0.  Scores go
out as Redis 7.0's ``addReplyDouble`` writes them: ``%.17g`` (``0.1`` is
``0.10000000000000001``; 7.2 writes the shortest form instead), ``inf`` and
``-inf``.  A score in a reply is a :class:`~redraft.machine.Double` of those
digits (:func:`score_reply`): a bulk string in RESP2, a double in RESP3, as
Redis 7.0 sends it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from redraft.machine import Double

from .parsing import SYNTAX_ERROR, parse_int
from .zset import LexBound

__all__ = [
    "LEX",
    "NAN_RESULT",
    "NOT_A_FLOAT",
    "RANGE_NOT_A_FLOAT",
    "RANGE_NOT_LEX",
    "RANK",
    "SCORE",
    "ZADD_FLAGS",
    "RangeSpec",
    "SetOpSpec",
    "ZaddSpec",
    "format_score",
    "parse_lex_bound",
    "parse_numkeys",
    "parse_range",
    "parse_score",
    "parse_score_bound",
    "parse_setop_options",
    "parse_zadd",
    "parse_zmpop",
    "parse_zrandmember",
    "scan_score",
    "score_reply",
]

NOT_A_FLOAT = "value is not a valid float"
RANGE_NOT_A_FLOAT = "min or max is not a float"
RANGE_NOT_LEX = "min or max not valid string range item"
NAN_RESULT = "resulting score is not a number (NaN)"

_LONG_MAX = 2**63 - 1
_C_SPACE = b" \t\n\v\f\r"
# What C's strtod accepts as a whole string: decimal and hexadecimal floats,
# inf and infinity, nan (refused by every caller), an optional sign.
_STRTOD = re.compile(
    rb"[+-]?(?:"
    rb"(?P<dec>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    rb"|(?P<hex>0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?)"
    rb"|(?P<inf>(?i:inf(?:inity)?))"
    rb"|(?P<nan>(?i:nan(?:\([0-9A-Za-z_]*\))?))"
    rb")"
)
_NONZERO = re.compile(rb"[1-9a-fA-F]")


def _strtod(text: bytes) -> tuple[float, bool] | None:
    """``text`` (all of it) as strtod reads it: the value and whether it overflowed or
    underflowed to zero (ERANGE); None if it is not a number, or is NaN."""
    match = _STRTOD.fullmatch(text)
    if match is None or match["nan"] is not None:
        return None
    if match["inf"] is not None:
        return (-math.inf if text[:1] == b"-" else math.inf), False
    digits = match["dec"]
    if digits is not None:
        value = float(text)
        mantissa = digits.split(b"e")[0].split(b"E")[0]
    else:
        digits = match["hex"]
        mantissa = digits[2:].split(b"p")[0].split(b"P")[0]
        try:
            value = float.fromhex(text.decode("ascii"))
        except OverflowError:
            return (-math.inf if text[:1] == b"-" else math.inf), True
    if math.isinf(value):
        return value, True
    return value, value == 0.0 and _NONZERO.search(mantissa) is not None


def parse_score(raw: bytes, error: str = NOT_A_FLOAT) -> float:
    """A score argument, as Redis's ``string2d`` reads it (``error`` if it is not one)."""
    if raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit()):
        value = float(raw)  # whole numbers, the usual scores: the quick way
        if -math.inf < value < math.inf:
            return value
    parsed = _strtod(raw)
    if parsed is None or parsed[1]:
        raise ValueError(error)
    return parsed[0]


def parse_score_bound(raw: bytes) -> tuple[float, bool]:
    """One end of a score range: its value and whether it is exclusive (``(``)."""
    exclusive = raw[:1] == b"("
    text = (raw[1:] if exclusive else raw).split(b"\0", 1)[0]
    if not text:
        return 0.0, exclusive  # strtod reads nothing and stops at the end
    parsed = _strtod(text.lstrip(_C_SPACE))
    if parsed is None:
        raise ValueError(RANGE_NOT_A_FLOAT)
    return parsed[0], exclusive


def parse_lex_bound(raw: bytes) -> LexBound:
    """One end of a lexicographic range: ``-``, ``+``, ``(member`` or ``[member``."""
    first = raw[:1]
    if first in (b"-", b"+"):
        if len(raw) > 1 and raw[1] != 0:  # Redis reads a C string: a NUL ends it
            raise ValueError(RANGE_NOT_LEX)
        return LexBound(-1 if first == b"-" else 1)
    if first == b"(":
        return LexBound(0, raw[1:], True)
    if first == b"[":
        return LexBound(0, raw[1:], False)
    raise ValueError(RANGE_NOT_LEX)


def format_score(score: float) -> bytes:
    """A score as Redis 7.0 replies it: ``%.17g``, ``inf``, ``-inf``."""
    return b"%.17g" % score


def score_reply(score: float) -> Double:
    """A score as Redis 7.0 replies it: :func:`format_score`'s digits, a double in RESP3."""
    return Double(b"%.17g" % score)


def scan_score(score: float) -> bytes:
    """A score as a listpack holds it (what ZSCAN answers for a small set): an integer
    for a whole number within 2**62, else ``%.17g``."""
    if score.is_integer() and -(2.0**62) <= score <= 2.0**62:
        return b"%d" % int(score)
    return b"%.17g" % score


# -- ZADD ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZaddSpec:
    """ZADD's options and its ``(score, member)`` pairs."""

    nx: bool
    xx: bool
    gt: bool
    lt: bool
    ch: bool
    incr: bool
    pairs: list[tuple[float, bytes]]


ZADD_FLAGS = frozenset((b"nx", b"xx", b"gt", b"lt", b"ch", b"incr"))
"""ZADD's options, in lower case."""


def parse_zadd(args: list[bytes], incr: bool = False) -> ZaddSpec:
    """``ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...`` (or ZINCRBY's, ``incr``)."""
    flags: set[bytes] = set()
    at = 2
    while at < len(args):
        opt = args[at].lower()
        if opt not in ZADD_FLAGS:
            break
        flags.add(opt)
        at += 1
    rest = len(args) - at
    if rest % 2 or not rest:
        raise ValueError(SYNTAX_ERROR)
    nx, xx, gt, lt = b"nx" in flags, b"xx" in flags, b"gt" in flags, b"lt" in flags
    incr = incr or b"incr" in flags
    if nx and xx:
        raise ValueError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise ValueError("GT, LT, and/or NX options at the same time are not compatible")
    if incr and rest > 2:
        raise ValueError("ERR INCR option supports a single increment-element pair")
    pairs = [(parse_score(args[i]), args[i + 1]) for i in range(at, len(args), 2)]
    return ZaddSpec(nx, xx, gt, lt, b"ch" in flags, incr, pairs)


# -- ZRANGE and its older forms ----------------------------------------------------------

RANK, SCORE, LEX = "rank", "score", "lex"
LEX_MIN, LEX_MAX = LexBound(-1), LexBound(1)


@dataclass(slots=True)
class RangeSpec:
    """What a ZRANGE-like command asks for (``kind`` RANK, SCORE or LEX)."""

    kind: str
    reverse: bool = False
    withscores: bool = False
    offset: int = 0
    limit: int = -1
    start: int = 0
    stop: int = 0
    lo: float = 0.0
    lo_ex: bool = False
    hi: float = 0.0
    hi_ex: bool = False
    lex_lo: LexBound = LEX_MIN
    lex_hi: LexBound = LEX_MAX


def parse_range(
    args: list[bytes], at: int, store: bool, kind: str | None, reverse: bool | None
) -> RangeSpec:
    """Redis's ``zrangeGenericCommand`` arguments: ``<src> <min> <max> [options]`` from ``at``.

    ``kind``/``reverse`` are fixed by the older commands (ZRANGEBYSCORE,
    ZREVRANGE, ...) and None for ZRANGE and ZRANGESTORE, which take BYSCORE,
    BYLEX and REV.  Errors come in Redis's order.
    """
    withscores = False
    offset, limit = 0, -1
    j = at + 3
    while j < len(args):
        opt = args[j].lower()
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and len(args) - j - 1 >= 2:
            offset, limit = parse_int(args[j + 1]), parse_int(args[j + 2])
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif kind is None and opt in (b"bylex", b"byscore"):
            kind = LEX if opt == b"bylex" else SCORE
        else:
            raise ValueError(SYNTAX_ERROR)
        j += 1
    spec = RangeSpec(kind or RANK, bool(reverse), withscores, offset, limit)
    if limit != -1 and spec.kind == RANK:
        raise ValueError(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if withscores and spec.kind == LEX:
        raise ValueError("syntax error, WITHSCORES not supported in combination with BYLEX")
    low, high = args[at + 1], args[at + 2]
    if spec.reverse and spec.kind != RANK:
        low, high = high, low  # given as max, min
    if spec.kind == RANK:
        spec.start, spec.stop = parse_int(low), parse_int(high)
    elif spec.kind == SCORE:
        (spec.lo, spec.lo_ex), (spec.hi, spec.hi_ex) = (
            parse_score_bound(low),
            parse_score_bound(high),
        )
    else:
        spec.lex_lo, spec.lex_hi = parse_lex_bound(low), parse_lex_bound(high)
    return spec


# -- ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD -------------------------------


def parse_numkeys(args: list[bytes], at: int, name: str) -> list[bytes]:
    """The keys after ``numkeys`` (at ``at``), with Redis's errors for a bad count."""
    numkeys = parse_int(args[at])
    if numkeys < 1:
        raise ValueError(f"at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - at - 1:
        raise ValueError(SYNTAX_ERROR)
    return args[at + 1 : at + 1 + numkeys]


@dataclass(slots=True)
class SetOpSpec:
    """The options after the keys: WEIGHTS, AGGREGATE, WITHSCORES (or ZINTERCARD's LIMIT)."""

    weights: list[float]
    aggregate: str = "sum"
    withscores: bool = False
    limit: int = 0


def parse_setop_options(
    args: list[bytes], at: int, nkeys: int, *, diff: bool, store: bool, card: bool
) -> SetOpSpec:
    """The options from ``at`` on, as ``zunionInterDiffGenericCommand`` reads them."""
    spec = SetOpSpec([1.0] * nkeys)
    j = at
    while j < len(args):
        left = len(args) - j
        opt = args[j].lower()
        if not diff and not card and left >= nkeys + 1 and opt == b"weights":
            values = args[j + 1 : j + 1 + nkeys]
            spec.weights = [parse_score(w, "weight value is not a float") for w in values]
            j += 1 + nkeys
        elif not diff and not card and left >= 2 and opt == b"aggregate":
            how = args[j + 1].lower()
            if how not in (b"sum", b"min", b"max"):
                raise ValueError(SYNTAX_ERROR)
            spec.aggregate = how.decode()
            j += 2
        elif not store and not card and opt == b"withscores":
            spec.withscores = True
            j += 1
        elif card and left >= 2 and opt == b"limit":
            spec.limit = _positive(args[j + 1], "ERR LIMIT can't be negative")
            j += 2
        else:
            raise ValueError(SYNTAX_ERROR)
    return spec


def _positive(raw: bytes, error: str) -> int:
    """Redis's ``getPositiveLongFromObjectOrReply`` with a message: any failure is ``error``."""
    try:
        value = parse_int(raw)
    except ValueError:
        raise ValueError(error) from None
    if value < 0:
        raise ValueError(error)
    return value


# -- ZMPOP, BZMPOP, ZRANDMEMBER ---------------------------------------------------------


def _at_least_one(raw: bytes, error: str) -> int:
    """Redis's ``getRangeLongFromObjectOrReply(1, LONG_MAX)`` with a message."""
    try:
        value = parse_int(raw)
    except ValueError:
        raise ValueError(error) from None
    if value < 1:
        raise ValueError(error)
    return value


def parse_zmpop(args: list[bytes], at: int) -> tuple[list[bytes], bool, int]:
    """``numkeys key [key ...] MIN|MAX [COUNT count]`` from ``at``: keys, MAX?, count."""
    numkeys = _at_least_one(args[at], "numkeys should be greater than 0")
    where = at + numkeys + 1
    if where >= len(args):
        raise ValueError(SYNTAX_ERROR)
    side = args[where].lower()
    if side not in (b"min", b"max"):
        raise ValueError(SYNTAX_ERROR)
    count = -1
    j = where + 1
    while j < len(args):
        if count == -1 and args[j].lower() == b"count" and j + 1 < len(args):
            count = _at_least_one(args[j + 1], "count should be greater than 0")
            j += 2
        else:
            raise ValueError(SYNTAX_ERROR)
    return args[at + 1 : where], side == b"max", 1 if count == -1 else count


def parse_zrandmember(args: list[bytes]) -> tuple[int | None, bool]:
    """``ZRANDMEMBER key [count [WITHSCORES]]``: the count (None without one) and WITHSCORES."""
    if len(args) < 3:
        return None, False
    count = parse_int(args[2])
    if count < -_LONG_MAX:
        raise ValueError(f"value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}")
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withscores"):
        raise ValueError(SYNTAX_ERROR)
    if len(args) == 4 and abs(count) > _LONG_MAX // 2:  # twice as many replies: no overflow
        raise ValueError("value is out of range")
    return count, len(args) == 4
