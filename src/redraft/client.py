"""A Redis client that follows the leader and applies every write exactly once.

:class:`Client` (blocking) and :class:`AsyncClient` (asyncio) are redis-py
clients — every command method of ``redis.Redis`` works, and so does
``execute_command`` — given the addresses of one or more nodes::

    from redraft.client import Client

    r = Client("127.0.0.1:7481", "127.0.0.1:7482", "127.0.0.1:7483")
    r.incr("visits")  # applied once, even if the leader dies mid-request
    print(r.get("visits"))

They find the leader, follow ``TRY`` and ``MOVED`` replies, and when a
node dies or a leader changes mid-request they reconnect and send the
request again, with backoff, until ``retry_timeout`` seconds have passed.

Sending a write again is only safe if the cluster can tell the copy from a
new write, so each client registers a session in the replicated state and
sends every command as ``RAFTSEQ session seq ack command...``: a copy of a
sequence the cluster applied already is answered with the reply it had,
not applied again (:mod:`redraft.dedup`).  This works for any machine.
Reads are sent the same way and served at the node's consistency level.
A session left idle longer than ``session_ttl`` seconds (measured by the
leader's clock) is forgotten; the client then opens a new one, unless a
write was in flight, whose outcome it then cannot know
(:class:`OutcomeUnknown`).

Commands go one at a time over a pool of connections per node; a client
may be shared by threads (or tasks).  ``pipeline()`` and ``pubsub()`` are
refused: their commands would bypass the session.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Generator, Iterable
from enum import Enum
from typing import Any, NoReturn

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, MovedError, ResponseError, TryAgainError
from redis.retry import Retry

from redraft.addr import normalize, split_hostport
from redraft.dedup import DEFAULT_TTL_MS

UNSEQUENCED = frozenset(
    {"AUTH", "HELLO", "QUIT", "RESET", "SELECT", "CLIENT", "RAFTSEQ", "RAFTSESSION"}
)
"""Commands sent as they are: they act on the connection, or are the session's own."""

_NOT_APPLIED = (
    "leader not known",
    "leadership changed",
    "this node is itself still joining",
)
"""Replies (as redis-py gives them: without ``ERR``) that ask to try again later: nothing ran."""
_MAYBE_APPLIED = ("TIMEOUT",)
"""Replies that ask to try again later, after which the command may have run all the same."""


class OutcomeUnknown(redis.RedisError):
    """A write was sent and whether it was applied cannot be known (it may have been)."""


class _SessionGone(Exception):
    """The cluster no longer knows the client's session (raised inside a plan only)."""

    def __init__(self, reply: ResponseError, maybe_sent: bool) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.maybe_sent = maybe_sent
        """Whether an earlier attempt may have reached the cluster under the old session."""


class _Step(Enum):
    CALL = 1
    SLEEP = 2


_Plan = Generator[tuple[_Step, Any], Any, Any]


class _Action(Enum):
    REDIRECT = 1
    NEXT_NODE = 2
    RETRY = 3
    RETRY_UNKNOWN = 4
    NO_SESSION = 5
    FAIL = 6


def _classify(exc: BaseException) -> tuple[_Action, str]:
    """What a failed attempt calls for, and the node to try when it names one."""
    if isinstance(exc, MovedError):
        return _Action.REDIRECT, f"{exc.host}:{exc.port}"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
        return _Action.NEXT_NODE, ""
    if isinstance(exc, ClusterDownError | TryAgainError):
        return _Action.RETRY, ""
    if not isinstance(exc, ResponseError):
        return _Action.FAIL, ""
    text = str(exc)
    if text.startswith("TRY "):
        return _Action.REDIRECT, text[4:].strip()
    if text.startswith("NOSESSION"):
        return _Action.NO_SESSION, ""
    text = text.removeprefix("ERR ")
    if text.startswith(_NOT_APPLIED):
        return _Action.RETRY, ""
    if text.startswith(_MAYBE_APPLIED):
        return _Action.RETRY_UNKNOWN, ""
    return _Action.FAIL, ""


