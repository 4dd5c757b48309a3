"""Tests of the RESP2 codec: request parsing, reply encoding, client side."""

from __future__ import annotations

import enum
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from redraft import resp
from redraft.machine import (
    NULL_ARRAY,
    OK,
    Double,
    ErrUnknownCommand,
    ErrWrongNumberOfArguments,
    Pairs,
    Status,
    Verbatim,
)
from redraft.resp import (
    NULL_BULK,
    OK_REPLY,
    ErrorReply,
    ProtocolError,
    ReplyParser,
    RequestParser,
    encode,
    encode3,
    encode3_into,
    encode_command,
    encode_error,
    encode_into,
    encode_many,
    format_float,
    split_inline,
)
from redraft.testing import free_ports

pytestmark = pytest.mark.timeout(60)


def parse_in_pieces(data: bytes, step: int, **limits: int) -> list[list[bytes]]:
    parser = RequestParser(**limits)
    out: list[list[bytes]] = []
    for i in range(0, len(data), step):
        out += parser.parse(data[i : i + step])
    return out


def parse_error(data: bytes, **limits: int) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        RequestParser(**limits).parse(data)
    return info.value


def cmd(*args: bytes) -> bytes:
    return encode_command(list(args))


SET = cmd(b"SET", b"key:000123", b"xxx")

# A stream mixing every kind of request the parser must cope with.
MIXED = b"".join(
    [
        SET,
        cmd(b"GET", b"key:000123"),
        b"PING\r\n",
        b'set "a b" \'c\\\'d\' "\\x41\\n"\r\n',
        SET,
        b"\r\n",  # blank inline line: no command
        b"  \t \n",
        b"*0\r\n",  # empty multibulk: ignored
        b"*-1\r\n",
        b"ECHO hi\n",  # inline ended by LF alone
        cmd(b"SET", b"bin", b"a\r\nb\r\n*1\r\n$3\r\n\x00\xff"),
        cmd(b"SET", b"empty", b""),
        b"+PING\r\n",  # not '*': inline, as Redis does
        b":1\r\n",
        b"$3\r\n",
        cmd(b"SET", b"big", b"v" * 3000),
        b"*1\r\n$4\r\nPINGXY",  # Redis skips the 2 bytes after a bulk unchecked
        cmd(b"MSET", *[b"k%d" % i for i in range(300)]),
        b"~1\r\n",  # RESP3 type byte at the start of a request: inline
        SET * 20,
    ]
)

MIXED_COMMANDS = [
    [b"SET", b"key:000123", b"xxx"],
    [b"GET", b"key:000123"],
    [b"PING"],
    [b"set", b"a b", b"c'd", b"A\n"],
    [b"SET", b"key:000123", b"xxx"],
    [b"ECHO", b"hi"],
    [b"SET", b"bin", b"a\r\nb\r\n*1\r\n$3\r\n\x00\xff"],
    [b"SET", b"empty", b""],
    [b"+PING"],
    [b":1"],
    [b"$3"],
    [b"SET", b"big", b"v" * 3000],
    [b"PING"],
    [b"MSET", *[b"k%d" % i for i in range(300)]],
    [b"~1"],
    *[[b"SET", b"key:000123", b"xxx"]] * 20,
]


# --- multibulk requests -------------------------------------------------------


def test_single_multibulk_request() -> None:
    assert RequestParser().parse(SET) == [[b"SET", b"key:000123", b"xxx"]]


def _outcome(feed: Iterator[bytes]) -> object:
    """What a fresh parser makes of the reads: the commands, or the error text."""
    parser = RequestParser()
    out: list[list[bytes]] = []
    try:
        for data in feed:
            out += parser.parse(data)
    except ProtocolError as exc:
        return ("error", str(exc), exc.commands)
    return out


@pytest.mark.parametrize(
    "data",
    [
        cmd(b"GET", b"key:__rand_int__"),
        cmd(b"SET", b"k", b"a\r\nb"),  # a CRLF inside an argument
        cmd(b"SET", b"k", b""),
        cmd(b"PING"),
        cmd(b"", b"x"),
        b"*2\r\n$3\r\nGET\r\n$03\r\nabc\r\n",  # a length with a leading zero
        b"*2\r\n$3\r\nGET\r\n$+3\r\nabc\r\n",
        b"*02\r\n$3\r\nGET\r\n$3\r\nabc\r\n",
        b"*3\r\n$3\r\nGET\r\n$3\r\nabc\r\n",  # an argument short: incomplete
        b"*1\r\n$4\r\nPING\r\nX",  # the start of an inline request after it
        b"*1\r\n$4\r\nPING\r\n\r\n",
        b"*1\r\n$5\r\nPING\r\n\r\n",  # a length that does not match
    ],
)
def test_a_read_of_one_request_parses_as_it_would_byte_by_byte(data: bytes) -> None:
    # Whole, such a read may take the one-request path; byte by byte it never does.
    assert _outcome(iter([data])) == _outcome(data[i : i + 1] for i in range(len(data)))


