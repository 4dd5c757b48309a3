"""``python -m tests.jepsen``: run the fault suite for longer, larger, or with other settings.

Examples::

    python -m tests.jepsen --nemesis all --time 60
    python -m tests.jepsen --nemesis partition-leader --nodes 5 --time 300 --seed 42
    python -m tests.jepsen --nemesis pause --consistency medium --durability medium
    python -m tests.jepsen --nemesis disk --time 30    # as root: fills tmpfs volumes

Each run prints a report (seed, counts, the nemesis schedule, and on failure
the smallest failing key history and the node log tails); the directory of a
failed run (or of any run, with ``--keep``) holds the full history, schedule
and node logs.  The exit status is 1 if any run failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests import tmpfs

from .nemesis import NEMESES, Membership
from .runner import RunConfig, run


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the requested nemeses one after another, print their reports."""
    p = argparse.ArgumentParser(prog="python -m tests.jepsen", description=__doc__.split("\n")[0])
    p.add_argument(
        "--nemesis",
        default="mixed",
        help=f"one of {', '.join(NEMESES)}, a comma-separated list, or 'all'",
    )
    p.add_argument("--time", type=float, default=30.0, help="seconds of faults per nemesis")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    p.add_argument("--consistency", default="high", choices=("low", "medium", "high"))
    p.add_argument("--durability", default="high", choices=("low", "medium", "high"))
    p.add_argument("--clients", type=int, default=15)
    p.add_argument("--keys", type=int, default=8, help="register keys (plus one counter)")
    p.add_argument("--timeout", type=float, default=1.0, help="client timeout in seconds")
    p.add_argument("--think", type=float, default=0.0, help="max seconds between a client's ops")
    p.add_argument(
        "--keep-dir",
        action="store_true",
        help="membership nemesis: re-add a removed node with its old data dir instead of empty",
    )
    p.add_argument(
        "--membership-variant",
        action="append",
        default=[],
        choices=list(Membership.VARIANTS),
        help="only this way of staging removals (repeatable; default: all of them)",
    )
    p.add_argument("--dir", type=Path, default=None, help="base directory (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the run directory even on success")
    p.add_argument("--repeat", type=int, default=1, help="run each nemesis this many times")
    p.add_argument(
        "--flag",
        action="append",
        default=[],
        help="extra flag passed to every node (repeatable, e.g. --flag=--backend=lmdb)",
    )
    p.add_argument(
        "--exact-clients",
        type=int,
        default=2,
        help="threads incrementing counters through redraft.client (checked exactly)",
    )
    p.add_argument(
        "--bank-clients",
        type=int,
        default=2,
        help="threads moving money between accounts with MULTI/EXEC (total checked)",
    )
    p.add_argument(
        "--types-clients",
        type=int,
        default=2,
        help="threads working on lists, hashes and sorted sets (their invariants checked)",
    )
    p.add_argument(
        "--volume-size",
        type=int,
        default=64,
        help="MiB of the tmpfs each node's data dir is on, for the disk nemesis "
        "(and mixed, as root)",
    )
    p.add_argument(
        "--no-sessions",
        action="store_true",
        help="those clients retry without client sessions (shows the double applies)",
    )
    ns = p.parse_args(argv)
    names = list(NEMESES) if ns.nemesis == "all" else ns.nemesis.split(",")
    for name in names:
        if name not in NEMESES:
            p.error(f"unknown nemesis {name!r}")
    if ns.nemesis == "all" and (reason := tmpfs.unavailable()) is not None:
        names.remove("disk")
        print(f"skipping the disk nemesis: {reason}", file=sys.stderr)
    failed = 0
    total_ops = 0
    total_faults = 0
    for round_ in range(ns.repeat):
        for name in names:
            base = None
            if ns.dir is not None:
                base = ns.dir / f"{name}-{round_}"
            result = run(
                RunConfig(
                    nemesis=name,
                    time=ns.time,
                    nodes=ns.nodes,
                    seed=ns.seed,
                    consistency=ns.consistency,
                    durability=ns.durability,
                    clients=ns.clients,
                    keys=ns.keys,
                    timeout=ns.timeout,
                    think=ns.think,
                    base=base,
                    keep=ns.keep,
                    membership_wipe=not ns.keep_dir,
                    membership_variants=tuple(ns.membership_variant),
                    extra_flags=ns.flag,
                    exact_clients=ns.exact_clients,
                    bank_clients=ns.bank_clients,
                    types_clients=ns.types_clients,
                    exactly_once=not ns.no_sessions,
                    volume_size=ns.volume_size << 20,
                )
            )
            print(result.report, flush=True)
            print(flush=True)
            total_ops += result.ops
            total_faults += result.faults
            failed += not result.ok
    runs = ns.repeat * len(names)
    print(f"{runs - failed}/{runs} runs passed; {total_ops} ops, {total_faults} faults in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
