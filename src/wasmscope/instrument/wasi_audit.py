"""The host-call audit pass: every direct call of a WASI preview 1 import goes
through a thunk that counts it, applies the policy's action and budgets, and
records it, all in Wasm (no host call in the common case).

:func:`audit` rewrites a core module (bytes in, bytes out). What it adds, and
nothing else (every existing index stays valid):

- one memory after all memories (32-bit), exported as ``wasmscope:audit``, laid
  out as :mod:`wasmscope.instrument.audit_layout` describes. Its initial size
  holds the header, the tables and a ring of 16 records; the host grows it to the
  ring it wants after instantiating (a fixed large size would count against a
  small memory limit);
- one funcref table of one entry after all tables, exported as
  ``wasmscope:audit_check``: the host puts its CHECK function there (a Python
  callback, called only for calls whose action is CHECK);
- one rec group with the CHECK function's type ``(record address, func) -> allow``;
- one thunk per audited import called directly, of the import's type, after all
  defined functions; every ``call``/``return_call`` of the import is redirected to
  it. ``ref.func``, tables and exports of imports are left alone (an import called
  indirectly or by the host is not audited).

Imports of ``wasi_snapshot_preview1`` and ``wasi_unstable`` are audited. A
module with none of them (or none called directly) comes back unchanged.

What a thunk does (``f`` is its audited function, a small index):

1. ``counter[f] += 1``, ``calls += 1`` (the record's ``seq``);
2. ``action = actions[f]`` (a byte the host writes after instantiating, so one
   audited module serves every policy and the cache keeps one copy);
3. the budgets: ``calls`` over its limit; for random_get, ``random_bytes +
   buf_len``; for fd_write/fd_pwrite to fd 1 or 2, ``output_bytes`` + the iovec
   sum; for path_open/sock_accept, ``open_fds + 1``. A call that would cross a
   limit gets ``over_action`` instead of its action. The sums grow only by calls
   that succeeded (``calls`` counts every call);
4. in record mode, a record in the next ring slot (when the ring is full the
   ``dropped`` counter grows instead: exact, never silent): the function, seq,
   every argument, the iovec byte sum (or random_get's length), and the path
   bytes, copied with ``memory.copy`` from the guest memory, up to ``max_path``.
   A CHECK call that the ring does not take is written to a scratch record;
5. CHECK: ``call_indirect`` of the host's function with the record, which
   answers the action (ALLOW, DENY or KILL);
   KILL: ``killed = f + 1``, then ``unreachable``; DENY: return ``deny_errno``
   without calling (functions that return nothing just return);
6. else call the import; on errno 0 the sums and the open descriptors move, and
   the record gets the errno, the value at the last out-pointer, the duration,
   then ``FLAG_DONE`` last (a reader never takes a record that is not done while
   the guest runs; at the end one without it is a call that trapped or exited).

Reads of the guest memory (iovecs, paths) are bounds-checked against its size
first, so the thunk never traps where the call would have returned an errno;
the out-pointer is read only after the import returned 0 (the import checked it).
The guest memory is the one exported as ``memory`` (the one WASI uses); without
one, or with a 64-bit one, nothing is read from it.

Durations: measured, then chosen. Two options were timed with
``benchmarks/guard.py`` (shared 2-core machine, a random_get loop, p50 over 30
alternating rounds): no duration, or the module's own ``clock_time_get`` import
called by the thunk before and after the call (monotonic clock; its out-pointer is
guest address 0, whose 8 bytes are saved and restored around each clock call).
Full records cost +1.49 µs a call without durations and +1.69 µs with them (the
host's decoding of the record is most of either), count-only +0.14 µs in both
(it never times). The clock's 0.2 µs buys a duration for every recorded call and
keeps the record path under its 3 µs target, so records are timed when the module
imports ``clock_time_get`` with its preview 1 type and has a non-shared 32-bit
``memory`` export of at least 8 bytes (the host checks the size and sets the mode
bit); otherwise ``duration_ns`` stays None. Shared memories are never timed:
another thread could see address 0 change for the length of a clock call.

Composing with the counters pass (:mod:`wasmscope.instrument.shadow_stack`): run it
first, then this pass. Its thunks are the only direct callers of imports, so the
audit thunks sit between them and the imports: the shadow stack still shows the
import while it runs, the counters and every other index are unchanged, and the
original functions' bodies are left as they are (the code map still applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wasmscope.binary import opcodes as op
from wasmscope.binary.custom import decode_name
from wasmscope.binary.instructions import Instruction
from wasmscope.binary.module import FunctionBody, Module
from wasmscope.binary.sections import Export, Table
from wasmscope.binary.types import (
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    ExternKind,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    RecGroup,
    SubType,
    TableType,
    ValType,
)
from wasmscope.errors import DecodeError, UsageError
from wasmscope.instrument import audit_layout as L
from wasmscope.instrument.audit_layout import (
    AUDIT_EXPORT,
    CHECK_EXPORT,
    MAX_ARGS,
    STACK_POINTER_EXPORT,
    AuditedFunc,
    AuditLayout,
)
from wasmscope.instrument.wasi_preview1 import MODULES, PREVIEW1, WasiFunc

__all__ = ["AUDIT_PASS_VERSION", "Audited", "audit"]

AUDIT_PASS_VERSION = 5  # 4: the C stack pointer exported; 5: sleeps cut to max_sleep_ns
"""Bumped whenever the pass's output for a given input changes (cache key)."""

