"""The real OpenTelemetry Python SDK exporters (http/protobuf, plain and gzip) send
traces, metrics and logs to the receiver under real uvicorn: what arrives is what the
SDK encoded; back-pressure makes the SDK retry after our Retry-After; the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.collect.receiver.sdk_data import (
    encode_logs,
    encode_metrics,
    encode_spans,
    sdk_logs,
    sdk_metrics,
    sdk_spans,
)
from tests.collect.receiver.serving import serve
from tests.collect.receiver.test_http import Refusing
from wasmscope.collect.receiver.http import OtlpHttpApp
from wasmscope.collect.receiver.sink import InMemorySink, Signal
from wasmscope.errors import OverloadedError


@pytest.fixture
def sink() -> InMemorySink:
    return InMemorySink()


@pytest.fixture
def url(sink: InMemorySink) -> Iterator[str]:
    with serve(OtlpHttpApp(sink)) as base:
        yield base


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_traces_metrics_and_logs_arrive_as_sent(url: str, sink: InMemorySink, compression: Any) -> None:
    spans, metrics, logs = sdk_spans(), sdk_metrics(), sdk_logs()
    span_exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression)
    assert span_exporter.export(spans) is SpanExportResult.SUCCESS
    metric_exporter = OTLPMetricExporter(endpoint=f"{url}/v1/metrics", compression=compression)
    assert metric_exporter.export(metrics) is MetricExportResult.SUCCESS
    log_exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", compression=compression)
    assert log_exporter.export(logs) is LogRecordExportResult.SUCCESS
    for exporter in (span_exporter, metric_exporter, log_exporter):
        exporter.shutdown()
    assert [(s, r) for s, r, _ in sink.requests] == [
        (Signal.TRACES, encode_spans(spans)),
        (Signal.METRICS, encode_metrics(metrics)),
        (Signal.LOGS, encode_logs(logs)),
    ]
    assert [n for _, _, n in sink.requests] == [3, 4, 8]  # one data point a metric


@pytest.fixture
def sdk_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OTLP exporters' loggers without filters for the test. A Telemetry made
    earlier in this process (tests/telemetry) quiets the SDK exporters' warnings with a
    filter on their loggers that stays for the process, and this test reads one of them."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("opentelemetry.exporter") and isinstance(logger, logging.Logger):
            monkeypatch.setattr(logger, "filters", [])


@pytest.mark.usefixtures("sdk_warnings")
def test_the_sdk_retries_after_our_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    sink = Refusing(OverloadedError("queue full", 2.0), times=1)
    spans = sdk_spans()
    with serve(OtlpHttpApp(sink)) as base:
        exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=30)
        with caplog.at_level(logging.WARNING):
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert sink.calls == 2
    assert [r for _, r, _ in sink.kept.requests] == [encode_spans(spans)]
    # the SDK waited our Retry-After (2 s), not its own first backoff (about 1 s)
    assert "retrying in 2.00s" in caplog.text


def test_sdk_with_and_without_the_token(sink: InMemorySink) -> None:
    spans = sdk_spans()
    with serve(OtlpHttpApp(sink, token="t0k3n")) as base:
        without = OTLPSpanExporter(endpoint=f"{base}/v1/traces")
        assert without.export(spans) is SpanExportResult.FAILURE  # 401: not retried
        with_token = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers={"Authorization": "Bearer t0k3n"})
        assert with_token.export(spans) is SpanExportResult.SUCCESS
        without.shutdown()
        with_token.shutdown()
    assert [r for _, r, _ in sink.requests] == [encode_spans(spans)]
