"""Fuzzing the node's input paths: the command dispatcher, the RESP reader behind
it, and the peer message decoder (alone and behind RAFTMSG on an
authenticated peer link).

A real node runs in a thread of this process, so that besides its answers the
tests see what it logs and what its log holds.  The property everywhere: no
input crashes the node, makes a handler fail unexpectedly or changes a
committed log entry; malformed peer messages are dropped and logged.  A few
seconds in CI; ``fuzz/`` has atheris targets for long runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from redraft.examples.clone import Clone
from redraft.machine import Machine
from redraft.node import Node
from redraft.options import Options
from redraft.raft.types import Entry, Membership, Message, MsgType, SnapChunk, SnapshotMeta
from redraft.resp import RequestParser, encode_command
from redraft.storage import open_store
from redraft.transport.codec import (
    CodecError,
    SharedEntries,
    decode_messages,
    encode_message_parts,
    encode_messages,
)
from redraft.transport.peers import raftmsg_parts
from tests.cluster import free_ports, wait_until
from tests.test_security import Raw, peer_handshake

pytestmark = pytest.mark.timeout(120)

SECRET = b"fuzz-peer-secret"
PEER = "127.0.0.1:1"
T = TypeVar("T")


class Recorder(logging.Handler):
    """Keeps the node's warnings and errors."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def faults(self) -> list[str]:
        """Messages that mean a bug: a handler raised something unexpected, or worse."""
        out = []
        for r in self.records:
            msg = r.getMessage()
            if r.levelno >= logging.ERROR or (  # asyncio's "Exception in callback" included
                r.name == "redraft.session" and ("failed" in msg or "unencodable" in msg)
            ):
                out.append(msg)
        return out

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


class ThreadNode:
    """A node serving from a thread of the test process (its own event loop)."""

    def __init__(self, base: Path, options: Options, machine: Machine | None = None) -> None:
        self.port = free_ports(1)[0]
        self.addr = f"127.0.0.1:{self.port}"
        self.dir = base / "node"
        self.options = options
        self.node = Node(self.dir, self.addr, "", machine or Clone(), options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="fuzzed-node", daemon=True)
        self.stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.node.serve())  # signal handlers: main thread only

    def start(self) -> None:
        self.thread.start()

        def ready() -> bool:
            raw = Raw(self.port, timeout=1)
            try:
                return raw.call("SET", "seed", "value") == b"+OK"
            finally:
                raw.close()

        wait_until(ready, 15, "the node to serve")
        self.baseline = self.committed()
        self.term = self.on_loop(lambda: self.node.core.term)
        assert self.term >= 2  # so that terms 0 and 1 are stale

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def committed(self) -> list[Entry]:
        def read() -> list[Entry]:
            log = self.node.core.log
            return log.slice(1, log.commit + 1)

        return self.on_loop(read)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        asyncio.run_coroutine_threadsafe(self.node.close(), self.loop).result(15)
        self.thread.join(15)
        self.loop.close()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadNode, Recorder]]:
    recorder = Recorder()
    loggers = [logging.getLogger("redraft"), logging.getLogger("asyncio")]
    for logger in loggers:
        logger.addHandler(recorder)
    opts = Options(log_level="warning", peer_secret=SECRET.decode(), auth_failure_delay=0.001)
    tn = ThreadNode(tmp_path_factory.mktemp("fuzz"), opts)
    try:
        tn.start()
        yield tn, recorder
    finally:
        tn.stop()
        for logger in loggers:
            logger.removeHandler(recorder)


class Session:
    """One client connection that survives QUIT and protocol errors by reconnecting."""

    def __init__(self, port: int, setup: Callable[[Raw], None] | None = None) -> None:
        self.port = port
        self.setup = setup
        self.raw: Raw | None = None
        self.n = 0

    def _conn(self) -> Raw:
        if self.raw is None:
            self.raw = Raw(self.port)
            if self.setup is not None:
                self.setup(self.raw)
        return self.raw

    def send_then_sync(self, payload: bytes) -> None:
        """Send ``payload`` and wait until the node has handled it (a PING echo comes back)."""
        raw = self._conn()
        self.n += 1
        marker = f"sync-{self.n}".encode()
        # A fuzzed MULTI would queue the PING (+QUEUED, no echo): DISCARD
        # ends it first (elsewhere it is an error reply, and ignored).
        raw.send_bytes(payload + encode_command([b"DISCARD"]) + encode_command([b"PING", marker]))
        want = b"\r\n" + marker + b"\r\n"
        while want not in raw.buf:
            try:
                data = raw.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                # QUIT, a protocol error or a refused handshake: fine, start afresh.
                raw.close()
                self.raw = None
                return
            raw.buf += data
        raw.buf = b""

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()


