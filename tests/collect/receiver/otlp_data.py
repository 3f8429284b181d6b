"""OTLP requests made with opentelemetry-proto for the receiver tests: a realistic
batch of wasmscope invocation spans, metrics of every kind, logs with every AnyValue
kind, and the OTLP/JSON form of any request (hex ids, as OTLP/JSON has them)."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

T0 = 1_764_000_000_000_000_000


def kv(key: str, value: Any) -> KeyValue:
    out = KeyValue(key=key)
    set_any(out.value, value)
    return out


def set_any(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list):
        for v in value:
            set_any(target.array_value.values.add(), v)
        target.array_value.SetInParent()
    elif isinstance(value, dict):
        for k, v in value.items():
            target.kvlist_value.values.append(kv(k, v))
        target.kvlist_value.SetInParent()
    else:
        raise TypeError(value)


def _resource(target: Any, service: str) -> None:
    target.attributes.extend([kv("service.name", service), kv("telemetry.sdk.name", "wasmscope"),
                              kv("host.name", "node-1")])  # fmt: skip


def server_span_attributes(i: int, rng: random.Random) -> list[KeyValue]:
    """About 25 attributes, like a wasmscope ``serve`` invocation span."""
    route = f"/api/item{i % 7}"
    return [
        kv("http.request.method", "GET"), kv("http.route", route), kv("url.path", f"{route}/{i}"),
        kv("url.scheme", "http"), kv("http.response.status_code", 200 if i % 10 else 500),
        kv("server.address", "127.0.0.1"), kv("server.port", 8080), kv("client.address", "10.0.0.7"),
        kv("user_agent.original", "curl/8.5.0"), kv("network.protocol.version", "1.1"),
        kv("faas.name", f"item{i % 7}"), kv("faas.invocation_id", f"inv-{i:08d}"),
        kv("faas.coldstart", i == 0), kv("faas.trigger", "http"),
        kv("wasm.module.sha256", "9f" * 32), kv("wasm.module.name", f"item{i % 7}.wasm"),
        kv("wasm.outcome", "ok" if i % 10 else "trap"), kv("wasm.fuel.consumed", rng.randrange(10**6)),
        kv("wasm.fuel.limit", 10**9), kv("wasm.memory.peak", 65536 * rng.randrange(1, 40)),
        kv("faas.max_memory", 64 * 1024 * 1024), kv("wasm.trap.code", "" if i % 10 else "unreachable"),
        kv("wasm.instance.reused", False), kv("wasm.duration.compile_ms", rng.random()),
        kv("process.pid", 4242),
    ]  # fmt: skip


def trace_request(n: int = 1000, seed: int = 1) -> ExportTraceServiceRequest:
    """``n`` SERVER spans of ~25 attributes (each its own trace), one resource."""
    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs.resource, "wasmscope-serve")
    ss = rs.scope_spans.add()
    ss.scope.name = "wasmscope"
    ss.scope.version = "0.1.0"
    for i in range(n):
        span = ss.spans.add()
        span.trace_id = rng.randbytes(16)
        span.span_id = rng.randbytes(8)
        span.name = f"GET /api/item{i % 7}"
        span.kind = Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = T0 + i * 1000
        span.end_time_unix_nano = T0 + i * 1000 + rng.randrange(10**7)
        span.attributes.extend(server_span_attributes(i, rng))
        if i % 10 == 0:
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = "the handler trapped"
            ev = span.events.add()
            ev.name = "exception"
            ev.time_unix_nano = span.end_time_unix_nano
            ev.attributes.extend([kv("exception.type", "trap"), kv("exception.message", "unreachable"),
                                  kv("exception.stacktrace", "f0\nf1\nmain")])  # fmt: skip
    return req


def child_spans_request() -> ExportTraceServiceRequest:
    """A trace of a parent and two children, one with a link."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs.resource, "svc")
    ss = rs.scope_spans.add()
    tid = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    for name, sid, parent in (("root", "eee19b7ec3c1b174", ""), ("load", "eee19b7ec3c1b175", "eee19b7ec3c1b174"),
                              ("execute", "eee19b7ec3c1b176", "eee19b7ec3c1b174")):  # fmt: skip
        span = ss.spans.add(trace_id=tid, span_id=bytes.fromhex(sid), parent_span_id=bytes.fromhex(parent),
                            name=name, kind=Span.SPAN_KIND_INTERNAL,
                            start_time_unix_nano=T0, end_time_unix_nano=T0 + 5)  # fmt: skip
        if name == "execute":
            span.links.add(trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
                           span_id=bytes.fromhex("b7ad6b7169203331"), attributes=[kv("k", "v")])  # fmt: skip
    return req


