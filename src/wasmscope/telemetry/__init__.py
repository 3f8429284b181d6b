"""Every signal out through OpenTelemetry: spans, metrics and logs of invocations.

::

    from wasmscope.telemetry import Telemetry

    with Telemetry.from_options(otlp="http://127.0.0.1:4318") as tel:
        trace_id = tel.record_invocation(record, parent=traceparent_or_none)

Modules: :mod:`.semconv` (every attribute and metric name, once), :mod:`.mapping`
(record -> attributes, pure), :mod:`.otel` (the SDK: providers, resource, trace
context), :mod:`.exporters` (console, JSONL, OTLP/HTTP, failure guard),
:mod:`.pipeline` (:class:`Telemetry`), :mod:`.stats`, :mod:`.tracecontext` (the one W3C
``traceparent`` parser, the samplers), :mod:`.direct` (serve's pipeline without the
SDK's span objects), :mod:`.wire` (the OTLP protobuf encoder), :mod:`.reports` (pushed
reports). Private: ``_span_data``, ``_encoding``, ``_sinks``, ``_serve_metrics``,
``_otlp_http`` (the one OTLP/HTTP client), ``_otlp_env`` (the one reader of the
``OTEL_*`` variables).

Importing this package loads no OpenTelemetry module; :meth:`Telemetry.from_options`
does, and raises :class:`~wasmscope.errors.UsageError` when the OpenTelemetry SDK
(part of the plain install) is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports
from wasmscope.telemetry import semconv
from wasmscope.telemetry.stats import TelemetryStats

if TYPE_CHECKING:
    from wasmscope.telemetry._span_data import SpanNode
    from wasmscope.telemetry.otel import InMemory, context_from_traceparent, traceparent
    from wasmscope.telemetry.pipeline import Telemetry

__all__ = [
    "InMemory",
    "SpanNode",
    "Telemetry",
    "TelemetryStats",
    "context_from_traceparent",
    "semconv",
    "traceparent",
]

_LAZY = {
    "Telemetry": "wasmscope.telemetry.pipeline",
    "InMemory": "wasmscope.telemetry.otel",
    "SpanNode": "wasmscope.telemetry._span_data",
    "context_from_traceparent": "wasmscope.telemetry.otel",
    "traceparent": "wasmscope.telemetry.otel",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
