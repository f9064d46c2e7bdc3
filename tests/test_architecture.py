"""The package's shape: imports point down the pipeline, there is no cycle, and the public API
is exactly what ``__all__`` says.

Every import is counted: module level, inside functions, and under ``TYPE_CHECKING``, because
a function-level import is still a dependency (it is how the old cycles hid).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import poelis_scan

PACKAGE = Path(poelis_scan.__file__).resolve().parent
NAME = "poelis_scan"


def _module_name(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> Iterator[str]:
    """Every package module ``module`` imports, wherever the import statement stands."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            # ``from . import text`` imports a module; ``from .x import name`` imports x.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        for target in targets:
            if target == NAME or target.startswith(NAME + "."):
                yield target


GRAPH = {m: set(_imports(m)) - {m} for m in MODULES}


def test_every_import_resolves_to_a_module_of_the_package() -> None:
    missing = {(m, t) for m, targets in GRAPH.items() for t in targets if t not in MODULES}
    assert missing == set()


def test_no_module_imports_the_package_root() -> None:
    """The root's lazy names reach every layer: importing it from inside would close a cycle."""
    importers = {m for m, targets in GRAPH.items() if NAME in targets}
    assert importers == set()


def _find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    assert _find_cycle() is None


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a graph with a cycle is reported as one."""
    GRAPH["poelis_scan.stats"].add("poelis_scan.run")
    try:
        cycle = _find_cycle()
    finally:
        GRAPH["poelis_scan.stats"].discard("poelis_scan.run")
    assert cycle is not None and cycle[0] == cycle[-1]


# Lower layers never import higher ones. Within a layer, modules may import each other (the
# cycle test keeps that honest).
LAYERS: list[set[str]] = [
    {"version", "errors", "settings", "stats", "paths", "config", "httpget", "units"},
    {"detect"},
    {"scan"},
    {"findings"},
    {"sources", "triage", "verify", "state", "shard"},
    {"report", "console", "pipeline"},
    {"org"},
    {"run"},
    {"cli", "entry", "__main__", ""},
]


def _layer(module: str) -> int:
    room = module.removeprefix(NAME).lstrip(".").split(".")[0]
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_pipeline(module: str) -> None:
    if module == NAME:  # the root's lazy public names may name any layer
        return
    upward = {t for t in GRAPH[module] if _layer(t) > _layer(module)}
    assert upward == set(), f"{module} imports a higher layer"


def test_detect_and_scan_know_nothing_of_sources_triage_or_output() -> None:
    above = ("sources", "triage", "report", "cli", "run", "console", "findings", "verify")
    for module, targets in GRAPH.items():
        room = module.removeprefix(NAME + ".").split(".")[0]
        if room in ("detect", "scan"):
            bad = {t for t in targets if t.removeprefix(NAME + ".").split(".")[0] in above}
            assert bad == set(), module
        if room == "detect":
            assert not any(".scan" in t for t in targets), module


def test_sources_never_import_report_cli_or_run() -> None:
    for module, targets in GRAPH.items():
        if module.startswith(f"{NAME}.sources"):
            rooms = {t.removeprefix(NAME + ".").split(".")[0] for t in targets}
            assert rooms.isdisjoint({"report", "cli", "run", "console", "triage"}), module


PUBLIC = [
    "Confidence", "FileOrigin", "Finding", "GitError", "GitOrigin", "ImageOrigin", "Location",
    "Match", "ScanError", "ScanResult", "Stats", "__version__", "scan_bytes", "scan_git",
    "scan_image", "scan_paths",
]


def test_the_public_api_is_pinned() -> None:
    assert sorted(poelis_scan.__all__) == sorted(PUBLIC)
    assert dir(poelis_scan) == sorted(PUBLIC)
    for name in PUBLIC:  # every name resolves (lazily) to a real object
        assert getattr(poelis_scan, name) is not None, name
    with pytest.raises(AttributeError):
        poelis_scan.scanner  # noqa: B018 (the old module names are gone)
