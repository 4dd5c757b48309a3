"""What a node starts from: the state in its data dir, a new cluster, or a cluster to join.

A data dir with cluster state restarts from it (the newest valid snapshot,
then the log after it).  An empty one founds a new single-node cluster,
unless the node is to join an existing cluster (``--join``).  Joining is
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
from redraft.storage.base import LogStore
from redraft.storage.files import remove_quietly, write_file_atomic
from redraft.storage.snapshots import SnapshotPayload, SnapshotStore

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
) -> tuple[Restored, str]:
    """The state a node restarts from (its state restored), and the addresses to ask to join.

    The addresses are ``join`` for an empty data dir, or those a previous
    run was still asking when it stopped; "" when the node does not join.
    """
    restored = _stored(directory, store, snapshots, restore)
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
