"""Throughput of the RESP codec on one core; prints figures, asserts nothing.

Run: .venv/bin/python bench/bench_resp.py [--seconds S]

Targets: parse >= 1,000,000 pipelined small commands/s (batches of 16+ per
feed); encode >= 2,000,000 simple replies/s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from redraft.machine import OK
from redraft.resp import (
    ReplyParser,
    RequestParser,
    encode,
    encode_command,
    encode_into,
    encode_many,
)


def _rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per CPU second of ``fn`` (which returns how many items it did), best of 3.

    CPU time rather than wall time, so that other processes on a shared
    machine distort the figures less.
    """
    best = 0.0
    for _ in range(3):
        done = 0
        start = time.process_time()
        deadline = start + seconds / 3
        while True:
            done += fn()
            now = time.process_time()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


def _report(name: str, rate: float, target: float | None = None) -> None:
    goal = f"  (target {target:,.0f})" if target else ""
    print(f"{name:<52} {rate:>14,.0f} /s{goal}")


def bench_parse(seconds: float) -> None:
    def pipeline(n: int) -> bytes:
        return b"".join(encode_command([b"SET", b"key:%06d" % i, b"xxx"]) for i in range(n))

    for batch in (16, 64, 1000):
        data = pipeline(batch)
        parser = RequestParser()

        def run(data: bytes = data, parser: RequestParser = parser, batch: int = batch) -> int:
            parser.parse(data)
            return batch

        _report(f"parse SET pipelines of {batch}", _rate(run, seconds), 1_000_000)

    mixed = b"".join(
        encode_command([b"GET", b"key:%06d" % i])
        + encode_command([b"SET", b"key:%06d" % i, b"v" * 20])
        + encode_command([b"INCR", b"counter"])
        for i in range(16)
    )
    parser = RequestParser()

    def run_mixed() -> int:
        parser.parse(mixed)
        return 48

    _report("parse mixed GET/SET/INCR pipelines of 48", _rate(run_mixed, seconds), 1_000_000)

    # A large pipeline read in 16 KiB pieces: every read ends mid-request.
    stream = pipeline(20000)
    pieces = [stream[i : i + 16384] for i in range(0, len(stream), 16384)]

    def run_split() -> int:
        p = RequestParser()
        for piece in pieces:
            p.parse(piece)
        return 20000

    _report("parse 20000 SETs read in 16 KiB pieces", _rate(run_split, seconds), 1_000_000)

    inline = b"SET key:000123 xxx\r\n" * 16
    parser = RequestParser()

    def run_inline() -> int:
        parser.parse(inline)
        return 16

    _report("parse inline SET pipelines of 16", _rate(run_inline, seconds))

    mset = encode_command([b"MSET", *[b"k%d" % i for i in range(100_000)]])

    def run_mset() -> int:
        RequestParser().parse(mset)
        return 100_000

    _report("parse one MSET of 100k arguments (arguments)", _rate(run_mset, seconds))

    value = b"x" * (1 << 20)
    big = encode_command([b"SET", b"big", value])
    chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)]

    def run_big() -> int:
        p = RequestParser()
        for c in chunks:
            p.parse(c)
        return len(big)

    _report("parse a 1 MiB SET in 64 KiB pieces (bytes)", _rate(run_big, seconds))


def bench_encode(seconds: float) -> None:
    replies = [OK, 0, 1, 42, b"hello", None, OK, b"value:000123", 7, OK, 12345, b"x" * 20] * 4

    def run_many() -> int:
        encode_many(replies)
        return len(replies)

    _report("encode_many simple replies (48 per call)", _rate(run_many, seconds), 2_000_000)

    def run_into() -> int:
        buf = bytearray()
        for r in replies:
            encode_into(buf, r)
        bytes(buf)
        return len(replies)

    _report("encode_into simple replies, one buffer", _rate(run_into, seconds), 2_000_000)

    def run_single() -> int:
        for r in replies:
            encode(r)
        return len(replies)

    _report("encode() one reply at a time", _rate(run_single, seconds), 2_000_000)

    arrays = [[b"a", b"b", 1], {b"k": b"v"}, [b"x" * 10] * 10] * 8

    def run_arrays() -> int:
        encode_many(arrays)
        return len(arrays)

    _report("encode_many small arrays/maps", _rate(run_arrays, seconds))

    cmd = [b"SET", b"key:000123", b"xxx"]

    def run_cmd() -> int:
        for _ in range(16):
            encode_command(cmd)
        return 16

    _report("encode_command SET", _rate(run_cmd, seconds))

    wire = encode_many(replies)
    rp = ReplyParser()

    def run_replies() -> int:
        rp.parse(wire)
        return len(replies)

    _report("ReplyParser simple replies", _rate(run_replies, seconds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = ap.parse_args()
    bench_parse(args.seconds)
    bench_encode(args.seconds)


if __name__ == "__main__":
    main()
