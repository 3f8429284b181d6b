"""OTLP/HTTP answers, to the letter of the specification, with the ASGI app run
in-process (httpx's ASGITransport) where the transport does not matter, and under
real uvicorn where it does (streamed bodies, a gzip bomb on the wire)."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.collect.receiver.otlp_data import (
    child_spans_request,
    logs_request,
    metrics_request,
    to_otlp_json,
    trace_request,
)
from tests.collect.receiver.serving import serve
from tests.collect.receiver.test_decode import gzip_of_zeros
from wasmscope.collect.receiver.decode import MIB, Limits
from wasmscope.collect.receiver.http import OtlpHttpApp
from wasmscope.collect.receiver.sink import InMemorySink, Signal
from wasmscope.errors import OverloadedError, StoreError

PB = "application/x-protobuf"
JSON = "application/json"
RESPONSES = {Signal.TRACES: ExportTraceServiceResponse, Signal.METRICS: ExportMetricsServiceResponse,
             Signal.LOGS: ExportLogsServiceResponse}  # fmt: skip
REQUESTS = {Signal.TRACES: child_spans_request, Signal.METRICS: metrics_request, Signal.LOGS: logs_request}


def post(app: OtlpHttpApp, path: str, body: bytes, content_type: str | None = PB, method: str = "POST",
         **headers: str) -> httpx.Response:  # fmt: skip
    """One request to ``app`` in-process."""
    if content_type is not None:
        headers["content-type"] = content_type

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as client:
            return await client.request(method, path, content=body, headers=headers)

    return asyncio.run(go())


def status_of(response: httpx.Response) -> Any:
    """The google.rpc.Status body, in the response's encoding."""
    status = status_pb2.Status()
    if response.headers["content-type"] == JSON:
        json_format.Parse(response.text, status)
    else:
        status.ParseFromString(response.content)
    assert status.message
    return status


def success_of(signal: Signal, response: httpx.Response, encoding: str) -> Any:
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == encoding
    message = RESPONSES[signal]()
    if encoding == JSON:
        json_format.Parse(response.text, message)
    else:
        message.ParseFromString(response.content)
    return message


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture
def app(sink: InMemorySink) -> Iterator[OtlpHttpApp]:
    app = OtlpHttpApp(sink, limits=Limits(max_body=1 * MIB, max_decoded=4 * MIB), workers=2)
    yield app
    app.close()


@pytest.mark.parametrize("signal", list(Signal))
@pytest.mark.parametrize("encoding", [PB, JSON])
def test_full_success_delivers_the_request_and_leaves_partial_success_unset(
    app: OtlpHttpApp, sink: InMemorySink, signal: Signal, encoding: str
) -> None:
    sent = REQUESTS[signal]()
    body = sent.SerializeToString() if encoding == PB else to_otlp_json(sent)
    response = post(app, f"/v1/{signal.value}", body, encoding)
    assert not success_of(signal, response, encoding).HasField("partial_success")
    if encoding == JSON:
        assert response.json() == {}
    [(got_signal, got, items)] = sink.requests
    assert (got_signal, got) == (signal, sent)
    assert items == {Signal.TRACES: 3, Signal.METRICS: 5, Signal.LOGS: 8}[signal]
    counts = app.counters.get(signal, "http")
    assert (counts.requests, counts.received, counts.rejected, counts.failed) == (1, items, 0, 0)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_bodies_are_taken(app: OtlpHttpApp, sink: InMemorySink, coding: str) -> None:
    import zlib

    sent = trace_request(20)
    raw = sent.SerializeToString()
    body = gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)
    response = post(app, "/v1/traces", body, PB, **{"content-encoding": coding})
    success_of(Signal.TRACES, response, PB)
    assert sink.requests[0][1] == sent


@pytest.mark.parametrize("encoding", [PB, JSON])
def test_partial_success_counts_the_rejected_spans(app: OtlpHttpApp, sink: InMemorySink, encoding: str) -> None:
    sent = trace_request(5)
    spans = sent.resource_spans[0].scope_spans[0].spans
    spans[0].span_id = b"\x01\x02"
    spans[3].trace_id = bytes(16)
    body = sent.SerializeToString() if encoding == PB else to_otlp_json(sent)
    response = post(app, "/v1/traces", body, encoding)
    answer = success_of(Signal.TRACES, response, encoding)
    assert answer.partial_success.rejected_spans == 2
    if encoding == JSON:  # proto3 JSON: lowerCamelCase, int64 as a string
        assert response.json()["partialSuccess"]["rejectedSpans"] == "2"
    assert "2 spans rejected" in answer.partial_success.error_message
    [(_, got, items)] = sink.requests
    assert items == 3
    assert [s.name for s in got.resource_spans[0].scope_spans[0].spans] == [spans[i].name for i in (1, 2, 4)]
    counts = app.counters.get(Signal.TRACES, "http")
    assert (counts.received, counts.rejected) == (3, 2)