def test_pipelined_requests_come_back_in_order() -> None:
    data = b"".join(cmd(b"SET", b"k%d" % i, b"v%d" % i) for i in range(100))
    assert RequestParser().parse(data) == [[b"SET", b"k%d" % i, b"v%d" % i] for i in range(100)]


def test_arguments_may_hold_any_bytes() -> None:
    arg = bytes(range(256)) + b"\r\n\r\n*3\r\n$1\r\n"
    assert RequestParser().parse(cmd(b"SET", arg, b"")) == [[b"SET", arg, b""]]


def test_commands_are_lists_of_bytes() -> None:
    [command] = RequestParser().parse(bytearray(SET))  # type: ignore[arg-type]
    assert type(command) is list
    assert all(type(a) is bytes for a in command)


def test_mixed_stream_parses_whole() -> None:
    assert RequestParser().parse(MIXED) == MIXED_COMMANDS


def test_mixed_stream_fed_one_byte_at_a_time() -> None:
    assert parse_in_pieces(MIXED, 1) == MIXED_COMMANDS


@pytest.mark.parametrize("step", [2, 3, 5, 7, 16, 64, 1000])
def test_mixed_stream_fed_in_pieces(step: int) -> None:
    assert parse_in_pieces(MIXED, step) == MIXED_COMMANDS


def test_mixed_stream_split_at_every_boundary() -> None:
    head = MIXED[:1200]  # the varied part; splits past it are covered above
    expected = RequestParser().parse(head)
    for i in range(len(head) + 1):
        parser = RequestParser()
        assert parser.parse(head[:i]) + parser.parse(head[i:]) == expected, i


def test_empty_feed_returns_nothing() -> None:
    parser = RequestParser()
    assert parser.parse(b"") == []
    assert parser.parse(SET) == [[b"SET", b"key:000123", b"xxx"]]


def test_empty_multibulk_and_null_multibulk_are_ignored() -> None:
    data = b"*0\r\n*-1\r\n*-7\r\n" + SET + b"*0\r\n"
    assert RequestParser().parse(data) == [[b"SET", b"key:000123", b"xxx"]]


def test_large_argument_in_pieces() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = cmd(b"SET", b"k", value) + SET
    assert parse_in_pieces(data, 65536) == [[b"SET", b"k", value], [b"SET", b"key:000123", b"xxx"]]


def test_many_large_requests_in_one_read() -> None:
    values = [bytes([i]) * 5000 for i in range(10)]
    data = b"".join(cmd(b"SET", b"k", v) for v in values)
    assert RequestParser().parse(data) == [[b"SET", b"k", v] for v in values]


@pytest.mark.parametrize(
    "value",
    [
        b"~1234567",
        b"x|1234567",
        b"*1234567",
        b"x*1234567",
        b"%9999999\r\n",
        b"x\r\n%2\r\n",
        b"x\r\n+OK\r\n",
        b"\r\n=5\r\n(1\r\n|1\r\n>2",
        b"\r\n*1\r\n$4\r\nPING\r\n",
    ],
)
def test_arguments_that_look_like_protocol(value: bytes) -> None:
    data = SET * 3 + cmd(b"SET", b"k", value) + SET * 3
    expected = [[b"SET", b"key:000123", b"xxx"]] * 3 + [[b"SET", b"k", value]]
    expected += [[b"SET", b"key:000123", b"xxx"]] * 3
    assert RequestParser().parse(data) == expected
    assert parse_in_pieces(data, 5) == expected


def test_long_arguments_in_reads_that_end_inside_requests() -> None:
    commands = [[b"SET", b"key:%d" % i, bytes([i % 256]) * (250 + i)] for i in range(300)]
    data = b"".join(encode_command(c) for c in commands)
    for step in (4096, 16384, 65536):
        assert parse_in_pieces(data, step) == commands


