"""The shadow-stack pass: a module that keeps its own call stack and call counts.

:func:`instrument` rewrites a core module (bytes in, bytes out) so that, with no
host call, it maintains in a memory of its own (the *books*, laid out as
:mod:`wasmscope.instrument.counters_layout` describes and exported as ``wasmscope:books``):

- a shadow call stack of original function indices, outermost first;
- a u64 call counter per original function index, imports included.

What the pass adds, and nothing else (every existing index stays valid):

- one memory after all imported and defined memories: 32-bit, ``min == max``
  pages (a fixed size lets the compiler keep its base in a register and drop
  bounds checks), exported as ``wasmscope:books``;
- in every defined function, one i32 local ``$d`` after the existing locals, a
  prologue (``$d = depth; stack[$d & mask] = f; depth = $d + 1; counter[f] += 1``)
  and an epilogue (``depth = $d``). The original body is wrapped in one ``block``
  typed ``[] -> [results]``, so a branch to the function's outermost label now
  leaves that block and runs the epilogue unchanged; ``return`` becomes
  ``br <that block>`` (same values, same semantics); falling off the end reaches
  the epilogue; ``return_call*`` run the epilogue first (the callee then pushes
  itself at the same depth, so tail recursion does not grow the stack);
- a function that can only ever call a bounded chain of functions keeps a
  *slot* instead of the stack. Its *height* is 0 for a leaf (no call of any
  kind, no throw/rethrow/throw_ref, no try/try_table), else 1 + the highest
  height among its callees, when all its calls are direct calls (``call``/
  ``return_call``) of defined functions outside any recursion; any other call
  (indirect, by reference, of an import) or exception handling makes it a
  *stack* function. A function of height ``h < MAX_SLOTS`` (15) stores ``f + 1``
  in slot ``h`` on entry, bumps ``counter[f]``, and stores 0 there on exit: no
  depth load, no stack store, no live local (it still gets the local and the
  wrapper block). Heights strictly fall along any call chain of such functions,
  and none of them can reach a stack function, so while one runs, the set slots
  are exactly the innermost frames, outermost at the highest height: readers
  append them to the stack in falling height order. None of them can be entered
  again while its slot is set (that would take a cycle or a host call), and no
  exception can pass through them (none throws, none calls anything that could),
  so a slot is only left set by a trap, which the host clears;
- after a thrown exception is caught, the catching function stores its own
  level again (``depth = $d + 1``): at the target of each ``try_table`` catch
  label (after the block's ``end``, or at the top of a ``loop`` body) and at the
  start of each legacy ``catch``/``catch_all``;
- one *thunk* per imported function that is called directly: same type, counts
  and pushes the import's index, calls the import, pops. Every ``call``/
  ``return_call`` of the import is redirected to its thunk, so while a host
  function runs the top of the shadow stack is the import. ``ref.func``, tables
  and exports of imports are left alone, so an import called indirectly
  (``call_indirect``/``call_ref`` or by the host) is neither counted nor pushed.
  Thunks come after all defined functions; ``CountersLayout.thunks`` maps them back.
- possibly one rec group holding a function type ``[] -> [results]`` for the
  wrapper block of multi-value functions, when the module has none to reuse.

The start function, exports, elements, data, the name section and every custom
section are left as they are (thunks have no name). Code offsets change, so
DWARF and source maps of the input describe the original code, not this one;
function indices do not change.

What the books show, and when:

- A trap leaves the stack as it was at the trap (that is the point: the host
  reads the whole chain, innermost last). The host must store depth 0 before it
  calls into the instance again after a trap or an uncaught exception; an exit
  through a function's epilogue (normal, branch, return, tail call) is exact.
  The host also clears the slots then (a trap inside slot functions leaves them set).
- An exception thrown through functions leaves the depth high until the
  catching function re-stores its level (see above).
- The stack has ``stack_capacity`` entries (a power of two); deeper frames wrap
  around: the depth stays exact, only the innermost ``stack_capacity`` entries
  can be read.
- The books are per instance and updated with plain loads and stores: a guest
  whose threads share one instance's books (a shared-everything threads model)
  gets an approximate stack and counters that may lose increments. With
  wasi-threads every thread has an instance of its own, hence books of its own.
- Functions whose locals are already at wasmtime's limit (50 000 params and
  locals) cannot take one more local and are left as they are (listed in
  ``Instrumented.uninstrumented``): they are neither counted nor pushed, and
  the imports they call directly are not counted from there.
- Other wasmtime limits the pass can cross: a module with 100 memories is
  refused (the books would be the 101st); a function body within ~100 bytes of
  wasmtime's 7,654,321-byte limit would no longer validate.
- A native stack overflow may come a little sooner: each frame has one more local.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wasmscope.binary import opcodes as op
from wasmscope.binary.instructions import Instruction
from wasmscope.binary.module import FunctionBody, Module
from wasmscope.binary.sections import Export
from wasmscope.binary.types import (
    I32,
    ExternKind,
    FuncType,
    Limits,
    MemoryType,
    RecGroup,
    RefType,
    SubType,
    ValType,
)
from wasmscope.errors import DecodeError, UsageError
from wasmscope.instrument.counters_layout import (
    BOOKS_EXPORT,
    DEPTH_OFFSET,
    MAX_SLOTS,
    PAGE_SIZE,
    SLOTS_OFFSET,
    STACK_OFFSET,
    CountersLayout,
)

__all__ = ["PASS_VERSION", "Instrumented", "instrument"]

PASS_VERSION = 3
"""Bumped whenever the pass's output for a given input changes (cache key)."""

