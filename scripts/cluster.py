"""Start a local 3-node cluster of the Redis clone (the README's quick start).

Nodes listen on 127.0.0.1:7481-7483 with their data under .cluster/; the
first founds the cluster and the others join it.  Runs until Ctrl-C (or for
--duration seconds), then stops the nodes it started.  They run the
mypyc-compiled hot modules a regular install runs when ``make cluster``
has built them (build/compiled) from the sources as they are now, and the
checkout's pure modules otherwise (or with --pure).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from redraft.testing import CommandError, LocalCluster, NodeExited, stop_all, wait_for

ROOT = Path(__file__).resolve().parent.parent
COMPILED = ROOT / "build" / "compiled"
BUILT = COMPILED / ".built"
"""Written by ``make cluster`` once the twin is built."""


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=7481)
    ap.add_argument("--dir", default=str(ROOT / ".cluster"))
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--fresh", action="store_true", help="wipe the data dirs first")
    ap.add_argument("--pure", action="store_true", help="run the checkout's modules as they are")
    ap.add_argument("extra", nargs="*", help="flags passed to every node (after --)")
    return ap.parse_args()


def compiled_twin() -> Path | None:
    """The compiled twin's import root if it was built from the sources as they are now."""
    if not BUILT.is_file():
        return None
    built = BUILT.stat().st_mtime
    sources = (ROOT / "src" / "redraft").rglob("*.py")
    if any(p.stat().st_mtime > built for p in sources):
        return None  # a source changed since: the twin would run old code
    return COMPILED / "src"


def members(cluster: LocalCluster) -> int:
    """The leaders and followers the first node that answers RAFTPEERS counts."""
    for node in cluster.nodes:
        try:
            flat = node.call("RAFTPEERS")
        except (OSError, CommandError):  # down, or not a member yet: ask the next
            continue
        return sum(1 for s in flat[1::2] if s in (b"Leader", b"Follower"))
    return 0


def start(cluster: LocalCluster) -> bool:
    """Start every node (the first founds, the others join it); False if node 1 fails."""
    first, *others = cluster.nodes
    try:
        first.start()
    except (NodeExited, TimeoutError):
        print(f"node 1 did not start; see {first.log_path}", file=sys.stderr)
        return False
    for node in others:
        # Joining through the first is asked only of a node without a data dir.
        node.spawn(join=first.addr)
    return True


def announce(cluster: LocalCluster, up: bool) -> None:
    ports = [n.port for n in cluster.nodes]
    state = "up" if up else "starting"
    print(f"redraft clone cluster {state}: nodes on ports {', '.join(map(str, ports))}")
    print(f"  data and logs in {cluster.base}")
    print(
        f"  try: redis-cli -p {ports[0]} SET mykey 'my value' && redis-cli -p {ports[0]} GET mykey"
    )
    print("  a follower answers writes with -TRY <leader>: send them to the leader it names")
    print("  Ctrl-C stops the cluster")
    sys.stdout.flush()


def supervise(cluster: LocalCluster, duration: float) -> int:
    """Run until a signal, ``duration`` seconds, or a node's exit (then 1)."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = time.monotonic() + duration if duration > 0 else None
    while not stop and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.2)
        if stop:
            break  # Ctrl-C reaches the nodes too: their exit is not a failure
        dead = [n for n in cluster.nodes if not n.running]
        if dead:
            print(f"node {dead[0].index} exited; see its log in {cluster.base}", file=sys.stderr)
            return 1
    return 0


def main() -> int:
    ns = parse_args()
    base = Path(ns.dir)
    if ns.fresh and base.exists():
        import shutil

        shutil.rmtree(base)
    ports = [ns.base_port + i for i in range(ns.nodes)]
    twin = None if ns.pure else compiled_twin()
    env = None if twin is None else dict(os.environ, PYTHONPATH=str(twin))
    cluster = LocalCluster(base, ns.nodes, ns.extra, ports=ports, cwd=ROOT, env=env)
    print(
        "nodes run the mypyc-compiled modules (build/compiled)"
        if twin
        else "nodes run the checkout's pure modules (make cluster builds the compiled ones)"
    )
    if not start(cluster):
        stop_all(cluster.nodes)
        return 1
    try:
        try:
            wait_for(lambda: members(cluster) >= ns.nodes, 30, "every node to join")
            up = True
        except TimeoutError:
            up = False
        announce(cluster, up)
        code = supervise(cluster, ns.duration)
    finally:
        stop_all(cluster.nodes)
    print("cluster stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
