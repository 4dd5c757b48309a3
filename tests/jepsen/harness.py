"""A multi-process cluster of the Redis clone under fault injection, and its clients.

:class:`JCluster` starts ``python -m redraft.examples.clone`` processes on
loopback, each with its own data dir and log file, and routes every node's
peer traffic through the per-link proxies of :mod:`tests.jepsen.proxy`
(``--peer-route``), so partitions cut only peer links: clients always reach
every live node directly.  It kills (SIGKILL), pauses (SIGSTOP/SIGCONT),
restarts from the same data dir, removes and re-adds nodes, and waits for the
cluster to settle.  Only processes it started are ever signalled, by pid.
Asked for volumes (``volume_size``), it mounts each node's data dir on a
tmpfs of its own (:mod:`tests.tmpfs`), which the disk nemesis fills and frees.

:class:`Client` threads run the workload: GET/SET/DEL on a few register keys
and INCR on a counter, each op recorded in a :class:`~tests.jepsen.history.History`
with its outcome (ok; fail: definitely not applied; unknown: may have been).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from redraft.dedup import ClientSessions
from redraft.examples.clone import Clone
from redraft.examples.clone.zset import ZSet
from redraft.snapshotting import restore_payload
from redraft.storage.snapshots import SnapshotStore
from redraft.testing import NodeProcess, free_ports, node_command, wait_for
from tests import tmpfs
from tests.cluster import NO_RETRY

from .history import History, Kind, Outcome
from .proxy import Link, Mode, ProxyNet

__all__ = [
    "Client",
    "JCluster",
    "JNode",
    "MachineState",
    "Plain",
    "Wire",
    "Workload",
    "call",
    "classify_error",
]

ROOT = Path(__file__).resolve().parents[2]
_SETTLE_FIELDS = (
    "state",
    "term",
    "leader",
    "commit_index",
    "applied_index",
    "last_log_index",
    "voters",
)
ADMIN_TIMEOUT = 1.0


# redis-py's Connection is untyped; only this module's wrapper touches it.
_REDIS_CONNECTION: Any = redis.Connection
# No CLIENT SETINFO on connect: one round trip less per (re)connection.
_NO_SETINFO: dict[str, Any]
try:
    from redis.driver_info import DriverInfo

    _NO_SETINFO = {"driver_info": DriverInfo(name=None, lib_version=None)}
except ImportError:  # redis-py before 8
    _NO_SETINFO = {"lib_name": None, "lib_version": None}


class Wire:
    """One redis-py connection to a node, with no retries and a fixed timeout.

    No retries anywhere: a retried write could apply twice, and the history
    must see every attempt.
    """

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self._conn: Any = _REDIS_CONNECTION(
            host="127.0.0.1",
            port=port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=NO_RETRY,
            protocol=2,
            **_NO_SETINFO,
        )

    def connect(self) -> None:
        """Connect now (raises redis.ConnectionError); nothing is sent yet."""
        self._conn.connect()

    def request(self, *args: Any) -> Any:
        """Send one command and read its reply; a server error is returned, not raised."""
        self.send([list(args)])
        return self.read()

    def send(self, commands: list[list[Any]]) -> None:
        """Write several commands at once (a pipeline); read their replies with :meth:`read`."""
        self._conn.send_packed_command(self._conn.pack_commands(commands))

    def read(self) -> Any:
        """The next reply; a server error is returned, not raised."""
        try:
            return self._conn.read_response()
        except redis.ResponseError as exc:
            return exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.disconnect()


class Counts(Protocol):
    """What a :class:`Line` counts as it goes (a workload's tally)."""

    connect_errors: int


class Line:
    """One connection of a workload's client, stuck to the node it believes leads.

    A workload follows ``-TRY`` with :meth:`retarget`; a connection that
    cannot be made moves the line to a random node after a short pause.
    """

    def __init__(self, ports: list[int], timeout: float, rng: random.Random, counts: Counts):
        self.ports = ports
        self.timeout = timeout
        self.rng = rng
        self.counts = counts
        self.target = rng.choice(ports)
        self.conn: Wire | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def retarget(self, port: int | None = None) -> None:
        """Drop the connection; the next one goes to ``port`` (None: a random node)."""
        self.close()
        self.target = port if port is not None else self.rng.choice(self.ports)

    def connected(self) -> Wire | None:
        """The connection, made now if needed; None if it could not be."""
        if self.conn is None:
            conn = Wire(self.target, self.timeout)
            try:
                conn.connect()
            except (redis.RedisError, OSError):
                self.counts.connect_errors += 1
                self.retarget()
                time.sleep(self.rng.uniform(0.02, 0.1))
                return None
            self.conn = conn
        return self.conn


def call(port: int, *args: Any, timeout: float = ADMIN_TIMEOUT) -> Any:
    """Send one command to the node on ``port`` over a fresh connection; errors raise."""
    wire = Wire(port, timeout)
    try:
        wire.connect()
        reply = wire.request(*args)
    finally:
        wire.close()
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply


def classify_error(message: str) -> tuple[Outcome, str]:
    """What a server error means for a write: its outcome and, for -TRY, the leader named.

    Only the errors the node guarantees were answered before anything was
    proposed, or after the entry was overwritten, count as failures; anything
    else may still be applied.
    """
    if message.startswith("TRY "):
        return Outcome.FAIL, message[4:].strip()
    if message == "leader not known":
        return Outcome.FAIL, ""
    if message.startswith("leadership changed before the command committed"):
        return Outcome.FAIL, ""
    if message.startswith("MISCONF "):
        # A full disk on a leader with no one to hand over to: refused before proposing.
        return Outcome.FAIL, ""
    return Outcome.UNKNOWN, ""


class JNode(NodeProcess):
    """One clone process of a :class:`JCluster` (its data dir survives restarts)."""

    error = RuntimeError

    def __init__(self, cluster: JCluster, index: int, port: int) -> None:
        name = f"n{index}"
        super().__init__(port, cluster.base / f"{name}.log", cwd=ROOT)
        self.cluster = cluster
        self.index = index
        self.id = f"127.0.0.1:{port}"
        self.name = name
        self.dir = cluster.base / name
        self.paused = False
        self.removed = False
        """Taken out of the membership by the nemesis (perhaps); it rejoins on heal."""
        self.removal_uncertain = False
        """The removal's outcome is unknown: ask the leader before wiping anything."""
        self.starts = 0
        self.crashes: list[str] = []
        self.volume: tmpfs.Volume | None = None
        """The tmpfs the data dir is mounted on, when the cluster has volumes."""
        self.disk_filled = False
        """The volume is filled up (by the disk nemesis) and not freed yet."""
        # Set while the harness itself stops the process, so its exit is no crash.
        self._expected_exit = True
        self._crash_noted = False

    def __repr__(self) -> str:
        return f"{self.name}({self.id})"

    @property
    def alive(self) -> bool:
        """The process runs (it may be paused)."""
        return self.running

    @property
    def up(self) -> bool:
        """The process runs and is not paused."""
        return self.alive and not self.paused

    def command_line(self, join: str) -> list[str]:
        c = self.cluster
        flags = [
            "--loglevel", "verbose", "--consistency", c.consistency, "--durability", c.durability,
            *c.extra_flags,
        ]  # fmt: skip
        for other in c.nodes:
            if other is not self:
                port = c.net.port((self.id, other.id))
                flags += ["--peer-route", f"{other.id}=127.0.0.1:{port}"]
        return node_command(self.port, self.dir, *flags, join=join)

    def start(self, join: str = "", wait: float = 15.0) -> None:
        """Start the process (if not running) and wait until it answers PING."""
        if self.alive:
            return
        note = (
            f"==== harness: start #{self.starts + 1} of {self.name} at "
            f"{time.strftime('%H:%M:%S')} join={join or '-'}\n"
        )
        self.launch(self.command_line(join), note)
        self.paused = False
        self._expected_exit = False
        self._crash_noted = False
        self.starts += 1
        self.wait_ready(wait)

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15.0) -> bool:
        """SIGKILL the process and reap it; False if it was not running."""
        self._expected_exit = True
        if not super().kill(sig, timeout):
            return False
        self.paused = False
        self.close_log()
        return True

    def pause(self) -> bool:
        """SIGSTOP the process."""
        if self.paused or not self.signal(signal.SIGSTOP):
            return False
        self.paused = True
        return True

    def resume(self) -> bool:
        """SIGCONT the process."""
        if not self.paused:
            return False
        self.paused = False
        return self.signal(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), or SIGKILL after 10 s."""
        self._expected_exit = True
        super().stop(timeout)
        self.paused = False

    def wipe(self) -> None:
        """Delete the data dir (the process must not be running).

        On a volume, only what the node wrote goes: the mount stays, and so
        does the filler while the disk nemesis holds the volume full.
        """
        assert not self.alive
        if self.volume is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        for entry in list(self.dir.iterdir()):
            if entry.name == tmpfs.FILLER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def fill_disk(self) -> int:
        """Use up all the space of the node's volume; the bytes the filler took."""
        assert self.volume is not None, f"{self.name} has no volume to fill"
        self.disk_filled = True
        return self.volume.fill()

    def top_up_disk(self) -> int:
        """Fill again whatever space the node freed meanwhile (if its volume is held full)."""
        if self.volume is None or not self.disk_filled:
            return 0
        return self.volume.fill()

    def free_disk(self) -> bool:
        """Delete the filler: the space returns; False if the volume was not filled."""
        if self.volume is None or not self.disk_filled:
            return False
        self.volume.free()
        self.disk_filled = False
        return True

    def exit_status(self) -> int | None:
        """The exit code if the process ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def check_crash(self) -> int | None:
        """The exit code if the process ended on its own since the last check, else None."""
        code = self.exit_status()
        if code is None or self._expected_exit or self._crash_noted:
            return None
        self._crash_noted = True
        self.crashes.append(f"exit code {code}")
        self.close_log()
        return code

    def call(self, *args: Any, timeout: float = ADMIN_TIMEOUT) -> Any:
        """One command to this node (see :func:`call`)."""
        return call(self.port, *args, timeout=timeout)

    def stats(self, timeout: float = ADMIN_TIMEOUT) -> dict[str, str]:
        """RAFTSTATS as a dict of text."""
        flat = self.call("RAFTSTATS", timeout=timeout)
        return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


Plain = tuple[str, Any]
"""A value of a type other than string, comparable across nodes: ``(TYPE's name, payload)``.

The payload is a tuple of elements for a list (head first), a dict for a hash,
a frozenset for a set and a tuple of ``(member, score)`` pairs for a sorted
set (lowest first).
"""


def plain(value: Any) -> Plain:
    """The :data:`Plain` form of one of the clone's container values."""
    if type(value) is deque:
        return ("list", tuple(value))
    if type(value) is dict:
        return ("hash", dict(value))
    if type(value) is set:
        return ("set", frozenset(value))
    if type(value) is ZSet:
        return ("zset", tuple(value))
    raise TypeError(f"no plain form for a {type(value).__name__}")


@dataclass
class MachineState:
    """A node's machine state, read back from a snapshot file it wrote."""

    node: str
    index: int
    term: int
    data: dict[bytes, bytes]
    expires: dict[bytes, int]
    objects: dict[bytes, Plain] = field(default_factory=dict)
    """The keys of every other type (lists, hashes, sets, sorted sets), in plain form."""


class JCluster:
    """A cluster of clone processes whose peer links run through harness proxies."""

    def __init__(
        self,
        base: Path,
        size: int,
        *,
        consistency: str = "high",
        durability: str = "high",
        extra_flags: list[str] | None = None,
        volume_size: int | None = None,
    ) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.consistency = consistency
        self.durability = durability
        self.extra_flags = extra_flags or []
        self.volume_size = volume_size
        """Bytes of the tmpfs each node's data dir is mounted on (None: no volumes; see
        :mod:`tests.tmpfs`, which needs root); mounted by :meth:`start`, gone after :meth:`stop`."""
        self._mounts = contextlib.ExitStack()
        self.unmount_errors: list[str] = []
        self.net = ProxyNet()
        self.nodes = [JNode(self, i + 1, p) for i, p in enumerate(free_ports(size))]
        for a in self.nodes:
            for b in self.nodes:
                if a is not b:
                    self.net.add((a.id, b.id), b.port)
        self._lock = threading.Lock()

    # ----------------------------------------------------------- lifecycle

    @property
    def volumes(self) -> bool:
        """Whether each node's data dir is on a volume of its own (that the disk nemesis fills)."""
        return self.volume_size is not None

    def start(self, timeout: float = 30.0) -> None:
        """Bootstrap the first node, join the others, wait until all are voters."""
        if self.volume_size is not None:
            self._mount_volumes(self.volume_size)
        first = self.nodes[0]
        first.start()
        self.wait_for(lambda: self.leader() is first, timeout, "the first node to lead")
        for n in self.nodes[1:]:
            n.start(join=first.id)
        self.wait_for(
            lambda: self.voters() == {n.id for n in self.nodes},
            timeout,
            "every node to become a voter",
        )

    def stop(self, keep_data: bool = False) -> None:
        """Stop every process and proxy, then unmount the volumes.

        ``keep_data``: copy what the nodes wrote on their volumes to their data
        dirs on the base directory, for a failed run's artifacts.  Never
        raises for an unmount: problems are kept in :attr:`unmount_errors`.
        """
        for n in self.nodes:
            with contextlib.suppress(Exception):
                n.stop()
        self.net.close()
        self._unmount_volumes(keep_data)

    def _mount_volumes(self, size: int) -> None:
        for n in self.nodes:
            if n.volume is not None:
                continue
            try:
                n.volume = self._mounts.enter_context(tmpfs.volume(n.dir, size))
            except (OSError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                raise RuntimeError(
                    f"cannot mount a tmpfs on {n.dir}: {exc!r} {detail.decode(errors='replace')}"
                ) from exc

    def _unmount_volumes(self, keep_data: bool) -> None:
        saved: dict[JNode, Path] = {}
        for n in self.nodes:
            if n.volume is None:
                continue
            if keep_data:
                copy = self.base / f"{n.name}.saved"
                try:
                    shutil.copytree(n.dir, copy, ignore=shutil.ignore_patterns(tmpfs.FILLER))
                    saved[n] = copy
                except OSError as exc:
                    self.unmount_errors.append(f"could not save {n.name}'s data dir: {exc!r}")
            n.volume = None
            n.disk_filled = False
        try:
            self._mounts.close()
        except Exception as exc:
            self.unmount_errors.append(f"unmount failed: {exc!r}")
        for n, copy in saved.items():
            try:
                for entry in copy.iterdir():
                    shutil.move(entry, n.dir / entry.name)
                copy.rmdir()
            except OSError as exc:
                self.unmount_errors.append(f"{n.name}'s data dir is left in {copy}: {exc!r}")

    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``predicate`` until truthy; raise TimeoutError after ``timeout`` seconds."""
        return wait_for(
            predicate, timeout, what, interval=0.1, retry_on=(redis.RedisError, OSError)
        )

    # ---------------------------------------------------------- inspection

    def node(self, ident: str) -> JNode | None:
        """The node with id ``ident`` (``host:port``), if any."""
        return next((n for n in self.nodes if n.id == ident), None)

    def node_by_port(self, port: int) -> JNode | None:
        """The node listening on ``port``, if any."""
        return next((n for n in self.nodes if n.port == port), None)

    def leader(self) -> JNode | None:
        """A node that says it leads (the one of the highest term if several do)."""
        best: tuple[int, JNode] | None = None
        for n in self.nodes:
            if not n.up:
                continue
            try:
                stats = n.stats(timeout=0.5)
            except (redis.RedisError, OSError):
                continue
            if stats.get("state") == "Leader":
                term = int(stats.get("term", "0"))
                if best is None or term > best[0]:
                    best = (term, n)
        return None if best is None else best[1]

    def voters(self) -> set[str]:
        """The voters according to the current leader (empty if there is none)."""
        leader = self.leader()
        if leader is None:
            return set()
        flat = leader.call("RAFTPEERS")
        return {_text(flat[i]) for i in range(0, len(flat) - 1, 2) if flat[i + 1] != b"Learner"}

    def members(self) -> dict[str, str]:
        """RAFTPEERS of the current leader: member id -> Leader/Follower/Learner."""
        leader = self.leader()
        if leader is None:
            return {}
        flat = leader.call("RAFTPEERS")
        return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}

    def crashed(self) -> list[JNode]:
        """Nodes whose process ended without the harness stopping it (each reported once)."""
        return [n for n in self.nodes if n.check_crash() is not None]

    # ------------------------------------------------------------- network

    def links(self, frm: list[JNode], to: list[JNode]) -> list[Link]:
        """The directed links from every node of ``frm`` to every node of ``to``."""
        return [(a.id, b.id) for a in frm for b in to if a is not b]

    def partition(self, groups: list[list[JNode]], stall: bool = False) -> list[Link]:
        """Cut every link between nodes of different groups (both directions)."""
        cut: list[Link] = []
        for i, g in enumerate(groups):
            for j, h in enumerate(groups):
                if i != j:
                    cut += self.links(g, h)
        self.net.cut(cut, stall=stall)
        return cut

    # ----------------------------------------------------------- membership

    def leader_call(self, *args: Any, timeout: float = 5.0) -> Any:
        """Send a command to the leader, following -TRY; errors raise."""
        target = self.leader()
        if target is None:
            raise redis.ResponseError("leader not known")
        for _ in range(5):
            try:
                return target.call(*args, timeout=timeout)
            except redis.ResponseError as exc:
                outcome, where = classify_error(str(exc))
                nxt = self.node(where) if where else None
                if outcome is Outcome.FAIL and nxt is not None and nxt.up:
                    target = nxt
                    continue
                raise
        raise redis.ResponseError("too many redirects")

    def rejoin(self, node: JNode, wipe: bool = True) -> None:
        """Bring a removed node back: restart it empty with --join (or with its old dir)."""
        node.kill()
        node.removed = node.removal_uncertain = False
        if wipe:
            node.wipe()
            # Every other node, as the README advises: whichever are down,
            # removed or themselves still joining, one of the rest admits it.
            node.start(join=",".join(n.id for n in self.nodes if n is not node))
            return
        node.start()
        # Its data dir holds the old membership, so it will not ask to join itself.
        with contextlib.suppress(redis.RedisError, OSError):
            self.leader_call("RAFTADDPEER", node.id)

    # --------------------------------------------------------------- healing

    def heal_all(self, wipe: bool = True) -> list[str]:
        """Undo every fault: free disks, resume, reconnect, restart and re-add; returns what was done.

        ``wipe`` says how removed nodes come back (see :meth:`rejoin`).
        """
        done: list[str] = []
        for n in self.nodes:
            if n.free_disk():
                done.append(f"free {n.name}'s disk")
        for n in self.nodes:
            if n.resume():
                done.append(f"resume {n.name}")
        if any(m is not Mode.OPEN for m in self.net.modes().values()):
            self.net.heal()
            done.append("heal network")
        for n in self.nodes:
            if not n.alive and not n.removed:
                n.start()
                done.append(f"restart {n.name}")
        for n in self.nodes:
            if n.removed and not n.removal_uncertain:
                self.rejoin(n, wipe=wipe)
                done.append(f"rejoin {n.name}")
        done += self.reconcile_membership(wipe=wipe)
        return done

    def stable_members(self, timeout: float) -> set[str] | None:
        """The members a leader reports twice in a row, half a second apart (None: no answer).

        A leader's membership takes effect when appended; seeing the same one
        twice while clients keep writing means it committed (or soon will).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, OSError):
                first = set(self.members())
                time.sleep(0.5)
                second = set(self.members())
                if first and first == second:
                    return first
            time.sleep(0.2)
        return None

    def reconcile_membership(self, wipe: bool = True, timeout: float = 20.0) -> list[str]:
        """Re-add every node the leader does not count as a member; returns what was done.

        Nodes whose removal was uncertain and that turn out to be members are
        simply marked as members again (restarted if they are down): wiping a
        node that is still a voter would throw away its votes and entries.
        """
        members = self.stable_members(timeout)
        if members is None:
            return ["membership unknown: no stable leader"]
        done = []
        for n in self.nodes:
            if n.id in members:
                if n.removed:
                    n.removed = n.removal_uncertain = False
                    done.append(f"{n.name} still a member")
                if not n.alive:
                    n.start()
                    done.append(f"restart {n.name}")
            else:
                self.rejoin(n, wipe=wipe)
                done.append(f"rejoin {n.name}")
        return done

    def settle(self, timeout: float = 30.0) -> dict[str, dict[str, str]]:
        """Wait for one leader, every node a voter, and every node applied up to its commit.

        Returns each node's RAFTSTATS at that point; on timeout the error says
        what each node last reported.
        """
        want = {n.id for n in self.nodes}
        last: dict[str, dict[str, str]] = {}
        peers: dict[str, str] = {}

        def settled() -> bool:
            nonlocal peers
            for n in self.nodes:
                try:
                    last[n.id] = n.stats()
                except (redis.RedisError, OSError) as exc:
                    last[n.id] = {"state": f"no answer ({exc.__class__.__name__})"}
            leader = self.leader()
            if leader is None:
                return False
            peers = self.members()
            if {m for m, role in peers.items() if role != "Learner"} != want:
                return False
            lead = last[leader.id]
            commit = lead.get("commit_index")
            if commit is None or lead.get("last_log_index") != commit:
                return False
            return all(
                s.get("applied_index") == commit
                and s.get("commit_index") == commit
                and s.get("leader") == leader.id
                for s in last.values()
            )

        try:
            self.wait_for(settled, timeout, "the cluster to settle")
        except TimeoutError as exc:
            names = {n.id: n.name for n in self.nodes}
            detail = "\n".join(
                f"  {names.get(ident, ident)}: "
                + " ".join(f"{k}={s.get(k)}" for k in _SETTLE_FIELDS if k in s)
                for ident, s in last.items()
            )
            roles = ", ".join(f"{names.get(m, m)} {role}" for m, role in sorted(peers.items()))
            raise TimeoutError(
                f"{exc}; the leader's RAFTPEERS: {roles or '-'}; last RAFTSTATS:\n{detail}"
            ) from None
        return last

    def machine_states(self) -> list[MachineState]:
        """Each node's machine state, via a fresh RAFTSNAPSHOT read back from its data dir."""
        states = []
        for n in self.nodes:
            n.call("RAFTSNAPSHOT", timeout=10.0)
            states.append(_read_latest_snapshot(n))
        return states

    def digests(self, timeout: float = 5.0) -> list[tuple[str, int, bytes]]:
        """RAFTDIGEST of every node: (name, applied index, SHA-256 of its machine's snapshot).

        Asked again (for up to ``timeout`` seconds) until every node answers
        the same applied index, so the digests compare like with like.
        """
        deadline = time.monotonic() + timeout
        while True:
            got = []
            for n in self.nodes:
                index, digest = n.call("RAFTDIGEST", timeout=10.0)
                got.append((n.name, int(index), bytes(digest)))
            if len({index for _, index, _ in got}) == 1 or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {n.name} {n.id} (pid {n.pid}) ---\n{n.log_tail(lines)}" for n in self.nodes
        )


