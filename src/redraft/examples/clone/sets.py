"""Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SSCAN,
with Redis 7.0's replies and errors.

A set is a Python ``set`` of bytes; it is never empty (the command that
takes its last member deletes the key).  Replies list members in Redis's
order where Redis's is fixed, numeric for what it keeps as an intset, and in
Python's set order where Redis's is its hash table's (see :mod:`.set_ops`).

Every command but SSCAN is a plain read or write.  SPOP is the one write
whose effect is random: it draws with ``m.random()`` (the same generator on
every node) over the members *sorted*, since a Python set's iteration order
depends on the process's hash seed and differs between nodes.  That sort
makes SPOP O(n log n) on a set of n members (Redis: O(1)); SRANDMEMBER, a
read, draws over the set as it iterates.  The ``*STORE`` commands replace a
key of any type and drop its expiry, as Redis's ``setKey`` does, and delete
the destination when the result is empty.

WATCH: a command changes a key (and logs it) exactly where Redis signals a
modified key: SADD only when it added a member, SREM when it removed one,
SMOVE for the source when a member moved and for the destination when it
gained one, the ``*STORE`` commands whenever they store (even the same
members) or delete.

SSCAN answers a set Redis would keep as an intset, or one of at most COUNT
members, whole with cursor 0 (Redis does, for such sets); a larger one is
walked as :func:`.scanning.member_scan` walks every container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redraft.machine import Applier, Command, Conn, ErrWrongNumberOfArguments, Read, Write

from .keyspace import Handler, Keyspace
from .parsing import SYNTAX_ERROR, parse_count
from .scanning import ScanLists, member_scan, parse_member_scan_options, parse_scan_cursor
from .set_ops import (
    MAX_INTSET_ENTRIES,
    SetReply,
    intersection_size,
    is_int_member,
    matching,
    ordered,
    parse_sintercard,
    parse_srandmember_count,
    set_reply,
)

__all__ = ["SetCommands"]

MAX_RANDOM_REPLY = 1 << 24
"""The most members one SRANDMEMBER with a negative count answers (Redis has no bound and
would build a reply of any length; here a node must not hang building one)."""

_EMPTY = SetReply([])


class SetCommands(Keyspace):
    """The set commands, over the shared keyspace."""

    def __init__(self) -> None:
        super().__init__()
        # SSCAN's member lists, node-local: each is [key, member, ...].
        self._set_scans = ScanLists()

    def _set_handlers(self) -> dict[bytes, Handler]:
        return {b"sscan": self._sscan}

    def _set_reads(self) -> dict[str, Read]:
        return {
            "smembers": self._smembers,
            "sismember": self._sismember,
            "smismember": self._smismember,
            "scard": self._scard,
            "srandmember": self._srandmember,
            "sinter": self._sinter,
            "sintercard": self._sintercard,
            "sunion": self._sunion,
            "sdiff": self._sdiff,
        }

    def _set_writes(self) -> dict[str, Write]:
        return {
            "sadd": Write(self._sadd, _check_at_least_3),
            "srem": Write(self._srem, _check_at_least_3),
            "spop": Write(self._spop, _check_spop),
            "smove": Write(self._smove, _check_smove),
            "sinterstore": Write(self._sinterstore, _check_at_least_3),
            "sunionstore": Write(self._sunionstore, _check_at_least_3),
            "sdiffstore": Write(self._sdiffstore, _check_at_least_3),
        }

    # -- writes ----------------------------------------------------------------------

    def _sadd(self, m: Applier, args: list[bytes]) -> int:
        key = args[1]
        now = m.now_ns()
        members = self._object_at(key, now, set)
        if members is None:
            members = self._new_object(key, now, set())
        if len(args) == 3:  # one member: every benchmark's SADD
            added = 0
            if args[2] not in members:
                members.add(args[2])
                added = 1
        else:
            before = len(members)
            members.update(args[2:])
            added = len(members) - before
        if added:
            self._touched.append(key)
        self._after_write(m, now)
        return added

    def _srem(self, m: Applier, args: list[bytes]) -> int:
        key = args[1]
        now = m.now_ns()
        members = self._object_at(key, now, set)
        removed = 0
        if members is None:
            self._drop_if_expired(key, now)
        else:
            before = len(members)
            members.difference_update(args[2:])
            removed = before - len(members)
            if not members:
                self._delete(key)
            elif removed:
                self._touched.append(key)
        self._after_write(m, now)
        return removed

    def _spop(self, m: Applier, args: list[bytes]) -> Any:
        """SPOP key [count]: a random member (nil), or with a count a set of them."""
        key = args[1]
        count = parse_count(args[2]) if len(args) == 3 else None
        now = m.now_ns()
        members = self._object_at(key, now, set)
        result: Any
        if members is None:
            self._drop_if_expired(key, now)
            result = None if count is None else _EMPTY
        elif count == 0:
            result = _EMPTY
        elif count is not None and count >= len(members):
            result = set_reply(members)
            self._delete(key)
        else:
            if len(members) == 1:
                chosen = list(members)
            else:
                # Sorted: the draw must pick the same members on every node.
                chosen = m.random().sample(sorted(members), 1 if count is None else count)
            members.difference_update(chosen)
            if members:
                self._touched.append(key)
            else:
                self._delete(key)
            result = chosen[0] if count is None else SetReply(chosen)
        self._after_write(m, now)
        return result

    def _smove(self, m: Applier, args: list[bytes]) -> int:
        src, dst, member = args[1], args[2], args[3]
        now = m.now_ns()
        moved = self._move_member(src, dst, member, now)
        self._after_write(m, now)
        return moved

    def _move_member(self, src: bytes, dst: bytes, member: bytes, now: int) -> int:
        source = self._object_at(src, now, set)
        if source is None:
            self._drop_if_expired(src, now)
            return 0  # before the destination's type is looked at, as in Redis
        target = self._object_at(dst, now, set)
        if src == dst:
            return int(member in source)
        if member not in source:
            return 0
        source.remove(member)
        if source:
            self._touched.append(src)
        else:
            self._delete(src)
        if target is None:
            target = self._new_object(dst, now, set())
        if member not in target:
            target.add(member)
            self._touched.append(dst)
        return 1

    def _sinterstore(self, m: Applier, args: list[bytes]) -> int:
        now = m.now_ns()
        sets = self._sets_at(args[2:], now)
        if any(s is None for s in sets):
            result: set[bytes] = set()
        else:
            present = sorted((s for s in sets if s is not None), key=len)
            result = present[0].intersection(*present[1:])
        return self._store_or_delete(m, args[1], result, now, ready=False)

    def _sunionstore(self, m: Applier, args: list[bytes]) -> int:
        now = m.now_ns()
        sets = self._sets_at(args[2:], now)
        result: set[bytes] = set().union(*(s for s in sets if s is not None))
        return self._store_or_delete(m, args[1], result, now, ready=False)

    def _sdiffstore(self, m: Applier, args: list[bytes]) -> int:
        now = m.now_ns()
        sets = self._sets_at(args[2:], now)
        return self._store_or_delete(m, args[1], _difference(sets), now, ready=False)

    def _sets_at(self, keys: list[bytes], now: int) -> list[set[bytes] | None]:
        """The live sets at ``keys`` (None for a missing key); WRONGTYPE at the first other type."""
        return [self._object_at(key, now, set) for key in keys]

    # -- reads ---------------------------------------------------------------------------

    def _smembers(self, m: Applier, args: list[bytes]) -> SetReply:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        members = self._read_object(m, args[1], set)
        return _EMPTY if members is None else set_reply(members)

    def _sismember(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        members = self._read_object(m, args[1], set)
        return 1 if members is not None and args[2] in members else 0

    def _smismember(self, m: Applier, args: list[bytes]) -> list[int]:
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        members = self._read_object(m, args[1], set)
        if members is None:
            return [0] * (len(args) - 2)
        return [1 if member in members else 0 for member in args[2:]]

    def _scard(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        members = self._read_object(m, args[1], set)
        return 0 if members is None else len(members)

    def _srandmember(self, m: Applier, args: list[bytes]) -> Any:
        """SRANDMEMBER key [count]: a random member, or an array of them (repeats if count < 0)."""
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        if len(args) > 3:
            raise ValueError(SYNTAX_ERROR)
        count = parse_srandmember_count(args[2]) if len(args) == 3 else None
        members = self._read_object(m, args[1], set)
        if count is None:
            return None if members is None else m.random().choice(list(members))
        if members is None or count == 0:
            return []
        rng = m.random()
        if count < 0:
            if -count > MAX_RANDOM_REPLY:
                raise ValueError(f"count is out of range, must be at least {-MAX_RANDOM_REPLY}")
            return rng.choices(list(members), k=-count)
        if count >= len(members):
            return ordered(members)
        return rng.sample(list(members), count)

    def _sinter(self, m: Applier, args: list[bytes]) -> SetReply:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        sets = self._read_sets(m, args[1:])
        if any(s is None for s in sets):
            return _EMPTY
        present = sorted((s for s in sets if s is not None), key=len)
        return set_reply(present[0].intersection(*present[1:]))

    def _sintercard(self, m: Applier, args: list[bytes]) -> int:
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        keys, limit = parse_sintercard(args)
        sets = self._read_sets(m, keys)
        present = [s for s in sets if s is not None]
        if len(present) < len(sets):
            return 0
        return intersection_size(present, limit)

    def _sunion(self, m: Applier, args: list[bytes]) -> SetReply:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        sets = self._read_sets(m, args[1:])
        return set_reply(set().union(*(s for s in sets if s is not None)))

    def _sdiff(self, m: Applier, args: list[bytes]) -> SetReply:
        if len(args) < 2:
            raise ErrWrongNumberOfArguments()
        return set_reply(_difference(self._read_sets(m, args[1:])))

    def _read_sets(self, m: Applier, keys: list[bytes]) -> list[set[bytes] | None]:
        """The sets at ``keys`` for a read (None for a missing key); WRONGTYPE at the first other type."""
        return [self._read_object(m, key, set) for key in keys]

    # -- SSCAN ---------------------------------------------------------------------------

    def _sscan(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """SSCAN key cursor [MATCH pattern] [COUNT count]."""
        args = cmd.args
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        key = args[1]
        cursor = parse_scan_cursor(args[2])

        def respond(_: Any) -> list[Any]:
            members = self._read_object(m, key, set)
            if members is None:
                return [b"0", []]
            count, match = parse_member_scan_options(args[3:])
            return member_scan(
                self._set_scans, key, cursor, count, members,
                lambda: _whole(members, count, match),
                lambda names: matching((x for x in names if x in members), match),
            )  # fmt: skip

        return m.apply(conn, cmd, None, respond)


def _whole(
    members: set[bytes], count: int, match: Callable[[bytes], bool] | None
) -> list[bytes] | None:
    """SSCAN's reply for a set Redis answers whole (an intset, or at most COUNT members)."""
    if len(members) <= count or _intset_like(members):
        return matching(ordered(members), match)
    return None


def _intset_like(members: set[bytes]) -> bool:
    """Whether Redis would keep these members as an intset (SSCAN then answers them whole)."""
    return len(members) <= MAX_INTSET_ENTRIES and all(map(is_int_member, members))


def _difference(sets: list[set[bytes] | None]) -> set[bytes]:
    """The members of the first set in none of the others (missing keys are empty sets)."""
    first = sets[0]
    if first is None:
        return set()
    return first.difference(*(s for s in sets[1:] if s is not None))


# -- checks run before a write is logged ---------------------------------------------------


def _check_at_least_3(args: list[bytes]) -> None:
    if len(args) < 3:
        raise ErrWrongNumberOfArguments()


def _check_spop(args: list[bytes]) -> None:
    if len(args) < 2:
        raise ErrWrongNumberOfArguments()
    if len(args) > 3:
        raise ValueError(SYNTAX_ERROR)
    if len(args) == 3:
        parse_count(args[2])


def _check_smove(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
