"""Majority arithmetic (redraft.raft.quorum), checked against brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraft.raft.quorum import VoteResult, committed_index, majority, vote_result


def test_majority() -> None:
    assert [majority(n) for n in range(8)] == [1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], 0),
        ([7], 7),
        ([5, 9], 5),  # two voters: both must hold it
        ([5, 9, 1], 5),
        ([3, 3, 3], 3),
        ([10, 0, 0, 10], 0),  # half is not a majority
        ([10, 0, 10, 10, 0], 10),
        ([1, 2, 3, 4, 5, 6, 7], 4),
    ],
)
def test_committed_index(values: list[int], expected: int) -> None:
    assert committed_index(values) == expected
    assert committed_index(iter(values)) == expected  # any iterable, consumed once


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=9))
def test_committed_index_is_the_highest_value_a_majority_reached(values: list[int]) -> None:
    got = committed_index(values)
    if not values:
        assert got == 0
        return
    reached = [
        v for v in range(max(values) + 1) if sum(x >= v for x in values) >= majority(len(values))
    ]
    assert got == max(reached)


def test_vote_result_three_voters() -> None:
    voters = {"a", "b", "c"}
    assert vote_result(voters, {}) is VoteResult.PENDING
    assert vote_result(voters, {"a": True}) is VoteResult.PENDING
    assert vote_result(voters, {"a": True, "b": True}) is VoteResult.WON
    assert vote_result(voters, {"a": True, "b": False}) is VoteResult.PENDING
    assert vote_result(voters, {"a": False, "b": False}) is VoteResult.LOST
    assert vote_result(voters, {"a": True, "b": False, "c": False}) is VoteResult.LOST


def test_vote_result_ignores_non_voters() -> None:
    voters = {"a", "b", "c"}
    assert vote_result(voters, {"a": True, "x": True, "y": True}) is VoteResult.PENDING
    assert vote_result(voters, {"a": False, "x": False, "y": False}) is VoteResult.PENDING


def test_vote_result_edge_sizes() -> None:
    assert vote_result({"a"}, {"a": True}) is VoteResult.WON
    assert vote_result({"a"}, {"a": False}) is VoteResult.LOST
    assert vote_result({"a", "b"}, {"a": True}) is VoteResult.PENDING
    assert vote_result({"a", "b"}, {"a": True, "b": False}) is VoteResult.LOST
    # No voters: nothing can ever pass.
    assert vote_result(set(), {"a": True}) is VoteResult.LOST


@pytest.mark.parametrize("n", range(1, 7))
def test_vote_result_against_brute_force(n: int) -> None:
    voters = [f"v{k}" for k in range(n)]
    for votes in itertools.product((None, True, False), repeat=n):
        cast = {v: ok for v, ok in zip(voters, votes, strict=True) if ok is not None}
        yes = sum(1 for ok in votes if ok is True)
        undecided = sum(1 for ok in votes if ok is None)
        if yes >= majority(n):
            want = VoteResult.WON
        elif yes + undecided < majority(n):
            want = VoteResult.LOST
        else:
            want = VoteResult.PENDING
        assert vote_result(set(voters), cast) is want, cast
