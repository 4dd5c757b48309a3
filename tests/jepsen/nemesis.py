"""Nemeses: the faults the suite injects into a running :class:`~tests.jepsen.harness.JCluster`.

A :class:`Nemesis` turns a cluster and a seeded random generator into a
:class:`Fault` (already injected) that knows how to heal itself.  The
:class:`Schedule` thread alternates quiet periods and faults for as long as the
run lasts and records every step, with its time, as an :class:`Event`, so a
failure can be traced back to what the nemesis did.

The nemeses (see :data:`NEMESES`): ``kill`` (SIGKILL a random node),
``kill-leader``, ``kill-majority`` (each restarted from its data dir on heal),
``pause`` (SIGSTOP, mostly the leader; SIGCONT on heal), ``partition-one``,
``partition-majority`` (a minority/majority split or a bridge: one node that
sees both sides), ``partition-leader``, ``partition-oneway`` (links cut in one
direction only), ``membership`` (RAFTREMOVEPEER a node, often while another
fault is active, or kill it, remove it and bring it back empty at once; a
removed node restarts empty and rejoins with ``--join``), ``snapshots``
(RAFTSNAPSHOT on random nodes all along, plus kills, pauses and partitions so
that lagging followers need the snapshot), ``disk`` (fill the volume a node's
data dir is on: the leader's, a follower's, a majority's or every node's at
once, as a cluster's disks fill together; keep it full under the workload,
then free it; needs the cluster's volumes, see :mod:`tests.tmpfs`) and
``mixed`` (any of these, often two at once; ``disk`` only when the cluster
has volumes).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import redis

from .harness import JCluster, JNode, classify_error
from .history import Outcome
from .proxy import Link, Mode

__all__ = [
    "NEMESES",
    "DiskTally",
    "Event",
    "Fault",
    "Nemesis",
    "Recorder",
    "Schedule",
    "make_nemesis",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the nemesis did (``kind``: start, heal, info, error, crash)."""

    at: float
    kind: str
    nemesis: str
    detail: str


