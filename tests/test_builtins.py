"""Built-in commands on their own: each works through the narrow Cluster view, here a fake one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from redraft.builtins import builtins
from redraft.builtins.context import Done, PeerView
from redraft.errors import ErrDisabled
from redraft.examples.clone import Clone
from redraft.options import Options
from redraft.pubsub import PubSub
from redraft.raft.types import ChangeInProgress, ChangeType, Membership
from redraft.registry import Registry
from redraft.resp import encode_command
from redraft.security import Security
from redraft.session import Session, Shared
from tests.test_session import FakeGroup

pytestmark = pytest.mark.timeout(30)


@dataclass
class FakeCluster:
    id: str = "127.0.0.1:1"
    port: int = 1
    started: float = 0.0
    options: Options = field(default_factory=lambda: Options(log_level="warning"))
    security: Security = field(
        default_factory=lambda: Security.from_options(Options(), "127.0.0.1")
    )
    joining: bool = False
    is_leader: bool = True
    leader: str = "127.0.0.1:1"
    term: int = 3
    state_name: str = "Leader"
    membership: Membership = field(
        default_factory=lambda: Membership(frozenset({"127.0.0.1:1", "127.0.0.1:2"}))
    )
    snapshot_error: BaseException | None = None
    change_error: BaseException | None = None
    proposed: list[tuple[ChangeType, str]] = field(default_factory=list)
    later: list[Callable[[], None]] = field(default_factory=list)
    open_sessions: list[Session] = field(default_factory=list)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    pubsub: PubSub = field(default_factory=PubSub)
    """What the machine's ``info`` gives."""

    def peers(self) -> list[PeerView]:
        return [
            PeerView("127.0.0.1:1", True, False, 7, 0, ""),
            PeerView("127.0.0.1:2", True, False, 5, 50, "replicate"),
        ]

    def raft_stats(self) -> dict[str, Any]:
        return {"term": 3, "state": self.state_name}

    def sessions(self) -> list[Session]:
        return self.open_sessions

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.later.append(fn)

    def transfer_leadership(self, target: str | None, done: Done) -> None:
        done(None)

    def propose_config(self, change: ChangeType, addr: str, done: Done) -> None:
        if self.change_error is not None:
            raise self.change_error
        self.proposed.append((change, addr))
        done(None)

    def snapshot_now(self, done: Done) -> None:
        done(self.snapshot_error)

    def digest(self) -> tuple[int, bytes]:
        raise ErrDisabled()

    def machine_info(self) -> dict[str, dict[str, str]]:
        return self.sections

    def on_peer_messages(self, payload: bytes, peer: str) -> None:
        pass


def run(ctx: FakeCluster, *commands: list[str], password: str = "") -> bytes:
    """Feed ``commands`` to a fresh session whose built-ins see ``ctx``; what it answers."""
    machine = Clone()
    opts = Options(log_level="warning", auth=password)
    ctx.security = Security.from_options(opts, "127.0.0.1")
    shared = Shared(
        Registry(builtins(ctx), machine), FakeGroup(machine).requests(), machine, opts, ctx.security
    )
    s = Session(shared, "127.0.0.1:9")
    ctx.open_sessions.append(s)
    s.feed(b"".join(encode_command(c) for c in commands))
    for fn in ctx.later:
        fn()
    return s.take_output()


def test_raftsnapshot_says_snapshots_are_disabled_when_the_machine_disables_them() -> None:
    ctx = FakeCluster(snapshot_error=ErrDisabled())
    assert run(ctx, ["RAFTSNAPSHOT"]) == b"-ERR snapshots are disabled\r\n"
    assert run(ctx, ["RAFTDIGEST"]) == b"-ERR snapshots are disabled, so there is no digest\r\n"


def test_raftpeers_lists_the_leader_first() -> None:
    out = run(FakeCluster(), ["RAFTPEERS"])
    assert out == (
        b"*4\r\n$11\r\n127.0.0.1:1\r\n$6\r\nLeader\r\n$11\r\n127.0.0.1:2\r\n$8\r\nFollower\r\n"
    )


