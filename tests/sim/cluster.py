"""A simulated Raft cluster: cores, durable stores, a faulty network and virtual time.

Everything is driven by one seeded :class:`random.Random` and a heap of
timed events (node ticks, message deliveries, persistence completions and
scheduled calls), processed one at a time; after each one the touched node's
Readies are carried out by the same :class:`~redraft.raft.driver.ReadyDriver`
the node uses (so the simulator checks the node's order of persist, send,
install and apply), with :class:`SimIO` doing the persisting, sending and
applying; the :class:`~tests.sim.checker.Checker` verifies the safety
properties.  Nothing depends on wall time or on set iteration order, so a
seed replays exactly.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from redraft.raft.core import RaftConfig, RaftCore, Restored
from redraft.raft.driver import ReadyDriver
from redraft.raft.types import (
    ChangeType,
    Entry,
    Message,
    MsgType,
    NodeId,
    NotLeader,
    ProposalDropped,
    RaftError,
    ReadState,
    Ready,
    Role,
    SnapChunk,
    SnapshotMeta,
)
from tests.sim.checker import Checker, Violation
from tests.sim.model import Machine, Store, chain, decode_snapshot, encode_snapshot
from tests.sim.trace import Trace

_TICK, _DELIVER, _PERSIST, _CALL = 0, 1, 2, 3

_APP = MsgType.APP
_APP_RESP = MsgType.APP_RESP
_VOTE = MsgType.VOTE
_VOTE_RESP = MsgType.VOTE_RESP
_SNAP = MsgType.SNAP
_SNAP_RESP = MsgType.SNAP_RESP
_TIMEOUT_NOW = MsgType.TIMEOUT_NOW
# Messages that promise something durable about their sender.
_PROMISES = frozenset({_APP_RESP, _VOTE, _VOTE_RESP, _SNAP_RESP})
_LEADER = Role.LEADER
_by_dest = attrgetter("to")


@dataclass
class NetConfig:
    """How the network and the disks behave; may be changed during a run."""

    lat_min: float = 0.02
    """Message latency bounds, in ticks."""
    lat_max: float = 0.3
    drop: float = 0.0
    """Probability that a message is lost."""
    dup: float = 0.0
    """Probability that a message is delivered twice."""
    persist_min: float = 0.0
    """Time a Ready's persistence takes, in ticks (completions stay in order)."""
    persist_max: float = 0.0
    inline: float = 0.0
    """Probability that a Ready finding no persistence under way is durable at once.

    As the node's log writer does at durability low and medium (and for a
    follower's entries at high); otherwise persistence completes in a later
    event, after ``persist_min``..``persist_max``.
    """
    fifo: bool = False
    """Deliver each link's messages in order (a healthy TCP connection); else they reorder."""


@dataclass(slots=True)
class Write:
    """A client write: acknowledged once its proposer applies it in the same term."""

    node: NodeId
    index: int
    term: int
    data: bytes
    issued: float
    acked: bool = False
    lost: bool = False


@dataclass(slots=True)
class _Job:
    """A Ready being persisted, with what it will write and release."""

    rd: Ready
    after: list[tuple[Message, int | None]]
    """Its messages_after_persist, each with the log term it promises (captured at hand-out)."""
    install: bytes | None
    """The incoming snapshot file it installs, if any."""


@dataclass(slots=True)
class _ReadReq:
    node: NodeId
    required: int
    issued: float
    served_at: float = -1.0


class _PersistNote:
    """Lazily rendered summary of a persisted Ready, for the trace."""

    __slots__ = ("rd",)

    def __init__(self, rd: Ready) -> None:
        self.rd = rd

    def __str__(self) -> str:
        rd = self.rd
        parts = []
        if rd.hard_state is not None:
            hs = rd.hard_state
            parts.append(f"hs=t{hs.term}/vote={hs.vote or '-'}/commit={hs.commit}")
        if rd.entries:
            parts.append(f"entries=[{rd.entries[0].index}..{rd.entries[-1].index}]")
        if rd.install_snapshot is not None:
            parts.append(f"install={rd.install_snapshot.index}")
        if rd.messages_after_persist:
            parts.append(f"release={len(rd.messages_after_persist)}")
        return " ".join(parts) or "-"


