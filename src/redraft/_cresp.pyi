"""Type stubs of the C fast paths of :mod:`redraft.resp` (see ``_cresp.c``)."""

from collections.abc import Callable
from typing import Any

def parse(
    buf: bytes,
    pos: int,
    out: list[list[bytes]],
    max_bulk: int,
    max_multibulk: int,
    max_inline: int,
    lookup: tuple[
        dict[bytes, Callable[[], tuple[dict[bytes, Any], ...]]],
        Callable[[], bool],
        bytearray,
        int,
        bytes,
    ]
    | None = None,
) -> int: ...
def run_end(
    cmds: list[list[bytes]], i: int, n: int, table: dict[Any, Any], value: object
) -> int: ...
def encode(value: Any, cmd_name: str = "") -> bytes: ...
def encode3(value: Any, cmd_name: str = "") -> bytes: ...
def configure(
    ok: object,
    ok_reply: bytes,
    null2: bytes,
    null3: bytes,
    fallback2: Callable[..., bytes],
    fallback3: Callable[..., bytes],
) -> None: ...
