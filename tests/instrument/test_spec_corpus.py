"""The spec suite's valid modules: every one wasmtime accepts is still accepted
once instrumented, and the ones that can be run alone compute the same."""

from __future__ import annotations

import csv
import math
import struct
from pathlib import Path
from typing import Any

import pytest

from wasmscope.binary.module import Module
from wasmscope.binary.types import EXTERNREF, F32, F64, FUNCREF, I32, I64, ExternKind, RefType
from wasmscope.instrument import instrument

wasmtime = pytest.importorskip("wasmtime")

# Modules wasmtime accepts that the instrumented version may not: none so far.
# (A module that already exported "wasmscope:books" would be refused with a
# UsageError and listed here with that reason.)
EXPECTED_FAILURES: dict[str, str] = {}


def _accepted(spec_corpus: Path) -> list[Path]:
    with (spec_corpus / "SANITY.tsv").open(newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    head, rows = rows[0], rows[1:]
    col = head.index("wasmtime_default")
    return [spec_corpus / r[0] for r in rows if r[1] == "valid" and r[col] == "ok"]


def test_every_accepted_valid_module_is_still_accepted(spec_corpus: Path) -> None:
    engine = wasmtime.Engine()
    listed = _accepted(spec_corpus)
    checked = 0
    failures: dict[str, str] = {}
    for path in sorted((spec_corpus / "valid").glob("*.wasm")):
        data = path.read_bytes()
        try:
            wasmtime.Module.validate(engine, data)
        except wasmtime.WasmtimeError:
            assert path not in listed, f"{path.name}: SANITY.tsv says wasmtime accepts it"
            continue
        try:
            wasmtime.Module.validate(engine, instrument(data).wasm)
            checked += 1
        except Exception as exc:
            failures[path.name] = f"{type(exc).__name__}: {exc}"
    assert failures.keys() == EXPECTED_FAILURES.keys(), failures
    assert checked == len(listed) - len(EXPECTED_FAILURES)
    assert checked >= 2500, checked  # 2502 with the corpus of Wasm 3.0


# -- running them -------------------------------------------------------------------
_SPECTEST_FUNCS = {
    "print": [],
    "print_i32": ["i32"],
    "print_i64": ["i64"],
    "print_f32": ["f32"],
    "print_f64": ["f64"],
    "print_i32_f32": ["i32", "f32"],
    "print_f64_f64": ["f64", "f64"],
}
_ZERO = {"i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0, "funcref": None, "externref": None}


def _spectest(store: Any, linker: Any) -> None:
    vt = wasmtime.ValType
    for name, params in _SPECTEST_FUNCS.items():
        ty = wasmtime.FuncType([getattr(vt, p)() for p in params], [])
        linker.define(store, "spectest", name, wasmtime.Func(store, ty, lambda *a: None))
    for name, t, v in (("global_i32", vt.i32(), 666), ("global_i64", vt.i64(), 666), ("global_f32", vt.f32(), 666.6), ("global_f64", vt.f64(), 666.6)):
        linker.define(store, "spectest", name, wasmtime.Global(store, wasmtime.GlobalType(t, False), v))
    linker.define(store, "spectest", "table", wasmtime.Table(store, wasmtime.TableType(vt.funcref(), wasmtime.Limits(10, 20)), None))
    linker.define(store, "spectest", "memory", wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 2))))


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return ("f", struct.pack("<d", v)) if math.isnan(v) else v
    if isinstance(v, list):
        return [_value(x) for x in v]
    if v is None or isinstance(v, int):
        return v
    return type(v).__name__


_VALTYPES = {I32: "i32", I64: "i64", F32: "f32", F64: "f64", FUNCREF: "funcref", EXTERNREF: "externref"}


def _run_all(data: bytes, fuel: int) -> list[tuple[str, Any]] | None:
    """Call every exported function with zero arguments, in order; None when
    the module cannot be instantiated alone. Types come from our decoder:
    wasmtime-py aborts the process on GC reference types in signatures."""
    m = Module(data)
    if any(i.module != "spectest" for i in m.imports):
        return None
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    linker = wasmtime.Linker(engine)
    _spectest(store, linker)
    module = wasmtime.Module(engine, data)
    out: list[tuple[str, Any]] = []
    try:
        instance = linker.instantiate(store, module)
    except wasmtime.Trap as exc:
        return [("<start>", exc.trap_code)]
    except wasmtime.WasmtimeError:
        return None
    exports = instance.exports(store)
    for exp in m.exports:
        if exp.kind != ExternKind.FUNC:
            continue
        ft = m.function_type(exp.index)
        if any(isinstance(t, RefType) or t not in _VALTYPES for t in (*ft.params, *ft.results)):
            out.append((exp.name, "skipped"))
            continue
        store.set_fuel(fuel)
        try:
            result = exports[exp.name](store, *[_ZERO[_VALTYPES[t]] for t in ft.params if isinstance(t, int)])
            out.append((exp.name, _value(result)))
        except wasmtime.Trap as exc:
            code = exc.trap_code
            out.append((exp.name, "fuel" if code == wasmtime.TrapCode.OUT_OF_FUEL else code))
        except wasmtime.WasmtimeError as exc:
            out.append((exp.name, type(exc).__name__))
    return out


def test_runnable_modules_compute_the_same(spec_corpus: Path) -> None:
    """Each module that needs no imports but the spectest ones: every exported
    function called with zeros gives the same results or the same trap. A call
    that runs out of fuel in either (the instrumented one burns more) is not
    compared."""
    compared = modules = skipped = 0
    for path in _accepted(spec_corpus):
        data = path.read_bytes()
        if not Module(data).exports:
            continue
        a = _run_all(data, 2_000_000)
        if a is None:
            continue
        b = _run_all(instrument(data).wasm, 2_000_000)
        assert b is not None
        assert [n for n, _ in a] == [n for n, _ in b], path.name
        modules += 1
        for (name, x), (_, y) in zip(a, b, strict=True):
            if x in ("fuel", "skipped") or y in ("fuel", "skipped"):
                skipped += 1
                continue
            assert x == y, f"{path.name} {name}: original {x!r}, instrumented {y!r}"
            compared += 1
    print(f"{modules} modules run, {compared} calls compared, {skipped} not (fuel, GC or v128 types)")
    assert modules >= 1000, modules
    assert compared >= 4500, compared