class SimNode:
    """One node: its core (None while crashed), durable store and state machine."""

    __slots__ = (
        "acked",
        "commit",
        "core",
        "done_at",
        "driver",
        "gen",
        "id",
        "incoming",
        "incoming_key",
        "jobs",
        "machine",
        "period",
        "reads",
        "role",
        "store",
        "term",
        "writes",
    )

    def __init__(self, nid: NodeId, store: Store, period: float) -> None:
        self.id = nid
        self.core: RaftCore | None = None
        self.driver: ReadyDriver | None = None
        self.store = store
        self.machine = Machine()
        self.jobs: deque[_Job] = deque()
        self.gen = 0
        self.done_at = 0.0
        self.period = period
        self.incoming = bytearray()
        self.incoming_key: tuple[int, int] | None = None
        self.writes: dict[int, Write] = {}
        self.reads: list[tuple[int, int]] = []
        self.role = Role.FOLLOWER
        self.term = 0
        self.commit = 0
        # (term, index) of the highest log position this node acknowledged
        self.acked = (0, 0)

    @property
    def up(self) -> bool:
        return self.core is not None

    def live(self) -> RaftCore:
        """The running core (the node must be up)."""
        core = self.core
        if core is None:
            raise RuntimeError(f"{self.id} is down")
        return core


@dataclass
class Stats:
    """What a run exercised (for reports and to check that a workload does what it should)."""

    counts: dict[str, int] = field(default_factory=dict)

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)


