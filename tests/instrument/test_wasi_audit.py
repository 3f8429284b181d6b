"""The audit pass on its own: what it adds, what it leaves, and that wasmtime takes
its output (real guests: WAT and a C program; run under wasmtime directly, with the
tables written by hand as the host would)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.instrument.support import compile_c, wat
from wasmscope.binary.module import Module
from wasmscope.binary.types import I32, I64, ExternKind
from wasmscope.errors import UsageError
from wasmscope.instrument import audit_layout as L
from wasmscope.instrument import instrument
from wasmscope.instrument.wasi_audit import audit
from wasmscope.instrument.wasi_preview1 import PREVIEW1

wasmtime = pytest.importorskip("wasmtime")

GUEST = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "env" "other" (func $other))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\20\00\00\00\06\00\00\00")
  (data (i32.const 32) "hello\n")
  (data (i32.const 64) "../a\00b")
  (func $helper (export "helper") (result i32) (i32.const 7))
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 6) (i32.const 0)
      (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 100)))
    (call $other)
    (drop (call $helper))
    (drop (call $random_get (i32.const 200) (i32.const 16)))
  )
  (func (export "tail") (result i32) (return_call $random_get (i32.const 200) (i32.const 8))))
"""


def _instantiate(wasm: bytes, record: bool = True) -> tuple[object, object, object]:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm)
    store = wasmtime.Store(engine)
    cfg = wasmtime.WasiConfig()
    store.set_wasi(cfg)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_func("env", "other", wasmtime.FuncType([], []), lambda: None)
    instance = linker.instantiate(store, module)
    return store, instance, module


def _header(
    store: object, instance: object, layout: L.AuditLayout, *, record: bool, mask: int = 15
) -> memoryview:
    mem = instance.exports(store)[L.AUDIT_EXPORT]  # type: ignore[attr-defined]
    buf = mem.data_ptr(store)
    size = mem.data_len(store)
    import ctypes

    view = memoryview((ctypes.c_ubyte * size).from_address(ctypes.addressof(buf.contents))).cast(
        "B"
    )
    struct.pack_into("<IIIII", view, L.MASK, mask, 1 if record else 0, 76, 1, 256)
    struct.pack_into("<QQQq", view, L.LIMITS, *([(1 << 64) - 1] * 3), (1 << 63) - 1)
    return view


def test_preview1_table_matches_the_core_abi() -> None:
    assert len(PREVIEW1) == 46
    for f in PREVIEW1.values():
        assert len(f.params) == len(f.types)
        if f.path is not None:
            assert f.types[f.path] == I32 and f.types[f.path + 1] == I32
            assert f.params[f.path + 1] == f.params[f.path] + "_len"
        if f.iovec is not None:
            assert f.types[f.iovec] == I32 and f.params[f.iovec + 1].endswith("_len")
        if f.out is not None:
            assert f.types[f.out] == I32 and f.out == len(f.params) - 1
            assert f.out_width in (0, 4, 8)
    assert PREVIEW1["path_open"].types[5:7] == (I64, I64)
    assert PREVIEW1["proc_exit"].results == ()
    assert PREVIEW1["fd_write"].out_width == 4 and PREVIEW1["fd_seek"].out_width == 8


def test_every_index_stays_and_the_output_validates() -> None:
    data = wat(GUEST)
    out = audit(data)
    assert out.layout is not None
    before, after = Module(data), Module(out.wasm)
    assert [(e.name, e.kind, e.index) for e in before.exports] == [
        (e.name, e.kind, e.index) for e in after.exports if not e.name.startswith("wasmscope:")
    ]
    assert after.imports == before.imports
    n_before = before.num_imported_functions + len(before.functions)
    assert len(after.functions) == len(before.functions) + 3  # fd_write, path_open, random_get
    assert sorted(out.layout.thunks) == [n_before, n_before + 1, n_before + 2]
    assert [f.name for f in out.layout.funcs] == ["fd_write", "path_open", "random_get"]
    assert out.layout.memory_index == 1 and out.layout.timing is False  # no clock_time_get import
    wasmtime.Module(wasmtime.Engine(), out.wasm)  # validates


def test_a_module_without_wasi_imports_comes_back_unchanged() -> None:
    data = wat('(module (import "env" "f" (func)) (func (export "_start") (call 0)))')
    out = audit(data)
    assert out.layout is None and out.wasm == data
    # imported but never called directly: nothing to reroute
    data = wat(
        '(module (import "wasi_snapshot_preview1" "sched_yield" (func (result i32))) (export "y" (func 0)))'
    )
    assert audit(data).wasm == data


def test_refusals() -> None:
    data = wat(GUEST)
    with pytest.raises(UsageError):
        audit(audit(data).wasm)
    with pytest.raises(UsageError):
        audit(data, path_capacity=12)
    with pytest.raises(UsageError):
        audit(b"\x00asm\x0d\x00\x01\x00")


