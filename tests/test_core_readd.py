"""A member removed and re-added under the same id with an empty log catches up.

Node ids are addresses, so an operator who wipes a removed node's data dir
and joins it again brings back an empty process under the old id.  The
leader must not credit it with what its predecessor had (found by the fault
suite: the leader resent to it forever and could promote it while empty).
"""

from __future__ import annotations

import random

from redraft.raft.core import RaftConfig, RaftCore, Restored
from redraft.raft.types import ChangeType, Message, MsgType, Role

A, B, C = "a:1", "b:1", "c:1"


class Net:
    def __init__(self) -> None:
        boot = RaftCore.bootstrap([A, B, C])
        self.cores = {
            i: self.make(i, Restored(boot.hard_state, None, list(boot.entries))) for i in (A, B, C)
        }
        self.down: set[str] = set()
        self.held: list[Message] = []
        self.hold_from: set[str] = set()
        self.hold_to: set[str] = set()
        self.sent_to: dict[str, int] = {}

    max_msg_bytes = 1 << 20

    @classmethod
    def make(cls, nid: str, restored: Restored | None = None) -> RaftCore:
        cfg = RaftConfig(nid, election_tick=10, max_msg_bytes=cls.max_msg_bytes)
        return RaftCore(cfg, random.Random(7), restored)

    def pump(self) -> None:
        for _ in range(200):
            moved = False
            for nid, core in list(self.cores.items()):
                if nid in self.down:
                    continue
                rd = core.ready()
                if rd is None:
                    continue
                moved = True
                core.advance(rd)
                for m in rd.messages + rd.messages_after_persist:
                    self.sent_to[m.to] = self.sent_to.get(m.to, 0) + 1
                    if m.frm in self.hold_from or m.to in self.hold_to:
                        self.held.append(m)
                    elif m.to in self.cores and m.to not in self.down:
                        self.cores[m.to].step(m)
            if not moved:
                return

    def ticks(self, n: int) -> None:
        for _ in range(n):
            for nid, core in self.cores.items():
                if nid not in self.down:
                    core.tick()
            self.pump()

    def leader(self) -> RaftCore:
        for _ in range(100):
            for core in self.cores.values():
                if core.role == Role.LEADER:
                    return core
            self.ticks(1)
        raise AssertionError("no leader")


def test_fast_readd_starts_from_a_fresh_progress() -> None:
    net = Net()
    lead = net.leader()
    c = C if lead.id != C else B
    for _ in range(5):
        lead.propose([b"x"] * 10)
        net.pump()
    net.down.add(c)
    lead.change_membership(ChangeType.REMOVE, c)
    net.pump()
    net.cores[c] = Net.make(c)
    net.down.discard(c)
    lead.change_membership(ChangeType.ADD_VOTER, c)
    assert lead.status().progress[c].match == 0
    net.ticks(30)
    assert c in lead.membership.voters
    assert net.cores[c].last_index == lead.last_index
    assert net.cores[c].commit_index == lead.commit_index


def test_late_acks_of_a_predecessor_do_not_strand_the_new_node() -> None:
    net = Net()
    lead = net.leader()
    c = C if lead.id != C else B
    # The old c acknowledges 50 writes, but its acks are held on the wire.
    net.hold_from.add(c)
    for _ in range(5):
        lead.propose([b"x"] * 10)
        net.pump()
    late = [m for m in net.held if m.type == MsgType.APP_RESP and not m.reject]
    net.hold_from.clear()
    net.held.clear()
    lead.change_membership(ChangeType.REMOVE, c)
    net.pump()
    net.ticks(25)  # the removal commits and c is no longer fed
    net.cores[c] = Net.make(c)
    lead.change_membership(ChangeType.ADD_VOTER, c)
    net.pump()
    for m in late:  # now the old process's acks arrive
        lead.step(m)
    before = net.sent_to.get(c, 0)
    net.ticks(30)
    assert net.cores[c].last_index == lead.last_index, "the new node never caught up"
    assert c in lead.membership.voters
    # Caught up with a bounded number of messages, not a resend storm.
    assert net.sent_to.get(c, 0) - before < 200


class SmallMessages(Net):
    max_msg_bytes = 128  # a catch-up takes many APPs, so it can be overtaken


def test_late_acks_landing_during_the_catch_up_do_not_strand_the_new_node() -> None:
    """The predecessor's acks arrive after the new node's first rejection
    sent the leader back to index 1, and before the new node acknowledged
    much: the leader then counts entries the new node lacks, and the new
    node's rejections name exactly that match index (found by the fault
    suite: the new node stayed empty until the next election)."""
    net = SmallMessages()
    lead = net.leader()
    c = C if lead.id != C else B
    net.hold_from.add(c)
    for _ in range(5):
        lead.propose([b"x"] * 10)
        net.pump()
    late = [m for m in net.held if m.type == MsgType.APP_RESP and not m.reject]
    assert late and max(m.index for m in late) > 20
    net.hold_from.clear()
    net.held.clear()
    lead.change_membership(ChangeType.REMOVE, c)
    net.pump()
    net.ticks(25)
    net.cores[c] = Net.make(c)
    net.hold_to.add(c)
    lead.change_membership(ChangeType.ADD_LEARNER, c)
    net.pump()
    # The new node rejects the leader's probe, which restarts it from index 1...
    for _ in range(3):
        to_c, net.held = net.held, []
        for m in to_c:
            net.cores[c].step(m)
        rd = net.cores[c].ready()
        assert rd is not None
        net.cores[c].advance(rd)
        for m in rd.messages + rd.messages_after_persist:
            lead.step(m)
        net.pump()
        if lead.status().progress[c].next <= 2:
            break
    assert lead.status().progress[c].next <= 2
    # ...and then the old process's acks arrive.
    for m in late:
        lead.step(m)
    net.hold_to.clear()
    for m in net.held:
        net.cores[c].step(m)
    net.held.clear()
    net.ticks(60)
    assert net.cores[c].last_index == lead.last_index, "the new node never caught up"
    assert lead.status().progress[c].match == lead.last_index
