"""The status page of a real 3-node cluster, rendered in headless Chromium, and ``/status.json``.

Each node runs with its own ``--metrics-port``.  Chromium (Debian's
``chromium``, installed by ``scripts/install-system-deps``) loads the page,
runs its script (which fetches ``status.json``) and dumps the DOM; the test
reads the rendered members table from it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from redraft.testing import free_ports
from tests.cluster import Cluster, NodeProc, started, wait_until

pytestmark = pytest.mark.timeout(180)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class MeteredNode(NodeProc):
    """A node of the cluster with a metrics port of its own."""

    def __init__(self, cluster: Any, index: int, port: int) -> None:
        super().__init__(cluster, index, port)
        (self.metrics_port,) = free_ports(1)

    def command_line(self, join: str = "", extra: Sequence[str] = ()) -> list[str]:
        return super().command_line(join, [*extra, "--metrics-port", str(self.metrics_port)])

    def get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            body: str = r.read().decode()
            return body

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(self.get("/status.json"))
        return status


class MeteredCluster(Cluster):
    node_class = MeteredNode
    nodes: list[MeteredNode]  # type: ignore[assignment]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeteredCluster]:
    with started(MeteredCluster(tmp_path_factory.mktemp("cluster"), 3)) as c:
        yield c


def members_known(c: MeteredCluster) -> tuple[MeteredNode, list[MeteredNode]]:
    """The leader and its followers, once the leader sees every member's log match its own."""
    leader = c.wait_leader()
    assert isinstance(leader, MeteredNode)

    def caught_up() -> bool:
        st = leader.status()
        return len(st["members"]) == 3 and all(m["lag"] == 0 for m in st["members"])

    wait_until(caught_up, 15, "every member to catch up")
    return leader, [n for n in c.nodes if n is not leader]


def test_status_json_of_the_leader_and_of_a_follower(cluster: MeteredCluster) -> None:
    leader, followers = members_known(cluster)
    with leader.client() as c:
        for i in range(30):
            c.set(f"k{i}", i)
    st = leader.status()
    assert st["node"] == leader.addr and st["role"] == "leader" and st["leader"] == leader.addr
    roles = {m["id"]: m["role"] for m in st["members"]}
    assert roles == {leader.addr: "leader", **{f.addr: "follower" for f in followers}}
    assert all(m["match_index"] is not None for m in st["members"])
    assert st["commit_index"] >= st["applied_index"] > 0
    follower = followers[0]
    fst = wait_until(
        lambda: (s := follower.status())["leader"] == leader.addr and s,
        10,
        "the follower to name the leader",
    )
    assert fst["role"] == "follower" and fst["term"] == st["term"]
    mine = [m for m in fst["members"] if m["self"]]
    assert [m["id"] for m in mine] == [follower.addr] and mine[0]["lag"] is not None
    # A follower does not track the others' logs.
    assert all(m["match_index"] is None for m in fst["members"] if not m["self"])


def test_metrics_of_the_leader_show_each_peers_lag(cluster: MeteredCluster) -> None:
    leader, followers = members_known(cluster)
    fams = {f.name: f for f in text_string_to_metric_families(leader.get("/metrics"))}
    lag = {s.labels["peer"]: s.value for s in fams["redraft_peer_lag_entries"].samples}
    assert set(lag) == {f.addr for f in followers}
    assert all(v >= 0 for v in lag.values())
    for f in followers:
        ffams = {x.name: x for x in text_string_to_metric_families(f.get("/metrics"))}
        role = {s.labels["role"]: s.value for s in ffams["redraft_role"].samples}
        assert role["follower"] == 1 and role["leader"] == 0
        assert not ffams["redraft_peer_lag_entries"].samples  # only the leader knows


class _Rows(HTMLParser):
    """The rendered members table: (member, role) of each ``<tr data-member>``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-member"):
            self.rows.append((a["data-member"] or "", a.get("data-role") or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(url: str, profile: Path) -> str:
    """The DOM of ``url`` after its script ran, as headless Chromium dumps it."""
    cmd = [
        CHROMIUM or "chromium",
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is missing: scripts/install-system-deps installs Debian's "
    "chromium (as root, with apt-get)",
)
def test_the_page_in_a_browser_lists_the_members_and_the_leader(
    cluster: MeteredCluster, tmp_path: Path
) -> None:
    leader, followers = members_known(cluster)
    page = _Rows()
    page.feed(render(f"http://127.0.0.1:{leader.metrics_port}/", tmp_path / "profile"))
    text = " ".join(" ".join(page.text).split())
    assert sorted(page.rows) == sorted(
        [(leader.addr, "leader"), *((f.addr, "follower") for f in followers)]
    )
    assert f"Leader {leader.addr}" in text
    assert "live" in text  # the script fetched status.json and said so
    # A follower's page names the leader too.
    page = _Rows()
    page.feed(render(f"http://127.0.0.1:{followers[0].metrics_port}/", tmp_path / "profile2"))
    text = " ".join(" ".join(page.text).split())
    assert f"Leader {leader.addr}" in text
    assert f"This node follows {leader.addr}" in text
    assert (followers[0].addr, "follower") in page.rows and (leader.addr, "leader") in page.rows
