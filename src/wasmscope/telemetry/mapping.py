"""From an :class:`InvocationRecord` to OpenTelemetry attributes, statuses and log lines.

Pure functions over plain data (no OpenTelemetry import), so that the mapping is
tested on its own and shared by every exporter and by later signal paths
(Prometheus exposition, the profiler's function spans).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope.runtime.record import Outcome
from wasmscope.telemetry import semconv as sc

if TYPE_CHECKING:
    from wasmscope.runtime.record import Frame, InvocationRecord, TrapInfo

__all__ = [
    "AttributeValue",
    "Attributes",
    "Failure",
    "GuestLines",
    "clean_attributes",
    "failure",
    "format_frame",
    "format_stacktrace",
    "guest_lines",
    "init_seconds",
    "invoke_seconds",
    "metric_attributes",
    "span_attributes",
    "span_name",
]

AttributeValue = (
    str
    | bool
    | int
    | float
    | tuple[str, ...]
    | tuple[bool, ...]
    | tuple[int, ...]
    | tuple[float, ...]
)
Attributes = dict[str, AttributeValue]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
INIT_PHASES = ("load", "compile", "instantiate")


def _clean_value(value: Any) -> AttributeValue | None:
    """An OpenTelemetry attribute value, or None to leave the attribute out."""
    if value is None:
        return None
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        if not items:
            return ()
        for kind in (bool, str, float):
            if all(type(v) is kind for v in items):
                return tuple(items)
        if all(type(v) is int and _INT64_MIN <= v <= _INT64_MAX for v in items):
            return tuple(items)
        return json.dumps(items, default=str, separators=(",", ":"))
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)
    return str(value)


def clean_attributes(attributes: Mapping[str, Any]) -> Attributes:
    """Caller-provided attributes made valid for OpenTelemetry: ``None`` dropped,
    big ints and odd types as strings, mixed lists and dicts as compact JSON."""
    out: Attributes = {}
    for key, value in attributes.items():
        clean = _clean_value(value)
        if clean is not None:
            out[str(key)] = clean
    return out


def span_name(record: InvocationRecord) -> str:
    """The invocation span's name: the function's name (FaaS spans: span name = faas.name)."""
    return record.module.name or record.module.sha256[:12] or "wasm"


def span_attributes(record: InvocationRecord, trigger: str = sc.TRIGGER_OTHER) -> Attributes:
    """Attributes of the invocation span (see :mod:`wasmscope.telemetry.semconv`)."""
    m = record.module
    a: Attributes = {
        sc.FAAS_TRIGGER: trigger,
        sc.FAAS_INVOCATION_ID: record.invocation_id,
        sc.FAAS_COLDSTART: bool(record.cold_start),
        sc.FAAS_NAME: span_name(record),
        sc.WASM_MODULE_SHA256: m.sha256,
        sc.WASM_MODULE_NAME: m.name,
        sc.WASM_MODULE_SIZE: m.size,
        sc.WASM_MODULE_KIND: m.kind,
        sc.WASM_ENTRY: record.entry,
        sc.WASM_OUTCOME: record.outcome,
        sc.WASM_CACHE: record.cache,
        sc.WASM_STDOUT_BYTES: record.stdout_bytes,
        sc.WASM_STDERR_BYTES: record.stderr_bytes,
    }
    optional: dict[str, Any] = {
        sc.FAAS_MAX_MEMORY: record.memory_limit,
        sc.WASM_EXIT_CODE: record.exit_code,
        sc.WASM_FUEL_CONSUMED: record.fuel_consumed,
        sc.WASM_FUEL_LIMIT: record.fuel_limit,
        sc.WASM_MEMORY_PEAK: record.peak_memory,
        sc.WASM_MEMORY_GROW_COUNT: record.memory_grow_count,
        sc.WASM_TIMEOUT: float(record.timeout) if record.timeout is not None else None,
        sc.WASM_CPU_TIME: record.cpu_seconds,
    }
    if record.stdout_truncated:
        optional[sc.WASM_STDOUT_TRUNCATED] = True
    if record.stderr_truncated:
        optional[sc.WASM_STDERR_TRUNCATED] = True
    if record.call_counts is not None:
        optional[sc.WASM_CALLS_TOTAL] = sum(record.call_counts.values())
        optional[sc.WASM_CALLS_TOP] = _clean_value(
            dict(sorted(record.call_counts.items(), key=lambda kv: -kv[1])[:10])
        )
    if record.host_calls is not None:
        optional[sc.WASM_HOST_CALLS_TOTAL] = sum(record.host_calls.values())
        optional[sc.WASM_HOST_CALLS] = _clean_value(
            dict(sorted(record.host_calls.items(), key=lambda kv: -kv[1])[:20])
        )
    if record.trap is not None:
        optional[sc.WASM_TRAP_CODE] = record.trap.kind
        if record.trap.frames_truncated:
            optional[sc.WASM_TRAP_FRAMES_TRUNCATED] = True
    for key, value in optional.items():
        if value is not None:
            a[key] = value
    fail = failure(record)
    if fail is not None:
        a[sc.ERROR_TYPE] = fail.error_type
    # Caller-provided extras never override the conventions above.
    for key, value in clean_attributes(record.attributes).items():
        a.setdefault(key, value)
    return a


def metric_attributes(record: InvocationRecord, trigger: str = sc.TRIGGER_OTHER) -> Attributes:
    """Low-cardinality attributes shared by every metric point of one invocation."""
    return {
        sc.FAAS_TRIGGER: trigger,
        sc.FAAS_NAME: span_name(record),
        sc.WASM_OUTCOME: record.outcome,
    }


def invoke_seconds(record: InvocationRecord) -> float:
    """The function's logic execution: the execute phase, else the whole invocation."""
    seconds = record.seconds("execute")
    return seconds if seconds is not None else max(record.duration_seconds, 0.0)


