"""The application surface: what a developer implements and what they are handed.

A developer subclasses :class:`Machine`.  For every client command redraft
calls ``Machine.command(m, conn, cmd)``; the machine calls
``m.apply(conn, cmd, mutate, respond)`` for anything that touches replicated
state.  ``mutate is None`` marks a read.  When the command is a write it is
appended to the Raft log; once committed, every node calls
``command(m, None, cmd)`` again with an applying :class:`Applier`, whose
``apply`` runs ``mutate`` and returns its result; on the node holding the
client, ``respond(result)`` then builds the reply.

A machine may also declare plain commands, functions of the arguments that
redraft calls itself without a trip through ``command`` and ``apply``: reads
(:meth:`Machine.reads`), served at the configured consistency, and writes
(:meth:`Machine.writes`), applied from the log on every node.  They are the
fast way for hot commands; anything else goes through ``command``.

Blocking commands (BLPOP and the like) go through :meth:`Applier.blocking`:
their ``mutate`` raises :class:`Block` while it cannot be answered, and the
request waits, holding its connection's place in line, until a later write
calls :meth:`Applier.key_ready` for one of its keys (or its timeout); tried
again, it learns which of its keys were made ready, first one first, from
:meth:`Applier.woken_by`.
Transactions (MULTI/EXEC) need nothing of a machine; WATCH needs
:meth:`Machine.watch` and :meth:`Machine.watch_changed`.

Optional hooks: ``tick`` (time-driven work, logged by the leader and run on
every node at the same place in the log) with its hint ``wants_tick``;
``on_leader``, ``on_follower`` and ``on_ready`` (leadership and catching up,
called on the event loop); ``info`` (sections of ``INFO``).
"""

from __future__ import annotations

import random as _random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, NamedTuple, Protocol, overload, runtime_checkable

from redraft.errors import (
    ErrDisabled,
    ErrUnknownCommand,
    ErrWrongNumberOfArguments,
    RedraftError,
    error_text,
)

Mutate = Callable[[], Any]
Respond = Callable[[Any], Any]


_AS_REPLY: Any = object()


class Command(Sequence[bytes]):
    """One client command: its raw arguments, the name first.

    A sequence of bytes like the ``args`` a plain command gets, so one
    function can serve both (``cmd[1]``, ``len(cmd)``, iteration).
    """

    __slots__ = ("_name", "args")

    def __init__(self, args: list[bytes], name: str | None = None) -> None:
        self.args = args
        self._name = name

    @property
    def name(self) -> str:
        """The command name in lower case (``"set"``)."""
        name = self._name
        if name is None:
            name = self._name = self.args[0].decode("latin-1").lower() if self.args else ""
        return name

    def __len__(self) -> int:
        return len(self.args)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        return self.args[i]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.args)

    def __repr__(self) -> str:
        return f"Command({self.args!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Command) and other.args == self.args

    def __hash__(self) -> int:
        return hash(tuple(self.args))


class Block(Exception):
    """Raised by the ``mutate`` of a blocking command (:meth:`Applier.blocking`): not answerable yet.

    Raise it before changing anything.  The request waits, on the leader,
    until a write applied later calls :meth:`Applier.key_ready` for one of
    ``keys`` (then it is logged and applied again, and
    :meth:`Applier.woken_by` names the keys made ready), or until ``timeout_ms``
    passes on the leader's clock (0: no timeout), when ``reply`` answers it.
    Inside a transaction a command never waits: ``multi_reply`` (by default
    ``reply``) answers it at once, as in Redis.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        timeout_ms: int = 0,
        reply: Any = None,
        *,
        multi_reply: Any = _AS_REPLY,
    ) -> None:
        super().__init__("blocked")
        self.keys = list(keys)
        self.timeout_ms = timeout_ms
        self.reply = reply
        self.multi_reply = reply if multi_reply is _AS_REPLY else multi_reply


class CommandSpec(NamedTuple):
    """What ``COMMAND`` says of a command: Redis's arity, flags and key positions.

    ``arity`` counts the name (negative: at least that many); ``first_key``,
    ``last_key`` (negative: from the end) and ``step`` locate the keys, all
    0 for a command without keys; a command whose keys move (``ZUNION
    numkeys ...``) has the ``movablekeys`` flag.  Cluster clients route by
    these (see :meth:`Machine.command_table`).
    """

    arity: int
    flags: tuple[str, ...] = ()
    first_key: int = 1
    last_key: int = 1
    step: int = 1


class Status:
    """A RESP simple-string reply: ``Status("OK")`` is sent as ``+OK``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if "\r" in text or "\n" in text:
            raise ValueError("a status reply cannot contain CR or LF")
        self.text = text

    def __repr__(self) -> str:
        return f"Status({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Status) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Status", self.text))


