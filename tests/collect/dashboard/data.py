"""Realistic wasmscope telemetry for the dashboard tests, as OTLP requests.

An :class:`Inv` is one invocation as ``wasmscope run`` (trigger "other", span named
after the function) or ``serve`` (trigger "http", "GET /route") reports it: the SERVER
span with the faas.* and wasm.* attributes, its phase children, the ``exception``
event with the guest stack on failure, and the guest's stdout/stderr lines as log
records. :func:`write` sends them through ``Store.write`` like the receiver does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from wasmscope.collect.receiver.sink import Signal
from wasmscope.telemetry import reports

NOW = 1_790_000_000.0  # the tests' clock (2026-09-21 UTC)
NS = 1_000_000_000
_ids = itertools.count(1)


def kv(key: str, value: Any) -> KeyValue:
    """An attribute of a Python value (bool, int, float, else its text)."""
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def sha_of(module: str) -> str:
    return hashlib.sha256(module.encode()).hexdigest()


@dataclass
class Inv:
    """One invocation; times are seconds before :data:`NOW`."""

    function: str
    ago: float
    duration_ms: float = 1.0
    outcome: str = "ok"
    cold: bool = False
    service: str = "wasmscope"
    module: str = ""
    fuel: int | None = 50_000
    fuel_limit: int | None = 1_000_000
    memory: int | None = 131072
    max_memory: int | None = 16 * 1024 * 1024
    trap_code: str = ""
    message: str = ""
    #: Guest frames, innermost first: (function, file, line).
    frames: Sequence[tuple[str, str, int]] = ()
    stdout: Sequence[str] = ()
    stderr: Sequence[str] = ()
    http_route: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""

    def __post_init__(self) -> None:
        n = next(_ids)
        self.module = self.module or f"{self.function}.wasm"
        self.trace_id = self.trace_id or f"{n:08x}" + hashlib.md5(f"t{n}".encode()).hexdigest()[:24]
        self.span_id = self.span_id or f"{n:016x}"
        self.invocation_id = hashlib.md5(f"i{n}".encode()).hexdigest()

    @property
    def sha256(self) -> str:
        return sha_of(self.module)

    @property
    def start_ns(self) -> int:
        return int((NOW - self.ago) * NS)

    @property
    def duration_ns(self) -> int:
        return int(self.duration_ms * 1e6)

    def spans(self) -> list[Span]:
        start, dur = self.start_ns, self.duration_ns
        a: dict[str, Any] = {
            "faas.name": self.function,
            "faas.invocation_id": self.invocation_id,
            "faas.coldstart": self.cold,
            "faas.trigger": "http" if self.http_route else "other",
            "wasm.module.sha256": self.sha256,
            "wasm.module.name": self.module,
            "wasm.module.size": 4096 + len(self.module),
            "wasm.module.kind": "module",
            "wasm.entry": "_start",
            "wasm.outcome": self.outcome,
            "wasm.cache": "miss" if self.cold else "memory",
        }
        if self.fuel is not None:
            a["wasm.fuel.consumed"] = self.fuel
        if self.fuel_limit is not None:
            a["wasm.fuel.limit"] = self.fuel_limit
        if self.memory is not None:
            a["wasm.memory.peak"] = self.memory
        if self.max_memory is not None:
            a["faas.max_memory"] = self.max_memory
        if self.http_route:
            a.update({"http.request.method": "GET", "http.route": self.http_route, "url.path": self.http_route,
                      "http.response.status_code": 200 if self.outcome == "ok" else 500})  # fmt: skip
        failed = self.outcome != "ok"
        if failed:
            a["error.type"] = self.trap_code or self.outcome
        if self.trap_code:
            a["wasm.trap.code"] = self.trap_code
        a.update(self.attrs)
        events = []
        status = Status()
        if failed:
            message = self.message or f"wasm trap: {self.trap_code or self.outcome}"
            status = Status(code=Status.STATUS_CODE_ERROR, message=message)
            ev = {"exception.type": self.trap_code or self.outcome, "exception.message": message,
                  "exception.stacktrace": "\n".join(f"{fn} ({f}:{line})" for fn, f, line in self.frames)}  # fmt: skip
            if self.frames:
                fn, path, line = self.frames[0]
                ev.update({"code.function.name": fn, "code.file.path": path, "code.line.number": line})
            events.append(Span.Event(time_unix_nano=start + dur - 1000, name="exception",
                                     attributes=[kv(k, v) for k, v in ev.items()]))  # fmt: skip
        tid, sid = bytes.fromhex(self.trace_id), bytes.fromhex(self.span_id)
        name = f"GET {self.http_route}" if self.http_route else self.function
        out = [Span(trace_id=tid, span_id=sid, name=name, kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start,
                    end_time_unix_nano=start + dur, attributes=[kv(k, v) for k, v in a.items()],
                    events=events, status=status)]  # fmt: skip
        phases = (["load", "compile"] if self.cold else []) + ["instantiate", "execute"]
        t, share = start + 1000, (dur - 2000) // len(phases)
        for i, phase in enumerate(phases):
            child = sid[:4] + bytes([0xEE, 0, 0, i])
            out.append(Span(trace_id=tid, span_id=child, parent_span_id=sid, name=phase,
                            kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=t, end_time_unix_nano=t + share,
                            attributes=[kv("wasm.phase", phase)],
                            status=status if phase == "execute" else Status()))  # fmt: skip
            t += share
        return out

    def log_records(self) -> list[LogRecord]:
        out = []
        lines = [("stdout", s) for s in self.stdout] + [("stderr", s) for s in self.stderr]
        for i, (stream, text) in enumerate(lines):
            t = self.start_ns + 2000 + i * 1000
            out.append(LogRecord(
                time_unix_nano=t, observed_time_unix_nano=t,
                severity_number=9 if stream == "stdout" else 13, severity_text="INFO" if stream == "stdout" else "WARN",
                body=AnyValue(string_value=text),
                attributes=[kv("log.iostream", stream), kv("faas.invocation_id", self.invocation_id)],
                trace_id=bytes.fromhex(self.trace_id), span_id=bytes.fromhex(self.span_id), flags=1,
            ))  # fmt: skip
        return out


def _resource(service: str) -> Resource:
    return Resource(attributes=[kv("service.name", service), kv("telemetry.distro.name", "wasmscope"),
                                kv("service.instance.id", f"{service}-1")])  # fmt: skip


def traces_request(invs: Iterable[Inv]) -> ExportTraceServiceRequest:
    by_service: dict[str, list[Span]] = {}
    for inv in invs:
        by_service.setdefault(inv.service, []).extend(inv.spans())
    scope = InstrumentationScope(name="wasmscope", version="0.1.0")
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=_resource(svc), scope_spans=[ScopeSpans(scope=scope, spans=spans)])
        for svc, spans in by_service.items()
    ])  # fmt: skip


def logs_request(invs: Iterable[Inv]) -> ExportLogsServiceRequest:
    by_service: dict[str, list[LogRecord]] = {}
    for inv in invs:
        by_service.setdefault(inv.service, []).extend(inv.log_records())
    scope = InstrumentationScope(name="wasmscope", version="0.1.0")
    return ExportLogsServiceRequest(resource_logs=[
        ResourceLogs(resource=_resource(svc), scope_logs=[ScopeLogs(scope=scope, log_records=recs)])
        for svc, recs in by_service.items() if recs
    ])  # fmt: skip


def write(store: Any, invs: Sequence[Inv]) -> None:
    """Write the invocations' spans and log lines, as the receiver would."""
    store.write(Signal.TRACES, traces_request(invs))
    logs = logs_request(invs)
    if logs.resource_logs:
        store.write(Signal.LOGS, logs)


