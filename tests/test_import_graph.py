"""The core's import graph, read with ``ast`` (nothing is imported).

* No import cycles between ``sam2_plugins`` modules. Imports inside functions and methods count as much as
  module-level ones: an import moved into a method still runs, it only runs later, so it cannot be a way
  around a cycle. Only ``if TYPE_CHECKING:`` blocks are left out (they never run).
* The core never imports the adapters' frameworks (napari, Qt, ComfyUI, Gradio) nor the adapters.
* Every ``sam2_plugins`` import names a module that exists (a lazy import left behind by a move only fails
  when that code path runs).

Edges: ``import p.m`` and ``from p import m`` (m a submodule) point to ``p.m``; ``from p import name`` (not a
submodule) points to ``p``'s ``__init__``, even from inside ``p`` (the name is read from the package, which
must be fully initialized); a package that the import initializes on the way (``from .pkg.m import x`` runs
``pkg/__init__.py``) is an edge too, but not the packages that contain the importer (already initialized).
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sam2_plugins"

# Top-level modules the core must never import: the adapters' host frameworks and the adapters themselves.
FORBIDDEN_EXACT = {
    "napari", "magicgui", "vispy", "superqt", "qtpy", "sip", "shiboken2", "shiboken6",
    "folder_paths", "gradio", "gradio_client", "spaces",
    "napari_plugin", "comfy_nodes", "gradio_app",
}
FORBIDDEN_PREFIXES = ("napari", "PyQt", "PySide", "comfy", "gradio")


@dataclass(frozen=True)
class RawImport:
    module: str | None  # as written ("x.y", or None for "from . import z")
    names: tuple[str, ...] | None  # None for "import x.y"
    level: int  # leading dots
    line: int
    scope: str  # "module level" or the enclosing class/function


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    file: str
    line: int
    scope: str
    text: str

    def describe(self) -> str:
        return f"{self.file}:{self.line} ({self.scope}): {self.text}"


@dataclass
class Graph:
    modules: dict[str, Path]  # dotted name -> file (a package: its __init__.py)
    packages: set[str]  # every package, namespace packages (no __init__.py) included
    edges: dict[str, list[Edge]] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)
    external: list[tuple[str, str]] = field(default_factory=list)  # (top-level module, where)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, skip_type_checking: bool) -> None:
        self.skip_type_checking = skip_type_checking
        self.found: list[RawImport] = []
        self.scope: list[str] = []

    def _where(self) -> str:
        return "in " + ".".join(self.scope) if self.scope else "module level"

    def visit_If(self, node: ast.If) -> None:
        if self.skip_type_checking and _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _scoped(self, node) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append(RawImport(alias.name, None, 0, node.lineno, self._where()))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        names = tuple(alias.name for alias in node.names)
        self.found.append(RawImport(node.module, names, node.level, node.lineno, self._where()))

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("x" / ".x", __package__) and __import__("x"): imports too.
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            spec = node.args[0].value
            level = len(spec) - len(spec.lstrip("."))
            self.found.append(RawImport(spec[level:] or None, None, level, node.lineno, self._where()))
        self.generic_visit(node)


def collect_imports(path: Path, skip_type_checking: bool = True) -> list[RawImport]:
    collector = _Collector(skip_type_checking)
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return collector.found


def _discover(root: Path, package: str) -> tuple[dict[str, Path], set[str]]:
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if not all(part.isidentifier() for part in parts):
            continue
        packages.update(".".join(parts[:i]) for i in range(1, len(parts)))
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules, packages


def build_graph(root: Path, package: str = PACKAGE) -> Graph:
    """The import graph of ``package`` (a folder under ``root``), from every ``.py`` file's AST."""
    modules, packages = _discover(root, package)
    graph = Graph(modules, packages)
    known = set(modules) | packages
    for importer, path in modules.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        rel = path.relative_to(root).as_posix()
        own_pkg = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        initialized = {importer} | {importer.rsplit(".", i)[0] for i in range(1, importer.count(".") + 1)}
        edges = graph.edges.setdefault(importer, [])
        for raw in collect_imports(path):
            where = f"{rel}:{raw.line} ({raw.scope})"
            if raw.level:
                base_parts = own_pkg.split(".")
                if raw.level - 1 >= len(base_parts):
                    graph.unresolved.append(f"{where}: relative import beyond the top package")
                    continue
                base = ".".join(base_parts[: len(base_parts) - (raw.level - 1)] + ([raw.module] if raw.module else []))
            else:
                base = raw.module or ""
            if base != package and not base.startswith(package + "."):
                graph.external.append((base.partition(".")[0], where))
                continue
            if raw.names is None or "*" in raw.names:
                targets = [base]
            else:
                targets = [f"{base}.{name}" if f"{base}.{name}" in known else base for name in raw.names]
            text = lines[raw.line - 1].strip() if raw.line <= len(lines) else ""
            for target in dict.fromkeys(targets):
                if target not in known:
                    graph.unresolved.append(f"{where}: {target} does not exist")
                    continue
                parents = [target.rsplit(".", i)[0] for i in range(target.count("."), 0, -1)]
                for node in [p for p in parents if p not in initialized] + [target]:
                    if node in modules and node != importer:
                        edges.append(Edge(importer, node, rel, raw.line, raw.scope, text))
    return graph


def _adjacency(graph: Graph) -> dict[str, list[str]]:
    return {m: sorted({e.target for e in graph.edges.get(m, [])}) for m in graph.modules}


