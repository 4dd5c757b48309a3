"""COMMAND against a real redis-server: the clone describes every command it serves as Redis does."""

from __future__ import annotations

from typing import Any

import hiredis

from redraft.examples.clone import Clone
from tests.differential.harness import CloneServer, Conn, RedisServer


def parsed(conn: Conn, *args: str) -> Any:
    reader = hiredis.Reader()
    reader.feed(conn.call(*args))
    return reader.gets()


def served() -> list[str]:
    clone = Clone()
    names = {n.decode().lower() for n in clone._handlers} | set(clone.reads()) | set(clone.writes())
    return sorted(names)


def test_every_command_the_clone_serves_is_in_its_table() -> None:
    table = Clone().command_table()
    missing = [name for name in served() if name not in table]
    assert not missing, f"regenerate clone/commands.py (scripts/gen_command_table.py): {missing}"


def test_command_info_matches_redis(redis_server: RedisServer, clone_server: CloneServer) -> None:
    names = served()
    theirs_conn, ours_conn = Conn(redis_server.port), Conn(clone_server.port)
    try:
        theirs = parsed(theirs_conn, "COMMAND", "INFO", *names)
        ours = parsed(ours_conn, "COMMAND", "INFO", *names)
        assert [entry[:6] for entry in theirs] == ours
        table = parsed(ours_conn, "COMMAND")
        assert parsed(ours_conn, "COMMAND", "COUNT") == len(table)
        listed = {entry[0].decode() for entry in table}
        assert set(names) <= listed and {"multi", "exec", "watch", "ping"} <= listed
        assert parsed(ours_conn, "COMMAND", "INFO", "nosuch") == [None]
        for name in ("multi", "watch", "ping", "publish"):
            mine = parsed(ours_conn, "COMMAND", "INFO", name)[0]
            real = parsed(theirs_conn, "COMMAND", "INFO", name)[0]
            assert mine == real[:6], name
    finally:
        theirs_conn.close()
        ours_conn.close()
