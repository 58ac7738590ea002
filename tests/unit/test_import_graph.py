"""No import cycles in ``pipeline/``: neither between modules nor between packages (folders).

The graph is built statically by :mod:`tests.support.import_graph`: module-level imports,
imports inside functions, and ``if TYPE_CHECKING:`` imports all count (a type-only cycle is
still a cycle between two concepts). A top-level module such as ``pipeline/io.py`` is its own
package.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.import_graph import (
    find_cycles,
    import_graph,
    module_files,
    package_graph,
)


def _message(kind: str, cycles: list[list[str]]) -> str:
    return f"{len(cycles)} {kind} cycle(s):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_cycle_between_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, _message("module", cycles)


def test_no_cycle_between_packages():
    files = module_files()
    cycles = find_cycles(package_graph(import_graph(files), files))
    assert not cycles, _message("package", cycles)


def _tree(root: Path, sources: dict[str, str]) -> dict[str, Path]:
    for name, text in sources.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return module_files(root)


def test_the_graph_sees_function_level_type_only_and_submodule_imports(tmp_path):
    files = _tree(
        tmp_path,
        {
            "pipeline/__init__.py": "",
            "pipeline/io.py": "def f():\n    from pipeline.sub import b\n",
            "pipeline/sub/__init__.py": "",
            # `from pipeline import io` names the module pipeline.io, not pipeline/__init__.
            "pipeline/sub/a.py": "from pipeline import io\nimport os\n",
            "pipeline/sub/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pipeline.sub.a import thing\n"
            ),
            "pipeline/sub/c.py": "from . import a\nfrom .b import x\n",
        },
    )
    graph = import_graph(files)
    assert graph["pipeline.io"] == {"pipeline.sub.b"}
    assert graph["pipeline.sub.a"] == {"pipeline.io"}
    assert graph["pipeline.sub.b"] == {"pipeline.sub.a"}
    assert graph["pipeline.sub.c"] == {"pipeline.sub.a", "pipeline.sub.b"}
    cycles = find_cycles(graph)
    assert cycles == [["pipeline.io", "pipeline.sub.b", "pipeline.sub.a", "pipeline.io"]]
    assert find_cycles(package_graph(graph, files)) == [
        ["pipeline.io", "pipeline.sub", "pipeline.io"]
    ]
