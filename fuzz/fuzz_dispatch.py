"""Atheris target: a whole node's client input path (RESP reader + dispatcher + machine).

A real node (the Redis clone, in-memory log) runs on an event loop in this
process; each input is fed to a fresh client connection with a fake transport
as if it had arrived from the network, then the loop runs a little so writes
commit.  A handler raising something unexpected (logged by the server as
"command ... failed"), an error logged by the node or by asyncio, or a
committed entry changing, is a crash.  See fuzz/README.md.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from typing import Any

import atheris

with atheris.instrument_imports():
    from redraft.examples.clone import Clone
    from redraft.node import Node
    from redraft.options import Options
    from redraft.server import ClientProtocol


class _Faults(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.ERROR or (
            record.name == "redraft.session" and ("failed" in msg or "unencodable" in msg)
        ):
            self.found.append(msg)


class _Transport(asyncio.Transport):
    """Swallows what the node writes; enough of a transport for ClientProtocol."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def write(self, data: Any) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


faults = _Faults()
loop = asyncio.new_event_loop()
node = Node(
    tempfile.mkdtemp(prefix="redraft-fuzz-"),
    "127.0.0.1:0",
    "",
    Clone(),
    Options(log_level="warning", backend="memory", peer_secret="fuzz", auth_failure_delay=0.0),
)


def _setup() -> list[Any]:
    logging.getLogger("redraft").addHandler(faults)
    logging.getLogger("asyncio").addHandler(faults)
    loop.run_until_complete(node.start())
    loop.run_until_complete(asyncio.sleep(0.2))  # elected
    return node.core.log.slice(1, node.core.log.commit + 1)


def test_one_input(data: bytes) -> None:
    conn = ClientProtocol(node.server)
    conn.connection_made(_Transport())
    conn.data_received(data)
    loop.run_until_complete(asyncio.sleep(0.001))
    conn.connection_lost(None)
    if faults.found:
        raise AssertionError(f"node fault on input {data!r}: {faults.found}")
    if node.core.log.slice(1, len(baseline) + 1) != baseline:
        raise AssertionError(f"committed entries changed after input {data!r}")


baseline: list[Any] = []


def main() -> None:
    baseline.extend(_setup())
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
