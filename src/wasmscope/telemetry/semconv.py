"""Semantic conventions: every attribute and metric name wasmscope emits, once.

Standard OpenTelemetry names are used where one exists (checked against the
OpenTelemetry semantic conventions, FaaS spans and metrics, status
"development"); the ``wasm.*`` names are ours and documented here. Nothing in
this module imports OpenTelemetry: it is plain data, also meant for the
Prometheus exposition (names, units, bucket boundaries) and for the docs.

Invocation span (kind SERVER, name = ``faas.name``)::

    faas.trigger          str   "other" for `wasmscope run`, "http" for `serve`  (Required)
    faas.invocation_id    str   InvocationRecord.invocation_id
    faas.coldstart        bool  compiled in this invocation (no cached code)
    faas.name             str   the module's name; a FaaS *resource* attribute that the
                                spec allows on incoming invocation spans (one wasmscope
                                process runs many functions, so it cannot be a resource)
    faas.max_memory       int   memory limit in bytes (same remark), when a limit is set
    error.type            str   on failure only: the trap code, else the outcome
    wasm.*                      see the constants below

Not used, on purpose: ``faas.invoked_name`` / ``faas.invoked_provider`` describe the
*client* side of a FaaS call (an outgoing span), and ``cloud.*`` describe a cloud
provider: wasmscope is neither. A user running on a cloud adds them to the resource
through ``OTEL_RESOURCE_ATTRIBUTES``.

Child spans (kind INTERNAL) are named after ``InvocationRecord.phases``: ``load``,
``compile``, ``instantiate``, ``execute``, each with ``wasm.phase`` and the phase's
own attributes. A failed invocation gets span status ERROR (description: the trap
message, the error line or "exit code N") and one ``exception`` event carrying
``exception.type`` (the trap code), ``exception.message``, ``exception.stacktrace``
(the guest frames, innermost first) and ``code.*`` of the innermost frame.

Guest output: one log record per stdout/stderr line, severity INFO (stdout) or WARN
(stderr), ``log.iostream`` = "stdout"/"stderr", ``faas.invocation_id``; trace and span
ids of the invocation span.

``wasmscope serve`` (``faas.trigger`` = "http", :mod:`wasmscope.telemetry.direct`): the
invocation is folded into the HTTP server span (kind SERVER, named "GET /route", the
HTTP conventions plus every attribute above; ``error.type`` is the FaaS one on a failed
invocation, else the 5xx status); its children are ``instantiate`` and ``execute``
(``load`` and ``compile`` too on a cold start or when the invocation failed there); only
stderr lines become log records (stdout is the HTTP response).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CODE_COLUMN_NUMBER",
    "CODE_FILE_PATH",
    "CODE_FUNCTION_NAME",
    "CODE_LINE_NUMBER",
    "DURATION_BUCKETS",
    "ERROR_TYPE",
    "EVENT_ACTION",
    "EVENT_CATEGORY",
    "EVENT_INSPECT_REPORT",
    "EVENT_KIND",
    "EVENT_NAME",
    "EVENT_OUTCOME",
    "EVENT_PROFILE",
    "EVENT_TYPE",
    "EXCEPTION_EVENT",
    "EXCEPTION_MESSAGE",
    "EXCEPTION_STACKTRACE",
    "EXCEPTION_TYPE",
    "FAAS_COLDSTART",
    "FAAS_INVOCATION_ID",
    "FAAS_MAX_MEMORY",
    "FAAS_NAME",
    "FAAS_TRIGGER",
    "FILE_PATH",
    "GUARD_RULESET",
    "INSTRUMENTATION_SCOPE",
    "LOG_IOSTREAM",
    "MEMORY_BUCKETS",
    "METRICS",
    "M_FAAS_COLDSTARTS",
    "M_FAAS_CPU_USAGE",
    "M_FAAS_ERRORS",
    "M_FAAS_INIT_DURATION",
    "M_FAAS_INVOCATIONS",
    "M_FAAS_INVOKE_DURATION",
    "M_FAAS_MEM_USAGE",
    "M_FAAS_TIMEOUTS",
    "M_WASM_FUEL_CONSUMED",
    "M_WASM_MEMORY_PEAK",
    "SECURITY_RULE_CATEGORY",
    "SECURITY_RULE_NAME",
    "SECURITY_RULE_RULESET_NAME",
    "SERVICE_INSTANCE_ID",
    "SERVICE_NAME",
    "SERVICE_NAME_DEFAULT",
    "TELEMETRY_DISTRO_NAME",
    "TELEMETRY_DISTRO_VERSION",
    "TRIGGER_HTTP",
    "TRIGGER_OTHER",
    "WASM_CACHE",
    "WASM_CALLS_TOP",
    "WASM_CALLS_TOTAL",
    "WASM_CPU_TIME",
    "WASM_ENTRY",
    "WASM_EXIT_CODE",
    "WASM_FUEL_CONSUMED",
    "WASM_FUEL_LIMIT",
    "WASM_HOST_CALLS",
    "WASM_HOST_CALLS_TOTAL",
    "WASM_HOST_CALL_ARGS",
    "WASM_HOST_CALL_ERRNO",
    "WASM_HOST_CALL_FUNC",
    "WASM_HOST_CALL_PATH",
    "WASM_HOST_CALL_SEQ",
    "WASM_INVOCATION_ID",
    "WASM_LOG_DROPPED_BYTES",
    "WASM_LOG_DROPPED_LINES",
    "WASM_LOG_TRUNCATED",
    "WASM_MEMORY_GROW_COUNT",
    "WASM_MEMORY_PEAK",
    "WASM_MODULE_KIND",
    "WASM_MODULE_NAME",
    "WASM_MODULE_SHA256",
    "WASM_MODULE_SIZE",
    "WASM_OUTCOME",
    "WASM_PHASE",
    "WASM_POLICY_SUGGESTION",
    "WASM_RULE_ID",
    "WASM_STDERR_BYTES",
    "WASM_STDERR_TRUNCATED",
    "WASM_STDOUT_BYTES",
    "WASM_STDOUT_TRUNCATED",
    "WASM_TARGET",
    "WASM_TIMEOUT",
    "WASM_TRAP_CODE",
    "WASM_TRAP_FRAMES_TRUNCATED",
    "MetricSpec",
]

# --- resource ----------------------------------------------------------------------
SERVICE_NAME = "service.name"
SERVICE_NAME_DEFAULT = (
    "wasmscope"  # unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise
)
SERVICE_INSTANCE_ID = (
    "service.instance.id"  # one per process: keeps workers' cumulative metrics apart
)
TELEMETRY_DISTRO_NAME = "telemetry.distro.name"  # "wasmscope"
TELEMETRY_DISTRO_VERSION = "telemetry.distro.version"
INSTRUMENTATION_SCOPE = "wasmscope"  # tracer / meter / logger name

# --- standard attributes (OpenTelemetry semantic conventions) -----------------------
FAAS_TRIGGER = "faas.trigger"
FAAS_INVOCATION_ID = "faas.invocation_id"
FAAS_COLDSTART = "faas.coldstart"
FAAS_NAME = "faas.name"
FAAS_MAX_MEMORY = "faas.max_memory"  # bytes
TRIGGER_OTHER = "other"  # faas.trigger well-known values used here
TRIGGER_HTTP = "http"

ERROR_TYPE = "error.type"
EXCEPTION_EVENT = "exception"  # span event name
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"
CODE_FUNCTION_NAME = "code.function.name"
CODE_FILE_PATH = "code.file.path"
CODE_LINE_NUMBER = "code.line.number"
CODE_COLUMN_NUMBER = "code.column.number"
LOG_IOSTREAM = "log.iostream"  # "stdout" | "stderr"

# --- wasm.* attributes (ours) --------------------------------------------------------
WASM_MODULE_SHA256 = "wasm.module.sha256"  # str, hex digest of the module bytes
WASM_MODULE_NAME = "wasm.module.name"  # str, file name or name-section module name
WASM_MODULE_SIZE = "wasm.module.size"  # int, bytes
WASM_MODULE_KIND = "wasm.module.kind"  # "module" | "component"
WASM_ENTRY = "wasm.entry"  # str, "_start", "wasi:cli/run#run" or the invoked export
WASM_OUTCOME = "wasm.outcome"  # str, one of runtime.record.Outcome
WASM_EXIT_CODE = "wasm.exit_code"  # int, proc_exit / wasi:cli/exit code
WASM_TRAP_CODE = "wasm.trap.code"  # str, TrapInfo.kind ("unreachable", "memory_out_of_bounds", ...)
WASM_TRAP_FRAMES_TRUNCATED = (
    "wasm.trap.frames_truncated"  # bool, wasmtime kept only the innermost frames
)
WASM_FUEL_CONSUMED = "wasm.fuel.consumed"  # int, fuel units
WASM_FUEL_LIMIT = "wasm.fuel.limit"  # int, fuel units
WASM_MEMORY_PEAK = "wasm.memory.peak"  # int, bytes: largest linear memory size seen (all memories)
WASM_MEMORY_GROW_COUNT = "wasm.memory.grow_count"  # int, memory.grow calls
WASM_TIMEOUT = "wasm.timeout"  # double, seconds: the wall-clock limit
WASM_CPU_TIME = "wasm.cpu.time"  # double, seconds of CPU of the thread that ran the guest
WASM_CACHE = "wasm.cache"  # "memory" | "disk" | "miss" | "none"
WASM_STDOUT_BYTES = "wasm.stdout.bytes"  # int, bytes the guest wrote
WASM_STDERR_BYTES = "wasm.stderr.bytes"
WASM_STDOUT_TRUNCATED = "wasm.stdout.truncated"  # bool, the runtime's output cap was hit
WASM_STDERR_TRUNCATED = "wasm.stderr.truncated"
WASM_PHASE = "wasm.phase"  # on child spans: "load" | "compile" | "instantiate" | "execute"
WASM_LOG_TRUNCATED = "wasm.log.truncated"  # bool, on the one record that ends a truncated stream
WASM_LOG_DROPPED_LINES = "wasm.log.dropped_lines"  # int
WASM_LOG_DROPPED_BYTES = "wasm.log.dropped_bytes"  # int
# Instrumented runs (`wasmscope profile`, run(instrument=True)): exact counts from the module's counters.
WASM_CALLS_TOTAL = "wasm.calls.total"  # int, calls of the guest's own functions
WASM_CALLS_TOP = "wasm.calls.top"  # str, JSON {function: calls} of the 10 most called
WASM_HOST_CALLS_TOTAL = "wasm.host_calls.total"  # int, direct calls of imported (host) functions
WASM_HOST_CALLS = "wasm.host_calls"  # str, JSON {"module.name": calls} of the 20 most called


# --- reports pushed to `wasmscope collect` as OTLP log records ------------------------
# `inspect --push URL` and `profile --push URL` send one log record each, its body a
# JSON string, its `event.name` attribute one of these, with the wasm.module.* attributes.
EVENT_NAME = "event.name"
EVENT_INSPECT_REPORT = "wasmscope.inspect.report"  # body: the `inspect --json` report
EVENT_PROFILE = (
    "wasmscope.profile"  # body: {"format": "wasmscope.profile/1", ...} (docs/collect-reports.md)
)


# --- security events (wasmscope.guard.events) -----------------------------------------
# One log record per guard finding: its EventName (LogRecord field 12) and the
# `event.name` attribute are one of guard.findings.EventName; the body is the finding's
# message. `event.kind/category/type/outcome/action` are ECS fields (Elastic Common
# Schema: OpenTelemetry has no names for them); `security_rule.*` is the OpenTelemetry
# registry's (status "development"); `file.path` the standard one.
EVENT_KIND = "event.kind"  # ECS: "alert" (denials, violations, anomalies) or "event"
EVENT_CATEGORY = "event.category"  # ECS: str[], e.g. ["file"], ["intrusion_detection"]
EVENT_TYPE = "event.type"  # ECS: str[], e.g. ["access", "denied"]
EVENT_OUTCOME = "event.outcome"  # ECS: "success" | "failure" | "unknown"
EVENT_ACTION = "event.action"  # ECS: the finding's rule id
SECURITY_RULE_NAME = "security_rule.name"  # the finding's rule id
SECURITY_RULE_CATEGORY = "security_rule.category"  # the finding's capability family
SECURITY_RULE_RULESET_NAME = "security_rule.ruleset.name"  # "wasmscope.guard"
FILE_PATH = "file.path"  # the target of a filesystem finding
WASM_RULE_ID = "wasm.rule.id"  # str, Finding.rule ("fs.path", "env.variable", "anomaly.fuel", ...)
WASM_TARGET = "wasm.target"  # str, what the guest asked for (path, variable, import, host)
WASM_POLICY_SUGGESTION = "wasm.policy.suggestion"  # str, a policy line that would allow it
WASM_INVOCATION_ID = "wasm.invocation.id"  # str, the invocation (also as faas.invocation_id)
WASM_HOST_CALL_FUNC = "wasm.host_call.func"  # str, the WASI preview 1 function ("path_open")
WASM_HOST_CALL_ERRNO = "wasm.host_call.errno"  # int, what the guest got (0: success)
WASM_HOST_CALL_SEQ = "wasm.host_call.seq"  # int, the call's place in the invocation
WASM_HOST_CALL_PATH = "wasm.host_call.path"  # str, the path argument, when there is one
WASM_HOST_CALL_ARGS = "wasm.host_call.args"  # prefix: wasm.host_call.args.<parameter> = int
GUARD_RULESET = "wasmscope.guard"


# --- metrics -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One instrument: OpenTelemetry name, kind, UCUM unit and description.

    ``kind`` is "counter", "histogram" or "gauge". ``buckets`` are the explicit
    histogram bucket boundaries (advisory), in ``unit``. A Prometheus exposition
    derives its names from these (``faas.invoke_duration`` in ``s`` becomes
    ``faas_invoke_duration_seconds``).
    """

    name: str
    kind: str
    unit: str
    description: str
    buckets: tuple[float, ...] | None = None


