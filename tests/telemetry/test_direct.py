"""Serve's direct telemetry pipeline (telemetry/direct.py, telemetry/wire.py): the
hand-written OTLP protobuf decoded by opentelemetry-proto, export to a real rotel,
the bounded queue, metrics, and record_invocation with trigger "http"."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.telemetry.otlp_stub import OtlpStub, closed_port, start_stub
from tests.telemetry.records import make_record
from tests.telemetry.test_rotel import Block, Rotel, collector, wait_for  # noqa: F401
from wasmscope.runtime.record import Outcome
from wasmscope.telemetry import Telemetry, wire
from wasmscope.telemetry import direct as dx
from wasmscope.telemetry._encoding import encode_request, request_items
from wasmscope.telemetry._sinks import OtlpSink, Sink
from wasmscope.telemetry._span_data import SEVERITY_WARN
from wasmscope.telemetry.exporters import Destination
from wasmscope.telemetry.stats import ExportCounter

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def stub() -> Iterator[OtlpStub]:
    s = start_stub()
    yield s
    s.close()


def http_attrs() -> dict[str, Any]:
    return {
        "http.request.method": "GET",
        "url.path": "/hello",
        "http.route": "/hello",
        "server.port": 8080,
    }


def serve_request(
    tel: Telemetry, record: Any, traceparent: str | None = None, status: int = 200
) -> str:
    """What TracingMiddleware and the gateway do for one request: the trace id."""
    span = tel.start_request("GET /hello", http_attrs(), traceparent)
    assert span is not None
    trace_id = tel.record_invocation(record, parent=span.traceparent)
    assert trace_id == span.trace_hex
    span.attrs["http.response.status_code"] = status
    span.error = status >= 500
    tel.end_request(span)
    return trace_id


def warm(**kw: Any) -> Any:
    return make_record(
        cold_start=False, cache="memory", stdout=b"content-type: text/plain\n\nhello\n", **kw
    )


# --- the encoder against opentelemetry-proto ---------------------------------------------------
def test_wire_round_trip_through_opentelemetry_proto() -> None:
    attrs = {
        "s": "text",
        "long": "x" * 300,
        "b": True,
        "f": False,
        "i": 7,
        "big": 2**40,
        "neg": -3,
        "d": 0.25,
        "arr": ("a", "b"),
        "ints": (1, 2),
    }
    span = dx.SpanData(
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x1122334455667788, 0x00F067AA0BA902B7, "GET /x", wire.KIND_SERVER, 10, 20, attrs,
        events=[("exception", 15, {"exception.type": "unreachable"})], status_code=wire.STATUS_ERROR,
        status_message="boom", trace_state="vendor=1", remote_parent=True,
    )  # fmt: skip
    child = dx.SpanData(
        span.trace_id,
        0x99,
        span.span_id,
        "execute",
        wire.KIND_INTERNAL,
        12,
        18,
        {"wasm.phase": "execute"},
    )
    body = wire.export_trace_request(
        wire.resource({"service.name": "svc"}),
        wire.instrumentation_scope("wasmscope", "1.2"),
        [span.encode(), child.encode()],
    )
    msg = ExportTraceServiceRequest()
    msg.ParseFromString(body)
    (rs,) = msg.resource_spans
    assert {a.key: a.value.string_value for a in rs.resource.attributes} == {"service.name": "svc"}
    (ss,) = rs.scope_spans
    assert (ss.scope.name, ss.scope.version) == ("wasmscope", "1.2")
    s, c = ss.spans
    assert s.trace_id.hex() == TRACE_ID and s.span_id.hex() == "1122334455667788"
    assert s.parent_span_id.hex() == "00f067aa0ba902b7" and s.trace_state == "vendor=1"
    assert (s.name, s.kind, s.start_time_unix_nano, s.end_time_unix_nano) == ("GET /x", 2, 10, 20)
    assert (s.status.code, s.status.message) == (2, "boom")
    assert s.flags == 0x301  # sampled, has-is-remote, is-remote
    got = {a.key: a.value for a in s.attributes}
    assert got["s"].string_value == "text" and got["long"].string_value == "x" * 300
    assert (
        got["b"].bool_value is True
        and got["f"].HasField("bool_value")
        and got["f"].bool_value is False
    )
    assert got["i"].int_value == 7 and got["big"].int_value == 2**40 and got["neg"].int_value == -3
    assert got["d"].double_value == 0.25
    assert [v.string_value for v in got["arr"].array_value.values] == ["a", "b"]
    assert [v.int_value for v in got["ints"].array_value.values] == [1, 2]
    (ev,) = s.events
    assert (ev.name, ev.time_unix_nano, ev.attributes[0].key) == ("exception", 15, "exception.type")
    assert (
        c.parent_span_id == s.span_id
        and c.kind == 1
        and c.flags == 0x101
        and not c.HasField("status")
    )

    rec = dx.LogData(
        5,
        6,
        SEVERITY_WARN,
        "WARN",
        "héllo",
        {"log.iostream": "stderr"},
        span.trace_id,
        span.span_id,
        True,
    )
    logs = ExportLogsServiceRequest()
    logs.ParseFromString(
        wire.export_logs_request(
            wire.resource({}), wire.instrumentation_scope("wasmscope"), [rec.encode()]
        )
    )
    (lr,) = logs.resource_logs[0].scope_logs[0].log_records
    assert (
        lr.time_unix_nano,
        lr.observed_time_unix_nano,
        lr.severity_number,
        lr.severity_text,
    ) == (5, 6, 13, "WARN")
    assert lr.body.string_value == "héllo" and lr.flags == 1
    assert lr.trace_id.hex() == TRACE_ID and lr.span_id == s.span_id
    assert lr.attributes[0].key == "log.iostream"


def test_varint_and_attribute_caches_stay_correct() -> None:
    assert [wire.varint(n) for n in (0, 127, 128, 300)] == [
        b"\x00",
        b"\x7f",
        b"\x80\x01",
        b"\xac\x02",
    ]
    assert wire.varint(-1) == b"\xff" * 9 + b"\x01"
    out: list[bytes] = []
    wire.attributes(b"\x0a", {"k": True, "k2": 1, "k3": 1.0}, out)  # True == 1 == 1.0: not confused
    msg = ExportTraceServiceRequest()
    msg.ParseFromString(wire.export_trace_request(b"".join(out), b"", []))
    got = {a.key: a.value for a in msg.resource_spans[0].resource.attributes}
    assert got["k"].WhichOneof("value") == "bool_value"
    assert got["k2"].WhichOneof("value") == "int_value"
    assert got["k3"].WhichOneof("value") == "double_value"
    # ints that are not cached (a port, a large count) and strings and doubles met once
    for key, value in (
        ("client.port", 5),
        ("client.port", 50000),
        ("client.port", 1 << 40),
        ("big", -(1 << 33)),
        ("big", 1 << 21),
    ):
        out = []
        wire.attributes(b"\x4a", {key: value}, out)
        assert span_attributes(b"".join(out)) == [(key, "int_value", value)]
    for text in ("", "x" * 32, "é" * 100):
        encoded = wire.string_attribute(b"\x4a", "faas.invocation_id", text)
        assert span_attributes(encoded) == [("faas.invocation_id", "string_value", text)]
    encoded = wire.double_attribute(b"\x4a", "wasm.cpu.time", 1.5e-5)
    assert span_attributes(encoded) == [("wasm.cpu.time", "double_value", 1.5e-5)]


def span_attributes(encoded: bytes) -> list[tuple[str, str, Any]]:
    """(key, kind of value, value) of the attributes in ``encoded``, read by
    opentelemetry-proto as the attributes field of a Span (tag 0x4a)."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    span = Span.FromString(encoded)
    out = []
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        out.append((kv.key, str(kind), getattr(kv.value, str(kind))))
    return out