MAX_LOCALS = 50_000  # wasmtime (wasmparser) limit on params + locals of one function
MAX_MEMORIES = 100  # wasmtime (wasmparser) limit on memories, imported + defined
MAX_STACK_CAPACITY = 1 << 28

_COMPONENT_VERSION = b"\x0d\x00\x01\x00"

# Opcodes the rewrite loop looks at; everything else is copied as is.
_OPENERS = frozenset((op.BLOCK, op.LOOP, op.IF, op.TRY))
_SPECIAL = frozenset(
    (
        *_OPENERS,
        op.END,
        op.TRY_TABLE,
        op.DELEGATE,
        op.RETURN,
        op.CALL,
        op.RETURN_CALL,
        op.RETURN_CALL_INDIRECT,
        op.RETURN_CALL_REF,
        op.CATCH,
        op.CATCH_ALL,
    )
)
_END: Instruction = (op.END,)
# Exception handling and calls other than direct ones make a function a stack function.
_STACK_ONLY = frozenset(
    (
        op.CALL_INDIRECT,
        op.CALL_REF,
        op.RETURN_CALL_INDIRECT,
        op.RETURN_CALL_REF,
        op.THROW,
        op.THROW_REF,
        op.RETHROW,
        op.TRY,
        op.TRY_TABLE,
        op.CATCH,
        op.CATCH_ALL,
        op.DELEGATE,
    )
)
STACK = MAX_SLOTS  # the "height" of a function that keeps the stack


def _callees(instrs: Sequence[Instruction], n_imported: int) -> frozenset[int] | None:
    """The defined functions a body calls directly (as defined-function positions),
    or None when it must keep the stack (see the module docstring)."""
    out: set[int] = set()
    stack_only = _STACK_ONLY
    for ins in instrs:
        code = ins[0]
        if code == op.CALL or code == op.RETURN_CALL:
            f = ins[1]
            if f < n_imported:
                return None
            out.add(f - n_imported)
        elif code in stack_only:
            return None
    return frozenset(out)


def heights(callees: Sequence[frozenset[int] | None]) -> list[int]:
    """The height of each defined function (see the module docstring), capped at
    :data:`STACK`, which also stands for every function that keeps the stack:
    ``callees[i]`` is what :func:`_callees` gave for defined function ``i``.
    Iterative (call chains in real modules are deeper than Python's recursion)."""
    unknown, on_path = -1, -2
    h = [unknown] * len(callees)
    for i, cs in enumerate(callees):
        if cs is None:
            h[i] = STACK
    for root in range(len(callees)):
        if h[root] != unknown:
            continue
        h[root] = on_path
        best = {root: 0}
        work = [(root, iter(callees[root] or ()))]
        while work:
            f, it = work[-1]
            for c in it:
                hc = h[c]
                if hc == unknown:
                    h[c] = on_path
                    best[c] = 0
                    work.append((c, iter(callees[c] or ())))
                    break
                # a callee on the current path closes a cycle: recursion keeps the stack
                best[f] = max(best[f], STACK if hc == on_path else min(hc + 1, STACK))
            else:
                work.pop()
                h[f] = best.pop(f)
                if work:
                    g = work[-1][0]
                    best[g] = max(best[g], min(h[f] + 1, STACK))
    return h


