"""Code offsets of an instrumented module, mapped back to the original module.

The shadow-stack pass (:mod:`wasmscope.instrument`) keeps every function index
but rewrites every body: a prologue, a wrapper ``block``, the original
instructions (``return`` becomes ``br``, a call of an import becomes a call of its
thunk, a few instructions are inserted after ``catch`` targets and before
``return_call``), an epilogue. Its encoder writes LEB128 immediates in their
shortest form, where wasm-ld pads relocated ones to five bytes. So a byte offset
that wasmtime reports for the instrumented code (a trap, a frame of a backtrace)
says nothing about the original code, whose DWARF line table describes the
original offsets only.

:func:`original_offset` aligns the two bodies of one function instruction by
instruction: the original instructions appear in order in the instrumented
body, with insertions (everything the pass adds reads or writes its own local
or its own memory, so it never equals an original instruction that can trap or
call). Offsets come from :func:`instruction_offsets`, which walks the raw bytes
(padded LEB128 included). Stdlib only; decodes just the functions asked for.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from wasmscope.binary import opcodes as op
from wasmscope.binary.instructions import Instruction, instruction_offsets
from wasmscope.binary.module import FunctionBody, Module
from wasmscope.errors import DecodeError

__all__ = ["CodeMap"]

# Calls whose first immediate is a function index (the pass redirects imports to thunks).
_DIRECT_CALLS = frozenset((op.CALL, op.RETURN_CALL))


def _align(
    original: list[Instruction],
    instrumented: list[Instruction],
    function_of: Callable[[int], int],
) -> list[int | None] | None:
    """For each instrumented instruction, the index of the original instruction it
    is (None: added by the pass); None when the bodies do not align."""
    # Skip the prologue: it ends with the wrapper block, the first block of the body.
    first = next((j for j, ins in enumerate(instrumented) if ins[0] == op.BLOCK), None)
    if first is None:
        return None
    out: list[int | None] = [None] * len(instrumented)
    i = 0
    n = len(original)
    for j in range(first + 1, len(instrumented)):
        if i >= n:
            break
        a, b = original[i], instrumented[j]
        if a == b:
            same = True
        elif a[0] == op.RETURN:
            same = b[0] == op.BR
        elif a[0] in _DIRECT_CALLS and b[0] == a[0]:
            same = function_of(b[1]) == a[1]
        else:
            same = False
        if same:
            out[j] = i
            i += 1
    return out if i == n else None


class CodeMap:
    """Maps module offsets of an instrumented module to the original module's."""

    def __init__(self, original: bytes, instrumented: bytes, function_of: Callable[[int], int]) -> None:
        self._orig = Module(original)
        self._inst = Module(instrumented)
        self._function_of = function_of
        self._n_imported = self._orig.num_imported_functions
        self._cache: dict[int, tuple[list[int], list[int], list[int | None]] | None] = {}

    def _function(self, funcidx: int) -> tuple[list[int], list[int], list[int | None]] | None:
        if funcidx in self._cache:
            return self._cache[funcidx]
        result = None
        k = funcidx - self._n_imported
        try:
            orig_code, inst_code = self._orig.code, self._inst.code
            if 0 <= k < len(orig_code) and k < len(inst_code):
                o, t = orig_code[k], inst_code[k]
                o_ins, t_ins = _body(o), _body(t)
                o_off = instruction_offsets(self._orig.data, o.start, o.end, data_count=o.data_count)
                t_off = instruction_offsets(self._inst.data, t.start, t.end, data_count=t.data_count)
                if len(o_off) == len(o_ins) and len(t_off) == len(t_ins):
                    aligned = _align(o_ins, t_ins, self._function_of)
                    if aligned is not None:
                        result = (o_off, t_off, aligned)
        except (DecodeError, IndexError, ValueError):
            result = None
        self._cache[funcidx] = result
        return result

    def original_offset(self, funcidx: int, module_offset: int) -> int | None:
        """The original module offset of the instruction at ``module_offset`` in
        function ``funcidx`` of the instrumented module; an instruction the pass
        added maps to the next original one (a stack overflow is reported at the
        prologue). None when the offset is outside the function or the bodies do
        not align."""
        found = self._function(funcidx)
        if found is None:
            return None
        o_off, t_off, aligned = found
        if not t_off or module_offset < t_off[0]:
            return None
        j = bisect.bisect_right(t_off, module_offset) - 1
        for jj in range(j, len(aligned)):
            i = aligned[jj]
            if i is not None:
                return o_off[i]
        return None


def _body(body: FunctionBody) -> list[Instruction]:
    return body.decode()[1]
