"""No import circles in ``wasmscope.gateway``: every ``import`` of a gateway module by
another counts, wherever it is written (module level, under ``TYPE_CHECKING`` or in a
function), since each one is a dependency a reader and mypy have to follow."""

from __future__ import annotations

import ast
from pathlib import Path

import wasmscope.gateway

PACKAGE = "wasmscope.gateway"
FOLDER = Path(wasmscope.gateway.__file__).parent


def _imports(module: str, path: Path) -> set[str]:
    """The gateway modules that ``module`` imports (a package's own name excluded)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                base = ".".join([*module.split(".")[: -node.level], *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(
            n
            for n in names
            if n.startswith(PACKAGE + ".") and (FOLDER / f"{n.rsplit('.', 1)[1]}.py").is_file()
        )
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    return {
        f"{PACKAGE}.{p.stem}": _imports(f"{PACKAGE}.{p.stem}", p)
        for p in sorted(FOLDER.glob("*.py"))
        if p.stem != "__init__"
    }


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every circle, once each (as the path from its smallest name back to it)."""
    out: list[list[str]] = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                out.append([*path, start])
            elif nxt > start and nxt not in path:
                walk(start, nxt, [*path, nxt])

    for start in sorted(edges):
        walk(start, start, [start])
    return out


def test_the_checker_sees_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_gateway_modules_import_each_other_without_a_circle() -> None:
    edges = graph()
    assert f"{PACKAGE}.manifest" in edges[f"{PACKAGE}.app"]  # the graph is read, not empty
    assert circles(edges) == []
