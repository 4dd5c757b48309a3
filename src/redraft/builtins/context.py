"""The narrow view of a node that built-in commands work through.

Built-ins never see the node itself: each takes a :class:`Cluster` (what it
may ask of the node), the :class:`~redraft.session.Session` that sent the
command and the command's arguments.  A test can hand them a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from redraft.backup import Backups
from redraft.errors import ErrWrongNumberOfArguments
from redraft.options import Options
from redraft.pubsub import PubSub
from redraft.raft.types import ChangeType, Membership
from redraft.security import Security
from redraft.session import Session

Done = Callable[[BaseException | None], None]
"""Called once an operation finished: None, or why it failed."""


@dataclass(frozen=True)
class PeerView:
    """One member as RAFTPEERS shows it."""

    address: str
    voter: bool
    promoting: bool
    match_index: int | None
    """None when this node does not track it (it does not lead)."""
    last_contact_ms: int | None
    replication: str
    """The leader's replication state of the member (probe, replicate, snapshot), or ""."""


class Cluster(Protocol):
    """What built-in commands may ask of the node (implemented by :class:`redraft.node.Node`)."""

    id: str
    port: int
    started: float
    options: Options
    security: Security
    pubsub: PubSub
    """The node's subscriptions (pub/sub is node-local; messages come through the log)."""
    backups: Backups
    """The online backups being read from this node (RAFTBACKUP)."""

    @property
    def joining(self) -> bool:
        """Whether this node started empty with ``--join`` and is not yet admitted."""
        ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def leader(self) -> str:
        """The leader this node knows of ("" if none)."""
        ...

    @property
    def term(self) -> int:
        """The current Raft term (what CLUSTER shows as the config epoch)."""
        ...

    @property
    def state_name(self) -> str:
        """Leader, Follower, Candidate, Shutdown... (Finn's RAFTSTATE)."""
        ...

    @property
    def membership(self) -> Membership: ...

    def peers(self) -> list[PeerView]:
        """Every member, the leader first."""
        ...

    def raft_stats(self) -> dict[str, Any]:
        """RAFTSTATS, as ordered pairs."""
        ...

    def sessions(self) -> list[Session]:
        """The open connections, oldest first."""
        ...

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the node's loop after ``delay`` seconds."""
        ...

    def transfer_leadership(self, target: str | None, done: Done) -> None:
        """Hand leadership to ``target`` (None: the most caught-up voter); raises Redirect."""
        ...

    def propose_config(self, change: ChangeType, addr: str, done: Done) -> None:
        """Propose a membership change; raises Redirect, ChangeInProgress, InvalidChange."""
        ...

    def snapshot_now(self, done: Done) -> None:
        """Take a snapshot of the applied state now."""
        ...

    def digest(self) -> tuple[int, bytes]:
        """(applied index, SHA-256 hex of the machine's snapshot bytes); raises ErrDisabled."""
        ...

    def machine_info(self) -> Mapping[str, Mapping[str, str]]:
        """The machine's INFO sections (``Machine.info``); empty if it raised."""
        ...

    def on_peer_messages(self, payload: bytes, peer: str) -> None:
        """A RAFTMSG arrived on an authenticated peer connection."""
        ...


def arity(args: list[bytes], lo: int, hi: int | None = None) -> None:
    """Raise Redis's wrong-number-of-arguments error unless ``lo <= len(args) <= hi``."""
    n = len(args)
    if n < lo or (hi is not None and n > hi):
        raise ErrWrongNumberOfArguments()


def text(raw: bytes) -> str:
    """An argument as text, for messages and names (never fails)."""
    return raw.decode("utf-8", "replace")
