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

LOG_FORMATS = ("text", "json")
"""How log lines are written (``Options.log_format``): plain text, or one JSON object a line."""

REDIRECTS = ("try", "moved", "proxy")
"""How a node that may not serve a request sends the client on (``Options.redirect``)."""


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
    log_format: str = "text"
    """``"text"``, or ``"json"``: one object a line (time, level, logger, message, exception)."""
    metrics_port: int = 0
    """Serve ``/metrics`` (Prometheus), ``/status.json`` and a status page at ``/`` over
    HTTP on this port of the bind host; 0: off."""
    advertise: str = ""
    """The ``host:port`` peers and redirected clients dial; default: the bind
    address, or 127.0.0.1 when bound to every interface."""

    redirect: str = "try"
    """How a node that may not serve a request (a follower, for a write) says so:

    * ``"try"``: ``-TRY host:port`` naming the leader (Finn's), or ``-ERR
      leader not known``.
    * ``"moved"``: as a Redis Cluster of one shard that holds every slot,
      the leader its master: ``-MOVED <slot of the command's key>
      host:port``, or ``-CLUSTERDOWN The cluster is down``; ``CLUSTER
      SLOTS``/``SHARDS``/``NODES``/``INFO`` describe it, so that cluster
      clients (``redis-cli -c``, redis-py's ``RedisCluster``, ioredis's
      ``Cluster``) find the leader and follow it.
    * ``"proxy"``: a follower forwards the request to the leader over its peer
      link and relays the reply, in order: any client works at any node.  A
      reply lost with the link (the leader died mid-request) is an error
      that says the outcome is unknown; nothing is retried."""

    peer_routes: dict[str, str] = field(default_factory=dict)
    """Dial these ``host:port`` addresses instead of a peer's own address
    (peer id -> address), e.g. to route peer traffic through test proxies."""

    on_accept: Callable[[Conn], bool] | None = None
    """Called for each new client; return False to refuse it."""
    on_closed: Callable[[Conn, Exception | None], None] | None = None
    """Called when a client connection closes."""

    tick_ms: int = 50
    election_ticks: int = 20
    """A follower campaigns after 1-2 election timeouts of silence (20 ticks
    of 50 ms: 1-2 s, as etcd and hashicorp/raft), long enough that a node
    busy on a loaded machine is not mistaken for a dead one."""
    heartbeat_ticks: int = 1
    tick_interval_ms: int = 100
    """How often the leader logs a tick for a machine that defines
    ``Machine.tick`` (and wants one: ``Machine.wants_tick``); 0: never."""
    spin_us: int = 1000
    """After logging entries, keep the event loop polling (busy) this many
    microseconds for what comes next, instead of sleeping, while the
    machine's CPU is not contended (see :mod:`redraft.spinning`); 0: never.
    A single client's write then takes about half as long on a VM."""

    snapshot_entries: int = 20_000
    """Take a snapshot after this many log entries since the last one..."""
    snapshot_bytes: int = 64 << 20
    """...or this many bytes of log, whichever comes first."""
    snapshot_keep: int = 2
    """Snapshot files kept on disk."""
    compaction_tail: int = 200
    """Entries kept behind a snapshot for followers that lag a little..."""
    compaction_tail_bytes: int = 64 << 20
    """...but at most this many bytes of them: under heavy writes of large
    values an entry (a batch) holds megabytes, and the tail stays in memory."""
    snapshot_chunk_bytes: int = 1 << 20
    """Size of the pieces a snapshot is streamed to a follower in (4 in flight)."""

    max_batch_commands: int = 4096
    """Commands packed into one log entry at most."""
    max_inflight_batches: int = 0
    """Batches of writes proposed but not yet committed, at most; more writes
    wait and join the next batch (adaptive batching: fewer, larger batches
    under load, no added delay when idle).  0, the default, chooses by
    durability (:meth:`inflight_batches`): two at low and medium, where a
    batch fills and goes out while the one before it waits for its
    acknowledgements; one at high, where every batch also costs an fsync on
    each node and a second one in flight only makes them smaller: 13-27 %
    more single-request writes per second from 50 clients, at a quarter to
    a third less CPU (BENCHMARKS.md)."""
    write_timeout: float = 30.0
    """Seconds a client waits for its write to commit before an error."""
    join_timeout: float = 60.0
    """Seconds a joining node keeps asking to be added; then it stops with an error."""
    join_as_learner: bool = False
    """Join (``--join``) as a permanent learner: a read replica that never votes."""
    restore: str = ""
    """A backup file to start a new single-node cluster from (the data dir must be empty)."""
    force_new_cluster: bool = False
    """Start from the data dir as the only voter of a new configuration (a lost majority)."""

    max_clients: int = 10_000
    max_bulk_len: int = 512 << 20
    max_multibulk_len: int = 1024 * 1024
    max_inline_len: int = 64 << 10
    max_query_buffer: int = 1 << 30
    """A client whose unparsed input exceeds this many bytes is disconnected
    (64 KiB until it has authenticated, when a password is set)."""
    max_output_buffer: int = 256 << 20
    """A client whose unsent replies exceed this many bytes is disconnected."""
    idle_timeout: float = 0.0
    """Close clients idle this many seconds (0: never); peer links are exempt."""
    max_peer_message: int = 1 << 30
    """RAFTMSG payloads (message batches, snapshot chunks included) above this
    many bytes are dropped and logged.  Keep it at least ``max_query_buffer``:
    the largest command a client may send becomes one log entry."""

    auth: str = field(default="", repr=False)
    """Password clients must give with ``AUTH`` (empty: none)."""
    peer_secret: str = field(default="", repr=False)
    """Secret peers prove they know before their messages are accepted;
    empty: the ``auth`` password (peers are unauthenticated when both are empty)."""
    auth_failure_delay: float = 0.25
    """Seconds a wrong password waits before its error reply (per connection,
    one failure after another), against guessing."""
    tls_cert: str = ""
    """PEM certificate (chain) of this node; enables TLS for clients and peers."""
    tls_key: str = field(default="", repr=False)
    """PEM private key of ``tls_cert`` (empty: the key is in ``tls_cert``)."""
    tls_ca: str = ""
    """PEM CA bundle peers' certificates (and clients' with ``tls_client_auth``)
    are verified against; empty: the system's trusted roots."""
    tls_client_auth: bool = False
    """Require clients and peers to present a certificate signed by ``tls_ca``."""
    shutdown_timeout: float = 5.0
    """Seconds SIGTERM/SIGINT waits for in-flight commands and a leadership
    handover before the node stops anyway."""

    def __post_init__(self) -> None:
        self.consistency = Level.parse(self.consistency)
        self.durability = Level.parse(self.durability)
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"invalid log level {self.log_level!r}: one of {', '.join(LOG_LEVELS)}"
            )
        if self.log_format not in LOG_FORMATS:
            raise ValueError(
                f"invalid log format {self.log_format!r}: one of {', '.join(LOG_FORMATS)}"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"invalid metrics port {self.metrics_port}: 0 (off) to 65535")
        if self.redirect not in REDIRECTS:
            raise ValueError(f"invalid redirect {self.redirect!r}: one of {', '.join(REDIRECTS)}")
        if self.max_inflight_batches < 0:
            raise ValueError("max_inflight_batches must be 0 (by durability) or more")
        if self.tick_ms <= 0 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need tick_ms > 0 and election_ticks > heartbeat_ticks")
        if self.tick_interval_ms < 0:
            raise ValueError("tick_interval_ms must be 0 (no ticks) or more")
        if not 0 <= self.spin_us <= 1_000_000:
            raise ValueError("spin_us must be 0 (no spinning) to 1000000")
        # Four snapshot chunks may travel in one batch; a cap below that would
        # drop every batch of a snapshot transfer and stall it for ever.
        if self.max_peer_message < 4 * self.snapshot_chunk_bytes + (64 << 10):
            raise ValueError(
                "max_peer_message must exceed 4 * snapshot_chunk_bytes (plus 64 KiB of framing)"
            )
        if (self.tls_key or self.tls_ca or self.tls_client_auth) and not self.tls_cert:
            raise ValueError("TLS settings need a certificate (tls_cert)")
        if self.tls_client_auth and not self.tls_ca:
            raise ValueError("tls_client_auth needs tls_ca to verify client certificates")

    def inflight_batches(self) -> int:
        """``max_inflight_batches``, or when it is 0 the default for this durability level."""
        if self.max_inflight_batches:
            return self.max_inflight_batches
        return 1 if self.durability is Level.HIGH else 2