def test_parse_traceparent_and_samplers() -> None:
    assert dx.parse_traceparent(TRACEPARENT) == (int(TRACE_ID, 16), 0x00F067AA0BA902B7, 1)
    for bad in (
        "",
        "00-zz-00-01",
        "ff" + TRACEPARENT[2:],
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        TRACEPARENT + "-x",
    ):
        assert dx.parse_traceparent(bad) is None
    on = dx.make_sampler("parentbased_always_on", None)
    assert on(5, None) and on(5, 1) and not on(5, 0)
    off = dx.make_sampler("always_off", None)
    assert not off(5, 1)
    ratio = dx.make_sampler("traceidratio", "0.5")
    assert ratio(1, None) and not ratio((1 << 64) - 1, None)


# --- serve's spans through Telemetry -----------------------------------------------------------
def test_request_span_folds_the_invocation_and_logs_stderr_only() -> None:
    with Telemetry.from_options(in_memory=True, trigger="http") as t:
        rec = warm(stderr=b"warn: slow\n")
        trace_id = serve_request(t, rec, TRACEPARENT)
        spans = t.memory.span_dicts()
        logs = t.memory.log_dicts()
    assert trace_id == TRACE_ID
    server = next(s for s in spans if s["kind"] == "SERVER")
    assert server["name"] == "GET /hello" and server["parent_span_id"] == "00f067aa0ba902b7"
    a = server["attributes"]
    assert (
        a["faas.trigger"] == "http"
        and a["faas.invocation_id"] == "inv-0001"
        and a["faas.coldstart"] is False
    )
    assert (
        a["wasm.module.sha256"] == "ab" * 32
        and a["wasm.fuel.consumed"] == 12345
        and a["http.route"] == "/hello"
    )
    assert sorted(s["name"] for s in spans if s["parent_span_id"] == server["span_id"]) == [
        "execute",
        "instantiate",
    ]
    assert {s["trace_id"] for s in spans} == {TRACE_ID}
    assert [(x["body"], x["attributes"]["log.iostream"], x["span_id"]) for x in logs] == [
        ("warn: slow", "stderr", server["span_id"])
    ]


