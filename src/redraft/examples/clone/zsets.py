"""Sorted-set commands: ZADD (NX, XX, GT, LT, CH, INCR), ZINCRBY, ZREM, ZCARD, ZSCORE,
ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZRANGE (BYSCORE, BYLEX, REV, LIMIT,
WITHSCORES) and its older forms, ZRANGESTORE, ZREMRANGEBYRANK/SCORE/LEX, ZPOPMIN,
ZPOPMAX, ZMPOP, the blocking BZPOPMIN, BZPOPMAX and BZMPOP, ZRANDMEMBER, ZUNION, ZINTER,
ZDIFF and their STORE forms, ZINTERCARD and ZSCAN, with Redis 7.0's replies and errors.

A sorted set is a :class:`~.zset.ZSet` (ranges in O(log n + k)); it is never
empty (the command that takes its last member deletes the key).  Arguments
are read and scores written as Redis 7.0 does (:mod:`.zset_args`); ranges,
set operations and random picks are in :mod:`.zset_ops`.

Every command but the blocking pops and ZSCAN is a plain read or write; a
write's ``check`` refuses on the leader what Redis refuses before it looks
at a key, and the rest (WRONGTYPE first, then the options ZUNIONSTORE and
the like read after their keys) is refused when applied, leaving the state
as it was.  The ``*STORE`` commands replace a key of any type and drop its
expiry (Redis's ``setKey``), and delete the destination when the result is
empty.  ZRANDMEMBER is a read and draws with ``m.random()``.

Blocking: BZPOPMIN, BZPOPMAX and BZMPOP raise :class:`~redraft.machine.Block`
while every key they name is empty, with Redis's null array for a timeout
(inside MULTI too); every write that adds members (ZADD, ZINCRBY, a
``*STORE`` that stores) calls :meth:`~redraft.machine.Applier.key_ready`.
Woken, they pop from the key made ready first that still holds a sorted set
(:meth:`~redraft.machine.Applier.woken_by`), as Redis 7.0 serves a waiter.

WATCH: a command changes a key (and logs it) exactly where Redis signals a
modified key: ZADD and ZINCRBY when a member was added or its score changed,
ZREM and the ZREMRANGEBY commands when they removed a member, the pops when
they took one, the ``*STORE`` commands whenever they store (even the same
members) or delete.

Scores go out as Redis 7.0 writes them (``%.17g``), a double in RESP3
(:class:`~redraft.machine.Double`), and members with their scores (WITHSCORES,
ZPOPMIN with a count) as :class:`~redraft.machine.Pairs`: flat in RESP2,
``[member, score]`` arrays in RESP3.  ZSCAN's scores stay bulk strings in both.

ZSCAN answers a set Redis would keep as a listpack, or one of at most COUNT
members, whole with cursor 0 (scores as the listpack holds them); a larger
one is walked as :func:`.scanning.member_scan` walks every container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redraft.machine import (
    NULL_ARRAY,
    Applier,
    Block,
    Command,
    Conn,
    Double,
    ErrWrongNumberOfArguments,
    Pairs,
    Read,
    Write,
)

from .keyspace import Handler, Keyspace
from .parsing import SYNTAX_ERROR, WRONGTYPE, parse_count, parse_timeout
from .scanning import ScanLists, member_scan, parse_member_scan_options, parse_scan_cursor
from .zset import ZSet
from .zset_args import (
    LEX,
    RANK,
    SCORE,
    ZADD_FLAGS,
    ZaddSpec,
    format_score,
    parse_lex_bound,
    parse_numkeys,
    parse_range,
    parse_score,
    parse_score_bound,
    parse_setop_options,
    parse_zadd,
    parse_zmpop,
    parse_zrandmember,
    scan_score,
    score_reply,
)
from .zset_ops import (
    Scored,
    Source,
    diff,
    inter,
    inter_card,
    random_members,
    range_items,
    range_span,
    scored_reply,
    sorted_pairs,
    union,
    zadd_into,
)

__all__ = ["MAX_RANDOM_REPLY", "ZSetCommands"]

MAX_RANDOM_REPLY = 1 << 24
"""The most members one ZRANDMEMBER with a negative count answers (Redis has no bound and
would build a reply of any length; here a node must not hang building one)."""

_FINITE_DIGITS = 300
"""Fewer decimal digits than this always make a finite double (the largest is about 1.8e308)."""

_SET_OPS: dict[str, Callable[[list[Source], Any], dict[bytes, float]]] = {
    "union": union,
    "inter": inter,
    "diff": lambda sources, _: diff(sources),
}


class ZSetCommands(Keyspace):
    """The sorted-set commands, over the shared keyspace."""

    def __init__(self) -> None:
        super().__init__()
        # ZSCAN's member lists, node-local: each is [key, member, ...].
        self._zset_scans = ScanLists()

    def _zset_handlers(self) -> dict[bytes, Handler]:
        return {
            b"bzpopmin": self._bzpopmin,
            b"bzpopmax": self._bzpopmax,
            b"bzmpop": self._bzmpop,
            b"zscan": self._zscan,
        }

    def _zset_reads(self) -> dict[str, Read]:
        return {
            "zcard": self._zcard,
            "zscore": self._zscore,
            "zmscore": self._zmscore,
            "zrank": self._zrank,
            "zrevrank": self._zrevrank,
            "zcount": self._zcount,
            "zlexcount": self._zlexcount,
            "zrange": self._zranger(None, None),
            "zrangebyscore": self._zranger(SCORE, False),
            "zrevrangebyscore": self._zranger(SCORE, True),
            "zrangebylex": self._zranger(LEX, False),
            "zrevrangebylex": self._zranger(LEX, True),
            "zrevrange": self._zranger(RANK, True),
            "zrandmember": self._zrandmember,
            "zunion": self._zset_op_reader("union"),
            "zinter": self._zset_op_reader("inter"),
            "zdiff": self._zset_op_reader("diff"),
            "zintercard": self._zintercard,
        }

    def _zset_writes(self) -> dict[str, Write]:
        return {
            "zadd": Write(self._zadd, _check_zadd),
            "zincrby": Write(self._zincrby, _check_zincrby),
            "zrem": Write(self._zrem, _arity_check(-3)),
            "zrangestore": Write(self._zrangestore, _check_zrangestore),
            "zremrangebyrank": Write(self._zremover(RANK), _remrange_check(RANK)),
            "zremrangebyscore": Write(self._zremover(SCORE), _remrange_check(SCORE)),
            "zremrangebylex": Write(self._zremover(LEX), _remrange_check(LEX)),
            "zpopmin": Write(self._zpopmin, _check_zpop),
            "zpopmax": Write(self._zpopmax, _check_zpop),
            "zmpop": Write(self._zmpop, _check_zmpop),
            "zunionstore": Write(self._zset_op_writer("union"), _store_check("zunionstore")),
            "zinterstore": Write(self._zset_op_writer("inter"), _store_check("zinterstore")),
            "zdiffstore": Write(self._zset_op_writer("diff"), _store_check("zdiffstore")),
        }

    # -- writes ----------------------------------------------------------------------

    def _zadd(self, m: Applier, args: list[bytes]) -> Any:
        """ZADD; ``ZADD key score member``, every benchmark's, kept lean."""
        if len(args) != 4:
            return self._zadd_spec(m, args[1], parse_zadd(args))
        raw = args[2]
        if raw.isdigit() and len(raw) < _FINITE_DIGITS:
            # A whole score, never a flag: through int, which reads digits twice as
            # fast as float does and rounds the same (exactly).
            score = float(int(raw))
        elif raw.lower() in ZADD_FLAGS:
            return self._zadd_spec(m, args[1], parse_zadd(args))
        else:
            score = parse_score(raw)
        key, member = args[1], args[3]
        now = m.now_ns()
        z = self._object_at(key, now, ZSet)
        if z is None:
            z = self._new_object(key, now, ZSet())
        old = z.scores.get(member)
        if old is None:
            z.add(member, score)
            self._touched.append(key)
            m.key_ready(key)
        elif old != score:
            z.add(member, score)
            self._touched.append(key)
        self._after_write(m, now)
        return 1 if old is None else 0

    def _zincrby(self, m: Applier, args: list[bytes]) -> Any:
        return self._zadd_spec(m, args[1], parse_zadd(args, incr=True))

    def _zadd_spec(self, m: Applier, key: bytes, spec: ZaddSpec) -> Any:
        now = m.now_ns()
        z = self._object_at(key, now, ZSet)
        if z is None:
            if spec.xx:
                self._drop_if_expired(key, now)
                self._after_write(m, now)
                return None if spec.incr else 0
            z = self._new_object(key, now, ZSet())
        added, updated, processed, score = zadd_into(z, spec)
        if added or updated:
            self._touched.append(key)
            if added:
                m.key_ready(key)
        self._after_write(m, now)
        if spec.incr:
            return score_reply(score) if processed else None
        return added + updated if spec.ch else added

    def _zrem(self, m: Applier, args: list[bytes]) -> int:
        key = args[1]
        now = m.now_ns()
        z = self._object_at(key, now, ZSet)
        removed = 0
        if z is None:
            self._drop_if_expired(key, now)
        else:
            for member in args[2:]:
                removed += z.discard(member)
                if not z:
                    break
            self._zset_changed(key, z, removed)
        self._after_write(m, now)
        return removed

    def _zset_changed(self, key: bytes, z: ZSet, removed: int) -> None:
        """After members left ``z`` (at ``key``): delete an emptied key, else log a change."""
        if not z:
            self._delete(key)
        elif removed:
            self._touched.append(key)

    def _zremover(self, kind: str) -> Callable[[Applier, list[bytes]], int]:
        """ZREMRANGEBYRANK, ZREMRANGEBYSCORE or ZREMRANGEBYLEX."""

        def apply(m: Applier, args: list[bytes]) -> int:
            spec = _remrange_spec(args, kind)
            key = args[1]
            now = m.now_ns()
            z = self._object_at(key, now, ZSet)
            removed = 0
            if z is None:
                self._drop_if_expired(key, now)
            else:
                removed = z.remove_span(*range_span(z, spec, False))
                self._zset_changed(key, z, removed)
            self._after_write(m, now)
            return removed

        return apply

    def _zpopmin(self, m: Applier, args: list[bytes]) -> list[Any] | Pairs:
        return self._zpop(m, args, False)

    def _zpopmax(self, m: Applier, args: list[bytes]) -> list[Any] | Pairs:
        return self._zpop(m, args, True)

    def _zpop(self, m: Applier, args: list[bytes], highest: bool) -> list[Any] | Pairs:
        """ZPOPMIN/ZPOPMAX key [count]: ``[member, score]`` without a count, else pairs (RESP3
        nests them, as Redis 7.0 does); an empty array for none."""
        count = parse_count(args[2]) if len(args) == 3 else 1
        key = args[1]
        now = m.now_ns()
        z = self._object_at(key, now, ZSet)
        taken: Scored = []
        if z is None:
            self._drop_if_expired(key, now)
        elif count:
            taken = z.pop(count, highest)
            self._zset_changed(key, z, len(taken))
        self._after_write(m, now)
        if len(args) == 3:
            return scored_reply(taken, True)
        return [x for member, score in taken for x in (member, score_reply(score))]

    def _zmpop(self, m: Applier, args: list[bytes]) -> Any:
        keys, highest, count = parse_zmpop(args, 1)
        now = m.now_ns()
        result = self._zpop_first(keys, highest, count, now)
        self._after_write(m, now)
        return NULL_ARRAY if result is None else result

    def _zpop_first(self, keys: list[bytes], highest: bool, count: int, now: int) -> Any:
        """ZMPOP's effect: ``[key, [[member, score], ...]]`` from the first non-empty key,
        or None; WRONGTYPE at the first key of another type."""
        for key in keys:
            z = self._object_at(key, now, ZSet)
            if z is not None:
                return self._zpop_from(key, z, highest, count)
        return None

    def _zpop_from(self, key: bytes, z: ZSet, highest: bool, count: int) -> list[Any]:
        """ZMPOP's reply and effect on ``z`` at ``key``: ``[key, [[member, score], ...]]``."""
        taken = z.pop(count, highest)
        self._zset_changed(key, z, len(taken))
        return [key, [[member, score_reply(score)] for member, score in taken]]

    def _zrangestore(self, m: Applier, args: list[bytes]) -> int:
        spec = parse_range(args, 2, True, None, None)
        now = m.now_ns()
        z = self._object_at(args[2], now, ZSet)
        result = ZSet()
        if z is not None:
            for member, score in range_items(z, spec):
                result.add(member, score)  # as Redis fills a listpack, converting when due
        return self._store_or_delete(m, args[1], result, now, ready=True)

    def _zset_op_writer(self, op: str) -> Callable[[Applier, list[bytes]], int]:
        """ZUNIONSTORE, ZINTERSTORE or ZDIFFSTORE."""
        name = f"z{op}store"

        def apply(m: Applier, args: list[bytes]) -> int:
            keys = parse_numkeys(args, 2, name)
            now = m.now_ns()
            sources = [self._zsource_at(key, now) for key in keys]
            spec = parse_setop_options(
                args, 3 + len(keys), len(keys), diff=op == "diff", store=True, card=False
            )
            acc = _SET_OPS[op](sources, spec)
            stored = ZSet.from_pairs(list(acc.items())).compacted()
            return self._store_or_delete(m, args[1], stored, now, ready=True)

        return apply

    def _zsource_at(self, key: bytes, now: int) -> Source:
        """An input of a set operation (in a write): a sorted set, a set, or None."""
        value = self._live(key, now)
        if value is None or isinstance(value, ZSet | set):
            return value
        raise ValueError(WRONGTYPE)

    # -- reads ---------------------------------------------------------------------------

    def _zcard(self, m: Applier, args: list[bytes]) -> int:
        _arity(args, 2)
        z = self._read_object(m, args[1], ZSet)
        return 0 if z is None else len(z)

    def _zscore(self, m: Applier, args: list[bytes]) -> Double | None:
        _arity(args, 3)
        z = self._read_object(m, args[1], ZSet)
        score = None if z is None else z.scores.get(args[2])
        return None if score is None else score_reply(score)

    def _zmscore(self, m: Applier, args: list[bytes]) -> list[Double | None]:
        _arity(args, -3)
        z = self._read_object(m, args[1], ZSet)
        if z is None:
            return [None] * (len(args) - 2)
        scores = z.scores
        return [None if (s := scores.get(x)) is None else score_reply(s) for x in args[2:]]

    def _zrank(self, m: Applier, args: list[bytes]) -> int | None:
        _arity(args, 3)
        z = self._read_object(m, args[1], ZSet)
        return None if z is None else z.rank(args[2])

    def _zrevrank(self, m: Applier, args: list[bytes]) -> int | None:
        _arity(args, 3)
        z = self._read_object(m, args[1], ZSet)
        rank = None if z is None else z.rank(args[2])
        return None if z is None or rank is None else len(z) - 1 - rank

    def _zcount(self, m: Applier, args: list[bytes]) -> int:
        _arity(args, 4)
        (lo, lo_ex), (hi, hi_ex) = parse_score_bound(args[2]), parse_score_bound(args[3])
        z = self._read_object(m, args[1], ZSet)
        if z is None:
            return 0
        i, j = z.score_span(lo, lo_ex, hi, hi_ex)
        return j - i

    def _zlexcount(self, m: Applier, args: list[bytes]) -> int:
        _arity(args, 4)
        lo, hi = parse_lex_bound(args[2]), parse_lex_bound(args[3])
        z = self._read_object(m, args[1], ZSet)
        if z is None:
            return 0
        i, j = z.lex_span(lo, hi)
        return j - i

    def _zranger(self, kind: str | None, reverse: bool | None) -> Read:
        """ZRANGE (``kind`` None) or one of its older forms."""

        def read(m: Applier, args: list[bytes]) -> list[bytes] | Pairs:
            _arity(args, -4)
            spec = parse_range(args, 1, False, kind, reverse)
            z = self._read_object(m, args[1], ZSet)
            return [] if z is None else scored_reply(range_items(z, spec), spec.withscores)

        return read

    def _zrandmember(self, m: Applier, args: list[bytes]) -> Any:
        """ZRANDMEMBER key [count [WITHSCORES]]: a random member, or an array of them."""
        _arity(args, -2)
        count, withscores = parse_zrandmember(args)
        z = self._read_object(m, args[1], ZSet)
        if count is None:
            return None if z is None else z.order[m.random().randrange(len(z))][1]
        if z is None or count == 0:
            return []
        if count < -MAX_RANDOM_REPLY:
            raise ValueError(f"count is out of range, must be at least {-MAX_RANDOM_REPLY}")
        return scored_reply(random_members(z, count, m.random()), withscores)

    def _zset_op_reader(self, op: str) -> Read:
        """ZUNION, ZINTER or ZDIFF."""
        name = f"z{op}"

        def read(m: Applier, args: list[bytes]) -> list[bytes] | Pairs:
            _arity(args, -3)
            keys = parse_numkeys(args, 1, name)
            sources = [self._zread_source(m, key) for key in keys]
            spec = parse_setop_options(
                args, 2 + len(keys), len(keys), diff=op == "diff", store=False, card=False
            )
            return scored_reply(sorted_pairs(_SET_OPS[op](sources, spec)), spec.withscores)

        return read

    def _zintercard(self, m: Applier, args: list[bytes]) -> int:
        _arity(args, -3)
        keys = parse_numkeys(args, 1, "zintercard")
        sources = [self._zread_source(m, key) for key in keys]
        spec = parse_setop_options(
            args, 2 + len(keys), len(keys), diff=False, store=False, card=True
        )
        return inter_card(sources, spec.limit)

    def _zread_source(self, m: Applier, key: bytes) -> Source:
        """An input of a set operation (in a read): a sorted set, a set, or None."""
        value = self._read(m, key)
        if value is None or isinstance(value, ZSet | set):
            return value
        raise ValueError(WRONGTYPE)

    # -- blocking ----------------------------------------------------------------------

    def _bzpopmin(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        return self._bzpop(m, conn, cmd, False)

    def _bzpopmax(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        return self._bzpop(m, conn, cmd, True)

    def _bzpop(self, m: Applier, conn: Conn | None, cmd: Command, highest: bool) -> Any:
        """BZPOPMIN/BZPOPMAX key [key ...] timeout: ``[key, member, score]``."""
        args = cmd.args
        _arity(args, -3)
        timeout_ms = parse_timeout(args[-1])
        keys = args[1:-1]

        def mutate() -> list[Any]:
            now = m.now_ns()
            found = self._waited_object(m, keys, now, ZSet)
            if found is None:
                raise Block(keys, timeout_ms, NULL_ARRAY)
            key, z = found
            [(member, score)] = z.pop(1, highest)
            self._zset_changed(key, z, 1)
            self._after_write(m, now)
            return [key, member, score_reply(score)]

        return m.blocking(conn, cmd, mutate, None)

    def _bzmpop(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]."""
        args = cmd.args
        _arity(args, -5)
        keys, highest, count = parse_zmpop(args, 2)
        timeout_ms = parse_timeout(args[1])

        def mutate() -> Any:
            now = m.now_ns()
            found = self._waited_object(m, keys, now, ZSet)
            if found is None:
                raise Block(keys, timeout_ms, NULL_ARRAY)
            result = self._zpop_from(*found, highest, count)
            self._after_write(m, now)
            return result

        return m.blocking(conn, cmd, mutate, None)

    # -- ZSCAN ---------------------------------------------------------------------------

    def _zscan(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """ZSCAN key cursor [MATCH pattern] [COUNT count]."""
        args = cmd.args
        _arity(args, -3)
        key = args[1]
        cursor = parse_scan_cursor(args[2])

        def respond(_: Any) -> list[Any]:
            z = self._read_object(m, key, ZSet)
            if z is None:
                return [b"0", []]
            count, match = parse_member_scan_options(args[3:])
            return member_scan(
                self._zset_scans, key, cursor, count, z.scores,
                lambda: _whole(z, count, match),
                lambda names: _scan_pairs(z.scores, names, match),
            )  # fmt: skip

        return m.apply(conn, cmd, None, respond)


def _whole(z: ZSet, count: int, match: Callable[[bytes], bool] | None) -> list[bytes] | None:
    """ZSCAN's reply for a sorted set Redis answers whole: a listpack (its scores as the
    listpack holds them), or a skip list of at most COUNT members."""
    if z.compact:
        return _scan_pairs(z.scores, (x for _, x in z.order), match, scan_score)
    if len(z) <= count:
        return _scan_pairs(z.scores, (x for _, x in z.order), match)
    return None


def _scan_pairs(
    scores: dict[bytes, float],
    members: Any,
    match: Callable[[bytes], bool] | None,
    show: Callable[[float], bytes] = format_score,
) -> list[bytes]:
    """``member, score, ...`` for the ``members`` still in the set that pass MATCH."""
    out: list[bytes] = []
    for member in members:
        score = scores.get(member)
        if score is not None and (match is None or match(member)):
            out += (member, show(score))
    return out


# -- argument checks (the reads' own, and the writes' before they are logged) ---------------


def _arity(args: list[bytes], arity: int) -> None:
    """Redis's arity rule: exactly ``arity`` arguments (the name counted), or at least
    ``-arity`` if negative."""
    if (len(args) != arity) if arity > 0 else (len(args) < -arity):
        raise ErrWrongNumberOfArguments()


def _arity_check(arity: int) -> Callable[[list[bytes]], None]:
    return lambda args: _arity(args, arity)


def _check_zadd(args: list[bytes]) -> None:
    if len(args) == 4:
        raw = args[2]
        if raw.isdigit() and len(raw) < _FINITE_DIGITS:
            return  # a whole score (see _zadd)
        if raw.lower() not in ZADD_FLAGS:
            parse_score(raw)
            return
    _arity(args, -4)
    parse_zadd(args)


def _check_zincrby(args: list[bytes]) -> None:
    _arity(args, 4)
    parse_zadd(args, incr=True)


def _check_zrangestore(args: list[bytes]) -> None:
    _arity(args, -5)
    parse_range(args, 2, True, None, None)


def _remrange_spec(args: list[bytes], kind: str) -> Any:
    """ZREMRANGEBY*'s range, as a ZRANGE-like spec."""
    return parse_range(args[:4], 1, True, kind, False)


def _remrange_check(kind: str) -> Callable[[list[bytes]], None]:
    def check(args: list[bytes]) -> None:
        _arity(args, 4)
        _remrange_spec(args, kind)

    return check


def _check_zpop(args: list[bytes]) -> None:
    _arity(args, -2)
    if len(args) > 3:
        raise ValueError(SYNTAX_ERROR)
    if len(args) == 3:
        parse_count(args[2])


def _check_zmpop(args: list[bytes]) -> None:
    _arity(args, -4)
    parse_zmpop(args, 1)


def _store_check(name: str) -> Callable[[list[bytes]], None]:
    def check(args: list[bytes]) -> None:
        _arity(args, -4)
        parse_numkeys(args, 2, name)

    return check
