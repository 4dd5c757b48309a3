"""A machine that does not override ``snapshot`` (it raises ErrDisabled) still gets clear answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from redraft.examples.clone import Clone
from redraft.machine import Machine
from redraft.options import Options
from tests.test_fuzz_server import Recorder, ThreadNode
from tests.test_plain_commands import replies

pytestmark = pytest.mark.timeout(60)


class NoSnapshots(Clone):
    """The clone with the default ``snapshot``, which turns snapshots off."""

    snapshot = Machine.snapshot  # type: ignore[assignment]

    def restore(self, rd: IO[bytes]) -> None:
        raise AssertionError("nothing was ever snapshotted")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[ThreadNode, Recorder]]:
    recorder = Recorder()
    logger = logging.getLogger("redraft")
    logger.addHandler(recorder)
    tn = ThreadNode(tmp_path, Options(log_level="warning", snapshot_entries=5), NoSnapshots())
    try:
        tn.start()
        yield tn, recorder
    finally:
        tn.stop()
        logger.removeHandler(recorder)


def test_raftsnapshot_and_raftdigest_say_snapshots_are_disabled(
    node: tuple[ThreadNode, Recorder],
) -> None:
    tn, recorder = node
    got: list[Any] = replies(tn.port, ["RAFTSNAPSHOT"], ["RAFTDIGEST"], ["SET", "k", "v"])
    assert got == [
        "ERR snapshots are disabled",
        "ERR snapshots are disabled, so there is no digest",
        b"OK",
    ]
    # Past snapshot_entries the node would snapshot on its own: it keeps serving.
    assert replies(tn.port, *[["SET", f"k{i}", "v"] for i in range(20)]) == [b"OK"] * 20
    assert replies(tn.port, ["RAFTSNAPSHOT"]) == ["ERR snapshots are disabled"]
    assert recorder.faults() == []
    assert any("snapshots are disabled by the machine" in m for m in recorder.messages())