@dataclass(frozen=True)
class Instrumented:
    """The instrumented module and where its books are."""

    wasm: bytes
    layout: CountersLayout
    uninstrumented: tuple[int, ...] = ()  # defined functions left as they were (too many locals)


class _Codegen:
    """Instruction sequences for one books memory."""

    def __init__(self, mem: int, capacity: int, counters_offset: int) -> None:
        self.mem = mem
        self.mask = capacity - 1
        self.counters_offset = counters_offset

    def prologue(self, f: int, d: int) -> list[Instruction]:
        b = self.mem
        cnt = self.counters_offset + 8 * f
        return [
            # stack[d & mask] = f, with d = depth
            (op.I32_CONST, 0),
            (op.I32_LOAD, 2, DEPTH_OFFSET, b),
            (op.LOCAL_TEE, d),
            (op.I32_CONST, self.mask),
            (op.I32_AND,),
            (op.I32_CONST, 2),
            (op.I32_SHL,),
            (op.I32_CONST, f),
            (op.I32_STORE, 2, STACK_OFFSET, b),
            # depth = d + 1
            *self.restore(d),
            # counters[f] += 1
            (op.I32_CONST, 0),
            (op.I32_CONST, 0),
            (op.I64_LOAD, 3, cnt, b),
            (op.I64_CONST, 1),
            (op.I64_ADD,),
            (op.I64_STORE, 3, cnt, b),
        ]

    def slot_prologue(self, f: int, h: int) -> list[Instruction]:
        """slot[h] = f + 1; counters[f] += 1 (the depth and the stack are left alone)."""
        b = self.mem
        cnt = self.counters_offset + 8 * f
        return [
            (op.I32_CONST, 0),
            (op.I32_CONST, f + 1),
            (op.I32_STORE, 2, SLOTS_OFFSET + 4 * h, b),
            (op.I32_CONST, 0),
            (op.I32_CONST, 0),
            (op.I64_LOAD, 3, cnt, b),
            (op.I64_CONST, 1),
            (op.I64_ADD,),
            (op.I64_STORE, 3, cnt, b),
        ]

    def slot_epilogue(self, h: int) -> list[Instruction]:
        """slot[h] = 0."""
        return [(op.I32_CONST, 0), (op.I32_CONST, 0), (op.I32_STORE, 2, SLOTS_OFFSET + 4 * h, self.mem)]

    def restore(self, d: int) -> list[Instruction]:
        """depth = d + 1: this function's own level, after a caught exception."""
        return [
            (op.I32_CONST, 0),
            (op.LOCAL_GET, d),
            (op.I32_CONST, 1),
            (op.I32_ADD,),
            (op.I32_STORE, 2, DEPTH_OFFSET, self.mem),
        ]

    def epilogue(self, d: int) -> list[Instruction]:
        """depth = d: pop this function's frame."""
        return [(op.I32_CONST, 0), (op.LOCAL_GET, d), (op.I32_STORE, 2, DEPTH_OFFSET, self.mem)]


