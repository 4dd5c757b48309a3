"""Bytes held unparsed through a ReadIndex round at consistency high (redraft.roundwait).

A connection whose bytes begin with a plain read keeps them until the round
confirms, then runs them with the parser answering the reads in place.  To
a client this must be invisible: the same replies, in the same order, as
the path that parses first and queues each read for its round, whatever
the requests, however they are split into reads, and whether the round
confirms or fails.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraft.errors import Redirect
from redraft.options import Level
from redraft.replies import answer, fail
from redraft.session import Ending, Session
from tests.test_session import FakeGroup, req, session

pytestmark = pytest.mark.timeout(60)


def high(holding: bool = True, **limits: object) -> tuple[Session, FakeGroup]:
    """A session at consistency high: every read waits for a round (the fake's lease is off)."""
    s, group = session(**limits)  # type: ignore[arg-type]
    s.shared.options = replace(s.shared.options, consistency=Level.HIGH)
    s.shared.round_reads = holding
    group.lease = False
    return s, group


REQUESTS = st.sampled_from(
    [
        ["GET", "a"],
        ["get", "b"],
        ["GET", "n"],
        ["MGET", "a", "b"],
        ["EXISTS", "a"],
        ["GET"],  # refused: wrong number of arguments
        ["SET", "a", "1"],
        ["SET", "b", "2"],
        ["INCR", "n"],
        ["DEL", "a"],
        ["PING"],
        ["HELLO", "3"],
    ]
)


def _served(
    requests: list[list[str]], cuts: list[int], holding: bool, leader: bool, fails: bool
) -> bytes:
    s, group = high(holding)
    s.feed(req(["SET", "a", "old"], ["INCR", "n"]))
    group.commit()
    s.take_output()
    group.leader = leader
    data = req(*requests)
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in itertools.pairwise(edges):
        s.feed(data[start:end])
    out = s.take_output()
    for _ in range(len(requests) + 2):  # what each answer lets start
        group.commit()
        if fails:
            group.leader = False
            reads, group.reads = group.reads, []
            fail(reads, Redirect("127.0.0.1:2"))
        else:
            group.confirm()
        out += s.take_output()
    assert not s.has_pending() and s.round_wait is None
    return out


@settings(max_examples=300, deadline=None)
@given(
    requests=st.lists(REQUESTS, min_size=1, max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
    leader=st.booleans(),
    fails=st.booleans(),
)
def test_held_bytes_are_answered_as_the_parsed_path_answers_them(
    requests: list[list[str]], cuts: list[int], leader: bool, fails: bool
) -> None:
    held = _served(requests, cuts, True, leader, fails)
    assert held == _served(requests, cuts, False, leader, fails)
    assert held.count(b"\r\n") >= len(requests)


def test_reads_wait_for_the_round_then_the_write_behind_them_starts() -> None:
    s, group = high()
    s.feed(req(["SET", "k", "v1"]))
    group.commit()
    s.take_output()
    s.feed(req(["GET", "k"], ["GET", "k"], ["SET", "k", "v2"], ["GET", "k"]))
    assert s.take_output() == b"" and group.batch == [] and s.round_wait is not None  # held
    assert len(group.reads) == 1  # one round token for the whole read
    group.confirm()
    assert s.take_output() == b"$2\r\nv1\r\n" * 2  # the reads, before the write
    assert group.batch == [[b"SET", b"k", b"v2"]]
    group.commit()
    assert s.take_output() == b"+OK\r\n"  # the GET behind it waits for a round of its own
    group.confirm()
    assert s.take_output() == b"$2\r\nv2\r\n"


def test_bytes_that_arrive_meanwhile_wait_for_a_round_of_their_own() -> None:
    s, group = high()
    s.feed(req(["GET", "a"], ["GET", "b"]))
    s.feed(req(["GET", "c"]))
    assert len(group.reads) == 2
    answer([group.reads.pop(0)])  # the first round covers only the first two GETs
    assert s.take_output() == b""
    group.confirm()
    assert s.take_output() == b"$-1\r\n" * 3
    assert s.round_wait is None and not s.has_pending()


def test_a_failed_round_redirects_the_held_reads_once_leadership_is_gone() -> None:
    s, group = high()
    s.feed(req(["GET", "a"], ["SET", "a", "1"]))
    group.leader = False
    fail(group.reads, Redirect("127.0.0.1:2"))
    assert s.take_output() == b"-TRY 127.0.0.1:2\r\n" * 2
    assert group.batch == [] and not s.has_pending()


def test_a_follower_holds_nothing() -> None:
    s, group = high()
    group.leader = False
    s.feed(req(["GET", "a"], ["GET", "b"]))
    assert s.round_wait is None and s.take_output() == b"-TRY 127.0.0.1:2\r\n" * 2


def test_a_lone_read_is_queued_as_parsed() -> None:
    s, group = high()
    s.feed(req(["GET", "a"]))
    assert s.round_wait is None and len(group.reads) == 1
    group.confirm()
    assert s.take_output() == b"$-1\r\n"


def test_a_protocol_error_in_held_bytes_answers_what_came_before_it_then_closes() -> None:
    s, group = high()
    s.feed(req(["GET", "a"], ["GET", "b"]))
    assert s.round_wait is not None
    s.feed(b"*1\r\n$x\r\n")  # arrives while held: found bad only when the bytes run
    assert s.take_output() == b""
    group.confirm()
    out = s.take_output()
    assert out.startswith(b"$-1\r\n$-1\r\n-ERR Protocol error")
    assert s.ending is Ending.AFTER_REPLIES


def test_held_bytes_of_a_closed_connection_never_run() -> None:
    s, group = high()
    s.feed(req(["GET", "a"], ["SET", "a", "1"]))
    assert s.round_wait is not None
    s.lost()
    group.confirm()
    assert group.batch == [] and group.writes == []


def test_held_bytes_past_the_query_buffer_limit_close_the_connection() -> None:
    s, _group = high(max_query_buffer=64)
    s.feed(req(["GET", "a"], ["GET", "b"]))
    s.feed(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$60\r\n" + b"x" * 60 + b"\r\n")
    assert s.ending is Ending.NOW and s.round_wait is None
    assert b"max query buffer length reached" in s.take_output()
