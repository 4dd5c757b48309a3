"""Atheris target: the RESP request reader.

Any input, split anywhere into reads, must either parse or raise
``ProtocolError``, and the commands parsed must not depend on where the
stream was split, nor on whether the C fast path (``redraft._cresp``) is
in use.  See fuzz/README.md.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from redraft import resp
    from redraft.resp import ProtocolError, RequestParser


def _parse(chunks: list[bytes]) -> tuple[list[list[bytes]], bool]:
    parser = RequestParser(max_bulk_len=1 << 16, max_multibulk_len=64, max_inline_len=1 << 12)
    out: list[list[bytes]] = []
    for chunk in chunks:
        try:
            out += parser.parse(chunk)
        except ProtocolError as exc:
            return out + exc.commands, True
    return out, False


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 8), 0, 1 << 16))
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    pieces, last = [], 0
    for cut in cuts:
        cut = min(cut, len(stream))
        pieces.append(stream[last:cut])
        last = cut
    pieces.append(stream[last:])
    whole = _parse([stream])
    split = _parse(pieces)
    assert whole == split, (whole, split, pieces)
    if resp.SPEEDUPS:
        fast, resp._cresp = resp._cresp, None  # the Python paths alone
        try:
            pure = _parse([stream])
        finally:
            resp._cresp = fast
        assert pure == whole, (pure, whole, stream)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
