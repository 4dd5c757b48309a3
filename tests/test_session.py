"""The request session on its own: bytes in, bytes out, no sockets, no node.

A fake group stands in for Raft: it keeps writes and waiting reads until the
test answers them, so each ordering rule of a connection can be shown step
by step (a read behind a write sees it; a write behind a read waits; replies
leave in request order), with authentication and the connection's limits.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraft.errors import Redirect
from redraft.examples.clone import Clone
from redraft.machine import Applier, Command, KeyRead, Respond
from redraft.options import Options
from redraft.registry import Registry
from redraft.replies import READ, WRITE, Line, Slot, answer
from redraft.resp import SPEEDUPS, encode_command
from redraft.security import Security
from redraft.session import Ending, Requests, Session, Shared

pytestmark = pytest.mark.timeout(30)


class FakeGroup:
    """Applies writes to the clone only when the test says they committed."""

    def __init__(self, machine: Clone) -> None:
        self.machine = machine
        self.lease = True
        self.leader = True
        self.writes: list[tuple[Slot, list[bytes]]] = []
        self.reads: list[Slot] = []
        self.batch: list[list[bytes]] = []
        self.runs: list[Slot] = []
        self.order: list[tuple[str, Slot, Any]] = []
        """Writes and runs as taken: ("write", slot, args) or ("run", slot, first batch index)."""
        self.link_up = True
        self.registry: Registry | None = None
        self.forwarded: list[tuple[str, bytes, Callable[[bytes | None], None], int]] = []
        self.forwarded_resp3: list[bool] = []
        """Whether each forwarded run was to be answered in RESP3."""

    def read_now(self) -> bool:
        return self.lease

    def is_leader(self) -> bool:
        return self.leader

    def read(self, conn: Line, slot: Slot | None, respond: Respond | None, name: str) -> Any:
        if self.lease:
            return respond(None) if respond is not None else None
        if not self.leader:
            raise Redirect("127.0.0.1:2")
        slot = slot or conn.new_slot(READ)
        slot.respond = respond
        slot.name = name
        self.reads.append(slot)
        return slot

    def write(
        self, conn: Line, slot: Slot | None, args: list[bytes], respond: Respond | None, name: str
    ) -> Slot:
        if not self.leader:
            raise Redirect("127.0.0.1:2")
        slot = slot or conn.new_slot(WRITE)
        slot.respond = respond
        slot.name = name
        self.writes.append((slot, args))
        self.order.append(("write", slot, args))
        return slot

    def open_run(self, slot: Slot) -> list[list[bytes]] | None:
        if not self.leader:
            return None
        self.runs.append(slot)
        self.order.append(("run", slot, len(self.batch)))
        return self.batch

    def forward(
        self,
        leader: str,
        commands: bytes,
        relay: Callable[[bytes | None], None],
        count: int,
        resp3: bool,
    ) -> bool:
        if self.link_up:
            self.forwarded.append((leader, commands, relay, count))
            self.forwarded_resp3.append(resp3)
        return self.link_up

    def leader_address(self) -> str:
        return "" if self.leader else "127.0.0.1:2"

    def requests(self) -> Requests:
        return Requests(
            self.read_now,
            self.read,
            self.write,
            self.open_run,
            lambda: 0,
            self.forward,
            self.leader_address,
        )

    def commit(self) -> None:
        """Apply and answer every write so far in the order they were taken, as a committed log would."""
        m = _Applying()
        plain = self.machine.writes()
        starts = [start for kind, _, start in self.order if kind == "run"] + [len(self.batch)]
        runs = 0
        for kind, slot, what in self.order:
            if kind == "write":
                args = what
                write = plain.get(args[0].decode().lower())
                result = (
                    write.apply(m, args) if write else self.machine.command(m, None, _cmd(args))
                )
                answer([slot], [result])
            else:
                runs += 1
                cmds = self.batch[what : starts[runs]]
                answer([slot], [plain[a[0].decode().lower()].apply(m, a) for a in cmds])
        self.writes, self.batch, self.runs, self.order = [], [], [], []
        if self.registry is not None:
            self.registry.state_changed()  # as Applying does after every apply

    def confirm(self) -> None:
        """A ReadIndex round confirmed the waiting reads."""
        reads, self.reads = self.reads, []
        answer(reads)


class _Applying(Applier):
    """``m`` as a committed entry sees it."""

    def apply(self, conn: Any, cmd: Any, mutate: Any, respond: Any) -> Any:
        return None if mutate is None else mutate()

    def now_ns(self) -> int:
        return 1

    def random(self) -> Any:
        raise AssertionError("not used")


def _cmd(args: list[bytes]) -> Command:
    return Command(args)


def _hello(s: Session, args: list[bytes]) -> bytes:
    """HELLO 2 or 3, as far as the protocol of the replies goes."""
    s.use_resp3(args[1:2] == [b"3"])
    return b"switched"


def session(
    password: str = "", lookups: dict[bytes, Any] | None = None, **limits: Any
) -> tuple[Session, FakeGroup]:
    """A session of a clone; ``lookups`` in place of the registry's KeyRead tables."""
    machine = Clone()
    group = FakeGroup(machine)
    opts = replace(Options(auth=password, log_level="warning"), **limits)
    registry = Registry({b"ping": lambda s, a: b"PONG", b"hello": _hello}, machine)
    if lookups is not None:
        registry.lookups = lookups
    group.registry = registry
    shared = Shared(
        registry,
        group.requests(),
        machine,
        opts,
        Security.from_options(opts, "127.0.0.1"),
    )
    return Session(shared, "127.0.0.1:1"), group


