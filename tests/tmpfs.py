"""Small tmpfs volumes for the disk-full tests: mount, fill, free, grow, unmount.

Mounting needs root (CI runs as root); elsewhere :func:`unavailable` says why
and the tests skip with that reason.  A volume is a real file system, so
``ENOSPC`` comes from the kernel exactly as on a full disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

FILLER = ".filler"
"""The file :meth:`Volume.fill` writes to use up the space (in the volume's root)."""

_checked: str | bool | None = False


def unavailable() -> str | None:
    """Why tmpfs volumes cannot be mounted here, or None when they can."""
    global _checked
    if _checked is not False:
        return _checked  # type: ignore[return-value]
    reason: str | None = None
    if os.geteuid() != 0:
        reason = "mounting a small tmpfs to fill needs root (CI runs as root)"
    else:
        probe = Path(f"/tmp/redraft-tmpfs-probe-{os.getpid()}")
        probe.mkdir(exist_ok=True)
        try:
            _mount(probe, 1 << 20)
            _umount(probe)
        except (OSError, subprocess.CalledProcessError) as exc:
            reason = f"cannot mount tmpfs here: {exc}"
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    _checked = reason
    return reason


def _mount(path: Path, size: int) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=True,
        capture_output=True,
        timeout=10,
    )


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True, timeout=10)


class Volume:
    """One mounted tmpfs of a fixed size."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def resize(self, size: int) -> None:
        """Grow (or shrink, down to what is used) the volume in place, as an operator would."""
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)],
            check=True,
            capture_output=True,
            timeout=10,
        )
        self.size = size

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> int:
        """Write a filler file until at most ``leave`` bytes are free; the bytes written.

        Unbuffered on purpose: the node writes to the same volume meanwhile,
        so a write may find less room than was free a moment before.  A
        buffered file would keep the rest and raise ``ENOSPC`` again on close.
        """
        written = 0
        block = b"\0" * (1 << 16)
        with open(self.path / FILLER, "ab", buffering=0) as f:
            while (free := self.free_bytes()) > leave:
                try:
                    took = f.write(block[: max(min(len(block), free - leave), 1)])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                written += took or 0
        return written

    def free(self) -> None:
        """Delete the filler file: the space it held returns."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / FILLER).unlink()


@contextlib.contextmanager
def volume(path: Path, size: int) -> Iterator[Volume]:
    """A tmpfs of ``size`` bytes mounted on ``path`` (created) for the block's duration."""
    path.mkdir(parents=True, exist_ok=True)
    _mount(path, size)
    try:
        yield Volume(path, size)
    finally:
        _umount(path)
