"""Plain commands (``Machine.reads``, ``Machine.writes``): served without ``command``.

A plain read must behave as a read through ``m.apply`` would, a plain write
as a logged ``mutate`` would.  A node runs in a thread of this process with
a clone that also declares a few plain commands of its own, so the tests can
count what reached ``command``, what was logged and what the log holds.  Each
property is checked at consistency medium (reads answered in place within
the lease) and high (reads behind a ReadIndex round).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import hiredis
import pytest

from redraft.errors import Redirect
from redraft.examples.clone import Clone
from redraft.machine import OK, Applier, Command, Conn, Read, Write
from redraft.options import Level, Options
from redraft.proposals import decode_batch
from redraft.replies import READ, ReadRun
from redraft.resp import encode_command
from redraft.session import Session
from tests.test_fuzz_server import Recorder, ThreadNode

pytestmark = pytest.mark.timeout(60)


class Declaring(Clone):
    """The clone, plus plain commands that fail or are misused, and a count of commands."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[str] = []
        self.applied: list[bytes] = []
        self.retyped: list[list[Any]] = []
        self.checked_runs: list[int] = []
        self.applied_runs: list[int] = []

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        self.commands.append(cmd.name)
        if cmd.args[0].lower() == b"retype":
            if conn is not None:
                # A machine may log arguments that are not bytes: every
                # node, the leader too, must apply what the log gives back.
                logged = cast(list[bytes], [b"retype", cmd.args[1].decode(), 7])
                return m.apply(conn, Command(logged), lambda: None, lambda _: OK)
            self.retyped.append(list(cmd.args))
            return m.apply(None, cmd, lambda: None, None)
        if cmd.args[0].lower() == b"misuse":
            # SET is a plain write: proposing it with a mutate would never run the mutate.
            return m.apply(conn, Command([b"set", b"k", b"v"]), lambda: None, None)
        return super().command(m, conn, cmd)

    def writes(self) -> dict[str, Write]:
        return {
            **super().writes(),
            "note": Write(self._note, self._check_note),
            # NOTE again, with the hooks for runs: it must answer exactly as NOTE does.
            "jot": Write(
                self._note,
                self._check_note,
                apply_many=self._notes,
                check_many=self._check_notes,
            ),
            # A machine bug: a run's results one short.
            "miscount": Write(
                lambda m, args: OK, apply_many=lambda m, cmds: [OK] * (len(cmds) - 1)
            ),
        }

    def _check_notes(self, cmds: list[list[bytes]]) -> None:
        self.checked_runs.append(len(cmds))
        for args in cmds:
            self._check_note(args)

    def _notes(self, m: Applier, cmds: list[list[bytes]]) -> list[Any]:
        self.applied_runs.append(len(cmds))
        results: list[Any] = []
        for args in cmds:
            try:
                results.append(self._note(m, args))
            except ValueError as exc:
                results.append(exc)
        return results

    def _check_note(self, args: list[bytes]) -> None:
        if len(args) != 2 or args[1] == b"refused":
            raise ValueError("the note must be one word, not that one")

    def _note(self, m: Applier, args: list[bytes]) -> Any:
        if args[1] == b"fails":
            raise ValueError("the note failed")  # before any change: the state stays
        self.applied.append(args[1])
        return len(self.applied)

    def reads(self) -> dict[str, Read]:
        return {
            **super().reads(),
            "Boom": self._boom,
        }

    def _boom(self, m: Applier, args: list[bytes]) -> Any:
        raise RuntimeError("the read broke")


@pytest.fixture(scope="module", params=[Level.MEDIUM, Level.HIGH], ids=["medium", "high"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ThreadNode, Declaring, Recorder]]:
    recorder = Recorder()
    logger = logging.getLogger("redraft")
    logger.addHandler(recorder)
    machine = Declaring()
    opts = Options(log_level="warning", consistency=request.param)
    tn = ThreadNode(Path(tmp_path_factory.mktemp("reads")), opts, machine)
    try:
        tn.start()
        yield tn, machine, recorder
    finally:
        tn.stop()
        logger.removeHandler(recorder)


