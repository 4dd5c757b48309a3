"""Property tests of the RESP codec (hypothesis)."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redraft import resp
from redraft.machine import OK, Status
from redraft.resp import (
    ErrorReply,
    ProtocolError,
    ReplyParser,
    RequestParser,
    encode,
    encode_command,
    encode_many,
    format_float,
)

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LIMITS = {"max_bulk_len": 40, "max_multibulk_len": 6, "max_inline_len": 60}
assert LIMITS["max_inline_len"] >= LIMITS["max_bulk_len"]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def outcome(pieces: list[bytes], **limits: int) -> tuple[list[list[bytes]], str | None]:
    """The commands parsed and the protocol error raised, if any."""
    parser = RequestParser(**limits)
    commands: list[list[bytes]] = []
    for piece in pieces:
        try:
            commands += parser.parse(piece)
        except ProtocolError as e:
            return commands + e.commands, str(e)
    return commands, None


# Fragments that make random streams look like RESP often enough to reach
# deep into the parser.
FRAGMENTS = st.sampled_from(
    [
        b"*",
        b"$",
        b"\r\n",
        b"\r",
        b"\n",
        b"*1\r\n",
        b"*2\r\n",
        b"*3\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"$3\r\n",
        b"$0\r\n",
        b"$-1\r\n",
        b"$99\r\n",
        b"$999999999999\r\n",
        b"*4294967295\r\n",
        b"%2\r\n",
        b"~1\r\n",
        b"+OK\r\n",
        b":1\r\n",
        b"-ERR\r\n",
        b"SET",
        b"foo",
        b"PING\r\n",
        b'"',
        b"'",
        b"\\",
        b" ",
        b"\x00",
        b"1",
        b"0",
    ]
)
GARBAGE = st.lists(st.one_of(FRAGMENTS, st.binary(max_size=8)), max_size=40).map(b"".join)


def check_commands(commands: list[list[bytes]], max_args: int, max_len: int) -> None:
    for command in commands:
        assert type(command) is list
        assert 0 < len(command) <= max_args
        for arg in command:
            assert type(arg) is bytes
            assert len(arg) <= max_len


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), GARBAGE), cuts=st.lists(st.integers(0, 10**6)))
def test_arbitrary_bytes_raise_nothing_but_protocol_error(data: bytes, cuts: list[int]) -> None:
    for pieces in ([data], split_at(data, cuts), [data[i : i + 1] for i in range(len(data))]):
        # An inline argument is bounded by the line limit, a bulk one by the bulk limit.
        commands, _ = outcome(pieces, **LIMITS)
        check_commands(commands, LIMITS["max_multibulk_len"], LIMITS["max_inline_len"])
        commands, _ = outcome(pieces)
        check_commands(commands, 2**20, 2**29)


# --- well-formed streams -----------------------------------------------------------

ARG = st.binary(max_size=30) | st.sampled_from([b"", b"\r\n", b"*1\r\n$1\r\nx\r\n", b"\r\n+OK"])
ARGS = st.lists(ARG, min_size=1, max_size=6)
PLAIN = st.binary(min_size=1, max_size=10).filter(
    lambda b: not any(c in b for c in b" \t\r\n\x0b\x0c\"'\x00")
)


def quote(arg: bytes) -> bytes:
    """An inline spelling of ``arg`` that Redis splits back to ``arg``."""
    return b'"' + b"".join(b"\\x%02x" % c for c in arg) + b'"'


@st.composite
def inline_request(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    args = draw(st.lists(PLAIN | ARG, min_size=1, max_size=4))
    words = []
    for i, arg in enumerate(args):
        plain = (
            arg
            and not any(c in arg for c in b" \t\r\n\x0b\x0c\"'\x00")
            and not (i == 0 and arg.startswith(b"*"))
        )
        if plain:
            words.append(arg)
        elif not any(c in arg for c in b"'\\\x00\r\n") and draw(st.booleans()):
            words.append(b"'" + arg + b"'")
        else:
            words.append(quote(arg))
    sep = draw(st.sampled_from([b" ", b"  ", b"\t"]))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    return sep.join(words) + end, args


@st.composite
def request(draw: st.DrawFn) -> tuple[bytes, list[list[bytes]]]:
    kind = draw(st.sampled_from(["multibulk", "multibulk", "multibulk", "inline", "empty"]))
    if kind == "multibulk":
        args = draw(ARGS)
        return encode_command(args), [args]
    if kind == "inline":
        line, args = draw(inline_request())
        return line, [args]
    return draw(st.sampled_from([b"\r\n", b"\n", b"   \r\n", b"*0\r\n", b"*-1\r\n"])), []


BAD_ENDINGS = [
    (b"*x\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    (b"*2\r\n$1\r\na\r\n+b\r\n", "Protocol error: expected '$', got '+'"),
    (b"*1\r\n$-3\r\n", "Protocol error: invalid bulk length"),
    (b'SET "a\r\n', "Protocol error: unbalanced quotes in request"),
    (b"*1\r\n*99999999\r\n", "Protocol error: expected '$', got '*'"),
]


@FUZZ
@given(
    requests=st.lists(request(), max_size=25),
    bad=st.none() | st.sampled_from(BAD_ENDINGS),
    cuts=st.lists(st.integers(0, 10**6), max_size=30),
)
def test_wellformed_streams_parse_the_same_however_split(
    requests: list[tuple[bytes, list[list[bytes]]]],
    bad: tuple[bytes, str] | None,
    cuts: list[int],
) -> None:
    data = b"".join(wire for wire, _ in requests)
    expected = [c for _, cmds in requests for c in cmds]
    error = None
    if bad is not None:
        data += bad[0] + encode_command([b"PING"])
        error = bad[1]
    assert outcome([data]) == (expected, error)
    assert outcome(split_at(data, cuts)) == (expected, error)


@settings(max_examples=25, deadline=None)
@given(requests=st.lists(request(), max_size=12), bad=st.none() | st.sampled_from(BAD_ENDINGS))
def test_wellformed_streams_fed_one_byte_at_a_time(
    requests: list[tuple[bytes, list[list[bytes]]]], bad: tuple[bytes, str] | None
) -> None:
    data = b"".join(wire for wire, _ in requests) + (bad[0] if bad else b"")
    expected = [c for _, cmds in requests for c in cmds]
    assert outcome([data[i : i + 1] for i in range(len(data))]) == (
        expected,
        bad[1] if bad else None,
    )


@FUZZ
@given(
    commands=st.lists(st.lists(st.binary(max_size=3000), min_size=1, max_size=5), max_size=30),
    cuts=st.lists(st.integers(0, 10**7), max_size=20),
)
def test_encode_command_round_trip(commands: list[list[bytes]], cuts: list[int]) -> None:
    data = b"".join(encode_command(c) for c in commands)
    assert outcome(split_at(data, cuts)) == (commands, None)


# --- replies -------------------------------------------------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
STATUS_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=10
)
SCALARS = st.one_of(
    st.none(),
    st.binary(max_size=20),
    st.text(max_size=10),
    INT64,
    st.booleans(),
    st.floats(allow_nan=False),
    STATUS_TEXT.map(Status),
    st.just(OK),
    STATUS_TEXT.map(lambda t: ErrorReply("ERR " + t)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.binary(max_size=5), inner, max_size=4),
    ),
    max_leaves=20,
)


def as_received(value: Any) -> Any:
    """What a RESP2 client reads back for ``value``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, Status):
        return value.text.encode()
    if isinstance(value, list | tuple):
        return [as_received(v) for v in value]
    if isinstance(value, dict):
        return [as_received(x) for kv in value.items() for x in kv]
    return value


