"""Telemetry made by the real OpenTelemetry Python SDK (captured in memory) for the
receiver tests: spans, metrics and log records of every attribute and AnyValue kind,
and the requests that the SDK's OTLP exporters send for them."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

RESOURCE = Resource.create({"service.name": "receiver-test", "deployment.environment": "test"})

__all__ = ["encode_logs", "encode_metrics", "encode_spans", "sdk_logs", "sdk_metrics", "sdk_spans"]


def sdk_spans() -> list[Any]:
    """A SERVER span with attributes of every kind, two children, an event and a link."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("wasmscope.test", "1.0")
    with tracer.start_as_current_span("GET /hello", kind=SpanKind.SERVER, attributes={
        "faas.name": "hello", "faas.coldstart": True, "wasm.fuel.consumed": 12345, "ratio": 0.25,
        "tags": ["a", "b"], "codes": [1, 2, 3], "flags": [True, False], "weights": [0.5, 1.5],
    }) as root:  # fmt: skip
        with tracer.start_as_current_span("compile"):
            pass
        link = Link(root.get_span_context(), {"link.kind": "self"})
        with tracer.start_as_current_span("execute", links=[link]) as child:
            child.add_event("exception", {"exception.type": "trap", "exception.message": "unreachable"})
            child.set_status(Status(StatusCode.ERROR, "trapped"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def sdk_metrics() -> Any:
    """Counter, up-down counter, histogram and observable gauge: a MetricsData."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("wasmscope.test", "1.0")
    meter.create_counter("faas.invocations").add(3, {"faas.name": "hello"})
    meter.create_up_down_counter("in_flight").add(-2)
    hist = meter.create_histogram("faas.invoke_duration", unit="s")
    for v in (0.001, 0.02, 0.3, 4.0):
        hist.record(v, {"faas.name": "hello"})
    meter.create_observable_gauge("memory", callbacks=[lambda _opts: [_observation(65536)]])
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def _observation(value: int) -> Any:
    from opentelemetry.metrics import Observation

    return Observation(value, {"k": "v"})


def sdk_logs() -> list[Any]:
    """Log records whose bodies take every AnyValue kind (string, int, double, bool,
    bytes, array, kvlist), with and without a span context."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("wasmscope.test", "1.0")
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer = tracer_provider.get_tracer("t")
    bodies: list[Any] = ["hello", 42, 2.5, True, b"\x00\xff", ["a", 1, [2.0]], {"k": "v", "n": {"m": [1, b"\x01"]}}]
    with tracer.start_as_current_span("invocation"):
        for i, body in enumerate(bodies):
            logger.emit(body=body, severity_text="INFO", attributes={"log.iostream": "stdout", "i": i,
                                                                    "list": ["x", "y"]})  # fmt: skip
    logger.emit(body="outside a span", attributes={"event.name": "wasmscope.profile"})
    provider.shutdown()
    return list(exporter.get_finished_logs())