def assert_alive(tn: ThreadNode) -> None:
    raw = Raw(tn.port)
    try:
        assert raw.call("PING") == b"+PONG"
    finally:
        raw.close()


# ------------------------------------------------------------- strategies

NAMES = [
    # built-ins
    "auth", "ping", "echo", "quit", "select", "hello", "client", "command", "info", "config",
    "raftleader", "raftstate", "raftstats", "raftpeers", "raftaddpeer", "raftremovepeer",
    "raftjoin", "raftsnapshot", "rafttransferleader", "raftpeer", "raftmsg", "rafttick",
    # the clone
    "get", "set", "del", "keys", "exists", "mget", "mset", "incr", "incrby", "decr", "decrby",
    "append", "strlen", "getset", "setnx", "expire", "pexpire", "expireat", "pexpireat", "ttl",
    "pttl", "persist", "dbsize", "type", "scan",
]  # fmt: skip
WORDS = [
    b"EX", b"PX", b"EXAT", b"PXAT", b"NX", b"XX", b"GET", b"KEEPTTL", b"MATCH", b"COUNT", b"*",
    b"AUTH", b"default", b"SETNAME", b"VERBOSE", b"CHALLENGE", b"PROOF", b"3", b"2", b"0", b"1",
    b"-1", b"9223372036854775807", b"-9223372036854775809", b"99999999999999999999", b"1e3",
    b"nan", b"inf", b":1", b":0", b"127.0.0.1:1", b"[::1]:7", b"host:99999", b"seed", b"",
    b"LIST", b"ID", b"GETNAME", b"SETINFO", b"REPLY", b"OFF", b"default", b"all",
]  # fmt: skip

arg = st.one_of(st.sampled_from(WORDS), st.binary(max_size=24))
name = st.one_of(
    st.sampled_from(NAMES).flatmap(lambda n: st.sampled_from([n, n.upper(), n.title()])),
    st.binary(min_size=1, max_size=12),
)
command = st.tuples(name, st.lists(arg, max_size=6)).map(
    lambda t: [t[0] if isinstance(t[0], bytes) else t[0].encode(), *t[1]]
)

msgpack_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=16)
    | st.text(max_size=8)
    | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=15) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=40,
)
# Up to the largest value the codec accepts (what the log stores can hold).
small = st.integers(0, 40) | st.sampled_from([2**31, 2**63 - 1])


@st.composite
def messages(
    draw: st.DrawFn,
    to: st.SearchStrategy[str],
    frm: st.SearchStrategy[str],
    term: st.SearchStrategy[int] = small,
) -> Message:
    """Well-formed messages with arbitrary contents."""
    entries: list[Entry] = []
    first = draw(st.integers(1, 30))
    for k in range(draw(st.integers(0, 3))):
        entries.append(
            Entry(draw(small), first + k, draw(st.integers(0, 2)), draw(st.binary(max_size=8)))
        )
    snap = None
    if draw(st.booleans()):
        voters = draw(st.sets(st.sampled_from([PEER, "a:1", "b:2"]), max_size=2))
        meta = SnapshotMeta(
            draw(small), draw(small), Membership(voters=frozenset(voters)), draw(small)
        )
        snap = SnapChunk(
            meta, draw(small), draw(small), draw(st.binary(max_size=32)), draw(st.booleans())
        )
    mtype = draw(st.integers(1, 11))
    return Message(
        mtype,
        draw(to),
        draw(frm),
        draw(term),
        log_term=draw(small),
        index=draw(small),
        entries=entries,
        commit=draw(small),
        reject=draw(st.booleans()),
        # The explicit fields share wire slots by type (see transport/codec.py).
        hint_index=0 if mtype == MsgType.SNAP_RESP else draw(small),
        hint_term=draw(small),
        round=draw(small) if mtype in (MsgType.HEARTBEAT, MsgType.HEARTBEAT_RESP) else 0,
        transfer=draw(st.booleans()) if mtype in (MsgType.VOTE, MsgType.PRE_VOTE) else False,
        installed=draw(st.booleans()) if mtype == MsgType.SNAP_RESP else False,
        snap_offset=draw(small) if mtype == MsgType.SNAP_RESP else 0,
        snap=snap,
    )


