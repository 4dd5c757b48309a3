"""How a node is tuned: durability, read consistency, backend, timing, limits."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redraft.machine import Conn


class Level(enum.IntEnum):
    """A durability or consistency level (Finn's Low/Medium/High)."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2

    @classmethod
    def parse(cls, text: str | Level) -> Level:
        """``"low"``, ``"medium"``, ``"high"`` (any case) or a Level."""
        if isinstance(text, Level):
            return text
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"invalid level {text!r}: expected low, medium or high") from None


LOG_LEVELS = ("quiet", "warning", "notice", "verbose", "debug")


@dataclass
class Options:
    """Everything about a node that is not its address, data dir or machine.

    Durability (``durability``):

    * LOW: never fsync the log; the operating system decides.
    * MEDIUM: fsync in the background at most one second after a write.
    * HIGH: nothing is acknowledged before it is fsynced; writes that arrive
      together share one fsync (group commit).

    Hard state (term, vote) and membership are fsynced before they are acted
    on at every level: that is Raft's safety, not a speed knob.

    Consistency (``consistency``) of reads:

    * LOW: any node answers from its own state (may be stale).
    * MEDIUM: only the leader answers, while its lease holds.
    * HIGH: only the leader, after a ReadIndex round confirms it still leads
      (linearizable); reads arriving together share one round.
    """

    consistency: Level = Level.MEDIUM
    durability: Level = Level.MEDIUM
    backend: str = "fastlog"
    log_level: str = "notice"
    advertise: str = ""
    """The ``host:port`` peers and redirected clients dial; default: the bind
    address, or 127.0.0.1 when bound to every interface."""

    peer_routes: dict[str, str] = field(default_factory=dict)
    """Dial these ``host:port`` addresses instead of a peer's own address
    (peer id -> address), e.g. to route peer traffic through test proxies."""

    on_accept: Callable[[Conn], bool] | None = None
    """Called for each new client; return False to refuse it."""
    on_closed: Callable[[Conn, Exception | None], None] | None = None
    """Called when a client connection closes."""

    tick_ms: int = 50
    election_ticks: int = 10
    heartbeat_ticks: int = 1

    snapshot_entries: int = 100_000
    """Take a snapshot after this many log entries since the last one..."""
    snapshot_bytes: int = 256 << 20
    """...or this many bytes of log, whichever comes first."""
    snapshot_keep: int = 2
    """Snapshot files kept on disk."""
    compaction_tail: int = 1000
    """Entries kept behind a snapshot for followers that lag a little."""
    snapshot_chunk_bytes: int = 1 << 20
    """Size of the pieces a snapshot is streamed to a follower in (4 in flight)."""

    max_batch_commands: int = 4096
    """Commands packed into one log entry at most."""
    max_batch_bytes: int = 1 << 20
    write_timeout: float = 30.0
    """Seconds a client waits for its write to commit before an error."""
    join_timeout: float = 60.0
    """Seconds a joining node keeps asking to be added."""

    max_clients: int = 10_000
    max_bulk_len: int = 512 << 20
    max_multibulk_len: int = 1024 * 1024
    max_inline_len: int = 64 << 10
    max_query_buffer: int = 1 << 30
    max_output_buffer: int = 256 << 20
    idle_timeout: float = 0.0
    """Close clients idle this many seconds (0: never)."""

    extra: dict[str, object] = field(default_factory=dict)
    """Free-form settings for applications built on redraft."""

    def __post_init__(self) -> None:
        self.consistency = Level.parse(self.consistency)
        self.durability = Level.parse(self.durability)
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"invalid log level {self.log_level!r}: one of {', '.join(LOG_LEVELS)}"
            )
        if self.tick_ms <= 0 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need tick_ms > 0 and election_ticks > heartbeat_ticks")
