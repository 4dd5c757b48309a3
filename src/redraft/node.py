"""A running redraft node: the consensus core driven by an asyncio event loop.

Data flows one way.  A client command reaches the machine's ``command``
through the server; a write lands in this turn's batch; at the end of the
turn the batch is proposed as one log entry; the core's Ready is carried
out (messages sent at once, log persisted by :class:`~redraft.persist.LogWriter`,
acknowledgements sent once durable); committed entries are applied to the
machine on every node; the node holding the client then calls ``respond`` and
the reply goes out in request order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redraft.addr import join_addresses, listen_address
from redraft.applier import ApplyingApplier, ClientApplier, decode_batch, encode_batch
from redraft.errors import ErrDisabled, Redirect, Uncertain
from redraft.machine import Command, Machine, Respond
from redraft.options import Level, Options
from redraft.persist import LogWriter
from redraft.raft.core import RaftConfig, RaftCore, Restored
from redraft.raft.types import (
    ChangeType,
    Entry,
    EntryKind,
    Membership,
    Message,
    MsgType,
    NotLeader,
    ProposalDropped,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
)
from redraft.security import Security, peer_ask, private_dir, reap_idle
from redraft.server import READ, ROUTE_WRITE, WRITE, Slot, What, answer, slot_commands
from redraft.storage import open_store
from redraft.storage.snapshots import SnapshotStore
from redraft.transport.codec import (
    CodecError,
    SharedEntries,
    decode_messages,
    encode_message_parts,
)
from redraft.transport.peers import PeerLink, raftmsg_parts

if TYPE_CHECKING:
    from redraft.server import ClientConn, Server

log = logging.getLogger("redraft")

# Enum members looked up on their class cost ~0.1 us each in Python 3.11; the
# request path compares with these module-level aliases instead.
_LEADER = Role.LEADER
_LOW = Level.LOW
_MEDIUM = Level.MEDIUM


@dataclass(slots=True)
class _Proposal:
    term: int
    deadline: float
    waiters: list[Slot] | None
    """The reply slots of the batch's client commands, in order."""
    on_done: Callable[[BaseException | None], None] | None = None
    cmds: list[list[bytes]] | None = None
    """The batch's commands as decoding the entry would give them, when known."""
    stamp: int = 0