@pytest.mark.parametrize(
    "line",
    [
        b"+PING",
        b"+",
        b":1",
        b":0",
        b"-ERR",
        b"$3",
        b"$0",
        b"$-1",
        b"_",
        b"#t",
        b",1.5",
        b"~1",
        b"%0",
    ],
)
def test_requests_not_starting_with_star_are_inline(line: bytes) -> None:
    # hiredis would read these as replies; Redis reads them as inline commands.
    data = SET + line + b"\r\n" + b"\r\n" + SET
    expected = [[b"SET", b"key:000123", b"xxx"], [line], [b"SET", b"key:000123", b"xxx"]]
    assert RequestParser().parse(data) == expected
    assert parse_in_pieces(data, 3) == expected


def test_bytes_after_a_bulk_are_skipped_like_redis() -> None:
    assert RequestParser().parse(b"*2\r\n$1\r\naXY$1\r\nbZZ") == [[b"a", b"b"]]


def test_header_line_ends_at_first_cr_like_redis() -> None:
    # Redis takes the line up to the first CR and skips the next byte unchecked.
    assert RequestParser().parse(b"*1\rX$4\rXPING\r\n") == [[b"PING"]]


# --- inline requests ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"a b", [b"a", b"b"]),
        (b"  a\t\tb  ", [b"a", b"b"]),
        (b"a\rb", [b"a", b"b"]),
        (b'"a b" c', [b"a b", b"c"]),
        (b"'a b' c", [b"a b", b"c"]),
        (b'"a\\nb"', [b"a\nb"]),
        (b'"a\\tb\\rc\\ad\\be"', [b"a\tb\rc\x07d\x08e"]),
        (b'"\\x41\\x4g\\xfF"', [b"Ax4g\xff"]),
        (b'"\\q\\\\\\""', [b'q\\"']),
        (b"'a\\'b'", [b"a'b"]),
        (b"'a\\b'", [b"a\\b"]),
        (b'foo"bar baz"', [b"foobar baz"]),
        (b"a'b'", [b"ab"]),
        (b'""', [b""]),
        (b"''", [b""]),
        (b'x"y"\x0bz', [b"xy", b"z"]),
        (b"a\x0bb", [b"a\x0bb"]),  # \v separates only before a token, as in Redis
        (b"\x0b a", [b"a"]),
        (b"a\x00b c", [b"a"]),  # a NUL ends the line, as in sdssplitargs
        (b"", []),
        (b"   ", []),
    ],
)
def test_split_inline(line: bytes, args: list[bytes]) -> None:
    assert split_inline(line) == args


@pytest.mark.parametrize("line", [b'"abc', b"'abc", b'"a"b', b"'a'b", b'"abc\\"', b"'a\\'"])
def test_split_inline_unbalanced_quotes(line: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"^Protocol error: unbalanced quotes in request$"):
        split_inline(line)


def test_inline_requests_strip_one_cr_and_skip_blank_lines() -> None:
    data = b"PING\r\n\r\n\nECHO  a \r\r\nGET k\n"
    assert RequestParser().parse(data) == [[b"PING"], [b"ECHO", b"a"], [b"GET", b"k"]]


def test_incomplete_inline_request_waits_for_newline() -> None:
    parser = RequestParser()
    assert parser.parse(b"SET k") == []
    assert parser.buffered == 5
    assert parser.parse(b" v") == []
    assert parser.parse(b"\r\nGET k\r\n") == [[b"SET", b"k", b"v"], [b"GET", b"k"]]
    assert parser.buffered == 0


# --- protocol errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*x\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n", "Protocol error: invalid multibulk length"),
        (b"*-0\r\n", "Protocol error: invalid multibulk length"),
        (b"* 1\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "Protocol error: invalid multibulk length"),
        (b"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$03\r\nfoo\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n+foo\r\n", "Protocol error: expected '$', got '+'"),
        (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        (b"*1\r\n-ERR\r\n", "Protocol error: expected '$', got '-'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", "Protocol error: expected '$', got '*'"),
        (b"*1\r\n=7\r\ntxt:foo\r\n", "Protocol error: expected '$', got '='"),
        (b"*1\r\n(12\r\n", "Protocol error: expected '$', got '('"),
        (b"*1\r\n%1\r\n", "Protocol error: expected '$', got '%'"),
        (b"*1\r\n~1\r\n", "Protocol error: expected '$', got '~'"),
        (b"*1\r\n_\r\n", "Protocol error: expected '$', got '_'"),
        (b"*1\r\n\r\n", "Protocol error: expected '$', got ' '"),
        (b"*1\r\nx\r\n", "Protocol error: expected '$', got 'x'"),
        (b'SET "abc\r\n', "Protocol error: unbalanced quotes in request"),
        (b"SET 'a'b\r\n", "Protocol error: unbalanced quotes in request"),
    ],
)
def test_protocol_errors_carry_redis_text(data: bytes, message: str) -> None:
    assert str(parse_error(data)) == message
    # The same error however the bytes arrive.
    with pytest.raises(ProtocolError, match=f"^{re.escape(message)}$"):
        parse_in_pieces(data, 1)


