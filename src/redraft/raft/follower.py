"""A follower's side of replication: the leader's entries, commit index and snapshots.

The core hands a :class:`Follower` the APP, HEARTBEAT and SNAP messages of
its current leader, once it has settled the term (so each message's term is
the node's, and answers carry it).  The follower changes only the log, the
membership history and the incoming snapshot; every answer promises
something durable, so all of them wait for the Ready's persistence.
"""

from __future__ import annotations

from typing import Final

from redraft.raft.log import RaftLog
from redraft.raft.outbox import Outbox
from redraft.raft.snapshot import SnapshotReceiver
from redraft.raft.tracker import ProgressTracker
from redraft.raft.types import EntryKind, Membership, Message, MsgType, NodeId

_APP_RESP: Final = MsgType.APP_RESP
_HEARTBEAT_RESP: Final = MsgType.HEARTBEAT_RESP
_SNAP_RESP: Final = MsgType.SNAP_RESP
_CONFIG: Final = EntryKind.CONFIG


class Follower:
    """Applies a leader's replication messages to the log.  See the module docstring."""

    __slots__ = ("id", "incoming", "log", "out", "tracker")

    def __init__(
        self,
        me: NodeId,
        log: RaftLog,
        tracker: ProgressTracker,
        incoming: SnapshotReceiver,
        out: Outbox,
    ) -> None:
        self.id = me
        self.log = log
        self.tracker = tracker
        self.incoming = incoming
        self.out = out

    def on_append(self, m: Message) -> None:
        """Entries from the leader: append what matches, acknowledge or reject."""
        log = self.log
        prev = m.index
        prev_term = m.log_term
        ents = m.entries
        if prev < log.commit:
            # Everything up to our commit index agrees with any leader's log,
            # so only the part after it needs checking.
            skip = log.commit - prev
            if len(ents) <= skip:
                self.out.send(Message(_APP_RESP, m.frm, self.id, m.term, index=log.commit))
                return
            ents = ents[skip:]
            prev = log.commit
            t = log.term(prev)
            assert t is not None
            prev_term = t
        if not log.match_term(prev, prev_term):
            hint = log.find_conflict_by_term(min(prev, log.last_index), prev_term)
            self.out.send(
                Message(
                    _APP_RESP,
                    m.frm,
                    self.id,
                    m.term,
                    index=m.index,
                    reject=True,
                    hint_index=hint,
                    hint_term=log.term(hint) or 0,
                )
            )
            return
        pos = log.find_conflict(ents)
        if pos < len(ents):
            first = ents[pos].index
            if first <= log.last_index:
                log.truncate_after(first - 1)
                self.tracker.truncated(first - 1)
            new = ents[pos:] if pos else ents
            log.extend(new)
            for e in new:  # compiled, a plain loop beats map(itemgetter) as a pre-check
                if e.kind == _CONFIG:
                    self.tracker.appended(e.index, Membership.decode(e.data))
        last_new = prev + len(ents)
        commit = m.commit if m.commit < last_new else last_new
        if commit > log.commit:
            log.commit = commit
        self.out.send(Message(_APP_RESP, m.frm, self.id, m.term, index=last_new))

    def on_heartbeat(self, m: Message) -> None:
        """A heartbeat: learn the commit index, echo the round."""
        log = self.log
        commit = min(m.commit, log.last_index)
        if commit > log.commit:
            log.commit = commit
        self.out.send(Message(_HEARTBEAT_RESP, m.frm, self.id, m.term, round=m.round))

    def on_snapshot(self, m: Message) -> None:
        """A snapshot chunk: take it in order; install the snapshot once complete."""
        chunk = m.snap
        if chunk is None:
            return
        meta = chunk.meta
        log = self.log
        if meta.index <= log.commit or log.match_term(meta.index, meta.term):
            # Nothing to install: we hold everything up to the snapshot (and
            # perhaps acknowledged entries after it, which must survive).
            # The snapshot's index is committed, so our commit may move there.
            self.incoming.cancel()
            if meta.index > log.commit:
                log.commit = meta.index
            index = max(meta.index, log.commit)
            self.out.send(Message(_SNAP_RESP, m.frm, self.id, m.term, index=index, installed=True))
            return
        answer = self.incoming.receive(chunk)
        if answer.complete:
            log.reset(meta.index, meta.term)
            log.snapshot = meta
            self.tracker.restored(meta.membership)
            self.out.send(
                Message(_SNAP_RESP, m.frm, self.id, m.term, index=meta.index, installed=True)
            )
            return
        self.out.send(
            Message(
                _SNAP_RESP,
                m.frm,
                self.id,
                m.term,
                index=meta.index,
                reject=not answer.accepted,
                snap_offset=answer.offset,
            )
        )


__all__ = ["Follower"]
