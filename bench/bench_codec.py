"""Instructions per peer message through the codec, counted by callgrind; prints figures, asserts nothing.

Run: .venv/bin/python bench/bench_codec.py [--against DIR] [--calls N]

Every log entry costs its leader an APP per near follower and an APP_RESP
back from each, and each message is encoded on one side and decoded on
the other (:mod:`redraft.transport.codec`).  This counts what one encode
or decode of the usual messages costs: an APP carrying one entry (a batch
of one SET, as a single client's write makes), an APP carrying 16, the
APP_RESP that acknowledges it, and a HEARTBEAT.  As in
``bench_instructions.py``, callgrind runs a small driver once with
``--calls`` calls and once with none, and the difference divided by the
calls is the figure: the same count for the same code on any machine.
The driver tunes the garbage collector as a node does (``tune_gc``).
``--against`` names another checkout (its ``src`` first on
``PYTHONPATH``; build a compiled twin with ``scripts/build_compiled.py``
to compare compiled codecs), measured in the same invocation.  It runs
callgrind through ``bench_instructions.py``, which must sit beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_instructions import callgrind_instructions, print_header, print_row, trees_to_measure

DRIVER = r"""
import sys
from redraft.node import tune_gc
from redraft.raft.types import Entry, Message, MsgType
from redraft.transport.codec import decode_messages, encode_messages

LEADER, FOLLOWER = "127.0.0.1:7481", "127.0.0.1:7482"
import msgpack
# An entry's data as the leader logs one SET: msgpack of (stamp_ns, [args]).
BATCH = msgpack.packb((1 << 60, [[b"SET", b"key:000000001234", b"x" * 16]]), use_bin_type=True)
ones = [Entry(3, 100, 0, BATCH)]
many = [Entry(3, 100 + k, 0, BATCH) for k in range(16)]
MESSAGES = {
    "APP, 1 entry": Message(MsgType.APP, FOLLOWER, LEADER, 3, 3, 99, ones, 98),
    "APP, 16 entries": Message(MsgType.APP, FOLLOWER, LEADER, 3, 3, 99, many, 98),
    "APP_RESP": Message(MsgType.APP_RESP, LEADER, FOLLOWER, 3, index=100),
    "HEARTBEAT": Message(MsgType.HEARTBEAT, FOLLOWER, LEADER, 3, index=98, commit=98, round=7),
}
name, op, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
batch = [MESSAGES[name]]
payload = encode_messages(batch)
assert decode_messages(payload) == batch
tune_gc()  # as a node has it: else the counts are mostly the cyclic collector's
if op == "encode":
    for _ in range(calls):
        encode_messages(batch)
else:
    for _ in range(calls):
        decode_messages(payload)
"""

CASES = ["APP, 1 entry", "APP, 16 entries", "APP_RESP", "HEARTBEAT"]


def _instructions(src: Path, name: str, op: str, calls: int) -> int:
    return callgrind_instructions(src, DRIVER, name, op, str(calls))


def per_call(src: Path, name: str, op: str, calls: int, idle: int) -> float:
    """Instructions one ``op`` ("encode" or "decode") of message ``name`` costs in ``src``,
    given what the driver costs with no calls (``idle``)."""
    return (_instructions(src, name, op, calls) - idle) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="another redraft checkout to compare with")
    ap.add_argument("--calls", type=int, default=5000, help="calls per measured run")
    ns = ap.parse_args()
    trees = trees_to_measure(ns.against)
    print("# instructions per call of the peer message codec (callgrind), one message per batch")
    print_header(["message", "op"], trees)
    # Start-up and one round trip of the message, the same for every case
    # to within a few instructions a run: measured once per tree.
    idles = [_instructions(src, CASES[0], "encode", 0) for _, src in trees]
    for name in CASES:
        for op in ("encode", "decode"):
            counts = [
                per_call(src, name, op, ns.calls, idle)
                for (_, src), idle in zip(trees, idles, strict=True)
            ]
            print_row([name, op], counts)


if __name__ == "__main__":
    main()
