"""Print Redis 7's COMMAND entries (name arity flags first last step) for the names given.

The clone's command table (``src/redraft/examples/clone/commands.py``) and the
built-ins' (``src/redraft/builtins/keyspecs.py``) are facts about Redis: this
asks a real redis-server for them rather than copying them by hand.

    .venv/bin/python scripts/gen_command_table.py get set hset ...   # a redis-server it starts
    .venv/bin/python scripts/gen_command_table.py --port 6379 get     # a running one

Flags are joined with commas; a command Redis does not know is reported on
stderr and left out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence

import redis

from redraft.testing import free_ports, wait_for


def entries(port: int, names: Sequence[str]) -> list[str]:
    conn = redis.Connection(port=port)  # raw replies: redis-py's callbacks reshape COMMAND's
    lines = []
    for name in names:
        conn.send_command("COMMAND", "INFO", name)
        info = conn.read_response()[0]
        if info is None:
            print(f"unknown to redis-server: {name}", file=sys.stderr)
            continue
        cmd, arity, flags, first, last, step = info[:6]
        flag_text = ",".join(f.decode() if isinstance(f, bytes) else str(f) for f in flags) or "-"
        lines.append(f"{cmd.decode()} {arity} {flag_text} {first} {last} {step}")
    conn.disconnect()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, help="a running redis-server (else one is started)")
    ap.add_argument("names", nargs="+")
    args = ap.parse_args(argv)
    names = [n.lower() for n in args.names]
    if args.port:
        print("\n".join(entries(args.port, names)))
        return 0
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as d:
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        proc = subprocess.Popen([*cmd, "--dir", d], stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: redis.Redis(port=port).ping(), 10, "redis-server")
            print("\n".join(entries(port, names)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