def test_huge_nested_array_header_is_an_error_not_an_allocation() -> None:
    data = SET + b"*2\r\n*4294967295\r\n" + SET
    error = parse_error(data)
    assert str(error) == "Protocol error: expected '$', got '*'"
    assert error.commands == [[b"SET", b"key:000123", b"xxx"]]


def test_commands_before_the_error_are_returned_with_it() -> None:
    data = SET + b"PING\r\n" + b"*1\r\n$2\r\nOK\r\n" + b"*1\r\n:5\r\n" + SET
    error = parse_error(data)
    assert error.commands == [[b"SET", b"key:000123", b"xxx"], [b"PING"], [b"OK"]]


def test_commands_before_the_error_in_the_same_piece_only() -> None:
    parser = RequestParser()
    assert parser.parse(SET) == [[b"SET", b"key:000123", b"xxx"]]
    with pytest.raises(ProtocolError) as info:
        parser.parse(b"PING\r\n*1\r\n$x\r\n")
    assert info.value.commands == [[b"PING"]]


def test_parser_stays_failed_after_an_error() -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError):
        parser.parse(b"*x\r\n")
    with pytest.raises(ProtocolError, match="invalid multibulk length") as info:
        parser.parse(SET)
    assert info.value.commands == []


# --- limits ------------------------------------------------------------------------


def test_default_limits_are_redis_defaults() -> None:
    parser = RequestParser()
    assert parser.parse(b"*1\r\n$536870912\r\n") == []  # 512 MiB: allowed, waits for data
    assert parser.buffered == 0
    assert str(parse_error(b"*1\r\n$536870913\r\n")) == "Protocol error: invalid bulk length"
    assert RequestParser().parse(b"*1048576\r\n") == []
    assert str(parse_error(b"*1048577\r\n")) == "Protocol error: invalid multibulk length"
    assert RequestParser().parse(b"x" * 65536) == []
    assert str(parse_error(b"x" * 65537)) == "Protocol error: too big inline request"


def test_max_bulk_len() -> None:
    assert RequestParser(max_bulk_len=10).parse(cmd(b"a" * 10)) == [[b"a" * 10]]
    error = parse_error(SET + cmd(b"a" * 11), max_bulk_len=10)
    assert str(error) == "Protocol error: invalid bulk length"
    assert error.commands == [[b"SET", b"key:000123", b"xxx"]]


def test_oversized_bulk_rejected_before_its_data_arrives() -> None:
    parser = RequestParser(max_bulk_len=1000)
    assert parser.parse(b"*2\r\n$3\r\nSET\r\n") == []
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parser.parse(b"$999999999999\r\n")


def test_max_multibulk_len() -> None:
    ok = cmd(*[b"x"] * 100)
    assert RequestParser(max_multibulk_len=100).parse(ok) == [[b"x"] * 100]
    error = parse_error(SET + cmd(*[b"x"] * 101), max_multibulk_len=100)
    assert str(error) == "Protocol error: invalid multibulk length"
    assert error.commands == [[b"SET", b"key:000123", b"xxx"]]


def test_limits_hold_in_large_reads() -> None:
    # Large enough that the parser has to check the limits of what hiredis read.
    data = SET * 200 + cmd(b"x" * 20) + SET
    error = parse_error(data, max_bulk_len=10, max_multibulk_len=3)
    assert str(error) == "Protocol error: invalid bulk length"
    assert error.commands == [[b"SET", b"key:000123", b"xxx"]] * 200
    data = SET * 200 + cmd(*[b"x"] * 4) + SET
    error = parse_error(data, max_bulk_len=10, max_multibulk_len=3)
    assert str(error) == "Protocol error: invalid multibulk length"
    assert len(error.commands) == 200


