"""The per-request telemetry of ``wasmscope serve``, without the OpenTelemetry SDK's
per-span objects.

The SDK costs ~70-100 µs of Python per span made and encoded; a serve request costs
~200-400 µs in all, so serve's spans and log records are plain data here:

- :class:`RequestSpan`: the HTTP server span of one request, opened by
  :meth:`DirectPipeline.start_request` (W3C trace context in, the sampler's decision,
  fresh ids: a few µs) or :meth:`DirectPipeline.open_request` (serve's middleware: its
  name and attributes are made later, with the encoding), ended by
  :meth:`DirectPipeline.end_request`. The invocation record that
  :meth:`~wasmscope.telemetry.Telemetry.record_invocation` gets for the span (or its
  ``traceparent``) is folded into it (``faas.*`` and ``wasm.*`` attributes:
  the FaaS conventions put them on the server span of an HTTP-triggered function),
  and becomes its children ``instantiate`` and ``execute`` (``load`` and ``compile``
  too on a cold start, or when the invocation failed there).
- The guest's stderr lines become log records with the trace and span ids; stdout is
  the HTTP response and is not logged.
- Finished requests wait in a bounded queue (full: dropped and counted, the request
  never waits) for a background thread that sends them as OTLP/HTTP protobuf
  (:mod:`wasmscope.telemetry.wire`, with ``http.client`` on a kept-alive connection)
  or JSON lines, in batches. For OTLP they are encoded before, 32 at a time on a
  request's thread (the exporter thread would have to take the GIL from the request
  threads), their metrics counted then too. The console and in-memory outputs get
  them at once, on the request's thread.
- Metrics: :class:`ServeMetrics` aggregates the invocation metrics of
  :data:`semconv.METRICS` in plain counters and bucket arrays (a few µs per
  request), handed to the SDK's metric readers at each collection.

This module is the batching pipeline (:class:`DirectPipeline`). The rest is one
concept a module: :mod:`.tracecontext` (traceparent, samplers), :mod:`._span_data`
(the plain data), :mod:`._encoding` (records to spans, logs and OTLP bytes),
:mod:`._sinks` (the outputs), :mod:`._serve_metrics` (the metrics).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wasmscope.telemetry import semconv as sc
from wasmscope.telemetry import wire
from wasmscope.telemetry._encoding import (
    encode_request,
    invocation_items,
    request_items,
    stderr_logs,
)
from wasmscope.telemetry._serve_metrics import ServeMetrics
from wasmscope.telemetry._sinks import OtlpSink, Sink
from wasmscope.telemetry._span_data import (
    Encoded,
    Invocation,
    Item,
    LogData,
    RequestSpan,
    SpanData,
    span_count,
)
from wasmscope.telemetry.tracecontext import make_sampler, parse_traceparent

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "DirectPipeline",
    "LogData",
    "RequestSpan",
    "ServeMetrics",
    "SpanData",
    "make_sampler",
    "parse_traceparent",
]

log = logging.getLogger("wasmscope.telemetry")

DEFAULT_MAX_QUEUE = 4096  # finished requests waiting for the exporter thread
DEFAULT_BATCH = 256  # requests per export batch
DEFAULT_DELAY = 1.0  # seconds between two exports when the batch is not full
_YIELD_EVERY = 32  # requests encoded between two GIL releases of the exporter thread
_ENCODE_BATCH = 32  # finished requests encoded together on a request's thread (OTLP only)
_sleep = time.sleep
_getrandbits = random.getrandbits
_time_ns = time.time_ns


class DirectPipeline:
    """Request spans in, spans and log records out to the sinks (see the module doc).

    ``sync_sinks`` get each request on the thread that ends it (console, memory);
    ``batch_sinks`` get batches on the exporter thread (OTLP, JSONL), through a queue of
    at most ``max_queue`` requests: past it requests are dropped and counted as failed
    spans of every batch sink, and logged once per burst."""

    def __init__(
        self, *, sync_sinks: Sequence[Sink], batch_sinks: Sequence[Sink], trigger: str = sc.TRIGGER_HTTP,
        max_log_lines: int, max_log_bytes: int, max_queue: int = DEFAULT_MAX_QUEUE, batch: int = DEFAULT_BATCH,
        delay: float = DEFAULT_DELAY, sampler: Callable[[int, int | None], bool] | None = None,
        sanitize_output: bool = False,
    ) -> None:  # fmt: skip
        self.sync_sinks = list(sync_sinks)
        self.batch_sinks = list(batch_sinks)
        self.trigger = trigger
        self.max_log_lines = max_log_lines
        self.max_log_bytes = max_log_bytes
        self.sanitize_output = sanitize_output  # guest log lines neutralized (guard.sanitize)
        self.max_queue = max_queue
        self.batch = batch
        self.delay = delay
        self.sampler = sampler or make_sampler()
        self.metrics = ServeMetrics(trigger)
        self.pending: dict[str, RequestSpan] = {}  # traceparent -> open request span
        self._otlp_only = bool(self.batch_sinks) and all(
            isinstance(x, OtlpSink) for x in self.batch_sinks
        )
        self._bases: dict[int, tuple[Mapping[str, Any], bytes]] = {}  # id(base) -> (base, encoded)
        self.dropped = 0
        self.export_cpu = 0.0  # CPU seconds of the exporter thread (encoding and sending)
        self.exported_items = 0  # requests and invocations it handled
        self._dropping = False
        self._queue: deque[Item | threading.Event] = deque()
        self._raw: deque[RequestSpan] = deque()  # finished, not yet encoded (OTLP only)
        self._wake = threading.Event()
        self._flush_requested = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    # --- the request path --------------------------------------------------------------------
    def start_request(
        self, name: str, attrs: dict[str, Any], traceparent: str | None = None, tracestate: str | None = None,
        base: Mapping[str, Any] | None = None,
    ) -> RequestSpan:  # fmt: skip
        """Open the server span of a request (under ``traceparent`` when valid);
        ``record_invocation(rec, parent=span.traceparent)`` folds an invocation in.
        ``base``: more attributes, in a dict that the caller hands again for other
        requests (never changed afterwards): encoded once."""
        req = self._span(
            name,
            attrs,
            traceparent,
            tracestate,
            self.base_block(base) if base is not None else None,
        )
        self.pending[req.traceparent] = req
        return req

    def open_request(
        self,
        traceparent: str | None,
        tracestate: str | None,
        describe: Callable[[RequestSpan], None],
        context: Any,
    ) -> RequestSpan:
        """Open the server span of a request whose name and attributes come later:
        ``describe(span)`` sets them (``name``, ``attrs``, ``base`` through
        :meth:`base_block`) from ``span.context`` when the span is encoded, in a batch
        of requests. Fold the invocation in with :meth:`attach_request`."""
        req = self._span("", {}, traceparent, tracestate, None)
        req.describe = describe
        req.context = context
        return req

    def _span(
        self, name: str, attrs: dict[str, Any], traceparent: str | None, tracestate: str | None,
        block: tuple[Mapping[str, Any], bytes] | None,
    ) -> RequestSpan:  # fmt: skip
        """A child of ``traceparent`` when it is valid, else the root of a new trace."""
        parent = parse_traceparent(traceparent) if traceparent else None
        if parent is None:
            trace_id = _getrandbits(128) or 1
            return RequestSpan(
                trace_id,
                _getrandbits(64) or 1,
                0,
                self.sampler(trace_id, None),
                "",
                name,
                attrs,
                block,
            )
        sampled = self.sampler(parent[0], parent[2])
        return RequestSpan(
            parent[0],
            _getrandbits(64) or 1,
            parent[1],
            sampled,
            (tracestate or "").strip(),
            name,
            attrs,
            block,
        )

    def base_block(self, base: Mapping[str, Any]) -> tuple[Mapping[str, Any], bytes]:
        """``base`` (attributes in a dict that the caller hands again for other requests
        and never changes) and its encoding, made once per dict."""
        block = self._bases.get(id(base))
        if block is None or block[0] is not base:
            out: list[bytes] = []
            wire.attributes(b"\x4a", base, out)
            if len(self._bases) >= 1024:
                self._bases.clear()
            block = self._bases[id(base)] = (base, b"".join(out))
        return block

    def end_request(self, req: RequestSpan) -> None:
        req.end_ns = _time_ns()
        if self.pending:
            self.pending.pop(req.traceparent, None)
        self._submit(req)

    def attach(self, traceparent: str, record: InvocationRecord) -> str | None:
        """Fold ``record`` into the open request span of ``traceparent``: its trace id,
        or None when no request span has this traceparent."""
        req = self.pending.get(traceparent)
        if req is None:
            return None
        return self.attach_request(req, record)

    def attach_request(self, req: RequestSpan, record: InvocationRecord) -> str:
        """Fold ``record`` into the open request span ``req``: its trace id."""
        req.record = record
        if not self._otlp_only:  # else counted with the encoding (see _encode_raw)
            self.metrics.record(record)
        return req.trace_hex

    def invocation(
        self, record: InvocationRecord, traceparent: str | None, tracestate: str | None = None
    ) -> tuple[str, str]:
        """An invocation outside of a request span: its own SERVER span. Its trace id
        and span id (hex)."""
        parent = parse_traceparent(traceparent)
        if parent is None:
            trace_id = _getrandbits(128) or 1
            inv = Invocation(
                record,
                trace_id,
                _getrandbits(64) or 1,
                0,
                self.sampler(trace_id, None),
                "",
                self.trigger,
            )
        else:
            sampled = self.sampler(parent[0], parent[2])
            inv = Invocation(
                record,
                parent[0],
                _getrandbits(64) or 1,
                parent[1],
                sampled,
                (tracestate or "").strip(),
                self.trigger,
            )
        self.metrics.record(record)
        self._submit(inv)
        return f"{inv.trace_id:032x}", f"{inv.span_id:016x}"

    def emit_logs(self, records: list[LogData]) -> None:
        """Log records outside of any request (guard's security events): to the sync
        sinks now, to the batch sinks with the next export (a full queue drops them,
        counted as failed logs)."""
        if not records:
            return
        for sink in self.sync_sinks:
            sink.deliver((), records)
        if not self.batch_sinks or self._stop:
            return
        if len(self._queue) >= self.max_queue:
            for sink in self.batch_sinks:
                sink.dest.fail("logs", len(records), RuntimeError("telemetry queue full"))
            return
        self._queue.append(Encoded([], records))
        if self._thread is None:
            self._start_thread()

    def _submit(self, item: Item) -> None:
        if self.sync_sinks:
            spans, logs = self._items(item)
            if spans or logs:
                for sink in self.sync_sinks:
                    sink.deliver(spans, logs)
        if not self.batch_sinks:
            return
        if self._stop:
            return
        if self._otlp_only and isinstance(item, RequestSpan):
            # Encoded on the request's thread, a few at a time (in a tight loop the work
            # costs about half what it costs between two guest runs), and let go:
            # the queue holds bytes. The exporter thread, which must take the GIL
            # from the request threads, only sends (and encodes what is left when
            # traffic is low). _encode_raw counts every request, then drops it if
            # the queue is full.
            self._raw.append(item)
            if len(self._raw) >= _ENCODE_BATCH:
                self._encode_raw()
        elif len(self._queue) >= self.max_queue:
            self._drop(item)
            return
        else:
            self._queue.append(item)
        if self._thread is None:
            self._start_thread()
        if len(self._queue) >= self.batch and not self._wake.is_set():
            self._wake.set()

    def settle(self) -> None:
        """Count and encode the finished requests that wait to be (before a flush, so
        that the metrics and the export have them)."""
        if self._raw:
            self._encode_raw()

    def _encode_raw(self) -> None:
        """Count (metrics) and encode the finished requests waiting in ``_raw`` into
        the export queue (any thread; each request is taken by one)."""
        raw, queue, metrics = self._raw, self._queue, self.metrics
        while raw:
            try:
                item = raw.popleft()
            except IndexError:  # another thread took the last one
                return
            if item.record is not None:
                metrics.record(item.record)
            if len(queue) >= self.max_queue:
                self._drop(item)
                continue
            try:
                rec = item.record
                records: list[LogData] = []
                if rec is not None and (rec.stderr or rec.stderr_truncated):
                    stderr_logs(
                        rec,
                        item.trace_id,
                        item.span_id,
                        item.sampled,
                        self.max_log_lines,
                        self.max_log_bytes,
                        records,
                        self.sanitize_output,
                    )
                queue.append(Encoded(encode_request(item) if item.sampled else [], records))
            except Exception as exc:  # a bug or a bad record: counted, never raised
                for sink in self.batch_sinks:
                    sink.dest.fail("spans", span_count(item), exc)

    def _items(self, item: Item) -> tuple[list[SpanData], list[LogData]]:
        if isinstance(item, Encoded):
            if item.spans:
                raise TypeError("an encoded request only goes to OTLP outputs")
            return [], list(item.logs)  # log records alone (emit_logs)
        if isinstance(item, RequestSpan):
            return request_items(item, self.max_log_lines, self.max_log_bytes, self.sanitize_output)
        return invocation_items(item, self.max_log_lines, self.max_log_bytes, self.sanitize_output)

    def _drop(self, item: Item) -> None:
        n = span_count(item)
        self.dropped += 1
        for sink in self.batch_sinks:
            sink.dest.counter.fail(
                sink.dest.name, "spans", n, f"{sink.dest.name}: telemetry queue full"
            )
            with sink.dest._lock:
                sink.dest.lost += n
        if not self._dropping:
            self._dropping = True
            log.warning(
                "telemetry: the export queue is full (%d requests): dropping the telemetry of requests "
                "until the exporter catches up (counted in the stats)", self.max_queue,
            )  # fmt: skip

    # --- the exporter thread ------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(
                    target=self._run, name="wasmscope-telemetry-export", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            woke = self._wake.wait(self.delay)
            self._wake.clear()
            flush, self._flush_requested = self._flush_requested, False
            if not woke or flush:  # low traffic: what the request threads left
                self._encode_raw()
            # woken by a full batch: export full batches only (each export is one POST:
            # the requests that arrive meanwhile wait for the next full batch or the delay)
            self._drain(full_only=woke and not flush and not self._stop)
            if self._stop:
                self._encode_raw()
                self._drain()
                return

    def _drain(self, full_only: bool = False) -> None:
        q = self._queue
        while q and (not full_only or len(q) >= self.batch):
            items: list[Item] = []
            marker: threading.Event | None = None
            while q and len(items) < self.batch:
                x = q.popleft()
                if isinstance(x, threading.Event):
                    marker = x
                    break
                items.append(x)
            if items:
                self._export(items)
            if marker is not None:
                marker.set()
        if self._dropping and len(q) < self.max_queue // 2:
            self._dropping = False

    def _export(self, items: list[Item]) -> None:
        t0 = time.thread_time()
        try:
            self._export_batch(items)
        finally:
            self.export_cpu += time.thread_time() - t0
            self.exported_items += len(items)

    def _export_batch(self, items: list[Item]) -> None:
        otlp = [s for s in self.batch_sinks if isinstance(s, OtlpSink)]
        others = [s for s in self.batch_sinks if not isinstance(s, OtlpSink)]
        if others:
            spans: list[SpanData] = []
            logs: list[LogData] = []
            for n, item in enumerate(items, 1):
                if not n % _YIELD_EVERY:
                    _sleep(0)
                try:
                    s, lg = self._items(item)
                except Exception as exc:  # a bug or a bad record: counted, never raised
                    for sink in others:
                        sink.dest.fail("spans", span_count(item), exc)
                    continue
                spans += s
                logs += lg
            for sink in others:
                sink.deliver(spans, logs)
        if otlp:
            encoded: list[bytes] = []
            records: list[LogData] = []
            for n, item in enumerate(items, 1):
                if not n % _YIELD_EVERY:
                    _sleep(
                        0
                    )  # let the request threads have the GIL: encoding a batch takes milliseconds
                try:
                    if isinstance(item, Encoded):
                        encoded += item.spans
                        records += item.logs
                    elif isinstance(item, RequestSpan):
                        if item.sampled:
                            encoded += encode_request(item)
                        if item.record is not None:
                            stderr_logs(
                                item.record,
                                item.trace_id,
                                item.span_id,
                                item.sampled,
                                self.max_log_lines,
                                self.max_log_bytes,
                                records,
                                self.sanitize_output,
                            )
                    else:
                        s, lg = self._items(item)
                        encoded += [x.encode() for x in s]
                        records += lg
                except Exception as exc:  # a bug or a bad record: counted, never raised
                    for sink in otlp:
                        sink.dest.fail("spans", span_count(item), exc)
            for sink in otlp:
                sink.deliver_encoded(encoded, records)

    # --- lifecycle ----------------------------------------------------------------------------
    def force_flush(self, timeout: float) -> bool:
        if not self.batch_sinks or self._thread is None:
            return True
        self.settle()  # before the marker: what ended before the flush is in it
        marker = threading.Event()
        self._queue.append(marker)
        self._flush_requested = True
        self._wake.set()
        return marker.wait(timeout)

    def shutdown(self, timeout: float) -> bool:
        done = True
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join(timeout)
            done = not self._thread.is_alive()
        else:
            self._stop = True
        for sink in (*self.sync_sinks, *self.batch_sinks):
            try:
                sink.close()
            except Exception as exc:
                log.debug("telemetry: closing %s failed: %s", sink.dest.name, exc)
        return done
