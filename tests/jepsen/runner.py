"""One fault-suite run: start a cluster, run clients under a nemesis, heal, check, report.

The checks, after every fault is healed and the cluster has settled:

* **Linearizability** of the recorded history, key by key, with a final read
  of every key (through the leader) appended.  At consistency ``high`` the
  whole history must be linearizable.  At ``medium`` (lease reads, which
  Finn documents as "an itty-bitty risk of stale data during a leadership
  change") and ``low`` (any node answers from its own state) reads may be
  stale, so what must be linearizable is the history without its reads
  (SET, DEL with its count, INCR with its result, and the final reads); a
  stale read is reported as a warning.  At ``low`` every read must still
  return a value that some write wrote: a SET's value, nil, or a counter
  value no higher than the increments invoked so far.
* **No acknowledged write lost**: each key's final value is one the
  acknowledged and unknown writes could have left (the linearizability check
  implies it; this states it plainly).
* **Counter**: the final counter lies between the acknowledged increments
  and those plus the unknown ones.
* **Bank**: transfers between accounts in MULTI/EXEC transactions conserve
  the total, in every snapshot read taken in a transaction and in the final
  balances, and each final balance is one the transfers' outcomes allow
  (see :mod:`tests.jepsen.bank`).
* **Data types**: lists, hashes and sorted sets worked on by their own
  threads keep each family's invariants (no acknowledged push, field or
  member lost, no value from nowhere, queue order, counters within their
  increments; see :mod:`tests.jepsen.datatypes`).
* **Replicas agree**: every node, once caught up (same applied index), holds
  the same machine state of every type, read back from a snapshot each node
  writes on RAFTSNAPSHOT, and it matches the final reads (of the registers
  and of the data types' keys); the nodes' RAFTDIGESTs (which cover the
  WATCH log too) are equal.
* **No crash**: no node exited on its own, every restart worked, and the
  cluster settled within the allowed time (liveness after healing).
* **Full disks** (when the nodes' data dirs are on volumes: the ``disk``
  nemesis, and ``mixed`` where tmpfs can be mounted): no node exited while
  its disk was full (it must stop writing, not stop), and once the space is
  back every node reports ``disk_full`` 0 within the settle time.  Writes a
  leader refused with ``-MISCONF`` were never proposed: definite failures.

On failure the report gives the seed, the nemesis schedule with times, the
smallest failing key history and the tails of the node logs; the run's
directory keeps the full history (JSON lines), the schedule, the report and
every node's log and data dir.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests import tmpfs

from .bank import BankTransfers
from .datatypes import DataTypes
from .exact import ExactCounters
from .harness import Client, JCluster, MachineState, Plain, Workload, call
from .history import History, Kind, Op, Outcome
from .linearizability import (
    CheckResult,
    Verdict,
    check_counter,
    check_final_value,
    check_history,
)
from .nemesis import Context, DiskTally, Event, Recorder, Schedule, make_nemesis

__all__ = ["FINAL_CLIENT", "RunConfig", "RunResult", "run"]

FINAL_CLIENT = "final"
"""The client name of the reads taken after healing."""

_LOG_PROBLEM = re.compile(r"^\d+:\S+ \S+ \S+ [EC] |Traceback|Error:|Exception")


@dataclass
class RunConfig:
    """Everything that defines a run (the seed drives the nemesis and the clients' choices)."""

    nemesis: str = "mixed"
    time: float = 20.0
    """Seconds of workload under the nemesis."""
    nodes: int = 3
    seed: int | None = None
    consistency: str = "high"
    durability: str = "high"
    clients: int = 15
    keys: int = 8
    timeout: float = 1.0
    """Client socket timeout: a reply later than this is an unknown outcome."""
    think: float = 0.0
    base: Path | None = None
    """Directory for the cluster and artifacts (a new temporary one if None)."""
    keep: bool = False
    """Keep the directory even when the run passes."""
    recovery: float = 2.0
    """Seconds the clients keep running after the last heal."""
    settle_timeout: float = 40.0
    check_budget: float = 20.0
    """Seconds the checker may spend on one key before calling it undecided."""
    membership_wipe: bool = True
    membership_variants: tuple[str, ...] = ()
    """Only these variants of the membership nemesis (see ``Membership.VARIANTS``)."""
    fault_time: tuple[float, float] = (1.0, 4.0)
    quiet_time: tuple[float, float] = (0.5, 2.0)
    extra_flags: list[str] = field(default_factory=list)
    exact_clients: int = 2
    """Threads incrementing counters through redraft.client (see :mod:`tests.jepsen.exact`)."""
    exactly_once: bool = True
    """Whether those clients use sessions; off, the suite shows what retries without them do."""
    bank_clients: int = 2
    """Threads moving money between accounts in transactions (see :mod:`tests.jepsen.bank`)."""
    bank_accounts: int = 5
    """Accounts of 100 each: their total must be conserved."""
    types_clients: int = 2
    """Threads working on lists, hashes and sorted sets (see :mod:`tests.jepsen.datatypes`)."""
    volumes: bool | None = None
    """Each node's data dir on a tmpfs of its own (needs root; see :mod:`tests.tmpfs`).
    None: when the nemesis fills disks (``disk``, or ``mixed`` where tmpfs can be mounted)."""
    volume_size: int = 64 << 20
    """Bytes of each volume: room for a run's log and snapshots, many times over."""


@dataclass
class RunResult:
    """What a run found; ``report`` is the text to show a human."""

    config: RunConfig
    seed: int
    failures: list[str]
    warnings: list[str]
    report: str
    artifacts: Path
    ops: int
    faults: int

    @property
    def ok(self) -> bool:
        return not self.failures


def _say(msg: str) -> None:
    sys.stderr.write(f"[jepsen {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def run(config: RunConfig, say: Callable[[str], None] = _say) -> RunResult:
    """Run one fault-suite session and check it; never raises for a failed check."""
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    made_base = config.base is None
    base = config.base or Path(tempfile.mkdtemp(prefix=f"redraft-jepsen-{seed}-"))
    base.mkdir(parents=True, exist_ok=True)
    session = _Session(config, seed, base, say)
    try:
        session.execute()
    except Exception:
        # A harness bug must still leave a report and the run's directory behind.
        session.failures.append("harness error:\n" + traceback.format_exc())
    finally:
        session.shutdown()
    result = session.result()
    if result.ok and made_base and not config.keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


class _Session:
    def __init__(
        self, config: RunConfig, seed: int, base: Path, say: Callable[[str], None]
    ) -> None:
        self.config = config
        self.seed = seed
        self.base = base
        self.say = say
        self.rng = random.Random(seed)
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.details: list[str] = []
        self.history = History()
        self.recorder = Recorder()
        self.workload = Workload(keys=config.keys, timeout=config.timeout, think=config.think)
        self.cluster: JCluster | None = None
        self.schedule: Schedule | None = None
        self.clients: list[Client] = []
        self.exact: ExactCounters | None = None
        self.bank: BankTransfers | None = None
        self.types: DataTypes | None = None
        self.types_final: dict[bytes, Plain | None] = {}
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.healed_at = math.inf
        self.final: dict[bytes, bytes | None] = {}
        self.snapshots = [0]
        self.disks = DiskTally()
        self.tails = ""

    # -------------------------------------------------------------- phases

    def execute(self) -> None:
        c = self.config
        self.say(
            f"seed {self.seed}: nemesis {c.nemesis}, {c.nodes} nodes, {c.time:.0f}s, "
            f"consistency {c.consistency}, durability {c.durability}, dir {self.base}"
        )
        nemesis = make_nemesis(c.nemesis)
        volumes = self._volumes()
        if volumes is None:
            return
        cluster = self.cluster = JCluster(
            self.base,
            c.nodes,
            consistency=c.consistency,
            durability=c.durability,
            extra_flags=c.extra_flags,
            volume_size=c.volume_size if volumes else None,
        )
        try:
            cluster.start()
        except (RuntimeError, TimeoutError) as exc:
            self.failures.append(f"the cluster did not start: {exc}")
            return
        ctx = Context(
            cluster,
            random.Random(self.rng.randrange(2**63)),
            self.recorder,
            membership_wipe=c.membership_wipe,
            membership_variants=c.membership_variants,
        )
        self.snapshots = ctx.snapshots_taken
        self.disks = ctx.disks
        stop = threading.Event()
        self.clients = [
            Client(
                i, c.clients, cluster, self.history, self.workload, self.rng.randrange(2**63), stop
            )
            for i in range(c.clients)
        ]
        if not self._open_bank(cluster, stop):
            return
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        for client in self.clients:
            client.start()
        self.exact = ExactCounters(
            [f"127.0.0.1:{n.port}" for n in cluster.nodes],
            c.exact_clients,
            stop,
            exactly_once=c.exactly_once,
            timeout=c.timeout,
        )
        self.exact.start()
        if self.bank is not None:
            self.bank.start()
        if c.types_clients > 0:
            self.types = DataTypes(
                [n.port for n in cluster.nodes],
                c.types_clients,
                stop,
                seed=self.rng.randrange(2**63),
                timeout=c.timeout,
            )
            self.types.start()
        self.schedule = Schedule(nemesis, ctx, c.fault_time, c.quiet_time)
        self.schedule.start()
        time.sleep(c.time)
        self.say(f"healing after {len(self.history)} ops")
        self.schedule.finish()
        try:
            done = cluster.heal_all(wipe=c.membership_wipe)
        except Exception as exc:
            self.failures.append(f"healing failed: {exc!r}")
            done = []
        self.recorder.add("heal", "final", ", ".join(done) or "nothing left to heal")
        self.healed_at = time.monotonic()
        time.sleep(c.recovery)
        stop.set()
        for client in self.clients:
            client.join(timeout=10)
        self.exact.join(timeout=15)
        if self.bank is not None:
            self.bank.join(timeout=15)
        if self.types is not None:
            self.types.join(timeout=15)
        self.schedule.watch()
        self._settle_and_check(cluster)

    def _volumes(self) -> bool | None:
        """Whether the nodes get volumes of their own (None, with a failure, if they must and cannot)."""
        c = self.config
        wanted = c.volumes
        if wanted is None:
            wanted = c.nemesis == "disk" or (c.nemesis == "mixed" and tmpfs.unavailable() is None)
        if not wanted:
            return False
        reason = tmpfs.unavailable()
        if reason is not None:
            self.failures.append(f"the nodes' volumes cannot be mounted: {reason}")
            return None
        return True

    def _open_bank(self, cluster: JCluster, stop: threading.Event) -> bool:
        """Set the bank's balances before any fault (False, with a failure, if it could not)."""
        c = self.config
        if c.bank_clients <= 0:
            return True
        self.bank = BankTransfers(
            [n.port for n in cluster.nodes],
            c.bank_clients,
            stop,
            accounts=c.bank_accounts,
            seed=self.rng.randrange(2**63),
            timeout=c.timeout,
        )
        try:
            self.bank.setup()
        except RuntimeError as exc:
            self.failures.append(f"bank: {exc}")
            return False
        return True

    def _settle_and_check(self, cluster: JCluster) -> None:
        c = self.config
        began = time.monotonic()
        try:
            cluster.settle(c.settle_timeout)
        except TimeoutError as exc:
            self.failures.append(f"liveness: {exc}")
            # What was recorded can still be checked, without the final reads.
            self._check_history()
            self._check_types()
            return
        self.notes.append(
            f"settled {time.monotonic() - began:.1f}s after the clients stopped "
            f"({time.monotonic() - self.healed_at:.1f}s after the final heal)"
        )
        if self.schedule is not None:
            self.schedule.watch()
        self._check_disks(cluster, began + c.settle_timeout)
        self._final_reads(cluster)
        self._final_types_reads(cluster)
        self._check_history()
        self._check_types()
        self._check_replicas(cluster)
        self._check_exact(cluster)
        self._check_bank(cluster)

    def _final_reads(self, cluster: JCluster) -> None:
        for key in self.workload.all_keys():
            deadline = time.monotonic() + 15
            while True:
                leader = cluster.leader()
                port = leader.port if leader is not None else cluster.nodes[0].port
                handle = self.history.invoke(FINAL_CLIENT, Kind.GET, key)
                try:
                    value = call(port, "GET", key, timeout=2.0)
                except redis.ResponseError:
                    # A read changes nothing: any refusal is simply a failed read.
                    self.history.fail(handle)
                except (redis.RedisError, OSError):
                    self.history.unknown(handle)
                else:
                    self.history.ok(handle, value)
                    self.final[key] = value
                    break
                if time.monotonic() > deadline:
                    self.failures.append(f"liveness: no final read of {key!r} succeeded in 15s")
                    break
                time.sleep(0.1)

    def _final_types_reads(self, cluster: JCluster) -> None:
        if self.types is None:
            return

        def port() -> int:
            leader = cluster.leader()
            return leader.port if leader is not None else cluster.nodes[0].port

        self.types_final, failures = self.types.read_final(port)
        self.failures.extend(failures)

    # --------------------------------------------------------------- checks

    def _check_disks(self, cluster: JCluster, deadline: float) -> None:
        """With volumes: every node writing again (``disk_full`` 0) by the settle deadline."""
        if not cluster.volumes:
            return
        deadline = max(deadline, time.monotonic() + 5.0)
        full: dict[str, str] = {}
        while True:
            full = {}
            for n in cluster.nodes:
                try:
                    st = n.stats()
                except (redis.RedisError, OSError) as exc:
                    full[n.name] = f"no answer ({exc!r})"
                    continue
                if st.get("disk_full", "0") != "0":
                    full[n.name] = f"disk_full {st['disk_full']}: {st.get('disk_full_error')}"
            if not full or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for name, what in full.items():
            self.failures.append(f"disk: {name} is not writing again after the free: {what}")
        refused = sum(client.stats.disk_full for client in self.clients)
        self.notes.append(
            f"{self.disks.summary()}; {refused} register writes refused with -MISCONF"
        )

    def _check_types(self) -> None:
        if self.types is None:
            return
        failures, notes = self.types.check(
            self.types_final, linearizable=self.config.consistency == "high", t0=self.t0
        )
        self.failures.extend(failures)
        self.notes.append("types: " + "; ".join(notes))

    def _check_history(self) -> None:
        c = self.config
        ops = self.history.ops()
        budget = c.check_budget
        self.say(f"checking {len(ops)} ops")
        if c.consistency == "high":
            result = check_history(ops, time_budget=budget)
            self._verdict(result, "linearizability")
        else:
            writes = [op for op in ops if op.kind is not Kind.GET or op.client == FINAL_CLIENT]
            result = check_history(writes, time_budget=budget)
            self._verdict(result, "linearizability of the writes (reads excluded)")
            full = check_history(ops, time_budget=budget)
            if full.verdict is Verdict.VIOLATION:
                keys = ", ".join(_show(r.key) for r in full.violations)
                self.warnings.append(
                    f"stale reads (allowed at consistency {c.consistency}) on keys {keys}"
                )
                self.details.append("stale reads, for information:\n" + _smallest(full, self.t0))
            if c.consistency == "low":
                self.failures.extend(_reads_of_written_values(ops, self.workload.counter_key))
        counter = self.workload.counter_key
        if self.workload.counter and counter in self.final:
            cc = check_counter(ops, self.final[counter], key=counter)
            self.notes.append(str(cc))
            if not cc.ok:
                self.failures.append(str(cc))
        body = [op for op in ops if op.client != FINAL_CLIENT]
        lost = []
        for key in self.workload.register_keys():
            if key not in self.final:
                continue
            fv = check_final_value(body, self.final[key], key=key)
            if not fv.ok:
                lost.append(str(fv))
        if lost:
            self.failures.append(
                "acknowledged writes lost or phantom values:\n  " + "\n  ".join(lost)
            )

    def _verdict(self, result: CheckResult, what: str) -> None:
        self.notes.append(f"{what}: {result.format().splitlines()[0]}")
        if result.verdict is Verdict.VIOLATION:
            keys = ", ".join(_show(r.key) for r in result.violations)
            self.failures.append(f"{what}: VIOLATION on keys {keys}")
            self.details.append(_smallest(result, self.t0))
        elif result.verdict is Verdict.UNKNOWN:
            for r in result.undecided:
                self.warnings.append(f"{what}: key {_show(r.key)} undecided: {r.reason}")

    def _check_replicas(self, cluster: JCluster) -> None:
        try:
            states = cluster.machine_states()
        except Exception as exc:
            self.failures.append(f"could not read the nodes' machine states: {exc!r}")
            return
        first = states[0]
        problems: list[str] = []
        for s in states[1:]:
            if s.index != first.index:
                problems.append(
                    f"replicas: {s.node} snapshotted index {s.index}, {first.node} {first.index} "
                    "although the cluster had settled"
                )
            diff = _state_diff(first, s)
            if diff:
                problems.append(
                    f"replicas diverge at index {first.index}/{s.index}: {first.node} vs {s.node}: "
                    + diff
                )
        for s in states:
            wrong = [
                f"{_show(k)}: read {_show(v)}, {s.node} holds {_show(s.data.get(k))}"
                for k, v in self.final.items()
                if s.data.get(k) != v
            ]
            wrong += [
                f"{_show(k)}: read {_show_plain(v)}, {s.node} holds {_show_plain(s.objects.get(k))}"
                for k, v in self.types_final.items()
                if s.objects.get(k) != v
            ]
            if wrong:
                problems.append(
                    f"replicas: {s.node}'s state disagrees with the final reads: "
                    + "; ".join(wrong[:5])
                )
        problems += self._compare_digests(cluster)
        self.failures.extend(problems)
        self.notes.append(
            f"replicas: {len(states)} nodes at index {first.index} hold "
            f"{len(first.data) + len(first.objects)} keys ({len(first.objects)} not strings)"
            + ("" if problems else " (identical, and so are their digests)")
        )

    def _compare_digests(self, cluster: JCluster) -> list[str]:
        """RAFTDIGEST of every node: equal at the same applied index."""
        try:
            digests = cluster.digests()
        except (redis.RedisError, OSError, ValueError) as exc:
            return [f"replicas: could not read the nodes' RAFTDIGEST: {exc!r}"]
        indices = {index for _, index, _ in digests}
        shown = ", ".join(
            f"{name} {index} {digest[:12].decode()}" for name, index, digest in digests
        )
        if len(indices) > 1:
            self.warnings.append(
                f"replicas: RAFTDIGEST at different indices, not compared: {shown}"
            )
            return []
        if len({digest for _, _, digest in digests}) > 1:
            return [f"replicas: RAFTDIGEST differs at the same applied index: {shown}"]
        return []

    def _check_exact(self, cluster: JCluster) -> None:
        if self.exact is None:
            return
        final: dict[str, int | None] = {}
        leader = cluster.leader()
        port = leader.port if leader is not None else cluster.nodes[0].port
        for t in self.exact.tallies:
            try:
                raw = call(port, "GET", t.key, timeout=2.0)
            except (redis.RedisError, OSError) as exc:
                self.failures.append(f"could not read exact counter {t.key}: {exc!r}")
                return
            final[t.key] = None if raw is None else int(raw)
        failures, notes = self.exact.check(final)
        self.failures.extend(failures)
        self.notes.append(
            "exact counters"
            + ("" if self.config.exactly_once else " (sessions OFF)")
            + ": "
            + "; ".join(notes)
        )

    def _check_bank(self, cluster: JCluster) -> None:
        if self.bank is None:
            return
        leader = cluster.leader()
        port = leader.port if leader is not None else cluster.nodes[0].port
        try:
            # One MGET: the final balances as of one point in the log.
            raw = call(port, "MGET", *self.bank.keys, timeout=2.0)
        except (redis.RedisError, OSError) as exc:
            self.failures.append(f"could not read the bank's final balances: {exc!r}")
            return
        final = {
            key: None if value is None else int(value)
            for key, value in zip(self.bank.keys, raw, strict=True)
        }
        failures, notes = self.bank.check(final)
        self.failures.extend(failures)
        self.notes.append("bank: " + "; ".join(notes))

    # -------------------------------------------------------------- report

    def shutdown(self) -> None:
        if self.schedule is not None and self.schedule.is_alive():
            self.schedule.finish()
        for client in self.clients:
            client.stop_event.set()
        for client in self.clients:
            client.join(timeout=10)
        if self.cluster is not None:
            for event in self.recorder.snapshot():
                if event.kind == "crash":
                    self.failures.append(f"crash: {event.detail} at {self._t(event.at)}")
                elif event.kind == "error":
                    self.failures.append(
                        f"nemesis error: {event.nemesis} {event.detail} at {self._t(event.at)}"
                    )
            self.warnings.extend(self._log_problems())
            self.tails = self.cluster.log_tails(40)
            self.cluster.stop(keep_data=bool(self.failures) or self.config.keep)
            self.failures.extend(f"volumes: {e}" for e in self.cluster.unmount_errors)

    def _log_problems(self) -> list[str]:
        assert self.cluster is not None
        volumes = self.cluster.volumes
        out = []
        for n in self.cluster.nodes:
            try:
                lines = n.log_path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            seen: Counter[str] = Counter()
            for line in lines:
                if _LOG_PROBLEM.search(line):
                    if volumes and ("DISK FULL" in line or "the disk is full" in line):
                        continue  # the disk nemesis at work (tallied in the notes)
                    seen[re.sub(r"^\d+:\S+ \S+ \S+ ", "", line)[:160]] += 1
            for text, count in seen.most_common(5):
                out.append(f"{n.name} log: {text}" + (f" (x{count})" if count > 1 else ""))
        return out

    def _t(self, at: float) -> str:
        wall = self.wall0 + (at - self.t0)
        return f"+{at - self.t0:7.3f}s ({time.strftime('%H:%M:%S', time.localtime(wall))}.{int(wall * 1000) % 1000:03d})"

    def result(self) -> RunResult:
        ops = self.history.ops()
        faults = self.schedule.faults if self.schedule is not None else 0
        text = self._report(ops, faults)
        (self.base / "report.txt").write_text(text)
        self.history.save(self.base / "history.jsonl")
        if self.types is not None:
            self.types.save(self.base / "types.jsonl")
        (self.base / "schedule.txt").write_text(self._schedule_text(self.recorder.snapshot()))
        return RunResult(
            config=self.config,
            seed=self.seed,
            failures=self.failures,
            warnings=self.warnings,
            report=text,
            artifacts=self.base,
            ops=len(ops),
            faults=faults,
        )

    def _schedule_text(self, events: list[Event]) -> str:
        return "\n".join(f"{self._t(e.at)} {e.kind:5} {e.nemesis}: {e.detail}" for e in events)

    def _report(self, ops: list[Op], faults: int) -> str:
        c = self.config
        outcomes = Counter(op.outcome.value for op in ops)
        kinds = Counter(op.kind.value for op in ops)
        after_heal = sum(
            1 for op in ops if op.outcome is Outcome.OK and op.invoke >= self.healed_at
        )
        lines = [
            f"redraft fault suite: {'PASS' if not self.failures else 'FAIL'}",
            f"seed {self.seed}; nemesis {c.nemesis}; {c.nodes} nodes; {c.time:.0f}s; "
            f"consistency {c.consistency}; durability {c.durability}; {c.clients} clients; "
            f"{c.keys} keys + counter",
            f"reproduce: python -m tests.jepsen --nemesis {c.nemesis} --time {c.time:g} "
            f"--nodes {c.nodes} --seed {self.seed} --consistency {c.consistency} "
            f"--durability {c.durability}" + ("" if c.exactly_once else " --no-sessions"),
            f"ops: {len(ops)} ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}; "
            f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
            f"{after_heal} ok after the final heal",
            f"faults: {faults}; snapshots forced: {self.snapshots[0]}",
            f"ok ops per second: {_timeline(ops, self.t0)}",
            f"artifacts: {self.base}",
        ]
        lines += [f"  {n}" for n in self.notes]
        errors: Counter[str] = Counter()
        for client in self.clients:
            errors.update(client.stats.other_errors)
        if errors:
            lines.append(
                "unknown-outcome errors: "
                + ", ".join(f"{k!r} x{v}" for k, v in errors.most_common(8))
            )
        if self.failures:
            lines.append("FAILURES:")
            lines += [f"  - {f}" for f in self.failures]
        if self.warnings:
            lines.append("warnings:")
            lines += [f"  - {w}" for w in self.warnings]
        lines.append("nemesis schedule:")
        lines += [
            "  " + line for line in self._schedule_text(self.recorder.snapshot()).splitlines()
        ]
        if self.failures:
            lines += self.details
            lines.append("node log tails:")
            lines.append(self.tails)
        return "\n".join(lines)


def _timeline(ops: list[Op], t0: float) -> str:
    """Acknowledged ops completed in each second of the run (0 marks an outage)."""
    counts: Counter[int] = Counter(
        int(op.complete - t0)
        for op in ops
        if op.outcome is Outcome.OK and op.client != FINAL_CLIENT
    )
    if not counts:
        return "-"
    return " ".join(str(counts.get(sec, 0)) for sec in range(max(counts) + 1))


def _show(value: bytes | None) -> str:
    if value is None:
        return "nil"
    return repr(value.decode("utf-8", "replace"))


def _smallest(result: CheckResult, start: float) -> str:
    worst = sorted(result.violations, key=lambda r: r.ops)
    out = []
    for r in worst[:1]:
        assert r.counterexample is not None
        out.append(f"smallest failing key history ({r.ops} ops):")
        out.append(r.counterexample.format(start))
    if len(worst) > 1:
        out.append(f"({len(worst) - 1} more keys fail; see the report directory's history)")
    return "\n".join(out)


def _state_diff(a: MachineState, b: MachineState) -> str:
    diffs = []
    for key in sorted(set(a.data) | set(b.data)):
        if a.data.get(key) != b.data.get(key):
            diffs.append(f"{_show(key)}: {_show(a.data.get(key))} vs {_show(b.data.get(key))}")
    for key in sorted(set(a.objects) | set(b.objects)):
        if a.objects.get(key) != b.objects.get(key):
            diffs.append(
                f"{_show(key)}: {_show_plain(a.objects.get(key))} vs "
                f"{_show_plain(b.objects.get(key))}"
            )
    if a.expires != b.expires:
        diffs.append(f"expiries differ: {a.expires} vs {b.expires}")
    return "; ".join(diffs[:8])


def _show_plain(value: Plain | None, most: int = 6) -> str:
    """A value of another type than string, in short: its type, size and first items."""
    if value is None:
        return "nil"
    kind, payload = value
    items = (
        list(payload.items())
        if isinstance(payload, dict)
        else sorted(payload)
        if isinstance(payload, frozenset)
        else list(payload)
    )
    more = f", ... ({len(items)} in all)" if len(items) > most else ""
    return f"{kind} [{', '.join(repr(i) for i in items[:most])}{more}]"


def _reads_of_written_values(ops: list[Op], counter: bytes) -> list[str]:
    """At consistency low: every acknowledged read returns nil or a value some write wrote."""
    written: dict[bytes, dict[bytes, float]] = {}
    incr_invokes: dict[bytes, list[float]] = {}
    for op in ops:
        if op.outcome is Outcome.FAIL:
            continue
        if op.kind is Kind.SET:
            assert isinstance(op.value, bytes)
            earliest = written.setdefault(op.key, {})
            earliest[op.value] = min(earliest.get(op.value, math.inf), op.invoke)
        elif op.kind is Kind.INCR:
            incr_invokes.setdefault(op.key, []).append(op.invoke)
    bad = []
    for op in ops:
        if op.kind is not Kind.GET or op.outcome is not Outcome.OK or op.result is None:
            continue
        result = op.result
        if op.key == counter:
            n = sum(1 for t in incr_invokes.get(op.key, []) if t <= op.complete)
            try:
                value = int(result)
            except ValueError:
                bad.append(f"read of {_show(op.key)} returned non-integer {result!r} (op {op.id})")
                continue
            if not 0 <= value <= n:
                bad.append(
                    f"read of counter returned {value}, but only {n} increments began (op {op.id})"
                )
            continue
        at = written.get(op.key, {}).get(result if isinstance(result, bytes) else b"")
        if at is None or at > op.complete:
            bad.append(f"read of {_show(op.key)} returned {result!r}, never written (op {op.id})")
    return bad[:20]