def init_seconds(record: InvocationRecord) -> float | None:
    """Initialization: load + compile + instantiate phases, None when none was timed."""
    parts = [s for s in (record.seconds(name) for name in INIT_PHASES) if s is not None]
    return sum(parts) if parts else None


# --- failures --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Failure:
    """How a failed invocation is told: span status, ``error.type`` and the exception event."""

    error_type: str  # low cardinality: the trap code, else the outcome
    description: str  # span status description
    exception: Attributes = field(default_factory=dict)  # exception event attributes


def format_frame(frame: Frame) -> str:
    """``name (func 12, @0x1a2b) src/main.c:10:5``: one guest frame on one line."""
    name = frame.func_name or (
        f"func[{frame.func_index}]" if frame.func_index is not None else "<unknown>"
    )
    where: list[str] = []
    if frame.func_index is not None:
        where.append(f"func {frame.func_index}")
    if frame.module_offset is not None:
        where.append(f"@{frame.module_offset:#x}")
    text = f"{name} ({', '.join(where)})" if where else name
    if frame.file:
        loc = frame.file
        if frame.line is not None:
            loc += f":{frame.line}"
            if frame.column:
                loc += f":{frame.column}"
        text += f" {loc}"
    return text


STACKTRACE_INNER = 96  # frames of exception.stacktrace kept innermost ...
STACKTRACE_OUTER = 32  # ... and outermost: a stack overflow has tens of thousands


def format_stacktrace(trap: TrapInfo) -> str:
    """The trap as a stack trace: its message, then ``    at <frame>`` innermost first;
    past ``STACKTRACE_INNER + STACKTRACE_OUTER`` frames the middle ones are left out
    (one line says how many): the record keeps them all."""
    lines = [trap.message or f"wasm trap: {trap.kind}"]
    frames = trap.frames
    if len(frames) > STACKTRACE_INNER + STACKTRACE_OUTER:
        lines += [f"    at {format_frame(f)}" for f in frames[:STACKTRACE_INNER]]
        lines.append(
            f"    ... {len(frames) - STACKTRACE_INNER - STACKTRACE_OUTER} frames left out ..."
        )
        lines += [f"    at {format_frame(f)}" for f in frames[-STACKTRACE_OUTER:]]
    else:
        lines += [f"    at {format_frame(f)}" for f in frames]
    if trap.frames_truncated:
        lines.append("    ... (outer frames not captured)")
    return "\n".join(lines)


def _code_attributes(frame: Frame) -> Attributes:
    out: Attributes = {}
    name = frame.func_name or (
        f"func[{frame.func_index}]" if frame.func_index is not None else None
    )
    if name:
        out[sc.CODE_FUNCTION_NAME] = name
    if frame.file:
        out[sc.CODE_FILE_PATH] = frame.file
    if frame.line is not None:
        out[sc.CODE_LINE_NUMBER] = frame.line
    if frame.column is not None:
        out[sc.CODE_COLUMN_NUMBER] = frame.column
    return out


