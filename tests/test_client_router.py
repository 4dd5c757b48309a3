"""The client's decisions without I/O: where a request goes, when it goes again, and under
which session (redraft.client._Router, driven here by a scripted cluster)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.exceptions import MovedError, ResponseError

from redraft.client import OutcomeUnknown, _Router, _Step

Answer = Callable[[str, tuple[Any, ...]], Any]


def drive(router: _Router, args: tuple[Any, ...], answer: Answer) -> tuple[Any, list[Any]]:
    """Run one command's plan against ``answer``; its result and the calls made."""
    calls: list[Any] = []
    plan = router.plan(args)
    try:
        step, what = next(plan)
        while True:
            if step is _Step.SLEEP:
                step, what = next(plan)
                continue
            calls.append(what)
            try:
                reply = answer(*what)
            except Exception as exc:
                step, what = plan.throw(exc)
            else:
                step, what = plan.send(reply)
    except StopIteration as done:
        return done.value, calls


def router(*addrs: str, timeout: float = 5.0) -> _Router:
    return _Router(addrs or ("127.0.0.1:1",), timeout, 60.0, exactly_once=True)


def test_a_session_is_opened_first_and_commands_go_sequenced() -> None:
    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        return 41 if wire[0] == "RAFTSESSION" else b"ok"

    r = router()
    assert drive(r, ("SET", "k", "v"), answer)[0] == b"ok"
    _, calls = drive(r, ("GET", "k"), answer)
    assert calls == [("127.0.0.1:1", ("RAFTSEQ", 41, 1, 1, "GET", "k"))]


def test_try_and_moved_send_the_request_to_the_named_node() -> None:
    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        if wire[0] == "RAFTSESSION":
            return 1
        if addr == "127.0.0.1:1":
            raise ResponseError("TRY 127.0.0.1:2")
        if addr == "127.0.0.1:2":
            raise MovedError("866 127.0.0.1:3")
        return b"done"

    r = router("127.0.0.1:1")
    result, calls = drive(r, ("SET", "k", "v"), answer)
    assert result == b"done"
    sent = [(a, w[2]) for a, w in calls if w[0] == "RAFTSEQ"]
    assert sent == [("127.0.0.1:1", 0), ("127.0.0.1:2", 0), ("127.0.0.1:3", 0)]
    assert r.address == "127.0.0.1:3"


def test_a_dead_node_is_skipped_and_the_same_sequence_is_sent_again() -> None:
    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        if addr == "127.0.0.1:1":
            raise redis.ConnectionError("refused")
        return 7 if wire[0] == "RAFTSESSION" else b"x"

    r = router("127.0.0.1:1", "127.0.0.1:2")
    _, calls = drive(r, ("INCR", "n"), answer)
    seqs = [w[:3] for _, w in calls if w[0] == "RAFTSEQ"]
    assert seqs == [("RAFTSEQ", 7, 0)]


def test_a_forgotten_session_is_replaced_when_nothing_was_sent_under_it() -> None:
    sessions = iter([1, 2])

    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        if wire[0] == "RAFTSESSION":
            return next(sessions)
        if wire[1] == 1:
            raise ResponseError("NOSESSION client session 1 is unknown or expired")
        return b"ran"

    r = router()
    assert drive(r, ("INCR", "n"), answer)[0] == b"ran"
    assert r.session == 2


def test_a_forgotten_session_after_a_lost_reply_is_an_unknown_outcome() -> None:
    attempts = []

    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        if wire[0] == "RAFTSESSION":
            return 1
        attempts.append(wire)
        if len(attempts) == 1:
            raise redis.ConnectionError("reset by peer")  # it may have been applied
        raise ResponseError("NOSESSION client session 1 is unknown or expired")

    with pytest.raises(OutcomeUnknown, match="may or may not"):
        drive(router(), ("INCR", "n"), answer)


def test_command_errors_are_not_retried() -> None:
    calls = []

    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        calls.append(wire)
        if wire[0] == "RAFTSESSION":
            return 1
        raise ResponseError("value is not an integer or out of range")

    with pytest.raises(ResponseError, match="not an integer"):
        drive(router(), ("INCR", "s"), answer)
    assert len(calls) == 2


def test_no_leader_for_too_long_gives_up_with_the_last_error() -> None:
    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        raise ResponseError("leader not known")

    with pytest.raises(ResponseError, match=r"no node served the request within 0\.05 s"):
        drive(router(timeout=0.05), ("PING",), answer)


def test_acks_trail_the_oldest_request_in_flight() -> None:
    r = router()
    r.session = 5
    first = r._take()
    second = r._take()
    assert r._ack() == first
    r._release(first)
    assert r._ack() == second


def test_connection_commands_and_sessionless_clients_send_bare() -> None:
    def answer(addr: str, wire: tuple[Any, ...]) -> Any:
        return b"OK"

    r = router()
    _, calls = drive(r, ("SELECT", 0), answer)
    assert calls == [("127.0.0.1:1", ("SELECT", 0))]
    bare = _Router(["127.0.0.1:1"], 1.0, 60.0, exactly_once=False)
    _, calls = drive(bare, ("INCR", "n"), answer)
    assert calls == [("127.0.0.1:1", ("INCR", "n"))]
