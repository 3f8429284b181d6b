"""The report as a whole: JSON with stable keys for every real module,
imports and exports against wasmtime, warnings for broken custom sections,
components, and the public namespace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import wasmscope
from tests.analysis.tools import TINY_MODULE, corpus_file, custom_section, wat
from tests.corpus import real_modules
from wasmscope import DecodeError, inspect
from wasmscope.analysis.report import SCHEMA

TOP_KEYS = [
    "schema", "path", "kind", "size", "offset", "label", "header", "sections", "functions", "imports",
    "capabilities", "exports", "memories", "tables", "globals", "tags", "data", "elements", "start",
    "producers", "toolchain", "features", "top_functions", "debug", "linking", "warnings", "component",
]


def test_json_keys_are_stable() -> None:
    doc = inspect(TINY_MODULE).to_json()
    assert list(doc) == TOP_KEYS
    assert doc["schema"] == SCHEMA
    assert doc["exports"] == [{"name": "f", "kind": "func", "index": 0, "type": "() -> ()", "target": None}]
    assert json.loads(json.dumps(doc)) == doc


@pytest.mark.realcorpus
def test_every_real_module_reports_and_round_trips_through_json(real_corpus: Path) -> None:
    for path in real_modules(real_corpus):
        report = inspect(path)
        doc = report.to_json()
        text = json.dumps(doc)
        assert json.loads(text) == doc, path.name
        assert list(doc) == TOP_KEYS
        assert doc["size"] == path.stat().st_size
        assert doc["toolchain"]["name"] != "unknown", path.name
        assert doc["warnings"] == [], (path.name, doc["warnings"])


WASMTIME_MODULES = [
    "tree-sitter-wasms-0.1.13--out_tree-sitter-json.wasm",
    "web-tree-sitter-0.27.2--web-tree-sitter.wasm",
    "sql.js-1.16.0--dist_sql-wasm.wasm",
    "jitl-quickjs-wasmfile-release-sync-0.32.0--dist_emscripten-module.wasm",
    "bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.command.wasm",
]


@pytest.mark.realcorpus
@pytest.mark.parametrize("name", WASMTIME_MODULES)
def test_imports_and_exports_match_wasmtime(name: str) -> None:
    wasmtime = pytest.importorskip("wasmtime", reason="wasmtime (dev extra) is not installed")
    path = corpus_file(name)
    config = wasmtime.Config()
    engine = wasmtime.Engine(config)
    try:
        module = wasmtime.Module(engine, path.read_bytes())
    except wasmtime.WasmtimeError as exc:
        pytest.skip(f"wasmtime cannot compile {name}: {str(exc)[:200]}")
    report = inspect(path)
    assert [(i.module, i.name) for i in report.imports] == [(i.module, i.name) for i in module.imports]
    assert [e.name for e in report.exports] == [e.name for e in module.exports]
    kinds = {"FuncType": "func", "MemoryType": "memory", "TableType": "table", "GlobalType": "global"}
    assert [i.kind for i in report.imports] == [kinds[type(i.type).__name__] for i in module.imports]
    grouped = sorted((r.module, r.name) for g in report.capabilities for r in g.imports)
    assert grouped == sorted((i.module, i.name or "") for i in module.imports)


def test_memory_table_global_and_data_details(tmp_path: Path) -> None:
    data = wat(
        """(module
          (import "env" "mem" (memory 2 10 shared))
          (import "env" "base" (global $base i32))
          (memory $m (export "mem64") i64 1)
          (table (export "t") 3 7 funcref)
          (global $sp (mut i32) (i32.const 1024))
          (global (export "answer") i32 (i32.const 42))
          (data (memory 0) (global.get $base) "hello")
          (data "passive!")
          (func $main (export "_start"))
          (start $main))""",
        tmp_path,
    )
    r = inspect(data)
    m0, m1 = r.memories
    assert (m0.imported_from, m0.min_pages, m0.max_pages, m0.shared, m0.min_bytes) == ("env.mem", 2, 10, True, 2 * 65536)
    assert (m1.imported_from, m1.is64, m1.exported_as) == (None, True, ["mem64"])
    (t,) = r.tables
    assert (t.element, t.min, t.max, t.exported_as) == ("funcref", 3, 7, ["t"])
    assert [(g.index, g.type, g.mutable, g.init) for g in r.globals] == [
        (0, "i32", False, None), (1, "i32", True, "i32.const 1024"), (2, "i32", False, "i32.const 42"),
    ]
    assert r.globals[0].imported_from == "env.base"
    assert r.globals[2].exported_as == ["answer"]
    assert (r.data.count, r.data.total_bytes, r.data.active, r.data.passive) == (2, 13, 1, 1)
    assert r.data.segments[0].offset == "global.get 0 (base)"  # named by the name section
    assert r.data.segments[1].mode == "passive"
    assert r.start == (0, "main")


def test_a_broken_custom_section_is_a_warning_not_a_failure() -> None:
    broken_name = custom_section("name", b"\x01\x05\x02\x00\x09ab")  # function names, a name longer than the section
    broken_producers = custom_section("producers", b"\x07")  # seven fields announced, none there
    report = inspect(TINY_MODULE + broken_name + broken_producers)
    assert len(report.warnings) == 2, report.warnings
    assert "'name'" in report.warnings[0] and "byte offset 0x" in report.warnings[0]
    assert "'producers'" in report.warnings[1]
    assert report.debug.name_section  # present, though unreadable
    assert report.producers == {}
    assert report.top_functions[0].name == "f"  # from its export, as the name section is unreadable
    assert report.exports[0].name == "f"


def test_a_malformed_known_section_raises_decode_error() -> None:
    with pytest.raises(DecodeError) as info:
        inspect(TINY_MODULE[:-3])
    assert info.value.offset > 0
    with pytest.raises(DecodeError):
        inspect(b"(module)")
    bad_type = TINY_MODULE.replace(b"\x60\x00\x00", b"\x61\x00\x00", 1)
    with pytest.raises(DecodeError):
        inspect(bad_type)


def test_debug_info(tmp_path: Path) -> None:
    data = wat('(module (func $hello) (func $world (local $x i32)))', tmp_path)
    data += custom_section(".debug_info", b"\x00" * 10) + custom_section("sourceMappingURL", b"\x0capp.wasm.map")
    d = inspect(data).debug
    assert d.present and d.name_section and d.function_names == 2 and d.local_names == 1
    assert d.dwarf_sections == [(".debug_info", 10)]
    assert d.source_map_url == "app.wasm.map"
    assert not inspect(TINY_MODULE).debug.present


def test_component_report(tmp_path: Path) -> None:
    data = wat(
        """(component
          (import "wasi:cli/environment@0.2.0" (instance))
          (core module $a (memory 1) (func $big (export "f") (result i32) i32.const 1 i32.const 2 i32.add))
          (core module $b (func $small))
          (component $inner (core module $c (func $x)))
          (core instance (instantiate $a))
        )""",
        tmp_path,
    )
    r = inspect(data)
    assert r.kind == "component" and r.header.version == 0x0D and r.header.layer == 1
    assert r.component is not None
    assert [m.label for m in r.component.core_modules] == ["core module 0 (a)", "core module 1 (b)", "core module c0/0 (c)"]
    assert r.component.components == 1
    assert r.component.interfaces_imported == ["wasi:cli/environment@0.2.0"]
    assert r.functions.defined == 3
    assert r.top_functions[0].name == "big" and r.top_functions[0].module == "core module 0 (a)"
    assert "component-model" in r.features.names
    assert r.size == len(data) and sum(s.size for s in r.sections) + 8 == len(data)
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["component"]["core_modules"][0]["kind"] == "module"


def test_public_namespace_is_lazy_and_complete() -> None:
    assert sorted(wasmscope.__all__) == sorted(
        ["Module", "Component", "decode", "inspect", "DecodeError", "WasmscopeError", "__version__", "run", "Runtime", "profile"]
    )
    for name in wasmscope.__all__:
        assert getattr(wasmscope, name) is not None
    assert isinstance(wasmscope.__version__, str)
    assert isinstance(wasmscope.decode(TINY_MODULE), wasmscope.Module)
    code = "import sys, wasmscope; print(sorted(m for m in sys.modules if m.startswith('wasmscope')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['wasmscope']"


def test_inspect_accepts_bytes_and_paths(tmp_path: Path) -> None:
    p = tmp_path / "tiny.wasm"
    p.write_bytes(TINY_MODULE)
    assert inspect(p).path == str(p)
    assert inspect(str(p)).to_json()["functions"] == inspect(bytearray(TINY_MODULE)).to_json()["functions"]
