"""Bank transfers in MULTI/EXEC transactions, whose total balance must be conserved.

Accounts ``bank:0 .. bank:N-1`` start with the same balance (set in one
transaction before the nemesis starts).  Each thread then repeatedly sends
``MULTI; DECRBY src x; INCRBY dst x; EXEC`` for two random accounts and a
random amount, and now and then reads every balance in one transaction
(``MULTI; GET bank:0; ...; EXEC``).  A transaction is one log entry, applied
all or none on every node, so:

* every snapshot read that succeeds sums to the initial total;
* after healing, the final balances sum to the initial total;
* each final balance lies between the balance the acknowledged transfers
  left and what the transfers of unknown outcome could add or take away
  (a lost acknowledged transfer, or a refused one that was applied after
  all, moves money outside those bounds even though the total holds).

Any outcome is allowed for a single transfer.  Commands go over plain
connections (redis-py's :class:`~redis.Connection` through
:class:`~tests.jepsen.harness.Wire`, no retries): :mod:`redraft.client`
refuses pipelines, so a transaction could not stay on one connection there.
Each thread sticks to the node it believes leads and follows ``-TRY``, as the
harness's clients do.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from .harness import Line, classify_error
from .history import Outcome

KEY_PREFIX = "bank:"
MAX_AMOUNT = 20
"""A transfer moves between 1 and this much."""
MAX_BAD_SHOWN = 5


@dataclass
class Ledger:
    """What one transferring thread saw."""

    accounts: int
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    reads_ok: int = 0
    reads_failed: int = 0
    reads_unknown: int = 0
    redirects: int = 0
    connect_errors: int = 0
    net: list[int] = field(default_factory=list)
    """Per account: the sum of the acknowledged transfers' deltas."""
    unknown_up: list[int] = field(default_factory=list)
    """Per account: what transfers of unknown outcome could have added, at most."""
    unknown_down: list[int] = field(default_factory=list)
    """Per account: what transfers of unknown outcome could have taken away (<= 0)."""
    bad: list[str] = field(default_factory=list)
    """Anomalies seen while running: a snapshot read off the total, a malformed EXEC reply."""
    errors: Counter[str] = field(default_factory=Counter)
    """Error replies that left an outcome unknown, by their first word."""

    def __post_init__(self) -> None:
        for acc in (self.net, self.unknown_up, self.unknown_down):
            acc[:] = [0] * self.accounts


class _Line(Line):
    """One connection, stuck to the node it believes leads; follows ``-TRY``."""

    def __init__(
        self, ports: list[int], timeout: float, rng: random.Random, ledger: Ledger
    ) -> None:
        super().__init__(ports, timeout, rng, ledger)
        self.ledger = ledger

    def transact(self, commands: list[list[Any]]) -> tuple[Outcome, Any] | None:
        """Send ``MULTI, *commands, EXEC`` at once: EXEC's outcome and reply (None: nothing sent).

        OK: EXEC answered an array (the commands' replies); FAIL: the
        transaction was certainly not applied; UNKNOWN: it may have been.
        """
        conn = self.connected()
        if conn is None:
            return None
        batch = [["MULTI"], *commands, ["EXEC"]]
        try:
            conn.send(batch)
            replies = [conn.read() for _ in batch]
        except (redis.RedisError, OSError):
            # Timeouts, lost connections, garbled replies: EXEC may have been applied.
            self.retarget()
            return Outcome.UNKNOWN, None
        reply = replies[-1]
        if isinstance(reply, list):
            return Outcome.OK, reply
        if isinstance(reply, redis.exceptions.ExecAbortError):
            return Outcome.FAIL, reply  # refused while queueing: nothing was logged
        if isinstance(reply, redis.ResponseError):
            return self._refused(reply), reply
        self.retarget()
        return Outcome.UNKNOWN, reply

    def _refused(self, reply: redis.ResponseError) -> Outcome:
        message = str(reply)
        if message.startswith("EXEC without MULTI"):
            return Outcome.FAIL  # MULTI itself was refused: nothing was logged
        outcome, leader = classify_error(message)
        if outcome is Outcome.UNKNOWN:
            self.ledger.errors[message.split(" ", 1)[0]] += 1
            self.retarget()
            return outcome
        if leader:
            self.ledger.redirects += 1
            port = int(leader.rpartition(":")[2])
            if port == self.target:
                time.sleep(self.rng.uniform(0.005, 0.02))
            self.retarget(port)
        else:
            self.retarget()
            time.sleep(self.rng.uniform(0.03, 0.1))
        return outcome