def req(*commands: list[str]) -> bytes:
    return b"".join(encode_command(c) for c in commands)


def test_a_read_behind_a_write_waits_for_it_and_sees_it() -> None:
    s, group = session()
    s.feed(req(["SET", "k", "1"], ["GET", "k"], ["PING"]))
    assert s.take_output() == b""  # nothing may pass the unanswered write
    group.commit()
    assert s.take_output() == b"+OK\r\n$1\r\n1\r\n$4\r\nPONG\r\n"


def test_a_write_behind_a_waiting_read_starts_only_once_the_read_is_served() -> None:
    s, group = session()
    group.lease = False  # reads wait for a ReadIndex round
    s.feed(req(["GET", "k"], ["SET", "k", "2"]))
    assert group.writes == [] and group.batch == []  # held: the read must not see it
    group.confirm()
    assert s.take_output() == b"$-1\r\n"
    assert [args for _, args in group.writes] == [[b"SET", b"k", b"2"]]
    group.commit()
    assert s.take_output() == b"+OK\r\n"


def test_pipelined_writes_share_one_slot_and_answer_in_order() -> None:
    s, group = session()
    s.feed(req(["SET", "a", "1"], ["SET", "b", "2"], ["SET", "c"], ["SET", "d", "4"]))
    assert len(group.runs) == 2 and len(group.batch) == 3  # the bad SET broke the run
    group.commit()
    assert s.take_output() == (
        b"+OK\r\n+OK\r\n-ERR wrong number of arguments for 'set' command\r\n+OK\r\n"
    )


def test_a_stranger_may_only_authenticate() -> None:
    s, _ = session(password="secret")
    s.feed(req(["GET", "k"], ["SET", "k", "v"], ["PING"]))
    assert s.take_output() == b"-NOAUTH Authentication required.\r\n" * 2 + b"$4\r\nPONG\r\n"


def test_a_protocol_error_answers_what_came_before_and_closes() -> None:
    s, _ = session()
    s.feed(req(["PING"]) + b"*1\r\n$x\r\n")
    assert s.take_output() == b"$4\r\nPONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    assert s.ending is Ending.AFTER_REPLIES and not s.has_pending()