OK = Status("OK")


class NullArray:
    """The null array: ``*-1`` in RESP2, ``_`` in RESP3 (BLPOP's timeout, an aborted EXEC)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = NullArray()
"""The one :class:`NullArray`; return it where Redis answers a null array."""


class Double:
    """A double reply with its digits given: a bulk string in RESP2, a double (``,``) in RESP3.

    ``Double(b"0.10000000000000001")`` is sent as ``$19 0.10000000000000001``
    to a RESP2 client and as ``,0.10000000000000001`` after ``HELLO 3``, as
    Redis 7.0 answers ZSCORE (its ``%.17g``).  A plain ``float`` reply takes
    the same two forms with the shortest digits that read back as the same
    number (Redis 7.2's); ``Double`` is for a reply whose digits must be
    others.  ``text`` is the number as RESP3 writes one (``1.5``, ``1e+17``,
    ``inf``, ``-inf``, ``nan``); it may not hold CR or LF.
    """

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        if 13 in text or 10 in text:  # CR, LF (a byte looked for this way is a memchr)
            raise ValueError("a double reply cannot contain CR or LF")
        self.text = text

    def __repr__(self) -> str:
        return f"Double({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Double) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Double", self.text))


class Pairs:
    """Pairs: a flat array in RESP2 (``a 1 b 2``), an array of two-element arrays in RESP3.

    ``Pairs([(b"a", Double(b"1")), (b"b", Double(b"2"))])`` is sent as
    ``*4 a 1 b 2`` to a RESP2 client and as ``*2 *2 a ,1 *2 b ,2`` after
    ``HELLO 3``: how Redis 7.0 answers ZRANGE ... WITHSCORES, ZPOPMIN with a
    count, ZRANDMEMBER ... WITHSCORES and HRANDFIELD ... WITHVALUES.  Each
    half is encoded as any reply is.  (Where Redis answers a map in RESP3,
    HGETALL's, return a ``dict``.)
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[Any, Any]] = ()) -> None:
        self.pairs: list[tuple[Any, Any]] = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.pairs)

    def __repr__(self) -> str:
        return f"Pairs({self.pairs!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and other.pairs == self.pairs

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list


class Verbatim:
    """Text for a person to read: a bulk string in RESP2, a verbatim string (``=``) in RESP3.

    ``Verbatim(b"# Server\r\n...")`` is sent as ``$N`` and the text to a
    RESP2 client and as ``=N``, ``txt:`` and the text after ``HELLO 3``
    (``N`` counting the four bytes of ``txt:``): how Redis 7.0 answers INFO,
    CLIENT INFO and LIST, CLUSTER INFO and NODES, MEMORY DOCTOR and LATENCY
    DOCTOR.  ``format`` is RESP3's three-byte format, ``txt`` (plain text) or
    ``mkd`` (markdown).  The text may hold any bytes, CR and LF included.
    """

    __slots__ = ("format", "text")

    def __init__(self, text: bytes, format: bytes = b"txt") -> None:
        if len(format) != 3:
            raise ValueError("a verbatim string's format is three bytes (txt, mkd)")
        self.text = text
        self.format = format

    def __repr__(self) -> str:
        if self.format == b"txt":
            return f"Verbatim({self.text!r})"
        return f"Verbatim({self.text!r}, {self.format!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Verbatim) and other.text == self.text and other.format == self.format
        )

    def __hash__(self) -> int:
        return hash(("Verbatim", self.text, self.format))


@runtime_checkable
class Conn(Protocol):
    """A client connection, as the machine and the connection hooks see it."""

    @property
    def id(self) -> int:
        """A number unique to this connection within the node's lifetime."""
        ...

    @property
    def addr(self) -> str:
        """The remote address, ``host:port``."""
        ...

    name: str
    """Set by ``CLIENT SETNAME``."""

    context: Any
    """Free for the machine to keep per-connection state in."""

    def close(self) -> None:
        """Close the connection once pending replies are written."""
        ...

    def push(self, items: list[Any]) -> None:
        """Send ``items`` to this client out of band, now: a server push.

        A RESP3 push frame (``>N``) to a client that sent ``HELLO 3``, a
        plain array otherwise (RESP2 clients take pub/sub messages so; a
        RESP2 push waits behind the replies the connection is owed, a RESP3
        one goes out as it happens).  Items are encoded as replies are.
        A client whose unsent output exceeds the output-buffer limit
        (``--client-output-buffer-limit``) is disconnected.  Call it from
        ``command``, a hook, or the loop; ``mutate`` runs on every node and
        has no connection (pub/sub delivers from the applied log instead).
        """
        ...