INSPECT_DOC: dict[str, Any] = {
    "kind": "module",
    "size": 4110,
    "header": {"kind": "module", "version": 1},
    "imports": [
        {"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func", "type": "(i32, i32, i32, i32) -> i32",
         "capability": "stdio"},
        {"module": "wasi_snapshot_preview1", "name": "path_open", "kind": "func", "type": "(i32 x9) -> i32",
         "capability": "filesystem"},
    ],
    "exports": [{"name": "_start", "kind": "func", "index": 3, "type": "() -> ()", "target": None},
                {"name": "memory", "kind": "memory", "index": 0, "type": "1..", "target": None}],
    "capabilities": [
        {"key": "stdio", "title": "Standard streams", "count": 1,
         "imports": [{"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func"}], "interfaces": []},
        {"key": "filesystem", "title": "Filesystem", "count": 1,
         "imports": [{"module": "wasi_snapshot_preview1", "name": "path_open", "kind": "func"}], "interfaces": []},
    ],
}  # fmt: skip

PROFILE_DOC: dict[str, Any] = {
    "format": "wasmscope.profile/1",
    "module": {"name": "resize.wasm", "sha256": sha_of("resize.wasm")},
    "unit": "samples",
    "interval_s": 0.001,
    "samples": 100,
    "functions": [
        {"name": "_start", "calls": 1, "self": 0, "total": 100},
        {"name": "main", "calls": 1, "self": 10, "total": 100},
        {"name": "resize_rows", "calls": 480, "self": 60, "total": 75},
        {"name": "lerp", "calls": 1_234_567, "self": 15, "total": 15},
        {"name": "encode_png", "calls": 3, "self": 15, "total": 15},
    ],
    "stacks": [
        {"frames": ["_start", "main", "resize_rows"], "value": 60},
        {"frames": ["_start", "main", "resize_rows", "lerp"], "value": 15},
        {"frames": ["_start", "main", "encode_png"], "value": 15},
        {"frames": ["_start", "main"], "value": 10},
    ],
}