# The FaaS spec's advice for duration histograms, in seconds.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Linear memory grows in 64 KiB pages: powers of two from one page to 4 GiB.
MEMORY_BUCKETS: tuple[float, ...] = tuple(float(65536 << i) for i in range(17))

M_FAAS_INVOCATIONS = MetricSpec(
    "faas.invocations", "counter", "{invocation}", "Number of successful invocations."
)
M_FAAS_ERRORS = MetricSpec(
    "faas.errors", "counter", "{error}",
    "Number of invocation errors (every outcome but ok, timeouts included; by error.type).",
)  # fmt: skip
M_FAAS_TIMEOUTS = MetricSpec(
    "faas.timeouts", "counter", "{timeout}", "Number of invocation timeouts."
)
M_FAAS_COLDSTARTS = MetricSpec(
    "faas.coldstarts", "counter", "{coldstart}", "Number of invocation cold starts."
)
M_FAAS_INVOKE_DURATION = MetricSpec(
    "faas.invoke_duration", "histogram", "s",
    "Measures the duration of the function's logic execution (the execute phase).",
    DURATION_BUCKETS,
)  # fmt: skip
M_FAAS_INIT_DURATION = MetricSpec(
    "faas.init_duration", "histogram", "s",
    "Measures the duration of the function's initialization (load, compile, instantiate).",
    DURATION_BUCKETS,
)  # fmt: skip
M_FAAS_MEM_USAGE = MetricSpec(
    "faas.mem_usage", "histogram", "By",
    "Distribution of max memory usage per invocation (peak linear memory).",
    MEMORY_BUCKETS,
)  # fmt: skip
M_FAAS_CPU_USAGE = MetricSpec(
    "faas.cpu_usage",
    "histogram",
    "s",
    "Distribution of CPU usage per invocation.",
    DURATION_BUCKETS,
)
M_WASM_FUEL_CONSUMED = MetricSpec(
    "wasm.fuel.consumed", "counter", "{fuel}", "Fuel consumed by guests, summed over invocations."
)
M_WASM_MEMORY_PEAK = MetricSpec(
    "wasm.memory.peak", "gauge", "By", "Peak linear memory of the latest invocation."
)

METRICS: tuple[MetricSpec, ...] = (
    M_FAAS_INVOCATIONS,
    M_FAAS_ERRORS,
    M_FAAS_TIMEOUTS,
    M_FAAS_COLDSTARTS,
    M_FAAS_INVOKE_DURATION,
    M_FAAS_INIT_DURATION,
    M_FAAS_MEM_USAGE,
    M_FAAS_CPU_USAGE,
    M_WASM_FUEL_CONSUMED,
    M_WASM_MEMORY_PEAK,
)
"""Every instrument, in a stable order. Metric attributes are low-cardinality only:
``faas.trigger``, ``faas.name``, ``wasm.outcome`` and, on ``faas.errors``, ``error.type``."""
