"""Joining a cluster: an empty node asks a member to admit it, following redirects to the leader."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redraft.security import Security, peer_ask

log = logging.getLogger("redraft")


class JoinFailed(RuntimeError):
    """No member admitted the node within the join timeout."""


async def join_cluster(
    self_id: str,
    addrs: list[str],
    security: Security,
    timeout: float,
    stopping: Callable[[], bool],
    learner: bool = False,
) -> bool:
    """Ask the cluster to admit this (empty) node until the leader says OK.

    The leader answers once the change committed: a new address is added
    as a learner; an address that is already a member is removed first
    (its data is gone), and the next request adds it anew.  Each round
    asks every address in turn, so one member that cannot help (down, or
    itself still joining) does not stop the join.  Returns False if
    ``stopping()`` became true first; raises :class:`JoinFailed` at the
    timeout.
    """
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        for first in addrs:
            if stopping():
                return False
            why = await _ask_to_join(self_id, first, security, learner)
            if why is None:
                return True
            log.info("join via %s: %s; retrying", first, why)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise JoinFailed(
        f"could not join the cluster via {','.join(addrs)} within "
        f"{timeout:.0f}s; is a member reachable, and the peer secret right?"
    )


async def _ask_to_join(
    self_id: str, first: str, security: Security, learner: bool = False
) -> str | None:
    """One join request via ``first``, following redirects: None once admitted, else why not."""
    target = first
    for _ in range(5):
        if target == self_id:
            # The member this node used to be led until it lost its data;
            # the others have not elected anyone else yet.
            return "the cluster still names this node's address as its leader"
        try:
            # A peer handshake first: joining needs the peer secret (and TLS if set).
            reply = await peer_ask(
                target,
                [b"RAFTJOIN", self_id.encode(), *([b"LEARNER"] if learner else [])],
                self_id=self_id,
                secret=security.peer_secret,
                ssl_context=security.peer_ssl,
                timeout=5.0,
            )
        except (TimeoutError, OSError) as exc:
            return f"{target}: {exc}"
        if not isinstance(reply, Exception):
            log.info("joined the cluster via %s", target)
            return None
        text = str(reply)
        leader = redirected_to(text)
        if leader is None:
            return f"{target} refused: {text}"
        target = leader
    return "too many redirects"


def redirected_to(text: str) -> str | None:
    """The leader an error reply redirects to, or None if it is no redirect.

    ``TRY host:port``, or ``MOVED <slot> host:port`` from a member started
    with ``--redirect moved``.
    """
    if text.startswith("TRY "):
        return text[4:].strip()
    words = text.split()
    if len(words) == 3 and words[0] == "MOVED":
        return words[2]
    return None
