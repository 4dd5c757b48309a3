"""The command-line flags every redraft application gets (Finn's, with one or two dashes)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from redraft.machine import Machine
from redraft.node import open as open_node
from redraft.options import LOG_FORMATS, LOG_LEVELS, REDIRECTS, Level, Options
from redraft.security import ENV_AUTH, ENV_PEER_SECRET, SecurityError, read_secret
from redraft.storage import BACKENDS
from redraft.storage.base import StorageError

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 1 << 10, "m": 10**6, "mb": 1 << 20}
_UNITS |= {"g": 10**9, "gb": 1 << 30}


def parse_size(text: str) -> int:
    """A byte count in Redis's notation: ``1024``, ``64kb`` (KiB), ``1mb``, ``2gb``, ``1m`` (10**6)."""
    t = text.strip().lower()
    digits = t.rstrip("kmgb")
    unit = t[len(digits) :]
    if not digits.isdigit() or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: e.g. 1048576, 1mb or 512kb")
    return int(digits) * _UNITS[unit]


def build_parser(
    prog: str | None = None, description: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser with the shared flags; add your own before parsing."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    _add_address_flags(p)
    _add_tuning_flags(p)
    p.add_argument(
        "--peer-route",
        "-peer-route",
        action="append",
        default=[],
        metavar="ID=HOST:PORT",
        help="dial HOST:PORT to reach peer ID (repeatable; e.g. through a proxy)",
    )
    _add_security_flags(p.add_argument_group("security"))
    _add_limit_flags(p.add_argument_group("limits"))
    _add_operation_flags(p.add_argument_group("operations"))
    return p


def _add_address_flags(p: argparse.ArgumentParser) -> None:
    """Where the node listens, keeps its data and finds its cluster."""
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
    p.add_argument(
        "--join",
        "-join",
        default="",
        help="address of a cluster member to join; several, comma-separated, are asked in turn",
    )


def _add_tuning_flags(p: argparse.ArgumentParser) -> None:
    """Durability, consistency, storage, logging and snapshots."""
    p.add_argument(
        "--durability", "-durability", default="medium", choices=("low", "medium", "high"), type=str.lower,
        help="write durability (default medium)",
    )  # fmt: skip
    p.add_argument(
        "--consistency", "-consistency", default="medium", choices=("low", "medium", "high"), type=str.lower,
        help="read consistency (default medium)",
    )  # fmt: skip
    p.add_argument(
        "--redirect", "-redirect", default="try", choices=REDIRECTS, type=str.lower,
        help="what a node that may not serve a request does: try (answer -TRY host:port, "
        "the default), moved (-MOVED slot host:port, as a one-shard Redis Cluster) or proxy "
        "(forward it to the leader and relay the reply)",
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
        "--log-format",
        "-log-format",
        default="text",
        choices=LOG_FORMATS,
        type=str.lower,
        help="log lines as text (the default) or json: one object a line",
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
        "--snapshot-bytes",
        "-snapshot-bytes",
        type=parse_size,
        default=Options.snapshot_bytes,
        metavar="SIZE",
        help="...or after this much log data (default 64mb)",
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
        "--compaction-tail-bytes",
        "-compaction-tail-bytes",
        type=parse_size,
        default=Options.compaction_tail_bytes,
        metavar="SIZE",
        help="...but no more than this much log data (default 64mb)",
    )
    p.add_argument(
        "--tick-interval",
        "-tick-interval",
        type=int,
        default=Options.tick_interval_ms,
        metavar="MS",
        help="the leader logs a tick every MS milliseconds for a machine that defines tick() "
        f"(default {Options.tick_interval_ms}; 0: never)",
    )
    p.add_argument(
        "--spin-us",
        "-spin-us",
        type=int,
        default=Options.spin_us,
        metavar="US",
        help="after logging entries keep polling US microseconds for the next message "
        f"instead of sleeping, while the CPU is not contended (default {Options.spin_us}; 0: never)",
    )
    p.add_argument(
        "--snapshot-chunk-bytes",
        "-snapshot-chunk-bytes",
        type=int,
        default=Options.snapshot_chunk_bytes,
        metavar="N",
        help="stream snapshots to followers in pieces of N bytes",
    )


def _add_security_flags(sec: argparse._ArgumentGroup) -> None:
    """Client passwords, peer secrets and TLS."""
    sec.add_argument(
        "--auth", "-auth", default="", metavar="PASSWORD",
        help=f"password clients must AUTH with (shows in ps: prefer --auth-file or ${ENV_AUTH})",
    )  # fmt: skip
    sec.add_argument(
        "--auth-file", "-auth-file", default="", metavar="PATH",
        help="read the password from the first line of PATH",
    )  # fmt: skip
    sec.add_argument(
        "--peer-secret", "-peer-secret", default="", metavar="SECRET",
        help=f"secret peers must prove they know (default: the password; or ${ENV_PEER_SECRET})",
    )  # fmt: skip
    sec.add_argument(
        "--peer-secret-file", "-peer-secret-file", default="", metavar="PATH",
        help="read the peer secret from the first line of PATH",
    )  # fmt: skip
    sec.add_argument(
        "--tls-cert", "-tls-cert", default="", metavar="PEM",
        help="certificate (chain) of this node: TLS for clients and peers on the one port",
    )  # fmt: skip
    sec.add_argument(
        "--tls-key", "-tls-key", default="", metavar="PEM",
        help="private key of --tls-cert (default: in the --tls-cert file)",
    )  # fmt: skip
    sec.add_argument(
        "--tls-ca", "-tls-ca", default="", metavar="PEM",
        help="CA bundle that peers' (and clients') certificates are checked against",
    )  # fmt: skip
    sec.add_argument(
        "--tls-client-auth", "-tls-client-auth", action="store_true",
        help="require clients and peers to present a certificate signed by --tls-ca",
    )  # fmt: skip


def _add_limit_flags(lim: argparse._ArgumentGroup) -> None:
    """Bounds on connections, buffers and message sizes."""
    lim.add_argument(
        "--maxclients", "-maxclients", type=int, default=Options.max_clients, metavar="N",
        help=f"connections (clients and peers) at most (default {Options.max_clients})",
    )  # fmt: skip
    lim.add_argument(
        "--timeout", "-timeout", type=float, default=0.0, metavar="SECONDS",
        help="close clients idle for SECONDS (default 0: never; peer links are exempt)",
    )  # fmt: skip
    lim.add_argument(
        "--client-query-buffer-limit", "-client-query-buffer-limit", type=parse_size,
        default=Options.max_query_buffer, metavar="SIZE",
        help="disconnect a client holding more unparsed input than SIZE (default 1gb)",
    )  # fmt: skip
    lim.add_argument(
        "--client-output-buffer-limit", "-client-output-buffer-limit", type=parse_size,
        default=Options.max_output_buffer, metavar="SIZE",
        help="disconnect a client that leaves more than SIZE of replies unread (default 256mb)",
    )  # fmt: skip
    lim.add_argument(
        "--proto-max-bulk-len", "-proto-max-bulk-len", type=parse_size,
        default=Options.max_bulk_len, metavar="SIZE",
        help="longest bulk string a request may carry (default 512mb)",
    )  # fmt: skip
    lim.add_argument(
        "--max-peer-message", "-max-peer-message", type=parse_size,
        default=Options.max_peer_message, metavar="SIZE",
        help="drop peer message batches (snapshot chunks included) above SIZE (default 1gb)",
    )  # fmt: skip


def _add_operation_flags(ops: argparse._ArgumentGroup) -> None:
    """Read replicas, restoring a backup, recovering from a lost majority, metrics."""
    ops.add_argument(
        "--metrics-port", "-metrics-port", type=int, default=0, metavar="PORT",
        help="serve Prometheus metrics at /metrics and a status page at / over HTTP "
        "on PORT of the bind address (default 0: off)",
    )  # fmt: skip
    ops.add_argument(
        "--join-as-learner", "-join-as-learner", action="store_true",
        help="with --join: join as a permanent learner (a read replica: never votes)",
    )  # fmt: skip
    ops.add_argument(
        "--restore", "-restore", default="", metavar="FILE",
        help="start a new single-node cluster whose state is the backup FILE "
        "(python -m redraft backup); refused unless the data dir is empty",
    )  # fmt: skip
    ops.add_argument(
        "--force-new-cluster", "-force-new-cluster", action="store_true",
        help="recovery from a lost majority: start from this data dir as the only voter "
        "of a new configuration, keeping every entry it has (see the README first)",
    )  # fmt: skip


def _routes(items: list[str]) -> dict[str, str]:
    routes: dict[str, str] = {}
    for item in items:
        peer, sep, addr = item.partition("=")
        if not sep or not peer or not addr:
            raise SystemExit(f"invalid --peer-route {item!r}: expected ID=HOST:PORT")
        routes[peer] = addr
    return routes


def options_from_args(ns: argparse.Namespace) -> Options:
    """The Options the shared flags describe (secrets also from files and the environment)."""
    return Options(
        consistency=Level.parse(ns.consistency),
        durability=Level.parse(ns.durability),
        backend=ns.backend,
        log_level=ns.loglevel,
        log_format=ns.log_format,
        metrics_port=ns.metrics_port,
        redirect=ns.redirect,
        advertise=ns.advertise,
        peer_routes=_routes(ns.peer_route),
        snapshot_entries=ns.snapshot_entries,
        snapshot_bytes=ns.snapshot_bytes,
        snapshot_chunk_bytes=ns.snapshot_chunk_bytes,
        compaction_tail=ns.compaction_tail,
        compaction_tail_bytes=ns.compaction_tail_bytes,
        tick_interval_ms=ns.tick_interval,
        spin_us=ns.spin_us,
        auth=read_secret(ns.auth, ns.auth_file, ENV_AUTH),
        peer_secret=read_secret(ns.peer_secret, ns.peer_secret_file, ENV_PEER_SECRET),
        tls_cert=ns.tls_cert,
        tls_key=ns.tls_key,
        tls_ca=ns.tls_ca,
        tls_client_auth=ns.tls_client_auth,
        max_clients=ns.maxclients,
        idle_timeout=ns.timeout,
        max_query_buffer=ns.client_query_buffer_limit,
        max_output_buffer=ns.client_output_buffer_limit,
        max_bulk_len=ns.proto_max_bulk_len,
        max_peer_message=ns.max_peer_message,
        join_as_learner=ns.join_as_learner,
        restore=ns.restore,
        force_new_cluster=ns.force_new_cluster,
    )


def main(
    machine_factory: Callable[[], Machine],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
    description: str | None = None,
) -> None:
    """Parse the shared flags and serve ``machine_factory()`` until stopped."""
    parser = build_parser(prog, description)
    ns = parser.parse_args(argv)
    try:
        options = options_from_args(ns)
    except ValueError as exc:  # SecurityError included: an unreadable secret file
        parser.error(str(exc))
    bind = ns.bind
    if ":" in bind and not bind.startswith("["):
        bind = f"[{bind}]"
    try:
        node = open_node(
            ns.dir, f"{bind}:{ns.port}", ns.join, machine=machine_factory(), options=options
        )
    except ValueError as exc:  # a malformed --join address
        parser.error(str(exc))
    try:
        node.run()
    except KeyboardInterrupt:
        pass
    except (StorageError, SecurityError, RuntimeError, OSError) as exc:
        # Problems an operator must fix (a data dir written by another
        # backend, a corrupt log, a port in use, a disk that failed an
        # fsync): one clear line, exit 1.
        how = "stopped" if node.started_serving else "cannot start"
        print(f"{prog or 'redraft'}: {how}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
