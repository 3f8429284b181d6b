"""The outputs of serve's direct pipeline: in memory, JSON lines, the console, OTLP/HTTP."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from wasmscope.telemetry import _otlp_env, wire
from wasmscope.telemetry import semconv as sc
from wasmscope.telemetry._otlp_http import OtlpHttpClient
from wasmscope.telemetry._span_data import STATUS_NAMES, LogData, SpanData

if TYPE_CHECKING:
    from wasmscope.telemetry.exporters import Destination, JsonlWriter

__all__ = ["ConsoleSink", "JsonlSink", "MemorySink", "OtlpSink", "Sink"]


class Sink:
    """One output of the direct pipeline; ``deliver`` never raises (failures are counted)."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest

    def deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        try:
            self._deliver(spans, logs)
        except Exception as exc:
            if spans:
                self.dest.fail("spans", len(spans), exc)
            if logs:
                self.dest.fail("logs", len(logs), exc)
            return
        if spans:
            self.dest.ok("spans", len(spans))
        if logs:
            self.dest.ok("logs", len(logs))

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemorySink(Sink):
    def __init__(self, dest: Destination, resource: dict[str, Any], scope: str) -> None:
        super().__init__(dest)
        self.resource = resource
        self.scope = scope
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        with self._lock:
            self.spans.extend(s.to_json(self.resource, self.scope) for s in spans)
            self.logs.extend(r.to_json(self.resource, self.scope) for r in logs)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()
            self.logs.clear()


class JsonlSink(Sink):
    def __init__(
        self, dest: Destination, writer: JsonlWriter, resource: dict[str, Any], scope: str
    ) -> None:
        super().__init__(dest)
        self.writer = writer.acquire()
        self.resource = resource
        self.scope = scope
        self._closed = False

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        self.writer.write(
            [
                *(s.to_json(self.resource, self.scope) for s in spans),
                *(r.to_json(self.resource, self.scope) for r in logs),
            ]
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.writer.release()


class ConsoleSink(Sink):
    def __init__(self, dest: Destination, stream: IO[str] | None) -> None:
        super().__init__(dest)
        from wasmscope.telemetry.exporters import _Stream

        self._out = _Stream(stream)

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        from wasmscope.telemetry.exporters import _CONSOLE_ATTRS, _short

        lines = []
        for s in spans:
            line = f"span   {s.name}  {(s.end_ns - s.start_ns) / 1e6:.3f} ms  {STATUS_NAMES[s.status_code]}  trace={f'{s.trace_id:032x}'[:8]}"
            extra = [
                f"{k}={s.attrs[k]!s}"
                for k in ("http.response.status_code", *_CONSOLE_ATTRS)
                if k in s.attrs
            ]
            if extra:
                line += "  " + " ".join(extra)
            if s.status_code == wire.STATUS_ERROR and s.status_message:
                line += f"  ({_short(s.status_message, 100)})"
            lines.append(line)
        for r in logs:
            where = str(r.attrs.get(sc.LOG_IOSTREAM, ""))
            prefix = f"{where}: " if where else ""
            lines.append(
                f"log    {r.severity_text:<5} {prefix}{_short(r.body)}  trace={f'{r.trace_id:032x}'[:8]}"
            )
        if lines:
            self._out.write_lines(lines)


class OtlpSink(Sink):
    """OTLP/HTTP protobuf to ``traces_url`` and ``logs_url`` through
    :class:`~wasmscope.telemetry._otlp_http.OtlpHttpClient` (kept-alive connections);
    one retry after a connection error or a 429/502/503/504 within ``timeout``.
    Headers, compression and certificates: ``headers`` (else
    ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]HEADERS``), ``OTEL_EXPORTER_OTLP_*COMPRESSION``
    (gzip), ``OTEL_EXPORTER_OTLP_*CERTIFICATE`` / ``CLIENT_CERTIFICATE`` / ``CLIENT_KEY``."""

    def __init__(
        self, dest: Destination, *, traces_url: str, logs_url: str, resource_msg: bytes, scope_msg: bytes,
        timeout: float = 10.0, headers: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(dest)
        self.traces_url = traces_url
        self.logs_url = logs_url
        self.timeout = timeout
        self._resource = resource_msg
        self._scope = scope_msg
        # the exporter thread only: no lock
        self._clients = {
            signal: OtlpHttpClient(
                signal,
                headers={k.lower(): v for k, v in headers.items()}
                if headers is not None
                else _otlp_env.headers(signal),
                user_agent="wasmscope-otlp",
                gzip_above=0 if _otlp_env.gzip_wanted(signal) else None,
                compresslevel=5,
                max_retries=1,
                retry_errors=True,
                backoff=0.5,
            )
            for signal in ("TRACES", "LOGS")
        }

    def post(self, url_text: str, signal: str, body: bytes) -> None:
        """POST one export request; raises ``OSError`` / ``RuntimeError`` when it failed."""
        sent = self._clients[signal].post(url_text, body, self.timeout)
        if sent.ok:
            return
        if sent.error is not None:
            raise sent.error
        raise RuntimeError(f"HTTP {sent.status} {sent.reason} from {url_text}")

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        raise NotImplementedError  # deliver() is overridden: spans and logs fail apart

    def deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        self.deliver_encoded([s.encode() for s in spans], logs)

    def deliver_encoded(self, spans: Sequence[bytes], logs: Sequence[LogData]) -> None:
        """``spans``: OTLP ``Span`` messages already encoded."""
        if spans:
            try:
                self.post(
                    self.traces_url,
                    "TRACES",
                    wire.export_trace_request(self._resource, self._scope, spans),
                )
            except Exception as exc:
                self.dest.fail("spans", len(spans), exc)
            else:
                self.dest.ok("spans", len(spans))
        if logs:
            try:
                self.post(
                    self.logs_url,
                    "LOGS",
                    wire.export_logs_request(
                        self._resource, self._scope, [r.encode() for r in logs]
                    ),
                )
            except Exception as exc:
                self.dest.fail("logs", len(logs), exc)
            else:
                self.dest.ok("logs", len(logs))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
