"""Start a local 3-node cluster of the Redis clone (the README's quick start).

Nodes listen on 127.0.0.1:7481-7483 with their data under .cluster/; the
first founds the cluster and the others join it.  Runs until Ctrl-C (or for
--duration seconds), then stops the nodes it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ask(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command with the stdlib only and return the raw reply."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        time.sleep(0.05)
        return s.recv(65536)


def wait_for(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=7481)
    ap.add_argument("--dir", default=str(ROOT / ".cluster"))
    ap.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    ap.add_argument("--fresh", action="store_true", help="wipe the data dirs first")
    ap.add_argument("extra", nargs="*", help="flags passed to every node (after --)")
    ns = ap.parse_args()

    base = Path(ns.dir)
    if ns.fresh and base.exists():
        import shutil

        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    ports = [ns.base_port + i for i in range(ns.nodes)]
    for i, port in enumerate(ports):
        cmd = [
            sys.executable, "-m", "redraft.examples.clone",
            "-p", str(port), "--dir", str(base / f"node{i + 1}"), *ns.extra,
        ]  # fmt: skip
        if i > 0:
            cmd += ["--join", f"127.0.0.1:{ports[0]}"]
        logf = open(base / f"node{i + 1}.log", "ab")  # noqa: SIM115 - lives as long as the node
        procs.append(subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT))
        if i == 0 and not wait_for(lambda: ask(ports[0], "PING").startswith(b"+PONG"), 15):
            print(f"node 1 did not start; see {base / 'node1.log'}", file=sys.stderr)
            for p in procs:
                p.terminate()
            return 1

    def members() -> int:
        for port in ports:
            reply = ask(port, "RAFTPEERS")
            if reply.startswith(b"*"):
                return reply.count(b"Leader") + reply.count(b"Follower")
        return 0

    ok = wait_for(lambda: members() >= ns.nodes, 30)
    print(
        f"redraft clone cluster {'up' if ok else 'starting'}: nodes on ports {', '.join(map(str, ports))}"
    )
    print(f"  data and logs in {base}")
    print(
        f"  try: redis-cli -p {ports[0]} SET mykey 'my value' && redis-cli -p {ports[0]} GET mykey"
    )
    print("  a follower answers writes with -TRY <leader>: send them to the leader it names")
    print("  Ctrl-C stops the cluster")
    sys.stdout.flush()

    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = time.monotonic() + ns.duration if ns.duration > 0 else None
    code = 0
    while not stop and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.2)
        if stop:
            break  # Ctrl-C reaches the nodes too: their exit is not a failure
        dead = [i for i, p in enumerate(procs) if p.poll() is not None]
        if dead:
            print(f"node {dead[0] + 1} exited; see its log in {base}", file=sys.stderr)
            code = 1
            break
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
    print("cluster stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
