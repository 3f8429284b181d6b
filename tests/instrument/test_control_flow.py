"""Every way out of a function leaves the books right, and the instrumented
module computes exactly what the original does: return with values, branches
to the outermost label, multi-value results, tail calls, exceptions caught by
``try_table`` at a block or a loop, traps, and host imports."""

from __future__ import annotations

import pytest

from tests.instrument.support import Twins, export_index, same, twins, wat
from wasmscope.binary import opcodes as op
from wasmscope.binary.module import Module
from wasmscope.instrument import BOOKS_EXPORT

wasmtime = pytest.importorskip("wasmtime")

# Function 0 is the import host.probe; the defined ones follow in order.
CONTROL = r"""
(module
  (import "host" "probe" (func $probe (param i32)))
  (memory 1)
  (global $g (mut i32) (i32.const 0))

  ;; return with values, from nested blocks, with extra operands under the results
  (func $ret (export "ret") (param i32) (result i32)
    (block
      (loop
        (if (i32.eqz (local.get 0)) (then (return (i32.const 42))))
        (if (i32.eq (local.get 0) (i32.const 1))
          (then (i32.const 7) (i32.const 8) (return)))
        (br_if 1 (i32.gt_u (local.get 0) (i32.const 100)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br 0)))
    (i32.add (local.get 0) (i32.const 1000)))

  ;; br / br_if / br_table to the function's own label
  (func $br (export "br") (param i32) (result i32)
    (block $a
      (block $b
        (drop (br_if 2 (i32.const 11) (i32.eq (local.get 0) (i32.const 1))))
        (if (i32.eq (local.get 0) (i32.const 2)) (then (br 3 (i32.const 22))))
        (br_if $a (i32.eq (local.get 0) (i32.const 3)))))
    (block $x (result i32)
      (br_table $x 1 1 (i32.const 33) (i32.sub (local.get 0) (i32.const 3))))
    (i32.const 1000)
    (i32.add))

  ;; several results: return, br to the outer label, fall through
  (func $mv (export "mv") (param i32) (result i32 i64 f64)
    (if (i32.eq (local.get 0) (i32.const 1))
      (then (return (i32.const 1) (i64.const 2) (f64.const 3))))
    (if (i32.eq (local.get 0) (i32.const 2))
      (then (br 1 (i32.const 4) (i64.const 5) (f64.const 6))))
    (i32.const 7) (i64.const 8) (f64.const 9.5))

  ;; params and several results (the wrapper block needs a type index)
  (func $swap (export "swap") (param i64 i64) (result i64 i64)
    (local.get 1) (local.get 0))

  ;; memory 0 is still the module's own memory
  (func $mem (export "mem") (param i32) (result i32)
    (i32.store (i32.const 16) (local.get 0))
    (drop (memory.grow (i32.const 1)))
    (i32.add (i32.load (i32.const 16)) (memory.size)))

  ;; an import called 7 times from a loop, and a global
  (func $seven (export "seven") (result i32)
    (local $i i32)
    (loop $l
      (call $probe (local.get $i))
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 7))))
    (global.get $g))

  ;; a trap three frames deep
  (func $t1 (export "trap_chain") (param i32) (result i32) (call $t2 (local.get 0)))
  (func $t2 (param i32) (result i32) (i32.add (call $t3 (local.get 0)) (i32.const 1)))
  (func $t3 (param i32) (result i32) (i32.div_u (i32.const 100) (local.get 0)))
  (func $oob (export "oob") (param i32) (result i32) (i32.load (local.get 0)))
)
"""
PROBE, RET, BR, MV, SWAP, MEM, SEVEN, T1, T2, T3, OOB = range(11)


@pytest.fixture
def control() -> Twins:
    return twins(wat(CONTROL), probe=True)


def test_return_with_values(control: Twins) -> None:
    orig, inst, _ = control
    for arg in (0, 1, 5, 200):
        same(orig, inst, "ret", arg)
        assert inst.depth() == 0
    assert [same(orig, inst, "ret", a).results for a in (0, 1, 5, 200)] == [42, 8, 8, 1200]
    assert inst.counter(RET) == 8