class Applier(ABC):
    """Handed to :meth:`Machine.command`; the one way to reach replicated state."""

    @abstractmethod
    def apply(
        self,
        conn: Conn | None,
        cmd: Command,
        mutate: Mutate | None,
        respond: Respond | None,
    ) -> Any:
        """Run a write (``mutate`` given) through the log, or a read (``mutate is None``).

        Returns what the machine's ``command`` should return.  An exception
        raised by ``mutate`` or ``respond`` becomes the client's error reply.
        """

    @abstractmethod
    def now_ns(self) -> int:
        """Nanoseconds since the epoch, identical on every node for a given write.

        In ``mutate`` it is the time the leader stamped on the log entry (never
        earlier than any time stamped before it).  Outside ``mutate`` it is this
        node's clock, never earlier than the last applied stamp.
        """

    def blocking(
        self,
        conn: Conn | None,
        cmd: Command,
        mutate: Mutate,
        respond: Respond | None,
    ) -> Any:
        """Run a write that may have to wait: like :meth:`apply`, but ``mutate`` may raise :class:`Block`.

        A request that blocks holds its connection's place in line: what the
        client pipelined behind it waits, as in Redis.  Waiting requests are
        kept by the leader; if it loses leadership they are answered with a
        redirect (``-TRY``/``-MOVED``), and the client retries at the new
        leader, where the request starts waiting afresh.
        """
        return self.apply(conn, cmd, mutate, respond)

    def key_ready(self, key: bytes) -> None:
        """From ``mutate``: ``key`` changed in a way that may answer a blocked request.

        Cheap, and a no-op where nothing waits; the leader retries the
        requests blocked on ``key``, the longest-waiting first, each told
        which of its keys were made ready (:meth:`woken_by`).
        """
        return

    def woken_by(self) -> Sequence[bytes]:
        """From a blocking command's ``mutate``: the keys whose :meth:`key_ready` woke it.

        Empty on a request's first try (and outside blocking commands).  When
        writes wake a parked request, the leader logs it again with the keys
        it waits on (its :class:`Block`'s) that those writes made ready, in
        the order :meth:`key_ready` was first called for each (one
        transaction, or the entries applied in one pass, may make several
        ready); every node applies it with the same keys.  Redis 7.0 serves
        a waiter from the key made ready first: try these keys in this order,
        passing over one emptied again meanwhile, before the command's own
        order.  Deterministic, like everything ``mutate`` reads.
        """
        return ()

    def now(self) -> float:
        """:meth:`now_ns` in seconds."""
        return self.now_ns() / 1e9

    @abstractmethod
    def random(self) -> _random.Random:
        """A generator seeded from the log entry: the same sequence on every node."""


Read = Callable[[Applier, list[bytes]], Any]
"""A plain read: ``read(m, args)`` returns the reply from the current state (see :meth:`Machine.reads`)."""


class KeyRead:
    """A plain read of one key whose usual reply is a ``bytes`` value kept in a dict.

    Declared in :meth:`Machine.reads` in place of the plain function, for a
    read such as GET: ``NAME key`` answered with the value stored under
    ``key``, or nil.  ``read`` serves the command as any plain read does.
    ``tables()`` returns a tuple of dicts as the state is now,
    ``(values, *unless)``: where redraft may answer a read in place (see
    :meth:`Machine.reads`), the requests ``NAME key`` at the front of what a
    client sent whose key is a key of no ``unless`` dict are answered
    without a Python call per request: with the value ``values`` holds for
    the key when it is ``bytes`` (a bulk string), with nil when it holds
    none.  ``read`` must give those same replies.  Every other request (a
    key in an ``unless`` dict, such as one with an expiry or a value of
    another type kept elsewhere; another kind of value in ``values``;
    another number of arguments) goes to ``read``, as does everything where
    redraft has no C extension.  ``tables`` is called again after anything
    is applied or restored, and its tuple kept in between: the dicts may be
    replaced by a write (a FLUSHALL) or a restore, never by a read.
    """

    __slots__ = ("read", "tables")

    def __init__(
        self,
        read: Read,
        tables: Callable[[], tuple[dict[bytes, Any], ...]],
    ) -> None:
        self.read = read
        self.tables = tables

    def __call__(self, m: Applier, args: list[bytes]) -> Any:
        return self.read(m, args)


