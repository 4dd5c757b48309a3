"""The Raft core under the deterministic simulator (tests/sim).

Three kinds of tests:

* seeded random scenarios (faults, then healing and liveness) across 3, 5 and
  7 nodes, with every safety property checked after every step;
* focused scenarios, one per feature, each asserting what a user relies on;
* mutation tests: deliberately broken cores that the simulator must catch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from redraft.raft.core import RaftConfig
from redraft.raft.log import ENTRY_OVERHEAD
from redraft.raft.types import (
    ChangeInProgress,
    ChangeType,
    EntryKind,
    Message,
    MsgType,
    NodeId,
    ProposalDropped,
    Role,
)
from tests.sim import NetConfig, Outcome, Sim, SimNode, Violation, run_seed
from tests.sim.mutations import MUTATIONS, mutated
from tests.sim.scenario import DEFAULT_STEPS

ROOT = Path(__file__).resolve().parent.parent
STEPS = DEFAULT_STEPS

# ------------------------------------------------------------- regressions
#
# Seeds on which the simulator found core bugs (since fixed): a lease trusted
# after TIMEOUT_NOW (4, 696), a snapshot behind the log installed over
# acknowledged entries (63, 594), and a campaign forced on a follower that had
# lent its leader a lease (295).  A seed replays one trajectory of the core
# as it is, so the focused tests further down are the lasting guards.  Seed
# 8179 (5 nodes) found a bug in the harness instead: its liveness read was
# dropped when the leader stepped down, and the harness did not retry once
# the same node led again.
REGRESSIONS: list[tuple[int, int | None, int]] = [
    (4, None, 3000),
    (696, None, 3000),
    (63, None, 3000),
    (594, None, 3000),
    (295, 3, 3000),
    (8179, 5, 3000),
]


def _sweep(nodes: int, start: int, count: int) -> None:
    for seed in range(start, start + count):
        out = run_seed(seed, nodes, STEPS, trace_lines=60)
        if not out.ok:
            pytest.fail(
                out.report() + f"\nreplay: python -m tests.sim --seeds 1 --start {seed} "
                f"--nodes {nodes} --steps {STEPS}",
                pytrace=False,
            )


# 2,100 scenarios in all: 900 with 3 nodes, 700 with 5, 500 with 7.
SWEEPS = [(3, s, 150) for s in range(0, 900, 150)]
SWEEPS += [(5, s, 140) for s in range(10_000, 10_700, 140)]
SWEEPS += [(7, s, 125) for s in range(20_000, 20_500, 125)]


@pytest.mark.timeout(110)
@pytest.mark.parametrize(("nodes", "start", "count"), SWEEPS)
def test_random_scenarios(nodes: int, start: int, count: int) -> None:
    _sweep(nodes, start, count)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("seed", "nodes", "steps"), REGRESSIONS)
def test_regression_seed(seed: int, nodes: int | None, steps: int) -> None:
    out = run_seed(seed, nodes, steps)
    assert out.ok, out.report()


# ------------------------------------------------------------------ helpers

E = 10  # election ticks in the focused scenarios


def config(**kw: Any) -> RaftConfig:
    return RaftConfig(id="template", **({"election_tick": E} | kw))


def quiet_net(**kw: Any) -> NetConfig:
    """A reliable network with a fixed latency, and instant disks."""
    return NetConfig(**({"lat_min": 0.1, "lat_max": 0.1} | kw))


def cluster(n: int = 3, seed: int = 1, net: NetConfig | None = None, **kw: Any) -> Sim:
    return Sim(seed, n, config(**kw), net or quiet_net())


def wait_leader(sim: Sim, within: float = 20 * E, exclude: tuple[NodeId, ...] = ()) -> SimNode:
    def found() -> bool:
        ld = sim.leader()
        return ld is not None and ld.id not in exclude and ld.live().committed_in_term()

    assert sim.run_for(within, found), "no leader elected"
    leader = sim.leader()
    assert leader is not None
    return leader


def applied_everywhere(
    sim: Sim, index: int, nodes: list[NodeId] | None = None
) -> Callable[[], bool]:
    ids = nodes if nodes is not None else [n.id for n in sim.up_nodes()]
    return lambda: all(sim.node(n).machine.applied >= index for n in ids)


def write(sim: Sim, nid: NodeId, count: int = 1, tag: str = "x") -> int:
    """Propose ``count`` writes on ``nid``; the index of the last."""
    ws = sim.propose(nid, [f"{tag}{k}".encode() for k in range(count)])
    assert ws, f"{nid} refused the proposal"
    return ws[-1].index


def followers(sim: Sim, leader: SimNode) -> list[NodeId]:
    return [n for n in sim.nodes if n != leader.id]


# ------------------------------------------------------------------ elections


@pytest.mark.timeout(30)
def test_prevote_rejoining_node_does_not_disrupt() -> None:
    sim = cluster(3, pre_vote=True)
    leader = wait_leader(sim)
    term = leader.term
    victim = followers(sim, leader)[0]
    sim.isolate(victim)
    sim.run_for(6 * E)  # several election timeouts: it campaigns again and again
    assert sim.core(victim).term == term, "an isolated pre-candidate must not bump its term"
    sim.heal()
    sim.run_for(4 * E)
    assert sim.leader() is leader and leader.role == Role.LEADER
    assert {sim.core(n).term for n in sim.nodes} == {term}


@pytest.mark.timeout(30)
def test_without_prevote_a_rejoining_node_does_disrupt() -> None:
    # The control for the test above: without PreVote the same story deposes the leader.
    sim = cluster(3, pre_vote=False)
    leader = wait_leader(sim)
    term = leader.term
    victim = followers(sim, leader)[0]
    sim.isolate(victim)
    sim.run_for(6 * E)
    assert sim.core(victim).term > term
    sim.heal()
    sim.run_for(4 * E)
    assert max(sim.core(n).term for n in sim.nodes) > term


@pytest.mark.timeout(30)
def test_check_quorum_isolated_leader_steps_down() -> None:
    sim = cluster(5, check_quorum=True)
    leader = wait_leader(sim)
    sim.isolate(leader.id)
    stepped_down = sim.run_for(2 * E + 1, lambda: leader.role != Role.LEADER)
    assert stepped_down, "an isolated leader must step down within about two election timeouts"
    # the majority elects someone else meanwhile, and writes go on there
    other = wait_leader(sim, exclude=(leader.id,))
    idx = write(sim, other.id)
    others = [n for n in sim.nodes if n != leader.id]
    assert sim.run_for(E, applied_everywhere(sim, idx, others))


@pytest.mark.timeout(30)
def test_leader_commits_a_noop_on_election() -> None:
    sim = cluster(3)
    leader = wait_leader(sim)
    core = leader.live()
    (entry,) = core.log_entries(core.last_index, core.last_index + 1)
    assert entry.kind == EntryKind.NOOP and entry.term == core.term
    # without any client write, the no-op commits and every node applies it
    assert sim.run_for(2 * E, applied_everywhere(sim, entry.index))
    assert sim.checker.applied[entry.index].kind == EntryKind.NOOP


# ----------------------------------------------------------------- Figure 8


@pytest.mark.timeout(30)
def test_figure8_old_term_entries_not_committed_by_counting() -> None:
    """Raft paper, Figure 8: an entry of an earlier term stored on a majority is
    not committed by counting replicas, because a later leader may overwrite it."""
    held: set[tuple[NodeId, NodeId]] = set()

    def drop(m: Message) -> bool:
        return m.type == MsgType.APP and (m.frm, m.to) in held

    # pre_vote/check_quorum off: elections are driven by hand with campaign();
    # one entry per APP so that replication can be cut between entries.
    sim = Sim(
        8,
        5,
        config(pre_vote=False, check_quorum=False, max_msg_bytes=1),
        quiet_net(),
        auto_tick=False,
    )
    sim.drop_filter = drop
    s1, s2, s3, s4, s5 = list(sim.nodes)

    def elect(nid: NodeId) -> None:
        for _ in range(5):
            sim.campaign(nid)
            sim.run_for(2)
            if sim.node(nid).role == Role.LEADER:
                return
        raise AssertionError(f"{nid} could not win an election")

    # (a) S1 leads term 2 and replicates its entries to S2 only.
    held.update((s1, n) for n in (s3, s4, s5))
    elect(s1)
    write(sim, s1, 1, "a")
    sim.run_for(2)
    assert sim.core(s2).last_index == 3 and sim.core(s1).commit_index == 1
    sim.crash(s1)
    # (b) S5 wins term 3 with S3 and S4 and appends entries nobody receives.
    held.update((s5, n) for n in (s1, s2, s3, s4))
    elect(s5)
    t5 = sim.core(s5).term
    write(sim, s5, 1, "b")
    sim.run_for(2)
    sim.crash(s5)
    # (c) S1 restarts and wins term 4; its term-2 entries (2, 3) reach S3 and S4,
    # a majority with S1, but its own term-4 no-op (4) does not: an APP carrying
    # it is dropped whenever the receiver would accept it.
    held.clear()

    def no_noop(m: Message) -> bool:
        if m.type != MsgType.APP or m.frm != s1 or not any(e.index >= 4 for e in m.entries):
            return False
        return sim.core(m.to).term_at(m.index) == m.log_term

    sim.drop_filter = no_noop
    sim.restart(s1)
    elect(s1)
    t1 = sim.core(s1).term
    sim.run_for(3)
    for n in (s1, s3, s4):
        assert sim.core(n).term_at(3) == 2, f"{n} should hold the term-2 entries"
    assert sim.core(s1).commit_index == 1, "term-2 entries on a majority must not commit in term 4"
    assert all(sim.node(n).machine.applied == 1 for n in (s1, s2, s3, s4))
    # (d) S1 crashes; S5 (last term 3) can win and overwrites indexes 2 and 3.
    sim.crash(s1)
    sim.drop_filter = None
    sim.restart(s5)
    elect(s5)
    assert sim.core(s5).term > t1
    for _ in range(3):  # heartbeats carry the commit index to the followers
        sim.tick(s5)
        sim.run_for(1)
    assert sim.run_for(5, applied_everywhere(sim, 4, [s2, s3, s4, s5]))
    for n in (s2, s3, s4, s5):
        assert sim.core(n).term_at(2) == t5 and sim.core(n).term_at(3) == t5
    assert sim.checker.applied[3].term == t5


# ---------------------------------------------------------------- replication


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("max_msgs", "max_bytes"), [(4, 1 << 20), (64, 100)])
def test_pipelining_within_window(max_msgs: int, max_bytes: int) -> None:
    sim = cluster(3, max_msg_bytes=1, max_inflight_msgs=max_msgs, max_inflight_bytes=max_bytes)
    leader = wait_leader(sim)
    lid = leader.id
    core = leader.live()
    follower = followers(sim, leader)[0]
    received_before_ack = 0
    most_before_ack = 0
    inflight: list[tuple[int, int]] = []  # (last index, bytes) of APPs the leader has out
    most_inflight = 0

    def on_send(m: Message) -> None:
        nonlocal received_before_ack, most_inflight
        if m.frm == follower and m.type == MsgType.APP_RESP:
            received_before_ack = 0
        if m.frm == lid and m.to == follower and m.type == MsgType.APP and m.entries:
            match = core.status().progress[follower].match
            inflight[:] = [(i, b) for i, b in inflight if i > match]
            inflight.append((m.entries[-1].index, sum(len(e.data) + 24 for e in m.entries)))
            assert len(inflight) <= max_msgs, "more APPs in flight than the window allows"
            assert sum(b for _, b in inflight[:-1]) < max_bytes, "byte window overrun"
            most_inflight = max(most_inflight, len(inflight))

    def on_deliver(m: Message) -> None:
        nonlocal received_before_ack, most_before_ack
        if m.to == follower and m.type == MsgType.APP and m.entries:
            received_before_ack += 1
            most_before_ack = max(most_before_ack, received_before_ack)

    sim.send_hooks.append(on_send)
    sim.deliver_hooks.append(on_deliver)
    sim.net.persist_min = sim.net.persist_max = 1.5  # slow disks: acks come late
    last = 0
    for k in range(10):
        last = write(sim, lid, 3, f"p{k}-")
    assert sim.run_for(20 * E, applied_everywhere(sim, last))
    assert most_before_ack >= 3, "the follower should receive several APPs before acking"
    assert most_inflight >= 3


@pytest.mark.timeout(30)
def test_fast_backtracking_of_a_long_divergent_log() -> None:
    sim = cluster(3)
    old = wait_leader(sim)
    sim.isolate(old.id)
    write(sim, old.id, 200, "stale")  # never committed: the old leader is cut off
    mid = wait_leader(sim, exclude=(old.id,))
    last = write(sim, mid.id, 100, "fresh")
    rest = [n for n in sim.nodes if n != old.id]
    assert sim.run_for(2 * E, applied_everywhere(sim, last, rest))
    # A leader elected now starts probing the old leader's log at its own end,
    # 100 entries past where the two logs agree.
    other = next(n for n in rest if n != mid.id)
    assert sim.transfer(mid.id, other) == other
    new = wait_leader(sim, exclude=(old.id, mid.id))
    last = new.live().last_index
    assert sim.run_for(2 * E, applied_everywhere(sim, last, rest))
    assert old.live().last_index > last and old.live().term_at(last) != new.live().term_at(last)
    rejects = 0

    def count(m: Message) -> None:
        nonlocal rejects
        if m.frm == old.id and m.type == MsgType.APP_RESP and m.reject:
            rejects += 1

    sim.send_hooks.append(count)
    sim.heal()
    assert sim.run_for(4 * E, applied_everywhere(sim, last))
    assert old.live().last_index == new.live().last_index
    assert rejects <= 3, f"{rejects} rejections: backtracking should skip whole terms"


# ----------------------------------------------------------------- membership


@pytest.mark.timeout(30)
def test_learner_catches_up_then_is_promoted() -> None:
    sim = cluster(3, catch_up_margin=0)
    leader = wait_leader(sim)
    write(sim, leader.id, 50, "old")
    core = leader.live()
    sim.add_node("n4")
    idx = sim.change(leader.id, ChangeType.ADD_VOTER, "n4")
    assert idx is not None
    mem = core.membership
    assert "n4" in mem.learners and "n4" in mem.promoting and "n4" not in mem.voters
    assert sim.run_for(10 * E, lambda: "n4" in core.membership.voters)
    # promoted only once its log had caught up with the leader's
    assert core.status().progress["n4"].match >= core.last_index - 1
    last = write(sim, leader.id, 1, "new")
    assert sim.run_for(2 * E, applied_everywhere(sim, last))
    assert "n4" in sim.core("n4").membership.voters


@pytest.mark.timeout(30)
def test_removed_leader_steps_down_after_commit() -> None:
    sim = cluster(3)
    leader = wait_leader(sim)
    core = leader.live()
    idx = sim.change(leader.id, ChangeType.REMOVE, leader.id)
    assert idx is not None
    assert leader.role == Role.LEADER  # it leads until the change commits
    assert sim.run_for(2 * E, lambda: leader.role != Role.LEADER)
    assert core.commit_index >= idx, "the leader stepped down before its removal committed"
    new = wait_leader(sim, exclude=(leader.id,))
    assert leader.id not in new.live().membership.members()
    last = write(sim, new.id)
    assert sim.run_for(2 * E, applied_everywhere(sim, last, list(new.live().membership.voters)))


@pytest.mark.timeout(30)
def test_one_membership_change_at_a_time() -> None:
    sim = cluster(3)
    leader = wait_leader(sim)
    core = leader.live()
    sim.add_node("n4")
    sim.add_node("n5")
    idx = sim.change(leader.id, ChangeType.ADD_LEARNER, "n4")
    assert idx is not None
    with pytest.raises(ChangeInProgress):
        core.change_membership(ChangeType.ADD_LEARNER, "n5")
    assert sim.run_for(2 * E, lambda: core.commit_index >= idx)
    assert sim.change(leader.id, ChangeType.ADD_LEARNER, "n5") is not None


@pytest.mark.timeout(30)
def test_leadership_transfer() -> None:
    sim = cluster(3)
    leader = wait_leader(sim)
    term = leader.term
    a, b = followers(sim, leader)
    sim.block(leader.id, b)  # b falls behind
    last = write(sim, leader.id, 5)
    assert sim.run_for(E, applied_everywhere(sim, last, [leader.id, a]))
    assert sim.transfer(leader.id, None) == a, "the default target is the most caught-up voter"
    with pytest.raises(ProposalDropped):
        leader.live().propose([b"during transfer"])
    sim.heal()
    assert sim.run_for(E, lambda: sim.node(a).role == Role.LEADER)
    assert sim.node(a).term == term + 1 and leader.role == Role.FOLLOWER
    # and back, to a named target
    new = sim.node(a)
    wait_leader(sim)
    assert sim.transfer(a, leader.id) == leader.id
    assert sim.run_for(2 * E, lambda: leader.role == Role.LEADER)
    assert new.role == Role.FOLLOWER


@pytest.mark.timeout(30)
def test_a_node_that_may_not_campaign_refuses_a_handover_and_never_starts_an_election() -> None:
    # A node whose disk is full clears may_campaign: it could neither record its
    # vote nor append as leader.
    sim = cluster(3)
    leader = wait_leader(sim)
    a, b = followers(sim, leader)
    last = write(sim, leader.id, 3)
    assert sim.run_for(E, applied_everywhere(sim, last))
    sim.node(a).live().may_campaign = False
    assert sim.transfer(leader.id, a) == a
    assert not sim.run_for(2 * E, lambda: sim.node(a).role != Role.FOLLOWER)
    # The handover timed out; the leader may try the next voter, which takes it.
    assert leader.live().lead_transferee == ""
    assert sim.transfer(leader.id, b) == b
    assert sim.run_for(2 * E, lambda: sim.node(b).role == Role.LEADER)
    # With the leader gone, the node without a disk never campaigns; the healthy one does.
    sim.block(b, a)
    sim.block(b, leader.id)
    assert sim.run_for(6 * E, lambda: leader.role == Role.LEADER)
    assert sim.node(a).role == Role.FOLLOWER
    sim.node(a).live().may_campaign = True
    sim.heal()


# ---------------------------------------------------- who gets entries at once


def _entry_sends(sim: Sim, leader: SimNode) -> dict[NodeId, list[list[int]]]:
    """The entry indexes of each APP the leader sends to each follower from now on."""
    sent: dict[NodeId, list[list[int]]] = {n: [] for n in followers(sim, leader)}

    def on_send(m: Message) -> None:
        if m.frm == leader.id and m.type == MsgType.APP and m.entries:
            sent[m.to].append([e.index for e in m.entries])

    sim.send_hooks.append(on_send)
    return sent


def _indexes(messages: list[list[int]]) -> list[int]:
    return sorted(i for m in messages for i in m)


def _settled(n: int = 3) -> tuple[Sim, SimNode]:
    """A cluster whose leader's first write is applied everywhere."""
    sim = cluster(n)
    leader = wait_leader(sim)
    assert sim.run_for(E, applied_everywhere(sim, write(sim, leader.id, 1)))
    return sim, leader


