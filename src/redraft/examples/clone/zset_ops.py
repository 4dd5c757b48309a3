"""The pieces of the sorted-set commands that need no keyspace: ranges as Redis walks
them, ZADD's rule for one member, ZUNION/ZINTER/ZDIFF, random picks, and replies.

Set operations follow Redis's ``zunionInterDiffGenericCommand`` to the
floating-point detail: inputs sorted by size (a plain set counts, every
member scoring 1), each score multiplied by its key's weight with a NaN
(``inf * 0``) taken as 0, SUM turning ``inf + -inf`` into 0, MIN and MAX
keeping the score they have on a tie.  The order in which one member's
scores are combined is the inputs' order, whatever order each input is
walked in, so the result is the same on every node.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from redraft.machine import Pairs

from .zset import ZSet
from .zset_args import LEX, NAN_RESULT, RANK, SCORE, RangeSpec, SetOpSpec, ZaddSpec, score_reply

__all__ = [
    "Scored",
    "Source",
    "diff",
    "inter",
    "inter_card",
    "random_members",
    "range_items",
    "range_span",
    "rank_span",
    "scored_reply",
    "sorted_pairs",
    "union",
    "zadd_into",
]

Scored = list[tuple[bytes, float]]
"""``(member, score)`` pairs."""

Source = ZSet | set[bytes] | None
"""An input of a set operation: a sorted set, a plain set (scores 1) or a missing key."""


def scored_reply(pairs: Scored, withscores: bool) -> list[bytes] | Pairs:
    """A reply of members, or of members with their scores: flat in RESP2, ``[member,
    score]`` pairs in RESP3 (as Redis 7.0 answers WITHSCORES and ZPOPMIN with a count)."""
    if not withscores:
        return [m for m, _ in pairs]
    return Pairs([(member, score_reply(score)) for member, score in pairs])


# -- ranges ----------------------------------------------------------------------------


def rank_span(size: int, start: int, stop: int) -> tuple[int, int]:
    """Redis's rank range ``start..stop`` (negative from the end) as ranks ``[i, j)``."""
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    start = max(start, 0)
    if start > stop or start >= size:
        return 0, 0
    return start, min(stop, size - 1) + 1


def range_span(z: ZSet, spec: RangeSpec, reverse: bool) -> tuple[int, int]:
    """The ranks ``[i, j)`` of ``spec``'s range (before LIMIT); a rank range counts from the
    top when ``reverse``."""
    if spec.kind == RANK:
        i, j = rank_span(len(z), spec.start, spec.stop)
        return (len(z) - j, len(z) - i) if reverse else (i, j)
    if spec.kind == SCORE:
        return z.score_span(spec.lo, spec.lo_ex, spec.hi, spec.hi_ex)
    return z.lex_span(spec.lex_lo, spec.lex_hi, reverse)


def range_items(z: ZSet, spec: RangeSpec) -> Scored:
    """What a ZRANGE-like command answers: its range, with LIMIT, in its direction.

    LIMIT as Redis walks it: a negative offset walks off the end (nothing), a
    negative count takes everything from the offset on.
    """
    reverse = spec.reverse
    i, j = range_span(z, spec, reverse)
    if spec.kind == LEX and i < j and not z.uniform:
        return _lex_walk(z, spec, j - 1 if reverse else i)
    if spec.kind != RANK and (spec.offset or spec.limit >= 0):
        offset, limit = spec.offset, spec.limit
        if offset < 0:
            return []
        if reverse:
            j -= offset
            if limit >= 0:
                i = max(i, j - limit)
        else:
            i += offset
            if limit >= 0:
                j = min(j, i + limit)
    if i >= j:
        return []
    return z.items(i, j, reverse)


def _lex_walk(z: ZSet, spec: RangeSpec, start: int) -> Scored:
    """A lexicographic range over mixed scores, as Redis walks its listpack: from
    ``start``, OFFSET members passed over unchecked, then members taken while they
    stay inside the range's far end."""
    if spec.offset < 0:
        return []
    order = z.order
    step = -1 if spec.reverse else 1
    pos = start + step * spec.offset
    inside = spec.lex_lo.at_least if spec.reverse else spec.lex_hi.at_most
    out: Scored = []
    while 0 <= pos < len(order) and len(out) != spec.limit:
        score, member = order[pos]
        if not inside(member):
            break
        out.append((member, score))
        pos += step
    return out


# -- ZADD --------------------------------------------------------------------------------