def test_max_inline_len() -> None:
    line = b"a" * 99 + b"\r"  # the line is the bytes before LF
    assert RequestParser(max_inline_len=100).parse(line + b"\n") == [[b"a" * 99]]
    for step in (1, 7, 1000):
        with pytest.raises(ProtocolError, match=r"^Protocol error: too big inline request$"):
            parse_in_pieces(b"a" * 101 + b"\n", step, max_inline_len=100)


def test_too_long_inline_request_rejected_without_its_end() -> None:
    parser = RequestParser(max_inline_len=100)
    assert parser.parse(b"a" * 100) == []
    with pytest.raises(ProtocolError, match="too big inline request"):
        parser.parse(b"a")


def test_too_long_header_lines() -> None:
    with pytest.raises(ProtocolError, match=r"^Protocol error: too big mbulk count string$"):
        parse_in_pieces(b"*" + b"1" * 200, 7, max_inline_len=100)
    with pytest.raises(ProtocolError, match=r"^Protocol error: too big bulk count string$"):
        parse_in_pieces(b"*1\r\n$" + b"1" * 200, 7, max_inline_len=100)


def test_too_long_header_lines_arriving_whole() -> None:
    error = parse_error(b"*" + b"1" * 200 + b"\r\n", max_inline_len=100)
    assert str(error) == "Protocol error: too big mbulk count string"
    error = parse_error(b"*1\r\n$" + b"1" * 200, max_inline_len=100)
    assert str(error) == "Protocol error: too big bulk count string"


def test_buffered_counts_bytes_not_yet_returned() -> None:
    parser = RequestParser()
    assert parser.parse(b"*2\r\n$3\r\nSET\r\n$100\r\n") == []
    assert parser.buffered == 3  # the complete argument
    assert parser.parse(b"x" * 60) == []
    assert parser.buffered == 63
    assert parser.parse(b"x" * 40 + b"\r\n") == [[b"SET", b"x" * 100]]
    assert parser.buffered == 0
    assert parser.parse(b"*1\r\n$4\r\nPI") == []
    assert parser.buffered > 0


# --- round trip -------------------------------------------------------------------


def test_encode_command_round_trip() -> None:
    commands: list[list[bytes | str | int]] = [
        ["SET", b"k", 5],
        [b"", "", 0, -17],
        ["héllo", bytearray(b"ba"), memoryview(b"mv")],  # type: ignore[list-item]
        [b"x" * 100_000],
        [2**70],
    ]
    wire = b"".join(encode_command(c) for c in commands)
    assert parse_in_pieces(wire, 999) == [
        [b"SET", b"k", b"5"],
        [b"", b"", b"0", b"-17"],
        ["héllo".encode(), b"ba", b"mv"],
        [b"x" * 100_000],
        [str(2**70).encode()],
    ]


def test_encode_command_wire_format() -> None:
    assert encode_command(["SET", b"k", 10]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n10\r\n"
    assert encode_command([]) == b"*0\r\n"


@pytest.mark.parametrize("bad", [None, 1.5, True, object()])
def test_encode_command_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError):
        encode_command([b"SET", bad])  # type: ignore[list-item]


# --- reply encoding ------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 3


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (None, b"$-1\r\n"),
        (b"", b"$0\r\n\r\n"),
        (b"hello", b"$5\r\nhello\r\n"),
        (b"a\r\nb", b"$4\r\na\r\nb\r\n"),
        (bytearray(b"ba"), b"$2\r\nba\r\n"),
        (memoryview(b"mv"), b"$2\r\nmv\r\n"),
        ("héllo", b"$6\r\nh\xc3\xa9llo\r\n"),
        (True, b":1\r\n"),
        (False, b":0\r\n"),
        (0, b":0\r\n"),
        (1, b":1\r\n"),
        (-1, b":-1\r\n"),
        (1023, b":1023\r\n"),
        (1024, b":1024\r\n"),
        (2**63 - 1, b":9223372036854775807\r\n"),
        (Color.RED, b":3\r\n"),
        (3.0, b"$1\r\n3\r\n"),
        (3.5, b"$3\r\n3.5\r\n"),
        (float("-inf"), b"$4\r\n-inf\r\n"),
        ([], b"*0\r\n"),
        ([1, b"a", None], b"*3\r\n:1\r\n$1\r\na\r\n$-1\r\n"),
        ((b"a", [b"b", [2]]), b"*2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*1\r\n:2\r\n"),
        ({b"k": 1, "j": [None]}, b"*4\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n*1\r\n$-1\r\n"),
        (frozenset([b"x"]), b"*1\r\n$1\r\nx\r\n"),
        (OK, b"+OK\r\n"),
        (Status("QUEUED"), b"+QUEUED\r\n"),
        (ErrorReply("TRY 127.0.0.1:7482"), b"-TRY 127.0.0.1:7482\r\n"),
        (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n"),
        (ValueError("value is not an integer"), b"-ERR value is not an integer\r\n"),
        (KeyError(), b"-ERR KeyError\r\n"),
        (
            RuntimeError("WRONGTYPE Operation against a key"),
            b"-WRONGTYPE Operation against a key\r\n",
        ),
    ],
)
def test_encode_mapping(value: object, wire: bytes) -> None:
    assert encode(value) == wire
    assert encode_many([value]) == wire
    buf = bytearray(b"prefix")
    encode_into(buf, value)
    assert bytes(buf) == b"prefix" + wire


