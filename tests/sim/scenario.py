"""Seeded random scenarios: a workload and faults, then healing and liveness checks.

A scenario draws everything from its seed: the cluster size (unless given),
the core's tuning, a fault profile, and every action.  It runs in three
phases:

1. **faults** for ``steps`` simulator events: client writes, ReadIndex and
   lease reads, membership changes, leadership transfers, snapshots, crashes
   and restarts, partitions, clock skew, message loss/duplication/reordering;
2. **heal**: the network is repaired (no loss, in-order links) and every crashed
   node restarted;
3. **liveness**: a leader must emerge within 20 election timeouts; each write
   and read made after healing must complete within 10 more (plus 2 ticks per
   entry already queued ahead of it), and every member must apply the writes
   without ever stalling for 10 election timeouts.

The safety checks run after every single step throughout.
"""

from __future__ import annotations

import functools
import math
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from redraft.raft.core import RaftConfig
from redraft.raft.types import ChangeType, Entry, NodeId, Role
from tests.sim.checker import Violation
from tests.sim.cluster import NetConfig, Sim, Write


@dataclass(frozen=True)
class Profile:
    """A fault profile: network and disk behaviour plus how often each action happens."""

    name: str
    drop: float
    dup: float
    lat: tuple[float, float]
    persist: tuple[float, float]
    weights: dict[str, float]


_WORK = {"propose": 6.0, "read": 2.0, "lease": 2.0, "snapshot": 0.8, "member": 0.8, "transfer": 0.5}

PROFILES: tuple[Profile, ...] = (
    Profile(
        "calm",
        0.0,
        0.0,
        (0.02, 0.3),
        (0.0, 0.1),
        _WORK | {"crash": 0.2, "restart": 1.0, "partition": 0.2, "heal": 1.0, "skew": 0.2},
    ),
    Profile(
        "lossy",
        0.1,
        0.05,
        (0.02, 0.9),
        (0.0, 0.3),
        _WORK | {"crash": 0.3, "restart": 1.0, "partition": 0.3, "heal": 1.0, "skew": 0.3},
    ),
    Profile(
        "partitions",
        0.02,
        0.02,
        (0.02, 0.5),
        (0.0, 0.2),
        _WORK | {"crash": 0.2, "restart": 1.0, "partition": 1.5, "heal": 1.0, "campaign": 0.3},
    ),
    Profile(
        "crashy",
        0.02,
        0.0,
        (0.02, 0.4),
        (0.0, 1.5),
        _WORK | {"crash": 1.2, "restart": 1.5, "partition": 0.2, "heal": 1.0},
    ),
    Profile(
        "chaos",
        0.08,
        0.05,
        (0.02, 1.2),
        (0.0, 0.8),
        _WORK
        | {
            "crash": 0.8,
            "restart": 1.2,
            "partition": 1.0,
            "heal": 1.0,
            "skew": 0.5,
            "campaign": 0.3,
        },
    ),
)

PROFILE_NAMES = tuple(p.name for p in PROFILES)
DEFAULT_STEPS = 3000


@dataclass
class Outcome:
    """The result of one seed."""

    seed: int
    nodes: int
    profile: str
    steps: int
    virtual_time: float
    violation: Violation | None
    trace: list[str]
    stats: dict[str, int]
    params: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.violation is None

    def report(self) -> str:
        """A readable account of a failure (or a one-line summary of a success)."""
        head = (
            f"seed {self.seed}: {self.nodes} nodes, profile {self.profile}, "
            f"{self.steps} steps, virtual time {self.virtual_time:.1f}"
        )
        if self.violation is None:
            return head + ": ok"
        lines = [
            head,
            f"VIOLATED: {self.violation.prop}",
            f"  {self.violation.detail}",
            "config: " + ", ".join(f"{k}={v}" for k, v in self.params.items()),
            "stats: " + ", ".join(f"{k}={v}" for k, v in self.stats.items()),
            f"last {len(self.trace)} events:",
            *("  " + line for line in self.trace),
        ]
        return "\n".join(lines)


