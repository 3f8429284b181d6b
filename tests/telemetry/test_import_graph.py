"""No import circle inside ``wasmscope.telemetry``: every import counts (module level,
inside functions and under ``TYPE_CHECKING``), read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import wasmscope.telemetry

PACKAGE = "wasmscope.telemetry"
ROOT = Path(wasmscope.telemetry.__file__).parent


def _imports(path: Path) -> set[str]:
    """The ``wasmscope.telemetry`` modules that ``path`` imports, anywhere in it."""
    modules = {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            if name.startswith(PACKAGE + "."):
                head = name[len(PACKAGE) + 1 :].split(".")[0]
                if head in modules:
                    found.add(head)
    return found


def _graph() -> dict[str, set[str]]:
    return {p.stem: _imports(p) - {p.stem} for p in ROOT.glob("*.py") if p.stem != "__init__"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_checker_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_inside_telemetry() -> None:
    graph = _graph()
    assert {"direct", "otel", "pipeline", "_span_data"} <= set(graph)
    assert _cycle(graph) is None
