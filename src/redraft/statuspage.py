"""The node's HTTP port (``--metrics-port``): ``/metrics``, ``/status.json`` and a status page.

One small HTTP/1.1 server (aiohttp's low-level server) on the node's own
event loop, bound to the node's bind host, started and stopped with it:

* ``/metrics``: Prometheus's text format (or OpenMetrics, when the scraper
  asks for it) of the node's own registry (:mod:`redraft.metrics`).
* ``/status.json``: what this node knows of the cluster, for the page and
  for scripts (:func:`status`).
* ``/``: one self-contained HTML page (inline CSS and JS, nothing fetched
  from elsewhere) that renders ``status.json`` every second: the members,
  who leads, the indexes, each member's lag and the commands applied per
  second.

The port has no password and no TLS: it shows figures and addresses, never
data, but keep it on a network you trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from redraft.metrics import NodeMetrics, Watched, role_of
from redraft.raft.types import Role
from redraft.version import VERSION


def status(node: Watched, applied: Sequence[tuple[float, int]] = ()) -> dict[str, Any]:
    """What ``/status.json`` says: this node's figures and every member as it knows them.

    The leader knows how far each member's log matches its own; a follower
    knows only its own log (its lag is how far it is behind the commit
    index the leader last told it) and names the leader.  ``applied`` is
    (time, commands applied) once a second, oldest first: ``throughput``
    is the commands applied per second between them.
    """
    stats = node.raft_stats()
    core = node.group.core
    leading = core.role is Role.LEADER
    leader = stats["leader"]
    last = core.last_index
    members: list[dict[str, Any]] = []
    for peer in node.peers():
        me = peer.address == node.id
        if peer.address == leader:
            role = "leader"
        elif not peer.voter:
            role = "learner"
        else:
            role = role_of(node) if me else "follower"
        lag: int | None = None
        if peer.match_index is not None and leading:
            lag = max(0, last - peer.match_index)
        elif me and leader:
            lag = max(0, core.leader_commit - stats["applied_index"])
        members.append(
            {
                "id": peer.address,
                "role": role,
                "voter": peer.voter,
                "self": me,
                "match_index": peer.match_index,
                "lag": lag,
                "last_contact_ms": peer.last_contact_ms,
                "replication": peer.replication,
            }
        )
    return {
        "node": node.id,
        "role": role_of(node),
        "leader": leader,
        "term": stats["term"],
        "commit_index": stats["commit_index"],
        "applied_index": stats["applied_index"],
        "last_log_index": stats["last_log_index"],
        "snapshot_index": stats["last_snapshot_index"],
        "commands_applied": stats["commands_applied"],
        "throughput": [
            {"time": round(t1, 3), "per_second": round(max(0, n1 - n0) / (t1 - t0), 1)}
            for (t0, n0), (t1, n1) in itertools.pairwise(applied)
            if t1 > t0
        ],
        "members": members,
        "disk_full": (
            {"error": stats["disk_full_error"], "since": stats["disk_full_since"]}
            if stats["disk_full"]
            else None
        ),
        "time": time.time(),
        "started": node.started,
        "version": VERSION,
    }


HISTORY = 60
"""Seconds of throughput ``status.json`` carries."""


class Monitor:
    """The node's HTTP port: its metrics, its status as JSON and the status page."""

    def __init__(self, node: Watched, loop: asyncio.AbstractEventLoop) -> None:
        self.node = node
        self.metrics = NodeMetrics(node, loop)
        self.after_pass = self.metrics.after_pass
        """Call after each pass of the group (the node does)."""
        # access_log=None: a scrape every few seconds must not fill the node's log.
        self._http = web.Server(self._handle, access_log=None)
        self._listener: asyncio.AbstractServer | None = None
        self.applied: deque[tuple[float, int]] = deque(maxlen=HISTORY + 1)
        """(time, commands applied) once a second, the last minute: the page's throughput."""
        self._sampler: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (raises OSError if it cannot)."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._http, host, port, reuse_address=True)
        self._sampler = loop.create_task(self._sample_applied())

    async def _sample_applied(self) -> None:
        # Kept by the node, so that the page shows the last minute as soon as it opens.
        applying = self.node.group.applying
        while True:
            self.applied.append((time.time(), applying.commands))
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Stop listening, close the open connections, stop observing."""
        self.metrics.close()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        if self._listener is not None:
            self._listener.close()
            await self._http.shutdown(1.0)
            await self._listener.wait_closed()
            self._listener = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="GET only\n", headers={"Allow": "GET, HEAD"})
        path = request.path
        if path == "/metrics":
            encode, content_type = choose_encoder(request.headers.get("Accept", ""))
            body = encode(self.metrics.registry)
            return web.Response(body=body, headers={"Content-Type": content_type})
        if path == "/status.json":
            return web.Response(
                text=json.dumps(status(self.node, self.applied)),
                content_type="application/json",
                headers={"Cache-Control": "no-store"},
            )
        if path in ("/", "/index.html"):
            return web.Response(text=PAGE, content_type="text/html")
        return web.Response(status=404, text="not found: /, /status.json or /metrics\n")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>redraft status</title>
<style>
:root {
  --bg: #f4f5f7; --card: #fff; --ink: #1f2430; --mute: #6b7280; --line: #e4e7eb;
  --lead: #0f766e; --lead-bg: #ccfbf1; --fol: #3730a3; --fol-bg: #e0e7ff;
  --lrn: #92400e; --lrn-bg: #fef3c7; --cand: #9d174d; --cand-bg: #fce7f3; --bad: #b91c1c;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
header { background: #111827; color: #f9fafb; padding: 14px 28px;
  display: flex; align-items: center; gap: 14px; }
header h1 { margin: 0; font-size: 18px; font-weight: 650; letter-spacing: .02em; }
header .node { color: #d1d5db; }
#conn { margin-left: auto; font-size: 12px; color: #9ca3af; }
#conn.live::before { content: ""; display: inline-block; width: 8px; height: 8px;
  border-radius: 50%; background: #34d399; margin-right: 6px; }
#conn.bad { color: #fca5a5; }
main { padding: 22px 28px; max-width: 1180px; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 16px; }
.wide { grid-column: span 2; }
.k { color: var(--mute); font-size: 11.5px; text-transform: uppercase; letter-spacing: .06em; }
.v { font-size: 22px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.row { display: grid; grid-template-columns: 2fr 1fr; gap: 12px; margin-top: 12px; }
h2 { font-size: 13px; margin: 0 0 8px; color: var(--mute); text-transform: uppercase;
  letter-spacing: .06em; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); }
th { font-size: 11.5px; color: var(--mute); font-weight: 600; text-transform: uppercase;
  letter-spacing: .05em; }
tr:last-child td { border-bottom: 0; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 999px; font-size: 12px;
  font-weight: 650; background: #e5e7eb; color: #374151; }
.badge.leader { background: var(--lead-bg); color: var(--lead); }
.badge.follower { background: var(--fol-bg); color: var(--fol); }
.badge.learner { background: var(--lrn-bg); color: var(--lrn); }
.badge.candidate { background: var(--cand-bg); color: var(--cand); }
.me { color: var(--mute); font-size: 12px; margin-left: 6px; }
.bar { display: inline-block; width: 70px; height: 6px; border-radius: 3px; background: #e5e7eb;
  vertical-align: middle; margin-left: 8px; overflow: hidden; }
.bar i { display: block; height: 100%; background: #10b981; }
.bar i.behind { background: #f59e0b; }
.note { color: var(--mute); font-size: 12.5px; margin: 10px 0 0; }
#rate { font-size: 30px; }
svg { width: 100%; height: 90px; margin-top: 10px; display: block; }
footer { color: var(--mute); font-size: 12px; margin-top: 16px; }
a { color: #2563eb; }
#alarm { display: none; background: #fef2f2; border: 1px solid #fca5a5; color: #991b1b;
  border-radius: 10px; padding: 12px 16px; margin-bottom: 12px; font-weight: 600; }
#alarm.on { display: block; }
#alarm .mono { font-weight: 400; font-size: 12.5px; display: block; margin-top: 4px; }
</style>
</head>
<body>
<header>
  <h1>redraft</h1>
  <span class="node mono" id="node">&hellip;</span>
  <span class="badge" id="role">&hellip;</span>
  <span id="conn">connecting&hellip;</span>
</header>
<main>
  <div id="alarm" role="alert"></div>
  <section class="cards">
    <div class="card wide"><div class="k">Leader</div><div class="v mono" id="leader">&mdash;</div></div>
    <div class="card"><div class="k">Term</div><div class="v" id="term">&mdash;</div></div>
    <div class="card"><div class="k">Commit index</div><div class="v" id="commit">&mdash;</div></div>
    <div class="card"><div class="k">Applied index</div><div class="v" id="applied">&mdash;</div></div>
    <div class="card"><div class="k">Snapshot index</div><div class="v" id="snapshot">&mdash;</div></div>
  </section>
  <section class="row">
    <div class="card">
      <h2>Members</h2>
      <table>
        <thead><tr><th>Member</th><th>Role</th><th class="num">Match index</th>
          <th class="num">Lag</th><th class="num">Last contact</th></tr></thead>
        <tbody id="members"></tbody>
      </table>
      <p class="note" id="note"></p>
    </div>
    <div class="card">
      <h2>Throughput</h2>
      <div class="v" id="rate">&mdash;</div>
      <div class="k">commands applied per second</div>
      <svg id="spark" viewBox="0 0 300 90" preserveAspectRatio="none"></svg>
      <p class="note">last minute, peak <span id="peak">&mdash;</span>/s &middot;
        <span id="total">0</span> commands applied in all</p>
    </div>
  </section>
  <footer>Updated <span id="updated">never</span> &middot; refreshed every second from
    <a href="status.json">status.json</a> &middot; <a href="metrics">metrics</a>
    &middot; redraft <span id="version"></span></footer>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);

function num(n) { return n === null || n === undefined ? "\\u2014" : n.toLocaleString("en-US"); }

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function badge(role) {
  const b = document.createElement("span");
  b.className = "badge " + role;
  b.textContent = role;
  return b;
}

function member(m, s) {
  const tr = document.createElement("tr");
  tr.dataset.member = m.id;
  tr.dataset.role = m.role;
  const id = cell(tr, m.id, "mono");
  if (m.self) {
    const me = document.createElement("span");
    me.className = "me";
    me.textContent = "this node";
    id.appendChild(me);
  }
  cell(tr, "").appendChild(badge(m.role));
  cell(tr, num(m.match_index), "num");
  const lag = cell(tr, num(m.lag), "num");
  if (m.lag !== null) {
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("i");
    const span = Math.max(1, s.last_log_index);
    fill.style.width = Math.max(2, 100 * (1 - Math.min(m.lag, span) / span)) + "%";
    if (m.lag > 0) fill.className = "behind";
    bar.appendChild(fill);
    lag.appendChild(bar);
  }
  const seen = m.last_contact_ms;
  cell(tr, seen === null ? "\\u2014" : m.self ? "now" : seen + " ms", "num");
  return tr;
}

function spark(points) {
  // x: the node's clock over the last minute; y: commands applied per second.
  const svg = $("spark");
  svg.replaceChildren();
  if (points.length < 2) return;
  const now = points[points.length - 1].time;
  const top = Math.max(1, ...points.map((p) => p.per_second));
  const xy = points.map((p) => (300 - 5 * (now - p.time)).toFixed(1) + "," +
    (86 - 80 * p.per_second / top).toFixed(1));
  const ns = "http://www.w3.org/2000/svg";
  const area = document.createElementNS(ns, "polygon");
  area.setAttribute("points", xy[0].split(",")[0] + ",90 " + xy.join(" ") + " 300,90");
  area.setAttribute("fill", "#d1fae5");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", xy.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#059669");
  line.setAttribute("stroke-width", "2");
  svg.append(area, line);
}

function render(s) {
  document.title = "redraft " + s.node + " (" + s.role + ")";
  $("node").textContent = s.node;
  const role = $("role");
  role.textContent = s.role;
  role.className = "badge " + s.role;
  $("leader").textContent = s.leader || "none known";
  const alarm = $("alarm");
  if (s.disk_full) {
    const since = new Date(s.disk_full.since * 1000).toLocaleTimeString();
    alarm.textContent = "Disk full since " + since +
      ": this node takes no new log entries and refuses writes until space returns.";
    const why = document.createElement("span");
    why.className = "mono";
    why.textContent = s.disk_full.error;
    alarm.append(why);
    alarm.className = "on";
  } else {
    alarm.className = "";
  }
  $("term").textContent = num(s.term);
  $("commit").textContent = num(s.commit_index);
  $("applied").textContent = num(s.applied_index);
  $("snapshot").textContent = num(s.snapshot_index);
  $("total").textContent = num(s.commands_applied);
  $("version").textContent = s.version;
  $("members").replaceChildren(...s.members.map((m) => member(m, s)));
  $("note").textContent = s.role === "leader"
    ? "Lag: log entries each member is behind this leader's last index (" +
      num(s.last_log_index) + ")."
    : s.leader
      ? "This node follows " + s.leader + ": only the leader tracks every member's log. " +
        "Its own lag is how far it is behind the commit index the leader last sent."
      : "No leader is known to this node.";
  const tp = s.throughput;
  $("rate").textContent = tp.length
    ? Math.round(tp[tp.length - 1].per_second).toLocaleString("en-US") : "\u2014";
  $("peak").textContent = tp.length
    ? Math.round(Math.max(...tp.map((p) => p.per_second))).toLocaleString("en-US") : "\u2014";
  spark(tp);
  $("updated").textContent = new Date(s.time * 1000).toLocaleTimeString();
}

async function refresh() {
  const conn = $("conn");
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    conn.textContent = "live";
    conn.className = "live";
  } catch (e) {
    conn.textContent = "unreachable (" + e.message + ")";
    conn.className = "bad";
  } finally {
    setTimeout(refresh, 1000);
  }
}

refresh();
</script>
</body>
</html>
"""
"""The status page: rendered in the browser from ``status.json``, nothing loaded from elsewhere."""


__all__ = ["PAGE", "Monitor", "status"]
