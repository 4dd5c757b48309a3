"""The architecture guard: the shape of ``src/redraft`` that issue 16 asks to keep.

* No import cycle between redraft's own modules.  Every import counts, the
  lazy ones inside functions and those under ``if TYPE_CHECKING:`` too: a
  cycle held together by a lazy import is still a cycle.
* ``redraft.raft`` (the pure consensus core) imports nothing else of redraft.
* No function over 100 lines and no class over 500 (``end_lineno - lineno + 1``).

The checks read the sources with :mod:`ast` and import nothing.  The tests at
the end run them on small fake trees, to show that each catches what it must
and passes a clean tree.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "redraft"
CORE = "redraft.raft"
MAX_FUNCTION_LINES = 100
MAX_CLASS_LINES = 500


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool  # an __init__.py
    tree: ast.Module


Graph = dict[str, dict[str, int]]
"""module -> {module it imports: line of the first such import}."""


def load_modules(src: Path, package: str) -> dict[str, Module]:
    """Every ``.py`` file of ``package`` under ``src``, by dotted module name."""
    modules: dict[str, Module] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, path, is_package, tree)
    return modules


def compiled_modules(src: Path, package: str) -> set[str]:
    """Modules of ``package`` with no Python source: C extensions (and their stubs).

    ``from redraft import _cresp`` imports such a submodule, not the
    package's ``__init__``; these modules import nothing of ours.
    """
    names = set()
    for path in (src / package).rglob("*"):
        if path.suffix in (".so", ".pyd", ".pyi"):
            parts = path.relative_to(src).parts
            names.add(".".join([*parts[:-1], path.name.split(".")[0]]))
    return names


def _base_of(module: Module, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative ones resolved."""
    if node.level == 0:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts.pop()  # relative to the package the module is in
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    if node.module:
        parts.append(node.module)
    return ".".join(parts)