PAGE = 65536
MIN_RING = 16
MAX_MEMORIES = 100
_COMPONENT_VERSION = b"\x0d\x00\x01\x00"
_CLOCK_MONOTONIC = 1
_BT_EMPTY = -64
_NONE_U64 = -1  # all ones: no limit (unsigned compares)
_NONE_I64 = (1 << 63) - 1  # open_fds compares signed (closing a preopen takes it below 0)


@dataclass(frozen=True)
class Audited:
    """The audited module and where its audit memory is; ``layout`` is None when
    the module has no preview 1 import called directly (``wasm`` is the input)."""

    wasm: bytes
    layout: AuditLayout | None


def _guest_memory(m: Module) -> int | None:
    """The index of the memory exported as ``memory`` if it is a plain 32-bit one."""
    for e in m.exports:
        if e.name == "memory" and e.kind == ExternKind.MEMORY:
            mems = m.memory_types()
            if e.index < len(mems) and not mems[e.index].limits.is64:
                return e.index
    return None


class _Thunk:
    """The code of one thunk."""

    def __init__(
        self,
        k: int,
        imp: int,
        ft: FuncType,
        spec: WasiFunc | None,
        layout: tuple[int, int, int, int],  # audit memory, actions, counters, ring offsets
        record_size: int,
        guest: int | None,
        clock: int | None,
        check: tuple[int, int],  # CHECK type index, table index
    ) -> None:
        self.k, self.imp, self.ft, self.spec = k, imp, ft, spec
        self.a, self.actions, self.counters, self.ring = layout
        self.rs = record_size
        self.g = guest
        self.clock = clock
        self.check_type, self.check_table = check
        n = len(ft.params)
        # locals after the params
        self.act, self.rec, self.err, self.flags, self.over, self.mode, self.i = range(n, n + 7)
        self.nb, self.t0, self.save, self.tmp, self.res = range(n + 7, n + 12)

    def locals(self) -> list[tuple[int, ValType]]:
        return [(7, I32), (5, I64)]

    # small helpers ------------------------------------------------------------------
    def ld32(self, off: int) -> list[Instruction]:
        return [(op.I32_CONST, 0), (op.I32_LOAD, 2, off, self.a)]

    def ld64(self, off: int) -> list[Instruction]:
        return [(op.I32_CONST, 0), (op.I64_LOAD, 3, off, self.a)]

    def rec_st32(self, off: int, value: list[Instruction]) -> list[Instruction]:
        return [(op.LOCAL_GET, self.rec), *value, (op.I32_STORE, 2, off, self.a)]

    def rec_st64(self, off: int, value: list[Instruction]) -> list[Instruction]:
        return [(op.LOCAL_GET, self.rec), *value, (op.I64_STORE, 3, off, self.a)]

    def if_(
        self, cond: list[Instruction], then: list[Instruction], else_: Sequence[Instruction] = ()
    ) -> list[Instruction]:
        out = [*cond, (op.IF, _BT_EMPTY), *then]
        if else_:
            out += [(op.ELSE,), *else_]
        return [*out, (op.END,)]

    def mem_bytes(self) -> list[Instruction]:
        """The guest memory's size in bytes, as i64."""
        assert self.g is not None
        return [(op.MEMORY_SIZE, self.g), (op.I64_EXTEND_I32_U,), (op.I64_CONST, 16), (op.I64_SHL,)]

    def fits(self, ptr: list[Instruction], length: list[Instruction]) -> list[Instruction]:
        """ptr + length <= guest memory size (all as u64: no wrap)."""
        return [
            *ptr,
            (op.I64_EXTEND_I32_U,),
            *length,
            (op.I64_ADD,),
            *self.mem_bytes(),
            (op.I64_LE_U,),
        ]

    def add_sum(self, off: int) -> list[Instruction]:
        """header[off] += nb"""
        return [
            (op.I32_CONST, 0),
            *self.ld64(off),
            (op.LOCAL_GET, self.nb),
            (op.I64_ADD,),
            (op.I64_STORE, 3, off, self.a),
        ]

    def add_written(self, out: int) -> list[Instruction]:
        """output_bytes += what the call wrote (its u32 out-pointer): a short write
        counts what went out, not what was asked."""
        assert self.g is not None
        return [
            (op.I32_CONST, 0), *self.ld64(L.OUTPUT), (op.LOCAL_GET, out), (op.I64_LOAD32_U, 2, 0, self.g), (op.I64_ADD,),
            (op.I64_STORE, 3, L.OUTPUT, self.a),
        ]  # fmt: skip

    def over_if(self, cond: list[Instruction]) -> list[Instruction]:
        return [(op.LOCAL_GET, self.over), *cond, (op.I32_OR,), (op.LOCAL_SET, self.over)]

    # the parts ----------------------------------------------------------------------------
    def nbytes(self) -> list[Instruction]:
        """nb = the iovec byte sum (or random_get's buf_len)."""
        spec, g = self.spec, self.g
        if spec is None:
            return []
        if spec.name == "random_get":
            return [(op.LOCAL_GET, 1), (op.I64_EXTEND_I32_U,), (op.LOCAL_SET, self.nb)]
        if spec.iovec is None or g is None:
            return []
        p, n = spec.iovec, spec.iovec + 1
        # for (i = 0; i < n; i++) nb += iovs[i].buf_len, when the array is in bounds
        loop = [
            (op.BLOCK, _BT_EMPTY),
            (op.LOOP, _BT_EMPTY),
            (op.LOCAL_GET, self.i), (op.LOCAL_GET, n), (op.I32_GE_U,), (op.BR_IF, 1),
            (op.LOCAL_GET, self.nb),
            (op.LOCAL_GET, p), (op.LOCAL_GET, self.i), (op.I32_CONST, 3), (op.I32_SHL,), (op.I32_ADD,),
            (op.I32_LOAD, 2, 4, g), (op.I64_EXTEND_I32_U,), (op.I64_ADD,), (op.LOCAL_SET, self.nb),
            (op.LOCAL_GET, self.i), (op.I32_CONST, 1), (op.I32_ADD,), (op.LOCAL_SET, self.i),
            (op.BR, 0),
            (op.END,),
            (op.END,),
        ]  # fmt: skip
        length = [(op.LOCAL_GET, n), (op.I64_EXTEND_I32_U,), (op.I64_CONST, 3), (op.I64_SHL,)]
        return self.if_(self.fits([(op.LOCAL_GET, p)], length), loop)

    def budgets(self) -> list[Instruction]:
        spec = self.spec
        out: list[Instruction] = []
        if spec is None:
            return out
        if spec.name == "random_get":
            out += self.over_if([*self.ld64(L.RANDOM), (op.LOCAL_GET, self.nb), (op.I64_ADD,), *self.ld64(L.LIMITS + 8), (op.I64_GT_U,)])  # fmt: skip
        elif spec.name in ("fd_write", "fd_pwrite"):
            out += self.over_if(
                [
                    (op.LOCAL_GET, 0), (op.I32_CONST, 1), (op.I32_EQ,), (op.LOCAL_GET, 0), (op.I32_CONST, 2), (op.I32_EQ,), (op.I32_OR,),
                    *self.ld64(L.OUTPUT), (op.LOCAL_GET, self.nb), (op.I64_ADD,), *self.ld64(L.LIMITS + 16), (op.I64_GT_U,),
                    (op.I32_AND,),
                ]
            )  # fmt: skip
        elif spec.name in ("path_open", "sock_accept"):
            out += self.over_if([*self.ld64(L.OPEN), (op.I64_CONST, 1), (op.I64_ADD,), *self.ld64(L.LIMITS + 24), (op.I64_GT_S,)])  # fmt: skip
        return out

    def fill(self) -> list[Instruction]:
        """Write the record's call part at rec."""
        params, spec, g = self.ft.params, self.spec, self.g
        out = [
            *self.rec_st32(L.R_FUNC, [(op.I32_CONST, self.k)]),
            *self.rec_st32(L.R_FLAGS, [(op.LOCAL_GET, self.flags)]),
            *self.rec_st64(L.R_SEQ, [(op.LOCAL_GET, self.tmp)]),
            *self.rec_st64(L.R_NBYTES, [(op.LOCAL_GET, self.nb)]),
            *self.rec_st32(L.R_COPIED, [(op.I32_CONST, 0)]),
        ]
        for i, t in enumerate(params[:MAX_ARGS]):
            if t == I32:
                v: list[Instruction] = [(op.LOCAL_GET, i), (op.I64_EXTEND_I32_U,)]
            elif t == I64:
                v = [(op.LOCAL_GET, i)]
            elif t == F64:
                v = [(op.LOCAL_GET, i), (op.I64_REINTERPRET_F64,)]
            elif t == F32:
                v = [(op.LOCAL_GET, i), (op.I32_REINTERPRET_F32,), (op.I64_EXTEND_I32_U,)]
            else:
                continue
            out += self.rec_st64(L.R_ARGS + 8 * i, v)
        if spec is not None and spec.path is not None and g is not None:
            p, n = spec.path, spec.path + 1
            # copied = min(len, max_path); memory.copy when in bounds
            out += [
                *self.rec_st32(L.R_PATH_LEN, [(op.LOCAL_GET, n)]),
                (op.LOCAL_GET, n), *self.ld32(L.MAX_PATH), (op.LOCAL_GET, n), *self.ld32(L.MAX_PATH), (op.I32_LT_U,),
                (op.SELECT,), (op.LOCAL_SET, self.i),
            ]  # fmt: skip
            copy = [
                (op.LOCAL_GET, self.rec), (op.I32_CONST, L.R_PATH), (op.I32_ADD,),
                (op.LOCAL_GET, p), (op.LOCAL_GET, self.i), (op.MEMORY_COPY, self.a, g),
                *self.rec_st32(L.R_COPIED, [(op.LOCAL_GET, self.i)]),
            ]  # fmt: skip
            out += self.if_(
                self.fits([(op.LOCAL_GET, p)], [(op.LOCAL_GET, self.i), (op.I64_EXTEND_I32_U,)]),
                copy,
            )
            out += [(op.I32_CONST, 0), (op.LOCAL_SET, self.i)]
        return out

    def slot(self) -> list[Instruction]:
        """rec = the next ring slot (head += 1), or the scratch record (the ring is
        full, dropped += 1; or CHECK in count-only mode)."""
        a = self.a
        take = [
            # head - tail > mask: full
            *self.ld64(L.HEAD), *self.ld64(L.TAIL), (op.I64_SUB,), *self.ld32(L.MASK), (op.I64_EXTEND_I32_U,), (op.I64_GT_U,),
            (op.IF, _BT_EMPTY),
            (op.I32_CONST, 0), *self.ld64(L.DROPPED), (op.I64_CONST, 1), (op.I64_ADD,), (op.I64_STORE, 3, L.DROPPED, a),
            (op.I32_CONST, L.SCRATCH), (op.LOCAL_SET, self.rec),
            (op.ELSE,),
            *self.ld64(L.HEAD), (op.I32_WRAP_I64,), *self.ld32(L.MASK), (op.I32_AND,), (op.I32_CONST, self.rs), (op.I32_MUL,),
            (op.I32_CONST, self.ring), (op.I32_ADD,), (op.LOCAL_SET, self.rec),
            (op.I32_CONST, 0), *self.ld64(L.HEAD), (op.I64_CONST, 1), (op.I64_ADD,), (op.I64_STORE, 3, L.HEAD, a),
            (op.END,),
        ]  # fmt: skip
        return [
            (op.LOCAL_GET, self.mode), (op.I32_CONST, L.MODE_RECORD), (op.I32_AND,),
            (op.IF, _BT_EMPTY), *take,
            (op.ELSE,), (op.I32_CONST, L.SCRATCH), (op.LOCAL_SET, self.rec),
            (op.END,),
        ]  # fmt: skip

    def clamp_sleep(self) -> list[Instruction]:
        """poll_oneoff: each relative clock subscription longer than ``max_sleep_ns``
        (header; 0: none) is cut to it in the guest's memory before the call, so a sleep
        ends by the run's timeout and the watchdog can stop the guest (it cannot reach
        into a host call). Only when the subscriptions are in bounds."""
        g = self.g
        if self.spec is None or self.spec.name != "poll_oneoff" or g is None:
            return []
        sub, end = 48, [(op.LOCAL_GET, 0), (op.LOCAL_GET, 2), (op.I32_CONST, 48), (op.I32_MUL,), (op.I32_ADD,)]
        loop = [
            (op.LOCAL_GET, 0), (op.LOCAL_SET, self.i),
            (op.BLOCK, _BT_EMPTY),
            (op.LOOP, _BT_EMPTY),
            (op.LOCAL_GET, self.i), *end, (op.I32_GE_U,), (op.BR_IF, 1),
            *self.if_(
                [
                    (op.LOCAL_GET, self.i), (op.I32_LOAD8_U, 0, 8, g), (op.I32_EQZ,),  # tag: clock
                    (op.LOCAL_GET, self.i), (op.I32_LOAD16_U, 1, 40, g), (op.I32_CONST, 1), (op.I32_AND,),
                    (op.I32_EQZ,), (op.I32_AND,),  # relative, not an absolute time
                    (op.LOCAL_GET, self.i), (op.I64_LOAD, 3, 24, g), (op.LOCAL_GET, self.tmp), (op.I64_GT_U,),
                    (op.I32_AND,),
                ],
                [(op.LOCAL_GET, self.i), (op.LOCAL_GET, self.tmp), (op.I64_STORE, 3, 24, g)],
            ),
            (op.LOCAL_GET, self.i), (op.I32_CONST, sub), (op.I32_ADD,), (op.LOCAL_SET, self.i),
            (op.BR, 0),
            (op.END,),
            (op.END,),
        ]  # fmt: skip
        length = [(op.LOCAL_GET, 2), (op.I64_EXTEND_I32_U,), (op.I64_CONST, 48), (op.I64_MUL,)]
        return [
            *self.ld64(L.MAX_SLEEP), (op.LOCAL_SET, self.tmp),
            *self.if_(
                [(op.LOCAL_GET, self.tmp), (op.I64_CONST, 0), (op.I64_NE,),
                 *self.fits([(op.LOCAL_GET, 0)], length), (op.I32_AND,)],
                loop,
            ),
        ]  # fmt: skip

    def results_of_denial(self) -> list[Instruction]:
        results = self.ft.results
        if results == (I32,):
            return [*self.ld32(L.DENY_ERRNO)]
        zeros = {
            I32: (op.I32_CONST, 0),
            I64: (op.I64_CONST, 0),
            F32: (op.F32_CONST, 0),
            F64: (op.F64_CONST, 0),
        }
        out: list[Instruction] = []
        for r in results:
            if r not in zeros:
                raise UsageError(
                    f"import {self.imp} returns a type the audit cannot fake on denial"
                )
            out.append(zeros[r])
        return out

    def timed(self) -> tuple[list[Instruction], list[Instruction]]:
        """Before and after the call: t0 = now; tmp = now - t0 (8 bytes at guest 0 kept)."""
        g, clock = self.g, self.clock
        if g is None or clock is None:
            return [], []

        def now() -> list[Instruction]:
            return [
                (op.I32_CONST, 0), (op.I64_LOAD, 3, 0, g), (op.LOCAL_SET, self.save),
                (op.I32_CONST, _CLOCK_MONOTONIC), (op.I64_CONST, 0), (op.I32_CONST, 0), (op.CALL, clock), (op.DROP,),
                (op.I32_CONST, 0), (op.I64_LOAD, 3, 0, g),
                (op.I32_CONST, 0), (op.LOCAL_GET, self.save), (op.I64_STORE, 3, 0, g),
            ]  # fmt: skip

        # rec != 0 and the timing bit (both as 0/1)
        on = [(op.LOCAL_GET, self.rec), (op.I32_EQZ,), (op.I32_EQZ,), (op.LOCAL_GET, self.mode), (op.I32_CONST, 1), (op.I32_SHR_U,), (op.I32_AND,)]  # fmt: skip
        before = self.if_(on, [*now(), (op.LOCAL_SET, self.t0)])
        after = self.if_(
            on,
            [
                *now(), (op.LOCAL_GET, self.t0), (op.I64_SUB,), (op.LOCAL_SET, self.res),
                *self.rec_st64(L.R_DURATION, [(op.LOCAL_GET, self.res)]),
                (op.LOCAL_GET, self.flags), (op.I32_CONST, L.FLAG_DURATION), (op.I32_OR,), (op.LOCAL_SET, self.flags),
            ],
        )  # fmt: skip
        return before, after

    def after_success(self) -> list[Instruction]:
        """On errno 0: the sums, the open descriptors, the result."""
        spec, g = self.spec, self.g
        if spec is None:
            return []
        out: list[Instruction] = []
        a = self.a
        if spec.name == "random_get":
            out += self.add_sum(L.RANDOM)
        elif spec.name in ("fd_write", "fd_pwrite"):
            out += self.if_(
                [(op.LOCAL_GET, 0), (op.I32_CONST, 1), (op.I32_EQ,), (op.LOCAL_GET, 0), (op.I32_CONST, 2), (op.I32_EQ,), (op.I32_OR,)],
                self.add_written(spec.out) if g is not None and spec.out is not None else self.add_sum(L.OUTPUT),
            )  # fmt: skip
        elif spec.name in ("path_open", "sock_accept", "fd_close"):
            delta = -1 if spec.name == "fd_close" else 1
            out += [
                (op.I32_CONST, 0), *self.ld64(L.OPEN), (op.I64_CONST, delta), (op.I64_ADD,), (op.LOCAL_TEE, self.res),
                (op.I64_STORE, 3, L.OPEN, a),
            ]  # fmt: skip
            if delta > 0:
                out += self.if_(
                    [(op.LOCAL_GET, self.res), *self.ld64(L.OPEN_PEAK), (op.I64_GT_S,)],
                    [
                        (op.I32_CONST, 0),
                        (op.LOCAL_GET, self.res),
                        (op.I64_STORE, 3, L.OPEN_PEAK, a),
                    ],
                )
        if spec.out is not None and spec.out_width and g is not None:
            load: Instruction = (
                (op.I64_LOAD32_U, 2, 0, g) if spec.out_width == 4 else (op.I64_LOAD, 3, 0, g)
            )
            out += self.if_(
                [(op.LOCAL_GET, self.rec)],
                [
                    *self.rec_st64(L.R_RESULT, [(op.LOCAL_GET, spec.out), load]),
                    (op.LOCAL_GET, self.flags), (op.I32_CONST, L.FLAG_RESULT), (op.I32_OR,), (op.LOCAL_SET, self.flags),
                ],
            )  # fmt: skip
        return out

    def code(self) -> list[Instruction]:
        a, k = self.a, self.k
        cnt = self.counters + 8 * k
        n = len(self.ft.params)
        returns_errno = self.ft.results == (I32,)
        nbytes_flag = self.spec is not None and (
            self.spec.name == "random_get" or (self.spec.iovec is not None and self.g is not None)
        )
        out: list[Instruction] = [
            # counter[k] += 1; tmp = calls += 1
            (op.I32_CONST, 0), *self.ld64(cnt), (op.I64_CONST, 1), (op.I64_ADD,), (op.I64_STORE, 3, cnt, a),
            (op.I32_CONST, 0), *self.ld64(L.CALLS), (op.I64_CONST, 1), (op.I64_ADD,), (op.LOCAL_TEE, self.tmp),
            (op.I64_STORE, 3, L.CALLS, a),
            (op.I32_CONST, 0), (op.I32_LOAD8_U, 0, self.actions + k, a), (op.LOCAL_SET, self.act),
            (op.LOCAL_GET, self.tmp), *self.ld64(L.LIMITS), (op.I64_GT_U,), (op.LOCAL_SET, self.over),
            *self.nbytes(),
            *self.budgets(),
            *self.ld32(L.MODE), (op.LOCAL_SET, self.mode),
            (op.I32_CONST, L.FLAG_NBYTES if nbytes_flag else 0), (op.LOCAL_SET, self.flags),
        ]  # fmt: skip
        out += self.if_(
            [(op.LOCAL_GET, self.over)],
            [
                *self.ld32(L.OVER_ACTION), (op.LOCAL_SET, self.act),
                (op.LOCAL_GET, self.flags), (op.I32_CONST, L.FLAG_OVER), (op.I32_OR,), (op.LOCAL_SET, self.flags),
            ],
        )  # fmt: skip
        # a record when recording, or for CHECK
        out += self.if_(
            [
                (op.LOCAL_GET, self.mode),
                (op.I32_CONST, L.MODE_RECORD),
                (op.I32_AND,),
                (op.LOCAL_GET, self.act),
                (op.I32_CONST, 3),
                (op.I32_EQ,),
                (op.I32_OR,),
            ],
            [*self.slot(), *self.fill()],
        )
        # CHECK: ask the host, whose answer is the action
        out += self.if_(
            [(op.LOCAL_GET, self.act), (op.I32_CONST, 3), (op.I32_EQ,)],
            [
                (op.LOCAL_GET, self.rec), (op.I32_CONST, k), (op.I32_CONST, 0),
                (op.CALL_INDIRECT, self.check_type, self.check_table),
                (op.LOCAL_SET, self.act),  # the host's answer: 0 (ALLOW), 1 (DENY) or 2 (KILL)
            ],
        )  # fmt: skip
        # KILL
        out += self.if_(
            [(op.LOCAL_GET, self.act), (op.I32_CONST, 2), (op.I32_EQ,)],
            [
                (op.I32_CONST, 0), (op.I32_CONST, k + 1), (op.I32_STORE, 2, L.KILLED, a),
                *self.if_(
                    [(op.LOCAL_GET, self.rec)],
                    self.rec_st32(L.R_FLAGS, [(op.LOCAL_GET, self.flags), (op.I32_CONST, L.FLAG_KILLED), (op.I32_OR,)]),
                ),
                (op.UNREACHABLE,),
            ],
        )  # fmt: skip
        deny = [
            (op.LOCAL_GET, self.flags),
            (op.I32_CONST, L.FLAG_DENIED),
            (op.I32_OR,),
            (op.LOCAL_SET, self.flags),
        ]
        if returns_errno:
            deny += [*self.ld32(L.DENY_ERRNO), (op.LOCAL_SET, self.err)]
            deny += [
                (op.LOCAL_GET, self.flags),
                (op.I32_CONST, L.FLAG_ERRNO),
                (op.I32_OR,),
                (op.LOCAL_SET, self.flags),
            ]
        before, after = self.timed()
        call: list[Instruction] = [
            *self.clamp_sleep(),
            *before,
            *((op.LOCAL_GET, p) for p in range(n)),
            (op.CALL, self.imp),
        ]
        if returns_errno:
            call += [(op.LOCAL_SET, self.err), *after]
            call += [
                (op.LOCAL_GET, self.flags),
                (op.I32_CONST, L.FLAG_ERRNO),
                (op.I32_OR,),
                (op.LOCAL_SET, self.flags),
            ]
            success = self.after_success()
            if success:
                call += self.if_([(op.LOCAL_GET, self.err), (op.I32_EQZ,)], success)
        elif self.ft.results:
            # not a preview 1 shape: pass the results through, nothing recorded after
            done = self.rec_st32(
                L.R_FLAGS, [(op.LOCAL_GET, self.flags), (op.I32_CONST, L.FLAG_DONE), (op.I32_OR,)]
            )
            return [
                *out,
                *self.if_(
                    [(op.LOCAL_GET, self.act), (op.I32_CONST, 1), (op.I32_EQ,)],
                    [
                        *self.if_(
                            [(op.LOCAL_GET, self.rec)],
                            self.rec_st32(
                                L.R_FLAGS,
                                [
                                    (op.LOCAL_GET, self.flags),
                                    (op.I32_CONST, L.FLAG_DONE | L.FLAG_DENIED),
                                    (op.I32_OR,),
                                ],
                            ),
                        ),
                        *self.results_of_denial(),
                        (op.RETURN,),
                    ],
                ),
                *self.if_([(op.LOCAL_GET, self.rec)], done),
                *((op.LOCAL_GET, p) for p in range(n)),
                (op.CALL, self.imp),
                (op.END,),
            ]
        else:
            call += after
        out += self.if_([(op.LOCAL_GET, self.act), (op.I32_CONST, 1), (op.I32_EQ,)], deny, call)
        # finish the record
        fin: list[Instruction] = []
        if returns_errno:
            fin += self.rec_st32(L.R_ERRNO, [(op.LOCAL_GET, self.err)])
        fin += self.rec_st32(
            L.R_FLAGS, [(op.LOCAL_GET, self.flags), (op.I32_CONST, L.FLAG_DONE), (op.I32_OR,)]
        )
        out += self.if_([(op.LOCAL_GET, self.rec)], fin)
        if returns_errno:
            out.append((op.LOCAL_GET, self.err))
        out.append((op.END,))
        return out