def test_branches_to_the_outer_label(control: Twins) -> None:
    orig, inst, _ = control
    got = [same(orig, inst, "br", a).results for a in range(7)]
    assert got == [33, 11, 22, 1033, 33, 33, 33]
    assert inst.depth() == 0
    assert inst.counter(BR) == 7


def test_multi_value_results(control: Twins) -> None:
    orig, inst, result = control
    got = [same(orig, inst, "mv", a).results for a in (1, 2, 3)]
    assert got == [[1, 2, 3.0], [4, 5, 6.0], [7, 8, 9.5]]
    assert same(orig, inst, "swap", 1, 2).results == [2, 1]
    assert inst.depth() == 0
    # existing type indices untouched: the new [] -> [i32 i64 f64] and [] -> [i64 i64] come last
    before = Module(orig.data).types
    after = Module(result.wasm).types
    assert after[: len(before)] == before
    assert len(after) == len(before) + 2


def test_memory_zero_is_the_modules_own(control: Twins) -> None:
    orig, inst, result = control
    assert same(orig, inst, "mem", 5).results == 5 + 2
    assert result.layout.memory_index == 1
    assert inst.exports[BOOKS_EXPORT].size(inst.store) == result.layout.pages


def test_host_import_is_counted_and_on_top_of_the_stack(control: Twins) -> None:
    orig, inst, result = control
    assert same(orig, inst, "seven").results == 7
    assert inst.counter(PROBE) == 7
    assert inst.counter(SEVEN) == 1
    first_call = inst.probes
    assert [p[0] for p in first_call] == list(range(7))
    for _, depth, stack in first_call:
        assert depth == 2
        assert stack == [SEVEN, PROBE]  # the import is on top while the host runs
    assert set(result.layout.thunks.values()) == {PROBE}
    assert inst.depth() == 0


def test_trap_leaves_the_whole_chain(control: Twins) -> None:
    orig, inst, _ = control
    out = same(orig, inst, "trap_chain", 0)
    assert out.trap == wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO
    assert inst.stack() == [T1, T2, T3]  # innermost last
    assert inst.depth() == 0  # heights 2, 1, 0: all three in slots, none on the ring
    assert inst.layout is not None and inst.layout.read_slots(inst.books()) == [T1, T2, T3]
    inst.reset_depth()
    assert inst.stack() == []
    assert same(orig, inst, "trap_chain", 4).results == 26
    assert inst.depth() == 0
    assert inst.stack() == []
    assert [inst.counter(f) for f in (T1, T2, T3)] == [2, 2, 2]

    assert same(orig, inst, "oob", 70_000 * 2).trap == wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS
    assert inst.stack() == [OOB]
    inst.reset_depth()


TAIL = r"""
(module
  (import "host" "probe" (func $probe (param i32)))
  (type $t1 (func (param i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $tci)
  (elem declare func $tcr)
  (func $tc (export "tc") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (call $probe (i32.const 0)) (i32.const 99))
      (else (return_call $tc (i32.sub (local.get 0) (i32.const 1))))))
  (func $tci (export "tci") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (call $probe (i32.const 1)) (i32.const 98))
      (else (return_call_indirect (type $t1) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))))
  (func $tcr (export "tcr") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (call $probe (i32.const 2)) (i32.const 97))
      (else (return_call_ref $t1 (i32.sub (local.get 0) (i32.const 1)) (ref.func $tcr)))))
  (func $tail_import (export "tail_import") (param i32)
    (return_call $probe (local.get 0)))
  (func $outer (export "outer") (param i32) (result i32)
    (call $tail_import (i32.const 3))
    (call $tc (local.get 0)))
)
"""
_, TC, TCI, TCR, TAIL_IMPORT, OUTER = range(6)


@pytest.mark.parametrize(("name", "fidx", "tag", "value"), [("tc", TC, 0, 99), ("tci", TCI, 1, 98), ("tcr", TCR, 2, 97)])
def test_tail_calls_do_not_grow_the_stack(name: str, fidx: int, tag: int, value: int) -> None:
    n = 100_000
    orig, inst, _ = twins(wat(TAIL), probe=True, stack_capacity=16)
    assert same(orig, inst, name, n).results == value
    assert inst.depth() == 0
    assert inst.probes == [(tag, 2, [fidx, 0])]
    assert inst.counter(fidx) == n + 1
    assert inst.counter(0) == 1