def strongly_connected(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan): each holds at least one cycle."""
    adjacency = _adjacency(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in adjacency[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for module in sorted(adjacency):
        if module not in index:
            visit(module)
    return sorted(c for c in components if len(c) > 1)  # self-edges are never added


def find_cycles(graph: Graph) -> list[list[Edge]]:
    """One shortest cycle per strongly connected component, as the edges that form it."""
    adjacency = _adjacency(graph)
    cycles = []
    for component in strongly_connected(graph):
        members, start = set(component), component[0]
        previous: dict[str, str] = {}
        queue = deque([start])
        while queue:  # BFS back to start inside the component
            node = queue.popleft()
            if start in adjacency[node]:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                path.reverse()
                path.append(start)
                cycles.append([next(e for e in graph.edges[a] if e.target == b) for a, b in zip(path, path[1:])])
                break
            for succ in adjacency[node]:
                if succ in members and succ not in previous and succ != start:
                    previous[succ] = node
                    queue.append(succ)
    return cycles


def format_cycle(cycle: list[Edge], graph: Graph | None = None) -> str:
    chain = " -> ".join([cycle[0].source] + [e.target for e in cycle])
    text = "import cycle: " + chain + "\n" + "\n".join("    " + e.describe() for e in cycle)
    for component in strongly_connected(graph) if graph is not None else []:
        if cycle[0].source in component and len(component) > len(cycle):
            text += "\n    (one of the cycles among: " + ", ".join(component) + ")"
    return text


def _is_forbidden(top: str) -> bool:
    return top in FORBIDDEN_EXACT or top.startswith(FORBIDDEN_PREFIXES)


# --- the core ------------------------------------------------------------------------------------------------

def test_core_has_no_import_cycles():
    graph = build_graph(SRC)
    assert len(graph.modules) > 20, f"found only {sorted(graph.modules)} under {SRC / PACKAGE}"
    cycles = find_cycles(graph)
    if cycles:
        pytest.fail("\n\n".join(format_cycle(c, graph) for c in cycles), pytrace=False)


def test_core_imports_resolve():
    graph = build_graph(SRC)
    if graph.unresolved:
        pytest.fail("imports of missing sam2_plugins modules:\n" + "\n".join(graph.unresolved), pytrace=False)


def test_core_never_imports_adapter_frameworks():
    found = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        for raw in collect_imports(path, skip_type_checking=False):  # not even for type hints
            top = (raw.module or "").partition(".")[0]
            if raw.level == 0 and _is_forbidden(top):
                found.append(f"{path.relative_to(SRC).as_posix()}:{raw.line} ({raw.scope}): {raw.module}")
    if found:
        pytest.fail("the core imports adapter frameworks or adapters:\n" + "\n".join(found), pytrace=False)


# --- the checker itself, on synthetic packages --------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _cycle_chains(root: Path) -> list[list[str]]:
    return [[c[0].source] + [e.target for e in c] for c in find_cycles(build_graph(root, "pkg"))]


def test_finder_sees_a_cycle_hidden_in_a_method(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "class B:\n    def run(self):\n        from .a import thing\n        return thing\n",
    })
    assert _cycle_chains(root) == [["pkg.a", "pkg.b", "pkg.a"]]
    cycle = find_cycles(build_graph(root, "pkg"))[0]
    assert "pkg/b.py:3 (in B.run): from .a import thing" in format_cycle(cycle)


def test_finder_accepts_a_dag_and_ignores_type_checking(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from .a import A\nfrom .sub import helper\n",
        "a.py": "import pkg.b\nfrom . import c\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\nimport numpy\n",
        "c.py": "def f():\n    from .sub import mod\n",
        "sub/__init__.py": "def helper():\n    pass\n",
        "sub/mod.py": "from ..b import x\n",
        "ns/leaf.py": "from .. import c\n",  # namespace package: no __init__.py
    })
    graph = build_graph(root, "pkg")
    edges = {(e.source, e.target) for es in graph.edges.values() for e in es}
    assert ("pkg.a", "pkg.c") in edges and ("pkg.a", "pkg.b") in edges
    assert ("pkg.c", "pkg.sub") in edges and ("pkg.c", "pkg.sub.mod") in edges  # __init__ of sub runs too
    assert ("pkg", "pkg.sub") in edges  # "from .sub import helper": the package's __init__
    assert ("pkg.b", "pkg.a") not in edges  # TYPE_CHECKING only
    assert ("pkg.a", "pkg") not in edges  # importing a sibling submodule does not re-enter the package
    assert ("pkg.ns.leaf", "pkg.c") in edges and not graph.unresolved
    assert ("numpy", "pkg/b.py:4 (module level)") in graph.external
    assert _cycle_chains(root) == []


def test_finder_counts_names_read_from_the_package(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from .a import A\nVERSION = '1'\n",
        "a.py": "import importlib\ndef version():\n    from . import VERSION\n    return VERSION\n",
    })
    assert _cycle_chains(root) == [["pkg", "pkg.a", "pkg"]]
    root2 = _package(tmp_path / "dynamic", {
        "__init__.py": "",
        "a.py": "import importlib\nm = importlib.import_module('.b', __package__)\n",
        "b.py": "import importlib\ndef f():\n    return importlib.import_module('pkg.a')\n",
    })
    assert _cycle_chains(root2) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_finder_reports_missing_modules(tmp_path):
    root = _package(tmp_path, {"__init__.py": "", "a.py": "def f():\n    from .gone import x\n"})
    assert build_graph(root, "pkg").unresolved == ["pkg/a.py:2 (in f): pkg.gone does not exist"]


def test_forbidden_names():
    for name in ("napari", "napari_builtins", "qtpy", "PyQt6", "PySide6", "comfy", "comfy_api", "folder_paths",
                 "gradio", "gradio_client", "comfy_nodes", "napari_plugin", "gradio_app"):
        assert _is_forbidden(name), name
    for name in ("numpy", "torch", "tifffile", "sam2_plugins", "av", "tqdm"):
        assert not _is_forbidden(name), name
