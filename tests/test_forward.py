"""Cutting a peer link's byte stream into the replies of forwarded requests (transport.forward)."""

from __future__ import annotations

import pytest

from redraft.resp import encode, encode3, encode_command
from redraft.transport.forward import HELLO, Forwarded, reply_end

REPLIES = [
    b"+OK\r\n",
    b"-ERR no\r\n",
    b":42\r\n",
    b"$-1\r\n",
    b"$0\r\n\r\n",
    b"$5\r\nhe\r\no\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*3\r\n$1\r\na\r\n:1\r\n*2\r\n$-1\r\n+x\r\n",
    b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n",
    b"_\r\n",
    b"~2\r\n:1\r\n:2\r\n",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_a_whole_reply_ends_where_it_ends_and_a_partial_one_is_incomplete(reply: bytes) -> None:
    assert reply_end(reply + b"+next\r\n", 0) == len(reply)
    for cut in range(len(reply)):
        assert reply_end(reply[:cut], 0) == -1


def test_what_the_encoders_write_is_framed_exactly() -> None:
    value = [b"a", None, 3, [b"nested", {b"k": 1.5}], "text"]
    for data in (encode(value), encode3(value)):
        assert reply_end(data, 0) == len(data)


def test_replies_go_to_their_requests_in_order_however_the_bytes_are_cut() -> None:
    stream = b"".join(REPLIES)
    for step in (1, 3, 7, len(stream)):
        got: list[bytes | None] = []
        f = Forwarded(limit=100)
        for _ in REPLIES:
            assert f.expect(got.append)
        for i in range(0, len(stream), step):
            f.feed(stream[i : i + step])
        assert got == REPLIES
        assert len(f) == 0


def test_a_lost_link_answers_every_waiting_request_with_none() -> None:
    got: list[bytes | None] = []
    f = Forwarded(limit=2)
    assert f.expect(got.append) and f.expect(got.append)
    assert not f.expect(got.append)  # bounded
    f.feed(b"+OK\r\n$3\r\nab")
    f.lost()
    assert got == [b"+OK\r\n", None]


def test_a_reply_nobody_waits_for_or_garbage_is_refused() -> None:
    with pytest.raises(ValueError, match="no forwarded request"):
        Forwarded(1).feed(b"+OK\r\n")
    f = Forwarded(1)
    f.expect(lambda _: None)
    with pytest.raises(ValueError, match="not a RESP reply"):
        f.feed(b"?what\r\n")


# --- a link answered in its clients' protocol


def test_a_link_switches_protocol_only_when_the_next_client_speaks_the_other() -> None:
    got: list[bytes | None] = []
    f = Forwarded(limit=100)
    assert not f.resp3  # a link starts in RESP2: RESP2 clients never cost a HELLO
    assert f.switch(True, 2) == HELLO[True] == encode_command(["HELLO", "3"])
    assert f.resp3 and f.expect(got.append, 2)
    assert f.switch(False, 1) == HELLO[False] == encode_command(["HELLO", "2"])
    assert not f.resp3 and f.expect(got.append)
    hello3 = encode3({b"server": b"redraft", b"proto": 3})
    hello2 = encode({b"server": b"redraft", b"proto": 2})
    f.feed(hello3 + b"%0\r\n,1.5\r\n" + hello2 + b"*0\r\n")
    assert got == [b"%0\r\n", b",1.5\r\n", b"*0\r\n"]  # each HELLO's own reply swallowed
    assert len(f) == 0 and not f.refused


def test_a_switch_counts_against_the_bound() -> None:
    f = Forwarded(limit=3)
    assert f.switch(True, 3) is None and not f.resp3  # HELLO + 3 would make 4
    assert f.switch(True, 2) == HELLO[True]


def test_a_peer_that_refuses_hello_leaves_the_link_in_resp2_for_good() -> None:
    # A leader that would not speak RESP3: its replies come in RESP2, as before links
    # were switched, and it is not asked again on this connection.
    got: list[bytes | None] = []
    f = Forwarded(limit=100)
    assert f.switch(True, 1) == HELLO[True]
    f.expect(got.append)
    f.feed(b"-ERR unknown command 'HELLO'\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
    assert got == [b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"]
    assert f.refused and not f.resp3
    assert f.switch(True, 1) == b""  # the requests go as they are


def test_a_push_on_a_link_answers_no_request() -> None:
    got: list[bytes | None] = []
    f = Forwarded(limit=10)
    f.expect(got.append)
    f.feed(b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n+OK\r\n")
    assert got == [b"+OK\r\n"]


def test_an_attribute_belongs_to_the_reply_that_follows_it() -> None:
    reply = b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n"
    assert reply_end(reply + b"+next\r\n", 0) == len(reply)
    for cut in range(len(reply)):
        assert reply_end(reply[:cut], 0) == -1