class Scenario:
    """One seeded run.  See the module docstring."""

    def __init__(
        self,
        seed: int,
        nodes: int | None = None,
        steps: int = DEFAULT_STEPS,
        *,
        profile: str | None = None,
        verbose: bool = False,
        trace_lines: int = 80,
    ) -> None:
        prng = random.Random(seed)
        self.seed = seed
        self.n = nodes or prng.choice((3, 3, 3, 5, 5, 7))
        self.steps = steps
        self.trace_lines = trace_lines
        self.profile = (
            next(p for p in PROFILES if p.name == profile) if profile else prng.choice(PROFILES)
        )
        e = prng.choice((6, 8, 10))
        margin = 2
        max_msg = prng.choice((40, 120, 1000, 1 << 20))
        # Tiny messages with a one-message window replicate one entry per
        # round trip, slower than the workload proposes: keep a real window.
        window = prng.choice((4, 64) if max_msg <= 120 else (1, 2, 4, 64))
        self.config = RaftConfig(
            id="template",
            election_tick=e,
            heartbeat_tick=prng.choice((1, 1, 2)),
            pre_vote=prng.random() < 0.85,
            check_quorum=True,
            max_msg_bytes=max_msg,
            max_inflight_msgs=window,
            max_inflight_bytes=prng.choice((150, 1 << 20)),
            snapshot_chunk_size=prng.choice((16, 48, 1 << 20)),
            max_snapshot_inflight=prng.choice((1, 2, 4)),
            lease_margin_ticks=margin,
            compaction_tail=prng.choice((0, 0, 3, 20)),
            catch_up_margin=prng.choice((0, 4, 16)),
            # Drawn apart, so every earlier seed keeps the scenario it had.
            compaction_tail_bytes=random.Random(f"{seed}/tail-bytes").choice((0, 0, 60, 600)),
        )
        # Clocks may drift apart, within what the lease tolerates: a lease of
        # (E - margin) leader ticks must end before any follower that acked it
        # has counted E - 1 ticks of its own.
        self.max_skew = math.sqrt(0.98 * (e - 1) / (e - margin))
        p = self.profile
        net = NetConfig(p.lat[0], p.lat[1], p.drop, p.dup, p.persist[0], p.persist[1])
        # How often a Ready that finds the disk idle is durable at once (the
        # node's writer at durability low and medium), so the driver's both
        # paths are exercised.  Drawn apart, so the rest of the scenario stays.
        net.inline = random.Random(f"{seed}/inline").choice((0.0, 0.0, 0.5, 1.0))
        keep = max(200, trace_lines)
        self.sim = Sim(
            prng.getrandbits(64), self.n, self.config, net, verbose=verbose, trace_keep=keep
        )
        self.rng = self.sim.rng
        self._actions = sorted(p.weights)
        self._weights = [p.weights[a] for a in self._actions]
        self._faulting = True
        self._next_id = self.n + 1
        self._payload = 0
        self._awaited: dict[bytes, int] = {}
        self.sim.on_commit = self._committed
        if prng.random() < 0.5:
            for nid in self.sim.nodes:
                self.sim.set_period(nid, self._random_period())

    def params(self) -> dict[str, object]:
        c = self.config
        return {
            "election_tick": c.election_tick,
            "heartbeat_tick": c.heartbeat_tick,
            "pre_vote": c.pre_vote,
            "max_msg_bytes": c.max_msg_bytes,
            "max_inflight_msgs": c.max_inflight_msgs,
            "max_inflight_bytes": c.max_inflight_bytes,
            "snapshot_chunk_size": c.snapshot_chunk_size,
            "max_snapshot_inflight": c.max_snapshot_inflight,
            "compaction_tail": c.compaction_tail,
            "compaction_tail_bytes": c.compaction_tail_bytes,
            "catch_up_margin": c.catch_up_margin,
            "inline_persist": self.sim.net.inline,
        }

    # ------------------------------------------------------------------ run

    def run(self) -> Outcome:
        sim = self.sim
        violation: Violation | None = None
        try:
            self._run()
        except Violation as v:
            violation = v
        except Exception as e:  # the core raised: report it like a violation
            tb = traceback.format_exception(e)
            violation = Violation(f"core raised {type(e).__name__}", "".join(tb[-6:]).rstrip())
        return Outcome(
            self.seed,
            self.n,
            self.profile.name,
            sim.steps,
            sim.now,
            violation,
            sim.trace.tail(self.trace_lines) if violation else [],
            dict(sim.stats.counts),
            self.params(),
        )

    def _run(self) -> None:
        sim = self.sim
        sim.after(0.5, self._act)
        sim.run_steps(self.steps)
        self._faulting = False
        self._heal()
        self._liveness()
        sim.check_logs()

    def _heal(self) -> None:
        sim = self.sim
        sim.trace.add(sim.now, "HEAL ALL", "", "network repaired, every node restarted")
        sim.heal()
        sim.net.drop = 0.0
        sim.net.dup = 0.0
        sim.net.fifo = True
        for nid in list(sim.nodes):
            sim.restart(nid)

    def _liveness(self) -> None:
        sim = self.sim
        timeout = self.config.election_tick * self.max_skew
        t0 = sim.now
        if not sim.run_for(20 * timeout, self._has_leader):
            raise Violation(
                "liveness",
                f"no leader within 20 election timeouts after healing (at {t0:.1f})",
            )
        last = 0
        for k in range(3):
            last = self._live_write(b"live-%d" % k, 10 * timeout)
        self._live_read(10 * timeout)
        leader = sim.leader()
        assert leader is not None and leader.core is not None
        members = sorted(leader.core.membership.members())

        self._catch_up(members, last, timeout)
        sim.check_converged(members)

    def _catch_up(self, members: list[NodeId], last: int, timeout: float) -> None:
        """Every member applies index ``last``: progress never stalls for 10 election
        timeouts, and the whole catch-up takes at most 10 timeouts plus 2 ticks per
        entry a member lacked (a far-behind learner fed tiny messages is slow, not dead)."""
        sim = self.sim
        nodes = [sim.nodes[m] for m in members]
        backlog = max(last - n.machine.applied for n in nodes)
        deadline = sim.now + 10 * timeout + 2 * backlog

        def caught_up() -> bool:
            return all(n.machine.applied >= last for n in nodes)

        def advanced(before: list[int]) -> Callable[[], bool]:
            return lambda: (
                caught_up()
                or any(n.machine.applied > b for n, b in zip(nodes, before, strict=True))
            )

        while not caught_up():
            moved = sim.run_for(10 * timeout, advanced([n.machine.applied for n in nodes]))
            behind = [n.id for n in nodes if n.machine.applied < last]
            if not moved:
                raise Violation(
                    "liveness",
                    f"members {behind} made no progress towards index {last} "
                    "for 10 election timeouts",
                )
            if sim.now > deadline and behind:
                raise Violation(
                    "liveness",
                    f"members {behind} did not apply index {last} by {deadline:.1f} "
                    f"(backlog {backlog} entries)",
                )

    def _has_leader(self) -> bool:
        leader = self.sim.leader()
        return leader is not None and leader.core is not None and leader.core.is_voter()

    def _committed(self, e: Entry) -> None:
        if self._awaited and e.data in self._awaited:
            self._awaited[e.data] = e.index

    def _live_write(self, payload: bytes, bound: float) -> int:
        """Write ``payload`` like a client that retries; its index once committed."""
        sim = self.sim
        self._awaited[payload] = 0
        start = sim.now
        leader = sim.leader()
        if leader is not None and leader.core is not None:
            # entries already queued ahead of this write (proposed during the faults)
            bound += 2 * (leader.core.last_index - leader.core.commit_index)
        retry_every = self.config.election_tick
        issued = -math.inf
        pending: list[Write] = []
        while not self._awaited[payload]:
            if sim.now - start > bound:
                raise Violation(
                    "liveness", f"write {payload!r} made at {start:.1f} did not commit in time"
                )
            if not pending or pending[0].lost or sim.now - issued >= retry_every:
                leader = sim.leader()
                if leader is not None:
                    pending = sim.propose(leader.id, [payload])
                    if pending:
                        issued = sim.now
            sim.run_for(0.25, lambda: self._awaited[payload] > 0)
        return self._awaited.pop(payload)

    def _live_read(self, bound: float) -> None:
        """A ReadIndex read (retried on a new leader if dropped) is served in time."""
        sim = self.sim
        start = sim.now
        token: int | None = None
        holder: NodeId = ""
        while token is None or not sim.read_served(token):
            if sim.now - start > bound:
                raise Violation("liveness", f"a read made at {start:.1f} was not served in time")
            # Retry like a client told "not the leader": the holder stepped
            # down (maybe to lead again since, without the read).
            if token is None or sim.nodes[holder].role != Role.LEADER or sim.read_dropped(token):
                leader = sim.leader()
                if leader is not None:
                    holder = leader.id
                    token = sim.read_index(holder)
            sim.run_for(0.5, None if token is None else functools.partial(sim.read_served, token))

    # -------------------------------------------------------------- actions

    def _act(self) -> None:
        if not self._faulting:
            return
        sim = self.sim
        sim.after(0.5, self._act)
        rng = self.rng
        believers = self._believers()
        if len(believers) > 1:
            # Two nodes believe they lead: exactly when a broken read path
            # would serve stale data, so read on both.
            for nid in believers:
                self.sim.read_index(nid)
                self.sim.lease_read(nid)
        if rng.random() < 0.3:
            return
        action = rng.choices(self._actions, self._weights)[0]
        handler: Callable[[], None] = getattr(self, "_do_" + action)
        handler()

    def _random_period(self) -> float:
        r = self.max_skew
        return math.exp(self.rng.uniform(-math.log(r), math.log(r)))

    def _up(self) -> list[NodeId]:
        return [n.id for n in self.sim.nodes.values() if n.core is not None]

    def _leader_id(self) -> NodeId | None:
        leader = self.sim.leader()
        return leader.id if leader is not None else None

    def _do_propose(self) -> None:
        rng = self.rng
        target = self._leader_id()
        if target is None or rng.random() < 0.05:
            up = self._up()
            if not up:
                return
            target = rng.choice(up)
        count = rng.choice((1, 1, 1, 2, 3, 8))
        data = []
        for _ in range(count):
            self._payload += 1
            data.append(b"w%07d" % self._payload)
        self.sim.propose(target, data)

    def _believers(self) -> list[NodeId]:
        """Every running node that believes it leads, stale ones included: those
        are the ones a broken read path would let serve old data."""
        return [n.id for n in self.sim.nodes.values() if n.role == Role.LEADER and n.core]

    def _do_read(self) -> None:
        for nid in self._believers():
            self.sim.read_index(nid)

    def _do_lease(self) -> None:
        for nid in self._believers():
            self.sim.lease_read(nid)

    def _do_snapshot(self) -> None:
        sim = self.sim
        up = self._up()
        if not up:
            return
        nid = self.rng.choice(up)
        node = sim.nodes[nid]
        st = node.store
        core = node.live()
        lo = max(
            st.snap.index + 1 if st.snap is not None else 1, node.machine.base, core.first_index - 1
        )
        hi = node.machine.applied
        if lo <= hi:
            sim.snapshot(nid, self.rng.randint(lo, hi))

    def _do_member(self) -> None:
        sim = self.sim
        rng = self.rng
        leader = sim.leader()
        if leader is None or leader.core is None:
            return
        mem = leader.core.membership
        voters = sorted(mem.voters)
        learners = sorted(mem.learners)
        outsiders = sorted(n for n in sim.nodes if n not in mem.voters and n not in mem.learners)
        options: list[tuple[ChangeType, NodeId]] = []
        if len(sim.nodes) < self.n + 3:
            options.append((ChangeType.ADD_VOTER, ""))
            options.append((ChangeType.ADD_LEARNER, ""))
        for o in outsiders:
            options.append((rng.choice((ChangeType.ADD_VOTER, ChangeType.ADD_LEARNER)), o))
        for lrn in learners:
            if lrn not in mem.promoting:
                options.append((ChangeType.PROMOTE, lrn))
            options.append((ChangeType.REMOVE, lrn))
        if len(voters) > 3:
            options.extend((ChangeType.REMOVE, v) for v in voters)
        if not options:
            return
        change, target = rng.choice(options)
        if not target:
            target = f"n{self._next_id}"
            self._next_id += 1
            sim.add_node(target, self._random_period())
        sim.change(leader.id, change, target)

    def _do_transfer(self) -> None:
        sim = self.sim
        leader = sim.leader()
        if leader is None or leader.core is None:
            return
        others = sorted(v for v in leader.core.membership.voters if v != leader.id)
        to = self.rng.choice([None, *others])
        sim.transfer(leader.id, to)

    def _do_crash(self) -> None:
        up = self._up()
        if up:
            self.sim.crash(self.rng.choice(up))

    def _do_restart(self) -> None:
        down = [n.id for n in self.sim.nodes.values() if n.core is None]
        if down:
            self.sim.restart(self.rng.choice(down))

    def _do_partition(self) -> None:
        sim = self.sim
        rng = self.rng
        ids = list(sim.nodes)
        roll = rng.random()
        if roll < 0.4:
            sim.isolate(rng.choice(ids))
        elif roll < 0.8:
            rng.shuffle(ids)
            cut = rng.randint(1, len(ids) - 1)
            sim.split([ids[:cut], ids[cut:]])
        else:
            a, b = rng.sample(ids, 2)
            sim.block(a, b)

    def _do_heal(self) -> None:
        self.sim.heal()

    def _do_skew(self) -> None:
        nid = self.rng.choice(list(self.sim.nodes))
        self.sim.set_period(nid, self._random_period())

    def _do_campaign(self) -> None:
        up = self._up()
        if up:
            nid = self.rng.choice(up)
            self.sim.campaign(nid)


def run_seed(
    seed: int,
    nodes: int | None = None,
    steps: int = DEFAULT_STEPS,
    *,
    profile: str | None = None,
    verbose: bool = False,
    trace_lines: int = 80,
) -> Outcome:
    """Run one seeded scenario and return its outcome."""
    return Scenario(
        seed, nodes, steps, profile=profile, verbose=verbose, trace_lines=trace_lines
    ).run()


def run_seeds(
    start: int,
    count: int,
    nodes: int | None = None,
    steps: int = DEFAULT_STEPS,
    *,
    profile: str | None = None,
) -> tuple[int, Outcome | None, float]:
    """Run seeds start..start+count-1; (seeds passed, first failure or None, CPU seconds)."""
    t0 = time.process_time()
    passed = 0
    for seed in range(start, start + count):
        out = run_seed(seed, nodes, steps, profile=profile)
        if not out.ok:
            return passed, out, time.process_time() - t0
        passed += 1
    return passed, None, time.process_time() - t0
