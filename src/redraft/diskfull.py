"""What one group does while its disk is full, and when space returns.

The log writer (:mod:`redraft.persist`) keeps the write that failed and
tries it again until it succeeds; this part makes the rest of the group
fit that:

* The node stops taking new entries.  A follower ignores the leader's
  appends and snapshot chunks (the leader sees them as lost and sends them
  again once this node answers); its heartbeats still count, so the node
  keeps its leader and serves what its consistency level lets it serve.
* It does not campaign (``RaftCore.may_campaign``): it could neither record
  its vote nor append as leader.
* A leader hands leadership at once to another voter, the most caught-up
  first, trying the next one when a handover does not complete in an
  election timeout (a target with a full disk refuses it).  Writes that
  arrive meanwhile wait for the new leader and are redirected to it.  With
  no one to hand over to (alone, or every voter refused: a pause of
  :data:`HANDOVER_PAUSE` before the next round) it keeps leading, serves
  reads, and refuses writes with ``-MISCONF`` (:class:`~redraft.errors.DiskFull`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redraft.errors import DiskFull
from redraft.proposals import Proposer
from redraft.raft.core import RaftCore
from redraft.raft.types import InvalidChange, Message, MsgType, Role
from redraft.storage.base import DiskFullError

log = logging.getLogger("redraft")

_REFUSED = frozenset({MsgType.APP, MsgType.SNAP})

HANDOVER_PAUSE = 5.0
"""Seconds a full leader whose every handover failed waits before trying them all again."""


class FullDisk:
    """A group's answer to its disk filling up and emptying again."""

    def __init__(
        self, node_id: str, core: RaftCore, proposer: Proposer, wake: Callable[[], None]
    ) -> None:
        self.node_id = node_id
        self.core = core
        self.proposer = proposer
        self._wake = wake
        self.error: DiskFullError | None = None
        """The write that failed, while the disk is full; None otherwise."""
        self.times = 0
        """How often the disk filled since the node started."""
        self._tried: set[str] = set()
        self._pause_until = 0.0

    def changed(self, error: DiskFullError | None) -> None:
        """The log writer found the disk full (``error``) or writing again (None).

        Called while a Ready is being persisted: the group calls :meth:`hand_over`
        on the next loop turn, not from in here.
        """
        self.error = error
        core = self.core
        core.may_campaign = error is None
        if error is None:
            self.proposer.refused = None
            self._tried.clear()
            self._pause_until = 0.0
            return
        self.times += 1
        self.proposer.refused = DiskFull(self.node_id, error.reason)

    def drops(self, m: Message) -> bool:
        """Whether to ignore ``m``: new entries, which this node cannot store now."""
        return self.error is not None and m.type in _REFUSED

    def hand_over(self) -> None:
        """While full and leading, hand leadership to the next voter not yet tried."""
        core = self.core
        if self.error is None or core.role != Role.LEADER or core.lead_transferee:
            return
        candidates = core.transfer_candidates()
        untried = [c for c in candidates if c not in self._tried]
        if not untried:
            if not candidates:
                return  # alone: keep leading, refusing writes
            # Every voter refused (their disks are full too, most likely): lead
            # on, refusing writes with -MISCONF, and try them all again later.
            now = time.monotonic()
            if not self._pause_until:
                self._pause_until = now + HANDOVER_PAUSE
            if now < self._pause_until:
                return
            self._pause_until = 0.0
            self._tried.clear()
            untried = candidates
        target = untried[0]
        self._tried.add(target)
        try:
            core.transfer_leadership(target)
        except InvalidChange as exc:
            log.warning("disk full, cannot hand leadership to %s: %s", target, exc)
            return
        log.warning("disk full: handing leadership to %s", target)
        self._wake()
