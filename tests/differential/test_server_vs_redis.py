"""CONFIG GET, TIME, MEMORY and the scan cursors against a real redis-server 7.0.

Byte for byte wherever the clone can answer as Redis does: CONFIG GET of a
parameter redraft lacks (a map in RESP3), every error and the help texts.
Where the value is the server's own (TIME's clock, MEMORY USAGE's bytes),
the shape and the type of the reply are compared.  Scan cursors are read
as Redis reads them (C's ``strtoul``); the clone's cursors mean something
else than Redis's, so the scripts use cursors that mean "start" to both, or
containers both answer whole whatever the cursor.
"""

from __future__ import annotations

import time

import pytest

from tests.differential.harness import Differ
from tests.differential.test_more_vs_redis import run_script

pytestmark = pytest.mark.timeout(120)

# -- CONFIG ----------------------------------------------------------------------------------

CONFIG_SCRIPT = """
CONFIG GET no-such-parameter
CONFIG GET no-such-parameter nor-this
CONFIG get no-such-*
CONFIG GET
CONFIG
CONFIG foo
CONFIG foo bar
CONFIG HELP
CONFIG help x
CONFIG SET
CONFIG SET x
CONFIG RESETSTAT x
CONFIG REWRITE x
"""


def test_config_matches(differ: Differ) -> None:
    run_script(differ, CONFIG_SCRIPT)


def test_config_get_is_a_map_in_resp3(differ3: Differ) -> None:
    assert differ3.check("CONFIG", "GET", "no-such-parameter") == b"%0\r\n"
    run_script(differ3, CONFIG_SCRIPT)


# -- TIME ------------------------------------------------------------------------------------


def _time(reply: bytes) -> tuple[int, int]:
    """TIME's two bulk strings (seconds, microseconds), checked for shape."""
    head, seconds_len, seconds, micros_len, micros, tail = reply.split(b"\r\n")
    assert (head, tail) == (b"*2", b"")
    assert seconds_len == b"$%d" % len(seconds) and micros_len == b"$%d" % len(micros)
    assert seconds.isdigit() and micros.isdigit()
    assert str(int(micros)).encode() == micros  # no padding, as Redis prints them
    return int(seconds), int(micros)


def test_time_is_the_node_clock(differ: Differ, differ3: Differ) -> None:
    for d in (differ, differ3):
        before = time.time()
        theirs, ours = d.both("TIME")
        after = time.time()
        _time(theirs)
        seconds, micros = _time(ours)
        assert micros < 1_000_000
        assert before - 1 <= seconds + micros / 1e6 <= after + 1
        d.check("TIME", "x")


# -- MEMORY ----------------------------------------------------------------------------------

MEMORY_SCRIPT = """
MEMORY
MEMORY HELP
MEMORY help x
MEMORY USAGE
MEMORY USAGE nokey
MEMORY usage nokey samples 0
MEMORY USAGE nokey SAMPLES
MEMORY USAGE nokey SAMPLES x
MEMORY USAGE nokey SAMPLES -1
MEMORY USAGE nokey SAMPLES 01
MEMORY USAGE nokey FOO
MEMORY USAGE nokey SAMPLES 1 FOO
SET k v
MEMORY USAGE k SAMPLES
MEMORY USAGE k SAMPLES 5 x
MEMORY USAGE k SAMPLES +5
MEMORY USAGE k SAMPLES 99999999999999999999
MEMORY USAGE k FOO 1
MEMORY DOCTOR x
MEMORY MALLOC-STATS x
MEMORY PURGE
MEMORY PURGE x
MEMORY STATS x
MEMORY foo
MEMORY foo bar
"""


def test_memory_matches(differ: Differ) -> None:
    assert differ.check("MEMORY", "DOCTOR").startswith(b"$268\r\nHi Sam, this instance is empty")
    run_script(differ, MEMORY_SCRIPT)


def test_memory_usage_of_every_type_is_an_integer(differ: Differ) -> None:
    for command in (
        "SET str v",
        "SET int 12345",
        "SET long " + "x" * 100,
        "RPUSH list a b c",
        "HSET hash a 1 b 2",
        "SADD ints 1 2 3",
        "SADD set a b c",
        "ZADD zset 1 a 2 b",
    ):
        differ.check(*command.split())
    for key in ("str", "int", "long", "list", "hash", "ints", "set", "zset"):
        for options in ((), ("SAMPLES", "0"), ("SAMPLES", "1")):
            theirs, ours = differ.both("MEMORY", "USAGE", key, *options)
            assert theirs.startswith(b":") and ours.startswith(b":"), (key, theirs, ours)
            assert int(ours[1:-2]) > 0


def test_memory_usage_of_a_missing_key_is_null_in_resp3(differ3: Differ) -> None:
    assert differ3.check("MEMORY", "USAGE", "nokey") == b"_\r\n"
    differ3.check("MEMORY", "HELP")


# -- scan cursors ----------------------------------------------------------------------------

START = ["", "0", "00", "-0", "+0"]
"""Cursors Redis reads as 0: "start a scan" to both servers."""

ANY = ["5", "+5", "-1", "18446744073709551615", "-18446744073709551615"]
"""Other cursors Redis accepts: a container both answer whole is answered whole."""

REFUSED = [
    " 0",
    "0 ",
    "\t1",
    "0x1",
    "1.0",
    "1e3",
    "-",
    "+",
    "+-1",
    "--1",
    "- 1",
    "18446744073709551616",
    "-18446744073709551616",
    "99999999999999999999999",
    "abc",
    "\u0661",  # a digit, but not an ASCII one
]
"""Cursors Redis refuses with "invalid cursor"."""


def test_scan_cursors_are_read_as_redis_reads_them(differ: Differ) -> None:
    run_script(differ, "SET a 1\nHSET h f v\nSADD s 1 2\nZADD z 1 m")
    for cursor in START + REFUSED:
        differ.check("SCAN", cursor, "COUNT", 100)
    for command in ("HSCAN h", "SSCAN s", "ZSCAN z"):
        for cursor in START + ANY + REFUSED:
            differ.check(*command.split(), cursor)
        differ.check(*command.split(), "x", "COUNT", "0")  # the cursor is read first
    assert differ.check("SCAN", "x") == b"-ERR invalid cursor\r\n"


def test_a_nul_ends_the_cursor_as_in_c(differ: Differ) -> None:
    run_script(differ, "SET a 1\nHSET h f v")
    for cursor in (b"0\x00junk", b"\x00", b"\x001"):
        differ.check("SCAN", cursor)
        differ.check("HSCAN", "h", cursor)
