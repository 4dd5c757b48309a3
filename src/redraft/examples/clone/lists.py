"""List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LMPOP, LLEN, LRANGE,
LINDEX, LPOS, LSET, LINSERT, LREM, LTRIM, LMOVE, RPOPLPUSH, and the blocking
BLPOP, BRPOP, BLMPOP, BLMOVE and BRPOPLPUSH.

A list is a ``collections.deque`` of bytes: pushes and pops at both ends are
O(1), and LRANGE walks from the nearer end.  A list is never empty: the
command that takes its last element (a pop, LREM, LTRIM) deletes the key, as
in Redis.  :mod:`.list_ops` holds the argument rules and the algorithms of
the longer commands (LPOS, LMPOP, LREM, LTRIM).

The non-blocking commands are plain reads and writes (the fast way).  The
blocking ones go through :meth:`~redraft.machine.Applier.blocking`: their
``mutate`` raises :class:`~redraft.machine.Block` (before changing anything)
while every key they wait on is empty, with the reply Redis gives at the
timeout, a null array (inside MULTI BLMOVE and BRPOPLPUSH answer a nil
instead); every write that creates a list (LPUSH, RPUSH, the destination of
LMOVE and RPOPLPUSH) calls :meth:`~redraft.machine.Applier.key_ready` so
that a waiter is tried again.  A woken BLPOP, BRPOP or BLMPOP pops from the
key made ready first that still holds a list
(:meth:`~redraft.machine.Applier.woken_by`), as Redis 7.0 serves it, not from
the first of its keys.  Like Redis, the writes that only add to a
list that exists (LPUSHX, RPUSHX, LINSERT, LSET) do not: nothing can be
waiting on a non-empty list.

Every change appends the key to the WATCH log exactly when Redis signals the
key as modified: LINSERT that found its pivot, LREM that removed something,
LTRIM on any list (even when it keeps everything), LSET, the pushes to a list
that exists; not LPUSHX on a missing key.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any, TypeVar

from redraft.machine import (
    NULL_ARRAY,
    OK,
    Applier,
    Block,
    Command,
    Conn,
    ErrWrongNumberOfArguments,
    Read,
    Status,
    Write,
)

from .keyspace import Handler, Keyspace
from .list_ops import (
    check_linsert,
    check_lmpop,
    check_lrem,
    check_ltrim,
    lpos,
    parse_before,
    parse_lpos,
    parse_mpop,
    remove_matches,
    trim,
)
from .parsing import parse_count, parse_int, parse_side, parse_timeout

__all__ = ["ListCommands"]

R = TypeVar("R")


class ListCommands(Keyspace):
    """The list commands, over the shared keyspace."""

    def _list_handlers(self) -> dict[bytes, Handler]:
        return {
            b"blpop": self._blpop,
            b"brpop": self._brpop,
            b"blmove": self._blmove,
            b"brpoplpush": self._brpoplpush,
            b"blmpop": self._blmpop,
        }

    def _list_reads(self) -> dict[str, Read]:
        return {
            "llen": self._llen,
            "lrange": self._lrange,
            "lindex": self._lindex,
            "lpos": self._lpos,
        }

    def _list_writes(self) -> dict[str, Write]:
        return {
            "lpush": Write(self._lpush, _check_push),
            "rpush": Write(self._rpush, _check_push),
            "lpop": Write(self._lpop, _check_pop),
            "rpop": Write(self._rpop, _check_pop),
            "lmove": Write(self._lmove, _check_lmove),
            "lpushx": Write(self._lpushx, _check_push),
            "rpushx": Write(self._rpushx, _check_push),
            "rpoplpush": Write(self._rpoplpush, _check_rpoplpush),
            "lmpop": Write(self._lmpop, check_lmpop),
            "lset": Write(self._lset, _check_lset),
            "linsert": Write(self._linsert, check_linsert),
            "lrem": Write(self._lrem, check_lrem),
            "ltrim": Write(self._ltrim, check_ltrim),
        }

    # -- pushes and pops -------------------------------------------------------------

    def _lpush(self, m: Applier, args: list[bytes]) -> int:
        return self._push(m, args, True)

    def _rpush(self, m: Applier, args: list[bytes]) -> int:
        return self._push(m, args, False)

    def _push(self, m: Applier, args: list[bytes], left: bool) -> int:
        key = args[1]
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            lst = self._new_list(key, now)
        if left:
            lst.extendleft(args[2:])
        else:
            lst.extend(args[2:])
        self._touched.append(key)
        m.key_ready(key)
        self._after_write(m, now)
        return len(lst)

    def _lpop(self, m: Applier, args: list[bytes]) -> Any:
        return self._pop(m, args, True)

    def _rpop(self, m: Applier, args: list[bytes]) -> Any:
        return self._pop(m, args, False)

    def _pop(self, m: Applier, args: list[bytes], left: bool) -> Any:
        """LPOP/RPOP key [count]: an element (nil), or with a count an array (null array)."""
        key = args[1]
        count = parse_count(args[2]) if len(args) == 3 else None
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            self._drop_if_expired(key, now)
            self._after_write(m, now)
            return None if count is None else NULL_ARRAY
        if count == 0:
            return []
        take = lst.popleft if left else lst.pop
        result: Any = take() if count is None else [take() for _ in range(min(count, len(lst)))]
        if lst:
            self._touched.append(key)
        else:
            self._delete(key)
        self._after_write(m, now)
        return result

    def _move(
        self, src: bytes, dst: bytes, from_left: bool, to_left: bool, now: int
    ) -> bytes | None:
        """LMOVE's effect: the element moved, or None (nothing changed) when ``src`` is empty."""
        source = self._list_at(src, now)
        if source is None:
            return None
        target = self._list_at(dst, now)  # WRONGTYPE before anything moves
        item = source.popleft() if from_left else source.pop()
        if target is None:
            target = self._new_list(dst, now)
        if to_left:
            target.appendleft(item)
        else:
            target.append(item)
        if source:
            self._touched.append(src)
        else:
            self._delete(src)
        self._touched.append(dst)
        return item

    def _lmove(self, m: Applier, args: list[bytes]) -> bytes | None:
        return self._move_now(m, args[1], args[2], parse_side(args[3]), parse_side(args[4]))

    def _rpoplpush(self, m: Applier, args: list[bytes]) -> bytes | None:
        return self._move_now(m, args[1], args[2], False, True)

    def _move_now(
        self, m: Applier, src: bytes, dst: bytes, from_left: bool, to_left: bool
    ) -> bytes | None:
        """LMOVE and RPOPLPUSH: the element moved, or nil when ``src`` is empty."""
        now = m.now_ns()
        item = self._move(src, dst, from_left, to_left, now)
        if item is None:
            self._drop_if_expired(src, now)
        else:
            m.key_ready(dst)
        self._after_write(m, now)
        return item

    def _lpushx(self, m: Applier, args: list[bytes]) -> int:
        return self._pushx(m, args, True)

    def _rpushx(self, m: Applier, args: list[bytes]) -> int:
        return self._pushx(m, args, False)

    def _pushx(self, m: Applier, args: list[bytes], left: bool) -> int:
        """LPUSHX/RPUSHX: push only onto a list that exists (0 and no change otherwise)."""
        key = args[1]
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            return self._untouched(m, key, now, 0)
        if left:
            lst.extendleft(args[2:])
        else:
            lst.extend(args[2:])
        self._touched.append(key)
        self._after_write(m, now)
        return len(lst)

    def _untouched(self, m: Applier, key: bytes, now: int, reply: R) -> R:
        """End a write that found no list at ``key``: drop it if it had expired, answer ``reply``."""
        self._drop_if_expired(key, now)
        self._after_write(m, now)
        return reply

    def _changed(self, m: Applier, key: bytes, lst: deque[bytes], now: int) -> None:
        """End a write that changed the list at ``key`` (deleting it if it is now empty)."""
        if lst:
            self._touched.append(key)
        else:
            self._delete(key)
        self._after_write(m, now)

    # -- LMPOP ---------------------------------------------------------------------------

    def _first_list(self, keys: list[bytes], now: int) -> tuple[bytes, deque[bytes]] | None:
        """The first key of ``keys`` that holds a list; WRONGTYPE stops the scan, as in Redis."""
        for key in keys:
            lst = self._list_at(key, now)
            if lst is not None:
                return key, lst
        return None

    def _pop_many(
        self, m: Applier, key: bytes, lst: deque[bytes], left: bool, count: int, now: int
    ) -> list[Any]:
        """LMPOP's reply and effect: ``[key, [up to count elements]]`` from one end."""
        take = lst.popleft if left else lst.pop
        items = [take() for _ in range(min(count, len(lst)))]
        self._changed(m, key, lst, now)
        return [key, items]

    def _lmpop(self, m: Applier, args: list[bytes]) -> Any:
        """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]."""
        keys, left, count = parse_mpop(args, 1)
        now = m.now_ns()
        found = self._first_list(keys, now)
        if found is not None:
            return self._pop_many(m, *found, left, count, now)
        for key in keys:  # Redis's lookups delete the expired keys they meet
            self._drop_if_expired(key, now)
        self._after_write(m, now)
        return NULL_ARRAY

    # -- changes in place ----------------------------------------------------------------

    def _lset(self, m: Applier, args: list[bytes]) -> Status:
        """LSET key index element: the key is looked at before the index is read."""
        key = args[1]
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            raise ValueError("no such key")
        index = parse_int(args[2])
        if index < 0:
            index += len(lst)
        if not 0 <= index < len(lst):
            raise ValueError("index out of range")
        lst[index] = args[3]
        self._touched.append(key)
        self._after_write(m, now)
        return OK

    def _linsert(self, m: Applier, args: list[bytes]) -> int:
        """LINSERT key BEFORE|AFTER pivot element: the new length, -1 without the pivot."""
        key = args[1]
        before = parse_before(args[2])
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            return self._untouched(m, key, now, 0)
        try:
            at = lst.index(args[3])
        except ValueError:
            self._after_write(m, now)
            return -1
        lst.insert(at if before else at + 1, args[4])
        self._touched.append(key)
        self._after_write(m, now)
        return len(lst)

    def _lrem(self, m: Applier, args: list[bytes]) -> int:
        """LREM key count element: how many were removed."""
        key = args[1]
        count = parse_int(args[2])
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            return self._untouched(m, key, now, 0)
        removed = remove_matches(lst, count, args[3])
        if removed:
            self._changed(m, key, lst, now)
        else:
            self._after_write(m, now)
        return removed

    def _ltrim(self, m: Applier, args: list[bytes]) -> Status:
        """LTRIM key start stop: a change for WATCH even when nothing is trimmed, as in Redis."""
        key = args[1]
        start, stop = parse_int(args[2]), parse_int(args[3])
        now = m.now_ns()
        lst = self._list_at(key, now)
        if lst is None:
            return self._untouched(m, key, now, OK)
        trim(lst, start, stop)
        self._changed(m, key, lst, now)
        return OK

    # -- reads -------------------------------------------------------------------------

    def _llen(self, m: Applier, args: list[bytes]) -> int:
        if len(args) != 2:
            raise ErrWrongNumberOfArguments()
        lst = self._read_list(m, args[1])
        return 0 if lst is None else len(lst)

    def _lrange(self, m: Applier, args: list[bytes]) -> list[bytes]:
        if len(args) != 4:
            raise ErrWrongNumberOfArguments()
        start, stop = parse_int(args[2]), parse_int(args[3])
        lst = self._read_list(m, args[1])
        if lst is None:
            return []
        size = len(lst)
        if start < 0:
            start = max(start + size, 0)
        if stop < 0:
            stop += size
        stop = min(stop, size - 1)
        if start > stop:
            return []
        if start <= size - 1 - stop:
            return list(islice(lst, start, stop + 1))
        # Nearer the right end: walk from there.
        out = list(islice(reversed(lst), size - 1 - stop, size - start))
        out.reverse()
        return out

    def _lindex(self, m: Applier, args: list[bytes]) -> bytes | None:
        """LINDEX key index: nil for a missing key whatever the index, as in Redis."""
        if len(args) != 3:
            raise ErrWrongNumberOfArguments()
        lst = self._read_list(m, args[1])
        if lst is None:
            return None
        index = parse_int(args[2])
        if index < 0:
            index += len(lst)
        return lst[index] if 0 <= index < len(lst) else None

    def _lpos(self, m: Applier, args: list[bytes]) -> int | list[int] | None:
        """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]."""
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        rank, count, maxlen = parse_lpos(args)
        lst = self._read_list(m, args[1])
        if lst is None:
            return None if count is None else []
        return lpos(lst, args[2], rank, count, maxlen)

    # -- blocking ----------------------------------------------------------------------

    def _blpop(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        return self._bpop(m, conn, cmd, True)

    def _brpop(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        return self._bpop(m, conn, cmd, False)

    def _bpop(self, m: Applier, conn: Conn | None, cmd: Command, left: bool) -> Any:
        """BLPOP/BRPOP key [key ...] timeout: ``[key, element]`` from the first non-empty list."""
        args = cmd.args
        if len(args) < 3:
            raise ErrWrongNumberOfArguments()
        timeout_ms = parse_timeout(args[-1])
        keys = args[1:-1]

        def mutate() -> list[bytes]:
            now = m.now_ns()
            found = self._waited_object(m, keys, now, deque)
            if found is None:
                raise Block(keys, timeout_ms, NULL_ARRAY)
            key, lst = found
            item = lst.popleft() if left else lst.pop()
            if lst:
                self._touched.append(key)
            else:
                self._delete(key)
            self._after_write(m, now)
            return [key, item]

        return m.blocking(conn, cmd, mutate, None)

    def _blmove(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout."""
        args = cmd.args
        if len(args) != 6:
            raise ErrWrongNumberOfArguments()
        from_left, to_left = parse_side(args[3]), parse_side(args[4])
        return self._blocking_move(m, conn, cmd, from_left, to_left, parse_timeout(args[5]))

    def _brpoplpush(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """BRPOPLPUSH source destination timeout: BLMOVE source destination RIGHT LEFT."""
        if len(cmd.args) != 4:
            raise ErrWrongNumberOfArguments()
        return self._blocking_move(m, conn, cmd, False, True, parse_timeout(cmd.args[3]))

    def _blocking_move(
        self,
        m: Applier,
        conn: Conn | None,
        cmd: Command,
        from_left: bool,
        to_left: bool,
        timeout_ms: int,
    ) -> Any:
        src, dst = cmd.args[1], cmd.args[2]

        def mutate() -> bytes:
            now = m.now_ns()
            item = self._move(src, dst, from_left, to_left, now)
            if item is None:
                # Redis answers a null array at the timeout, a nil inside MULTI.
                raise Block([src], timeout_ms, NULL_ARRAY, multi_reply=None)
            m.key_ready(dst)
            self._after_write(m, now)
            return item

        return m.blocking(conn, cmd, mutate, None)

    def _blmpop(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].

        The timeout is read after the rest, as Redis does.
        """
        args = cmd.args
        if len(args) < 5:
            raise ErrWrongNumberOfArguments()
        keys, left, count = parse_mpop(args, 2)
        timeout_ms = parse_timeout(args[1])

        def mutate() -> list[Any]:
            now = m.now_ns()
            found = self._waited_object(m, keys, now, deque)
            if found is None:
                raise Block(keys, timeout_ms, NULL_ARRAY)
            return self._pop_many(m, *found, left, count, now)

        return m.blocking(conn, cmd, mutate, None)


# -- checks run before a write is logged ---------------------------------------------------


def _check_push(args: list[bytes]) -> None:
    if len(args) < 3:
        raise ErrWrongNumberOfArguments()


def _check_pop(args: list[bytes]) -> None:
    if not 2 <= len(args) <= 3:
        raise ErrWrongNumberOfArguments()
    if len(args) == 3:
        parse_count(args[2])


def _check_lmove(args: list[bytes]) -> None:
    if len(args) != 5:
        raise ErrWrongNumberOfArguments()
    parse_side(args[3])
    parse_side(args[4])


def _check_rpoplpush(args: list[bytes]) -> None:
    if len(args) != 3:
        raise ErrWrongNumberOfArguments()


def _check_lset(args: list[bytes]) -> None:
    if len(args) != 4:
        raise ErrWrongNumberOfArguments()