def test_encode_set_is_an_array_of_its_members() -> None:
    wire = encode({b"a", b"b", b"c"})
    assert wire.startswith(b"*3\r\n")
    assert sorted(ReplyParser().parse(wire)[0]) == [b"a", b"b", b"c"]


def test_encode_large_values() -> None:
    value = b"x" * 100_000
    assert encode(value) == b"$100000\r\n" + value + b"\r\n"
    assert encode_many([value, value]) == (b"$100000\r\n" + value + b"\r\n") * 2
    big_array = [1] * 2000
    assert encode(big_array) == b"*2000\r\n" + b":1\r\n" * 2000


def test_encode_many_concatenates() -> None:
    values = [OK, 1, None, b"x", [1, 2], ErrorReply("ERR no")]
    assert encode_many(values) == b"".join(encode(v) for v in values)
    assert encode_many([]) == b""


class Text(str):
    pass


class Blob(bytes):
    pass


def test_encode_subclasses_of_the_mapped_types() -> None:
    class MyStatus(Status):
        pass

    class MyError(ErrorReply):
        pass

    assert encode(Text("hé")) == b"$3\r\nh\xc3\xa9\r\n"
    assert encode(Blob(b"ab")) == b"$2\r\nab\r\n"
    assert encode(MyStatus("PONG")) == b"+PONG\r\n"
    assert encode(MyError("ERR x")) == b"-ERR x\r\n"


class MyDouble(Double):
    pass


class MyPairs(Pairs):
    pass


