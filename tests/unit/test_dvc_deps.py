"""DVC reruns what changed: every stage depends on all the code its ``loyalty`` command runs.

For each stage of ``dvc.yaml`` (a ``foreach`` stage: its ``do:`` template), the command's
function in ``pipeline/cli.py`` gives the start: the imports in its body (and in the cli.py
helpers it calls), cli.py's module-level imports and the functions that run for every command
(the typer callback, ``main``, ``run``), and ``pipeline/cli.py`` itself. The closure of
pipeline-internal imports from there (with each package's ``__init__.py``, see
:mod:`tests.support.import_graph`) must be covered by the stage's ``deps``, as must the package
data (pyproject's ``package-data``) of any package in the closure, e.g. the report's templates.
A dep covers a file when it is that file or a folder containing it; ``${...}`` deps are data.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import yaml

from tests.support.import_graph import (
    REPO_ROOT,
    closure,
    import_graph,
    imports_in,
    module_files,
)

CLI = "pipeline.cli"
ALWAYS_RUN = ("main", "run")  # besides the @app.callback() functions
COMMAND = re.compile(r"\bloyalty\s+([a-z][a-z0-9_-]*)")


def _decorated_by(node: ast.FunctionDef, attribute: str) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == attribute:
            return True
    return False


def _cli_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _called_helpers(node: ast.FunctionDef, functions: dict[str, ast.FunctionDef]) -> set[str]:
    """The cli.py helpers that ``node`` calls, transitively (such as ``_params``).

    Only calls count, and never of a command: ``report`` has a ``clean`` option (a name, not a
    call of the ``clean`` command).
    """
    helpers = {n: f for n, f in functions.items() if not _decorated_by(f, "command")}
    seen: set[str] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        for call in ast.walk(current):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            if call.func.id in helpers and call.func.id not in seen:
                seen.add(call.func.id)
                todo.append(helpers[call.func.id])
    return seen


def command_modules(command: str, files: dict[str, Path]) -> set[str]:
    """The pipeline modules that ``loyalty <command>`` imports directly (cli.py included)."""
    tree = ast.parse(files[CLI].read_text(encoding="utf-8"))
    functions = _cli_functions(tree)
    name = command.replace("-", "_")
    assert name in functions and _decorated_by(functions[name], "command"), (
        f"`loyalty {command}`: no @app.command() function {name} in pipeline/cli.py"
    )
    top_level = ast.Module(
        body=[n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)],
        type_ignores=[],
    )
    always = {f for f, node in functions.items() if _decorated_by(node, "callback")}
    always |= {f for f in ALWAYS_RUN if f in functions}
    running = {name} | _called_helpers(functions[name], functions)
    for function in sorted(always):
        running |= {function} | _called_helpers(functions[function], functions)
    out = {CLI} | imports_in(top_level, CLI, files)
    for function in running:
        out |= imports_in(functions[function], CLI, files)
    return out


def _package_data(files: dict[str, Path]) -> dict[str, list[str]]:
    """Package -> its data files (repo-relative), from pyproject's ``package-data`` globs."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"].get("package-data", {})
    packages = {path.parent: module for module, path in files.items() if path.name == "__init__.py"}
    out: dict[str, list[str]] = {}
    for package, patterns in globs.items():
        for pattern in patterns:
            for data in sorted((REPO_ROOT / package.replace(".", "/")).glob(pattern)):
                owner = next(p for p in data.parents if p in packages)  # deepest package
                out.setdefault(packages[owner], []).append(data.relative_to(REPO_ROOT).as_posix())
    return out


def _stages() -> dict[str, dict]:
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    return {
        name: stage["do"] if "foreach" in stage else stage for name, stage in dvc["stages"].items()
    }


def _dep_paths(stage: dict) -> list[str]:
    out = []
    for dep in stage.get("deps", []):
        path = next(iter(dep)) if isinstance(dep, dict) else str(dep)
        if "${" not in path:
            out.append(path.removeprefix("./").rstrip("/"))
    return out


def _covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep + "/") for dep in deps)


def required_files(command: str, files: dict[str, Path], graph: dict[str, set[str]]) -> set[str]:
    """Repo-relative files that ``loyalty <command>`` runs or reads as package data."""
    # cli.py's own edges are every command's imports: only this command's start is followed.
    modules = closure(command_modules(command, files), {**graph, CLI: set()}, files)
    data = _package_data(files)
    out = {files[m].relative_to(REPO_ROOT).as_posix() for m in modules}
    for package, data_files in data.items():
        if any(m == package or m.startswith(package + ".") for m in modules):
            out.update(data_files)
    return out


def test_every_stage_depends_on_the_code_its_command_runs():
    files = module_files()
    graph = import_graph(files)
    missing: dict[str, list[str]] = {}
    commands = 0
    for name, stage in _stages().items():
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
        found = COMMAND.search(cmd)
        if found is None:
            continue  # not a loyalty command: nothing to derive
        commands += 1
        deps = _dep_paths(stage)
        gaps = sorted(
            f for f in required_files(found.group(1), files, graph) if not _covered(f, deps)
        )
        if gaps:
            missing[name] = gaps
    assert commands, "no stage of dvc.yaml runs a `loyalty` command"
    assert not missing, "stages whose deps miss code they run:\n" + "\n".join(
        f"  {stage}: " + ", ".join(gaps) for stage, gaps in missing.items()
    )


def test_required_files_follow_function_imports_packages_and_templates():
    files = module_files()
    required = required_files("report", files, import_graph(files))
    assert "pipeline/cli.py" in required and "pipeline/__init__.py" in required
    assert "pipeline/report/__init__.py" in required
    assert any(f.startswith("pipeline/report/templates/") for f in required)
    assert not any(
        f.startswith("pipeline/report/")
        for f in required_files("generate", files, import_graph(files))
    )


def test_no_stage_depends_on_code_its_command_never_runs():
    """The other half: a stale code dep reruns a stage for nothing (and hides what it uses)."""
    files = module_files()
    graph = import_graph(files)
    extra: dict[str, list[str]] = {}
    for name, stage in _stages().items():
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
        found = COMMAND.search(cmd)
        if found is None:
            continue
        required = required_files(found.group(1), files, graph)
        code = [d for d in _dep_paths(stage) if d == "pipeline" or d.startswith("pipeline/")]
        unused = [d for d in code if not any(_covered(f, [d]) for f in required)]
        if unused:
            extra[name] = unused
    assert not extra, "stages whose deps name code they never run:\n" + "\n".join(
        f"  {stage}: " + ", ".join(deps) for stage, deps in extra.items()
    )
