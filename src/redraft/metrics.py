"""A node's Prometheus metrics: read from its state when scraped, plus a few histograms.

Nearly every figure is read when Prometheus scrapes (:class:`NodeCollector`,
over RAFTSTATS's figures, the leader's view of each peer and the open
connections), so that serving requests costs nothing for it.  What cannot
be read afterwards is observed where it happens, off the per-request path:

* fsync latency: the log writer times each fsync (``LogWriter.on_fsync``).
* commands per proposed entry: after each pass of the group, the headers of
  the entries the leader proposed in it (one integer compare per pass when
  it proposed nothing).
* snapshot durations: from the snapshot file begun to it committed.
* request latency per command (:class:`LatencySampler`): one request now and
  then, never a clock read per request.

Every node has its own :class:`prometheus_client.CollectorRegistry` (never
the global one): several nodes in one process (tests do that) do not clash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from redraft.builtins.context import PeerView
from redraft.group import RaftGroup
from redraft.options import Options
from redraft.raft.types import EntryKind, Role, SnapshotMeta
from redraft.replies import Slot
from redraft.server import Server
from redraft.session import Session, Shared
from redraft.storage.snapshots import SnapshotWriter
from redraft.version import VERSION

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds: request latency and fsyncs (100 us to 10 s)."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
"""Commands in one proposed log entry (``Options.max_batch_commands`` is 4096)."""
SNAPSHOT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds to take a snapshot."""

SAMPLE_EVERY = 0.01
"""Seconds between sampled requests, at least: 100 a second at most under load."""
MAX_WATCHED = 8
"""Sampled requests waiting for their replies at once, at most (a blocked BLPOP waits long)."""
WATCH_EXPIRY = 60.0
"""Seconds after which a sampled request still unanswered is forgotten (its client left)."""
MAX_COMMAND_LABELS = 100
"""Distinct command names timed; later ones count under ``other`` (bounded label sets)."""


class Watched(Protocol):
    """What the metrics read of a node (implemented by :class:`redraft.node.Node`)."""

    id: str
    started: float
    options: Options
    group: RaftGroup
    server: Server

    @property
    def state_name(self) -> str: ...

    def peers(self) -> list[PeerView]: ...

    def raft_stats(self) -> dict[str, Any]: ...


class Buckets:
    """A histogram cheap enough for the event loop: a count per bucket, summed up when scraped.

    Observed from the loop's thread only (prometheus_client's own histograms
    take a lock per observation; these need none).
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """Per bucket, not cumulative; the last one is +Inf."""
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le is <=).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus's buckets: (``le``, observations at or below it), +Inf last."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((_le(bound), running))
        return out


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``0.25``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def commands_in(data: bytes) -> int:
    """How many commands a NORMAL entry ``[stamp, [args, ...]]`` holds, from its msgpack header.

    Reads a few bytes rather than decoding the entry (which may hold
    megabytes of values); 0 for anything else.
    """
    if len(data) < 3 or data[0] != 0x92:  # an array of two
        return 0
    head = data[1]  # the stamp: an integer of 1 to 9 bytes
    if head < 0x80 or head >= 0xE0:  # a fixint, in the type byte itself
        pos = 2
    elif head in _INT_EXTRA:
        pos = 2 + _INT_EXTRA[head]
    else:
        return 0
    if pos >= len(data):
        return 0
    tag = data[pos]
    if 0x90 <= tag <= 0x9F:
        return tag & 0x0F
    if tag == 0xDC:
        return int.from_bytes(data[pos + 1 : pos + 3], "big")
    if tag == 0xDD:
        return int.from_bytes(data[pos + 1 : pos + 5], "big")
    return 0


# The bytes after a msgpack integer's type byte: uint8/16/32/64, int8/16/32/64.
_INT_EXTRA = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}


@dataclasses.dataclass(slots=True)
class _Watch:
    slot: Slot
    name: str
    start: float
    restore: Callable[[], None]
    """The session's own ``on_output``, put back once the reply is there."""


