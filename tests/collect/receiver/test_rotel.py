"""A real collector in front: PyPI ``rotel`` (its ``rotel-agent``) takes the SDK's
telemetry and forwards it over OTLP/HTTP (gzip, its default) or OTLP/gRPC to our
receiver; what arrives is what the SDK sent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from tests._rotel import rotel_agent
from tests.collect.receiver.sdk_data import (
    encode_logs,
    encode_metrics,
    encode_spans,
    sdk_logs,
    sdk_metrics,
    sdk_spans,
)
from tests.collect.receiver.serving import serve
from wasmscope.collect.receiver.grpc import GrpcReceiver
from wasmscope.collect.receiver.http import OtlpHttpApp
from wasmscope.collect.receiver.sink import InMemorySink, Signal

pytest.importorskip("rotel")


@contextmanager
def rotel_forwarding_to(endpoint: str, protocol: str, tmp: Path, *extra: str) -> Iterator[str]:
    """rotel-agent listening for OTLP/HTTP, exporting to ``endpoint``; yields its URL."""
    args = ["--exporter", "otlp", "--otlp-exporter-endpoint", endpoint, "--otlp-exporter-protocol", protocol,
            "--batch-timeout", "50ms", *extra]  # fmt: skip
    with rotel_agent(tmp, *args) as agent:
        yield agent.url


def wait_until(ready: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"rotel did not forward {what}"
        time.sleep(0.05)


def flat(signal: Signal, requests: list[Any]) -> tuple[list[Any], list[bytes]]:
    """(resource, sorted serialized items) of every request, whatever the batching."""
    resources, items = [], []
    for req in requests:
        if signal is Signal.TRACES:
            groups = [(r.resource, s.spans) for r in req.resource_spans for s in r.scope_spans]
        elif signal is Signal.LOGS:
            groups = [(r.resource, s.log_records) for r in req.resource_logs for s in r.scope_logs]
        else:
            groups = [
                (r.resource, s.metrics) for r in req.resource_metrics for s in r.scope_metrics
            ]
        for resource, group in groups:
            resources.append(resource)
            items.extend(x.SerializeToString(deterministic=True) for x in group)
    return resources, sorted(items)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_rotel_in_front_forwards_what_the_sdk_sent(tmp_path: Path, protocol: str) -> None:
    sink = InMemorySink()
    with ExitStack() as stack:
        if protocol == "http":
            ours = stack.enter_context(serve(OtlpHttpApp(sink)))
        else:
            ours = (
                f"http://127.0.0.1:{stack.enter_context(GrpcReceiver(sink, '127.0.0.1', 0)).port}"
            )
        url = stack.enter_context(rotel_forwarding_to(ours, protocol, tmp_path))
        spans, metrics, logs = sdk_spans(), sdk_metrics(), sdk_logs()
        exporters = [OTLPSpanExporter(endpoint=f"{url}/v1/traces"), OTLPMetricExporter(endpoint=f"{url}/v1/metrics"),
                     OTLPLogExporter(endpoint=f"{url}/v1/logs")]  # fmt: skip
        assert exporters[0].export(spans) is SpanExportResult.SUCCESS
        assert exporters[1].export(metrics) is MetricExportResult.SUCCESS
        assert exporters[2].export(logs) is LogRecordExportResult.SUCCESS
        for exporter in exporters:
            exporter.shutdown()
        wait_until(lambda: sink.items(Signal.TRACES) >= 3 and sink.items(Signal.LOGS) >= 8
                   and sink.items(Signal.METRICS) >= 4, "everything")  # fmt: skip
    for signal, sent in ((Signal.TRACES, encode_spans(spans)), (Signal.METRICS, encode_metrics(metrics)),
                         (Signal.LOGS, encode_logs(logs))):  # fmt: skip
        got = [r for s, r, _ in sink.requests if s is signal]
        got_resources, got_items = flat(signal, got)
        sent_resources, sent_items = flat(signal, [sent])
        assert got_items == sent_items, signal
        assert {r.SerializeToString(deterministic=True) for r in got_resources} == {
            r.SerializeToString(deterministic=True) for r in sent_resources}  # fmt: skip


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_rotel_retries_what_our_back_pressure_refused(tmp_path: Path, protocol: str) -> None:
    """429 + Retry-After (HTTP) and UNAVAILABLE + RetryInfo (gRPC) are retryable for a
    real collector: rotel sends the refused batch again and it arrives once."""
    from tests.collect.receiver.test_http import Refusing
    from wasmscope.errors import OverloadedError

    sink = Refusing(OverloadedError("queue full", 1.0), times=1)
    with ExitStack() as stack:
        if protocol == "http":
            ours = stack.enter_context(serve(OtlpHttpApp(sink)))
        else:
            ours = (
                f"http://127.0.0.1:{stack.enter_context(GrpcReceiver(sink, '127.0.0.1', 0)).port}"
            )
        # rotel's first backoff is 5 s by default (whatever the Retry-After): shortened
        url = stack.enter_context(rotel_forwarding_to(ours, protocol, tmp_path,
                                                      "--otlp-exporter-retry-initial-backoff", "200ms"))  # fmt: skip
        spans = sdk_spans()
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        wait_until(lambda: sink.kept.items(Signal.TRACES) >= 3, "the refused spans")
    assert sink.calls == 2
    _, got = flat(Signal.TRACES, [r for _, r, _ in sink.kept.requests])
    assert got == flat(Signal.TRACES, [encode_spans(spans)])[1]
