"""The command table: a machine's plain commands never shadow a built-in, or each other, in silence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import redraft
from redraft.builtins import HANDLERS
from redraft.examples.clone import Clone
from redraft.machine import Applier, KeyRead, Read, Write
from redraft.registry import BUILTIN, MACHINE, READ, WRITE, MachineConflict, Registry

pytestmark = pytest.mark.timeout(30)


def _read(m: Applier, args: list[bytes]) -> Any:
    return b"x"


class Declares(Clone):
    def __init__(self, reads: dict[str, Read], writes: dict[str, Write]) -> None:
        super().__init__()
        self._r = reads
        self._w = writes

    def reads(self) -> dict[str, Read]:
        return self._r

    def writes(self) -> dict[str, Write]:
        return self._w


def _builtins() -> dict[bytes, Any]:
    return {name: (lambda s, a: None) for name in HANDLERS}


@pytest.mark.parametrize(
    ("reads", "writes", "named"),
    [
        ({"Echo": _read}, {}, "'echo'"),
        ({}, {"raftmsg": Write(lambda m, a: None)}, "'raftmsg'"),
        ({"note": _read}, {"NOTE": Write(lambda m, a: None)}, "'note'"),
    ],
    ids=["read-shadows-builtin", "write-shadows-builtin", "read-and-write"],
)
def test_a_clashing_machine_is_refused_when_the_node_is_created(
    tmp_path: Path, reads: dict[str, Read], writes: dict[str, Write], named: str
) -> None:
    with pytest.raises(MachineConflict, match=named):
        redraft.open(tmp_path, ":0", machine=Declares(reads, writes))


def test_routes_serve_builtins_first_then_plain_commands_then_command() -> None:
    reg = Registry(_builtins(), Declares({"get": _read}, {"set": Write(lambda m, a: None)}))
    assert reg.route(b"PING").kind is BUILTIN
    assert reg.route(b"gEt").kind is READ
    assert reg.route(b"SET").kind is WRITE
    assert reg.route(b"HSET").kind is MACHINE
    assert reg.route(b"gEt").name == "get"
    assert reg.write_of(b"Set") is not None
    assert reg.write_of(b"GET") is None


def test_junk_names_do_not_grow_the_route_table() -> None:
    reg = Registry(_builtins(), Declares({}, {}))
    for i in range(10_000):
        assert reg.route(b"junk%d" % i).kind is MACHINE
    assert len(reg.routes) <= 4096
    assert reg.route(b"x" * 100).kind is MACHINE  # long names are routed, never kept
    assert b"x" * 100 not in reg.routes


def test_key_read_tables_are_asked_again_only_after_the_state_changed() -> None:
    asked: list[int] = []
    data: dict[bytes, Any] = {}

    def tables() -> tuple[dict[bytes, Any], ...]:
        asked.append(1)
        if len(asked) == 1:
            raise RuntimeError("not yet")  # a failure is not kept: asked again
        return (data,)

    machine = Declares({"get": KeyRead(_read, tables)}, {})
    reg = Registry(_builtins(), machine)
    kept = reg.lookups[b"get"]
    with pytest.raises(RuntimeError):
        kept()
    assert kept() == (data,) and kept() == (data,)
    assert len(asked) == 2
    reg.state_changed()
    assert kept() == (data,)
    assert len(asked) == 3