class LatencySampler:
    """Request latency per command, timed on one request now and then.

    No request pays for the timing: the sessions reach the group through
    ``Shared.requests``, and every :data:`SAMPLE_EVERY` seconds the sampler
    puts a twin of it there whose write, plain-write run and read calls
    time the first request to come (and put the plain one back at once).
    Its reply is watched through its session's ``on_output`` (called when
    replies become ready), so a write is timed until it committed and was
    applied, and a pipelined run of writes (one reply slot) as a whole.

    Plain reads answered in place (GET on the leader within its lease) never
    reach the group and are not timed: they are answered within the read of
    their bytes, in microseconds.  A read served through the group (a
    ReadIndex round at consistency high, or a machine's ``m.apply``) is.
    """

    def __init__(self, shared: Shared, loop: asyncio.AbstractEventLoop) -> None:
        self._shared = shared
        self._loop = loop
        self._plain = plain = shared.requests
        self._sampling = dataclasses.replace(
            plain, read=self._read, write=self._write, open_run=self._open_run
        )
        self.by_command: dict[str, Buckets] = {}
        self._watching: dict[Session, _Watch] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def arm(self) -> None:
        """Have the next request that reaches the group timed."""
        self._timer = None
        if self._closed:
            return
        if len(self._watching) >= MAX_WATCHED:
            self._expire()
            if len(self._watching) >= MAX_WATCHED:
                self._timer = self._loop.call_later(1.0, self.arm)
                return
        self._shared.requests = self._sampling

    def close(self) -> None:
        """Stop sampling and give every watched session its own ``on_output`` back."""
        self._closed = True
        self._shared.requests = self._plain
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for session, watch in list(self._watching.items()):
            session.on_output = watch.restore
        self._watching.clear()

    def _taken(self) -> float:
        """A request is being timed: the plain port is back; the next one in a while."""
        self._shared.requests = self._plain
        if self._timer is None and not self._closed:
            self._timer = self._loop.call_later(SAMPLE_EVERY, self.arm)
        return time.perf_counter()

    # --- the twin's calls (each times one request, then the plain port serves again)

    def _open_run(self, slot: Slot) -> list[list[bytes]] | None:
        start = self._taken()
        batch = self._plain.open_run(slot)
        if batch is not None:
            self._watch(slot, slot.name, start)
        return batch

    def _write(
        self, line: Any, slot: Slot | None, args: list[bytes], respond: Any, name: str
    ) -> Slot:
        start = self._taken()
        taken = self._plain.write(line, slot, args, respond, name)
        self._watch(taken, name, start)
        return taken

    def _read(self, line: Any, slot: Slot | None, respond: Any, name: str) -> Any:
        start = self._taken()
        value = self._plain.read(line, slot, respond, name)
        if type(value) is Slot:
            self._watch(value, name, start)
        else:
            self._observe(name, time.perf_counter() - start)
        return value

    # --- waiting for the reply

    def _watch(self, slot: Slot, name: str, start: float) -> None:
        session = slot.conn
        if slot.data is not None:
            self._observe(name, time.perf_counter() - start)
            return
        if type(session) is not Session or session in self._watching:
            return
        self._watching[session] = _Watch(slot, name, start, session.on_output)
        session.on_output = partial(self._output, session)

    def _output(self, session: Session) -> None:
        watch = self._watching.get(session)
        if watch is None:
            return
        watch.restore()
        if watch.slot.data is not None:
            self._observe(watch.name, time.perf_counter() - watch.start)
            session.on_output = watch.restore
            del self._watching[session]

    def _expire(self) -> None:
        now = time.perf_counter()
        for session, watch in list(self._watching.items()):
            if session.closed or now - watch.start > WATCH_EXPIRY:
                session.on_output = watch.restore
                del self._watching[session]

    def _observe(self, name: str, seconds: float) -> None:
        buckets = self.by_command.get(name)
        if buckets is None:
            if len(self.by_command) >= MAX_COMMAND_LABELS:
                name = "other"
                buckets = self.by_command.get(name)
            if buckets is None:
                buckets = self.by_command[name] = Buckets(LATENCY_BUCKETS)
        buckets.observe(seconds)


