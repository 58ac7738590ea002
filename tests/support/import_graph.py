"""The import graph of ``pipeline/``, built statically from the source with :mod:`ast`.

Every ``import`` statement counts: at module level, inside functions and classes, and inside
``if TYPE_CHECKING:`` blocks. Type-only imports never run, but a type-only cycle is still two
modules that each need the other to be understood, and a type-only edge only ever adds DVC deps
(conservative). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module of
``pipeline`` (a submodule), else to ``pkg``. Only pipeline-internal edges are kept.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "pipeline"


def module_files(root: Path = REPO_ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Module name -> source file, for every ``.py`` under ``root/package``."""
    out: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def is_package(name: str, files: dict[str, Path]) -> bool:
    """True for a package (its file is an ``__init__.py``)."""
    return files[name].name == "__init__.py"


def _resolve(name: str, files: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a known module (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in files:
            return candidate
        parts.pop()
    return None


def imports_in(tree: ast.AST, module: str, files: dict[str, Path]) -> set[str]:
    """The pipeline modules that the statements of ``tree`` (part of ``module``) import."""
    package = module if is_package(module, files) else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # `from pkg import sub` imports the submodule `pkg.sub` when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            found = _resolve(target, files)
            if found is not None and found != module:
                out.add(found)
    return out


def parse(module: str, files: dict[str, Path]) -> ast.Module:
    """The syntax tree of a module of ``pipeline``."""
    path = files[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def import_graph(files: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the pipeline modules it imports (anywhere in its source)."""
    files = module_files() if files is None else files
    return {module: imports_in(parse(module, files), module, files) for module in files}


def package_of(module: str, files: dict[str, Path]) -> str:
    """The folder a module lives in (``pipeline.tracking.store`` -> ``pipeline.tracking``).

    A package's ``__init__`` belongs to the package itself; a top-level module such as
    ``pipeline.io`` is its own package, so that ``pipeline.io -> pipeline.features -> pipeline.io``
    is a package cycle.
    """
    if is_package(module, files):
        return module
    parent = module.rpartition(".")[0]
    return module if parent == PACKAGE else parent


def package_graph(graph: dict[str, set[str]], files: dict[str, Path]) -> dict[str, set[str]]:
    """Package -> the other packages its modules import."""
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = package_of(module, files)
        out.setdefault(source, set())
        for target in targets:
            dest = package_of(target, files)
            if dest != source:
                out[source].add(dest)
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node, as one cycle through it.

    Tarjan's algorithm; each component is reported as a closed path ``a -> b -> ... -> a``
    found inside it, so the message names real edges.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A closed path from the first node of a component back to itself (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph.get(node, set()) & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [*component, component[0]]  # unreachable for a strongly connected component


def ancestors(module: str) -> list[str]:
    """The packages whose ``__init__`` runs before ``module`` (``pipeline``, ``pipeline.x``)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(start: Iterable[str], graph: dict[str, set[str]], files: dict[str, Path]) -> set[str]:
    """Every module that importing ``start`` runs: its imports and their packages' ``__init__``."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(a for a in ancestors(module) if a in files)
        todo.extend(graph.get(module, ()))
    return seen
