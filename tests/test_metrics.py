"""``--metrics-port``'s ``/metrics`` and ``--log-format json``, as a user sees them.

The scraped text is parsed with Prometheus's own parser and checked against
RAFTSTATS of the same node; nodes run in threads of the test process (two
at once, as a library user might) and as a real process started with the
command-line flags.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from redraft.cli import build_parser, options_from_args
from redraft.examples.clone import Clone
from redraft.logs import JsonFormatter
from redraft.metrics import Buckets, commands_in
from redraft.node import Node
from redraft.options import Level, Options
from redraft.proposals import encode_batch
from redraft.spinning import CpuPressure
from redraft.testing import free_ports, wait_for
from tests.cluster import running_cluster

pytestmark = pytest.mark.timeout(120)

Families = dict[str, Any]


def scrape(port: int, path: str = "/metrics", **headers: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET on the node's metrics port."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def families(port: int) -> Families:
    """The scrape, parsed by Prometheus's parser: metric families by name."""
    status, _, body = scrape(port)
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body)}


def value(fams: Families, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with ``labels`` (a family's own name for gauges)."""
    for fam in fams.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise KeyError(f"no sample {name} {labels}")


def raft_stats(c: redis.Redis) -> dict[str, str]:
    flat = c.execute_command("RAFTSTATS")
    return {k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)}


class ThreadNode:
    """A clone node with a metrics port, serving from a thread of the test process."""

    def __init__(self, base: Path, **options: Any) -> None:
        self.port, self.metrics_port = free_ports(2)
        opts = Options(log_level="warning", metrics_port=self.metrics_port, **options)
        self.node = Node(base, f"127.0.0.1:{self.port}", "", Clone(), opts)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.node.serve())

    def __enter__(self) -> ThreadNode:
        self.thread.start()
        with self.client() as c:
            wait_for(
                lambda: c.set("seed", "v"),
                15,
                "the node to serve",
                retry_on=(OSError, redis.RedisError),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.node.close(), self.loop).result(15)
        self.thread.join(15)
        self.loop.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ThreadNode]:
    with ThreadNode(tmp_path / "n", durability=Level.HIGH, snapshot_entries=100) as n:
        yield n


# RAFTSTATS field -> the metric that reports it.
SAME_AS_RAFTSTATS = {
    "term": "redraft_term",
    "commit_index": "redraft_commit_index",
    "applied_index": "redraft_applied_index",
    "last_log_index": "redraft_last_log_index",
    "first_log_index": "redraft_first_log_index",
    "last_snapshot_index": "redraft_snapshot_index",
    "fsyncs": "redraft_fsyncs_total",
    "persist_groups": "redraft_persist_groups_total",
    "proposals": "redraft_proposals_total",
    "commands_applied": "redraft_commands_applied_total",
    "ticks_applied": "redraft_ticks_applied_total",
    "spin_seconds": "redraft_spin_seconds_total",
}


def test_the_scrape_parses_and_matches_raftstats(node: ThreadNode) -> None:
    with node.client() as c:
        for i in range(150):
            c.set(f"k{i}", i)
        pipe = c.pipeline(transaction=False)
        for i in range(64):
            pipe.set(f"p{i}", i)
        pipe.execute()
        c.execute_command("RAFTSNAPSHOT")

        def agree() -> tuple[Families, dict[str, str]] | None:
            fams = families(node.metrics_port)
            stats = raft_stats(c)
            seen = {k: value(fams, m) for k, m in SAME_AS_RAFTSTATS.items()}
            return (fams, stats) if seen == {k: float(stats[k]) for k in seen} else None

        fams, stats = wait_for(agree, 10, "the scrape to agree with RAFTSTATS")
    assert stats["commands_applied"] == "215"  # the seed, 150 and 64
    assert value(fams, "redraft_role", role="leader") == 1
    assert value(fams, "redraft_role", role="follower") == 0
    assert value(fams, "redraft_has_leader") == 1
    assert value(fams, "redraft_leader_changes_total") == 1
    assert value(fams, "redraft_members", kind="voter") == 1
    assert value(fams, "redraft_info", node=f"127.0.0.1:{node.port}") == 1
    assert value(fams, "redraft_client_connections") >= 1
    # Every command this leader proposed, in entries of 1 (one at a time) and more (the pipeline).
    assert value(fams, "redraft_proposal_batch_commands_sum") == 215
    assert value(fams, "redraft_proposal_batch_commands_count") == float(stats["proposals"])
    assert value(fams, "redraft_proposal_batch_commands_bucket", le="1.0") >= 151
    # Durability high: each write waited for an fsync, each one timed.
    fsyncs = value(fams, "redraft_log_fsync_seconds_count")
    assert 100 <= fsyncs <= float(stats["fsyncs"])
    assert value(fams, "redraft_log_fsync_seconds_sum") > 0
    assert value(fams, "redraft_snapshot_seconds_count") >= 2  # at 100 entries, and RAFTSNAPSHOT
    # Sampled latency of the writes, by command.
    sampled = value(fams, "redraft_request_duration_seconds_count", command="set")
    assert sampled >= 1
    assert (
        value(fams, "redraft_request_duration_seconds_bucket", command="set", le="+Inf") == sampled
    )
    assert fams["redraft_request_duration_seconds"].type == "histogram"


