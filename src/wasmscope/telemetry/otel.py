"""The OpenTelemetry SDK side: providers, resource, trace context, instruments, emission.

With :mod:`wasmscope.telemetry.exporters`, the only module that imports
``opentelemetry``; both are loaded lazily, after :func:`require` has checked that
the OpenTelemetry SDK is installed (it comes with wasmscope).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.telemetry import _otlp_env, mapping, wire
from wasmscope.telemetry import semconv as sc
from wasmscope.telemetry._serve_metrics import merge_metrics
from wasmscope.telemetry._sinks import ConsoleSink, JsonlSink, MemorySink, OtlpSink, Sink
from wasmscope.telemetry._span_data import SpanNode, invocation_bounds
from wasmscope.telemetry.direct import DirectPipeline
from wasmscope.telemetry.tracecontext import parse_traceparent

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.metrics.export import MetricReader, MetricsData
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Span

    from wasmscope.guard.events import SecurityEvent
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.telemetry.stats import ExportCounter

__all__ = [
    "DEFAULT_OTLP_TIMEOUT",
    "InMemory",
    "OtelSdk",
    "context_from_traceparent",
    "make_resource",
    "require",
    "traceparent",
]

DEFAULT_OTLP_TIMEOUT = 2.0  # seconds per OTLP export, retries included (SDK default: 10)


def require(otlp: bool = False) -> None:
    """Raise :class:`UsageError` unless the OpenTelemetry SDK (and, for ``otlp``,
    the OTLP/HTTP exporter) can be imported."""
    needed = ["opentelemetry.sdk"]
    if otlp:
        needed.append("opentelemetry.exporter.otlp.proto.http")
    for name in needed:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError(
                f"telemetry needs the OpenTelemetry SDK ({name} is not installed): "
                "it comes with wasmscope: pip install --force-reinstall wasmscope"
            )


# --- resource and trace context ---------------------------------------------------------
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("wasmscope")
    except Exception:
        return "0+unknown"


def make_resource(service_name: str | None = None) -> Resource:
    """The SDK's resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME`` and the
    ``telemetry.sdk.*`` defaults), with ``service.name`` "wasmscope" unless the
    environment names one; an explicit ``service_name`` wins over both. Sets a new
    ``service.instance.id`` per call (make one per worker process) and
    ``telemetry.distro.*``."""
    from opentelemetry.sdk.resources import Resource

    env = Resource.create({})
    attrs: dict[str, Any] = dict(env.attributes)
    if str(attrs.get(sc.SERVICE_NAME, "")).startswith("unknown_service"):
        attrs[sc.SERVICE_NAME] = sc.SERVICE_NAME_DEFAULT
    if service_name:
        attrs[sc.SERVICE_NAME] = service_name
    # The SDK's default instance id is fixed at import, so forked workers would share
    # it: a fresh one per pipeline, unless OTEL_RESOURCE_ATTRIBUTES gives one.
    if not _otlp_env.instance_id_given():
        attrs[sc.SERVICE_INSTANCE_ID] = str(uuid.uuid4())
    attrs.setdefault(sc.TELEMETRY_DISTRO_NAME, "wasmscope")
    attrs.setdefault(sc.TELEMETRY_DISTRO_VERSION, _version())
    return Resource(attrs, env.schema_url)


def context_from_traceparent(value: str | None, tracestate: str | None = None) -> Context | None:
    """A parent context from a W3C ``traceparent`` header value; None when absent or
    invalid (W3C: an invalid traceparent starts a new trace). Parsed by
    :func:`~wasmscope.telemetry.tracecontext.parse_traceparent`, as everywhere."""
    parent = parse_traceparent(value)
    if parent is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    state = TraceState.from_header([tracestate]) if tracestate else TraceState()
    ctx = SpanContext(
        parent.trace_id,
        parent.span_id,
        is_remote=True,
        trace_flags=TraceFlags(parent.flags),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def traceparent(span: Span) -> str:
    """The W3C ``traceparent`` of a span (for a response header or a child process)."""
    c = span.get_span_context()
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


# --- in-memory view (tests) ---------------------------------------------------------------
class InMemory:
    """What the in-memory exporters hold: SDK objects and the same JSON views as
    the JSONL file."""

    def __init__(self, spans: Any, logs: Any, reader: Any) -> None:
        self._spans = spans
        self._logs = logs
        self._reader = reader
        self.direct: Any = None  # serve's direct pipeline output (a direct.MemorySink)
        self.extra_metrics: Callable[[Any], Any] | None = None

    def spans(self) -> list[ReadableSpan]:
        return list(self._spans.get_finished_spans())

    def logs(self) -> list[ReadableLogRecord]:
        return list(self._logs.get_finished_logs())

    def metrics(self) -> MetricsData | None:
        data: MetricsData | None = self._reader.get_metrics_data()
        if self.extra_metrics is not None:
            data = self.extra_metrics(data)
        return data

    def span_dicts(self) -> list[dict[str, Any]]:
        """Every span as in the JSONL file: the SDK's, then serve's (direct pipeline)."""
        from wasmscope.telemetry.exporters import span_to_json

        out = [span_to_json(s) for s in self.spans()]
        if self.direct is not None:
            out += self.direct.spans
        return out

    def log_dicts(self) -> list[dict[str, Any]]:
        from wasmscope.telemetry.exporters import log_to_json

        out = [log_to_json(r) for r in self.logs()]
        if self.direct is not None:
            out += self.direct.logs
        return out

    def metric_points(self) -> list[dict[str, Any]]:
        from wasmscope.telemetry.exporters import metrics_to_json

        data = self.metrics()
        return metrics_to_json(data) if data is not None else []

    def clear(self) -> None:
        self._spans.clear()
        self._logs.clear()
        if self.direct is not None:
            self.direct.clear()


def _run_parallel(calls: Sequence[Callable[[], object]], timeout: float) -> bool:
    """Run ``calls`` on daemon threads; wait at most ``timeout`` seconds overall.
    True when all finished without raising."""
    results: list[bool] = []
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        try:
            ok = call() is not False
        except Exception:
            ok = False
        with lock:
            results.append(ok)

    threads = [
        threading.Thread(target=run, args=(c,), daemon=True, name="wasmscope-telemetry")
        for c in calls
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + max(timeout, 0.0)
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.0))
    return len(results) == len(calls) and all(results)


# --- the SDK pipeline ----------------------------------------------------------------------
class OtelSdk:
    """Tracer, meter and logger providers wired to the chosen exporters, the
    instruments of :data:`semconv.METRICS`, and the emission of one invocation."""

    def __init__(
        self,
        *,
        counter: ExportCounter,
        resource: Resource,
        console: bool | IO[str] = False,
        jsonl: str | os.PathLike[str] | IO[str] | None = None,
        otlp: str | bool | None = None,
        otlp_timeout: float | None = None,
        otlp_headers: dict[str, str] | None = None,
        in_memory: bool = False,
        metric_readers: Iterable[MetricReader] = (),
        metric_interval: float | None = None,
        direct: bool = False,
        trigger: str = sc.TRIGGER_OTHER,
        max_log_lines: int = 1000,
        max_log_bytes: int = 64 * 1024,
        sanitize_output: bool = False,
    ) -> None:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        from wasmscope.telemetry import exporters as ex

        self.resource = resource
        self.sanitize_output = sanitize_output
        self.destinations: list[ex.Destination] = []
        self.memory: InMemory | None = None
        # serve (direct=True): request spans, stderr logs and invocation metrics bypass
        # the SDK's per-span objects (telemetry/direct.py); the SDK exports the metrics.
        self.direct: DirectPipeline | None = None
        sync_sinks: list[Sink] = []
        batch_sinks: list[Sink] = []
        scope_name = sc.INSTRUMENTATION_SCOPE
        json_resource = ex._resource(resource)
        self._tp = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._lp = LoggerProvider(resource=resource, shutdown_on_exit=False)
        readers: list[MetricReader] = list(metric_readers)
        interval_ms = metric_interval * 1000 if metric_interval is not None else None
        metric_exporters: list[ex.GuardedMetricExporter] = []

        def add(name: str, target: str, span: Any, log: Any, metric: Any, batch: bool) -> None:
            dest = ex.Destination(name, target, counter)
            self.destinations.append(dest)
            span_proc = BatchSpanProcessor if batch else SimpleSpanProcessor
            log_proc = BatchLogRecordProcessor if batch else SimpleLogRecordProcessor
            self._tp.add_span_processor(span_proc(ex.GuardedSpanExporter(span, dest)))
            self._lp.add_log_record_processor(log_proc(ex.GuardedLogExporter(log, dest)))
            if metric is not None:
                metric_exporters.append(ex.GuardedMetricExporter(metric, dest))

        if in_memory:
            from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            mem_spans, mem_logs, mem_reader = (
                InMemorySpanExporter(),
                InMemoryLogRecordExporter(),  # type: ignore[no-untyped-call]
                InMemoryMetricReader(),
            )
            add("memory", "in-memory", mem_spans, mem_logs, None, batch=False)
            readers.append(mem_reader)
            self.memory = InMemory(mem_spans, mem_logs, mem_reader)
            if direct:
                self.memory.direct = MemorySink(self.destinations[-1], json_resource, scope_name)
                sync_sinks.append(self.memory.direct)
        if console:
            stream = None if console is True else console
            add(
                "console", "stderr" if stream is None else getattr(stream, "name", "<stream>"),
                ex.ConsoleSpanExporter(stream), ex.ConsoleLogExporter(stream),
                ex.ConsoleMetricExporter(stream), batch=False,
            )  # fmt: skip
            if direct:
                sync_sinks.append(ConsoleSink(self.destinations[-1], stream))
        if jsonl is not None:
            writer = ex.JsonlWriter(jsonl)
            add(
                "jsonl", writer.name,
                ex.JsonlSpanExporter(writer), ex.JsonlLogExporter(writer), ex.JsonlMetricExporter(writer),
                batch=True,
            )  # fmt: skip
            if direct:
                batch_sinks.append(
                    JsonlSink(self.destinations[-1], writer, json_resource, scope_name)
                )
        if otlp:
            endpoint = otlp if isinstance(otlp, str) else None
            timeout = otlp_timeout
            if timeout is None and not _otlp_env.timeout_set():
                timeout = DEFAULT_OTLP_TIMEOUT
            span_x, log_x, metric_x = ex.otlp_exporters(
                endpoint, timeout=timeout, headers=otlp_headers
            )
            resolved = str(getattr(span_x, "_endpoint", "") or "").removesuffix("/v1/traces")
            target = endpoint or resolved or "OTEL_EXPORTER_OTLP_ENDPOINT"
            add("otlp", str(target), span_x, log_x, metric_x, batch=True)
            if direct:
                batch_sinks.append(
                    OtlpSink(
                        self.destinations[-1],
                        traces_url=str(getattr(span_x, "_endpoint", "") or f"{target}/v1/traces"),
                        logs_url=str(getattr(log_x, "_endpoint", "") or f"{target}/v1/logs"),
                        resource_msg=wire.resource(resource.attributes),
                        scope_msg=wire.instrumentation_scope(scope_name, _version()),
                        timeout=timeout if timeout is not None else _otlp_env.timeout(),
                        headers=otlp_headers,
                    )
                )  # fmt: skip
        if direct:
            self.direct = DirectPipeline(
                sync_sinks=sync_sinks, batch_sinks=batch_sinks, trigger=trigger,
                max_log_lines=max_log_lines, max_log_bytes=max_log_bytes, sanitize_output=sanitize_output,
            )  # fmt: skip

        groups: dict[tuple[str, ...], list[ex.GuardedMetricExporter]] = {}
        for m in metric_exporters:
            groups.setdefault(ex.temporality_key(m.inner), []).append(m)
        extra: Callable[[Any], Any] | None = None
        if self.direct is not None:
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope

            histograms = self.direct.metrics.histograms
            scope = InstrumentationScope(scope_name, _version())

            def extra(data: Any = None) -> Any:
                return merge_metrics(data, histograms(), resource, scope)

            if self.memory is not None:
                self.memory.extra_metrics = extra
        for group in groups.values():
            readers.append(
                PeriodicExportingMetricReader(
                    ex.FanOutMetricExporter(group, extra=extra), export_interval_millis=interval_ms
                )
            )
        self._mp = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
        self.tracer = self._tp.get_tracer(sc.INSTRUMENTATION_SCOPE, _version())
        self.meter = self._mp.get_meter(sc.INSTRUMENTATION_SCOPE, _version())
        self.logger = self._lp.get_logger(sc.INSTRUMENTATION_SCOPE, _version())
        self.instruments: dict[str, Any] = {}
        for spec in sc.METRICS:
            if self.direct is not None:
                # aggregated by the direct pipeline: counters and the gauge observed at
                # each collection (the SDK applies the temporality), histograms merged
                if spec.kind != "histogram":
                    self._observe(spec, self.direct.metrics.observe)
                continue
            if spec.kind == "counter":
                inst: Any = self.meter.create_counter(spec.name, spec.unit, spec.description)
            elif spec.kind == "histogram":
                inst = self.meter.create_histogram(
                    spec.name, spec.unit, spec.description,
                    explicit_bucket_boundaries_advisory=list(spec.buckets) if spec.buckets else None,
                )  # fmt: skip
            else:
                inst = self.meter.create_gauge(spec.name, spec.unit, spec.description)
            self.instruments[spec.name] = inst

    def _observe(
        self, spec: sc.MetricSpec, observe: Callable[[str], list[tuple[int, dict[str, Any]]]]
    ) -> None:
        from opentelemetry.metrics import CallbackOptions, Observation

        def callback(_options: CallbackOptions) -> list[Observation]:
            return [Observation(v, a) for v, a in observe(spec.name)]

        if spec.kind == "counter":
            self.meter.create_observable_counter(spec.name, [callback], spec.unit, spec.description)
        else:
            self.meter.create_observable_gauge(spec.name, [callback], spec.unit, spec.description)

    # --- emission ------------------------------------------------------------------------
    def emit(
        self,
        record: InvocationRecord,
        *,
        parent: Context | None,
        trigger: str,
        spans: Sequence[SpanNode],
        max_log_lines: int,
        max_log_bytes: int,
    ) -> tuple[str, str]:
        """Emit one invocation; its span's trace id (32 hex digits) and span id (16)."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start_ns, end_ns = invocation_bounds(record)
        attrs = mapping.span_attributes(record, trigger)
        fail = mapping.failure(record)
        inv = self.tracer.start_span(
            mapping.span_name(record), context=parent, kind=SpanKind.SERVER,
            attributes=attrs, start_time=start_ns,
        )  # fmt: skip
        inv_ctx = trace.set_span_in_context(inv)
        phases = list(mapping.iter_phases(record))
        execute_ctx: Context | None = None
        for i, (name, p_start, p_end, p_attrs) in enumerate(phases):
            child = self.tracer.start_span(
                name,
                context=inv_ctx,
                kind=SpanKind.INTERNAL,
                attributes=p_attrs,
                start_time=p_start,
            )
            if fail is not None and i == len(phases) - 1:
                child.set_status(Status(StatusCode.ERROR, fail.description))
            if name == "execute" and spans:
                execute_ctx = trace.set_span_in_context(child)
                self._emit_nodes(spans, execute_ctx)
            child.end(end_time=p_end)
        if spans and execute_ctx is None:
            self._emit_nodes(spans, inv_ctx)
        if fail is not None:
            inv.set_status(Status(StatusCode.ERROR, fail.description))
            inv.add_event(sc.EXCEPTION_EVENT, attributes=fail.exception, timestamp=end_ns)
        self._emit_logs(record, inv_ctx, end_ns, max_log_lines, max_log_bytes)
        self._record_metrics(record, trigger)
        inv.end(end_time=end_ns)
        c = inv.get_span_context()
        return f"{c.trace_id:032x}", f"{c.span_id:016x}"

    def _emit_nodes(self, nodes: Sequence[SpanNode], ctx: Context) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        for node in nodes:
            span = self.tracer.start_span(
                node.name, context=ctx, attributes=mapping.clean_attributes(node.attributes or {}),
                start_time=node.start_ns,
            )  # fmt: skip
            if node.error is not None:
                span.set_status(Status(StatusCode.ERROR, node.error))
            if node.children:
                self._emit_nodes(node.children, trace.set_span_in_context(span))
            span.end(end_time=max(node.end_ns, node.start_ns))

    def _emit_logs(
        self, record: InvocationRecord, ctx: Context, end_ns: int, max_lines: int, max_bytes: int
    ) -> None:
        from opentelemetry._logs import SeverityNumber

        execute = record.phase("execute")
        at = execute.end_ns if execute is not None else end_ns
        now = time.time_ns()
        streams = (
            ("stdout", record.stdout, record.stdout_truncated, SeverityNumber.INFO, "INFO"),
            ("stderr", record.stderr, record.stderr_truncated, SeverityNumber.WARN, "WARN"),
        )
        for stream, data, capped, severity, severity_text in streams:
            g = mapping.guest_lines(
                stream, data, max_lines=max_lines, max_bytes=max_bytes, capped=capped,
                sanitize=self.sanitize_output,
            )  # fmt: skip
            if not g.lines and not g.truncated:
                continue
            base = {sc.LOG_IOSTREAM: stream, sc.FAAS_INVOCATION_ID: record.invocation_id}
            n = len(g.lines) + (1 if g.truncated else 0)
            # When each line was written is unknown: no later than the end of execute.
            # Distinct, ordered timestamps keep the lines in order in a backend.
            for i, line in enumerate(g.lines):
                self.logger.emit(
                    timestamp=at - (n - i), observed_timestamp=now, context=ctx,
                    severity_number=severity, severity_text=severity_text, body=line, attributes=base,
                )  # fmt: skip
            if g.truncated:
                body, attrs = g.truncation_notice(base)
                self.logger.emit(
                    timestamp=at - 1, observed_timestamp=now, context=ctx,
                    severity_number=SeverityNumber.WARN, severity_text="WARN", body=body, attributes=attrs,
                )  # fmt: skip

    def emit_events(self, events: Sequence[SecurityEvent], trace_id: int, span_id: int) -> None:
        """Security events (guard findings) as log records, with the LogRecord
        EventName field, in the trace of ``trace_id``/``span_id`` when they are set."""
        from opentelemetry import trace
        from opentelemetry._logs import SeverityNumber
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        ctx = None
        if trace_id and span_id:
            span_ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
            ctx = trace.set_span_in_context(NonRecordingSpan(span_ctx))
        now = time.time_ns()
        for ev in events:
            self.logger.emit(
                timestamp=ev.time_ns, observed_timestamp=now, context=ctx,
                severity_number=SeverityNumber(ev.severity_number), severity_text=ev.severity_text,
                body=ev.body, attributes=dict(ev.attributes), event_name=ev.event_name,
            )  # fmt: skip

    def _record_metrics(self, record: InvocationRecord, trigger: str) -> None:
        from wasmscope.runtime.record import Outcome

        i = self.instruments
        attrs = mapping.metric_attributes(record, trigger)
        fail = mapping.failure(record)
        if fail is None:
            i[sc.M_FAAS_INVOCATIONS.name].add(1, attrs)
        else:
            i[sc.M_FAAS_ERRORS.name].add(1, {**attrs, sc.ERROR_TYPE: fail.error_type})
        if record.outcome == Outcome.TIMEOUT:
            i[sc.M_FAAS_TIMEOUTS.name].add(1, attrs)
        if record.cold_start:
            i[sc.M_FAAS_COLDSTARTS.name].add(1, attrs)
        if record.outcome != Outcome.ERROR or record.phase("execute") is not None:
            i[sc.M_FAAS_INVOKE_DURATION.name].record(mapping.invoke_seconds(record), attrs)
        init = mapping.init_seconds(record)
        if init is not None:
            i[sc.M_FAAS_INIT_DURATION.name].record(init, attrs)
        if record.peak_memory is not None:
            i[sc.M_FAAS_MEM_USAGE.name].record(record.peak_memory, attrs)
            i[sc.M_WASM_MEMORY_PEAK.name].set(record.peak_memory, attrs)
        if record.cpu_seconds is not None:
            i[sc.M_FAAS_CPU_USAGE.name].record(record.cpu_seconds, attrs)
        if record.fuel_consumed is not None:
            i[sc.M_WASM_FUEL_CONSUMED.name].add(record.fuel_consumed, attrs)

    # --- lifecycle -------------------------------------------------------------------------
    def force_flush(self, timeout: float) -> bool:
        ms = int(timeout * 1000)
        calls: list[Callable[[], object]] = [
            lambda: self._tp.force_flush(ms),
            lambda: self._lp.force_flush(ms),
            lambda: self._mp.force_flush(ms),
        ]
        direct = self.direct
        if direct is not None:
            direct.settle()  # its metrics, before the metric readers collect
            calls.append(lambda: direct.force_flush(timeout))
        return _run_parallel(calls, timeout)

    def shutdown(self, timeout: float) -> bool:
        ms = int(timeout * 1000)
        calls: list[Callable[[], object]] = [
            self._tp.shutdown,
            self._lp.shutdown,
            lambda: self._mp.shutdown(timeout_millis=ms),
        ]
        direct = self.direct
        if direct is not None:
            direct.settle()
            calls.append(lambda: direct.shutdown(timeout))
        return _run_parallel(calls, timeout)
