"""Real multi-process clusters of the Redis clone on loopback, for tests.

Each node is a ``python -m redraft.examples.clone`` process with its own data
dir and log file under a temporary directory; tests talk to it with redis-py
or redis-cli.  Only processes started here are ever signalled, by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parent.parent

# redis-py resends a command after a timeout or a dropped connection by
# default.  A test that classifies outcomes must see those as unknown: a
# resent write may apply twice, or be answered -TRY after the first one
# applied.
NO_RETRY = Retry(NoBackoff(), 0)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


class NodeProc:
    """One node of a test cluster."""

    def __init__(self, cluster: Cluster, index: int, port: int) -> None:
        self.cluster = cluster
        self.index = index
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.dir = cluster.base / f"node{index}"
        self.log_path = cluster.base / f"node{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, join: str = "", extra: list[str] | None = None) -> None:
        self.spawn(join, extra)
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_until(self.ping, 15, f"node {self.addr} to answer PING")

    def spawn(self, join: str = "", extra: list[str] | None = None) -> None:
        """Start the process without waiting for it to serve."""
        cmd = [
            sys.executable, "-m", "redraft.examples.clone",
            "-p", str(self.port), "--dir", str(self.dir), "--loglevel", "verbose",
            *self.cluster.flags, *(extra or []),
        ]  # fmt: skip
        if join:
            cmd += ["--join", join]
        logf = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._logf = logf
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw: Any) -> redis.Redis:
        kw.setdefault("socket_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def ping(self) -> bool:
        if not self.running:
            raise AssertionError(f"node {self.addr} exited; log:\n{self.log_tail()}")
        try:
            with self.client(socket_timeout=1) as c:
                return bool(c.ping())
        except (redis.RedisError, OSError):
            return False

    def state(self) -> bytes:
        with self.client(socket_timeout=1) as c:
            state: bytes = c.execute_command("RAFTSTATE")
            return state

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self._logf.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Cluster:
    """A cluster of clone processes under ``base``."""

    def __init__(self, base: Path, size: int, flags: list[str] | None = None) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.flags = flags or []
        ports = free_ports(size)
        self.nodes = [NodeProc(self, i + 1, p) for i, p in enumerate(ports)]

    def start(self) -> Cluster:
        first = self.nodes[0]
        first.start()
        wait_until(lambda: self.leader() is first, 15, "the first node to lead")
        for n in self.nodes[1:]:
            n.spawn(join=first.addr)
        for n in self.nodes[1:]:
            n.wait_ready()
        wait_until(lambda: self.voters() == len(self.nodes), 30, "every node to become a voter")
        return self

    def voters(self) -> int:
        leader = self.leader()
        if leader is None:
            return 0
        with leader.client(socket_timeout=1) as c:
            flat = c.execute_command("RAFTPEERS")
        states = flat[1::2]
        return sum(1 for s in states if s in (b"Leader", b"Follower"))

    def leader(self) -> NodeProc | None:
        for n in self.nodes:
            if not n.running:
                continue
            try:
                # Short: a paused (SIGSTOPped) node accepts but never answers.
                with n.client(socket_timeout=0.3, socket_connect_timeout=0.3) as c:
                    if c.execute_command("RAFTSTATE") == b"Leader":
                        return n
            except (redis.RedisError, OSError):
                continue
        return None

    def wait_leader(self, timeout: float = 15, exclude: NodeProc | None = None) -> NodeProc:
        def found() -> NodeProc | None:
            ld = self.leader()
            return ld if ld is not None and ld is not exclude else None

        leader: NodeProc = wait_until(found, timeout, "a leader")
        return leader

    def followers(self) -> list[NodeProc]:
        leader = self.leader()
        return [n for n in self.nodes if n is not leader and n.running]

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def logs(self) -> str:
        return "\n".join(f"--- node {n.addr} ---\n{n.log_tail()}" for n in self.nodes)


@contextlib.contextmanager
def running_cluster(base: Path, size: int, flags: list[str] | None = None) -> Iterator[Cluster]:
    cluster = Cluster(base, size, flags)
    try:
        cluster.start()
        yield cluster
    except BaseException:
        sys.stderr.write(cluster.logs() + "\n")
        raise
    finally:
        cluster.stop()
