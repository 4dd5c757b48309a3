"""Helpers for testing a redraft application.

What test suites, benchmarks and scripts that run real nodes need, in one
place: free loopback ports (:func:`free_ports`), waiting for a condition
with a deadline (:func:`wait_for`), one command over a fresh connection
(:func:`request`), the command line of a node (:func:`node_command`), local
processes whose output goes to a log file (:class:`LocalProcess`), nodes
that are ready once they answer ``PING`` (:class:`NodeProcess`), and whole
clusters of them (:class:`LocalCluster`)::

    from redraft.testing import LocalCluster

    cluster = LocalCluster(tmp_path, 3, app="myapp").start()
    try:
        leader = cluster.wait_leader()
        ...  # talk to leader.port on 127.0.0.1 with any Redis client
    finally:
        cluster.stop()

``app`` is a module that ``python -m`` runs as a node taking redraft's
shared flags (:mod:`redraft.cli`); the default is the example Redis clone.  Only processes started through these
helpers are ever signalled, and only by their pid.  Nothing here needs a
Redis client library: requests go over a plain socket with redraft's own
RESP codec.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from signal import SIGCONT, SIGKILL, SIGTERM
from typing import IO, Any, ClassVar, Self, TypeVar

from redraft.resp import ErrorReply, ReplyParser, encode_command

__all__ = [
    "CLONE",
    "LOOPBACK",
    "ClusterNode",
    "CommandError",
    "LocalCluster",
    "LocalProcess",
    "NodeExited",
    "NodeProcess",
    "free_ports",
    "node_command",
    "request",
    "stop_all",
    "wait_for",
]

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
CLONE = "redraft.examples.clone"
"""The module of the example application (a Redis clone), the default of :func:`node_command`."""


_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LISTEN_FLOOR = 10000
_handed_out: set[int] = set()


def _listen_range() -> range:
    """Ports below the kernel's ephemeral range (where outgoing connections take theirs)."""
    try:
        first = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return range(_LISTEN_FLOOR, max(first, _LISTEN_FLOOR + 1000))


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """``n`` distinct TCP ports on ``host`` that were free a moment ago.

    Chosen below the ephemeral range: a port the kernel hands out with
    ``bind(0)`` is one it also gives to outgoing connections, so between
    choosing it and a node listening on it, a client's connection can take
    it.  A port is handed out once per process, so a node still shutting
    down never shares its port with the next test's.
    """
    ports = _listen_range()
    rng = random.Random()
    picked: list[int] = []
    for _ in range(20 * len(ports)):
        if len(picked) == n:
            return picked
        port = rng.choice(ports)
        if port in _handed_out or not _bindable(host, port):
            continue
        _handed_out.add(port)
        picked.append(port)
    raise OSError(f"no {n} free ports on {host} in {ports.start}-{ports.stop - 1}")


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    error: Callable[[str], BaseException] = TimeoutError,
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns a truthy value; return it.

    An exception of a type in ``retry_on`` counts as "not yet" (the last one
    is named in the error).  After ``timeout`` seconds raises ``error`` with
    ``timed out after <timeout>s waiting for <what>``.  Note that
    ``TimeoutError`` is an ``OSError``: a wait nested in another's predicate
    should raise something else, or the outer one retries it.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
        except retry_on as exc:
            last = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g}s waiting for {what} (last error: {last})")
        time.sleep(interval)


def request(port: int, *args: str | bytes, host: str = LOOPBACK, timeout: float = 2.0) -> Any:
    """Send one command over a fresh connection and return its reply.

    Replies come as :class:`redraft.resp.ReplyParser` gives them: bytes,
    ints, lists, None, and an :class:`~redraft.resp.ErrorReply` for an error
    (returned, not raised).  Socket errors and timeouts raise ``OSError``.
    """
    parser = ReplyParser()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(encode_command([a if isinstance(a, bytes) else a.encode() for a in args]))
        while True:
            data = s.recv(65536)
            if not data:
                raise ConnectionError(f"{host}:{port} closed the connection")
            replies = parser.parse(data)
            if replies:
                return replies[0]


def node_command(
    port: int,
    directory: str | Path,
    *flags: str,
    join: str = "",
    app: str = CLONE,
    python: str = sys.executable,
) -> list[str]:
    """The command line of one node of ``app``, a module that takes redraft's shared flags.

    ``python -m <app> -p <port> --dir <directory> <flags...> [--join <join>]``;
    see :func:`redraft.cli.main` for the flags.
    """
    cmd = [python, "-m", app, "-p", str(port), "--dir", str(directory), *flags]
    if join:
        cmd += ["--join", join]
    return cmd


class NodeExited(RuntimeError):
    """The process ended while it was waited for."""