@FUZZ
@given(values=st.lists(VALUES, max_size=8), cuts=st.lists(st.integers(0, 10**6), max_size=10))
def test_replies_decode_back(values: list[Any], cuts: list[int]) -> None:
    wire = encode_many(values)
    assert wire == b"".join(encode(v) for v in values)
    parser = ReplyParser()
    got: list[Any] = []
    for piece in split_at(wire, cuts):
        got += parser.parse(piece)
    assert got == [as_received(v) for v in values]


@FUZZ
@given(st.floats(allow_nan=False))
def test_floats_read_back_exactly(value: float) -> None:
    text = format_float(value)
    assert float(text) == value
    assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)


# --- the C fast paths against the Python codec --------------------------------------

needs_c = pytest.mark.skipif(not resp.SPEEDUPS, reason="redraft._cresp is not in use")


@contextlib.contextmanager
def pure_python() -> Iterator[None]:
    """Parse with the Python paths alone (in the parsers made inside: each binds the C parse when made)."""
    saved = resp._cresp
    resp._cresp = None
    try:
        assert RequestParser()._cparse is None  # else both ways would be C's
        yield
    finally:
        resp._cresp = saved


def both_ways(pieces: list[bytes], **limits: int) -> None:
    got = outcome(pieces, **limits)
    with pure_python():
        assert outcome(pieces, **limits) == got


def test_the_install_has_the_c_fast_paths() -> None:
    # A C compiler is on every machine redraft is built on: a silently
    # failed build would leave it several times slower.
    if os.environ.get("REDRAFT_PURE_PYTHON"):
        pytest.skip("REDRAFT_PURE_PYTHON is set")
    assert resp.SPEEDUPS


