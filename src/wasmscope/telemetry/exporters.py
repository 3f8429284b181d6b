"""Exporters: console (human), JSON lines, OTLP/HTTP, and the guard around each.

Every class here is an OpenTelemetry SDK exporter (``SpanExporter``,
``LogRecordExporter``, ``MetricExporter``), so the SDK's processors and readers
drive them. This module imports ``opentelemetry``; it is loaded only through
:mod:`wasmscope.telemetry.otel` (which checks that the ``otel`` extra is installed).

- ``Console*Exporter``: one short line per span / log record / metric point, to
  stderr by default.
- ``Jsonl*Exporter``: one JSON object per line and per span, log record or metric
  data point, all signals in one file (``"signal": "span" | "log" | "metric"``),
  ids as lowercase hex. See :func:`span_to_json`, :func:`log_to_json`,
  :func:`metrics_to_json`.
- :func:`otlp_exporters`: the official OTLP/HTTP exporters
  (``opentelemetry-exporter-otlp-proto-http``); they read the standard
  ``OTEL_EXPORTER_OTLP_*`` variables themselves.
- ``Guarded*Exporter``: wraps any exporter so that a failure (receiver down,
  timeout, an exception) is counted in :class:`~wasmscope.telemetry.stats.ExportCounter`
  and logged once per burst on the ``wasmscope.telemetry`` logger, never raised.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from wasmscope.telemetry.stats import ExportCounter

__all__ = [
    "ConsoleLogExporter",
    "ConsoleMetricExporter",
    "ConsoleSpanExporter",
    "Destination",
    "FanOutMetricExporter",
    "GuardedLogExporter",
    "GuardedMetricExporter",
    "GuardedSpanExporter",
    "JsonlLogExporter",
    "JsonlMetricExporter",
    "JsonlSpanExporter",
    "JsonlWriter",
    "count_points",
    "log_to_json",
    "metrics_to_json",
    "otlp_exporters",
    "quiet_sdk_exporter_logs",
    "span_to_json",
]

log = logging.getLogger("wasmscope.telemetry")


# --- plain-data views of SDK objects -------------------------------------------------
def _hex_trace(value: int | None) -> str | None:
    return f"{value:032x}" if value else None


def _hex_span(value: int | None) -> str | None:
    return f"{value:016x}" if value else None


def _attrs(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}


_RESOURCE_CACHE: dict[int, tuple[Resource, dict[str, Any]]] = {}


def _resource(resource: Resource | None) -> dict[str, Any]:
    if resource is None:
        return {}
    cached = _RESOURCE_CACHE.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    value = _attrs(resource.attributes)
    _RESOURCE_CACHE[id(resource)] = (resource, value)
    return value


def span_to_json(span: ReadableSpan) -> dict[str, Any]:
    """One span as a JSON-ready dict (see the README's JSONL format)."""
    ctx = span.context
    parent = span.parent
    status = span.status
    return {
        "signal": "span",
        "name": span.name,
        "trace_id": _hex_trace(ctx.trace_id) if ctx else None,
        "span_id": _hex_span(ctx.span_id) if ctx else None,
        "parent_span_id": _hex_span(parent.span_id) if parent else None,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": {"code": status.status_code.name, "description": status.description},
        "attributes": _attrs(span.attributes),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": _attrs(e.attributes)}
            for e in span.events
        ],
        "resource": _resource(span.resource),
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
    }


def log_to_json(item: ReadableLogRecord) -> dict[str, Any]:
    """One log record as a JSON-ready dict."""
    r = item.log_record
    out = {
        "signal": "log",
        "time_ns": r.timestamp,
        "observed_time_ns": r.observed_timestamp,
        "severity_text": r.severity_text,
        "severity_number": r.severity_number.value if r.severity_number is not None else None,
        "body": r.body,
        "trace_id": _hex_trace(r.trace_id),
        "span_id": _hex_span(r.span_id),
        "attributes": _attrs(r.attributes),
        "resource": _resource(item.resource),
        "scope": item.instrumentation_scope.name if item.instrumentation_scope else None,
    }
    if r.event_name:
        out["event_name"] = r.event_name
    return out