def _imported(
    module: Module, node: ast.Import | ast.ImportFrom, known: set[str], compiled: Collection[str]
) -> set[str]:
    """The modules of ``known`` that one import statement imports."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = _base_of(module, node)
    out: set[str] = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in known:  # `from redraft.raft import core`: the submodule
            out.add(sub)
        elif sub not in compiled and base in known:  # `from redraft.raft.core import RaftCore`
            out.add(base)
    return out


def import_graph(modules: dict[str, Module], compiled: Collection[str] = ()) -> Graph:
    """Who imports whom among ``modules``: every import statement anywhere in a file.

    Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``
    first; those implicit imports are not edges (as import-linter and grimp
    count them), only the modules named are.
    """
    known = set(modules)
    graph: Graph = {name: {} for name in modules}
    for name, module in modules.items():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(module, node, known, compiled):
                    if target != name:
                        edges = graph[name]
                        edges[target] = min(edges.get(target, node.lineno), node.lineno)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """The groups of two or more modules that all reach each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def shortest_cycle(graph: Graph, group: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``group``, as a path back to it."""
    start = group[0]
    members = set(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in came_from:
                came_from[w] = v
                queue.append(w)
    raise AssertionError(f"{group} is not strongly connected")


def cycle_report(modules: dict[str, Module], graph: Graph) -> list[str]:
    """One paragraph per knot of modules that import each other: a cycle and every edge."""
    out = []
    for group in strongly_connected(graph):
        cycle = shortest_cycle(graph, group)
        lines = [f"{len(group)} modules import each other; a cycle: " + " -> ".join(cycle)]
        lines += [
            f"    {_where(modules, v, line)} imports {w}"
            for v in group
            for w, line in sorted(graph[v].items(), key=lambda edge: edge[1])
            if w in group
        ]
        out.append("\n".join(lines))
    return out


def outside_imports(modules: dict[str, Module], graph: Graph, inner: str) -> list[str]:
    """Imports from a module of package ``inner`` of a module of ours outside it."""

    def inside(name: str) -> bool:
        return name == inner or name.startswith(inner + ".")

    return [
        f"{_where(modules, v, line)} imports {w}"
        for v in sorted(graph)
        if inside(v)
        for w, line in sorted(graph[v].items())
        if not inside(w)
    ]


def oversized(
    modules: dict[str, Module],
    max_function: int = MAX_FUNCTION_LINES,
    max_class: int = MAX_CLASS_LINES,
) -> list[str]:
    """Functions (methods and nested ones included) and classes over the limits, largest first."""
    found: list[tuple[int, str]] = []
    for name, module in modules.items():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                what, limit = "function", max_function
            elif isinstance(node, ast.ClassDef):
                what, limit = "class", max_class
            else:
                continue
            assert node.end_lineno is not None
            size = node.end_lineno - node.lineno + 1
            if size > limit:
                where = _where(modules, name, node.lineno)
                found.append((size, f"{where} {what} {node.name}: {size} lines (max {limit})"))
    return [text for _, text in sorted(found, key=lambda item: (-item[0], item[1]))]


def _where(modules: dict[str, Module], name: str, line: int) -> str:
    path = modules[name].path
    shown = path.relative_to(SRC.parent) if path.is_relative_to(SRC.parent) else path
    return f"{shown}:{line}"


def _fail(rule: str, problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{rule} ({len(problems)} found):\n" + "\n".join(problems), pytrace=False)


# ------------------------------------------------------------ src/redraft


@pytest.fixture(scope="module")
def redraft_modules() -> dict[str, Module]:
    return load_modules(SRC, PACKAGE)


@pytest.fixture(scope="module")
def redraft_graph(redraft_modules: dict[str, Module]) -> Graph:
    return import_graph(redraft_modules, compiled_modules(SRC, PACKAGE))


def test_redraft_has_no_import_cycle(
    redraft_modules: dict[str, Module], redraft_graph: Graph
) -> None:
    graph = redraft_graph
    _fail(
        "import cycles between redraft's modules (lazy and TYPE_CHECKING imports count)",
        cycle_report(redraft_modules, graph),
    )


def test_raft_imports_nothing_else_of_redraft(
    redraft_modules: dict[str, Module], redraft_graph: Graph
) -> None:
    _fail(
        f"{CORE} must import nothing of redraft outside {CORE}",
        outside_imports(redraft_modules, redraft_graph, CORE),
    )


def test_no_function_over_100_lines_and_no_class_over_500(
    redraft_modules: dict[str, Module],
) -> None:
    _fail("functions and classes over the size limits", oversized(redraft_modules))


# ----------------------------------------------- the guard on fake trees


def fake_tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    """Write ``files`` (path under ``root`` -> source) and load package ``pkg`` from them."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return load_modules(root, "pkg")


CLEAN = {
    "pkg/__init__.py": "from pkg.app import main\n",
    "pkg/app.py": (
        "from pkg import util\nfrom pkg.raft import core\nfrom .raft.log import Log\n"
        "import os\n\ndef main():\n    import json\n    return util, core, Log, os, json\n"
    ),
    "pkg/util.py": "import sys\nfrom pkg import _ext\n",
    "pkg/_ext.pyi": "def f() -> int: ...\n",
    "pkg/raft/__init__.py": "",
    "pkg/raft/core.py": "from . import log\nfrom .log import Log\nimport pkg.raft.log\n",
    "pkg/raft/log.py": "class Log:\n    pass\n",
}


def test_guard_passes_a_clean_tree(tmp_path: Path) -> None:
    modules = fake_tree(tmp_path, CLEAN)
    graph = import_graph(modules, compiled_modules(tmp_path, "pkg"))
    assert graph["pkg.util"] == {}  # `from pkg import _ext` imports a C extension, not pkg
    assert graph["pkg.app"] == {"pkg.util": 1, "pkg.raft.core": 2, "pkg.raft.log": 3}
    assert graph["pkg.raft.core"] == {"pkg.raft.log": 1}
    assert graph["pkg"] == {"pkg.app": 1}
    assert cycle_report(modules, graph) == []
    assert outside_imports(modules, graph, "pkg.raft") == []
    assert oversized(modules) == []


def test_guard_finds_a_cycle_held_together_by_a_lazy_import(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["pkg/util.py"] = "def late():\n    from pkg.app import main\n    return main\n"
    modules = fake_tree(tmp_path, files)
    (report,) = cycle_report(modules, import_graph(modules))
    assert "a cycle: pkg.app -> pkg.util -> pkg.app" in report
    assert "pkg/util.py:2 imports pkg.app" in report


def test_guard_counts_a_name_from_a_package_as_an_import_of_its_init(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["pkg/util.py"] = "from pkg import _ext, main\n"
    modules = fake_tree(tmp_path, files)
    graph = import_graph(modules, compiled_modules(tmp_path, "pkg"))
    (report,) = cycle_report(modules, graph)
    assert "a cycle: pkg -> pkg.app -> pkg.util -> pkg" in report


def test_guard_finds_a_cycle_through_type_checking_and_relative_imports(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "from ..c import C\n",
        "pkg/c.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nclass C:\n    pass\n"
        ),
    }
    modules = fake_tree(tmp_path, files)
    (report,) = cycle_report(modules, import_graph(modules))
    assert "3 modules import each other; a cycle: pkg.a -> pkg.sub.b -> pkg.c -> pkg.a" in report


def test_guard_names_every_knot_of_modules(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "import pkg.b\n",
        "pkg/b.py": "import pkg.a\n",
        "pkg/c.py": "from pkg.d import x\n",
        "pkg/d.py": "x = 1\ndef f():\n    from pkg import c\n",
    }
    modules = fake_tree(tmp_path, files)
    reports = cycle_report(modules, import_graph(modules))
    assert [r.splitlines()[0] for r in reports] == [
        "2 modules import each other; a cycle: pkg.a -> pkg.b -> pkg.a",
        "2 modules import each other; a cycle: pkg.c -> pkg.d -> pkg.c",
    ]


def test_guard_finds_the_core_importing_outside_itself(tmp_path: Path) -> None:
    files = dict(CLEAN)
    files["pkg/raft/log.py"] = "class Log:\n    def f(self):\n        from pkg.util import x\n"
    files["pkg/raft/__init__.py"] = "from .. import app\n"
    modules = fake_tree(tmp_path, files)
    problems = outside_imports(modules, import_graph(modules), "pkg.raft")
    assert problems == [
        f"{tmp_path}/pkg/raft/__init__.py:1 imports pkg.app",
        f"{tmp_path}/pkg/raft/log.py:3 imports pkg.util",
    ]


def test_guard_finds_long_functions_and_classes(tmp_path: Path) -> None:
    body_101 = "".join(f"    x{i} = {i}\n" for i in range(100))
    method_101 = "".join(f"        x{i} = {i}\n" for i in range(100))
    files = {
        "pkg/__init__.py": "",
        "pkg/long.py": f"def long():\n{body_101}\n\ndef short():\n    pass\n",
        "pkg/ok.py": "def exactly_100():\n" + "".join(f"    x{i} = {i}\n" for i in range(99)),
        "pkg/big.py": (
            "class Big:\n    async def method(self):\n"
            + method_101
            + "".join(f"    def m{i}(self):\n        pass\n" for i in range(200))
        ),
    }
    modules = fake_tree(tmp_path, files)
    assert oversized(modules) == [
        f"{tmp_path}/pkg/big.py:1 class Big: 502 lines (max 500)",
        f"{tmp_path}/pkg/big.py:2 function method: 101 lines (max 100)",
        f"{tmp_path}/pkg/long.py:1 function long: 101 lines (max 100)",
    ]
