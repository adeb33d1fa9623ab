"""The package's shape: modules of one idea, functions that fit on a screen, layers without circles.

These read the source as text (no imports of the package), so they cost nothing and fail as soon as a
change grows a module past its limit, adds a circle between packages, or reaches into Ray's internals.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fairsearch"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _node(module: str, modules: dict[str, Path]) -> str:
    """A module's node in the package graph: its package, or itself when it sits at the top.

    A package's ``__init__`` is a node of its own: the facade that re-exports the package's names
    may import its subpackages, which build on the package's modules, without a circle."""
    path = modules[module]
    if path.name == "__init__.py":
        return f"{module}.__init__"
    package = module.rpartition(".")[0]
    return module if package == PACKAGE.name else package


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    base = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                source = f"{anchor}.{source}" if source else anchor
            names = [source] + [f"{source}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _package_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        if module == PACKAGE.name:  # the public facade imports everything, lazily
            continue
        here = _node(module, modules)
        for target in _imported(module, path, modules):
            there = _node(target, modules)
            if there != here and there != PACKAGE.name:
                graph[here].add(there)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in list(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}  # fmt: skip
    assert long == {}, f"split these along their seams (limit {MAX_MODULE_LINES} lines)"


def test_no_function_is_longer_than_the_limit():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"] = lines
    assert long == {}, f"split these into steps (limit {MAX_FUNCTION_LINES} lines)"


def test_packages_import_each_other_without_circles():
    assert _strongly_connected(_package_graph()) == []


def test_the_package_graph_check_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _strongly_connected(graph) == [["a", "b", "c"]]


#: Modules allowed to import a private Ray module, and why. ``ray_start`` turns
#: ``ray_constants.ENABLE_RAY_CLUSTER`` off while a local Ray starts: the one switch that makes
#: Ray's servers bind the loopback address; Ray has no public option for it.
PRIVATE_RAY_ALLOWED = {"fairsearch/executor/ray_start.py"}


def _private_ray_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
        found += [n for n in names if n.startswith(("ray._private", "ray._raylet"))]
    return found


def test_no_private_ray_module_is_imported():
    private = {str(p.relative_to(PACKAGE.parent)): names for p in PACKAGE.rglob("*.py")
               if (names := _private_ray_imports(p))}  # fmt: skip
    assert set(private) <= PRIVATE_RAY_ALLOWED, private
