"""No import circle between wasmscope's modules, read from the source with ``ast``.
Imports at module level and inside functions count; those under ``if TYPE_CHECKING:``
do not (they never run), nor does a module importing one of its own parent packages
(the parent is initialised first either way)."""

from __future__ import annotations

import ast
from pathlib import Path

import wasmscope

ROOT = Path(wasmscope.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest known module that ``name`` (a dotted import target) is in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, here: str, known: set[str]) -> set[str]:
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{a.name}" for a in node.names] or [base]
        for target in targets:
            module = _resolve(target, known)
            if module is not None and module != here and not here.startswith(module + "."):
                found.add(module)
    return found


def graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, name, known) for name, path in paths.items()}


def cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(g):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_checker_finds_a_circle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    g = graph()
    assert "wasmscope.runtime.runner" in g and "wasmscope.telemetry.direct" in g
    assert "wasmscope.errors" in g["wasmscope.runtime.runner"]
    # a lazy import inside a function counts; one under TYPE_CHECKING does not
    assert "wasmscope.collect.store.writer" in g["wasmscope.collect.store.store"]
    assert "wasmscope.collect.store.store" not in g["wasmscope.collect.store.writer"]


def test_no_import_circle_in_wasmscope() -> None:
    assert cycle(graph()) is None