class LocalProcess:
    """A child process whose output is appended to ``log_path``; signalled by pid only.

    ``cwd`` and ``env`` (default: this process's environment) are those of
    the child, which always gets ``PYTHONUNBUFFERED=1`` so that its log is
    up to date.  With ``new_session`` the child has a session of its own:
    Ctrl-C in a terminal reaches only this process, which stops it in turn.
    """

    def __init__(
        self,
        log_path: Path,
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.new_session = new_session
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def launch(self, argv: Sequence[str], note: str = "") -> subprocess.Popen[bytes]:
        """Start ``argv``, first writing ``note`` (if any) to the log."""
        if self.running:
            raise RuntimeError(f"{self.log_path.stem} is already running (pid {self.pid})")
        self.close_log()
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop() or close_log()
        if note:
            log.write(note.encode())
            log.flush()
        env = dict(os.environ if self.env is None else self.env, PYTHONUNBUFFERED="1")
        self._log = log
        self.proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
            env=env,
            start_new_session=self.new_session,
        )
        return self.proc

    @property
    def running(self) -> bool:
        """The process was started and has not ended (it may be stopped by SIGSTOP)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to the process if it runs; False if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        return True

    def kill(self, sig: int = SIGKILL, timeout: float = 15.0) -> bool:
        """Send ``sig`` (default SIGKILL); for SIGKILL and SIGTERM wait for the exit."""
        if not self.signal(sig):
            return False
        if sig in (SIGKILL, SIGTERM):
            assert self.proc is not None
            self.proc.wait(timeout=timeout)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully: SIGCONT and SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.signal(SIGCONT):
            self.signal(SIGTERM)
            assert self.proc is not None
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(SIGKILL, timeout)
        self.close_log()

    def close_log(self) -> None:
        """Close this side's handle on the log file (the child keeps its own)."""
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class NodeProcess(LocalProcess):
    """A local node: a :class:`LocalProcess` that is ready once it answers ``PING`` on ``port``."""

    error: ClassVar[type[Exception]] = TimeoutError
    """What :meth:`wait_ready` raises when the node does not answer in time."""

    def __init__(
        self,
        port: int,
        log_path: Path,
        *,
        host: str = LOOPBACK,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        super().__init__(log_path, cwd=cwd, env=env, new_session=new_session)
        self.port = port
        self.host = host

    def ping(self) -> bool:
        """Whether the node answers ``PING`` now (override to add a password or TLS)."""
        try:
            return bool(request(self.port, "PING", host=self.host, timeout=1.0) == b"PONG")
        except OSError:
            return False

    def answering(self) -> bool:
        """:meth:`ping`, but raise :class:`NodeExited` (with the log's tail) if the process ended."""
        if not self.running:
            raise NodeExited(f"node {self.host}:{self.port} exited; log:\n{self.log_tail()}")
        return self.ping()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until the node answers ``PING``; raise :attr:`error` after ``timeout`` seconds."""
        wait_for(
            self.answering,
            timeout,
            f"node {self.host}:{self.port} to answer PING",
            error=lambda text: self.error(f"{text}; log:\n{self.log_tail()}"),
        )


def stop_all(processes: Iterable[LocalProcess], timeout: float = 10.0) -> None:
    """Stop several processes at once: SIGTERM to all first, then wait for each in turn."""
    procs = list(processes)
    for p in procs:
        if p.signal(SIGCONT):
            p.signal(SIGTERM)
    for p in procs:
        p.stop(timeout)


class CommandError(Exception):
    """An error reply to :meth:`ClusterNode.call` (its text is the message)."""


class ClusterNode(NodeProcess):
    """Node ``index`` of a :class:`LocalCluster`: data in ``<base>/node<index>``, log next to it."""

    def __init__(self, cluster: LocalCluster, index: int, port: int) -> None:
        super().__init__(
            port,
            cluster.base / f"node{index}.log",
            cwd=cluster.cwd,
            env=cluster.env,
            new_session=cluster.new_session,
        )
        self.cluster = cluster
        self.index = index
        self.addr = f"{self.host}:{port}"
        self.dir = cluster.base / f"node{index}"

    def command_line(self, join: str = "", extra: Sequence[str] = ()) -> list[str]:
        """The node's command: the cluster's app and flags, then ``extra``."""
        c = self.cluster
        return node_command(self.port, self.dir, *c.flags, *extra, join=join, app=c.app)

    def spawn(self, join: str = "", extra: Sequence[str] | None = None) -> None:
        """Start the process (joining through ``join`` if given) without waiting for it."""
        self.launch(self.command_line(join, extra or ()))

    def start(self, join: str = "", extra: Sequence[str] | None = None) -> None:
        """Start the process and wait until it answers ``PING``."""
        self.spawn(join, extra)
        self.wait_ready()

    def call(self, *args: str | bytes, timeout: float = 1.0) -> Any:
        """One command over a fresh connection; an error reply raises :class:`CommandError`."""
        reply = request(self.port, *args, host=self.host, timeout=timeout)
        if isinstance(reply, ErrorReply):
            raise CommandError(str(reply))
        return reply

    def state(self) -> bytes:
        """``RAFTSTATE``: b"Leader", b"Follower", ..."""
        state: bytes = self.call("RAFTSTATE", timeout=1.0)
        return state

    def stats(self, timeout: float = 2.0) -> dict[str, str]:
        """``RAFTSTATS`` as a dict of text."""
        flat = self.call("RAFTSTATS", timeout=timeout)
        return {k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)}


class LocalCluster:
    """``size`` nodes of ``app`` on loopback ports (free ones unless ``ports`` is given).

    Every node runs ``python -m <app>`` with ``flags`` and keeps its data dir
    and log under ``base`` (see :class:`ClusterNode`).  :meth:`start` founds
    the cluster on the first node and, once it leads, joins the others
    through it.  Set :attr:`node_class` to a subclass of :class:`ClusterNode`
    to talk to the nodes another way (with a password or TLS, say).
    """

    retry_on: ClassVar[tuple[type[BaseException], ...]] = (OSError, CommandError)
    """Errors of a query that mean "not yet" while waiting."""
    error: ClassVar[type[Exception]] = TimeoutError
    """What a wait that times out raises."""
    node_class: ClassVar[type[ClusterNode]] = ClusterNode

    def __init__(
        self,
        base: Path,
        size: int,
        flags: Sequence[str] | None = None,
        *,
        app: str = CLONE,
        ports: Sequence[int] | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.flags = list(flags or ())
        self.app = app
        self.cwd = cwd
        self.env = env
        self.new_session = new_session
        ports = list(ports) if ports is not None else free_ports(size)
        self.nodes: list[ClusterNode] = [self.new_node(i + 1, p) for i, p in enumerate(ports)]

    def new_node(self, index: int, port: int) -> ClusterNode:
        """Node ``index`` on ``port`` (not started), of class :attr:`node_class`."""
        return self.node_class(self, index, port)

    def add_node(self, port: int | None = None) -> ClusterNode:
        """A new node of this cluster (not started), on ``port`` or a free one."""
        if port is None:
            (port,) = free_ports(1)
        node = self.new_node(len(self.nodes) + 1, port)
        self.nodes.append(node)
        return node

    def wait(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """:func:`wait_for` with this cluster's :attr:`retry_on` and :attr:`error`."""
        return wait_for(predicate, timeout, what, retry_on=self.retry_on, error=self.error)

    def start(self, timeout: float = 30.0, lead_timeout: float = 15.0) -> Self:
        """Found the cluster on the first node, join the others, wait until all are voters."""
        first = self.nodes[0]
        first.start()
        self.wait(lambda: self.leader() is first, lead_timeout, "the first node to lead")
        for n in self.nodes[1:]:
            n.spawn(join=first.addr)
        for n in self.nodes[1:]:
            n.wait_ready()
        self.wait(lambda: self.voters() == len(self.nodes), timeout, "every node to become a voter")
        return self

    def leader(self) -> ClusterNode | None:
        """A running node that says it leads, if any."""
        for n in self.nodes:
            if not n.running:
                continue
            try:
                # Short: a paused (SIGSTOPped) node accepts but never answers.
                if n.call("RAFTSTATE", timeout=0.3) == b"Leader":
                    return n
            except self.retry_on:
                continue
        return None

    def voters(self) -> int:
        """How many voters (leader and followers) the leader counts; 0 without a leader."""
        leader = self.leader()
        if leader is None:
            return 0
        flat = leader.call("RAFTPEERS", timeout=1.0)
        return sum(1 for s in flat[1::2] if s in (b"Leader", b"Follower"))

    def wait_leader(self, timeout: float = 15, exclude: ClusterNode | None = None) -> ClusterNode:
        """Wait until a node (other than ``exclude``) leads, and return it."""

        def found() -> ClusterNode | None:
            ld = self.leader()
            return ld if ld is not None and ld is not exclude else None

        leader = self.wait(found, timeout, "a leader")
        assert leader is not None
        return leader

    def followers(self) -> list[ClusterNode]:
        """The running nodes other than the leader."""
        leader = self.leader()
        return [n for n in self.nodes if n is not leader and n.running]

    def stop(self) -> None:
        """Stop every node, one after the other."""
        for n in self.nodes:
            n.stop()

    def logs(self) -> str:
        """The tail of every node's log."""
        return "\n".join(f"--- node {n.addr} ---\n{n.log_tail()}" for n in self.nodes)
