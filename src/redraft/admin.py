"""``python -m redraft`` (and the ``redraft`` script): a cluster's operator at the command line.

Speaks RESP to any node with redis-py, follows ``-TRY``/``-MOVED`` to the
leader for what only the leader does, and takes the nodes' ``--auth`` and
TLS options::

    python -m redraft status 127.0.0.1:7481            # the members as a table
    python -m redraft backup 127.0.0.1:7481 app.rsnap  # an online backup, checked and renamed into place
    python -m redraft transfer 127.0.0.1:7481 [TO]     # hand leadership over
    python -m redraft add 127.0.0.1:7481 MEMBER        # RAFTADDPEER (a voter, once caught up)
    python -m redraft add-learner 127.0.0.1:7481 MEMBER  # a read replica
    python -m redraft remove 127.0.0.1:7481 MEMBER     # RAFTREMOVEPEER
    python -m redraft snapshot 127.0.0.1:7481          # RAFTSNAPSHOT on that node
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from redraft.addr import split_hostport
from redraft.security import ENV_AUTH, read_secret
from redraft.storage.snapshots import verify_file

CHUNK = 1 << 20
"""Bytes asked for per RAFTBACKUP READ."""


class Admin:
    """Connections to a cluster's nodes, made alike (password, TLS), following redirects."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.password = read_secret(ns.auth, ns.auth_file, ENV_AUTH) or None
        self.tls: dict[str, Any] = {}
        if ns.tls or ns.tls_ca or ns.tls_cert:
            self.tls = {"ssl": True, "ssl_ca_certs": ns.tls_ca or None}
            if ns.tls_cert:
                self.tls |= {"ssl_certfile": ns.tls_cert, "ssl_keyfile": ns.tls_key or None}
        self.timeout = ns.timeout

    def node(self, addr: str) -> redis.Redis:
        host, port = split_hostport(addr)
        return redis.Redis(
            host=host or "127.0.0.1",
            port=port,
            password=self.password,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            **self.tls,
        )

    def call(self, addr: str, *args: str | bytes) -> Any:
        """One command at ``addr``."""
        with self.node(addr) as r:
            return r.execute_command(*args)

    def at_leader(self, addr: str, *args: str | bytes) -> Any:
        """One command at the leader, found from ``addr`` by following redirects."""
        for _ in range(5):
            try:
                return self.call(addr, *args)
            except redis.ResponseError as exc:
                leader = _redirect(str(exc))
                if leader is None:
                    raise
                addr = leader
        raise SystemExit("too many redirects: no stable leader")


def _redirect(text: str) -> str | None:
    words = text.split()
    if len(words) == 2 and words[0] == "TRY":
        return words[1]
    if len(words) == 3 and words[0] == "MOVED":
        return words[2]
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Any) -> dict[str, str]:
    """A flat key/value array (or a dict) as text."""
    if isinstance(flat, dict):
        return {_text(k): _text(v) for k, v in flat.items()}
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