def test_partial_success_for_logs_and_metrics(app: OtlpHttpApp, sink: InMemorySink) -> None:
    logs = logs_request()
    logs.resource_logs[0].scope_logs[0].log_records[0].span_id = b"\x01"
    answer = success_of(Signal.LOGS, post(app, "/v1/logs", logs.SerializeToString()), PB)
    assert answer.partial_success.rejected_log_records == 1
    metrics = metrics_request()
    metrics.resource_metrics[0].scope_metrics[0].metrics.add(name="nothing")
    answer = success_of(Signal.METRICS, post(app, "/v1/metrics", to_otlp_json(metrics), JSON), JSON)
    # a warning: nothing rejected (the metric had no data point), a message
    assert answer.HasField("partial_success")
    assert answer.partial_success.rejected_data_points == 0
    assert "without data" in answer.partial_success.error_message
    assert [items for _, _, items in sink.requests] == [7, 5]


def test_everything_rejected_delivers_nothing(app: OtlpHttpApp, sink: InMemorySink) -> None:
    sent = trace_request(2)
    for span in sent.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b""
    answer = success_of(Signal.TRACES, post(app, "/v1/traces", sent.SerializeToString()), PB)
    assert answer.partial_success.rejected_spans == 2
    assert sink.requests == []


def test_an_empty_protobuf_body_is_an_empty_request_answered_with_success(app: OtlpHttpApp, sink: InMemorySink) -> None:
    for signal in Signal:
        response = post(app, f"/v1/{signal.value}", b"")
        assert not success_of(signal, response, PB).HasField("partial_success")
        assert response.content == b""
    response = post(app, "/v1/traces", gzip.compress(b""), **{"content-encoding": "gzip"})
    assert response.status_code == 200
    assert sink.requests == []  # nothing to keep, nothing delivered


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (trace_request(3).SerializeToString()[:-5], PB),  # truncated protobuf
        (b"\x0a\x08\x12\x06\x12\x04\x2a\x02\xc3\x28", PB),  # invalid UTF-8 in a string field
        (b"", JSON),  # an empty body is not JSON
        (b"{'single': 'quotes'}", JSON),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": ["a list"]}]}]}]}', JSON),  # wrong type
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', JSON),  # not hex
    ],
)
def test_undecodable_bodies_get_400_with_a_bad_request_status(
    app: OtlpHttpApp, sink: InMemorySink, body: bytes, content_type: str
) -> None:
    response = post(app, "/v1/traces", body, content_type)
    assert response.status_code == 400
    assert response.headers["content-type"] == content_type  # the request's encoding
    status = status_of(response)
    assert status.code == 3  # INVALID_ARGUMENT, for troubleshooting only
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert bad.field_violations[0].description == status.message
    assert sink.requests == []
    assert app.counters.get(Signal.TRACES, "http").failed == 1


def test_a_broken_gzip_body_is_400(app: OtlpHttpApp, sink: InMemorySink) -> None:
    body = gzip.compress(trace_request(3).SerializeToString())[:-4]
    response = post(app, "/v1/traces", body, **{"content-encoding": "gzip"})
    assert response.status_code == 400
    assert "truncated" in status_of(response).message
    assert sink.requests == []


def test_wrong_path_method_media_type_and_coding(app: OtlpHttpApp, sink: InMemorySink) -> None:
    body = trace_request(1).SerializeToString()
    response = post(app, "/v1/profiles", body)
    assert response.status_code == 404
    status_of(response)
    response = post(app, "/v1/traces", b"", method="GET")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    response = post(app, "/v1/traces", body, "text/plain")
    assert response.status_code == 415
    assert response.headers["content-type"] == PB  # not an OTLP encoding: the Status is protobuf
    assert "text/plain" in status_of(response).message
    response = post(app, "/v1/traces", body, None)
    assert response.status_code == 415
    response = post(app, "/v1/traces", body, JSON, **{"content-encoding": "br"})
    assert (response.status_code, response.headers["content-type"]) == (415, JSON)
    assert "br" in status_of(response).message
    assert sink.requests == []


def test_content_length_over_the_limit_is_413_before_reading(app: OtlpHttpApp, sink: InMemorySink) -> None:
    response = post(app, "/v1/traces", bytes(MIB + 1))
    assert response.status_code == 413
    assert response.headers["connection"] == "close"  # the body was left unread
    status_of(response)
    assert sink.requests == []


def test_a_body_that_inflates_past_the_limit_is_413(app: OtlpHttpApp, sink: InMemorySink) -> None:
    response = post(app, "/v1/traces", gzip.compress(bytes(4 * MIB + 1)), **{"content-encoding": "gzip"})
    assert response.status_code == 413
    assert "inflates" in status_of(response).message
    assert sink.requests == []


