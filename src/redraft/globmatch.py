"""Redis glob patterns (``KEYS``, ``SCAN MATCH``, ``PSUBSCRIBE``) over bytes.

The syntax and its corner cases follow Redis's ``stringmatchlen``:

* ``*`` matches any run of bytes, ``?`` any single byte;
* ``[abc]`` a byte in the set, ``[^abc]`` a byte outside it, ``[a-z]`` a
  range (reversed bounds such as ``[z-a]`` are swapped), ``\\x`` inside a set
  is the literal ``x``; a set that is never closed runs to the end of the
  pattern, ``[]`` matches nothing and ``[^]`` any byte;
* ``\\x`` outside a set is the literal ``x``; a lone trailing ``\\`` is a
  literal backslash;
* an empty subject matches only the empty pattern (``KEYS *`` still lists
  an empty key: callers treat the lone ``*`` as "everything").

Bytes are compared as unsigned values (Redis on x86 compares ``char`` as
signed, which only changes ranges that straddle 0x7f, such as ``[a-\\xff]``).

A pattern is compiled once into a regular expression.  Everything between
two stars has a fixed width, so the earliest place where such a segment fits
is always a safe place to commit to; each middle segment is wrapped in an
atomic group, which keeps matching at O(len(pattern) * len(subject)) even for
hostile patterns like ``*a*a*a*a*b``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["compile_glob", "glob_match"]

Matcher = Callable[[bytes], bool]


def glob_match(pattern: bytes, subject: bytes) -> bool:
    """Whether ``subject`` matches the Redis glob ``pattern``."""
    return compile_glob(pattern)(subject)


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Matcher:
    """A predicate testing subjects against the Redis glob ``pattern``."""
    segments = _split_on_stars(_tokens(pattern))
    head, middles, tail = segments[0], segments[1:-1], segments[-1]
    if len(segments) == 1:
        source = head
    else:
        atomic = "".join(f"(?>.*?{seg})" for seg in middles)
        source = f"{head}{atomic}.*{tail}"
    fullmatch = re.compile(source.encode("ascii"), re.DOTALL).fullmatch
    empty_matches = pattern == b""

    def match(subject: bytes) -> bool:
        if not subject:
            return empty_matches
        return fullmatch(subject) is not None

    return match


def _split_on_stars(tokens: list[str | None]) -> list[str]:
    """Group regex pieces into the fixed-width runs between stars (``None``)."""
    segments: list[str] = [""]
    for token in tokens:
        if token is None:
            segments.append("")
        else:
            segments[-1] += token
    return segments


def _tokens(pattern: bytes) -> list[str | None]:
    """Translate ``pattern`` into one regex piece per subject byte; ``None`` is a star."""
    tokens: list[str | None] = []
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
        elif c == 0x3F:  # '?'
            tokens.append(".")
        elif c == 0x5B:  # '['
            token, i = _byte_class(pattern, i + 1)
            tokens.append(token)
            continue
        else:
            if c == 0x5C and i + 1 < n:  # '\\' escapes the next byte
                i += 1
                c = pattern[i]
            tokens.append(_literal(c))
        i += 1
    return tokens


def _byte_class(pattern: bytes, i: int) -> tuple[str, int]:
    """Parse a ``[...]`` set whose body starts at ``i``; return its regex and the next index."""
    n = len(pattern)
    negate = i < n and pattern[i] == 0x5E  # '^'
    if negate:
        i += 1
    ranges: list[tuple[int, int]] = []
    while i < n:
        c = pattern[i]
        if c == 0x5C and i + 1 < n:  # '\\'
            ranges.append((pattern[i + 1], pattern[i + 1]))
            i += 2
        elif c == 0x5D:  # ']'
            i += 1
            break
        elif i + 2 < n and pattern[i + 1] == 0x2D:  # 'a-z'; Redis swaps reversed bounds
            lo, hi = sorted((c, pattern[i + 2]))
            ranges.append((lo, hi))
            i += 3
        else:
            ranges.append((c, c))
            i += 1
    if not ranges:
        return (".", i) if negate else ("(?!)", i)
    body = "".join(
        _literal(lo) if lo == hi else f"{_literal(lo)}-{_literal(hi)}" for lo, hi in ranges
    )
    return f"[{'^' if negate else ''}{body}]", i


def _literal(byte: int) -> str:
    return f"\\x{byte:02x}"