def unwelcome(node_id: str) -> st.SearchStrategy[Message]:
    """Well-formed messages a node must drop or ignore, from whoever sends them.

    Impersonations (``frm`` is not the link's authenticated id), messages for
    someone else, and messages from a term the node has left behind.  (Messages
    from the current or a later term are a member's to send: Raft trusts its
    members, and the peer secret is what makes one.)
    """
    others = st.sampled_from(["a:1", node_id, "nobody:9"])
    return st.one_of(
        messages(st.just(node_id), others),
        messages(st.sampled_from([PEER, "nobody:9"]), st.just(PEER)),
        messages(st.just(node_id), st.just(PEER), term=st.integers(0, 1)),
    )


def mutated(payload: bytes, data: st.DataObject) -> bytes:
    """Flip, cut or splice a few bytes of a valid payload."""
    b = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        if not b:
            break
        i = data.draw(st.integers(0, len(b) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip":
            b[i] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del b[i:]
        else:
            b[i:i] = b[i : i + data.draw(st.integers(1, 8))]
    return bytes(b)


# ------------------------------------------------------------------ tests


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300) | msgpack_value.map(lambda v: msgpack.packb(v)))
def test_decode_messages_accepts_or_rejects_never_crashes(payload: bytes) -> None:
    try:
        msgs = decode_messages(payload)
    except CodecError:
        return
    assert all(isinstance(m, Message) for m in msgs)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_decode_messages_round_trips_and_rejects_mutations(data: st.DataObject) -> None:
    ids = st.sampled_from(["127.0.0.1:9", PEER, "x" * 1024])
    batch = data.draw(st.lists(messages(ids, ids), min_size=1, max_size=3))
    payload = encode_messages(batch)
    assert decode_messages(payload) == batch
    with contextlib.suppress(CodecError):
        decode_messages(mutated(payload, data))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_batches_of_large_entries_are_shared_and_decode_alike(data: st.DataObject) -> None:
    # The leader packs a large entry list once for all its followers; every
    # follower must still decode exactly what it was sent, on the old wire format.
    ids = st.sampled_from(["127.0.0.1:9", PEER])
    big = [
        Entry(data.draw(small), 7 + k, 0, data.draw(st.binary(min_size=1, max_size=64)) * 1024)
        for k in range(data.draw(st.integers(1, 3)))
    ]
    shared: SharedEntries = {}
    for peer in ("a:1", "b:2"):
        batch = data.draw(st.lists(messages(ids, ids), max_size=2))
        at = data.draw(st.integers(0, len(batch)))
        batch.insert(at, Message(MsgType.APP, peer, PEER, 3, 2, 6, entries=big, commit=5))
        parts = encode_message_parts(batch, shared)
        assert b"".join(parts) == encode_messages(batch)
        assert b"".join(parts) == msgpack.packb(
            [1, *([*wire_fields(m)] for m in batch)], use_bin_type=True
        )
        assert decode_messages(b"".join(parts)) == batch
        command = b"".join(raftmsg_parts(parts))
        assert RequestParser().parse(command) == [[b"RAFTMSG", b"".join(parts)]]


def wire_fields(m: Message) -> list[Any]:
    """A message as the version 1 wire format lists it (written out independently)."""
    ents = m.entries
    snap = m.snap
    return [
        int(m.type),
        m.to,
        m.frm,
        m.term,
        m.log_term,
        m.index,
        m.commit,
        m.reject,
        m.snap_offset if m.type == MsgType.SNAP_RESP else m.hint_index,
        m.hint_term,
        m.round
        if m.type in (MsgType.HEARTBEAT, MsgType.HEARTBEAT_RESP)
        else int(m.transfer)
        if m.type in (MsgType.VOTE, MsgType.PRE_VOTE)
        else int(m.installed)
        if m.type == MsgType.SNAP_RESP
        else 0,
        ents[0].index if ents else 0,
        [[e.term, int(e.kind), e.data] for e in ents] if ents else None,
        None
        if snap is None
        else [
            snap.meta.index,
            snap.meta.term,
            snap.meta.membership.encode(),
            snap.meta.size,
            snap.offset,
            snap.length,
            snap.data,
            snap.done,
        ],
    ]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cmds=st.lists(command, min_size=1, max_size=4))