class _Router:
    """The client's state and decisions, without I/O: which node, which session, what next.

    :meth:`plan` is a generator that yields the calls to make (and the
    pauses between them) and is sent their results; the blocking and the
    asyncio client each drive it with their own I/O.
    """

    def __init__(
        self,
        addresses: Iterable[str],
        retry_timeout: float,
        session_ttl: float,
        exactly_once: bool,
    ) -> None:
        self.addresses = [normalize(a) for a in addresses]
        if not self.addresses:
            raise ValueError("give the address of at least one node")
        for a in self.addresses:
            split_hostport(a)
        self.address = self.addresses[0]
        """Where the next request goes: the leader, as far as this client knows."""
        self.retry_timeout = retry_timeout
        self.ttl_ms = max(1, int(session_ttl * 1000))
        self.exactly_once = exactly_once
        self.session: int | None = None
        self._seqs = itertools.count()
        self._outstanding: set[int] = set()
        self._lock = threading.Lock()
        self._rng = random.Random()

    def plan(self, args: tuple[Any, ...]) -> _Plan:
        """Run one command: yields ``(CALL, (address, wire args))`` and ``(SLEEP, seconds)``."""
        name = str(args[0].decode() if isinstance(args[0], bytes) else args[0]).upper()
        deadline = time.monotonic() + self.retry_timeout
        if not self.exactly_once or name in UNSEQUENCED:
            return (yield from self._retried(args, deadline))
        if self.session is None:
            yield from self._open_session(deadline)
        seq = self._take()
        try:
            return (yield from self._sequenced(args, seq, deadline))
        finally:
            self._release(seq)

    def _sequenced(self, args: tuple[Any, ...], seq: int, deadline: float) -> _Plan:
        while True:
            session = self.session
            wire = ("RAFTSEQ", session, seq, self._ack(), *args)
            try:
                return (yield from self._retried(wire, deadline))
            except _SessionGone as gone:
                if gone.maybe_sent:
                    raise OutcomeUnknown(
                        f"the client session expired while {args[0]!r} was in flight: "
                        "it may or may not have been applied"
                    ) from gone.reply
            # The session was forgotten before this command reached it: it
            # never ran, so it may go out again under a new one.
            if self.session == session:
                self.session = None
                yield from self._open_session(deadline)

    def _retried(self, wire: tuple[Any, ...], deadline: float) -> _Plan:
        """Send ``wire`` until it gets an answer, following redirects; its reply."""
        sent_before = False
        delay = 0.01
        redirects = 0
        while True:
            try:
                return (yield (_Step.CALL, (self.address, wire)))
            except Exception as exc:
                action, where = _classify(exc)
                if action is _Action.NO_SESSION:
                    assert isinstance(exc, ResponseError)
                    raise _SessionGone(exc, sent_before) from exc
                if action is _Action.FAIL:
                    raise
                if action is _Action.NEXT_NODE or action is _Action.RETRY_UNKNOWN:
                    # The request may have reached a node before the failure.
                    sent_before = True
                if time.monotonic() >= deadline:
                    raise _gave_up(exc, self.retry_timeout, sent_before) from exc
                if action is _Action.REDIRECT and where:
                    self._learn(where)
                    redirects += 1
                    if redirects <= 2:
                        continue  # nodes that disagree on the leader get a pause below
                else:
                    redirects = 0
                if action is _Action.NEXT_NODE:
                    self._next_node()
            yield (_Step.SLEEP, delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, 0.5)

    def _open_session(self, deadline: float) -> _Plan:
        sid = yield from self._retried(("RAFTSESSION", "NEW", self.ttl_ms), deadline)
        self.session = int(sid)

    def _learn(self, address: str) -> None:
        address = normalize(address)
        if address not in self.addresses:
            self.addresses.append(address)
        self.address = address

    def _next_node(self) -> None:
        i = self.addresses.index(self.address) if self.address in self.addresses else -1
        self.address = self.addresses[(i + 1) % len(self.addresses)]

    def _take(self) -> int:
        with self._lock:
            seq = next(self._seqs)
            self._outstanding.add(seq)
            return seq

    def _release(self, seq: int) -> None:
        with self._lock:
            self._outstanding.discard(seq)

    def _ack(self) -> int:
        """Every sequence below this one has its reply: the cluster may forget those."""
        with self._lock:
            return min(self._outstanding)


def _gave_up(exc: BaseException, seconds: float, maybe_sent: bool) -> redis.RedisError:
    msg = f"no node served the request within {seconds:g} s: {exc}"
    if maybe_sent:
        return OutcomeUnknown(msg + " (it may or may not have been applied)")
    if isinstance(exc, redis.ConnectionError):
        return redis.ConnectionError(msg)
    if isinstance(exc, redis.TimeoutError):
        return redis.TimeoutError(msg)
    return ResponseError(msg)


def _node_kwargs(kwargs: dict[str, Any], retry: Any) -> dict[str, Any]:
    """Connection settings for one node: the caller's, with redis-py's own retries off."""
    node = dict(kwargs)
    node["retry"] = retry
    node.pop("retry_on_timeout", None)
    node.pop("retry_on_error", None)
    return node


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What the wire call takes of a command method's options, and its empty answer if any."""
    from redis.client import EMPTY_RESPONSE, NEVER_DECODE

    options.pop("keys", None)
    empty = options.pop(EMPTY_RESPONSE, _NONE)
    wire = {NEVER_DECODE: options.pop(NEVER_DECODE)} if NEVER_DECODE in options else {}
    return wire, empty


_NONE = object()


def _refuse(what: str) -> NoReturn:
    raise TypeError(
        f"redraft.client does not offer {what}: its commands would bypass the client "
        "session (send commands one by one, or use a plain redis.Redis at the leader)"
    )