class Write:
    """A plain write (see :meth:`Machine.writes`).

    ``apply(m, args)`` changes the state when the command's log entry is
    applied, on every node, exactly as a ``mutate`` would (deterministic,
    time and randomness only through ``m``; raising leaves the state as it
    was), and returns the reply.  ``check(args)``, when given, runs on the
    node the client is connected to before anything is logged: raising
    refuses the request there, so a malformed one never reaches the log.

    Two optional hooks take a run of requests of this name at once (a
    pipeline of SETs), for writes whose plain form is cheaper in bulk:
    ``check_many(cmds)`` checks several, raising if any is bad (redraft then
    calls ``check`` one by one to answer each in its place), and
    ``apply_many(m, cmds)`` applies consecutive commands of one log entry
    and returns one result each, exactly as ``apply`` on each in turn would:
    a command that fails gets its exception as its result and leaves the
    state as it was.  ``m.random()`` inside ``apply_many`` is seeded by the
    run's first command, so a write that draws random numbers should not
    declare it.
    """

    __slots__ = ("apply", "apply_many", "check", "check_many")

    def __init__(
        self,
        apply: Callable[[Applier, list[bytes]], Any],
        check: Callable[[list[bytes]], None] | None = None,
        *,
        apply_many: Callable[[Applier, list[list[bytes]]], list[Any]] | None = None,
        check_many: Callable[[list[list[bytes]]], None] | None = None,
    ) -> None:
        self.apply = apply
        self.check = check
        self.apply_many = apply_many
        self.check_many = check_many


class SnapshotCapture(Protocol):
    """The second phase of a two-phase snapshot: persist what was captured."""

    def write(self, wr: IO[bytes]) -> None:
        """Write the captured state; runs in a worker thread."""
        ...