@pytest.mark.skipif(CpuPressure.open() is None, reason="no CPU pressure figures: no spinning")
def test_time_spent_spinning_is_reported_and_none_when_switched_off(tmp_path: Path) -> None:
    with ThreadNode(tmp_path / "a") as a, ThreadNode(tmp_path / "b", spin_us=0) as b:
        for n in (a, b):
            with n.client() as c:
                for i in range(20):
                    c.set(f"k{i}", i)
        with a.client() as c:
            spun = float(raft_stats(c)["spin_seconds"])
        with b.client() as c:
            assert raft_stats(c)["spin_seconds"] == "0.0"
        assert value(families(b.metrics_port), "redraft_spin_seconds_total") == 0
    # The first write starts a spin (the pressure is not known to be high yet).
    assert spun > 0


def test_two_nodes_in_one_process_each_have_their_own_metrics(tmp_path: Path) -> None:
    with ThreadNode(tmp_path / "a") as a, ThreadNode(tmp_path / "b") as b:
        fa, fb = families(a.metrics_port), families(b.metrics_port)
    assert value(fa, "redraft_info", node=f"127.0.0.1:{a.port}") == 1
    assert value(fb, "redraft_info", node=f"127.0.0.1:{b.port}") == 1
    assert not any(
        s.labels.get("node") == f"127.0.0.1:{b.port}" for s in fa["redraft_info"].samples
    )


def test_the_http_port_answers_only_what_it_serves(node: ThreadNode) -> None:
    status, ctype, body = scrape(
        node.metrics_port, Accept="application/openmetrics-text; version=1.0.0"
    )
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")
    status, ctype, _ = scrape(node.metrics_port)
    assert ctype.startswith("text/plain; version=0.0.4")
    assert scrape(node.metrics_port, "/nothing")[0] == 404
    req = urllib.request.Request(
        f"http://127.0.0.1:{node.metrics_port}/metrics", method="POST", data=b""
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 405


def test_the_port_closes_with_the_node(tmp_path: Path) -> None:
    with ThreadNode(tmp_path / "n") as n:
        assert scrape(n.metrics_port)[0] == 200
    with pytest.raises(urllib.error.URLError):
        scrape(n.metrics_port)


def test_a_metrics_port_in_use_stops_the_start(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with ThreadNode(tmp_path / "other") as other:
        taken = other.metrics_port
        node = Node(
            tmp_path / "n",
            f"127.0.0.1:{port}",
            "",
            Clone(),
            Options(log_level="warning", metrics_port=taken),
        )

        async def start() -> None:
            try:
                await node.start()
            finally:
                await node.close()

        with pytest.raises(OSError):
            asyncio.run(start())


# ------------------------------------------------------------ the pieces


def test_commands_in_reads_the_count_from_the_entry_header() -> None:
    for n in (0, 1, 15, 16, 70000):
        cmds = [[b"SET", b"k", b"v"]] * n
        for stamp in (5, 200, 1 << 20, 1_700_000_000_000_000_000):
            assert commands_in(encode_batch(stamp, cmds)) == n
    assert commands_in(msgpack.packb([-3, [[b"x"]]])) == 1
    assert commands_in(b"") == 0
    assert commands_in(b"\x93\x01\x02\x03") == 0  # not [stamp, cmds]
    assert commands_in(msgpack.packb([1.5, [[b"x"]]])) == 0


def test_buckets_are_cumulative_with_le_inclusive() -> None:
    b = Buckets((1, 2, 4))
    for v in (0.5, 1, 2, 3, 9):
        b.observe(v)
    assert b.cumulative() == [("1.0", 2), ("2.0", 3), ("4.0", 4), ("+Inf", 5)]
    assert b.total == 15.5


def test_options_and_flags() -> None:
    with pytest.raises(ValueError, match="log format"):
        Options(log_format="xml")
    with pytest.raises(ValueError, match="metrics port"):
        Options(metrics_port=70000)
    ns = build_parser().parse_args(["--metrics-port", "9100", "-log-format", "JSON"])
    opts = options_from_args(ns)
    assert (opts.metrics_port, opts.log_format) == (9100, "json")
    opts = options_from_args(build_parser().parse_args(["-metrics-port", "9101"]))
    assert (opts.metrics_port, opts.log_format) == (9101, "text")


def test_json_log_lines_carry_time_level_logger_message_and_exception() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("redraft.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("disk %s is\nfull", "sda")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # one object a line, a newline in the message included
    first, second = map(json.loads, lines)
    assert first["level"] == "WARNING" and first["logger"] == "redraft.test-json"
    assert first["message"] == "disk sda is\nfull"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert "exception" not in first
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exception"]


def test_a_node_process_with_the_flags(tmp_path: Path) -> None:
    (mport,) = free_ports(1)
    flags = ["--log-format", "json", "--metrics-port", str(mport)]
    with running_cluster(tmp_path, 1, flags) as cluster:
        node = cluster.nodes[0]
        with node.client() as c:
            for i in range(20):
                c.set(f"k{i}", i)

            def applied() -> Families | None:
                fams = families(mport)
                return fams if value(fams, "redraft_commands_applied_total") == 20 else None

            fams = wait_for(applied, 10, "the writes in the metrics", retry_on=(OSError,))
            stats = raft_stats(c)
        assert value(fams, "redraft_term") == float(stats["term"])
        assert value(fams, "redraft_role", role="leader") == 1
        assert value(fams, "process_resident_memory_bytes") > 0
    lines = [line for line in node.log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line of the log is one object
    assert any(r["message"].startswith("became leader") for r in records)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