class Recorder:
    """A thread-safe list of events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def add(self, kind: str, nemesis: str, detail: str) -> Event:
        event = Event(time.monotonic(), kind, nemesis, detail)
        with self._lock:
            self.events.append(event)
        return event

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for e in self.events if e.kind == kind)


@dataclass
class Fault:
    """An injected fault: what it is and how to undo it."""

    nemesis: str
    description: str
    heal: Callable[[], str]
    """Undo the fault; returns what was done."""
    parts: int = 1
    """How many elementary faults this one is made of (for the run's tally)."""
    duration: float | None = None
    """How long to leave it in place, if the nemesis wants a say (else the schedule picks)."""


@dataclass
class DiskTally:
    """What the disk nemesis did and what the nodes made of it (for the run's report)."""

    fills: int = 0
    """Volumes filled."""
    noticed: int = 0
    """Of those, the ones whose node reported ``disk_full`` (or counted a new fill) before the free."""
    cleared: list[float] = field(default_factory=list)
    """Seconds from a free to the node's ``disk_full`` back at 0, for each one seen to clear."""
    silent: int = 0
    """Frees where the node, up and not paused, did not answer RAFTSTATS (in a second)."""
    slow: int = 0
    """Frees after which the node still reported ``disk_full`` when the heal stopped waiting."""

    def summary(self) -> str:
        worst = f", the slowest in {max(self.cleared):.1f}s" if self.cleared else ""
        text = (
            f"disks: {self.fills} filled, {self.noticed} of them noticed by their node; "
            f"{len(self.cleared)} seen writing again after the free{worst}"
        )
        if self.silent or self.slow:
            text += f"; {self.silent} did not answer at the free, {self.slow} slow to clear"
        return text


@dataclass
class Context:
    """What every nemesis works with."""

    cluster: JCluster
    rng: random.Random
    recorder: Recorder
    membership_wipe: bool = True
    membership_variants: tuple[str, ...] = ()
    """Restrict the membership nemesis to these variants (all of them if empty)."""
    snapshots_taken: list[int] = field(default_factory=lambda: [0])
    disks: DiskTally = field(default_factory=DiskTally)

    def up_nodes(self) -> list[JNode]:
        return [n for n in self.cluster.nodes if n.up and not n.removed]

    def alive_nodes(self) -> list[JNode]:
        return [n for n in self.cluster.nodes if n.alive and not n.removed]

    def leader_or_random(self) -> JNode | None:
        leader = self.cluster.leader()
        if leader is not None and not leader.removed:
            return leader
        nodes = self.alive_nodes()
        return self.rng.choice(nodes) if nodes else None


def _names(nodes: list[JNode]) -> str:
    return ",".join(n.name for n in nodes) or "-"


class Nemesis:
    """Base class: ``inject`` returns an injected fault, or None if it cannot now."""

    name = "none"

    def inject(self, ctx: Context) -> Fault | None:
        raise NotImplementedError

    def background(self, ctx: Context) -> None:
        """Called about every 0.1 s while the schedule runs (for ongoing actions)."""


# ------------------------------------------------------------------ kills


def _restarter(ctx: Context, victims: list[JNode]) -> Callable[[], str]:
    def heal() -> str:
        done = []
        for n in victims:
            if not n.alive and not n.removed:
                n.start()
                done.append(n.name)
        return f"restarted {_names([n for n in victims if n.name in done])}"

    return heal


class Kill(Nemesis):
    """SIGKILL nodes (``random``, ``leader``, or ``majority``: a majority or, at times,
    every node); restart them from their data dirs on heal."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = {"random": "kill", "leader": "kill-leader", "majority": "kill-majority"}[target]

    def inject(self, ctx: Context) -> Fault | None:
        alive = ctx.alive_nodes()
        if not alive:
            return None
        leader = ctx.cluster.leader()
        if self.target == "random":
            victims = [ctx.rng.choice(alive)]
        elif self.target == "leader":
            victims = [
                leader if leader is not None and not leader.removed else ctx.rng.choice(alive)
            ]
        else:
            # Sometimes everyone: a whole-cluster restart must lose nothing either.
            need = len(ctx.cluster.nodes) // 2 + 1 if ctx.rng.random() < 0.75 else len(alive)
            victims = ctx.rng.sample(alive, min(need, len(alive)))
        was_leader = leader is not None and leader in victims
        victims = [v for v in victims if v.kill()]
        if not victims:
            return None
        leader_note = " (incl. the leader)" if was_leader else ""
        return Fault(
            self.name,
            f"kill -9 {_names(victims)}{leader_note}",
            _restarter(ctx, victims),
            parts=len(victims),
        )


class Pause(Nemesis):
    """SIGSTOP the leader (mostly) or a random node; SIGCONT on heal."""

    name = "pause"

    def inject(self, ctx: Context) -> Fault | None:
        up = ctx.up_nodes()
        if not up:
            return None
        leader = ctx.cluster.leader() if ctx.rng.random() < 0.7 else None
        victim = leader if leader is not None and leader.up else ctx.rng.choice(up)
        role = " (the leader)" if victim is leader else ""
        if not victim.pause():
            return None

        def heal() -> str:
            return f"resumed {victim.name}" if victim.resume() else f"{victim.name} not paused"

        # Half the pauses end before the others' election timeout runs out: the
        # node wakes up believing it still leads, with its clients' requests queued.
        short = ctx.rng.random() < 0.5
        duration = ctx.rng.uniform(0.1, 0.9) if short else None
        what = f"SIGSTOP {victim.name}{role}" + (f" for {duration:.2f}s" if duration else "")
        return Fault(self.name, what, heal, duration=duration)


# ------------------------------------------------------------- partitions


def _network_heal(ctx: Context, links: list[Link]) -> Callable[[], str]:
    def heal() -> str:
        ctx.cluster.net.set(links, Mode.OPEN)
        return f"reopened {len(links)} links"

    return heal


class Partition(Nemesis):
    """Cut peer links: ``one``, ``majority``, ``leader`` or ``oneway``.

    Each cut either resets connections (DROP) or silently stalls them (STALL,
    the bytes arrive late on heal), chosen at random.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"partition-{kind}"

    def inject(self, ctx: Context) -> Fault | None:
        c = ctx.cluster
        nodes = [n for n in c.nodes if not n.removed]
        if len(nodes) < 2:
            return None
        stall = ctx.rng.random() < 0.5
        how = "stall" if stall else "drop"
        rng = ctx.rng
        if self.kind in ("one", "leader"):
            victim = (
                ctx.leader_or_random() if self.kind == "leader" else rng.choice(nodes)
            ) or rng.choice(nodes)
            rest = [n for n in nodes if n is not victim]
            links = c.partition([[victim], rest], stall=stall)
            what = f"isolate {victim.name}" + (" (the leader)" if self.kind == "leader" else "")
        elif self.kind == "majority":
            shuffled = nodes[:]
            rng.shuffle(shuffled)
            if rng.random() < 0.5 and len(nodes) >= 3:
                # A bridge: the first node talks to both halves, which cannot talk to each other.
                bridge, rest = shuffled[0], shuffled[1:]
                half = len(rest) // 2
                left, right = rest[:half], rest[half:]
                links = c.links(left, right) + c.links(right, left)
                c.net.cut(links, stall=stall)
                what = f"bridge {bridge.name} between {_names(left)} | {_names(right)}"
            else:
                minority = shuffled[: (len(nodes) - 1) // 2]
                majority = shuffled[len(minority) :]
                links = c.partition([minority, majority], stall=stall)
                what = f"split {_names(minority)} | {_names(majority)}"
        else:
            links, what = self._oneway(ctx, nodes)
            c.net.cut(links, stall=stall)
        return Fault(self.name, f"{what} [{how}]", _network_heal(ctx, links))

    def _oneway(self, ctx: Context, nodes: list[JNode]) -> tuple[list[Link], str]:
        c = ctx.cluster
        rng = ctx.rng
        leader = ctx.leader_or_random() or rng.choice(nodes)
        others = [n for n in nodes if n is not leader]
        variant = rng.choice(("deaf", "mute", "random"))
        if variant == "deaf":
            return c.links(others, [leader]), f"{leader.name} hears nobody (sends fine)"
        if variant == "mute":
            return c.links([leader], others), f"{leader.name} reaches nobody (hears fine)"
        links = [link for link in c.links(nodes, nodes) if rng.random() < 0.4]
        if not links:
            links = [rng.choice(c.links(nodes, nodes))]
        names = {n.id: n.name for n in nodes}
        return links, "cut " + " ".join(f"{names[a]}->{names[b]}" for a, b in links)


# ------------------------------------------------------------- membership


class Membership(Nemesis):
    """Remove a node (often while another fault is active); on heal it rejoins.

    The removed node keeps running until the heal, as a careless operator
    would leave it.  On heal it is killed and restarts with an empty data dir
    and ``--join`` (a removed node's state is stale), or with its old data dir
    and an explicit RAFTADDPEER when ``membership_wipe`` is off.  A removal
    whose outcome is unknown is settled by asking the leader before wiping:
    wiping a node that is still a voter would throw away votes and entries.

    Variants (see :attr:`VARIANTS`): ``alone``; ``side``, where another
    fault (kill, pause, partition) comes first; ``stalled``, where the side
    fault is the victim's own link to the leader, stalled, so that messages
    of the victim's old incarnation reach the leader only after the new one
    has rejoined under the same address (there the rejoin is healed first;
    otherwise the side fault and the rejoin are healed in either order); and
    ``quick``, where the victim is killed, removed and restarted empty with
    ``--join`` at once, as a script replacing a failed node would do; and
    ``disk-loss``, where a node (the leader too) is killed and comes back
    with an empty data dir and ``--join`` while still a voter, as after a
    dead disk: the leader must remove the member it was before admitting it
    again.
    """

    name = "membership"
    SIDE = ("kill", "pause", "partition-one", "partition-leader")
    VARIANTS: ClassVar[dict[str, float]] = {
        "alone": 0.2,
        "side": 0.35,
        "stalled": 0.25,
        "quick": 0.2,
        "disk-loss": 0.2,
    }
    """Relative frequencies of the ways a removal is staged (see the class docstring)."""

    def inject(self, ctx: Context) -> Fault | None:
        c = ctx.cluster
        rng = ctx.rng
        if any(n.removed for n in c.nodes):
            return None
        side: Fault | None = None
        victim: JNode | None = None
        weights = {
            v: w
            for v, w in self.VARIANTS.items()
            if not ctx.membership_variants or v in ctx.membership_variants
        }
        variant = rng.choices(list(weights), list(weights.values()))[0]
        if variant == "side":
            side = make_nemesis(rng.choice(self.SIDE)).inject(ctx)
        elif variant == "stalled":
            side, victim = self._stall_victim(ctx)
        elif variant == "quick":
            return self._quick(ctx)
        elif variant == "disk-loss":
            return self._disk_loss(ctx)
        if side is not None:
            ctx.recorder.add("start", side.nemesis, f"{side.description} (before a removal)")
            time.sleep(rng.uniform(0.2, 1.5))
        if victim is None:
            victim = rng.choice([n for n in c.nodes if not n.removed])
        outcome = self._remove(ctx, victim)
        if outcome is Outcome.FAIL and side is None:
            return None
        if outcome is not Outcome.FAIL:
            victim.removed = True
            victim.removal_uncertain = outcome is Outcome.UNKNOWN
        wipe = ctx.membership_wipe
        target = victim
        # The stalled variant exists to deliver the old incarnation's messages late.
        heal_side_first = variant != "stalled" and rng.random() < 0.5

        def heal() -> str:
            steps: list[Callable[[], str]] = []
            if side is not None:
                healer = side.heal
                steps.append(lambda: f"{side.nemesis}: {healer()}")
            rejoin = [lambda: _rejoin(ctx, target, wipe) if target.removed else ""]
            steps = steps + rejoin if heal_side_first else rejoin + steps
            return "; ".join(note for note in (step() for step in steps) if note) or "nothing"

        what = {
            Outcome.OK: f"removed {victim.name}",
            Outcome.UNKNOWN: f"removal of {victim.name} uncertain",
            Outcome.FAIL: f"removal of {victim.name} refused",
        }[outcome]
        return Fault(self.name, what, heal, parts=1 + (side.parts if side else 0))

    def _quick(self, ctx: Context) -> Fault | None:
        """Kill a follower, remove it, and bring it back empty at once."""
        c = ctx.cluster
        leader = c.leader()
        followers = [n for n in c.nodes if n is not leader and n.alive and not n.removed]
        if leader is None or not followers:
            return None
        victim = ctx.rng.choice(followers)
        victim.kill()
        ctx.recorder.add("start", self.name, f"kill -9 {victim.name} (before its removal)")
        outcome = self._remove(ctx, victim)
        if outcome is Outcome.FAIL:
            # Still a member: it comes back with its data dir.
            return Fault(self.name, f"removal of {victim.name} refused", _restarter(ctx, [victim]))
        if outcome is Outcome.UNKNOWN:
            victim.removed = victim.removal_uncertain = True

            def later() -> str:
                return _rejoin(ctx, victim, ctx.membership_wipe) if victim.removed else ""

            return Fault(self.name, f"removal of {victim.name} uncertain", later, parts=2)
        c.rejoin(victim, wipe=ctx.membership_wipe)
        return Fault(
            self.name,
            f"removed {victim.name} and rejoined it at once",
            lambda: _await_catch_up(ctx, victim) if ctx.membership_wipe else "nothing to heal",
            parts=2,
        )

    def _disk_loss(self, ctx: Context) -> Fault | None:
        """Kill a node and bring it back with an empty data dir, still a voter."""
        c = ctx.cluster
        up = [n for n in c.nodes if n.up and not n.removed]
        if len(up) < len(c.nodes):
            return None
        # One lost disk at a time: a second one before every node is admitted
        # (it applies entries again) and a voter (it caught up) would be more
        # than Raft survives.
        try:
            members = c.members()
            if len(members) != len(c.nodes) or "Learner" in members.values():
                return None
            if any(int(n.stats()["applied_index"]) == 0 for n in c.nodes):
                return None
        except (redis.RedisError, OSError, KeyError, ValueError):
            return None
        victim = ctx.rng.choice(up)
        was = "the leader" if c.leader() is victim else "a follower"
        c.rejoin(victim, wipe=True)
        return Fault(
            self.name,
            f"{victim.name} ({was}) lost its data dir and rejoined empty while a voter",
            lambda: _await_catch_up(ctx, victim),
            parts=2,
        )

    def _stall_victim(self, ctx: Context) -> tuple[Fault | None, JNode | None]:
        c = ctx.cluster
        leader = c.leader()
        followers = [n for n in c.nodes if n is not leader and n.up and not n.removed]
        if leader is None or not followers:
            return None, None
        victim = ctx.rng.choice(followers)
        links = [(victim.id, leader.id)]
        c.net.cut(links, stall=True)
        fault = Fault(
            "partition-oneway",
            f"stall {victim.name}->{leader.name} (the leader)",
            _network_heal(ctx, links),
        )
        return fault, victim

    def _remove(self, ctx: Context, victim: JNode) -> Outcome:
        try:
            ctx.cluster.leader_call("RAFTREMOVEPEER", victim.id, timeout=3.0)
        except redis.ResponseError as exc:
            outcome, _ = classify_error(str(exc))
            msg = str(exc)
            definite = (
                outcome is Outcome.FAIL
                or "already in progress" in msg
                or "unknown" in msg
                or "redirect" in msg
            )
            ctx.recorder.add("info", self.name, f"RAFTREMOVEPEER {victim.name}: {msg}")
            return Outcome.FAIL if definite else Outcome.UNKNOWN
        except (redis.RedisError, OSError) as exc:
            ctx.recorder.add("info", self.name, f"RAFTREMOVEPEER {victim.name}: {exc!r}")
            return Outcome.UNKNOWN
        return Outcome.OK


def _await_catch_up(ctx: Context, node: JNode, timeout: float = 15.0) -> str:
    """Wait for a node that rejoined empty to apply its first entries.

    A wiped node applies its first entries within moments of joining.  It is
    recorded as stuck (an error: a liveness failure) if it applies nothing
    for ``timeout`` seconds while one leader, in one term, keeps committing
    and nothing else is wrong with the cluster (see below), or if after a few seconds of applying nothing the cluster loses its
    leader although nothing else is wrong with it (no node down, paused or
    removed, every link open): the leader was too busy to keep leading.
    """
    c = ctx.cluster
    began = time.monotonic()
    reign: tuple[str, str, int] | None = None  # leader, its term, its commit index at first sight
    last_commit = 0
    while (waited := time.monotonic() - began) < timeout:
        try:
            applied = int(node.stats()["applied_index"])
            leader = c.leader()
            lead = leader.stats() if leader is not None else None
        except (redis.RedisError, OSError, KeyError, ValueError):
            time.sleep(0.25)
            continue
        if applied > 0:
            return f"{node.name} caught up (applied index {applied})"
        if leader is None or lead is None:
            # No answer is no news: a leader too busy to answer still leads.
            time.sleep(0.25)
            continue
        current = (leader.name, lead["term"])
        if reign is not None and current != reign[:2]:
            if waited < 3.0 or not _healthy(ctx):
                return f"{node.name} applied nothing until the leadership changed"
            ctx.recorder.add(
                "error",
                "membership",
                f"{node.name} rejoined with an empty data dir and applied nothing for "
                f"{waited:.1f}s; then {reign[0]} (term {reign[1]}) lost the leadership although "
                "every node was up and every link open",
            )
            return f"{node.name} was stuck until the leader fell"
        last_commit = int(lead["commit_index"])
        if reign is None:
            reign = (*current, last_commit)
        time.sleep(0.25)
    if reign is None or last_commit <= reign[2]:
        return f"{node.name} applied nothing, but neither did the cluster commit anything"
    if not _healthy(ctx):
        # Another fault may cut the node off (a stalled link into it): it
        # owes nothing until that heals, and the final settle checks it then.
        return f"{node.name} applied nothing while another fault was active"
    ctx.recorder.add(
        "error",
        "membership",
        f"{node.name} rejoined with an empty data dir but applied nothing in {timeout:.0f}s "
        f"while {reign[0]} led term {reign[1]} and committed {reign[2]} -> {last_commit} "
        "(the leader is not replicating to it)",
    )
    return f"{node.name} is stuck"


def _healthy(ctx: Context) -> bool:
    """No node down, paused or removed, and every link open."""
    c = ctx.cluster
    return all(n.up and not n.removed for n in c.nodes) and all(
        m is Mode.OPEN for m in c.net.modes().values()
    )


def _rejoin(ctx: Context, victim: JNode, wipe: bool) -> str:
    c = ctx.cluster
    if victim.removal_uncertain:
        done = c.reconcile_membership(wipe=wipe, timeout=10.0)
        return "; ".join(done) or f"{victim.name} left as is"
    c.rejoin(victim, wipe=wipe)
    return f"{victim.name} rejoined {'empty' if wipe else 'with its old data dir'}"


# ------------------------------------------------------------------- disks


def _disk_stats(node: JNode) -> tuple[int, int] | None:
    """The node's ``disk_full`` and ``disk_full_count``, or None if it does not answer now."""
    if not node.up:
        return None
    try:
        st = node.stats()
        return int(st["disk_full"]), int(st["disk_full_count"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None


class DiskFill(Nemesis):
    """Fill the volumes of nodes' data dirs; free them on heal.

    The victims: the leader, a follower, a majority, or every node at once
    (the disks of a cluster fill together).  A filled volume is topped up all
    along (what the node frees, deleting an old snapshot say, is taken
    again), so it stays full for the fault's duration, under the workload.
    On heal the filler goes, and the heal waits a little for each node to
    report ``disk_full`` back at 0 (the final check insists on it).
    """

    name = "disk"
    TARGETS = (("leader", 0.35), ("follower", 0.3), ("majority", 0.25), ("all", 0.1))
    HOLD = (1.5, 5.0)
    """Seconds a fill lasts: long enough for a handover, and for clients to meet -MISCONF."""
    CLEAR_WAIT = 5.0

    def inject(self, ctx: Context) -> Fault | None:
        c = ctx.cluster
        if not c.volumes:
            return None
        nodes = [n for n in c.nodes if not n.removed and n.volume is not None]
        free = [n for n in nodes if not n.disk_filled]
        if not free:
            return None
        rng = ctx.rng
        leader = c.leader()
        target = rng.choices([t for t, _ in self.TARGETS], [w for _, w in self.TARGETS])[0]
        if target == "leader":
            victims = [leader if leader in free else rng.choice(free)]
        elif target == "follower":
            victims = [rng.choice([n for n in free if n is not leader] or free)]
        elif target == "majority":
            victims = rng.sample(free, min(len(c.nodes) // 2 + 1, len(free)))
        else:
            victims = free
        before = {v.name: _disk_stats(v) for v in victims}
        written = sum(v.fill_disk() for v in victims)
        ctx.disks.fills += len(victims)
        role = " (incl. the leader)" if leader is not None and leader in victims else ""
        what = f"fill the disk of {_names(victims)}{role} [{target}, {written >> 20} MiB]"

        def heal() -> str:
            return _free_disks(ctx, victims, before, self.CLEAR_WAIT)

        return Fault(self.name, what, heal, parts=len(victims), duration=rng.uniform(*self.HOLD))

    def background(self, ctx: Context) -> None:
        _top_up_disks(ctx)


def _top_up_disks(ctx: Context) -> None:
    for n in ctx.cluster.nodes:
        n.top_up_disk()


def _free_disks(
    ctx: Context, victims: list[JNode], before: dict[str, tuple[int, int] | None], wait: float
) -> str:
    """Free the victims' volumes; what each node made of the fill and how soon it wrote again."""
    notes = []
    full = []
    for v in victims:
        now = _disk_stats(v)
        was = before.get(v.name)
        if now is not None and (now[0] or (was is not None and now[1] > was[1])):
            ctx.disks.noticed += 1
            notes.append(f"{v.name} disk_full={now[0]} (count {now[1]})")
            if now[0]:
                full.append(v)
        elif now is None:
            if v.up:
                ctx.disks.silent += 1
            notes.append(f"{v.name} did not answer")
        else:
            notes.append(f"{v.name} never noticed")
    freed = [v for v in victims if v.free_disk()]
    began = time.monotonic()
    pending = [v for v in full if v in freed and v.up]
    cleared = []
    while pending and time.monotonic() - began < wait:
        for v in list(pending):
            st = _disk_stats(v)
            if st is not None and st[0] == 0:
                took = time.monotonic() - began
                ctx.disks.cleared.append(took)
                cleared.append(f"{v.name} in {took:.1f}s")
                pending.remove(v)
        if pending:
            time.sleep(0.1)
    text = f"freed {_names(freed)} ({'; '.join(notes)})"
    if cleared:
        text += "; writing again: " + ", ".join(cleared)
    if pending:
        # Not an error here (another fault may hold the node); the final check insists.
        ctx.disks.slow += len(pending)
        text += f"; still disk_full after {wait:.0f}s: {_names(pending)}"
    return text


# -------------------------------------------------------------- snapshots


class Snapshots(Nemesis):
    """RAFTSNAPSHOT on random nodes all along, with kills, pauses and partitions."""

    name = "snapshots"
    FAULTS = ("kill", "kill-leader", "pause", "partition-one", "partition-leader")

    def __init__(self) -> None:
        self._next = 0.0

    def inject(self, ctx: Context) -> Fault | None:
        return make_nemesis(ctx.rng.choice(self.FAULTS)).inject(ctx)

    def background(self, ctx: Context) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + ctx.rng.uniform(0.2, 1.0)
        up = ctx.up_nodes()
        if not up:
            return
        node = ctx.rng.choice(up)
        try:
            node.call("RAFTSNAPSHOT", timeout=2.0)
        except (redis.RedisError, OSError) as exc:
            ctx.recorder.add("info", self.name, f"RAFTSNAPSHOT on {node.name}: {exc!r}")
            return
        ctx.snapshots_taken[0] += 1


# ------------------------------------------------------------------ mixed


class Mixed(Nemesis):
    """Any nemesis, often two overlapping; snapshots are forced all along.

    ``disk`` is among them when the cluster has volumes (see :class:`DiskFill`).
    """

    name = "mixed"
    BASE = (
        "kill",
        "kill-leader",
        "kill-majority",
        "pause",
        "partition-one",
        "partition-majority",
        "partition-leader",
        "partition-oneway",
        "membership",
    )

    def __init__(self) -> None:
        self._snapshots = Snapshots()

    def inject(self, ctx: Context) -> Fault | None:
        # Disks are filled only where the cluster has volumes to fill.
        names = self.BASE + (("disk",) if ctx.cluster.volumes else ())
        first_name = ctx.rng.choice(names)
        first = make_nemesis(first_name).inject(ctx)
        if first is None or ctx.rng.random() < 0.5:
            return first
        ctx.recorder.add("start", first.nemesis, f"{first.description} (first of two)")
        time.sleep(ctx.rng.uniform(0.2, 1.5))
        second = make_nemesis(ctx.rng.choice(names)).inject(ctx)
        if second is None:
            return first
        a, b = first, second

        def heal() -> str:
            # Heal in either order: a restart during a partition is a case too.
            order = [b, a] if ctx.rng.random() < 0.5 else [a, b]
            return "; ".join(f"{f.nemesis}: {f.heal()}" for f in order)

        return Fault(
            f"{a.nemesis}+{b.nemesis}",
            f"{b.description} (while {a.description})",
            heal,
            parts=a.parts + b.parts,
        )

    def background(self, ctx: Context) -> None:
        self._snapshots.background(ctx)
        _top_up_disks(ctx)


NEMESES: dict[str, Callable[[], Nemesis]] = {
    "kill": lambda: Kill("random"),
    "kill-leader": lambda: Kill("leader"),
    "kill-majority": lambda: Kill("majority"),
    "pause": Pause,
    "partition-one": lambda: Partition("one"),
    "partition-majority": lambda: Partition("majority"),
    "partition-leader": lambda: Partition("leader"),
    "partition-oneway": lambda: Partition("oneway"),
    "membership": Membership,
    "snapshots": Snapshots,
    "disk": DiskFill,
    "mixed": Mixed,
}
"""Every nemesis by name."""


def make_nemesis(name: str) -> Nemesis:
    """A fresh nemesis by name (see :data:`NEMESES`)."""
    try:
        return NEMESES[name]()
    except KeyError:
        raise ValueError(f"unknown nemesis {name!r}: one of {', '.join(NEMESES)}") from None


# --------------------------------------------------------------- schedule


class Schedule(threading.Thread):
    """Alternates quiet periods and faults until stopped; records every step.

    It also watches for nodes that exit on their own (a crash: recorded and
    restarted, so the run goes on) and runs the nemesis's background actions.
    """

    def __init__(
        self,
        nemesis: Nemesis,
        ctx: Context,
        fault_time: tuple[float, float] = (1.0, 4.0),
        quiet_time: tuple[float, float] = (0.5, 2.0),
    ) -> None:
        super().__init__(name="jepsen-nemesis", daemon=True)
        self.nemesis = nemesis
        self.ctx = ctx
        self.fault_time = fault_time
        self.quiet_time = quiet_time
        self.faults = 0
        self.stopping = threading.Event()
        self.current: Fault | None = None

    def run(self) -> None:
        rec = self.ctx.recorder
        rng = self.ctx.rng
        try:
            self._wait(rng.uniform(*self.quiet_time))
            while not self.stopping.is_set():
                fault = self._guard("inject", lambda: self.nemesis.inject(self.ctx))
                if isinstance(fault, Fault):
                    self.current = fault
                    self.faults += fault.parts
                    rec.add("start", fault.nemesis, fault.description)
                    self._wait(fault.duration or rng.uniform(*self.fault_time))
                    self._heal_current()
                self._wait(rng.uniform(*self.quiet_time))
        finally:
            self._heal_current()

    def _heal_current(self) -> None:
        fault, self.current = self.current, None
        if fault is None:
            return
        done = self._guard("heal", fault.heal)
        self.ctx.recorder.add("heal", fault.nemesis, done if isinstance(done, str) else "failed")

    def _guard(self, what: str, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except Exception as exc:
            self.ctx.recorder.add("error", self.nemesis.name, f"{what} failed: {exc!r}")
            return None

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping.is_set():
            self.watch()
            self._guard("background", lambda: self.nemesis.background(self.ctx))
            left = end - time.monotonic()
            if left <= 0:
                return
            self.stopping.wait(min(0.1, left))

    def watch(self) -> None:
        """Record and restart nodes that exited without the harness stopping them."""
        for n in self.ctx.cluster.crashed():
            # A full disk stops writes on a node, not the node: exiting then is a crash too.
            full = " while its disk was full" if n.disk_filled else ""
            self.ctx.recorder.add(
                "crash", "-", f"{n.name} exited on its own{full} ({n.crashes[-1]}); restarting it"
            )
            if not n.removed:
                self._guard("restart", n.start)

    def finish(self, timeout: float = 60.0) -> None:
        """Stop injecting and heal the fault in progress."""
        self.stopping.set()
        self.join(timeout)