def test_an_endless_request_is_cut_off_at_the_query_buffer_limit() -> None:
    s, _ = session(max_query_buffer=1000)
    s.feed(b"*2\r\n$3\r\nGET\r\n$100000\r\n" + b"x" * 2000)
    assert s.ending is Ending.NOW
    assert s.take_output().startswith(b"-ERR max query buffer length reached")


def test_replies_past_the_output_limit_drop_the_connection() -> None:
    s, group = session(max_output_buffer=100)
    group.machine._data[b"big"] = b"x" * 60
    s.feed(req(*[["GET", "big"]] * 5))
    assert s.ending is Ending.ABORT


def test_a_follower_redirects_every_request_of_a_pipeline_in_its_place() -> None:
    s, group = session()
    group.leader = group.lease = False
    s.feed(req(["SET", "a", "1"], ["SET", "b", "2"], ["SET", "c"], ["GET", "a"], ["GET", "b"]))
    wrong = b"-ERR wrong number of arguments for 'set' command\r\n"
    assert s.take_output() == b"-TRY 127.0.0.1:2\r\n" * 2 + wrong + b"-TRY 127.0.0.1:2\r\n" * 2
    assert not s.has_pending() and group.batch == []


# --- KeyRead reads answered by the parser (GET) ------------------------------------

REQUESTS = st.sampled_from(
    [
        ["GET", "a"],
        ["get", "a"],
        ["GeT", "b"],
        ["GET", "gone"],  # never set: nil
        ["GET"],
        ["GET", "a", "b"],
        ["SET", "a", "1"],
        ["SET", "b", "\r\n$2\r\n"],
        ["DEL", "a"],
        ["EXPIRE", "b", "2000000000"],  # an expiry: GET b goes to the machine's read
        ["PERSIST", "b"],
        ["STRLEN", "a"],
        ["PING"],
        ["SADD", "s", "x"],  # a set: WRONGTYPE, from the machine's read
        ["GET", "s"],
        ["DEL", "s"],
        ["HELLO", "3"],  # nil is _ from now on
        ["HELLO", "2"],
    ]
)


def _replay(pieces: list[bytes], lookups: bool) -> tuple[bytes, Ending]:
    s, group = session(lookups=None if lookups else {})
    out = b""
    for piece in pieces:
        s.feed(piece)
        group.commit()
        out += s.take_output()
    return out, s.ending


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(REQUESTS, max_size=24),
    tail=st.sampled_from([b"", b"*2\r\n$3\r\nGET\r\n$1\r\n", b"*1\r\n$x\r\n", b"GET a\r\n"]),
    cuts=st.lists(st.integers(0, 10**4), max_size=6),
)
def test_reads_the_parser_answers_reply_as_the_machines_read_would(
    requests: list[list[str]], tail: bytes, cuts: list[int]
) -> None:
    data = req(*requests) + tail
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]
    assert _replay(pieces, lookups=True) == _replay(pieces, lookups=False)


def _counting_get(s: Session) -> list[list[bytes]]:
    """The calls of the clone's GET read from now on."""
    key_read = s.shared.registry.route(b"get").fn
    assert isinstance(key_read, KeyRead)
    calls: list[list[bytes]] = []
    read = key_read.read

    def counted(m: Applier, args: list[bytes]) -> Any:
        calls.append(args)
        return read(m, args)

    key_read.read = counted
    return calls


@pytest.mark.skipif(not SPEEDUPS, reason="redraft._cresp is not in use")
def test_a_get_of_a_plain_string_is_answered_without_the_machines_read() -> None:
    s, group = session()
    s.feed(req(["SET", "a", "1"], ["SET", "b", "2"]))
    group.commit()
    s.feed(req(["EXPIRE", "b", "2000000000"]))
    group.commit()
    assert s.take_output() == b"+OK\r\n+OK\r\n:1\r\n"
    calls = _counting_get(s)
    s.feed(
        req(["GET", "a"], ["GET", "zz"], ["get", "a"], ["GET", "b"], ["GET", "a"], ["GET", "zz"])
    )
    ones = b"$1\r\n1\r\n"
    assert s.take_output() == ones + b"$-1\r\n" + ones + b"$1\r\n2\r\n" + ones + b"$-1\r\n"
    # From the first request the parser could not answer (a key with an
    # expiry) on, the machine's read serves, in order.
    assert calls == [[b"GET", b"b"], [b"GET", b"a"], [b"GET", b"zz"]]


