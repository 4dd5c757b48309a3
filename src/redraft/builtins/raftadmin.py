"""The RAFT* administration commands: who leads, the members, changing them, snapshots."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redraft.addr import peer_address
from redraft.builtins.context import Cluster, arity, text
from redraft.errors import ErrDisabled, Redirect
from redraft.machine import OK, Status
from redraft.raft.types import ChangeInProgress, ChangeType, InvalidChange, SnapshotMeta
from redraft.replies import Slot
from redraft.session import Session

log = logging.getLogger("redraft.commands")


def raftleader(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 1)
    return ctx.leader.encode() or None


def raftstate(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 1)
    return Status(ctx.state_name)


def raftstats(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 1)
    flat: list[Any] = []
    for k, v in ctx.raft_stats().items():
        flat.append(k.encode())
        flat.append(str(v).encode())
    return flat


def raftpeers(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 2)
    verbose = len(args) == 2
    if verbose and args[1].lower() != b"verbose":
        raise ValueError("ERR syntax error: RAFTPEERS [VERBOSE]")
    leader = ctx.leader
    out: list[Any] = []
    for peer in ctx.peers():
        if peer.address == leader:
            state = "Leader"
        elif not peer.voter:
            state = "Learner"
        else:
            state = "Follower"
        if not verbose:
            out += [peer.address.encode(), state.encode()]
            continue
        fields: dict[bytes, Any] = {
            b"address": peer.address.encode(),
            b"role": b"voter" if peer.voter else b"learner",
            b"state": state.encode(),
            b"promoting": 1 if peer.promoting else 0,
        }
        if peer.match_index is not None:
            fields[b"match_index"] = peer.match_index
            fields[b"last_contact_ms"] = peer.last_contact_ms
            if peer.replication:
                fields[b"replication"] = peer.replication.encode()
        out.append(fields)
    return out


def _answer(
    conn: Session, slot: Slot, then: BaseException | None = None
) -> Callable[[BaseException | None], None]:
    """The ``done`` of an operation that answers ``slot``: OK, or the error (``then`` after success)."""

    def done(exc: BaseException | None) -> None:
        err = exc if exc is not None else then
        if err is None:
            conn.fill(slot, OK)
        else:
            conn.fill_error(slot, err)

    return done


def _started(conn: Session, name: str, start: Callable[[Slot], None]) -> Slot:
    """A slot for an operation that answers later, started by ``start(slot)``.

    If it fails to start, the slot goes and the error is the command's reply.
    """
    slot = conn.new_slot()
    slot.name = name
    try:
        start(slot)
    except ChangeInProgress:
        conn.drop_slot(slot)
        raise ValueError("a membership change is already in progress; try again") from None
    except InvalidChange as exc:
        conn.drop_slot(slot)
        raise ValueError(str(exc)) from None
    except BaseException:
        conn.drop_slot(slot)
        raise
    return slot


def rafttransferleader(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 2)
    target = peer_address(text(args[1])) if len(args) == 2 else None
    return _started(
        conn, "rafttransferleader", lambda s: ctx.transfer_leadership(target, _answer(conn, s))
    )


def _change(
    ctx: Cluster, conn: Session, change: ChangeType, addr: str, then: BaseException | None = None
) -> Slot:
    """Propose ``change``; reply OK once it commits (or ``then``, an error reply)."""
    return _started(
        conn, "raft", lambda s: ctx.propose_config(change, addr, _answer(conn, s, then))
    )


def raftaddpeer(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2, 2)
    addr = peer_address(text(args[1]))
    if addr in ctx.membership.members():
        if not ctx.is_leader:
            raise Redirect(ctx.leader)
        return OK
    return _change(ctx, conn, ChangeType.ADD_VOTER, addr)


def raftaddlearner(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """RAFTADDLEARNER addr: add a permanent learner (a read replica that never votes)."""
    arity(args, 2, 2)
    addr = peer_address(text(args[1]))
    membership = ctx.membership
    if addr in membership.voters:
        raise ValueError(f"ERR {addr} is a voter: remove it first to make it a learner")
    if addr in membership.learners:
        if not ctx.is_leader:
            raise Redirect(ctx.leader)
        if addr in membership.promoting:
            raise ValueError(f"ERR {addr} is joining as a voter")
        return OK
    return _change(ctx, conn, ChangeType.ADD_LEARNER, addr)


def raftjoin(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """RAFTJOIN addr [LEARNER]: a node with an empty data dir asks to join as ``addr``.

    What ``--join`` sends.  Unlike RAFTADDPEER, which answers OK for an
    address that is already a member, the sender says it holds nothing.
    If ``addr`` is a member, whatever it stored and the votes it cast are
    gone: counted as that member it could elect a leader that lacks
    committed entries.  So the leader first removes it (the reply says
    so, and the node asks again); the next request adds it anew as a
    learner, which votes only once it has caught up.
    """
    arity(args, 2, 3)
    learner = len(args) == 3
    if learner and args[2].lower() != b"learner":
        raise ValueError("ERR syntax error: RAFTJOIN addr [LEARNER]")
    addr = peer_address(text(args[1]))
    if conn.peer_id and conn.peer_id != addr:
        raise ValueError(f"ERR a node joins as itself: {conn.peer_id} cannot join as {addr}")
    if ctx.joining:
        # Without this it would answer "leader not known", and two nodes
        # joining through each other would wait on each other for good.
        raise ValueError("ERR this node is itself still joining the cluster: ask another member")
    if not ctx.is_leader:
        raise Redirect(ctx.leader)
    # The address's previous process may have left peer connections whose
    # messages are still on the way (acks for entries the new, empty
    # process lacks): whatever they carry is its predecessor's word.
    for other in ctx.sessions():
        if other.peer_id == addr and other is not conn:
            log.info("closing a peer connection of %s's previous process", addr)
            other.abort()
    if addr not in ctx.membership.members():
        return _change(ctx, conn, ChangeType.ADD_LEARNER if learner else ChangeType.ADD_VOTER, addr)
    if addr == ctx.id:
        raise ValueError("ERR the leader cannot rejoin itself")
    log.warning(
        "%s asks to join with an empty data dir but is a member: its data is lost, "
        "so it is removed first and joins again as a new learner",
        addr,
    )
    lost = ValueError(f"ERR {addr} was a member and lost its data: removed; ask to join again")
    return _change(ctx, conn, ChangeType.REMOVE, addr, then=lost)


def raftremovepeer(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 2, 2)
    addr = peer_address(text(args[1]))
    if addr not in ctx.membership.members():
        raise ValueError("peer is unknown")
    return _change(ctx, conn, ChangeType.REMOVE, addr)


def raftdigest(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """[applied index, SHA-256 of the machine's snapshot bytes]: compare replicas.

    Runs the machine's snapshot on the event loop, so it is a debugging
    and verification tool, not something to call in a hot loop.
    """
    arity(args, 1, 1)
    try:
        index, digest = ctx.digest()
    except ErrDisabled:
        raise ValueError("ERR snapshots are disabled, so there is no digest") from None
    return [index, digest]


def raftsnapshot(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    arity(args, 1, 1)
    slot = conn.new_slot()
    slot.name = "raftsnapshot"

    def done(exc: BaseException | None) -> None:
        if exc is None:
            conn.fill(slot, OK)
        else:
            if isinstance(exc, ErrDisabled):
                exc = ValueError("snapshots are disabled")
            conn.fill_error(slot, exc)

    ctx.snapshot_now(done)
    return slot


def raftbackup(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """RAFTBACKUP -> [index, term, size] of a fresh snapshot, pinned for this connection;
    RAFTBACKUP READ index offset length -> its bytes; RAFTBACKUP END index -> OK."""
    sub = args[1].lower() if len(args) > 1 else b""
    if not sub:
        slot = conn.new_slot()
        slot.name = "raftbackup"

        def started(meta: SnapshotMeta | None, exc: BaseException | None) -> None:
            if meta is None:
                conn.fill_error(slot, exc or ValueError("ERR backup failed"))
            else:
                conn.fill(slot, [meta.index, meta.term, meta.size])

        ctx.backups.begin(conn, started)
        return slot
    if sub == b"read" and len(args) == 5:
        index, offset, length = (_number(a) for a in args[2:5])
        return ctx.backups.read(conn, index, offset, length)
    if sub == b"end" and len(args) == 3:
        ctx.backups.end(conn, _number(args[2]))
        return OK
    raise ValueError(
        "ERR syntax error: RAFTBACKUP | RAFTBACKUP READ index offset length | RAFTBACKUP END index"
    )


def _number(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("ERR value is not an integer or out of range") from None


def rafttick(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """``RAFTTICK`` is what a leader logs for the machine's tick: never a client's to send.

    Its name is a built-in's so that no machine can declare it and no client
    can log it; the entry is applied by :mod:`redraft.applying`.
    """
    raise ValueError(
        "ERR RAFTTICK is logged by the leader for the machine's tick; clients cannot send it"
    )


def raftwoken(ctx: Cluster, conn: Session, args: list[bytes]) -> Any:
    """``RAFTWOKEN`` is how a leader logs a woken blocking request again: never a client's to send.

    Its name is a built-in's so that no machine can declare it and no client
    can log it; the entry is applied by :mod:`redraft.applying`.
    """
    raise ValueError(
        "ERR RAFTWOKEN is logged by the leader for a woken blocking command; clients cannot send it"
    )