def zadd_into(z: ZSet, spec: ZaddSpec) -> tuple[int, int, int, float]:
    """ZADD's pairs applied to ``z`` as Redis's ``zsetAdd`` does, one by one.

    Returns how many members were added, how many changed score, how many
    were not skipped (NX, XX, GT, LT), and the last score set (INCR's reply).
    A NaN sum (INCR of ``inf`` by ``-inf``) raises before anything changes:
    INCR takes one pair.
    """
    added = updated = processed = 0
    last = 0.0
    scores = z.scores
    for value, member in spec.pairs:
        current = scores.get(member)
        if current is None:
            if spec.xx:
                continue
            z.add(member, value)
            added += 1
            processed += 1
            last = value
            continue
        if spec.nx:
            continue
        new = value + current if spec.incr else value
        if new != new:
            raise ValueError(NAN_RESULT)
        if (spec.lt and new >= current) or (spec.gt and new <= current):
            continue
        processed += 1
        last = new
        if new != current:
            z.add(member, new)
            updated += 1
    return added, updated, processed, last


# -- ZUNION, ZINTER, ZDIFF -------------------------------------------------------------------


def _size(src: Source) -> int:
    return 0 if src is None else len(src)


def _pairs(src: ZSet | set[bytes]) -> Iterable[tuple[bytes, float]]:
    if isinstance(src, ZSet):
        return src.scores.items()
    return ((m, 1.0) for m in src)


def _find(src: Source, member: bytes) -> float | None:
    if isinstance(src, ZSet):
        return src.scores.get(member)
    return 1.0 if src is not None and member in src else None


def _aggregate(target: float, value: float, how: str) -> float:
    if how == "sum":
        total = target + value
        return 0.0 if total != total else total
    if how == "min":
        return value if value < target else target
    return value if value > target else target


def _by_size(sources: list[Source]) -> list[int]:
    """The inputs' positions, smallest input first (stable, as Redis's sort is on glibc)."""
    return sorted(range(len(sources)), key=lambda k: _size(sources[k]))


def union(sources: list[Source], spec: SetOpSpec) -> dict[bytes, float]:
    """ZUNION: every member of any input, its weighted scores combined."""
    acc: dict[bytes, float] = {}
    how = spec.aggregate
    for k in _by_size(sources):
        src = sources[k]
        if not src:
            continue
        weight = spec.weights[k]
        for member, score in _pairs(src):
            value = weight * score
            if value != value:
                value = 0.0
            old = acc.get(member)
            acc[member] = value if old is None else _aggregate(old, value, how)
    return acc


def inter(sources: list[Source], spec: SetOpSpec) -> dict[bytes, float]:
    """ZINTER: the members of every input, their weighted scores combined."""
    order = _by_size(sources)
    first = sources[order[0]]
    acc: dict[bytes, float] = {}
    if not first:
        return acc
    weights, how = spec.weights, spec.aggregate
    for member, score in _pairs(first):
        total = weights[order[0]] * score
        if total != total:
            total = 0.0
        for k in order[1:]:
            found = _find(sources[k], member)
            if found is None:
                break
            total = _aggregate(total, found * weights[k], how)
        else:
            acc[member] = total
    return acc


def inter_card(sources: list[Source], limit: int) -> int:
    """ZINTERCARD: how many members every input holds, counting no further than ``limit``."""
    order = _by_size(sources)
    first = sources[order[0]]
    if not first:
        return 0
    others = [sources[k] for k in order[1:]]
    found = 0
    for member, _ in _pairs(first):
        if all(_find(src, member) is not None for src in others):
            found += 1
            if found == limit:
                break
    return found


def diff(sources: list[Source]) -> dict[bytes, float]:
    """ZDIFF: the members of the first input in none of the others, with their scores."""
    first = sources[0]
    if not first or any(src is first for src in sources[1:]):
        return {}
    others = [src for src in sources[1:] if src]
    return {m: s for m, s in _pairs(first) if all(_find(o, m) is None for o in others)}


def sorted_pairs(acc: dict[bytes, float]) -> Scored:
    """A result in Redis's order: by score, then by member."""
    return sorted(acc.items(), key=lambda pair: (pair[1], pair[0]))


# -- ZRANDMEMBER -----------------------------------------------------------------------------


def random_members(z: ZSet, count: int, rng: random.Random) -> Scored:
    """ZRANDMEMBER with a count: ``-count`` draws with repeats if negative, else up to
    ``count`` distinct members (the whole set highest first, as Redis walks it, if it
    has no more)."""
    order = z.order
    size = len(order)
    if count < 0:
        picks = [order[rng.randrange(size)] for _ in range(-count)]
    elif count >= size:
        return z.items(0, size, reverse=True)
    else:
        picks = [order[i] for i in rng.sample(range(size), count)]
    return [(m, s) for s, m in picks]