class Machine(ABC):
    """The replicated state machine a developer writes."""

    @abstractmethod
    def command(self, m: Applier, conn: Conn | None, cmd: Command) -> Any:
        """Handle one command; see the module docstring for the protocol."""

    def reads(self) -> Mapping[str, Read]:
        """Optional: the commands that only read, by name, answered without ``command``.

        ``read(m, args)`` (``args`` the raw arguments, the name first) checks
        them, raising for bad ones, and returns the reply from the state as
        it is; it must change nothing.  redraft serves such a command exactly
        as ``m.apply(conn, cmd, None, lambda _: read(m, cmd.args))`` would:
        at the configured consistency, after the connection's earlier writes,
        redirected by a follower when the level asks for the leader.  When
        it can answer at once (consistency low, or medium within the
        leader's lease, nothing earlier pending on the connection) it calls
        ``read`` straight away, which spares the per-command objects of the
        general path: the fast way for hot reads such as GET.  A read of one
        key whose usual reply is a ``bytes`` value kept in a dict may be
        declared a :class:`KeyRead`, which the request parser answers
        itself.  Names are matched without regard to case; a built-in
        command of the same name wins.  Called once, when the node starts.
        """
        return {}

    def writes(self) -> Mapping[str, Write]:
        """Optional: writes by name, logged and applied without ``command``.

        redraft checks such a command with ``write.check`` and logs its
        arguments as it would for ``m.apply(conn, cmd, mutate, None)``; once
        committed, every node runs ``write.apply(m, args)`` instead of
        calling ``command`` again, and its result is the reply.  Names are
        matched without regard to case; a built-in command of the same name
        wins.  A name declared here is always applied by its ``Write``, so
        ``command`` must not propose arguments of that name itself.  Called
        once, when the node starts.
        """
        return {}

    def snapshot(self, wr: IO[bytes]) -> SnapshotCapture | None:
        """Save the state.

        Simple form: write the whole state to ``wr`` and return ``None``; the
        event loop waits meanwhile.  Two-phase form: capture the state cheaply
        (for example a copy-on-write reference) and return an object whose
        ``write(wr)`` persists it later in a worker thread while commands keep
        flowing.  Raise :class:`ErrDisabled` to turn snapshots off (the log is
        then never compacted).
        """
        raise ErrDisabled()

    @abstractmethod
    def restore(self, rd: IO[bytes]) -> None:
        """Replace the whole state with the one in ``rd`` (written by ``snapshot``)."""

    # --- optional hooks: WATCH, time-driven work, leadership, readiness, INFO

    def watch(self, key: bytes) -> Any:
        """Optional (WATCH): a token of ``key``'s state now, to check against at EXEC.

        Called on the node the client is connected to, when it serves the
        WATCH (a read, at the configured consistency).  The token travels in
        the transaction's log entry, so it must be msgpack-able (an int,
        bytes, a list of them).  Raise :class:`ErrDisabled` (the default) if
        the machine does not support WATCH.
        """
        raise ErrDisabled("ERR WATCH is not supported by this machine")

    def watch_changed(self, key: bytes, token: Any) -> bool:
        """Optional (WATCH): whether ``key`` changed since :meth:`watch` gave ``token``.

        Called on every node when a transaction's entry is applied, before
        any of its commands: if any watched key changed, none of them runs
        and EXEC answers nil.  It must be deterministic (the same answer on
        every node) and may err only towards True.
        """
        return True

    def command_table(self) -> Mapping[str, CommandSpec]:
        """Optional: what ``COMMAND`` describes for each of the machine's commands, by name.

        Without one, ``COMMAND`` lists the plain reads and writes with their
        key first (and, with ``--redirect moved``, Redis's own table, so that
        cluster clients can route a machine that speaks Redis's commands).
        """
        return {}

    def tick(self, m: Applier) -> None:
        """Optional: time-driven work, run on every node at the same place in the log.

        Define it and the leader logs a tick every ``Options.tick_interval_ms``
        (``--tick-interval``; 0 turns ticks off) while :meth:`wants_tick`
        says so; every node runs ``tick`` when it applies that entry, under
        the rules of a write's ``mutate``: the time only from ``m.now_ns()``
        (the leader's stamp on the entry), randomness only from
        ``m.random()``, deterministic.  A tick shares its log entry with the
        client writes of its loop turn and is applied after them.  Nothing
        answers it: an exception is logged and the state keeps what the tick
        did before raising.  A machine that does not define it logs no ticks
        and pays nothing (this default does nothing).
        """
        return  # optional: nothing by default

    def wants_tick(self, now_ns: int) -> bool:
        """Optional: whether a tick would do anything now (read on the leader, before logging one).

        ``now_ns`` is about the time the tick would be stamped with.  Answer
        False while there is no time-driven work, so that an idle cluster's
        log does not grow by a tick per interval for ever.  It runs on the
        leader only and changes nothing; it may err either way (a tick that
        finds nothing to do is harmless, a skipped one is asked for again
        next interval).  Default: True.
        """
        return True

    def on_leader(self) -> None:
        """Optional: this node became the leader.

        Called on the event loop, never while an entry is applied; an
        exception is logged.  Nothing replicated may change here: only
        node-local things (start a timer, tell a monitor).
        """
        return  # optional: nothing by default

    def on_follower(self, leader: str) -> None:
        """Optional: this node stopped leading, or learned of a new leader it follows.

        ``leader`` is that leader's address, or "" when this node stepped
        down and no leader is known yet (a later call names it).  Called as
        :meth:`on_leader` is.
        """
        return  # optional: nothing by default

    def on_ready(self) -> None:
        """Optional: called once, when this node has caught up after it started.

        That is: it knows a leader, and it has applied every entry that was
        committed when it first heard from that leader (a leader: once it
        committed an entry of its own term, and applied everything up to
        it).  A node restored from its data dir, or a new member filled by
        a snapshot, is ready only once it has caught up with the cluster.
        Called as :meth:`on_leader` is.
        """
        return  # optional: nothing by default

    def info(self) -> Mapping[str, Mapping[str, str]]:
        """Optional: sections of ``INFO`` the machine adds, ``{"Keyspace": {"db0": "keys=1,..."}}``.

        Each section is printed as ``# Name`` and its ``field:value`` lines,
        after the node's own sections, and ``INFO name`` (any case) selects
        it.  A section named like one of the node's adds its lines to that
        one.  Called on the event loop for every INFO; reads this node's
        state as it is.  An exception is logged and leaves the sections out.
        """
        return {}


def defines_tick(machine: Machine) -> bool:
    """Whether ``machine`` defines :meth:`Machine.tick` (only then are ticks logged)."""
    return getattr(type(machine), "tick", None) is not Machine.tick


__all__ = [
    "NULL_ARRAY",
    "OK",
    "Applier",
    "Block",
    "Command",
    "CommandSpec",
    "Conn",
    "Double",
    "ErrDisabled",
    "ErrUnknownCommand",
    "ErrWrongNumberOfArguments",
    "KeyRead",
    "Machine",
    "NullArray",
    "Pairs",
    "Read",
    "RedraftError",
    "SnapshotCapture",
    "Status",
    "Verbatim",
    "Write",
    "defines_tick",
    "error_text",
]