def _read_latest_snapshot(node: JNode) -> MachineState:
    src = node.dir / "snapshots"
    with tempfile.TemporaryDirectory(prefix="jepsen-snap-") as tmp:
        # A SnapshotStore cleans up its directory when opened: work on a copy,
        # never on a live node's files.
        copy = Path(tmp) / "snapshots"
        copy.mkdir()
        for entry in sorted(src.iterdir()):
            if entry.name.startswith("snap-") and entry.name.endswith(".rsnap"):
                with contextlib.suppress(FileNotFoundError):
                    shutil.copy2(entry, copy / entry.name)
        store = SnapshotStore(copy)
        meta = store.latest()
        if meta is None:
            raise RuntimeError(f"{node} has no valid snapshot in {src}")
        machine = Clone()
        with store.open_payload(meta) as rd:
            restore_payload(rd, machine, ClientSessions())
        return MachineState(
            node=node.name,
            index=meta.index,
            term=meta.term,
            data=dict(machine._data),
            expires=dict(machine._expires),
            objects={key: plain(value) for key, value in machine._objects.items()},
        )


# ---------------------------------------------------------------- workload


@dataclass
class Workload:
    """What the clients do: a mix of ops over a few keys.

    ``weights`` are the relative frequencies of GET, SET, DEL and INCR; INCR
    always targets the counter key, GET any key.
    """

    keys: int = 8
    counter: bool = True
    weights: tuple[float, float, float, float] = (0.45, 0.30, 0.08, 0.17)
    timeout: float = 1.0
    think: float = 0.0
    """Seconds a client sleeps between ops, at most (uniformly drawn)."""

    counter_key: bytes = b"jctr"
    pipelining: float = 0.3
    """The share of clients that send several commands at once on their connection."""
    pipeline_depth: int = 4

    def register_keys(self) -> list[bytes]:
        return [b"jk%d" % i for i in range(self.keys)]

    def all_keys(self) -> list[bytes]:
        return self.register_keys() + ([self.counter_key] if self.counter else [])


