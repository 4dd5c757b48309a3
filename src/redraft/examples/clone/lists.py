"""List commands: LPUSH, RPUSH, LPOP, RPOP, LLEN, LRANGE, LMOVE, and the blocking
BLPOP, BRPOP and BLMOVE.

A list is a ``collections.deque`` of bytes: pushes and pops at both ends are
O(1), and LRANGE walks from the nearer end.  A list is never empty: the pop
that takes its last element deletes the key, as in Redis.

The non-blocking commands are plain reads and writes (the fast way).  The
blocking ones go through :meth:`~redraft.machine.Applier.blocking`: their
``mutate`` raises :class:`~redraft.machine.Block` (before changing anything)
while every key they wait on is empty, with the reply Redis gives at the
timeout, a null array; every write that makes a list non-empty (LPUSH,
RPUSH, LMOVE's destination) calls :meth:`~redraft.machine.Applier.key_ready`
so that a waiter is tried again.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from redraft.machine import (
    NULL_ARRAY,
    Applier,
    Block,
    Command,
    Conn,
    ErrWrongNumberOfArguments,
    Read,
    Write,
)

from .keyspace import Handler, Keyspace
from .parsing import parse_count, parse_int, parse_side, parse_timeout

__all__ = ["ListCommands"]


class ListCommands(Keyspace):
    """The list commands, over the shared keyspace."""

    def _list_handlers(self) -> dict[bytes, Handler]:
        return {b"blpop": self._blpop, b"brpop": self._brpop, b"blmove": self._blmove}

    def _list_reads(self) -> dict[str, Read]:
        return {"llen": self._llen, "lrange": self._lrange}

    def _list_writes(self) -> dict[str, Write]:
        return {
            "lpush": Write(self._lpush, _check_push),
            "rpush": Write(self._rpush, _check_push),
            "lpop": Write(self._lpop, _check_pop),
            "rpop": Write(self._rpop, _check_pop),
            "lmove": Write(self._lmove, _check_lmove),
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
        src, dst = args[1], args[2]
        from_left, to_left = parse_side(args[3]), parse_side(args[4])
        now = m.now_ns()
        item = self._move(src, dst, from_left, to_left, now)
        if item is None:
            self._drop_if_expired(src, now)
        else:
            m.key_ready(dst)
        self._after_write(m, now)
        return item

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
            for key in keys:
                lst = self._list_at(key, now)  # WRONGTYPE stops the scan, as in Redis
                if lst is not None:
                    item = lst.popleft() if left else lst.pop()
                    if lst:
                        self._touched.append(key)
                    else:
                        self._delete(key)
                    self._after_write(m, now)
                    return [key, item]
            raise Block(keys, timeout_ms, NULL_ARRAY)

        return m.blocking(conn, cmd, mutate, None)

    def _blmove(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout."""
        args = cmd.args
        if len(args) != 6:
            raise ErrWrongNumberOfArguments()
        src, dst = args[1], args[2]
        from_left, to_left = parse_side(args[3]), parse_side(args[4])
        timeout_ms = parse_timeout(args[5])

        def mutate() -> bytes:
            now = m.now_ns()
            item = self._move(src, dst, from_left, to_left, now)
            if item is None:
                # Redis answers a null array at BLMOVE's timeout, a nil inside MULTI.
                raise Block([src], timeout_ms, NULL_ARRAY, multi_reply=None)
            m.key_ready(dst)
            self._after_write(m, now)
            return item

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