def failure(record: InvocationRecord) -> Failure | None:
    """None for a successful invocation; otherwise how to report the failure."""
    if not record.failed:
        return None
    outcome = record.outcome
    trap = record.trap
    error_type = (
        trap.kind if (outcome == Outcome.TRAP and trap is not None and trap.kind) else outcome
    )
    if trap is not None and trap.message:
        description = trap.message
    elif record.error:
        description = record.error
    elif outcome == Outcome.EXIT:
        description = f"exit code {record.exit_code}"
    elif outcome == Outcome.TIMEOUT and record.timeout is not None:
        description = f"timed out after {record.timeout:g} s"
    else:
        description = outcome.replace("_", " ")
    exception: Attributes = {sc.EXCEPTION_TYPE: error_type, sc.EXCEPTION_MESSAGE: description}
    if trap is not None:
        exception[sc.EXCEPTION_STACKTRACE] = format_stacktrace(trap)
        if trap.frames:
            exception.update(_code_attributes(trap.frames[0]))
    return Failure(error_type=error_type, description=description, exception=exception)


# --- guest output ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GuestLines:
    """The lines of one output stream that become log records, within the bounds."""

    stream: str  # "stdout" | "stderr"
    lines: list[str]
    dropped_lines: int = 0  # lines past the bounds (not exported)
    dropped_bytes: int = 0
    capped: bool = False  # the runtime's own output cap was hit before us

    @property
    def truncated(self) -> bool:
        return self.dropped_lines > 0 or self.capped

    def truncation_notice(self, base: Mapping[str, AttributeValue]) -> tuple[str, Attributes]:
        """The body and attributes of the record that says what was not exported."""
        parts = []
        if self.dropped_lines:
            parts.append(
                f"{self.dropped_lines} more lines ({self.dropped_bytes} bytes) not exported"
            )
        if self.capped:
            parts.append("the runtime's output cap was reached")
        attrs: Attributes = {
            **base,
            sc.WASM_LOG_TRUNCATED: True,
            sc.WASM_LOG_DROPPED_LINES: self.dropped_lines,
            sc.WASM_LOG_DROPPED_BYTES: self.dropped_bytes,
        }
        return f"[{self.stream} truncated: {'; '.join(parts)}]", attrs


def guest_lines(
    stream: str,
    data: bytes,
    *,
    max_lines: int,
    max_bytes: int,
    max_line_bytes: int = 16384,
    capped: bool = False,
    sanitize: bool = False,
) -> GuestLines:
    """Split ``data`` on newlines (a trailing newline ends the last line; ``\\r\\n`` is
    one newline), decode as UTF-8 with replacement, and keep at most ``max_lines``
    lines and ``max_bytes`` bytes; a longer single line is cut at ``max_line_bytes``.
    ``sanitize``: terminal escapes and control characters made visible
    (:func:`wasmscope.guard.sanitize.neutralize`)."""
    if not data:
        return GuestLines(stream, [], capped=capped)
    if sanitize:
        g = guest_lines(stream, data, max_lines=max_lines, max_bytes=max_bytes, max_line_bytes=max_line_bytes,
                        capped=capped)  # fmt: skip
        from wasmscope.guard.sanitize import neutralize

        return GuestLines(stream, [neutralize(x) for x in g.lines], g.dropped_lines, g.dropped_bytes, capped)
    raw: Sequence[bytes] = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw = raw[:-1]
    kept: list[str] = []
    used = 0
    for i, line in enumerate(raw):
        size = len(line) + 1
        if len(kept) >= max_lines or used + min(size, max_line_bytes) > max_bytes:
            rest = raw[i:]
            return GuestLines(
                stream,
                kept,
                dropped_lines=len(rest),
                dropped_bytes=sum(len(r) + 1 for r in rest),
                capped=capped,
            )
        used += min(size, max_line_bytes)
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > max_line_bytes:
            kept.append(line[:max_line_bytes].decode("utf-8", errors="replace") + " [...]")
        else:
            kept.append(line.decode("utf-8", errors="replace"))
    return GuestLines(stream, kept, capped=capped)


def iter_phases(record: InvocationRecord) -> Iterable[tuple[str, int, int, Attributes]]:
    """``(name, start_ns, end_ns, attributes)`` of each phase, for the child spans."""
    for p in record.phases:
        attrs: Attributes = {sc.WASM_PHASE: p.name}
        for key, value in clean_attributes(p.attributes).items():
            attrs.setdefault(key, value)
        yield p.name, p.start_ns, max(p.end_ns, p.start_ns), attrs
