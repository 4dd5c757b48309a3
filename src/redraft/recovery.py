"""What a node starts from: the state in its data dir, a new cluster, or a cluster to join.

A data dir with cluster state restarts from it (the newest valid snapshot,
then the log after it).  An empty one founds a new single-node cluster,
unless the node is to join an existing cluster (``--join``), or to start
from a backup (``--restore FILE``: a new single-node cluster whose state is
the backup's).  ``--force-new-cluster`` restarts from the data dir as the
only voter of a new configuration (a lost majority: see the README).  Joining is
remembered in the data dir until the node holds state the leader sent it: a
node killed before that and restarted without ``--join`` goes on asking to
join instead of founding a second cluster under the same address, which
would acknowledge writes the real cluster never sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from redraft.raft.core import RaftCore, Restored
from redraft.raft.types import Entry, EntryKind, HardState, Membership
from redraft.storage.base import LogStore
from redraft.storage.files import remove_quietly, write_file_atomic
from redraft.storage.snapshots import SnapshotPayload, SnapshotStore, adopt_file

Restore = Callable[[SnapshotPayload], None]
"""Restores the node's state from a snapshot's payload."""

log = logging.getLogger("redraft")

JOINING = "JOINING"
"""The file, in the data dir, that holds the ``--join`` addresses while the node is not admitted yet."""


def recover(
    directory: Path,
    store: LogStore,
    snapshots: SnapshotStore,
    restore: Restore,
    node_id: str,
    join: str,
    *,
    backup: str = "",
    force_new: bool = False,
) -> tuple[Restored, str]:
    """The state a node restarts from (its state restored), and the addresses to ask to join.

    The addresses are ``join`` for an empty data dir, or those a previous
    run was still asking when it stopped; "" when the node does not join.
    ``backup`` is a backup file to start a new cluster from (``--restore``);
    ``force_new`` makes this node the only voter (``--force-new-cluster``).
    """
    if backup:
        _adopt_backup(Path(backup), directory, store, snapshots, node_id)
    restored = _stored(directory, store, snapshots, restore)
    if force_new:
        if restored is None:
            raise RuntimeError(
                f"--force-new-cluster: {directory} holds no cluster state to start from"
            )
        restored = _force_alone(restored, store, node_id)
    marker = directory / JOINING
    if restored is not None:
        if join:
            log.info("data dir holds cluster state: ignoring join %s", join)
        remove_quietly(marker)  # admitted: whatever it holds is the cluster's now
        return restored, ""
    if join:
        write_file_atomic(marker, join.encode())
        return Restored(), join
    pending = _pending_join(marker)
    if pending:
        log.warning(
            "this node was asking to join the cluster via %s when it stopped, and holds no "
            "state yet: it goes on asking (to found a new cluster instead, start it on an "
            "empty data dir)",
            pending,
        )
        return Restored(), pending
    boot = RaftCore.bootstrap([node_id])
    store.save(boot.hard_state, boot.entries, True)
    log.info("bootstrapped a new single-node cluster as %s", node_id)
    return boot, ""


def _adopt_backup(
    path: Path, directory: Path, store: LogStore, snapshots: SnapshotStore, node_id: str
) -> None:
    """``--restore``: the backup becomes the snapshot of a new single-node cluster."""
    loaded = store.load()
    if loaded.hard_state.term or loaded.entries or snapshots.latest() is not None:
        raise RuntimeError(
            f"--restore {path}: the data dir {directory} already holds cluster state; "
            "restore into an empty data dir"
        )
    if not path.is_file():
        raise RuntimeError(f"--restore {path}: no such file")
    meta = adopt_file(snapshots, path, Membership(voters=frozenset([node_id])))
    store.reset(meta.index, meta.term)
    store.save(HardState(meta.term, "", meta.index), [], True)
    log.info(
        "restored the backup %s (index %d, term %d) as a new single-node cluster",
        path,
        meta.index,
        meta.term,
    )


def _force_alone(restored: Restored, store: LogStore, node_id: str) -> Restored:
    """``--force-new-cluster``: append a configuration in which this node is the only voter.

    Every entry the node has is kept (committed or not: as etcd does, the
    new cluster commits them all); what only the lost members had is gone.
    The configuration takes effect as it is appended, so the node elects
    itself at once.
    """
    entries = restored.entries
    snap = restored.snapshot
    last_index = entries[-1].index if entries else (snap.index if snap else 0)
    last_term = entries[-1].term if entries else (snap.term if snap else 0)
    term = max(restored.hard_state.term, last_term)
    members = Membership(voters=frozenset([node_id]))
    alone = Entry(term=term, index=last_index + 1, kind=EntryKind.CONFIG, data=members.encode())
    hs = HardState(term, restored.hard_state.vote, restored.hard_state.commit)
    store.save(hs, [alone], True)
    log.warning(
        "--force-new-cluster: this node is now the only voter (configuration at index %d); "
        "add new members with --join, and never restart the old ones on their old data",
        alone.index,
    )
    return Restored(hs, snap, [*entries, alone])


def _pending_join(marker: Path) -> str:
    try:
        return marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def _stored(
    directory: Path, store: LogStore, snapshots: SnapshotStore, restore: Restore
) -> Restored | None:
    """The cluster state in the data dir (its snapshot restored), or None if it holds none."""
    loaded = store.load()
    snap = snapshots.latest()
    if snap is not None:
        with snapshots.open_payload(snap) as rd:
            restore(rd)
        log.info("restored snapshot at index %d (term %d)", snap.index, snap.term)
        if loaded.prev_index > snap.index:
            raise RuntimeError(
                f"the log in {directory / 'log'} starts after index {loaded.prev_index} but the "
                f"newest valid snapshot ends at {snap.index}: entries in between are lost; "
                "restore the missing snapshot or start this node afresh and re-add it"
            )
    elif loaded.prev_index > 0:
        raise RuntimeError(
            f"the log in {directory / 'log'} was compacted up to {loaded.prev_index} but no "
            f"valid snapshot is in {directory / 'snapshots'}; the node cannot rebuild its state"
        )
    hs = loaded.hard_state
    entries = loaded.entries
    if snap is not None:
        entries = [e for e in entries if e.index > snap.index]
    if hs.term == 0 and not entries and snap is None:
        return None
    return Restored(hs, snap, entries)