def status(admin: Admin, ns: argparse.Namespace) -> int:
    """The members as a table: role, state, term, commit and applied index, lag, last contact."""
    leader = _text(admin.call(ns.addr, "RAFTLEADER") or b"")
    source = leader or ns.addr
    peers = [_pairs(p) for p in admin.call(source, "RAFTPEERS", "VERBOSE")]
    rows = [["member", "role", "state", "term", "commit", "applied", "lag", "last contact"]]
    leader_last = 0
    stats: dict[str, dict[str, str] | None] = {}
    for peer in peers:
        try:
            stats[peer["address"]] = _pairs(admin.call(peer["address"], "RAFTSTATS"))
        except (redis.RedisError, OSError):
            stats[peer["address"]] = None
    if leader and stats.get(leader):
        leader_last = int(stats[leader]["last_log_index"])  # type: ignore[index]
    for peer in peers:
        st = stats[peer["address"]]
        role = peer["role"] + (" (joining)" if peer.get("promoting") == "1" else "")
        if st is None:
            rows.append([peer["address"], role, "unreachable", "-", "-", "-", "-", "-"])
            continue
        applied = int(st["applied_index"])
        lag = str(max(0, leader_last - applied)) if leader_last else "-"
        contact = peer.get("last_contact_ms")
        rows.append([
            peer["address"], role, st["state"], st["term"], st["commit_index"], str(applied),
            lag, f"{contact} ms" if contact is not None else st["last_contact"],
        ])  # fmt: skip
    print(f"leader: {leader or 'none known'}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def backup(admin: Admin, ns: argparse.Namespace) -> int:
    """Stream a fresh snapshot of ``addr``'s applied state to ``file``, checked, written atomically."""
    target = Path(ns.file)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with admin.node(ns.addr) as r:
        index, _, size = r.execute_command("RAFTBACKUP")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                offset = 0
                while offset < size:
                    data = r.execute_command("RAFTBACKUP", "READ", index, offset, CHUNK)
                    if not data:
                        raise SystemExit(f"the node stopped sending at byte {offset} of {size}")
                    out.write(data)
                    digest.update(data)
                    offset += len(data)
                out.flush()
                os.fsync(out.fileno())
            meta = verify_file(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
            r.execute_command("RAFTBACKUP", "END", index)
    _fsync_dir(target.parent)
    print(f"backup of {ns.addr}: index {meta.index}, term {meta.term}, {size} bytes")
    print(f"sha256 {digest.hexdigest()}  {target}")
    return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _simple(*command: str, leader: bool = True) -> Callable[[Admin, argparse.Namespace], int]:
    def run(admin: Admin, ns: argparse.Namespace) -> int:
        args = [*command, *([ns.member] if getattr(ns, "member", None) else [])]
        reply = admin.at_leader(ns.addr, *args) if leader else admin.call(ns.addr, *args)
        print(_text(reply))
        return 0

    return run


COMMANDS: dict[str, tuple[Callable[[Admin, argparse.Namespace], int], str, str | None]] = {
    "status": (status, "the cluster as a table", None),
    "backup": (backup, "an online backup of ADDR's applied state to FILE", "file"),
    "transfer": (_simple("RAFTTRANSFERLEADER"), "hand leadership to MEMBER (default: the most caught-up)", "member?"),
    "add": (_simple("RAFTADDPEER"), "add MEMBER as a voter (a learner until caught up)", "member"),
    "add-learner": (_simple("RAFTADDLEARNER"), "add MEMBER as a permanent learner (a read replica)", "member"),
    "remove": (_simple("RAFTREMOVEPEER"), "remove MEMBER", "member"),
    "snapshot": (_simple("RAFTSNAPSHOT", leader=False), "take a snapshot on ADDR now", None),
}  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redraft", description=__doc__.split("\n")[0])
    p.add_argument("--auth", default="", help=f"the nodes' password (or ${ENV_AUTH})")
    p.add_argument("--auth-file", default="", help="read the password from this file")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--tls-ca", default="", help="CA bundle to check the nodes against")
    p.add_argument("--tls-cert", default="", help="client certificate (--tls-client-auth)")
    p.add_argument("--tls-key", default="", help="its key")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_text, extra) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("addr", help="a node, host:port")
        if extra == "file":
            cmd.add_argument("file")
        elif extra == "member":
            cmd.add_argument("member")
        elif extra == "member?":
            cmd.add_argument("member", nargs="?")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one admin command; 0 on success, 1 with the error on stderr."""
    ns = parser().parse_args(argv)
    run = COMMANDS[ns.command][0]
    try:
        return run(Admin(ns), ns)
    except (redis.RedisError, OSError, ValueError) as exc:
        print(f"redraft {ns.command}: {exc}", file=sys.stderr)
        return 1


__all__ = ["main"]
