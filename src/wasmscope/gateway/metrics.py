"""Prometheus metrics of ``wasmscope serve``: an ASGI middleware around the gateway
that counts, times and serves ``/metrics`` (text exposition format 0.0.4).

::

    from wasmscope.gateway.metrics import Metrics, MetricsMiddleware
    metrics = Metrics()                                   # or Metrics(multiprocess_dir=...)
    app = MetricsMiddleware(gateway, metrics, gateway=gateway)      # labels follow reloads

One interface over prometheus_client's two modes: in one process the values live in
a private registry; with ``multiprocess_dir`` (``--workers N``) every worker writes
its values to files in that folder (``PROMETHEUS_MULTIPROC_DIR``, which must be set
before ``prometheus_client`` is first imported in the worker) and ``/metrics``, served
by any worker, sums them over all workers (the in-flight gauge: over live workers).

The invocation metrics (errors by outcome, fuel, peak memory, cold starts) come from
the :class:`~wasmscope.runtime.record.InvocationRecord` of each run: the middleware
puts a tap in front of the gateway's ``telemetry`` (which still gets every record),
so the gateway itself needs no change. Requests that never ran a handler and
answered 401, 403, 413, 429 or 503 count as rejected, by reason.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from wasmscope._asgi import ASGIApp, Message, Receive, Scope, Send
from wasmscope.errors import UsageError
from wasmscope.gateway.tap import TelemetryTap

if TYPE_CHECKING:
    from collections.abc import Sequence

    from wasmscope.guard.findings import Finding
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "MEMORY_BUCKETS",
    "M_AUDIT_DROPPED",
    "M_COLDSTARTS",
    "M_FINDINGS",
    "M_FUEL",
    "M_HOST_CALLS",
    "M_INVOCATION_ERRORS",
    "M_IN_FLIGHT",
    "M_MEMORY_PEAK",
    "M_REJECTED",
    "M_REQUESTS",
    "M_REQUEST_DURATION",
    "REJECT_REASONS",
    "Metrics",
    "MetricsMiddleware",
    "require",
]

log = logging.getLogger("wasmscope.gateway")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Names (Prometheus conventions: unit suffix, _total for counters; prometheus_client
# appends _total to counters itself, so the counter names here are without it).
M_REQUESTS = "wasmscope_http_requests"  # _total {route, method, status}
M_REQUEST_DURATION = "wasmscope_http_request_duration_seconds"  # histogram {route}
M_INVOCATION_ERRORS = "wasmscope_invocation_errors"  # _total {route, outcome}
M_FUEL = "wasmscope_fuel_consumed"  # _total {route}
M_MEMORY_PEAK = "wasmscope_memory_peak_bytes"  # histogram {route}
M_COLDSTARTS = "wasmscope_coldstarts"  # _total {route}
M_IN_FLIGHT = "wasmscope_requests_in_flight"  # gauge {route}
M_REJECTED = "wasmscope_requests_rejected"  # _total {route, reason}
M_HOST_CALLS = "wasmscope_guard_host_calls"  # _total {route}: WASI calls of guarded routes
M_AUDIT_DROPPED = "wasmscope_guard_audit_dropped"  # _total {route}: records the audit ring lost
M_FINDINGS = "wasmscope_guard_findings"  # _total {route, event}: security events

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MEMORY_BUCKETS = tuple(float(1 << n) for n in (16, 18, 20, 22, 24, 26, 28, 30, 32))  # 64 KiB .. 4 GiB
REJECT_REASONS = {
    401: "unauthenticated",
    403: "forbidden",
    413: "too_large",
    429: "rate_limited",
    503: "saturated",
}
UNMATCHED = "(unmatched)"  # the route label of a path no route serves (bounded cardinality)
_SPECIAL = ("/healthz", "/readyz", "/metrics")
_OK = "ok"  # wasmscope.runtime.record.Outcome.OK (not imported here: no runtime for /metrics)


def require() -> None:
    """Raise :class:`UsageError` unless prometheus_client can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise UsageError("metrics need prometheus_client, which comes with wasmscope: pip install --force-reinstall wasmscope") from None


