"""A node app for tests (``python -m tests.role_app``): the clone, recording its role callbacks.

``EVENTS`` (answered by the node itself, on any node) lists what the
machine was told, in order: ``leader``, ``follower <address>`` and
``ready keys=<n>`` (how many keys the node held when it was told it had
caught up).
"""

from __future__ import annotations

from typing import Any

from redraft.cli import main as serve_machine
from redraft.examples.clone import Clone
from redraft.machine import Applier, Command, Conn


class Recording(Clone):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[bytes] = []

    def on_leader(self) -> None:
        self.events.append(b"leader")

    def on_follower(self, leader: str) -> None:
        self.events.append(f"follower {leader}".encode())

    def on_ready(self) -> None:
        self.events.append(b"ready keys=%d" % len(self._data))

    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        if cmd.name == "events":
            return list(self.events)  # node-local: no m.apply
        return super().command(m, conn, cmd)


if __name__ == "__main__":
    serve_machine(Recording, prog="role_app")
