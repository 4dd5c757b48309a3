"""Throughput of the log storage backends.

For every backend, batch size (entries per save) and sync setting, saves
batches for a fixed time and prints saves/s, entries/s and fsyncs per save.
Each batch carries a hard state (as a leader's batches do: the commit index
moves), and the log is compacted as a node that snapshots would compact it,
so long runs stay bounded in memory and fastlog's rewrites are exercised.

Every fastlog cell is followed by the same cell with no zeros grown ahead
of the records (``fastlog.PREALLOCATE = 0``: each record grows the file, as
before that change), labelled ``fastlog-grow``: the reference for what the
zeros ahead buy an fsync.  ``cpu us/save`` is this process's CPU time for
the whole loop (building the entries included); the file system's journal
work is done by kernel threads and not counted in it.

    .venv/bin/python bench/bench_storage.py [--seconds 1.5] [--size 100] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from redraft.raft.types import Entry, HardState
from redraft.storage import BACKENDS, fastlog, open_store

BATCHES = (1, 16, 256)
COMPACT_EVERY = 50_000
KEEP_AFTER_COMPACT = 10_000


def run_cell(
    backend: str, root: Path, batch: int, sync: bool, seconds: float, size: int
) -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(prefix=f"{backend}-", dir=root))
    store = open_store(backend.removesuffix("-grow"), directory / "log")
    data = os.urandom(size)
    index = 1
    saves = 0
    busy = 0.0
    cpu = time.process_time()
    fsyncs_before = store.fsyncs
    compacted = 0
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            entries = [Entry(1, i, 0, data) for i in range(index, index + batch)]
            hs = HardState(1, "127.0.0.1:7481", index - 1)
            t0 = time.perf_counter()
            store.save(hs, entries, sync)
            busy += time.perf_counter() - t0
            index += batch
            saves += 1
            if index - 1 - compacted >= COMPACT_EVERY:
                compacted = index - 1 - KEEP_AFTER_COMPACT
                t0 = time.perf_counter()
                store.compact(compacted, 1)
                busy += time.perf_counter() - t0
        fsyncs = store.fsyncs - fsyncs_before
        cpu = time.process_time() - cpu
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
    entries_total = saves * batch
    return {
        "backend": backend,
        "batch": batch,
        "sync": sync,
        "saves": saves,
        "saves_per_s": saves / busy,
        "entries_per_s": entries_total / busy,
        "mb_per_s": entries_total * size / busy / 1e6,
        "us_per_save": busy / saves * 1e6,
        "cpu_us_per_save": cpu / saves * 1e6,
        "fsyncs_per_save": fsyncs / saves,
    }


def cell(
    label: str, root: Path, batch: int, sync: bool, seconds: float, size: int
) -> dict[str, object]:
    """One cell; ``fastlog-grow`` is fastlog with no zeros ahead of its records."""
    zeros = fastlog.PREALLOCATE
    if label == "fastlog-grow":
        fastlog.PREALLOCATE = 0
    try:
        return run_cell(label, root, batch, sync, seconds, size)
    finally:
        fastlog.PREALLOCATE = zeros


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=1.5, help="time per cell (default 1.5)")
    ap.add_argument("--size", type=int, default=100, help="bytes of data per entry (default 100)")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends")
    ap.add_argument(
        "--dir", type=Path, default=None, help="where to put the data (default: system temp)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="redraft-bench-", dir=args.dir))
    print(f"python {platform.python_version()} on {platform.platform()}; data in {root}")
    print(
        f"entry size {args.size} B; {args.seconds} s per cell; time counted inside save/compact only"
    )
    header = (
        f"{'backend':<12} {'batch':>5} {'sync':>5} {'saves/s':>10} {'entries/s':>11} "
        f"{'MB/s':>7} {'us/save':>9} {'cpu us/save':>11} {'fsync/save':>10}"
    )
    print(header)
    print("-" * len(header))
    results = []
    try:
        for backend in args.backends.split(","):
            for sync in (False, True):
                for batch in BATCHES:
                    for label in [backend, "fastlog-grow"] if backend == "fastlog" else [backend]:
                        r = cell(label, root, batch, sync, args.seconds, args.size)
                        results.append(r)
                        print(
                            f"{label:<12} {batch:>5} {sync!s:>5} {r['saves_per_s']:>10,.0f} "
                            f"{r['entries_per_s']:>11,.0f} {r['mb_per_s']:>7.1f} "
                            f"{r['us_per_save']:>9.1f} {r['cpu_us_per_save']:>11.1f} "
                            f"{r['fsyncs_per_save']:>10.2f}",
                            flush=True,
                        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