class Node:
    """One member of a redraft cluster.  Create with :func:`redraft.open`."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        addr: str,
        join: str,
        machine: Machine,
        options: Options | None = None,
    ) -> None:
        self.options = opts = options or Options()
        self.machine = machine
        self.dir = Path(directory)
        self.bind_host, self.port, self.id = listen_address(addr, opts.advertise)
        self.join_addr = join
        self.join_addrs = join_addresses(join)
        self.client_applier = ClientApplier(self)
        self.applying = ApplyingApplier()
        self.applied_index = 0
        self.last_stamp = 0
        self.started = time.time()
        self.state_name = "Shutdown"

        self._batch: list[list[bytes]] = []
        self._batch_waiters: list[Slot] = []
        # Whether every command of the batch is a list of bytes (what the
        # parser makes), so that the leader may apply it without decoding.
        self._batch_exact = True
        self._process_scheduled = False
        self._last_proposed = 0
        self._lease_until = -1.0
        self._outbox: dict[str, list[Message]] = {}
        self._pending: dict[int, _Proposal] = {}
        self._reads_waiting: list[tuple[int, int, list[Slot]]] = []
        """Confirmed reads waiting for the machine to reach their read index."""
        self._read_seq = 0
        self._apply_blocked = False
        self._deferred_apply: list[Entry] = []
        self._links: dict[str, PeerLink] = {}
        self._snapshotting: asyncio.Future[SnapshotMeta | None] | None = None
        self._snapshots_disabled = False
        self._snapshot_index = 0
        self._log_bytes_since_snapshot = 0
        self._pinned: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fatal: BaseException | None = None
        # A node started on an empty data dir with --join ignores Raft traffic
        # until the leader has (re)admitted it (see _join_loop).
        self._joining = False
        self._last_leader = ""
        self._last_role = Role.FOLLOWER
        self._was_member = False
        self._last_membership: Membership | None = None
        self._transfers: list[Callable[[BaseException | None], None]] = []
        self._tick_timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Event | None = None
        self.core: RaftCore
        self.store: Any = None
        self.writer: LogWriter
        self.server: Server
        self.loop: asyncio.AbstractEventLoop
        self.stats = {"proposals": 0, "entries_applied": 0, "commands_applied": 0}

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open storage, restore state, start serving and join or bootstrap."""
        from redraft.server import Server

        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        opts = self.options
        from redraft.logs import setup_logging

        setup_logging(opts.log_level)
        self.security = Security.from_options(opts, self.bind_host)
        self.draining = False
        """Stopping gracefully: new connections are refused (see :meth:`close`)."""
        private_dir(self.dir)
        self.store = open_store(opts.backend, self.dir / "log")
        if not self.store.persistent:
            log.warning(
                "backend %r keeps nothing on disk: a restart forgets everything", opts.backend
            )
        self.snapshots = SnapshotStore(self.dir / "snapshots", keep=opts.snapshot_keep)
        restored, needs_join = self._load()
        self.core = RaftCore(
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
        self._snapshot_index = restored.snapshot.index if restored.snapshot else 0
        self.applied_index = self._snapshot_index
        self.writer = LogWriter(
            self.store, self.snapshots, opts.durability, self._on_durable, self._on_fatal
        )
        self.writer.start()
        self.server = Server(self)
        await self.server.start(self.bind_host, self.port)
        self.state_name = self.core.role.title
        log.info(
            "node %s serving on %s:%d (durability %s, consistency %s, backend %s)",
            self.id,
            self.bind_host,
            self.port,
            opts.durability.name.lower(),
            opts.consistency.name.lower(),
            opts.backend,
        )
        if self.security.warning:
            log.warning("*** INSECURE *** %s", self.security.warning)
        if opts.idle_timeout > 0:
            self._spawn(reap_idle(self.server, opts.idle_timeout))
        self._tick_interval = opts.tick_ms / 1000.0
        self._tick_base = time.monotonic()
        self._ticks_done = 0
        self._tick_timer = self.loop.call_later(self._tick_interval, self._on_tick)
        self._housekeeping_at = time.monotonic() + 1.0
        if needs_join:
            self._joining = True
            self._spawn(self._join_loop())
        elif self.core.membership.voters == {self.id}:
            self.core.campaign()  # alone: no one to wait for
        self._process()

    def _load(self) -> tuple[Restored, bool]:
        loaded = self.store.load()
        snap = self.snapshots.latest()
        if snap is not None:
            with self.snapshots.open_payload(snap) as rd:
                self.machine.restore(rd)
            log.info("restored snapshot at index %d (term %d)", snap.index, snap.term)
            if loaded.prev_index > snap.index:
                raise RuntimeError(
                    f"the log in {self.dir / 'log'} starts after index {loaded.prev_index} but the "
                    f"newest valid snapshot ends at {snap.index}: entries in between are lost; "
                    "restore the missing snapshot or start this node afresh and re-add it"
                )
        elif loaded.prev_index > 0:
            raise RuntimeError(
                f"the log in {self.dir / 'log'} was compacted up to {loaded.prev_index} but no "
                f"valid snapshot is in {self.dir / 'snapshots'}; the node cannot rebuild its state"
            )
        hs = loaded.hard_state
        entries = loaded.entries
        if snap is not None:
            entries = [e for e in entries if e.index > snap.index]
        fresh = hs.term == 0 and not entries and snap is None
        if not fresh:
            if self.join_addr:
                log.info("data dir holds cluster state: ignoring join %s", self.join_addr)
            return Restored(hs, snap, entries), False
        if self.join_addrs:
            return Restored(), True
        boot = RaftCore.bootstrap([self.id])
        self.store.save(boot.hard_state, boot.entries, True)
        log.info("bootstrapped a new single-node cluster as %s", self.id)
        return boot, False

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (blocking)."""
        try:
            import uvloop

            runner: Callable[..., Any] = uvloop.run
        except ImportError:
            runner = asyncio.run
        runner(self.serve())

    async def serve(self) -> None:
        """Start (if needed) and serve until stopped by a signal or :meth:`close`."""
        if self._done is None:
            await self.start()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            # The first signal stops gracefully; a second one stops at once.
            grace = 0.0 if self.draining else self.options.shutdown_timeout
            self._spawn(self.close(grace))

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
        assert self._done is not None
        await self._done.wait()
        if self._fatal is not None:
            raise self._fatal

    async def close(self, grace: float = 0.0) -> None:
        """Stop serving, flush the log and release everything.

        With ``grace`` (seconds; what SIGTERM and SIGINT give) the node first
        winds down: it refuses new connections, hands leadership to the most
        caught-up voter if it leads (clients' next writes are redirected there
        at once instead of waiting out an election timeout), and waits up to
        ``grace`` seconds for the replies its clients are still owed.
        """
        if self._done is None or self._done.is_set() or self.state_name == "Closing":
            return
        if grace > 0:
            if self.draining:
                return
            self.draining = True
            log.info("stopping: winding down (at most %.1fs)", grace)
            deadline = time.monotonic() + grace
            core = self.core
            # Hand over only to a cluster that is there: with no quorum heard
            # from lately (the last node standing) it would just time out.
            if (
                core.role == _LEADER
                and len(core.membership.voters) > 1
                and core.lease_valid(self._due_ticks())
            ):
                handed: asyncio.Future[BaseException | None] = self.loop.create_future()

                def on_handed(exc: BaseException | None) -> None:
                    if not handed.done():
                        handed.set_result(exc)

                try:
                    self.transfer_leadership(None, on_handed)
                    failed = await asyncio.wait_for(handed, grace)
                except Exception as exc:
                    failed = exc
                if failed is not None:
                    log.warning("could not hand leadership over before stopping: %s", failed)
            while time.monotonic() < deadline and (
                self._pending or any(c.has_pending() for c in self.server.conns)
            ):
                await asyncio.sleep(0.02)
            if self._done.is_set() or self.state_name == "Closing":
                return  # a second signal stopped the node meanwhile
        self.state_name = "Closing"
        if self._tick_timer is not None:
            self._tick_timer.cancel()
        await self.server.close()
        for link in self._links.values():
            await link.close()
        with contextlib.suppress(Exception):
            await self.writer.close()
        with contextlib.suppress(Exception):
            self.store.close()
        for t in list(self._tasks):
            if t is not asyncio.current_task():
                t.cancel()
        self.state_name = "Shutdown"
        log.info("node %s stopped", self.id)
        self._done.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_fatal(self, exc: BaseException) -> None:
        log.critical("storage failure, stopping the node: %s", exc, exc_info=exc)
        self._fatal = exc
        self._spawn(self.close())

    # ---------------------------------------------------------------- ticks

    def _due_ticks(self) -> int:
        """Ticks of real time since start (the tick count may lag it)."""
        return int((time.monotonic() - self._tick_base) / self._tick_interval)

    def _on_tick(self) -> None:
        if self.state_name in ("Closing", "Shutdown"):
            return
        self._lease_until = -1.0
        # One tick per turn of the loop, even when several are due after a
        # stall: the messages that arrived meanwhile are read between ticks,
        # so a busy node does not time out on peers it has not listened to.
        self.core.tick()
        self._ticks_done += 1
        due = self._due_ticks()
        if due - self._ticks_done > 1000:
            self._ticks_done = due - 1000  # a very long stall: do not replay it all
        if due > self._ticks_done:
            self._tick_timer = self.loop.call_later(0, self._on_tick)
        else:
            nxt = self._tick_base + (self._ticks_done + 1) * self._tick_interval
            self._tick_timer = self.loop.call_at(
                self.loop.time() + max(0.0, nxt - time.monotonic()), self._on_tick
            )
        if self._batch and self.core.role == _LEADER:
            self._flush_batch()  # a batch held back by a leadership transfer
        now = time.monotonic()
        if now >= self._housekeeping_at:
            self._housekeeping_at = now + 1.0
            self._housekeeping(now)
        self._process()

    def _housekeeping(self, now: float) -> None:
        expired = [i for i, p in self._pending.items() if p.deadline <= now]
        for i in expired:
            p = self._pending.pop(i)
            self._finish(
                p,
                None,
                Uncertain("TIMEOUT the command did not commit in time; it may still be applied"),
            )
        in_use = self.core.snapshots_in_use()
        for idx in list(self._pinned):
            if idx not in in_use:
                self._pinned.discard(idx)
                self.snapshots.unpin_index(idx)
        self._maybe_snapshot()

    # ----------------------------------------------------------- the pipeline

    def schedule_process(self) -> None:
        if not self._process_scheduled:
            self._process_scheduled = True
            self.loop.call_soon(self._process_soon)

    def _process_soon(self) -> None:
        # The end of a loop turn: everything that arrived in it is handled
        # together, so it costs one log entry, one persist and one write per
        # peer and per client.
        self._process_scheduled = False
        if self._batch and self._may_propose():
            self._flush_batch()
        self._process()

    def _may_propose(self) -> bool:
        """Adaptive batching: hold new writes while earlier batches are uncommitted.

        Under light load nothing is in flight and a write is proposed at
        once; under heavy load writes pile up for one round trip and go out
        together, which costs far fewer system calls per write.
        """
        return self.core.commit_index + self.options.max_inflight_batches > self._last_proposed

    def _process(self) -> None:
        """Carry out every Ready the core has."""
        core = self.core
        self._lease_until = -1.0
        writer = self.writer
        while True:
            rd = core.ready()
            if rd is None:
                break
            if rd.messages:
                self._send(rd.messages)
            if rd.needs_persist() or not writer.idle:
                if self._outbox:
                    # These may go before our own write: the followers
                    # start on the entries while the leader persists them.
                    self._flush_outbox()
                if writer.submit(rd, core.role != _LEADER):
                    self._after_durable(rd)
            else:
                self._after_durable(rd)
            if rd.committed:
                if self._outbox:
                    self._flush_outbox()  # acknowledgements before the apply
                if self._apply_blocked:
                    self._deferred_apply.extend(rd.committed)
                else:
                    self._apply(rd.committed)
            if rd.reads:
                self._on_reads(rd.reads)
            for slot in rd.dropped_reads:
                assert isinstance(slot, Slot)
                slot.conn.fill_error(slot, Redirect(core.leader), slot.name)
        self._observe_role()
        if self._outbox:
            self._flush_outbox()
        self.server.flush_dirty()

    def _on_durable(self, readies: list[Ready]) -> None:
        for rd in readies:
            self._after_durable(rd)
        self._process()

    def _after_durable(self, rd: Ready) -> None:
        if rd.messages_after_persist:
            self._send(rd.messages_after_persist)
        if rd.install_snapshot is not None:
            self._apply_blocked = True
            self._install(rd.install_snapshot)
        self.core.advance(rd)

    def _install(self, meta: SnapshotMeta) -> None:
        with self.snapshots.open_payload(meta) as rd:
            self.machine.restore(rd)
        self.applied_index = meta.index
        self._snapshot_index = meta.index
        self._log_bytes_since_snapshot = 0
        log.info("installed snapshot at index %d (term %d) from the leader", meta.index, meta.term)
        for idx in [i for i in self._pending if i <= meta.index]:
            p = self._pending.pop(idx)
            self._finish(p, None, Uncertain("TIMEOUT outcome unknown: replaced by a snapshot"))
        self._apply_blocked = False
        deferred = [e for e in self._deferred_apply if e.index > meta.index]
        self._deferred_apply = []
        if deferred:
            self._apply(deferred)

    def _observe_role(self) -> None:
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
            if core.role == _LEADER and self._last_role != _LEADER:
                log.info("became leader at term %d", core.term)
            elif core.leader and core.leader != self._last_leader and core.role != _LEADER:
                log.info("following leader %s at term %d", core.leader, core.term)
            elif self._last_role == _LEADER and core.role != _LEADER:
                log.info("stepped down at term %d", core.term)
            self._last_role = core.role
            self._last_leader = core.leader
            if self._transfers and core.role != _LEADER and core.leader:
                done, self._transfers = self._transfers, []
                for cb in done:
                    cb(None)
            self.state_name = core.role.title
            if core.role != _LEADER and self._batch:
                self._fail_batch(Redirect(core.leader))

    # ------------------------------------------------------------ messaging

    def _send(self, msgs: list[Message]) -> None:
        """Queue messages; :meth:`_flush_outbox` writes them at the end of the turn."""
        outbox = self._outbox
        for m in msgs:
            if m.type == MsgType.SNAP and m.snap is not None and not m.snap.data:
                chunk = m.snap
                idx = chunk.meta.index
                if idx not in self._pinned:
                    self._pinned.add(idx)
                    self.snapshots.pin_index(idx)
                try:
                    chunk.data = self.snapshots.read_chunk(chunk.meta, chunk.offset, chunk.length)
                except Exception as exc:
                    log.warning("cannot read snapshot %d for %s: %s", idx, m.to, exc)
                    continue
            lst = outbox.get(m.to)
            if lst is None:
                outbox[m.to] = [m]
            else:
                lst.append(m)

    def _flush_outbox(self) -> None:
        """One RAFTMSG, in one write, per peer."""
        outbox = self._outbox
        self._outbox = {}
        shared: SharedEntries = {}  # large entry lists are packed once for every peer
        for peer, batch in outbox.items():
            link = self._links.get(peer)
            if link is None:
                link = self._links[peer] = PeerLink(
                    peer,
                    self.id,
                    self._hello_args(),
                    self._on_unreachable,
                    dial=self.options.peer_routes.get(peer, ""),
                    ssl=self.security.peer_ssl,
                    secret=self.security.peer_secret,
                )
                link.start()
            link.send(raftmsg_parts(encode_message_parts(batch, shared)))

    def _hello_args(self) -> list[bytes]:
        return [b"RAFTPEER", self.id.encode()]

    def _on_unreachable(self, peer: str) -> None:
        pr = self.core.prs.get(peer) if self.core.role == _LEADER else None
        if pr is not None and pr.state == 1:  # REPLICATE: re-probe once it is back
            pr.become_probe()

    def on_peer_messages(self, payload: bytes, peer: str) -> None:
        """A RAFTMSG arrived on an authenticated peer connection."""
        try:
            msgs = decode_messages(payload)
        except CodecError as exc:
            log.warning("dropping malformed message batch from %s: %s", peer, exc)
            return
        if self._joining:
            # Until the leader answers our join, its messages may be addressed
            # to a member this node used to be (with the log and votes that
            # member held): acting on them could make an empty node count as
            # that member.  The leader resends once we are admitted.
            return
        core = self.core
        self._lease_until = -1.0
        for m in msgs:
            if m.frm != peer:
                log.warning("dropping message from %s claiming to be from %s", peer, m.frm)
                continue
            core.step(m)
        self.schedule_process()

    # ---------------------------------------------------------------- writes

    def client_write(
        self,
        conn: ClientConn,
        args: list[bytes],
        respond: Respond | None,
        what: What,
        slot: Slot | None = None,
    ) -> Any:
        """Queue a write for this turn's batch; returns the slot its reply will fill.

        ``what`` is the command or its name, for error replies.
        """
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        if slot is None:
            slot = conn.new_slot(WRITE)
        slot.respond = respond
        slot.name = what
        self._batch.append(args)
        self._batch_waiters.append(slot)
        # A machine's own m.apply may log arguments of other types (str,
        # int), which only decoding the entry turns into what every node sees.
        self._batch_exact = False
        if not self._process_scheduled:
            self._process_scheduled = True
            self.loop.call_soon(self._process_soon)
        return slot

    def _flush_batch(self) -> None:
        """Propose this turn's writes as one entry (or a few, when many)."""
        cmds = self._batch
        if not cmds:
            return
        core = self.core
        if core.role != _LEADER:
            self._fail_batch(Redirect(core.leader))
            return
        waiters = self._batch_waiters
        now = time.time_ns()
        if now > self.last_stamp:
            self.last_stamp = now
        stamp = self.last_stamp
        opts = self.options
        parts: list[tuple[list[list[bytes]], list[Slot]]] = []
        step = opts.max_batch_commands
        if len(waiters) == len(cmds):
            for k in range(0, len(cmds), step):
                parts.append((cmds[k : k + step], waiters[k : k + step]))
        else:
            # Some slots answer a run of writes (at most ``step`` of them),
            # which one entry must hold whole: cut between slots only.
            lo = 0
            group: list[Slot] = []
            size = 0
            for slot in waiters:
                n = slot_commands(slot)
                if size + n > step and group:
                    parts.append((cmds[lo : lo + size], group))
                    lo += size
                    group = []
                    size = 0
                group.append(slot)
                size += n
            parts.append((cmds[lo : lo + size], group))
        payloads = [encode_batch(stamp, part) for part, _ in parts]
        try:
            first = core.propose(payloads)
        except ProposalDropped:
            return  # held until the leadership transfer ends (see _on_tick)
        except NotLeader as exc:
            self._fail_batch(Redirect(exc.leader))
            return
        exact = self._batch_exact
        self._batch = []
        self._batch_waiters = []
        self._batch_exact = True
        deadline = time.monotonic() + opts.write_timeout
        term = core.term
        for k, (part, group) in enumerate(parts):
            # The leader applies its own proposal from these lists rather
            # than decoding the entry, when they are what decoding gives.
            self._pending[first + k] = _Proposal(
                term, deadline, group, None, part if exact else None, stamp
            )
        self._last_proposed = first + len(payloads) - 1
        self.stats["proposals"] += len(payloads)

    def _fail_batch(self, exc: BaseException) -> None:
        waiters = self._batch_waiters
        self._batch = []
        self._batch_waiters = []
        self._batch_exact = True
        for slot in waiters:
            slot.conn.fill_error(slot, exc, slot.name)

    def propose_config(
        self, change: ChangeType, node: str, on_done: Callable[[BaseException | None], None]
    ) -> None:
        """Propose a membership change; ``on_done`` runs once it commits or fails."""
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        self._lease_until = -1.0
        index = core.change_membership(change, node)
        self._pending[index] = _Proposal(
            core.term, time.monotonic() + self.options.write_timeout, None, on_done
        )
        self.schedule_process()

    def transfer_leadership(
        self, target: str | None, on_done: Callable[[BaseException | None], None]
    ) -> None:
        """Hand leadership to ``target`` (None: the most caught-up voter).

        ``on_done(None)`` runs once this node no longer leads and a new leader
        is known; an error if that has not happened within an election timeout.
        """
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        self._lease_until = -1.0
        to = core.transfer_leadership(target)
        log.info("handing leadership to %s", to)
        self._transfers.append(on_done)
        timeout = 2 * self.options.election_ticks * self.options.tick_ms / 1000.0

        def expire() -> None:
            if on_done in self._transfers:
                self._transfers.remove(on_done)
                on_done(Exception(f"ERR leadership transfer to {to} did not complete in time"))
                self.server.flush_dirty()

        self.loop.call_later(timeout, expire)
        self.schedule_process()

    def _finish(self, p: _Proposal, results: list[Any] | None, exc: BaseException | None) -> None:
        if p.on_done is not None:
            p.on_done(exc)
        if p.waiters is None:
            return
        if exc is None:
            answer(p.waiters, results)
            return
        for slot in p.waiters:
            slot.conn.fill_error(slot, exc, slot.name)

    # ----------------------------------------------------------------- apply

    def _apply(self, entries: list[Entry]) -> None:
        machine = self.machine
        aa = self.applying
        pending = self._pending
        routes = self.server._routes
        route_of = self.server.route
        normal = EntryKind.NORMAL
        for e in entries:
            p = pending.pop(e.index, None) if pending else None
            if p is not None and p.term != e.term:
                self._finish(
                    p,
                    None,
                    Exception(
                        "ERR leadership changed before the command committed; it was not applied"
                    ),
                )
                p = None
            if e.kind == normal:
                try:
                    if p is not None and p.cmds is not None:
                        stamp, cmds = p.stamp, p.cmds
                    else:
                        stamp, cmds = decode_batch(e.data)
                except Exception as exc:
                    # Every node decodes the same bytes the same way, so
                    # skipping keeps them identical; it can only come from a
                    # member writing garbage, which is worth shouting about.
                    log.error("skipping undecodable entry %d: %s", e.index, exc)
                    stamp, cmds = self.last_stamp, []
                    if p is not None:
                        self._finish(p, None, Exception("ERR the command could not be decoded"))
                        p = None
                if stamp > self.last_stamp:
                    self.last_stamp = stamp
                aa.begin(stamp, e.index)
                results: list[Any] = []
                for pos, args in enumerate(cmds):
                    aa.pos = pos
                    aa.rng = None
                    try:
                        # A plain write is applied by its Write, anything
                        # else by the machine's command, on every node alike.
                        route = routes.get(args[0]) or route_of(args[0])
                        if route[0] == ROUTE_WRITE:
                            result = route[1].apply(aa, args)
                        else:
                            result = machine.command(aa, None, Command(args))
                    except Exception as exc:
                        log.debug("command %r failed at index %d: %s", args[:1], e.index, exc)
                        result = exc
                    results.append(result)
                aa.end()
                self.stats["commands_applied"] += len(cmds)
                self._log_bytes_since_snapshot += len(e.data)
                if p is not None:
                    self._finish(p, results, None)
            else:
                if e.kind == EntryKind.CONFIG:
                    self._on_config_applied(e)
                if p is not None:
                    self._finish(p, [None], None)
            self.applied_index = e.index
        self.stats["entries_applied"] += len(entries)
        if self._batch:
            self.schedule_process()  # writes held while the last batch was in flight
        waiting = self._reads_waiting
        applied = self.applied_index
        while waiting and waiting[0][0] <= applied:
            answer(heapq.heappop(waiting)[2])
        if (
            applied - self._snapshot_index >= self.options.snapshot_entries
            or self._log_bytes_since_snapshot >= self.options.snapshot_bytes
        ):
            self._maybe_snapshot()

    def _on_config_applied(self, e: Entry) -> None:
        mem = Membership.decode(e.data)
        log.info(
            "membership at index %d: voters %s%s",
            e.index,
            ", ".join(sorted(mem.voters)) or "-",
            f"; learners {', '.join(sorted(mem.learners))}" if mem.learners else "",
        )

    # ----------------------------------------------------------------- reads

    def client_read(
        self,
        conn: ClientConn,
        respond: Respond | None,
        what: What,
        slot: Slot | None = None,
    ) -> Any:
        """Serve a read now if the consistency level allows, else defer it.

        ``what`` is the command or its name (for error replies; a name costs
        a decode, so it is only taken when needed).  Returns the reply value,
        or the slot (``slot`` or a new one) that the reply will fill.
        """
        if self.read_now():
            return respond(None) if respond is not None else None
        core = self.core
        if core.role != _LEADER:
            raise Redirect(core.leader)
        # ReadIndex: confirm leadership with a heartbeat round shared by every
        # read of this turn, then serve once the machine caught up.
        if slot is None:
            slot = conn.new_slot(READ)
        # The slot is the core's token for the read: it holds all that
        # serving it takes.
        slot.respond = respond
        slot.name = what
        core.read_index(slot)
        self.schedule_process()
        return slot

    def read_now(self) -> bool:
        """Whether a read may be answered from this node's state right now.

        True at consistency low, and at medium on the leader within its
        lease; otherwise a read must be redirected or wait for a ReadIndex
        round (:meth:`client_read`).
        """
        level = self.options.consistency
        if level == _LOW:
            return True
        if level == _MEDIUM and self.core.role == _LEADER:
            now = time.monotonic()
            return now < self._lease_until or now < self._refresh_lease()
        return False

    def _refresh_lease(self) -> float:
        # The deadline only moves when the core takes an input, and every
        # input path clears this cache: reads between inputs just compare.
        # Tick t begins at _tick_base + t * _tick_interval, so "the ticks due
        # now are before the deadline" is "now is before the deadline's tick".
        deadline = self.core.lease_deadline()
        self._lease_until = until = self._tick_base + deadline * self._tick_interval
        return until

    def _on_reads(self, reads: list[ReadState]) -> None:
        applied = self.applied_index
        for rs in reads:
            if rs.index <= applied:
                answer(rs.tokens)
            else:
                self._read_seq += 1
                heapq.heappush(self._reads_waiting, (rs.index, self._read_seq, rs.tokens))

    # -------------------------------------------------------------- snapshots

    def _maybe_snapshot(self) -> None:
        if self._snapshots_disabled or self._snapshotting is not None:
            return
        if (
            self.applied_index - self._snapshot_index >= self.options.snapshot_entries
            or self._log_bytes_since_snapshot >= self.options.snapshot_bytes
        ):
            self._snapshotting = self.loop.create_future()
            self._spawn(self._take_snapshot())

    def snapshot_now(self) -> asyncio.Future[SnapshotMeta | None]:
        """Take a snapshot of the applied state (RAFTSNAPSHOT); resolves to its meta."""
        if self._snapshotting is None:
            self._snapshotting = self.loop.create_future()
            self._spawn(self._take_snapshot())
        return self._snapshotting

    async def _take_snapshot(self) -> None:
        fut = self._snapshotting
        assert fut is not None
        try:
            meta = await self._snapshot_once()
        except BaseException as exc:
            self._snapshotting = None
            if not fut.done():
                fut.set_exception(exc)
            fut.exception()  # mark retrieved: a failed background snapshot is logged below
            if not isinstance(exc, ErrDisabled):
                log.error("snapshot failed: %s", exc, exc_info=exc)
            return
        self._snapshotting = None
        if not fut.done():
            fut.set_result(meta)

    async def _snapshot_once(self) -> SnapshotMeta | None:
        index = self.applied_index
        if index <= self._snapshot_index:
            return self.core.last_snapshot
        core = self.core
        meta = core.snapshot_meta_at(index)
        start = time.monotonic()
        writer = self.snapshots.begin(meta)
        try:
            capture = self.machine.snapshot(writer)
        except ErrDisabled:
            writer.abort()
            self._snapshots_disabled = True
            log.notice("snapshots are disabled by the machine: the log will never be compacted")  # type: ignore[attr-defined]
            raise
        except BaseException:
            writer.abort()
            raise
        captured = time.monotonic()

        def persist() -> SnapshotMeta:
            try:
                if capture is not None:
                    capture.write(writer)
                return writer.commit()
            except BaseException:
                writer.abort()
                raise

        final = await self.loop.run_in_executor(None, persist)
        self._snapshot_index = final.index
        self._log_bytes_since_snapshot = 0
        if final.index <= core.log.applied:
            core.compact(final)
            upto = core.first_index - 1
            term = core.log.prev_term
            self.writer.run(lambda: self.store.compact(upto, term))
        log.info(
            "snapshot at index %d: %d bytes, captured in %.0f ms, written in %.0f ms",
            final.index,
            final.size,
            (captured - start) * 1000,
            (time.monotonic() - captured) * 1000,
        )
        return final

    # ------------------------------------------------------------------ join

    async def _join_loop(self) -> None:
        """Ask the cluster to admit this (empty) node until the leader says OK.

        The leader answers once the change committed: a new address is added
        as a learner; an address that is already a member is removed first
        (its data is gone), and the next request adds it anew.  Each round
        asks every ``--join`` address in turn, so one member that cannot
        help (down, or itself still joining) does not stop the join.
        """
        deadline = time.monotonic() + self.options.join_timeout
        delay = 0.1
        while time.monotonic() < deadline:
            for first in self.join_addrs:
                if self.state_name in ("Closing", "Shutdown"):
                    return
                why = await self._ask_to_join(first)
                if why is None:
                    self._joining = False
                    return
                log.info("join via %s: %s; retrying", first, why)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        msg = (
            f"could not join the cluster via {self.join_addr} within "
            f"{self.options.join_timeout:.0f}s; is a member reachable, and the peer secret right?"
        )
        log.error("%s", msg)
        self._fatal = RuntimeError(msg)
        self._spawn(self.close())

    async def _ask_to_join(self, first: str) -> str | None:
        """One join request via ``first``, following redirects: None once admitted, else why not."""
        target = first
        for _ in range(5):
            if target == self.id:
                # The member this node used to be led until it lost its data;
                # the others have not elected anyone else yet.
                return "the cluster still names this node's address as its leader"
            try:
                # A peer handshake first: joining needs the peer secret (and TLS if set).
                reply = await peer_ask(
                    target,
                    [b"RAFTJOIN", self.id.encode()],
                    self_id=self.id,
                    secret=self.security.peer_secret,
                    ssl_context=self.security.peer_ssl,
                    timeout=5.0,
                )
            except (TimeoutError, OSError) as exc:
                return f"{target}: {exc}"
            if not isinstance(reply, Exception):
                log.info("joined the cluster via %s", target)
                return None
            text = str(reply)
            if not text.startswith("TRY "):
                return f"{target} refused: {text}"
            target = text[4:].strip()
        return "too many redirects"

    # ------------------------------------------------------------ reporting

    def leader_address(self) -> str:
        return self.core.leader

    @property
    def joining(self) -> bool:
        """Whether this node started empty with ``--join`` and is not yet admitted."""
        return self._joining

    def raft_stats(self) -> dict[str, Any]:
        core = self.core
        snap = core.last_snapshot
        return {
            "applied_index": self.applied_index,
            "commit_index": core.commit_index,
            "last_log_index": core.last_index,
            "last_log_term": core.log.last_term,
            "first_log_index": core.first_index,
            "last_snapshot_index": snap.index if snap else 0,
            "last_snapshot_term": snap.term if snap else 0,
            "num_peers": max(
                0,
                len(core.membership.members()) - (1 if self.id in core.membership.members() else 0),
            ),
            "state": self.state_name,
            "term": core.term,
            "leader": core.leader,
            "last_contact": self._last_contact(),
            "voters": len(core.membership.voters),
            "learners": len(core.membership.learners),
            "fsyncs": self.writer.fsyncs,
            "persist_groups": self.writer.groups,
            "proposals": self.stats["proposals"],
            "commands_applied": self.stats["commands_applied"],
        }

    def _last_contact(self) -> str:
        core = self.core
        if core.role == _LEADER:
            return "0"
        if not core.leader:
            return "never"
        return f"{core.election_elapsed * self.options.tick_ms}ms"


def open(
    directory: str | os.PathLike[str],
    addr: str,
    join: str = "",
    machine: Machine | None = None,
    options: Options | None = None,
) -> Node:
    """Create a node serving ``machine`` on ``addr`` with its state in ``directory``.

    ``join`` names a member of an existing cluster to join, or several,
    comma-separated (``"10.0.0.1:7481,10.0.0.2:7481"``), asked in turn until
    one admits the node; without it (and without stored state) the node
    founds a new single-node cluster.  Call
    :meth:`Node.run` to serve, or ``await node.serve()`` inside asyncio.
    """
    if machine is None:
        raise TypeError("open() needs a machine")
    return Node(directory, addr, join, machine, options)


async def serve(
    directory: str | os.PathLike[str],
    addr: str,
    join: str = "",
    machine: Machine | None = None,
    options: Options | None = None,
) -> None:
    """``await redraft.serve(...)``: :func:`open` and serve until stopped."""
    await open(directory, addr, join, machine, options).serve()


__all__ = ["Node", "Redirect", "open", "serve"]
