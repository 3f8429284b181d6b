"""The invocation record: everything observed about one run of a guest.

This is the contract between the runtime (which fills it), the telemetry
exporters (which ship it) and the CLI (which prints it). Plain dataclasses,
no wasmtime types, so exporters and reports never import the runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.runtime.host_calls import AuditLog

__all__ = ["AUDIT_CALLS_IN_JSON", "CALLS_IN_JSON", "Frame", "InvocationRecord", "ModuleIdentity", "Outcome", "Phase", "TrapInfo"]

CALLS_IN_JSON = 50  # most-called functions kept in the JSON of a record
AUDIT_CALLS_IN_JSON = 100  # first audited host calls kept in the JSON of a record


class Outcome:
    """How an invocation ended; exactly one applies."""

    OK = "ok"  # returned normally (or exit code 0)
    EXIT = "exit"  # proc_exit / wasi:cli/exit with a non-zero code
    TRAP = "trap"  # a Wasm trap (unreachable, out of bounds, ...)
    TIMEOUT = "timeout"  # stopped at the wall-clock limit (epoch interruption)
    OUT_OF_FUEL = "out_of_fuel"
    OUT_OF_MEMORY = "out_of_memory"  # memory.grow refused at the memory limit, then a trap
    STACK_OVERFLOW = "stack_overflow"
    OUTPUT_LIMIT = "output_limit"  # stopped for writing more than the output cap
    ERROR = "error"  # could not start: link error, bad module, host failure

    ALL = (OK, EXIT, TRAP, TIMEOUT, OUT_OF_FUEL, OUT_OF_MEMORY, STACK_OVERFLOW, OUTPUT_LIMIT, ERROR)


@dataclass(slots=True)
class ModuleIdentity:
    sha256: str
    name: str  # file name, or the name section's module name
    size: int
    kind: str = "module"  # "module" or "component"
    path: str | None = None
    producers: dict[str, list[str]] = field(default_factory=dict)  # field -> ["name version", ...]


@dataclass(slots=True)
class Frame:
    """One guest frame, innermost first."""

    func_index: int | None
    func_name: str | None
    module_offset: int | None  # byte offset in the module (code-section-relative offsets are converted)
    file: str | None = None  # from DWARF .debug_line, when present
    line: int | None = None
    column: int | None = None


@dataclass(slots=True)
class TrapInfo:
    kind: str  # e.g. "unreachable", "memory_out_of_bounds", "stack_overflow", "interrupt", "out_of_fuel"
    message: str
    frames: list[Frame] = field(default_factory=list)
    frames_truncated: bool = False  # wasmtime keeps only the innermost frames


@dataclass(slots=True)
class Phase:
    """A timed step; becomes a child span."""

    name: str  # "load", "compile", "instantiate", "execute"
    start_ns: int  # unix epoch nanoseconds
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(slots=True)
class InvocationRecord:
    invocation_id: str
    module: ModuleIdentity
    entry: str  # "_start", "wasi:cli/run#run", or the invoked export
    args: list[str] = field(default_factory=list)
    start_ns: int = 0  # unix epoch nanoseconds
    end_ns: int = 0
    cold_start: bool = True  # compiled in this invocation (no cached code)
    cache: str = "none"  # "memory", "disk", "miss" or "none" (caching off)
    phases: list[Phase] = field(default_factory=list)
    cpu_seconds: float | None = None  # CPU time of the thread that ran the guest
    fuel_limit: int | None = None
    fuel_consumed: int | None = None
    memory_limit: int | None = None  # bytes
    peak_memory: int | None = None  # bytes, largest linear memory size seen (all memories)
    memory_grow_count: int | None = None
    timeout: float | None = None  # seconds
    outcome: str = Outcome.OK
    exit_code: int | None = None
    trap: TrapInfo | None = None
    error: str | None = None  # for Outcome.ERROR: one line
    results: list[Any] | None = None  # values returned by --invoke
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)  # extra, caller-provided
    # Instrumented runs (``instrument=True``, ``wasmscope profile``): exact calls per
    # function (name -> count, most called first) and per imported function
    # ("module.name" -> count); None otherwise. The JSON keeps the top CALLS_IN_JSON.
    call_counts: dict[str, int] | None = None
    host_calls: dict[str, int] | None = None
    # Audited runs (``RunOptions.audit``, core modules): every WASI call the guest made;
    # None otherwise. The JSON keeps the counts, totals, drops and the first
    # AUDIT_CALLS_IN_JSON calls (absent from the JSON when None).
    audit: AuditLog | None = None
    # What the guest wrote (up to the cap); not part of the JSON record.
    stdout: bytes = field(default=b"", repr=False)
    stderr: bytes = field(default=b"", repr=False)

    def phase(self, name: str) -> Phase | None:
        for p in self.phases:
            if p.name == name:
                return p
        return None

    def seconds(self, name: str) -> float | None:
        p = self.phase(name)
        return p.seconds if p else None

    @property
    def duration_seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def failed(self) -> bool:
        return self.outcome not in (Outcome.OK,)

    def to_json(self) -> dict[str, Any]:
        audit = self.audit
        out = asdict(self if audit is None else replace(self, audit=None))
        del out["stdout"], out["stderr"], out["audit"]
        if audit is not None:
            out["audit"] = audit_json(audit)
        out["duration_seconds"] = self.duration_seconds
        if self.call_counts is not None and len(self.call_counts) > CALLS_IN_JSON:
            top = sorted(self.call_counts.items(), key=lambda kv: -kv[1])[:CALLS_IN_JSON]
            out["call_counts"] = dict(top)
            out["call_counts_omitted"] = {
                "functions": len(self.call_counts) - CALLS_IN_JSON,
                "calls": sum(self.call_counts.values()) - sum(c for _, c in top),
            }
        return out


def audit_json(log: AuditLog) -> dict[str, Any]:
    """The compact JSON of an audit log: counts, totals, drops, the first calls."""
    recorded = log.recorded
    out: dict[str, Any] = {
        "counts": dict(log.counts),
        "total": log.total,
        "dropped": log.dropped,
        "totals": dict(log.totals),
        "calls": [asdict(c) for c in log.calls_at(range(min(recorded, AUDIT_CALLS_IN_JSON)))],
    }
    if recorded > AUDIT_CALLS_IN_JSON:
        out["calls_omitted"] = recorded - AUDIT_CALLS_IN_JSON
    return out
