"""The layout of the audit memory: where an audited module keeps its host-call
counters, budgets, action table and record ring (see
:mod:`wasmscope.instrument.wasi_audit`), and how a host reads one record.

One 32-bit memory of its own, exported as ``wasmscope:audit``, little-endian::

    0    u64 head          records written (the ring slot is head & mask)
    8    u64 tail          records the host has read (the host writes it)
    16   u64 dropped       records the ring had no room for (exact)
    24   u32 mask          ring capacity - 1 (host; 0 until the host sets a ring)
    28   u32 mode          bit 0: record, bit 1: time the calls (host)
    32   u32 deny_errno    (host)
    36   u32 over_action   the Action of a call over a budget (host)
    40   u32 max_path      path bytes copied per record, <= path_capacity (host)
    44   u32 killed        1 + the audited function a KILL trapped in, else 0
    48   u64 calls         host calls (every call a thunk saw; also each record's seq)
    56   u64 random_bytes  random_get bytes of successful calls
    64   u64 output_bytes  bytes fd_write/fd_pwrite wrote to fds 1 and 2
    72   i64 open_fds      successful path_open/sock_accept minus fd_close
    80   i64 open_fds_peak
    88   u64 limit[4]      calls, random_bytes, output_bytes, open_fds (host; all ones: none)
    120  u64 max_sleep_ns  a poll_oneoff clock wait longer than it is cut to it (host; 0: none)
    128  scratch record    (a CHECK call's record when the ring takes none)
    actions_offset   u8 action[n]       per audited function (host)
    counters_offset  u64 counter[n]     calls per audited function
    ring_offset      record[mask + 1]   of record_size bytes each

A record::

    0  u32 func (audited function index)   4  u32 flags (FLAG_*)
    8  u32 errno                           12 u32 path_len (as the guest passed it)
    16 u64 seq                             24 u64 result
    32 u64 duration_ns                     40 u64 nbytes
    48 u32 path bytes copied               52 u32 (zero)
    56 u64 args[MAX_ARGS]                  128 path bytes[path_capacity]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "AUDIT_EXPORT",
    "CHECK_EXPORT",
    "FLAG_DENIED",
    "FLAG_DONE",
    "FLAG_DURATION",
    "FLAG_ERRNO",
    "FLAG_KILLED",
    "FLAG_NBYTES",
    "FLAG_OVER",
    "FLAG_RESULT",
    "MAX_ARGS",
    "STACK_POINTER_EXPORT",
    "AuditLayout",
    "AuditedFunc",
]

AUDIT_EXPORT = "wasmscope:audit"
CHECK_EXPORT = "wasmscope:audit_check"  # a funcref table of one: the host's CHECK function
# The C stack pointer (wasm-ld's ``__stack_pointer``) re-exported: after a bounds trap the
# host reads it to tell a stack that ran below address 0 from a stray pointer.
STACK_POINTER_EXPORT = "wasmscope:stack_pointer"

HEAD, TAIL, DROPPED, MASK, MODE = 0, 8, 16, 24, 28
DENY_ERRNO, OVER_ACTION, MAX_PATH, KILLED = 32, 36, 40, 44
CALLS, RANDOM, OUTPUT, OPEN, OPEN_PEAK = 48, 56, 64, 72, 80
LIMITS = 88  # four u64: calls, random, output, open
MAX_SLEEP = 120
SCRATCH = 128

MODE_RECORD = 1
MODE_TIMING = 2

# record fields
R_FUNC, R_FLAGS, R_ERRNO, R_PATH_LEN, R_SEQ, R_RESULT, R_DURATION, R_NBYTES, R_COPIED = (
    0, 4, 8, 12, 16, 24, 32, 40, 48,
)  # fmt: skip
R_ARGS = 56
MAX_ARGS = 9  # path_open has the most parameters of any preview 1 function
R_PATH = R_ARGS + 8 * MAX_ARGS  # 128

FLAG_DONE = 1  # the call returned (a record without it trapped, exited or is running)
FLAG_DENIED = 2
FLAG_OVER = 4
FLAG_KILLED = 8
FLAG_ERRNO = 16
FLAG_RESULT = 32
FLAG_DURATION = 64
FLAG_NBYTES = 128


@dataclass(frozen=True)
class AuditedFunc:
    """One audited import: its preview 1 name, the import module it came from, its
    function index, and its parameter names (generic ``argN`` when its type is not
    the one the spec gives)."""

    name: str
    module: str
    import_index: int
    params: tuple[str, ...]
    has_path: bool = False
    decoded: bool = True  # False: the type differs from the spec, nothing decoded


@dataclass(frozen=True)
class AuditLayout:
    """Where things are in the audit memory of one audited module."""

    funcs: tuple[AuditedFunc, ...]
    path_capacity: int
    record_size: int
    actions_offset: int
    counters_offset: int
    ring_offset: int
    pages: int  # initial size of the memory (the host grows it for its ring)
    memory_index: int
    timing: bool  # the thunks can time calls (the module imports clock_time_get)
    version: int
    thunks: dict[int, int] = field(default_factory=dict)  # thunk function index -> import index
    stack_pointer: bool = False  # STACK_POINTER_EXPORT is there

    @property
    def memory_export(self) -> str:
        return AUDIT_EXPORT

    def ring_bytes(self, records: int) -> int:
        """The memory size a ring of ``records`` needs."""
        return self.ring_offset + records * self.record_size

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["thunks"] = {str(k): v for k, v in self.thunks.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditLayout:
        funcs = tuple(AuditedFunc(**{**f, "params": tuple(f["params"])}) for f in d["funcs"])
        thunks = {int(k): int(v) for k, v in d.get("thunks", {}).items()}
        rest = {k: v for k, v in d.items() if k not in ("funcs", "thunks")}
        return cls(funcs=funcs, thunks=thunks, **rest)