def metrics_to_json(data: MetricsData) -> list[dict[str, Any]]:
    """One dict per metric data point (sums and gauges: ``value``; histograms:
    ``count``, ``sum``, ``min``, ``max``, ``bucket_counts``, ``explicit_bounds``)."""
    out: list[dict[str, Any]] = []
    for rm in data.resource_metrics:
        resource = _resource(rm.resource)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                d = metric.data
                base: dict[str, Any] = {
                    "signal": "metric",
                    "name": metric.name,
                    "unit": metric.unit,
                    "description": metric.description,
                }
                if isinstance(d, Sum):
                    base["kind"] = "sum"
                    base["monotonic"] = d.is_monotonic
                    base["temporality"] = d.aggregation_temporality.name.lower()
                elif isinstance(d, Gauge):
                    base["kind"] = "gauge"
                elif isinstance(d, Histogram):
                    base["kind"] = "histogram"
                    base["temporality"] = d.aggregation_temporality.name.lower()
                else:
                    base["kind"] = type(d).__name__.lower()
                for p in d.data_points:
                    point = dict(base)
                    point["start_time_ns"] = getattr(p, "start_time_unix_nano", None)
                    point["time_ns"] = p.time_unix_nano
                    point["attributes"] = _attrs(p.attributes)
                    if hasattr(p, "value"):
                        point["value"] = p.value
                    else:
                        for key in ("count", "sum", "min", "max"):
                            point[key] = getattr(p, key, None)
                        point["bucket_counts"] = list(getattr(p, "bucket_counts", ()))
                        point["explicit_bounds"] = list(getattr(p, "explicit_bounds", ()))
                    point["resource"] = resource
                    point["scope"] = sm.scope.name if sm.scope else None
                    out.append(point)
    return out


def count_points(data: MetricsData) -> int:
    return sum(
        len(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )


# --- console (human) -----------------------------------------------------------------
_CONSOLE_ATTRS = (
    "wasm.outcome",
    "error.type",
    "faas.coldstart",
    "wasm.fuel.consumed",
    "wasm.memory.peak",
    "wasm.exit_code",
)


def _short(text: str, limit: int = 160) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Stream:
    def __init__(self, stream: IO[str] | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write_lines(self, lines: Sequence[str]) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        with self._lock:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()


class ConsoleSpanExporter(SpanExporter):
    """``span  <name>  <ms>  <status>  trace=<id8> [key=value ...]`` on stderr."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._out = _Stream(stream)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ms = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
            trace = _hex_trace(s.context.trace_id) if s.context else None
            status = s.status.status_code.name
            line = f"span   {s.name}  {ms:.3f} ms  {status}  trace={(trace or '-')[:8]}"
            attrs = s.attributes or {}
            extra = [f"{k}={attrs[k]!s}" for k in _CONSOLE_ATTRS if k in attrs]
            if extra:
                line += "  " + " ".join(extra)
            if s.status.status_code is StatusCode.ERROR and s.status.description:
                line += f"  ({_short(s.status.description, 100)})"
            lines.append(line)
        self._out.write_lines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class ConsoleLogExporter(LogRecordExporter):
    """``log    <SEVERITY> <stream>: <body>  trace=<id8>`` on stderr."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._out = _Stream(stream)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        lines = []
        for item in batch:
            r = item.log_record
            attrs = r.attributes or {}
            where = str(attrs.get("log.iostream", ""))
            prefix = f"{where}: " if where else ""
            trace = _hex_trace(r.trace_id) or "-"
            severity = r.severity_text or (r.severity_number.name if r.severity_number else "")
            lines.append(f"log    {severity:<5} {prefix}{_short(str(r.body))}  trace={trace[:8]}")
        self._out.write_lines(lines)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class ConsoleMetricExporter(MetricExporter):
    """``metric <name>{attributes} = <value> <unit>`` (histograms: count, sum) on stderr."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self._out = _Stream(stream)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        lines = []
        for p in metrics_to_json(metrics_data):
            labels = ",".join(f"{k}={v}" for k, v in sorted(p["attributes"].items()))
            unit = p["unit"] or ""
            if p["kind"] == "histogram":
                value = f"count={p['count']} sum={p['sum']:.6g}"
            else:
                value = (
                    f"{p['value']:.6g}"
                    if isinstance(p.get("value"), float)
                    else str(p.get("value"))
                )
            lines.append(f"metric {p['name']}{{{labels}}} = {value} {unit}".rstrip())
        if lines:
            self._out.write_lines(lines)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


# --- JSON lines ---------------------------------------------------------------------
_RESOURCE_JSON: dict[int, tuple[dict[str, Any], str]] = {}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def _dumps_line(obj: dict[str, Any]) -> str:
    """``obj`` as one JSON line; the (shared, cached) resource is serialized once per
    resource, not once per line, and goes last."""
    resource = obj.get("resource")
    if not resource:
        return _dumps(obj) + "\n"
    cached = _RESOURCE_JSON.get(id(resource))
    if cached is None or cached[0] is not resource:
        cached = (resource, _dumps(resource))
        _RESOURCE_JSON[id(resource)] = cached
    rest = {k: v for k, v in obj.items() if k != "resource"}
    return _dumps(rest)[:-1] + ',"resource":' + cached[1] + "}\n"


class JsonlWriter:
    """One file (or text stream) shared by the three JSONL exporters.

    A path is opened in append mode; each batch is written with one ``write`` call
    and flushed, so several processes may append to the same file line by line.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[str]) -> None:
        self._lock = threading.Lock()
        self._owned = not hasattr(target, "write")
        if self._owned:
            path = os.fspath(target)  # type: ignore[arg-type]
            self.name = path
            self._stream: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        else:
            self._stream = target  # type: ignore[assignment]
            self.name = getattr(target, "name", "<stream>")
        self._users = 0

    def acquire(self) -> JsonlWriter:
        self._users += 1
        return self

    def write(self, objects: Sequence[dict[str, Any]]) -> None:
        if not objects:
            return
        text = "".join(_dumps_line(o) for o in objects)
        with self._lock:
            if self._stream is None:
                raise ValueError(f"JSONL file {self.name} is closed")
            self._stream.write(text)
            self._stream.flush()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users <= 0 and self._owned and self._stream is not None:
                self._stream.close()
                self._stream = None


class JsonlSpanExporter(SpanExporter):
    def __init__(self, writer: JsonlWriter) -> None:
        self._writer = writer.acquire()
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._writer.write([span_to_json(s) for s in spans])
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.release()


class JsonlLogExporter(LogRecordExporter):
    def __init__(self, writer: JsonlWriter) -> None:
        self._writer = writer.acquire()
        self._closed = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._writer.write([log_to_json(r) for r in batch])
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonlMetricExporter(MetricExporter):
    def __init__(self, writer: JsonlWriter) -> None:
        super().__init__()
        self._writer = writer.acquire()
        self._closed = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self._writer.write(metrics_to_json(metrics_data))
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if not self._closed:
            self._closed = True
            self._writer.release()


# --- OTLP/HTTP ------------------------------------------------------------------------
_SDK_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
)


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