def audit(data: bytes, *, path_capacity: int = 256) -> Audited:
    """Route every direct call of a preview 1 import through an audit thunk (see the
    module docstring). ``path_capacity``: path bytes a record holds (a multiple of 8).

    Raises :class:`UsageError` for a component, a bad ``path_capacity`` or a module
    already audited; :class:`DecodeError` for a malformed module. The result
    validates wherever the input does (given multi-memory and reference types)."""
    if (
        not isinstance(path_capacity, int)
        or path_capacity < 8
        or path_capacity % 8
        or path_capacity > 1 << 16
    ):
        raise UsageError(
            f"path_capacity must be a multiple of 8 from 8 to 65536, not {path_capacity!r}"
        )
    if bytes(data[4:8]) == _COMPONENT_VERSION:
        raise UsageError("the audit takes a core module, not a component")
    m = Module(data)
    if any(e.name == AUDIT_EXPORT for e in m.exports):
        raise UsageError(f"the module already exports {AUDIT_EXPORT!r}: is it audited already?")
    imported = m.imported(ExternKind.FUNC)
    wasi = {i: imp for i, imp in enumerate(imported) if imp.module in MODULES}
    if not wasi:
        return Audited(bytes(data), None)
    n_imported = len(imported)
    code = m.code
    if len(m.functions) != len(code):
        raise DecodeError("function and code section have inconsistent lengths", m.offset)
    n_functions = n_imported + len(code)

    # Which audited imports are called directly, in order of first use.
    order: dict[int, int] = {}
    bodies: list[tuple[FunctionBody, list[tuple[int, ValType]], list[Instruction]]] = []
    for body in code:
        locals_, instrs = body.decode()
        hit = False
        for ins in instrs:
            c = ins[0]
            if (c == op.CALL or c == op.RETURN_CALL) and ins[1] in wasi:
                order.setdefault(ins[1], len(order))
                hit = True
        if hit:
            bodies.append((body, locals_, instrs))
    if not order:
        return Audited(bytes(data), None)

    types = m.types

    def functype(typeidx: int) -> FuncType:
        comp = types[typeidx].comp if typeidx < len(types) else None
        if not isinstance(comp, FuncType):
            raise DecodeError(f"type {typeidx} is not a function type", m.offset)
        return comp

    mems = m.memory_types()
    if len(mems) >= MAX_MEMORIES:
        raise UsageError(
            f"the module has {len(mems)} memories: wasmtime takes at most {MAX_MEMORIES}"
        )
    mem = len(mems)
    guest = _guest_memory(m)
    if guest is not None and mems[guest].limits.shared:
        guest_for_clock = None
    else:
        guest_for_clock = guest
    clock: int | None = None
    spec_clock = PREVIEW1["clock_time_get"]
    for i, imp in wasi.items():
        if imp.name == "clock_time_get" and isinstance(imp.type, int):
            ft = functype(imp.type)
            if ft.params == spec_clock.types and ft.results == spec_clock.results:
                clock = i
                break
    timing = clock is not None and guest_for_clock is not None

    funcs: list[AuditedFunc] = []
    specs: list[tuple[int, FuncType, WasiFunc | None, int]] = []
    for imp_idx, _k in sorted(order.items(), key=lambda kv: kv[1]):
        imp = wasi[imp_idx]
        assert isinstance(imp.type, int)
        ft = functype(imp.type)
        spec = PREVIEW1.get(imp.name)
        if spec is not None and (ft.params != spec.types or ft.results != spec.results):
            spec = None
        params = (
            spec.params if spec is not None else tuple(f"arg{i}" for i in range(len(ft.params)))
        )
        funcs.append(AuditedFunc(imp.name, imp.module, imp_idx, params[:MAX_ARGS], spec is not None and spec.path is not None, spec is not None))  # fmt: skip
        specs.append((imp_idx, ft, spec, imp.type))

    record_size = L.R_PATH + path_capacity
    actions_offset = L.SCRATCH + record_size
    counters_offset = -(-(actions_offset + len(funcs)) // 8) * 8
    ring_offset = -(-(counters_offset + 8 * len(funcs)) // 64) * 64
    pages = -(-(ring_offset + MIN_RING * record_size) // PAGE)
    m.memories.append(MemoryType(Limits(pages, None)))
    m.exports.append(Export(AUDIT_EXPORT, ExternKind.MEMORY, mem))

    table = len(m.table_types())
    m.tables.append(Table(TableType(FUNCREF, Limits(1, 1))))
    m.exports.append(Export(CHECK_EXPORT, ExternKind.TABLE, table))
    check_type = len(types)
    m.rec_groups.append(RecGroup([SubType(FuncType((I32, I32), (I32,)))]))
    sp = _stack_pointer(m)
    if sp is not None:
        m.exports.append(Export(STACK_POINTER_EXPORT, ExternKind.GLOBAL, sp))

    thunk_of = {imp_idx: n_functions + k for imp_idx, k in order.items()}
    for body, locals_, instrs in bodies:
        new: list[Instruction] = []
        for ins in instrs:
            c = ins[0]
            if (c == op.CALL or c == op.RETURN_CALL) and ins[1] in thunk_of:
                new.append((c, thunk_of[ins[1]]))
            else:
                new.append(ins)
        body.replace(locals_, new)

    offsets = (mem, actions_offset, counters_offset, ring_offset)
    for k, (imp_idx, ft, spec, typeidx) in enumerate(specs):
        t = _Thunk(
            k,
            imp_idx,
            ft,
            spec,
            offsets,
            record_size,
            guest,
            clock if timing else None,
            (check_type, table),
        )
        m.functions.append(typeidx)
        code.append(FunctionBody.new(t.locals(), t.code()))

    layout = AuditLayout(
        funcs=tuple(funcs),
        path_capacity=path_capacity,
        record_size=record_size,
        actions_offset=actions_offset,
        counters_offset=counters_offset,
        ring_offset=ring_offset,
        pages=pages,
        memory_index=mem,
        timing=timing,
        version=AUDIT_PASS_VERSION,
        thunks={t: imp for imp, t in thunk_of.items()},
        stack_pointer=sp is not None,
    )
    return Audited(m.encode(), layout)


def _stack_pointer(m: Module) -> int | None:
    """The global that holds the C stack pointer: the one the name section calls
    ``__stack_pointer``, else the first defined global when it is a mutable i32 (where
    wasm-ld puts it). None when neither is a mutable i32."""
    imported = m.imported(ExternKind.GLOBAL)
    types = [g.type for g in imported] + [g.type for g in m.globals]
    index: int | None = len(imported) if len(types) > len(imported) else None
    for sec in m.custom_sections("name"):
        try:
            names = decode_name(m.data, sec.content_start, sec.end).globals
        except DecodeError:
            break
        index = next((i for i, n in names.items() if n == "__stack_pointer"), index)
        break
    if index is None or index >= len(types):
        return None
    t = types[index]
    return index if isinstance(t, GlobalType) and t.mutable and t.valtype == I32 else None