def test_cold_start_and_failures_keep_every_phase_span() -> None:
    with Telemetry.from_options(in_memory=True, trigger="http") as t:
        serve_request(t, make_record(), status=200)  # cold: load, compile too
        serve_request(t, make_record(Outcome.TRAP, cold_start=False, cache="memory"), status=500)
        spans = t.memory.span_dicts()
    servers = [s for s in spans if s["kind"] == "SERVER"]
    cold, trap = servers
    assert sorted(s["name"] for s in spans if s["parent_span_id"] == cold["span_id"]) == [
        "compile",
        "execute",
        "instantiate",
        "load",
    ]
    assert trap["status"] == {
        "code": "ERROR",
        "description": "wasm trap: wasm `unreachable` instruction executed",
    }
    assert (
        trap["attributes"]["error.type"] == "unreachable"
        and trap["events"][0]["name"] == "exception"
    )


def test_standalone_http_invocation_has_its_own_span_and_no_stdout_logs() -> None:
    with Telemetry.from_options(in_memory=True, trigger="http") as t:
        trace_id = t.record_invocation(warm(stderr=b"e1\ne2\n"), parent=TRACEPARENT)
        spans = t.memory.span_dicts()
        logs = t.memory.log_dicts()
    assert trace_id == TRACE_ID
    inv = next(s for s in spans if s["kind"] == "SERVER")
    assert inv["name"] == "hello.wasm" and inv["parent_span_id"] == "00f067aa0ba902b7"
    assert inv["attributes"]["faas.trigger"] == "http"
    assert [x["body"] for x in logs] == ["e1", "e2"]


def test_unsampled_request_keeps_trace_and_logs() -> None:
    with Telemetry.from_options(in_memory=True, trigger="http") as t:
        span = t.start_request("GET /hello", http_attrs(), TRACEPARENT[:-2] + "00")
        assert span is not None and span.traceparent.endswith("-00") and span.trace_hex == TRACE_ID
        t.record_invocation(warm(stderr=b"x\n"), parent=span.traceparent)
        t.end_request(span)
        assert t.memory.span_dicts() == []
        assert [x["trace_id"] for x in t.memory.log_dicts()] == [TRACE_ID]


