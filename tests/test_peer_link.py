"""An outgoing peer link keeps what was written before it first came up, and sends it then."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from redraft.transport.peers import PeerLink

pytestmark = pytest.mark.timeout(10)


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writelines(self, parts: list[bytes]) -> None:
        self.written.append(b"".join(parts))


class FakeProto:
    def __init__(self) -> None:
        self.transport = FakeTransport()


def link() -> tuple[PeerLink, list[str]]:
    unreachable: list[str] = []
    return PeerLink("127.0.0.1:1", "127.0.0.1:2", [b"RAFTPEER"], unreachable.append), unreachable


def up(pl: PeerLink) -> FakeTransport:
    proto: Any = FakeProto()
    pl._on_ready(proto)
    transport: FakeTransport = proto.transport
    return transport


def test_messages_written_before_the_first_connection_are_sent_in_order_once_it_is_up() -> None:
    pl, unreachable = link()
    assert pl.send([b"vote-request"])
    assert pl.send([b"heart", b"beat"])
    transport = up(pl)
    assert transport.written == [b"vote-request", b"heartbeat"]
    assert pl.send([b"later"])
    assert transport.written[-1] == b"later"
    assert unreachable == []


def test_only_a_bounded_few_are_kept_while_connecting() -> None:
    pl, _ = link()
    kept = sum(pl.send([b"m%d" % i]) for i in range(1000))
    assert 0 < kept < 1000
    assert len(up(pl).written) == kept


def test_messages_written_while_a_link_that_was_up_is_down_are_dropped() -> None:
    pl, unreachable = link()
    proto: Any = FakeProto()
    pl._on_ready(proto)
    pl._lost = asyncio.Event()  # what the dial loop waits on
    pl._on_lost(proto)
    assert unreachable == ["127.0.0.1:1"]
    assert not pl.send([b"stale"])
    assert up(pl).written == []


def test_forwarded_requests_carry_their_clients_protocol_with_a_hello_only_on_a_change() -> None:
    from redraft.transport.forward import HELLO, Forwarded

    pl, _ = link()
    proto: Any = FakeProto()
    proto.forwarded = Forwarded(100)
    pl._on_ready(proto)
    written: list[bytes] = proto.transport.written
    relay: Any = lambda _: None  # noqa: E731
    assert pl.forward(b"<r2>", relay)
    assert pl.forward(b"<r3a>", relay, 2, resp3=True)
    assert pl.forward(b"<r3b>", relay, 1, resp3=True)
    assert pl.forward(b"<r2>", relay, 1, resp3=False)
    assert written == [b"<r2>", HELLO[True] + b"<r3a>", b"<r3b>", HELLO[False] + b"<r2>"]
    assert len(proto.forwarded) == 7  # 5 requests and 2 HELLOs wait for their replies