def _lone_writes(sim: Sim, leader: SimNode, count: int, tag: str, within: float = 1) -> int:
    """``count`` writes, each proposed once the one before it committed (a lone client)."""
    last = 0
    for k in range(count):
        last = write(sim, leader.id, 1, f"{tag}{k}")
        assert sim.run_for(within, lambda i=last: sim.core(leader.id).commit_index >= i)
    return last


@pytest.mark.timeout(30)
def test_a_lone_clients_writes_go_to_one_follower_at_once_and_the_other_by_heartbeat() -> None:
    sim, leader = _settled()
    sent = _entry_sends(sim, leader)
    last = _lone_writes(sim, leader, 30, "w")
    near, far = sorted(sent, key=lambda n: -len(sent[n]))
    assert len(sent[near]) == 30, "each write goes to the quorum's follower at once"
    assert len(sent[far]) < 15, "the other gets them a heartbeat's worth at a time"
    assert sim.run_for(2, applied_everywhere(sim, last))
    assert _indexes(sent[far]) == _indexes(sent[near])


@pytest.mark.timeout(30)
def test_writes_proposed_while_others_are_uncommitted_go_to_every_follower() -> None:
    sim, leader = _settled()
    sim.run_for(2)
    sent = _entry_sends(sim, leader)
    first = write(sim, leader.id, 1, "a")
    second = write(sim, leader.id, 1, "b")  # the first has not committed yet
    assert sim.run_for(0.5, lambda: all(second in _indexes(got) for got in sent.values()))
    assert any(first in _indexes(got) for got in sent.values())