def replies(port: int, *commands: list[str]) -> list[Any]:
    """Send ``commands`` in one write (a pipeline) and parse one reply each."""
    reader = hiredis.Reader()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(encode_command(list(c)) for c in commands))
        out: list[Any] = []
        while len(out) < len(commands):
            data = s.recv(65536)
            assert data, f"the node closed the connection after {out}"
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                out.append(str(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        return out


def test_declared_reads_never_reach_command(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, machine, _ = served
    assert replies(tn.port, ["SET", "a", "1"]) == [b"OK"]
    machine.commands.clear()
    got = replies(
        tn.port,
        ["GET", "a"],
        ["get", "a"],
        ["gEt", "a"],
        ["MGET", "a", "missing"],
        ["EXISTS", "a", "missing"],
        ["STRLEN", "a"],
        ["TYPE", "a"],
        ["TTL", "a"],
        ["DBSIZE"],
    )
    # DBSIZE: "a" and the key the fixture set when it started.
    assert got == [b"1", b"1", b"1", [b"1", None], 1, 1, b"string", -1, 2]
    assert machine.commands == []


def test_a_read_pipelined_behind_a_write_sees_it_and_a_later_write_waits_for_it(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served
    got = replies(
        tn.port,
        ["SET", "p", "one"],
        ["GET", "p"],
        ["SET", "p", "two"],
        ["GET", "p"],
        ["DEL", "p"],
        ["GET", "p"],
    )
    assert got == [b"OK", b"one", b"OK", b"two", 1, None]


def test_bad_arguments_and_failing_reads_get_an_error_and_the_connection_goes_on(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, recorder = served
    got = replies(
        tn.port,
        ["SET", "e", "x"],
        ["GET"],
        ["GET", "e", "extra"],
        ["boom"],
        ["GET", "e"],
    )
    wrong = "ERR wrong number of arguments for 'get' command"
    assert got == [b"OK", wrong, wrong, "ERR the read broke", b"x"]
    # The machine's failure is logged, as a failing command's is.
    assert any("the read broke" in m for m in recorder.messages()), recorder.messages()


def test_proposing_a_declared_write_from_command_is_refused_with_a_clear_error(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served
    got = replies(tn.port, ["MISUSE"], ["GET", "k"], ["ECHO", "still here"])
    assert got[0].startswith("ERR 'set' is declared in the machine's writes()"), got
    assert got[1:] == [None, b"still here"]


def test_replies_switch_protocol_mid_pipeline(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served
    with socket.create_connection(("127.0.0.1", tn.port), timeout=10) as s:
        s.sendall(b"GET nothing\r\nHELLO 3\r\nGET nothing\r\nHELLO 2\r\nGET nothing\r\n")
        data = b""
        while not (data.endswith(b"$-1\r\n") and data.count(b"$-1\r\n") >= 2):
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    # RESP2's null, HELLO 3's map, RESP3's null, HELLO 2's array, RESP2's null.
    assert data.startswith(b"$-1\r\n%7\r\n")
    assert b"_\r\n*14\r\n" in data
    assert data.endswith(b"$-1\r\n")


def test_declared_writes_are_checked_logged_and_applied_without_command(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, machine, _ = served
    machine.commands.clear()
    before = len(tn.committed())
    got = replies(
        tn.port,
        ["SET", "w", "1"],
        ["sEt", "w", "2", "GET"],
        ["set", "w", "3", "NX"],
        ["SET", "w", "4", "EX", "100"],
        ["TTL", "w"],
        ["NOTE", "first"],
        ["note", "second"],
    )
    assert got == [b"OK", b"1", None, b"OK", 100, 1, 2]
    assert machine.applied[-2:] == [b"first", b"second"]
    assert machine.commands == [], "a plain command went through command()"
    assert len(tn.committed()) > before


def test_a_refused_write_never_reaches_the_log_and_a_failed_one_changes_nothing(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, machine, _ = served
    assert replies(tn.port, ["NOTE", "settle"]) == [len(machine.applied)]
    entries = len(tn.committed())
    got = replies(
        tn.port,
        ["SET", "r"],
        ["SET", "r", "v", "NX", "XX"],
        ["SET", "r", "v", "EX", "soon"],
        ["NOTE", "refused"],
        ["NOTE"],
        ["GET", "r"],
    )
    assert got == [
        "ERR wrong number of arguments for 'set' command",
        "ERR syntax error",
        "ERR value is not an integer or out of range",
        "ERR the note must be one word, not that one",
        "ERR the note must be one word, not that one",
        None,
    ]
    assert len(tn.committed()) == entries, "a refused write was logged"
    applied = list(machine.applied)
    assert replies(tn.port, ["NOTE", "fails"], ["NOTE", "after"]) == [
        "ERR the note failed",
        len(applied) + 1,
    ]
    assert machine.applied == [*applied, b"after"]


def test_reads_that_wait_together_are_answered_each_in_its_place(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served
    assert replies(tn.port, ["SET", "run", "v"]) == [b"OK"]
    # A fresh connection with nothing pending: at consistency high the whole
    # run waits for one ReadIndex round, at medium it is answered in place.
    got = replies(
        tn.port,
        ["GET", "run"],
        ["GET"],
        ["boom"],
        ["MGET", "run", "none"],
        ["GET", "run"],
        ["SET", "run", "w"],
        ["GET", "run"],
    )
    wrong = "ERR wrong number of arguments for 'get' command"
    assert got == [b"v", wrong, "ERR the read broke", [b"v", None], b"v", b"OK", b"w"]


def test_a_run_that_loses_its_round_fails_read_by_read(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served

    def drop() -> bytes:
        conn = _connect(tn)
        m = conn.shared.applier
        reads = tn.node.machine.reads()
        run = ReadRun(m, [(reads["get"], [b"GET", b"k"], "get")] * 3, conn.encode, conn.addr)
        slot = conn.new_slot(READ)
        slot.respond = slot.run = run
        # What the node does for the reads of a round that leadership loss dropped:
        conn.fill_error(slot, Redirect("127.0.0.1:9"))
        return conn.take_output()

    assert tn.on_loop(drop) == b"-TRY 127.0.0.1:9\r\n" * 3


def _connect(tn: ThreadNode) -> Session:
    """A session of the node's with no socket: its replies stay in ``out`` (call on its loop)."""
    return Session(tn.node.server.shared, "127.0.0.1:50000")


def test_a_run_of_writes_is_answered_write_by_write_in_its_place(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, machine, _ = served
    assert replies(tn.port, ["NOTE", "settle"]) == [len(machine.applied)]
    n = len(machine.applied)
    # Runs of SETs and NOTEs (each run shares one reply slot on the leader),
    # broken by a refused write, a read that must see them, another command.
    got = replies(
        tn.port,
        ["SET", "wr", "1"],
        ["SET", "wr", "2"],
        ["SET", "wr"],
        ["set", "wr", "3", "GET"],
        ["NOTE", "a"],
        ["NOTE", "fails"],
        ["NOTE", "b"],
        ["GET", "wr"],
        ["SET", "wr", "4"],
        ["INCR", "wr"],
        ["SET", "wr2", "x"],
        ["SET", "wr3", "y"],
        ["MGET", "wr", "wr2", "wr3"],
    )
    assert got == [
        b"OK",
        b"OK",
        "ERR wrong number of arguments for 'set' command",
        b"2",
        n + 1,
        "ERR the note failed",
        n + 2,
        b"3",
        b"OK",
        5,
        b"OK",
        b"OK",
        [b"5", b"x", b"y"],
    ]
    assert machine.applied[-2:] == [b"a", b"b"]


def test_a_write_with_hooks_for_runs_answers_as_one_without(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, machine, _ = served

    def pipeline(name: str) -> list[list[str]]:
        return [
            [name, "a"],
            [name, "b"],
            [name, "refused"],
            [name, "c"],
            [name, "fails"],
            [name, "d"],
            ["GET", "k"],
            [name, "e"],
        ]

    n = len(machine.applied)
    plain = replies(tn.port, *pipeline("NOTE"))
    machine.checked_runs.clear()
    machine.applied_runs.clear()
    hooked = replies(tn.port, *pipeline("JOT"))
    refused = "ERR the note must be one word, not that one"
    assert plain == [n + 1, n + 2, refused, n + 3, "ERR the note failed", n + 4, None, n + 5]
    assert hooked == [x + 5 if isinstance(x, int) else x for x in plain]
    assert machine.applied[-10:] == [b"a", b"b", b"c", b"d", b"e"] * 2
    # The run was checked whole (and, one refused, one by one), and the
    # logged writes before the read applied in one call (the refused one
    # never logged), not one call each.
    assert machine.checked_runs[0] == 6
    assert machine.applied_runs[0] >= 5


def test_a_run_whose_results_do_not_match_its_commands_answers_none_of_them(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, recorder = served
    wrong = "ERR the machine's apply_many gave the wrong number of results"
    got = replies(tn.port, *[["MISCOUNT", str(i)] for i in range(3)], ["PING"])
    assert got == [wrong, wrong, wrong, b"PONG"]
    assert any("apply_many" in r.getMessage() for r in recorder.records)
    assert replies(tn.port, ["MISCOUNT", "alone"]) == [b"OK"]


def test_a_run_longer_than_an_entry_holds_is_split_between_entries(tmp_path: Path) -> None:
    opts = Options(log_level="warning", max_batch_commands=4)
    tn = ThreadNode(tmp_path, opts, Declaring())
    try:
        tn.start()
        before = len(tn.committed())
        sets = [["SET", f"k{i}", str(i)] for i in range(11)]
        notes = [["NOTE", f"n{i}"] for i in range(6)]
        assert replies(tn.port, *sets, *notes, ["SET", "last", "1"]) == (
            [b"OK"] * 11 + list(range(1, 7)) + [b"OK"]
        )
        got = replies(tn.port, *[["GET", f"k{i}"] for i in range(11)])
        assert got == [str(i).encode() for i in range(11)]
        sizes = [len(decode_batch(e.data)[1]) for e in tn.committed()[before:] if e.data]
        assert sum(sizes) == 18
        assert max(sizes) <= 4, f"an entry holds more than max_batch_commands: {sizes}"
    finally:
        tn.stop()


def test_a_run_of_writes_that_cannot_be_proposed_fails_write_by_write(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served

    def fail() -> bytes:
        conn = _connect(tn)
        one = encode_command(["SET", "lost", "v"])
        conn.feed(one * 3 + encode_command(["NOTE", "lost"]) + one)
        # What the node does with a batch it cannot propose (it lost the
        # leadership) before this loop turn ends and proposes it:
        tn.node.group.proposer.fail_batch(Redirect("127.0.0.1:9"))
        return conn.take_output()

    assert tn.on_loop(fail) == b"-TRY 127.0.0.1:9\r\n" * 5
    assert replies(tn.port, ["GET", "lost"]) == [None]


def test_the_leader_applies_what_the_log_holds_not_what_was_proposed(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, machine, _ = served
    got = replies(tn.port, ["SET", "rt", "1"], ["RETYPE", "word"], ["SET", "rt", "2"])
    assert got == [b"OK", b"OK", b"OK"]
    assert machine.retyped[-1] == [b"retype", b"word", 7]


def test_a_write_refused_between_runs_keeps_its_place(
    served: tuple[ThreadNode, Declaring, Recorder],
) -> None:
    tn, _, _ = served
    got = replies(
        tn.port,
        ["SET", "kp", "1"],
        ["SET", "kp", "2"],
        ["NOTE", "refused"],
        ["SET", "kp", "3"],
        ["SET", "kp", "4"],
        ["NOTE"],
        ["SET", "kp", "5"],
        ["GET", "kp"],
    )
    refused = "ERR the note must be one word, not that one"
    assert got == [b"OK", b"OK", refused, b"OK", b"OK", refused, b"OK", b"5"]


def test_one_command_per_entry_holds_for_pipelined_writes(tmp_path: Path) -> None:
    tn = ThreadNode(tmp_path, Options(log_level="warning", max_batch_commands=1), Declaring())
    try:
        tn.start()
        before = len(tn.committed())
        assert replies(tn.port, *[["SET", "one", str(i)] for i in range(5)]) == [b"OK"] * 5
        sizes = [len(decode_batch(e.data)[1]) for e in tn.committed()[before:] if e.data]
        assert sizes == [1] * 5
    finally:
        tn.stop()