def test_membership_changes_need_a_credential_when_the_cluster_has_one() -> None:
    ctx = FakeCluster()
    out = run(ctx, ["RAFTADDPEER", "127.0.0.1:3"], password="pw")
    assert out == b"-NOAUTH Authentication required.\r\n"
    out = run(ctx, ["AUTH", "pw"], ["RAFTADDPEER", ":3"], password="pw")
    assert out == b"+OK\r\n+OK\r\n"
    assert ctx.proposed == [(ChangeType.ADD_VOTER, "127.0.0.1:3")]


def test_a_change_while_another_is_in_progress_is_refused_and_the_line_goes_on() -> None:
    ctx = FakeCluster(change_error=ChangeInProgress("busy"))
    out = run(ctx, ["RAFTREMOVEPEER", "127.0.0.1:2"], ["PING"])
    assert out == b"-ERR a membership change is already in progress; try again\r\n+PONG\r\n"


def test_a_follower_redirects_a_join_to_the_leader() -> None:
    ctx = FakeCluster(is_leader=False, leader="127.0.0.1:2", state_name="Follower")
    assert run(ctx, ["RAFTJOIN", "127.0.0.1:3"]) == b"-TRY 127.0.0.1:2\r\n"


def test_a_wrong_password_is_answered_after_the_delay() -> None:
    ctx = FakeCluster()
    out = run(ctx, ["AUTH", "nope"], ["PING"], password="pw")
    assert out == (b"-WRONGPASS invalid username-password pair or user is disabled.\r\n+PONG\r\n")
    assert len(ctx.later) == 1  # the answer came from the timer the delay set


def test_text_replies_are_verbatim_strings_in_resp3_as_in_redis() -> None:
    """INFO and CLIENT INFO/LIST: bulk strings in RESP2, ``=N txt:...`` after HELLO 3."""
    ctx = FakeCluster()
    out = run(ctx, ["CLIENT", "INFO"])
    line = out[out.index(b"\n") + 1 : -2]
    assert line.startswith(b"id=") and line.endswith(b" name=\n")  # LF-ended, as Redis's
    assert out == b"$%d\r\n%b\r\n" % (len(line), line)
    assert run(ctx, ["CLIENT", "LIST"]).startswith(b"$")
    info = run(ctx, ["INFO", "stats"])
    assert info.startswith(b"$") and b"\r\n# Stats\r\npubsub_channels:0\r\n" in info
    out = run(ctx, ["HELLO", "3"], ["CLIENT", "INFO"], ["INFO", "stats"], ["CLIENT", "LIST"])
    hello_end = out.index(b"\r\n=") + 2
    client_info, info3, client_list = _verbatims(out[hello_end:])
    assert client_info.startswith(b"id=") and client_info.endswith(b" name=\n")
    assert info3 == info[info.index(b"\n") + 1 : -2]
    assert client_list.count(b"\n") == len(ctx.open_sessions)


def _verbatims(data: bytes) -> list[bytes]:
    """The texts of the RESP3 verbatim strings ``data`` holds, one after the other."""
    texts = []
    while data:
        head, rest = data.split(b"\r\n", 1)
        assert head[:1] == b"=" and rest[:4] == b"txt:", data
        n = int(head[1:])
        texts.append(rest[4:n])
        assert rest[n : n + 2] == b"\r\n"
        data = rest[n + 2 :]
    return texts


def test_config_resetstat_zeroes_the_stats_section_and_nothing_else() -> None:
    ctx = FakeCluster()
    ctx.pubsub.published, ctx.pubsub.delivered = 5, 7
    sub = run(ctx, ["SUBSCRIBE", "news"])
    assert sub.endswith(b"$4\r\nnews\r\n:1\r\n")
    before = run(ctx, ["INFO", "stats"])
    assert b"pubsub_messages_applied:5\r\npubsub_messages_delivered:7\r\n" in before
    assert run(ctx, ["CONFIG", "RESETSTAT"]) == b"+OK\r\n"
    assert run(ctx, ["HELLO", "3"], ["CONFIG", "resetstat"]).endswith(b"+OK\r\n")
    after = run(ctx, ["INFO", "stats"])
    assert b"pubsub_channels:1\r\n" in after  # a gauge: the subscription stays
    assert b"pubsub_messages_applied:0\r\npubsub_messages_delivered:0\r\n" in after
    assert run(ctx, ["CONFIG", "RESETSTAT", "x"]) == (
        b"-ERR wrong number of arguments for 'config|resetstat' command\r\n"
    )