class Metrics:
    """The serve metrics; thread-safe. ``multiprocess_dir``: prometheus_client's
    multi-process mode (the folder must exist, be empty at the first start and be
    ``PROMETHEUS_MULTIPROC_DIR`` in every process before ``prometheus_client`` is
    imported there)."""

    def __init__(self, multiprocess_dir: str | os.PathLike[str] | None = None) -> None:
        require()
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = os.fspath(multiprocess_dir) if multiprocess_dir is not None else None
        if self.multiprocess_dir is not None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != self.multiprocess_dir:
                raise UsageError("multi-process metrics need PROMETHEUS_MULTIPROC_DIR set to the same folder before the workers start")
            if not os.path.isdir(self.multiprocess_dir):
                raise UsageError(f"the metrics folder {self.multiprocess_dir} does not exist")
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(M_REQUESTS, "HTTP requests answered, by route, method and status.", ["route", "method", "status"], registry=reg)
        self.duration = Histogram(M_REQUEST_DURATION, "Time from the request to the end of the response, by route.", ["route"], buckets=DURATION_BUCKETS, registry=reg)
        self.errors = Counter(M_INVOCATION_ERRORS, "Handler runs that did not answer normally, by route and outcome.", ["route", "outcome"], registry=reg)
        self.fuel = Counter(M_FUEL, "Wasm fuel consumed by the handlers (routes with a fuel limit), by route.", ["route"], registry=reg)
        self.memory = Histogram(M_MEMORY_PEAK, "Peak linear memory of a handler run in bytes, by route.", ["route"], buckets=MEMORY_BUCKETS, registry=reg)
        self.coldstarts = Counter(M_COLDSTARTS, "Handler runs that had to compile their module, by route.", ["route"], registry=reg)
        self.in_flight = Gauge(M_IN_FLIGHT, "Requests being answered now, by route.", ["route"], multiprocess_mode="livesum", registry=reg)
        self.rejected = Counter(M_REJECTED, "Requests refused before any handler ran, by route and reason.", ["route", "reason"], registry=reg)
        self.host_calls = Counter(M_HOST_CALLS, "WASI calls the guard audited, by route.", ["route"], registry=reg)
        self.audit_dropped = Counter(M_AUDIT_DROPPED, "Host-call records the audit ring could not keep (the counts stay exact), by route.", ["route"], registry=reg)
        self.findings = Counter(M_FINDINGS, "Security events of the guard, by route and event name.", ["route", "event"], registry=reg)
        # The labelled children, kept: labels() validates and locks on every call.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per distinct label values."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    # -- recording ----------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.child(self.requests, route, method, str(status)).inc()
        self.child(self.duration, route).observe(max(seconds, 0.0))

    def observe_rejected(self, route: str, reason: str) -> None:
        self.child(self.rejected, route, reason).inc()

    def observe_error(self, route: str, outcome: str) -> None:
        self.child(self.errors, route, outcome).inc()

    def observe_record(self, record: InvocationRecord) -> None:
        """The invocation metrics of one handler run (route from ``http.route``)."""
        route = str(record.attributes.get("http.route") or UNMATCHED)
        if record.outcome != _OK:
            self.observe_error(route, record.outcome)
        if record.fuel_consumed is not None:
            self.child(self.fuel, route).inc(max(record.fuel_consumed, 0))
        if record.peak_memory is not None:
            self.child(self.memory, route).observe(record.peak_memory)
        if record.cold_start:
            self.child(self.coldstarts, route).inc()
        audit = record.audit
        if audit is not None:
            self.child(self.host_calls, route).inc(audit.total)
            if audit.dropped:
                self.child(self.audit_dropped, route).inc(audit.dropped)

    def observe_findings(self, record: InvocationRecord, findings: Sequence[Finding]) -> None:
        route = str(record.attributes.get("http.route") or UNMATCHED)
        for f in findings:
            self.child(self.findings, route, str(f.name)).inc()

    # -- exposition ---------------------------------------------------------------------
    def exposition(self) -> bytes:
        """Every metric in the text format 0.0.4 (summed over workers in
        multi-process mode)."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        forget_dead_processes(self.multiprocess_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def forget_dead_processes(multiprocess_dir: str) -> list[int]:
    """Remove the live gauges (``in flight``) of worker processes that are gone, e.g. a
    worker that crashed mid-request and that uvicorn replaced: without this its last
    value stays in the sum forever. The pids whose gauges were removed."""
    from prometheus_client import multiprocess

    gone: list[int] = []
    try:
        names = os.listdir(multiprocess_dir)
    except OSError:
        return gone
    for name in names:
        # prometheus_client names them gauge_live{mode}_{pid}.db
        if not (name.startswith("gauge_live") and name.endswith(".db")):
            continue
        pid_text = name[: -len(".db")].rpartition("_")[2]
        if not pid_text.isdigit() or int(pid_text) in gone:
            continue
        pid = int(pid_text)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, multiprocess_dir)  # type: ignore[no-untyped-call]
            gone.append(pid)
        except PermissionError:  # alive, someone else's
            continue
    return gone


class _Tap(TelemetryTap):
    """Hands each record and the guard's findings to the metrics (see
    :class:`~wasmscope.gateway.tap.TelemetryTap`)."""

    what = "metrics"

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        super().__init__(inner)
        self._metrics = metrics

    def observe(self, record: InvocationRecord) -> None:
        self._metrics.observe_record(record)

    def observe_findings(self, record: InvocationRecord, findings: Sequence[Finding]) -> None:
        self._metrics.observe_findings(record, findings)


class MetricsMiddleware:
    """Wrap ``app`` to count and time every HTTP request and serve ``GET /metrics``.
    ``manifest``: to label requests by route (``(unmatched)`` for a path no route
    serves); ``gateway``: the :class:`~wasmscope.gateway.app.Gateway` whose handler
    runs feed the invocation metrics (its ``telemetry`` gets a tap in front) and whose
    manifest, that of each request's version, labels the requests (reloads apply;
    ``manifest`` is then not needed)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, manifest: Any = None, gateway: Any = None, path: str = "/metrics") -> None:
        self.app = app
        self.metrics = metrics
        self._fixed = manifest
        self._gateway = gateway if callable(getattr(gateway, "manifest_for", None)) else None
        self.path = path
        if gateway is not None and not isinstance(gateway.telemetry, _Tap):
            gateway.telemetry = _Tap(gateway.telemetry, metrics)

    @property
    def manifest(self) -> Any:
        """The manifest that labels requests now (the gateway's current one)."""
        return self._gateway.manifest if self._gateway is not None else self._fixed

    def _route(self, scope: Scope, path: str) -> tuple[str, bool]:
        """(route label, whether a handler route matched)."""
        if path in _SPECIAL or path == self.path:
            return path, False
        manifest = self._gateway.manifest_for(scope) if self._gateway is not None else self._fixed
        route = manifest.match(path) if manifest is not None else None
        return (str(route.path), True) if route is not None else (UNMATCHED, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path") or "/")
        method = str(scope.get("method") or "GET")
        if path == self.path and method in ("GET", "HEAD"):
            await self._serve(method, send)
            return
        t0 = time.perf_counter()
        route, handler_route = self._route(scope, path)
        status: list[int] = []
        invoked: list[bool] = []

        async def send_observed(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message["status"]))
                invoked.append(any(bytes(k).lower() == b"x-wasmscope-invocation" for k, _ in message.get("headers") or ()))
            await send(message)

        gauge = self.metrics.child(self.metrics.in_flight, route)
        gauge.inc()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            gauge.dec()
            code = status[0] if status else 500
            self.metrics.observe_request(route, method, code, time.perf_counter() - t0)
            ran = bool(invoked and invoked[0])
            if not ran and code in REJECT_REASONS and (handler_route or code != 503):
                self.metrics.observe_rejected(route, REJECT_REASONS[code])

    async def _serve(self, method: str, send: Send) -> None:
        import asyncio

        body = await asyncio.to_thread(self.metrics.exposition)
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