@pytest.mark.timeout(30)
def test_when_the_follower_that_gets_entries_at_once_dies_the_other_takes_over() -> None:
    sim, leader = _settled()
    sent = _entry_sends(sim, leader)
    _lone_writes(sim, leader, 10, "a")
    near, far = sorted(sent, key=lambda n: -len(sent[n]))
    assert len(sent[near]) == 10
    sim.crash(near)
    # Writes still commit, with the other follower (a heartbeat or two later)...
    _lone_writes(sim, leader, 5, "b", within=3)
    sim.run_for(3)
    # ...and once a heartbeat round went unanswered, each goes to the other at once.
    before = len(sent[far])
    last = write(sim, leader.id, 1, "c")
    assert sim.run_for(0.5, lambda: sim.core(leader.id).commit_index >= last)
    assert len(sent[far]) == before + 1


# -------------------------------------------------------------------- reads


@pytest.mark.timeout(30)
def test_read_index_batches_share_one_heartbeat_round() -> None:
    sim = cluster(3)
    leader = wait_leader(sim)
    last = write(sim, leader.id, 3)
    assert sim.run_for(E, applied_everywhere(sim, last))
    sim.ticking = False  # no periodic heartbeats: only the reads cause rounds
    sim.run_for(2)
    rounds: set[int] = set()
    beats = 0

    def on_send(m: Message) -> None:
        nonlocal beats
        if m.frm == leader.id and m.type == MsgType.HEARTBEAT:
            beats += 1
            rounds.add(m.round)

    sim.send_hooks.append(on_send)
    tokens = sim.read_batch(leader.id, 50)
    assert len(tokens) == 50
    assert sim.run_for(2, lambda: all(sim.read_served(t) for t in tokens))
    # One round, and only to the one follower that makes a quorum with the leader.
    assert len(rounds) == 1 and beats == 1, "50 reads in one turn must share one round"
    assert {sim.read_index_of(t) for t in tokens} == {last}