def test_dispatcher_survives_random_commands(
    fuzzed: tuple[ThreadNode, Recorder], cmds: list[list[bytes]]
) -> None:
    tn, recorder = fuzzed
    session = Session(tn.port)
    try:
        session.send_then_sync(b"".join(encode_command(c) for c in cmds))
    finally:
        session.close()
    assert recorder.faults() == []


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(min_size=1, max_size=400))
def test_resp_reader_survives_random_bytes(
    fuzzed: tuple[ThreadNode, Recorder], payload: bytes
) -> None:
    tn, recorder = fuzzed
    raw = Raw(tn.port, timeout=5)
    try:
        raw.send_bytes(payload)
        raw.sock.shutdown(socket.SHUT_WR)  # an unfinished request ends here
        assert raw.closed_by_server()
    finally:
        raw.close()
    assert recorder.faults() == []


def _handshake(raw: Raw) -> None:
    assert peer_handshake(raw, PEER, SECRET) == b"+OK"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_raftmsg_on_an_authenticated_link_never_hurts_the_node(
    fuzzed: tuple[ThreadNode, Recorder], data: st.DataObject
) -> None:
    tn, recorder = fuzzed
    kind = data.draw(st.sampled_from(["bytes", "msgpack", "messages", "mutated"]))
    if kind == "bytes":
        payload = data.draw(st.binary(max_size=300))
    elif kind == "msgpack":
        payload = msgpack.packb(data.draw(msgpack_value))
    else:
        payload = encode_messages(data.draw(st.lists(unwelcome(tn.addr), min_size=1, max_size=3)))
        if kind == "mutated":
            payload = mutated(payload, data)
            # A flipped byte can turn a stale term into a later one: a
            # message from the authenticated peer, which Raft obeys.
            assume(not _a_members_message(payload, tn))
    session = Session(tn.port, _handshake)
    try:
        session.send_then_sync(encode_command([b"RAFTMSG", payload]))
    finally:
        session.close()
    assert recorder.faults() == []


def _a_members_message(payload: bytes, tn: ThreadNode) -> bool:
    """Whether ``payload`` decodes to a message the peer may send ``tn``: to it, in its term or later."""
    try:
        batch = decode_messages(payload)
    except CodecError:
        return False
    return any(m.frm == PEER and m.to == tn.addr and m.term >= tn.term for m in batch)


def test_malformed_peer_messages_are_logged(fuzzed: tuple[ThreadNode, Recorder]) -> None:
    tn, recorder = fuzzed
    session = Session(tn.port, _handshake)
    try:
        session.send_then_sync(encode_command([b"RAFTMSG", b"\x93\x01\x02"]))
    finally:
        session.close()
    assert any(
        m.startswith(f"dropping malformed message batch from {PEER}") for m in recorder.messages()
    )


def test_committed_log_survives_the_fuzzing(fuzzed: tuple[ThreadNode, Recorder]) -> None:
    """Runs last: what was committed before the fuzzing is still there, in memory and on disk."""
    tn, recorder = fuzzed
    assert_alive(tn)
    assert tn.baseline, "the seed write committed before the fuzzing"
    stats = tn.on_loop(lambda: tn.node.raft_stats())
    assert stats["term"] == tn.term and stats["state"] == "Leader"
    now = {e.index: e for e in tn.committed()}
    tn.stop()
    store: Any = open_store(tn.options.backend, tn.dir / "log")
    try:
        on_disk = {e.index: e for e in store.load().entries}
    finally:
        store.close()
    for e in tn.baseline:
        assert now.get(e.index) == e
        assert on_disk.get(e.index) == e
    for index, e in now.items():
        assert on_disk.get(index) == e
    assert recorder.faults() == []


def test_terms_a_node_cannot_store_are_rejected_by_the_decoder() -> None:
    hostile = encode_messages([Message(MsgType.HEARTBEAT, "a:1", PEER, 2**64 - 1)])
    with pytest.raises(CodecError):
        decode_messages(hostile)
