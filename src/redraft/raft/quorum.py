"""Majority arithmetic, in one place.

Every decision the core takes by majority goes through here: the commit
index (the highest log index a majority holds), the ReadIndex round a
majority acknowledged, the lease (the latest tick by which a majority had
heard from the leader), elections and check-quorum.  All of them are the
same question, "what value has a majority of the voters reached?", or its
yes/no form, "has a majority said yes (or can it no longer)?".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import IntEnum
from typing import Final

from redraft.raft.types import NodeId


class VoteResult(IntEnum):
    """The outcome of a vote among the voters so far."""

    PENDING = 0
    """Neither side has a majority yet."""
    WON = 1
    """A majority said yes."""
    LOST = 2
    """So many said no that a majority can no longer say yes."""


# Class attribute lookups on enums are slow in Python 3.11: return aliases.
_PENDING: Final = VoteResult.PENDING
_WON: Final = VoteResult.WON
_LOST: Final = VoteResult.LOST


def majority(n: int) -> int:
    """How many of ``n`` voters make a majority (1 for none, so nothing passes)."""
    return n // 2 + 1


def committed_index(values: Iterable[int]) -> int:
    """The highest value that a majority has reached, given one value per voter.

    With log indexes (each voter's match) this is the commit index; with
    acknowledged heartbeat rounds, the round a majority confirmed; with the
    tick each voter was last heard at, the tick by which a majority had
    answered.  0 when there are no voters.
    """
    s = sorted(values)
    # Sorted low to high, the value at position (n-1)//2 is held by it and
    # every position above: n - (n-1)//2 voters, a majority, and no higher
    # value is.  (Ascending: compiled, sorted() without a keyword argument
    # is a direct call; with reverse=True it went through the interpreter.)
    return s[(len(s) - 1) // 2] if s else 0


def vote_result(voters: Collection[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    """The outcome of ``votes`` (voter -> yes/no) among ``voters``.

    Votes of nodes that are not voters do not count; voters that have not
    voted may still swing it either way.
    """
    granted = rejected = 0
    for v in voters:
        ok = votes.get(v)
        if ok is None:
            continue
        if ok:
            granted += 1
        else:
            rejected += 1
    q = majority(len(voters))
    if granted >= q:
        return _WON
    if len(voters) - rejected < q:
        return _LOST
    return _PENDING


__all__ = ["VoteResult", "committed_index", "majority", "vote_result"]
