"""What ``COMMAND`` says of the clone's commands: Redis 7.0's own entries.

Generated from a real redis-server by ``scripts/gen_command_table.py`` (the
list of names in :data:`REDIS_TABLE`, each ``name arity flags first last
step``); :func:`command_table` keeps the ones the clone serves, so that
cluster clients and ``COMMAND INFO`` see the clone as they would see Redis.
Regenerate it when the clone gains a command (``tests/differential``
compares it with redis-server's).
"""

from __future__ import annotations

from collections.abc import Iterable

from redraft.machine import CommandSpec

__all__ = ["REDIS_TABLE", "command_table"]

REDIS_TABLE = """
get 2 readonly,fast 1 1 1
set -3 write,denyoom 1 1 1
del -2 write 1 -1 1
keys 2 readonly 0 0 0
exists -2 readonly,fast 1 -1 1
mget -2 readonly,fast 1 -1 1
mset -3 write,denyoom 1 -1 2
incr 2 write,denyoom,fast 1 1 1
incrby 3 write,denyoom,fast 1 1 1
decr 2 write,denyoom,fast 1 1 1
decrby 3 write,denyoom,fast 1 1 1
append 3 write,denyoom,fast 1 1 1
strlen 2 readonly,fast 1 1 1
getset 3 write,denyoom,fast 1 1 1
setnx 3 write,denyoom,fast 1 1 1
expire -3 write,fast 1 1 1
pexpire -3 write,fast 1 1 1
expireat -3 write,fast 1 1 1
pexpireat -3 write,fast 1 1 1
ttl 2 readonly,fast 1 1 1
pttl 2 readonly,fast 1 1 1
persist 2 write,fast 1 1 1
dbsize 1 readonly,fast 0 0 0
flushdb -1 write 0 0 0
flushall -1 write 0 0 0
type 2 readonly,fast 1 1 1
scan -2 readonly 0 0 0
setex 4 write,denyoom 1 1 1
psetex 4 write,denyoom 1 1 1
setrange 4 write,denyoom 1 1 1
getrange 4 readonly 1 1 1
substr 4 readonly 1 1 1
getdel 2 write,fast 1 1 1
getex -2 write,fast 1 1 1
incrbyfloat 3 write,denyoom,fast 1 1 1
msetnx -3 write,denyoom 1 -1 2
lcs -3 readonly 1 2 1
rename 3 write 1 2 1
renamenx 3 write,fast 1 2 1
copy -3 write,denyoom 1 2 1
touch -2 readonly,fast 1 -1 1
unlink -2 write,fast 1 -1 1
randomkey 1 readonly 0 0 0
object -2 - 0 0 0
expiretime 2 readonly,fast 1 1 1
pexpiretime 2 readonly,fast 1 1 1
hset -4 write,denyoom,fast 1 1 1
hsetnx 4 write,denyoom,fast 1 1 1
hget 3 readonly,fast 1 1 1
hmget -3 readonly,fast 1 1 1
hmset -4 write,denyoom,fast 1 1 1
hdel -3 write,fast 1 1 1
hexists 3 readonly,fast 1 1 1
hlen 2 readonly,fast 1 1 1
hstrlen 3 readonly,fast 1 1 1
hkeys 2 readonly 1 1 1
hvals 2 readonly 1 1 1
hgetall 2 readonly 1 1 1
hincrby 4 write,denyoom,fast 1 1 1
hincrbyfloat 4 write,denyoom,fast 1 1 1
hrandfield -2 readonly 1 1 1
hscan -3 readonly 1 1 1
lpush -3 write,denyoom,fast 1 1 1
rpush -3 write,denyoom,fast 1 1 1
lpop -2 write,fast 1 1 1
rpop -2 write,fast 1 1 1
llen 2 readonly,fast 1 1 1
lrange 4 readonly 1 1 1
lmove 5 write,denyoom 1 2 1
blpop -3 write,noscript,blocking 1 -2 1
brpop -3 write,noscript,blocking 1 -2 1
blmove 6 write,denyoom,noscript,blocking 1 2 1
lindex 3 readonly 1 1 1
lset 4 write,denyoom 1 1 1
linsert 5 write,denyoom 1 1 1
lrem 4 write 1 1 1
ltrim 4 write 1 1 1
lpos -3 readonly 1 1 1
lpushx -3 write,denyoom,fast 1 1 1
rpushx -3 write,denyoom,fast 1 1 1
rpoplpush 3 write,denyoom 1 2 1
brpoplpush 4 write,denyoom,noscript,blocking 1 2 1
lmpop -4 write,movablekeys 0 0 0
blmpop -5 write,blocking,movablekeys 0 0 0
sadd -3 write,denyoom,fast 1 1 1
srem -3 write,fast 1 1 1
smembers 2 readonly 1 1 1
sismember 3 readonly,fast 1 1 1
smismember -3 readonly,fast 1 1 1
scard 2 readonly,fast 1 1 1
spop -2 write,fast 1 1 1
srandmember -2 readonly 1 1 1
smove 4 write,fast 1 2 1
sinter -2 readonly 1 -1 1
sintercard -3 readonly,movablekeys 0 0 0
sinterstore -3 write,denyoom 1 -1 1
sunion -2 readonly 1 -1 1
sunionstore -3 write,denyoom 1 -1 1
sdiff -2 readonly 1 -1 1
sdiffstore -3 write,denyoom 1 -1 1
sscan -3 readonly 1 1 1
zadd -4 write,denyoom,fast 1 1 1
zincrby 4 write,denyoom,fast 1 1 1
zrem -3 write,fast 1 1 1
zcard 2 readonly,fast 1 1 1
zscore 3 readonly,fast 1 1 1
zmscore -3 readonly,fast 1 1 1
zrank 3 readonly,fast 1 1 1
zrevrank 3 readonly,fast 1 1 1
zcount 4 readonly,fast 1 1 1
zlexcount 4 readonly,fast 1 1 1
zrange -4 readonly 1 1 1
zrangebyscore -4 readonly 1 1 1
zrevrangebyscore -4 readonly 1 1 1
zrangebylex -4 readonly 1 1 1
zrevrangebylex -4 readonly 1 1 1
zrevrange -4 readonly 1 1 1
zrangestore -5 write,denyoom 1 2 1
zremrangebyrank 4 write 1 1 1
zremrangebyscore 4 write 1 1 1
zremrangebylex 4 write 1 1 1
zpopmin -2 write,fast 1 1 1
zpopmax -2 write,fast 1 1 1
bzpopmin -3 write,noscript,blocking,fast 1 -2 1
bzpopmax -3 write,noscript,blocking,fast 1 -2 1
zmpop -4 write,movablekeys 0 0 0
bzmpop -5 write,blocking,movablekeys 0 0 0
zrandmember -2 readonly 1 1 1
zunion -3 readonly,movablekeys 0 0 0
zinter -3 readonly,movablekeys 0 0 0
zdiff -3 readonly,movablekeys 0 0 0
zunionstore -4 write,denyoom,movablekeys 1 1 1
zinterstore -4 write,denyoom,movablekeys 1 1 1
zdiffstore -4 write,denyoom,movablekeys 1 1 1
zintercard -3 readonly,movablekeys 0 0 0
zscan -3 readonly 1 1 1
time 1 loading,stale,fast 0 0 0
memory -2 - 0 0 0
"""


def _parse(text: str) -> dict[str, CommandSpec]:
    specs: dict[str, CommandSpec] = {}
    for line in text.split("\n"):
        if not line:
            continue
        name, arity, flags, first, last, step = line.split()
        names = () if flags == "-" else tuple(flags.split(","))
        specs[name] = CommandSpec(int(arity), names, int(first), int(last), int(step))
    return specs


_SPECS = _parse(REDIS_TABLE)


def command_table(served: Iterable[str]) -> dict[str, CommandSpec]:
    """The entries of the commands in ``served`` (lower-case names) that Redis has."""
    return {name: _SPECS[name] for name in served if name in _SPECS}