@dataclass
class ClientStats:
    """What one client saw, for the run summary."""

    ok: int = 0
    fail: int = 0
    unknown: int = 0
    redirects: int = 0
    no_leader: int = 0
    connect_errors: int = 0
    disk_full: int = 0
    """Writes refused with -MISCONF (a full disk on a leader with no one to hand over to)."""
    other_errors: dict[str, int] = field(default_factory=dict)


class Client(threading.Thread):
    """One client: sticks to the node it believes leads, follows -TRY, records every op.

    After an op whose outcome is unknown the client takes a new process
    number (as Jepsen does): the old op may still be in flight, so it must not
    look sequential with the next one.
    """

    def __init__(
        self,
        index: int,
        clients: int,
        cluster: JCluster,
        history: History,
        workload: Workload,
        seed: int,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"jepsen-client-{index}", daemon=True)
        self.index = index
        self.clients = clients
        self.process = index
        self.cluster = cluster
        self.history = history
        self.workload = workload
        self.rng = random.Random(seed)
        self.stop_event = stop
        self.stats = ClientStats()
        self.pipelined = index < round(clients * workload.pipelining)
        self._conn: Wire | None = None
        self._target: int = self.rng.choice(cluster.nodes).port
        self._seq = 0
        self._registers = workload.register_keys()
        self._all_keys = workload.all_keys()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.step()
                if self.workload.think > 0:
                    time.sleep(self.rng.uniform(0, self.workload.think))
        finally:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _retarget(self, port: int | None = None) -> None:
        self._drop_connection()
        self._target = port if port is not None else self.rng.choice(self.cluster.nodes).port

    def _choose(self) -> tuple[Kind, bytes, bytes | None, list[Any]]:
        w = self.workload
        kinds = [Kind.GET, Kind.SET, Kind.DEL, Kind.INCR]
        weights = list(w.weights) if w.counter else [*w.weights[:3], 0.0]
        kind = self.rng.choices(kinds, weights)[0]
        if kind is Kind.GET:
            key = self.rng.choice(self._all_keys)
            return kind, key, None, ["GET", key]
        if kind is Kind.INCR:
            return kind, w.counter_key, None, ["INCR", w.counter_key]
        key = self.rng.choice(self._registers)
        if kind is Kind.DEL:
            return kind, key, None, ["DEL", key]
        self._seq += 1
        value = b"p%d-%d" % (self.process, self._seq)
        return kind, key, value, ["SET", key, value]

    def _connected(self) -> Wire | None:
        if self._conn is None:
            conn = Wire(self._target, self.workload.timeout)
            try:
                conn.connect()
            except (redis.RedisError, OSError):
                # Nothing was sent: no op to record.
                self.stats.connect_errors += 1
                self._retarget()
                time.sleep(self.rng.uniform(0.02, 0.1))
                return None
            self._conn = conn
        return self._conn

    def step(self) -> None:
        """Run one op (or one pipeline of ops) against the current target and record it."""
        conn = self._connected()
        if conn is None:
            return
        depth = self.rng.randint(2, self.workload.pipeline_depth) if self.pipelined else 1
        batch = [self._choose() for _ in range(depth)]
        node = self.cluster.node_by_port(self._target)
        who = f"{self.process}@{node.name if node is not None else self._target}"
        handles = [self.history.invoke(who, kind, key, value) for kind, key, value, _ in batch]
        leader: str | None = None
        try:
            conn.send([args for _, _, _, args in batch])
        except (redis.RedisError, OSError):
            self._unknown(handles)
            self._retarget()
            return
        for pos, (handle, (kind, _, _, _)) in enumerate(zip(handles, batch, strict=True)):
            try:
                reply = conn.read()
            except (redis.RedisError, OSError):
                # Timeouts, lost connections, garbled replies: each may have been applied.
                self._unknown(handles[pos:])
                self._retarget()
                return
            redirect = self._record(handle, kind, reply)
            if redirect is not None:
                leader = redirect
        if leader is None:
            return
        if leader:
            self.stats.redirects += 1
            node = self.cluster.node(leader)
            port = node.port if node is not None else int(leader.rpartition(":")[2])
            if port == self._target:
                time.sleep(self.rng.uniform(0.005, 0.02))
            self._retarget(port)
            time.sleep(self.rng.uniform(0, 0.005))
        else:
            self.stats.no_leader += 1
            self._retarget()
            time.sleep(self.rng.uniform(0.03, 0.1))

    def _record(self, handle: int, kind: Kind, reply: Any) -> str | None:
        """Record one reply; returns the leader a -TRY named, "" if none is known (or the
        leader refuses writes for a full disk), else None."""
        if not isinstance(reply, redis.ResponseError):
            self.history.ok(handle, reply)
            self.stats.ok += 1
            return None
        message = str(reply)
        outcome, leader = classify_error(message)
        if kind is Kind.GET and outcome is Outcome.UNKNOWN and message.startswith("TIMEOUT"):
            outcome = Outcome.FAIL  # a read has no effect either way
        if outcome is Outcome.UNKNOWN:
            self._unknown([handle])
            short = message.split(" ", 1)[0] if message.startswith("TIMEOUT") else message[:80]
            self.stats.other_errors[short] = self.stats.other_errors.get(short, 0) + 1
            return None
        self.history.fail(handle)
        self.stats.fail += 1
        if message.startswith("MISCONF "):
            # The leader's disk is full: back off and try again (elsewhere), as with no leader.
            self.stats.disk_full += 1
            return ""
        if leader or message == "leader not known":
            return leader
        return None

    def _unknown(self, handles: list[int]) -> None:
        for handle in handles:
            self.history.unknown(handle)
            self.stats.unknown += 1
        # The ops may still be in flight: later ops of this client are concurrent with them.
        self.process += self.clients