@pytest.mark.timeout(30)
def test_read_round_passes_over_a_follower_that_stopped_answering() -> None:
    sim = cluster(5)
    leader = wait_leader(sim)
    last = write(sim, leader.id, 3)
    assert sim.run_for(E, applied_everywhere(sim, last))
    sent: list[Message] = []

    def on_send(m: Message) -> None:
        if m.frm == leader.id and m.type == MsgType.HEARTBEAT:
            sent.append(m)

    sim.send_hooks.append(on_send)

    def read_round() -> set[NodeId]:
        """Who a round of reads is sent to; its reads are served."""
        sent.clear()
        tokens = sim.read_batch(leader.id, 5)
        assert sim.run_for(3 * E, lambda: all(sim.read_served(t) for t in tokens))
        assert {sim.read_index_of(t) for t in tokens} == {last}
        first = min(m.round for m in sent)
        return {m.to for m in sent if m.round == first}

    chosen = read_round()
    assert len(chosen) == 2, "two followers make a quorum of five with the leader"
    assert read_round() == chosen, "the same followers while they answer"
    quiet = min(chosen)
    sim.block(quiet, leader.id)
    # Its answer never comes: the periodic heartbeat, sent to all, confirms the round.
    read_round()
    after = read_round()
    assert quiet not in after and len(after) == 2


