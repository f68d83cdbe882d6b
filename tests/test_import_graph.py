"""The package's import graph: who may import whom, and no import cycle between modules.

Read from the source with ``ast`` (nothing is imported), counting imports inside functions
too: a deferred import is still a dependency. The rooms and their allowed dependencies are
docs/ARCHITECTURE.md's table; change both together.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zegbench"

# room -> the rooms it may import (besides itself). A room is a subpackage or top-level module.
MAY_IMPORT = {
    "errors": set(),
    "utils": {"errors"},
    "config_dirs": {"errors"},
    "store": {"errors", "utils"},
    "datasets": {"errors", "utils", "config_dirs"},
    "clip": {"errors", "utils", "datasets"},  # the in-house CLIP learns the worlds' captions
    "methods": {"errors", "utils", "config_dirs", "clip"},
    "reports": {"errors", "utils", "config_dirs", "store"},  # a report reads the store, never the harness or a method
    "cli_options": {"errors", "utils", "config_dirs"},
    # one run: resolve, train, evaluate, record; never a suite, an executor or a report
    "engine": {"errors", "utils", "config_dirs", "store", "datasets", "clip", "methods"},
    # world checks: they train and evaluate single runs through the engine
    "lab": {"errors", "utils", "config_dirs", "store", "datasets", "clip", "methods", "engine"},
    # suites: expansion, the session, executors and workers, and the reports they hand their runs to
    "harness": {"errors", "utils", "config_dirs", "cli_options", "store", "datasets", "clip", "methods", "reports",
                "engine"},
    # segment -> engine: an official checkpoint carries no config, so it is built as resolve builds a recipe's method
    "segment": {"errors", "utils", "store", "datasets", "clip", "methods", "engine"},
    "cli": {"errors", "utils", "config_dirs", "cli_options", "store", "datasets", "clip", "methods", "reports",
            "engine", "lab", "harness", "segment"},
    "__main__": {"cli"},
    # the package's API: zegbench.load (segment) and zegbench.run_suite (the suite session), imported on first use
    "__init__": {"segment", "harness"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The zegbench modules ``path`` imports (``from zegbench.x import y`` counts as zegbench.x.y when that is
    a module, else zegbench.x); at the top level only, or anywhere in the file."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if _is_module(submodule) else node.module)
    return {name for name in found if name == "zegbench" or name.startswith("zegbench.")}


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_room_imports_only_the_rooms_below_it():
    sources = _sources()
    assert set(map(_room, sources)) <= set(MAY_IMPORT), "a new room: give it a row in MAY_IMPORT and in the docs"
    wrong = []
    for module, path in sources.items():
        for target in _imports(path, top_level_only=False):
            here, there = _room(module), _room(target)
            if here != there and there not in MAY_IMPORT[here]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against docs/ARCHITECTURE.md's layers: " + "; ".join(wrong)


def test_the_reports_import_nothing_from_the_harness_or_the_methods():
    for module, path in _sources().items():
        if _room(module) == "reports":
            reached = {_room(target) for target in _imports(path, top_level_only=False)}
            assert not reached & {"harness", "methods"}, module


def test_the_engine_imports_no_suite_world_check_or_report():
    """One run never knows of the suite around it (issue 27's wall), nor of the world checks or the reports."""
    for module, path in _sources().items():
        if _room(module) == "engine":
            reached = {_room(target) for target in _imports(path, top_level_only=False)}
            assert not reached & {"harness", "lab", "reports", "cli_options", "segment", "cli"}, module


def test_no_import_cycle_between_modules():
    sources = _sources()
    graph = {module: {t for t in _imports(path, top_level_only=True) if t in sources and t != module}
             for module, path in sources.items()}
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("import os\n\ndef f():\n    from zegbench.engine import run\n    return run\n")
    assert _imports(source, top_level_only=False) == {"zegbench.engine.run"}
    assert _imports(source, top_level_only=True) == set()


def test_reading_a_store_and_its_reports_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys, zegbench.store, zegbench.reports.build, zegbench.reports.scorecard; "
            "print(sorted(m for m in ('torch', 'open_clip', 'torchvision') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