class BankTransfers:
    """``threads`` threads moving money between ``accounts`` accounts until ``stop`` is set."""

    def __init__(
        self,
        ports: list[int],
        threads: int,
        stop: threading.Event,
        *,
        accounts: int = 5,
        balance: int = 100,
        seed: int = 0,
        read_share: float = 0.2,
        timeout: float = 1.0,
    ) -> None:
        self.ports = ports
        self.stop = stop
        self.accounts = accounts
        self.balance = balance
        self.total = accounts * balance
        self.read_share = read_share
        self.timeout = timeout
        self.keys = [f"{KEY_PREFIX}{i}" for i in range(accounts)]
        self.ledgers = [Ledger(accounts) for _ in range(threads)]
        rng = random.Random(seed)
        self._seeds = [rng.randrange(2**63) for _ in range(threads + 1)]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"bank-{i}", daemon=True)
            for i in range(threads)
        ]

    def setup(self, timeout: float = 15.0) -> None:
        """Give every account its balance (one transaction; retried, it is idempotent)."""
        ledger = Ledger(self.accounts)
        line = _Line(self.ports, self.timeout, random.Random(self._seeds[-1]), ledger)
        sets = [["SET", key, self.balance] for key in self.keys]
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                done = line.transact(sets)
                if done is not None and done[0] is Outcome.OK:
                    return
                time.sleep(0.05)
        finally:
            line.close()
        raise RuntimeError(f"could not set the bank's {self.accounts} balances in {timeout:g}s")

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> None:
        for t in self._threads:
            t.join(timeout)

    def _run(self, index: int) -> None:
        ledger = self.ledgers[index]
        rng = random.Random(self._seeds[index])
        line = _Line(self.ports, self.timeout, rng, ledger)
        try:
            while not self.stop.is_set():
                if rng.random() < self.read_share:
                    self._read(line, ledger)
                else:
                    self._transfer(line, ledger, rng)
        finally:
            line.close()

    def _transfer(self, line: _Line, ledger: Ledger, rng: random.Random) -> None:
        src, dst = rng.sample(range(self.accounts), 2)
        amount = rng.randint(1, MAX_AMOUNT)
        done = line.transact(
            [["DECRBY", self.keys[src], amount], ["INCRBY", self.keys[dst], amount]]
        )
        if done is None:
            return
        outcome, reply = done
        if outcome is Outcome.OK:
            if not (len(reply) == 2 and all(type(v) is int for v in reply)):
                ledger.bad.append(f"transfer {src}->{dst} of {amount}: EXEC replied {reply!r}")
            ledger.ok += 1
            ledger.net[src] -= amount
            ledger.net[dst] += amount
        elif outcome is Outcome.FAIL:
            ledger.failed += 1
        else:
            ledger.unknown += 1
            ledger.unknown_down[src] -= amount
            ledger.unknown_up[dst] += amount

    def _read(self, line: _Line, ledger: Ledger) -> None:
        done = line.transact([["GET", key] for key in self.keys])
        if done is None:
            return
        outcome, reply = done
        if outcome is Outcome.FAIL:
            ledger.reads_failed += 1
            return
        if outcome is Outcome.UNKNOWN:
            ledger.reads_unknown += 1
            return
        ledger.reads_ok += 1
        try:
            balances = [int(v) for v in reply]
        except (TypeError, ValueError):
            ledger.bad.append(f"snapshot read returned {reply!r}")
            return
        if len(balances) != self.accounts or sum(balances) != self.total:
            ledger.bad.append(
                f"snapshot read saw total {sum(balances)}, not {self.total}: {balances}"
            )

    def check(self, final: dict[str, int | None]) -> tuple[list[str], list[str]]:
        """(failures, notes) for the final balances, read after healing."""
        failures: list[str] = []
        ls = self.ledgers
        ok = sum(g.ok for g in ls)
        reads_ok = sum(g.reads_ok for g in ls)
        bad = [b for g in ls for b in g.bad]
        errors: Counter[str] = Counter()
        for g in ls:
            errors.update(g.errors)
        balances = [final.get(key) for key in self.keys]
        notes = [
            f"{self.accounts} accounts of {self.balance}, total {self.total}",
            f"transfers {ok} ok, {sum(g.failed for g in ls)} failed, "
            f"{sum(g.unknown for g in ls)} unknown",
            f"snapshot reads {reads_ok} ok (each checked against the total), "
            f"{sum(g.reads_failed for g in ls)} failed, {sum(g.reads_unknown for g in ls)} unknown",
            f"final balances {balances}",
        ]
        if errors:
            notes.append(
                "unknown-outcome errors " + ", ".join(f"{k} x{v}" for k, v in errors.items())
            )
        if bad:
            failures.append(
                f"bank: {len(bad)} anomalies while running: " + "; ".join(bad[:MAX_BAD_SHOWN])
            )
        if ok + reads_ok == 0:
            failures.append(
                "bank: no transfer or snapshot read succeeded: the check proved nothing"
            )
        known = [b for b in balances if b is not None]
        if len(known) != self.accounts:
            failures.append(f"bank: accounts missing after healing: {balances}")
        elif sum(known) != self.total:
            failures.append(f"bank: total not conserved: {sum(known)} != {self.total} ({known})")
        failures += self._bounds(balances)
        return failures, notes

    def _bounds(self, balances: list[int | None]) -> list[str]:
        """Accounts whose final balance no set of the unknown transfers explains."""
        out = []
        for i, value in enumerate(balances):
            if value is None:
                continue
            base = self.balance + sum(g.net[i] for g in self.ledgers)
            low = base + sum(g.unknown_down[i] for g in self.ledgers)
            high = base + sum(g.unknown_up[i] for g in self.ledgers)
            if not low <= value <= high:
                out.append(
                    f"bank: {self.keys[i]} ends at {value}, but the acknowledged transfers "
                    f"leave {base} and the unknown ones allow only [{low}, {high}]"
                )
        return out


__all__ = ["KEY_PREFIX", "BankTransfers", "Ledger"]
