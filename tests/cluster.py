"""Real multi-process clusters of the Redis clone on loopback, for tests.

Each node is a ``python -m redraft.examples.clone`` process with its own data
dir and log file under a temporary directory; tests talk to it with redis-py
or redis-cli.  Only processes started here are ever signalled, by pid.  The
processes themselves are run by :mod:`redraft.testing`; this module adds
redis-py clients and failures reported as test failures.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redraft.testing import ClusterNode, LocalCluster, free_ports, wait_for

__all__ = [
    "NO_RETRY",
    "ROOT",
    "Cluster",
    "NodeProc",
    "free_ports",
    "running_cluster",
    "started",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent

# redis-py resends a command after a timeout or a dropped connection by
# default.  A test that classifies outcomes must see those as unknown: a
# resent write may apply twice, or be answered -TRY after the first one
# applied.
NO_RETRY = Retry(NoBackoff(), 0)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    return wait_for(
        predicate,
        timeout,
        what,
        interval=interval,
        retry_on=(redis.RedisError, OSError),
        error=AssertionError,
    )


class NodeProc(ClusterNode):
    """One node of a test cluster, spoken to with redis-py (see :meth:`client`)."""

    error = AssertionError

    def client(self, **kw: Any) -> redis.Redis:
        kw.setdefault("socket_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def call(self, *args: str | bytes, timeout: float = 1.0) -> Any:
        # Through client(): a secure cluster's nodes add a password and TLS there.
        with self.client(socket_timeout=timeout, socket_connect_timeout=timeout) as c:
            return c.execute_command(*args)

    def ping(self) -> bool:
        try:
            with self.client(socket_timeout=1) as c:
                return bool(c.ping())
        except (redis.RedisError, OSError):
            return False


class Cluster(LocalCluster):
    """A cluster of clone processes under ``base``; ``--loglevel verbose`` before ``flags``."""

    node_class = NodeProc
    retry_on = (redis.RedisError, OSError)
    error = AssertionError
    nodes: list[NodeProc]

    def __init__(self, base: Path, size: int, flags: Sequence[str] | None = None) -> None:
        super().__init__(base, size, ["--loglevel", "verbose", *(flags or [])], cwd=ROOT)


@contextlib.contextmanager
def running_cluster(base: Path, size: int, flags: list[str] | None = None) -> Iterator[Cluster]:
    with started(Cluster(base, size, flags)) as cluster:
        yield cluster


@contextlib.contextmanager
def started(cluster: Cluster) -> Iterator[Cluster]:
    """Start ``cluster``, stop it at the end; print every node's log tail if anything failed."""
    try:
        cluster.start()
        yield cluster
    except BaseException:
        sys.stderr.write(cluster.logs() + "\n")
        raise
    finally:
        cluster.stop()