class Refusing:
    """A sink that raises ``error`` for its first ``times`` requests, then keeps them."""

    def __init__(self, error: Exception, times: int = 10**9) -> None:
        self.error = error
        self.times = times
        self.calls = 0
        self.kept = InMemorySink()

    def deliver(self, signal: Signal, request: Any, items: int) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        self.kept.deliver(signal, request, items)


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [(OverloadedError("queue full", 2.5), 429, "3"), (OverloadedError("queue full", 0.0), 429, "1"),
     (StoreError("disk full"), 503, "2")],
)  # fmt: skip
def test_back_pressure_and_store_failures_are_retryable_with_retry_after(
    error: Exception, status: int, retry_after: str
) -> None:
    sink = Refusing(error)
    app = OtlpHttpApp(sink)
    try:
        for encoding in (PB, JSON):
            sent = trace_request(4)
            body = sent.SerializeToString() if encoding == PB else to_otlp_json(sent)
            response = post(app, "/v1/traces", body, encoding)
            assert response.status_code == status
            assert response.headers["retry-after"] == retry_after
            assert response.headers["content-type"] == encoding
            info = error_details_pb2.RetryInfo()
            assert status_of(response).details[0].Unpack(info)
            assert info.retry_delay.seconds == int(retry_after)
        assert app.counters.get(Signal.TRACES, "http").refused == 8
        assert sink.kept.requests == []
    finally:
        app.close()


def test_a_sink_bug_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = OtlpHttpApp(Refusing(RuntimeError("bug")))
    try:
        response = post(app, "/v1/logs", logs_request().SerializeToString())
        assert response.status_code == 500
        assert "the OTLP sink failed" in caplog.text
    finally:
        app.close()


def test_the_bearer_token(sink: InMemorySink) -> None:
    app = OtlpHttpApp(sink, token="s3cret")
    try:
        body = trace_request(1).SerializeToString()
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret"},
                        {"authorization": "s3cret"}):  # fmt: skip
            response = post(app, "/v1/traces", body, **headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            status_of(response)
        assert sink.requests == []
        assert post(app, "/v1/traces", body, authorization="Bearer s3cret").status_code == 200
        assert post(app, "/v1/traces", body, authorization="bearer s3cret").status_code == 200
        assert len(sink.requests) == 2
    finally:
        app.close()


def test_requests_past_max_in_flight_get_429_at_once() -> None:
    entered, release = threading.Event(), threading.Event()

    class Blocking:
        def __init__(self) -> None:
            self.kept = InMemorySink()

        def deliver(self, signal: Signal, request: Any, items: int) -> None:
            entered.set()
            assert release.wait(30)
            self.kept.deliver(signal, request, items)

    sink = Blocking()
    app = OtlpHttpApp(sink, max_in_flight=1)
    body = trace_request(2).SerializeToString()

    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as client:
            first = asyncio.create_task(client.post("/v1/traces", content=body, headers={"content-type": PB}))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            second = await client.post("/v1/traces", content=body, headers={"content-type": PB})
            release.set()
            return await first, second

    try:
        first, second = asyncio.run(go())
    finally:
        release.set()
        app.close()
    assert first.status_code == 200
    assert (second.status_code, second.headers["retry-after"]) == (429, "1")
    assert len(sink.kept.requests) == 1


# --- on the wire (real uvicorn) ---------------------------------------------------------

def test_a_gzip_bomb_on_the_wire_is_413_and_costs_no_memory(sink: InMemorySink) -> None:
    bomb = gzip_of_zeros(1024 * MIB)  # 1 GiB of zeros, about 1 MiB on the wire
    app = OtlpHttpApp(sink)  # the default limits
    with serve(app) as url:
        response = httpx.post(f"{url}/v1/traces", content=bomb, timeout=60,
                              headers={"content-type": PB, "content-encoding": "gzip"})  # fmt: skip
    assert response.status_code == 413
    assert str(64 * MIB) in status_of(response).message
    assert sink.requests == []


def test_a_streamed_body_over_the_limit_is_413(sink: InMemorySink) -> None:
    app = OtlpHttpApp(sink, limits=Limits(max_body=256 * 1024))

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer coding
        for _ in range(64):
            yield bytes(16 * 1024)

    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/v1/traces", content=chunks(), headers={"content-type": PB})
        assert response.status_code == 413
        assert "over 262144 bytes" in status_of(response).message
        ok = client.post("/v1/traces", content=trace_request(2).SerializeToString(), headers={"content-type": PB})
        assert ok.status_code == 200
    assert len(sink.requests) == 1


def test_keep_alive_serves_many_requests_on_one_connection(sink: InMemorySink) -> None:
    app = OtlpHttpApp(sink)
    body = trace_request(10).SerializeToString()
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(20):
            assert client.post("/v1/traces", content=body, headers={"content-type": PB}).status_code == 200
        # a small unwanted body is read and dropped: the connection serves the next request
        assert client.post("/v1/nope", content=b"x" * 100, headers={"content-type": PB}).status_code == 404
        response = client.post("/v1/logs", content=json.dumps({}).encode(), headers={"content-type": JSON})
        assert response.status_code == 200
    assert sink.items(Signal.TRACES) == 200
