"""Atheris target: the peer message decoder (``RAFTMSG`` payloads).

Any input must decode to messages or raise ``CodecError``; decoded messages
must encode and decode back to themselves.  See fuzz/README.md.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from redraft.transport.codec import CodecError, decode_messages, encode_messages


def test_one_input(data: bytes) -> None:
    try:
        msgs = decode_messages(data)
    except CodecError:
        return
    assert decode_messages(encode_messages(msgs)) == msgs


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