def _rewrite(
    instrs: Sequence[Instruction],
    prologue: list[Instruction],
    epilogue: list[Instruction],
    restore: list[Instruction],
    blocktype: object,
    n_imported: int,
    thunk_of: dict[int, int],
    first_thunk: int,
) -> list[Instruction]:
    """The new instruction list of one body (``instrs`` ends with its ``end``)."""
    out: list[Instruction] = [*prologue, (op.BLOCK, blocktype)]
    append = out.append
    special = _SPECIAL
    opens: list[int] = []  # index in `out` of each open block's opening instruction
    end_fix: set[int] = set()  # blocks that a catch clause targets: restore after their end
    loop_fix: set[int] = set()  # loops that a catch clause targets: restore at their top
    for ins in instrs:
        code = ins[0]
        if code not in special:
            append(ins)
        elif code in _OPENERS:
            opens.append(len(out))
            append(ins)
        elif code == op.END:
            append(ins)
            if opens:
                idx = opens.pop()
                if end_fix and idx in end_fix:
                    out.extend(restore)
            else:  # the body's own end, now the wrapper's
                out.extend(epilogue)
                append(_END)
        elif code == op.CALL:
            f = ins[1]
            if f < n_imported:
                t = thunk_of.get(f)
                if t is None:
                    t = thunk_of[f] = first_thunk + len(thunk_of)
                append((op.CALL, t))
            else:
                append(ins)
        elif code == op.RETURN:
            append((op.BR, len(opens)))
        elif code == op.RETURN_CALL:
            out.extend(epilogue)
            f = ins[1]
            if f < n_imported:
                t = thunk_of.get(f)
                if t is None:
                    t = thunk_of[f] = first_thunk + len(thunk_of)
                append((op.RETURN_CALL, t))
            else:
                append(ins)
        elif code == op.RETURN_CALL_INDIRECT or code == op.RETURN_CALL_REF:
            out.extend(epilogue)
            append(ins)
        elif code == op.TRY_TABLE:
            n = len(opens)
            for clause in ins[2]:
                label = clause[-1]
                if label < n:  # label == n is the wrapper: the epilogue runs
                    target = opens[n - 1 - label]
                    if out[target][0] == op.LOOP:
                        loop_fix.add(target)
                    else:
                        end_fix.add(target)
            opens.append(len(out))
            append(ins)
        elif code == op.DELEGATE:  # closes a legacy try, like `end`
            append(ins)
            if opens:
                idx = opens.pop()
                if end_fix and idx in end_fix:
                    out.extend(restore)
        else:  # legacy catch / catch_all: the handler starts here
            append(ins)
            out.extend(restore)
    if loop_fix:
        fixed: list[Instruction] = []
        for i, ins in enumerate(out):
            fixed.append(ins)
            if i in loop_fix:
                fixed.extend(restore)
        return fixed
    return out


class _BlockTypes:
    """The wrapper block's type for each result list: a value type, empty, or
    the index of a function type ``[] -> results`` (reused, else appended)."""

    def __init__(self, m: Module, types: list[SubType]) -> None:
        self.m = m
        self.types = types
        self.cache: dict[tuple[ValType, ...], object] = {}
        self.by_comp: dict[FuncType, int] | None = None

    def get(self, results: tuple[ValType, ...]) -> object:
        bt = self.cache.get(results)
        if bt is not None:
            return bt
        if not results:
            bt = -64
        elif len(results) == 1:
            vt = results[0]
            bt = vt if isinstance(vt, RefType) else vt - 0x80
        else:
            if self.by_comp is None:
                self.by_comp = {}
                for i, t in enumerate(self.types):
                    if isinstance(t.comp, FuncType):
                        self.by_comp.setdefault(t.comp, i)
            want = FuncType((), results)
            idx = self.by_comp.get(want)
            if idx is None:
                idx = len(self.types)
                sub = SubType(want)
                self.m.rec_groups.append(RecGroup([sub]))
                self.types.append(sub)
                self.by_comp[want] = idx
            bt = idx
        self.cache[results] = bt
        return bt


def _check_capacity(stack_capacity: int) -> None:
    if (
        not isinstance(stack_capacity, int)
        or stack_capacity < 1
        or stack_capacity & (stack_capacity - 1)
        or stack_capacity > MAX_STACK_CAPACITY
    ):
        raise UsageError(
            f"stack_capacity must be a power of two from 1 to {MAX_STACK_CAPACITY}, not {stack_capacity!r}"
        )


