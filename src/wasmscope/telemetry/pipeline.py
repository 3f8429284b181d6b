"""``Telemetry``: one object that turns invocation records into spans, metrics and logs.

::

    from wasmscope.telemetry import Telemetry

    with Telemetry.from_options(otlp="http://127.0.0.1:4318", jsonl="run.jsonl") as tel:
        trace_id = tel.record_invocation(record)            # never raises for export failures
    tel.stats.failed()                                        # items that could not be exported

Exports run on the SDK's background threads (OTLP, JSONL) or inline (console,
in-memory); a dead receiver costs at most the OTLP timeout at ``shutdown``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.telemetry import semconv as sc
from wasmscope.telemetry._span_data import SpanNode
from wasmscope.telemetry.stats import ExportCounter, TelemetryStats
from wasmscope.telemetry.tracecontext import parse_traceparent

if TYPE_CHECKING:
    from wasmscope.guard.findings import Finding
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.telemetry.direct import DirectPipeline, RequestSpan
    from wasmscope.telemetry.otel import InMemory, OtelSdk

__all__ = ["DEFAULT_MAX_LOG_BYTES", "DEFAULT_MAX_LOG_LINES", "SpanNode", "Telemetry"]

log = logging.getLogger("wasmscope.telemetry")

DEFAULT_MAX_LOG_LINES = 1000  # per stream and invocation
DEFAULT_MAX_LOG_BYTES = 64 * 1024  # per stream and invocation
DEFAULT_SHUTDOWN_TIMEOUT = 5.0  # seconds
_SPANS_KEPT = 256  # invocation span ids remembered for invocation_span()

_LIVE: weakref.WeakSet[Telemetry] = weakref.WeakSet()
_ATEXIT_LOCK = threading.Lock()
_ATEXIT_DONE = False


def _shutdown_all() -> None:
    for tel in list(_LIVE):
        tel.shutdown(timeout=DEFAULT_SHUTDOWN_TIMEOUT)


class Telemetry:
    """Spans, metrics and logs for invocation records, through OpenTelemetry.

    Build it with :meth:`from_options`. Thread-safe. Telemetry failures are
    counted in :attr:`stats` and logged on the ``wasmscope.telemetry`` logger
    (once per burst), never raised. Shut down explicitly (or use ``with``); an
    ``atexit`` hook shuts down what is left at interpreter exit.

    With ``fork``-based worker processes, build one ``Telemetry`` per worker after
    the fork: each gets its own ``service.instance.id``, which keeps the workers'
    cumulative metrics apart in the backend.
    """

    def __init__(
        self,
        sdk: OtelSdk,
        counter: ExportCounter,
        *,
        trigger: str = sc.TRIGGER_OTHER,
        max_log_lines: int = DEFAULT_MAX_LOG_LINES,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self._sdk = sdk
        self._counter = counter
        self.trigger = trigger
        self.max_log_lines = max_log_lines
        self.max_log_bytes = max_log_bytes
        self._lock = threading.Lock()
        self._closed = False
        self._bad_parent_logged = False
        self._spans: OrderedDict[str, tuple[str, str]] = OrderedDict()  # invocation id -> span ids
        _LIVE.add(self)
        global _ATEXIT_DONE
        with _ATEXIT_LOCK:
            if not _ATEXIT_DONE:
                atexit.register(_shutdown_all)
                _ATEXIT_DONE = True

    @classmethod
    def from_options(
        cls,
        *,
        console: bool | IO[str] = False,
        jsonl: str | os.PathLike[str] | IO[str] | None = None,
        otlp: str | bool | None = None,
        in_memory: bool = False,
        service_name: str | None = None,
        trigger: str = sc.TRIGGER_OTHER,
        otlp_timeout: float | None = None,
        otlp_headers: dict[str, str] | None = None,
        metric_readers: Iterable[Any] = (),
        metric_interval: float | None = None,
        max_log_lines: int = DEFAULT_MAX_LOG_LINES,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        sanitize_output: bool = False,
    ) -> Telemetry:
        """Build the pipeline.

        - ``console``: human-readable lines on stderr (or on the given text stream).
        - ``jsonl``: a path (appended to) or a text stream; one JSON object per line.
        - ``otlp``: a base URL (``http://127.0.0.1:4318``; ``/v1/traces`` etc. are
          appended), or ``True`` to take the endpoint from ``OTEL_EXPORTER_OTLP_ENDPOINT``
          / ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` (default ``http://localhost:4318``).
          Headers, compression and certificates come from the standard
          ``OTEL_EXPORTER_OTLP_*`` variables; the timeout is ``otlp_timeout``, else
          ``OTEL_EXPORTER_OTLP_TIMEOUT`` when set, else 2 s (a refused connection
          is retried once after ~1 s, so a dead receiver costs about 1 s at shutdown).
        - ``in_memory``: keep everything in memory (:attr:`memory`), for tests.
        - ``service_name``: ``service.name``; default "wasmscope" unless
          ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` set one.
        - ``trigger``: ``faas.trigger`` ("other" for run, "http" for serve). With
          "http", invocations go through serve's direct pipeline (``telemetry/direct.py``:
          no SDK span objects; an invocation of an open request span is folded into it;
          the guest's stdout, the HTTP response, is not logged).
        - ``metric_readers``: extra OpenTelemetry ``MetricReader`` objects (e.g. a
          Prometheus reader); ``metric_interval``: seconds between periodic metric
          exports (default ``OTEL_METRIC_EXPORT_INTERVAL``, 60 s); metrics are also
          exported at :meth:`force_flush` and :meth:`shutdown`.
        - ``max_log_lines`` / ``max_log_bytes``: bounds on guest output log records,
          per stream and invocation; past them one "truncated" record is emitted.
        - ``sanitize_output``: the guest's log lines with terminal escapes and control
          characters made visible (``\\x1b``; :mod:`wasmscope.guard.sanitize`). Off by
          default: the lines are then exported as the guest wrote them, at no cost.

        Raises :class:`UsageError` when the ``otel`` extra is not installed.
        """
        from wasmscope.telemetry import otel

        if max_log_lines < 0 or max_log_bytes < 0:
            raise UsageError("max_log_lines and max_log_bytes must be >= 0")
        if otlp_timeout is not None and otlp_timeout <= 0:
            raise UsageError("otlp_timeout must be > 0 seconds")
        if isinstance(otlp, str) and not otlp.startswith(("http://", "https://")):
            raise UsageError(f"--otlp expects an http:// or https:// URL, not {otlp!r}")
        otel.require(otlp=bool(otlp))
        counter = ExportCounter()
        try:
            sdk = otel.OtelSdk(
                counter=counter,
                resource=otel.make_resource(service_name),
                console=console,
                jsonl=jsonl,
                otlp=otlp,
                otlp_timeout=otlp_timeout,
                otlp_headers=otlp_headers,
                in_memory=in_memory,
                metric_readers=metric_readers,
                metric_interval=metric_interval,
                direct=trigger == sc.TRIGGER_HTTP,
                trigger=trigger,
                max_log_lines=max_log_lines,
                max_log_bytes=max_log_bytes,
                sanitize_output=sanitize_output,
            )
        except OSError as exc:  # the JSONL file cannot be opened
            raise UsageError(f"cannot open the telemetry output: {exc}") from exc
        return cls(
            sdk, counter, trigger=trigger, max_log_lines=max_log_lines, max_log_bytes=max_log_bytes
        )

    # --- recording -----------------------------------------------------------------------
    def record_invocation(
        self,
        record: InvocationRecord,
        parent: str | None = None,
        *,
        tracestate: str | None = None,
        spans: Sequence[SpanNode] = (),
        request: RequestSpan | None = None,
    ) -> str:
        """Emit one invocation: its span (children per phase), metrics and guest
        output logs. ``parent`` is a W3C ``traceparent`` (an invalid one starts a new
        trace); ``spans`` are extra child spans (under ``execute`` when there is one);
        ``request``: the open request span (:meth:`start_request`) to fold it into.
        Returns the trace id (32 hex digits). Never raises for telemetry failures;
        after :meth:`shutdown` it records nothing and returns the would-be trace id
        of the parent (or "")."""
        direct = self._sdk.direct
        if direct is not None:
            if request is not None:
                return direct.attach_request(request, record)
            return self._record_direct(direct, record, parent, tracestate)
        from wasmscope.telemetry import otel

        ctx = otel.context_from_traceparent(parent, tracestate) if parent else None
        if parent and ctx is None and not self._bad_parent_logged:
            self._bad_parent_logged = True
            log.warning(
                "telemetry: ignoring an invalid traceparent %r (a new trace is started)", parent
            )
        if self._closed:
            return _trace_id_of(parent) if ctx is not None else ""
        try:
            ids = self._sdk.emit(
                record,
                parent=ctx,
                trigger=self.trigger,
                spans=spans,
                max_log_lines=self.max_log_lines,
                max_log_bytes=self.max_log_bytes,
            )
            self._remember(record, ids)
            return ids[0]
        except Exception as exc:  # a bug or a bad record must not fail the run
            self._counter.fail("pipeline", "spans", 1, f"{type(exc).__name__}: {exc}")
            log.warning(
                "telemetry: could not record invocation %s: %s",
                record.invocation_id,
                exc,
                exc_info=True,
            )
            return _trace_id_of(parent) if ctx is not None else ""

    def _record_direct(
        self,
        direct: DirectPipeline,
        record: InvocationRecord,
        parent: str | None,
        tracestate: str | None,
    ) -> str:
        if parent:
            trace_id = direct.attach(parent, record)  # the invocation of an open request span
            if trace_id is not None:
                return trace_id
        valid = parse_traceparent(parent) is not None
        if parent and not valid and not self._bad_parent_logged:
            self._bad_parent_logged = True
            log.warning(
                "telemetry: ignoring an invalid traceparent %r (a new trace is started)", parent
            )
        if self._closed:
            return _trace_id_of(parent) if valid else ""
        try:
            ids = direct.invocation(record, parent if valid else None, tracestate)
            self._remember(record, ids)
            return ids[0]
        except Exception as exc:  # a bug or a bad record must not fail the run
            self._counter.fail("pipeline", "spans", 1, f"{type(exc).__name__}: {exc}")
            log.warning(
                "telemetry: could not record invocation %s: %s",
                record.invocation_id,
                exc,
                exc_info=True,
            )
            return _trace_id_of(parent) if valid else ""

    def emit_findings(
        self,
        record: InvocationRecord,
        findings: Sequence[Finding],
        *,
        traceparent: str | None = None,
    ) -> int:
        """Emit guard findings of ``record`` as security events (log records, see
        :mod:`wasmscope.guard.events`) in the trace of the invocation: the span of
        ``traceparent`` when given (serve's request span), else the invocation span
        that :meth:`record_invocation` made for this record (no trace ids when it is
        unknown). How many were emitted; never raises (failures are counted in
        :attr:`stats` as ``logs`` of the ``pipeline``)."""
        if not findings or self._closed:
            return 0
        try:
            from wasmscope.guard.events import security_events

            events = security_events(record, findings)
            trace_id = span_id = 0
            sampled = True
            parent = parse_traceparent(traceparent) if traceparent else None
            if parent is not None:
                trace_id, span_id, sampled = parent.trace_id, parent.span_id, bool(parent.flags & 1)
            else:
                ids = self.invocation_span(record.invocation_id)
                if ids is not None:
                    trace_id, span_id = int(ids[0], 16), int(ids[1], 16)
            direct = self._sdk.direct
            if direct is not None:
                from wasmscope.telemetry._span_data import LogData

                now = time.time_ns()
                direct.emit_logs([
                    LogData(ev.time_ns, now, ev.severity_number, ev.severity_text, ev.body, ev.attributes,
                            trace_id, span_id, sampled, ev.event_name)
                    for ev in events
                ])  # fmt: skip
            else:
                self._sdk.emit_events(events, trace_id, span_id)
            return len(events)
        except Exception as exc:  # a bug or a bad finding must not fail the run
            self._counter.fail("pipeline", "logs", len(findings), f"{type(exc).__name__}: {exc}")
            log.warning(
                "telemetry: could not emit the findings of invocation %s: %s",
                record.invocation_id, exc, exc_info=True,
            )  # fmt: skip
            return 0

    def _remember(self, record: InvocationRecord, ids: tuple[str, str]) -> None:
        with self._lock:
            self._spans[record.invocation_id] = ids
            while len(self._spans) > _SPANS_KEPT:
                self._spans.popitem(last=False)

    def invocation_span(self, invocation_id: str) -> tuple[str, str] | None:
        """The trace id and span id (hex) of the invocation span that
        :meth:`record_invocation` made for the record with this ``invocation_id``
        (its own span, not one folded into a request span); None when unknown. The
        latest few hundred are kept: reports pushed after a run (``profile --push``)
        point at its span with them."""
        with self._lock:
            return self._spans.get(invocation_id)

    # --- serve's request spans ----------------------------------------------------------------
    def start_request(
        self,
        name: str,
        attributes: dict[str, Any],
        traceparent: str | None = None,
        tracestate: str | None = None,
        base: dict[str, Any] | None = None,
    ) -> RequestSpan | None:
        """Open the HTTP server span of one request (``trigger="http"`` only; None
        otherwise or after :meth:`shutdown`): a child of ``traceparent`` when it is valid,
        else the root of a new trace. Hand its ``.traceparent`` on (to the gateway, to
        the guest): :meth:`record_invocation` with that parent folds the invocation into
        this span (``faas.*``, ``wasm.*`` attributes, ``instantiate``/``execute`` children,
        stderr log records). End it with :meth:`end_request`. ``base``: attributes that
        repeat across requests, in a dict the caller reuses and never changes (encoded
        once per dict)."""
        direct = self._sdk.direct
        if direct is None or self._closed:
            return None
        return direct.start_request(name, attributes, traceparent, tracestate, base)

    def end_request(self, span: RequestSpan) -> None:
        """End a span from :meth:`start_request`; set its ``attrs``, ``error`` (status
        ERROR) and ``exception`` before. Never raises."""
        direct = self._sdk.direct
        if direct is None:
            return
        try:
            direct.end_request(span)
        except Exception as exc:
            self._counter.fail("pipeline", "spans", 1, f"{type(exc).__name__}: {exc}")
            log.warning(
                "telemetry: could not record request span %s: %s", span.name, exc, exc_info=True
            )

    # --- lifecycle -----------------------------------------------------------------------
    def force_flush(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> bool:
        """Export everything pending (metrics included); wait at most ``timeout``
        seconds. True when every exporter finished in time (failed exports still
        count as finished: see :attr:`stats`)."""
        if self._closed:
            return True
        return self._sdk.force_flush(timeout)

    def shutdown(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> bool:
        """Flush and close every exporter, waiting at most ``timeout`` seconds
        (signals shut down in parallel). Idempotent. Logs one summary line when
        items could not be exported."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        _LIVE.discard(self)
        done = self._sdk.shutdown(timeout)
        for dest in self._sdk.destinations:
            if dest.lost:
                log.warning(
                    "telemetry: %d items could not be exported to %s %s",
                    dest.lost, dest.name, dest.target,
                )  # fmt: skip
        if not done:
            log.warning(
                "telemetry: shutdown did not finish within %.1f s; pending items dropped", timeout
            )
        return done

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def direct(self) -> DirectPipeline | None:
        """serve's pipeline of plain-data request spans (``trigger="http"``), else None."""
        return self._sdk.direct

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # --- views ---------------------------------------------------------------------------
    @property
    def stats(self) -> TelemetryStats:
        """Exported and failed item counts per exporter and signal."""
        return self._counter.snapshot()

    @property
    def memory(self) -> InMemory:
        """The in-memory exporters (``in_memory=True`` only)."""
        if self._sdk.memory is None:
            raise UsageError("this Telemetry was built without in_memory=True")
        return self._sdk.memory

    @property
    def tracer(self) -> Any:
        """The OpenTelemetry tracer, for callers that add their own spans (serve's
        HTTP server span). Pass ``otel.traceparent(span)`` as ``parent``."""
        return self._sdk.tracer

    @property
    def meter(self) -> Any:
        """The OpenTelemetry meter (same provider as the invocation metrics)."""
        return self._sdk.meter

    @property
    def destinations(self) -> dict[str, str]:
        """``{exporter: target}``, e.g. ``{"otlp": "http://127.0.0.1:4318", "jsonl": "t.jsonl"}``."""
        return {d.name: d.target for d in self._sdk.destinations}

    @property
    def resource_attributes(self) -> dict[str, Any]:
        return dict(self._sdk.resource.attributes)


def _trace_id_of(traceparent: str | None) -> str:
    parent = parse_traceparent(traceparent)
    return f"{parent.trace_id:032x}" if parent is not None else ""
