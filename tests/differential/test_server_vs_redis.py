"""CONFIG GET and RESETSTAT, TIME, MEMORY, INFO, CLIENT and the scan cursors against a real
redis-server 7.0.

Byte for byte wherever the clone can answer as Redis does: CONFIG GET of a
parameter redraft lacks (a map in RESP3), every error and the help texts,
the text replies Redis sends as RESP3 verbatim strings (``=N txt:...``:
MEMORY DOCTOR, INFO's sections both servers share).
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
CONFIG RESETSTAT
CONFIG resetstat
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


def test_memory_doctor_is_a_verbatim_string_in_resp3(differ: Differ, differ3: Differ) -> None:
    doctor = differ3.check("MEMORY", "DOCTOR")
    assert doctor.startswith(b"=272\r\ntxt:Hi Sam, this instance is empty")
    assert differ.check("MEMORY", "doctor") == b"$268\r\n" + doctor[len(b"=272\r\ntxt:") :]
    run_script(differ3, MEMORY_SCRIPT)
    differ3.reset()  # empty again (the script wrote a key)
    # In a transaction's array too.
    for d in (differ, differ3):
        for command in ("MULTI", "MEMORY DOCTOR", "PING", "EXEC"):
            d.check(*command.split())


def test_memory_malloc_stats_is_what_redis_without_jemalloc_answers(
    differ: Differ, differ3: Differ
) -> None:
    """A bulk string in both protocols (Redis sends a verbatim string only for jemalloc's
    report, which the redis-server here has and the clone has not)."""
    stats = b"$45\r\nStats not supported for the current allocator\r\n"
    for d, kind in ((differ, b"$"), (differ3, b"=")):
        theirs, ours = d.both("MEMORY", "MALLOC-STATS")
        assert ours == stats
        assert theirs.startswith(kind)


# -- INFO and CLIENT: verbatim strings in RESP3 -----------------------------------------------

INFO_SCRIPT = """
INFO keyspace
INFO cluster
INFO cluster keyspace
INFO KEYSPACE Cluster
SET k v
INFO keyspace
INFO cluster keyspace
MULTI
INFO keyspace
EXEC
"""
"""INFO's sections whose every field both servers print alike (the standalone clone)."""


def test_info_sections_match_byte_for_byte(differ: Differ, differ3: Differ) -> None:
    assert differ3.check("INFO", "keyspace") == b"=16\r\ntxt:# Keyspace\r\n\r\n"
    both = differ3.check("INFO", "cluster", "keyspace")  # a blank line between sections
    assert both == b"=48\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\n\r\n"
    run_script(differ3, INFO_SCRIPT)
    differ.reset()
    run_script(differ, INFO_SCRIPT)


def test_whole_info_and_client_texts_take_each_protocols_form(
    differ: Differ, differ3: Differ
) -> None:
    """Their fields are each server's own: the type, the format and the line ends are compared."""
    for command in (("INFO",), ("INFO", "server"), ("CLIENT", "INFO"), ("CLIENT", "LIST")):
        for d, kind in ((differ, b"$"), (differ3, b"=")):
            for reply in d.both(*command):
                head, body = reply.split(b"\r\n", 1)
                assert head[:1] == kind and int(head[1:]) == len(body) - 2, (command, reply)
                text = body[4:-2] if kind == b"=" else body[:-2]
                assert body[:4] == b"txt:" or kind == b"$"
                if command[0] == "CLIENT":
                    assert text.startswith(b"id=") and text.endswith(b"\n"), (command, reply)
                else:
                    assert text.startswith(b"# Server\r\n") and text.endswith(b"\r\n")
                    assert b"\r\n\r\n# " in text or command == ("INFO", "server")


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