def test_serve_metrics_are_aggregated_and_exported_by_the_sdk_readers() -> None:
    with Telemetry.from_options(in_memory=True, trigger="http") as t:
        for _ in range(3):
            serve_request(t, warm())
        serve_request(t, make_record(Outcome.TIMEOUT, cold_start=False, cache="memory"), status=504)
        points = t.memory.metric_points()
    by: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        by.setdefault(p["name"], []).append(p)
    assert [p["value"] for p in by["faas.invocations"]] == [3]
    assert by["faas.invocations"][0]["attributes"] == {
        "faas.trigger": "http",
        "faas.name": "hello.wasm",
        "wasm.outcome": "ok",
    }
    assert [(p["value"], p["attributes"]["error.type"]) for p in by["faas.errors"]] == [
        (1, "timeout")
    ]
    assert [p["value"] for p in by["faas.timeouts"]] == [1]
    assert "faas.coldstarts" not in by
    inv = {p["attributes"]["wasm.outcome"]: p for p in by["faas.invoke_duration"]}
    assert inv["ok"]["count"] == 3 and inv["ok"]["sum"] == pytest.approx(3 * 0.005)
    assert (
        inv["ok"]["unit"] == "s"
        and len(inv["ok"]["bucket_counts"]) == len(inv["ok"]["explicit_bounds"]) + 1
    )
    assert sum(p["count"] for p in by["faas.mem_usage"]) == 4
    assert (
        sum(by["wasm.fuel.consumed"][i]["value"] for i in range(len(by["wasm.fuel.consumed"])))
        == 4 * 12345
    )


# --- the bounded queue ---------------------------------------------------------------------------
class BlockingSink(Sink):
    def __init__(self, dest: Destination) -> None:
        super().__init__(dest)
        self.release = threading.Event()
        self.got = 0

    def _deliver(self, spans: Sequence[dx.SpanData], logs: Sequence[dx.LogData]) -> None:
        self.release.wait(10)
        self.got += len(spans)


def test_a_full_queue_drops_and_counts_never_blocks(caplog: pytest.LogCaptureFixture) -> None:
    counter = ExportCounter()
    sink = BlockingSink(Destination("otlp", "test", counter))
    pipe = dx.DirectPipeline(
        sync_sinks=[],
        batch_sinks=[sink],
        max_log_lines=10,
        max_log_bytes=1000,
        max_queue=4,
        batch=2,
        delay=0.01,
    )
    caplog.set_level(logging.WARNING, "wasmscope.telemetry")
    try:
        for _ in range(20):
            span = pipe.start_request("GET /hello", http_attrs())
            pipe.attach(span.traceparent, warm())
            pipe.end_request(span)  # returns at once, whatever the exporter does
        assert pipe.dropped >= 20 - 4 - 2  # the queue, and at most one batch being exported
        stats = counter.snapshot()
        assert (
            stats.failed("spans", "otlp") == pipe.dropped * 3
        )  # server, instantiate, execute... and load/compile
        assert sum("export queue is full" in r.getMessage() for r in caplog.records) == 1
    finally:
        sink.release.set()
        assert pipe.shutdown(10)
    assert sink.got == (20 - pipe.dropped) * 3


class BlockingOtlpSink(OtlpSink):
    def __init__(self, dest: Destination) -> None:
        super().__init__(
            dest,
            traces_url="http://127.0.0.1:9/v1/traces",
            logs_url="http://127.0.0.1:9/v1/logs",
            resource_msg=b"",
            scope_msg=b"",
        )
        self.release = threading.Event()
        self.got = 0

    def deliver_encoded(self, spans: Sequence[bytes], logs: Sequence[dx.LogData]) -> None:
        self.release.wait(10)
        self.got += len(spans)


def test_a_full_otlp_queue_drops_spans_but_counts_every_invocation() -> None:
    from wasmscope.telemetry import semconv as sc

    counter = ExportCounter()
    sink = BlockingOtlpSink(Destination("otlp", "test", counter))
    pipe = dx.DirectPipeline(
        sync_sinks=[],
        batch_sinks=[sink],
        max_log_lines=10,
        max_log_bytes=1000,
        max_queue=4,
        batch=2,
        delay=0.01,
    )
    n = 3 * dx._ENCODE_BATCH
    try:
        for _ in range(n):
            span = pipe.start_request("GET /hello", http_attrs())
            pipe.attach(span.traceparent, warm())
            pipe.end_request(span)
        pipe.settle()
        assert pipe.dropped > 0
        assert (
            sum(v for v, _ in pipe.metrics.observe(sc.M_FAAS_INVOCATIONS.name)) == n
        )  # dropped ones too
        assert counter.snapshot().failed("spans", "otlp") == pipe.dropped * 3
    finally:
        sink.release.set()
        assert pipe.shutdown(10)
    assert sink.got == (n - pipe.dropped) * 3