def test_count_only_counts_and_records_nothing() -> None:
    out = audit(wat(GUEST))
    assert out.layout is not None
    store, instance, _ = _instantiate(out.wasm)
    view = _header(store, instance, out.layout, record=False)
    instance.exports(store)["_start"](store)  # type: ignore[attr-defined]
    counters = struct.unpack_from("<3Q", view, out.layout.counters_offset)
    assert counters == (1, 1, 1)
    head, _tail, dropped = struct.unpack_from("<QQQ", view, 0)
    assert head == 0 and dropped == 0
    assert struct.unpack_from("<Q", view, L.CALLS)[0] == 3
    assert struct.unpack_from("<Q", view, L.RANDOM)[0] == 16
    assert struct.unpack_from("<Q", view, L.OUTPUT)[0] == 6


def test_records_the_calls_with_args_and_paths() -> None:
    out = audit(wat(GUEST))
    lay = out.layout
    assert lay is not None
    store, instance, _ = _instantiate(out.wasm)
    view = _header(store, instance, lay, record=True)
    instance.exports(store)["_start"](store)  # type: ignore[attr-defined]
    assert struct.unpack_from("<Q", view, 0)[0] == 3
    rec = lay.ring_offset + lay.record_size  # the second: path_open
    k, flags, errno, path_len = struct.unpack_from("<IIII", view, rec)
    assert lay.funcs[k].name == "path_open"
    assert flags & L.FLAG_DONE and flags & L.FLAG_ERRNO and errno != 0  # no preopen: EBADF
    copied = struct.unpack_from("<I", view, rec + L.R_COPIED)[0]
    assert path_len == copied == 6
    assert bytes(view[rec + L.R_PATH : rec + L.R_PATH + copied]) == b"../a\x00b"
    args = struct.unpack_from("<9Q", view, rec + L.R_ARGS)
    assert args == (3, 0, 64, 6, 0, 0, 0, 0, 100)


def test_return_call_of_an_import_goes_through_its_thunk() -> None:
    out = audit(wat(GUEST))
    lay = out.layout
    assert lay is not None
    store, instance, _ = _instantiate(out.wasm)
    view = _header(store, instance, lay, record=False)
    assert instance.exports(store)["tail"](store) == 0  # type: ignore[attr-defined]
    assert struct.unpack_from("<3Q", view, lay.counters_offset)[2] == 1


def test_composes_after_the_counters_pass() -> None:
    inst = instrument(wat(GUEST))
    out = audit(inst.wasm)
    assert out.layout is not None
    after = Module(out.wasm)
    names = [e.name for e in after.exports]
    assert "wasmscope:books" in names and L.AUDIT_EXPORT in names
    # the original functions' bodies are the counters pass's: only its thunks changed
    base = Module(inst.wasm)
    n_def = len(Module(wat(GUEST)).functions)
    for i in range(n_def):
        assert after.code[i].raw() == base.code[i].raw()
    wasmtime.Module(wasmtime.Engine(), out.wasm)


def test_a_type_other_than_the_specs_is_audited_generically() -> None:
    data = wat(
        '(module (import "wasi_unstable" "fd_write" (func $w (param i64) (result i64)))'
        ' (memory (export "memory") 1) (func (export "f") (result i64) (call $w (i64.const 5))))'
    )
    out = audit(data)
    assert out.layout is not None
    f = out.layout.funcs[0]
    assert f.decoded is False and f.params == ("arg0",) and f.module == "wasi_unstable"
    wasmtime.Module(wasmtime.Engine(), out.wasm)


def test_a_c_program_validates_and_keeps_its_imports(tmp_path: Path) -> None:
    src = '#include <stdio.h>\n#include <stdlib.h>\nint main(void){FILE*f=fopen("/d/x","r");' \
        'printf("%s %d\\n", getenv("A") ? getenv("A") : "-", f != 0);return 0;}\n'  # fmt: skip
    path = compile_c(src, tmp_path / "p.wasm", "-O2")
    data = path.read_bytes()
    out = audit(data)
    assert out.layout is not None
    names = {f.name for f in out.layout.funcs}
    assert {"fd_write", "path_open", "environ_get", "environ_sizes_get"} <= names
    assert Module(out.wasm).imported(ExternKind.FUNC) == Module(data).imported(ExternKind.FUNC)
    wasmtime.Module(wasmtime.Engine(), out.wasm)
    # wasm-ld's __stack_pointer, re-exported for the host's look after a bounds trap
    assert out.layout.stack_pointer
    export = next(e for e in Module(out.wasm).exports if e.name == L.STACK_POINTER_EXPORT)
    assert export.kind == ExternKind.GLOBAL
    stripped = compile_c(src, tmp_path / "s.wasm", "-O2", "-s")  # no name section: the first global
    assert audit(stripped.read_bytes()).layout.stack_pointer  # type: ignore[union-attr]


def test_no_stack_pointer_without_a_mutable_i32_global() -> None:
    out = audit(wat(GUEST))
    assert out.layout is not None and not out.layout.stack_pointer
    assert all(e.name != L.STACK_POINTER_EXPORT for e in Module(out.wasm).exports)