@pytest.mark.timeout(30)
def test_lease_reads_stop_when_leader_is_cut_off() -> None:
    sim = cluster(3)
    leader = wait_leader(sim)
    assert sim.run_for(2, lambda: leader.live().lease_valid())
    sim.isolate(leader.id)
    assert sim.run_for(E, lambda: not leader.live().lease_valid())
    assert sim.leader() is leader or sim.leader() is None, "the lease outlived the leadership"
    new = wait_leader(sim, exclude=(leader.id,))
    write(sim, new.id)
    assert not sim.lease_read(leader.id)


@pytest.mark.timeout(30)
def test_lease_is_forfeited_once_timeout_now_is_sent() -> None:
    """A TIMEOUT_NOW that arrives late (after the transfer timed out) makes its
    target campaign past the followers' lease loyalty: the old leader must not
    serve a lease read that misses the new leader's writes."""
    sim = cluster(3)
    leader = wait_leader(sim)
    a, b = followers(sim, leader)
    held: list[Message] = []

    def hold(m: Message) -> bool:
        if m.type == MsgType.TIMEOUT_NOW:
            held.append(m)
            return True
        return False

    sim.drop_filter = hold
    assert sim.transfer(leader.id, a) == a
    sim.run_for(2 * E)  # the transfer times out as far as the leader knows
    assert held
    sim.drop_filter = None
    sim.block(a, leader.id)
    sim.block(b, leader.id)
    sim.inject(held[0])
    assert sim.run_for(E, lambda: sim.node(a).role == Role.LEADER)
    idx = write(sim, a, 1, "new")
    assert sim.run_for(2, applied_everywhere(sim, idx, [a]))
    sim.lease_read(leader.id)  # raises a linearizability violation if served


