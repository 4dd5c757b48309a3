"""A node app for tests (``python -m tests.eio_app``): the clone on a disk whose fsyncs fail.

Once a file named ``FAIL_FSYNC`` appears next to the node's data dir
(``<dir>.FAIL_FSYNC``), every ``fsync``/``fdatasync`` of this process fails
with ``EIO``, as a dying disk's would.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from redraft.cli import main as serve_machine
from redraft.examples.clone import Clone


def _trigger() -> Path:
    argv = sys.argv
    directory = argv[argv.index("--dir") + 1]
    return Path(directory + ".FAIL_FSYNC")


def _failing(real: object, trigger: Path) -> object:
    def call(fd: int) -> None:
        if trigger.exists():
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)  # type: ignore[operator]

    return call


def main() -> None:
    trigger = _trigger()
    os.fsync = _failing(os.fsync, trigger)  # type: ignore[assignment]
    os.fdatasync = _failing(os.fdatasync, trigger)  # type: ignore[assignment]
    serve_machine(Clone, prog="eio_app")


if __name__ == "__main__":
    main()