SCORE = Double(b"0.10000000000000001")


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (SCORE, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
        (Double(b"-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (MyDouble(b"1e+17"), b"$5\r\n1e+17\r\n", b",1e+17\r\n"),
        ([Double(b"2"), None], b"*2\r\n$1\r\n2\r\n$-1\r\n", b"*2\r\n,2\r\n_\r\n"),
        (Pairs(), b"*0\r\n", b"*0\r\n"),
        (
            Pairs([(b"a", SCORE), (b"b", Double(b"3"))]),
            b"*4\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n$1\r\nb\r\n$1\r\n3\r\n",
            b"*2\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n*2\r\n$1\r\nb\r\n,3\r\n",
        ),
        (  # any halves, each encoded as a reply
            MyPairs([("f", b"x" * 600), (1, [None, 2.5])]),
            b"*4\r\n$1\r\nf\r\n$600\r\n" + b"x" * 600 + b"\r\n:1\r\n*2\r\n$-1\r\n$3\r\n2.5\r\n",
            b"*2\r\n*2\r\n$1\r\nf\r\n$600\r\n"
            + b"x" * 600
            + b"\r\n*2\r\n:1\r\n*2\r\n_\r\n,2.5\r\n",
        ),
        (  # in an array (EXEC's) and a map
            [SCORE, Pairs([(b"a", Double(b"1"))]), {b"k": SCORE}, NULL_ARRAY],
            b"*4\r\n$19\r\n0.10000000000000001\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
            b"*2\r\n$1\r\nk\r\n$19\r\n0.10000000000000001\r\n*-1\r\n",
            b"*4\r\n,0.10000000000000001\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n"
            b"%1\r\n$1\r\nk\r\n,0.10000000000000001\r\n_\r\n",
        ),
    ],
)
def test_doubles_and_pairs_take_each_protocols_form(
    value: object, resp2: bytes, resp3: bytes
) -> None:
    """RESP2: a bulk string and a flat array; RESP3: a double and ``[first, second]`` arrays
    (Redis 7.0's ZSCORE and ZRANGE ... WITHSCORES), by the C and the Python encoders alike."""
    assert encode(value) == resp._encode_py(value) == resp2
    assert encode3(value) == resp._encode3_py(value) == resp3
    buf = bytearray(b"prefix")
    encode_into(buf, value)
    assert bytes(buf) == b"prefix" + resp2
    buf = bytearray(b"prefix")
    encode3_into(buf, value)
    assert bytes(buf) == b"prefix" + resp3


def test_a_double_holds_no_line_break_and_pairs_are_pairs() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        Double(b"1\r\n:2")
    assert Double(b"1") == Double(b"1") != b"1"
    assert hash(Double(b"1")) == hash(Double(b"1"))
    pairs = Pairs({b"a": b"1"}.items())
    assert pairs == Pairs([(b"a", b"1")]) and list(pairs) == [(b"a", b"1")] and len(pairs) == 1
    with pytest.raises(ValueError):
        encode(Pairs([(b"a", b"1", b"2")]))  # type: ignore[list-item]


class MyVerbatim(Verbatim):
    pass


DOCTOR = b"Hi Sam, I can't find any memory issue.\n"


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (Verbatim(DOCTOR), b"$39\r\n" + DOCTOR + b"\r\n", b"=43\r\ntxt:" + DOCTOR + b"\r\n"),
        (Verbatim(b""), b"$0\r\n\r\n", b"=4\r\ntxt:\r\n"),
        (MyVerbatim(b"# T\r\n", b"mkd"), b"$5\r\n# T\r\n\r\n", b"=9\r\nmkd:# T\r\n\r\n"),
        (
            Verbatim(b"x" * 600),
            b"$600\r\n" + b"x" * 600 + b"\r\n",
            b"=604\r\ntxt:" + b"x" * 600 + b"\r\n",
        ),
        (  # in an array (EXEC's)
            [Verbatim(b"a:1\r\n"), b"b"],
            b"*2\r\n$5\r\na:1\r\n\r\n$1\r\nb\r\n",
            b"*2\r\n=9\r\ntxt:a:1\r\n\r\n$1\r\nb\r\n",
        ),
    ],
)
def test_verbatim_text_is_a_bulk_string_in_resp2_and_a_verbatim_string_in_resp3(
    value: object, resp2: bytes, resp3: bytes
) -> None:
    """Redis 7.0's INFO, CLIENT LIST, MEMORY DOCTOR: ``$N`` in RESP2, ``=N txt:...`` in RESP3
    (N counting ``txt:``), by the C and the Python encoders alike."""
    assert encode(value) == resp._encode_py(value) == encode_many([value]) == resp2
    assert encode3(value) == resp._encode3_py(value) == resp3
    buf = bytearray(b"prefix")
    encode3_into(buf, value)
    assert bytes(buf) == b"prefix" + resp3


def test_a_verbatim_format_is_three_bytes() -> None:
    with pytest.raises(ValueError, match="three bytes"):
        Verbatim(b"x", b"text")
    assert Verbatim(b"x") == Verbatim(b"x", b"txt") != Verbatim(b"x", b"mkd")
    assert Verbatim(b"x") != b"x" and hash(Verbatim(b"x")) == hash(Verbatim(b"x"))
    assert repr(Verbatim(b"x")) == "Verbatim(b'x')"
    assert repr(Verbatim(b"x", b"mkd")) == "Verbatim(b'x', b'mkd')"


@pytest.mark.parametrize("bad", [object(), 1j, [1, object()], {b"k": object()}])
def test_encode_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError):
        encode(bad)


def test_exceptions_use_the_command_name() -> None:
    assert encode_error(ErrUnknownCommand(), "foo") == b"-ERR unknown command 'foo'\r\n"
    assert encode_error(ErrWrongNumberOfArguments(), "get") == (
        b"-ERR wrong number of arguments for 'get' command\r\n"
    )
    assert encode([ErrUnknownCommand()], cmd_name="foo") == (
        b"*1\r\n-ERR unknown command 'foo'\r\n"
    )
    assert encode_error(ValueError("bad\nthing"), "x") == b"-ERR bad thing\r\n"
    assert encode_error(ErrorReply("MOVED 1 h:1"), "x") == b"-MOVED 1 h:1\r\n"


def test_protocol_error_reply() -> None:
    error = parse_error(b"*x\r\n")
    assert encode_error(error, "") == b"-ERR Protocol error: invalid multibulk length\r\n"