def test_tail_call_to_an_import_goes_through_its_thunk() -> None:
    orig, inst, result = twins(wat(TAIL), probe=True)
    assert same(orig, inst, "outer", 5).results == 99
    # tail_import's frame is replaced by the import's: [outer, probe], then [outer, tc, probe]
    assert [p[1:] for p in inst.probes] == [(2, [OUTER, 0]), (3, [OUTER, TC, 0])]
    assert inst.counter(0) == 2
    assert inst.counter(TAIL_IMPORT) == 1
    assert inst.depth() == 0
    # the thunk is a new function after all defined ones, mapped back to the import
    assert result.layout.thunks == {OUTER + 1: 0}
    assert result.layout.original_function(OUTER + 1) == 0


EXN = r"""
(module
  (import "host" "probe" (func $probe (param i32)))
  (tag $e (param i32))
  (func $thrower (param i32)
    (call $probe (i32.const 10))
    (throw $e (local.get 0)))
  (func $mid (param i32) (call $thrower (local.get 0)))
  (func $nest (call $probe (i32.const 12)))

  (func $catch_block (export "catch_block") (param i32) (result i32)
    (block $h (result i32)
      (try_table (catch $e $h) (call $mid (local.get 0)))
      (return (i32.const -1)))
    (call $probe (i32.const 11))
    (call $nest)
    (i32.add (i32.const 1000)))

  (func $catch_ref (export "catch_ref") (param i32) (result i32)
    (block $h (result i32 exnref)
      (try_table (catch_ref $e $h) (call $mid (local.get 0)))
      (return (i32.const -1)))
    (drop)
    (call $probe (i32.const 11))
    (call $nest)
    (i32.add (i32.const 2000)))

  (func $catch_all (export "catch_all") (param i32) (result i32)
    (block $h
      (block $inner
        (try_table (catch_all $h) (call $mid (local.get 0)))
        (br $inner))
      (return (i32.const -1)))
    (call $probe (i32.const 11))
    (call $nest)
    (i32.const 3000))

  (func $catch_all_ref (export "catch_all_ref") (param i32) (result i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h) (call $mid (local.get 0)))
      (return (i32.const -1)))
    (drop)
    (call $probe (i32.const 11))
    (call $nest)
    (i32.const 4000))

  ;; catch_all to a loop label: the loop runs again after each throw
  (func $catch_loop (export "catch_loop") (param i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.lt_u (local.get $i) (local.get 0))
        (then (try_table (catch_all $l) (call $mid (local.get $i))))))
    (call $probe (i32.const 11))
    (call $nest)
    (local.get $i))

  ;; catch with a value to a loop that takes it as its parameter
  (func $catch_loop_param (export "catch_loop_param") (param i32) (result i32)
    (local $n i32)
    (local $sum i32)
    i32.const 0
    loop $l (param i32)
      local.get $sum
      i32.add
      local.set $sum
      local.get $n
      i32.const 1
      i32.add
      local.tee $n
      local.get 0
      i32.lt_u
      if
        try_table (catch $e $l)
          local.get $n
          call $mid
        end
      end
    end
    (call $probe (i32.const 11))
    (call $nest)
    local.get $sum)

  ;; a catch to the function's own label returns from it
  (func $catch_outer (export "catch_outer") (param i32) (result i32)
    (try_table (result i32) (catch $e 0) (call $mid (local.get 0)) (i32.const -5)))
  (func $outer_caller (export "outer_caller") (param i32) (result i32)
    (call $catch_outer (local.get 0))
    (call $probe (i32.const 14))
    (call $nest))

  ;; an exception caught two frames up from a try_table nested in blocks
  (func $deep (export "deep") (param i32) (result i32)
    (block $out (result i32)
      (block $x
        (block $y
          (try_table (catch $e $out) (call $mid (local.get 0)))
          (br $y))
        (br $x))
      (i32.const -1))
    (call $probe (i32.const 11))
    (call $nest))

  (func $throw_out (export "throw_out") (param i32) (call $mid (local.get 0)))
)
"""
_P, THROWER, MID, NEST = range(4)