# --- OTLP on the wire ---------------------------------------------------------------------------
def test_direct_otlp_to_a_stub_with_env_headers(
    stub: OtlpStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret")
    with Telemetry.from_options(otlp=stub.url, trigger="http") as t:
        trace_id = serve_request(t, warm(stderr=b"oops\n"))
    assert (
        t.stats.failed() == 0
        and t.stats.exported("spans", "otlp") == 3
        and t.stats.exported("logs", "otlp") == 1
    )
    traces = stub.of("/v1/traces")
    assert all(r.headers.get("x-api-key") == "secret" for r in stub.received)
    spans = [
        s for req in traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    assert sorted(s.name for s in spans) == ["GET /hello", "execute", "instantiate"]
    assert {s.trace_id.hex() for s in spans} == {trace_id}
    res = {a.key: a.value.string_value for a in traces[0].resource_spans[0].resource.attributes}
    assert res["service.name"] == "wasmscope"
    (lr,) = [
        lr
        for req in stub.of("/v1/logs")
        for rl in req.resource_logs
        for sl in rl.scope_logs
        for lr in sl.log_records
    ]
    assert lr.body.string_value == "oops" and lr.trace_id.hex() == trace_id
    metrics = {
        m.name
        for req in stub.of("/v1/metrics")
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {"faas.invocations", "faas.invoke_duration", "faas.mem_usage"} <= metrics


def _spans_at(stub: OtlpStub) -> list[Any]:
    return [
        s
        for req in stub.of("/v1/traces")
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


def test_requests_encoded_a_few_at_a_time_all_arrive(stub: OtlpStub) -> None:
    import time

    n = 2 * dx._ENCODE_BATCH + 6  # two batches encoded by the request thread, 6 left over
    with Telemetry.from_options(otlp=stub.url, trigger="http") as t:
        ids = {serve_request(t, warm(invocation_id=f"inv-{i}")) for i in range(n)}
        assert t.force_flush(10)
        spans = _spans_at(stub)
        assert len(spans) == 3 * n and {s.trace_id.hex() for s in spans} == ids
        # low traffic: a lone request is sent after the exporter's delay, with no flush
        lone = serve_request(t, warm())
        deadline = time.monotonic() + 120  # a guard against a hang: the delay is 1 s
        while lone not in {s.trace_id.hex() for s in _spans_at(stub)}:
            assert time.monotonic() < deadline, "a lone request's spans were not sent"
            time.sleep(0.05)
    assert t.stats.exported("spans", "otlp") == 3 * (n + 1) and t.stats.failed() == 0


def test_direct_otlp_to_a_dead_receiver_is_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "wasmscope.telemetry")
    t = Telemetry.from_options(
        otlp=f"http://127.0.0.1:{closed_port()}", otlp_timeout=1.0, trigger="http"
    )
    for _ in range(3):
        serve_request(t, warm())
    t.shutdown(timeout=10)
    assert t.stats.failed("spans", "otlp") == 9 and t.stats.exported("spans") == 0
    assert any("could not export" in r.getMessage() for r in caplog.records)


def test_serve_spans_and_logs_arrive_at_rotel(collector: Rotel) -> None:  # noqa: F811
    t = Telemetry.from_options(
        otlp=collector.url, service_name="wasmscope-serve-e2e", trigger="http"
    )
    trace_id = serve_request(t, warm(stderr=b"handler log line\n"), TRACEPARENT)
    other = serve_request(
        t,
        make_record(Outcome.TRAP, invocation_id="inv-trap", cold_start=False, cache="memory"),
        status=500,
    )
    assert t.shutdown(timeout=15)
    assert t.stats.failed() == 0, t.stats
    assert t.stats.exported("spans", "otlp") == 6

    def ready(blocks: list[Block]) -> bool:
        kinds = [b.kind for b in blocks]
        return kinds.count("Span") >= 6 and kinds.count("LogRecord") >= 1

    blocks = wait_for(collector, ready)
    spans = [b for b in blocks if b.kind == "Span"]
    servers = [s for s in spans if s.fields.get("Name") == "GET /hello"]
    assert len(servers) == 2
    ok = next(s for s in servers if s.fields["Trace ID"] == trace_id)
    assert ok.fields["Kind"] == "SPAN_KIND_SERVER" and ok.fields["Parent ID"] == "00f067aa0ba902b7"
    assert ok.attrs["faas.trigger"] == "Str(http)"
    assert ok.attrs["faas.invocation_id"] == "Str(inv-0001)"
    assert ok.attrs["faas.coldstart"] == "Bool(false)"
    assert ok.attrs["http.route"] == "Str(/hello)"
    children = [s for s in spans if s.fields.get("Parent ID") == ok.fields["ID"]]
    assert sorted(s.fields["Name"] for s in children) == ["execute", "instantiate"]
    trap = next(s for s in servers if s.fields["Trace ID"] == other)
    assert trap.fields["Status code"] == "STATUS_CODE_ERROR"
    assert trap.attrs["wasm.trap.code"] == "Str(unreachable)"
    (log,) = [b for b in blocks if b.kind == "LogRecord"]
    assert log.fields["Body"] == "Str(handler log line)"
    assert log.fields["Trace ID"] == trace_id and log.fields["Span ID"] == ok.fields["ID"]
    assert "service.name: Str(wasmscope-serve-e2e)" in collector.text()


def test_the_one_pass_encoder_writes_what_the_span_data_path_writes() -> None:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    def norm(encoded: list[bytes]) -> list[bytes]:
        out = []
        for raw in encoded:
            m = Span()
            m.ParseFromString(raw)
            if m.kind == 1:  # children get random span ids
                m.span_id = b""
            attrs = sorted(
                m.attributes, key=lambda kv: kv.key
            )  # the order of attributes carries no meaning
            del m.attributes[:]
            m.attributes.extend(attrs)
            out.append(m.SerializeToString())
        return out

    d = dx.DirectPipeline(sync_sinks=[], batch_sinks=[], max_log_lines=10, max_log_bytes=1000)
    try:
        for rec, status, parent in (
            (warm(), 200, None),
            (warm(invocation_id="a" * 32), 200, None),  # the cached block again, another id
            (warm(fuel_consumed=1234, cpu_seconds=None, stdout_truncated=True), 502, None),
            (make_record(), 200, TRACEPARENT),  # cold: load and compile too
            (make_record(Outcome.TRAP, cold_start=False, cache="memory"), 500, TRACEPARENT),
        ):
            span = d.start_request(
                "GET /hello", {"client.port": 5000}, parent, "k=v", base=http_attrs()
            )
            d.attach(span.traceparent, rec)
            span.attrs["http.response.status_code"] = status
            span.error = status >= 500
            span.end_ns = span.start_ns + 1000
            fused = encode_request(span)
            spans, _ = request_items(span, 10, 1000)
            assert norm(fused) == norm([s.encode() for s in spans])
            assert len(fused) == (5 if rec.cold_start else 3)
    finally:
        assert d.shutdown(10)


class SlowSink(Sink):
    def __init__(self, dest: Destination) -> None:
        super().__init__(dest)
        self.got = 0

    def _deliver(self, spans: Sequence[dx.SpanData], logs: Sequence[dx.LogData]) -> None:
        import time

        time.sleep(0.02)
        self.got += len(spans)


def test_bursts_are_exported_in_full_batches_without_waiting_for_the_delay() -> None:
    import time

    sink = SlowSink(Destination("jsonl", "test", ExportCounter()))
    pipe = dx.DirectPipeline(
        sync_sinks=[],
        batch_sinks=[sink],
        max_log_lines=10,
        max_log_bytes=1000,
        max_queue=1000,
        batch=4,
        delay=3600,  # far beyond the guard below: what arrives was sent for a full batch
    )
    try:
        for _ in range(40):  # while the exporter sleeps in a batch, the queue passes the batch size
            span = pipe.start_request("GET /hello", http_attrs())
            pipe.attach(span.traceparent, warm())
            pipe.end_request(span)
        deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
        while sink.got < 40 * 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.got == 40 * 3 and pipe.dropped == 0
    finally:
        assert pipe.shutdown(10)