def test_a_get_behind_an_unanswered_write_or_without_the_lease_waits_its_turn() -> None:
    s, group = session()
    s.feed(req(["SET", "a", "1"]))
    group.commit()
    assert s.take_output() == b"+OK\r\n"
    s.feed(req(["SET", "a", "2"], ["GET", "a"]))
    assert s.take_output() == b""  # the GET must see the SET
    group.commit()
    assert s.take_output() == b"+OK\r\n$1\r\n2\r\n"
    group.lease = False
    s.feed(req(["GET", "a"]))
    assert s.take_output() == b""  # a ReadIndex round first
    group.confirm()
    assert s.take_output() == b"$1\r\n2\r\n"


def test_a_machine_whose_tables_fail_is_answered_by_its_read() -> None:
    def broken() -> tuple[dict[bytes, Any], ...]:
        raise RuntimeError("tables unavailable")

    s, group = session(lookups={b"get": broken})
    s.feed(req(["SET", "a", "1"]))
    group.commit()
    s.take_output()
    s.feed(req(["GET", "a"], ["GET", "a"], ["GET", "zz"]))
    assert s.take_output() == b"$1\r\n1\r\n" * 2 + b"$-1\r\n"


# --- a request alone in its read (no pipeline) --------------------------------------

LONE = st.sampled_from(
    [
        ["SET", "a", "1"],
        ["set", "b", "2"],
        ["SET", "a"],  # refused before the log
        ["SET", "a", "3", "NX"],
        ["SET", "a", "4", "BOGUS"],
        ["INCR", "n"],
        ["DEL", "a"],
        ["GET", "a"],
        ["MGET", "a", "n"],
        ["EXISTS", "a"],
        ["GET"],  # a read refused: wrong number of arguments
        ["PING"],
    ]
)


def _served(
    requests: list[list[str]], alone: bool, leader: bool, lease: bool, password: str
) -> bytes:
    s, group = session(password=password)
    group.leader, group.lease = leader, lease
    for piece in [req(r) for r in requests] if alone else [req(*requests)]:
        s.feed(piece)
    for _ in range(len(requests) + 1):  # what each answer lets start
        # Writes commit before waiting reads are confirmed: a write that
        # jumped ahead of a read before it would change what the read sees.
        group.commit()
        group.confirm()
    assert not s.has_pending()
    return s.take_output()


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(LONE, min_size=1, max_size=12),
    leader=st.booleans(),
    lease=st.booleans(),
    password=st.sampled_from(["", "secret"]),
)
def test_requests_each_alone_in_its_read_are_answered_as_one_pipeline_would_be(
    requests: list[list[str]], leader: bool, lease: bool, password: str
) -> None:
    # A write alone in its read takes a shorter path (ReplyLine._lone_write),
    # and so does a read the parser does not answer (Session._dispatch):
    # refusals, redirects, authentication and the order of replies behind
    # waiting reads must come out as they do for the same requests pipelined.
    one_by_one = _served(requests, True, leader, lease, password)
    assert one_by_one == _served(requests, False, leader, lease, password)
    assert one_by_one.count(b"\r\n") >= len(requests)


def test_a_lone_write_is_queued_in_the_batch_and_answered_when_it_commits() -> None:
    s, group = session()
    s.feed(req(["SET", "k", "v"]))
    assert group.batch == [[b"SET", b"k", b"v"]] and s.take_output() == b""
    s.feed(req(["SET", "k"]))  # refused: its error waits behind the first write's reply
    assert s.take_output() == b"" and len(group.batch) == 1
    group.commit()
    assert s.take_output() == b"+OK\r\n-ERR wrong number of arguments for 'set' command\r\n"