@pytest.mark.timeout(30)
def test_a_follower_that_lent_a_lease_refuses_to_campaign_on_demand() -> None:
    """Seed 295: with the leader cut off from one follower, a campaign forced on
    the other follower (which had just acked the leader's heartbeat) won with
    the cut-off node's vote, and committed, while the old leader, now cut off
    from both, still served lease reads."""
    sim = cluster(3)
    leader = wait_leader(sim)
    a, b = followers(sim, leader)
    sim.block(leader.id, b)
    sim.run_for(E + 1)  # b's loyalty to the leader runs out; a still hears from it
    assert sim.leader() is leader and sim.run_for(2, lambda: leader.live().lease_valid())
    term = sim.core(a).term
    sim.campaign(a)
    sim.isolate(leader.id)
    assert sim.core(a).role == Role.FOLLOWER and sim.core(a).term == term

    def check_old_leases() -> bool:
        new = sim.leader()
        if new is not None and new is not leader and new.live().committed_in_term():
            sim.lease_read(leader.id)  # raises a linearizability violation if served
        return False

    sim.run_for(E / 2, check_old_leases)
    # The refusal costs no liveness: the other two elect a leader by themselves.
    new = wait_leader(sim, exclude=(leader.id,))
    idx = write(sim, new.id, 1, "new")
    assert sim.run_for(2, applied_everywhere(sim, idx, [new.id]))
    assert not sim.lease_read(leader.id)


# ---------------------------------------------------------------- snapshots