def test_reply_constants() -> None:
    assert OK_REPLY == encode(OK) == b"+OK\r\n"
    assert NULL_BULK == encode(None) == b"$-1\r\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, b"3"),
        (-3.0, b"-3"),
        (3.5, b"3.5"),
        (0.1, b"0.1"),
        (0.0, b"0"),
        (-0.0, b"-0"),
        (1.0 / 3, b"0.3333333333333333"),
        (1e15, b"1000000000000000"),
        (1e16, b"10000000000000000"),
        (1.5e16, b"15000000000000000"),
        (1e17, b"1e+17"),
        (1.5e300, b"1.5e+300"),
        (0.0001, b"0.0001"),
        (0.00001, b"1e-05"),
        (float("inf"), b"inf"),
        (float("-inf"), b"-inf"),
        (float("nan"), b"nan"),
    ],
)
def test_format_float(value: float, text: bytes) -> None:
    assert format_float(value) == text
    if value == value:  # NaN aside, the text reads back as the same double
        assert float(text) == value


# --- ErrorReply and ReplyParser ----------------------------------------------------


def test_error_reply_value() -> None:
    e = ErrorReply("TRY 127.0.0.1:7482")
    assert e == ErrorReply("TRY 127.0.0.1:7482")
    assert e != ErrorReply("ERR x")
    assert hash(e) == hash(ErrorReply("TRY 127.0.0.1:7482"))
    assert e.code == "TRY"
    assert str(e) == "TRY 127.0.0.1:7482"
    assert repr(e) == "ErrorReply('TRY 127.0.0.1:7482')"
    assert ErrorReply("a\r\nb").text == "a  b"


def test_reply_parser_types() -> None:
    wire = encode_many(
        [OK, 7, -2, None, b"bulk", [b"a", [1, None]], ErrorReply("ERR nope"), [ErrorReply("X y")]]
    )
    assert ReplyParser().parse(wire) == [
        b"OK",
        7,
        -2,
        None,
        b"bulk",
        [b"a", [1, None]],
        ErrorReply("ERR nope"),
        [ErrorReply("X y")],
    ]


def test_reply_parser_partial_feeds() -> None:
    wire = encode_many([b"x" * 1000, [1, 2, 3], OK])
    parser = ReplyParser()
    got = []
    for i in range(0, len(wire), 7):
        parser.feed(wire[i : i + 7])
        got += parser.gets()
    assert got == [b"x" * 1000, [1, 2, 3], b"OK"]
    assert parser.gets() == []


def test_reply_parser_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ReplyParser().parse(b"!bad\r\n")


# --- against a real Redis ----------------------------------------------------------

REDIS_SERVER = shutil.which("redis-server")


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("redis")
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def exchange(port: int, data: bytes, replies: int) -> list[object]:
    """Send ``data``; read ``replies`` replies or until Redis closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        parser = ReplyParser()
        got: list[object] = []
        while len(got) < replies:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += parser.parse(chunk)
        return got


@pytest.mark.parametrize(
    "line",
    [
        b'"a b" c',
        b"\"\\x41\\x4g\" 'a\\'b' 'a\\b'",
        b"foo\"bar baz\" a'b'",
        b'"" \'\' "\\q\\\\"',
        b'a\x0bb \x0b x"y"\x0bz',
        b'"a\\tb\\rc\\ad\\be"',
        b"a\rb",
        b'"a"b',
        b"'abc",
    ],
)
def test_inline_splitting_matches_redis(redis_port: int, line: bytes) -> None:
    lrange = encode_command([b"LRANGE", b"l", b"0", b"-1"])
    redis = exchange(redis_port, b"DEL l\r\nRPUSH l " + line + b"\r\n" + lrange, 3)
    try:
        ours: object = split_inline(line)
    except ProtocolError as e:
        ours = ErrorReply("ERR " + str(e))
        assert redis[1] == ours
        return
    assert redis[2] == ours


@pytest.mark.parametrize(
    "data",
    [
        b"*x\r\n",
        b"*01\r\n",
        b"*1\r\n+foo\r\n",
        b"*1\r\n\r\n",
        b"*1\r\n$03\r\nfoo\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$999999999999\r\n",
        b'ECHO "abc\r\n',
        b"*1\r\n$4\r\nPING\r\n*1\r\n*1\r\n",
    ],
)
def test_protocol_errors_match_redis(redis_port: int, data: bytes) -> None:
    redis = exchange(redis_port, data, 10)
    error = parse_error(data)
    assert redis == [b"PONG"] * len(error.commands) + [ErrorReply("ERR " + str(error))]