@pytest.fixture
def exn() -> Twins:
    return twins(wat(EXN), probe=True)


@pytest.mark.parametrize(("name", "value"), [("catch_block", 1005), ("catch_ref", 2005), ("catch_all", 3000), ("catch_all_ref", 4000), ("deep", 5)])
def test_try_table_catch_to_a_block(exn: Twins, name: str, value: int) -> None:
    orig, inst, result = exn
    fidx = export_index(result.wasm, name)
    inst.probes.clear()
    assert same(orig, inst, name, 5).results == value
    assert [p[1:] for p in inst.probes] == [
        (4, [fidx, MID, THROWER, 0]),  # inside the thrower
        (2, [fidx, 0]),  # after the catch: back at the catcher's level
        (3, [fidx, NEST, 0]),  # and further calls nest right
    ]
    assert inst.depth() == 0


def test_try_table_catch_to_a_loop(exn: Twins) -> None:
    orig, inst, result = exn
    fidx = export_index(result.wasm, "catch_loop")
    inst.probes.clear()
    assert same(orig, inst, "catch_loop", 4).results == 4
    stacks = [p[1:] for p in inst.probes]
    assert stacks == [(4, [fidx, MID, THROWER, 0])] * 3 + [(2, [fidx, 0]), (3, [fidx, NEST, 0])]
    assert inst.depth() == 0

    fidx = export_index(result.wasm, "catch_loop_param")
    inst.probes.clear()
    assert same(orig, inst, "catch_loop_param", 4).results == 1 + 2 + 3
    stacks = [p[1:] for p in inst.probes]
    assert stacks == [(4, [fidx, MID, THROWER, 0])] * 3 + [(2, [fidx, 0]), (3, [fidx, NEST, 0])]
    assert inst.depth() == 0


def test_catch_to_the_outermost_label(exn: Twins) -> None:
    orig, inst, result = exn
    inst.probes.clear()
    assert same(orig, inst, "catch_outer", 6).results == 6
    assert inst.depth() == 0
    caller = export_index(result.wasm, "outer_caller")
    inst.probes.clear()
    same(orig, inst, "outer_caller", 6)
    assert [p[1:] for p in inst.probes][1:] == [(1 + 1, [caller, 0]), (3, [caller, NEST, 0])]
    assert inst.depth() == 0


def test_uncaught_exception_reaches_the_host_the_same(exn: Twins) -> None:
    orig, inst, result = exn
    out = same(orig, inst, "throw_out", 1)
    assert out.results is None
    # like a trap, an exception that leaves the instance leaves its frames
    assert inst.stack() == [export_index(result.wasm, "throw_out"), MID, THROWER]
    inst.reset_depth()
    assert same(orig, inst, "catch_block", 5).results == 1005
    assert inst.depth() == 0


def test_restore_sits_after_the_block_end_and_at_the_loop_top() -> None:
    result = twins(wat(EXN), probe=True)[2]
    m = Module(result.wasm)
    n_imp = m.num_imported_functions
    mem = result.layout.memory_index

    def restores(fidx: int) -> list[int]:
        locals_, instrs = m.code[fidx - n_imp].decode()
        d = sum(n for n, _ in locals_) + len(m.function_type(fidx).params) - 1
        seq = [(op.I32_CONST, 0), (op.LOCAL_GET, d), (op.I32_CONST, 1), (op.I32_ADD,), (op.I32_STORE, 2, 0, mem)]
        return [i for i in range(len(instrs)) if instrs[i : i + len(seq)] == seq]

    def body(name: str) -> list[tuple[int, ...]]:
        return m.code[export_index(result.wasm, name) - n_imp].decode()[1]

    at = restores(export_index(result.wasm, "catch_loop"))
    assert len(at) == 2  # the prologue's depth = d + 1, and the loop's top
    assert body("catch_loop")[at[1] - 1][0] == op.LOOP
    at = restores(export_index(result.wasm, "catch_block"))
    assert len(at) == 2  # ... and right after the end of the block $h
    assert body("catch_block")[at[1] - 1][0] == op.END
    # catch to the function label: nothing but the prologue
    assert len(restores(export_index(result.wasm, "catch_outer"))) == 1