class Sim:
    """A cluster of simulated nodes.  See the module docstring."""

    def __init__(
        self,
        seed: int,
        voters: int | Sequence[NodeId],
        config: RaftConfig,
        net: NetConfig | None = None,
        *,
        auto_tick: bool = True,
        trace_keep: int = 200,
        verbose: bool = False,
        full_check_every: int = 200,
    ) -> None:
        self.rng = random.Random(seed)
        self.config = config
        self.net = net or NetConfig()
        self.auto_tick = auto_tick
        self.ticking = True
        """While False, scheduled ticks are skipped (clocks stand still)."""
        self.now = 0.0
        self.steps = 0
        self.checker = Checker()
        self.trace = Trace(trace_keep, verbose)
        self.stats = Stats()
        self.full_check_every = full_check_every
        self.nodes: dict[NodeId, SimNode] = {}
        self.blocked: set[tuple[NodeId, NodeId]] = set()
        self.writes: list[Write] = []
        self.max_acked = 0
        self.drop_filter: Callable[[Message], bool] | None = None
        """Messages for which this returns True are dropped at delivery (focused tests)."""
        self.send_hooks: list[Callable[[Message], None]] = []
        self.deliver_hooks: list[Callable[[Message], None]] = []
        self.on_commit: Callable[[Entry], None] | None = None
        """Called with each entry the first time any node applies it."""
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._leading: dict[NodeId, SimNode] = {}
        self._reads: dict[int, _ReadReq] = {}
        self._served: dict[int, int] = {}
        self._dropped: set[int] = set()
        self._tokens = 0
        # (leader, term) pairs that sent TIMEOUT_NOW: a lease failure after one
        # is the known transfer hazard, reported as such.
        self._timeout_now: set[tuple[NodeId, int]] = set()
        self._link_clock: dict[tuple[NodeId, NodeId], float] = {}
        ids = [f"n{k}" for k in range(1, voters + 1)] if isinstance(voters, int) else list(voters)
        boot = RaftCore.bootstrap(ids)
        self.checker.appended("boot", boot.hard_state.term, 0, boot.entries)
        for nid in ids:
            self._create(nid, Store(boot))

    # ------------------------------------------------------------ scheduling

    def _push(self, t: float, kind: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, payload))

    def at(self, t: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` at virtual time ``t``."""
        self._push(t, _CALL, fn)

    def after(self, dt: float, fn: Callable[[], None]) -> None:
        self._push(self.now + dt, _CALL, fn)

    def step(self) -> bool:
        """Process the next event; False if there is none."""
        if not self._heap:
            return False
        t, _, kind, payload = heapq.heappop(self._heap)
        self.now = t
        self.steps += 1
        if kind == _DELIVER:
            self._deliver(payload)  # type: ignore[arg-type]
        elif kind == _TICK:
            self._tick_event(payload)  # type: ignore[arg-type]
        elif kind == _PERSIST:
            self._persisted(payload)  # type: ignore[arg-type]
        else:
            payload()  # type: ignore[operator]
        if self.steps % self.full_check_every == 0:
            self.check_logs()
        return True

    def run_for(self, dt: float, stop: Callable[[], bool] | None = None) -> bool:
        """Run events for ``dt`` ticks of virtual time; True as soon as ``stop()`` holds."""
        return self.run_until(self.now + dt, stop)

    def run_until(self, t_end: float, stop: Callable[[], bool] | None = None) -> bool:
        """Run events up to time ``t_end``; True as soon as ``stop()`` holds."""
        heap = self._heap
        if stop is not None and stop():
            return True
        while heap and heap[0][0] <= t_end:
            self.step()
            if stop is not None and stop():
                return True
        self.now = max(self.now, t_end)
        return False

    def run_steps(self, n: int) -> None:
        """Process ``n`` more events."""
        end = self.steps + n
        while self.steps < end and self.step():
            pass

    # ----------------------------------------------------------------- nodes

    def node(self, nid: NodeId) -> SimNode:
        return self.nodes[nid]

    def core(self, nid: NodeId) -> RaftCore:
        """The running core of ``nid``."""
        return self.nodes[nid].live()

    def _create(self, nid: NodeId, store: Store, period: float = 1.0) -> SimNode:
        node = SimNode(nid, store, period)
        self.nodes[nid] = node
        self._start(node)
        if self.auto_tick:
            self._push(self.now + self.rng.random() * period, _TICK, nid)
        return node

    def add_node(self, nid: NodeId, period: float = 1.0) -> SimNode:
        """Start a brand-new node with an empty state (not yet a member)."""
        if nid in self.nodes:
            raise ValueError(f"{nid} exists")
        self.trace.add(self.now, "new", nid)
        self.stats.bump("new nodes")
        return self._create(nid, Store(Restored()), period)

    def _start(self, node: SimNode) -> None:
        cfg = dataclasses.replace(self.config, id=node.id)
        store = node.store
        machine = Machine()
        if store.snap is not None:
            index, state = self._decode(node.id, store.snap_data, store.snap)
            self.checker.restored(node.id, index, state)
            machine = Machine(index, state)
        node.machine = machine
        core = RaftCore(cfg, random.Random(self.rng.getrandbits(64)), store.restored())
        node.core = core
        node.driver = ReadyDriver(core, SimIO(self, node, core))
        node.role = core.role
        node.term = core.term
        node.commit = core.commit_index
        self._drain(node, core)

    def crash(self, nid: NodeId) -> None:
        """Stop ``nid`` at once: whatever was not durable is lost."""
        node = self.nodes[nid]
        if node.core is None:
            return
        self.trace.add(self.now, "CRASH", nid, f"pending persists={len(node.jobs)}")
        self.stats.bump("crashes")
        node.core = None
        node.driver = None
        node.gen += 1
        node.jobs.clear()
        node.done_at = self.now
        node.incoming = bytearray()
        node.incoming_key = None
        for w in node.writes.values():
            w.lost = True
        node.writes = {}
        node.reads = []
        node.role = Role.FOLLOWER
        self._leading.pop(nid, None)

    def restart(self, nid: NodeId) -> None:
        """Start ``nid`` again from its durable state."""
        node = self.nodes[nid]
        if node.core is not None:
            return
        st = node.store
        snap = f"snap={st.snap.index} " if st.snap is not None else ""
        self.trace.add(
            self.now,
            "RESTART",
            nid,
            f"term={st.hard.term} vote={st.hard.vote or '-'} commit={st.hard.commit} "
            f"{snap}log=[{st.offset}..{st.last_index}]",
        )
        self.stats.bump("restarts")
        self._start(node)

    def set_period(self, nid: NodeId, period: float) -> None:
        """Make ``nid``'s clock tick every ``period`` units of virtual time."""
        self.nodes[nid].period = period

    def tick(self, nid: NodeId, n: int = 1) -> None:
        """Tick ``nid`` by hand (``auto_tick=False``)."""
        node = self.nodes[nid]
        for _ in range(n):
            core = node.core
            if core is None:
                return
            core.tick()
            self._drain(node, core)

    def _tick_event(self, nid: NodeId) -> None:
        node = self.nodes[nid]
        self._push(self.now + node.period, _TICK, nid)
        core = node.core
        if core is not None and self.ticking:
            core.tick()
            self._drain(node, core)

    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.core is not None]

    def leader(self) -> SimNode | None:
        """The running leader of the highest term, if any."""
        best: SimNode | None = None
        for n in self._leading.values():
            if best is None or n.term > best.term:
                best = n
        return best

    # --------------------------------------------------------------- network

    def isolate(self, nid: NodeId) -> None:
        """Cut ``nid`` off from every other node, both ways."""
        for other in self.nodes:
            if other != nid:
                self.blocked.add((nid, other))
                self.blocked.add((other, nid))
        self.trace.add(self.now, "PARTITION", nid, "isolated")
        self.stats.bump("partitions")

    def split(self, groups: Sequence[Iterable[NodeId]]) -> None:
        """Partition the cluster into ``groups`` (nodes in no group join the first)."""
        sets = [sorted(g) for g in groups]
        named = {n for g in sets for n in g}
        rest = [n for n in self.nodes if n not in named]
        sets[0] = sets[0] + rest
        where = {n: k for k, g in enumerate(sets) for n in g}
        for a in self.nodes:
            for b in self.nodes:
                if where[a] != where[b]:
                    self.blocked.add((a, b))
        self.trace.add(self.now, "PARTITION", "", " | ".join(",".join(g) for g in sets))
        self.stats.bump("partitions")

    def block(self, frm: NodeId, to: NodeId) -> None:
        """Drop every message from ``frm`` to ``to`` (one way)."""
        self.blocked.add((frm, to))
        self.trace.add(self.now, "PARTITION", frm, f"-/-> {to}")
        self.stats.bump("partitions")

    def heal(self) -> None:
        """Remove every partition."""
        if self.blocked:
            self.trace.add(self.now, "HEAL", "")
        self.blocked.clear()

    def _send(self, node: SimNode, m: Message, expect: int | None) -> None:
        if m.type in _PROMISES:
            self._check_promise(node, m, expect)
        if m.type == _SNAP:
            m = self._fill_chunk(node, m)
        elif m.type == _TIMEOUT_NOW:
            self._timeout_now.add((node.id, m.term))
        for hook in self.send_hooks:
            hook(m)
        net = self.net
        rng = self.rng
        if net.drop and rng.random() < net.drop:
            self.trace.add(self.now, "lost", m.to, m)
            return
        span = net.lat_max - net.lat_min
        copies = 2 if net.dup and rng.random() < net.dup else 1
        for _ in range(copies):
            t = self.now + net.lat_min + span * rng.random()
            if net.fifo:
                link = (m.frm, m.to)
                t = max(t, self._link_clock.get(link, 0.0))
                self._link_clock[link] = t
            self._push(t, _DELIVER, m)

    def inject(self, m: Message, delay: float = 0.0) -> None:
        """Put ``m`` on the wire as if just sent (e.g. a message a test held back)."""
        self._push(self.now + delay, _DELIVER, m)

    def _deliver(self, m: Message) -> None:
        if (m.frm, m.to) in self.blocked:
            self.trace.add(self.now, "cut", m.to, m)
            return
        node = self.nodes.get(m.to)
        if node is None or node.core is None:
            return
        if self.drop_filter is not None and self.drop_filter(m):
            self.trace.add(self.now, "filtered", m.to, m)
            return
        self.trace.add(self.now, "deliver", m.to, m)
        for hook in self.deliver_hooks:
            hook(m)
        core = node.core
        core.step(m)
        self._drain(node, core)

    def _fill_chunk(self, node: SimNode, m: Message) -> Message:
        c = m.snap
        assert c is not None
        data = node.store.files.get((c.meta.index, c.meta.term))
        if data is None:
            raise Violation(
                "snapshot transfer",
                f"{node.id} streams snapshot {c.meta.index}/{c.meta.term}, which it never wrote",
            )
        if len(data) != c.meta.size or c.offset + c.length > len(data):
            raise Violation(
                "snapshot transfer",
                f"{node.id} sends bytes [{c.offset}, {c.offset + c.length}) of snapshot "
                f"{c.meta.index} of size {c.meta.size} (file has {len(data)} bytes)",
            )
        piece = SnapChunk(c.meta, c.offset, c.length, data[c.offset : c.offset + c.length], c.done)
        return dataclasses.replace(m, snap=piece)

    def _check_promise(self, node: SimNode, m: Message, expect: int | None) -> None:
        """A vote or an ack may only leave a node once what it promises is durable."""
        st = node.store
        t = m.type
        if t == _VOTE_RESP:
            if not m.reject:
                self.checker.vote_sent(node.id, m.term, m.to, st.hard)
        elif t == _VOTE:
            self.checker.vote_sent(node.id, m.term, node.id, st.hard)
        elif t == _APP_RESP:
            if not m.reject and m.index > 0:
                if not st.covers(m.index, expect):
                    raise Violation(
                        "durability",
                        f"{node.id} acks index {m.index} (term {expect}) to {m.to} but its "
                        f"durable log ends at {st.last_index} (term {st.term_at(st.last_index)})",
                    )
                if (m.term, m.index) > node.acked:
                    node.acked = (m.term, m.index)
        elif m.installed and not m.reject:
            if not st.covers(m.index, None):
                raise Violation(
                    "durability",
                    f"{node.id} reports snapshot {m.index} installed before it is durable",
                )
            if (m.term, m.index) > node.acked:
                node.acked = (m.term, m.index)

    # ----------------------------------------------------------------- Ready

    def _drain(self, node: SimNode, core: RaftCore) -> None:
        """Carry out the node's Readies (through the runtime's driver), then check."""
        driver = node.driver
        assert driver is not None
        driver.run()
        if node.reads:
            self._serve_reads(node)
        self._observe(node, core)

    def _persisted(self, key: tuple[NodeId, int]) -> None:
        nid, gen = key
        node = self.nodes[nid]
        core = node.core
        driver = node.driver
        if node.gen != gen or core is None or driver is None:
            return
        job = node.jobs.popleft()
        self._write(node, job)
        io = driver.io
        assert isinstance(io, SimIO)
        io.releasing = job
        try:
            driver.durable(job.rd)
        finally:
            io.releasing = None
        self._drain(node, core)

    def _write(self, node: SimNode, job: _Job) -> None:
        """Make ``job``'s Ready durable in the node's store."""
        rd = job.rd
        st = node.store
        if rd.hard_state is not None:
            st.hard = rd.hard_state
        if rd.install_snapshot is not None:
            assert job.install is not None
            st.install(rd.install_snapshot, job.install, keep_tail=False)
        if rd.entries:
            err = st.append(rd.entries)
            if err is not None:
                raise Violation("durability", f"{node.id}: {err}")
        if rd.needs_persist():
            self.trace.add(self.now, "persisted", node.id, _PersistNote(rd))

    def _observe(self, node: SimNode, core: RaftCore) -> None:
        role = core.role
        term = core.term
        commit = core.commit_index
        if commit != node.commit:
            if role == _LEADER and node.role == _LEADER and term == node.term:
                # Raft's commit rule (Figure 2): a leader advances its commit
                # index only onto an entry of its own term; earlier terms'
                # entries commit with it, never by counting their replicas.
                t = core.term_at(commit)
                if t != term:
                    raise Violation(
                        "commit rule",
                        f"leader {node.id} of term {term} moved its commit index from "
                        f"{node.commit} to {commit}, an entry of term {t}",
                    )
            node.commit = commit
        if role != node.role or term != node.term:
            nid = node.id
            if term < node.term:
                raise Violation("term", f"{nid}'s term went back from {node.term} to {term}")
            self.trace.add(self.now, "role", nid, f"{role.name} term={term}")
            if role == _LEADER:
                self.stats.bump("elections")
                self.checker.leader_elected(nid, term)
                self.checker.leader_complete(nid, term, core)
                self._leading[nid] = node
            elif node.role == _LEADER:
                self._leading.pop(nid, None)
            node.role = role
            node.term = term
        last = core.last_index
        ack_term, ack_index = node.acked
        if last < ack_index and ack_term == term:
            # The leader of this term counts the ack towards commits and never
            # resends below it: dropping those entries loses a replica it relies on.
            raise Violation(
                "acknowledged entries kept",
                f"{node.id} acknowledged index {ack_index} in term {term} but its log now "
                f"ends at {last}",
            )
        if last:
            t = core.term_at(last)
            if t is not None and (last, t) not in self.checker.log_ids:
                self.checker.known_entry(node.id, last, t)
            if core.commit_index > last:
                raise Violation(
                    "log", f"{node.id}'s commit {core.commit_index} is past its last index {last}"
                )

    # ------------------------------------------------------------- machines

    def _decode(self, nid: NodeId, data: bytes, meta: SnapshotMeta) -> tuple[int, bytes]:
        try:
            index, state = decode_snapshot(data)
        except ValueError as e:
            raise Violation("snapshot transfer", f"{nid}: {e}") from None
        if index != meta.index or len(data) != meta.size:
            raise Violation(
                "snapshot transfer",
                f"{nid}: snapshot file at index {index} ({len(data)} bytes) does not match "
                f"its meta (index {meta.index}, {meta.size} bytes)",
            )
        return index, state

    def _write_chunk(self, node: SimNode, c: SnapChunk) -> None:
        key = (c.meta.index, c.meta.term)
        if c.offset == 0:
            node.incoming = bytearray()
            node.incoming_key = key
        elif node.incoming_key != key or c.offset != len(node.incoming):
            raise Violation(
                "snapshot transfer",
                f"{node.id} was handed a chunk of snapshot {key} at offset {c.offset}, which does "
                f"not continue its incoming file ({node.incoming_key}, {len(node.incoming)} bytes)",
            )
        node.incoming += c.data

    def _take_incoming(self, node: SimNode, meta: SnapshotMeta) -> bytes:
        """The complete incoming snapshot file a Ready installs."""
        if node.incoming_key != (meta.index, meta.term):
            raise Violation(
                "snapshot transfer",
                f"{node.id} installs snapshot {meta.index} but received {node.incoming_key}",
            )
        data = bytes(node.incoming)
        node.incoming = bytearray()
        node.incoming_key = None
        return data

    def _restore(self, node: SimNode, meta: SnapshotMeta) -> None:
        """Restore the node's machine from its durable snapshot ``meta`` (as the node does)."""
        data = node.store.files.get((meta.index, meta.term))
        if data is None:
            raise Violation(
                "snapshot transfer",
                f"{node.id} restores snapshot {meta.index}/{meta.term} before it is durable",
            )
        index, state = self._decode(node.id, data, meta)
        if index < node.machine.applied:
            raise Violation(
                "state machine safety",
                f"{node.id} installs snapshot {index} behind its applied index {node.machine.applied}",
            )
        self.checker.restored(node.id, index, state)
        node.machine = Machine(index, state)
        for i in [i for i in node.writes if i <= index]:
            node.writes.pop(i).lost = True
        self.trace.add(self.now, "install", node.id, f"snapshot {meta.index}/{meta.term}")
        self.stats.bump("snapshots installed")

    def _apply(self, node: SimNode, core: RaftCore, e: Entry) -> None:
        mach = node.machine
        if e.index != mach.applied + 1:
            raise Violation(
                "state machine safety",
                f"{node.id} was handed entry {e.index} to apply after {mach.applied}",
            )
        state = chain(mach.state, e)
        if self.checker.apply(node.id, core.term, e, state):
            self.stats.bump("commits")
            for other in self._leading.values():
                oc = other.core
                if oc is not None:
                    self.checker.leader_holds(other.id, other.term, oc, e.index)
            if self.on_commit is not None:
                self.on_commit(e)
        mach.push(e.index, state)
        if node.writes:
            w = node.writes.pop(e.index, None)
            if w is not None:
                if w.term == e.term and w.data == e.data:
                    w.acked = True
                    self.stats.bump("writes acked")
                    if e.index > self.max_acked:
                        self.max_acked = e.index
                else:
                    w.lost = True

    def _serve_reads(self, node: SimNode) -> None:
        applied = node.machine.applied
        keep: list[tuple[int, int]] = []
        for index, tok in node.reads:
            if index > applied:
                keep.append((index, tok))
                continue
            req = self._reads.pop(tok)
            req.served_at = self.now
            self._served[tok] = index
            self.stats.bump("reads served")
        node.reads = keep

    # --------------------------------------------------------------- clients

    def propose(self, nid: NodeId, data: Sequence[bytes]) -> list[Write]:
        """Propose client writes on ``nid``; [] if it refuses (not leader, transfer)."""
        node = self.nodes[nid]
        core = node.core
        if core is None:
            return []
        try:
            first = core.propose(data)
        except (NotLeader, ProposalDropped):
            return []
        term = core.term
        out = []
        for k, d in enumerate(data):
            w = Write(nid, first + k, term, d, self.now)
            node.writes[first + k] = w
            out.append(w)
        self.writes.extend(out)
        self.trace.add(self.now, "propose", nid, f"[{first}..{first + len(data) - 1}] term={term}")
        self.stats.bump("writes proposed", len(data))
        self._drain(node, core)
        return out

    def read_index(self, nid: NodeId) -> int | None:
        """Start a ReadIndex read on ``nid``; its token, or None if ``nid`` does not lead."""
        toks = self.read_batch(nid, 1)
        return toks[0] if toks else None

    def read_batch(self, nid: NodeId, count: int) -> list[int]:
        """Start ``count`` ReadIndex reads on ``nid`` in one turn (before its next Ready)."""
        node = self.nodes[nid]
        core = node.core
        if core is None:
            return []
        toks: list[int] = []
        need = self.checker.max_applied
        for _ in range(count):
            self._tokens += 1
            tok = self._tokens
            try:
                core.read_index(tok)
            except NotLeader:
                break
            self._reads[tok] = _ReadReq(nid, need, self.now)
            toks.append(tok)
        if toks:
            self.trace.add(self.now, "read", nid, f"tokens {toks[0]}..{toks[-1]} need>={need}")
            self.stats.bump("reads", len(toks))
            self._drain(node, core)
        return toks

    def read_index_of(self, token: int) -> int | None:
        """The read index a served read was answered at (None if not served)."""
        req = self._reads.get(token)
        return None if req is not None else self._served.get(token)

    def read_served(self, token: int) -> bool:
        """Whether the read ``token`` has been served (False while pending or if dropped)."""
        return token in self._served

    def read_dropped(self, token: int) -> bool:
        """Whether the core gave up the read ``token`` (its node stopped leading)."""
        return token in self._dropped

    def lease_read(self, nid: NodeId) -> bool:
        """Serve a read from ``nid``'s state if its lease is valid; True if served."""
        node = self.nodes[nid]
        core = node.core
        if core is None or not core.lease_valid():
            self.stats.bump("lease refused")
            return False
        need = self.checker.max_applied
        self.trace.add(self.now, "lease", nid, f"applied={node.machine.applied} needs>={need}")
        if node.machine.applied < need:
            note = ""
            if (nid, core.term) in self._timeout_now:
                note = f"; {nid} had sent TIMEOUT_NOW in term {core.term} (leadership transfer)"
            raise Violation(
                "linearizable read",
                f"lease read on {nid} (term {core.term}) sees index {node.machine.applied}, "
                f"but index {need} was already committed{note}",
            )
        self.stats.bump("lease served")
        return True

    def change(self, nid: NodeId, change: ChangeType, target: NodeId) -> int | None:
        """Ask ``nid`` for a membership change; the CONFIG entry's index or None if refused."""
        node = self.nodes[nid]
        core = node.core
        if core is None:
            return None
        try:
            index = core.change_membership(change, target)
        except RaftError as e:
            self.trace.add(self.now, "change", nid, f"{change.name} {target} refused: {e}")
            return None
        self.trace.add(self.now, "change", nid, f"{change.name} {target} at {index}")
        self.stats.bump("changes")
        self._drain(node, core)
        return index

    def transfer(self, nid: NodeId, to: NodeId | None) -> NodeId | None:
        """Ask ``nid`` to hand leadership over; the target, or None if refused."""
        node = self.nodes[nid]
        core = node.core
        if core is None:
            return None
        try:
            target = core.transfer_leadership(to)
        except RaftError:
            return None
        self.trace.add(self.now, "transfer", nid, f"to {target}")
        self.stats.bump("transfers")
        self._drain(node, core)
        return target

    def campaign(self, nid: NodeId) -> None:
        """Have ``nid`` start an election now."""
        node = self.nodes[nid]
        core = node.core
        if core is None:
            return
        started = core.campaign()
        self.trace.add(self.now, "campaign", nid, "" if started else "refused: lease lent")
        self._drain(node, core)

    def snapshot(self, nid: NodeId, index: int | None = None) -> int | None:
        """Have ``nid`` write a snapshot at an applied index and compact; the index or None."""
        node = self.nodes[nid]
        core = node.core
        if core is None:
            return None
        st = node.store
        mach = node.machine
        lo = max(st.snap.index + 1 if st.snap is not None else 1, mach.base, core.first_index - 1)
        hi = mach.applied
        if index is None:
            index = hi
        if not lo <= index <= hi:
            return None
        state = mach.state_at(index)
        assert state is not None
        meta = core.snapshot_meta_at(index)
        data = encode_snapshot(index, state)
        meta = SnapshotMeta(meta.index, meta.term, meta.membership, len(data))
        st.install(meta, data, keep_tail=True)
        core.compact(meta)
        mach.trim(index)
        self.trace.add(self.now, "snapshot", nid, f"at {index}/{meta.term} ({len(data)} bytes)")
        self.stats.bump("snapshots taken")
        self._drain(node, core)
        return index

    # ---------------------------------------------------------------- checks

    def check_logs(self) -> None:
        """Check every running node's whole in-memory log (log matching)."""
        for node in self.nodes.values():
            if node.core is not None:
                self.checker.full_log(node.id, node.core)

    def check_converged(self, members: Iterable[NodeId]) -> None:
        """Every listed running node's machine equals the global state at its index."""
        for nid in members:
            node = self.nodes[nid]
            if node.core is None:
                continue
            m = node.machine
            want = self.checker.states.get(m.applied)
            if m.applied and want != m.state:
                raise Violation("state machine safety", f"{nid}'s machine differs at {m.applied}")


def _promised_term(core: RaftCore, m: Message) -> int | None:
    """The log term an acknowledgement promises the sender holds (None if it promises none)."""
    return core.term_at(m.index) if m.type == _APP_RESP and not m.reject else None


class SimIO:
    """The simulator's runtime under one node's :class:`ReadyDriver` (one per core).

    Persistence goes to the node's :class:`~tests.sim.model.Store`, durable at
    once or after a virtual delay; messages go to the faulty network; entries
    to the node's hash-chain machine.  Every promise a message makes (a vote,
    an acknowledgement) is checked against the store as it leaves.
    """

    __slots__ = ("core", "node", "releasing", "sim")

    def __init__(self, sim: Sim, node: SimNode, core: RaftCore) -> None:
        self.sim = sim
        self.node = node
        self.core = core
        self.releasing: _Job | None = None
        """The job whose Ready the simulator is reporting durable."""

    @property
    def persisting(self) -> bool:
        return bool(self.node.jobs)

    def send(self, msgs: list[Message]) -> None:
        job = self.releasing
        if job is not None and msgs is job.rd.messages_after_persist:
            # Checked against what the Ready promised when it was handed out:
            # the log may have moved on while it was being persisted.
            pairs = job.after
        else:
            if len(msgs) > 1:
                msgs = sorted(msgs, key=_by_dest)
            core = self.core
            pairs = [(m, _promised_term(core, m)) for m in msgs]
        sim = self.sim
        node = self.node
        for m, expect in pairs:
            sim._send(node, m, expect)

    def flush(self) -> None:
        pass  # the simulated network has no queue of its own

    def persist(self, rd: Ready) -> bool:
        sim = self.sim
        node = self.node
        core = self.core
        if rd.entries:
            first = rd.entries[0].index
            sim.checker.appended(node.id, core.term, core.term_at(first - 1), rd.entries)
        for c in rd.snapshot_chunks:
            sim._write_chunk(node, c)
        install = None
        if rd.install_snapshot is not None:
            install = sim._take_incoming(node, rd.install_snapshot)
        after = rd.messages_after_persist
        if len(after) > 1:
            after = sorted(after, key=_by_dest)
        job = _Job(rd, [(m, _promised_term(core, m)) for m in after], install)
        net = sim.net
        if not node.jobs and net.inline and (net.inline >= 1 or sim.rng.random() < net.inline):
            sim._write(node, job)
            return True
        node.jobs.append(job)
        delay = 0.0
        if net.persist_max > 0 and rd.needs_persist():
            delay = net.persist_min + (net.persist_max - net.persist_min) * sim.rng.random()
        done = max(sim.now + delay, node.done_at)
        node.done_at = done
        sim._push(done, _PERSIST, (node.id, node.gen))
        return False

    def install(self, meta: SnapshotMeta) -> None:
        self.sim._restore(self.node, meta)

    def apply(self, entries: list[Entry]) -> None:
        sim = self.sim
        node = self.node
        core = self.core
        for e in entries:
            sim._apply(node, core, e)

    def reads_ready(self, reads: list[ReadState]) -> None:
        sim = self.sim
        node = self.node
        for rs in reads:
            for tok in rs.tokens:
                if not isinstance(tok, int):
                    continue
                req = sim._reads.get(tok)
                if req is None:
                    continue
                if rs.index < req.required:
                    raise Violation(
                        "linearizable read",
                        f"read {tok} on {node.id} got read index {rs.index}, but index "
                        f"{req.required} was committed before the read began",
                    )
                node.reads.append((rs.index, tok))

    def reads_dropped(self, tokens: list[object]) -> None:
        sim = self.sim
        sim.stats.bump("reads dropped", len(tokens))
        for tok in tokens:
            if isinstance(tok, int):
                sim._dropped.add(tok)