class NodeMetrics:
    """One node's registry, and what feeds the histograms that cannot be read when scraped."""

    def __init__(self, node: Watched, loop: asyncio.AbstractEventLoop) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        group = node.group
        self.fsync = Histogram(
            "redraft_log_fsync_seconds",
            "Time of each fsync of the Raft log (with its write, when the store does both in one call).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.snapshot = Histogram(
            "redraft_snapshot_seconds",
            "Time to take a snapshot of the machine: from its capture to the file committed.",
            buckets=SNAPSHOT_BUCKETS,
            registry=self.registry,
        )
        self.batches = Buckets(BATCH_BUCKETS)
        self.sampler = LatencySampler(node.server.shared, loop)
        self._proposer = group.proposer
        self._seen = group.proposer.last_proposed
        self.registry.register(NodeCollector(self))
        ProcessCollector(registry=self.registry)
        group.writer.on_fsync = self.fsync.observe
        self._time_snapshots(group)
        self.sampler.arm()

    def close(self) -> None:
        """Stop observing (the node is stopping)."""
        self.sampler.close()
        self.node.group.writer.on_fsync = None

    def after_pass(self) -> None:
        """After each pass of the group: count the commands of the entries it proposed."""
        last = self._proposer.last_proposed
        if last != self._seen:
            self._count_batches(last)

    def _count_batches(self, last: int) -> None:
        seen, self._seen = self._seen, last
        core = self.node.group.core
        if last < seen or core.role is not Role.LEADER:
            return
        # At most the last 1000: a pass never proposes more, unless it is the
        # first pass after the metrics started.
        lo = max(seen + 1, core.first_index, last - 999)
        try:
            entries = core.log.slice(lo, last + 1)
        except IndexError:
            return  # compacted meanwhile
        observe = self.batches.observe
        for entry in entries:
            if entry.kind == EntryKind.NORMAL and (n := commands_in(entry.data)):
                observe(n)

    def _time_snapshots(self, group: RaftGroup) -> None:
        """Time each snapshot from its file begun to it committed.

        The snapshotter begins every snapshot it takes through its store's
        ``begin`` and commits it in a worker thread; wrapping the store's
        method there (the snapshotter offers no hook) times exactly that,
        capture and write, without touching the snapshotter.
        """
        store = group.snapshots
        begin = store.begin
        observe = self.snapshot.observe

        def timed_begin(meta: SnapshotMeta) -> SnapshotWriter:
            start = time.monotonic()
            writer = begin(meta)
            commit = writer.commit

            def timed_commit() -> SnapshotMeta:
                done = commit()
                observe(time.monotonic() - start)  # a thread-safe histogram: from the worker
                return done

            writer.commit = timed_commit  # type: ignore[method-assign]
            return writer

        store.begin = timed_begin  # type: ignore[method-assign]


class NodeCollector(Collector):
    """The node's figures, read when Prometheus scrapes."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self._metrics
        node = metrics.node
        stats = node.raft_stats()
        yield from _raft_gauges(node, stats)
        yield from _raft_counters(node, stats)
        yield from _peer_gauges(node)
        yield from _connections(node)
        batches = HistogramMetricFamily(
            "redraft_proposal_batch_commands",
            "Commands in each log entry this node proposed as leader (a machine's tick counts).",
        )
        batches.add_metric([], metrics.batches.cumulative(), metrics.batches.total)
        yield batches
        latency = HistogramMetricFamily(
            "redraft_request_duration_seconds",
            "Sampled latency of requests served through the Raft group, by command: from the "
            "request taken to its reply ready (writes: committed and applied).",
            labels=["command"],
        )
        for name, buckets in sorted(metrics.sampler.by_command.items()):
            latency.add_metric([name], buckets.cumulative(), buckets.total)
        yield latency


ROLES = ("leader", "candidate", "follower", "learner")
"""The values of ``redraft_role``'s ``role`` label (a learner is a follower that never votes)."""


