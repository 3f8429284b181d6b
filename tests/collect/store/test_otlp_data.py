"""The benchmark's generator of realistic requests (benchmarks/_otlp_data.py) makes what
it says: whole invocations of three spans, server spans with ~25 attributes, stderr
lines tied to their invocation, the same bytes for the same arguments."""

from __future__ import annotations

from benchmarks._otlp_data import invocation_logs, invocation_requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

START = 1_764_763_200 * 10**9


def test_invocation_requests() -> None:
    bodies = list(invocation_requests(3000, batch=1000, seed=3, start_ns=START))
    assert bodies == list(invocation_requests(3000, batch=1000, seed=3, start_ns=START))
    assert bodies != list(invocation_requests(3000, batch=1000, seed=4, start_ns=START))
    requests = [ExportTraceServiceRequest.FromString(b) for b in bodies]
    spans = [
        s for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    assert len(requests) == 4 and len(spans) == 3000  # 333 invocations a request, then 1
    servers = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == 1000
    assert all(25 <= len(s.attributes) <= 29 for s in servers)
    assert all(s.name.startswith("GET /") for s in servers)
    children = [s for s in spans if s.kind == Span.SPAN_KIND_INTERNAL]
    assert {s.name for s in children} == {"instantiate", "execute"}
    assert all(1 <= len(s.attributes) <= 2 for s in children)
    server_ids = {s.span_id for s in servers}
    assert all(s.parent_span_id in server_ids for s in children)
    traps = [s for s in servers if s.events]
    assert traps and all(s.events[0].name == "exception" for s in traps)
    assert min(s.start_time_unix_nano for s in spans) >= START


def test_invocation_logs() -> None:
    bodies = list(invocation_logs(2500, batch=1000, seed=3, start_ns=START))
    requests = [ExportLogsServiceRequest.FromString(b) for b in bodies]
    records = [
        r
        for req in requests
        for rl in req.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    assert len(records) == 2500 and len(requests) == 3
    keys = {kv.key for r in records for kv in r.attributes}
    assert keys == {"log.iostream", "faas.invocation_id", "faas.name"}
    assert {
        kv.value.string_value for r in records for kv in r.attributes if kv.key == "log.iostream"
    } == {
        "stdout",
        "stderr",
    }
    assert all(len(r.trace_id) == 16 and len(r.span_id) == 8 for r in records)