@pytest.mark.timeout(30)
def test_snapshot_streams_in_chunks_and_survives_a_leader_crash() -> None:
    sim = cluster(3, snapshot_chunk_size=8, max_snapshot_inflight=1)
    leader = wait_leader(sim)
    lagger = followers(sim, leader)[1]
    sim.isolate(lagger)
    last = write(sim, leader.id, 30)
    up = [n for n in sim.nodes if n != lagger]
    assert sim.run_for(E, applied_everywhere(sim, last, up))
    for n in up:  # both may lead next: both must send a snapshot
        assert sim.snapshot(n) == last
    chunks: list[tuple[NodeId, int]] = []

    def on_deliver(m: Message) -> None:
        if m.to == lagger and m.type == MsgType.SNAP and m.snap is not None:
            chunks.append((m.frm, m.snap.offset))

    sim.deliver_hooks.append(on_deliver)
    sim.heal()
    assert sim.run_for(2 * E, lambda: len(chunks) >= 2)
    assert sim.node(lagger).store.snap is None, "still mid-transfer"
    sim.crash(leader.id)
    new = wait_leader(sim, exclude=(leader.id,))
    assert sim.run_for(4 * E, applied_everywhere(sim, last, [new.id, lagger]))
    sim.run_for(1)
    snap = sim.node(lagger).store.snap
    assert snap is not None and snap.index == last
    senders = {frm for frm, _ in chunks}
    assert senders == {leader.id, new.id}
    assert len({off for frm, off in chunks if frm == new.id}) >= 3, "sent in several chunks"
    sim.restart(leader.id)
    idx = write(sim, new.id)
    assert sim.run_for(4 * E, applied_everywhere(sim, idx))
    sim.check_converged(list(sim.nodes))


@pytest.mark.timeout(30)
def test_snapshot_behind_the_log_keeps_acknowledged_entries() -> None:
    """A snapshot that arrives after the follower already appended (and acked)
    entries past it must not wipe them: the leader counts them."""
    sim = cluster(3, compaction_tail=0)
    leader = wait_leader(sim)
    lid = leader.id
    f, g = followers(sim, leader)
    sim.isolate(f)
    s1 = write(sim, lid, 10, "a")
    assert sim.run_for(E, applied_everywhere(sim, s1, [lid, g]))
    assert sim.snapshot(lid) == s1
    # f catches up through snapshot s1, then gets more entries, but its acks
    # are lost (the leader keeps probing it from s1) and so are the APPs that
    # would tell it a newer commit index.
    sim.drop_filter = lambda m: (
        (m.type == MsgType.APP_RESP and m.frm == f)
        or (m.type == MsgType.APP and m.to == f and m.commit > s1)
    )
    sim.heal()
    assert sim.run_for(2 * E, applied_everywhere(sim, s1, [f]))
    last = write(sim, lid, 10, "b")
    assert sim.run_for(E, lambda: sim.node(f).acked[1] >= last)
    assert sim.node(f).acked[1] == last and sim.core(f).commit_index < last - 3
    # f's acks never arrive: the writes commit once g has them too.
    assert sim.run_for(E, applied_everywhere(sim, last, [lid, g]))
    assert sim.core(f).commit_index < last - 3
    # The leader compacts to a point inside f's log and streams that snapshot.
    assert sim.snapshot(lid, last - 3) == last - 3
    streamed: list[Message] = []
    sim.send_hooks.append(
        lambda m: streamed.append(m) if m.type == MsgType.SNAP and m.to == f else None
    )
    assert sim.run_for(2 * E, lambda: bool(streamed))
    sim.drop_filter = None
    more = write(sim, lid, 1, "c")
    assert sim.run_for(4 * E, applied_everywhere(sim, more))
    sim.check_converged(list(sim.nodes))


@pytest.mark.timeout(30)
def test_the_tail_kept_behind_a_snapshot_is_bounded_in_bytes_too() -> None:
    # Entries are batches: 50 of them may hold a lot, and the tail stays in memory.
    per = 100 + ENTRY_OVERHEAD
    sim = cluster(3, compaction_tail=50, compaction_tail_bytes=4 * per)
    leader = wait_leader(sim)
    lid = leader.id
    f, g = followers(sim, leader)
    sim.isolate(f)
    assert sim.propose(lid, [b"v" * 100 for _ in range(20)])
    last = sim.core(lid).log.last_index
    assert sim.run_for(E, applied_everywhere(sim, last, [lid, g]))
    assert sim.snapshot(lid) == last
    assert sim.core(lid).log.prev_index == last - 4
    # f lags by more than the tail: the snapshot brings it up to date.
    sim.heal()
    assert sim.run_for(4 * E, applied_everywhere(sim, last))
    sim.check_converged(list(sim.nodes))


