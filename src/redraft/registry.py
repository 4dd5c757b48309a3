"""Which code serves a command name: a built-in, a machine's plain read or write, or its ``command``.

Built-ins win over the machine; a machine's plain commands (``reads()``,
``writes()``) are served without ``command``; every other name goes to
``command``.  The registry is built once when the node starts and refuses
a machine that declares a plain command under a built-in's name, or one
name as both a read and a write, so that nothing is shadowed in silence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, Final

from redraft.machine import KeyRead, Machine, Read, Write

Builtin = Callable[[Any, list[bytes]], Any]
"""A built-in command: ``handler(session, args)`` returns the reply (or a slot)."""


class RouteKind(IntEnum):
    BUILTIN = 0
    READ = 1
    WRITE = 2
    MACHINE = 3


BUILTIN: Final = RouteKind.BUILTIN
READ: Final = RouteKind.READ
WRITE: Final = RouteKind.WRITE
MACHINE: Final = RouteKind.MACHINE


class Route:
    """How one spelling of a command name is served (read-only once made).

    A class with slots rather than a NamedTuple: the request path reads its
    fields once or twice per request, and slot attributes are the fastest
    there are.
    """

    __slots__ = ("check", "fn", "key", "kind", "name")

    def __init__(self, kind: RouteKind, fn: Any, key: bytes, name: str) -> None:
        self.kind = kind
        self.fn = fn
        """The built-in handler, the :data:`~redraft.machine.Read`, the :class:`~redraft.machine.Write`, or None."""
        self.check: Callable[[list[bytes]], object] | None = (
            fn.check if isinstance(fn, Write) else None
        )
        """The write's ``check``, if any: read once per write on the hot path."""
        self.key = key
        """The name in lower case."""
        self.name = name
        """The name in lower case, as error replies spell it."""

    def __repr__(self) -> str:
        return f"Route({self.kind.name}, {self.name!r})"


class StateTables:
    """A :class:`~redraft.machine.KeyRead`'s ``tables()``, asked again only once the state moved.

    The parser wants the dicts at every read of a connection's bytes; a
    machine replaces them only when something is applied or restored
    (FLUSHALL, a snapshot), after which :meth:`Registry.state_changed`
    drops the tuple kept here.  One call of an interpreted method was a
    sixth of a GET's instructions.
    """

    __slots__ = ("_ask", "_tables")

    def __init__(self, ask: Callable[[], tuple[dict[bytes, Any], ...]]) -> None:
        self._ask = ask
        self._tables: tuple[dict[bytes, Any], ...] | None = None

    def __call__(self) -> tuple[dict[bytes, Any], ...]:
        tables = self._tables
        if tables is None:
            tables = self._tables = self._ask()  # one that raises is asked again next time
        return tables

    def forget(self) -> None:
        """The state moved: ask the machine the next time."""
        self._tables = None


_CACHE: Final = 4096
"""How many spellings of command names the registry remembers the route of."""
_NAME_MAX: Final = 32
"""Longer names are routed every time rather than remembered."""


class MachineConflict(ValueError):
    """A machine declares a command that would shadow another or be shadowed."""


class Registry:
    """The command table of one node: built-ins and one machine's commands."""

    def __init__(self, builtins: Mapping[bytes, Builtin], machine: Machine) -> None:
        self.builtins = dict(builtins)
        reads = _keyed(machine.reads(), "reads")
        writes = _keyed(machine.writes(), "writes")
        for key in reads.keys() & writes.keys():
            raise MachineConflict(
                f"the machine declares '{key.decode()}' in both reads() and writes(): "
                "a command either changes the state or it does not"
            )
        for table, key in [("reads", k) for k in reads] + [("writes", k) for k in writes]:
            if key in self.builtins:
                raise MachineConflict(
                    f"the machine's {table}() declares '{key.decode()}', which is a built-in "
                    "command of every redraft node: give it another name"
                )
        self._plain: dict[bytes, tuple[RouteKind, Read | Write]] = {}
        self._plain.update((k, (READ, fn)) for k, fn in reads.items())
        self._plain.update((k, (WRITE, fn)) for k, fn in writes.items())
        self.routes: dict[bytes, Route] = {}
        """Routes by exact spelling: one lookup per request on the hot path."""
        kept = {k: StateTables(fn.tables) for k, fn in reads.items() if isinstance(fn, KeyRead)}
        self._tables = list(kept.values())
        self.lookups: dict[bytes, Callable[[], tuple[dict[bytes, Any], ...]]] = dict(kept)
        """The tables of the machine's :class:`~redraft.machine.KeyRead` reads, by lower-case
        name: what the parser answers such requests from (``resp.RequestParser.parse``)."""
        for key in (*self.builtins, *self._plain):
            # The usual spellings up front: junk names cannot crowd them out.
            self.route(key)
            self.route(key.upper())

    def state_changed(self) -> None:
        """Entries were applied or a snapshot restored: the machine may hold new dicts."""
        for tables in self._tables:
            tables.forget()

    def route(self, name: bytes) -> Route:
        """How to serve a command name (any spelling)."""
        route = self.routes.get(name)
        if route is not None:
            return route
        key = name.lower()
        handler = self.builtins.get(key)
        if handler is not None:
            route = Route(BUILTIN, handler, key, key.decode("latin-1"))
        else:
            kind, fn = self._plain.get(key, (MACHINE, None))
            route = Route(kind, fn, key, key.decode("latin-1"))
        # Remembered so that a request costs one lookup, not a lower() and
        # three; bounded, so that junk names cannot grow it.
        if len(name) <= _NAME_MAX and len(self.routes) < _CACHE:
            self.routes[name] = route
        return route

    def read_run(
        self, cmds: list[list[bytes]], i: int, route: Route
    ) -> list[tuple[Read, list[bytes], str]]:
        """The plain reads from ``cmds[i]`` (of ``route``, a read) on: each one's read, args, name."""
        routes = self.routes
        run: list[tuple[Read, list[bytes], str]] = []
        n = len(cmds)
        while True:
            run.append((route.fn, cmds[i], route.name))
            i += 1
            if i == n:
                return run
            a0 = cmds[i][0]
            route = routes.get(a0) or self.route(a0)
            if route.kind is not READ:
                return run

    def plain(self) -> dict[bytes, bool]:
        """The machine's plain commands by lower-case name: whether each is a write."""
        return {key: kind is WRITE for key, (kind, _) in self._plain.items()}

    def write_of(self, name: bytes) -> Write | None:
        """The plain write that applies a logged command of this name, if the machine declared one."""
        route = self.routes.get(name) or self.route(name)
        return route.fn if route.kind is WRITE else None


def _keyed(table: Mapping[str, Any], what: str) -> dict[bytes, Any]:
    keyed: dict[bytes, Any] = {}
    for name, fn in table.items():
        key = name.lower().encode()
        if not key or not callable(fn if what == "reads" else getattr(fn, "apply", None)):
            raise MachineConflict(f"the machine's {what}() has a bad entry for {name!r}")
        keyed[key] = fn
    return keyed