def report_request(records: Sequence[reports.ReportRecord], service: str = "wasmscope") -> ExportLogsServiceRequest:
    body = reports.export_request(records, {"service.name": service})
    return ExportLogsServiceRequest.FromString(body)


def inspect_record(module: str, doc: dict[str, Any] | None = None, ago: float = 30.0) -> reports.ReportRecord:
    return reports.inspect_report_record(doc or INSPECT_DOC, sha256=sha_of(module), name=module,
                                         clock=lambda: int((NOW - ago) * NS))  # fmt: skip


def profile_record(doc: dict[str, Any] | None = None, ago: float = 20.0, trace_id: str = "",
                   span_id: str = "") -> reports.ReportRecord:  # fmt: skip
    """A profile record as ``profile --push`` makes it (body built here instead of from a
    real run, with the same attributes)."""
    doc = doc or PROFILE_DOC
    mod = doc["module"]
    attrs = {"event.name": "wasmscope.profile",
             **reports.module_attributes(sha256=mod["sha256"], name=mod["name"], size=4110, kind="module"),
             "faas.name": mod["name"].removesuffix(".wasm"), "faas.invocation_id": "p1", "wasm.outcome": "ok"}  # fmt: skip
    return reports.ReportRecord("wasmscope.profile", json.dumps(doc), attrs, int((NOW - ago) * NS), trace_id, span_id)


def metrics_request(ago_points: Sequence[float] = (300, 240, 180, 120, 60)) -> ExportMetricsServiceRequest:
    """A gauge, a cumulative sum and a histogram over a few points."""
    def t(ago: float) -> int:
        return int((NOW - ago) * NS)

    start = t(3600)
    gauge = m.Metric(name="wasmscope.inflight", unit="{request}", description="Requests in flight.",
                     gauge=m.Gauge(data_points=[m.NumberDataPoint(time_unix_nano=t(a), as_int=i + 1,
                                                attributes=[kv("faas.name", "resize")])
                                                for i, a in enumerate(ago_points)]))  # fmt: skip
    total = m.Metric(name="faas.invocations", unit="{invocation}", description="Invocations.",
                     sum=m.Sum(aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True,
                               data_points=[m.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=t(a),
                                                              as_double=10.0 * (i + 1),
                                                              attributes=[kv("faas.name", "resize")])
                                            for i, a in enumerate(ago_points)]))  # fmt: skip
    hist = m.Metric(name="faas.invoke_duration", unit="s", description="Duration.",
                    histogram=m.Histogram(aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                                          data_points=[m.HistogramDataPoint(
                                              start_time_unix_nano=start, time_unix_nano=t(a), count=4 * (i + 1),
                                              sum=0.002 * 4 * (i + 1), bucket_counts=[0, 4 * (i + 1), 0],
                                              explicit_bounds=[0.001, 0.01],
                                              attributes=[kv("faas.name", "resize")])
                                              for i, a in enumerate(ago_points)]))  # fmt: skip
    from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics, ScopeMetrics

    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=_resource("wasmscope"),
        scope_metrics=[ScopeMetrics(scope=InstrumentationScope(name="wasmscope"), metrics=[gauge, total, hist])])])  # fmt: skip