def instrument(data: bytes, *, stack_capacity: int = 65536) -> Instrumented:
    """Rewrite a core module so that it keeps a shadow call stack and call
    counters in an exported memory of its own (see the module docstring).

    Raises :class:`UsageError` for a component, a bad ``stack_capacity`` or a
    module that already exports ``wasmscope:books``; :class:`DecodeError` for a
    malformed module. The result validates wherever the input does (given
    multi-memory) and behaves the same.
    """
    _check_capacity(stack_capacity)
    if bytes(data[4:8]) == _COMPONENT_VERSION:
        raise UsageError("instrument takes a core module, not a component")
    m = Module(data)
    if any(e.name == BOOKS_EXPORT for e in m.exports):
        raise UsageError(f"the module already exports {BOOKS_EXPORT!r}: is it instrumented already?")

    n_imported = m.num_imported_functions
    func_types = m.functions
    code = m.code
    if len(func_types) != len(code):
        sec = m.section(10) or m.section(3)
        raise DecodeError(
            "function and code section have inconsistent lengths", sec.offset if sec else m.offset
        )
    n_functions = n_imported + len(func_types)

    mem = len(m.memory_types())
    if mem >= MAX_MEMORIES:
        raise UsageError(f"the module has {mem} memories: wasmtime takes at most {MAX_MEMORIES}, the books would be one more")
    counters_offset = STACK_OFFSET + 4 * stack_capacity
    size = counters_offset + 8 * n_functions
    pages = max(1, -(-size // PAGE_SIZE))
    if pages > 65536:
        raise UsageError(f"the books need {size} bytes, more than a 32-bit memory holds")
    m.memories.append(MemoryType(Limits(pages, pages)))
    m.exports.append(Export(BOOKS_EXPORT, ExternKind.MEMORY, mem))

    types = m.types
    blocktypes = _BlockTypes(m, types)
    gen = _Codegen(mem, stack_capacity, counters_offset)

    def functype(typeidx: int, funcidx: int) -> FuncType:
        comp = types[typeidx].comp if typeidx < len(types) else None
        if not isinstance(comp, FuncType):
            raise DecodeError(f"function {funcidx} has no function type", m.offset)
        return comp

    # A first pass for the call graph (decoding twice costs less memory than keeping
    # every decoded body); a function left uninstrumented counts as a stack function.
    callees: list[frozenset[int] | None] = []
    for i, body in enumerate(code):
        locals_, instrs = body.decode()
        d = len(functype(func_types[i], n_imported + i).params) + sum(n for n, _ in locals_)
        callees.append(None if d + 1 > MAX_LOCALS else _callees(instrs, n_imported))
        del locals_, instrs
    height = heights(callees)
    del callees

    thunk_of: dict[int, int] = {}
    uninstrumented: list[int] = []
    for i, body in enumerate(code):
        f = n_imported + i
        ft = functype(func_types[i], f)
        locals_, instrs = body.decode()
        d = len(ft.params) + sum(n for n, _ in locals_)
        if d + 1 > MAX_LOCALS:
            uninstrumented.append(f)
            continue
        h = height[i]
        slot = h < STACK
        new = _rewrite(
            instrs,
            gen.slot_prologue(f, h) if slot else gen.prologue(f, d),
            gen.slot_epilogue(h) if slot else gen.epilogue(d),
            [] if slot else gen.restore(d),
            blocktypes.get(ft.results),
            n_imported,
            thunk_of,
            n_functions,
        )
        body.replace([*locals_, (1, I32)], new)
        del locals_, instrs, new

    if thunk_of:
        imported = m.imported(ExternKind.FUNC)
        for imp, _t in sorted(thunk_of.items(), key=lambda kv: kv[1]):
            typeidx = imported[imp].type
            assert isinstance(typeidx, int)
            ft = functype(typeidx, imp)
            d = len(ft.params)
            instrs = [
                *gen.prologue(imp, d),
                *((op.LOCAL_GET, p) for p in range(d)),
                (op.CALL, imp),
                *gen.epilogue(d),
                _END,
            ]
            func_types.append(typeidx)
            code.append(FunctionBody.new([(1, I32)], instrs))

    layout = CountersLayout(
        memory_export=BOOKS_EXPORT,
        depth_offset=DEPTH_OFFSET,
        slots_offset=SLOTS_OFFSET,
        slots=MAX_SLOTS,
        stack_offset=STACK_OFFSET,
        stack_capacity=stack_capacity,
        counters_offset=counters_offset,
        n_functions=n_functions,
        n_imported_functions=n_imported,
        memory_index=mem,
        pages=pages,
        thunks={t: imp for imp, t in thunk_of.items()},
        version=PASS_VERSION,
    )
    return Instrumented(m.encode(), layout, tuple(uninstrumented))
