"""OTLP/gRPC with the real OpenTelemetry Python SDK gRPC exporters and a raw grpcio
channel: what arrives is what was sent, partial success, INVALID_ARGUMENT for bad
bytes, UNAVAILABLE with RetryInfo for back-pressure (and the SDK retries after it),
UNAUTHENTICATED without the token, the message size limit after gzip."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.collect.receiver.otlp_data import trace_request
from tests.collect.receiver.sdk_data import (
    encode_logs,
    encode_metrics,
    encode_spans,
    sdk_logs,
    sdk_metrics,
    sdk_spans,
)
from tests.collect.receiver.test_http import Refusing
from wasmscope.collect.receiver.decode import MIB
from wasmscope.collect.receiver.grpc import GrpcReceiver
from wasmscope.collect.receiver.sink import InMemorySink, Signal
from wasmscope.errors import OverloadedError, StoreError, UsageError

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture
def receiver(sink: InMemorySink) -> Iterator[GrpcReceiver]:
    with GrpcReceiver(sink, "127.0.0.1", 0, max_message=1 * MIB, workers=2) as r:
        yield r


@pytest.fixture
def channel(receiver: GrpcReceiver) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as ch:
        yield ch


def raw_export(channel: grpc.Channel, body: bytes, **kwargs: Any) -> bytes:
    call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    kwargs.setdefault("timeout", 30)
    return bytes(call(body, **kwargs))


def details_of(error: grpc.RpcError) -> status_pb2.Status:
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status()
    status.ParseFromString(trailers["grpc-status-details-bin"])
    return status


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_sdk_grpc_exporters_deliver_what_they_encode(
    receiver: GrpcReceiver, sink: InMemorySink, compression: grpc.Compression
) -> None:
    spans, metrics, logs = sdk_spans(), sdk_metrics(), sdk_logs()
    endpoint = f"http://127.0.0.1:{receiver.port}"
    exporters = [OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=compression),
                 OTLPMetricExporter(endpoint=endpoint, insecure=True, compression=compression),
                 OTLPLogExporter(endpoint=endpoint, insecure=True, compression=compression)]  # fmt: skip
    assert exporters[0].export(spans) is SpanExportResult.SUCCESS
    assert exporters[1].export(metrics) is MetricExportResult.SUCCESS
    assert exporters[2].export(logs) is LogRecordExportResult.SUCCESS
    for exporter in exporters:
        exporter.shutdown()
    assert [(s, r, n) for s, r, n in sink.requests] == [
        (Signal.TRACES, encode_spans(spans), 3),
        (Signal.METRICS, encode_metrics(metrics), 4),
        (Signal.LOGS, encode_logs(logs), 8),
    ]
    assert receiver.counters.get(Signal.LOGS, "grpc").received == 8


def test_full_and_partial_success(channel: grpc.Channel, sink: InMemorySink) -> None:
    stub = TraceServiceStub(channel)
    full = stub.Export(trace_request(3), timeout=30)
    assert not full.HasField("partial_success")
    bad = trace_request(4)
    bad.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x00" * 3
    partial = stub.Export(bad, timeout=30)
    assert partial.partial_success.rejected_spans == 1
    assert "1 spans rejected" in partial.partial_success.error_message
    assert [n for _, _, n in sink.requests] == [3, 3]
    assert stub.Export(ExportTraceServiceRequest(), timeout=30) == ExportTraceServiceResponse()
    assert len(sink.requests) == 2  # an empty request is a success with nothing to deliver


@pytest.mark.parametrize(
    "body",
    [trace_request(3).SerializeToString()[:-5], b"\x0a\x08\x12\x06\x12\x04\x2a\x02\xc3\x28", b"\xff\xff\xff"],
)
def test_undecodable_requests_are_invalid_argument_with_bad_request(
    channel: grpc.Channel, sink: InMemorySink, receiver: GrpcReceiver, body: bytes
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        raw_export(channel, body)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    status = details_of(info.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.details[0].Unpack(error_details_pb2.BadRequest())
    assert sink.requests == []
    assert receiver.counters.get(Signal.TRACES, "grpc").failed == 1


def test_a_message_over_the_limit_after_gzip_is_resource_exhausted(channel: grpc.Channel, sink: InMemorySink) -> None:
    big = trace_request(1)
    big.resource_spans[0].scope_spans[0].spans[0].name = "x" * (2 * MIB)  # compresses to ~2 KiB
    body = big.SerializeToString()
    assert len(gzip.compress(body)) < 64 * 1024
    with pytest.raises(grpc.RpcError) as info:
        raw_export(channel, body, compression=grpc.Compression.Gzip)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert sink.requests == []
    assert raw_export(channel, trace_request(2).SerializeToString(), compression=grpc.Compression.Gzip) == b""
    assert len(sink.requests) == 1


@pytest.mark.parametrize("error", [OverloadedError("queue full", 1.5), StoreError("disk full")])
def test_back_pressure_is_unavailable_with_retry_info(error: Exception) -> None:
    sink = Refusing(error)
    with GrpcReceiver(sink, "127.0.0.1", 0, store_retry_after=3.0) as receiver, \
            grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            raw_export(channel, trace_request(2).SerializeToString())
        assert receiver.counters.get(Signal.TRACES, "grpc").refused == 2
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    retry = error_details_pb2.RetryInfo()
    assert details_of(info.value).details[0].Unpack(retry)
    expected = (1, 500_000_000) if isinstance(error, OverloadedError) else (3, 0)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == expected
    assert sink.kept.requests == []


def test_the_sdk_grpc_exporter_retries_after_our_retry_info(caplog: pytest.LogCaptureFixture) -> None:
    sink = Refusing(OverloadedError("queue full", 1.25), times=1)
    spans = sdk_spans()
    with GrpcReceiver(sink, "127.0.0.1", 0) as receiver:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}", insecure=True, timeout=30)
        with caplog.at_level(logging.WARNING):
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert sink.calls == 2
    assert [r for _, r, _ in sink.kept.requests] == [encode_spans(spans)]
    assert "retrying in 1.25s" in caplog.text  # our RetryInfo, not the SDK's own backoff


def test_the_token(sink: InMemorySink) -> None:
    with GrpcReceiver(sink, "127.0.0.1", 0, token="t0k3n") as receiver, \
            grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:  # fmt: skip
        body = trace_request(1).SerializeToString()
        for metadata in ((), (("authorization", "Bearer nope"),), (("authorization", "t0k3n"),)):
            with pytest.raises(grpc.RpcError) as info:
                raw_export(channel, body, metadata=metadata)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        assert sink.requests == []
        raw_export(channel, body, metadata=(("authorization", "Bearer t0k3n"),))
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}", insecure=True,
                                    headers={"authorization": "Bearer t0k3n"})  # fmt: skip
        assert exporter.export(sdk_spans()) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert len(sink.requests) == 2


def test_a_port_in_use_is_a_usage_error(receiver: GrpcReceiver) -> None:
    with pytest.raises(UsageError):
        GrpcReceiver(InMemorySink(), "127.0.0.1", receiver.port).start()


def test_start_and_stop_are_idempotent(sink: InMemorySink) -> None:
    receiver = GrpcReceiver(sink, "127.0.0.1", 0)
    assert receiver.start() is receiver.start()
    port = receiver.port
    receiver.stop()
    receiver.stop()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError):
        raw_export(channel, b"", timeout=2)
