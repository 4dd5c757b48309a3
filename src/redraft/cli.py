"""The command-line flags every redraft application gets (Finn's, with one or two dashes)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from redraft.machine import Machine
from redraft.node import open as open_node
from redraft.options import LOG_LEVELS, Level, Options
from redraft.storage.base import StorageError

BACKENDS = ("fastlog", "lmdb", "leveldb", "memory")


def build_parser(
    prog: str | None = None, description: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser with the shared flags; add your own before parsing."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "-p",
        "--port",
        "-port",
        type=int,
        default=7481,
        help="port for clients and peers (default 7481)",
    )
    p.add_argument(
        "--bind", "-bind", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    p.add_argument(
        "--advertise",
        "-advertise",
        default="",
        help="host:port peers and redirected clients dial (default: bind address)",
    )
    p.add_argument("--dir", "-dir", default="data", help="data directory (default data)")
    p.add_argument("--join", "-join", default="", help="address of a cluster member to join")
    p.add_argument(
        "--durability", "-durability", default="medium", choices=("low", "medium", "high"), type=str.lower,
        help="write durability (default medium)",
    )  # fmt: skip
    p.add_argument(
        "--consistency", "-consistency", default="medium", choices=("low", "medium", "high"), type=str.lower,
        help="read consistency (default medium)",
    )  # fmt: skip
    p.add_argument(
        "--backend",
        "-backend",
        default="fastlog",
        choices=BACKENDS,
        help="log store (default fastlog)",
    )
    p.add_argument(
        "--loglevel",
        "-loglevel",
        default="notice",
        choices=LOG_LEVELS,
        help="log level (default notice)",
    )
    p.add_argument(
        "--snapshot-entries",
        "-snapshot-entries",
        type=int,
        default=Options.snapshot_entries,
        metavar="N",
        help=f"snapshot after N log entries (default {Options.snapshot_entries})",
    )
    p.add_argument(
        "--compaction-tail",
        "-compaction-tail",
        type=int,
        default=Options.compaction_tail,
        metavar="N",
        help=f"log entries kept behind a snapshot for lagging followers (default {Options.compaction_tail})",
    )
    p.add_argument(
        "--snapshot-chunk-bytes",
        "-snapshot-chunk-bytes",
        type=int,
        default=Options.snapshot_chunk_bytes,
        metavar="N",
        help="stream snapshots to followers in pieces of N bytes",
    )
    p.add_argument(
        "--peer-route",
        "-peer-route",
        action="append",
        default=[],
        metavar="ID=HOST:PORT",
        help="dial HOST:PORT to reach peer ID (repeatable; e.g. through a proxy)",
    )
    return p


def _routes(items: list[str]) -> dict[str, str]:
    routes: dict[str, str] = {}
    for item in items:
        peer, sep, addr = item.partition("=")
        if not sep or not peer or not addr:
            raise SystemExit(f"invalid --peer-route {item!r}: expected ID=HOST:PORT")
        routes[peer] = addr
    return routes


def options_from_args(ns: argparse.Namespace) -> Options:
    return Options(
        consistency=Level.parse(ns.consistency),
        durability=Level.parse(ns.durability),
        backend=ns.backend,
        log_level=ns.loglevel,
        advertise=ns.advertise,
        peer_routes=_routes(ns.peer_route),
        snapshot_entries=ns.snapshot_entries,
        snapshot_chunk_bytes=ns.snapshot_chunk_bytes,
        compaction_tail=ns.compaction_tail,
    )


def main(
    machine_factory: Callable[[], Machine],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
    description: str | None = None,
) -> None:
    """Parse the shared flags and serve ``machine_factory()`` until stopped."""
    ns = build_parser(prog, description).parse_args(argv)
    bind = ns.bind
    if ":" in bind and not bind.startswith("["):
        bind = f"[{bind}]"
    node = open_node(ns.dir, f"{bind}:{ns.port}", ns.join, machine_factory(), options_from_args(ns))
    try:
        node.run()
    except KeyboardInterrupt:
        pass
    except (StorageError, RuntimeError, OSError) as exc:
        # Problems an operator must fix (a data dir written by another
        # backend, a corrupt log, a port in use): one clear line, exit 1.
        print(f"{prog or 'redraft'}: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