# Limits small enough to be crossed, and header lines longer than the inline
# limit (which the C path must leave to the Python one to refuse).
LIMIT_SETS = st.sampled_from(
    [
        {},
        LIMITS,
        {"max_bulk_len": 3, "max_multibulk_len": 2, "max_inline_len": 2},
        {"max_bulk_len": 0, "max_multibulk_len": 1, "max_inline_len": 3},
        {"max_inline_len": 2},
        {"max_inline_len": 3},
    ]
)


@needs_c
@FUZZ
@given(
    requests=st.lists(request(), max_size=10),
    junk=st.one_of(st.binary(max_size=60), GARBAGE),
    more=st.lists(request(), max_size=3),
    limits=LIMIT_SETS,
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_the_c_parser_reads_every_stream_as_the_python_one(
    requests: list[tuple[bytes, list[list[bytes]]]],
    junk: bytes,
    more: list[tuple[bytes, list[list[bytes]]]],
    limits: dict[str, int],
    cuts: list[int],
) -> None:
    data = b"".join(w for w, _ in requests) + junk + b"".join(w for w, _ in more)
    both_ways([data], **limits)
    both_ways(split_at(data, cuts), **limits)
    both_ways([junk], **limits)


@needs_c
@pytest.mark.parametrize(
    "data",
    [
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"*1\r\n$3\r\nGETxx*1\r\n$4\r\nPING\r\n",  # Redis skips a bulk's trailer unchecked
        b"*1\rx$4\rxPING\r\n",  # and the byte after a header's CR
        b"*01\r\n$4\r\nPING\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*-0\r\n*1\r\n$1\r\nx\r\n",
        b"*-7\r\n*0\r\n*1\r\n$1\r\nx\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n+OK\r\n",
        b"*1\r\n$1\r\nx\r\nPING\r\n*1\r\n$1\r\ny\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123",
        b"*9999999999999999999\r\n",
        b"*99999999999999999\r\n",
        b"*1\r\n$999999999999999999\r\n",
        b"*1 \r\n$1\r\nx\r\n",
        b"*1\r\n$1 \r\nx\r\n",
        b"*\r\n",
        b"*1\r\n$\r\n\r\n",
        b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
        b"*1\r\n$10\r\n0123456789\r\n",  # a header one byte over an inline limit of 2
        b"*10\r\n" + b"$1\r\nx\r\n" * 10,
    ],
)
@pytest.mark.parametrize("limits", [{}, LIMITS, {"max_inline_len": 2}])
def test_the_c_parser_agrees_on_the_corner_cases(data: bytes, limits: dict[str, int]) -> None:
    for pieces in ([data], [data[:7], data[7:]], [data[i : i + 1] for i in range(len(data))]):
        both_ways(pieces, **limits)


@needs_c
@FUZZ
@given(values=st.lists(VALUES | st.integers() | st.booleans() | st.none(), max_size=8))
def test_the_c_encoders_give_the_python_bytes(values: list[Any]) -> None:
    for v in values:
        assert encode(v) == resp._encode_py(v)
        assert resp.encode3(v) == resp._encode3_py(v)
        assert encode(v, "get") == resp._encode_py(v, "get")
    assert encode(OK) == b"+OK\r\n"
    assert encode(value=2**70) == resp._encode_py(2**70)


NAMES = st.sampled_from([b"set", b"SET", b"get", b"note", b"unknown"])


@needs_c
@FUZZ
@given(
    names=st.lists(NAMES, max_size=12),
    start=st.integers(0, 4),
    stop=st.integers(0, 14),
    value=st.sampled_from(["write", "read", None]),
)
def test_the_c_run_end_finds_where_the_python_one_does(
    names: list[bytes], start: int, stop: int, value: str | None
) -> None:
    # A run of one command's requests: the table maps spellings to routes
    # (here strings); an unknown spelling, or another route, ends it (even
    # a run of None: a spelling the table lacks maps to nothing).
    table = {b"set": "write", b"SET": "write", b"get": "read", b"note": "write2"}
    cmds = [[name, b"k", b"v"] for name in names]
    want = resp._run_end_py(cmds, start, min(stop, len(cmds)), table, table.get(b"set"))
    assert resp.run_end(cmds, start, min(stop, len(cmds)), table, table.get(b"set")) == want
    got = resp.run_end(cmds, start, min(stop, len(cmds)), table, value)
    assert got == resp._run_end_py(cmds, start, min(stop, len(cmds)), table, value)
    # ``n`` past the list's end is clamped, never read beyond it.
    assert resp.run_end(cmds, 0, len(cmds) + 5, table, "write") <= len(cmds)
