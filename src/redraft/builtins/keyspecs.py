"""COMMAND for Redis Cluster clients: where each command's keys are.

A cluster client routes a command by the slot of its keys, and some find
the keys from the server's ``COMMAND`` table (redis-py's ``RedisCluster``
refuses a command the table lacks).  The node does not know where a
machine's own commands take their keys, so in moved mode ``COMMAND`` lists

* Redis 7.0's commands that take keys at fixed positions, as Redis lists
  them (name, arity, flags, first key, last key, step): what a machine
  that speaks Redis's commands serves, routed as Redis clients expect;
* the machine's plain reads and writes not among them, with the key first
  (as ``MOVED`` assumes: :func:`redraft.keyslot.command_slot`);
* the built-ins, which take no keys.

Each entry has Redis 6's six fields (no ACL categories, tips, key specs
or subcommands; clients accept both forms).  Commands whose keys move
(``EVAL``, ``SORT``, ``ZUNIONSTORE``, ...) are left out: a client would ask
``COMMAND GETKEYS``, which redraft does not answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from redraft.machine import CommandSpec

_TABLE = """
append 3 write,denyoom,fast
bitcount -2 readonly
bitfield -2 write,denyoom
bitfield_ro -2 readonly,fast
bitop -4 write,denyoom 2 -1 1
bitpos -3 readonly
blmove 6 write,denyoom,noscript,blocking 1 2 1
blpop -3 write,noscript,blocking 1 -2 1
brpop -3 write,noscript,blocking 1 -2 1
brpoplpush 4 write,denyoom,noscript,blocking 1 2 1
bzpopmax -3 write,noscript,blocking,fast 1 -2 1
bzpopmin -3 write,noscript,blocking,fast 1 -2 1
copy -3 write,denyoom 1 2 1
decr 2 write,denyoom,fast
decrby 3 write,denyoom,fast
del -2 write 1 -1 1
dump 2 readonly
exists -2 readonly,fast 1 -1 1
expire -3 write,fast
expireat -3 write,fast
expiretime 2 readonly,fast
geoadd -5 write,denyoom
geodist -4 readonly
geohash -2 readonly
geopos -2 readonly
georadius_ro -6 readonly
georadiusbymember_ro -5 readonly
geosearch -7 readonly
geosearchstore -8 write,denyoom 1 2 1
get 2 readonly,fast
getbit 3 readonly,fast
getdel 2 write,fast
getex -2 write,fast
getrange 4 readonly
getset 3 write,denyoom,fast
hdel -3 write,fast
hexists 3 readonly,fast
hget 3 readonly,fast
hgetall 2 readonly
hincrby 4 write,denyoom,fast
hincrbyfloat 4 write,denyoom,fast
hkeys 2 readonly
hlen 2 readonly,fast
hmget -3 readonly,fast
hmset -4 write,denyoom,fast
hrandfield -2 readonly
hscan -3 readonly
hset -4 write,denyoom,fast
hsetnx 4 write,denyoom,fast
hstrlen 3 readonly,fast
hvals 2 readonly
incr 2 write,denyoom,fast
incrby 3 write,denyoom,fast
incrbyfloat 3 write,denyoom,fast
lcs -3 readonly 1 2 1
lindex 3 readonly
linsert 5 write,denyoom
llen 2 readonly,fast
lmove 5 write,denyoom 1 2 1
lpop -2 write,fast
lpos -3 readonly
lpush -3 write,denyoom,fast
lpushx -3 write,denyoom,fast
lrange 4 readonly
lrem 4 write
lset 4 write,denyoom
ltrim 4 write
mget -2 readonly,fast 1 -1 1
move 3 write,fast
mset -3 write,denyoom 1 -1 2
msetnx -3 write,denyoom 1 -1 2
persist 2 write,fast
pexpire -3 write,fast
pexpireat -3 write,fast
pexpiretime 2 readonly,fast
pfadd -2 write,denyoom,fast
pfcount -2 readonly 1 -1 1
pfdebug 3 write,denyoom,admin 2 2 1
pfmerge -2 write,denyoom 1 -1 1
psetex 4 write,denyoom
pttl 2 readonly,fast
rename 3 write 1 2 1
renamenx 3 write,fast 1 2 1
restore -4 write,denyoom
rpop -2 write,fast
rpoplpush 3 write,denyoom 1 2 1
rpush -3 write,denyoom,fast
rpushx -3 write,denyoom,fast
sadd -3 write,denyoom,fast
scard 2 readonly,fast
sdiff -2 readonly 1 -1 1
sdiffstore -3 write,denyoom 1 -1 1
set -3 write,denyoom
setbit 4 write,denyoom
setex 4 write,denyoom
setnx 3 write,denyoom,fast
setrange 4 write,denyoom
sinter -2 readonly 1 -1 1
sinterstore -3 write,denyoom 1 -1 1
sismember 3 readonly,fast
smembers 2 readonly
smismember -3 readonly,fast
smove 4 write,fast 1 2 1
spop -2 write,fast
srandmember -2 readonly
srem -3 write,fast
sscan -3 readonly
strlen 2 readonly,fast
substr 4 readonly
sunion -2 readonly 1 -1 1
sunionstore -3 write,denyoom 1 -1 1
touch -2 readonly,fast 1 -1 1
ttl 2 readonly,fast
type 2 readonly,fast
unlink -2 write,fast 1 -1 1
xack -4 write,fast
xadd -5 write,denyoom,fast
xautoclaim -6 write,fast
xclaim -6 write,fast
xdel -3 write,fast
xlen 2 readonly,fast
xpending -3 readonly
xrange -4 readonly
xrevrange -4 readonly
xsetid -3 write,denyoom,fast
xtrim -4 write
zadd -4 write,denyoom,fast
zcard 2 readonly,fast
zcount 4 readonly,fast
zincrby 4 write,denyoom,fast
zlexcount 4 readonly,fast
zmscore -3 readonly,fast
zpopmax -2 write,fast
zpopmin -2 write,fast
zrandmember -2 readonly
zrange -4 readonly
zrangebylex -4 readonly
zrangebyscore -4 readonly
zrangestore -5 write,denyoom 1 2 1
zrank 3 readonly,fast
zrem -3 write,fast
zremrangebylex 4 write
zremrangebyrank 4 write
zremrangebyscore 4 write
zrevrange -4 readonly
zrevrangebylex -4 readonly
zrevrangebyscore -4 readonly
zrevrank 3 readonly,fast
zscan -3 readonly
zscore 3 readonly,fast
"""
"""``name arity flags [first last step]`` (Redis 7.0's ``COMMAND``); positions 1 1 1 when left out."""


_BUILTINS = """
auth -2 noscript,loading,stale,fast,no_auth,allow_busy 0 0 0
ping -1 fast 0 0 0
echo 2 loading,stale,fast 0 0 0
quit -1 noscript,loading,stale,fast,no_auth,allow_busy 0 0 0
reset 1 noscript,loading,stale,fast,no_auth,allow_busy 0 0 0
select 2 loading,stale,fast 0 0 0
hello -1 noscript,loading,stale,fast,no_auth,allow_busy 0 0 0
client -2 - 0 0 0
command -1 loading,stale 0 0 0
config -2 - 0 0 0
info -1 loading,stale 0 0 0
subscribe -2 pubsub,noscript,loading,stale 0 0 0
unsubscribe -1 pubsub,noscript,loading,stale 0 0 0
psubscribe -2 pubsub,noscript,loading,stale 0 0 0
punsubscribe -1 pubsub,noscript,loading,stale 0 0 0
ssubscribe -2 pubsub,noscript,loading,stale 1 -1 1
sunsubscribe -1 pubsub,noscript,loading,stale 1 -1 1
publish 3 pubsub,loading,stale,fast 0 0 0
spublish 3 pubsub,loading,stale,fast 1 1 1
pubsub -2 - 0 0 0
cluster -2 - 0 0 0
readonly 1 loading,stale,fast 0 0 0
readwrite 1 loading,stale,fast 0 0 0
asking 1 fast 0 0 0
multi 1 noscript,loading,stale,fast,allow_busy 0 0 0
exec 1 noscript,loading,stale,skip_slowlog 0 0 0
discard 1 noscript,loading,stale,fast,allow_busy 0 0 0
watch -2 noscript,loading,stale,fast,allow_busy 1 -1 1
unwatch 1 noscript,loading,stale,fast,allow_busy 0 0 0
"""
"""The built-ins Redis has too, as Redis 7.0 describes them (``scripts/gen_command_table.py``);
the others (``RAFT*``) take any number of arguments and no keys."""


def _parse(table: str) -> dict[bytes, list[Any]]:
    entries: dict[bytes, list[Any]] = {}
    for line in table.split("\n"):
        if not line:
            continue
        name, arity, flags, *positions = line.split()
        first, last, step = (int(p) for p in positions) if positions else (1, 1, 1)
        names = [] if flags == "-" else [f.encode() for f in flags.split(",")]
        entries[name.encode()] = [name.encode(), int(arity), names, first, last, step]
    return entries


REDIS_COMMANDS = _parse(_TABLE)
"""Redis's keyed commands, by lower-case name: their ``COMMAND`` entries."""

BUILTIN_COMMANDS = _parse(_BUILTINS)


def entry(name: bytes, spec: CommandSpec) -> list[Any]:
    """A ``COMMAND`` entry (Redis 6's six fields) from a machine's :class:`CommandSpec`."""
    flags = [f.encode() for f in spec.flags]
    return [name, spec.arity, flags, spec.first_key, spec.last_key, spec.step]


def table(
    builtins: Iterable[bytes],
    plain: Mapping[bytes, bool],
    specs: Mapping[str, CommandSpec],
    moved: bool,
) -> dict[bytes, list[Any]]:
    """Every ``COMMAND`` entry of a node.

    ``builtins`` by name; ``plain``, the machine's plain commands (name ->
    is a write); ``specs``, the machine's own table (``Machine.command_table``),
    which wins; without one, in moved mode (``moved``), Redis's keyed commands.
    """
    entries = {name: BUILTIN_COMMANDS.get(name, [name, -1, [], 0, 0, 0]) for name in builtins}
    for name, write in plain.items():
        if name not in REDIS_COMMANDS:
            entries[name] = [name, -2, [b"write" if write else b"readonly"], 1, 1, 1]
    if specs:
        for text, spec in specs.items():
            name = text.lower().encode()
            entries[name] = entry(name, spec)
    elif moved:
        entries.update(REDIS_COMMANDS)
    return dict(sorted(entries.items()))


__all__ = ["BUILTIN_COMMANDS", "REDIS_COMMANDS", "entry", "table"]