def metrics_request() -> ExportMetricsServiceRequest:
    """One metric of each kind, with an exemplar on the sum."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(rm.resource, "svc")
    sm = rm.scope_metrics.add()
    sm.scope.name = "wasmscope"
    g = sm.metrics.add(name="wasm.memory.peak", unit="By")
    g.gauge.data_points.add(time_unix_nano=T0, as_int=65536, attributes=[kv("faas.name", "a")])
    s = sm.metrics.add(name="faas.invocations", unit="{invocation}")
    s.sum.aggregation_temporality = 2
    s.sum.is_monotonic = True
    p = s.sum.data_points.add(start_time_unix_nano=T0, time_unix_nano=T0 + 10, as_int=7)
    p.exemplars.add(time_unix_nano=T0 + 5, as_int=1, trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
                    span_id=bytes.fromhex("eee19b7ec3c1b174"))  # fmt: skip
    h = sm.metrics.add(name="faas.invoke_duration", unit="s")
    h.histogram.aggregation_temporality = 2
    h.histogram.data_points.add(time_unix_nano=T0, count=3, sum=0.6, bucket_counts=[1, 1, 1],
                                explicit_bounds=[0.1, 0.5], min=0.1, max=0.3)  # fmt: skip
    e = sm.metrics.add(name="wasm.fuel.consumed", unit="1")
    e.exponential_histogram.aggregation_temporality = 1
    ep = e.exponential_histogram.data_points.add(time_unix_nano=T0, count=2, sum=3.0, scale=1, zero_count=0)
    ep.positive.offset = 1
    ep.positive.bucket_counts.extend([1, 1])
    q = sm.metrics.add(name="latency.summary", unit="s")
    qp = q.summary.data_points.add(time_unix_nano=T0, count=4, sum=2.0)
    qp.quantile_values.add(quantile=0.5, value=0.4)
    qp.quantile_values.add(quantile=0.99, value=0.9)
    return req


def logs_request() -> ExportLogsServiceRequest:
    """Log records whose bodies and attributes take every AnyValue kind."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(rl.resource, "svc")
    sl = rl.scope_logs.add()
    bodies: list[Any] = ["hello", 42, 2.5, True, b"\x00\xffbytes", [1, "two", [3.0]],
                         {"k": "v", "nested": {"n": [False, b"\x01"]}}]  # fmt: skip
    for i, body in enumerate(bodies):
        rec = sl.log_records.add(time_unix_nano=T0 + i, observed_time_unix_nano=T0 + i, severity_number=9,
                                 severity_text="INFO")  # fmt: skip
        set_any(rec.body, body)
        rec.attributes.extend([kv("log.iostream", "stdout"), kv("any", body)])
        if i % 2 == 0:
            rec.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
            rec.span_id = bytes.fromhex("eee19b7ec3c1b174")
    empty = sl.log_records.add(time_unix_nano=T0)  # a record with an empty body
    empty.attributes.append(kv("empty", ""))
    return req


def _hexify(obj: Any) -> Any:
    """proto3 JSON's base64 ids -> OTLP/JSON's hex, in place (upper case: hex is case-insensitive)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                obj[key] = base64.b64decode(value).hex().upper()
            else:
                _hexify(value)
    elif isinstance(obj, list):
        for value in obj:
            _hexify(value)
    return obj


def to_otlp_json(message: Any) -> bytes:
    """The OTLP/JSON encoding of ``message``: proto3 JSON (lowerCamelCase, int64 as
    strings, enums as integers) with hex ids."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hexify(doc)).encode()
