"""Throughput of the pure Raft core: committed entries per second of CPU time.

A 3-node cluster in one process, with a zero-latency lossless network and
instant persistence, so that what is measured is the core itself.  The
driver is kept lean: each turn it proposes one batch on the leader, carries
out every node's Ready once (persist = advance at once) and delivers the
messages of that turn; batches are therefore pipelined, as in a runtime
whose event loop takes one batch per turn.

    python bench/bench_core.py [--entries N] [--batches 1,16,256] [--driver] [--profile]

Prints, per batch size, committed entries per CPU second (time.process_time),
counted when the leader hands them out for applying.  ``--driver`` carries
the Readies out through :class:`~redraft.raft.driver.ReadyDriver` (as the
node does, with instant persistence) instead of the lean loop, to show what
the driver costs.  ``--profile`` adds a cProfile top-15 (by own time) of the
batch-1 and batch-256 runs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time

from redraft.raft.core import RaftConfig, RaftCore, Restored
from redraft.raft.driver import ReadyDriver
from redraft.raft.types import Entry, Message, ReadState, Ready, Role, SnapshotMeta

TARGETS = {1: 50_000, 256: 1_000_000}
PAYLOAD = b"0123456789abcdef"  # 16 bytes
COMPACT_EVERY = 1 << 16


class Cluster:
    """Three cores wired back to back."""

    def __init__(self, seed: int = 1) -> None:
        ids = ["n1", "n2", "n3"]
        boot = RaftCore.bootstrap(ids)
        self.cores = {
            nid: RaftCore(
                RaftConfig(id=nid),
                random.Random(seed + k),
                Restored(boot.hard_state, None, list(boot.entries)),
            )
            for k, nid in enumerate(ids)
        }
        self.order = list(self.cores.values())
        self.queue: list[Message] = []
        self.committed = 0
        self._wire_up()
        self.leader = self._elect()
        self._compacted = 0

    def _wire_up(self) -> None:
        """Set up before the election (see DriverCluster)."""

    def counted(self) -> int:
        """Entries the leader handed out for applying since :meth:`reset_count`."""
        return self.committed

    def reset_count(self) -> None:
        self.committed = 0

    def _elect(self) -> RaftCore:
        for _ in range(1000):
            for core in self.order:
                core.tick()
            self.settle()
            for core in self.order:
                if core.role == Role.LEADER and core.committed_in_term():
                    return core
        raise RuntimeError("no leader")

    def turn(self, leader: RaftCore | None) -> bool:
        """Carry out every Ready once, then deliver the messages; False if idle."""
        queue = self.queue
        busy = False
        for core in self.order:
            rd = core.ready()
            if rd is None:
                continue
            busy = True
            if rd.messages:
                queue += rd.messages
            if rd.messages_after_persist:
                queue += rd.messages_after_persist
            core.advance(rd)
            if rd.committed and core is leader:
                self.committed += len(rd.committed)
        if not queue:
            return busy
        self.queue = []
        cores = self.cores
        for m in queue:
            cores[m.to].step(m)
        return True

    def settle(self, leader: RaftCore | None = None) -> None:
        while self.turn(leader):
            pass

    def maybe_compact(self) -> None:
        """Keep memory flat: compact every node up to the index all have applied."""
        upto = min(c.log.applied for c in self.order)
        if upto - self._compacted < COMPACT_EVERY:
            return
        for core in self.order:
            core.compact(core.snapshot_meta_at(upto))
        self._compacted = upto


class Wire:
    """What the drivers' IOs share with their cluster: messages in flight, entries applied."""

    def __init__(self, n: int) -> None:
        self.queue: list[Message] = []
        self.applied = [0] * n


class InstantIO:
    """A ReadyIO with instant persistence and a lossless, instant network."""

    def __init__(self, wire: Wire, k: int) -> None:
        self.wire = wire
        self.k = k
        self.persisting = False

    def send(self, msgs: list[Message]) -> None:
        self.wire.queue += msgs

    def flush(self) -> None:
        pass

    def persist(self, rd: Ready) -> bool:
        return True

    def install(self, meta: SnapshotMeta) -> None:
        pass

    def apply(self, entries: list[Entry]) -> None:
        self.wire.applied[self.k] += len(entries)

    def reads_ready(self, reads: list[ReadState]) -> None:
        pass

    def reads_dropped(self, tokens: list[object]) -> None:
        pass


class DriverCluster(Cluster):
    """:class:`Cluster`, with each core's Readies carried out by a ReadyDriver, as in the node."""

    def _wire_up(self) -> None:
        self.wire = Wire(len(self.order))
        self.drivers = [
            ReadyDriver(core, InstantIO(self.wire, k)) for k, core in enumerate(self.order)
        ]

    def turn(self, leader: RaftCore | None) -> bool:
        """Carry out every Ready (each driver all of its own), then deliver the messages."""
        for driver in self.drivers:
            driver.run()
        wire = self.wire
        queue = wire.queue
        if not queue:
            return False
        wire.queue = []
        cores = self.cores
        for m in queue:
            cores[m.to].step(m)
        return True

    def counted(self) -> int:
        return self.wire.applied[self.order.index(self.leader)]

    def reset_count(self) -> None:
        self.wire.applied = [0] * len(self.order)


def run(batch: int, entries: int, driver: bool = False) -> tuple[int, float]:
    """(entries committed, CPU seconds) for ``entries`` entries proposed in ``batch``es."""
    c = DriverCluster() if driver else Cluster()
    leader = c.leader
    data = [PAYLOAD] * batch
    rounds = entries // batch
    propose = leader.propose
    turn = c.turn
    c.reset_count()
    t0 = time.process_time()
    for k in range(rounds):
        propose(data)
        turn(leader)
        if k & 1023 == 0:
            c.maybe_compact()
    c.settle(leader)
    cpu = time.process_time() - t0
    return c.counted(), cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=200_000, help="entries per batch size")
    ap.add_argument("--batches", default="1,16,256", help="comma-separated batch sizes")
    ap.add_argument("--driver", action="store_true", help="carry Readies out through ReadyDriver")
    ap.add_argument("--profile", action="store_true", help="cProfile the batch 1 and 256 runs")
    args = ap.parse_args(argv)
    sizes = [int(b) for b in args.batches.split(",")]
    print(f"{'batch':>6} {'entries':>9} {'cpu s':>7} {'entries/s':>11}  target")
    for b in sizes:
        n = max(args.entries // 4, 1) if b == 1 else args.entries
        done, cpu = run(b, n, args.driver)
        rate = done / cpu if cpu > 0 else float("inf")
        target = TARGETS.get(b)
        mark = ""
        if target is not None:
            mark = f">= {target:,} {'met' if rate >= target else 'MISSED'}"
        print(f"{b:>6} {done:>9} {cpu:>7.2f} {rate:>11,.0f}  {mark}")
    if args.profile:
        for b in (1, 256):
            if b not in sizes:
                continue
            n = max(args.entries // 4, 1) if b == 1 else args.entries
            prof = cProfile.Profile()
            prof.enable()
            run(b, n, args.driver)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
            print(f"\n=== cProfile, batch {b} ({n} entries), top 15 by own time ===")
            print(out.getvalue().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