class _SdkExporterLogFilter(logging.Filter):
    """Turns the OTLP exporters' own warnings (one per retry, per batch) into DEBUG
    records on ``wasmscope.telemetry.sdk``, remembering the last one: the guard
    reports failures once per burst instead."""

    def __init__(self) -> None:
        super().__init__()
        self.last_message: str | None = None
        self.last_cause: str | None = None
        self._debug = logging.getLogger("wasmscope.telemetry.sdk")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        self.last_message = message
        if message.startswith("Transient error"):  # names the cause (connection refused, 503...)
            errno = _ERRNO.search(message)
            self.last_cause = (
                errno.group(0) if errno else message.split(" retrying in ")[0].rstrip(",")
            )
        self._debug.debug("%s: %s", record.name, message)
        return False


_SDK_FILTER = _SdkExporterLogFilter()


def quiet_sdk_exporter_logs() -> None:
    """Install the filter on the OTLP exporters' loggers (idempotent)."""
    for name in _SDK_EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _SDK_FILTER not in logger.filters:
            logger.addFilter(_SDK_FILTER)


def _signal_endpoint(base: str, path: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` semantics: the base URL plus ``v1/<signal>``."""
    return base.rstrip("/") + "/" + path


def otlp_exporters(
    endpoint: str | None = None,
    *,
    timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[SpanExporter, LogRecordExporter, MetricExporter]:
    """The official OTLP/HTTP span, log and metric exporters.

    ``endpoint`` is a base URL (``http://127.0.0.1:4318``): ``/v1/traces``,
    ``/v1/logs`` and ``/v1/metrics`` are appended. ``None`` lets the SDK read
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT``
    (default ``http://localhost:4318``). Headers, compression, certificates and,
    when ``timeout`` is None, the timeout also come from the standard variables.
    """
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    quiet_sdk_exporter_logs()
    h = dict(headers) if headers else None
    if endpoint:
        return (
            OTLPSpanExporter(
                endpoint=_signal_endpoint(endpoint, "v1/traces"), timeout=timeout, headers=h
            ),
            OTLPLogExporter(
                endpoint=_signal_endpoint(endpoint, "v1/logs"), timeout=timeout, headers=h
            ),
            OTLPMetricExporter(
                endpoint=_signal_endpoint(endpoint, "v1/metrics"), timeout=timeout, headers=h
            ),
        )
    return (
        OTLPSpanExporter(timeout=timeout, headers=h),
        OTLPLogExporter(timeout=timeout, headers=h),
        OTLPMetricExporter(timeout=timeout, headers=h),
    )


# --- the guard ------------------------------------------------------------------------
class Destination:
    """Where one exporter sends (e.g. "otlp" at a URL): its counters and its
    failure state, shared by its span, log and metric exporters so that a dead
    receiver is reported once, not once per signal or per item."""

    def __init__(self, name: str, target: str, counter: ExportCounter) -> None:
        self.name = name
        self.target = target
        self.counter = counter
        self._lock = threading.Lock()
        self._failing = False
        self._lost_in_burst = 0
        self.lost = 0

    def ok(self, signal: str, n: int) -> None:
        self.counter.ok(self.name, signal, n)
        if self._failing:
            with self._lock:
                lost, self._failing, self._lost_in_burst = self._lost_in_burst, False, 0
            log.info(
                "telemetry: export to %s %s works again (%d items lost meanwhile)",
                self.name,
                self.target,
                lost,
            )

    def fail(self, signal: str, n: int, error: BaseException | None = None) -> None:
        reason = (
            f"{type(error).__name__}: {error}"
            if error is not None
            else (_SDK_FILTER.last_cause or _SDK_FILTER.last_message or "export failed")
        )
        self.counter.fail(self.name, signal, n, f"{self.name}: {reason}")
        with self._lock:
            self.lost += n
            self._lost_in_burst += n
            first = not self._failing
            self._failing = True
        if first:
            log.warning(
                "telemetry: could not export %d %s to %s %s (%s); the run goes on, "
                "further failures are only counted until it recovers",
                n, signal, self.name, self.target, _short(reason, 200),
            )  # fmt: skip


class GuardedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, destination: Destination) -> None:
        self.inner = inner
        self._dest = destination
        destination.counter.register(destination.name, "spans")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            self._dest.fail("spans", len(spans), exc)
            return SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._dest.ok("spans", len(spans))
        else:
            self._dest.fail("spans", len(spans))
        return result

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()
        except Exception as exc:
            log.debug("telemetry: %s span exporter shutdown failed: %s", self._dest.name, exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            return False


class GuardedLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, destination: Destination) -> None:
        self.inner = inner
        self._dest = destination
        destination.counter.register(destination.name, "logs")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            result = self.inner.export(batch)
        except Exception as exc:
            self._dest.fail("logs", len(batch), exc)
            return LogRecordExportResult.FAILURE
        if result is LogRecordExportResult.SUCCESS:
            self._dest.ok("logs", len(batch))
        else:
            self._dest.fail("logs", len(batch))
        return result

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()  # type: ignore[no-untyped-call]
        except Exception as exc:
            log.debug("telemetry: %s log exporter shutdown failed: %s", self._dest.name, exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            return False


class GuardedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, destination: Destination) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner = inner
        self._dest = destination
        destination.counter.register(destination.name, "metrics")

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        n = count_points(metrics_data)
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            self._dest.fail("metrics", n, exc)
            return MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self._dest.ok("metrics", n)
        else:
            self._dest.fail("metrics", n)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            log.debug("telemetry: %s metric exporter shutdown failed: %s", self._dest.name, exc)


class FanOutMetricExporter(MetricExporter):
    """One periodic reader for several (guarded) metric exporters of the same
    temporality: every reader aggregates each measurement again, so one reader
    instead of one per exporter keeps the cost per invocation flat."""

    def __init__(
        self,
        exporters: Sequence[MetricExporter],
        extra: Callable[[MetricsData], MetricsData] | None = None,
    ) -> None:
        first = exporters[0]
        super().__init__(
            preferred_temporality=getattr(first, "_preferred_temporality", None),
            preferred_aggregation=getattr(first, "_preferred_aggregation", None),
        )
        self.exporters = list(exporters)
        self.extra = extra  # adds metrics aggregated outside the SDK (serve's histograms)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self.extra is not None:
            metrics_data = self.extra(metrics_data)
        ok = True
        for exporter in self.exporters:
            try:
                result = exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            except Exception:
                result = MetricExportResult.FAILURE
            ok = ok and result is MetricExportResult.SUCCESS
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return all([e.force_flush(timeout_millis) for e in self.exporters])

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        for exporter in self.exporters:
            try:
                exporter.shutdown(timeout_millis=timeout_millis, **kwargs)
            except Exception as exc:
                log.debug("telemetry: metric exporter shutdown failed: %s", exc)


def temporality_key(exporter: MetricExporter) -> tuple[str, ...]:
    """Instrument types for which ``exporter`` wants other than cumulative temporality."""
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    preferred = getattr(exporter, "_preferred_temporality", None) or {}
    return tuple(
        sorted(
            t.__name__ for t, v in preferred.items() if v is not AggregationTemporality.CUMULATIVE
        )
    )
