"""One Raft group: its consensus core, log, snapshots and machine, and the parts that drive them.

The group is what a node replicates.  It owns the core and everything whose
state is the group's: the log store and its writer (:mod:`redraft.persist`),
the snapshots (:mod:`redraft.snapshotting`), the batch of writes and the
proposals waiting to commit (:mod:`redraft.proposals`), the apply loop
(:mod:`redraft.applying`) and the read gate (:mod:`redraft.reads`).  The
process around it (:mod:`redraft.node`) owns the port, the peer links and
the clock, and hands the group what arrives.

Each pass (:meth:`RaftGroup.process`) carries out the core's Readies in
Raft's order through the shared :class:`~redraft.raft.driver.ReadyDriver`
(the same driver the simulator checks): messages out, log persisted,
acknowledgements once durable, committed entries applied, reads served.
After it, the group tells the machine what changed: leadership
(``on_leader``, ``on_follower``) and, once, that it caught up (``on_ready``).
While it leads, it logs the machine's ticks (``Machine.tick``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Any, Final

from redraft.applying import Applying
from redraft.dedup import ClientSessions
from redraft.diskfull import FullDisk
from redraft.errors import Redirect
from redraft.machine import Machine, defines_tick
from redraft.options import Options
from redraft.persist import LogWriter
from redraft.proposals import Proposer, Stamps
from redraft.raft.core import RaftConfig, RaftCore
from redraft.raft.driver import ReadyDriver
from redraft.raft.types import (
    ChangeType,
    Entry,
    Membership,
    Message,
    MsgType,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
)
from redraft.reads import ReadGate
from redraft.recovery import recover
from redraft.registry import Registry
from redraft.session import Requests
from redraft.snapshotting import Snapshotter, restore_payload
from redraft.spinning import CpuPressure, Spinner
from redraft.storage import open_store
from redraft.storage.base import DiskFullError, LogStore
from redraft.storage.snapshots import SnapshotStore
from redraft.ticker import Ticker
from redraft.transport.codec import CodecError, decode_messages
from redraft.transport.outbox import Outbox
from redraft.waiting import Waiters

log = logging.getLogger("redraft")

_LEADER: Final = Role.LEADER
_SNAP: Final = MsgType.SNAP
_HEARTBEAT_RESP: Final = MsgType.HEARTBEAT_RESP

Done = Callable[[BaseException | None], None]


def newest_heartbeat_replies(readies: list[Ready]) -> None:
    """Keep only the newest heartbeat reply to each peer among Readies durable together.

    A heartbeat reply waits for the Ready it came in to be durable; after a
    wait (a slow fsync, a full disk) dozens may be released at once, and the
    leader would answer each with a full catch-up append.  The newest reply
    acknowledges the latest round, which covers every earlier one.
    """
    seen: set[str] = set()
    for rd in reversed(readies):
        msgs = rd.messages_after_persist
        if not msgs:
            continue
        kept: list[Message] = []
        for m in reversed(msgs):
            if m.type == _HEARTBEAT_RESP:
                if m.to in seen:
                    continue
                seen.add(m.to)
            kept.append(m)
        if len(kept) != len(msgs):
            kept.reverse()
            rd.messages_after_persist = kept


class RaftGroup:
    """One replicated machine and everything that keeps it replicated."""

    def __init__(
        self,
        node_id: str,
        directory: Path,
        machine: Machine,
        options: Options,
        registry: Registry,
        outbox: Outbox,
        after_pass: Callable[[], None],
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.id = node_id
        self.dir = directory
        self.machine = machine
        self.options = options
        self.outbox = outbox
        self._after_pass = after_pass
        self.store: LogStore = open_store(options.backend, directory / "log")
        if not self.store.persistent:
            log.warning(
                "backend %r keeps nothing on disk: a restart forgets everything", options.backend
            )
        self.snapshots = SnapshotStore(directory / "snapshots", keep=options.snapshot_keep)
        self.closed = False
        self._scheduled = False
        self._housekeeping_at = 0.0
        self._transfers: list[Done] = []
        self._last_role = Role.FOLLOWER
        self._last_leader = ""
        self.leader_changes = 0
        """How often a new leader became known here (this node included; the metrics read it)."""
        self._was_member = False
        self._last_membership: Membership | None = None
        self.joining = False
        """Started empty with ``--join``: Raft traffic is ignored until the leader admits it."""
        self.ticker = Ticker(options.tick_ms, self._on_tick)
        self._registry = registry
        self._on_fatal = on_fatal
        self._ticks = defines_tick(machine) and options.tick_interval_ms > 0
        """Whether this group logs the machine's ticks (while it leads)."""
        self._tick_timer: asyncio.TimerHandle | None = None
        self._unpark_timer: asyncio.TimerHandle | None = None
        self.ready = False
        """The machine was told it caught up (``on_ready``)."""
        self._ready_at = 0
        """The index to apply before ``on_ready``: the commit index first heard of."""

    def open(self, join: str) -> str:
        """Restore the state on disk and build the parts; the addresses to ask to join ("" if none).

        ``join`` is the ``--join`` value: it only matters to an empty data dir.
        """
        sessions = ClientSessions()
        machine = self.machine
        restored, join = recover(
            self.dir,
            self.store,
            self.snapshots,
            lambda rd: restore_payload(rd, machine, sessions),
            self.id,
            join,
            backup=self.options.restore,
            force_new=self.options.force_new_cluster,
        )
        self.joining = bool(join)
        opts = self.options
        self.core = core = RaftCore(
            RaftConfig(
                self.id,
                election_tick=opts.election_ticks,
                heartbeat_tick=opts.heartbeat_ticks,
                compaction_tail=opts.compaction_tail,
                compaction_tail_bytes=opts.compaction_tail_bytes,
                snapshot_chunk_size=opts.snapshot_chunk_bytes,
            ),
            random.Random(),
            restored,
        )
        self.writer = LogWriter(
            self.store,
            self.snapshots,
            opts.durability,
            self._on_durable,
            self._on_fatal,
            self._disk_changed,
        )
        self.stamps = Stamps()
        self._pressure = CpuPressure.open() if opts.spin_us else None
        self.spinner = Spinner(
            opts.spin_us / 1e6,
            self._pressure.stalled_us if self._pressure else None,
            applied=self._applied_totals,
        )
        self.proposer = Proposer(core, opts, self.stamps, self.schedule)
        self.full_disk = FullDisk(self.id, core, self.proposer, self.schedule)
        applied = restored.snapshot.index if restored.snapshot else 0
        self.waiters = Waiters(
            lambda: core.role == _LEADER, lambda: core.leader, self.proposer.write
        )
        self.applying = Applying(
            machine, self.proposer, self.stamps, self._registry, applied, sessions, self.waiters
        )
        self.reads = ReadGate(core, opts.consistency, self.ticker, self.schedule)
        self.snapshotter = Snapshotter(
            core, self.applying, self.snapshots, self.store, self.writer, opts
        )
        self.driver = ReadyDriver(core, self)
        return join

    def admitted(self) -> None:
        """The leader admitted this node: it takes part in Raft from now on.

        The join stays remembered in the data dir until the node holds some
        state (:func:`~redraft.recovery.recover` forgets it then): admitted
        but killed before the leader's first entries, it must ask again.
        """
        self.joining = False

    def start(self) -> None:
        """Start the clock and the log writer; found a cluster of one at once."""
        self.loop = asyncio.get_running_loop()
        self.spinner.start(self.loop)
        self.writer.start()
        self.ticker.start()
        self._housekeeping_at = monotonic() + 1.0
        if not self.joining and self.core.membership.voters == {self.id}:
            self.core.campaign()  # alone: no one to wait for
        self.process()

    async def close(self) -> None:
        self.closed = True
        self.spinner.stop()
        if self._pressure is not None:
            self._pressure.close()
        self.ticker.stop()
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        try:
            await self.writer.close()
        finally:
            self.store.close()

    # --- passes

    def schedule(self) -> None:
        """Ask for a pass at the end of this loop turn."""
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._pass_soon)

    def _pass_soon(self) -> None:
        # The end of a loop turn: everything that arrived in it is handled
        # together, so it costs one log entry, one persist and one write per
        # peer and per client.
        self._scheduled = False
        proposer = self.proposer
        if (proposer.batch or proposer.tick) and proposer.may_propose():
            proposer.flush()
        self.process()

    def process(self) -> None:
        """Carry out every Ready the core has, then send and answer what is due."""
        self.reads.invalidate()
        self.driver.run()
        self._observe()
        self.outbox.flush()
        self._after_pass()

    def _on_tick(self) -> None:
        if self.closed:
            return
        self.reads.invalidate()
        self.core.tick()
        proposer = self.proposer
        if (proposer.batch or proposer.tick) and self.core.role == _LEADER:
            proposer.flush()  # a batch held back by a leadership transfer
        now = monotonic()
        if now >= self._housekeeping_at:
            self._housekeeping_at = now + 1.0
            self.proposer.expire(now)
            self.full_disk.hand_over()
            self.snapshotter.unpin_unused()
            self.snapshotter.maybe()
        self.process()

    def _disk_changed(self, error: DiskFullError | None) -> None:
        self.reads.invalidate()
        self.full_disk.changed(error)
        if error is not None:
            self.loop.call_soon(self.full_disk.hand_over)
        self.schedule()

    def _on_durable(self, readies: list[Ready]) -> None:
        if len(readies) > 1:
            newest_heartbeat_replies(readies)
        for rd in readies:
            self.driver.durable(rd)
        self.process()

    # --- what the driver does with a Ready (ReadyIO)

    @property
    def persisting(self) -> bool:
        return not self.writer.idle

    def send(self, msgs: list[Message]) -> None:
        for m in msgs:
            if m.type == _SNAP and m.snap is not None and not m.snap.data:
                msgs = [m for m in msgs if m.type != _SNAP or self._filled(m)]
                break
        self.outbox.queue(msgs)

    def _filled(self, m: Message) -> bool:
        return m.snap is None or bool(m.snap.data) or self.snapshotter.fill(m)

    def flush(self) -> None:
        self.outbox.flush()

    def persist(self, rd: Ready) -> bool:
        if rd.entries:
            self.spinner.logged()
        writer = self.writer
        return writer.submit(rd, self.core.role != _LEADER or writer.disk_fast)

    def install(self, meta: SnapshotMeta) -> None:
        self.snapshotter.install(meta)
        self.proposer.replaced(meta.index)
        self.reads.caught_up(meta.index)

    def apply(self, entries: list[Entry]) -> None:
        applying = self.applying
        applying.apply(entries)
        self.waiters.applied()  # what the entries woke is logged again in the next batch
        if self.proposer.batch or self.proposer.tick:
            self.schedule()  # writes held while the last batch was in flight
        self.reads.caught_up(applying.applied)
        self.snapshotter.maybe()

    def reads_ready(self, reads: list[ReadState]) -> None:
        self.reads.confirmed(reads, self.applying.applied)

    def reads_dropped(self, tokens: list[object]) -> None:
        self.reads.dropped(tokens)

    # --- what sessions ask

    def requests(self) -> Requests:
        """The port sessions reach this group through (direct calls into its parts)."""
        stamps = self.stamps
        return Requests(
            read_now=self.reads.read_now,
            read=self.reads.read,
            write=self.proposer.write,
            open_run=self.proposer.open_run,
            last_stamp=lambda: stamps.last,
            forward=self.outbox.forward,
            leader=lambda: self.core.leader,
        )

    # --- peers

    def on_peer_messages(self, payload: bytes, peer: str) -> None:
        """A RAFTMSG arrived on an authenticated peer connection."""
        try:
            msgs = decode_messages(payload)
        except CodecError as exc:
            log.warning("dropping malformed message batch from %s: %s", peer, exc)
            return
        if self.joining:
            # Until the leader answers our join, its messages may be addressed
            # to a member this node used to be (with the log and votes that
            # member held): acting on them could make an empty node count as
            # that member.  The leader resends once we are admitted.
            return
        core = self.core
        self.reads.invalidate()
        full = self.full_disk if self.full_disk.error is not None else None
        commit = core.commit_index
        for m in msgs:
            if m.frm != peer:
                log.warning("dropping message from %s claiming to be from %s", peer, m.frm)
                continue
            if full is not None and full.drops(m):
                continue
            core.step(m)
        if core.commit_index != commit and core.role is _LEADER:
            # An acknowledgement committed writes: answer them now, before
            # the rest of this turn's input (the other followers' acks for
            # the same entries, as a rule) is read.  New writes still wait
            # for the end of the turn (schedule), to be proposed together.
            self.process()
        else:
            self.schedule()

    def peer_unreachable(self, peer: str) -> None:
        """The link to ``peer`` dropped or is full: probe it again once it is back."""
        self.core.report_unreachable(peer)

    # --- leadership and membership

    def transfer_leadership(self, target: str | None, on_done: Done) -> None:
        """Hand leadership to ``target`` (None: the most caught-up voter).

        ``on_done(None)`` runs once this node no longer leads and a new leader
        is known; an error if that has not happened within an election timeout.
        """
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        self.reads.invalidate()
        to = core.transfer_leadership(target)
        log.info("handing leadership to %s", to)
        self._transfers.append(on_done)
        timeout = 2 * self.options.election_ticks * self.options.tick_ms / 1000.0

        def expire() -> None:
            if on_done in self._transfers:
                self._transfers.remove(on_done)
                on_done(Exception(f"ERR leadership transfer to {to} did not complete in time"))

        self.loop.call_later(timeout, expire)
        self.schedule()

    def propose_config(self, change: ChangeType, node: str, on_done: Done) -> None:
        """Propose a membership change; ``on_done`` runs once it commits or fails."""
        self.reads.invalidate()
        self.proposer.propose_config(change, node, on_done)

    def _observe(self) -> None:
        """Act on what the pass changed: membership, role, leader."""
        core = self.core
        if core.membership is not self._last_membership:
            # Membership takes effect when appended, before it commits: a
            # removed node may never learn the commit, so check here.
            self._last_membership = core.membership
            member = self.id in core.membership.members()
            if self._was_member and not member:
                log.warning("this node was removed from the cluster; it will not start elections")
            self._was_member = member
        if core.role != self._last_role or core.leader != self._last_leader:
            self._role_changed()
        if not self.ready:
            self._check_ready()

    def _role_changed(self) -> None:
        core = self.core
        leads = core.role == _LEADER
        led = self._last_role == _LEADER
        follows_new = not leads and bool(core.leader) and core.leader != self._last_leader
        if leads and not led:
            log.info("became leader at term %d", core.term)
        elif follows_new:
            log.info("following leader %s at term %d", core.leader, core.term)
        elif led and not leads:
            log.info("stepped down at term %d", core.term)
        if core.leader and core.leader != self._last_leader:
            self.leader_changes += 1
        self._last_role = core.role
        self._last_leader = core.leader
        if self._transfers and not leads and core.leader:
            done, self._transfers = self._transfers, []
            for cb in done:
                cb(None)
        proposer = self.proposer
        if not leads and (proposer.batch or proposer.tick):
            proposer.fail_batch(Redirect(core.leader))
        if not leads and len(self.waiters):
            self._unpark()
        machine = self.machine
        if leads and not led:
            self._start_ticks()
            self._notify("on_leader", machine.on_leader)
        elif follows_new or (led and not leads):
            self._notify("on_follower", machine.on_follower, core.leader)

    def _unpark(self) -> None:
        """Answer the requests parked while this node led with a redirect to the new leader.

        Right after stepping down the new leader is rarely known yet: wait
        for it, for an election timeout at most.
        """
        if self.core.leader:
            self.waiters.stepped_down()
        elif self._unpark_timer is None:

            def later() -> None:
                self._unpark_timer = None
                if self.core.role != _LEADER:
                    self.waiters.stepped_down()

            timeout = self.options.election_ticks * self.options.tick_ms / 1000.0
            self._unpark_timer = self.loop.call_later(timeout, later)

    def _check_ready(self) -> None:
        """Tell the machine, once, that it caught up: see :meth:`Machine.on_ready`."""
        core = self.core
        if not self._ready_at:
            if core.role == _LEADER:
                if not core.committed_in_term():
                    return
                self._ready_at = core.commit_index
            elif core.leader:
                self._ready_at = core.leader_commit  # 0 until the leader said it
            if not self._ready_at:
                return
        if self.applying.applied >= self._ready_at:
            self.ready = True
            log.info("caught up at index %d", self.applying.applied)
            self._notify("on_ready", self.machine.on_ready)

    def _notify(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        """Call one of the machine's callbacks: its exception is logged, not raised."""
        try:
            fn(*args)
        except Exception:
            log.exception("the machine's %s failed", what)

    # --- the machine's ticks

    def _start_ticks(self) -> None:
        """Log the machine's ticks while this node leads (see :meth:`Machine.tick`)."""
        if self._ticks and self._tick_timer is None and not self.closed:
            delay = self.options.tick_interval_ms / 1000.0
            self._tick_timer = self.loop.call_later(delay, self._machine_tick)

    def _machine_tick(self) -> None:
        self._tick_timer = None
        if self.closed or self.core.role != _LEADER:
            return  # started again when this node next leads
        self._start_ticks()
        now = time.time_ns()
        try:
            wanted = self.machine.wants_tick(max(now, self.stamps.last))
        except Exception:
            log.exception("the machine's wants_tick failed; ticking anyway")
            wanted = True
        if wanted:
            self.proposer.add_tick()

    # --- reporting

    def raft_stats(self, state: str) -> dict[str, Any]:
        """RAFTSTATS's fields (``state``: the node's, which knows when it is closing)."""
        core = self.core
        snap = core.last_snapshot
        members = core.membership.members()
        return {
            "applied_index": self.applying.applied,
            "commit_index": core.commit_index,
            "last_log_index": core.last_index,
            "last_log_term": core.log.last_term,
            "first_log_index": core.first_index,
            "last_snapshot_index": snap.index if snap else 0,
            "last_snapshot_term": snap.term if snap else 0,
            "num_peers": max(0, len(members) - (1 if self.id in members else 0)),
            "state": state,
            "term": core.term,
            "leader": core.leader,
            "last_contact": self._last_contact(),
            "voters": len(core.membership.voters),
            "learners": len(core.membership.learners),
            "fsyncs": self.writer.fsyncs,
            "persist_groups": self.writer.groups,
            "proposals": self.proposer.proposals,
            "commands_applied": self.applying.commands,
            "ticks_applied": self.applying.ticks,
            "spin_seconds": round(self.spinner.seconds(), 6),
            "disk_full": 1 if self.full_disk.error is not None else 0,
            "disk_full_error": self.full_disk.error.reason if self.full_disk.error else "",
            "disk_full_since": round(self.writer.full_since) if self.full_disk.error else 0,
            "disk_full_count": self.full_disk.times,
        }

    def _applied_totals(self) -> tuple[int, int]:
        """Entries and writes applied so far (how full the batches run: see the spinner)."""
        return self.applying.entries, self.applying.commands

    def _last_contact(self) -> str:
        core = self.core
        if core.role == _LEADER:
            return "0"
        if not core.leader:
            return "never"
        return f"{core.election_elapsed * self.options.tick_ms}ms"

    def owes_replies(self) -> bool:
        """Whether writes are still waiting to commit."""
        return bool(self.proposer.pending)
