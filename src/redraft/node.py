"""A running redraft node: one process, one port, one replicated machine.

:class:`Node` is the composition root.  It owns what belongs to the process
(the options, the security settings, the listening port and its sessions,
the links to peers) and the Raft group it serves
(:class:`~redraft.group.RaftGroup`: the consensus core, the log, the
snapshots and the machine).  It wires them together, answers the built-in
commands' questions (it is their :class:`~redraft.builtins.context.Cluster`)
and runs the node's life: start, join, serve, wind down, stop.

The path of a request: the socket's bytes reach a
:class:`~redraft.session.Session` through the server; the session runs the
command (a write lands in the group's batch for this loop turn); at the end
of the turn the group proposes the batch as one log entry and carries out
the core's work (persist, replicate, commit, apply); the results fill the
requests' reply slots and the replies go out in request order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import io
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redraft.addr import join_addresses, listen_address
from redraft.backup import Backups
from redraft.builtins import builtins
from redraft.builtins.context import Done, PeerView
from redraft.builtins.transaction import forget as transaction_forget
from redraft.group import RaftGroup
from redraft.join import JoinFailed, join_cluster
from redraft.logs import setup_logging
from redraft.machine import Machine
from redraft.options import Options
from redraft.pubsub import PUBLISH, SPUBLISH, PubSub
from redraft.raft.core import RaftCore
from redraft.raft.types import ChangeType, Membership, Role
from redraft.registry import Registry
from redraft.security import Security, private_dir
from redraft.server import Server
from redraft.session import Session, Shared
from redraft.snapshotting import digest_of
from redraft.transport.outbox import Outbox
from redraft.transport.peers import PeerLink

if TYPE_CHECKING:
    from redraft.statuspage import Monitor

log = logging.getLogger("redraft")


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
        self.options = options or Options()
        self.machine = machine
        self.dir = Path(directory)
        self.bind_host, self.port, self.id = listen_address(addr, self.options.advertise)
        self.join_addr = join
        self.join_addrs = join_addresses(join)
        self.started = time.time()
        self.pubsub = PubSub()
        """This node's subscriptions; messages reach them as PUBLISH entries are applied."""
        self.registry = Registry(builtins(self), machine)
        """The commands this node answers (refuses a machine whose commands clash)."""
        self._phase = "Shutdown"
        """What the node is doing when it is not serving: Shutdown or Closing."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fatal: BaseException | None = None
        self.started_serving = False
        """The node got as far as serving (a fatal error after that stopped it, not its start)."""
        self._done: asyncio.Event | None = None
        self._owns_process = False
        """Run by :meth:`run`: the process is the node's, its garbage collector too."""
        self.security: Security
        self.group: RaftGroup
        self.server: Server
        self.loop: asyncio.AbstractEventLoop
        self.monitor: Monitor | None = None
        """The HTTP port of ``--metrics-port`` (metrics, status page), when on."""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open storage, restore state, start serving and join or bootstrap."""
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        opts = self.options
        setup_logging(opts.log_level, opts.log_format)
        self.security = Security.from_options(opts, self.bind_host)
        private_dir(self.dir)
        outbox = Outbox(self.id, self._dial, lambda peer: self.group.peer_unreachable(peer))
        self.group = RaftGroup(
            self.id,
            self.dir,
            self.machine,
            opts,
            self.registry,
            outbox,
            self._after_pass,
            self._on_fatal,
        )
        join = self.group.open(self.join_addr if self.join_addrs else "")
        self.join_addrs = join_addresses(join)
        framework = self.group.applying.framework
        framework[PUBLISH] = self.pubsub.publish  # every node delivers what it applies
        framework[SPUBLISH] = self.pubsub.spublish
        shared = Shared(self.registry, self.group.requests(), self.machine, opts, self.security)
        shared.forget.append(self.pubsub.forget)
        shared.forget.append(self.group.waiters.forget)
        self.backups = Backups(self.group.snapshotter, self.group.snapshots)
        shared.forget.append(self.backups.forget)
        shared.forget.append(transaction_forget)
        self.server = Server(shared, opts, self.security)
        if opts.metrics_port:
            # Imported only when asked for: aiohttp and prometheus_client take a while to load.
            from redraft.statuspage import Monitor

            self.monitor = Monitor(self, self.loop)
            await self.monitor.start(self.bind_host, opts.metrics_port)
        await self.server.start(self.bind_host, self.port)
        self._phase = ""
        self.started_serving = True
        self._log_start()
        if opts.idle_timeout > 0:
            self._spawn(self.server.reap_idle(opts.idle_timeout))
        self.group.start()
        if self.join_addrs:
            self._spawn(self._join())

    def _log_start(self) -> None:
        opts = self.options
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

    def _dial(self, peer: str, on_unreachable: Callable[[str], None]) -> PeerLink:
        return PeerLink(
            peer,
            self.id,
            [b"RAFTPEER", self.id.encode()],
            on_unreachable,
            dial=self.options.peer_routes.get(peer, ""),
            ssl=self.security.peer_ssl,
            secret=self.security.peer_secret,
            # Forwarded requests run as a client's at the leader: they need the password.
            password=self.security.password if self.options.redirect == "proxy" else None,
        )

    def _after_pass(self) -> None:
        self.server.flush_dirty()
        if self.monitor is not None:
            self.monitor.after_pass()

    async def _join(self) -> None:
        try:
            joined = await join_cluster(
                self.id,
                self.join_addrs,
                self.security,
                self.options.join_timeout,
                lambda: self._phase != "",
                self.options.join_as_learner,
            )
        except JoinFailed as exc:
            log.error("%s", exc)
            self._fatal = exc
            self._spawn(self.close())
            return
        if joined:
            self.group.admitted()

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (blocking)."""
        try:
            import uvloop

            runner: Callable[..., Any] = uvloop.run
        except ImportError:
            runner = asyncio.run
        self._owns_process = True
        runner(self.serve())

    async def serve(self) -> None:
        """Start (if needed) and serve until stopped by a signal or :meth:`close`."""
        if self._done is None:
            await self.start()
        if self._owns_process:
            tune_gc()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            # The first signal stops gracefully; a second one stops at once.
            grace = 0.0 if self.server.draining else self.options.shutdown_timeout
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
        if self._done is None or self._done.is_set() or self._phase == "Closing":
            return
        if grace > 0:
            if self.server.draining:
                return
            await self._wind_down(grace)
            if self._done.is_set() or self._phase == "Closing":
                return  # a second signal stopped the node meanwhile
        self._phase = "Closing"
        self.group.closed = True
        self.group.ticker.stop()
        await self.server.close()
        if self.monitor is not None:
            await self.monitor.close()
        await self.group.outbox.close()
        with contextlib.suppress(Exception):
            await self.group.close()
        for t in list(self._tasks):
            if t is not asyncio.current_task():
                t.cancel()
        self._phase = "Shutdown"
        log.info("node %s stopped", self.id)
        self._done.set()

    async def _wind_down(self, grace: float) -> None:
        self.server.draining = True
        log.info("stopping: winding down (at most %.1fs)", grace)
        deadline = time.monotonic() + grace
        group = self.group
        core = group.core
        # Hand over only to a cluster that is there: with no quorum heard
        # from lately (the last node standing) it would just time out.
        if (
            core.role == Role.LEADER
            and len(core.membership.voters) > 1
            and core.lease_valid(group.ticker.due())
        ):
            handed: asyncio.Future[BaseException | None] = self.loop.create_future()

            def on_handed(exc: BaseException | None) -> None:
                if not handed.done():
                    handed.set_result(exc)

            try:
                group.transfer_leadership(None, on_handed)
                failed = await asyncio.wait_for(handed, grace)
            except Exception as exc:
                failed = exc
            if failed is not None:
                log.warning("could not hand leadership over before stopping: %s", failed)
        while time.monotonic() < deadline and (group.owes_replies() or self.server.owes_replies()):
            await asyncio.sleep(0.02)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_fatal(self, exc: BaseException) -> None:
        # A failed fsync lands here too, whatever its errno: the kernel may have
        # dropped the pages it could not write, so retrying could acknowledge
        # writes that are not on disk. Only a restart rereads what is really there.
        log.critical("storage failure, stopping the node: %s", exc, exc_info=exc)
        self._fatal = exc
        self._spawn(self.close())

    # ------------------------------------------------------- what built-ins see

    @property
    def core(self) -> RaftCore:
        """The group's consensus core (read it; change it only through the group)."""
        return self.group.core

    @property
    def joining(self) -> bool:
        return self.group.joining

    @property
    def is_leader(self) -> bool:
        return self.group.core.role == Role.LEADER

    @property
    def leader(self) -> str:
        return self.group.core.leader

    @property
    def term(self) -> int:
        return self.group.core.term

    @property
    def state_name(self) -> str:
        return self._phase or self.group.core.role.title

    @property
    def membership(self) -> Membership:
        return self.group.core.membership

    @property
    def applied_index(self) -> int:
        return self.group.applying.applied

    def peers(self) -> list[PeerView]:
        st = self.group.core.status()
        mem = st.membership
        tick_ms = self.options.tick_ms
        views: list[PeerView] = []
        for peer in sorted(mem.members(), key=lambda p: (p != st.leader, p)):
            match: int | None = None
            contact: int | None = None
            replication = ""
            pr = st.progress.get(peer)
            if peer == self.id:
                match, contact = st.stable, 0
            elif pr is not None:
                match = pr.match
                contact = (st.ticks - pr.last_contact) * tick_ms
                replication = pr.state
            views.append(
                PeerView(
                    peer, peer in mem.voters, peer in mem.promoting, match, contact, replication
                )
            )
        return views

    def raft_stats(self) -> dict[str, Any]:
        return self.group.raft_stats(self.state_name)

    def sessions(self) -> list[Session]:
        return self.server.sessions

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.loop.call_later(delay, fn)

    def transfer_leadership(self, target: str | None, done: Done) -> None:
        self.group.transfer_leadership(target, done)

    def propose_config(self, change: ChangeType, addr: str, done: Done) -> None:
        self.group.propose_config(change, addr, done)

    def snapshot_now(self, done: Done) -> None:
        self.group.snapshotter.now(done)

    def digest(self) -> tuple[int, bytes]:
        buf = io.BytesIO()
        digest_of(self.machine, buf)
        return self.group.applying.applied, hashlib.sha256(buf.getvalue()).hexdigest().encode()

    def machine_info(self) -> Mapping[str, Mapping[str, str]]:
        try:
            return self.machine.info()
        except Exception:
            log.exception("the machine's info failed")
            return {}

    def on_peer_messages(self, payload: bytes, peer: str) -> None:
        self.group.on_peer_messages(payload, peer)


GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's thresholds in a process that runs a node (Python's: 700, 10, 10)."""


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a server that allocates per request.

    Every request allocates a few containers (its arguments, its reply
    slot), so with Python's defaults a young collection runs every few dozen
    requests and promotes whatever is in flight at that moment, which the
    older generations then scan again: ~4.5 % of a leader's CPU under
    pipelined writes.  Objects alive once the node has started (the
    restored machine, the log) are frozen out of every collection; the
    thresholds are raised so that collections run a hundred times less
    often.  The request path makes no reference cycles, so garbage is not
    kept longer in practice.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def open(
    directory: str | os.PathLike[str],
    addr: str,
    join: str = "",
    *,
    machine: Machine,
    options: Options | None = None,
) -> Node:
    """Create a node serving ``machine`` on ``addr`` with its state in ``directory``.

    ``join`` names a member of an existing cluster to join, or several,
    comma-separated (``"10.0.0.1:7481,10.0.0.2:7481"``), asked in turn until
    one admits the node; without it (and without stored state) the node
    founds a new single-node cluster.  Call :meth:`Node.run` to serve, or
    ``await node.serve()`` inside asyncio.  Raises ValueError for a
    malformed address, or a machine whose plain commands clash with the
    built-ins.
    """
    return Node(directory, addr, join, machine, options)


async def serve(
    directory: str | os.PathLike[str],
    addr: str,
    join: str = "",
    *,
    machine: Machine,
    options: Options | None = None,
) -> None:
    """``await redraft.serve(...)``: :func:`open` and serve until stopped."""
    await open(directory, addr, join, machine=machine, options=options).serve()


__all__ = ["Node", "open", "serve"]