@pytest.mark.timeout(30)
def test_entries_committed_during_an_install_wait_for_it() -> None:
    """A follower whose snapshot install is still being persisted learns of
    later committed entries (here a leader's APP that overtook the ack): they
    must be applied after the install, to the restored machine, not to the
    machine as it was before the snapshot."""
    sim = cluster(3, net=quiet_net(persist_min=0.5, persist_max=0.5))
    leader = wait_leader(sim)
    lid = leader.id
    f, g = followers(sim, leader)
    sim.isolate(f)
    s = write(sim, lid, 10, "a")
    assert sim.run_for(2 * E, applied_everywhere(sim, s, [lid, g]))
    assert sim.snapshot(lid) == s
    more = write(sim, lid, 3, "b")
    assert sim.run_for(2 * E, applied_everywhere(sim, more, [lid, g]))
    core = sim.core(lid)
    term_s = core.term_at(s)
    assert term_s is not None
    app = Message(
        MsgType.APP,
        f,
        lid,
        core.term,
        term_s,
        s,
        core.log_entries(s + 1, more + 1),
        core.commit_index,
    )
    injected: list[Message] = []

    def on_deliver(m: Message) -> None:
        snap = m.snap
        if m.to == f and snap is not None and snap.done and not injected:
            injected.append(app)
            sim.inject(app, delay=0.1)  # lands while the install is being persisted

    sim.deliver_hooks.append(on_deliver)
    sim.heal()
    assert sim.run_for(4 * E, applied_everywhere(sim, more, [f]))
    assert injected, "the snapshot was never streamed"
    snap = sim.node(f).store.snap
    assert snap is not None and snap.index == s
    sim.check_converged(list(sim.nodes))


def test_the_install_hold_is_what_keeps_it_safe() -> None:
    with mutated("apply_while_installing"), pytest.raises(Violation, match="state machine"):
        test_entries_committed_during_an_install_wait_for_it()


@pytest.mark.timeout(30)
def test_restart_recovers_state_from_snapshot_and_log() -> None:
    sim = cluster(3, net=quiet_net(persist_min=0.0, persist_max=0.5))
    leader = wait_leader(sim)
    last = write(sim, leader.id, 20)
    assert sim.run_for(E, applied_everywhere(sim, last))
    f = followers(sim, leader)[0]
    sim.snapshot(f, last - 5)
    sim.crash(f)
    more = write(sim, leader.id, 5)
    sim.restart(f)
    assert sim.node(f).machine.applied >= last - 5
    assert sim.run_for(2 * E, applied_everywhere(sim, more))
    sim.check_converged(list(sim.nodes))


# ------------------------------------------------------------- determinism


def _signature(seed: int, nodes: int) -> dict[str, object]:
    out = run_seed(seed, nodes, 1500)
    return {"ok": out.ok, "steps": out.steps, "time": out.virtual_time, "stats": out.stats}


@pytest.mark.timeout(60)
def test_a_seed_replays_exactly_whatever_the_hash_seed() -> None:
    code = (
        "import json, sys; sys.path.insert(0, '.');"
        "from tests.test_sim import _signature;"
        "print(json.dumps([_signature(s, n) for s, n in ((3, 3), (4, 5), (5, 7))]))"
    )
    runs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        res = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=50,
            check=True,
        )
        runs.append(json.loads(res.stdout))
    assert runs[0] == runs[1]
    assert runs[0] == json.loads(
        json.dumps([_signature(s, n) for s, n in ((3, 3), (4, 5), (5, 7))])
    )


# ---------------------------------------------------------------- mutations


def _first_catch(name: str, limit: int, profile: str | None = None) -> Outcome | None:
    """The first seed (in [0, limit)) that fails with mutation ``name`` but passes without."""
    for seed in range(limit):
        with mutated(name):
            out = run_seed(seed, None, STEPS, profile=profile, trace_lines=0)
        if not out.ok and run_seed(seed, None, STEPS, profile=profile, trace_lines=0).ok:
            return out
    return None


MUTATION_LIMITS = {
    "vote_twice": 20,
    "stale_log_vote": 40,
    "commit_old_term": 400,
    "apply_before_commit": 20,
    "ack_before_persist": 20,
    "read_without_quorum": 200,
    "lease_without_quorum": 300,
    "apply_while_installing": 100,
}

MUTATION_PROFILES = {
    # The bug shows only while a snapshot's persist is slow enough for
    # committed entries to arrive behind it: the profile with slow disks
    # finds it within a few dozen seeds, the mixed sweep only after hundreds
    # (and after more or fewer whenever the replication policy moves them).
    "apply_while_installing": "crashy",
}


@pytest.mark.timeout(110)
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_simulator_catches_mutation(name: str) -> None:
    out = _first_catch(name, MUTATION_LIMITS[name], MUTATION_PROFILES.get(name))
    assert out is not None, f"mutation {name} survived {MUTATION_LIMITS[name]} seeds"


def test_figure8_scenario_catches_commit_by_counting() -> None:
    # caught by the commit-rule invariant, or else by the scenario's own assertion
    with mutated("commit_old_term"), pytest.raises((Violation, AssertionError)):
        test_figure8_old_term_entries_not_committed_by_counting()