def role_of(node: Watched) -> str:
    """This node's role: one of :data:`ROLES`, or ``shutdown``/``closing`` while it stops."""
    state = node.state_name.lower()
    if state == "follower" and node.id in node.group.core.membership.learners:
        return "learner"
    return state


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _raft_gauges(node: Watched, stats: dict[str, Any]) -> Iterable[Metric]:
    info = GaugeMetricFamily(
        "redraft_info", "This node: its id and redraft's version.", labels=["node", "version"]
    )
    info.add_metric([node.id, VERSION], 1)
    yield info
    yield _gauge("redraft_start_time_seconds", "When the node started (Unix time).", node.started)
    yield _gauge("redraft_term", "The current Raft term.", stats["term"])
    yield _gauge(
        "redraft_commit_index", "The highest log index known committed.", stats["commit_index"]
    )
    yield _gauge(
        "redraft_applied_index",
        "The highest log index applied to the machine.",
        stats["applied_index"],
    )
    yield _gauge("redraft_last_log_index", "The last index in the log.", stats["last_log_index"])
    yield _gauge(
        "redraft_first_log_index", "The first index still in the log.", stats["first_log_index"]
    )
    yield _gauge(
        "redraft_snapshot_index", "The index of the newest snapshot.", stats["last_snapshot_index"]
    )
    role = GaugeMetricFamily(
        "redraft_role",
        "1 for this node's role (leader, candidate, follower, learner).",
        labels=["role"],
    )
    current = role_of(node)
    for name in ROLES:
        role.add_metric([name], 1 if name == current else 0)
    yield role
    yield _gauge(
        "redraft_has_leader", "1 if this node knows a leader.", 1 if stats["leader"] else 0
    )
    members = GaugeMetricFamily(
        "redraft_members", "Members of the cluster, by kind.", labels=["kind"]
    )
    members.add_metric(["voter"], stats["voters"])
    members.add_metric(["learner"], stats["learners"])
    yield members
    yield _gauge(
        "redraft_disk_full",
        "1 while this node's disk is full: it takes no new log entries and refuses writes.",
        stats["disk_full"],
    )
    pending = len(node.group.proposer.pending)
    yield _gauge("redraft_pending_proposals", "Entries this node proposed, not yet applied.", pending)  # fmt: skip


def _raft_counters(node: Watched, stats: dict[str, Any]) -> Iterable[Metric]:
    counters = (
        ("redraft_leader_changes", "New leaders this node came to know of.", node.group.leader_changes),
        ("redraft_fsyncs", "fsyncs of the Raft log.", stats["fsyncs"]),
        ("redraft_persist_groups", "Groups of log writes persisted.", stats["persist_groups"]),
        ("redraft_proposals", "Log entries this node proposed as leader.", stats["proposals"]),
        ("redraft_commands_applied", "Commands applied to the machine.", stats["commands_applied"]),
        ("redraft_ticks_applied", "Machine ticks applied.", stats["ticks_applied"]),
        ("redraft_spin_seconds", "Seconds the loop polled for the next message instead of sleeping.", stats["spin_seconds"]),
        ("redraft_disk_full_events", "Times this node's disk filled up.", stats["disk_full_count"]),
    )  # fmt: skip
    for name, doc, value in counters:
        yield CounterMetricFamily(name, doc, value=value)


def _peer_gauges(node: Watched) -> Iterable[Metric]:
    """The leader's view of each other member: entries behind and time since heard from."""
    lag = GaugeMetricFamily(
        "redraft_peer_lag_entries",
        "Leader only: log entries each other member is behind the leader's last index.",
        labels=["peer"],
    )
    contact = GaugeMetricFamily(
        "redraft_peer_last_contact_seconds",
        "Leader only: seconds since each other member was last heard from.",
        labels=["peer"],
    )
    core = node.group.core
    if core.role is Role.LEADER:
        last = core.last_index
        for peer in node.peers():
            if peer.address == node.id or peer.match_index is None:
                continue
            lag.add_metric([peer.address], max(0, last - peer.match_index))
            if peer.last_contact_ms is not None:
                contact.add_metric([peer.address], peer.last_contact_ms / 1000.0)
    yield lag
    yield contact


def _connections(node: Watched) -> Iterable[Metric]:
    sessions = node.server.protocols
    peers = sum(1 for s in sessions if s.peer_id)
    yield _gauge("redraft_client_connections", "Open client connections.", len(sessions) - peers)
    yield _gauge("redraft_peer_connections", "Open links from peers to this node.", peers)


__all__ = [
    "LatencySampler",
    "NodeCollector",
    "NodeMetrics",
    "Watched",
    "commands_in",
    "role_of",
]
