"""A Redis clone: the flagship redraft machine.

It keeps one database of typed keys (strings, lists, hashes, sets and
sorted sets) and speaks these commands with Redis 7.0's replies and error
texts (``WRONGTYPE`` on a key of the wrong type included), checked byte for
byte against a real redis-server by ``tests/differential``:

* strings (:mod:`.strings`, :mod:`.string_float`, :mod:`.string_lcs`): GET,
  SET (EX, PX, EXAT, PXAT, NX, XX, GET, KEEPTTL), SETEX, PSETEX, SETNX, MGET,
  MSET, MSETNX, GETSET, GETDEL, GETEX, GETRANGE, SUBSTR, SETRANGE, APPEND,
  STRLEN, INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT, LCS;
* lists (:mod:`.lists`, :mod:`.list_ops`): LPUSH, RPUSH, LPUSHX, RPUSHX,
  LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE,
  RPOPLPUSH, LMPOP and the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP;
* hashes (:mod:`.hashes`, :mod:`.hash_ops`): HSET, HSETNX, HMSET, HGET,
  HMGET, HDEL, HEXISTS, HLEN, HSTRLEN, HKEYS, HVALS, HGETALL, HINCRBY,
  HINCRBYFLOAT, HRANDFIELD, HSCAN;
* sets (:mod:`.sets`, :mod:`.set_ops`): SADD, SREM, SMEMBERS, SISMEMBER,
  SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER, SINTERCARD,
  SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE, SSCAN;
* sorted sets (:mod:`.zsets`, :mod:`.zset_ops`, :mod:`.zset_args`, on the
  structure of :mod:`.zset`): ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE,
  ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZRANGE and its older forms,
  ZRANGESTORE, ZREMRANGEBYRANK/SCORE/LEX, ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER,
  ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD, ZSCAN and the
  blocking BZPOPMIN, BZPOPMAX, BZMPOP;
* the keyspace (:mod:`.keys`, :mod:`.key_object`, :mod:`.key_memory`): DEL,
  UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX, COPY, RANDOMKEY, OBJECT,
  MEMORY, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (each with NX, XX, GT, LT),
  EXPIRETIME, PEXPIRETIME, TTL, PTTL, PERSIST, KEYS, SCAN, DBSIZE, FLUSHDB,
  FLUSHALL, and the ``Keyspace`` section of INFO;
* TIME, a read of the clock of the node asked (never logged);
* WATCH (with redraft's MULTI/EXEC), through :meth:`Clone.watch` and
  :meth:`Clone.watch_changed`: EXEC aborts exactly when Redis's would;
* COMMAND, from :mod:`.commands` (Redis's own entries).

The modules: :mod:`.keyspace` holds the state every command works on (the
typed values, their expiries, the expiry heap, the WATCH log) and the
helpers the command families share; the families are mixins over it;
:mod:`.scanning` holds SCAN's cursors, :mod:`.parsing` Redis's argument
rules and error texts, :mod:`.snapshot` the snapshot format; :mod:`.machine`
puts them together as :class:`Clone`.

How a redraft machine is written, as this one shows:

* ``command`` checks the arguments first and raises for anything malformed,
  so a bad request never reaches the log.
* A write passes ``mutate``: it runs once per node when the entry is applied,
  reads the time only through ``m.now_ns()`` (the leader's stamp) and leaves
  the state untouched when it raises.  Its return value is the reply.  The
  hot writes (SET, the list pushes and pops, LMOVE) are declared in
  :meth:`Clone.writes` instead: a check run before the log and a function
  applied on every node, the fast way.
* A read looks at the state and never changes it.  The plain ones (GET,
  MGET, EXISTS, LRANGE, ...) are declared in :meth:`Clone.reads`, functions
  of the arguments that redraft calls at the configured consistency, which
  is the fast way; KEYS and SCAN show the general form, ``m.apply`` with
  ``mutate=None`` and a ``respond``.
* A blocking command (BLPOP) passes ``mutate`` to ``m.blocking``; it raises
  :class:`~redraft.machine.Block` while there is nothing to pop, and every
  write that makes a list non-empty calls ``m.key_ready(key)``; tried again,
  it pops from the key made ready first (``m.woken_by()``), as Redis 7.0 does.

Types.  A string is ``bytes``, a list a ``collections.deque`` (pushes and
pops at either end in O(1)), a hash a ``dict``, a set a ``set``, a sorted
set a :class:`~.zset.ZSet` (a dict of scores and a sorted list of
``(score, member)``: ranges in O(log n + k)); an empty container is never
stored.

Expiry.  A key carries an absolute expiry in nanoseconds since the epoch,
computed in ``mutate`` from the entry's time stamp, so every node agrees on
it.  A key whose expiry is at or before "now" is gone for every command;
reads skip it, writes that touch it delete it first.  Expired keys leave
memory without waiting for a client: the machine defines redraft's
replicated tick (:meth:`Clone.tick`), which deletes up to
:data:`ACTIVE_EXPIRE_KEYS` expired keys per tick, the earliest expiries
first, at the tick entry's time, and asks for the next tick
(:meth:`Clone.wants_tick`) only while some key is due (or the WATCH log
wants trimming), so an idle cluster logs nothing.  It is Redis's active
expiry without the sampling: the expiry heap finds the due keys directly,
and a backlog larger than one tick's bound is worked off tick after tick.
Every write also deletes up to :data:`PURGE_BATCH` expired keys the same
way.  Every node does the same at the same log position, so their states
stay identical.  Expiry times are int64 nanoseconds (up to the year 2262); a
later one is refused as an invalid expire time, as Redis refuses times past
its int64 milliseconds.

WATCH.  Every write appends the keys it changed to a replicated log (see
:mod:`.keyspace`); a WATCH token is a position in that log, and EXEC looks
for the key after it, so any write to a watched key (even one that leaves
the same value), its deletion, its expiry and a FLUSHDB/FLUSHALL of an
existing key abort the transaction, and nothing else does.  The log keeps
at least :data:`~.keyspace.WATCH_WINDOW` (65,536) writes; a WATCH older than
that aborts its EXEC (errs towards aborting, as Redis's contract allows).
A plain SET pays one append for it.

INFO.  :meth:`Clone.info` gives the ``Keyspace`` section as Redis prints it:
``db0:keys=N,expires=M,avg_ttl=0`` counting the keys stored (expired ones
not deleted yet included, as Redis counts them), and no line when there are
none.

Listing.  KEYS and SCAN list keys in insertion order; DBSIZE, KEYS and SCAN
leave out expired keys the purge has not reached yet.  SCAN's cursors are
node-local (see :mod:`.scanning`): at most :data:`MAX_OPEN_SCANS` stay open,
and an unknown cursor is answered ``ERR invalid cursor``.

Snapshots are two-phase: :meth:`Clone.snapshot` copies the dictionaries and
freezes the lists (a copy of what may change in place) on the event loop,
and the returned capture writes them later, in a worker thread, in a compact
binary form (:mod:`.snapshot`): the magic ``RDCLONE\\x02``, then a msgpack
stream: a header, arrays of about 64 KiB each holding ``key, value,
expiry`` triples laid end to end, then the WATCH log.  A snapshot of the
previous format (``RDCLONE\\x01``, strings only) still loads.
"""

from __future__ import annotations

from .keyspace import ACTIVE_EXPIRE_KEYS, PURGE_BATCH
from .machine import Clone
from .scanning import MAX_OPEN_SCANS
from .snapshot import SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_V1

__all__ = [
    "ACTIVE_EXPIRE_KEYS",
    "MAX_OPEN_SCANS",
    "PURGE_BATCH",
    "SNAPSHOT_MAGIC",
    "SNAPSHOT_MAGIC_V1",
    "Clone",
    "main",
]


def main(argv: list[str] | None = None) -> None:
    """``python -m redraft.examples.clone`` / ``redraft-clone``: serve a clone node."""
    from redraft.cli import main as serve_machine

    serve_machine(
        Clone,
        argv,
        prog="redraft-clone",
        description="A Redis clone replicated by Raft (redraft's example).",
    )