class _Following:
    """What :class:`Client` and :class:`AsyncClient` share: the router and the replies."""

    _router: _Router
    response_callbacks: Any

    def _follow(
        self, addresses: tuple[str, ...], retry_timeout: float, session_ttl: float, once: bool
    ) -> dict[str, Any]:
        """Set up the router; the first node to talk to, as redis-py's host and port."""
        self._router = _Router(addresses, retry_timeout, session_ttl, once)
        host, port = split_hostport(self._router.address)
        return {"host": host, "port": port}

    @property
    def leader(self) -> str:
        """The node requests go to: the leader, as far as this client knows."""
        return self._router.address

    def _parsed(self, name: Any, reply: Any, options: dict[str, Any]) -> Any:
        """The reply as redis-py's command method for ``name`` returns it."""
        callback = self.response_callbacks.get(name)
        return callback(reply, **options) if callback is not None else reply

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        """Refused: a pipeline's commands would bypass the client session."""
        _refuse("pipelines")

    def pubsub(self, **kwargs: Any) -> Any:
        """Refused: a pub/sub connection's commands would bypass the client session."""
        _refuse("pub/sub")


class Client(_Following, redis.Redis):
    """A blocking redis-py client for a redraft cluster; see the module's documentation.

    ``addresses`` are ``"host:port"`` strings (``":port"`` means 127.0.0.1).
    Other keyword arguments (``password``, ``ssl``, ``socket_timeout``,
    ``decode_responses``...) are redis-py's, applied to every node.
    ``exactly_once=False`` sends commands bare: a retried write may then
    be applied twice (what any client without sessions risks).
    """

    def __init__(
        self,
        *addresses: str,
        retry_timeout: float = 10.0,
        session_ttl: float = DEFAULT_TTL_MS / 1000,
        exactly_once: bool = True,
        **kwargs: Any,
    ) -> None:
        first = self._follow(addresses, retry_timeout, session_ttl, exactly_once)
        super().__init__(**first, **kwargs)
        self._node_settings = _node_kwargs(kwargs, Retry(NoBackoff(), 0))
        self._nodes: dict[str, redis.Redis] = {}
        self._nodes_lock = threading.Lock()

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Send one command to the leader (retrying across failures); its parsed reply."""
        wire_opts, empty = _split(options)
        plan = self._router.plan(args)
        try:
            step, what = next(plan)
            while True:
                if step is _Step.SLEEP:
                    time.sleep(what)
                    step, what = next(plan)
                    continue
                node = self._node(what[0])
                try:
                    reply = node.execute_command(*what[1], **wire_opts)  # type: ignore[no-untyped-call]
                except Exception as exc:
                    step, what = plan.throw(exc)
                else:
                    step, what = plan.send(reply)
        except StopIteration as done:
            return self._parsed(args[0], done.value, options)
        except ResponseError:
            if empty is _NONE:
                raise
            return empty

    def _node(self, address: str) -> redis.Redis:
        with self._nodes_lock:
            node = self._nodes.get(address)
            if node is None:
                host, port = split_hostport(address)
                node = self._nodes[address] = redis.Redis(
                    host=host, port=port, **self._node_settings
                )
            return node

    def close(self) -> None:
        """Close every connection this client opened."""
        with self._nodes_lock:
            nodes, self._nodes = list(self._nodes.values()), {}
        for node in nodes:
            node.close()
        super().close()


class AsyncClient(_Following, redis.asyncio.Redis):  # type: ignore[misc]  # redis-py's own bases disagree
    """The asyncio twin of :class:`Client`: the same arguments, every method awaitable."""

    def __init__(
        self,
        *addresses: str,
        retry_timeout: float = 10.0,
        session_ttl: float = DEFAULT_TTL_MS / 1000,
        exactly_once: bool = True,
        **kwargs: Any,
    ) -> None:
        first = self._follow(addresses, retry_timeout, session_ttl, exactly_once)
        super().__init__(**first, **kwargs)
        self._node_settings = _node_kwargs(kwargs, AsyncRetry(NoBackoff(), 0))
        self._nodes: dict[str, redis.asyncio.Redis] = {}

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Send one command to the leader (retrying across failures); its parsed reply."""
        wire_opts, empty = _split(options)
        plan = self._router.plan(args)
        try:
            step, what = next(plan)
            while True:
                if step is _Step.SLEEP:
                    await asyncio.sleep(what)
                    step, what = next(plan)
                    continue
                node = self._node(what[0])
                try:
                    reply = await node.execute_command(*what[1], **wire_opts)  # type: ignore[no-untyped-call]
                except Exception as exc:
                    step, what = plan.throw(exc)
                else:
                    step, what = plan.send(reply)
        except StopIteration as done:
            return self._parsed(args[0], done.value, options)
        except ResponseError:
            if empty is _NONE:
                raise
            return empty

    def _node(self, address: str) -> redis.asyncio.Redis:
        node = self._nodes.get(address)
        if node is None:
            host, port = split_hostport(address)
            node = self._nodes[address] = redis.asyncio.Redis(
                host=host, port=port, **self._node_settings
            )
        return node

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close every connection this client opened."""
        nodes, self._nodes = list(self._nodes.values()), {}
        for node in nodes:
            await node.aclose()
        await super().aclose(close_connection_pool)


__all__ = ["UNSEQUENCED", "AsyncClient", "Client", "OutcomeUnknown"]
